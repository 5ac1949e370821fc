"""Pure logic: sniffing, keys, the audit chain, settings, type mapping, file names."""
from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from catalog.core import keys
from catalog.core.coltypes import CKAN_TYPES, DECLARED, ckan_type
from catalog.core.errors import IngestFailed, NotAuthorized, NotFound, PayloadTooLarge, ValidationError, http_status
from catalog.core.settings import Settings
from catalog.datastore.sandbox import json_value
from catalog.db import like
from catalog.db.models import AuditEvent
from catalog.records import audit
from catalog.versions.uploads import display_filename, format_from_filename
from ingest.sniff import sniff

ID = "6f1c1f8e-8d2a-4a53-9d55-0a7a8f6b1e2c"


_READABLE = ("CSV, TSV, JSON, JSON lines, Excel, Parquet or Arrow, optionally gzip, bzip2, xz or zstd "
             "compressed")


@pytest.mark.parametrize("head,message", [
    (b"", "The file is empty: there is no table to read."),
    (b"%PDF-1.7\n...", f"This file is a PDF document, not a table Mosu can read ({_READABLE})."),
    (b"GIF89a....", f"This file is a GIF image, not a table Mosu can read ({_READABLE})."),
    (b"a,b\n1,\x00\x002\n", "This file contains binary data (NUL bytes), not a delimited text table. "
                            "Upload the data as CSV."),
    (bytes(range(1, 32)) * 20, "This file does not look like text: it is not a delimited table (CSV or TSV)."),
], ids=["empty", "pdf", "gif", "nul-bytes", "control-characters"])
def test_sniff_refuses_what_is_not_a_table(head, message):
    with pytest.raises(IngestFailed) as err:
        sniff(head)
    assert err.value.message == message


@pytest.mark.parametrize("head,expected", [
    ("名前,年\n李,30\n".encode(), ("csv", None)),
    (b"\xef\xbb\xbfa;b\n1;2\n", ("csv", None)),
    (b"\xff\xfea\x00,\x00b\x00", ("csv", None)),
    (b"  [{\"a\": 1}]", ("json", None)),
    (b'{"a": 1}\n{"a": 2}\n', ("json", None)),
    (b"\x1f\x8b\x08\x00", ("compressed", "gzip")),
    (b"\x28\xb5\x2f\xfd....", ("compressed", "zstd")),
    (b"PAR1....", ("parquet", None)),
    (b"ARROW1\x00\x00", ("arrow", None)),
    (b"PK\x03\x04rest", ("zip", None)),
    (b"\xd0\xcf\x11\xe0\xa1\xb1", ("xls", None)),
], ids=["csv-utf8", "csv-bom", "csv-utf16", "json-array", "json-lines", "gzip", "zstd", "parquet", "arrow", "zip",
        "xls"])
def test_sniff_recognises_tables(head, expected):
    got = sniff(head)
    assert (got.format, got.compression) == expected


@pytest.mark.parametrize("text,encoding,expected", [
    ("城市,人口\n上海,24870895\n北京,21893095\n广州,18676605\n" * 4, "gbk", "gb18030"),
    ("都市,人口\n東京,13960000\n大阪,2750000\n名古屋,2330000\n" * 4, "shift_jis", "shift_jis"),
    ("name,city\nJosé,São Paulo\nRenée,Zürich\n" * 4, "cp1252", "cp1252"),
    ("plain,ascii\n1,2\n", "utf-8", "utf-8"),
    ("city\nZürich\nGenève\n", "cp1252", "cp1252"),      # short: accented letters alone
    ("station,height\n上海,3.2\n", "gbk", "gb18030"),     # short: GB18030 first
], ids=["gbk", "shift_jis", "cp1252", "ascii", "cp1252-short", "gbk-short"])
def test_encoding_detection(text, encoding, expected):
    from ingest.decode import detect_encoding

    assert detect_encoding(text.encode(encoding)) == expected


def test_utf8_cut_in_the_middle_of_a_character_is_still_utf8():
    from ingest.decode import detect_encoding

    assert detect_encoding("上海,1\n".encode()[:4]) == "utf-8"


