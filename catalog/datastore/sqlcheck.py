"""Check a researcher's SQL before it runs: one SELECT over resource tables, nothing else.

This is the first line of defence; the sandbox of record is :class:`catalog.datastore.sandbox.QueryService`
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
- Values built by one call: ``repeat``/``lpad``/``rpad``/``list_resize``/scalar ``range`` sizes and
  ``printf``/``format`` widths must be literal numbers, and together (nested calls multiply) at most
  :data:`MAX_LITERAL_SIZE`. DuckDB computes 2,048 rows at a time and does not count these strings
  against its memory limit (``repeat('x', 1000000)`` over 500 rows took 1.1 GB against a 256 MB
  limit), so a value's size times 2,048 is memory no interrupt or limit can stop. The same for
  ``bitstring``, ``to_base``, ``equi_width_bins`` and the N of top-N aggregates; values lengthened by
  ``replace``/``regexp_replace``/``hex``/``bin``/``to_json``... count their factor (see
  :data:`GROWTH_FACTORS`, :data:`MAX_GROWTH`); loops that can double a value at each step (``WITH
  RECURSIVE``, ``list_reduce``) and sized calls inside lambdas (once per element) are refused.
- Not closed here (it needs a query process with an OS memory limit): a value collected from many
  rows (``string_agg``, ``list``, ``array_agg``) or a large cell, copied per row of a join
  (``SELECT max(length(s || range::VARCHAR)) FROM (SELECT string_agg('x', '') s FROM range(1000000)),
  range(20000)`` peaked at 2.2 GB; with ``list(range)`` and ``list_append`` at 17 GB).
- Names resolve per scope, as DuckDB binds them: a CTE is visible in its own query and its later
  siblings' bodies, never in its own body nor outside its query, so a CTE named ``pg_settings`` does
  not let any part of the query read the built-in view of that name.

The query is parsed by DuckDB's own parser (``json_serialize_sql``), never by pattern
matching, so what is checked is exactly what DuckDB will run.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from catalog.core.errors import QueryRejected
from catalog.core.sqltext import first_line

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
SIZED_FUNCTIONS: dict[str, int | None] = {
    "repeat": 1, "lpad": 1, "rpad": 1, "range": None, "generate_series": None, "list_resize": 1, "array_resize": 1,
    "bitstring": 1, "to_base": 2, "equi_width_bins": 2,
    # aggregates that keep the N largest or smallest as a list: N is the list's length
    "max": 1, "min": 1, "arg_max": 2, "arg_min": 2, "argmax": 2, "argmin": 2, "max_by": 2, "min_by": 2,
    "arg_max_null": 2, "arg_min_null": 2, "arg_max_nulls_last": 2, "arg_min_nulls_last": 2, "lttb": 2,
    "approx_top_k": 1, "reservoir_quantile": 2}
# Scalars whose output is up to a fixed multiple of their first argument's length: hex writes two
# characters a byte, bin eight, to_json six for a control character (\u0001). Nested calls multiply:
# hex() ten times over 1,000 characters is a million (2.3 GB at 2,048 rows).
GROWTH_FACTORS = {"hex": 2, "to_hex": 2, "bin": 8, "to_binary": 8, "to_base64": 2, "base64": 2,
                  "url_encode": 3, "to_json": 6, "json_quote": 6}
# replace(text, from, to) and regexp_replace(text, pattern, to): each match of ``from`` becomes ``to``,
# so the text can grow len(to)/len(from)-fold (six nested replace('x', 'x', 'xxxxxxxxxx') are a million
# characters); a pattern can also match the empty string between characters, and a backreference
# copies a match, so for regexp_replace it is len(to) + 1. The replacement must be a literal.
REPLACERS = frozenset({"replace", "regexp_replace"})
MAX_GROWTH = 100
"""How many times longer a value from the data may be made by the growth functions and replacements
above, nested calls multiplying (``replace(x, '&', '&amp;')`` is 5). A value built from literals is
held to :data:`MAX_LITERAL_SIZE` instead."""
# Loops that may double a value at every step, from a query of a few characters: a fold
# (list_reduce(l, lambda a, b: a || a) over 20 elements is a million characters), and a bitstring
# sized by its min and max arguments.
LOOPS = {"list_reduce": "a fold can double its value at every element",
         "array_reduce": "a fold can double its value at every element",
         "reduce": "a fold can double its value at every element",
         "bitstring_agg": "its size is the distance between its min and max arguments"}
# Scalars whose output size is set by widths and precisions inside their format string (printf's
# ``%0100000000d``, format's ``{:>100000000}``): the format must be a literal and its widths are sizes.
FORMAT_FUNCTIONS = {"printf": "printf", "format": "fmt"}
MAX_LITERAL_SIZE = 10_000
"""The characters or elements one query may build with the sized and format functions, all calls
together: 2,048 rows of such values are at most ~20 MB, which DuckDB's memory limit does not see
(at 100,000, a result stopped at 128 MiB had peaked at 900 MB)."""
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
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckedQuery:
    """A query that passed the checks, and the resource ids it reads (lower case, in order).
    ``normalized``: DuckDB's parse tree of it without source positions (the same for queries that
    differ only in whitespace, comments or the case of keywords), or None when the query may answer
    differently each time it runs (random, now, a sample: see :func:`_repeatable`), so its answer
    may not be reused."""
    sql: str
    resource_ids: list[str]
    normalized: str | None = None


_TIME_OF_CALL = frozenset({
    "now", "today", "transaction_timestamp", "get_current_time", "get_current_timestamp", "current_date",
    "current_time", "current_timestamp", "current_localtime", "current_localtimestamp", "localtime",
    "localtimestamp", "txid_current", "current_query", "current_query_id", "current_transaction_id"})
"""Functions whose value is the moment (or the statement) of the call: DuckDB marks them consistent
within a query, as it marks ``+`` (whose timestamptz form reads the time zone setting, constant here)."""
_SPECIAL_NAMES = frozenset({"current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
                            "current_user", "session_user", "user", "current_role", "current_catalog",
                            "current_schema"})
"""Bare words the parser leaves as column references that bind to a time-of-call value when the
tables have no such column."""


def _volatile() -> frozenset[str]:
    """Names of the functions DuckDB marks volatile (a new value on every call: random, uuid, ...),
    from DuckDB itself so a newer version's are included, and the time-of-call ones."""
    names = getattr(_local, "volatile", None)
    if names is None:
        rows = _parser().execute("SELECT DISTINCT lower(function_name) FROM duckdb_functions() "
                                 "WHERE stability = 'VOLATILE'").fetchall()
        names = _local.volatile = frozenset(r[0] for r in rows) | _TIME_OF_CALL
    return names


