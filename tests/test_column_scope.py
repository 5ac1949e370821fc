"""Column scope and restricted datasets on every path to rows and files (issue 12).

One restricted dataset with columns (id, name, national_id, city), ingested for real (SQLite,
SeaweedFS, the ingest worker, DuckDB), with a data dictionary and a quality suite whose checks
fail with examples. Its readers:

- ``scoped``: an active grant on (id, city). ``name`` and ``national_id`` do not exist for them:
  previews, SQL (every DuckDB trick below), exports, the data dictionary, the versions' schemas and
  the quality report; whole-file downloads are refused with the hint to use exports.
- ``full``: an active grant without a column scope: everything, files too.
- ``none``: signed in, no grant (and anonymous callers): the metadata, the data dictionary, the
  row count, the quality score and checks, never a row, a value example, a top value or the
  minimum and maximum of a text column.

Grants are rows written straight into the catalog (test setup: the grant actions are another
part of the issue); everything else goes through the actions. The HTTP routes (dumps, downloads,
pages) are covered over a real ``mosu up`` at the end.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import re
import urllib.parse

import pyarrow.parquet as pq
import pytest
import requests
from sqlalchemy import select

from catalog.access.context import Actor, Context
from catalog.actions import call, run_checked
from catalog.actions.datastore import datastore_export
from catalog.actions.sql import datastore_sql_export
from catalog.core.errors import NotAuthorized, QueryRejected, ValidationError
from catalog.db.models import AccessGrant, AuditEvent, ResourceVersion, User, utcnow
from catalog.platform import Platform
from catalog.versions.uploads import Upload
from ingest.worker import Worker
from quality.pii import cn_id_check_digit
from tests.conftest import s3_settings, wait_for_ingest

ROWS = 60
CITIES = ("Oslo", "Lima", "Hanoi", "Quito")
VISIBLE, HIDDEN = ("id", "city"), ("name", "national_id")
DICTIONARY = [
    {"id": "id", "type": "integer", "label": "Row key", "description": "A running number"},
    {"id": "name", "type": "string", "label": "Full name", "description": "Given and family name"},
    {"id": "national_id", "type": "string", "label": "Resident identity number", "description": "18 characters"},
    {"id": "city", "type": "string", "label": "City of residence", "description": "Where they live"},
]


def national_id(i: int) -> str:
    first17 = f"110101{(dt.date(1980, 1, 1) + dt.timedelta(days=37 * i)).strftime('%Y%m%d')}{i % 1000:03d}"
    return first17 + cn_id_check_digit(first17)


NAMES = [f"Person {i:03d}" for i in range(1, ROWS + 1)]
IDS = [national_id(i) for i in range(1, ROWS + 1)]
CSV = ("id,name,national_id,city\n" + "".join(
    f"{i},{NAMES[i - 1]},{IDS[i - 1]},{CITIES[i % len(CITIES)]}\n" for i in range(1, ROWS + 1))).encode()
HIDDEN_VALUES = (*NAMES, *IDS)
TEXT_VALUES = (*HIDDEN_VALUES, *CITIES)
EXTRA_CHECKS = [  # checks that fail, with examples: a visible column's, and each hidden column's
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "city", "regex": "^O"},
     "meta": {"severity": "warning"}},
    {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "national_id", "max_value": 5},
     "meta": {"severity": "warning"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "name", "value_set": [NAMES[0]]},
     "meta": {"severity": "warning"}},
]


def _dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _as(message: str, column: str) -> str:
    """An error message with the column it names replaced, to compare it with another column's."""
    return re.sub(rf"\b{re.escape(column)}\b", "<c>", message)


def _leaks(value, values=HIDDEN_VALUES) -> list[str]:
    text = _dump(value)
    return [v for v in values if v in text]


