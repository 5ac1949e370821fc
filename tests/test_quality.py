"""Quality reports, suites, the publish gate and personal information, on a running Mosu."""
from __future__ import annotations

import json
import random
import re
import time

import ckanapi
import pytest

from catalog.core import keys
from tests.conftest import cn_id_check, upload


def _csv(header: list[str], rows: list[list]) -> bytes:
    return (",".join(header) + "\n" + "".join(",".join("" if v is None else str(v) for v in r) + "\n"
                                              for r in rows)).encode()


def _orders(n: int = 200, start: int = 1, price_scale: float = 1.0, replace: dict | None = None) -> bytes:
    """An ordinary table: a key, prices, counts, years and a category. ``replace`` maps
    (row index, column) -> value to plant a defect."""
    replace = replace or {}
    rnd = random.Random(n + start)
    header = ["order_id", "price", "quantity", "year", "status"]
    rows = []
    for i in range(n):
        row = [start + i, round(rnd.uniform(5, 500) * price_scale, 2), rnd.randint(1, 40), rnd.randint(1995, 2024),
               rnd.choice(["new", "paid", "shipped"])]
        for (index, column), value in replace.items():
            if index == i:
                row[header.index(column)] = value
        rows.append(row)
    return _csv(header, rows)


@pytest.fixture(scope="module")
def ckan(mosu):
    return mosu.admin_with_dataset("quality")


def results_by(report: dict, kind: str, column: str | None = None) -> list[dict]:
    return [r for r in report["validation"] if r["type"] == kind and r["kwargs"].get("column") == column]


def test_first_version_gets_a_profile_a_generated_suite_a_score_and_no_false_pii(mosu, ckan):
    # A dataset of its own: the dataset's score is its resources' together, and other tests upload
    # lower-scoring resources to "quality".
    ckan.action.package_create(name="quality-first", owner_org="quality-org")
    res = upload(ckan, _orders(), "orders.csv", dataset="quality-first")
    assert res["ingest_status"] == "ready", res["ingest_error"]
    report = ckan.action.quality_report_show(id=res["id"])
    assert report["resource_id"] == res["id"] and report["version"] == 1
    assert report["pii"] == [], "prices, counts and years are not personal information"
    assert report["summary"]["blocking_failed"] == 0 and report["score"] == 100
    assert "validity" in report["score_explanation"] and "completeness" in report["score_explanation"]
    profile = {c["name"]: c for c in report["profile"]["columns"]}
    assert profile["order_id"]["min"] == 1 and profile["order_id"]["max"] == 200 and profile["order_id"]["nulls"] == 0
    assert sum(profile["price"]["histogram"]["counts"]) == 200
    assert {t["value"] for t in profile["status"]["top"]} == {"new", "paid", "shipped"}
    suite = ckan.action.quality_suite_show(id=res["id"])
    assert suite["source"] == "generated"
    kinds = {(e["type"], e["kwargs"].get("column"), e["meta"]["severity"]) for e in suite["suite"]["expectations"]}
    assert ("expect_column_values_to_be_unique", "order_id", "blocking") in kinds, "a key stays unique"
    assert ("expect_table_columns_to_match_ordered_list", None, "blocking") in kinds
    assert ("expect_column_values_to_be_in_set", "status", "warning") in kinds
    assert ckan.action.resource_show(id=res["id"])["quality_score"] == 100
    assert ckan.action.package_show(id="quality-first")["quality_score"] == 100
    # The report is also a file next to the Parquet.
    platform = mosu.inspect()
    try:
        version = ckan.action.resource_version_list(id=res["id"])[0]
        assert platform.store.exists(keys.quality_report(res["id"], version["id"]))
    finally:
        platform.close()


BLOCKED = "Blocking quality checks failed, so this version was not published: "
DEFECTS = {  # what is wrong with a new version -> its body, and the reason it is not published
    "nulls-in-the-key": (_orders(start=1000, replace={(3, "order_id"): None, (9, "order_id"): None}),
                         "column values to not be null on column 'order_id': 2 unexpected (row 4, row 10)."),
    "a-repeated-key": (_orders(start=2000, replace={(5, "order_id"): 2000}),
                       "column values to be unique on column 'order_id': 2 unexpected ('2000')."),
    "a-renamed-column": (_orders(start=3000).replace(b"quantity", b"qty", 1),
                         "table columns to match ordered list: observed ['order_id', 'price', 'qty', 'year', "
                         "'status']; column values to be of type on column 'quantity' could not be checked (the "
                         "table has no column 'quantity')."),
    "a-type-change": (_orders(start=4000, replace={(i, "year"): f"FY{i}" for i in range(200)}),
                      "column values to be of type on column 'year': observed VARCHAR."),
}


