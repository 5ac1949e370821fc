"""From a raw upload to a file DuckDB can read: unpack, recognise the format, re-encode text."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catalog.errors import IngestFailed
from catalog.settings import Settings
from ingest import excel
from ingest.decode import detect_encoding, normalise, to_utf8, unpack
from ingest.sniff import sniff

HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Prepared:
    format: str            # csv, json, excel, parquet or arrow
    path: Path             # the file to convert
    encoding: str | None   # the source text encoding, for text formats
    compression: str | None


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(HEAD_BYTES)


def prepare(raw: Path, work: Path, settings: Settings, encoding: str | None = None) -> Prepared:
    """Work out how to read ``raw``; ``encoding`` is the provider's override, if any."""
    path, head = raw, _head(raw)
    sniffed = sniff(head)
    compression = sniffed.compression
    if sniffed.format == "compressed":
        path = work / "unpacked"
        unpack(raw, path, compression, settings.max_unpacked_bytes, settings.max_unpack_ratio)
        head = _head(path)
        sniffed = sniff(head)
        if sniffed.format == "compressed":
            raise IngestFailed("The file is compressed twice; upload it compressed once.")
    if sniffed.format == "zip":
        if not excel.is_workbook(path):
            raise IngestFailed("This is a ZIP archive, not a workbook. Archives of several tables are not "
                               "read yet: upload each table on its own (gzip-compressed if you like).")
        excel.check_container(path, settings.max_unpacked_bytes, settings.max_unpack_ratio)
        return Prepared("excel", path, None, compression)
    if sniffed.format == "xls":
        return Prepared("excel", path, None, compression)
    if sniffed.format not in ("csv", "json"):
        return Prepared(sniffed.format, path, None, compression)
    source_encoding = normalise(encoding) if encoding else detect_encoding(head)
    if source_encoding != "utf-8":
        utf8 = work / "utf8"
        to_utf8(path, utf8, source_encoding)
        path = utf8
    return Prepared(sniffed.format, path, source_encoding, compression)
