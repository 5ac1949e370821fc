"""Find columns that hold personal information, so compliance can see which datasets carry it.

A column is judged by its sampled values, each checked against a whole-value
shape (no searching inside free text: a note that mentions an e-mail address
is not an e-mail column). Kinds: ``email``, ``phone``, ``cn_id``, ``bank_card``,
``ip_address``, ``passport``. Shapes are strict on purpose, because a false
"this dataset holds ID numbers" costs a provider a compliance review:

* Check digits are verified where the kind has one (PRC ID: ISO 7064 MOD 11-2,
  bank card: Luhn), with a plausible birth date and region, and bank cards need
  a known issuer prefix with that issuer's length.
* Numbers (Python ``int``, i.e. integer columns) are only checked for kinds that
  are pure digits of an exact length: an 11-digit ``1[3-9]...`` is a CN mobile,
  15/18 digits may be an ID, 13-19 digits may be a card. Counts, years, prices,
  ids 1..N and zip codes never have those shapes. A column of sequential 11-digit
  ids that start with 13-19 *is* reported as phone: that is indistinguishable
  from phone numbers stored as integers, and a false alarm is the safer error.
  Floats, booleans, dates and timestamps never match.
* Text that is only digits is a phone only in the exact CN-mobile shape
  (optionally prefixed 86/0086); any other phone needs a ``+`` or a separator.

See ``THRESHOLDS`` for when matches become a finding.
"""
from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Iterable

import duckdb

from catalog.core import coltypes
from catalog.core.sqltext import ident

KINDS = ("email", "phone", "cn_id", "bank_card", "ip_address", "passport")

SHARE_THRESHOLD = 0.5
"""Share of checked (non-null, non-blank) values that must match, without a name hint."""
HINTED_SHARE_THRESHOLD = 0.2
"""Share needed when the column name hints at the kind (``email``, ``手机``, ``身份证`` ...)."""
BANK_CARD_SHARE_THRESHOLD = 0.8
BANK_CARD_HINTED_SHARE_THRESHOLD = 0.5
"""Cards need more: about 10% of random digit strings pass Luhn, so a low share proves nothing."""

THRESHOLDS = (
    f"A column holds a kind of personal data when at least {SHARE_THRESHOLD:.0%} of its sampled "
    f"non-empty values match that kind's shape, or {HINTED_SHARE_THRESHOLD:.0%} when the column name "
    f"suggests it (e.g. 'email', 'phone', '手机', '身份证', 'passport'). Bank cards need "
    f"{BANK_CARD_SHARE_THRESHOLD:.0%} ({BANK_CARD_HINTED_SHARE_THRESHOLD:.0%} with a name hint), because "
    "one random number in ten passes the card check digit. A name alone never makes a finding: at least "
    "one value must match. PRC ID numbers count only with a correct check digit, valid birth date and "
    "region; bank cards only with a correct Luhn digit and a known issuer prefix and length; passport "
    "numbers other than the PRC format only in columns named like 'passport'/'护照'. Integer columns are "
    "checked only for CN mobile numbers (11 digits), ID numbers and card numbers of the exact length; "
    "ordinary numbers (prices, counts, years, ids, zip codes) never match. Blank strings are not counted."
)
"""Plain-language rules, for the quality report to explain a finding."""

_THRESHOLDS = {kind: (SHARE_THRESHOLD, HINTED_SHARE_THRESHOLD) for kind in KINDS}
_THRESHOLDS["bank_card"] = (BANK_CARD_SHARE_THRESHOLD, BANK_CARD_HINTED_SHARE_THRESHOLD)
_MAX_EXAMPLES = 3
_INVALID_ID = "cn_id_invalid_checksum"


@dataclass(frozen=True)
class Finding:
    """One kind of personal data in one column; ``examples`` are masked and distinct."""

    column: str
    kind: str
    share: float
    matches: int
    checked: int
    examples: list[str]
    invalid_checksum: int = 0
    """For ``cn_id``: ID-shaped values whose check digit is wrong (not counted as matches)."""


