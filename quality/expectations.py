"""Great Expectations suites, checked without GX and evaluated as SQL over the whole Parquet.

A suite is GX's JSON (``{"name", "expectations": [{"type", "kwargs", "meta"}]}``) so
providers can bring suites written for GX and take them elsewhere; ``meta.severity``
is ``blocking`` (the version is not published) or ``warning`` (published, flagged).

GX's own SQL engine failed against DuckDB 2.0 (every metric raised through
duckdb-engine 0.17), and its pandas engine needs the table in memory. So each
supported expectation becomes SQL: every per-row condition is one ``count(*)
FILTER`` in a single scan of the Parquet, with the first failing rows kept by
``arg_min(..., 3)``; uniqueness is a ``GROUP BY``; table checks come from the
schema and footer. Results have GX's shape (success, observed value, unexpected
count and percent, examples). ``check_suite`` is pure and runs in the web process
(which must not import GX) so a malformed suite is refused when it is saved.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from catalog.core import coltypes
from catalog.core.sqltext import first_line, ident
from quality.profile import classify, json_value

SEVERITIES = ("blocking", "warning")
EXAMPLES = 3
MAX_EXPECTATIONS = 500

# type -> (required kwargs, optional kwargs)
_COLUMN = ("column",)
SPECS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "expect_table_row_count_to_be_between": ((), ("min_value", "max_value")),
    "expect_table_row_count_to_equal": (("value",), ()),
    "expect_table_columns_to_match_ordered_list": (("column_list",), ()),
    "expect_table_columns_to_match_set": (("column_set",), ("exact_match",)),
    "expect_column_to_exist": (_COLUMN, ()),
    "expect_column_values_to_be_of_type": (("column", "type_"), ()),
    "expect_column_values_to_not_be_null": (_COLUMN, ("mostly",)),
    "expect_column_values_to_be_null": (_COLUMN, ("mostly",)),
    "expect_column_values_to_be_between": (_COLUMN, ("min_value", "max_value", "strict_min", "strict_max", "mostly")),
    "expect_column_values_to_be_in_set": (("column", "value_set"), ("mostly",)),
    "expect_column_values_to_not_be_in_set": (("column", "value_set"), ("mostly",)),
    "expect_column_values_to_match_regex": (("column", "regex"), ("mostly",)),
    "expect_column_values_to_not_match_regex": (("column", "regex"), ("mostly",)),
    "expect_column_value_lengths_to_be_between": (_COLUMN, ("min_value", "max_value", "mostly")),
    "expect_column_values_to_be_unique": (_COLUMN, ("mostly",)),
    "expect_compound_columns_to_be_unique": (("column_list",), ("mostly",)),
    "expect_column_min_to_be_between": (_COLUMN, ("min_value", "max_value")),
    "expect_column_max_to_be_between": (_COLUMN, ("min_value", "max_value")),
    "expect_column_mean_to_be_between": (_COLUMN, ("min_value", "max_value")),
    "expect_column_stdev_to_be_between": (_COLUMN, ("min_value", "max_value")),
    "expect_column_sum_to_be_between": (_COLUMN, ("min_value", "max_value")),
    "expect_column_unique_value_count_to_be_between": (_COLUMN, ("min_value", "max_value")),
    "expect_column_distinct_values_to_be_in_set": (("column", "value_set"), ()),
}
_BETWEEN = ("min_value", "max_value")
# Per-row expectations: the condition that makes a row unexpected, and whether nulls count.
_ROW_RULES = {
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_null", "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex",
    "expect_column_value_lengths_to_be_between",
}
_AGGREGATES = {
    "expect_column_min_to_be_between": "min({c})", "expect_column_max_to_be_between": "max({c})",
    "expect_column_mean_to_be_between": "avg({c})", "expect_column_stdev_to_be_between": "stddev_samp({c})",
    "expect_column_sum_to_be_between": "sum({c})", "expect_column_unique_value_count_to_be_between":
    "count(DISTINCT {c})",
}
def type_matches(observed: str, wanted: str) -> bool:
    """Whether a DuckDB column type is the suite's type name (pure). A CKAN name (int, text, ...)
    compares through the profile's own mapping, so a generated suite always agrees with the
    profile it came from; a DuckDB name compares base types exactly (TIMESTAMP is not
    TIMESTAMP WITH TIME ZONE)."""
    if wanted.lower() in coltypes.CKAN_TYPES:
        return classify(observed)[0] == wanted.lower()
    return coltypes.base_name(observed) == coltypes.base_name(wanted)


class SuiteError(ValueError):
    """A suite that cannot be used; the message names the bad expectation."""


@dataclass(frozen=True)
class Expectation:
    type: str
    kwargs: dict[str, Any]
    severity: str
    meta: dict[str, Any]

    def as_gx(self) -> dict[str, Any]:
        return {"type": self.type, "kwargs": self.kwargs, "meta": {**self.meta, "severity": self.severity}}


@dataclass(frozen=True)
class Suite:
    name: str
    expectations: tuple[Expectation, ...]

    def as_gx(self) -> dict[str, Any]:
        """GX's ExpectationSuite JSON."""
        return {"name": self.name, "expectations": [e.as_gx() for e in self.expectations], "meta": {}}