def _grant(platform: Platform, package_id: str, user_id: str, approver: str, columns: list[str] | None) -> str:
    with platform.write.begin() as s:
        grant = AccessGrant(package_id=package_id, grantee_type="user", grantee_id=user_id,
                            expires=utcnow() + dt.timedelta(days=90), columns=columns, approved_by=approver)
        s.add(grant)
        s.flush()
        return grant.id


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory):
    platform = Platform.open(s3_settings(s3, tmp_path_factory.mktemp("colscope") / "data"))
    platform.store.ensure_bucket()
    site = Context(platform=platform, actor=Actor.site())
    for name in ("cs-owner", "cs-scoped", "cs-full", "cs-none"):
        call(site, "user_create", {"name": name, "email": f"{name}@example.org", "password": "cs-password",
                                   "sysadmin": name == "cs-owner"})
    with platform.read() as s:
        users = {u.name.removeprefix("cs-"): u for u in s.scalars(select(User))}
        actors = {who: Actor.of(u) for who, u in users.items()}
    actors["anonymous"] = None
    owner = Context(platform=platform, actor=actors["owner"])
    call(owner, "organization_create", {"name": "cs-org"})
    pkg = call(owner, "package_create", {"name": "cs-people", "owner_org": "cs-org", "access_level": "restricted"})
    res = call(owner, "resource_create", {"package_id": pkg["id"], "name": "people", "schema": DICTIONARY,
                                          "upload": Upload(io.BytesIO(CSV), "people.csv", "text/csv")})
    while Worker(platform).run_once():
        pass
    suite = call(owner, "quality_suite_show", {"id": res["id"]})["suite"]
    call(owner, "quality_suite_update", {"id": res["id"], "suite": {
        **suite, "expectations": [*suite["expectations"], *EXTRA_CHECKS]}})
    while Worker(platform).run_once():  # the suite is validated again against the published version
        pass
    assert call(owner, "resource_show", {"id": res["id"]})["ingest_status"] == "ready"
    grants = {"scoped": _grant(platform, pkg["id"], users["scoped"].id, users["owner"].id, list(VISIBLE)),
              "full": _grant(platform, pkg["id"], users["full"].id, users["owner"].id, None)}
    with platform.read() as s:
        raw_key = s.get(ResourceVersion, s.scalars(select(ResourceVersion.id).where(
            ResourceVersion.resource_id == res["id"])).one()).raw_key
    yield {"platform": platform, "actors": actors, "pkg": pkg["id"], "rid": res["id"], "grants": grants,
           "raw_key": raw_key}
    platform.close()


def ctx_of(world, who: str) -> Context:
    return Context(platform=world["platform"], actor=world["actors"][who], client=f"cs-{who}")


def _records(world, who: str, **params) -> dict:
    return call(ctx_of(world, who), "datastore_search", {"resource_id": world["rid"], **params})


def _last_event(world, action: str) -> AuditEvent:
    with world["platform"].read() as s:
        return s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq.desc())).first()


# -- the data is what the test thinks it is ----------------------------------------------------------

def test_the_hidden_columns_hold_what_a_full_grant_reads(world):
    """The grant with every column reads names and identity numbers: what the scoped reader must not."""
    out = _records(world, "full", limit=ROWS)
    assert [f["id"] for f in out["fields"]] == ["_id", "id", "name", "national_id", "city"]
    assert {r["national_id"] for r in out["records"]} == set(IDS)
    report = call(ctx_of(world, "owner"), "quality_report_show", {"id": world["rid"]})
    assert {f["column"] for f in report["pii"]} >= {"national_id"}
    assert any(r.get("examples") for r in report["validation"] if r["kwargs"].get("column") == "national_id")


# -- datastore_search --------------------------------------------------------------------------------

