"""Recognise what an upload is from its first bytes (pure)."""
from __future__ import annotations

from dataclasses import dataclass

from catalog.errors import IngestFailed

# Magic numbers of common non-tabular (or not yet supported) files, with a name a provider knows.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (b"PAR1", "a Parquet file"),
    (b"\x7fELF", "an executable program"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office document"),
)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class Sniffed:
    format: str  # "csv" for now; more formats arrive with the ingest issue
    encoding: str


def sniff(head: bytes) -> Sniffed:
    """Decide how to read a file from its first few KB, or explain why it cannot be read."""
    if not head:
        raise IngestFailed("The file is empty: there is no table to read.")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise IngestFailed(f"This file is {what}, not a delimited text table (CSV or TSV). "
                               "Upload the data as CSV.")
    if head.startswith(_BOMS[1:]):
        raise IngestFailed("This file is UTF-16 text; only UTF-8 CSV is read for now. Save it as UTF-8 CSV.")
    body = head[3:] if head.startswith(_BOMS[0]) else head
    if b"\x00" in body:
        raise IngestFailed("This file contains binary data (NUL bytes), not a delimited text table. "
                           "Upload the data as CSV.")
    text = body.decode("utf-8", errors="replace")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n\f")
    if controls > max(8, len(text) // 100):
        raise IngestFailed("This file does not look like text: it is not a delimited table (CSV or TSV).")
    if text.count("\ufffd") > 1:  # one may be a character cut at the end of the head
        raise IngestFailed("This file is not valid UTF-8 text. Other encodings are not read yet: "
                           "save the table as UTF-8 CSV.")
    return Sniffed(format="csv", encoding="utf-8")
