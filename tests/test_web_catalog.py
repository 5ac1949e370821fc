"""The public catalog pages in a real browser: search with facets, sort and numbered pages; a dataset's
publisher, licence, access, tags, versions and citation; the error pages; hostile text; axe."""
from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import expect

from tests.conftest import upload
from tests.web import assert_accessible, browser, new_user, signed_in_page, watch_console  # noqa: F401

HOSTILE = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>')


@pytest.fixture(scope="module")
def admin(mosu):
    return mosu.ckan(mosu.token("catalog-admin", sysadmin=True))


def new_org(admin, title: str | None = None) -> str:
    name = f"org-{uuid.uuid4().hex[:8]}"
    admin.action.organization_create(name=name, title=title or name)
    return name


@pytest.fixture
def page(browser):  # noqa: F811
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch_console(page)
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    context.close()


def titles(page) -> list[str]:
    return page.locator(".dataset-item strong").all_inner_texts()


def test_access_level_licence_and_quality_facets_narrow_the_results(mosu, admin, page):
    org = new_org(admin)
    admin.action.package_create(name=f"{org}-a", title="Alpha open", owner_org=org, license_id="cc-by")
    admin.action.package_create(name=f"{org}-b", title="Beta restricted", owner_org=org, license_id="cc-by",
                                access_level="restricted")
    scored = admin.action.package_create(name=f"{org}-c", title="Gamma registered", owner_org=org,
                                         license_id="odc-odbl", access_level="registered")
    res = upload(admin, b"id,v\n" + b"".join(b"%d,%d\n" % (i, i * 3) for i in range(1, 50)), dataset=scored["id"])
    assert res["ingest_status"] == "ready" and res["quality_score"] >= 90
    page.goto(f"{mosu.url}/?organization={org}")
    assert sorted(titles(page)) == ["Alpha open", "Beta restricted", "Gamma registered"]
    access = page.locator(".facet[data-facet=access_level]")
    assert access.locator("h3").text_content() == "Access"
    assert sorted(access.locator("li a").all_inner_texts()) == ["Open", "Registered users", "Restricted"]
    access.get_by_role("link", name="Restricted").click()
    expect(page.locator(".results h1")).to_have_text("1 dataset")
    assert titles(page) == ["Beta restricted"]
    page.locator(".facet[data-facet=access_level] li.active a").click()  # remove the filter again
    expect(page.locator(".results h1")).to_have_text("3 datasets")
    licences = page.locator(".facet[data-facet=license_id]")
    assert licences.locator("h3").text_content() == "Licences"
    licences.get_by_role("link", name="Creative Commons Attribution").click()  # its title, not its id
    expect(page.locator(".results h1")).to_have_text("2 datasets")
    assert sorted(titles(page)) == ["Alpha open", "Beta restricted"]
    assert parse_qs(urlsplit(page.url).query)["license_id"] == ["cc-by"]
    page.goto(f"{mosu.url}/?organization={org}")
    quality = page.locator(".facet[data-facet=quality]")
    assert quality.locator("li a").all_inner_texts() == ["90 and above"], "unscored datasets are in no band"
    assert quality.locator("li .count").all_inner_texts() == ["1"]
    quality.get_by_role("link", name="90 and above").click()
    expect(page.locator(".results h1")).to_have_text("1 dataset")
    assert titles(page) == ["Gamma registered"]
    assert page.console_errors == []


def test_the_sort_control_changes_the_order(mosu, admin, page):
    org = new_org(admin)
    for title in ("Charlie", "Alpha", "Bravo"):
        admin.action.package_create(name=f"{org}-{title.lower()}", title=title, owner_org=org)
    admin.action.package_patch(id=f"{org}-alpha", notes="changed last")
    page.goto(f"{mosu.url}/?organization={org}")
    assert page.get_by_label("Sort by").input_value() == "modified"
    assert titles(page) == ["Alpha", "Bravo", "Charlie"], "last modified first"
    page.get_by_label("Sort by").select_option(label="Name (A–Z)")
    page.get_by_role("button", name="Sort").click()
    expect(page.get_by_label("Sort by")).to_have_value("name")
    assert titles(page) == ["Alpha", "Bravo", "Charlie"]
    page.get_by_label("Sort by").select_option(label="Newest first")
    page.get_by_role("button", name="Sort").click()
    expect(page.get_by_label("Sort by")).to_have_value("created")
    assert titles(page) == ["Bravo", "Alpha", "Charlie"]
    assert parse_qs(urlsplit(page.url).query)["organization"] == [org], "the filter is kept"
    page.get_by_label("Sort by").select_option(label="Last modified")
    page.get_by_role("button", name="Sort").click()
    expect(page.get_by_label("Sort by")).to_have_value("modified")
    assert titles(page) == ["Alpha", "Bravo", "Charlie"]
    assert page.console_errors == []


