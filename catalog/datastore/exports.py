"""Streaming writers that turn Arrow record batches into a downloadable file: CSV, TSV, JSON lines, Parquet.

:func:`stream` is a generator of byte chunks (64 KiB to 1 MiB each), made batch by batch from a
:class:`pyarrow.RecordBatchReader`, so an export of any size holds at most one batch (sliced to
:data:`SLICE_ROWS` rows) and one Parquet row group in memory: a web response or an object-storage
upload can consume it as it is produced. Nothing here knows about Flask, the database or storage.

The first rows go out as soon as they exist, and whatever is gathered goes out once nothing was
sent for :data:`FLUSH_SECONDS`: a sparse query (``WHERE range % 150000 = 0`` over 10^11 rows, ~3 s
per 2,048-row batch on a loaded machine) sent nothing, not even a status line, for minutes while
the sizes above filled up.

Conventions, chosen so a file opens correctly in a spreadsheet and reads back losslessly in code:

CSV (``text/csv``)
    RFC 4180: a header row, ``,`` between fields, CRLF after every record, UTF-8 **without** a BOM
    (``bom=True`` prepends one for old Excel versions that otherwise guess the encoding wrongly). A
    field is enclosed in double quotes only when it holds ``,``, ``"``, CR or LF, with ``"`` doubled.
    A null is an empty field; an empty text is ``""``, so the two stay distinct.
TSV (``text/tab-separated-values``)
    A header row, a tab between fields, LF after every record, never quoted (IANA's TSV allows no tab
    or newline in a field). Inside a value, backslash, tab, LF and CR are escaped as ``\\\\``, ``\\t``,
    ``\\n`` and ``\\r`` (PostgreSQL's text format, which ``COPY`` and most tools read). A null is an
    empty field, as is an empty text (TSV has no way to tell them apart without quoting).
Values in CSV and TSV
    Numbers as Arrow prints them (shortest text that reads back to the same double; ``nan``,
    ``inf``, ``-inf``), decimals exactly, booleans ``true``/``false``, dates and times ISO 8601
    (``2024-01-31``, ``2024-01-31T12:00:00+01:00``; a zero fraction of a second is left out, as
    Python's ``isoformat`` does), binary as hex, nested values (struct, list, map) as JSON text.
Formula injection (OWASP "CSV injection")
    In CSV and TSV, a *text* cell (a string column, and the header) that begins with ``=``, ``+``,
    ``-``, ``@``, tab or carriage return gets a single quote ``'`` in front, so a spreadsheet shows
    it as text instead of evaluating it (``=HYPERLINK(...)``, ``@SUM(...)``, DDE payloads). Numeric,
    date and other typed columns are never changed: ``-3`` in an integer column is a number, not a
    formula. JSON lines and Parquet are data formats that no spreadsheet evaluates: they are written
    unchanged, so the exact values survive.
JSON lines (``application/x-ndjson``)
    One JSON object per row, LF-terminated, keys in column order, nesting kept. Values as
    :func:`catalog.datastore.sandbox.json_value` gives them to ``datastore_search``: times ISO 8601, decimals as
    strings (no precision lost), binary as hex, NaN (and infinities, which JSON cannot hold) as null.
Parquet (``application/vnd.apache.parquet``)
    The batches' own schema, zstd-compressed, written with :class:`pyarrow.parquet.ParquetWriter`
    into a sink the generator drains after each row group (:data:`ROW_GROUP_ROWS` rows or
    :data:`ROW_GROUP_BYTES` of Arrow data, whichever comes first).
"""
from __future__ import annotations

import dataclasses
import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog.core.errors import QueryRejected, ValidationError
from catalog.datastore.sandbox import json_value


class ExportFormat(NamedTuple):
    content_type: str
    extension: str


FORMATS: dict[str, ExportFormat] = {
    "csv": ExportFormat("text/csv; charset=utf-8", "csv"),
    "tsv": ExportFormat("text/tab-separated-values; charset=utf-8", "tsv"),
    "jsonl": ExportFormat("application/x-ndjson", "jsonl"),
    "parquet": ExportFormat("application/vnd.apache.parquet", "parquet"),
}
"""Export format name -> (HTTP content type, file extension)."""


@dataclass
class Tally:
    """What an export has done so far: rows read from its reader, bytes sent (counted by the sender)."""
    rows: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Ended:
    """The audit event that closes an export (a compliance officer asks what was actually taken): its
    name, object, detail and ids; the sender adds the rows and bytes of the :class:`Tally` and records
    it when the stream ends, finished or not."""
    action: str
    object_type: str
    object_id: str | None
    detail: dict[str, Any]
    refs: dict[str, str | None]


