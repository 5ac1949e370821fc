"""The audit vocabulary: one typed definition per event name (datasette's ``events.py`` pattern).

Placeholder of the foundation commit: the definitions are filled in by the event-coverage change.
"""
from __future__ import annotations

from typing import Any


def check(name: str, detail: dict[str, Any]) -> None:
    """Refuse an event name or a detail field the vocabulary does not define (a programming error)."""
