"""Pure input validation shared by the actions; every failure is a field error."""
from __future__ import annotations

import codecs
import datetime as dt
import re
from typing import Any

from catalog.core.errors import BadRequest, ValidationError

NAME_RE = re.compile(r"^[a-z0-9_-]{2,100}$")
USER_NAME_RE = re.compile(r"^[a-z0-9_-]{2,100}$")
# A URL scheme as browsers read one (WHATWG URL): a letter, then letters, digits, "+", "-", "."
# up to the first ":". Browsers drop tabs and newlines anywhere and C0 controls and spaces at
# either end before looking, so "java\tscript:" and " javascript:" are javascript: too.
URL_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
URL_SCHEMES = frozenset({"http", "https"})
# Codecs that are text encodings by Python's flag but no way to write a table file.
NOT_FILE_ENCODINGS = frozenset({"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape"})
TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off", ""}


class Errors:
    """Collects field errors so one request reports all of them at once."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            raise ValidationError(self.fields)


def name(value: Any, errors: Errors, field: str = "name") -> str:
    """A CKAN URL name: 2-100 lowercase letters, digits, '-' and '_'."""
    if not isinstance(value, str) or not value:
        errors.add(field, "Missing value")
        return ""
    if not NAME_RE.match(value):
        errors.add(field, "Must be purely lowercase alphanumeric (ascii) characters and these "
                          "symbols: -_ (2 to 100 characters)")
    return value


def text(value: Any, errors: Errors, field: str, max_len: int = 100_000) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.add(field, "Must be a string")
        return ""
    if len(value) > max_len:
        errors.add(field, f"Must be at most {max_len} characters")
    return value


def boolean(value: Any, errors: Errors, field: str, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    errors.add(field, "Must be true or false")
    return default


MAX_INTEGER = 2**53 - 1
_INTEGER_RE = re.compile(r"[+-]?[0-9]{1,20}")


def integer(value: Any, field: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    """Parse an integer parameter (raises at once: such parameters stand alone).

    Every integer a caller sends passes here, so the bound lives here: at most ``MAX_INTEGER``
    (2**53 - 1, the largest integer every JSON client holds exactly) unless ``maximum`` is lower.
    Without it an ``offset`` of 10**40 reached SQLite ("Python int too large to convert to SQLite
    INTEGER") and ``expires_in`` of 10**12 weeks overflowed a timedelta: 500s instead of a field
    error. Accepted: ints, integral floats, and strings of ASCII digits (no ``1_000``, no other
    scripts' digits, no 5,000-digit numbers to convert); not booleans.
    """
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = int(value) if value.is_integer() else None
    elif isinstance(value, str) and _INTEGER_RE.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        number = None
    if number is None:
        raise ValidationError({field: ["Invalid integer"]})
    if number < minimum:
        raise ValidationError({field: [f"Must be at least {minimum}"]})
    upper = MAX_INTEGER if maximum is None else min(maximum, MAX_INTEGER)
    if number > upper:
        raise ValidationError({field: [f"Must be at most {upper}"]})
    return number


def strings(value: Any, field: str) -> list[str]:
    """A parameter that takes one string or a list of strings (CKAN's ``activity_types``,
    ``organizations``...): the list, empty when absent; anything else is a field error."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValidationError({field: ["Must be a string or a list of strings"]})


def unicode_text(data: Any) -> None:
    """Refuse text that is not Unicode: JSON's ``"\\ud800"`` decodes to a lone surrogate, which no
    database can store or compare (SQLite raised UnicodeEncodeError: a 500 from every action that
    looked an id up). Walks the request iteratively, so a deep one costs no recursion."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest("Bad request - JSON Error: the request holds text that is not valid Unicode "
                                 "(a lone surrogate such as \\ud800)") from None
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def required_id(data: dict, field: str = "id") -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({field: ["Missing value"]})
    return value.strip()


def tags(value: Any, errors: Errors) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors.add("tags", "Must be a list of {\"name\": ...} objects")
        return []
    out = []
    for item in value:
        tag = item.get("name") if isinstance(item, dict) else item
        if not isinstance(tag, str) or not (1 < len(tag) <= 100):
            errors.add("tags", f"Tag {tag!r} must be 2 to 100 characters")
            continue
        out.append({"name": tag})
    return out


def extras(value: Any, errors: Errors) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(e, dict) and "key" in e for e in value):
        errors.add("extras", "Must be a list of {\"key\": ..., \"value\": ...} objects")
        return []
    return [{"key": str(e["key"]), "value": e.get("value", "")} for e in value]


def is_link_safe(value: str) -> bool:
    """Pure: whether ``value`` may be an ``href``: an http(s) URL or a relative one (no scheme).

    Any control character is refused outright (a browser would drop tabs and newlines and read
    a scheme through them); so is any scheme but http and https (``javascript:``, ``data:``,
    ``vbscript:``, ``file:``...), in any letter case.
    """
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in value):
        return False
    match = URL_SCHEME_RE.match(value.strip(" "))
    return match is None or match.group(1).lower() in URL_SCHEMES


def url(value: Any, errors: Errors, field: str, max_len: int = 2000) -> str:
    """A URL field (dataset and resource ``url``, ``image_url``): "" or an http(s) or relative URL."""
    value = text(value, errors, field, max_len)
    if value and not is_link_safe(value):
        errors.add(field, "Must be an http:// or https:// URL (or a relative one)")
    return value


def text_codec(name: Any) -> str | None:
    """Pure: Python's name of the text encoding ``name`` ("GBK" -> "gbk"), or None when ``name``
    is not one: unknown, not a string, or a bytes-to-bytes codec such as ``base64_codec``
    (decoding a file with it gives bytes, not text, and ingest failed on that after 5 retries)."""
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        return None
    try:
        info = codecs.lookup(name.strip())
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in NOT_FILE_ENCODINGS:
        return None
    return info.name


def encoding(value: Any, errors: Errors, field: str = "encoding") -> Any:
    """A resource's declared text encoding: empty, or a text encoding Python knows."""
    if value in (None, "") or text_codec(value) is not None:
        return value
    errors.add(field, f"Unknown text encoding {str(value)[:100]!r}: use a text encoding such as utf-8, "
                      "gb18030, big5, shift_jis or cp1252")
    return value


def date(value: Any, errors: Errors, field: str) -> dt.date | None:
    """An ISO date (``2027-01-31``; a datetime's date part is taken), or None for null/empty."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) <= 40:
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    errors.add(field, "Must be a date as YYYY-MM-DD")
    return None


_EMAIL_RE = re.compile(r"[^@\s<>()\[\],;:\"\\]{1,64}@[^@\s<>()\[\],;:\"\\]{1,190}\.[^@\s<>()\[\],;:\"\\]{1,63}")


def email(value: Any, errors: Errors, field: str = "email") -> str:
    """An e-mail address (or "" for none): one mailbox, no spaces, line breaks or separators. Mail
    goes to it from the outbox, so a value holding a line break (``a@b.org\\nBcc: ...``) or a list
    (``a@b.org, c@d.org``) would add recipients or headers."""
    value = text(value, errors, field, 254)
    if value and not _EMAIL_RE.fullmatch(value):
        errors.add(field, "Must be one e-mail address, like name@example.org")
        return ""
    return value
