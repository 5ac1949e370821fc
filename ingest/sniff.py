"""Recognise what an upload is from its first bytes (pure)."""
from __future__ import annotations

from dataclasses import dataclass

from catalog.core.errors import IngestFailed

# Compression wrappers: unpacked (streaming, with limits) before the table inside is sniffed.
COMPRESSIONS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
# Tables in binary formats.
BINARY_TABLES: tuple[tuple[bytes, str], ...] = (
    (b"PAR1", "parquet"),
    (b"ARROW1", "arrow"),
    (b"PK\x03\x04", "zip"),  # .xlsx/.ods workbooks (checked further before reading)
    (b"\xd0\xcf\x11\xe0", "xls"),  # legacy Excel
)
# Files that are not (yet) tables, with a name a provider knows.
NOT_TABLES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x7fELF", "an executable program"),
)
BOMS = {b"\xef\xbb\xbf": "utf-8-sig", b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}


@dataclass(frozen=True)
class Sniffed:
    format: str  # "compressed", "zip", "xls", "parquet", "arrow", "json" or "csv"
    compression: str | None = None


def sniff(head: bytes) -> Sniffed:
    """Decide how to read a file from its first few KB, or explain why it cannot be read."""
    if not head:
        raise IngestFailed("The file is empty: there is no table to read.", public=True)
    for magic, name in COMPRESSIONS:
        if head.startswith(magic):
            return Sniffed("compressed", name)
    for magic, name in BINARY_TABLES:
        if head.startswith(magic):
            return Sniffed(name)
    for magic, what in NOT_TABLES:
        if head.startswith(magic):
            raise IngestFailed(f"This file is {what}, not a table Mosu can read (CSV, TSV, JSON, JSON "
                               "lines, Excel, Parquet or Arrow, optionally gzip, bzip2, xz or zstd compressed).",
                               public=True)
    bom = next((b for b in BOMS if head.startswith(b)), None)
    if bom is None and b"\x00" in head:
        raise IngestFailed("This file contains binary data (NUL bytes), not a delimited text table. "
                           "Upload the data as CSV.", public=True)
    if bom is not None and BOMS[bom] == "utf-16":
        return Sniffed("csv")
    body = head[len(bom or b""):]
    text = body.decode("latin-1")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f")
    if controls > max(8, len(text) // 100):
        raise IngestFailed("This file does not look like text: it is not a delimited table (CSV or TSV).",
                           public=True)
    first = text.lstrip()[:1]
    if first in ("[", "{"):
        return Sniffed("json")
    return Sniffed("csv")