def test_keys_come_from_ids_only():
    assert keys.raw_upload(ID, ID) == f"raw/{ID}/{ID}"
    assert keys.version_parquet(ID, ID) == f"parquet/{ID}/{ID}.parquet"
    assert keys.staging_parquet(ID, 2) == f"staging/{ID}/2.parquet"
    assert keys.raw_upload(ID.upper(), "{" + ID + "}") == f"raw/{ID}/{ID}", "a key holds the id's one spelling"


@pytest.mark.parametrize("hostile", ["../etc", "a/b", "", "x" * 36, f"{ID}/.."],
                         ids=["parent", "slash", "empty", "not-hex", "uuid-then-parent"])
def test_a_key_refuses_what_is_not_an_id(hostile):
    with pytest.raises(ValueError, match="^badly formed hexadecimal UUID string$"):
        keys.raw_upload(hostile, ID)
    with pytest.raises(ValueError, match="^badly formed hexadecimal UUID string$"):
        keys.raw_upload(ID, hostile)


def _event_sha256(prev_hash: str, ev: AuditEvent) -> str:
    """The chain's documented form, written out here rather than borrowed from ``audit``: SHA-256
    of the previous hash followed by the event's fields as compact JSON with sorted keys."""
    fields = {"id": ev.id, "ts": ev.ts.isoformat(), "actor": ev.actor, "action": ev.action,
              "object_type": ev.object_type, "object_id": ev.object_id, "detail": ev.detail}
    return hashlib.sha256((prev_hash + json.dumps(fields, sort_keys=True, separators=(",", ":"))).encode()).hexdigest()


def _chain(n: int) -> list[AuditEvent]:
    events, prev = [], "0" * 64
    for i in range(n):
        ev = AuditEvent(seq=i + 1, id=f"id{i}", ts=dt.datetime(2026, 1, 1, 0, 0, i), actor="alice",
                        action="datastore_search", object_type="resource", object_id=ID, detail={"n": i})
        ev.prev_hash = prev
        ev.hash = _event_sha256(prev, ev)
        prev = ev.hash
        events.append(ev)
    return events


def test_audit_event_hash_is_the_documented_sha256():
    canonical = ('{"action":"datastore_search","actor":"alice","detail":{"n":0},"id":"id0",'
                 f'"object_id":"{ID}","object_type":"resource","ts":"2026-01-01T00:00:00"}}')
    golden = "9690f6b2a04ce3523efe17c47da4417fd5b26be76074eab4902adc14cf6c2628"
    assert hashlib.sha256(("0" * 64 + canonical).encode()).hexdigest() == golden
    first = _chain(1)[0]
    assert first.hash == golden
    assert audit.GENESIS == "0" * 64
    assert audit.verify([first]) == (True, None)
    first.hash = "f" + golden[1:]
    assert audit.verify([first]) == (False, 1)


def test_audit_chain_verifies_and_detects_tampering():
    events = _chain(5)
    assert audit.verify(events) == (True, None)
    events[2].detail = {"n": 99}
    assert audit.verify(events) == (False, 3)
    events = _chain(5)
    del events[1]
    assert audit.verify(events) == (False, 3)
    events = _chain(5)
    events[3].actor = "mallory"
    events[3].hash = _event_sha256(events[3].prev_hash, events[3])
    assert audit.verify(events) == (False, 5), "re-hashing one event breaks the next link"


def test_audit_chain_detects_two_events_swapped():
    events = _chain(5)
    events[1], events[2] = events[2], events[1]
    assert audit.verify(events) == (False, 3), "the event now second links to the one it followed"


def test_settings_from_env_and_back():
    s = Settings.from_env({"MOSU_DATA_DIR": "/srv/mosu", "MOSU_MAX_UPLOAD_BYTES": "1234",
                           "MOSU_S3_ENDPOINT": "http://127.0.0.1:9000", "OTHER": "x"})
    assert s.data_dir == Path("/srv/mosu") and s.max_upload_bytes == 1234
    assert s.effective_database_url == "sqlite:////srv/mosu/catalog.sqlite"
    assert Settings.from_env(s.to_env()) == s
    assert Settings.from_env({"MOSU_DATABASE_URL": "postgresql://x/y"}).effective_database_url == "postgresql://x/y"
    with pytest.raises(ValueError, match="^MOSU_JOB_LEASE_SECONDS must be a number, got 'soon'$"):
        Settings.from_env({"MOSU_JOB_LEASE_SECONDS": "soon"})