def _repeatable(tree: Any) -> bool:
    """Whether the parse tree's query answers the same every time over the same tables: no volatile
    or time-of-call function, no bare time-of-call word, and no sample (random rows)."""
    volatile = _volatile()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("class") == "FUNCTION" and str(node.get("function_name", "")).lower() in volatile:
            return False
        names = node.get("column_names")
        if node.get("class") == "COLUMN_REF" and isinstance(names, list) and len(names) == 1 \
                and str(names[0]).lower() in _SPECIAL_NAMES:
            return False
        if node.get("sample") is not None:
            return False
        stack.extend(node.values())
    return True


def _without_positions(tree: Any) -> Any:
    """The parse tree without where each part was in the text (``query_location``), which is all that
    whitespace and comments change in it (pure)."""
    if isinstance(tree, dict):
        return {k: _without_positions(v) for k, v in tree.items() if not k.startswith("query_location")}
    if isinstance(tree, list):
        return [_without_positions(v) for v in tree]
    return tree


def _parser() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB per thread, used only to parse (it never runs the query)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect(":memory:")
        con.execute("SET enable_external_access = false")
        # For columns_read: a filter stays above the scan that feeds it (so the scan lists the columns
        # it filters on), and empty tables' statistics do not fold a query away.
        con.execute("SET disabled_optimizers = 'filter_pushdown,statistics_propagation'")
        con.execute("SET lock_configuration = true")
        _local.con = con
    return con


