"""A resource's data dictionary: each column's declared type, label and description (pure).

Providers know what their columns mean better than any sniffer: a dictionary
fixes a column's type (the ingest casts to it and reports values that do not
fit) and gives researchers a label and description for it (``datastore_search``
``fields[].info``). It is checked when the resource is saved, so a bad one is
a Validation Error at once, not a failed ingest later.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from catalog.core import coltypes, jsoninput
from catalog.core.errors import BadRequest

TYPES = coltypes.DECLARED
"""The provider's vocabulary (the issue's names plus Frictionless Table Schema's) -> DuckDB types."""
_STORED = {duck.lower(): duck for duck in TYPES.values()}
_DECIMAL = re.compile(r"^(?:decimal|numeric)\s*\(\s*(\d{1,2})\s*,\s*(\d{1,2})\s*\)$")
DICTIONARY_KEY = "schema"  # the resource field that holds it (Frictionless Table Schema's name)
MAX_FIELDS = 4096
MAX_TEXT = 2000


class DictionaryError(ValueError):
    """A data dictionary that cannot be used; the message names the bad entry."""


@dataclass(frozen=True)
class Field:
    id: str
    type: str | None = None         # DuckDB type, or None to infer it
    label: str | None = None
    description: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "label": self.label, "description": self.description}


def duckdb_type(name: str) -> str:
    """The DuckDB type for a provider's type name; DictionaryError if it is not one."""
    key = " ".join(str(name).strip().lower().split())
    if key in TYPES:
        return TYPES[key]
    if key in _STORED:  # the stored form names DuckDB types: it must read back as it was written
        return _STORED[key]
    match = _DECIMAL.match(key)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        if 1 <= precision <= 38 and scale <= precision:
            return f"DECIMAL({precision},{scale})"
    raise DictionaryError(f"unknown type {str(name)[:40]!r} (use one of integer, float, decimal(p,s), "
                          "boolean, date, timestamp, timestamptz, string)")


def _text(entry: dict, *names: str) -> str | None:
    for name in names:
        value = entry.get(name)
        if value not in (None, ""):
            if not isinstance(value, str):
                raise DictionaryError(f"{name} must be text")
            return value[:MAX_TEXT]
    return None


def parse_dictionary(value: Any) -> list[Field]:
    """A data dictionary from JSON text, a list of fields, or a Table Schema ``{"fields": [...]}``.

    Each field has ``id`` (or ``name``), and optionally ``type``, ``label`` (or ``title``)
    and ``description``. Raises DictionaryError naming the first bad entry.
    """
    if isinstance(value, str):
        try:
            value = jsoninput.loads(value)
        except BadRequest as exc:
            reason = exc.message.removeprefix("Bad request - JSON Error: ")
            raise DictionaryError(f"not valid JSON ({reason})") from None
    if isinstance(value, dict):
        value = value.get("fields")
    if not isinstance(value, list) or not value:
        raise DictionaryError('must be a non-empty list of fields, or {"fields": [...]}')
    if len(value) > MAX_FIELDS:
        raise DictionaryError(f"has {len(value)} fields; the limit is {MAX_FIELDS}")
    fields, seen = [], set()
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise DictionaryError(f"field {i} must be an object")
        try:
            name = _text(entry, "id", "name")
            if name is None:
                raise DictionaryError("needs an id (the column name)")
            if name in seen:
                raise DictionaryError(f"repeats the column {name[:80]!r}")
            seen.add(name)
            kind = entry.get("type")
            fields.append(Field(id=name, type=duckdb_type(kind) if kind not in (None, "") else None,
                                label=_text(entry, "label", "title"), description=_text(entry, "description")))
        except DictionaryError as exc:
            raise DictionaryError(f"field {i}: {exc}") from None
    return fields




def dictionary_dict(fields: list[Field]) -> dict[str, Any]:
    """The stored form (a Table Schema-like ``{"fields": [...]}``), as the API returns it."""
    return {"fields": [f.as_dict() for f in fields]}


def field_info(stored: Any) -> dict[str, dict[str, str]]:
    """CKAN's ``info`` per column (label, description, and CKAN's ``notes``) from a stored dictionary."""
    try:
        fields = parse_dictionary(stored) if stored else []
    except DictionaryError:
        return {}
    return {f.id: {k: v for k, v in (("label", f.label), ("description", f.description),
                                     ("notes", f.description)) if v}
            for f in fields if f.label or f.description}