@pytest.mark.parametrize("word,value", [("true", True), ("YES", True), ("1", True), ("on", True),
                                        ("False", False), ("no", False), ("0", False), ("off", False)])
def test_boolean_settings_parse_words(word, value):
    assert Settings.from_env({"MOSU_USERS_CREATE_ORGANIZATIONS": word}).users_create_organizations is value


def test_boolean_settings_default_round_trip_and_refuse_other_words():
    assert Settings().users_create_organizations is False, "CKAN's default: only sysadmins create organizations"
    allowed = Settings(users_create_organizations=True)
    assert Settings.from_env(allowed.to_env()) == allowed
    with pytest.raises(ValueError, match="^MOSU_USERS_CREATE_ORGANIZATIONS must be true or false, got 'sometimes'$"):
        Settings.from_env({"MOSU_USERS_CREATE_ORGANIZATIONS": "sometimes"})


def test_like_patterns_take_wildcards_literally():
    assert like.pattern("c_rol.pri%@secret") == "%c\\_rol.pri\\%@secret%"
    assert like.pattern("a\\b") == "%a\\\\b%"
    assert like.pattern("plain") == "%plain%"


def test_sql_text_quotes_names_and_literals_and_keeps_an_errors_first_line():
    from catalog.core.sqltext import first_line, ident, literal

    assert ident('a "b"') == '"a ""b"""' and ident("") == '""'
    assert literal("it's") == "'it''s'" and literal(Path("/x/y'z")) == "'/x/y''z'"
    assert first_line(ValueError("Parser Error: bad\nLINE 1: SELECT " + "x" * 500)) == "Parser Error: bad"
    assert first_line(ValueError("y" * 400)) == "y" * 300 and first_line(ValueError("z" * 400), 10) == "z" * 10
    assert first_line(ValueError("  ")) == "ValueError", "an empty message names the error, not IndexError"


