"""Convert an upload to Parquet with DuckDB, streaming (bounded memory), typing columns despite odd values."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from catalog.core import coltypes
from catalog.core.dictionary import Field
from catalog.core.errors import IngestFailed
from catalog.core.sqltext import ident, literal
from ingest.types import (
    CANDIDATES,
    EXAMPLES,
    VALUE_CHARS,
    OddValues,
    SampleStats,
    infer_type,
)

MAX_MESSAGE = 400


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class Converted:
    columns: list[Column]  # as sniffed from the source file
    row_count: int
    parquet_columns: list[Column]
    odd_values: list[OddValues] = field(default_factory=list)  # per column, left empty in the table


def _clean(exc: Exception) -> str:
    """DuckDB's message without its echo of the raw input (a line may be megabytes long)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines()]
    kept = []
    for line in lines:
        if line.startswith("Possible Solution") or (kept and not line):
            break
        if line and not line.startswith("Original Line:"):
            kept.append(line)
    text = " ".join(kept[:3])
    return text[:MAX_MESSAGE] + ("…" if len(text) > MAX_MESSAGE else "")


_LINE_SIZE = re.compile(r"Maximum line size of (\d+) bytes exceeded\. Actual Size:\s*(\d+)")


def csv_buffer(max_line_bytes: int) -> int:
    """DuckDB's CSV buffer: by default 16x the longest line, which is 160 MB per thread for
    10 MB lines and alone would break the conversion's memory limit; twice the line is enough."""
    return max(16 << 20, 2 * int(max_line_bytes))


def _explain(exc: Exception) -> str:
    """A provider's sentence for DuckDB errors that have one, else DuckDB's own (cleaned)."""
    text = str(exc)
    if isinstance(exc, duckdb.OutOfMemoryException):
        return ("The conversion ran out of the memory it may use (MOSU_CONVERT_MEMORY_LIMIT); the file is kept. "
                "Very wide rows or long text need more: an administrator can raise the limit and retry.")
    size = _LINE_SIZE.search(text)
    if size:
        # Not DuckDB's "CSV Error on Line: N": for this error it counts within its buffer, not the file
        # (a long third line was reported as line 1, whatever came before it).
        return (f"A line is {int(size.group(2)):,} bytes long, "
                f"over the limit of {int(size.group(1)):,} bytes (MOSU_MAX_LINE_BYTES); "
                "is a quote left open, or is the file not line-based?")
    return f"The file could not be read as a table: {_clean(exc)}"


def connect(work_dir: Path, memory_limit: str = "160MB", threads: int = 2) -> duckdb.DuckDBPyConnection:
    """A private DuckDB for conversion: spills to ``work_dir``, never reaches the network.

    ``memory_limit`` bounds the worker whatever the file size: DuckDB keeps rows in file
    order (previews and row numbers depend on it) by buffering within the limit, and
    spills to ``work_dir`` beyond it.
    """
    con = duckdb.connect(":memory:", config={"memory_limit": memory_limit, "threads": threads,
                                             "temp_directory": str(work_dir / "duckdb-tmp")})
    # DuckDB 2.0 pushes a TRY_CAST over a CSV column down into the reader as a strict cast, which
    # fails the whole COPY on the very odd value TRY_CAST is there to leave empty.
    con.execute("SET disabled_optimizers = 'type_pushdown'")
    return con


SAMPLE_ROWS = 20480
READERS = {
    "csv": "read_csv({path}, auto_detect=true, sample_size={sample}, max_line_size={max_line}, buffer_size={buffer})",
    "json": "read_json({path}, format='auto', sample_size={sample})",
    "parquet": "read_parquet({path})",
}


DELIMITERS = (",", "\t", ";", "|")


def ragged_line(lines, delimiter: str) -> tuple[int, int, int] | None:
    """Pure: (line number, fields expected, fields found) of the first row whose field count
    differs from the header's, or None. Quoted fields may span lines, as in CSV."""
    reader = csv.reader(lines, delimiter=delimiter)
    expected = None
    for row in reader:
        if expected is None:
            expected = len(row)
        elif row and len(row) != expected:
            return reader.line_num, expected, len(row)
    return None


