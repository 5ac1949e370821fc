"""Exports: streaming CSV/TSV/JSON lines/Parquet writers, and presigned downloads of a whole version.

The first part runs :mod:`catalog.datastore.exports` in-process on Arrow data; the second talks HTTP to a real
``mosu up`` and fetches the presigned URLs from the real SeaweedFS.
"""
from __future__ import annotations

import csv
import datetime as dt
import decimal
import functools
import io
import json
import math
import re
import tracemalloc
import urllib.parse

import ckanapi
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import requests

from catalog.core.errors import ValidationError
from catalog.datastore import exports
from catalog.datastore.sandbox import json_value
from tests.conftest import upload

UTC = dt.UTC


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


def test_json_lines_mean_what_json_value_says_for_every_type(monkeypatch):
    """Built column by column with Arrow compute, not row by row in Python (500,000 rows held the GIL
    for 9.1 s): flat columns never reach the per-value Python encoder, and every value means what
    ``json_value`` makes of it (escapes, control characters, NaN, decimals, times, nesting)."""
    table = pa.table({
        "s": ['a"b\\c', "\x00\x01\x1f\x7f é 世 🎉 \u2028", None, "", "tab\there\nnl\rcr\x08\x0c"],
        "f": [1e20, 0.1, -2.5, float("nan"), 1e-7],
        "i": pa.array([2**63 - 1, -1, None, 0, 7], pa.int64()),
        "b": [True, False, None, True, False],
        "d": pa.array([decimal.Decimal("1.50"), decimal.Decimal("-0.01"), None, decimal.Decimal("123456789.12"),
                       decimal.Decimal("0.00")], pa.decimal128(12, 2)),
        "day": pa.array([dt.date(2020, 1, 2), None, dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(1970, 1, 1)]),
        "tm": pa.array([dt.time(12, 0), dt.time(1, 2, 3, 500000), None, dt.time(0, 0, 0, 1), dt.time(23, 59, 59)],
                       pa.time64("us")),
        "ts": pa.array([dt.datetime(2020, 1, 2, 3, 4, 5), dt.datetime(2020, 1, 2, 3, 4, 5, 120000), None,
                        dt.datetime(1969, 12, 31, 23, 59, 59, 999999), dt.datetime(2000, 1, 1)], pa.timestamp("us")),
        "tz": pa.array([dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)] * 4 + [None],
                       pa.timestamp("ms", tz="Asia/Shanghai")),
        "dict": pa.array(["x", "y", None, "x", "=1"]).dictionary_encode(),
        "n": pa.nulls(5),
    })
    calls = []
    monkeypatch.setattr(exports, "_dumps", lambda value: calls.append(value) or json.dumps(value))
    raw = _export(table, "jsonl").decode("utf-8")
    assert calls == [], "no Python per value for flat columns"
    expected = [json.loads(json.dumps(json_value(row), ensure_ascii=False)) for row in table.to_pylist()]
    assert [json.loads(line) for line in raw.split("\n")[:-1]] == expected
    assert "\\u0000\\u0001\\u001f\x7f" in raw, "control characters escaped, DEL kept, as json.dumps does"


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