def test_ckan_types_and_json_values():
    assert [ckan_type(t) for t in ("BIGINT", "DOUBLE", "DECIMAL(10,2)", "VARCHAR", "DATE",
                                   "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "BOOLEAN", "INTEGER[]")] == \
        ["int", "float", "numeric", "text", "date", "timestamp", "timestamptz", "bool", "json"]
    assert json_value(dt.date(2024, 2, 29)) == "2024-02-29"
    assert json_value(decimal.Decimal("1.10")) == "1.10"
    assert json_value(float("nan")) is None
    assert json_value({"a": [dt.datetime(2024, 1, 1, 12)]}) == {"a": ["2024-01-01T12:00:00"]}


def test_one_column_type_table_agrees_for_duckdb_arrow_and_dictionary_names():
    import duckdb

    from catalog.core import coltypes
    from quality.pii import scannable
    from quality.profile import classify

    con = duckdb.connect()
    rel = con.sql("SELECT 1::TINYINT a, 2::BIGINT b, 3::UBIGINT c, 1.5::FLOAT d, 2.5::DOUBLE e, 1.25::DECIMAL(10,2) f, "
                  "true g, DATE '2024-01-01' h, TIMESTAMP '2024-01-01 08:00' i, "
                  "TIMESTAMPTZ '2024-01-01 08:00+08' j, TIME '08:00' k, 'x' l, [1, 2] m, {'p': 1} n, "
                  "uuid() o, 'x'::BLOB q")
    duck = [str(t) for t in rel.types]
    arrow = [str(f.type) for f in rel.arrow().schema]
    expected = ["int", "int", "int", "float", "float", "numeric", "bool", "date", "timestamp", "timestamptz",
                "time", "text", "json", "json", "text", "text"]
    assert [coltypes.ckan_type(t) for t in duck] == expected, duck
    assert [coltypes.of_arrow(t).ckan for t in arrow] == expected, arrow
    assert [classify(t)[0] for t in duck] == expected, "the profile reads the same table"
    assert [scannable(t) for t in duck] == [False, True, True] + [False] * 8 + [True] + [False] * 4
    assert coltypes.said("BIGINT") == "integer" and coltypes.said("VARCHAR") == "text"
    assert coltypes.said("DECIMAL(10,2)") == "decimal(10,2)"


@pytest.mark.parametrize("word,declared", sorted(DECLARED.items()))
def test_each_dictionary_type_word_names_one_duckdb_type_with_a_ckan_type(word, declared):
    from catalog.core.dictionary import duckdb_type

    assert duckdb_type(word) == duckdb_type(declared) == declared
    assert ckan_type(declared) in CKAN_TYPES


def test_client_file_names_are_reduced_to_labels():
    assert display_filename("../../etc/passwd") == "passwd"
    assert display_filename("C:\\Users\\me\\data.csv") == "data.csv"
    assert display_filename("a\x00b\nc.csv") == "abc.csv"
    assert format_from_filename("export.CSV.gz") == "CSV"
    assert format_from_filename("noext") == ""


def test_errors_map_to_ckan_types_in_one_table():
    assert http_status(NotFound("x")) == (404, "Not Found Error")
    assert http_status(NotAuthorized("x")) == (403, "Authorization Error")
    assert http_status(ValidationError({"name": ["bad"]})) == (409, "Validation Error")
    assert http_status(PayloadTooLarge("x"))[0] == 413
    assert http_status(KeyError("boom")) == (500, "Internal Server Error")


def test_an_unknown_action_is_a_typed_error_not_a_message_to_match():
    from catalog.actions import get_action
    from catalog.api.errors import error_body
    from catalog.core.errors import BadRequest, UnknownAction

    with pytest.raises(UnknownAction) as err:
        get_action("no_such_thing")
    assert err.value.name == "no_such_thing" and err.value.message == "Action name not known: no_such_thing"
    assert error_body(err.value, "r1") == (400, {"__type": "Bad request - Action Error",
                                                 "message": "Action name not known: no_such_thing"})
    # Another bad request whose text happens to start the same way keeps its own type.
    assert error_body(BadRequest("Action name not known: spoof"), "r2")[1]["__type"] == "Bad request - JSON Error"


def test_a_second_action_with_a_taken_name_is_refused():
    from catalog.actions import action, action_names, get_action

    names, package_show = action_names(), get_action("package_show")

    def package_show_(ctx, data):  # a plugin or a new module reusing a name
        return "hijacked"

    package_show_.__name__ = "package_show"
    with pytest.raises(ValueError, match="two actions are named 'package_show'"):
        action(package_show_)
    assert get_action("package_show") is package_show and action_names() == names
    assert {"package_show", "datastore_search", "quality_report_show", "resource_upload_start", "status_show",
            "tag_list", "user_show", "datastore_search_sql", "package_search"} <= set(names), "every module loaded"


def test_blocking_failures_are_explained_in_plain_words():
    from quality.report import explain_blocking

    report = {"validation": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}, "severity": "blocking",
         "status": "failed", "success": False, "unexpected_count": 2, "examples": [{"row": 4, "value": None}]},
        {"type": "expect_table_columns_to_match_ordered_list", "kwargs": {"column_list": ["a", "b"]},
         "severity": "blocking", "status": "failed", "success": False, "observed_value": ["a", "c"]},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x"}, "severity": "warning",
         "status": "failed", "success": False, "unexpected_count": 9, "examples": []},
    ]}
    text = explain_blocking(report)
    assert text.startswith("Blocking quality checks failed")
    assert "column values to not be null on column 'id': 2 unexpected (row 4)" in text
    assert "['a', 'c']" in text and "'x'" not in text, "warnings do not block"
    assert explain_blocking({"validation": report["validation"][2:]}) is None


def test_a_checked_suite_defaults_to_blocking():
    from quality.expectations import check_suite

    good = check_suite({"expectations": [{"type": "expect_column_values_to_be_unique", "kwargs": {"column": "a"}}]},
                       ["a"])
    assert good.expectations[0].severity == "blocking"
    assert good.as_gx()["expectations"][0]["meta"]["severity"] == "blocking"