@pytest.fixture(scope="module")
def blocked(ckan) -> tuple[dict, dict[str, tuple[dict, dict]]]:
    """One resource, then one new version of it per defect (uploaded once for the module): the first
    version, and per defect the resource as the ingest left it and the version it made."""
    first = upload(ckan, _orders(), "keyed.csv", dataset="quality")
    made = {}
    for what, (body, _) in DEFECTS.items():
        res = upload(ckan, body, "keyed.csv", resource_id=first["id"])
        made[what] = (res, ckan.action.resource_version_list(id=first["id"])[0])
    return first, made


def _one(report: dict, kind: str, column: str | None = None) -> dict:
    found = results_by(report, kind, column)
    assert len(found) == 1, (kind, column, report["validation"])
    return found[0]


def _check_nulls(report: dict) -> None:
    not_null = _one(report, "expect_column_values_to_not_be_null", "order_id")
    assert not_null["unexpected_count"] == 2 and [x["row"] for x in not_null["examples"]] == [4, 10]


def _check_repeated(report: dict) -> None:
    repeated = _one(report, "expect_column_values_to_be_unique", "order_id")
    assert repeated["status"] == "failed" and repeated["unexpected_count"] == 2
    assert repeated["examples"] == [{"value": "2000"}]


def _check_renamed(report: dict) -> None:
    ordered = _one(report, "expect_table_columns_to_match_ordered_list")
    assert ordered["status"] == "failed" and "qty" in ordered["observed_value"]


def _check_typed(report: dict) -> None:
    typed = _one(report, "expect_column_values_to_be_of_type", "year")
    assert typed["status"] == "failed" and typed["observed_value"] == "VARCHAR"


@pytest.mark.parametrize("what,check", [("nulls-in-the-key", _check_nulls), ("a-repeated-key", _check_repeated),
                                        ("a-renamed-column", _check_renamed), ("a-type-change", _check_typed)],
                         ids=list(DEFECTS))
def test_a_blocking_defect_stops_publication_and_keeps_the_current_version(ckan, blocked, what, check):
    first, made = blocked
    res, failed = made[what]
    assert res["ingest_status"] == "failed"
    assert res["ingest_error"] == BLOCKED + DEFECTS[what][1]
    assert res["version_id"] == first["version_id"], "the current version stays"
    report = ckan.action.quality_report_show(id=first["id"], version=failed["number"])
    assert report["version_status"] == "failed" and report["summary"]["blocking_failed"] >= 1
    check(report)


def test_blocked_versions_keep_their_report_and_researchers_still_see_the_first(mosu, ckan, blocked):
    first, made = blocked
    failed = made["nulls-in-the-key"][1]
    nulls = ckan.action.quality_report_show(id=first["id"], version=failed["number"])
    platform = mosu.inspect()
    try:  # a blocked version's report is a file next to where its Parquet would be, too
        assert nulls["report_key"] and platform.store.exists(nulls["report_key"])
    finally:
        platform.close()
    rows = ckan.action.datastore_search(resource_id=first["id"], limit=1)["records"]
    assert rows[0]["order_id"] == 1, "researchers still see version 1"
    assert ckan.action.resource_show(id=first["id"])["version_id"] == first["version_id"]


def test_warnings_publish_and_lower_the_score(ckan):
    first = upload(ckan, _orders(), "drift.csv", dataset="quality")
    res = upload(ckan, _orders(start=501, price_scale=10, replace={(7, "status"): "lost"}), "drift.csv",
                 resource_id=first["id"])
    assert res["ingest_status"] == "ready" and res["version_id"] != first["version_id"]
    report = ckan.action.quality_report_show(id=res["id"])
    between = results_by(report, "expect_column_values_to_be_between", "price")[0]
    assert between["severity"] == "warning" and between["status"] == "failed" and between["unexpected_count"] > 100
    in_set = results_by(report, "expect_column_values_to_be_in_set", "status")[0]
    assert in_set["unexpected_count"] == 1 and in_set["examples"] == [{"row": 8, "value": "lost"}]
    assert report["summary"]["warnings"] == 2 and 80 <= report["score"] < 100


def _people(n: int = 60, valid_ids: bool = True) -> bytes:
    rows = []
    for i in range(n):
        first17 = f"1101051990{(i % 12) + 1:02d}{(i % 28) + 1:02d}{i % 900 + 100:03d}"
        ident = first17 + cn_id_check(first17)
        if not valid_ids:
            ident = ident[:-1] + ("0" if ident[-1] != "0" else "1")
        rows.append([i + 1, f"user{i}@example.org", f"138{i:08d}", ident, round(12.5 + i, 2), 1990 + i % 30])
    return _csv(["id", "email", "mobile", "id_number", "price", "birth_year"], rows)