def is_resource_id(name: str) -> bool:
    """Whether a table name has the form of a resource id (a UUID, any case)."""
    return _UUID.fullmatch(name.lower()) is not None


def _statement(sql: str) -> None:
    """Exactly one statement, and a SELECT."""
    try:
        statements = _parser().extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRejected(f"The query could not be parsed: {first_line(exc)} (a resource is a table "
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
        raise QueryRejected(f"The query could not be parsed: {first_line(exc)}") from None
    if tree.get("error"):
        raise QueryRejected(f"Only one plain SELECT statement is allowed: {tree.get('error_message', '')}")
    return tree


def _scoped_nodes(tree: Any) -> Iterator[tuple[dict[str, Any], frozenset[str]]]:
    """Every object in the tree, in query order and iteratively (a deep query must not overflow
    Python's stack), with the CTE names visible where it is.

    A query node's ``cte_map`` names are visible in that node and everything under it. The body of
    its i-th CTE sees only the names *before* its own: DuckDB binds a CTE's body without the CTE
    itself, so in ``WITH pg_settings AS (SELECT * FROM pg_settings)`` the inner name is the built-in
    view (also with ``MATERIALIZED``, and with ``RECURSIVE`` when the body is not a ``UNION``), and
    a later sibling is not defined yet. Only the recursive part (``right``) of a recursive CTE
    (``RECURSIVE_CTE_NODE``) sees its own name; its anchor (``left``) does not.
    """
    stack: list[tuple[Any, frozenset[str]]] = [(tree, frozenset())]
    while stack:
        item, scope = stack.pop()
        if isinstance(item, list):
            stack.extend((child, scope) for child in reversed(item))
            continue
        if not isinstance(item, dict):
            continue
        yield item, scope
        entries = item.get("cte_map", {}).get("map", []) if isinstance(item.get("cte_map"), dict) else []
        names = [str(entry.get("key", "")).lower() for entry in entries if isinstance(entry, dict)]
        inner = scope.union(names)
        children: list[tuple[Any, frozenset[str]]] = []
        for key, value in item.items():
            if key == "cte_map" and names:
                children.extend((entry, scope.union(names[:i])) for i, entry in enumerate(entries))
            elif key == "right" and item.get("type") == "RECURSIVE_CTE_NODE":
                children.append((value, inner | {str(item.get("cte_name", "")).lower()}))
            else:
                children.append((value, inner))
        stack.extend(reversed(children))


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


def _check_base_table(node: dict[str, Any], ctes: frozenset[str], found: list[str]) -> None:
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


_PRINTF_SPEC = re.compile(r"%(%|[^a-zA-Z%]*)")


def _fmt_fields(fmt: str) -> list[str]:
    """The replacement fields of a format-style string, ``{{``/``}}`` escapes skipped (pure)."""
    fields, i = [], 0
    while i < len(fmt):
        if fmt.startswith(("{{", "}}"), i):
            i += 2
        elif fmt[i] == "{":
            depth, j = 1, i + 1
            while j < len(fmt) and depth:
                depth += {"{": 1, "}": -1}.get(fmt[j], 0)
                j += 1
            fields.append(fmt[i + 1:j - 1] if not depth else fmt[i + 1:])
            i = j
        else:
            i += 1
    return fields


def _format_widths(name: str, fmt: str) -> list[int]:
    """The widths and precisions written in a printf- or format-style string (pure); a width taken
    from an argument (``%*d``, ``{:{}}``) is refused, since its size is computed."""
    if FORMAT_FUNCTIONS[name] == "printf":
        bodies = [b for b in _PRINTF_SPEC.findall(fmt) if b != "%"]
        computed = any("*" in b for b in bodies)
    else:
        bodies = _fmt_fields(fmt)
        computed = any("{" in b for b in bodies)
    if computed:
        raise QueryRejected(f"{name}() needs its widths and precisions written as literal numbers "
                            f"(at most {MAX_LITERAL_SIZE:,}), not taken from an argument")
    return [int(d) for body in bodies for d in re.findall(r"\d+", body)]


def _arguments(node: dict[str, Any]) -> list[Any]:
    return [a.get("expression") if isinstance(a, dict) and "expression" in a else a
            for a in node.get("arguments") or node.get("children") or []]


def _literal_text(expr: Any) -> str | None:
    """The text of a string literal, possibly cast; None for anything else."""
    while isinstance(expr, dict) and expr.get("class") == "CAST":
        expr = expr.get("child")
    if isinstance(expr, dict) and expr.get("class") == "CONSTANT":
        literal = expr.get("value") or expr.get("literal") or {}
        if isinstance(literal, dict) and literal.get("kind") in ("STRING", "VARCHAR") and "text" in literal:
            return str(literal["text"])
    return None


_CONSTANT_CLASSES = frozenset({"CONSTANT", "CAST", "FUNCTION", "OPERATOR", "CONJUNCTION", "COMPARISON", "CASE"})


def _constant(expr: Any) -> bool:
    """Whether an expression is computed from literals only (no column, subquery, lambda or
    parameter anywhere in it), so that its size is bounded by the query's own text."""
    stack = [expr]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "class" in item and item["class"] not in _CONSTANT_CLASSES:
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _literal_chars(expr: Any) -> int:
    """The characters of all string literals in an expression (what a constant one can hold at most,
    besides what sized calls in it build)."""
    total, stack = 0, [expr]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            text = _literal_text(item) if item.get("class") == "CONSTANT" else None
            total += len(text or "")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


def growth_factor(node: dict[str, Any]) -> int:
    """How many times longer than its first argument a growth or replacement call's value may be
    (1: no growth); refuses a replacement that is not a literal string, whose length is unknown."""
    name = str(node.get("function_name", "")).lower()
    if name in GROWTH_FACTORS:
        return GROWTH_FACTORS[name]
    args = _arguments(node)
    if name not in REPLACERS or len(args) < 3:
        return 1
    to = _literal_text(args[2])
    if to is None:
        raise QueryRejected(f"{name}() needs its replacement as a literal string: a computed one may be longer "
                            "than what it replaces, and every match multiplies the text")
    if name == "regexp_replace":
        return len(to) + 1 if to else 1
    found = _literal_text(args[1])
    return max(1, -(-len(to) // max(1, len(found or ""))))


def _own_size(node: dict[str, Any], weight: dict[int, int]) -> int:
    """Characters or elements one sized or format call builds, given the sizes built by its
    arguments (``weight``, by argument id): nested calls multiply, as ``repeat(repeat('x', 1000), 1000)``
    builds a million."""
    name = str(node.get("function_name", "")).lower()
    args = _arguments(node)
    inner = sum(weight.get(id(a), 0) for a in args)
    if name in FORMAT_FUNCTIONS:
        fmt = _literal_text(args[0]) if args else None
        return sum(_format_widths(name, fmt or "")) + len(fmt or "") + inner
    position = SIZED_FUNCTIONS[name]
    sizes = [abs(_literal_number(a) or 0) for a in (args if position is None else args[position:position + 1])]
    size = int(max(sizes, default=0))
    if name == "repeat" and args:
        base = weight.get(id(args[0]), 0) or len(_literal_text(args[0]) or "x")
        return size * max(1, base) + (inner - weight.get(id(args[0]), 0))
    return size + inner


def _built_size(tree: Any, table_functions: set[int]) -> tuple[int, int]:
    """What the query's sized and format calls build together, and the largest factor by which its
    growth functions and replacements lengthen a value from the data (iteratively, children first)."""
    order: list[Any] = []
    stack = [tree]
    while stack:
        item = stack.pop()
        order.append(item)
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    weight: dict[int, int] = {}
    gain: dict[int, int] = {}
    for item in reversed(order):
        children = [c for c in (item.values() if isinstance(item, dict) else item if isinstance(item, list) else ())
                    if isinstance(c, (dict, list))]
        grown = max((gain.get(id(c), 1) for c in children), default=1)
        name = str(item.get("function_name", "")).lower() if isinstance(item, dict) else ""
        is_call = isinstance(item, dict) and item.get("class") == "FUNCTION" and id(item) not in table_functions
        factor = growth_factor(item) if is_call and (name in GROWTH_FACTORS or name in REPLACERS) else 1
        if is_call and (name in SIZED_FUNCTIONS or name in FORMAT_FUNCTIONS):
            total = _own_size(item, weight)
        elif factor > 1:
            args = _arguments(item)
            rest = sum(weight.get(id(a), 0) for a in args[1:])
            if _constant(args[0]):  # built from literals: its size is known, and held to MAX_LITERAL_SIZE
                total = max(1, weight.get(id(args[0]), 0) + _literal_chars(args[0])) * factor + rest
            else:  # from the data: its size is not known here, so the factor itself is held to MAX_GROWTH
                total = weight.get(id(args[0]), 0) * factor + rest
                grown = gain.get(id(args[0]), 1) * factor
        else:
            total = sum(weight.get(id(c), 0) for c in children)
        if total:
            weight[id(item)] = min(total, 10**18)
        if grown > 1:
            gain[id(item)] = min(grown, 10**18)
    return weight.get(id(tree), 0), max(gain.values(), default=1)


def _check_lambda(node: dict[str, Any]) -> None:
    """A lambda runs once per element of a list of any length: what a sized, format or growth call
    builds inside it is multiplied by that length (``list_transform(range(100), lambda x: repeat('x',
    9000))`` is 900,000 characters a row), and a lambda inside it multiplies lengths."""
    stack = [node.get("expr")]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        if not isinstance(item, dict):
            continue
        name = str(item.get("function_name", "")).lower()
        if item.get("class") == "LAMBDA" or (item.get("class") == "FUNCTION" and (
                name in SIZED_FUNCTIONS or name in FORMAT_FUNCTIONS
                or ((name in GROWTH_FACTORS or name in REPLACERS) and growth_factor(item) > 1))):
            what = "a lambda" if item.get("class") == "LAMBDA" else f"{name}()"
            raise QueryRejected(f"{what} is not allowed inside a lambda: a lambda runs once per element of a list "
                                "of any length, which multiplies what it builds (use it outside the lambda)")
        stack.extend(item.values())


def _check_function(node: dict[str, Any], scalar: bool) -> None:
    name = str(node.get("function_name", "")).lower()
    if name in SLEEPS:
        raise QueryRejected(f"The function {name}() is not available: a sleep cannot be interrupted")
    if name in LOOPS:
        raise QueryRejected(f"The function {name}() is not available: {LOOPS[name]}, which builds gigabytes "
                            "from a short query before any limit applies")
    if name in REFUSED_FUNCTIONS or name.startswith(("duckdb_", "pragma_")):
        raise QueryRejected(f"The function {name}() is not available: it reads the server's environment, "
                            "configuration or state, or writes its log")
    if scalar and name in FORMAT_FUNCTIONS:
        args = _arguments(node)
        fmt = _literal_text(args[0]) if args else None
        if fmt is None:
            raise QueryRejected(f"{name}() needs its format as a literal string: the widths in it are "
                                "sizes, and a computed one is only known once the value is built")
        if any(width > MAX_LITERAL_SIZE for width in _format_widths(name, fmt)):
            raise QueryRejected(f"{name}() may build at most {MAX_LITERAL_SIZE:,} characters in one value")
        return
    if not scalar or name not in SIZED_FUNCTIONS:
        return
    if name == "repeat" and _arguments(node) and not _constant(_arguments(node)[0]):
        raise QueryRejected("repeat() needs a literal to repeat, not a column or a subquery: a value from the "
                            "data may be megabytes long, and repeating it multiplies that before any limit applies")
    position = SIZED_FUNCTIONS[name]
    args = _arguments(node)
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
    found: list[str] = []
    table_functions: set[int] = set()  # the call nodes of table functions (not scalars)
    recursive = False
    for node, ctes in _scoped_nodes(tree):
        recursive = recursive or node.get("type") == "RECURSIVE_CTE_NODE"
        kind = node.get("type")
        if "class" not in node and isinstance(kind, str) and kind in _REFUSED_REFS:
            raise QueryRejected(_REFUSED_REFS[kind])
        if kind == "BASE_TABLE" and "table_name" in node:
            _check_base_table(node, ctes, found)
        elif kind == "TABLE_FUNCTION" and "function" in node:
            _check_table_function(node)
            table_functions.add(id(node["function"]))
        elif node.get("class") == "FUNCTION":
            _check_function(node, scalar=id(node) not in table_functions)
        elif node.get("class") == "LAMBDA":
            _check_lambda(node)
    if recursive:
        raise QueryRejected("WITH RECURSIVE is not available: a recursive query repeats its step until nothing "
                            "is new, and a step such as s || s doubles a value each time, building gigabytes "
                            "that no memory limit sees (for a sequence, use range or generate_series)")
    built, grown = _built_size(tree, table_functions)
    if built > MAX_LITERAL_SIZE:
        raise QueryRejected(f"The query may build at most {MAX_LITERAL_SIZE:,} characters or elements with "
                            "repeat, lpad, rpad, printf, format, list_resize, range, bitstring, replace, hex and "
                            f"the like, all calls together, nested calls multiplying (this one: {built:,})")
    if grown > MAX_GROWTH:
        raise QueryRejected(f"The query may make a value at most {MAX_GROWTH} times longer with replace, "
                            "regexp_replace, hex, bin, to_base64, url_encode and to_json, nested calls multiplying "
                            f"(this one: up to {grown:,} times)")
    normalized = json.dumps(_without_positions(tree), sort_keys=True, separators=(",", ":")) \
        if _repeatable(tree) else None
    return CheckedQuery(sql, found, normalized)


def columns_read(sql: str, schemas: dict[str, pa.Schema]) -> dict[str, list[str]]:
    """The columns of each table that a checked query reads (for its audit event), in table order.

    Taken from DuckDB's own plan, not from the query's text: the binder resolves aliases, CTEs,
    ``*`` and ``COLUMNS(*)``, ``to_json(t)`` and a row as a struct, and the optimizer's projection
    pushdown leaves in each table scan exactly the columns the query uses anywhere (its output,
    filters, joins, sorts, groups), so a column renamed in a CTE or compared in a subquery counts,
    and ``count(*)`` reads none. The plan is made on empty copies of the tables (their schemas as
    the caller's cursor sees them) in a private connection: nothing is read or run. If DuckDB cannot
    plan it here, every column of each table counts (a record that says too much, never too little).
    """
    wanted = {rid.lower(): schema for rid, schema in schemas.items()}
    read: dict[str, set[str]] = {rid: set() for rid in wanted}
    cur = _parser().cursor()
    try:
        for rid, schema in wanted.items():
            cur.register("mosu_empty_table", schema.empty_table())
            cur.execute(f'CREATE TEMP TABLE "{rid}" AS SELECT * FROM mosu_empty_table')
            cur.unregister("mosu_empty_table")
        plan = json.loads(cur.execute("EXPLAIN (FORMAT JSON) " + sql).fetchall()[0][1])
    except duckdb.Error as exc:
        log.warning("columns_read could not plan the query (%s); every column counts", first_line(exc))
        return {rid: list(schema.names) for rid, schema in wanted.items()}
    finally:
        cur.close()
    stack = list(plan) if isinstance(plan, list) else [plan]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        stack.extend(node.get("children") or [])
        info = node.get("extra_info") or {}
        table = str(info.get("Table") or "").lower().rstrip('"')
        rid = next((r for r in wanted if table.endswith(r)), None) if table else None
        if rid is None:
            continue
        names = info.get("Projections") or []
        if isinstance(names, str):
            names = [names] if names in wanted[rid].names else names.split("\n")
        read[rid].update(names)
    return {rid: [name for name in schema.names if name in read[rid]] for rid, schema in wanted.items()}