BATCH = 4096
ROWS = 75 * BATCH  # 307,200: ~9 MB of Arrow, ~8 MB of CSV, ~13 MB of JSON lines
LIMIT = 4 * 1024 * 1024
SCHEMA = pa.schema([("id", pa.int64()), ("x", pa.float64()), ("name", pa.string())])


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "jsonl"])
def test_a_large_export_streams_in_bounded_memory(fmt, monkeypatch):
    """Rows made batch by batch stay in bounded memory: about one slice (or Parquet row group) is held
    at a time, never the input or the output. The slice and row group are scaled down 8 and 16 times
    here (as the ``mosu`` fixture scales the upload limit down), so that 307,200 rows (~9 MB of Arrow,
    ~8 MB of CSV) are well over the 4 MB allowed, while a streaming writer holds under 2.5 MB.
    The figure at production sizes (2M rows: 13 to 15 MiB held for 60 MiB in) is bench/exports.py's."""
    monkeypatch.setattr(exports, "SLICE_ROWS", 8192)
    monkeypatch.setattr(exports, "ROW_GROUP_ROWS", 16_384)
    made = input_bytes = 0

    def batches():
        nonlocal made, input_bytes
        for start in range(0, ROWS, BATCH):
            ids = pa.array(range(start, start + BATCH), pa.int64())
            made += 1
            batch = pa.record_batch([ids, pc.multiply(ids, 0.5),
                                     pc.binary_join_element_wise("name-", ids.cast(pa.string()), "")], schema=SCHEMA)
            input_bytes += batch.nbytes
            yield batch

    _export(_table(), fmt)  # warm up: pyarrow.compute builds its wrappers on first use
    tracemalloc.start()
    arrow_base, arrow_peak = pa.total_allocated_bytes(), 0
    total, sizes, made_at_first = 0, [], None
    try:
        # A clock that stands still: sizes alone decide the chunks here (a slow machine would flush
        # each second, which the tests of sparse exports below cover).
        for chunk in exports.stream(pa.RecordBatchReader.from_batches(SCHEMA, batches()), fmt, clock=lambda: 0.0):
            made_at_first = made if made_at_first is None else made_at_first
            total += len(chunk)
            sizes.append(len(chunk))
            arrow_peak = max(arrow_peak, pa.total_allocated_bytes() - arrow_base)
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    batches_total = ROWS // BATCH
    assert made == batches_total
    assert input_bytes > 2 * LIMIT, "the input, held, would exceed the limit twice"
    # Text formats yield after the first slice (small batches are put together); Parquet after its first
    # row group.
    first_due = exports.ROW_GROUP_ROWS // BATCH + 1 if fmt == "parquet" else -(-exports.SLICE_ROWS // BATCH)
    assert made_at_first is not None and made_at_first <= first_due < batches_total, "a chunk before the end"
    assert python_peak + arrow_peak < LIMIT, (python_peak, arrow_peak)
    # The first chunk goes out as it is (Parquet's is its magic number), the others are gathered.
    assert max(sizes) <= exports.MAX_CHUNK and min(sizes[1:-1]) >= exports.MIN_CHUNK, (min(sizes), max(sizes))
    if fmt == "parquet":
        assert total < input_bytes / 2, "compressed"
    else:
        assert total > LIMIT, "the output, held, would exceed the limit too"


def _sparse(pulled: list[int], clock: list[float], seconds: float, n: int = 40):
    """A query that finds 2,048 rows every ``seconds`` (as DuckDB hands an export its batches)."""
    def batches():
        for i in range(n):
            clock[0] += seconds
            pulled.append(i)
            yield pa.record_batch([pa.array(range(i * 2048, (i + 1) * 2048), pa.int64())], names=["n"])
    return pa.RecordBatchReader.from_batches(pa.schema([("n", pa.int64())]), batches())


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_an_export_sends_its_first_rows_at_once_then_whatever_came_each_second(fmt):
    """A sparse query (``WHERE range % 150000 = 0`` over 10^11 rows: ~3 s per 2,048-row batch) sent
    nothing, not even a status line, for minutes: its rows waited for 65,536 more, or 64 KiB. Now
    the first batch is sent as it comes and, when batches come slowly, each one as it comes."""
    pulled: list[int] = []
    clock = [0.0]
    chunks = exports.stream(_sparse(pulled, clock, 3.0), fmt, clock=lambda: clock[0])
    first = next(chunks)
    if fmt == "parquet":
        assert first == b"PAR1" and pulled == [], "the answer starts before the first row group"
        second = next(chunks)
        assert pulled == [0, 1, 2, 3], "a row group is written once none was for 10 s"
        assert second and b"PAR1" not in second
    else:
        assert pulled == [0], "the first chunk holds the first batch, and nothing waits for the second"
        text = first.decode()
        assert text.startswith({"csv": "n\r\n0\r\n", "tsv": "n\n0\n", "jsonl": '{"n":0}\n'}[fmt])
        assert text.rstrip().endswith("2047" + ("}" if fmt == "jsonl" else ""))
        for i in range(1, 5):  # 3 s apart: each batch is sent as it comes
            assert str(i * 2048).encode() in next(chunks) and pulled == list(range(i + 1))
    rest = b"".join(chunks)
    assert pulled == list(range(40))
    if fmt != "parquet":
        assert str(40 * 2048 - 1).encode() in rest


def test_a_fast_export_is_still_sent_in_large_chunks():
    """Batches that come quickly are gathered as before: no chunk but the first and last under 64 KiB."""
    pulled: list[int] = []
    clock = [0.0]
    sizes = [len(c) for c in exports.stream(_sparse(pulled, clock, 0.001, n=400), "csv", clock=lambda: clock[0])]
    assert len(sizes) < 20 and min(sizes[1:-1]) >= exports.MIN_CHUNK, sizes


# -- Part 2: presigned downloads of a whole version, against a real server ------------------------

@pytest.fixture(scope="module")
def admin(mosu):
    return mosu.admin_with_dataset("exported")


_upload = functools.partial(upload, filename="trees.csv", dataset="exported")


def _rows(n: int) -> bytes:
    return ("species,height\n" + "".join(f"oak{i},{i}\n" for i in range(n))).encode()