_UNIQUE, _REGEX, _NOT_NULL = ("expect_column_values_to_be_unique", "expect_column_values_to_match_regex",
                              "expect_column_values_to_not_be_null")


@pytest.mark.parametrize("doc,message", [
    ({"expectations": [{"type": _UNIQUE, "kwargs": {}}]}, f"expectation 0 ({_UNIQUE}): missing column"),
    ({"expectations": [{"type": _UNIQUE, "kwargs": {"column": "a"}}, {"type": _REGEX, "kwargs": {
        "column": "a", "regex": "("}}]},
     f"expectation 1 ({_REGEX}): regex does not compile: missing ), unterminated subpattern at position 0"),
    ({"expectations": [{"type": _NOT_NULL, "kwargs": {"column": "a", "mostly": 2}}]},
     f"expectation 0 ({_NOT_NULL}): mostly must be a number from 0 to 1"),
    ({"expectations": [{"type": _NOT_NULL, "kwargs": {"column": "a", "colour": 1}}]},
     f"expectation 0 ({_NOT_NULL}): unknown argument 'colour'"),
    ({"expectations": "x"}, 'the suite must be an object with a list "expectations"'),
], ids=["missing-column", "bad-regex", "mostly-out-of-range", "unknown-argument", "not-a-list"])
def test_suite_checks_name_the_bad_expectation(doc, message):
    from quality.expectations import SuiteError, check_suite

    with pytest.raises(SuiteError) as err:
        check_suite(doc, ["a"])
    assert str(err.value) == message, "names the bad expectation by position and type"


def test_default_suite_and_score_from_a_profile():
    from quality.suites import default_suite, key_candidates, score

    profile = {"row_count": 100, "columns": [
        {"name": "id", "type": "int", "nulls": 0, "distinct": 100, "min": 1, "max": 100},
        {"name": "price", "type": "float", "nulls": 0, "distinct": 90, "min": 10.0, "max": 20.0},
        {"name": "kind", "type": "text", "nulls": 0, "distinct": 2,
         "top": [{"value": "a", "count": 60}, {"value": "b", "count": 40}]},
        {"name": "note", "type": "text", "nulls": 5, "distinct": 95},
    ]}
    assert key_candidates(profile) == ["id"]
    suite = default_suite(profile, ["id"])
    got = {(e["type"], e["kwargs"].get("column")): e for e in suite["expectations"]}
    assert got[("expect_column_values_to_be_unique", "id")]["meta"]["severity"] == "blocking"
    between = got[("expect_column_values_to_be_between", "price")]["kwargs"]
    assert between["min_value"] == 9.0 and between["max_value"] == 21.0, "10 % of the span either side"
    assert got[("expect_column_values_to_be_in_set", "kind")]["kwargs"]["value_set"] == ["a", "b"]
    assert ("expect_column_values_to_not_be_null", "note") not in got, "it had nulls"
    ok = [{"severity": "blocking", "success": True}, {"severity": "warning", "success": True}]
    assert score(ok, profile, [])["score"] == round(100 * (0.5 + 0.3 * (1 - 5 / 400) + 0.2))
    failed = score([{"severity": "blocking", "success": False}, {"severity": "warning", "success": True}],
                   profile, [{"count": 40}])
    assert failed["validity"] == round(1 / 3, 4) and failed["conformity"] == 0.9
    assert failed["explanation"].startswith(f"{failed['score']} = 100 × (0.5 × validity")


def test_great_expectations_accepts_every_expectation_of_a_generated_suite():
    """The worker skips GX's check for the suite it generates itself: GX must accept all of it, for
    every kind of column (keys, bounds of each number kind, sets of text and booleans, odd names)."""
    from quality.expectations import check_suite
    from quality.report import gx_errors
    from quality.suites import default_suite, key_candidates

    kinds = {"int": (1, 100), "float": (-0.5, 2.5), "date": ("2020-01-01", "2021-01-01"),
             "timestamp": ("2020-01-01 00:00:00", "2021-01-01 00:00:00"), "text": (None, None), "bool": (None, None)}
    columns = [{"name": "id", "type": "int", "nulls": 0, "distinct": 100, "min": 1, "max": 100}]
    for kind, (lo, hi) in kinds.items():
        for nulls in (0, 3):
            top = ([{"value": True, "count": 60}, {"value": False, "count": 40 - nulls}] if kind == "bool" else
                   [{"value": "甲", "count": 50}, {"value": "b c", "count": 50 - nulls}] if kind == "text" else [])
            columns.append({"name": f"{kind} 列 {nulls}", "type": kind, "nulls": nulls, "distinct": len(top) or 90,
                            "min": lo, "max": hi, "top": top})
    profile = {"row_count": 100, "columns": columns}
    doc = default_suite(profile, key_candidates(profile))
    types = {e["type"] for e in doc["expectations"]}
    assert {"expect_column_values_to_be_unique", "expect_column_values_to_be_between",
            "expect_column_values_to_be_in_set", "expect_column_values_to_not_be_null"} <= types
    assert gx_errors(check_suite(doc)) == {}


