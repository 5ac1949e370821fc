"""The three journeys of issue 14, end to end in Debian's Chromium against one ``mosu up``.

A provider signs in, creates a restricted dataset through the form, uploads a CSV from the browser,
follows its ingest and reads its quality report; a researcher finds the dataset by its title, reads
its licence and access level and requests access; the provider approves for 30 days without the
``income`` column; the researcher previews, sorts, filters, runs SQL and exports, and never sees
``income``; an auditor finds those reads in the dataset's access history. The researcher's part runs
again in 简体中文. Every step is asserted on what the page shows, checked by axe, and kept as a
screenshot (``test-artefacts/journey-*.png``).

The module builds its organization, users and CSV once; each test makes its own dataset.
"""
from __future__ import annotations

import csv
import io
import re
import uuid

import pytest

from tests import web
from tests.conftest import upload
from tests.web import assert_accessible, new_user, screenshot, signed_in_page

browser = web.browser  # the module's Chromium (a fixture)

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

ROWS = 150
CITIES = ("Oslo", "Lima", "Pune", "Riga", "Baku")
REFUSED_FETCH = "Failed to load resource: the server responded with a status of 400 ("

# What the researcher's pages say, in each language (the zh_Hans catalogue's words).
TEXTS = {
    "en": {"search": "Search datasets", "search_button": "Search", "licence": "Licence", "access": "Access",
           "restricted": "Restricted", "restricted_block": "Restricted: these rows are for people given access "
           "by the publisher.", "request": "Request access", "request_heading": "Request access to {title}",
           "licence_line": "Licence: {licence}.", "purpose": "Purpose (required)", "days": "^For how many days",
           "send": "Send the request", "sent": "Your request for {name} was sent.", "pending": "pending",
           "access_until": "You have access until", "columns": r"Columns: (city, id|id, city)\.",
           "explore": "Explore data",
           "range": "Rows {first}–{last} of {total}", "filter": "Filter city (exact value)",
           "sql_link": "Query with SQL", "query": "Query", "run": "Run", "rows": "{n} rows",
           "results": "1 dataset for “{q}”"},
    "zh": {"search": "搜索数据集", "search_button": "搜索", "licence": "许可协议", "access": "访问",
           "restricted": "受限", "restricted_block": "受限：只有获得发布者授权的人才能读取这些数据行。",
           "request": "申请访问", "request_heading": "申请访问 {title}", "licence_line": "许可协议：{licence}。",
           "purpose": "用途（必填）", "days": "^申请天数", "send": "提交申请", "sent": "您对 {name} 的申请已提交。",
           "pending": "待审批", "access_until": "您的访问权限有效期至", "columns": r"列：(city, id|id, city)。",
           "explore": "浏览数据", "range": "第 {first}–{last} 行，共 {total} 行", "filter": "筛选 city（精确值）",
           "sql_link": "用 SQL 查询", "query": "查询语句", "run": "运行", "rows": "{n} 行",
           "results": "1 个数据集 （搜索“{q}”）"},
}


def _rows() -> list[dict]:
    """The CSV's rows: ids shuffled (so sorting by id changes the order), five cities, an income each."""
    return [{"id": (i * 67) % 1009 + 100, "city": CITIES[(i * 7) % len(CITIES) if i % 3 else 0],
             "income": 20_000 + (i * 7919) % 60_000} for i in range(1, ROWS + 1)]


