"""The default suite a resource gets from its first version, and the quality score (pure).

A provider rarely writes expectations up front; what they want is to hear when a
later export differs from the one they checked. So the first version's schema and
profile become the suite: the same columns in the same order and types (blocking),
a key that stays unique and filled (blocking), columns that had no nulls keep
having none, numbers stay near the observed range, and low-cardinality columns keep
their values (warnings: data may legitimately drift). Providers edit it from there.
"""
from __future__ import annotations

from typing import Any

RANGE_MARGIN = 0.1          # ranges widened by this share of the observed span on each side
SET_MAX_VALUES = 20         # columns with at most this many distinct values get a value set
SET_MIN_ROWS = 50           # ... if the table has enough rows to say so
KEY_TYPES = ("int", "text")
KEY_NAMES = ("id", "key", "code", "uuid", "编号", "代码")


def _expect(kind: str, severity: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {"severity": severity, "generated": True}}


def _key_name(name: str) -> bool:
    lower = name.lower()
    return any(lower == k or lower.endswith(("_" + k, " " + k)) or lower.endswith(k) and k in ("编号", "代码")
               for k in KEY_NAMES)


def key_candidates(profile: dict[str, Any]) -> list[str]:
    """Columns that look like a key (pure): integers, or text named like a key (free text that
    happens to be all distinct is not one), with no nulls and (approximately) all values distinct.
    The first version's validation confirms each exactly; a guess it refutes is dropped."""
    rows = profile.get("row_count") or 0
    out = []
    for col in profile.get("columns", []):
        distinct = col.get("distinct") or 0
        kind = col.get("type")
        if kind not in KEY_TYPES or (kind == "text" and not _key_name(col["name"])):
            continue
        if col.get("nulls") == 0 and rows >= 2 and distinct >= 0.97 * rows:
            out.append(col["name"])
    # A column named like a key first; at most two keys (a compound key is the provider's call).
    out.sort(key=lambda n: not _key_name(n))
    return out[:2]


def _widened(lo: float, hi: float) -> tuple[float, float]:
    span = (hi - lo) or abs(hi) or 1.0
    low, high = lo - RANGE_MARGIN * span, hi + RANGE_MARGIN * span
    if lo >= 0:
        low = max(0.0, low)  # counts and prices stay non-negative
    return low, high


def default_suite(profile: dict[str, Any], keys: list[str], suite_name: str = "mosu-default") -> dict[str, Any]:
    """GX suite JSON generated from a version's profile and its likely key columns (pure)."""
    columns = profile.get("columns", [])
    rows = profile.get("row_count") or 0
    out = [_expect("expect_table_columns_to_match_ordered_list", "blocking", column_list=[c["name"] for c in columns]),
           _expect("expect_table_row_count_to_be_between", "blocking", min_value=1)]
    for col in columns:
        name, kind = col["name"], col.get("type")
        out.append(_expect("expect_column_values_to_be_of_type", "blocking", column=name, type_=kind))
        if name in keys:
            out.append(_expect("expect_column_values_to_not_be_null", "blocking", column=name))
            out.append(_expect("expect_column_values_to_be_unique", "blocking", column=name))
            continue
        if rows and col.get("nulls") == 0:
            out.append(_expect("expect_column_values_to_not_be_null", "warning", column=name))
        lo, hi = col.get("min"), col.get("max")
        if kind in ("int", "float") and isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
            low, high = _widened(float(lo), float(hi))
            if kind == "int":
                low, high = int(low) if low == int(low) else int(low) - 1, int(high) + 1
            out.append(_expect("expect_column_values_to_be_between", "warning", column=name,
                               min_value=low, max_value=high))
        top = col.get("top") or []
        distinct = col.get("distinct") or 0
        if kind in ("text", "bool") and rows >= SET_MIN_ROWS and 0 < distinct <= SET_MAX_VALUES \
                and len(top) >= distinct and sum(t["count"] for t in top) + (col.get("nulls") or 0) >= rows:
            out.append(_expect("expect_column_values_to_be_in_set", "warning", column=name,
                               value_set=sorted(t["value"] for t in top if t["value"] is not None)))
    return {"name": suite_name, "expectations": out, "meta": {"generated_from": "profile"}}


def score(validation: list[dict[str, Any]], profile: dict[str, Any], odd_values: list[dict[str, Any]]) -> dict:
    """A 0–100 quality score and how it was computed (pure).

    Half is validity (the share of expectations met, blocking ones counting double),
    three tenths completeness (the share of cells that are filled) and one fifth
    conformity (the share of values that fit their column's type).
    """
    weights = [(2 if r.get("severity") == "blocking" else 1, bool(r.get("success"))) for r in validation]
    total_weight = sum(w for w, _ in weights)
    validity = sum(w for w, ok in weights if ok) / total_weight if total_weight else 1.0
    rows = profile.get("row_count") or 0
    columns = profile.get("columns", [])
    cells = rows * len(columns)
    nulls = sum(c.get("nulls") or 0 for c in columns)
    completeness = 1 - nulls / cells if cells else 1.0
    odd = sum(o.get("count", 0) for o in odd_values)
    conformity = 1 - odd / cells if cells else 1.0
    value = round(100 * (0.5 * validity + 0.3 * completeness + 0.2 * conformity))
    passed = sum(1 for r in validation if r.get("success"))
    explanation = (f"{value} = 100 × (0.5 × validity {validity:.1%} [{passed} of {len(validation)} expectations met, "
                   f"blocking ones weigh double] + 0.3 × completeness {completeness:.1%} [cells filled] + "
                   f"0.2 × conformity {conformity:.1%} [values that fit their column's type])")
    return {"score": value, "validity": round(validity, 4), "completeness": round(completeness, 4),
            "conformity": round(conformity, 4), "explanation": explanation}
