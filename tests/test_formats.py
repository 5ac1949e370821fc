"""Real files in every supported format, encoding and compression, ingested by a running Mosu."""
from __future__ import annotations

import bz2
import functools
import gzip
import io
import json
import lzma
import re
import stat
import zipfile

import ckanapi
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from catalog.db.models import ResourceVersion
from tests.conftest import upload

CITIES_ZH = [("上海", 24870895, "中国最大的城市，位于长江入海口"), ("北京", 21893095, "首都，政治和文化中心"),
             ("广州", 18676605, "华南地区的商业中心"), ("深圳", 17560061, "靠近香港的科技城市"),
             ("重庆", 32054159, "西南地区的山城"), ("成都", 20937757, "四川省的省会")] * 3
CITIES_TW = [("臺北", 2646204, "臺灣的首都與最大都市"), ("高雄", 2773533, "南部的港口城市"),
             ("臺中", 2820787, "中部的工業與文化城市")] * 5
CITIES_JA = [("東京", 13960000, "日本の首都で最大の都市"), ("大阪", 2750000, "関西地方の中心都市"),
             ("名古屋", 2330000, "中部地方の工業都市")] * 5


def _csv(rows, header=("city", "population", "note"), sep=",") -> str:
    return sep.join(header) + "\n" + "".join(sep.join(str(v) for v in r) + "\n" for r in rows)


@pytest.fixture(scope="module")
def ckan(mosu):
    return mosu.admin_with_dataset("formats")


ingest = functools.partial(upload, dataset="formats")


def rows(ckan, res: dict, limit: int = 100) -> list[dict]:
    assert res["ingest_status"] == "ready", res["ingest_error"]
    return ckan.action.datastore_search(resource_id=res["id"], limit=limit)["records"]


@pytest.mark.parametrize("encoding,cities", [
    ("gbk", CITIES_ZH), ("gb18030", CITIES_ZH), ("big5", CITIES_TW), ("shift_jis", CITIES_JA),
])
def test_east_asian_encodings_are_detected(ckan, encoding, cities):
    res = ingest(ckan, _csv(cities).encode(encoding), f"cities-{encoding}.csv")
    got = rows(ckan, res)
    assert [(r["city"], r["population"], r["note"]) for r in got[:3]] == [tuple(c) for c in cities[:3]]


def test_windows_1252_and_utf16_and_bom(ckan):
    latin = _csv([("José", "São Paulo", "café crème")] * 10, header=("name", "city", "order"))
    assert rows(ckan, ingest(ckan, latin.encode("cp1252"), "latin.csv"))[0]["city"] == "São Paulo"
    utf16 = ingest(ckan, _csv(CITIES_ZH).encode("utf-16"), "utf16.csv")
    assert rows(ckan, utf16)[0]["city"] == "上海"
    bom = ingest(ckan, b"\xef\xbb\xbf" + _csv(CITIES_JA, sep=";").encode(), "bom.csv")
    assert list(rows(ckan, bom)[0])[1] == "city", "the BOM does not end up in the first column name"


def test_provider_encoding_override_and_a_wrong_one(ckan):
    res = ingest(ckan, _csv(CITIES_ZH).encode("gb18030"), "declared.csv", encoding="GBK")
    assert rows(ckan, res)[1]["city"] == "北京"
    wrong = ingest(ckan, ("a,b\nJosé,1\n").encode("cp1252"), "wrong.csv", encoding="utf-8")
    assert wrong["ingest_status"] == "failed"
    assert wrong["ingest_error"] == (
        "The file could not be read as a table: Invalid Input Error: CSV Error on Line: 2 "
        "Invalid unicode (byte sequence mismatch) detected. This file is not utf-8 encoded.")
    big5_as_gbk = ingest(ckan, b"a,b\n\xff\xfe,1\n", "bad-bytes.csv", encoding="gb18030")
    assert big5_as_gbk["ingest_status"] == "failed"
    assert big5_as_gbk["ingest_error"] == ("Line 2 is not valid gb18030 text; set the resource's encoding if it was "
                                           "detected wrongly.")


@pytest.mark.parametrize("sep", ["\t", "|", ";"])
def test_delimiters(ckan, sep):
    res = ingest(ckan, _csv(CITIES_JA, sep=sep).encode(), "d.txt")
    assert rows(ckan, res)[0] == {"_id": 1, "city": "東京", "population": 13960000, "note": "日本の首都で最大の都市"}