def test_pii_holds_a_public_dataset_until_acknowledged(mosu, ckan):
    ckan.action.package_create(name="people-public", owner_org="quality-org")
    res = upload(ckan, _people(), "people.csv", dataset="people-public")
    assert res["ingest_status"] == "held" and res["datastore_active"] is False
    assert "Personal information found" in res["ingest_error"]
    report = ckan.action.quality_report_show(id=res["id"])
    found = {(f["column"], f["kind"]): f for f in report["pii"]}
    assert set(found) == {("email", "email"), ("mobile", "phone"), ("id_number", "cn_id")}
    assert all(f["share"] == 1.0 for f in found.values())
    for f in found.values():
        for example in f["examples"]:
            assert "*" in example and example not in _people().decode(), "examples are masked"
    # Researchers cannot see a held version's report or rows; the provider acknowledges.
    anonymous = mosu.ckan()
    with pytest.raises(ckanapi.NotFound) as missing:
        anonymous.action.datastore_search(resource_id=res["id"])
    assert missing.value.args == (f'Resource "{res["id"]}" was not found in the datastore (ingest held)',)
    with pytest.raises(ckanapi.ValidationError) as err:  # not even by naming the held version
        anonymous.action.datastore_search(resource_id=res["id"], version=1)
    assert err.value.error_dict["version"] == ["Version 1 is held, not published"]
    ack = ckan.action.quality_pii_acknowledge(id=res["id"], reason="published with consent, see notes")
    assert ack["published"] is True and {"column": "email", "kind": "email"} in ack["findings"]
    assert ack["user"] == "quality-admin"
    shown = ckan.action.resource_show(id=res["id"])
    assert shown["ingest_status"] == "ready" and shown["datastore_active"] is True
    assert anonymous.action.datastore_search(resource_id=res["id"], limit=1)["total"] == 60
    # A new version with the same findings needs no new acknowledgement.
    again = upload(ckan, _people(70), "people.csv", resource_id=res["id"])
    assert again["ingest_status"] == "ready"


def test_invalid_id_check_digits_are_not_id_numbers(ckan):
    # A private dataset: a version with personal data is published there, its findings kept.
    ckan.action.package_create(name="people-bad-ids", owner_org="quality-org", private=True)
    res = upload(ckan, _people(valid_ids=False), "bad-ids.csv", dataset="people-bad-ids")
    assert res["ingest_status"] == "ready", res["ingest_error"]
    report = ckan.action.quality_report_show(id=res["id"])
    assert ("id_number", "cn_id") not in {(f["column"], f["kind"]) for f in report["pii"]}
    assert ("email", "email") in {(f["column"], f["kind"]) for f in report["pii"]}


def test_private_dataset_publishes_but_cannot_go_public_before_acknowledging(ckan):
    ckan.action.package_create(name="people-private", owner_org="quality-org", private=True)
    res = upload(ckan, _people(), "people.csv", dataset="people-private")
    assert res["ingest_status"] == "ready"
    with pytest.raises(ckanapi.ValidationError) as err:
        ckan.action.package_patch(id="people-private", private=False)
    assert err.value.error_dict["private"] == [
        "Resource 'people.csv' holds personal information (email in column 'email' (100% of values), phone in column "
        "'mobile' (100% of values), cn_id in column 'id_number' (100% of values)); acknowledge it with "
        "quality_pii_acknowledge before making the dataset public."]
    assert ckan.action.package_show(id="people-private")["private"] is True
    ckan.action.quality_pii_acknowledge(id=res["id"])
    assert ckan.action.package_patch(id="people-private", private=False)["private"] is False


@pytest.fixture(scope="module")
def people_profile(ckan) -> tuple[bytes, dict]:
    """People's contacts in a private dataset (published, findings kept), uploaded once for the module."""
    ckan.action.package_create(name="people-profile", owner_org="quality-org", private=True)
    body = _people()
    res = upload(ckan, body, "people.csv", dataset="people-profile")
    assert res["ingest_status"] == "ready", res["ingest_error"]
    return body, res


@pytest.mark.parametrize("where", ["quality_report", "datastore_info"])
@pytest.mark.parametrize("column,kind", [("email", "email"), ("mobile", "phone"), ("id_number", "cn_id")])
def test_the_profile_of_a_personal_information_column_is_masked_like_its_examples(ckan, people_profile, column,
                                                                                   kind, where):
    body, res = people_profile
    cells = {cell for line in body.decode().splitlines() for cell in line.split(",")}
    if where == "quality_report":
        summary = {c["name"]: c for c in ckan.action.quality_report_show(id=res["id"])["profile"]["columns"]}[column]
    else:
        summary = {f["id"]: f["summary"] for f in ckan.action.datastore_info(id=res["id"])["fields"]}[column]
    shown = [summary["min"], summary["max"], *(t["value"] for t in summary.get("top", [])),
             *summary.get("histogram", {}).get("edges", [])]
    assert len(shown) >= 2 and summary["masked"] == kind
    for value in shown:
        assert "*" in str(value) and str(value) not in cells, value


