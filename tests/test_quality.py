"""Quality reports, suites, the publish gate and personal information, on a running Mosu."""
from __future__ import annotations

import io
import json
import random
import time

import ckanapi
import pytest

from catalog.core import keys
from tests.conftest import wait_for_ingest


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


def upload(ckan, body: bytes, name: str, resource_id: str | None = None, dataset: str = "quality") -> dict:
    if resource_id:
        res = ckan.action.resource_patch(id=resource_id, upload=(name, io.BytesIO(body)))
    else:
        res = ckan.action.resource_create(package_id=dataset, name=name, upload=(name, io.BytesIO(body)))
    return wait_for_ingest(ckan, res["id"])


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


def test_blocking_defects_stop_publication_and_keep_the_current_version(mosu, ckan):
    first = upload(ckan, _orders(), "keyed.csv")
    rid = first["id"]
    defects = {
        "nulls in the key": _orders(start=1000, replace={(3, "order_id"): None, (9, "order_id"): None}),
        "a repeated key": _orders(start=2000, replace={(5, "order_id"): 2000}),
        "a renamed column": _orders(start=3000).replace(b"quantity", b"qty", 1),
        "a type change": _orders(start=4000, replace={(i, "year"): f"FY{i}" for i in range(200)}),
    }
    for what, body in defects.items():
        res = upload(ckan, body, "keyed.csv", rid)
        assert res["ingest_status"] == "failed", what
        assert res["ingest_error"].startswith("Blocking quality checks failed"), (what, res["ingest_error"])
        assert res["version_id"] == first["version_id"], f"{what}: the current version stays"
        failed = ckan.action.resource_version_list(id=rid)[0]
        report = ckan.action.quality_report_show(id=rid, version=failed["number"])
        assert report["version_status"] == "failed" and report["summary"]["blocking_failed"] >= 1, what
    nulls = ckan.action.quality_report_show(id=rid, version=2)
    platform = mosu.inspect()
    try:  # a blocked version's report is a file next to where its Parquet would be, too
        assert nulls["report_key"] and platform.store.exists(nulls["report_key"])
    finally:
        platform.close()
    not_null = results_by(nulls, "expect_column_values_to_not_be_null", "order_id")[0]
    assert not_null["unexpected_count"] == 2 and [x["row"] for x in not_null["examples"]] == [4, 10]
    repeated = results_by(ckan.action.quality_report_show(id=rid, version=3), "expect_column_values_to_be_unique",
                          "order_id")[0]
    assert repeated["status"] == "failed" and repeated["unexpected_count"] == 2
    assert repeated["examples"] == [{"value": "2000"}]
    renamed = ckan.action.quality_report_show(id=rid, version=4)
    assert "qty" in results_by(renamed, "expect_table_columns_to_match_ordered_list")[0]["observed_value"]
    typed = results_by(ckan.action.quality_report_show(id=rid, version=5), "expect_column_values_to_be_of_type",
                       "year")[0]
    assert typed["status"] == "failed" and typed["observed_value"] == "VARCHAR"
    rows = ckan.action.datastore_search(resource_id=rid, limit=1)["records"]
    assert rows[0]["order_id"] == 1, "researchers still see version 1"


def test_warnings_publish_and_lower_the_score(ckan):
    first = upload(ckan, _orders(), "drift.csv")
    res = upload(ckan, _orders(start=501, price_scale=10, replace={(7, "status"): "lost"}), "drift.csv", first["id"])
    assert res["ingest_status"] == "ready" and res["version_id"] != first["version_id"]
    report = ckan.action.quality_report_show(id=res["id"])
    between = results_by(report, "expect_column_values_to_be_between", "price")[0]
    assert between["severity"] == "warning" and between["status"] == "failed" and between["unexpected_count"] > 100
    in_set = results_by(report, "expect_column_values_to_be_in_set", "status")[0]
    assert in_set["unexpected_count"] == 1 and in_set["examples"] == [{"row": 8, "value": "lost"}]
    assert report["summary"]["warnings"] == 2 and 80 <= report["score"] < 100