def _number(value: Any, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
        raise SuiteError(f"{what} must be a number, a date or null")


def _check_kwargs(kind: str, kwargs: dict[str, Any], columns: set[str] | None) -> None:
    required, optional = SPECS[kind]
    missing = [k for k in required if kwargs.get(k) in (None, "")]
    if missing:
        raise SuiteError(f"missing {', '.join(missing)}")
    unknown = sorted(set(kwargs) - set(required) - set(optional) - {"result_format", "catch_exceptions", "meta"})
    if unknown:
        raise SuiteError(f"unknown argument {unknown[0]!r}")
    for key in ("column_list", "value_set", "column_set"):
        if key in kwargs and not isinstance(kwargs[key], list):
            raise SuiteError(f"{key} must be a list")
    named = [kwargs["column"]] if "column" in kwargs else []
    if kind == "expect_compound_columns_to_be_unique":
        named = list(kwargs["column_list"])
    for name in named:
        if not isinstance(name, str):
            raise SuiteError("column names must be text")
        if columns is not None and name not in columns and kind != "expect_column_to_exist":
            raise SuiteError(f"the table has no column {name[:80]!r}")
    for key in _BETWEEN:
        _number(kwargs.get(key), key)
    if kind in ("expect_table_row_count_to_be_between", "expect_column_value_lengths_to_be_between",
                "expect_column_unique_value_count_to_be_between") or kind in _AGGREGATES:
        if kwargs.get("min_value") is None and kwargs.get("max_value") is None and kind != \
                "expect_table_row_count_to_be_between":
            raise SuiteError("needs min_value or max_value")
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
        raise SuiteError(f"min_value {lo} is above max_value {hi}")
    mostly = kwargs.get("mostly")
    if mostly is not None and (isinstance(mostly, bool) or not isinstance(mostly, (int, float))
                               or not 0 <= mostly <= 1):
        raise SuiteError("mostly must be a number from 0 to 1")
    if "regex" in kwargs:
        if not isinstance(kwargs["regex"], str):
            raise SuiteError("regex must be text")
        try:
            re.compile(kwargs["regex"])
        except re.error as exc:
            raise SuiteError(f"regex does not compile: {exc}") from None
    if kind == "expect_column_values_to_be_of_type" and str(kwargs["type_"]).lower() not in coltypes.CKAN_TYPES \
            and not coltypes.is_duckdb_type(str(kwargs["type_"])):
        raise SuiteError(f"unknown type {str(kwargs['type_'])[:40]!r}; use one of {', '.join(coltypes.CKAN_TYPES)}")


def check_suite(doc: Any, columns: list[str] | None = None) -> Suite:
    """A suite from GX JSON (text or dict); SuiteError names the first bad expectation (pure).

    ``columns``, when known, are the table's: an expectation on a column the table does
    not have is refused at once rather than failing every later version.
    """
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"the suite is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise SuiteError('the suite must be an object with a list "expectations"')
    items = doc["expectations"]
    if len(items) > MAX_EXPECTATIONS:
        raise SuiteError(f"the suite has {len(items)} expectations; the limit is {MAX_EXPECTATIONS}")
    known = set(columns) if columns is not None else None
    out = []
    for i, item in enumerate(items):
        label = f"expectation {i}"
        try:
            if not isinstance(item, dict):
                raise SuiteError("must be an object")
            kind = item.get("type") or item.get("expectation_type")
            label = f"expectation {i} ({str(kind)[:60]})"
            if kind not in SPECS:
                raise SuiteError(f"type {str(kind)[:60]!r} is not supported; supported: {', '.join(sorted(SPECS))}")
            kwargs = item.get("kwargs") or {}
            meta = item.get("meta") or {}
            if not isinstance(kwargs, dict) or not isinstance(meta, dict):
                raise SuiteError("kwargs and meta must be objects")
            severity = meta.get("severity", "blocking")
            if severity not in SEVERITIES:
                raise SuiteError(f"severity must be one of {', '.join(SEVERITIES)}")
            kwargs = {k: v for k, v in kwargs.items() if k not in ("result_format", "catch_exceptions", "meta")}
            _check_kwargs(kind, kwargs, known)
            out.append(Expectation(kind, kwargs, severity, {k: v for k, v in meta.items() if k != "severity"}))
        except SuiteError as exc:
            raise SuiteError(f"{label}: {exc}") from None
    return Suite(str(doc.get("name") or "mosu-suite")[:200], tuple(out))


# -- evaluation -------------------------------------------------------------------------------

def _row_condition(e: Expectation, duck_type: str) -> tuple[str, list[Any], bool]:
    """(SQL condition for an unexpected row, its parameters, whether nulls are counted) (pure)."""
    c, kw, t = ident(e.kwargs["column"]), e.kwargs, duck_type
    if e.type == "expect_column_values_to_not_be_null":
        return f"{c} IS NULL", [], True
    if e.type == "expect_column_values_to_be_null":
        return f"{c} IS NOT NULL", [], True
    if e.type == "expect_column_values_to_be_between" or e.type == "expect_column_value_lengths_to_be_between":
        value = f"length(CAST({c} AS VARCHAR))" if "lengths" in e.type else c
        cast = "BIGINT" if "lengths" in e.type else t
        parts, params = [], []
        if kw.get("min_value") is not None:
            parts.append(f"{value} {'<=' if kw.get('strict_min') else '<'} CAST(? AS {cast})")
            params.append(kw["min_value"])
        if kw.get("max_value") is not None:
            parts.append(f"{value} {'>=' if kw.get('strict_max') else '>'} CAST(? AS {cast})")
            params.append(kw["max_value"])
        return "(" + (" OR ".join(parts) or "false") + ")", params, False
    if e.type in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        negate = "NOT " if e.type == "expect_column_values_to_be_in_set" else ""
        values = list(kw["value_set"])
        if not values:
            return ("true" if negate else "false"), [], False
        marks = ", ".join(f"CAST(? AS {t})" for _ in values)  # an IN list is hashed once, not per row
        return f"{c} {negate}IN ({marks})", values, False
    if e.type in ("expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"):
        negate = "NOT " if e.type == "expect_column_values_to_match_regex" else ""
        return f"{negate}regexp_matches(CAST({c} AS VARCHAR), ?)", [kw["regex"]], False
    raise ValueError(e.type)


def _between(value: Any, kw: dict[str, Any]) -> bool:
    """Whether an observed value lies within min_value..max_value (pure): numbers compare as
    numbers, dates and text as ISO text."""
    if value is None:
        return False
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
        try:
            return (lo is None or float(value) >= float(lo)) and (hi is None or float(value) <= float(hi))
        except (TypeError, ValueError):
            return False
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return (lo is None or text >= str(lo)) and (hi is None or text <= str(hi))


def _result(e: Expectation, success: bool | None, observed: Any = None, unexpected: int | None = None,
            total: int | None = None, examples: list | None = None, error: str | None = None) -> dict[str, Any]:
    out = {"type": e.type, "kwargs": e.kwargs, "severity": e.severity,
           "status": "errored" if error else ("passed" if success else "failed"),
           "success": bool(success) and not error, "observed_value": json_value(observed)}
    if unexpected is not None:
        out["unexpected_count"] = unexpected
        out["unexpected_percent"] = round(100.0 * unexpected / total, 4) if total else 0.0
        out["examples"] = examples or []
    if error:
        out["error"] = error
    return out


def _mostly(e: Expectation, unexpected: int, total: int) -> bool:
    if total == 0:
        return True
    return 1 - unexpected / total >= float(e.kwargs.get("mostly", 1.0))


def decided_by_footer(e: Expectation, known: dict[str, Any] | None) -> dict[str, Any] | None:
    """The result of a per-row expectation when the Parquet footer already proves it passes (pure).

    Exact null counts and min/max per column come free with the file: a column with no
    nulls passes "not null", and one whose whole range lies inside the bounds passes
    "between", without reading a single row.
    """
    if not known:
        return None
    kw = e.kwargs
    if e.type == "expect_column_values_to_not_be_null" and known.get("nulls") == 0:
        return _result(e, True, None, 0, known.get("rows"), [])
    if e.type == "expect_column_values_to_be_between":
        lo, hi = known.get("min"), known.get("max")
        if not isinstance(lo, (int, float)) or not isinstance(hi, (int, float)) or isinstance(lo, bool):
            return None
        try:
            low_ok = kw.get("min_value") is None or (lo > float(kw["min_value"]) if kw.get("strict_min")
                                                     else lo >= float(kw["min_value"]))
            high_ok = kw.get("max_value") is None or (hi < float(kw["max_value"]) if kw.get("strict_max")
                                                      else hi <= float(kw["max_value"]))
        except (TypeError, ValueError):
            return None
        if low_ok and high_ok:
            return _result(e, True, None, 0, known.get("non_null"), [])
    return None


def evaluate(con, relation: str, schema: list[tuple[str, str]], row_count: int, suite: Suite,
             footer: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Run every expectation of ``suite`` over ``relation`` (which has a ``file_row_number``
    column); an expectation that cannot run is ``errored``, never passed. ``footer`` holds
    exact per-column ``nulls``/``min``/``max`` from the Parquet footer, which settle some
    expectations without a scan."""
    import duckdb

    types = dict(schema)
    names = [n for n, _ in schema]
    results: dict[int, dict[str, Any]] = {}
    row_rules: list[tuple[int, Expectation, str, list[Any], bool]] = []
    aggregates: list[tuple[int, Expectation, str]] = []
    for i, e in enumerate(suite.expectations):
        column = e.kwargs.get("column")
        if column is not None and column not in types and e.type != "expect_column_to_exist":
            results[i] = _result(e, False, error=f"the table has no column {column!r}")
            continue
        if e.type in _ROW_RULES:
            settled = decided_by_footer(e, (footer or {}).get(column))
            if settled is not None:
                results[i] = settled
                continue
            try:
                cond, params, nulls = _row_condition(e, types[column])
                row_rules.append((i, e, cond, params, nulls))
            except Exception as exc:  # noqa: BLE001 - reported as errored
                results[i] = _result(e, False, error=str(exc)[:300])
        elif e.type in _AGGREGATES:
            aggregates.append((i, e, _AGGREGATES[e.type].format(c=ident(column))))
        else:
            try:
                results[i] = _table_rule(con, relation, e, names, types, row_count, footer or {})
            except Exception as exc:  # noqa: BLE001 - one expectation that cannot run is reported, not fatal
                results[i] = _result(e, False, error=f"could not be evaluated: {first_line(exc)}")
    _run_row_rules(con, relation, row_rules, row_count, results, duckdb.Error)
    for i, e, sql in aggregates:
        try:
            observed = con.execute(f"SELECT {sql} FROM {relation}").fetchall()[0][0]
            results[i] = _result(e, _between(observed, e.kwargs), observed)
        except duckdb.Error as exc:
            results[i] = _result(e, False, error=first_line(exc))
    return [results[i] for i in range(len(suite.expectations))]


def _run_row_rules(con, relation: str, rules: list, row_count: int, results: dict, db_error: type) -> None:
    """All per-row expectations in one scan; if that scan fails, each runs alone so one bad
    expectation is reported as errored without hiding the others."""
    if not rules:
        return

    def select(batch: list) -> tuple[str, list[Any]]:
        parts, params = [], []
        for n, (_, e, cond, p, nulls) in enumerate(batch):
            column = ident(e.kwargs["column"])
            where = cond if nulls else f"{column} IS NOT NULL AND {cond}"
            value = f"left(CAST({column} AS VARCHAR), 80)"
            parts.append(f"count(*) FILTER (WHERE {where}) AS u{n}")
            parts.append(f"arg_min(struct_pack(row := file_row_number + 1, value := {value}), file_row_number, "
                         f"{EXAMPLES}) FILTER (WHERE {where}) AS x{n}")
            parts.append(f"count({column}) AS v{n}")
            params += p + p
        return f"SELECT {', '.join(parts)} FROM {relation}", params

    def record(batch: list, row: tuple) -> None:
        for n, (i, e, _, _, nulls) in enumerate(batch):
            unexpected, examples, non_null = row[3 * n], row[3 * n + 1] or [], row[3 * n + 2]
            total = row_count if nulls else non_null
            results[i] = _result(e, _mostly(e, unexpected, total), None, unexpected, total,
                                 [{"row": x["row"], "value": x["value"]} for x in examples])

    try:
        sql, params = select(rules)
        record(rules, con.execute(sql, params).fetchall()[0])
    except db_error:
        for rule in rules:
            try:
                sql, params = select([rule])
                record([rule], con.execute(sql, params).fetchall()[0])
            except db_error as exc:
                results[rule[0]] = _result(rule[1], False, error=first_line(exc))


DENSE_MAX_ROWS = 100_000_000  # 200 MB of marks at most


def _dense_integer_key(con, relation: str, e: Expectation, columns: list[str], types: dict[str, str],
                       footer: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Uniqueness of an integer key whose values fill their range densely (ids 1..n), by marking
    each value in a byte array indexed by it: as many marks as values means no repeats. Half the
    time of a hash GROUP BY with the same exact answer. None when the key is not such a column,
    or has repeats (the caller's GROUP BY then counts them and names a few)."""
    import numpy as np

    if len(columns) != 1 or coltypes.ckan_type(types[columns[0]]) != "int":
        return None
    known = footer.get(columns[0], {})
    lo, hi, non_null = known.get("min"), known.get("max"), known.get("non_null")
    if not isinstance(lo, int) or not isinstance(hi, int) or not non_null or non_null > DENSE_MAX_ROWS \
            or hi - lo + 1 > 2 * non_null:
        return None
    column = ident(columns[0])
    seen = np.zeros(hi - lo + 1, dtype=bool)  # one byte per possible value
    # a relation streams; to_arrow_reader on an executed (DB-API) result first copies every row
    reader = con.sql(f"SELECT {column} AS v FROM {relation} WHERE {column} IS NOT NULL").to_arrow_reader(1 << 20)
    for batch in reader:  # a million values at a time: memory stays flat
        seen[batch.column(0).to_numpy().astype(np.int64, copy=False) - lo] = True
    if int(np.count_nonzero(seen)) != non_null:
        return None  # duplicates: the GROUP BY counts them and names a few
    return _result(e, True, None, 0, non_null, [])


def _table_rule(con, relation: str, e: Expectation, names: list[str], types: dict[str, str],
                row_count: int, footer: dict[str, dict[str, Any]]) -> dict[str, Any]:
    import duckdb

    kw = e.kwargs
    if e.type == "expect_table_row_count_to_be_between":
        return _result(e, _between(row_count, kw), row_count)
    if e.type == "expect_table_row_count_to_equal":
        return _result(e, row_count == kw["value"], row_count)
    if e.type == "expect_table_columns_to_match_ordered_list":
        return _result(e, names == list(kw["column_list"]), names)
    if e.type == "expect_table_columns_to_match_set":
        want, have = set(kw["column_set"]), set(names)
        return _result(e, have == want if kw.get("exact_match", True) else want <= have, names)
    if e.type == "expect_column_to_exist":
        return _result(e, kw["column"] in types, names)
    if e.type == "expect_column_values_to_be_of_type":
        observed = types[kw["column"]]
        return _result(e, type_matches(observed, str(kw["type_"])), observed)
    columns = [kw["column"]] if e.type == "expect_column_values_to_be_unique" else list(kw["column_list"])
    missing = [c for c in columns if c not in types]
    if missing:
        return _result(e, False, error=f"the table has no column {missing[0]!r}")
    if e.type == "expect_column_distinct_values_to_be_in_set":
        try:
            rows = con.execute(f"SELECT DISTINCT {ident(columns[0])} FROM {relation} WHERE {ident(columns[0])} "
                               f"IS NOT NULL LIMIT 1001").fetchall()
        except duckdb.Error as exc:
            return _result(e, False, error=first_line(exc))
        observed = sorted((r[0] for r in rows), key=str)
        allowed = {str(v) for v in kw["value_set"]}
        return _result(e, all(str(v) in allowed for v in observed), observed[:100])
    keys = ", ".join(ident(c) for c in columns)
    not_null = " AND ".join(f"{ident(c)} IS NOT NULL" for c in columns)
    dense = _dense_integer_key(con, relation, e, columns, types, footer)
    if dense is not None:
        return dense
    try:  # rows whose key occurs more than once, and a few of the repeated keys
        # Group by the key's own values (casting 10M keys to text first costs more than the grouping).
        key = ident(columns[0]) if len(columns) == 1 else f"({keys})"
        found = con.execute(f"SELECT coalesce(sum(n), 0), count(*), list(CAST(k AS VARCHAR) ORDER BY k)[1:{EXAMPLES}] "
                            f"FROM (SELECT {key} AS k, count(*) AS n FROM {relation} WHERE {not_null} "
                            f"GROUP BY ALL HAVING count(*) > 1)").fetchall()[0]
        known = footer.get(columns[0], {}).get("non_null") if len(columns) == 1 else None
        total = known if known is not None else \
            con.execute(f"SELECT count(*) FROM {relation} WHERE {not_null}").fetchall()[0][0]
    except duckdb.Error as exc:
        return _result(e, False, error=first_line(exc))
    unexpected, _, repeated = found
    return _result(e, _mostly(e, int(unexpected), total), None, int(unexpected), total,
                   [{"value": k} for k in repeated or []])
