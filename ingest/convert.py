"""Convert a delimited text file to Parquet with DuckDB, streaming (bounded memory)."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from catalog.errors import IngestFailed

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


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


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
_ERROR_LINE = re.compile(r"CSV Error on Line: (\d+)")


def _explain(exc: Exception) -> str:
    """A provider's sentence for DuckDB errors that have one, else DuckDB's own (cleaned)."""
    text = str(exc)
    size = _LINE_SIZE.search(text)
    if size:
        where = _ERROR_LINE.search(text)
        return (f"A line{' near line ' + where.group(1) if where else ''} is {int(size.group(2)):,} bytes long, "
                f"over the limit of {int(size.group(1)):,} bytes (MOSU_MAX_LINE_BYTES); "
                "is a quote left open, or is the file not line-based?")
    return f"The file could not be read as a table: {_clean(exc)}"


def connect(work_dir: Path, memory_limit: str = "512MB", threads: int = 2) -> duckdb.DuckDBPyConnection:
    """A private DuckDB for conversion: spills to ``work_dir``, never reaches the network."""
    con = duckdb.connect(":memory:", config={"memory_limit": memory_limit, "threads": threads,
                                             "temp_directory": str(work_dir / "duckdb-tmp")})
    return con


READERS = {
    "csv": "read_csv({path}, auto_detect=true, sample_size=20480, max_line_size={max_line})",
    "json": "read_json({path}, format='auto', sample_size=20480)",
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


def csv_to_parquet(con: duckdb.DuckDBPyConnection, src: Path, dst: Path, row_group_rows: int) -> Converted:
    """Sniff ``src`` (delimiter, header, types) and write it to ``dst`` as zstd Parquet."""
    return to_parquet(con, "csv", src, dst, row_group_rows)


def to_parquet(con: duckdb.DuckDBPyConnection, fmt: str, src: Path, dst: Path, row_group_rows: int,
               sheet: str | None = None, max_line_bytes: int = 10 << 20) -> Converted:
    """Read ``src`` as ``fmt`` (csv, json, excel, parquet, arrow) and write it to ``dst`` as zstd Parquet.

    Nested JSON values stay structs and lists; Parquet is rewritten with the
    platform's compression and row-group size; ``sheet`` picks a workbook's sheet.
    """
    if fmt == "excel":
        from ingest.excel import read_sheet

        table, _, _ = read_sheet(src, sheet)
        con.register("excel_upload", table)
        source = "excel_upload"
    elif fmt == "arrow":
        import pyarrow.ipc as ipc

        import pyarrow as pa

        try:  # memory-mapped: the table's buffers stay in the page cache, not on the heap
            table = ipc.open_file(pa.memory_map(str(src))).read_all()
        except Exception as exc:  # noqa: BLE001 - any Arrow error means an unreadable file
            raise IngestFailed(f"The Arrow file could not be read: {_clean(exc)}") from None
        con.register("arrow_upload", table)
        source = "arrow_upload"
    else:
        source = READERS[fmt].format(path=_literal(src), max_line=int(max_line_bytes))
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        columns = [Column(row[0], row[1]) for row in described]
        if fmt == "csv" and len(columns) == 1:
            _refuse_ragged(src, columns[0].name)
        con.execute(f"COPY (SELECT * FROM {source}) TO {_literal(dst)} "
                    f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {int(row_group_rows)})")
    except duckdb.Error as exc:
        raise IngestFailed(_explain(exc)) from None
    meta = pq.ParquetFile(dst)
    schema = meta.schema_arrow
    return Converted(columns=columns, row_count=meta.metadata.num_rows,
                     parquet_columns=[Column(f.name, str(f.type)) for f in schema])