def _csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["id", "city", "income"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture(scope="module")
def world(mosu) -> dict:
    """An organization whose admin is the provider (with a password and a token), and the CSV."""
    tag = uuid.uuid4().hex[:6]
    provider = new_user(mosu, f"wj-provider-{tag}")
    admin = mosu.ckan(mosu.token(f"wj-sys-{tag}", sysadmin=True))
    org = admin.action.organization_create(name=f"wj-org-{tag}", title=f"Survey office {tag}",
                                           users=[{"name": provider, "capacity": "admin"}])
    rows = _rows()
    assert len({r["id"] for r in rows}) == ROWS
    return {"tag": tag, "org": org, "provider": provider, "provider_api": mosu.ckan(mosu.token(provider)),
            "admin": admin, "rows": rows, "csv": _csv(rows)}


def _checked(page, name: str, *, refused_fetch: bool = False) -> None:
    """The page as it is now: no serious axe violation, no console error (but Chromium's line for a
    refused fetch the step asked for), no dialog; kept as a screenshot."""
    assert_accessible(page)
    errors = [e for e in page.console_errors if not (refused_fetch and e.startswith(REFUSED_FETCH))]
    assert errors == [] and page.dialogs == [], (page.url, page.console_errors, page.dialogs)
    page.console_errors.clear()
    screenshot(page, f"journey-{name}")


def _as(browser, mosu, name: str, locale: str = "en-GB"):
    page = signed_in_page(browser, mosu, name, locale=locale)
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    return page


def _column(page, field: str) -> list[str]:
    """The texts of the grid's column ``field``, row by row."""
    index = page.locator("tr.heads th").evaluate_all("ths => ths.map(th => th.dataset.field)").index(field)
    return page.locator("#grid-rows tr").evaluate_all(f"rows => rows.map(r => r.children[{index}].textContent)")


def provider_publishes(browser, mosu, world, title: str, name: str) -> dict:
    """Step 1: the provider creates a restricted dataset through the form, uploads the CSV from the
    browser, watches it ingest and opens its quality report. Returns the resource (from the API)."""
    page = _as(browser, mosu, world["provider"])
    page.goto(mosu.url + "/dashboard")
    expect(page.get_by_role("heading", level=1)).to_have_text("My datasets")
    _checked(page, "1-dashboard")
    page.get_by_role("link", name="New dataset").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New dataset")
    _checked(page, "1-new-dataset-form")
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_label("Name (in the address)").fill(name)
    page.get_by_label("Description", exact=True).fill("Households surveyed in five cities.")
    page.get_by_label("Licence", exact=True).select_option("CC-BY-4.0")
    page.get_by_label("Organization", exact=True).select_option(world["org"]["id"])
    page.get_by_role("radio", name=re.compile("^Restricted")).check()
    page.get_by_role("button", name="Create dataset").click()
    page.wait_for_url(f"**/dataset/{name}/upload")
    expect(page.get_by_role("heading", level=1)).to_have_text("Upload a file")
    expect(page.locator("p.meta a").first).to_have_text(title)
    _checked(page, "1-upload-form")
    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "survey.csv", "mimeType": "text/csv", "buffer": world["csv"]}])
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url("**/ingest")
    expect(page.get_by_role("heading", level=1)).to_have_text("survey.csv")
    # The page follows the ingest by itself (status.js): wait, with a deadline, for what it shows.
    expect(page.locator("#ingest-status")).to_have_text("ready", timeout=90_000)
    expect(page.get_by_text(f"Published: {ROWS} rows.")).to_be_visible()
    _checked(page, "1-ingest-ready")
    res = world["admin"].action.package_show(id=name)["resources"][0]
    assert (res["ingest_status"], res["row_count"]) == ("ready", ROWS)
    score = round(res["quality_score"])
    page.get_by_role("link", name=f"Quality report (score {score})").click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^Quality report\s+" + str(score) + "$"))
    expect(page.locator("h1 .score")).to_have_text(str(score))
    expect(page.get_by_text(f"{ROWS} rows", exact=False).first).to_be_visible()
    _checked(page, "1-quality-report")
    pkg = world["admin"].action.package_show(id=name)
    assert (pkg["access_level"], pkg["license_id"], pkg["private"]) == ("restricted", "CC-BY-4.0", False)
    page.context.close()
    return res