def _fetch(url: str) -> requests.Response:
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp


def test_download_parquet_of_current_and_earlier_versions(mosu, admin):
    v1 = _upload(admin, _rows(3))
    rid = v1["id"]
    v2 = _upload(admin, _rows(5), resource_id=rid)
    assert v2["ingest_status"] == "ready" and v2["version_id"] != v1["version_id"]
    anon = mosu.ckan()

    current = anon.action.resource_download(id=rid, format="parquet")
    assert current["version"] == 2 and current["format"] == "parquet" and current["filename"] == "trees.v2.parquet"
    assert pq.read_table(io.BytesIO(_fetch(current["url"]).content)).num_rows == 5
    earlier = anon.action.resource_download(id=rid, format="parquet", version=1)
    assert earlier["version"] == 1 and earlier["version_id"] == v1["version_id"]
    table = pq.read_table(io.BytesIO(_fetch(earlier["url"]).content))
    assert table.num_rows == 3 and table.column_names == ["species", "height"]
    by_id = anon.action.resource_download(id=rid, format="parquet", version=v1["version_id"])
    assert by_id["version"] == 1

    for result, version_id in ((current, v2["version_id"]), (earlier, v1["version_id"])):
        url = urllib.parse.urlparse(result["url"])
        query = urllib.parse.parse_qs(url.query)
        assert int(query["X-Amz-Expires"][0]) == 300 and result["expires_in"] == 300  # five minutes
        assert url.path.endswith(f"/parquet/{rid}/{version_id}.parquet"), "signed for exactly that object"
        assert "attachment" in _fetch(result["url"]).headers["Content-Disposition"]

    original = anon.action.resource_download(id=rid)  # the default is unchanged: current version's upload
    assert original["format"] == "original" and original["version"] == 2
    assert _fetch(original["url"]).content == _rows(5)
    assert _fetch(anon.action.resource_download(id=rid, version=1, format="original")["url"]).content == _rows(3)

    with pytest.raises(ckanapi.ValidationError):
        anon.action.resource_download(id=rid, format="xlsx")
    with pytest.raises(ckanapi.NotFound):
        anon.action.resource_download(id=rid, format="parquet", version=9)

    platform = mosu.inspect()
    try:
        from sqlalchemy import select

        from catalog.db.models import AuditEvent

        with platform.read() as s:
            events = [e.detail for e in s.scalars(select(AuditEvent).where(
                AuditEvent.action == "resource_download", AuditEvent.object_id == rid).order_by(AuditEvent.seq))]
    finally:
        platform.close()
    assert [(e["version"], e["format"]) for e in events] == \
        [(2, "parquet"), (1, "parquet"), (1, "parquet"), (2, "original"), (1, "original")]
    assert events[0]["version_id"] == v2["version_id"]


def test_a_failed_version_has_no_parquet_and_its_original_is_for_editors(mosu, admin):
    rid = _upload(admin, _rows(2))["id"]
    broken = b"%PDF-1.4 not a table"
    assert _upload(admin, broken, resource_id=rid)["ingest_status"] == "failed"
    with pytest.raises(ckanapi.ValidationError) as err:
        admin.action.resource_download(id=rid, version=2, format="parquet")
    assert "Version 2 is failed, not published" in str(err.value)
    assert _fetch(admin.action.resource_download(id=rid, version=2)["url"]).content == broken
    reader = mosu.ckan(mosu.token("export-reader"))
    for outsider in (mosu.ckan(), reader):
        with pytest.raises(ckanapi.NotAuthorized):
            outsider.action.resource_download(id=rid, version=2)
        assert outsider.action.resource_download(id=rid, format="parquet")["version"] == 1, "the current one"


def test_a_private_dataset_is_not_downloadable_by_outsiders(mosu, admin):
    admin.action.package_create(name="exported-private", owner_org="exported-org", private=True)
    rid = _upload(admin, _rows(4), dataset="exported-private")["id"]
    assert pq.read_table(io.BytesIO(_fetch(
        admin.action.resource_download(id=rid, format="parquet")["url"]).content)).num_rows == 4
    for outsider in (mosu.ckan(), mosu.ckan(mosu.token("export-outsider"))):
        for fmt in ("original", "parquet"):
            with pytest.raises(ckanapi.NotFound):  # its existence is not revealed either
                outsider.action.resource_download(id=rid, format=fmt)


# --- a researcher's query of any type, in every format (/datastore/dump_sql) ---------------------

AWKWARD = ("SELECT MAP {'k': 1} AS m, INTERVAL 3 DAY AS iv, '0101'::BIT AS b, "
           "340282366920938463463374607431768211455::UHUGEINT AS uh, 'a'::ENUM('a', 'b') AS e, "
           "'12:00:00+01'::TIMETZ AS tz, 2::BIGNUM AS big")
