"""SQL text built by Mosu itself: quoted identifiers, string literals, an error's first line (pure).

Every SQL string Mosu writes (the datastore's searches, the ingest's casts, the quality
scans and profile) names columns that providers chose, so a name is always quoted, never
pasted; values go in as parameters where the statement allows it and as :func:`literal`
where it does not (a file path in ``read_parquet``, an edge of a histogram). DuckDB's and
PostgreSQL's rules are the same here: double quotes around an identifier, single quotes
around text, each doubled inside.
"""
from __future__ import annotations

MESSAGE_CHARS = 300
"""How much of an error's first line is kept: DuckDB echoes the offending input, which may be a
megabyte-long line or a 20,000-character query."""


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier: any text, a double quote inside doubled."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(value: object) -> str:
    """``value``'s text as a SQL string literal, a single quote inside doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def first_line(exc: BaseException, limit: int = MESSAGE_CHARS) -> str:
    """The first line of an error's message, at most ``limit`` characters (the class name when
    the message is empty): what a user is shown of a database's error."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
