"""Check a researcher's SQL before it runs: one SELECT over resource tables, nothing else.

This is the first line of defence; the sandbox of record is :class:`catalog.query.QueryService`
(external access off, configuration locked, a fresh cursor that sees only the registered
tables, time/memory/row limits). The checks here refuse early, with a message that says
why, what the sandbox would refuse with an obscure error or what it would not refuse at all:

- Free table names: DuckDB's Python client can resolve an unknown table name to a Python
  variable of the calling frame (the sandbox also turns that off), and a bare name could
  reach a built-in view; so every base-table name must be a resource id or a CTE of the query.
- System catalogs (``duckdb_settings()``, ``information_schema``...) describe the server.
- Table functions other than a few generators (``range``, ``generate_series``, ``unnest``)
  read files, run nested SQL (``query``) or describe the server. The generators compute
  from their arguments only; their cost is bounded by the time and row limits.
- Scalar functions that read the environment or configuration, sleep (a sleep is not
  interruptible) or write the log.

The query is parsed by DuckDB's own parser (``json_serialize_sql``), never by pattern
matching, so what is checked is exactly what DuckDB will run.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any, Iterator

import duckdb

from catalog.errors import QueryRejected

MAX_SQL_CHARS = 20_000
# Generators: they read nothing but their arguments; their cost is bounded by the limits.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
_ALLOWED_TEXT = "/".join(sorted(ALLOWED_TABLE_FUNCTIONS))
# Scalars that leak the server's environment or configuration, block a thread (sleeps
# ignore interrupts), or have a side effect (the log).
REFUSED_FUNCTIONS = frozenset({
    "getenv", "current_setting", "getvariable", "version", "current_database", "current_catalog",
    "current_schema", "current_schemas", "current_user", "session_user", "user", "current_role",
    "current_query", "current_connection_id", "current_query_id", "current_transaction_id", "txid_current",
    "in_search_path", "has_database_privilege", "has_schema_privilege", "has_table_privilege",
    "write_log", "json_execute_serialized_sql", "pg_my_temp_schema",
    "pg_is_other_temp_schema", "pg_conversion_is_visible",
})
SLEEPS = frozenset({"sleep_ms", "pg_sleep", "sleep"})
# Scalars whose output size is one of their arguments (None: any numeric argument, as for
# range(start, stop)): the size must be a literal within the cap; a computed one is refused.
# A string or list built by one call cannot be interrupted and escapes DuckDB's memory limit;
# as table functions, range and generate_series stream rows and the time and row limits bound them.
SIZED_FUNCTIONS: dict[str, int | None] = {"repeat": 1, "lpad": 1, "rpad": 1, "range": None,
                                          "generate_series": None, "list_resize": 1, "array_resize": 1}
MAX_LITERAL_SIZE = 1_000_000
SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "temp", "main"})
_SYSTEM_PREFIXES = ("duckdb_", "pg_", "sqlite_", "pragma_", "information_schema")
# Table references DuckDB parses but a researcher's SELECT does not need (SHOW/DESCRIBE/
# SUMMARIZE, bound or internal forms).
_REFUSED_REFS = {"SHOW_REF": "DESCRIBE, SHOW and SUMMARIZE are not available",
                 "COLUMN_DATA": "this table reference is not allowed",
                 "DELIM_GET": "this table reference is not allowed",
                 "BOUND_TABLE_REF": "this table reference is not allowed",
                 "INVALID": "this table reference is not allowed"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # on a name, not on SQL
_local = threading.local()


@dataclass(frozen=True)
class CheckedQuery:
    """A query that passed the checks, and the resource ids it reads (lower case, in order)."""
    sql: str
    resource_ids: list[str]


def _parser() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB per thread, used only to parse (it never runs the query)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect(":memory:")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        _local.con = con
    return con


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def is_resource_id(name: str) -> bool:
    """Whether a table name has the form of a resource id (a UUID, any case)."""
    return _UUID.fullmatch(name.lower()) is not None


def _statement(sql: str) -> None:
    """Exactly one statement, and a SELECT."""
    try:
        statements = _parser().extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRejected(f"The query could not be parsed: {_first_line(exc)} (a resource is a table "
                            "named by its id in double quotes: SELECT * FROM \"<resource id>\")") from None
    if len(statements) != 1:
        raise QueryRejected(f"Send only one SELECT statement (got {len(statements)})")
    kind = statements[0].type.name
    if kind != "SELECT":
        raise QueryRejected(f"Only one SELECT statement is allowed ({kind} statements are not)")


def _tree(sql: str) -> dict[str, Any]:
    """DuckDB's own parse tree of the statement, as JSON."""
    try:
        raw = _parser().execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0]
        tree = json.loads(raw)
    except RecursionError:
        raise QueryRejected("The query is nested too deeply to be checked") from None
    except duckdb.Error as exc:
        raise QueryRejected(f"The query could not be parsed: {_first_line(exc)}") from None
    if tree.get("error"):
        raise QueryRejected(f"Only one plain SELECT statement is allowed: {tree.get('error_message', '')}")
    return tree


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every object in the tree, iteratively (a deep query must not overflow Python's stack)."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))  # reversed: objects come out in query order
        elif isinstance(item, list):
            stack.extend(reversed(item))


def _cte_names(tree: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for node in _nodes(tree):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            names.update(str(entry.get("key", "")).lower() for entry in cte_map.get("map", []))
    return names


def _literal_number(expr: Any) -> float | None:
    """The value of a numeric literal, possibly cast (``1e9::BIGINT``); None for anything else."""
    while isinstance(expr, dict) and expr.get("class") == "CAST":
        expr = expr.get("child")
    if isinstance(expr, dict) and expr.get("class") == "CONSTANT":
        literal = expr.get("value") or expr.get("literal") or {}
        text = literal.get("text") if isinstance(literal, dict) else None
        try:
            return float(text) if text is not None else None
        except ValueError:
            return None
    return None


def _check_base_table(node: dict[str, Any], ctes: set[str], found: list[str]) -> None:
    name = str(node.get("table_name", ""))
    schema = str(node.get("schema_name", "")).lower()
    catalog = str(node.get("catalog_name", "")).lower()
    lower = name.lower()
    if any(mark in name for mark in ("/", "\\", "://", "~")) or "." in name or lower.startswith(("s3:", "http")):
        raise QueryRejected(f"Reading files is not allowed: \"{name}\" is not a table (tables are "
                            "resource ids)")
    if schema or catalog:
        qualified = ".".join(p for p in (catalog, schema, name) if p)
        if schema in SYSTEM_SCHEMAS or catalog in SYSTEM_SCHEMAS:
            raise QueryRejected(f"The system catalog {qualified} is not available")
        raise QueryRejected(f"Unknown table {qualified}: a table is a resource id, unqualified")
    if is_resource_id(lower):
        if lower not in found:
            found.append(lower)
        return
    if lower in ctes:
        return
    if lower.startswith(_SYSTEM_PREFIXES) or lower in {"tables", "columns", "schemata", "views"}:
        raise QueryRejected(f"The system catalog {name} is not available")
    raise QueryRejected(f"Unknown table \"{name}\": tables are named by resource id, "
                        "as in SELECT * FROM \"<resource id>\"")


def _check_table_function(node: dict[str, Any]) -> None:
    function = node.get("function") or {}
    name = str(function.get("function_name", "")).lower()
    if function.get("schema") or function.get("catalog"):
        name = f"{function.get('catalog') or ''}.{function.get('schema') or ''}.{name}".strip(".")
    if name in ALLOWED_TABLE_FUNCTIONS:
        return
    if name.startswith(("read_", "parquet_", "glob", "sniff_", "iceberg", "delta", "sqlite_scan", "postgres_")):
        raise QueryRejected(f"Reading files is not allowed: {name}() is refused")
    if name.startswith(("duckdb_", "pragma_", "pg_", "which_secret")) or name in {"information_schema"}:
        raise QueryRejected(f"The system catalog {name}() is not available")
    raise QueryRejected(f"Table functions other than {_ALLOWED_TEXT} are not allowed ({name}() is refused)")


def _check_function(node: dict[str, Any], scalar: bool) -> None:
    name = str(node.get("function_name", "")).lower()
    if name in SLEEPS:
        raise QueryRejected(f"The function {name}() is not available: a sleep cannot be interrupted")
    if name in REFUSED_FUNCTIONS or name.startswith(("duckdb_", "pragma_")):
        raise QueryRejected(f"The function {name}() is not available: it reads the server's environment, "
                            "configuration or state, or writes its log")
    if not scalar or name not in SIZED_FUNCTIONS:
        return
    position = SIZED_FUNCTIONS[name]
    args = [a.get("expression") if isinstance(a, dict) and "expression" in a else a
            for a in node.get("arguments") or node.get("children") or []]
    chosen = args if position is None else args[position:position + 1]
    for arg in chosen:
        size = _literal_number(arg)
        if size is None:  # computed: its value is only known when the call has already built it
            raise QueryRejected(f"{name}() needs its size as a literal number (at most {MAX_LITERAL_SIZE:,}), "
                                "not a computed value")
        if abs(size) > MAX_LITERAL_SIZE:
            raise QueryRejected(f"{name}() may build at most {MAX_LITERAL_SIZE:,} characters or elements "
                                "in one value")


def check(sql: Any) -> CheckedQuery:
    """Refuse anything but one SELECT over resource ids, allowed generators and safe functions.

    Raises :class:`QueryRejected` (HTTP 400) naming the reason; returns the resource ids read
    (authorization is the caller's job, by id, after this).
    """
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRejected("Missing value: sql must be a SELECT statement")
    if len(sql) > MAX_SQL_CHARS:
        raise QueryRejected(f"The query is longer than {MAX_SQL_CHARS:,} characters")
    if "\x00" in sql:
        raise QueryRejected("The query contains a NUL character")
    _statement(sql)
    tree = _tree(sql)
    ctes = _cte_names(tree)
    found: list[str] = []
    table_functions: set[int] = set()  # the call nodes of table functions (not scalars)
    for node in _nodes(tree):
        kind = node.get("type")
        if "class" not in node and kind in _REFUSED_REFS:
            raise QueryRejected(_REFUSED_REFS[kind])
        if kind == "BASE_TABLE" and "table_name" in node:
            _check_base_table(node, ctes, found)
        elif kind == "TABLE_FUNCTION" and "function" in node:
            _check_table_function(node)
            table_functions.add(id(node["function"]))
        elif node.get("class") == "FUNCTION":
            _check_function(node, scalar=id(node) not in table_functions)
    return CheckedQuery(sql, found)