def researcher_requests(page, mosu, title: str, name: str, licence: str, t: dict, shot: str) -> None:
    """Step 2: find the dataset by its title, read its licence and access level, request access."""
    page.goto(mosu.url + "/")
    page.get_by_role("searchbox", name=t["search"]).fill(f'"{title}"')
    page.get_by_role("button", name=t["search_button"], exact=True).click()
    expect(page.locator(".results h1")).to_have_text(t["results"].format(q=f'"{title}"'))
    _checked(page, f"{shot}-2-search")
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    facts = page.locator("dl.facts")
    expect(facts.locator("dt").filter(has_text=re.compile(f"^{t['licence']}$"))).to_have_count(1)
    expect(facts.locator("dd.licence")).to_contain_text(licence)
    expect(facts.locator("dd.access-level strong")).to_have_text(t["restricted"])
    block = page.locator("#access")
    expect(block.get_by_role("heading", level=2)).to_have_text(t["access"])
    expect(block).to_contain_text(t["restricted_block"])
    assert page.locator("table.preview").count() == 0, "no rows before a grant"
    _checked(page, f"{shot}-2-dataset")
    block.get_by_role("link", name=t["request"], exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(t["request_heading"].format(title=title))
    expect(page.get_by_text(t["licence_line"].format(licence=licence))).to_be_visible()
    _checked(page, f"{shot}-2-request-form")
    page.get_by_label(t["purpose"]).fill("Income inequality across the five cities.")
    page.get_by_label(re.compile(t["days"])).fill("30")
    page.get_by_role("button", name=t["send"]).click()
    expect(page.get_by_role("status")).to_contain_text(t["sent"].format(name=name))
    expect(page.locator("tr.request", has_text=name).locator(".status")).to_have_text(t["pending"])
    _checked(page, f"{shot}-2-request-sent")


def provider_approves(browser, mosu, world, name: str, researcher: str) -> None:
    """Step 3: the provider approves in the inbox for 30 days with ``income`` excluded."""
    page = _as(browser, mosu, world["provider"])
    page.get_by_role("navigation", name="Site").get_by_role("link", name="Access requests").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Access requests")
    row = page.locator("tr.request", has_text=name)
    expect(row.locator(".purpose")).to_have_text("Income inequality across the five cities.")
    expect(row.locator(".status")).to_have_text("pending")
    _checked(page, "3-inbox")
    row.get_by_role("link", name=f"Review the request of {researcher} for {name}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Access request of {researcher} for {name}")
    expect(page.locator("p.purpose")).to_have_text("Income inequality across the five cities.")
    expect(page.get_by_label("Access for how many days")).to_have_value("30")
    _checked(page, "3-review")
    page.get_by_label("Access for how many days").fill("30")
    columns = page.get_by_role("group", name=re.compile("^Columns granted"))
    expect(columns.get_by_role("checkbox")).to_have_count(3)
    columns.get_by_label("income").uncheck()
    page.get_by_role("button", name="Approve the request").click()
    expect(page.locator("dd .status")).to_have_text("approved")
    _checked(page, "3-approved")
    (grant,) = world["provider_api"].action.access_grant_list(package_id=name)
    assert grant["columns"] == ["id", "city"] and grant["state"] == "active"
    page.context.close()


def researcher_reads(page, mosu, world, name: str, res: dict, t: dict, shot: str) -> None:
    """Step 4: preview, sort, filter, SQL (a count; the excluded column refused) and a CSV export of
    the view, ``income`` never shown."""
    rows, rid = world["rows"], res["id"]
    oslo = sorted((r for r in rows if r["city"] == "Oslo"), key=lambda r: r["id"])
    assert 0 < len(oslo) < 100
    page.goto(f"{mosu.url}/dataset/{name}")
    block = page.locator("#access")
    expect(block).to_contain_text(t["access_until"])
    expect(block).to_contain_text(re.compile(t["columns"]))  # the two granted, in either order
    assert "income" not in block.inner_text()
    _checked(page, f"{shot}-4-dataset-granted")
    page.get_by_role("link", name=t["explore"]).click()
    page.wait_for_selector("#grid[data-ready]")
    expect(page.locator("#grid-range")).to_have_text(t["range"].format(first=1, last=100, total=ROWS))
    assert page.locator("#grid-rows tr").count() == 100
    assert page.locator("tr.heads th").evaluate_all("ths => ths.map(th => th.dataset.field)") == ["_id", "id", "city"]
    assert "income" not in page.content(), "the excluded column is nowhere on the page"
    assert _column(page, "id") == [str(r["id"]) for r in rows[:100]], "the file's order"
    _checked(page, f"{shot}-4-grid-preview")
    page.get_by_role("link", name="id", exact=True).click()
    expect(page.locator("th[data-field=id]")).to_have_attribute("aria-sort", "ascending")
    assert _column(page, "id")[0] == str(min(r["id"] for r in rows))
    assert _column(page, "id") == [str(i) for i in sorted(r["id"] for r in rows)[:100]]
    page.get_by_label(t["filter"]).fill("Oslo")
    page.get_by_label(t["filter"]).press("Enter")
    expect(page.locator("#grid-range")).to_have_text(t["range"].format(first=1, last=len(oslo), total=len(oslo)))
    expect(page.locator("#grid-rows tr")).to_have_count(len(oslo))
    assert set(_column(page, "city")) == {"Oslo"}
    assert _column(page, "id") == [str(r["id"]) for r in oslo], "filtered, still sorted by id"
    assert "income" not in page.content()
    _checked(page, f"{shot}-4-grid-sorted-filtered")
    with page.expect_download() as got:
        page.get_by_role("button", name="CSV", exact=True).click()
    exported = open(got.value.path(), encoding="utf-8").read().splitlines()
    assert exported[0] == "id,city", exported[:2]
    assert exported[1:] == [f"{r['id']},Oslo" for r in oslo], "the view's rows, in its order"

    page.get_by_role("link", name=t["sql_link"]).click()
    editor = page.get_by_label(t["query"])
    page.wait_for_load_state("load")
    editor.fill(f"SELECT count(*) AS n FROM \"{rid}\" WHERE city = 'Oslo'")
    page.get_by_role("button", name=t["run"]).click()
    expect(page.locator("#sql-table tbody tr")).to_have_count(1)
    expect(page.locator("#sql-table tbody td")).to_have_text(str(len(oslo)))
    expect(page.locator("#sql-summary")).to_have_text(t["rows"].format(n=1))
    assert page.get_by_role("alert").is_hidden()
    _checked(page, f"{shot}-4-sql-count")
    editor.fill(f'SELECT income FROM "{rid}"')
    page.get_by_role("button", name=t["run"]).click()
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text('"income" not found')
    assert page.locator("#sql-table tbody tr").count() == 0 and page.locator("#sql-wrap").is_hidden()
    _checked(page, f"{shot}-4-sql-refused", refused_fetch=True)


def test_provider_researcher_and_auditor_journeys(mosu, world, browser):
    tag = world["tag"]
    title, name = f"Household survey {tag}", f"survey-{tag}"
    res = provider_publishes(browser, mosu, world, title, name)

    researcher = new_user(mosu, f"wj-researcher-{tag}")
    page = _as(browser, mosu, researcher)
    licence = world["admin"].action.package_show(id=name)["license_title"]
    researcher_requests(page, mosu, title, name, licence, TEXTS["en"], "en")
    provider_approves(browser, mosu, world, name, researcher)
    researcher_reads(page, mosu, world, name, res, TEXTS["en"], "en")
    page.context.close()

    # Step 5: the auditor opens the dataset's access history and finds the researcher's reads.
    auditor = new_user(mosu, f"wj-auditor-{tag}", auditor=True)
    page = _as(browser, mosu, auditor)
    page.goto(f"{mosu.url}/dataset/{name}")
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    assert page.locator("table.preview").count() == 0, "an auditor reads no rows"
    _checked(page, "5-auditor-dataset-page")
    page.get_by_role("link", name="Access history").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Dataset report: {name}")
    heads = [h.strip() for h in page.locator("#report-rows thead th").all_text_contents()]
    found = [dict(zip(heads, (c.strip() for c in r.locator("td").all_text_contents())))
             for r in page.locator("#report-rows tbody tr", has_text=researcher).all()]
    (granted,) = [r for r in found if r["Way of reading"] == "grant:columns"]
    oslo = sum(r["city"] == "Oslo" for r in world["rows"])
    # Previews: the dataset page's first 20 rows, the grid's first 100, sorted 100, filtered to Oslo.
    assert (granted["Previews"], granted["Queries"], granted["Exports"], granted["Accesses"]) == ("4", "1", "1", "6")
    assert sum(int(r["Rows"]) for r in found) == 20 + 100 + 100 + oslo + 1 + oslo, found  # + the count, the export
    reads = [r.locator("td").all_inner_texts() for r in page.locator("#reads tbody tr", has_text=researcher).all()]
    # Time, User, Event, Way of reading, Outcome, Rows, Bytes, Detail; an export is one row with its end
    assert [(r[2], r[4], r[5]) for r in reads] == [
        ("SQL query", "ok", "1"), ("export", "ok · complete", str(oslo)), ("preview", "ok", str(oslo)),
        ("preview", "ok", "100"), ("preview", "ok", "100"), ("preview", "ok", "20")], "newest first"
    assert all(r[3].split()[0] == "grant:columns" for r in reads), [r[3] for r in reads]
    assert int(reads[1][6].replace(",", "")) > 0, "the export's bytes"
    assert reads[0][7] == f"SELECT count(*) AS n FROM \"{res['id']}\" WHERE city = 'Oslo'"
    assert reads[1][7] == "csv"
    _checked(page, "5-auditor-dataset-report")
    page.context.close()


def test_the_researcher_journey_in_simplified_chinese(mosu, world, browser):
    """Steps 2 and 4 in 简体中文 (the browser asks for zh-CN); the dataset is published and the
    request approved through the API, as setup."""
    tag = uuid.uuid4().hex[:6]
    title, name = f"住户调查 {tag}", f"survey-zh-{tag}"
    provider = world["provider_api"]
    provider.action.package_create(name=name, title=title, owner_org=world["org"]["id"],
                                   access_level="restricted", license_id="CC-BY-4.0")
    res = upload(provider, world["csv"], "survey.csv", dataset=name)
    assert res["ingest_status"] == "ready"
    researcher = new_user(mosu, f"wj-zh-{tag}")
    page = _as(browser, mosu, researcher, locale="zh-CN")
    expect(page.locator("html")).to_have_attribute("lang", re.compile("^zh"))
    licence = provider.action.package_show(id=name)["license_title"]
    researcher_requests(page, mosu, title, name, licence, TEXTS["zh"], "zh")
    (req,) = [r for r in provider.action.access_request_list(package_id=name) if r["state"] == "pending"]
    provider.action.access_request_approve(id=req["id"], days=30, columns=["id", "city"])
    researcher_reads(page, mosu, world, name, res, TEXTS["zh"], "zh")
    page.context.close()
