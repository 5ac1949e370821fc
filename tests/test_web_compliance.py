"""The compliance officer's pages (issue 14): the dashboard, the reports with filters and exports, and a
dataset's access history from its page, in Debian's Chromium against ``mosu up`` on loopback.

The module builds its own world over the API before any page is opened: datasets (one titled with a
script tag), researchers who read them a counted number of times (one with SQL text holding a script
tag), a refused read, a grant ending in 10 days and a revoked grant tried after its end. The pages
are then only read (an auditor reads no data, and the pages used here make no read), so the counts
the test made are exactly what the dashboard must show, whatever order the tests run in.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from dataclasses import dataclass, field

import ckanapi
import pytest
import requests
from sqlalchemy import func, select, update

from catalog.db.models import AccessGrant, AuditEvent, utcnow
from tests.conftest import upload
from tests.web import assert_accessible, browser, new_user, screenshot, signed_in_page, watch_console  # noqa: F401

CSV = b"id,city\n1,Oslo\n2,Lima\n3,Pune\n4,Riga\n5,Baku\n"
HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>"


@dataclass
class World:
    auditor: str
    researcher: str  # signs in; reads nothing, may see nothing of the log
    readers: dict[str, dict] = field(default_factory=dict)  # name -> {"id", "token"}
    datasets: dict[str, dict] = field(default_factory=dict)  # key -> package (with "resource_id")
    reads: dict[tuple[str, str], int] = field(default_factory=dict)  # (reader, dataset key) -> accesses
    sql: str = ""
    checkpoint_size: int = 0
    verified_events: int = 0

    @property
    def total_reads(self) -> int:
        return sum(self.reads.values())


@pytest.fixture(scope="module")
def world(mosu) -> World:
    suffix = uuid.uuid4().hex[:6]
    admin = mosu.ckan(mosu.token(f"wc-admin-{suffix}", sysadmin=True))
    org = admin.action.organization_create(name=f"wc-org-{suffix}")
    w = World(auditor=new_user(mosu, f"wc-auditor-{suffix}", auditor=True),
              researcher=new_user(mosu, f"wc-researcher-{suffix}"))
    for key, fields in (("hot", {"title": f"Hot {HOSTILE}"}), ("cold", {"title": "Cold"}),
                        ("locked", {"title": "Locked", "access_level": "restricted"})):
        pkg = admin.action.package_create(name=f"wc-{key}-{suffix}", owner_org=org["id"], **fields)
        res = upload(admin, CSV, "cities.csv", dataset=pkg["id"])
        assert res["ingest_status"] == "ready"
        w.datasets[key] = {**pkg, "resource_id": res["id"]}
    for who in ("ana", "bo", "cy"):
        name = f"wc-{who}-{suffix}"
        made = admin.action.user_create(name=name, email=f"{name}@example.org")
        w.readers[who] = {"id": made["id"], "name": name,
                          "client": mosu.ckan(admin.action.api_token_create(user=name, name="t")["token"])}

    def preview(who: str, key: str, limit: int) -> None:
        w.readers[who]["client"].action.datastore_search(resource_id=w.datasets[key]["resource_id"], limit=limit)
        w.reads[(who, key)] = w.reads.get((who, key), 0) + 1

    for limit in (1, 2, 3):
        preview("ana", "hot", limit)
    preview("bo", "hot", 2)
    preview("ana", "cold", 1)
    w.sql = f'SELECT id, \'{HOSTILE}\' AS note FROM "{w.datasets["cold"]["resource_id"]}" WHERE id < 3'
    w.readers["bo"]["client"].action.datastore_search_sql(sql=w.sql)
    w.reads[("bo", "cold")] = 1
    locked = w.datasets["locked"]
    with pytest.raises(ckanapi.NotAuthorized):  # a refusal: access_denied
        w.readers["bo"]["client"].action.datastore_search(resource_id=locked["resource_id"])
    admin.action.access_grant_create(package_id=locked["id"], user_id=w.readers["ana"]["id"], days=10)
    ended = admin.action.access_grant_create(package_id=locked["id"], user_id=w.readers["bo"]["id"], days=90)
    admin.action.access_grant_revoke(id=ended["id"], reason="study over")
    with pytest.raises(ckanapi.NotAuthorized):  # tried after the grant's end
        w.readers["bo"]["client"].action.datastore_search(resource_id=locked["resource_id"])
    lapsed = admin.action.access_grant_create(package_id=locked["id"], user_id=w.readers["cy"]["id"], days=30)
    with mosu.inspect().write.begin() as s:  # it ended a second ago (no waiting for a real expiry)
        s.execute(update(AccessGrant).where(AccessGrant.id == lapsed["id"])
                  .values(expires=utcnow() - dt.timedelta(seconds=1)))
    with pytest.raises(ckanapi.NotAuthorized):
        w.readers["cy"]["client"].action.datastore_search(resource_id=locked["resource_id"])
    out = mosu.cli("audit", "checkpoint").stdout
    w.checkpoint_size = int(re.search(r'"?tree_size"?\W+(\d+)', out).group(1))
    verified = mosu.cli("audit", "verify").stdout  # recorded: the dashboard's last verification
    w.verified_events = int(re.match(r"audit log intact: (\d+) events", verified).group(1))
    return w


def _page(browser, mosu, name: str):  # noqa: F811
    page = signed_in_page(browser, mosu, name)
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    return page


def _cells(page, selector: str) -> list[list[str]]:
    return [[c.strip() for c in row.locator("td").all_text_contents()]
            for row in page.locator(f"{selector} tbody tr").all()]


def _number(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text) or 0)


def _fits_a_phone(page, name: str) -> None:
    """At 390 px wide the page does not scroll sideways (wide tables scroll inside their frame)."""
    screenshot(page, f"compliance-{name}")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, f"compliance-{name}-390")
    page.set_viewport_size({"width": 1280, "height": 900})


def _clean(page, statuses: tuple[int, ...] = ()) -> None:
    """No console error and no dialog (a script that ran would open one), but the browser's note of
    the page's own expected status (``statuses``: an error page the test asked for)."""
    expected = tuple(f"Failed to load resource: the server responded with a status of {s} " for s in statuses)
    errors = [e for e in page.console_errors if not e.startswith(expected)] if expected else page.console_errors
    assert errors == [] and page.dialogs == [], (page.console_errors, page.dialogs)


