"""From a raw upload to a file DuckDB can read: unpack, recognise the format, re-encode text."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.core.errors import IngestFailed
from catalog.core.settings import Settings
from ingest import excel
from ingest.archive import read_archive
from ingest.decode import as_utf8, unpack
from ingest.sniff import sniff

HEAD_BYTES = 64 * 1024
SHOWN_MEMBERS = 100  # member names kept in job progress and version metadata


@dataclass(frozen=True)
class Prepared:
    format: str            # csv, json, excel, parquet or arrow
    path: Path             # the file to convert
    encoding: str | None   # the source text encoding, for text formats
    compression: str | None
    members: tuple[str, ...] = ()  # a ZIP archive's table members, in archive order
    used: tuple[str, ...] = ()     # the member read, or the part files combined into one table
    skipped: tuple[str, ...] = ()  # the archive's other entries, each with why it is not a table

    def archive(self) -> dict[str, Any] | None:
        """What was read from an archive, for the provider to check; bounded in size."""
        if not self.members:
            return None
        return {"members": list(self.members[:SHOWN_MEMBERS]), "member_count": len(self.members),
                "used": list(self.used[:SHOWN_MEMBERS]), "used_count": len(self.used),
                "combined": len(self.used) > 1, "skipped": list(self.skipped[:20])}

    def sheet(self, sheet: str | int | None, table: str | int | None) -> str | int | None:
        """The workbook sheet to read: ``sheet``, else ``table`` when the upload is the workbook itself.

        Inside an archive ``table`` already chose the member, so only ``sheet`` picks its sheet.
        """
        if sheet not in (None, "") or self.format != "excel" or self.members:
            return sheet
        return table


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(HEAD_BYTES)


def prepare(raw: Path, work: Path, settings: Settings, encoding: str | None = None,
            table: str | int | None = None) -> Prepared:
    """Work out how to read ``raw``; ``encoding`` is the provider's override, ``table`` picks an
    archive's member (a path, file name or 0-based index), if any."""
    path, head = raw, _head(raw)
    sniffed = sniff(head)
    compression = sniffed.compression
    if sniffed.format == "compressed":
        path = work / "unpacked"
        unpack(raw, path, compression, settings.max_unpacked_bytes, settings.max_unpack_ratio)
        head = _head(path)
        sniffed = sniff(head)
        if sniffed.format == "compressed":
            raise IngestFailed("The file is compressed twice; upload it compressed once.", public=True)
    if sniffed.format == "zip":
        if excel.is_workbook(path):
            excel.check_container(path, settings.max_unpacked_bytes, settings.max_unpack_ratio)
            return Prepared("excel", path, None, compression)
        read = read_archive(path, work, settings, encoding, table)
        return Prepared(read.format, read.path, read.encoding, "+".join(filter(None, (compression, "zip"))),
                        read.members, read.used, read.skipped)
    if sniffed.format == "xls":
        return Prepared("excel", path, None, compression)
    if sniffed.format not in ("csv", "json"):
        return Prepared(sniffed.format, path, None, compression)
    path, source_encoding = as_utf8(path, head, work / "utf8", encoding)
    return Prepared(sniffed.format, path, source_encoding, compression)