# ---------------------------------------------------------------- name hints

_HINTS = {
    "email": re.compile(r"(?<![a-z])(e_?mail|mail(_?box)?|mail_?address)(?![a-z])|邮箱|邮件|电邮"),
    "phone": re.compile(r"(?<![a-z])(phone|telephone|tel|mobile|cell|cellphone|msisdn)(?![a-z])"
                        r"|电话|手机|联系方式"),
    "cn_id": re.compile(r"(?<![a-z])(id_?card|id_?no|id_?num(ber)?|identity(_?(card|no|number))?|sfzh?"
                        r"|national_?id|citizen_?id|resident_?id)(?![a-z])|身份证|证件号"),
    "bank_card": re.compile(r"(?<![a-z])(card(_?(no|num|number))?|bank_?card|bank_?account"
                            r"|account_?(no|num|number)|acct(_?no)?|pan)(?![a-z])|银行卡|卡号|账号"),
    "ip_address": re.compile(r"(?<![a-z])(ip(v[46])?(_?addr(ess)?)?|remote_?addr|host_?ip)(?![a-z])|ip地址"),
    "passport": re.compile(r"passport|护照"),
}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def name_hints(name: str) -> frozenset[str]:
    """Kinds the column name suggests; ``mobilePhone`` and ``mobile_phone`` both hint phone."""
    norm = _CAMEL.sub("_", name).lower()
    return frozenset(kind for kind, rx in _HINTS.items() if rx.search(norm))


# ---------------------------------------------------------------- value shapes

_EMAIL = re.compile(r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_CN_MOBILE = re.compile(r"(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d){8}", re.ASCII)
_AREA = r"0(?:10|2\d|[3-9]\d{2})"
_LANDLINE = re.compile(rf"(?:(?:\+|00)86[ -]?)?(?:\({_AREA}\)[ -]?|{_AREA}[ -])\d{{3,4}}[ -]?\d{{4}}", re.ASCII)
_INTL = re.compile(r"\+[1-9][\d ().-]{6,24}", re.ASCII)
_SEPARATED_DIGITS = re.compile(r"\d[\d -]{11,24}[\dXx]", re.ASCII)
_CN_ID_18 = re.compile(r"[1-8]\d{5}(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}[\dXx]", re.ASCII)
_CN_ID_15 = re.compile(r"[1-8]\d{5}\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}", re.ASCII)
_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})", re.ASCII)
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]+(?:%[\w.-]+)?")
_PASSPORT_CN = re.compile(r"[EGDSP]\d{7,8}|[EGDSP][A-Z]\d{7}", re.ASCII)
_PASSPORT_ICAO = re.compile(r"(?=[A-Z]*\d)[A-Z0-9]{6,9}", re.ASCII)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def cn_id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a PRC ID number's first 17 digits."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS)) % 11]


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check that every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i & 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _plausible_birth(year: int, month: int, day: int) -> bool:
    if not 1900 <= year <= date.today().year:
        return False
    try:
        return date(year, month, day) <= date.today()
    except ValueError:
        return False


def _cn_id(digits: str) -> str | None:
    """``"cn_id"``, the invalid-checksum marker, or None for a 15/18-character candidate."""
    if len(digits) == 18:
        if not _CN_ID_18.fullmatch(digits):
            return None
        if not _plausible_birth(int(digits[6:10]), int(digits[10:12]), int(digits[12:14])):
            return None
        return "cn_id" if cn_id_check_digit(digits[:17]) == digits[17].upper() else _INVALID_ID
    if len(digits) == 15 and _CN_ID_15.fullmatch(digits):
        if _plausible_birth(1900 + int(digits[6:8]), int(digits[8:10]), int(digits[10:12])):
            return "cn_id"
    return None


