"""Values of unpublished uploads are for the dataset's editors only (security issue, item 5).

A version that fails a blocking check, a version held for personal information, and the
odd values left empty in a published version (they are not in the published data) must
not show their values to anyone but the dataset's editors: not through the API, the
search index, the activity stream or the dataset page. Over real HTTP, against ``mosu up``.
"""
from __future__ import annotations

import html
import io
import json
import re

import ckanapi
import pytest
import requests

from tests.conftest import wait_for_ingest

SECRETS = ("SECRET-KEY-0", "SECRET-KEY-1", "SECRET-KEY-2")
HELD_ODD = "odd.secret@hidden.example"
PUBLISHED_ODD = "ODD-SECRET-VALUE-7"


def _keys(n: int, repeated: bool) -> bytes:
    rows = [f"KEY-{i},{i}" for i in range(n)]
    if repeated:  # three keys, each three times: the generated unique-key expectation (blocking) fails
        rows[:9] = [f"SECRET-KEY-{i % 3},{i}" for i in range(9)]
    return ("key,amount\n" + "\n".join(rows) + "\n").encode()


def _people_with_odd_count() -> bytes:
    rows = [f"{i},user{i}@example.org,{i}" for i in range(200)]
    rows[150] = f"150,user150@example.org,{HELD_ODD}"  # an e-mail in an integer column: an odd value
    return ("id,email,visits\n" + "\n".join(rows) + "\n").encode()


def _odd_published() -> bytes:
    rows = [f"{i},{i * 3}" for i in range(200)]
    rows[42] = f"42,{PUBLISHED_ODD}"
    return ("id,measure\n" + "\n".join(rows) + "\n").encode()


@pytest.fixture(scope="module")
def leaky_site(mosu):
    """A public dataset with: a resource whose second upload failed its unique-key check, a resource
    whose upload is held for personal information, and one published with an odd value."""
    admin = mosu.admin_with_dataset("leaky")
    editor_token = mosu.token("leaky-editor")
    admin.action.organization_member_create(id="leaky-org", username="leaky-editor", role="editor")
    editor = mosu.ckan(editor_token)
    keyed = editor.action.resource_create(package_id="leaky", name="keyed",
                                          upload=("keyed.csv", io.BytesIO(_keys(200, False))))
    assert wait_for_ingest(editor, keyed["id"])["ingest_status"] == "ready"
    editor.action.resource_patch(id=keyed["id"], upload=("keyed.csv", io.BytesIO(_keys(200, True))))
    failed = wait_for_ingest(editor, keyed["id"])
    assert failed["ingest_status"] == "failed"
    people = editor.action.resource_create(package_id="leaky", name="people",
                                           upload=("people.csv", io.BytesIO(_people_with_odd_count())))
    assert wait_for_ingest(editor, people["id"])["ingest_status"] == "held"
    odd = editor.action.resource_create(package_id="leaky", name="odd",
                                        upload=("odd.csv", io.BytesIO(_odd_published())))
    assert wait_for_ingest(editor, odd["id"])["ingest_status"] == "ready"
    # A dataset edit after the failure snapshots the dataset into the (public) activity stream.
    editor.action.package_patch(id="leaky", notes="edited after a failed upload")
    return {"url": mosu.url, "editor": editor_token, "stranger": mosu.token("leaky-stranger"),
            "keyed": keyed["id"], "people": people["id"], "odd": odd["id"]}


def _get(leaky_site: dict, token: str | None, action: str, **params) -> requests.Response:
    headers = {"Authorization": token} if token else {}
    return requests.get(f"{leaky_site['url']}/api/3/action/{action}", params=params, headers=headers, timeout=30)


def _answers(leaky_site: dict, token: str | None) -> dict[str, str]:
    """The raw text of every answer that mentions the resources (errors included)."""
    out = {}
    for rid in (leaky_site["keyed"], leaky_site["people"], leaky_site["odd"]):
        for action in ("resource_show", "resource_version_list", "ingest_status_show", "quality_report_show"):
            out[f"{action} {rid}"] = _get(leaky_site, token, action, id=rid).text
        for version in (1, 2):
            out[f"quality_report_show {rid} v{version}"] = _get(leaky_site, token, "quality_report_show", id=rid,
                                                                 version=version).text
    for action, params in (("package_show", {"id": "leaky"}), ("package_search", {"q": "leaky"}),
                           ("package_activity_list", {"id": "leaky"}),
                           ("organization_activity_list", {"id": "leaky-org"}),
                           ("current_package_list_with_resources", {}),
                           ("organization_show", {"id": "leaky-org", "include_datasets": "true"})):
        out[action] = _get(leaky_site, token, action, **params).text
    out["dataset page"] = requests.get(f"{leaky_site['url']}/dataset/leaky", timeout=30).text
    return out


