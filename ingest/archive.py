"""ZIP archives of tables: check, pick the table member(s), and hand back one file to convert.

Portals and crawlers publish folders of tables zipped up: a folder of part files
with one header, or a few different tables with a readme. The archive is
checked from its directory first (unsafe names, links, passwords, declared
size); members are then sniffed from their first bytes without unpacking them,
and only the members read are extracted, to ``member-<i>`` (an entry name never
becomes a path), counting the bytes actually written against the limits.

Part files of one table (same format, same header) become one table; otherwise
the resource option ``table`` picks a member by path, bare file name or 0-based
index, and the first table member is the default. Which members were found and
which were read is returned, so the provider can see it.
"""
from __future__ import annotations

import codecs
import copy
import re
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from catalog.core.errors import IngestFailed
from catalog.core.settings import Settings
from ingest.decode import CHUNK, as_utf8, check_zip, detect_encoding, normalise, unpack
from ingest.sniff import NOT_TABLES, sniff

HEAD_BYTES = 64 * 1024
# Entries that are packaging, never data: not listed, not read.
NOISE_PARTS = ("__MACOSX",)
NOISE_NAMES = {"thumbs.db", "desktop.ini"}
# Entries that describe the data rather than hold it.
DOC_STEMS = re.compile(r"(readme|license|licence|copying|changelog|notice|authors)\b", re.I)
DOC_SUFFIXES = {".md", ".rst", ".html", ".htm", ".xml", ".yaml", ".yml", ".pdf", ".doc", ".docx", ".rtf",
                ".odt", ".md5", ".sha1", ".sha256", ".sha512", ".sig", ".asc", ".py", ".r", ".sql", ".sh",
                ".ipynb", ".log"}
DOC_NAMES = {"datapackage.json", "metadata.json", "schema.json"}
TABLE_SUFFIXES = {".csv", ".tsv", ".tab", ".psv", ".jsonl", ".ndjson"}
DELIMITERS = (",", "\t", ";", "|")
LISTED = 300  # characters of member names shown in a message


@dataclass
class Member:
    """A table found in the archive (sniffed from its first unpacked bytes)."""

    index: int                   # position in the archive directory
    name: str                    # the entry name, as the provider's zip tool wrote it
    format: str                  # csv, json, excel, parquet or arrow
    compression: str | None      # a gzip/bz2/xz/zstd member, unpacked when read
    head: bytes                  # first unpacked bytes
    path: Path | None = None     # where it was already unpacked to, if it was


@dataclass(frozen=True)
class ArchiveTable:
    """What was read from an archive: one file to convert, and the members behind it."""

    format: str
    path: Path
    encoding: str | None
    members: tuple[str, ...]     # every table member, in archive order
    used: tuple[str, ...]        # the member read, or the part files combined
    skipped: tuple[str, ...]     # other entries, each "name (why)"


def entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as its author saw it (pure).

    Zip tools on Chinese Windows write names in GBK without the UTF-8 flag; Python then
    reads them as CP437 mojibake. They are decoded as UTF-8 or GB18030 where that works.
    """
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437")
    for encoding in ("utf-8", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def is_noise(name: str) -> bool:
    """Packaging entries (macOS resource forks, dotfiles, thumbnails) that are never tables (pure)."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return (not parts or any(p in NOISE_PARTS or p.startswith(".") for p in parts)
            or parts[-1].lower() in NOISE_NAMES)


def doc_reason(name: str, fmt: str, head: bytes) -> str | None:
    """Why a text entry is documentation rather than a table, or None if it may be a table (pure).

    Decided by name (readme, licence, markdown, metadata), and for a ``.txt`` or suffix-less
    text file by content: a first line without any delimiter is prose, not a header.
    """
    base = PurePosixPath(name.replace("\\", "/")).name
    suffix = PurePosixPath(base).suffix.lower()
    if fmt not in ("csv", "json") or suffix in TABLE_SUFFIXES:
        return None
    if DOC_STEMS.match(base) or suffix in DOC_SUFFIXES or base.lower() in DOC_NAMES:
        return "documentation"
    if fmt == "csv" and suffix in ("", ".txt"):
        first = head.split(b"\n", 1)[0].decode("latin-1")
        if not any(d in first for d in DELIMITERS):
            return "text, not a table"
    return None


def first_line(head: bytes, encoding: str) -> str | None:
    """The header line of a text member, decoded; None when it does not end within ``head`` (pure)."""
    text = codecs.getincrementaldecoder(encoding)("replace").decode(head, final=False)
    if "\n" not in text:
        return None
    return text.split("\n", 1)[0].rstrip("\r").lstrip("\ufeff")


