"""The data grid and the SQL console (webui/grid.py) in a real Chromium against ``mosu up``.

What a page shows is checked against what the actions answer for the same question
(``datastore_search``, ``datastore_search_sql``), asked through the API by the test.
"""
from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
import requests
from playwright.sync_api import expect

from tests import web
from tests.conftest import wait_for_ingest
from tests.web import assert_accessible, new_user, screenshot, signed_in_page, watch_console

browser = web.browser  # the module's headless Chromium (a fixture)

ROWS = 250
CITIES = ("Oslo", "Bergen", "Tromsø", "Stavanger")
HOSTILE = ('<script>alert("cell")</script>', '"><img src=x onerror=alert(2)>')


def _value(i: int) -> float:
    return (i * 37) % 251 + 0.5


def _bags(i: int) -> int:
    return (i * 13) % 97


def _note(i: int) -> str:
    if i <= len(HOSTILE):
        return HOSTILE[i - 1]
    return "quiet day" if i % 7 == 0 else "windy"


def _csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "value", "city", "note", "bag count"])
    for i in range(1, ROWS + 1):
        writer.writerow([i, _value(i), CITIES[i % len(CITIES)], _note(i), _bags(i)])
    return out.getvalue().encode()


DICTIONARY = [{"id": "value", "label": "Value (kg)", "description": "Weighed at noon <b>sharp</b>"}]


@pytest.fixture(scope="module")
def world(mosu):
    """A 250-row public dataset and a restricted one with one reader of every column but ``secret``."""
    admin = mosu.ckan(mosu.token("grid-admin", sysadmin=True))
    admin.action.organization_create(name="grid-lab")
    pkg = admin.action.package_create(name="grid-" + uuid.uuid4().hex[:6], title="Grid test data",
                                      owner_org="grid-lab")
    res = admin.action.resource_create(package_id=pkg["id"], name="weights", upload=("w.csv", io.BytesIO(_csv())),
                                       schema=json.dumps(DICTIONARY))
    closed = admin.action.package_create(name="grid-closed-" + uuid.uuid4().hex[:6], title="Closed data",
                                         owner_org="grid-lab", access_level="restricted")
    secret_rows = b"id,city,secret\n" + b"".join(b"%d,Oslo,hush-%d\n" % (i, i) for i in range(1, 31))
    closed_res = admin.action.resource_create(package_id=closed["id"], name="closed",
                                              upload=("c.csv", io.BytesIO(secret_rows)))
    for rid in (res["id"], closed_res["id"]):
        assert wait_for_ingest(admin, rid)["ingest_status"] == "ready"
    scoped = new_user(mosu, "grid-scoped")
    outsider = new_user(mosu, "grid-outsider")
    admin.action.access_grant_create(package_id=closed["id"], user_id=scoped, days=30, columns=["id", "city"])
    return {"admin": admin, "pkg": pkg, "rid": res["id"], "closed": closed, "closed_rid": closed_res["id"],
            "scoped": scoped, "outsider": outsider}


def _grid_url(mosu, world, **params) -> str:
    query = ("?" + requests.compat.urlencode(params)) if params else ""
    return f"{mosu.url}/dataset/{world['pkg']['name']}/resource/{world['rid']}{query}"


def _page(browser, width: int = 1280):
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    watch_console(page)
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.api_calls, page.api_bodies = [], []

    def sent(r) -> None:
        if "/api/3/action/" in r.url:
            page.api_calls.append(r.url.rsplit("/", 1)[-1])
            page.api_bodies.append(json.loads(r.post_data or "{}"))
    page.on("request", sent)
    return page


def _script_errors(page, refused: int) -> list[str]:
    """The page's console errors but Chromium's own line for an answer of status ``refused`` that the
    test asked for (a refused query: the page shows its reason; the browser logs every 4xx fetch)."""
    return [e for e in page.console_errors
            if not e.startswith(f"Failed to load resource: the server responded with a status of {refused} (")]


def _column(page, index: int) -> list[str]:
    """The texts of column ``index`` (0 is the row number) of the grid's rows."""
    return page.locator("#grid-rows tr").evaluate_all(
        f"rows => rows.map(r => r.children[{index}].textContent)")


def _search(world, **params) -> dict:
    return world["admin"].action.datastore_search(resource_id=world["rid"], **params)


def _api_error(mosu, action: str, **params) -> str:
    answer = requests.post(f"{mosu.url}/api/3/action/{action}", json=params, timeout=30)
    assert not answer.json()["success"]
    return answer.json()["error"]["message"]