"""Types whose Arrow form was wrong in a file: UHUGEINT 2**128-1 was written as -1, BIT '0101' as 04f5,
BIGNUM as opaque bytes, TIMETZ without its offset, INTERVAL as [0,3,0] (and Parquet refused it: a 500)."""
UNION = "SELECT 'x'::UNION(a INT, b VARCHAR) AS u, 1 AS n"


def _dump_sql(mosu, sql: str, fmt: str) -> requests.Response:
    return requests.get(mosu.url + "/datastore/dump_sql", params={"sql": sql, "format": fmt}, timeout=60)


def test_dump_sql_writes_every_awkward_type_faithfully_in_every_format(mosu):
    text = ["{\"k\":1}", "3 days", "0101", "340282366920938463463374607431768211455", "a", "12:00:00+01", "2"]
    names = ["m", "iv", "b", "uh", "e", "tz", "big"]
    for fmt, sep in (("csv", ","), ("tsv", "\t")):
        r = _dump_sql(mosu, AWKWARD, fmt)
        assert r.status_code == 200, r.text[:300]
        assert list(csv.reader(io.StringIO(r.text), delimiter=sep)) == [names, text], fmt
    r = _dump_sql(mosu, AWKWARD, "jsonl")
    assert r.status_code == 200 and [json.loads(line) for line in r.text.splitlines()] == [
        {"m": {"k": 1}, **dict(zip(names[1:], text[1:]))}]
    r = _dump_sql(mosu, AWKWARD, "parquet")
    assert r.status_code == 200, r.text[:300]
    assert pq.read_table(io.BytesIO(r.content)).to_pylist() == [{"m": [("k", 1)], **dict(zip(names[1:], text[1:]))}]


def test_a_type_parquet_cannot_hold_is_a_400_naming_the_column_before_the_first_byte(mosu):
    """The issue's UNION column through dump_sql?format=parquet: a plain-text 500 (ArrowNotImplementedError)."""
    r = _dump_sql(mosu, UNION, "parquet")
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    assert error["__type"] == "Validation Error"
    assert 'Parquet cannot hold column "u" of type sparse_union' in error["message"]
    assert 'CAST("u" AS VARCHAR)' in error["message"]
    for fmt, body in (("csv", 'u,n\r\n"""x""",1\r\n'), ("tsv", 'u\tn\n"x"\t1\n'), ("jsonl", '{"u":"x","n":1}\n')):
        r = _dump_sql(mosu, UNION, fmt)
        assert r.status_code == 200 and r.text == body, (fmt, r.text[:300])
    cast = _dump_sql(mosu, "SELECT CAST('x'::UNION(a INT, b VARCHAR) AS VARCHAR) AS u", "parquet")
    assert cast.status_code == 200 and pq.read_table(io.BytesIO(cast.content)).to_pylist() == [{"u": "x"}]


def test_datastore_search_sql_answers_every_awkward_type(mosu):
    for query, expected in ((AWKWARD, {"m": {"k": 1}, "b": "0101", "uh": 340282366920938463463374607431768211455,
                                       "e": "a", "tz": "12:00:00+01:00", "big": "2"}),
                            (UNION, {"u": "x", "n": 1})):
        r = requests.post(mosu.url + "/api/3/action/datastore_search_sql", json={"sql": query}, timeout=60)
        assert r.status_code == 200, r.text[:300]
        record = r.json()["result"]["records"][0]
        assert {k: record[k] for k in expected} == expected


def test_an_error_after_the_headers_is_logged_once_and_the_download_is_visibly_broken(mosu):
    """A query that fails after its first rows were sent: the client gets a broken transfer (never a
    file that looks complete), the server one log line, not waitress's "Exception while serving" traceback."""
    before = mosu.log.read_text()
    sql = "SELECT CASE WHEN range < 1000000 THEN range ELSE error('boom at a million') END AS n FROM range(2000000)"
    r = requests.get(mosu.url + "/datastore/dump_sql", params={"sql": sql}, stream=True, timeout=60)
    assert r.status_code == 200
    received = bytearray()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in r.iter_content(65536):
            received += chunk
    assert 0 < len(received) < 8_000_000 and received.startswith(b"n\r\n0\r\n1\r\n")
    assert requests.get(mosu.url + "/api/3/action/status_show", timeout=10).ok
    log = mosu.log.read_text()[len(before):]
    assert log.count("stopped after the headers") == 1 and "boom at a million" in log, log[-2000:]
    assert "Exception while serving" not in log and "Traceback" not in log, log[-2000:]