def test_a_masked_profile_shows_the_shape_and_other_columns_keep_their_values(ckan, people_profile):
    _, res = people_profile
    profile = {c["name"]: c for c in ckan.action.quality_report_show(id=res["id"])["profile"]["columns"]}
    assert profile["email"]["min"] == "u***@example.org" and profile["mobile"]["min"] == "138****0000"
    assert profile["price"]["min"] == 12.5 and "masked" not in profile["price"], "other columns keep their values"


@pytest.fixture(scope="module")
def suite_resource(ckan) -> dict:
    """An ordinary table whose suite the tests below edit, uploaded once for the module."""
    return upload(ckan, _orders(), "suite.csv", dataset="quality")


@pytest.mark.parametrize("suite,message", [
    ({"expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "nope"}}]},
     "expectation 0 (expect_column_values_to_be_between): the table has no column 'nope'"),
    ({"expectations": [{"type": "expect_magic", "kwargs": {}}]},
     re.compile(r"expectation 0 \(expect_magic\): type 'expect_magic' is not supported; supported: "
                r"expect_[a-z_]+(, expect_[a-z_]+)+")),
    ({"expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "price"}},
                       {"type": "expect_column_values_to_be_between",
                        "kwargs": {"column": "price", "min_value": 9, "max_value": 1}}]},
     "expectation 1 (expect_column_values_to_be_between): min_value 9 is above max_value 1"),
    ({"expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "price"},
                        "meta": {"severity": "fatal"}}]},
     "expectation 0 (expect_column_values_to_not_be_null): severity must be one of blocking, warning"),
    ("{not json", "the suite is not valid JSON (Expecting property name enclosed in double quotes at character 1)"),
], ids=["unknown-column", "unknown-type", "min-above-max", "unknown-severity", "not-json"])
def test_a_bad_suite_edit_is_refused_naming_the_expectation(ckan, suite_resource, suite, message):
    with pytest.raises(ckanapi.ValidationError) as err:
        ckan.action.quality_suite_update(id=suite_resource["id"], suite=suite)
    [got] = err.value.error_dict["suite"]
    if isinstance(message, re.Pattern):
        assert message.fullmatch(got), got
    else:
        assert got == message


def test_suite_edits_revalidate_without_a_reupload(ckan, suite_resource):
    res = suite_resource
    suite = {"name": "provider suite", "expectations": [
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "price", "max_value": 100},
         "meta": {"severity": "warning"}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "status", "regex": "^(?=p)"},
         "meta": {"severity": "warning"}},  # Python accepts the look-ahead; DuckDB's RE2 cannot run it
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "order_id"}},
    ]}
    updated = ckan.action.quality_suite_update(id=res["id"], suite=json.dumps(suite))
    assert updated["source"] == "provider" and updated["revalidation_job_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        report = ckan.action.quality_report_show(id=res["id"])
        if len(report["validation"]) == 3:
            break
        time.sleep(0.3)
    statuses = [r["status"] for r in report["validation"]]
    assert statuses == ["failed", "errored", "passed"], report["validation"]
    assert report["validation"][1]["success"] is False and report["validation"][1]["error"]
    assert ckan.action.resource_show(id=res["id"])["version_id"] == res["version_id"], "no new version"
    assert ckan.action.quality_suite_show(id=res["id"])["suite"]["name"] == "provider suite"


def test_scores_filter_and_sort_the_catalog(ckan):
    ckan.action.package_create(name="quality-low", owner_org="quality-org")
    empty = {(i, column): None for i in range(200) if i % 10 for column in ("quantity", "year")}
    low = _orders(replace=empty)  # two columns nine-tenths empty
    upload(ckan, low, "low.csv", dataset="quality-low")
    ckan.action.package_create(name="quality-high", owner_org="quality-org")
    upload(ckan, _orders(), "high.csv", dataset="quality-high")
    high = ckan.action.package_search(fq="quality_score:[95 TO *]", rows=100)
    names = {p["name"] for p in high["results"]}
    assert "quality-high" in names and "quality-low" not in names
    ordered = ckan.action.package_search(q="name:quality-low OR name:quality-high", sort="quality_score desc")
    assert [p["name"] for p in ordered["results"]] == ["quality-high", "quality-low"]
    assert ordered["results"][1]["quality_score"] == 89, "completeness 64 %: 100 × (0.5 + 0.3 × 0.64 + 0.2)"
    with pytest.raises(ckanapi.SearchQueryError):
        ckan.action.package_search(fq="quality_score:[high TO *]")