def _card_issuer_ok(d: str) -> bool:
    """A known issuer prefix (IIN) with a length that issuer uses."""
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)  # Visa
    p2, p4 = int(d[:2]), int(d[:4])
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16  # Mastercard
    if p2 in (34, 37):
        return n == 15  # American Express
    if p2 == 62 or 3528 <= p4 <= 3589 or p4 == 6011 or p2 == 65 or 644 <= p4 // 10 <= 649:
        return 16 <= n <= 19  # UnionPay, JCB, Discover
    return False


def _bank_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and _card_issuer_ok(digits) and luhn_ok(digits)


def _digit_kinds(d: str) -> tuple[str, ...]:
    """Kinds a string of plain digits can be: the rules shared by integers and digit-only text."""
    n = len(d)
    if n == 11:
        return ("phone",) if d[0] == "1" and d[1] in "3456789" else ()
    found: list[str] = []
    if n in (15, 18):
        kind = _cn_id(d)
        if kind:
            found.append(kind)
    if 13 <= n <= 19 and _bank_card(d):
        found.append("bank_card")
    return tuple(found)


def _ipv4(s: str) -> bool:
    m = _IPV4.fullmatch(s)
    return m is not None and all(int(g) <= 255 for g in m.groups())


def _ipv6(s: str) -> bool:
    if s.count(":") < 2 or not _IPV6_CHARS.fullmatch(s):
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def _text_kinds(s: str, generic_passport: bool) -> tuple[str, ...]:
    """Kinds a stripped, non-empty string can be. Cheap tests route each value to few regexes."""
    if s.isdigit() and s.isascii():
        if len(s) in (13, 15) and s.startswith(("86", "0086")) and _CN_MOBILE.fullmatch(s):
            return ("phone",) + _digit_kinds(s)
        if generic_passport and len(s) <= 9 and _PASSPORT_ICAO.fullmatch(s):
            return ("passport",)  # e.g. US passports are 9 digits
        return _digit_kinds(s)
    if "@" in s:
        return ("email",) if _EMAIL.fullmatch(s) else ()
    if ":" in s:
        return ("ip_address",) if _ipv6(s) else ()
    first = s[0]
    if first.isalpha():
        if len(s) <= 9:
            up = s.upper()
            if _PASSPORT_CN.fullmatch(up) or (generic_passport and _PASSPORT_ICAO.fullmatch(up)):
                return ("passport",)
        return ()
    if first == "+":
        if _CN_MOBILE.fullmatch(s) or _LANDLINE.fullmatch(s):
            return ("phone",)
        if _INTL.fullmatch(s) and 8 <= sum(c.isdigit() for c in s) <= 15:
            return ("phone",)
        return ()
    if "." in s:
        return ("ip_address",) if _ipv4(s) else ()
    if s[-1] in "Xx" and len(s) == 18:
        kind = _cn_id(s)
        return (kind,) if kind else ()
    if _CN_MOBILE.fullmatch(s) or _LANDLINE.fullmatch(s):
        return ("phone",)
    if _SEPARATED_DIGITS.fullmatch(s):  # "6222 0212 3456 7890", "110101-19900307-123X"
        digits = s.replace(" ", "").replace("-", "")
        if digits.isdigit():
            return _digit_kinds(digits)
        kind = _cn_id(digits)
        return (kind,) if kind else ()
    return ()


def value_kinds(value: object, generic_passport: bool = False) -> tuple[str, ...]:
    """Kinds one value matches (usually none or one); None, floats, bools and dates match nothing."""
    if isinstance(value, str):
        s = value.strip()
        return _text_kinds(s, generic_passport) if s else ()
    if isinstance(value, int) and not isinstance(value, bool):
        return _digit_kinds(str(value)) if value > 0 else ()
    return ()


# ---------------------------------------------------------------- masking

def _mask_digits(value: str, keep_head: int, keep_tail: int) -> str:
    """Star every digit except the first ``keep_head`` and last ``keep_tail``; separators stay."""
    total = sum(c.isdigit() for c in value)
    keep_head = max(0, min(keep_head, total - keep_tail - 3))
    out, seen = [], 0
    for c in value:
        if c.isdigit():
            out.append(c if seen < keep_head or seen >= total - keep_tail else "*")
            seen += 1
        else:
            out.append(c)
    return "".join(out)


