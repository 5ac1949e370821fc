"""Unpack compressed uploads and re-encode text to UTF-8, streaming, with limits.

Government and enterprise exports arrive as GBK/GB18030, Big5, Shift-JIS,
Windows-1252 or UTF-16; DuckDB reads UTF-8. The encoding is taken from a BOM,
then from a strict UTF-8 check of the head, then from charset detection over a
short list of candidates; a provider can override it. Decoding is incremental,
so memory stays flat, and a bad byte is reported with its line number.
"""
from __future__ import annotations

import bz2
import codecs
import lzma
import re
import stat
import unicodedata
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import pyarrow as pa

from catalog.core.errors import IngestFailed
from catalog.core.validate import text_codec

CHUNK = 1 << 20
MAX_ZIP_ENTRIES = 10_000  # more entries than any table export needs; a directory this long is an attack
# Candidates for detection: the encodings the platform promises, in a preferred order.
CANDIDATES = ("gb18030", "big5", "shift_jis", "euc_jp", "euc_kr", "cp1252")
SHORT_SAMPLE = 64  # non-ASCII bytes below which detection falls back to the first decodable candidate
ALIASES = {"gbk": "gb18030", "gb2312": "gb18030", "cp936": "gb18030", "hz": "gb18030",
           "big5hkscs": "big5", "cp950": "big5", "cp932": "shift_jis", "shift-jis": "shift_jis",
           "latin-1": "cp1252", "latin1": "cp1252", "iso-8859-1": "cp1252", "windows-1252": "cp1252",
           "utf8": "utf-8", "utf-8-sig": "utf-8-sig"}


def normalise(name: object) -> str:
    """A text codec name Python knows, with the usual aliases folded onto their supersets.

    Anything else is a permanent failure, not a retry: an ``encoding`` stored before resources
    were validated may be a bytes codec (``base64_codec`` raised TypeError five times over ~33 s)
    or not a string at all.
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else ""
    found = text_codec(ALIASES.get(key, key))
    if found is None:
        raise IngestFailed(f"Unknown text encoding {str(name)[:100]!r}; set the resource's encoding "
                           "to a text encoding such as utf-8, gb18030 or cp1252, or leave it empty")
    return found


def _latin_like(runs: list[bytes]) -> bool:
    """Accented letters standing alone between ASCII ones (José, Zürich): Windows-1252.

    East Asian encodings put two or more high bytes together, or, where a trail byte is
    ASCII, decode as Windows-1252 to symbols (», ¥) rather than letters.
    """
    single = [r for r in runs if len(r) == 1]
    if len(single) < 0.8 * len(runs):
        return False
    chars = b"".join(runs).decode("cp1252", errors="replace")
    return all(unicodedata.category(ch).startswith("L") for ch in chars)


def detect_encoding(head: bytes) -> str:
    """Pure: the encoding of a text file from its first bytes."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"  # a character cut at the end of the sample
    runs = re.findall(rb"[\x80-\xff]+", head)
    if runs and _latin_like(runs):
        return "cp1252"
    if sum(len(r) for r in runs) < SHORT_SAMPLE:
        # Too little text for statistics to tell GB18030 from Big5 or Shift-JIS: take the first
        # candidate that decodes, most common first (GB18030 on a platform serving China).
        for candidate in CANDIDATES:
            try:
                head.decode(candidate)
                return normalise(candidate)
            except UnicodeDecodeError as exc:
                if exc.start >= len(head) - 3 and exc.reason.startswith(("incomplete", "unexpected end")):
                    return normalise(candidate)
    from charset_normalizer import from_bytes

    best = from_bytes(head, cp_isolation=list(CANDIDATES)).best()
    return normalise(best.encoding) if best is not None else "cp1252"