def is_json_lines(head: bytes) -> bool:
    """JSON records one after another (not one array), so parts can be concatenated (pure)."""
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def combinable(tables: list[Member], encoding: str | None) -> bool:
    """Whether the tables are parts of one table: all CSV with one header, or all JSON lines (pure)."""
    if len(tables) < 2:
        return False
    if all(m.format == "json" and is_json_lines(m.head) for m in tables):
        return True
    if not all(m.format == "csv" for m in tables):
        return False
    headers = {first_line(m.head, normalise(encoding) if encoding else detect_encoding(m.head)) for m in tables}
    return len(headers) == 1 and None not in headers


def listing(names: list[str] | tuple[str, ...], limit: int = LISTED) -> str:
    """Names for a message, cut to ``limit`` characters with a count of the rest (pure)."""
    shown, used = [], 0
    for name in names:
        item = name[:80]
        if shown and used + len(item) > limit:
            break
        shown.append(item)
        used += len(item) + 2
    rest = len(names) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest else "")


def choose(tables: list[Member], table: str | int | None, encoding: str | None) -> list[Member]:
    """The members to read: the one the provider named, the parts of one table, or the first (pure)."""
    if table is None or str(table).strip() == "":
        return tables if combinable(tables, encoding) else tables[:1]
    key = str(table).strip()
    exact = [m for m in tables if m.name == key]
    if exact:
        return exact[:1]
    by_base = [m for m in tables if PurePosixPath(m.name).name == key]
    if len(by_base) == 1:
        return by_base
    if len(by_base) > 1:
        raise IngestFailed(f"Several tables in the archive are named {key[:80]!r}; set the resource's table "
                           f"to the full path: {listing([m.name for m in by_base])}.")
    if key.isdigit():
        index = int(key)
        if index < len(tables):
            return [tables[index]]
        raise IngestFailed(f"The archive has {len(tables)} tables; there is no table {index} (counting from 0). "
                           f"The tables are: {listing([m.name for m in tables])}.")
    raise IngestFailed(f"The archive has no table {key[:80]!r}; the tables are: "
                       f"{listing([m.name for m in tables])}.")


class _Extractor:
    """Streams members out of the open archive, counting every byte against one budget."""

    def __init__(self, zf: zipfile.ZipFile, work: Path, packed: int, settings: Settings) -> None:
        self.zf, self.work, self.settings = zf, work, settings
        self.limit = min(settings.max_unpacked_bytes, max(1, packed) * settings.max_unpack_ratio)
        self.written = 0

    def _count(self, n: int, name: str) -> None:
        self.written += n
        if self.written > self.limit:
            raise IngestFailed(f"The ZIP archive unpacks to more than {self.limit:,} bytes (while reading "
                               f"{name[:80]!r}); it was refused as a possible ZIP bomb.")

    def _open(self, info: zipfile.ZipInfo) -> zipfile.ZipExtFile:
        """The member's real bytes. zipfile stops at the size the directory declares (then fails
        its CRC check as "damaged"), so an entry that understates its size would never be counted
        for what it is; lifted, it unpacks until its compressed data ends, and :meth:`_count` stops it."""
        real = copy.copy(info)
        real.file_size = sys.maxsize
        return self.zf.open(real)

    def head(self, info: zipfile.ZipInfo) -> bytes:
        """The member's first bytes, never more than it declares (memory is bounded by the checked sizes)."""
        with self._open(info) as fh:
            return fh.read(min(HEAD_BYTES, info.file_size))

    def extract(self, member: Member) -> Path:
        """The member as a plain file, unpacked if it was compressed; done once."""
        if member.path is not None:
            return member.path
        dst = self.work / f"member-{member.index}"
        info = self.zf.infolist()[member.index]
        size = 0
        with self._open(info) as src, open(dst, "wb") as out:
            while chunk := src.read(CHUNK):
                self._count(len(chunk), member.name)
                size += len(chunk)
                out.write(chunk)
        if size != info.file_size:
            raise IngestFailed(f"The ZIP archive is damaged: {member.name[:80]!r} declares {info.file_size:,} "
                               f"bytes but holds {size:,}.")
        if member.compression:
            unpacked = self.work / f"member-{member.index}.unpacked"
            size = unpack(dst, unpacked, member.compression, self.settings.max_unpacked_bytes,
                          self.settings.max_unpack_ratio)
            self._count(size, member.name)
            dst.unlink()
            dst = unpacked
        member.path = dst
        return dst


