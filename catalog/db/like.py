"""Substring search of user text in SQL (``q`` parameters): one LIKE pattern builder for all.

A caller's ``%`` and ``_`` are escaped so they match themselves: unescaped, ``q=c_rol.pri%@secret``
was a wildcard pattern, and probing character by character recovered what it was matched against
(e-mail addresses, before ``user_list`` stopped matching them for anyone but sysadmins).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from catalog.core.errors import ValidationError

ESCAPE = "\\"
MAX_LENGTH = 1000
"""Longest search text: SQLite refuses LIKE patterns over 50,000 bytes ("LIKE or GLOB pattern too
complex", a 500 for a 200,000-character ``q``), and no name or title is longer than this."""


def pattern(text: str) -> str:
    """``%text%`` with the LIKE wildcards and the escape character of ``text`` escaped (pure)."""
    escaped = text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    return f"%{escaped}%"


def contains(column: Any, text: object) -> ColumnElement[bool]:
    """Case-insensitive "``column`` contains ``text``", wildcards in ``text`` taken literally;
    text longer than :data:`MAX_LENGTH` is a Validation Error on ``q``."""
    if len(str(text)) > MAX_LENGTH:
        raise ValidationError({"q": [f"Must be at most {MAX_LENGTH} characters"]})
    return column.ilike(pattern(str(text)), escape=ESCAPE)
