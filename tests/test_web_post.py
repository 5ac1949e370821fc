"""Downloads and exports of the pages are POST forms with the CSRF token (webui/confirm.py).

A signed-in browser's GET of a download or export address (a link or a redirect from another site:
the session cookie is SameSite=Lax, so it goes along) reads nothing and records nothing: it answers
with a confirmation page whose one button posts the same parameters. A POST without the page's token
is refused before any handler runs. The pages' buttons still download the right bytes, each with
exactly one read event. Against ``mosu up`` on loopback, with ``requests`` where the test plays
another site and with Debian's Chromium where a user clicks; the audit events are read back from
the catalog database.
"""
from __future__ import annotations

import csv
import io
import json
import re
import uuid

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import func, select

from catalog.db.models import AuditEvent
from tests.conftest import wait_for_ingest
from tests.web import PASSWORD, assert_accessible, browser, new_user, signed_in_page  # noqa: F401

FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
READS = ("resource_download", "datastore_export", "datastore_sql_export", "datastore_search", "datastore_search_sql")
HOSTILE_TITLE = '<script>alert("title")</script> Tide gauges'
HOSTILE_NAME = '"><img src=x onerror=alert(2)> levels'
ROWS = [(i, ("Oslo", "Bergen", "Tromsø")[i % 3], f"mark-{i:03d}") for i in range(1, 41)]
CSV = ("id,city,mark\n" + "".join(f"{i},{c},{m}\n" for i, c, m in ROWS)).encode()


@pytest.fixture(scope="module")
def world(mosu):
    """A public dataset (hostile title and resource name) with one 40-row resource, and a researcher."""
    admin = mosu.ckan(mosu.token("post-admin", sysadmin=True))
    suffix = uuid.uuid4().hex[:6]
    admin.action.organization_create(name=f"post-lab-{suffix}")
    pkg = admin.action.package_create(name=f"post-{suffix}", title=HOSTILE_TITLE, owner_org=f"post-lab-{suffix}")
    res = admin.action.resource_create(package_id=pkg["id"], name=HOSTILE_NAME, upload=("tide.csv", io.BytesIO(CSV)))
    assert wait_for_ingest(admin, res["id"])["ingest_status"] == "ready"
    researcher = new_user(mosu, f"post-researcher-{suffix}")
    token = admin.action.api_token_create(user=researcher, name="script")["token"]
    return {"pkg": pkg, "rid": res["id"], "researcher": researcher, "token": token}


def _sign_in(mosu, name: str) -> requests.Session:
    """A ``requests`` session signed in through the form, as a browser posts it."""
    client = requests.Session()
    token = FORM_TOKEN.search(client.get(mosu.url + "/user/login", timeout=30).text).group(1)
    r = client.post(mosu.url + "/user/login", data={"username": name, "password": PASSWORD, "csrf_token": token},
                    allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text[:300]
    return client


def _last_seq(mosu) -> int:
    with mosu.inspect().read() as s:
        return s.scalar(select(func.max(AuditEvent.seq))) or 0


def _reads_after(mosu, seq: int, actor: str) -> list[str]:
    """The read events of ``actor`` recorded after ``seq`` (their action names, in order)."""
    with mosu.inspect().read() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.seq > seq, AuditEvent.actor == actor,
                                                  AuditEvent.action.in_(READS)).order_by(AuditEvent.seq))
        return [e.action for e in rows]


def _addresses(mosu, world) -> dict[str, tuple[str, dict[str, str]]]:
    """Each address of a page that reads data -> (URL, the parameters of a GET of it)."""
    base = f"{mosu.url}/dataset/{world['pkg']['name']}/resource/{world['rid']}"
    sql = f'SELECT id, mark FROM "{world["rid"]}" WHERE city <> \'<script>alert(3)</script>\'\nORDER BY id'
    return {"download": (base + "/download", {"format": "parquet"}),
            "export": (base + "/export", {"format": "jsonl", "filters": json.dumps({"city": "Oslo"}),
                                          "sort": "id desc"}),
            "sql": (mosu.url + "/sql/export", {"sql": sql, "format": "csv"})}