def _scan(ex: _Extractor) -> tuple[list[Member], list[str]]:
    """Every entry sorted into tables and the rest (with why), in archive order."""
    tables: list[Member] = []
    skipped: list[str] = []
    for index, info in enumerate(ex.zf.infolist()):
        name = entry_name(info)
        if info.is_dir() or is_noise(name):
            continue
        head = ex.head(info)
        try:
            sniffed = sniff(head)
        except IngestFailed:
            what = next((w for magic, w in NOT_TABLES if head.startswith(magic)), "empty" if not head else
                        "not a table")
            skipped.append(f"{name[:80]} ({what})")
            continue
        member = Member(index, name, sniffed.format, sniffed.compression, head)
        if sniffed.format == "compressed":
            path = ex.extract(member)
            with open(path, "rb") as fh:
                member.head = fh.read(HEAD_BYTES)
            try:
                inner = sniff(member.head)
            except IngestFailed:
                skipped.append(f"{name[:80]} (not a table once unpacked)")
                continue
            if inner.format in ("compressed", "zip"):
                skipped.append(f"{name[:80]} (a nested archive; not read)")
                continue
            member.format = inner.format
        if member.format == "zip":
            from ingest import excel

            path = ex.extract(member)
            if not excel.is_workbook(path):
                skipped.append(f"{name[:80]} (a nested archive; not read)")
                continue
            excel.check_container(path, ex.settings.max_unpacked_bytes, ex.settings.max_unpack_ratio)
            member.format = "excel"
        elif member.format == "xls":
            member.format = "excel"
        elif (why := doc_reason(name, member.format, member.head)) is not None:
            skipped.append(f"{name[:80]} ({why})")
            continue
        tables.append(member)
    return tables, skipped


def _combine(ex: _Extractor, parts: list[Member], encoding: str | None, dst: Path) -> list[str]:
    """Write the parts of one table as one UTF-8 file (a CSV header once); their encodings."""
    encodings = []
    with open(dst, "wb") as out:
        for n, member in enumerate(parts):
            path, source = _text(ex, member, encoding)
            encodings.append(source)
            with open(path, "rb") as fh:
                if member.format == "csv" and n > 0:
                    header = fh.readline(4 * HEAD_BYTES)
                    if not header.endswith(b"\n"):
                        raise IngestFailed(f"{member.name[:80]!r}: the header line does not end.")
                last = b"\n"
                while chunk := fh.read(CHUNK):
                    out.write(chunk)
                    last = chunk[-1:]
                if last != b"\n":
                    out.write(b"\n")
            for done in {path, ex.extract(member)}:  # a part is read once: free its disk now
                done.unlink()
    return encodings


def _text(ex: _Extractor, member: Member, encoding: str | None) -> tuple[Path, str]:
    """A text member as UTF-8, its own encoding detected unless the provider declared one."""
    path = ex.extract(member)
    try:
        return as_utf8(path, member.head, path.with_name(path.name + ".utf8"), encoding)
    except IngestFailed as exc:
        raise IngestFailed(f"{member.name[:80]!r}: {exc.message}") from None


def read_archive(path: Path, work: Path, settings: Settings, encoding: str | None = None,
                 table: str | int | None = None) -> ArchiveTable:
    """Check the ZIP at ``path``, choose its table(s), and return one file to convert.

    ``encoding`` (the provider's override) applies to every member; ``table`` picks a member.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            check_zip(zf, path.stat().st_size, settings.max_unpacked_bytes, settings.max_unpack_ratio,
                      "ZIP archive")
            ex = _Extractor(zf, work, path.stat().st_size, settings)
            tables, skipped = _scan(ex)
            if not tables:
                found = listing(skipped) if skipped else "nothing but folders"
                raise IngestFailed(f"The ZIP archive holds no table Mosu can read (CSV, TSV, JSON, JSON lines, "
                                   f"Excel, Parquet or Arrow); it holds: {found}.")
            chosen = choose(tables, table, encoding)
            names = tuple(m.name for m in tables)
            used = tuple(m.name for m in chosen)
            if len(chosen) > 1:
                combined = work / "combined"
                encodings = _combine(ex, chosen, encoding, combined)
                return ArchiveTable(chosen[0].format, combined, ", ".join(dict.fromkeys(encodings)), names, used,
                                    tuple(skipped))
            member = chosen[0]
            if member.format in ("csv", "json"):
                text, source = _text(ex, member, encoding)
                return ArchiveTable(member.format, text, source, names, used, tuple(skipped))
            return ArchiveTable(member.format, ex.extract(member), None, names, used, tuple(skipped))
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise IngestFailed(f"The ZIP archive is damaged or uses an unsupported method: {str(exc)[:200]}") from None

