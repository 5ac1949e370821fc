"""What others may see of data that was not published: that an upload did not pass, never its values.

An upload that fails a blocking check, or is held for a personal-information
acknowledgement, is not published: its values are for the dataset's editors only.
Yet the detailed messages quote them (the repeated keys, the first failing rows,
an e-mail address found in an integer column). So every outcome has two texts:
the detail, kept on the version and its ingest job and shown to editors, and a
value-free summary, which is what the resource row itself stores (``ingest_error``)
and what everyone else sees. Storing the summary on the resource, rather than
redacting on the way out, keeps every copy of a resource dict safe by default:
the search index, activity snapshots and group pages carry the summary.

Values left empty because they did not fit their column's type ("odd values")
are not in the published Parquet either, so they count as unpublished values
too: others see the column, type and count, not the values or their rows.

Pure functions: dicts and strings in, dicts and strings out.
"""
from __future__ import annotations

from typing import Any, Iterable

from catalog.versions.lifecycle import UNPUBLISHED_OUTCOMES

FAILED = ("The latest upload could not be ingested, so it was not published; the current version, if any, "
          "stays. The dataset's editors can see why.")
_KIND_NAMES = {"email": "e-mail addresses", "phone": "phone numbers", "cn_id": "identity numbers",
               "bank_card": "bank card numbers", "ip_address": "IP addresses", "passport": "passport numbers"}


def _column(value: Any) -> str:
    return repr(str(value)[:60])


def gate_summary(report: dict[str, Any]) -> str:
    """The value-free sentence for a version stopped by blocking expectations: which checks on which
    columns (names from the resource's suite), and how many rows broke them, never the rows."""
    reasons = []
    for r in report.get("validation") or []:
        if r.get("severity") != "blocking" or r.get("success"):
            continue
        what = str(r.get("type", "")).replace("expect_", "").replace("_", " ")
        column = (r.get("kwargs") or {}).get("column")
        where = f" on column {_column(column)}" if column else ""
        if r.get("status") == "errored":
            reasons.append(f"{what}{where} could not be checked")
        elif r.get("unexpected_count") is not None:
            count = int(r["unexpected_count"])
            reasons.append(f"{what}{where}: {count:,} unexpected value{'' if count == 1 else 's'}")
        else:
            reasons.append(f"{what}{where}: not met")
    if not reasons:
        return FAILED
    return ("Blocking quality checks failed, so the latest upload was not published (the current version, if "
            "any, stays): " + "; ".join(reasons[:10]) + ".")


def held_summary(findings: Iterable[dict[str, Any]]) -> str:
    """The value-free sentence for a version held for personal information: the kinds found."""
    kinds = sorted({_KIND_NAMES.get(str(f.get("kind")), str(f.get("kind"))) for f in findings})
    return ("The latest upload is held until the dataset's editors acknowledge the personal information found "
            f"in it ({', '.join(kinds) or 'personal information'}); the current version, if any, stays.")


def error_summary(status: str | None, validation: dict[str, Any] | None) -> str | None:
    """What others see of a version's ``error``: the summary stored with it, else a generic sentence."""
    if status not in UNPUBLISHED_OUTCOMES:
        return None
    stored = (validation or {}).get("summary")
    return stored if isinstance(stored, str) else FAILED


def odd_value_notes(odd_values: Iterable[dict[str, Any]]) -> list[str]:
    """The public form of odd-value warnings: column, type and count, without values or rows."""
    out = []
    for o in odd_values:
        count = int(o.get("count") or 0)
        noun, verb = ("value", "was") if count == 1 else ("values", "were")
        out.append(f"Column {_column(o.get('column'))}: {count:,} {noun} could not be read as {o.get('type')} "
                   f"and {verb} left empty.")
    return out


def odd_value_counts(odd_values: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Odd values without their examples (the values and their row numbers)."""
    return [{"column": o.get("column"), "type": o.get("type"), "count": o.get("count")} for o in odd_values]


def progress(progress: dict[str, Any]) -> dict[str, Any]:
    """An ingest job's progress as others may see it (no odd values)."""
    if "odd_values" not in progress:
        return progress
    return {**progress, "odd_values": odd_value_counts(progress.get("odd_values") or [])}


def report(quality: dict[str, Any]) -> dict[str, Any]:
    """A published version's quality report as readers see it: the odd values, which are not in the
    published data, keep only their counts."""
    if not quality.get("odd_values"):
        return quality
    return {**quality, "odd_values": odd_value_counts(quality["odd_values"])}
