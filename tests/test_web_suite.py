"""The expectation suite editor in a real Chromium against ``mosu up``: a resource's editor adds an
expectation and removes one (the API's ``quality_suite_show`` has the saved suite); a suite the
action refuses comes back with the action's message next to the row it names and nothing saved;
a stranger gets the refusal page, a post without the CSRF token is refused; hostile text in
arguments stays text.

Each test builds its own organization, users and dataset under a unique suffix.
"""
from __future__ import annotations

import json
import re
import uuid
from urllib.parse import urlsplit

import pytest

from tests import web
from tests.conftest import upload
from tests.web import assert_accessible, new_user, signed_in_page
from tests.web import unexpected_errors as _unexpected
from tests.web import watch_dialogs as _no_dialogs

browser = web.browser  # the module's Chromium (a fixture)

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

HOSTILE = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>')
TREES = b"id,species,height_m\n" + b"".join(f"{i},oak,{10 + i % 7}\n".encode() for i in range(60))
BETWEEN = "expect_column_values_to_be_between"


@pytest.fixture(scope="module")
def admin(mosu):
    return mosu.ckan(mosu.token(f"suite-admin-{uuid.uuid4().hex[:6]}", sysadmin=True))


@pytest.fixture
def trees(mosu, admin) -> dict:
    """An organization with a provider (an editor of it) and a dataset with one ingested resource,
    whose suite was generated from that first version."""
    suffix = uuid.uuid4().hex[:8]
    org = admin.action.organization_create(name=f"suite-{suffix}", title=f"Suite lab {suffix}")
    provider = new_user(mosu, f"suite-prov-{suffix}")
    admin.action.organization_member_create(id=org["id"], username=provider, role="editor")
    name = f"trees-{suffix}"
    admin.action.package_create(name=name, owner_org=org["id"], notes="Only its editors change its suite")
    res = upload(admin, TREES, "trees.csv", dataset=name)
    assert res["ingest_status"] == "ready", res
    return {"provider": provider, "name": name, "res": res,
            "path": f"/dataset/{name}/resource/{res['id']}/suite"}


def _suite(admin, resource_id: str) -> dict:
    return admin.action.quality_suite_show(id=resource_id)


def _add(page, kind: str, column: str, arguments: str, severity: str = "warning") -> None:
    page.get_by_label("Type", exact=True).select_option(kind)
    page.get_by_label("Column", exact=True).select_option(column)
    page.get_by_label("Arguments (JSON)", exact=True).fill(arguments)
    page.get_by_label("Severity", exact=True).select_option(severity)


def _save(page, status: int) -> None:
    """Press save; a save that passes lands back on the page with its notice (after a 303)."""
    if status == 303:
        page.get_by_role("button", name="Save the suite").click()
        page.wait_for_url(re.compile(r"/suite\?saved=1$"))
        return
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/suite")) as answer:
        page.get_by_role("button", name="Save the suite").click()
    assert answer.value.status == status, answer.value.status
    page.wait_for_load_state()


def _arguments(page, label: str) -> dict:
    """What an arguments field holds, as JSON (the store may order an object's keys its own way)."""
    return json.loads(page.get_by_label(label, exact=True).input_value() or "{}")


def test_an_editor_adds_and_removes_expectations_from_the_ingest_page(mosu, admin, browser, trees):
    before = _suite(admin, trees["res"]["id"])
    generated = before["suite"]["expectations"]
    assert before["source"] == "generated" and len(generated) >= 2, before
    page = signed_in_page(browser, mosu, trees["provider"])
    page.goto(mosu.url + f"/dataset/{trees['name']}/resource/{trees['res']['id']}/ingest")
    page.get_by_role("link", name="Expectation suite").click()
    page.wait_for_url(f"**{trees['path']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Expectation suite")
    # Each expectation as the API has it: its type, its column, its other arguments.
    codes = page.locator("table.suite tbody tr code")
    expect(codes).to_have_text([e["type"] for e in generated])
    for i, e in enumerate(generated, start=1):
        rest = {k: v for k, v in e["kwargs"].items() if k != "column"}
        assert _arguments(page, f"Arguments of expectation {i}") == rest
        expect(page.get_by_label(f"Severity of expectation {i}", exact=True)).to_have_value(e["meta"]["severity"])
    assert_accessible(page)

    _add(page, BETWEEN, "height_m", '{"min_value": 0, "max_value": 100}')
    _save(page, 303)
    expect(page.locator(".notice[role=status]")).to_have_text("Saved. The current version is being checked again.")
    after = _suite(admin, trees["res"]["id"])
    assert after["source"] == "provider" and after["updated_by"] == trees["provider"]
    assert after["suite"]["expectations"][:-1] == generated, "the others are kept as they were"
    assert after["suite"]["expectations"][-1] == {
        "type": BETWEEN, "kwargs": {"column": "height_m", "min_value": 0, "max_value": 100},
        "meta": {"severity": "warning"}}
    n = len(generated) + 1
    assert _arguments(page, f"Arguments of expectation {n}") == {"min_value": 0, "max_value": 100}
    expect(page.locator(f"table.suite tbody tr:nth-child({n})")).to_contain_text("height_m")
    assert_accessible(page)

    page.get_by_label("Remove expectation 1", exact=True).check()
    page.get_by_label("Severity of expectation 2", exact=True).select_option(
        "warning" if generated[1]["meta"]["severity"] == "blocking" else "blocking")
    _save(page, 303)
    kept = _suite(admin, trees["res"]["id"])["suite"]["expectations"]
    assert len(kept) == len(generated) and kept[-1]["kwargs"]["column"] == "height_m"
    assert kept[0]["type"] == generated[1]["type"] and kept[0]["kwargs"] == generated[1]["kwargs"]
    assert kept[0]["meta"]["severity"] != generated[1]["meta"]["severity"], "the severity changed"
    assert kept[1:-1] == generated[2:]
    assert _unexpected(page.console_errors) == []