def test_numbered_pages_say_which_datasets_they_show(mosu, admin, page):
    org = new_org(admin)
    for i in range(45):
        admin.action.package_create(name=f"{org}-{i:02d}", title=f"Paged {i:02d}", owner_org=org)
    page.goto(f"{mosu.url}/?organization={org}&sort=name")
    assert page.locator(".result-bar .range").inner_text() == "1–20 of 45"
    seen = titles(page)
    pager = page.get_by_role("navigation", name="Pages")
    assert pager.locator("[aria-current=page]").inner_text() == "1"
    pager.get_by_role("link", name="Page 2").click()
    expect(page.locator(".result-bar .range")).to_have_text("21–40 of 45")
    assert page.get_by_role("navigation", name="Pages").locator("[aria-current=page]").inner_text() == "2"
    seen += titles(page)
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Next →").click()
    expect(page.locator(".result-bar .range")).to_have_text("41–45 of 45")
    seen += titles(page)
    assert seen == [f"Paged {i:02d}" for i in range(45)], "every dataset once, in name order"
    assert page.get_by_role("navigation", name="Pages").get_by_role("link", name="Next →").count() == 0
    assert parse_qs(urlsplit(page.url).query)["sort"] == ["name"], "paging keeps the sort"
    assert page.console_errors == []


def _bibtex_fields(text: str) -> tuple[str, dict[str, str]]:
    """(key, fields) of one ``@misc`` entry, each field on its line, braces balanced."""
    match = re.fullmatch(r"@misc\{([A-Za-z0-9_-]+),\n((?:  \w+ = \{.*\},?\n)+)\}", text.strip())
    assert match, text
    fields = dict(re.findall(r"^  (\w+) = \{(.*)\},?$", match[2], re.M))
    for value in fields.values():
        depth = 0
        for i, ch in enumerate(value):
            if ch in "{}" and (i == 0 or value[i - 1] != "\\"):
                depth += 1 if ch == "{" else -1
                assert depth >= 0, value
        assert depth == 0, value
    return match[1], fields