def test_paging_shows_any_page_with_one_search_per_change(mosu, world, browser):
    page = _page(browser)
    page.goto(_grid_url(mosu, world))
    expect(page.locator("#grid-range")).to_have_text("Rows 1–100 of 250")
    assert page.locator("#grid-rows tr").count() == 100 and page.api_calls == [], "the first page comes rendered"
    page.wait_for_selector("#grid[data-ready]")
    page.get_by_role("link", name="Next").first.click()
    expect(page.locator("#grid-range")).to_have_text("Rows 101–200 of 250")
    assert _column(page, 1) == [str(i) for i in range(101, 201)]
    assert page.api_calls == ["datastore_search"], "one call per page change, nothing else"
    assert "offset=100" in page.url
    page.get_by_role("link", name="Last").first.click()
    expect(page.locator("#grid-range")).to_have_text("Rows 201–250 of 250")
    assert _column(page, 1) == [str(i) for i in range(201, 251)]
    for nav in ("next", "last"):  # no way past the end: not links any more
        assert page.locator(f"a[data-nav={nav}]").first.get_attribute("href") is None
        assert page.locator(f"a[data-nav={nav}]").first.get_attribute("aria-disabled") == "true"
    page.get_by_label("Go to row").fill("120")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("#grid-range")).to_have_text("Rows 120–219 of 250")
    assert _column(page, 0)[0] == "120"
    page.go_back()
    expect(page.locator("#grid-range")).to_have_text("Rows 201–250 of 250")
    assert page.api_calls == ["datastore_search"] * 4
    # A searched view's rows come without waiting for their count, which is asked for after them
    # (limit 0); another page of it knows its count, so its one search does not count again.
    page.get_by_label("Search the text columns").fill("windy")
    page.get_by_role("button", name="Apply").click()
    windy = _search(world, q="windy", limit=0)["total"]
    expect(page.locator("#grid-range")).to_have_text(f"Rows 1–100 of {windy}")
    page.get_by_role("link", name="Next").first.click()
    expect(page.locator("#grid-range")).to_have_text(f"Rows 101–200 of {windy}")
    assert [(b.get("include_total"), b["limit"]) for b in page.api_bodies[-3:]] == [(False, 100), (True, 0),
                                                                                   (False, 100)]
    assert page.api_calls == ["datastore_search"] * 7
    assert _column(page, 1) == [str(r["id"]) for r in _search(world, q="windy", offset=100, limit=100)["records"]]
    # Without scripts the same address renders the same page.
    served = requests.get(_grid_url(mosu, world, offset=100), timeout=30).text
    assert "Rows 101–200 of 250" in served and ">101</td>" in served
    assert page.console_errors == [] and page.dialogs == []
    page.close()


def test_clicking_a_header_sorts_by_that_column(mosu, world, browser):
    page = _page(browser)
    page.goto(_grid_url(mosu, world))
    page.wait_for_selector("#grid[data-ready]")
    values = [_value(i) for i in range(1, ROWS + 1)]
    header = page.locator("th[data-field=value]")
    assert header.get_attribute("aria-sort") is None
    page.get_by_role("link", name="Value (kg)", exact=True).click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert float(_column(page, 2)[0]) == min(values)
    page.get_by_role("link", name="Value (kg)", exact=True).click()
    expect(header).to_have_attribute("aria-sort", "descending")
    assert float(_column(page, 2)[0]) == max(values)
    shown = [float(v) for v in _column(page, 2)]
    assert shown == sorted(values, reverse=True)[:100]
    assert page.locator("th[aria-sort]").count() == 1
    # A column whose name has a space is sorted too (the sort names it in double quotes).
    page.get_by_role("link", name="bag count", exact=True).click()
    expect(page.locator('th[data-field="bag count"]')).to_have_attribute("aria-sort", "ascending")
    assert page.get_by_role("alert").is_hidden()
    bags = [_bags(i) for i in range(1, ROWS + 1)]
    assert [int(v) for v in _column(page, 5)] == sorted(bags)[:100]
    page.get_by_role("link", name="bag count", exact=True).click()
    expect(page.locator('th[data-field="bag count"]')).to_have_attribute("aria-sort", "descending")
    assert int(_column(page, 5)[0]) == max(bags)
    assert page.locator("th[data-field=value]").evaluate("th => getComputedStyle(th).textAlign") == "right"
    assert page.locator("#grid-rows td.num").first.evaluate("td => getComputedStyle(td).textAlign") == "right"
    assert page.console_errors == []
    page.close()


