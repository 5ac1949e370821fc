"""What a reader sees of a dataset's columns and values: column scopes and value-free reports (pure).

:func:`catalog.access.policy.require_data` answers *how* a caller reads a dataset, with
``Reading.columns``: None for every column, else the only columns that exist for that caller (a
column-scoped grant). Every path that shows columns or values narrows what it shows here, so a
hidden column is absent the same way everywhere: previews, SQL, exports, the data dictionary, the
versions' schemas and the quality report.

A caller who may see a dataset but not read its rows (a restricted dataset without a grant, a
registered one whose terms they have not accepted, an embargoed one) still sees its quality report,
so researchers can judge the data before they ask for it; but nothing in it that is a value of a
row: no value examples of failed checks or personal-information findings, no top values, no
minimum or maximum of text (they are values), no value sets of checks, no suite (generated suites
list the values of low-cardinality columns). Counts, shares, lengths, numeric and temporal ranges,
histograms of numbers and the score stay: they describe columns, not rows.

``_id`` (CKAN's row number) is not a column of the data: it exists for every reader.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ROW_ID = "_id"
Columns = frozenset[str] | None
"""A column scope: None for every column, else the names that exist for the reader."""

VALUE_FREE_NOTE = ("Value examples, top values, text minimums and maximums, value sets and the suite are shown "
                   "to readers of the data only.")
_RANGED_TYPES = frozenset({"int", "float", "numeric", "date", "timestamp", "timestamptz", "bool"})
"""CKAN types whose minimum and maximum are a range, not a value someone could be found by."""
_SCHEMA_CHECKS = frozenset({"expect_table_columns_to_match_ordered_list", "expect_table_columns_to_match_set",
                            "expect_column_to_exist", "expect_column_values_to_be_of_type",
                            "expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"})
"""Checks whose observed value is the table's shape (names, types, row count), never a row's value."""
_VALUE_KWARGS = frozenset({"value_set"})
"""Check arguments that list the data's values (a generated set is the column's top values)."""
_BOUND_KWARGS = frozenset({"min_value", "max_value", "value"})
"""Check arguments that are a bound: a value of the data when they are text."""


def sees(name: str, columns: Columns) -> bool:
    """Whether column ``name`` exists for a reader with this scope (``_id`` always does)."""
    return columns is None or name == ROW_ID or name in columns


def visible(names: Iterable[str], columns: Columns) -> list[str]:
    """``names`` without the hidden ones, in their order."""
    return [n for n in names if sees(n, columns)]


def schema(fields: list[dict[str, Any]] | None, columns: Columns) -> list[dict[str, Any]] | None:
    """A version's stored schema (``[{"id", "type"}]``) without the hidden columns."""
    if fields is None or columns is None:
        return fields
    return [f for f in fields if isinstance(f, dict) and sees(str(f.get("id")), columns)]


def dictionary(stored: Any, columns: Columns) -> Any:
    """A stored data dictionary (``{"fields": [{"id", ...}]}``) without the rows of hidden columns."""
    if columns is None or not isinstance(stored, dict) or not isinstance(stored.get("fields"), list):
        return stored
    return {**stored, "fields": [f for f in stored["fields"]
                                 if not isinstance(f, dict) or sees(str(f.get("id")), columns)]}


def resource_extras(extras: dict[str, Any], dictionary_key: str, columns: Columns) -> dict[str, Any]:
    """A resource dict with its data dictionary (``dictionary_key``) narrowed to ``columns``."""
    if columns is None or dictionary_key not in extras:
        return extras
    return {**extras, dictionary_key: dictionary(extras[dictionary_key], columns)}


def _named(kwargs: Any) -> list[str]:
    """The columns a check names (``column``, ``column_list``, ``column_set``)."""
    if not isinstance(kwargs, dict):
        return []
    names = [kwargs["column"]] if kwargs.get("column") is not None else []
    for key in ("column_list", "column_set"):
        if isinstance(kwargs.get(key), (list, tuple)):
            names.extend(kwargs[key])
    return [str(n) for n in names]


def _names_visible(entry: Any, columns: Columns) -> bool:
    return all(sees(n, columns) for n in _named(entry.get("kwargs") if isinstance(entry, dict) else None))


