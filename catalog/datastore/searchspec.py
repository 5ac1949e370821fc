"""``datastore_search`` parameters (CKAN's) checked and turned into SQL over one table (pure).

Column names only ever come from the table's own schema (the request names a
column; the SQL quotes the schema's spelling of it) and every value is a
parameter, so nothing a caller sends becomes SQL text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog.core import jsoninput, validate
from catalog.core.errors import BadRequest, ValidationError
from catalog.core.sqltext import ident

MAX_LIMIT = 32_000
MAX_FILTER_VALUES = 1_000
"""Values a search may filter on, across all its filters: each is a parameter of an ``IN`` list that
DuckDB binds and plans before the query can be interrupted, at a cost that grows faster than the
list (2M rows, 2 cores: 100,000 values took 11.6 s and 600 MB, 10,000 0.6-0.9 s, 1,000 under 0.2 s)."""
MAX_Q_CHARS = 1_000
"""Characters of ``q`` (or of one column's text in a ``q`` object)."""
MAX_Q_TERMS = 1_000
"""Comparisons a ``q`` may make: each word with every text column (or one per column of a ``q``
object). 32 words over 200 text columns, 6,400 ILIKEs, took 2.8 s on only 20,000 rows. At the caps
(1,000 filter values and 1,000 comparisons, 2M rows) DuckDB plans in about 0.1 s; what follows is
execution, which the query time limit interrupts (1,000 comparisons on every row of 2M: stopped at
the limit, 42 s otherwise)."""
MAX_SORT_KEYS = 32
"""Columns a ``sort`` may name."""
FORMATS = ("objects", "lists", "csv", "tsv")
ROW_ID = "_id"


@dataclass(frozen=True)
class Spec:
    fields: list[str]                    # output columns, in order (``_id`` first unless fields chose)
    filters: dict[str, list[Any]] = field(default_factory=dict)
    q: dict[str, str] | str | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    distinct: bool = False
    limit: int | None = 100             # None: every row (exports)
    offset: int = 0
    include_total: bool = True
    records_format: str = "objects"

    @property
    def plain_page(self) -> bool:
        """Rows in file order with every column: answerable by slicing, without a query."""
        return not (self.filters or self.q or self.sort or self.distinct)


def _json_arg(value: Any, name: str) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return jsoninput.loads(value)
        except BadRequest:
            raise ValidationError({name: ["Must be JSON"]}) from None
    return value


def _bool(value: Any, name: str, default: bool) -> bool:
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValidationError({name: ["Must be true or false"]})


def _q_text(value: Any) -> str:
    text = str(value)
    if len(text) > MAX_Q_CHARS:
        raise ValidationError({"q": [f"Must be at most {MAX_Q_CHARS:,} characters"]})
    return text


def _int(value: Any, name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    return validate.integer(value, name, default, low, high)  # type: ignore[arg-type]


def parse(data: dict[str, Any], columns: list[str], default_limit: int | None = 100,
          default_fields: list[str] | None = None) -> Spec:
    """The request's parameters against the table's ``columns`` (``_id`` first); a Validation Error
    names the parameter and the column that does not exist. An export passes ``default_limit=None``
    (every row) and its ``default_fields`` (the data without the row numbers)."""
    known = set(columns)

    def check(name: str, param: str) -> str:
        if name not in known:
            raise ValidationError({param: [f'field "{name}" not in table']})
        return name

    raw_fields = _json_arg(data.get("fields"), "fields")
    if raw_fields in (None, "", []):
        fields = list(default_fields if default_fields is not None else columns)
    else:
        items = raw_fields if isinstance(raw_fields, list) else str(raw_fields).split(",")
        if len(items) > len(columns):  # no answer wider than the table (each name is a column of every row)
            raise ValidationError({"fields": [f"At most {len(columns):,} fields (the table's columns)"]})
        fields = [check(str(f).strip(), "fields") for f in items if str(f).strip()]
    filters: dict[str, list[Any]] = {}
    raw_filters = _json_arg(data.get("filters"), "filters")
    if raw_filters not in (None, "", {}):
        if not isinstance(raw_filters, dict):
            raise ValidationError({"filters": ["Must be an object of column: value or [values]"]})
        count = sum(len(v) if isinstance(v, list) else 1 for v in raw_filters.values())
        if count > MAX_FILTER_VALUES:
            raise ValidationError({"filters": [(f"At most {MAX_FILTER_VALUES:,} values in all filters together "
                                                f"({count:,} given)")]})
        for name, value in raw_filters.items():
            values = value if isinstance(value, list) else [value]
            if not values or any(isinstance(v, (dict, list)) for v in values):
                raise ValidationError({"filters": [f'Values for "{name}" must be a value or a list of values']})
            filters[check(str(name), "filters")] = values
    q = _json_arg(data.get("q"), "q")
    if isinstance(q, dict):
        if len(q) > MAX_Q_TERMS:
            raise ValidationError({"q": [f"At most {MAX_Q_TERMS:,} columns"]})
        q = {check(str(k), "q"): _q_text(v) for k, v in q.items() if str(v).strip()} or None
    elif q is not None:
        q = _q_text(q).strip() or None
    sort: list[tuple[str, bool]] = []
    for part, words in _sort_parts(str(data.get("sort") or "")):
        if not words:
            continue
        if len(sort) == MAX_SORT_KEYS:
            raise ValidationError({"sort": [f"At most {MAX_SORT_KEYS} columns"]})
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise ValidationError({"sort": [f'Cannot sort by "{part.strip()}": use "column" or "column desc"']})
        sort.append((check(words[0], "sort"), len(words) == 2 and words[1].lower() == "desc"))
    distinct = _bool(data.get("distinct"), "distinct", False)
    if distinct and any(c not in fields for c, _ in sort):
        raise ValidationError({"sort": ["With distinct, sort only by the fields returned"]})
    records_format = str(data.get("records_format") or "objects")
    if records_format not in FORMATS:
        raise ValidationError({"records_format": [f"Must be one of {', '.join(FORMATS)}"]})
    return Spec(fields=fields, filters=filters, q=q, sort=sort,
                distinct=distinct,
                limit=_int(data.get("limit"), "limit", default_limit, 0, MAX_LIMIT if default_limit else None),
                offset=_int(data.get("offset"), "offset", 0, 0),
                include_total=_bool(data.get("include_total"), "include_total", True),
                records_format=records_format)


def _sort_parts(text: str) -> list[tuple[str, list[str]]]:
    """``sort`` split into its keys, each as (its text, [column, direction?]) (pure). A column name in
    double quotes may hold spaces, commas and doubled quotes (``"net generation" desc``), as SQL
    spells it; an unquoted one is a word (a lone ``"`` around it is dropped, as before)."""
    out: list[tuple[str, list[str]]] = []
    i, n = 0, len(text)
    while i <= n:
        start = i
        while i < n and text[i].isspace():
            i += 1
        words: list[str] = []
        if i < n and text[i] == '"':
            j, name = i + 1, []
            while j < n:
                if text[j] == '"' and j + 1 < n and text[j + 1] == '"':
                    name.append('"')
                    j += 2
                elif text[j] == '"':
                    break
                else:
                    name.append(text[j])
                    j += 1
            if j < n:  # closed: the quoted name, then the rest of the key up to the next comma
                words.append("".join(name))
                i = j + 1
        end = text.find(",", i)
        end = n if end == -1 else end
        rest = text[i:end].split()
        words += rest if words else [w.strip('"') for w in rest[:1]] + rest[1:]
        out.append((text[start:end], words))
        i = end + 1
    return out


def filter_params(values: list[Any]) -> list[Any]:
    """A filter's values as the parameters of its ``IN (CAST(? AS type), ...)`` (pure): numbers,
    booleans and nulls as they are, anything else as its text. The row-order path casts the same
    parameters the same way, so both compare the same values."""
    return [v if v is None or isinstance(v, (int, float, bool)) else str(v) for v in values]


def _where(spec: Spec, types: dict[str, str]) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    for name, values in spec.filters.items():
        marks = ", ".join(f"CAST(? AS {types[name]})" for _ in values)
        parts.append(f"{ident(name)} IN ({marks})")
        params += filter_params(values)
    if isinstance(spec.q, dict):
        for name, text in spec.q.items():
            parts.append(f"CAST({ident(name)} AS VARCHAR) ILIKE ? ESCAPE '\\'")
            params.append(f"%{_escape_like(text)}%")
    elif spec.q:
        text_columns = [n for n, t in types.items() if t.upper() == "VARCHAR" and n != ROW_ID]
        if not text_columns:
            return "false", []  # full-text search over a table without text finds nothing
        words = spec.q.split()
        if len(words) * len(text_columns) > MAX_Q_TERMS:
            raise ValidationError({"q": [(
                f"Too many comparisons: each of {len(words):,} words with each of {len(text_columns):,} text "
                f"columns is more than {MAX_Q_TERMS:,}; search fewer words, or name columns with "
                '{"column": "text"}')]})
        for word in words:  # every word in some text column, as full-text search does
            parts.append("(" + " OR ".join(f"{ident(c)} ILIKE ? ESCAPE '\\'" for c in text_columns) + ")")
            params += [f"%{_escape_like(word)}%"] * len(text_columns)
    return (" AND ".join(parts) or "true"), params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def build(spec: Spec, types: dict[str, str], table: str = "t") -> tuple[str, list[Any], str, list[Any]]:
    """(page SQL, its parameters, total SQL, its parameters) for ``spec`` over ``table``."""
    where, params = _where(spec, types)
    columns = ", ".join(ident(f) for f in spec.fields)
    select = f"SELECT {'DISTINCT ' if spec.distinct else ''}{columns} FROM {table} WHERE {where}"
    order = [f"{ident(c)} {'DESC' if desc else 'ASC'} NULLS LAST" for c, desc in spec.sort]
    if order and not spec.distinct and ROW_ID in types:
        order.append(ident(ROW_ID))  # ties keep file order
    # Without a sort, rows come in file order anyway (DuckDB keeps insertion order), and a LIMIT
    # can stop the scan early instead of ranking every match.
    page = f" LIMIT {spec.limit}" if spec.limit is not None else ""
    page += f" OFFSET {spec.offset}" if spec.offset else ""
    sql = f"{select}{' ORDER BY ' + ', '.join(order) if order else ''}{page}"
    total = f"SELECT count(*) FROM ({select})" if spec.distinct else f"SELECT count(*) FROM {table} WHERE {where}"
    return sql, params, total, list(params)
