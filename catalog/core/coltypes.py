"""Column types: one table from DuckDB's, Arrow's and a provider's names to CKAN's (pure).

A column's type is spoken four ways: DuckDB names it when the ingest converts and the
datastore queries (``BIGINT``), Arrow when the schema of a version is stored (``int64``),
CKAN's DataStore API when it is shown (``int``), and the provider when a data dictionary
declares it (``integer``). The profile, ``datastore_search`` fields, ``datastore_info``, the
quality suites, the personal-information scan and the data dictionary all read this one
table, so a column's type cannot be ``int`` in one answer and ``text`` in another.
"""
from __future__ import annotations

from dataclasses import dataclass

NUMBER, TEMPORAL, TEXT, BOOL, NESTED, OTHER = "number", "temporal", "text", "bool", "nested", "other"
"""How the profile treats a column: the statistics it computes depend on this kind."""


@dataclass(frozen=True)
class ColumnType:
    """One row: a CKAN type and every other name for it."""

    ckan: str                 # CKAN DataStore's name, as the API shows it
    kind: str                 # NUMBER, TEMPORAL, TEXT, BOOL, NESTED or OTHER
    duckdb: tuple[str, ...]   # DuckDB base type names (DESCRIBE's spelling and its aliases)
    arrow: tuple[str, ...] = ()   # prefixes of Arrow's type strings (``str(pa.int64())``)
    declares: str | None = None   # the DuckDB type a data dictionary's word for it declares
    words: tuple[str, ...] = ()   # the provider's words for it in a data dictionary
    said: str | None = None       # how a message to the provider names it
    pii: bool = False             # may hold personal identifiers (text, or integers of 11+ digits)


TABLE: tuple[ColumnType, ...] = (
    ColumnType("int", NUMBER, ("TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT", "UINTEGER",
                               "INT1", "INT2", "INT4", "INT", "SHORT", "SIGNED", "INT16", "INT32",
                               "UINT8", "UINT16", "UINT32"), ("int", "uint"), said="integer"),
    # at least 11 digits: a phone, card or identity number fits (INTEGER tops out at 10)
    ColumnType("int", NUMBER, ("BIGINT", "UBIGINT", "HUGEINT", "UHUGEINT", "INT8", "LONG", "INT64", "UINT64",
                               "INT128", "UINT128"), (), "BIGINT", ("integer", "int", "bigint"), "integer",
               pii=True),
    ColumnType("float", NUMBER, ("FLOAT", "DOUBLE", "REAL", "FLOAT4", "FLOAT8"), ("double", "float", "halffloat"),
               "DOUBLE", ("float", "number", "double"), "float"),
    ColumnType("numeric", NUMBER, ("DECIMAL", "NUMERIC"), ("decimal",)),
    ColumnType("bool", BOOL, ("BOOLEAN", "BOOL", "LOGICAL"), ("bool",), "BOOLEAN", ("boolean", "bool"), "boolean"),
    ColumnType("date", TEMPORAL, ("DATE",), ("date",), "DATE", ("date",), "date"),
    ColumnType("timestamp", TEMPORAL, ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATETIME"),
               ("timestamp",), "TIMESTAMP", ("timestamp", "datetime"), "timestamp"),
    ColumnType("timestamptz", TEMPORAL, ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"), (), "TIMESTAMPTZ",
               ("timestamptz", "timestamp with time zone"), "timestamp with time zone"),
    ColumnType("time", OTHER, ("TIME", "TIME WITH TIME ZONE", "TIMETZ"), ("time",)),
    ColumnType("text", TEXT, ("VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR"), ("string", "large_string"),
               "VARCHAR", ("string", "text"), "text", pii=True),
    ColumnType("text", OTHER, ("ENUM",), pii=True),
    ColumnType("json", NESTED, ("STRUCT", "MAP", "UNION", "LIST"), ("struct", "list", "large_list", "map")),
)

_OTHER_TYPE = ColumnType("text", OTHER, ())
"""Anything else (UUID, BLOB, INTERVAL, BIT...): shown as text; distinct counts and footer stats only."""

CKAN_TYPES: tuple[str, ...] = tuple(dict.fromkeys(row.ckan for row in TABLE))
"""The CKAN type names, in the table's order."""

DECLARED: dict[str, str] = {word: row.declares for row in TABLE if row.declares for word in row.words}
"""A data dictionary's word -> the DuckDB type it declares (``decimal(p,s)`` is parsed apart)."""

_BY_DUCKDB = {name: row for row in TABLE for name in row.duckdb}


def base_name(duckdb_type: str) -> str:
    """A DuckDB type's name without its parameters: ``DECIMAL(10,2)`` -> ``DECIMAL``."""
    return " ".join(duckdb_type.split("(")[0].upper().split())


def of_duckdb(duckdb_type: str) -> ColumnType:
    """The row of a DuckDB type name (``INTEGER[]``, ``STRUCT(...)`` are nested)."""
    t = duckdb_type.strip().upper()
    if t.endswith("]"):
        return TABLE[-1]
    return _BY_DUCKDB.get(base_name(t), _OTHER_TYPE)


def ckan_type(duckdb_type: str) -> str:
    """The CKAN DataStore type name of a DuckDB column type."""
    return of_duckdb(duckdb_type).ckan


def is_duckdb_type(name: str) -> bool:
    """Whether ``name`` is a DuckDB type this table knows (``DECIMAL(10,2)``, ``INTEGER[]``)."""
    return of_duckdb(name) is not _OTHER_TYPE


def of_arrow(arrow_type: str) -> ColumnType:
    """The row of an Arrow type string as a version's schema stores it (``int64``,
    ``timestamp[us, tz=UTC]``, ``decimal128(10, 2)``)."""
    t = arrow_type.strip().lower()
    if t.startswith("timestamp"):
        return next(row for row in TABLE if row.ckan == ("timestamptz" if "tz=" in t else "timestamp"))
    return next((row for row in TABLE if row.arrow and t.startswith(row.arrow)), _OTHER_TYPE)


def said(duckdb_type: str) -> str:
    """How a message to a provider names a DuckDB type: ``BIGINT`` is an integer, ``VARCHAR`` text."""
    return of_duckdb(duckdb_type).said or duckdb_type.lower()