def test_a_suite_the_action_refuses_shows_its_message_inline_and_saves_nothing(mosu, admin, browser, trees):
    before = _suite(admin, trees["res"]["id"])
    page = signed_in_page(browser, mosu, trees["provider"])
    page.goto(mosu.url + trees["path"])

    # The new row: minimum above maximum.
    _add(page, BETWEEN, "height_m", '{"min_value": 100, "max_value": 0}')
    _save(page, 409)
    field = page.get_by_label("Arguments (JSON)", exact=True)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value('{"min_value": 100, "max_value": 0}')
    error = page.locator("#" + field.get_attribute("aria-describedby").split()[0])
    expect(error).to_have_text("min_value 100 is above max_value 0")
    expect(page.get_by_label("Type", exact=True)).to_have_value(BETWEEN)
    assert _suite(admin, trees["res"]["id"]) == before
    assert_accessible(page)

    # An existing row: an argument its type does not take; the message is next to that row only.
    page.get_by_label("Type", exact=True).select_option("")
    first = page.get_by_label("Arguments of expectation 1", exact=True)
    arguments = json.loads(first.input_value() or "{}")
    first.fill(json.dumps({**arguments, "bogus": 1}))
    _save(page, 409)
    first = page.get_by_label("Arguments of expectation 1", exact=True)
    expect(first).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#" + first.get_attribute("aria-describedby"))).to_have_text("unknown argument 'bogus'")
    expect(page.get_by_label("Arguments (JSON)", exact=True)).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("[aria-invalid=true]")).to_have_count(1)
    assert _suite(admin, trees["res"]["id"]) == before

    # Arguments that are not a JSON object: the page's own message, before the action.
    page.get_by_label("Arguments of expectation 1", exact=True).fill("min 0")
    _save(page, 409)
    expect(page.locator("#error-0")).to_contain_text("The arguments must be a JSON object")
    assert _suite(admin, trees["res"]["id"]) == before

    # A column the table does not have (the form offers only the table's: posted by hand).
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    answer = page.request.post(mosu.url + trees["path"], form={
        "csrf_token": token, "type-new": BETWEEN, "column-new": "no_such_column",
        "arguments-new": '{"min_value": 0}', "severity-new": "warning"})
    assert answer.status == 409
    assert "the table has no column &#39;no_such_column&#39;" in answer.text() or \
        "the table has no column 'no_such_column'" in answer.text()
    assert 'id="arguments-new"' in answer.text() and 'aria-describedby="error-new arguments-hint"' in answer.text()
    assert _suite(admin, trees["res"]["id"]) == before
    assert _unexpected(page.console_errors, 409) == []


def test_a_stranger_gets_the_refusal_page_and_a_post_needs_its_csrf_token(mosu, admin, browser, trees):
    before = _suite(admin, trees["res"]["id"])
    stranger = new_user(mosu)
    page = signed_in_page(browser, mosu, stranger)
    response = page.goto(mosu.url + trees["path"])
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_contain_text("403")
    assert page.locator("table.suite, form.suite-form").count() == 0
    assert "height_m" not in page.content()
    assert_accessible(page)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    refused = page.request.post(mosu.url + trees["path"], form={
        "csrf_token": token, "type-new": BETWEEN, "column-new": "height_m", "arguments-new": '{"min_value": 0}'})
    assert refused.status == 403
    assert _suite(admin, trees["res"]["id"]) == before
    assert _unexpected(page.console_errors, 403) == []

    editor = signed_in_page(browser, mosu, trees["provider"])
    no_token = editor.request.post(mosu.url + trees["path"], form={
        "type-new": BETWEEN, "column-new": "height_m", "arguments-new": '{"min_value": 0}'})
    assert no_token.status == 403
    assert _suite(admin, trees["res"]["id"]) == before

    anonymous = browser.new_page()
    anonymous.goto(mosu.url + trees["path"])
    assert urlsplit(anonymous.url).path == "/user/login", "signed out: the sign-in form, then back here"
    anonymous.close()


def test_hostile_text_in_arguments_stays_text(mosu, admin, browser, trees):
    page = signed_in_page(browser, mosu, trees["provider"])
    dialogs = _no_dialogs(page)
    page.goto(mosu.url + trees["path"])
    regex = HOSTILE[0] + "|" + HOSTILE[1]
    _add(page, "expect_column_values_to_match_regex", "species", json.dumps({"regex": regex}))
    _save(page, 303)
    saved = _suite(admin, trees["res"]["id"])["suite"]["expectations"][-1]
    assert saved["kwargs"] == {"column": "species", "regex": regex}
    n = page.locator("table.suite tbody tr").count()
    assert _arguments(page, f"Arguments of expectation {n}") == {"regex": regex}

    _add(page, BETWEEN, "height_m", json.dumps({HOSTILE[1]: 1, "min_value": 0}))
    _save(page, 409)
    expect(page.locator("#error-new")).to_have_text(re.compile(r"^unknown argument '.*img src=x onerror"))
    expect(page.get_by_label("Arguments (JSON)", exact=True)).to_have_value(json.dumps({HOSTILE[1]: 1, "min_value": 0}))
    for _ in range(2):
        assert page.locator("script:not([src])").count() == 0 and page.locator("img[src=x]").count() == 0
        assert_accessible(page)
        page.goto(mosu.url + trees["path"])
    assert _unexpected(page.console_errors, 409) == [] and dialogs == []