def test_search_shows_only_the_granted_columns(world):
    out = _records(world, "scoped", limit=ROWS)
    assert [f["id"] for f in out["fields"]] == ["_id", *VISIBLE]
    assert all(set(r) == {"_id", *VISIBLE} for r in out["records"]) and len(out["records"]) == ROWS
    assert {f["id"]: f["info"]["label"] for f in out["fields"] if "info" in f} == {
        "id": "Row key", "city": "City of residence"}
    assert not _leaks(out)
    # the same through a query (filters, sort, distinct, full text) instead of a slice
    for params in ({"filters": {"city": "Oslo"}}, {"sort": "city desc"}, {"q": "Lima"},
                   {"distinct": True, "fields": ["city"]}, {"q": {"city": "Hanoi"}}):
        out = _records(world, "scoped", **params)
        assert out["records"] and all(set(r) <= {"_id", *VISIBLE} for r in out["records"]), params
        assert not _leaks(out), params
    event = _last_event(world, "datastore_search")
    assert event.grant_id == world["grants"]["scoped"] and event.detail["columns"] == sorted(VISIBLE)
    assert "grant_id" not in event.detail  # a column of the event, not repeated in its detail


HIDDEN_SEARCHES = {
    "fields": lambda c: {"fields": [c]},
    "fields-with-visible": lambda c: {"fields": ["id", c]},
    "filters": lambda c: {"filters": {c: IDS[0]}},
    "q-column": lambda c: {"q": {c: "1101"}},
    "sort": lambda c: {"sort": f"{c} desc"},
    "distinct": lambda c: {"distinct": True, "fields": [c]},
}


@pytest.mark.parametrize("column", HIDDEN)
@pytest.mark.parametrize("how", sorted(HIDDEN_SEARCHES))
def test_a_search_naming_a_hidden_column_is_refused_as_an_unknown_one(world, how, column):
    with pytest.raises(ValidationError) as hidden:
        _records(world, "scoped", **HIDDEN_SEARCHES[how](column))
    with pytest.raises(ValidationError) as unknown:
        _records(world, "scoped", **HIDDEN_SEARCHES[how]("no_such_column"))
    assert _as(_dump(hidden.value.field_errors), column) == _as(_dump(unknown.value.field_errors), "no_such_column")
    assert _records(world, "full", **HIDDEN_SEARCHES[how](column))  # the name itself is fine for the full grant


def test_full_text_search_does_not_look_into_hidden_columns(world):
    """``q`` searches every text column that exists for the caller: a hidden value finds nothing."""
    assert _records(world, "full", q=IDS[6])["total"] == 1
    assert _records(world, "scoped", q=IDS[6])["total"] == 0
    assert _records(world, "full", q="Person")["total"] == ROWS
    assert _records(world, "scoped", q="Person")["total"] == 0


def test_datastore_info_lists_only_the_granted_columns(world):
    info = call(ctx_of(world, "scoped"), "datastore_info", {"id": world["rid"]})
    assert [f["id"] for f in info["fields"]] == list(VISIBLE)
    assert set(info["schema"]) == set(VISIBLE)
    assert not _leaks(info) and "national_id" not in _dump(info) and "Full name" not in _dump(info)
    assert [f["id"] for f in call(ctx_of(world, "full"), "datastore_info", {"id": world["rid"]})["fields"]] == \
        ["id", "name", "national_id", "city"]


# -- metadata: the data dictionary and schemas -------------------------------------------------------

def _dictionary_ids(resource: dict) -> list[str]:
    return [f["id"] for f in resource["schema"]["fields"]]


@pytest.mark.parametrize("who,expected", [("scoped", list(VISIBLE)), ("full", [d["id"] for d in DICTIONARY]),
                                          ("none", [d["id"] for d in DICTIONARY]),
                                          ("anonymous", [d["id"] for d in DICTIONARY])])
def test_the_data_dictionary_shows_the_columns_that_exist_for_the_caller(world, who, expected):
    """Public metadata for whoever may not read rows; a column-scoped grantee sees only their columns."""
    ctx = ctx_of(world, who)
    assert _dictionary_ids(call(ctx, "resource_show", {"id": world["rid"]})) == expected
    assert _dictionary_ids(call(ctx, "package_show", {"id": "cs-people"})["resources"][0]) == expected
    versions = call(ctx, "resource_version_list", {"id": world["rid"]})
    assert [c["id"] for c in versions[0]["schema"]] == expected


