"""Personal information and open data: which findings still need the provider's acknowledgement.

A dataset open to everyone must not publish e-mail addresses, phone or identity
numbers by accident. When the quality report finds such a column, the version
of a public dataset is held until someone who may edit the dataset acknowledges
the finding (recorded with who and when), and a private dataset with such
findings cannot be made public until then. An acknowledgement covers a column
and kind: later versions with the same findings need no new one.
"""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db.models import PiiAcknowledgement


def pairs(findings: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(str(f["column"]), str(f["kind"])) for f in findings}


def pairs_list(findings: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """The (column, kind) pairs as JSON, sorted: what an acknowledgement records."""
    return [{"column": c, "kind": k} for c, k in sorted(pairs(findings))]


def unacknowledged(findings: list[dict[str, Any]], acknowledged: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings no acknowledgement covers, in report order."""
    covered = pairs(acknowledged)
    return [f for f in findings if (str(f["column"]), str(f["kind"])) not in covered]


def describe(findings: list[dict[str, Any]]) -> str:
    return ", ".join(f"{f['kind']} in column {str(f['column'])[:60]!r} ({f['share']:.0%} of values)"
                     for f in findings[:10])


def hold_message(findings: list[dict[str, Any]]) -> str:
    """Why a version of a public dataset is held, and what the provider can do."""
    return ("Personal information found: " + describe(findings) + ". This dataset is public, so the version is "
            "held: acknowledge the findings (quality_pii_acknowledge) to publish it, or make the dataset private.")


def pending(s: Session, resource_id: str, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings no acknowledgement of the resource covers (asked by the worker before it
    publishes, and by a dataset about to go public)."""
    if not findings:
        return []
    acks = s.scalars(select(PiiAcknowledgement.findings).where(PiiAcknowledgement.resource_id == resource_id))
    return unacknowledged(findings, [f for found in acks for f in found])