def test_ragged_line_finds_the_first_row_that_disagrees():
    from ingest.convert import ragged_line

    assert ragged_line(["a,b\n", "1,2\n", "3,4,5\n"], ",") == (3, 2, 3)
    assert ragged_line(['a,b\n', '"x\n', 'y",2\n', '1\n'], ",") == (4, 2, 1), "quoted newlines count as one row"
    assert ragged_line(["a;b\n", "1;2\n"], ";") is None


# -- types -------------------------------------------------------------------------------------

def test_infer_type_tolerates_one_percent_of_odd_values_and_keeps_codes_text():
    from ingest.types import SampleStats, infer_type

    def stats(values, leading_zeros=0, **parsed):
        return SampleStats(values, {k.upper(): v for k, v in parsed.items()}, leading_zeros)

    assert infer_type(stats(1000, bigint=1000, double=1000)) == "BIGINT"
    assert infer_type(stats(1000, bigint=10, double=990)) == "DOUBLE"  # 10 odd values of 1,000: still float
    assert infer_type(stats(1000, bigint=0, double=980)) is None       # 20 odd: really text
    assert infer_type(stats(10, double=9)) == "DOUBLE"                   # a small file may have one odd value
    assert infer_type(stats(1000, 5, bigint=1000, double=1000)) is None  # "00123" is a code, not 123
    assert infer_type(stats(3, bigint=3)) is None                        # too few values to say
    assert infer_type(stats(100, date=100, timestamp=100)) == "DATE"


def test_data_dictionary_forms_and_errors():
    from catalog.core.dictionary import TYPES, dictionary_dict, field_info, parse_dictionary

    fields = parse_dictionary('{"fields": [{"name": "p", "type": "Decimal(12, 3)", "title": "Price"}]}')
    assert fields[0].id == "p" and fields[0].type == "DECIMAL(12,3)" and fields[0].label == "Price"
    assert parse_dictionary([{"id": "t", "type": "timestamp with time zone"}])[0].type == "TIMESTAMPTZ"
    every = [{"id": f"c{i}", "type": name} for i, name in enumerate([*TYPES, "decimal(12,3)"])]
    stored = dictionary_dict(parse_dictionary(every))
    assert parse_dictionary(stored) == parse_dictionary(every), "the stored form (VARCHAR...) reads back as written"
    assert field_info({"fields": [{"id": "a", "description": "d"}, {"id": "b"}]}) == {
        "a": {"description": "d", "notes": "d"}}
    assert field_info("garbage") == {}


@pytest.mark.parametrize("bad,message", [
    ([], 'must be a non-empty list of fields, or {"fields": [...]}'),
    ({}, 'must be a non-empty list of fields, or {"fields": [...]}'),
    ("[1]", "field 0 must be an object"),
    ([{"id": "x", "type": "decimal(40,2)"}], "field 0: unknown type 'decimal(40,2)' (use one of integer, float, "
                                             "decimal(p,s), boolean, date, timestamp, timestamptz, string)"),
    ([{"id": 3}], "field 0: id must be text"),
], ids=["empty-list", "empty-object", "not-an-object", "decimal-too-wide", "id-not-text"])
def test_a_bad_data_dictionary_is_refused_with_its_reason(bad, message):
    from catalog.core.dictionary import DictionaryError, parse_dictionary

    with pytest.raises(DictionaryError) as err:
        parse_dictionary(bad)
    assert str(err.value) == message