def test_filters_and_search_narrow_the_rows_as_the_action_does(mosu, world, browser):
    page = _page(browser)
    page.goto(_grid_url(mosu, world))
    page.wait_for_selector("#grid[data-ready]")
    page.get_by_label("Filter city (exact value)").fill("Bergen")
    page.get_by_label("Filter city (exact value)").press("Enter")
    expected = _search(world, filters={"city": "Bergen"}, limit=100)
    expect(page.locator("#grid-range")).to_have_text(f"Rows 1–{len(expected['records'])} of {expected['total']}")
    assert _column(page, 1) == [str(r["id"]) for r in expected["records"]]
    assert set(_column(page, 3)) == {"Bergen"}
    page.get_by_label("Search the text columns").fill("quiet")
    page.get_by_role("button", name="Apply").click()
    expected = _search(world, filters={"city": "Bergen"}, q="quiet", limit=100)
    assert 0 < expected["total"] < 20
    expect(page.locator("#grid-range")).to_have_text(f"Rows 1–{expected['total']} of {expected['total']}")
    assert _column(page, 1) == [str(r["id"]) for r in expected["records"]]
    # A value that cannot be one of the column's gets the action's reason, and the form stays.
    page.get_by_label("Filter id (exact value)").fill("not-a-number")
    page.get_by_label("Filter id (exact value)").press("Enter")
    expect(page.get_by_role("alert")).to_be_visible()
    assert page.locator("#grid-rows tr").count() == 0
    assert page.get_by_label("Filter id (exact value)").input_value() == "not-a-number"
    served = requests.get(_grid_url(mosu, world, **{"f.id": "not-a-number", "q": "quiet"}), timeout=30)
    assert served.status_code == 400 and 'role="alert"' in served.text and "not-a-number" in served.text
    assert 'name="f.id" value="not-a-number"' in served.text and "<td" not in served.text.split("grid-rows")[1]
    page.get_by_role("link", name="Clear search, filters and sort").click()
    expect(page.locator("#grid-range")).to_have_text("Rows 1–100 of 250")
    assert page.get_by_label("Filter city (exact value)").input_value() == ""
    assert _script_errors(page, 400) == []
    page.close()


def _downloaded(page, button: str) -> str:
    """Click an export button (a POST form) and return the downloaded file's text."""
    with page.expect_download() as got:
        page.get_by_role("button", name=button, exact=True).click()
    return open(got.value.path(), encoding="utf-8").read()


def test_export_buttons_download_exactly_the_current_view(mosu, world, browser):
    page = _page(browser)
    page.goto(_grid_url(mosu, world, **{"f.city": "Oslo", "q": "windy", "sort": "value desc"}))
    expected = _search(world, filters={"city": "Oslo"}, q="windy", sort="value desc", limit=1000)["records"]
    assert 20 < len(expected) < 100
    assert _column(page, 1) == [str(r["id"]) for r in expected]
    rows = list(csv.DictReader(io.StringIO(_downloaded(page, "CSV"))))
    assert [(int(r["id"]), float(r["value"]), r["city"], r["note"]) for r in rows] == [
        (r["id"], r["value"], r["city"], r["note"]) for r in expected]
    lines = _downloaded(page, "JSON lines").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [r["id"] for r in expected]
    # After a change of view made by the script, the export form follows it.
    page.wait_for_selector("#grid[data-ready]")
    page.get_by_label("Filter city (exact value)").fill("Tromsø")
    page.get_by_label("Filter city (exact value)").press("Enter")
    expect(page.locator("#grid-rows tr").first.locator("td").nth(3)).to_have_text("Tromsø")
    rows = list(csv.DictReader(io.StringIO(_downloaded(page, "CSV"))))
    expected = _search(world, filters={"city": "Tromsø"}, q="windy", sort="value desc", limit=1000)["records"]
    assert [int(r["id"]) for r in rows] == [r["id"] for r in expected]
    assert page.console_errors == []
    page.close()


def test_hostile_cells_and_dictionary_text_are_shown_as_text(mosu, world, browser):
    page = _page(browser)
    page.goto(_grid_url(mosu, world))
    page.wait_for_selector("#grid[data-ready]")
    for shown_by in ("server", "script"):
        notes = _column(page, 4)
        assert notes[:2] == list(HOSTILE), shown_by
        assert page.locator("#grid-table img, #grid-table script").count() == 0, shown_by
        if shown_by == "server":
            page.get_by_role("link", name="Next").first.click()
            expect(page.locator("#grid-range")).to_have_text("Rows 101–200 of 250")
            page.get_by_role("link", name="First").first.click()
            expect(page.locator("#grid-range")).to_have_text("Rows 1–100 of 250")
    # The data dictionary: label and description in the header, visible, as text.
    header = page.locator("th[data-field=value]")
    expect(header.locator(".col-desc")).to_have_text("Weighed at noon <b>sharp</b>")
    assert header.locator(".col-desc").is_visible() and header.locator("b").count() == 0
    assert page.console_errors == [] and page.dialogs == []
    page.close()