def _hidden_fields(html: str) -> dict[str, str]:
    """The hidden fields of the confirmation page's form, unescaped as a browser reads them."""
    import html as htmllib

    return {htmllib.unescape(n): htmllib.unescape(v)
            for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', html)}


@pytest.mark.parametrize("address", ["download", "export", "sql"])
def test_a_signed_in_get_reads_nothing_and_asks_to_confirm(mosu, world, address):
    url, params = _addresses(mosu, world)[address]
    client = _sign_in(mosu, world["researcher"])
    before = _last_seq(mosu)
    got = client.get(url, params=params, allow_redirects=False, timeout=30)
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("text/html"), got.status_code
    assert "Location" not in got.headers and "Content-Disposition" not in got.headers
    assert "mark-0" not in got.text and "PAR1" not in got.text, "no row leaves on a GET"
    assert _reads_after(mosu, before, world["researcher"]) == [], "and no read is recorded as the user's"
    assert re.search(r'<form method="post" action="[^"]*/(download|export)" class="confirm">', got.text)
    fields = _hidden_fields(got.text)
    assert fields.pop("csrf_token") and fields == params, "the button posts the same parameters"
    if address == "sql":  # the query is shown, as text
        assert "&lt;script&gt;alert(3)&lt;/script&gt;" in got.text and "<script>alert(3)" not in got.text
    else:  # the dataset and resource are named, as text
        assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt; Tide gauges" in got.text
        assert "<img src=x" not in got.text and "&#34;&gt;&lt;img src=x onerror=alert(2)&gt; levels" in got.text
    # Posting the page's form (token included) is the download itself, recorded once.
    posted = client.post(url, data={**params, "csrf_token": FORM_TOKEN.search(got.text).group(1)},
                         allow_redirects=False, timeout=60)
    if address == "download":
        assert posted.status_code == 303 and "X-Amz-Expires=300" in posted.headers["Location"]
        assert requests.get(posted.headers["Location"], timeout=30).content[:4] == b"PAR1"
    else:
        assert posted.status_code == 200 and "attachment" in posted.headers["Content-Disposition"]
    expected = {"download": "resource_download", "export": "datastore_export", "sql": "datastore_sql_export"}
    assert _reads_after(mosu, before, world["researcher"]) == [expected[address]]
    if address == "export":
        assert [json.loads(line)["id"] for line in posted.text.splitlines()] == [
            i for i, c, _m in reversed(ROWS) if c == "Oslo"]
    if address == "sql":
        assert [int(r["id"]) for r in csv.DictReader(io.StringIO(posted.text))] == [i for i, _c, _m in ROWS]


@pytest.mark.parametrize("address", ["download", "export", "sql"])
@pytest.mark.parametrize("token", [None, "wrong"])
def test_a_post_without_the_page_s_token_is_refused_and_reads_nothing(mosu, world, address, token):
    url, params = _addresses(mosu, world)[address]
    client = _sign_in(mosu, world["researcher"])
    before = _last_seq(mosu)
    got = client.post(url, data={**params, **({"csrf_token": "x" * 43} if token else {})},
                      allow_redirects=False, timeout=30)
    assert got.status_code == 403 and "Location" not in got.headers and "mark-0" not in got.text
    assert "Content-Disposition" not in got.headers
    assert _reads_after(mosu, before, world["researcher"]) == []


def test_a_program_s_get_with_a_token_or_nobody_s_still_downloads(mosu, world):
    """A resource's ``url`` is its download address: CKAN clients GET it with an API token, or with
    none for public data. Neither is a browser's borrowed cookie, so neither is asked to confirm."""
    url, params = _addresses(mosu, world)["download"]
    before = _last_seq(mosu)
    with_token = requests.get(url, headers={"Authorization": world["token"]}, allow_redirects=False, timeout=30)
    assert with_token.status_code == 302 and "X-Amz-Expires=300" in with_token.headers["Location"]
    assert requests.get(with_token.headers["Location"], timeout=30).content == CSV
    assert _reads_after(mosu, before, world["researcher"]) == ["resource_download"]
    export_url, export_params = _addresses(mosu, world)["export"]
    anonymous = requests.get(export_url, params=export_params, timeout=30)
    assert anonymous.status_code == 200 and "mark-" in anonymous.text


def test_the_confirmation_page_is_calm_accessible_and_its_button_downloads_once(mosu, world, browser):  # noqa: F811
    page = signed_in_page(browser, mosu, world["researcher"])
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for address in ("download", "export", "sql"):
        url, params = _addresses(mosu, world)[address]
        before = _last_seq(mosu)
        page.goto(url + "?" + requests.compat.urlencode(params))
        expect(page.get_by_role("heading", level=1)).to_have_text(
            {"download": "Download a file", "export": "Export rows", "sql": "Export a query's result"}[address])
        if address == "sql":
            expect(page.locator("pre.confirm-sql")).to_have_text(params["sql"])
        else:
            expect(page.locator("dl.confirm-facts")).to_contain_text(HOSTILE_TITLE)
            expect(page.locator("dl.confirm-facts")).to_contain_text(HOSTILE_NAME)
        assert _reads_after(mosu, before, world["researcher"]) == []
        assert_accessible(page)
        with page.expect_download() as got:
            page.get_by_role("button", name={"download": "Download"}.get(address, "Export"), exact=True).click()
        content = open(got.value.path(), "rb").read()
        if address == "download":
            assert content[:4] == b"PAR1" and got.value.suggested_filename.endswith(".parquet")
        elif address == "export":
            assert [json.loads(line)["mark"] for line in content.decode().splitlines()] == [
                m for _i, c, m in reversed(ROWS) if c == "Oslo"]
        else:
            assert content.decode().splitlines()[1] == "1,mark-001"
        assert _reads_after(mosu, before, world["researcher"]) == [
            {"download": "resource_download", "export": "datastore_export", "sql": "datastore_sql_export"}[address]]
    assert page.console_errors == [] and dialogs == []
    page.context.close()


def test_the_dataset_page_buttons_download_each_format_once(mosu, world, browser):  # noqa: F811
    page = signed_in_page(browser, mosu, world["researcher"])
    page.goto(f"{mosu.url}/dataset/{world['pkg']['name']}")
    actions = {"original": "resource_download", "Parquet": "resource_download", "CSV": "datastore_export",
               "JSON lines": "datastore_export"}
    for name, action in actions.items():
        before = _last_seq(mosu)
        with page.expect_download() as got:
            page.get_by_role("button", name=name, exact=True).click()
        content = open(got.value.path(), "rb").read()
        if name == "original":  # the uploaded file itself, from the object store
            assert content == CSV
        elif name == "Parquet":
            assert content[:4] == b"PAR1" and content[-4:] == b"PAR1"
        elif name == "CSV":  # the export writes CSV's own line ends
            assert content.replace(b"\r\n", b"\n") == CSV
        else:
            assert [tuple(json.loads(line).values()) for line in content.decode().splitlines()] == ROWS
        assert _reads_after(mosu, before, world["researcher"]) == [action], name
    assert page.console_errors == []
    page.context.close()
