"""Type inference that survives odd values (pure).

DuckDB's CSV sniffer types a column as text as soon as one value in its sample
does not parse ("n/a" among ten thousand prices), and fails the whole load
when such a value comes after the sample. Loaders that type everything as
text (CKAN's) push the problem onto every researcher. Mosu instead keeps the
type the column's values agree on, leaves the few odd values empty, and
reports each with its row number so the provider can fix or accept them. A
provider who knows better declares the types in a data dictionary
(``catalog.core.dictionary``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The types tried, narrowest first, for a column the sniffer left as text.
CANDIDATES = ("BIGINT", "DOUBLE", "DATE", "TIMESTAMP", "TIMESTAMPTZ", "BOOLEAN")
ODD_SHARE = 0.01      # at most this share of a sample's values may be odd for the type to hold
MIN_VALUES = 5        # fewer non-empty values than this in the sample: no evidence, keep text
EXAMPLES = 5
VALUE_CHARS = 60


@dataclass(frozen=True)
class SampleStats:
    """What a sample of one text column says: non-empty values, how many parse as each candidate
    type, and how many look like codes whose leading zeros a number would drop."""
    values: int
    parsed: dict[str, int]
    leading_zeros: int = 0


def infer_type(stats: SampleStats) -> str | None:
    """The narrowest candidate type nearly all sampled values parse as, or None to keep text."""
    if stats.values < MIN_VALUES:
        return None
    allowed_odd = max(1, int(stats.values * ODD_SHARE))
    for candidate in CANDIDATES:
        if candidate in ("BIGINT", "DOUBLE") and stats.leading_zeros:
            continue  # postcodes, account numbers: "00123" is not 123
        if stats.values - stats.parsed.get(candidate, 0) <= allowed_odd:
            return candidate
    return None


@dataclass
class OddValues:
    """Values of one column that did not parse as its type, left empty in the table."""
    column: str
    type: str
    count: int
    examples: list[tuple[int, str]] = field(default_factory=list)  # (1-based row, value)

    def as_dict(self) -> dict[str, Any]:
        return {"column": self.column, "type": self.type, "count": self.count,
                "examples": [{"row": row, "value": value} for row, value in self.examples]}

    def message(self) -> str:
        shown = ", ".join(f"row {row} ({value!r})" for row, value in self.examples)
        more = f" and {self.count - len(self.examples):,} more" if self.count > len(self.examples) else ""
        noun = "value" if self.count == 1 else "values"
        return (f"Column {self.column!r}: {self.count:,} {noun} could not be read as {self.type} "
                f"and {'was' if self.count == 1 else 'were'} left empty: {shown}{more}.")