def _cn_id(prefix17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return prefix17 + "10X98765432"[sum(int(d) * w for d, w in zip(prefix17, weights)) % 11]


def _people(n: int = 60, valid_ids: bool = True) -> bytes:
    rows = []
    for i in range(n):
        ident = _cn_id(f"1101051990{(i % 12) + 1:02d}{(i % 28) + 1:02d}{i % 900 + 100:03d}")
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
    with pytest.raises(ckanapi.NotFound):
        anonymous.action.datastore_search(resource_id=res["id"])
    with pytest.raises(ckanapi.ValidationError):  # not even by naming the held version
        anonymous.action.datastore_search(resource_id=res["id"], version=1)
    ack = ckan.action.quality_pii_acknowledge(id=res["id"], reason="published with consent, see notes")
    assert ack["published"] is True and {"column": "email", "kind": "email"} in ack["findings"]
    assert ack["user"] == "quality-admin"
    shown = ckan.action.resource_show(id=res["id"])
    assert shown["ingest_status"] == "ready" and shown["datastore_active"] is True
    assert anonymous.action.datastore_search(resource_id=res["id"], limit=1)["total"] == 60
    # A new version with the same findings needs no new acknowledgement.
    again = upload(ckan, _people(70), "people.csv", res["id"])
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
    assert "acknowledge it with quality_pii_acknowledge" in str(err.value.error_dict["private"])
    assert ckan.action.package_show(id="people-private")["private"] is True
    ckan.action.quality_pii_acknowledge(id=res["id"])
    assert ckan.action.package_patch(id="people-private", private=False)["private"] is False


def test_the_profile_of_a_personal_information_column_is_masked_like_its_examples(ckan):
    ckan.action.package_create(name="people-profile", owner_org="quality-org", private=True)
    body = _people()
    res = upload(ckan, body, "people.csv", dataset="people-profile")
    assert res["ingest_status"] == "ready", res["ingest_error"]
    cells = {cell for line in body.decode().splitlines() for cell in line.split(",")}
    report = ckan.action.quality_report_show(id=res["id"])
    profile = {c["name"]: c for c in report["profile"]["columns"]}
    summaries = {f["id"]: f["summary"] for f in ckan.action.datastore_info(id=res["id"])["fields"]}
    for column, kind in (("email", "email"), ("mobile", "phone"), ("id_number", "cn_id")):
        for where in (profile[column], summaries[column]):
            shown = [where["min"], where["max"], *(t["value"] for t in where.get("top", [])),
                     *where.get("histogram", {}).get("edges", [])]
            assert len(shown) >= 2 and where["masked"] == kind
            for value in shown:
                assert "*" in str(value) and str(value) not in cells, (column, value)
    assert profile["email"]["min"] == "u***@example.org" and profile["mobile"]["min"] == "138****0000"
    assert profile["price"]["min"] == 12.5 and "masked" not in profile["price"], "other columns keep their values"


def test_suite_edits_are_checked_and_revalidate_without_a_reupload(ckan):
    res = upload(ckan, _orders(), "suite.csv")
    bad_suites = [
        ({"expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {"column": "nope"}}]},
         "expectation 0 (expect_column_values_to_be_between): the table has no column 'nope'"),
        ({"expectations": [{"type": "expect_magic", "kwargs": {}}]}, "expectation 0 (expect_magic): type"),
        ({"expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "price"}},
                           {"type": "expect_column_values_to_be_between",
                            "kwargs": {"column": "price", "min_value": 9, "max_value": 1}}]},
         "expectation 1 (expect_column_values_to_be_between): min_value 9 is above max_value 1"),
        ({"expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "price"},
                            "meta": {"severity": "fatal"}}]}, "severity must be one of blocking, warning"),
        ("{not json", "not valid JSON"),
    ]
    for suite, message in bad_suites:
        with pytest.raises(ckanapi.ValidationError) as err:
            ckan.action.quality_suite_update(id=res["id"], suite=suite)
        assert message in str(err.value.error_dict["suite"]), err.value.error_dict
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
