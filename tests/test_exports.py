"""Exports: streaming CSV/TSV/JSON lines/Parquet writers, run in-process on Arrow data."""
from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
import re
import tracemalloc

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from catalog import exports
from catalog.errors import ValidationError

UTC = dt.timezone.utc


def _table() -> pa.Table:
    return pa.table({
        "i": pa.array([1, -2, None], pa.int64()),
        "f": pa.array([1.5, float("nan"), None], pa.float64()),
        "d": pa.array([decimal.Decimal("1.50"), None, decimal.Decimal("-3.25")], pa.decimal128(10, 2)),
        "day": pa.array([dt.date(2020, 1, 2), None, dt.date(1999, 12, 31)], pa.date32()),
        "ts": pa.array([dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC), None,
                        dt.datetime(2020, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)], pa.timestamp("us", tz="Europe/Paris")),
        "s": ['a,b "q"\nline\ttab\r\\end', "=1+2", ""],
        "u": ["héllo 世界 🎉", None, "-x"],
        "formula": ["@SUM(A1)", "\t=cmd", "\r+1"],
        "st": [{"a": 1, "b": "x"}, None, {"a": None, "b": "y"}],
        "l": pa.array([[1, 2], [], None], pa.list_(pa.int64())),
        "m": pa.array([[("k", 1)], None, []], pa.map_(pa.string(), pa.int64())),
    })


# What CSV and TSV hold for _table(): nulls are empty, text cells that could start a formula get a quote.
TEXT_ROWS = [
    ["1", "1.5", "1.50", "2020-01-02", "2020-01-02T04:04:05+01:00", 'a,b "q"\nline\ttab\r\\end',
     "héllo 世界 🎉", "'@SUM(A1)", '{"a":1,"b":"x"}', "[1,2]", '{"k":1}'],
    ["-2", "nan", "", "", "", "'=1+2", "", "'\t=cmd", "", "[]", ""],
    ["", "", "-3.25", "1999-12-31", "2020-01-02T04:04:05.120000+01:00", "", "'-x", "'\r+1",
     '{"a":null,"b":"y"}', "", "{}"],
]


def _export(table: pa.Table, fmt: str, **kw) -> bytes:
    return b"".join(exports.stream(table.to_reader(max_chunksize=2), fmt, **kw))