@pytest.mark.parametrize("who", ["none", "anonymous"])
def test_package_show_reveals_no_row_to_whoever_may_not_read(world, who):
    pkg = call(ctx_of(world, who), "package_show", {"id": "cs-people"})
    res = pkg["resources"][0]
    assert res["row_count"] == ROWS and res["datastore_active"] and res["quality_score"] is not None
    assert res["url"].endswith(f"/dataset/{world['pkg']}/resource/{world['rid']}/download")  # it checks, see below
    assert not _leaks(pkg, TEXT_VALUES)


# -- SQL ---------------------------------------------------------------------------------------------

def _sql(world, who: str, sql: str) -> dict:
    return call(ctx_of(world, who), "datastore_search_sql", {"sql": sql.replace("{rid}", world["rid"])})


UNKNOWN_COLUMN_ATTEMPTS = {
    "select": 'SELECT {c} FROM "{rid}"',
    "quoted": 'SELECT "{c}" FROM "{rid}"',
    "alias-dot": 'SELECT t.{c} FROM "{rid}" t',
    "table-dot": 'SELECT "{rid}".{c} FROM "{rid}"',
    "where": 'SELECT id FROM "{rid}" WHERE {c} IS NOT NULL',
    "order-by": 'SELECT id FROM "{rid}" ORDER BY {c}',
    "group-by": 'SELECT count(*) FROM "{rid}" GROUP BY {c}',
    "aggregate": 'SELECT list({c}) FROM "{rid}"',
    "cte": 'WITH x AS (SELECT * FROM "{rid}") SELECT {c} FROM x',
    "subquery": 'SELECT {c} FROM (SELECT * FROM "{rid}")',
    "subquery-in-where": 'SELECT id FROM "{rid}" WHERE id IN (SELECT id FROM "{rid}" WHERE {c} > \'\')',
    "join": 'SELECT a.{c} FROM "{rid}" a JOIN "{rid}" b USING (id)',
    "exclude": 'SELECT * EXCLUDE ({c}) FROM "{rid}"',
    "columns-regex": "SELECT COLUMNS('{c}') FROM \"{rid}\"",
    "struct-extract": "SELECT struct_extract(t, '{c}') FROM \"{rid}\" t",
    "struct-index": "SELECT t['{c}'] FROM \"{rid}\" t",
    "unnest": 'SELECT u FROM "{rid}" t, unnest([t.{c}]) AS x(u)',
}


@pytest.mark.parametrize("column", HIDDEN)
@pytest.mark.parametrize("how", sorted(UNKNOWN_COLUMN_ATTEMPTS))
def test_sql_naming_a_hidden_column_is_refused_as_an_unknown_column(world, how, column):
    template = UNKNOWN_COLUMN_ATTEMPTS[how]
    with pytest.raises(QueryRejected) as hidden:
        _sql(world, "scoped", template.replace("{c}", column))
    with pytest.raises(QueryRejected) as unknown:
        _sql(world, "scoped", template.replace("{c}", "zz_unknown"))
    assert _as(hidden.value.message, column) == _as(unknown.value.message, "zz_unknown")
    assert "Binder Error" in hidden.value.message
    assert _sql(world, "full", template.replace("{c}", column))["records"] is not None  # it is the scope


STAR_ATTEMPTS = {
    "star": 'SELECT * FROM "{rid}"',
    "from-first": 'FROM "{rid}"',
    "alias-star": 'SELECT t.* FROM "{rid}" t',
    "columns-star": 'SELECT COLUMNS(*) FROM "{rid}"',
    "columns-any": "SELECT COLUMNS('.*') FROM \"{rid}\"",
    "columns-lambda": "SELECT COLUMNS(lambda c: c LIKE '%i%') FROM \"{rid}\"",
    "row-as-struct": 'SELECT t FROM "{rid}" t',
    "struct-literal": "SELECT {'row': t} FROM \"{rid}\" t",
    "struct-pack": 'SELECT struct_pack(*) FROM "{rid}"',
    "to-json": 'SELECT to_json(t) FROM "{rid}" t',
    "exclude-visible": 'SELECT * EXCLUDE (id) FROM "{rid}"',
    "rename": 'SELECT * RENAME (national_id AS n) FROM "{rid}"',
    "cte-star": 'WITH x AS (SELECT * FROM "{rid}") SELECT * FROM x',
    "subquery-star": 'SELECT * FROM (SELECT * FROM "{rid}")',
    "join-star": 'SELECT * FROM "{rid}" a JOIN "{rid}" b USING (id)',
    "union": 'SELECT * FROM "{rid}" UNION ALL SELECT * FROM "{rid}"',
    "lateral": 'SELECT * FROM "{rid}" a, LATERAL (SELECT * FROM "{rid}" b WHERE b.id = a.id)',
    "positional": 'SELECT #3 FROM "{rid}"',
}