def test_quoted_fields_with_embedded_newlines(ckan):
    text = 'id,comment\n1,"first line\nsecond line"\n2,"a ""quoted"" word, and a comma"\n'
    got = rows(ckan, ingest(ckan, text.encode(), "quoted.csv"))
    assert got[0]["comment"] == "first line\nsecond line"
    assert got[1]["comment"] == 'a "quoted" word, and a comma'


def test_json_array_and_json_lines_keep_nesting(ckan):
    records = [{"id": i, "name": f"station {i}", "location": {"lat": 31.2 + i, "lon": 121.5},
                "readings": [i, i + 1]} for i in range(5)]
    arr = ingest(ckan, json.dumps(records).encode(), "stations.json")
    got = rows(ckan, arr)
    assert got[2]["location"] == {"lat": 33.2, "lon": 121.5} and got[2]["readings"] == [2, 3]
    fields = {f["id"]: f["type"] for f in ckan.action.datastore_search(resource_id=arr["id"])["fields"]}
    assert fields["location"] == "json" and fields["id"] == "int"
    lines = ingest(ckan, "".join(json.dumps(r) + "\n" for r in records).encode(), "stations.jsonl")
    assert rows(ckan, lines)[4]["name"] == "station 4"


def test_parquet_and_arrow_are_rewritten(mosu, ckan):
    table = pa.table({"k": list(range(1000)), "v": [f"value {i}" for i in range(1000)]})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy", row_group_size=1000)
    res = ingest(ckan, buf.getvalue(), "data.parquet")
    assert res["row_count"] == 1000 and rows(ckan, res, 1)[0]["v"] == "value 0"
    sink = io.BytesIO()
    with ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    arrow = ingest(ckan, sink.getvalue(), "data.arrow")
    assert arrow["row_count"] == 1000


@pytest.mark.parametrize("name,compress", [
    ("gz", gzip.compress), ("bz2", bz2.compress), ("xz", lzma.compress),
    ("zst", lambda b: _zstd(b)),
])
def test_compressed_uploads(ckan, name, compress):
    res = ingest(ckan, compress(_csv(CITIES_ZH).encode("gbk")), f"cities.csv.{name}")
    got = rows(ckan, res)
    assert len(got) == len(CITIES_ZH) and got[0]["city"] == "上海"


def _zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


def test_decompression_bomb_is_refused_early(ckan):
    bomb = gzip.compress(b"0" * (30 * 1024 * 1024))  # 30 MB of zeros in ~30 KB
    res = ingest(ckan, bomb, "bomb.csv.gz")
    assert res["ingest_status"] == "failed"
    assert res["ingest_error"] == (
        f"The gzip file unpacks to more than {200 * len(bomb):,} bytes (limit: 53,687,091,200 bytes or 200x the "
        "upload); it was refused as a possible decompression bomb."), \
        "stopped at 200 times the upload, long before the 30 MB inside"


def test_damaged_compressed_file(ckan):
    res = ingest(ckan, gzip.compress(_csv(CITIES_ZH).encode())[:-40], "cut.csv.gz")
    assert res["ingest_status"] == "failed"
    assert res["ingest_error"] == "The gzip file is damaged or truncated: Truncated compressed stream"