def _mask_phone(v: str) -> str:
    digits = "".join(c for c in v if c.isdigit())
    if len(digits) < 8:
        return "*" * len(v)
    if _CN_MOBILE.fullmatch(v):  # 138****5678, +86 138 **** 5678
        return _mask_digits(v, len(digits) - 8, 4)
    m = re.match(r"\+?\(?\d{1,4}\)?(?=[ .-])", v)
    if m:  # a leading group (country or area code) stays, the rest but the last 4 digits is starred
        head = m.group(0)
        head_digits = sum(c.isdigit() for c in head)
        if len(digits) - head_digits - 4 >= 3:
            return head + _mask_digits(v[len(head):], 0, 4)
    return _mask_digits(v, 3, 4)


def _mask_card(v: str) -> str:
    d = "".join(c for c in v if c.isdigit())
    if len(d) < 12:
        return "*" * len(v)
    middle = len(d) - 8
    groups = ["*" * min(4, middle - i) for i in range(0, middle, 4)]
    return " ".join([d[:4], *groups, d[-4:]])


def _mask_ip(v: str) -> str:
    if "." in v and ":" not in v:
        parts = v.split(".")
        return ".".join(parts[:2] + ["*"] * (len(parts) - 2))
    try:
        groups = ipaddress.IPv6Address(v.split("%")[0]).exploded.split(":")
    except ValueError:
        return "*" * len(v)
    return ":".join([g.lstrip("0") or "0" for g in groups[:2]] + ["*"] * 6)


def mask(kind: str, value: str) -> str:
    """A value with its identifying middle starred, safe to show in a quality report (pure).

    Enough is kept to recognise the format and tell examples apart: the first
    letter and domain of an e-mail (``z***@example.com``), prefix and last 4
    digits of phones (``138****5678``), region and last 4 of ID numbers (the
    birth date is always hidden), first and last 4 of cards, the network half of
    IPv4 and the first two groups of IPv6, and letter plus last 4 of passports.
    """
    v = str(value).strip()
    if kind == "email":
        local, _, domain = v.rpartition("@")
        return f"{local[:1] if len(local) > 1 else ''}***@{domain}" if local else "*" * len(v)
    if kind == "phone":
        return _mask_phone(v)
    if kind == "cn_id":
        d = v.replace(" ", "").replace("-", "")
        return d[:4] + "*" * (len(d) - 8) + d[-4:] if len(d) >= 15 else "*" * len(v)
    if kind == "bank_card":
        return _mask_card(v)
    if kind == "ip_address":
        return _mask_ip(v)
    if kind == "passport":
        tail = min(4, len(v) - 5)  # at least 4 characters stay hidden
        return v[:1] + "*" * (len(v) - 1 - tail) + v[len(v) - tail:] if tail > 0 else "*" * len(v)
    return v[:1] + "*" * (len(v) - 2) + v[-1:] if len(v) >= 6 else "*" * len(v)