@pytest.mark.parametrize("how", sorted(STAR_ATTEMPTS))
def test_sql_stars_and_rows_as_values_leave_hidden_columns_out(world, how):
    out = _sql(world, "scoped", STAR_ATTEMPTS[how])
    assert out["records"], how
    assert not {f["id"] for f in out["fields"]} & set(HIDDEN), out["fields"]
    assert not _leaks(out), how
    if how != "struct-pack":  # DuckDB packs nothing with a bare *: an empty struct for every reader
        assert _leaks(_sql(world, "full", STAR_ATTEMPTS[how])), how  # the same SQL reads them with every column


SHAPE_ATTEMPTS = {  # what describes a table instead of reading it: refused before anything runs
    "describe": 'DESCRIBE "{rid}"',
    "describe-select": 'DESCRIBE SELECT * FROM "{rid}"',
    "summarize": 'SUMMARIZE "{rid}"',
    "summarize-subquery": 'SELECT * FROM (SUMMARIZE "{rid}")',
    "show": 'SHOW "{rid}"',
    "pragma": "PRAGMA table_info('{rid}')",
    "pragma-function": "SELECT * FROM pragma_table_info('{rid}')",
    "duckdb-columns": "SELECT * FROM duckdb_columns()",
    "duckdb-columns-filtered": "SELECT column_name FROM duckdb_columns() WHERE table_name = '{rid}'",
    "information-schema": "SELECT column_name FROM information_schema.columns",
    "read-parquet": "SELECT * FROM read_parquet('people.parquet')",
    "query-function": "SELECT * FROM query('SELECT national_id FROM \"{rid}\"')",
}


@pytest.mark.parametrize("how", sorted(SHAPE_ATTEMPTS))
def test_sql_that_describes_tables_or_reads_files_is_refused(world, how):
    with pytest.raises(QueryRejected) as refused:
        _sql(world, "scoped", SHAPE_ATTEMPTS[how])
    assert not _leaks(refused.value.message) and "national_id" not in refused.value.message


def test_sql_audit_names_the_grant(world):
    _sql(world, "scoped", 'SELECT city, count(*) AS n FROM "{rid}" GROUP BY city')
    event = _last_event(world, "datastore_search_sql")
    assert event.detail["readings"][world["rid"]]["grant_id"] == world["grants"]["scoped"]
    assert event.detail["readings"][world["rid"]]["columns"] == sorted(VISIBLE)
    assert event.grant_id == world["grants"]["scoped"] and event.detail["columns_read"] == {world["rid"]: ["city"]}


@pytest.mark.parametrize("who", ["none", "anonymous"])
def test_sql_over_a_restricted_dataset_without_a_grant_is_the_one_refusal(world, who):
    with pytest.raises(NotAuthorized) as refused:
        _sql(world, who, 'SELECT count(*) FROM "{rid}"')
    assert refused.value.message == f'Access denied: no table "{world["rid"]}" that you may read'


# -- exports -----------------------------------------------------------------------------------------