@pytest.mark.parametrize("who", ["anonymous", "stranger"])
def test_the_public_sees_that_an_upload_did_not_pass_never_its_values(leaky_site, who):
    token = leaky_site["stranger"] if who == "stranger" else None
    for where, text in _answers(leaky_site, token).items():
        for secret in (*SECRETS, HELD_ODD, PUBLISHED_ODD):
            assert secret not in text, f"{who}: {secret!r} leaks through {where}"
    keyed = _get(leaky_site, token, "resource_show", id=leaky_site["keyed"]).json()["result"]
    assert keyed["ingest_status"] == "failed" and keyed["datastore_active"] is True
    assert keyed["ingest_error"] == (
        "Blocking quality checks failed, so the latest upload was not published (the current version, if any, "
        "stays): column values to be unique on column 'key': 9 unexpected values.")
    versions = _get(leaky_site, token, "resource_version_list", id=leaky_site["keyed"]).json()["result"]
    assert versions[0]["status"] == "failed" and versions[0]["error"] == keyed["ingest_error"]
    assert versions[1]["schema"], "a published version's columns are public"
    held_versions = _get(leaky_site, token, "resource_version_list", id=leaky_site["people"]).json()["result"]
    assert held_versions[0]["schema"] is None, "a held version's columns are part of its unpublished upload"
    status = _get(leaky_site, token, "ingest_status_show", id=leaky_site["keyed"]).json()["result"]
    assert status["state"] == "failed" and status["error"] == keyed["ingest_error"]
    refused = _get(leaky_site, token, "quality_report_show", id=leaky_site["keyed"], version=2)
    assert refused.status_code == 403, "an unpublished version's report is for editors"
    held = _get(leaky_site, token, "ingest_status_show", id=leaky_site["people"]).json()["result"]
    assert held["progress"]["odd_values"] == [{"column": "visits", "type": "integer", "count": 1}]
    people = _get(leaky_site, token, "resource_show", id=leaky_site["people"]).json()["result"]
    assert people["ingest_status"] == "held" and "e-mail addresses" in people["ingest_error"]
    odd = _get(leaky_site, token, "resource_show", id=leaky_site["odd"]).json()["result"]
    assert odd["ingest_warnings"] == [
        "Column 'measure': 1 value could not be read as integer and was left empty."]
    report = _get(leaky_site, token, "quality_report_show", id=leaky_site["odd"]).json()["result"]
    assert report["odd_values"] == [{"column": "measure", "type": "integer", "count": 1}]
    page = requests.get(f"{leaky_site['url']}/dataset/leaky", timeout=30).text
    assert "e-mail addresses" in _section(page, leaky_site["people"]), "nothing published: the page says why"