def test_pii_sample_reaches_the_end_of_a_large_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from quality.report import _scan_pii, connect

    n = 400_000  # emails only in the last 20,000 rows: past any head window
    emails = pa.array([None] * (n - 20_000) + [f"person{i}@example.org" for i in range(20_000)])
    path = tmp_path / "late.parquet"
    pq.write_table(pa.table({"id": pa.array(range(n)), "contact": emails}), path, row_group_size=16_384)
    found = _scan_pii(connect(), path, [("id", "BIGINT"), ("contact", "VARCHAR")])
    assert [(f.column, f.kind) for f in found] == [("contact", "email")]


# -- HTTP hardening (issue 10, items 6, 7, 12, 14, 15) ------------------------------------------

@pytest.mark.parametrize("value,ok", [
    ("https://example.org/a?b=c#d", True), ("HTTP://example.org", True), ("//cdn.example.org/x", True),
    ("/dataset/x", True), ("data.csv", True), ("?q=a:b", True), ("", True),
    ("javascript:alert(document.domain)//", False), (" JavaScript:alert(1)", False),
    ("java\tscript:alert(1)", False), ("java\nscript:alert(1)", False), ("\x00javascript:x", False),
    ("data:text/html,<script>", False), ("vbscript:x", False), ("file:///etc/passwd", False),
    ("mailto:a@example.org", False), ("ftp://example.org/x", False),
])
def test_only_http_and_relative_urls_are_link_safe(value, ok):
    from catalog.core import validate

    assert validate.is_link_safe(value) is ok
    errors = validate.Errors()
    validate.url(value, errors, "url")
    assert ("url" in errors.fields) is not ok


def test_text_codecs_only():
    from catalog.core.validate import text_codec
    from ingest.decode import normalise

    assert text_codec("GBK") == "gbk" and text_codec("utf_8") == "utf-8" and text_codec("latin-1") == "iso8859-1"
    assert normalise("GBK") == "gb18030", "ingest still folds aliases onto their supersets"


@pytest.mark.parametrize("bad", ["base64_codec", "hex", "zlib", "bz2", "rot13", "uu", "quopri", "undefined", "idna",
                                 "unicode_escape", "nope", "", 7, None, ["utf-8"], "x" * 200],
                         ids=["base64_codec", "hex", "zlib", "bz2", "rot13", "uu", "quopri", "undefined", "idna",
                              "unicode_escape", "nope", "empty", "int", "None", "list", "200-chars"])
def test_a_codec_that_is_not_a_text_encoding_is_refused(bad):
    from catalog.core.validate import text_codec
    from ingest.decode import normalise

    assert text_codec(bad) is None
    with pytest.raises(IngestFailed) as err:
        normalise(bad)
    assert err.value.message == (f"Unknown text encoding {str(bad)[:100]!r}; set the resource's encoding to a "
                                 "text encoding such as utf-8, gb18030 or cp1252, or leave it empty"), \
        "the name, at most 100 characters of it"


def test_json_depth_ignores_brackets_in_strings_and_limits_nesting():
    from catalog.core import jsoninput

    assert jsoninput.depth('{"a": [1, {"b": []}]}') == 4
    assert jsoninput.depth('["[[[[", "\\"[[", {"k]": "}}"}]') == 2, "brackets in strings do not count"
    assert jsoninput.depth("[]" * 1000) == 1 and jsoninput.depth("[" + "[[]]," * 500 + "1]") == 3
    assert jsoninput.depth("[" * 3 + "{" * 3 + "}" * 3 + "]" * 3) == 6 and jsoninput.depth('"x"') == 0
    assert jsoninput.loads("[" * 64 + "]" * 64) is not None