def _export(world, who: str, name: str, export_of, data: dict) -> bytes:
    export = run_checked(ctx_of(world, who), name, export_of, data)
    return b"".join(export.chunks)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_exports_hold_only_the_granted_columns(world, fmt, tmp_path):
    body = _export(world, "scoped", "datastore_export", datastore_export, {"resource_id": world["rid"],
                                                                            "format": fmt})
    sql_body = _export(world, "scoped", "datastore_sql_export", datastore_sql_export,
                       {"sql": f'SELECT * FROM "{world["rid"]}"', "format": fmt})
    for data, expected in ((body, list(VISIBLE)), (sql_body, ["_id", *VISIBLE])):
        if fmt == "parquet":
            path = tmp_path / "out.parquet"
            path.write_bytes(data)
            table = pq.read_table(path)
            assert table.column_names == expected and table.num_rows == ROWS
            assert not _leaks(table.to_pylist())
        else:
            text = data.decode()
            assert not _leaks(text) and "Oslo" in text
            first = text.splitlines()[0]
            assert (first.split(",") if fmt == "csv" else list(json.loads(first))) == expected
    full = _export(world, "full", "datastore_export", datastore_export, {"resource_id": world["rid"], "format": fmt})
    assert IDS[0].encode() in full or fmt == "parquet"


@pytest.mark.parametrize("column", HIDDEN)
def test_exports_naming_a_hidden_column_are_refused(world, column):
    with pytest.raises(ValidationError):
        _export(world, "scoped", "datastore_export", datastore_export,
                {"resource_id": world["rid"], "fields": ["id", column]})
    with pytest.raises(QueryRejected, match="Binder Error"):
        _export(world, "scoped", "datastore_sql_export", datastore_sql_export,
                {"sql": f'SELECT {column} FROM "{world["rid"]}"'})


@pytest.mark.parametrize("who", ["none", "anonymous"])
def test_no_export_without_a_grant(world, who):
    with pytest.raises(NotAuthorized, match="restricted; ask for access with access_request_create"):
        _export(world, who, "datastore_export", datastore_export, {"resource_id": world["rid"]})


# -- whole files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["original", "parquet"])
def test_a_column_scoped_grant_gets_exports_not_files(world, fmt):
    before = _last_event(world, "resource_download")
    with pytest.raises(NotAuthorized, match="whole files hold every column.*use datastore_search or an export"):
        call(ctx_of(world, "scoped"), "resource_download", {"id": world["rid"], "format": fmt})
    after = _last_event(world, "resource_download")
    assert (after.seq if after else None) == (before.seq if before else None)  # nothing issued, nothing recorded


@pytest.mark.parametrize("who", ["none", "anonymous"])
@pytest.mark.parametrize("fmt", ["original", "parquet"])
def test_no_file_without_a_grant(world, who, fmt):
    with pytest.raises(NotAuthorized, match="restricted; ask for access"):
        call(ctx_of(world, who), "resource_download", {"id": world["rid"], "format": fmt})


def test_a_full_grant_downloads_one_object_for_five_minutes(world):
    out = call(ctx_of(world, "full"), "resource_download", {"id": world["rid"]})
    url = urllib.parse.urlparse(out["url"])
    assert out["expires_in"] <= 300 and int(urllib.parse.parse_qs(url.query)["X-Amz-Expires"][0]) <= 300
    assert urllib.parse.unquote(url.path).endswith("/" + world["raw_key"])
    assert requests.get(out["url"], timeout=30).content == CSV
    event = _last_event(world, "resource_download")
    assert event.grant_id == world["grants"]["full"] and "grant_id" not in event.detail


# -- the quality report ------------------------------------------------------------------------------

def _report(world, who: str) -> dict:
    return call(ctx_of(world, who), "quality_report_show", {"id": world["rid"]})


def _named_columns(report: dict) -> set[str]:
    names = {c["name"] for c in report["profile"]["columns"]}
    for r in report["validation"]:
        names.update(str(c) for c in [r["kwargs"].get("column"), *r["kwargs"].get("column_list", []),
                                      *r["kwargs"].get("column_set", [])] if c is not None)
    names.update(f["column"] for f in report["pii"])
    for e in (report.get("suite") or {}).get("expectations", []):
        names.update(str(c) for c in [e["kwargs"].get("column"), *e["kwargs"].get("column_list", [])] if c)
    return names