def test_headers_draw_the_quality_profile(mosu, world, browser):
    page = _page(browser)
    page.goto(_grid_url(mosu, world))
    report = world["admin"].action.quality_report_show(id=world["rid"])
    profile = {c["name"]: c for c in report["profile"]["columns"]}
    bars = page.locator("th[data-field=value] svg.spark rect")
    assert bars.count() == len(profile["value"]["histogram"]["counts"])
    assert bars.first.bounding_box()["height"] > 0, "drawn with SVG attributes, no inline style"
    city = page.locator("th[data-field=city]")
    assert city.locator("svg.topbar rect.seg").count() == len(CITIES)
    assert f"{len(CITIES)} distinct" in city.locator(".col-summary").inner_text()
    assert page.console_errors == []
    page.close()


def test_the_grid_is_accessible_and_fits_a_phone(mosu, world, browser):
    page = _page(browser, width=390)
    page.goto(_grid_url(mosu, world))
    page.wait_for_selector("#grid[data-ready]")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide"
    wrap = page.locator(".grid-wrap")
    assert wrap.evaluate("w => w.scrollWidth > w.clientWidth"), "the grid scrolls inside its frame"
    assert_accessible(page)
    screenshot(page, "grid-phone")
    page.goto(f"{mosu.url}/sql?resource_id={world['rid']}")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#sql-table tbody tr")).to_have_count(10)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the SQL console is {width} px wide"
    screenshot(page, "sql-console-phone")
    page.close()
    page = _page(browser)
    page.goto(_grid_url(mosu, world, sort="value desc", **{"f.city": "Oslo"}))
    assert_accessible(page)
    screenshot(page, "grid")
    page.goto(f"{mosu.url}/sql?resource_id={world['rid']}")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#sql-table tbody tr")).to_have_count(10)
    assert_accessible(page)
    screenshot(page, "sql-console")
    assert page.console_errors == []
    page.close()


def test_the_grid_speaks_chinese(mosu, world, browser):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    watch_console(page)
    page.goto(_grid_url(mosu, world))
    expect(page.locator("#grid-range")).to_have_text("第 1–100 行，共 250 行")
    page.wait_for_selector("#grid[data-ready]")
    page.get_by_role("link", name="下一页").first.click()
    expect(page.locator("#grid-range")).to_have_text("第 101–200 行，共 250 行")
    assert page.get_by_label("筛选 city（精确值）").count() == 1
    page.goto(f"{mosu.url}/sql")
    assert page.get_by_role("button", name="运行").count() == 1
    assert page.console_errors == []
    context.close()


def test_the_dataset_page_links_each_resource_to_its_grid(mosu, world, browser):
    page = _page(browser)
    page.goto(f"{mosu.url}/dataset/{world['pkg']['name']}")
    page.get_by_role("link", name="Explore data").click()
    expect(page.locator("#grid-range")).to_have_text("Rows 1–100 of 250")
    assert page.url.endswith(f"/resource/{world['rid']}")
    page.close()


def test_sql_console_runs_a_query_and_exports_its_result(mosu, world, browser):
    rid = world["rid"]
    page = _page(browser)
    page.goto(f"{mosu.url}/sql?resource_id={rid}")
    editor = page.get_by_label("Query")
    assert editor.input_value() == f'SELECT * FROM "{rid}" LIMIT 10'
    page.wait_for_load_state("load")
    editor.fill("SELECT id, value FROM  ORDER BY value DESC, id LIMIT 3")
    editor.evaluate("e => e.setSelectionRange(22, 22)")
    page.get_by_role("button", name="Insert").click()  # the table id from the page, where the cursor is
    query = f'SELECT id, value FROM "{rid}" ORDER BY value DESC, id LIMIT 3'
    assert editor.input_value() == query
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#sql-table tbody tr")).to_have_count(3)
    best = sorted(range(1, ROWS + 1), key=lambda i: (-_value(i), i))[:3]
    assert page.locator("#sql-table tbody tr").first.locator("td").all_inner_texts() == [
        str(best[0]), str(_value(best[0]))]
    assert page.locator("#sql-table thead th").all_inner_texts()[0].startswith("id")
    assert page.get_by_role("alert").is_hidden()
    assert page.api_calls == ["datastore_search_sql"]
    assert [int(r["id"]) for r in csv.DictReader(io.StringIO(_downloaded(page, "CSV")))] == best
    # Without scripts, the address the script left runs the same query.
    served = requests.get(page.url, timeout=30)
    assert served.status_code == 200 and f">{best[0]}</td>" in served.text
    assert page.console_errors == [] and page.dialogs == []
    page.close()