def _refuse_ragged(src: Path, header: str) -> None:
    """DuckDB falls back to one text column when rows disagree on their field count; a header
    that holds a delimiter says the file is really a table with a ragged row: name the row."""
    counts = {d: header.count(d) for d in DELIMITERS}
    delimiter = max(counts, key=counts.get)
    if counts[delimiter] == 0:
        return  # truly one column
    with open(src, encoding="utf-8", errors="replace", newline="") as fh:
        found = ragged_line(fh, delimiter)
    if found is not None:
        line, expected, got = found
        shown = {"\t": "tab"}.get(delimiter, repr(delimiter))
        raise IngestFailed(f"Line {line} has {got} fields where the header has {expected} "
                           f"(delimiter {shown}); fix that row or quote the field that holds the delimiter.")


def _source(con: duckdb.DuckDBPyConnection, fmt: str, src: Path, sheet: str | None, max_line_bytes: int,
            as_text: bool = False) -> str:
    """The SQL that reads ``src``; ``as_text`` reads every CSV column as text (for TRY_CAST)."""
    if fmt == "excel":
        from ingest.excel import read_sheet

        table, _, _ = read_sheet(src, sheet)
        con.register("excel_upload", table)
        return "excel_upload"
    if fmt == "arrow":
        import pyarrow as pa
        import pyarrow.ipc as ipc

        try:  # memory-mapped: the table's buffers stay in the page cache, not on the heap
            table = ipc.open_file(pa.memory_map(str(src))).read_all()
        except Exception as exc:  # noqa: BLE001 - any Arrow error means an unreadable file
            raise IngestFailed(f"The Arrow file could not be read: {_clean(exc)}") from None
        con.register("arrow_upload", table)
        return "arrow_upload"
    # The sniffer's sample and the odd-value check's sample must be the same rows.
    sql = READERS[fmt].format(path=literal(src), sample=SAMPLE_ROWS, max_line=int(max_line_bytes),
                              buffer=csv_buffer(max_line_bytes))
    return sql[:-1] + ", all_varchar=true)" if as_text and fmt == "csv" else sql


def _shape(col: str, kind: str) -> str:
    """A condition a value must meet besides casting: DuckDB casts '7.5' to the integer 8."""
    return f"regexp_full_match(trim({col}), '[+-]?[0-9]+')" if kind == "BIGINT" else "true"


def _sample_stats(con: duckdb.DuckDBPyConnection, text_source: str, names: list[str]) -> dict[str, SampleStats]:
    """How the sniffer's sample of each text column parses as each candidate type (one query)."""
    parts = []
    for i, name in enumerate(names):
        col = ident(name)
        parts.append(f"count({col}) AS v{i}")
        parts += [f"count(TRY_CAST({col} AS {t})) FILTER (WHERE {_shape(col, t)}) AS p{i}_{j}"
                  for j, t in enumerate(CANDIDATES)]
        parts.append(f"count(*) FILTER (WHERE regexp_matches({col}, '^[+-]?0[0-9]')) AS z{i}")
    row = con.execute(f"SELECT {', '.join(parts)} FROM (SELECT * FROM {text_source} LIMIT {SAMPLE_ROWS})").fetchone()
    width = len(CANDIDATES) + 2
    return {name: SampleStats(values=row[i * width],
                              parsed={t: row[i * width + 1 + j] for j, t in enumerate(CANDIDATES)},
                              leading_zeros=row[i * width + width - 1])
            for i, name in enumerate(names)}


def _targets(con: duckdb.DuckDBPyConnection, fmt: str, text_source: str, columns: list[Column],
             dictionary: list[Field] | None) -> dict[str, str]:
    """The type each column gets: declared by the provider, else inferred despite odd values."""
    targets = {c.name: c.type for c in columns}
    declared = {f.id: f.type for f in dictionary or [] if f.type}
    missing = [name for name in (f.id for f in dictionary or []) if name not in targets]
    if missing:
        raise IngestFailed(f"The data dictionary names columns the file does not have: "
                           f"{', '.join(repr(m[:60]) for m in missing[:10])}; the file's columns are "
                           f"{', '.join(repr(c.name[:60]) for c in columns[:30])[:600]}.")
    targets.update(declared)
    if fmt == "csv":
        text_columns = [c.name for c in columns if c.type == "VARCHAR" and c.name not in declared]
        if text_columns:
            for name, stats in _sample_stats(con, text_source, text_columns).items():
                targets[name] = infer_type(stats) or "VARCHAR"
    return targets