def _workbook(sheets: dict[str, list[list]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, rows_ in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows_:
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_excel_sheets_types_and_choice(ckan):
    import datetime as dt

    book = _workbook({
        "人口": [["城市", "人口", "统计日期"], ["上海", 24870895, dt.date(2020, 11, 1)],
                 ["北京", 21893095, dt.date(2020, 11, 1)]],
        "notes": [["id", "text", "mixed"], [1, "first", 3], [2, "second", "n/a"], [3, None, 4.5]],
    })
    first = ingest(ckan, book, "census.xlsx")
    got = rows(ckan, first)
    assert got[0]["城市"] == "上海" and got[0]["人口"] == 24870895
    assert got[0]["统计日期"].startswith("2020-11-01")
    second = ingest(ckan, book, "census-notes.xlsx", sheet="notes")
    got = rows(ckan, second)
    assert [r["mixed"] for r in got] == ["3", "n/a", "4.5"], "a column with text in it stays text, nothing lost"
    assert got[2]["text"] is None
    by_table = ingest(ckan, book, "census-table.xlsx", table="notes")
    assert rows(ckan, by_table)[1]["text"] == "second", "table picks a sheet as sheet does"
    missing = ingest(ckan, book, "census-x.xlsx", sheet="nope")
    assert missing["ingest_status"] == "failed"
    assert missing["ingest_error"] == "No sheet named 'nope'; the sheets are: 人口, notes."


def _zip(entries: dict[str | zipfile.ZipInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("name,extra,error", [
    ("bomb.xlsx", {"xl/media/padding.bin": b"\0" * (40 * 1024 * 1024)},  # 40 MB of zeros in ~40 KB
     re.compile(r"The workbook unpacks to [\d,]+ bytes \(\d+x its size; 'xl/media/padding\.bin' alone declares "
                r"41,943,040\); it was refused as a possible ZIP bomb\.")),
    ("linked.xlsx", {"xl/externalLinks/externalLink1.xml": b"<externalLink/>"},
     "The workbook links to other workbooks (external references); paste the values in and upload it again."),
    ("escape.xlsx", {"../../etc/evil.xml": b"x"},
     "The workbook contains an entry with an unsafe path ('../../etc/evil.xml')."),
], ids=["zip-bomb", "external-link", "unsafe-path"])
def test_hostile_workbooks_are_refused(ckan, name, extra, error):
    book = _workbook({"s": [["a"], [1]]})
    with zipfile.ZipFile(io.BytesIO(book)) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    res = ingest(ckan, _zip({**parts, **extra}), name)
    assert res["ingest_status"] == "failed"
    if isinstance(error, re.Pattern):
        assert error.fullmatch(res["ingest_error"]), res["ingest_error"]
    else:
        assert res["ingest_error"] == error


def test_ragged_rows_fail_with_the_line_number(ckan):
    text = "a,b\n1,2\n3,4\n5,6,7,8\n9,10\n"
    res = ingest(ckan, text.encode(), "ragged.csv")
    assert res["ingest_status"] == "failed"
    assert res["ingest_error"] == ("Line 4 has 4 fields where the header has 2 (delimiter ','); fix that row or quote "
                                   "the field that holds the delimiter.")


def test_a_line_over_the_limit_fails_without_echoing_it(ckan):
    text = "a,b\n1,short\n2," + "x" * 1_500_000 + "\n"
    res = ingest(ckan, text.encode(), "long-line.csv")
    assert res["ingest_status"] == "failed"
    assert res["ingest_error"] == ("A line is 1,500,003 bytes long, over the limit of 1,048,576 bytes "
                                   "(MOSU_MAX_LINE_BYTES); is a quote left open, or is the file not line-based?"), \
        "no line number: DuckDB's (line 1 here) counts within its buffer, and the long line is the third"


# -- ZIP archives of tables ---------------------------------------------------------------------

def _archive(ckan, res: dict) -> dict:
    """What the worker read from an archive, as ``ingest_status_show`` reports it."""
    return ckan.action.ingest_status_show(id=res["id"])["progress"]["archive"]


def _version(mosu, res: dict) -> tuple[ResourceVersion, int]:
    """The resource's latest version, read from the database, and the stored size of its raw upload."""
    platform = mosu.inspect()
    try:
        with platform.read() as s:
            version = s.scalar(select(ResourceVersion).where(ResourceVersion.resource_id == res["id"])
                               .order_by(ResourceVersion.number.desc()))
            s.expunge(version)
        return version, platform.store.size(version.raw_key)
    finally:
        platform.close()


def test_zip_of_part_files_is_one_table(mosu, ckan):
    parts = {f"crawl/part-{i:04d}.csv": _csv(CITIES_ZH[6 * i:6 * (i + 1)]).encode() for i in range(3)}
    data = _zip({"crawl/": b"", "__MACOSX/crawl/._part-0000.csv": b"\0\5\26\7", ".DS_Store": b"\0\0\0\1Bud1",
                 **parts, "crawl/_SUCCESS": b""})
    res = ingest(ckan, data, "crawl.zip")
    got = rows(ckan, res)
    assert [(r["city"], r["population"], r["note"]) for r in got] == [tuple(c) for c in CITIES_ZH]
    archive = _archive(ckan, res)
    assert archive["members"] == archive["used"] == list(parts) and archive["combined"] is True
    assert archive["skipped"] == ["crawl/_SUCCESS (empty)"], "packaging noise is not even listed"
    source = _version(mosu, res)[0].validation["source"]
    assert source["compression"] == "zip" and source["archive"]["used"] == list(parts)


def test_zip_of_different_tables_publishes_the_first_or_the_chosen_one(ckan):
    data = _zip({"README.md": b"# Census extract\n", "first.csv": _csv(CITIES_JA).encode(),
                 "second.csv": b"id,name\n1,one\n2,two\n"})
    first = ingest(ckan, data, "tables.zip")
    assert rows(ckan, first)[0]["city"] == "東京" and first["row_count"] == len(CITIES_JA)
    archive = _archive(ckan, first)
    assert archive["members"] == ["first.csv", "second.csv"] and archive["used"] == ["first.csv"]
    assert archive["skipped"] == ["README.md (documentation)"]
    second = ingest(ckan, data, "tables-2.zip", table="second.csv")
    assert [r["name"] for r in rows(ckan, second)] == ["one", "two"]
    by_index = ingest(ckan, data, "tables-3.zip", table="1")
    assert _archive(ckan, by_index)["used"] == ["second.csv"]
    unknown = ingest(ckan, data, "tables-x.zip", table="third.csv")
    assert unknown["ingest_status"] == "failed"
    assert unknown["ingest_error"] == "The archive has no table 'third.csv'; the tables are: first.csv, second.csv."


def test_each_zip_member_has_its_own_encoding(ckan):
    # A GBK part and a UTF-8 part of one table, and a gzip-compressed Big5 table.
    data = _zip({"2020.csv": _csv(CITIES_ZH[:6]).encode("gbk"), "2021.csv": _csv(CITIES_ZH[6:9]).encode(),
                 "taiwan.csv.gz": gzip.compress(_csv(CITIES_TW, header=("name", "people", "about")).encode("big5"))})
    first = ingest(ckan, data, "mixed.zip")
    assert [r["city"] for r in rows(ckan, first)] == [c[0] for c in CITIES_ZH[:6]], "different headers: first"
    tw = ingest(ckan, data, "mixed-tw.zip", table="taiwan.csv.gz")
    assert rows(ckan, tw)[0]["name"] == "臺北"
    assert ckan.action.ingest_status_show(id=tw["id"])["progress"]["encoding"] == "big5"
    both = _zip({"2020.csv": _csv(CITIES_ZH[:6]).encode("gbk"), "2021.csv": _csv(CITIES_ZH[6:9]).encode()})
    res = ingest(ckan, both, "parts.zip")
    assert [r["city"] for r in rows(ckan, res)] == [c[0] for c in CITIES_ZH[:9]]
    assert ckan.action.ingest_status_show(id=res["id"])["progress"]["encoding"] == "gb18030, utf-8"
    # Windows zip tools write Chinese member names in GBK, without the UTF-8 flag.
    named = _zip({"abcd.csv": _csv(CITIES_ZH).encode("gbk")}).replace(b"abcd.csv", "人口.csv".encode("gbk"))
    res = ingest(ckan, named, "gbk-names.zip", table="人口.csv")
    assert rows(ckan, res)[0]["city"] == "上海" and _archive(ckan, res)["used"] == ["人口.csv"]


def _symlink(name: str) -> zipfile.ZipInfo:
    link = zipfile.ZipInfo(name)
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return link


@pytest.mark.parametrize("name,entries,error", [
    ("evil.zip", {"ok.csv": b"a\n1\n", "../evil.csv": b"a\n2\n"},
     "The ZIP archive contains an entry with an unsafe path ('../evil.csv')."),
    ("link.zip", {"ok.csv": b"a\n1\n", _symlink("data/latest.csv"): b"/etc/passwd"},
     "The ZIP archive contains a symbolic link ('data/latest.csv')."),
    ("bomb.zip", {"ok.csv": b"a\n1\n", "zeros.csv": b"0" * (40 * 1024 * 1024)},  # 40 MB in ~40 KB
     re.compile(r"The ZIP archive unpacks to 41,943,044 bytes \(\d+x its size; 'zeros\.csv' alone declares "
                r"41,943,040\); it was refused as a possible ZIP bomb\.")),
], ids=["unsafe-path", "symlink", "zip-bomb"])
def test_hostile_zip_archives_are_refused_and_the_upload_kept(mosu, ckan, name, entries, error):
    data = _zip(entries)
    res = ingest(ckan, data, name)
    assert res["ingest_status"] == "failed"
    if isinstance(error, re.Pattern):
        assert error.fullmatch(res["ingest_error"]), res["ingest_error"]
    else:
        assert res["ingest_error"] == error
    version, raw_size = _version(mosu, res)
    assert version.status == "failed" and version.parquet_key is None
    assert raw_size == len(data), "the raw upload is kept as it came"


def test_zip_without_a_table_or_with_a_locked_one(ckan):
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    res = ingest(ckan, _zip({"README.txt": b"Photos of the survey sites\n", "site.png": png,
                             "inner.zip": _zip({"a.csv": b"a\n1\n"})}), "photos.zip")
    assert res["ingest_status"] == "failed"
    assert res["ingest_error"] == (
        "The ZIP archive holds no table Mosu can read (CSV, TSV, JSON, JSON lines, Excel, Parquet or Arrow); "
        "it holds: README.txt (documentation), site.png (a PNG image), inner.zip (a nested archive; not read).")
    many = _zip({f"img-{i:03d}.png": png for i in range(200)})
    res = ingest(ckan, many, "many.zip")
    assert res["ingest_status"] == "failed"
    assert res["ingest_error"] == (
        "The ZIP archive holds no table Mosu can read (CSV, TSV, JSON, JSON lines, Excel, Parquet or Arrow); it holds: "
        + ", ".join(f"img-{i:03d}.png (a PNG image)" for i in range(11)) + " and 189 more."), \
        "eleven named, the rest counted"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("locked.csv", b"a\n1\n")
        zf.infolist()[-1].flag_bits |= 0x1  # marked encrypted in the central directory
    res = ingest(ckan, buf.getvalue(), "locked.zip")
    assert res["ingest_error"] == ("The ZIP archive contains an encrypted entry ('locked.csv'); "
                                   "upload it without a password.")


# -- types: inference that survives odd values, and the provider's data dictionary -----------------

def _typed_csv(rows: int, odd: dict[int, tuple[str, str]] | None = None) -> bytes:
    """Columns of every inferred type; ``odd`` puts a value that does not fit into (row -> column)."""
    odd = odd or {}
    lines = ["id,price,day,seen_at,seen_tz,active,postcode,label"]
    for i in range(1, rows + 1):
        values = {"id": str(i), "price": f"{i * 1.25:.2f}", "day": f"2024-03-{i % 28 + 1:02d}",
                  "seen_at": f"2024-03-01 08:{i % 60:02d}:00", "seen_tz": "2024-03-01T08:00:00+08:00",
                  "active": "true" if i % 2 else "false", "postcode": f"0{i % 9}{i % 7}10", "label": f"item {i}"}
        if i in odd:
            column, value = odd[i]
            values[column] = value
        lines.append(",".join(values.values()))
    return ("\n".join(lines) + "\n").encode()


def _schema(ckan, res) -> dict[str, str]:
    version = ckan.action.resource_version_list(id=res["id"])[0]
    return {c["id"]: c["type"] for c in version["schema"]}


def test_each_type_is_inferred_and_codes_keep_their_zeros(ckan):
    res = ingest(ckan, _typed_csv(50), "typed.csv")
    assert _schema(ckan, res) == {"id": "int64", "price": "double", "day": "date32[day]", "seen_at": "timestamp[us]",
                                  "seen_tz": "timestamp[us, tz=UTC]", "active": "bool", "postcode": "string",
                                  "label": "string"}
    assert rows(ckan, res)[0]["postcode"] == "01110", "a code with a leading zero stays text"
    assert res["ingest_warnings"] == []


def test_odd_values_leave_the_column_typed_and_are_reported_with_row_numbers(ckan):
    # One odd price inside the sniffer's sample, and one odd id long after it (row 25,000).
    body = "id,price,label\n" + "".join(
        f"{'see note' if i == 25_000 else i},{'n/a' if i == 3 else f'{i * 1.25:.2f}'},item {i}\n"
        for i in range(1, 25_001))
    res = ingest(ckan, body.encode(), "odd.csv")
    assert res["ingest_status"] == "ready", res["ingest_error"]
    schema = _schema(ckan, res)
    assert schema["price"] == "double" and schema["id"] == "int64", "one odd value does not make a column text"
    first = rows(ckan, res, limit=4)
    assert first[2]["price"] is None and first[3]["price"] == 5.0
    last = ckan.action.datastore_search(resource_id=res["id"], offset=24_999, limit=1)["records"][0]
    assert last["id"] is None and last["label"] == "item 25000"
    assert res["ingest_warnings"] == [
        "Column 'id': 1 value could not be read as integer and was left empty: row 25000 ('see note').",
        "Column 'price': 1 value could not be read as float and was left empty: row 3 ('n/a').",
    ]
    status = ckan.action.ingest_status_show(id=res["id"])
    assert {"column": "price", "type": "float", "count": 1,
            "examples": [{"row": 3, "value": "n/a"}]} in status["progress"]["odd_values"]
    assert ckan.action.resource_version_list(id=res["id"])[0]["warnings"] == res["ingest_warnings"]


def test_many_odd_values_are_counted_and_a_few_shown(ckan):
    body = _typed_csv(3000, {i: ("price", f"unknown-{i}") for i in range(100, 3000, 200)})  # 15 of 3,000
    res = ingest(ckan, body, "many-odd.csv")
    assert _schema(ckan, res)["price"] == "double"
    assert res["ingest_warnings"] == [
        "Column 'price': 15 values could not be read as float and were left empty: row 100 ('unknown-100'), "
        "row 300 ('unknown-300'), row 500 ('unknown-500'), row 700 ('unknown-700'), row 900 ('unknown-900') "
        "and 10 more."]


def test_a_column_that_is_really_text_stays_text(ckan):
    body = b"id,comment\n" + b"".join(b"%d,%s\n" % (i, b"fine" if i % 3 else b"12") for i in range(300))
    res = ingest(ckan, body, "text.csv")
    assert _schema(ckan, res)["comment"] == "string" and res["ingest_warnings"] == []


def test_data_dictionary_declares_types_labels_and_descriptions(ckan):
    dictionary = [{"id": "price", "type": "decimal(10,2)", "label": "Unit price", "description": "In CNY, with VAT"},
                  {"id": "postcode", "type": "integer"},
                  {"id": "label", "title": "Item label"}]
    body = _typed_csv(40, {7: ("postcode", "none")})
    res = ingest(ckan, body, "declared.csv", schema=json.dumps(dictionary))
    assert res["schema"]["fields"][0] == {"id": "price", "type": "DECIMAL(10,2)", "label": "Unit price",
                                          "description": "In CNY, with VAT"}
    schema = _schema(ckan, res)
    assert schema["price"] == "decimal128(10, 2)" and schema["postcode"] == "int64"
    assert res["ingest_warnings"] == [
        "Column 'postcode': 1 value could not be read as integer and was left empty: row 7 ('none')."]
    found = ckan.action.datastore_search(resource_id=res["id"], limit=1)
    info = {f["id"]: f.get("info") for f in found["fields"]}
    assert info["price"] == {"label": "Unit price", "description": "In CNY, with VAT", "notes": "In CNY, with VAT"}
    assert info["label"] == {"label": "Item label"} and info["id"] is None
    assert found["records"][0]["price"] == "1.25", "decimals come back exact (as JSON text)"


@pytest.mark.parametrize("bad,message", [
    ('[{"id": "price", "type": "money"}]', "field 0: unknown type 'money' (use one of integer, float, decimal(p,s), "
                                           "boolean, date, timestamp, timestamptz, string)"),
    ('[{"type": "integer"}]', "field 0: needs an id (the column name)"),
    ("not json", "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    ('[{"id": "a"}, {"id": "a"}]', "field 1: repeats the column 'a'"),
], ids=["unknown-type", "no-id", "not-json", "repeated-column"])
def test_a_bad_data_dictionary_is_refused_when_saved(ckan, bad, message):
    with pytest.raises(ckanapi.ValidationError) as err:
        ckan.action.resource_create(package_id="formats", name="bad dictionary", schema=bad,
                                    upload=("x.csv", io.BytesIO(b"a\n1\n")))
    assert err.value.error_dict["schema"] == [f"Invalid data dictionary: {message}"]


def test_a_stale_data_dictionary_fails_the_ingest(ckan):
    res = ingest(ckan, b"a,b\n1,2\n", "missing.csv", schema='[{"id": "c", "type": "integer"}]')
    assert res["ingest_status"] == "failed"
    assert res["ingest_error"] == ("The data dictionary names columns the file does not have: 'c'; "
                                   "the file's columns are 'a', 'b'.")