def test_the_datasets_editors_still_see_the_values(leaky_site):
    token = leaky_site["editor"]
    keyed = _get(leaky_site, token, "resource_show", id=leaky_site["keyed"]).json()["result"]
    assert "SECRET-KEY-0" in keyed["ingest_error"] and keyed["ingest_error"].startswith("Blocking quality checks")
    assert "SECRET-KEY-0" in json.dumps(_get(leaky_site, token, "package_show", id="leaky").json()["result"])
    versions = _get(leaky_site, token, "resource_version_list", id=leaky_site["keyed"]).json()["result"]
    assert "SECRET-KEY-0" in versions[0]["error"]
    status = _get(leaky_site, token, "ingest_status_show", id=leaky_site["keyed"]).json()["result"]
    assert "SECRET-KEY-0" in status["error"]
    report = _get(leaky_site, token, "quality_report_show", id=leaky_site["keyed"], version=2).json()["result"]
    assert "SECRET-KEY-" in json.dumps(report["validation"])
    held = _get(leaky_site, token, "ingest_status_show", id=leaky_site["people"]).json()["result"]
    assert held["progress"]["odd_values"][0]["examples"] == [{"row": 151, "value": HELD_ODD}]
    held_version = _get(leaky_site, token, "resource_version_list", id=leaky_site["people"]).json()["result"][0]
    assert HELD_ODD in held_version["warnings"][0] and held_version["schema"]
    people = _get(leaky_site, token, "resource_show", id=leaky_site["people"]).json()["result"]
    assert "Personal information found" in people["ingest_error"]
    odd = _get(leaky_site, token, "resource_show", id=leaky_site["odd"]).json()["result"]
    assert PUBLISHED_ODD in odd["ingest_warnings"][0]
    report = _get(leaky_site, token, "quality_report_show", id=leaky_site["odd"]).json()["result"]
    assert report["odd_values"][0]["examples"] == [{"row": 43, "value": PUBLISHED_ODD}]


def _section(page: str, resource_id: str) -> str:
    """The dataset page's section of one resource."""
    found = re.search(rf'<section class="resource" id="resource-{resource_id}".*?</section>', page, re.S)
    assert found, f"no section for {resource_id}"
    return html.unescape(found.group(0))


def test_the_dataset_page_shows_everyone_the_published_version_and_editors_what_waits(leaky_site):
    """Public pages showed provider-facing internals to everyone: a red "failed" badge and why for a
    rejected version 2 while version 1 is served, and a newer upload held for personal information.
    The public sees the published version (``ready``); the dataset's editors (here, by API token)
    see the newer version's state and the full reason, with what to do."""
    headers = {"Authorization": leaky_site["editor"]}
    ckan = ckanapi.RemoteCKAN(leaky_site["url"], apikey=leaky_site["editor"])
    rows = [(i, f"city {i % 9}", f"person{i}@example.org") for i in range(200)]
    desks = "id,city,contact\n" + "".join(f"{i},{c},desk {i}\n" for i, c, _ in rows)  # same columns, no PII
    contacts = ckan.action.resource_create(package_id="leaky", name="contacts",
                                           upload=("contacts.csv", io.BytesIO(desks.encode())))
    assert wait_for_ingest(ckan, contacts["id"])["ingest_status"] == "ready"
    ckan.action.resource_patch(id=contacts["id"], upload=(
        "contacts.csv", io.BytesIO(("id,city,contact\n" + "".join(f"{i},{c},{e}\n" for i, c, e in rows)).encode())))
    assert wait_for_ingest(ckan, contacts["id"])["ingest_status"] == "held"

    for token in (None, leaky_site["stranger"]):
        page = requests.get(f"{leaky_site['url']}/dataset/leaky", headers={"Authorization": token} if token else {},
                            timeout=30)
        assert page.status_code == 200
        for rid in (leaky_site["keyed"], contacts["id"]):  # v2 failed / v2 held, v1 served
            section = _section(page.text, rid)
            assert 'data-status="ready"' in section and 'class="status status-ready"' in section
            assert "status-failed" not in section and "status-held" not in section
            assert 'class="error"' not in section and "not published" not in section
            assert "<table class=\"preview\"" in section, "the published version's rows"
        text = html.unescape(page.text)
        assert "quality_pii_acknowledge" not in text and "column 'contact'" not in text
        assert "Blocking quality checks failed" not in text

    page = requests.get(f"{leaky_site['url']}/dataset/leaky", headers=headers, timeout=30)
    keyed, held = _section(page.text, leaky_site["keyed"]), _section(page.text, contacts["id"])
    assert 'class="status status-failed"' in keyed and "Blocking quality checks failed" in keyed
    assert "SECRET-KEY-0" in keyed, "editors see the values that stopped it"
    assert 'class="status status-held"' in held and "Personal information found: email in column 'contact'" in held
    assert "quality_pii_acknowledge" in held and "published version below stays" in held
    assert "<table class=\"preview\"" in held, "version 1 is still shown"
    forged = requests.get(f"{leaky_site['url']}/dataset/leaky", headers={"Authorization": "forged"}, timeout=30)
    assert forged.status_code == 403, "a bad token is refused, not ignored"