def unpack(src: Path, dst: Path, compression: str, max_bytes: int, max_ratio: int) -> int:
    """Decompress ``src`` into ``dst``; stops a bomb by size and ratio before it fills the disk."""
    packed = max(1, src.stat().st_size)
    written = 0
    opener = {"bz2": bz2.open, "xz": lzma.open}.get(compression)
    try:
        source: BinaryIO
        if opener is not None:
            source = opener(src, "rb")
        else:
            source = pa.CompressedInputStream(pa.OSFile(str(src), "rb"), compression)
        with source, open(dst, "wb") as out:
            while True:
                chunk = source.read(CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > max_bytes or written > packed * max_ratio:
                    raise IngestFailed(
                        f"The {compression} file unpacks to more than "
                        f"{min(max_bytes, packed * max_ratio):,} bytes (limit: {max_bytes:,} bytes or "
                        f"{max_ratio}x the upload); it was refused as a possible decompression bomb.")
                out.write(chunk)
    except IngestFailed:
        raise
    except (OSError, EOFError, lzma.LZMAError, ValueError, pa.ArrowException) as exc:
        raise IngestFailed(f"The {compression} file is damaged or truncated: {str(exc)[:200]}") from None
    return written


def check_zip(zf: zipfile.ZipFile, packed: int, max_bytes: int, max_ratio: int, what: str) -> None:
    """Refuse a hostile ZIP (archive or workbook) from its directory alone, before a byte is unpacked.

    Entry names are never used as paths, but an archive that tries to escape, links
    elsewhere or hides behind a password is refused outright rather than half read;
    the declared sizes stop a ZIP bomb early (extraction still counts real bytes).
    """
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise IngestFailed(f"The {what} has {len(infos):,} entries, over the limit of {MAX_ZIP_ENTRIES:,}.")
    total, largest = 0, None
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or re.match(r"[A-Za-z]:", name):
            raise IngestFailed(f"The {what} contains an entry with an unsafe path ({name[:80]!r}).")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise IngestFailed(f"The {what} contains a symbolic link ({name[:80]!r}).")
        if info.flag_bits & 0x1:
            raise IngestFailed(f"The {what} contains an encrypted entry ({name[:80]!r}); "
                               "upload it without a password.")
        total += info.file_size
        if largest is None or info.file_size > largest.file_size:
            largest = info
    packed = max(1, packed)
    if largest is not None and (total > max_bytes or total > packed * max_ratio):
        raise IngestFailed(f"The {what} unpacks to {total:,} bytes ({total // packed}x its size; "
                           f"{largest.filename[:80]!r} alone declares {largest.file_size:,}); "
                           "it was refused as a possible ZIP bomb.")


def as_utf8(src: Path, head: bytes, dst: Path, override: str | None = None) -> tuple[Path, str]:
    """The file to read as UTF-8 and the source encoding: ``src`` itself, or ``dst`` re-encoded.

    ``override`` is the provider's declared encoding; otherwise it is detected from ``head``.
    """
    encoding = normalise(override) if override else detect_encoding(head)
    if encoding == "utf-8":
        return src, encoding
    to_utf8(src, dst, encoding)
    return dst, encoding


def to_utf8(src: Path, dst: Path, encoding: str) -> None:
    """Re-encode ``src`` to UTF-8 in ``dst``; a byte that does not decode names its line."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    line = 1
    with open(src, "rb") as fin, open(dst, "w", encoding="utf-8", newline="") as fout:
        while True:
            chunk = fin.read(CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                start = min(max(0, exc.start), len(chunk))
                line += chunk[:start].count(b"\n")
                raise IngestFailed(f"Line {line} is not valid {encoding} text; set the resource's "
                                   "encoding if it was detected wrongly.") from None
            except UnicodeError as exc:  # a codec's own refusal, e.g. UTF-16 without a byte-order mark
                raise IngestFailed(f"The file cannot be read as {encoding}: {str(exc)[:200]}; set the "
                                   "resource's encoding if it was chosen wrongly.") from None
            fout.write(text)
            line += text.count("\n")
            if not chunk:
                break