def test_neutralise_prefixes_only_what_a_spreadsheet_evaluates():
    for value in ("=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert exports.neutralise(value) == "'" + value
    for value in ("", "plain", " =1", "'=1", "1-2", "a=b", "\n=1"):
        assert exports.neutralise(value) == value


def test_csv_is_rfc4180_with_formulas_neutralised():
    raw = _export(_table(), "csv")
    assert not raw.startswith(b"\xef\xbb\xbf"), "no BOM by default"
    text = raw.decode("utf-8")
    assert text.endswith("\r\n") and text.count("\r\n") == 4, "CRLF after each record"
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    assert rows[0] == _table().column_names
    assert rows[1:] == TEXT_ROWS
    lines = text.split("\r\n")
    assert lines[2].startswith("-2,nan,,,,'=1+2,,"), "a negative number is a number; a null is an empty field"
    assert ',"",' in lines[3], "an empty text is quoted, so it differs from a null"
    assert _export(_table(), "csv", bom=True) == b"\xef\xbb\xbf" + raw


def test_tsv_escapes_instead_of_quoting():
    text = _export(_table(), "tsv").decode("utf-8")
    records = text.split("\n")
    assert records[-1] == "" and len(records) == 5, "LF after each record, none inside a value"
    unescape = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
    rows = [[re.sub(r"\\[\\tnr]", lambda m: unescape[m.group()], f) for f in r.split("\t")] for r in records[:-1]]
    assert rows[0] == _table().column_names
    assert rows[1:] == TEXT_ROWS
    assert "a,b \"q\"\\nline\\ttab\\r\\\\end" in records[1]


def test_header_cells_are_neutralised_too():
    table = pa.table({"=cmd|' /C calc'!A0": [1], "ok": ["-1"]})
    assert _export(table, "csv").decode() == "'=cmd|' /C calc'!A0,ok\r\n1,'-1\r\n"
    assert _export(table, "tsv").decode() == "'=cmd|' /C calc'!A0\tok\n1\t'-1\n"


def test_json_lines_keep_types_nesting_and_formulas():
    lines = _export(_table(), "jsonl").decode("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert rows == [
        {"i": 1, "f": 1.5, "d": "1.50", "day": "2020-01-02", "ts": "2020-01-02T04:04:05+01:00",
         "s": 'a,b "q"\nline\ttab\r\\end', "u": "héllo 世界 🎉", "formula": "@SUM(A1)", "st": {"a": 1, "b": "x"},
         "l": [1, 2], "m": {"k": 1}},
        {"i": -2, "f": None, "d": None, "day": None, "ts": None, "s": "=1+2", "u": None, "formula": "\t=cmd",
         "st": None, "l": [], "m": None},
        {"i": None, "f": None, "d": "-3.25", "day": "1999-12-31", "ts": "2020-01-02T04:04:05.120000+01:00",
         "s": "", "u": "-x", "formula": "\r+1", "st": {"a": None, "b": "y"}, "l": None, "m": {}},
    ]
    infinite = _export(pa.table({"x": [math.inf, -math.inf]}), "jsonl").decode()
    assert infinite == '{"x":null}\n{"x":null}\n', "JSON has no infinity"


def test_parquet_round_trips_exactly_with_zstd():
    table = _table()
    raw = _export(table, "parquet")
    back = pq.read_table(io.BytesIO(raw))
    assert back.schema.equals(table.schema)
    for name in table.column_names:
        if name != "f":
            assert back[name].to_pylist() == table[name].to_pylist(), name
    floats = back["f"].to_pylist()
    assert floats[0] == 1.5 and math.isnan(floats[1]) and floats[2] is None
    assert back["formula"].to_pylist() == ["@SUM(A1)", "\t=cmd", "\r+1"], "Parquet is data: never altered"
    meta = pq.ParquetFile(io.BytesIO(raw)).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_empty_result_and_unknown_format():
    empty = _table().schema.empty_table()
    assert _export(empty, "csv").decode() == ",".join(empty.column_names) + "\r\n"
    assert _export(empty, "jsonl") == b""
    assert pq.read_table(io.BytesIO(_export(empty, "parquet"))).num_rows == 0
    with pytest.raises(ValidationError):
        exports.stream(empty.to_reader(), "xlsx")
    assert {f.extension for f in exports.FORMATS.values()} == {"csv", "tsv", "jsonl", "parquet"}


ROWS = 2_000_000
BATCH = 50_000
SCHEMA = pa.schema([("id", pa.int64()), ("x", pa.float64()), ("name", pa.string())])


@pytest.mark.parametrize("fmt,rows", [("csv", ROWS), ("tsv", ROWS), ("parquet", ROWS), ("jsonl", 200_000)])
def test_a_large_export_streams_in_bounded_memory(fmt, rows):
    """2M rows (~57 MB of CSV from ~50 MB of Arrow) made batch by batch: a writer that gathered the
    input or the output would hold over 100 MB; a streaming one holds about a batch (~10 MB measured).
    JSON lines, encoded in Python, is slower and gets fewer rows."""
    made = 0

    def batches():
        nonlocal made
        for start in range(0, rows, BATCH):
            ids = pa.array(range(start, start + BATCH), pa.int64())
            made += 1
            yield pa.record_batch([ids, pc.multiply(ids, 0.5),
                                   pc.binary_join_element_wise("name-", ids.cast(pa.string()), "")], schema=SCHEMA)

    _export(_table(), fmt)  # warm up: pyarrow.compute builds its wrappers on first use
    tracemalloc.start()
    arrow_base, arrow_peak = pa.total_allocated_bytes(), 0
    total, sizes, made_at_first = 0, [], None
    try:
        for chunk in exports.stream(pa.RecordBatchReader.from_batches(SCHEMA, batches()), fmt):
            made_at_first = made if made_at_first is None else made_at_first
            total += len(chunk)
            sizes.append(len(chunk))
            arrow_peak = max(arrow_peak, pa.total_allocated_bytes() - arrow_base)
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    batches_total = rows // BATCH
    assert made == batches_total
    # Text formats yield after the first batch; Parquet after its first row group.
    first_due = exports.ROW_GROUP_ROWS // BATCH + 1 if fmt == "parquet" else 1
    assert made_at_first is not None and made_at_first <= first_due < batches_total, "a chunk before the end"
    assert python_peak + arrow_peak < 64 * 1024 * 1024, (python_peak, arrow_peak)
    assert max(sizes) <= exports.MAX_CHUNK and min(sizes[:-1]) >= exports.MIN_CHUNK, (min(sizes), max(sizes))
    if fmt == "parquet":
        assert total < 20 * 1024 * 1024