def test_the_report_of_a_column_scoped_grantee_has_no_hidden_column(world):
    full, scoped = _report(world, "full"), _report(world, "scoped")
    assert _named_columns(full) >= {"id", "name", "national_id", "city"}
    assert _named_columns(scoped) == set(VISIBLE)
    assert not _leaks(scoped)
    assert scoped["score"] == full["score"] and scoped["profile"]["row_count"] == ROWS
    assert scoped["summary"]["expectations"] == len(scoped["validation"]) < len(full["validation"])
    city = next(r for r in scoped["validation"] if r["kwargs"].get("regex") == "^O")
    assert city["examples"] and {x["value"] for x in city["examples"]} <= set(CITIES)  # values of their columns
    assert next(c for c in scoped["profile"]["columns"] if c["name"] == "city").get("top")
    suite = call(ctx_of(world, "scoped"), "quality_suite_show", {"id": world["rid"]})["suite"]
    assert not _leaks(suite) and _named_columns({"profile": {"columns": []}, "validation": [], "pii": [],
                                                 "suite": suite}) == set(VISIBLE)
    full_suite = call(ctx_of(world, "full"), "quality_suite_show", {"id": world["rid"]})["suite"]
    assert _named_columns({"profile": {"columns": []}, "validation": [], "pii": [], "suite": full_suite}) >= {
        "name", "national_id"}


@pytest.mark.parametrize("who", ["none", "anonymous"])
def test_the_report_without_a_grant_keeps_the_checks_and_drops_every_value(world, who):
    full, report = _report(world, "full"), _report(world, who)
    assert report["score"] == full["score"] and report["profile"]["row_count"] == ROWS
    assert report["summary"] == full["summary"]
    assert [(r["type"], r["kwargs"].get("column"), r["status"], r.get("unexpected_count"))
            for r in report["validation"]] == [(r["type"], r["kwargs"].get("column"), r["status"],
                                                r.get("unexpected_count")) for r in full["validation"]]
    assert [c["name"] for c in report["profile"]["columns"]] == ["id", "name", "national_id", "city"]
    assert {(f["column"], f["kind"]) for f in report["pii"]} == {(f["column"], f["kind"]) for f in full["pii"]}
    assert _leaks(full, TEXT_VALUES)  # the full report has them: examples, top values, text min and max
    assert not _leaks(report, TEXT_VALUES)
    for column in report["profile"]["columns"]:
        assert "top" not in column
        if column["type"] == "text":
            assert "min" not in column and "max" not in column and "min" not in column["exact"]
    numbers = next(c for c in report["profile"]["columns"] if c["name"] == "id")
    assert (numbers["min"], numbers["max"]) == (1, ROWS)  # a range of numbers describes the column
    assert all(not r.get("examples") for r in report["validation"])
    assert all(not f["examples"] for f in report["pii"]) and report["suite"] is None
    assert report["values_withheld"]
    with pytest.raises(NotAuthorized):
        call(ctx_of(world, who), "quality_suite_show", {"id": world["rid"]})


# -- web pages (in-process app; the same pages over HTTP below) --------------------------------------

def test_pages_go_through_the_actions(world):
    from catalog.cli.app import create_app

    client = create_app(platform=world["platform"]).test_client()
    page = client.get("/dataset/cs-people")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "ask for access with access_request_create" in text and f"{ROWS:,} rows" in text
    assert not _leaks(text, TEXT_VALUES)
    quality = client.get(f"/dataset/cs-people/resource/{world['rid']}/quality")
    assert quality.status_code == 200 and not _leaks(quality.get_data(as_text=True), TEXT_VALUES)
    assert client.get(f"/dataset/cs-people/resource/{world['rid']}/download").status_code == 403


# -- over HTTP: dumps, downloads and pages on a real `mosu up` ---------------------------------------

