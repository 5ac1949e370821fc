"""Substring search of user text in SQL (``q`` parameters): one LIKE pattern builder for all.

A caller's ``%`` and ``_`` are escaped so they match themselves: unescaped, ``q=c_rol.pri%@secret``
was a wildcard pattern, and probing character by character recovered what it was matched against
(e-mail addresses, before ``user_list`` stopped matching them for anyone but sysadmins).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

ESCAPE = "\\"


def pattern(text: str) -> str:
    """``%text%`` with the LIKE wildcards and the escape character of ``text`` escaped (pure)."""
    escaped = text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    return f"%{escaped}%"


def contains(column: Any, text: object) -> ColumnElement[bool]:
    """Case-insensitive "``column`` contains ``text``", wildcards in ``text`` taken literally."""
    return column.ilike(pattern(str(text)), escape=ESCAPE)