@dataclass(frozen=True)
class Export:
    """A streamed download: what to call it, its type, and its bytes as they are produced."""
    filename: str
    content_type: str
    chunks: Iterator[bytes]
    license_ids: tuple[str, ...] = ()  # the licences of the datasets read, named in the answer's headers
    tally: Tally = dataclasses.field(default_factory=Tally)
    ended: Ended | None = None  # the event to record when the stream ends


def requested_format(data: dict[str, Any]) -> str:
    """The ``format`` an export request asks for (default csv); a Validation Error if unknown."""
    fmt = str(data.get("format") or "csv").lower()
    if fmt not in FORMATS:
        raise ValidationError({"format": [f"Must be one of {', '.join(FORMATS)}"]})
    return fmt


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SEPARATORS = re.compile(r"[-._]{2,}")
STEM_CHARS = 80


def file_stem(name: str | None, fallback: str, version: int) -> str:
    """A download's file name without extension (pure): the resource name reduced to
    ``[A-Za-z0-9._-]`` (accents dropped, every other run of characters one ``-``, no ``..``, no
    leading dot), or ``fallback`` (its id) when nothing is left, then ``-v<version>``.

    Plain ASCII, so the ``filename`` parameter needs no quoting rules or ``filename*``
    (RFC 6266), and no path, quote or header break of a provider's name reaches a header."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    slug = _SEPARATORS.sub("-", _UNSAFE.sub("-", text)).strip("-._")[:STEM_CHARS].strip("-._")
    return f"{slug or fallback}-v{int(version)}"


def export(stem: str, fmt: str, reader: pa.RecordBatchReader, license_ids: tuple[str, ...] = (),
           ended: Ended | None = None) -> Export:
    """``reader`` as a download named ``stem`` plus the format's extension; refused now (400), before
    anything is sent, if the format cannot hold one of its columns (closing ``reader``). Its rows are
    counted in the export's :class:`Tally`; ``ended`` is the audit event of its end."""
    content_type, extension = FORMATS[fmt]
    if fmt == "parquet":
        try:
            check_parquet_schema(reader.schema)
        except QueryRejected:
            reader.close()
            raise
    tally = Tally()
    return Export(f"{stem}.{extension}", content_type, stream(reader, fmt, tally=tally),
                  tuple(dict.fromkeys(license_ids)), tally, ended)


def check_parquet_schema(schema: pa.Schema) -> None:
    """A :class:`QueryRejected` (400) naming the first column Parquet cannot hold (a UNION, say: pyarrow has no
    Parquet form for it) and its type; nothing if all can be written."""
    for field in schema:
        try:
            pq.ParquetWriter(pa.BufferOutputStream(), pa.schema([field])).close()
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            quoted = '"' + field.name.replace('"', '""') + '"'
            raise QueryRejected(
                f'Parquet cannot hold column "{field.name}" of type {field.type} ({str(exc).splitlines()[0][:120]}): '
                f"export as csv, tsv or jsonl, or cast the column in the query, e.g. CAST({quoted} AS VARCHAR)"
            ) from None