def test_the_dashboard_shows_the_reads_refusals_grants_and_checkpoint_the_test_made(mosu, browser, world):  # noqa: F811
    page = _page(browser, mosu, world.auditor)
    page.goto(mosu.url + "/compliance")
    assert page.get_by_role("heading", level=1).inner_text() == "Compliance"
    chart = page.get_by_role("img", name="Accesses per day")
    assert chart.is_visible()
    bars = chart.locator("rect.bar")
    assert bars.count() == 30
    counts = [int(b.get_attribute("data-accesses")) for b in bars.all()]
    assert sum(counts) == world.total_reads == counts[-1] == 6, counts
    heights = [float(b.get_attribute("height")) for b in bars.all()]
    assert heights[-1] > 0 and set(heights[:-1]) == {0.0}
    table = _cells(page, "#accesses-by-day")
    assert len(table) == 30 and sum(_number(r[1]) for r in table) == world.total_reads
    top = _cells(page, "#top-datasets")
    hot = sum(n for (_, key), n in world.reads.items() if key == "hot")
    assert top[0] == [f"Hot {HOSTILE}", str(hot), str(1 + 2 + 3 + 2)], "the most read first, its title as text"
    assert [r[0] for r in top] == [f"Hot {HOSTILE}", "Cold"]
    users = {r[0]: _number(r[1]) for r in _cells(page, "#top-users")}
    assert users == {world.readers[w]["name"]: sum(n for (who, _), n in world.reads.items() if who == w)
                     for w in ("ana", "bo")}
    counts_text = page.locator("#refusal-counts").inner_text()
    denied = int(re.search(r"access denied\s+(\d+)", counts_text).group(1))
    refused = _cells(page, "#recent-refusals")
    readers = {world.readers[w]["name"] for w in world.readers}
    assert [r[2] for r in refused if r[1] == "access denied" and r[2] in readers] == [
        world.readers[w]["name"] for w in ("cy", "bo", "bo")], "the test's refusals, newest first"
    # the researcher's refused pages (another test, run before or after) are refusals too: at most 6 more
    assert 3 <= denied == len([r for r in refused if r[1] == "access denied"]) <= 9, (denied, refused)
    expiring = _cells(page, "#expiring-grants")
    assert [(r[0], r[1]) for r in expiring] == [(world.datasets["locked"]["name"], world.readers["ana"]["name"])]
    attempts = _cells(page, "#ended-grant-attempts")
    assert sorted((r[0], r[1], r[2], r[4]) for r in attempts) == [
        (world.datasets["locked"]["name"], world.readers["bo"]["name"], "revoked", "1"),
        (world.datasets["locked"]["name"], world.readers["cy"]["name"], "expired", "1")]
    log = page.locator("#log-state").inner_text()
    assert f"{world.checkpoint_size:,} events, signed" in log
    verified = page.locator("#last-verify")
    assert f"intact: {world.verified_events:,} events checked" in verified.inner_text(), log
    with mosu.inspect().read() as s:
        run = s.scalars(select(AuditEvent).where(AuditEvent.action == "audit_verified")
                        .order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert verified.locator("time").get_attribute("datetime") == run.ts.isoformat()
    shown = verified.locator("time").inner_text()
    assert str(run.ts.year) in shown and ":" in shown and "T" not in shown, f"a formatted time: {shown}"
    assert_accessible(page)
    _fits_a_phone(page, "dashboard")
    _clean(page)
    page.context.close()


def test_the_dataset_report_filtered_to_a_user_and_its_csv_export(mosu, browser, world):  # noqa: F811
    page = _page(browser, mosu, world.auditor)
    page.goto(mosu.url + "/compliance")
    page.get_by_role("link", name=f"Hot {HOSTILE}").click()
    hot, ana = world.datasets["hot"], world.readers["ana"]["name"]
    assert page.get_by_role("heading", level=1).inner_text() == f"Dataset report: {hot['name']}"
    assert {r[0] for r in _cells(page, "#report-rows")} == {ana, world.readers["bo"]["name"]}
    page.get_by_label("User (name or id)").fill(ana)
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    rows = _cells(page, "#report-rows")
    assert [(r[0], r[2], r[3], r[7]) for r in rows] == [(ana, "3", "3", str(1 + 2 + 3))], rows
    reads = _cells(page, "#reads")
    assert len(reads) == world.reads[(("ana", "hot"))] and {r[1] for r in reads} == {ana}
    assert sorted(_number(r[5]) for r in reads) == [1, 2, 3]
    assert_accessible(page)
    _fits_a_phone(page, "dataset-report")
    with page.expect_download() as got:
        page.get_by_role("link", name="CSV").click()
    download = got.value
    assert download.suggested_filename.startswith(f"audit-dataset-{hot['name']}") and \
        download.suggested_filename.endswith(".csv")
    exported = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert [(r["user"], r["accesses"], r["previews"], r["rows"]) for r in exported] == [
        (r[0], r[2], r[3], r[7]) for r in rows], "the file holds the page's rows"
    with page.expect_download() as got:
        page.get_by_role("link", name="JSON lines").click()
    assert got.value.suggested_filename.endswith(".jsonl")
    _clean(page)
    page.context.close()


def test_an_export_under_a_column_grant_is_one_row_with_its_way_rows_and_bytes(mosu_factory, browser):  # noqa: F811
    """A researcher with a grant on one column exports the dataset; the officer's dataset report shows
    the export once: in the readers' table one row for the researcher, ``grant:columns``, with the
    export's rows (before, its end event made a second row without a way of reading), and in the
    accesses one row with the way, the columns, the rows, the bytes and "complete" (before, the
    export showed without its rows and bytes). Its own server: the module's counts stay the test's."""
    site = mosu_factory()
    suffix = uuid.uuid4().hex[:6]
    admin = site.ckan(site.token(f"wcx-admin-{suffix}", sysadmin=True))
    org = admin.action.organization_create(name=f"wcx-org-{suffix}")
    pkg = admin.action.package_create(name=f"wcx-locked-{suffix}", owner_org=org["id"], access_level="restricted")
    res = upload(admin, CSV, "cities.csv", dataset=pkg["id"])
    researcher = new_user(site, f"wcx-res-{suffix}")
    officer = new_user(site, f"wcx-officer-{suffix}", auditor=True)
    token = admin.action.api_token_create(user=researcher, name="t")["token"]
    admin.action.access_grant_create(package_id=pkg["id"], user_id=researcher, days=30, columns=["id"])
    got = requests.get(f"{site.url}/datastore/dump/{res['id']}", params={"format": "csv"},
                       headers={"Authorization": token}, timeout=60)
    assert got.status_code == 200 and got.text.splitlines()[0] == "id" and len(got.text.splitlines()) == 6

    report = admin.action.audit_report_dataset(id=pkg["name"], user=researcher)
    assert [(r["via"], r["accesses"], r["exports"], r["rows"]) for r in report["rows"]] == [("grant:columns", 1, 1, 5)]

    page = _page(browser, site, officer)
    page.goto(f"{site.url}/compliance/dataset?dataset={pkg['name']}")
    rows = [r for r in _cells(page, "#report-rows") if r[0] == researcher]
    assert [(r[1], r[2], r[5], r[7]) for r in rows] == [("grant:columns", "1", "1", "5")], rows
    reads = _cells(page, "#reads")
    assert len(reads) == 1, reads
    time_, who, event, way, outcome, n, size, _ = reads[0]
    assert (who, event, way) == (researcher, "export", "grant:columns columns: id")
    assert (outcome, _number(n), _number(size)) == ("ok · complete", 5, len(got.content))
    assert_accessible(page)
    _clean(page)
    page.context.close()


def test_sql_text_with_a_script_tag_shows_as_text_in_the_access_history(mosu, browser, world):  # noqa: F811
    page = _page(browser, mosu, world.auditor)
    cold = world.datasets["cold"]
    page.goto(f"{mosu.url}/compliance/dataset?dataset={cold['name']}&kind=queries")
    reads = page.locator("#reads tbody tr")
    assert reads.count() == 1
    assert reads.locator("code.sql").inner_text() == world.sql
    assert page.locator("#reads script, #reads img").count() == 0
    assert_accessible(page)
    _clean(page)
    page.context.close()


@pytest.mark.parametrize("path", ["/compliance/events", "/compliance/user", "/compliance/grants",
                                  "/compliance/denials"])
def test_every_report_page_answers_with_its_rows_accessibly(mosu, browser, world, path):  # noqa: F811
    page = _page(browser, mosu, world.auditor)
    bo = world.readers["bo"]["name"]
    page.goto(mosu.url + path)
    if path.endswith("/user"):
        page.get_by_label("User (name or id)").fill(bo)
        page.get_by_role("button", name="Show").click()
        page.wait_for_load_state()
        rows = _cells(page, "#report-rows")
        assert {r[0] for r in rows if r[3] != "0"} == {world.datasets["hot"]["name"], world.datasets["cold"]["name"]}
    elif path.endswith("/denials"):
        page.get_by_label("User (name or id)").fill(bo)
        page.get_by_role("button", name="Show").click()
        page.wait_for_load_state()
        rows = _cells(page, "#report-rows")
        locked = world.datasets["locked"]["name"]
        assert [(r[0], r[1], r[2], r[3]) for r in rows] == [(bo, locked, "access denied", "2")]
    elif path.endswith("/grants"):
        page.get_by_label("Dataset (name or id)").fill(world.datasets["locked"]["name"])
        page.get_by_label("revoked").check()
        page.get_by_role("button", name="Show").click()
        page.wait_for_load_state()
        assert [(r[1], r[2]) for r in _cells(page, "#report-rows")] == [(bo, "revoked")]
    else:
        page.get_by_label("User (name or id)").fill(bo)
        page.get_by_label("previews").check()
        page.get_by_role("button", name="Show").click()
        page.wait_for_load_state()
        rows = _cells(page, "#report-rows")
        assert len(rows) == world.reads[("bo", "hot")] and {(r[1], r[3]) for r in rows} == {("preview", bo)}
    assert_accessible(page)
    _clean(page)
    page.context.close()


def test_a_filter_naming_nothing_is_said_next_to_its_field(mosu, browser, world):  # noqa: F811
    page = _page(browser, mosu, world.auditor)
    response = page.goto(f"{mosu.url}/compliance/dataset?dataset=no-such-{uuid.uuid4().hex[:6]}")
    assert response.status == 404
    field = page.get_by_label("Dataset (name or id)")
    assert field.get_attribute("aria-invalid") == "true"
    assert page.locator("#" + field.get_attribute("aria-describedby")).inner_text() == "Dataset not found"
    response = page.goto(f"{mosu.url}/compliance/events?to=not-a-day")
    assert response.status == 409
    assert page.get_by_label("To (UTC day, included)").get_attribute("aria-invalid") == "true"
    assert_accessible(page)
    _clean(page, (404, 409))
    page.context.close()


def test_the_dataset_page_links_its_access_history_for_those_who_may_read_it(mosu, browser, world):  # noqa: F811
    locked = world.datasets["locked"]  # restricted: the page shows no rows to either, so it makes no read
    page = _page(browser, mosu, world.auditor)
    page.goto(f"{mosu.url}/dataset/{locked['name']}")
    page.get_by_role("link", name="Access history").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == f"Dataset report: {locked['name']}"
    assert world.readers["bo"]["name"] in page.locator("#report-rows").inner_text()
    _clean(page)
    page.context.close()
    other = _page(browser, mosu, world.researcher)
    refusals = select(func.count()).select_from(AuditEvent).where(AuditEvent.outcome == "refused",
                                                                 AuditEvent.actor == world.researcher)
    with mosu.inspect().read() as s:
        before = s.scalar(refusals)
    other.goto(f"{mosu.url}/dataset/{locked['name']}")
    assert other.get_by_role("heading", level=1).is_visible()
    assert other.get_by_role("link", name="Access history").count() == 0
    with mosu.inspect().read() as s:
        assert s.scalar(refusals) == before, "asking whether to show the link is no refused call"
    other.context.close()


def test_a_researcher_gets_a_refusal_page_and_no_figure(mosu, browser, world):  # noqa: F811
    page = _page(browser, mosu, world.researcher)
    hot, ana = world.datasets["hot"], world.readers["ana"]["name"]
    secrets = [ana, world.readers["bo"]["name"], "Hot ", "Accesses"]
    for path in ("/compliance", f"/compliance/dataset?dataset={hot['name']}", "/compliance/events",
                 "/compliance/grants", f"/compliance/user?user={ana}"):
        response = page.goto(mosu.url + path)
        assert response.status == 403, path
        assert page.get_by_role("heading", level=1).inner_text().startswith("403")
        shown = page.locator("main").inner_text()
        assert [s for s in secrets if s in shown] == [], (path, shown)
    assert_accessible(page)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    got = requests.get(f"{mosu.url}/compliance/dataset/export.csv?dataset={hot['name']}", cookies=cookies,
                       timeout=30, allow_redirects=False)
    assert got.status_code == 403 and got.headers["Content-Type"].startswith("text/html")
    assert "Content-Disposition" not in got.headers and ana not in got.text
    _clean(page, (403,))
    page.context.close()


def test_signed_out_the_pages_ask_to_sign_in(mosu, browser):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    watch_console(page)
    for path in ("/compliance", "/compliance/grants", "/compliance/denials/export.csv"):
        got = requests.get(mosu.url + path, allow_redirects=False, timeout=30)
        assert got.status_code == 303 and "/user/login" in got.headers["Location"], path
    page.goto(mosu.url + "/compliance")
    assert "/user/login" in page.url and page.get_by_label("Username").is_visible()
    assert page.console_errors == []
    context.close()


def test_the_dashboard_in_simplified_chinese(mosu, browser, world):  # noqa: F811
    page = _page(browser, mosu, world.auditor)
    page.goto(mosu.url + "/compliance")
    page.get_by_role("link", name="简体中文").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "合规"
    chart = page.get_by_role("img", name="每日访问量")
    assert chart.locator("rect.bar").count() == 30
    assert page.get_by_role("heading", name="访问最多的数据集").is_visible()
    today = page.locator(".chart-ends span").last.inner_text()
    assert re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", today), today
    assert "完好" in page.locator("#last-verify").inner_text(), "the last verification, in Chinese"
    page.get_by_role("link", name="数据集报告").click()
    page.wait_for_load_state()
    assert page.get_by_label("数据集（名称或 ID）").is_visible()
    assert_accessible(page)
    screenshot(page, "compliance-dataset-report-zh")
    _clean(page)
    page.context.close()