def _odd_values(con: duckdb.DuckDBPyConnection, text_source: str, typed: dict[str, str]) -> list[OddValues]:
    """Values that do not parse as their column's type, counted, with the first few row numbers.

    One streaming pass: ``row_number() OVER ()`` numbers rows in file order (insertion
    order is preserved), and ``arg_min(..., n)`` keeps only the first few examples.
    """
    if not typed:
        return []
    names = list(typed)
    odd = [f"({ident(n)} IS NOT NULL AND TRY_CAST({ident(n)} AS {typed[n]}) IS NULL)" for n in names]
    parts = []
    for i, (name, cond) in enumerate(zip(names, odd)):
        value = f"left(CAST({ident(name)} AS VARCHAR), {VALUE_CHARS})"
        parts.append(f"count(*) FILTER (WHERE {cond}) AS n{i}")
        parts.append(f"arg_min(struct_pack(r := rn, v := {value}), rn, {EXAMPLES}) FILTER (WHERE {cond}) AS e{i}")
    cols = ", ".join(ident(n) for n in names)
    row = con.execute(f"SELECT {', '.join(parts)} FROM (SELECT row_number() OVER () AS rn, {cols} "
                      f"FROM {text_source})").fetchone()
    found = []
    for i, name in enumerate(names):
        count, examples = row[2 * i], row[2 * i + 1] or []
        if count:
            found.append(OddValues(name, coltypes.said(typed[name]), count, [(e["r"], e["v"]) for e in examples]))
    return found


def to_parquet(con: duckdb.DuckDBPyConnection, fmt: str, src: Path, dst: Path, row_group_rows: int,
               sheet: str | None = None, max_line_bytes: int = 10 << 20,
               dictionary: list[Field] | None = None) -> Converted:
    """Read ``src`` as ``fmt`` (csv, json, excel, parquet, arrow) and write it to ``dst`` as zstd Parquet.

    Nested JSON values stay structs and lists; Parquet is rewritten with the
    platform's compression and row-group size; ``sheet`` picks a workbook's sheet;
    ``dictionary`` declares column types. A clean file takes one pass. When a
    column's values mostly agree on a type but a few do not (in the sniffer's
    sample, or anywhere in the file), the table is read as text and cast, the
    odd values become empty and are reported with their row numbers: a second
    pass, paid only by such files.
    """
    source = _source(con, fmt, src, sheet, max_line_bytes)
    text_source = _source(con, fmt, src, sheet, max_line_bytes, as_text=True) if fmt == "csv" else source
    options = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {int(row_group_rows)}"
    odd: list[OddValues] = []
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        columns = [Column(row[0], row[1]) for row in described]
        if fmt == "csv" and len(columns) == 1:
            _refuse_ragged(src, columns[0].name)
        targets = _targets(con, fmt, text_source, columns, dictionary)
        clean = all(targets[c.name] == c.type for c in columns)
        if clean:
            try:
                con.execute(f"COPY (SELECT * FROM {source}) TO {literal(dst)} ({options})")
            except duckdb.ConversionException:
                if fmt != "csv":
                    raise
                clean = False  # an odd value after the sniffer's sample: read as text and cast
        if not clean:
            from_text = fmt == "csv"  # every column arrives as text and is cast to its type
            casts = {c.name: targets[c.name] for c in columns
                     if targets[c.name] != ("VARCHAR" if from_text else c.type)}
            select = ", ".join(f"TRY_CAST({ident(c.name)} AS {casts[c.name]}) AS {ident(c.name)}"
                               if c.name in casts else ident(c.name) for c in columns)
            con.execute(f"COPY (SELECT {select} FROM {text_source}) TO {literal(dst)} ({options})")
            typed = {name: kind for name, kind in casts.items() if kind != "VARCHAR"}
            odd = _odd_values(con, text_source, typed)
    except duckdb.Error as exc:
        raise IngestFailed(_explain(exc)) from None
    meta = pq.ParquetFile(dst)
    schema = meta.schema_arrow
    return Converted(columns=columns, row_count=meta.metadata.num_rows,
                     parquet_columns=[Column(f.name, str(f.type)) for f in schema], odd_values=odd)