MIN_CHUNK = 64 * 1024
"""Bytes gathered before a chunk is yielded: fewer, larger writes to the socket or upload."""
MAX_CHUNK = 1024 * 1024
"""The largest chunk yielded (a large batch is cut into pieces of this size)."""
SLICE_ROWS = 65_536
"""Rows encoded at a time, so one huge input batch never becomes one huge text buffer."""
SLICE_BYTES = 16 * 1024 * 1024
"""Arrow bytes of small batches gathered at most before they are encoded together."""
ROW_GROUP_ROWS = 262_144
"""Rows per Parquet row group at most: large enough for good compression and pruning."""
ROW_GROUP_BYTES = 64 * 1024 * 1024
"""Arrow bytes buffered for one Parquet row group at most: the writer's memory bound."""
FLUSH_SECONDS = 1.0
"""What has been gathered is sent when nothing was sent for this long (checked as each batch comes)."""
ROW_GROUP_SECONDS = 10.0
"""A Parquet row group is written at least this often while rows come, so a slow export still sends
data (well within a proxy's idle timeout) without cutting a fast export's row groups small."""

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet treats as the start of a formula (OWASP's list)."""
_FORMULA_REGEX = "^[=+\\-@\t\r]"


def neutralise(value: str) -> str:
    """``value`` made safe to open in a spreadsheet: prefixed with ``'`` if it could start a formula.

    The quote is what spreadsheets themselves use to mark "this is text"; it is visible in the file,
    which is the price of not letting a downloaded cell run a formula on a user's machine.
    """
    return "'" + value if value.startswith(FORMULA_START) else value


def stream(reader: pa.RecordBatchReader, fmt: str, *, bom: bool = False,
           clock: Callable[[], float] = time.monotonic, tally: Tally | None = None) -> Iterator[bytes]:
    """The rows of ``reader`` as a file in format ``fmt`` (a key of :data:`FORMATS`), in chunks.

    Nothing is read from ``reader`` until the first chunk is asked for, and each batch is encoded
    and yielded before the next is read, so memory stays bounded whatever the row count.
    ``bom`` (CSV and TSV only) starts the file with a UTF-8 byte order mark, for Excel. ``clock``
    times the flushes (see :data:`FLUSH_SECONDS`). ``tally.rows`` counts the rows read.
    """
    if fmt not in FORMATS:
        raise ValidationError({"format": [f"Unknown export format {fmt!r}; one of: {', '.join(FORMATS)}"]})
    if tally is not None:
        reader = _Counted(reader, tally)  # type: ignore[assignment] - only its schema and batches are used
    if fmt == "parquet":
        return _chunked(_parquet(reader, clock), clock)
    if fmt == "jsonl":
        return _chunked(_jsonl(reader, clock), clock)
    return _chunked(_delimited(reader, fmt, bom, clock), clock)


class _Counted:
    """A reader's schema and batches, counting the rows that pass into ``tally``."""

    def __init__(self, reader: pa.RecordBatchReader, tally: Tally) -> None:
        self.schema, self._reader, self._tally = reader.schema, reader, tally

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._reader:
            self._tally.rows += batch.num_rows
            yield batch


# -- chunking ----------------------------------------------------------------------------------

Clock = Callable[[], float]


def _due(last: float | None, clock: Clock, seconds: float = FLUSH_SECONDS) -> bool:
    """Whether to send what is gathered: nothing was sent yet, or nothing for ``seconds``."""
    return last is None or clock() - last >= seconds


def _chunked(pieces: Iterator[bytes], clock: Clock = time.monotonic) -> Iterator[bytes]:
    """Regroup ``pieces`` into chunks of ``MIN_CHUNK`` to ``MAX_CHUNK`` bytes; the first piece, and what
    is gathered when nothing was sent for :data:`FLUSH_SECONDS`, go out as they are (so may be smaller)."""
    buffer, size = [], 0
    last: float | None = None
    for piece in pieces:
        if not piece:
            continue
        buffer.append(piece)
        size += len(piece)
        if _due(last, clock):  # all of it, in even pieces of at most MAX_CHUNK
            data = b"".join(buffer)
            step = -(-len(data) // -(-len(data) // MAX_CHUNK))
            for start in range(0, len(data), step):
                yield data[start:start + step]
            buffer, size = [], 0
            last = clock()
        elif size >= MIN_CHUNK:
            data = b"".join(buffer)
            start = 0
            while len(data) - start > MAX_CHUNK:
                yield data[start:start + MAX_CHUNK]
                start += MAX_CHUNK
            rest = data[start:]
            if len(rest) >= MIN_CHUNK:
                yield rest
                rest = b""
            buffer, size = ([rest], len(rest)) if rest else ([], 0)  # a short tail waits for more
            last = clock()
    if buffer:
        yield b"".join(buffer)


def _slices(reader: pa.RecordBatchReader, clock: Clock = time.monotonic) -> Iterator[pa.RecordBatch]:
    """The reader's rows in batches of about :data:`SLICE_ROWS` (or :data:`SLICE_BYTES`): a large batch
    is cut, small ones are put together. DuckDB hands an export 2,048 rows at a time, and encoding
    such small batches one by one took 7 times as long (CSV of 500,000 rows: 4.6 s against 0.67 s).
    The first batch, and what is gathered when nothing was passed on for :data:`FLUSH_SECONDS`, are
    passed on at once: a slow query's rows are not held back waiting for more."""
    pending: list[pa.RecordBatch] = []
    rows = nbytes = 0
    last: float | None = None
    for batch in reader:
        if batch.num_rows < SLICE_ROWS:
            pending.append(batch)
            rows += batch.num_rows
            nbytes += batch.nbytes
            if rows < SLICE_ROWS and nbytes < SLICE_BYTES and not _due(last, clock):
                continue
            batch = pa.concat_batches(pending)
            pending, rows, nbytes = [], 0, 0
        elif pending:
            yield pa.concat_batches(pending)
            pending, rows, nbytes = [], 0, 0
        for start in range(0, batch.num_rows, SLICE_ROWS):
            yield batch.slice(start, SLICE_ROWS)
        last = clock()
    if pending:
        yield pa.concat_batches(pending)


def _concatenated(lines: pa.Array) -> bytes:
    """The values of a string array end to end, straight from its data buffer (no per-row Python)."""
    if len(lines) == 0:
        return b""
    offsets = memoryview(lines.buffers()[1]).cast("q" if pa.types.is_large_string(lines.type) else "i")
    first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return lines.buffers()[2][first:last].to_pybytes()


# -- CSV and TSV -------------------------------------------------------------------------------

def _delimited(reader: pa.RecordBatchReader, fmt: str, bom: bool, clock: Clock) -> Iterator[bytes]:
    sep, end = (",", "\r\n") if fmt == "csv" else ("\t", "\n")
    quote = _csv_field if fmt == "csv" else _tsv_field
    header = [quote(pa.array([neutralise(name)], pa.string())) for name in reader.schema.names]
    head = ("\ufeff" if bom else "") + (sep.join(h[0].as_py() for h in header) + end if header else end)
    prefix = head.encode()  # sent with the first rows, so that the first chunk holds some
    for batch in _slices(reader, clock):
        if batch.num_rows == 0 or batch.num_columns == 0:
            continue
        fields = [quote(_text(column, neutralise_text=True)) for column in batch.columns]
        line = pc.binary_join_element_wise(*fields, sep, null_handling="replace", null_replacement="")
        yield prefix + _concatenated(pc.binary_join_element_wise(line, end, ""))
        prefix = b""
    if prefix:
        yield prefix


def _csv_field(text: pa.Array) -> pa.Array:
    """RFC 4180 quoting: only when needed, ``"`` doubled; an empty (non-null) text becomes ``""``."""
    needs = pc.or_(pc.match_substring_regex(text, '[",\r\n]'), pc.equal(pc.utf8_length(text), 0))
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, text)


def _tsv_field(text: pa.Array) -> pa.Array:
    """Backslash escapes for the characters TSV cannot hold (backslash first, so none is doubled twice)."""
    for char, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        text = pc.replace_substring(text, char, escaped)
    return text


def _text(column: pa.Array, neutralise_text: bool) -> pa.Array:
    """One column as a string array (nulls kept), by the conventions in the module docstring."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        return _text(column.dictionary_decode(), neutralise_text)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        text = column.cast(pa.string())
        if neutralise_text:
            text = pc.if_else(pc.match_substring_regex(text, _FORMULA_REGEX),
                              pc.binary_join_element_wise("'", text, ""), text)
        return text
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_timestamp(kind) and not kind.tz:  # a cast is ~50 times as fast as strftime
        text = pc.replace_substring(column.cast(pa.string()), " ", "T", max_replacements=1)
        digits = {"s": 0, "ms": 3, "us": 6, "ns": 9}[kind.unit]
        if not digits:
            return text
        return pc.if_else(pc.ends_with(text, "." + "0" * digits),
                          pc.utf8_slice_codeunits(text, 0, -(digits + 1)), text)  # no all-zero fraction
    if pa.types.is_timestamp(kind):
        fmt = "%Y-%m-%dT%H:%M:%S" + ("%z" if kind.tz else "")
        text = pc.strftime(column, format=fmt)
        text = pc.replace_substring_regex(text, r"\.0+([+-]|$)", r"\1")  # no all-zero fraction
        return pc.replace_substring_regex(text, r"([+-]\d\d)(\d\d)$", r"\1:\2")  # +0100 -> +01:00
    if pa.types.is_time(kind):
        return pc.replace_substring_regex(column.cast(pa.string()), r"\.0+$", "")
    if (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            or pa.types.is_boolean(kind) or pa.types.is_date(kind)):
        return column.cast(pa.string())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return pa.array([None if v is None else v.hex() for v in column.to_pylist()], pa.string())
    # Nested (struct, list, map) and anything else: JSON text, as JSON lines would hold it.
    return pa.array([None if v is None else _dumps(v) for v in _pylist(column)], pa.string())


# -- JSON lines --------------------------------------------------------------------------------

def _dumps(value: Any) -> str:
    # default=str: a type JSON has no form for (a duration, say) is written as its text, not refused.
    return json.dumps(json_value(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)


def _pylist(data: pa.Array | pa.RecordBatch) -> list:
    return data.to_pylist(maps_as_pydicts="lossy")


_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))
_JSON_CONTROL = tuple((chr(c), f"\\u{c:04x}") for c in range(0x20) if chr(c) not in "\n\r\t")


def _json_text(text: pa.Array) -> pa.Array:
    """JSON string literals of a string array (nulls kept): quoted, with ``\\``, ``"`` and control
    characters escaped as Python's ``json.dumps(ensure_ascii=False)`` escapes them."""
    if pc.any(pc.match_substring_regex(text, '["\\\\\\x00-\\x1f]')).as_py():  # else nothing to escape
        for char, escaped in _JSON_ESCAPES:
            text = pc.replace_substring(text, char, escaped)
        if pc.any(pc.match_substring_regex(text, "[\\x00-\\x1f]")).as_py():  # rare: a pass per character
            for char, escaped in _JSON_CONTROL:
                text = pc.replace_substring(text, char, escaped)
    return pc.binary_join_element_wise('"', text, '"', "")


def _json_column(column: pa.Array) -> pa.Array:
    """One column as JSON values in text (a null stays null): vectorised for the flat types, the
    conventions of :func:`catalog.datastore.sandbox.json_value` (ISO times, decimals as strings, NaN and infinities
    as null); nested and unusual types value by value in Python."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        return _json_column(column.dictionary_decode())
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind):
        return column.cast(pa.string())
    if pa.types.is_floating(kind):
        finite = pc.is_finite(column)
        return pc.if_else(finite, column.cast(pa.string()), pa.scalar(None, pa.string()))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return _json_text(_text(column, neutralise_text=False))
    if pa.types.is_decimal(kind) or pa.types.is_date(kind) or pa.types.is_time(kind) or pa.types.is_timestamp(kind):
        # their text never holds a character JSON escapes: quoted as it is
        return pc.binary_join_element_wise('"', _text(column, neutralise_text=False), '"', "")
    return pa.array([None if v is None else _dumps(v) for v in _pylist(column)], pa.string())


def _jsonl(reader: pa.RecordBatchReader, clock: Clock) -> Iterator[bytes]:
    """Each slice's rows as JSON objects built column by column with Arrow compute (no per-row Python:
    500,000 rows took 9.1 s of Python holding the GIL, slowing every other request meanwhile)."""
    keys = [json.dumps(name, ensure_ascii=False) + ":" for name in reader.schema.names]
    for batch in _slices(reader, clock):
        if batch.num_rows == 0:
            continue
        if not keys:
            yield b"{}\n" * batch.num_rows
            continue
        parts: list[Any] = []
        for i, (key, column) in enumerate(zip(keys, batch.columns)):
            parts += [("{" if i == 0 else ",") + key, _json_column(column)]
        parts.append("}\n")
        yield _concatenated(pc.binary_join_element_wise(*parts, "", null_handling="replace",
                                                        null_replacement="null"))


# -- Parquet -----------------------------------------------------------------------------------

class _Sink:
    """A write-only file for :class:`pyarrow.parquet.ParquetWriter` whose bytes the generator drains."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        data = bytes(data)
        self.parts.append(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def drain(self) -> list[bytes]:
        parts, self.parts = self.parts, []
        return parts


def _parquet(reader: pa.RecordBatchReader, clock: Clock) -> Iterator[bytes]:
    """The Parquet file's bytes as the writer produces them: its magic number at once, then each row
    group (by size, or when none was written for :data:`ROW_GROUP_SECONDS`), then the footer."""
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), reader.schema, compression="zstd")
    pending: list[pa.RecordBatch] = []
    rows = nbytes = 0
    last = clock()
    try:
        yield b"".join(sink.drain())  # "PAR1": the answer starts before the first row group is complete
        for batch in _slices(reader, clock):
            pending.append(batch)
            rows += batch.num_rows
            nbytes += batch.nbytes
            if rows >= ROW_GROUP_ROWS or nbytes >= ROW_GROUP_BYTES or _due(last, clock, ROW_GROUP_SECONDS):
                writer.write_table(pa.Table.from_batches(pending, reader.schema), row_group_size=ROW_GROUP_ROWS)
                pending, rows, nbytes = [], 0, 0
                yield b"".join(sink.drain())
                last = clock()
        if pending:
            writer.write_table(pa.Table.from_batches(pending, reader.schema), row_group_size=ROW_GROUP_ROWS)
            pending = []
    finally:
        writer.close()  # also on an early close of the generator: the writer's buffers are freed
    yield b"".join(sink.drain())