@pytest.fixture(scope="module")
def served(mosu):
    admin = mosu.admin_with_dataset("cs-http")
    admin.action.package_patch(id="cs-http", access_level="restricted")
    res = admin.action.resource_create(package_id="cs-http", name="people", schema=json.dumps(DICTIONARY),
                                       upload=("people.csv", io.BytesIO(CSV)))
    assert wait_for_ingest(admin, res["id"])["ingest_status"] == "ready"
    tokens = {who: mosu.token(f"cs-http-{who}") for who in ("scoped", "full", "none")}
    platform = mosu.inspect()
    with platform.read() as s:
        users = {u.name: u.id for u in s.scalars(select(User))}
    for who, columns in (("scoped", list(VISIBLE)), ("full", None)):
        _grant(platform, res["package_id"], users[f"cs-http-{who}"], users["cs-http-admin"], columns)
    return {"url": mosu.url, "rid": res["id"], "tokens": tokens}


def _get(served, who: str | None, path: str, **params) -> requests.Response:
    headers = {"Authorization": served["tokens"][who]} if who else {}
    return requests.get(served["url"] + path, params=params, headers=headers, timeout=60, allow_redirects=False)


def test_http_dumps_hold_only_the_granted_columns(served):
    rid = served["rid"]
    dump = _get(served, "scoped", f"/datastore/dump/{rid}", format="csv")
    assert dump.status_code == 200 and dump.text.splitlines()[0] == "id,city"
    assert not _leaks(dump.text) and "Oslo" in dump.text
    sql = _get(served, "scoped", "/datastore/dump_sql", sql=f'SELECT * FROM "{rid}"', format="jsonl")
    assert sql.status_code == 200 and list(json.loads(sql.text.splitlines()[0])) == ["_id", *VISIBLE]
    assert not _leaks(sql.text)
    refused = _get(served, "scoped", "/datastore/dump_sql", sql=f'SELECT national_id FROM "{rid}"')
    assert refused.status_code == 400 and "national_id\" not found" in refused.json()["error"]["message"]
    hidden = _get(served, "scoped", f"/datastore/dump/{rid}", fields='["national_id"]')
    assert hidden.status_code == 409 and not _leaks(hidden.text)
    full = _get(served, "full", f"/datastore/dump/{rid}", format="csv")
    assert full.status_code == 200 and full.text.splitlines()[0] == "id,name,national_id,city"
    for who in (None, "none"):
        assert _get(served, who, f"/datastore/dump/{rid}").status_code == 403
        assert _get(served, who, "/datastore/dump_sql", sql=f'SELECT 1 FROM "{rid}"').status_code == 403


def test_http_downloads_only_after_the_check(served):
    rid = served["rid"]
    for who in ("scoped", "none", None):
        for fmt in ("original", "parquet"):
            page = _get(served, who, f"/dataset/cs-http/resource/{rid}/download", format=fmt)
            assert page.status_code == 403 and "location" not in page.headers, (who, fmt)
            api = _get(served, who, "/api/3/action/resource_download", id=rid, format=fmt)
            assert api.status_code == 403 and "url" not in api.text, (who, fmt)
    assert "use datastore_search or an export" in _get(
        served, "scoped", "/api/3/action/resource_download", id=rid).json()["error"]["message"]
    page = _get(served, "full", f"/dataset/cs-http/resource/{rid}/download")
    assert page.status_code == 302
    assert requests.get(page.headers["location"], timeout=30).content == CSV


def test_http_pages_show_rows_only_to_readers(served):
    anonymous = _get(served, None, "/dataset/cs-http")
    assert anonymous.status_code == 200 and f"{ROWS:,} rows" in anonymous.text
    assert not _leaks(anonymous.text, TEXT_VALUES)
    scoped = _get(served, "scoped", "/dataset/cs-http")
    assert scoped.status_code == 200 and "Oslo" in scoped.text and not _leaks(scoped.text)
    assert "Resident identity number" not in scoped.text and "City of residence" in scoped.text
    quality = _get(served, None, f"/dataset/cs-http/resource/{served['rid']}/quality")
    assert quality.status_code == 200 and not _leaks(quality.text, TEXT_VALUES)