@pytest.mark.parametrize("body", [
    "[" * 65 + "]" * 65, "[" * 200_000 + "]" * 200_000, '{"a":' * 100 + "1" + "}" * 100,
    ("[" * 100 + "]" * 100).encode("utf-16"), ('["\u2200", ' * 100 + "1" + "]" * 100).encode("utf-16-le"),
    b"[" * 200_000, b"[" * 200_000 + b"]",
], ids=["65-arrays", "200k-arrays", "100-objects", "utf-16-bom", "utf-16-le", "200k-unclosed", "200k-one-closed"])
def test_json_nested_too_deep_is_refused_before_parsing(body):
    """Unclosed ones too: the depth is counted before the parser sees the body."""
    from catalog.core import jsoninput
    from catalog.core.errors import BadRequest

    with pytest.raises(BadRequest, match=r"^Bad request - JSON Error: nested deeper than 64 levels$"):
        jsoninput.loads(body)


def test_json_that_does_not_parse_names_the_parser_error():
    from catalog.core import jsoninput
    from catalog.core.errors import BadRequest

    with pytest.raises(BadRequest, match=r"^Bad request - JSON Error: Expecting property name enclosed in double "
                                         r"quotes: line 1 column 2 \(char 1\)$"):
        jsoninput.loads(b"{not json")


def test_failure_counter_windows_bound_and_keys():
    from catalog.access.throttle import FailureCounter, client_key

    now = [1000.0]
    counter = FailureCounter(limit=3, window=60, max_keys=2, clock=lambda: now[0])
    for _ in range(3):
        assert counter.retry_after("a") == 0
        counter.fail("a")
    assert counter.retry_after("a") == 60
    now[0] += 45
    assert counter.retry_after("a") == 15
    now[0] += 15
    assert counter.retry_after("a") == 0, "a new window"
    counter.fail("b")
    counter.fail("c")  # past max_keys: the least recently failing key is forgotten
    assert len(counter._counts) == 2 and "a" not in counter._counts
    assert FailureCounter(limit=0).retry_after("x") == 0
    assert client_key("2001:db8:1:2:3:4:5:6") == client_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1" and client_key("10.0.0.2") == "10.0.0.2"
    assert client_key(None) == "-"


def test_token_use_is_due_once_a_minute():
    from catalog.access.tokens import use_is_due

    now = dt.datetime(2026, 12, 1, 12, 0, 0)
    assert use_is_due(None, now)
    assert not use_is_due(now - dt.timedelta(seconds=59), now)
    assert use_is_due(now - dt.timedelta(seconds=60), now)


def test_site_url_defaults_and_checks():
    from catalog.cli.main import check_site_url, listen_url

    assert listen_url("127.0.0.1", 5000) == "http://127.0.0.1:5000"
    assert listen_url("::1", 5000) == "http://[::1]:5000"
    assert "0.0.0.0" not in listen_url("0.0.0.0", 5000)
    assert check_site_url("https://data.example.org/") == "https://data.example.org"


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "data.example.org", "https://", "ftp://x.example"])
def test_a_site_url_that_is_not_absolute_http_is_refused(bad):
    from catalog.cli.main import check_site_url
    from catalog.core.errors import StartupError

    with pytest.raises(StartupError) as err:
        check_site_url(bad)
    assert err.value.message == f"MOSU_SITE_URL must be an absolute http:// or https:// URL, got {bad!r}"


def test_platforms_opened_to_inspect_a_running_mosu_are_closed_when_it_stops(tmp_path):
    import os
    import subprocess

    from tests.conftest import RunningMosu

    def open_files() -> list[str]:
        return [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                if os.path.exists(f"/proc/self/fd/{fd}")]

    settings = Settings(data_dir=tmp_path / "data")
    running = RunningMosu("http://127.0.0.1:9", settings, {}, subprocess.Popen(["true"]), tmp_path / "log")
    for _ in range(3):
        with running.inspect().read() as s:
            s.scalars(select(AuditEvent)).all()
    assert any(f.startswith(str(tmp_path / "data")) for f in open_files()), "the pooled connections hold the file"
    running.stop()
    assert not [f for f in open_files() if f.startswith(str(tmp_path / "data"))], "stop() closed every inspect()"


def test_actions_never_import_another_action_module_s_private_helpers():
    """A private helper is free to change with its module; one imported by a neighbour is a rule in
    two places (the house issue found the resource lookup and version intake shared that way)."""
    import ast
    from pathlib import Path

    import catalog.actions

    found = []
    for path in sorted(Path(catalog.actions.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("catalog.actions."):
                found += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    assert found == []