@pytest.mark.parametrize("sql", ["DROP TABLE x", "SELECT * FROM read_csv('/etc/passwd')"])
def test_refused_sql_shows_the_reason(mosu, world, browser, sql):
    reason = _api_error(mosu, "datastore_search_sql", sql=sql)
    page = _page(browser)
    page.goto(f"{mosu.url}/sql")
    page.wait_for_load_state("load")
    page.get_by_label("Query").fill(sql)
    page.get_by_role("button", name="Run").click()
    expect(page.get_by_role("alert")).to_have_text(reason)
    assert page.locator("#sql-table tbody tr").count() == 0 and page.locator("#sql-wrap").is_hidden()
    served = requests.get(f"{mosu.url}/sql", params={"sql": sql}, timeout=30)
    assert served.status_code == 400 and 'role="alert"' in served.text
    assert reason.replace("'", "&#39;") in served.text
    assert _script_errors(page, 400) == []
    page.close()


def test_restricted_rows_are_refused_on_both_pages_and_hidden_columns_never_shown(mosu, world, browser):
    closed, rid = world["closed"], world["closed_rid"]
    url = f"{mosu.url}/dataset/{closed['name']}/resource/{rid}"
    refusal = _api_error(mosu, "datastore_search", resource_id=rid)
    anonymous = _page(browser)
    outsider = signed_in_page(browser, mosu, world["outsider"])
    for page in (anonymous, outsider):
        page.goto(url)
        expect(page.get_by_role("alert")).to_have_text(refusal)
        assert page.locator("#grid-table").count() == 0
        assert "hush-" not in page.content() and "secret" not in page.content()
        assert page.console_errors == []
        page.goto(f"{url}/export?format=csv")
        if page is outsider:  # signed in: a GET only asks first, and the export it confirms is refused
            page.get_by_role("button", name="Export", exact=True).click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("403")
        assert "hush-" not in page.content()
        page.goto(f"{mosu.url}/sql?sql=" + requests.compat.quote(f'SELECT * FROM "{rid}"'))
        expect(page.get_by_role("alert")).to_contain_text("Access denied")
        assert "hush-" not in page.content()
    assert_accessible(outsider)
    # The reader of every column but one: rows, and no trace of the hidden column anywhere.
    scoped = signed_in_page(browser, mosu, world["scoped"])
    scoped.goto(url)
    expect(scoped.locator("#grid-range")).to_have_text("Rows 1–30 of 30")
    assert scoped.locator("tr.heads th").evaluate_all("t => t.map(th => th.dataset.field)") == ["_id", "id", "city"]
    assert "secret" not in scoped.content() and "hush-" not in scoped.content()
    scoped.wait_for_selector("#grid[data-ready]")
    scoped.get_by_role("link", name="city", exact=True).click()
    expect(scoped.locator("th[data-field=city]")).to_have_attribute("aria-sort", "ascending")
    assert "secret" not in scoped.content()
    text = _downloaded(scoped, "CSV")
    assert text.splitlines()[0] == "id,city" and len(text.splitlines()) == 31 and "hush-" not in text
    scoped.goto(f"{mosu.url}/sql?resource_id={rid}")
    scoped.get_by_role("button", name="Run").click()
    expect(scoped.locator("#sql-table tbody tr")).to_have_count(10)
    assert "hush-" not in scoped.content()
    assert scoped.console_errors == []
    for page in (anonymous, outsider, scoped):
        page.close()


def test_sort_names_a_column_with_spaces_commas_or_quotes_in_double_quotes():
    from catalog.datastore.searchspec import parse

    columns = ["_id", "a", "bag count", 'odd, "name"']
    spec = parse({"sort": '"bag count" desc, a, "odd, ""name""" asc'}, columns)
    assert spec.sort == [("bag count", True), ("a", False), ('odd, "name"', False)]
    assert parse({"sort": 'a desc'}, columns).sort == [("a", True)]
    assert parse({"sort": '"a" desc'}, columns).sort == [("a", True)]