def test_dataset_page_links_publisher_and_tags_and_gives_versions_and_a_citation(mosu, admin, page):
    org = new_org(admin, title="Rain & Partners Lab")
    pkg = admin.action.package_create(name=f"{org}-rain", title="Rain {2024} at 50% cover", owner_org=org,
                                      license_id="cc-by", tags=[{"name": "rainfall"}], access_level="registered")
    first = upload(admin, b"station,mm\na,1\nb,2\nc,3\n", "r.csv", dataset=pkg["id"])
    # The provider's suite lets the next upload add a column (the generated one holds the columns fixed).
    rows_only = {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1},
                 "meta": {"severity": "blocking"}}
    admin.action.quality_suite_update(id=first["id"], suite={"expectations": [rows_only]})
    second = upload(admin, b"station,mm,note\na,1.5,x\nb,2,y\nc,3,z\nd,4,w\ne,5,v\n", "r.csv",
                    resource_id=first["id"])
    assert second["ingest_status"] == "ready", second.get("ingest_error")
    versions = admin.action.resource_version_list(id=first["id"])
    assert [v["number"] for v in versions] == [2, 1]
    old, new = ({f["id"]: f["type"] for f in v["schema"]} for v in (versions[1], versions[0]))
    assert old["mm"] != new["mm"] and "note" in new and "note" not in old
    year = versions[0]["published"][:4]
    page.goto(f"{mosu.url}/dataset/{pkg['name']}")
    facts = page.locator("dl.facts")
    assert facts.get_by_role("link", name="Rain & Partners Lab").get_attribute("href") == f"/organization/{org}"
    licence = facts.get_by_role("link", name="Creative Commons Attribution")
    assert licence.get_attribute("href") == "http://www.opendefinition.org/licenses/cc-by"
    assert "Registered users" in page.locator("dd.access-level").inner_text()
    assert "accept the dataset's terms" in page.locator("dd.access-level").inner_text()
    # Versions: newest first, with their rows and what changed in the columns.
    history = page.locator("table.history tbody tr")
    assert page.locator("details.versions summary").inner_text() == "2 versions"
    assert history.count() == 2
    assert history.nth(0).get_attribute("data-version") == "2" and history.nth(1).get_attribute("data-version") == "1"
    assert history.locator("td.rows").all_inner_texts() == ["5", "3"]
    assert " ".join(history.nth(0).locator(".schema-change").inner_text().split()) == (
        f"added: note type changed: mm: {old['mm']} → {new['mm']}")
    assert history.nth(1).locator(".schema-change").inner_text() == "first version"
    assert "(current)" in history.nth(0).inner_text()
    # The citation: version, publisher, year, the page's URL; BibTeX and RIS that parse.
    url = f"{mosu.url}/dataset/{pkg['name']}"
    assert page.locator(".cite-text").inner_text() == (
        f"Rain & Partners Lab ({year}). Rain {{2024}} at 50% cover, version 2 [Data set]. {url}")
    key, fields = _bibtex_fields(page.locator("#cite-bibtex").inner_text())
    assert key == f"{pkg['name']}_{year}"
    assert fields == {"title": r"Rain \{2024\} at 50\% cover", "author": r"{Rain \& Partners Lab}",
                      "publisher": r"Rain \& Partners Lab", "year": year, "version": "2", "url": url,
                      "howpublished": rf"\url{{{url}}}"}
    ris = page.locator("#cite-ris").inner_text().strip().splitlines()
    assert ris[0] == "TY  - DATA" and ris[-1].rstrip() == "ER  -"
    assert {"TI  - Rain {2024} at 50% cover", "PB  - Rain & Partners Lab", f"PY  - {year}", "ET  - 2",
            f"UR  - {url}"} <= set(ris)
    # The copy button puts the entry on the clipboard.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=mosu.url)
    page.get_by_role("button", name="Copy the BibTeX entry").click()
    expect(page.get_by_role("button", name="Copy the BibTeX entry")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == page.locator("#cite-bibtex").inner_text().strip()
    # The tag leads to the search filtered by it.
    page.locator("dd.tags").get_by_role("link", name="rainfall").click()
    expect(page.locator(".facet[data-facet=tags] li.active")).to_contain_text("rainfall")
    assert pkg["title"] in titles(page) and parse_qs(urlsplit(page.url).query)["tags"] == ["rainfall"]
    assert page.console_errors == []


def test_hostile_text_shows_as_text_everywhere(mosu, admin, page):
    script, img = HOSTILE
    org = new_org(admin, title=img)
    pkg = admin.action.package_create(name=f"{org}-x", title=script, notes=img, owner_org=org,
                                      tags=[{"name": script}, {"name": img}], version=img)
    res = upload(admin, b"id,v\n1,2\n2,3\n", "x.csv", dataset=pkg["id"], name=script, description=img)
    for path in (f"/dataset/{pkg['name']}", f"/?organization={org}", "/?q=alert", "/?tags=" + quote(script),
                 f"/dataset/{pkg['name']}/resource/{res['id']}/quality"):
        page.goto(mosu.url + path)
        assert page.locator("img[src=x]").count() == 0 and page.locator("script:not([src])").count() == 0, path
        assert script in page.locator("main").inner_text(), path
    page.goto(f"{mosu.url}/dataset/{pkg['name']}")
    assert page.locator("h1").inner_text() == script
    assert page.locator("p.notes").inner_text() == img
    assert page.locator("dd.publisher").inner_text() == img
    assert sorted(page.locator("dd.tags a").all_inner_texts()) == sorted(HOSTILE)
    assert f"  title = {{{script}}}," in page.locator("#cite-bibtex").inner_text()
    assert page.locator("#cite-ris").inner_text().splitlines()[1] == f"TI  - {script}"
    page.locator("dd.tags").get_by_role("link", name=script).click()
    assert titles(page) == [script]
    assert page.dialogs == [] and page.console_errors == []


def test_a_page_that_fails_gets_the_styled_500_page_in_the_reader_s_language(mosu, admin, browser):  # noqa: F811
    """A stored quality report the page cannot read (a damaged row) is a 500: the site's page, not
    Flask's bare one, naming no cause."""
    from catalog.db.models import ResourceVersion

    org = new_org(admin)
    pkg = admin.action.package_create(name=f"{org}-q", owner_org=org)
    res = upload(admin, b"id\n1\n2\n", "q.csv", dataset=pkg["id"])
    platform = mosu.inspect()
    with platform.write.begin() as s:
        version = s.get(ResourceVersion, admin.action.resource_version_list(id=res["id"])[0]["id"])
        version.quality = {**version.quality, "profile": {"row_count": 2, "columns": 7}}
    for locale, heading, back in (("en-GB", "500 · Something went wrong", "Back to the datasets"),
                                  ("zh-CN", "500 · 出错了", "返回数据集列表")):
        context = browser.new_context(locale=locale)
        page = context.new_page()
        response = page.goto(f"{mosu.url}/dataset/{pkg['name']}/resource/{res['id']}/quality")
        assert response.status == 500
        assert page.locator("h1").inner_text() == heading
        assert page.get_by_role("link", name=back).count() == 1
        assert page.locator("header.top .brand").count() == 1 and "Traceback" not in page.content()
        context.close()


def test_the_pages_pass_axe_in_both_languages(mosu, admin, browser):  # noqa: F811
    org = new_org(admin, title="Axe Lab")
    pkg = admin.action.package_create(name=f"{org}-axe", title="Axe check", owner_org=org, license_id="cc-by",
                                      tags=[{"name": "checks"}], notes="Rows to look at.")
    first = upload(admin, b"id,kind\n" + b"".join(b"%d,%s\n" % (i, b"ab"[i % 2:i % 2 + 1]) for i in range(60)),
                   "a.csv", dataset=pkg["id"])
    upload(admin, b"id,kind,n\n1,a,2\n2,b,3\n", "a.csv", resource_id=first["id"])
    name = new_user(mosu)
    for locale in ("en-GB", "zh-CN"):
        page = signed_in_page(browser, mosu, name, locale=locale)
        page.on("dialog", lambda d: d.dismiss())
        for path in ("/", f"/?organization={org}", f"/dataset/{pkg['name']}",
                     f"/dataset/{pkg['name']}/resource/{first['id']}/quality", "/no/such/page",
                     "/dataset/no-such-dataset", "/user/me"):
            response = page.goto(mosu.url + path)
            assert_accessible(page)
            if response.status == 404:  # the browser logs the page's own 404: not an error of the page
                page.console_errors[:] = [e for e in page.console_errors if "status of 404" not in e]
        page.context.clear_cookies()
        page.goto(mosu.url + "/user/login")
        assert_accessible(page)
        assert page.console_errors == []
        page.context.close()


def test_search_and_dataset_pages_fit_a_390_px_phone(mosu, admin, browser):  # noqa: F811
    long_word = "an-unbroken-title-" * 6
    org = new_org(admin, title="A publisher with a long name " + long_word)
    for i in range(21):  # two pages: the pager shows
        admin.action.package_create(name=f"{org}-{i:02d}", title=f"{long_word}{i}", owner_org=org,
                                    tags=[{"name": long_word[:90]}], url="https://example.org/" + long_word)
    res = upload(admin, b"id,a_rather_long_column_name_" + long_word.encode() + b"\n1,2\n", "p.csv",
                 dataset=f"{org}-00")
    assert res["ingest_status"] == "ready"
    page = browser.new_page(viewport={"width": 390, "height": 900})
    for path in (f"/?organization={org}", f"/dataset/{org}-00"):
        page.goto(mosu.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide: it scrolls sideways on a phone"
    page.close()