def _shown(value: object) -> str:
    """A profile value as the text it stands for: 13800000000.0 (a histogram edge) is 13800000000."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def mask_profile(profile: dict, findings: Iterable[Finding]) -> dict:
    """``profile`` with the values of each column flagged as personal information masked as its
    examples are (pure): min, max, top values and histogram edges (whose ends are min and max).

    Counts, lengths and moments stay: they describe the column, not a person. A masked column
    carries ``"masked": kind``; its min and max are text now, so nothing compares them as numbers.
    """
    kinds: dict[str, str] = {}
    for f in findings:
        kinds.setdefault(f.column, f.kind)
    if not kinds:
        return profile
    columns = []
    for column in profile.get("columns", []):
        kind = kinds.get(column.get("name"))
        if kind is None:
            columns.append(column)
            continue
        column = {**column, "masked": kind}
        for key in ("min", "max"):
            if column.get(key) is not None:
                column[key] = mask(kind, _shown(column[key]))
        if column.get("top"):
            column["top"] = [{**top, "value": None if top.get("value") is None else mask(kind, _shown(top["value"]))}
                             for top in column["top"]]
        if column.get("histogram"):
            column["histogram"] = {**column["histogram"],
                                   "edges": [mask(kind, _shown(e)) for e in column["histogram"]["edges"]]}
        columns.append(column)
    return {**profile, "columns": columns}


# ---------------------------------------------------------------- columns

def detect_column(name: str, values: Iterable[object]) -> list[Finding]:
    """Findings for one column from its sampled values (pure), one per kind over its threshold.

    Nulls and blank strings are not counted. Distinct values are classified
    once, so low-cardinality columns cost little. A name hint lowers the share
    needed (see ``THRESHOLDS``) but a kind with no matching value is never reported.
    """
    hints = name_hints(name)
    generic_passport = "passport" in hints
    counts: Counter[object] = Counter()
    for v in values:
        if v is None:
            continue
        if isinstance(v, str):
            v = v.strip()
            if not v:
                continue
        counts[v] += 1
    checked = sum(counts.values())
    if not checked:
        return []
    matches: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for v, n in counts.items():
        for kind in value_kinds(v, generic_passport):
            matches[kind] += n
            if kind in _THRESHOLDS:
                shown = examples.setdefault(kind, [])
                if len(shown) < _MAX_EXAMPLES:
                    masked = mask(kind, str(v))
                    if masked not in shown:
                        shown.append(masked)
    findings = []
    for kind in KINDS:
        hit = matches[kind]
        if not hit:
            continue
        share = hit / checked
        plain, hinted = _THRESHOLDS[kind]
        if share >= (hinted if kind in hints else plain):
            findings.append(Finding(name, kind, round(share, 4), hit, checked, examples[kind],
                                    matches[_INVALID_ID] if kind == "cn_id" else 0))
    return findings


def scannable(duckdb_type: str) -> bool:
    """Text columns, and integers wide enough for 11+ digits (BIGINT and up).

    INTEGER and smaller top out at 10 digits, below every kind's length;
    floats, booleans, dates, timestamps, lists and structs cannot hold these kinds.
    DECIMAL is skipped too: card or ID numbers stored as DECIMAL(19,0) would be missed.
    """
    return coltypes.of_duckdb(duckdb_type).pii


def scan_table(con: duckdb.DuckDBPyConnection, relation_sql: str, columns: list[tuple[str, str]],
               sample_rows: int = 10_000, window_rows: int | None = None) -> list[Finding]:
    """Findings for every scannable column of a relation, from one sampling query.

    ``relation_sql`` is anything that can follow FROM (a table name,
    ``read_parquet('...')``); ``columns`` are (name, DuckDB type) pairs.
    The sample is a seeded reservoir of ``sample_rows`` rows drawn from the first
    ``window_rows`` rows (default 10 x sample_rows). Why: on a 10M-row Parquet a
    reservoir over the whole table reads every row (0.4-0.6 s for 4 columns),
    ``LIMIT`` alone reads only the head (0.03 s) but sees one contiguous block,
    and ``TABLESAMPLE system`` picks whole 2048-row vectors, so it either reads
    everything too or, with a LIMIT, covers only the head while a small table
    can come back empty. A uniform sample of the head window costs ~0.04 s,
    covers a small table entirely, and is repeatable. Nulls in the sampled rows
    are not counted, so each column is judged on its non-null values.
    """
    wanted = [name for name, typ in columns if scannable(typ)]
    if not wanted:
        return []
    window = window_rows if window_rows is not None else 10 * sample_rows
    cols = ", ".join(ident(c) for c in wanted)
    sql = (f"SELECT {cols} FROM (SELECT {cols} FROM {relation_sql} LIMIT {int(window)}) "
           f"USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE (42)")
    rows = con.execute(sql).fetchall()
    findings: list[Finding] = []
    for name, values in zip(wanted, zip(*rows) if rows else [() for _ in wanted]):
        findings.extend(detect_column(name, values))
    return findings