def _value_free_column(column: dict[str, Any]) -> dict[str, Any]:
    """A profile column without values: no top values, and min/max only for numbers and times
    that no personal-information finding masked."""
    out = {k: v for k, v in column.items() if k not in ("top", "top_sample_rows")}
    if out.get("type") not in _RANGED_TYPES or out.get("masked"):
        for key in ("min", "max", "histogram"):
            out.pop(key, None)
    for key in ("exact", "approximate", "sampled"):
        if isinstance(out.get(key), list):
            out[key] = [k for k in out[key] if k in out]
    return out


def _value_free_check(result: dict[str, Any]) -> dict[str, Any]:
    """A check's result without values: no examples, no value sets, and an observed value only when
    it is the table's shape or a number."""
    out = {k: v for k, v in result.items() if k != "examples"}
    if "examples" in result:
        out["examples"] = []
    kwargs = result.get("kwargs")
    if isinstance(kwargs, dict):
        out["kwargs"] = {k: v for k, v in kwargs.items()
                         if k not in _VALUE_KWARGS and not (k in _BOUND_KWARGS and isinstance(v, str))}
    observed = result.get("observed_value")
    if result.get("type") not in _SCHEMA_CHECKS and not (observed is None or isinstance(observed, (int, float))):
        out["observed_value"] = None
    return out


def _scoped_check(result: dict[str, Any], columns: Columns) -> dict[str, Any]:
    """A schema check's observed column names without the hidden ones."""
    observed = result.get("observed_value")
    if columns is None or result.get("type") not in _SCHEMA_CHECKS or not isinstance(observed, list):
        return result
    return {**result, "observed_value": [n for n in observed if not isinstance(n, str) or sees(n, columns)]}


def _summary(results: list[dict[str, Any]]) -> dict[str, int]:
    """The report's summary counts over the checks shown (as :func:`quality.report.build` counts them)."""
    return {"expectations": len(results), "passed": sum(1 for r in results if r.get("success")),
            "blocking_failed": sum(1 for r in results if r.get("severity") == "blocking" and not r.get("success")),
            "warnings": sum(1 for r in results if r.get("severity") == "warning" and not r.get("success")),
            "errored": sum(1 for r in results if r.get("status") == "errored")}


def suite(doc: Any, columns: Columns) -> Any:
    """A GX suite without the expectations that name hidden columns."""
    if columns is None or not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        return doc
    return {**doc, "expectations": [e for e in doc["expectations"] if _names_visible(e, columns)]}


def report(quality: dict[str, Any], *, rows: bool, columns: Columns) -> dict[str, Any]:
    """A published version's quality report as one reader may see it.

    ``rows``: whether the reader may read the rows (else every value goes, see the module
    docstring). ``columns``: the reader's scope; hidden columns are absent entirely (their
    profile, the checks that name them, their personal-information findings and odd values).
    """
    if rows and columns is None:
        return quality
    out = dict(quality)
    profile = dict(quality.get("profile") or {})
    shown = [c for c in profile.get("columns") or [] if isinstance(c, dict) and sees(str(c.get("name")), columns)]
    profile["columns"] = shown if rows else [_value_free_column(c) for c in shown]
    out["profile"] = profile
    checks = [_scoped_check(r, columns) for r in quality.get("validation") or [] if _names_visible(r, columns)]
    out["validation"] = checks if rows else [_value_free_check(r) for r in checks]
    if columns is not None:
        out["summary"] = _summary(checks)
    findings = [f for f in quality.get("pii") or [] if sees(str(f.get("column")), columns)]
    out["pii"] = findings if rows else [{**f, "examples": []} for f in findings]
    odd = [o for o in quality.get("odd_values") or [] if sees(str(o.get("column")), columns)]
    out["odd_values"] = odd if rows else [{"column": o.get("column"), "type": o.get("type"), "count": o.get("count")}
                                          for o in odd]
    out["suite"] = suite(quality.get("suite"), columns) if rows else None
    if not rows:
        out["values_withheld"] = VALUE_FREE_NOTE
    return out
