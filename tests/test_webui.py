"""The web pages, in a real headless Chromium, against ``mosu up --demo``."""
from __future__ import annotations

import io
import subprocess
import time
import uuid

import pytest

from tests.conftest import MOSU, wait_for_ingest

DEMO = ("iowa-electricity", "seattle-weather", "us-employment")


@pytest.fixture(scope="module")
def demo_site(mosu_factory):
    running = mosu_factory("--demo")
    ckan = running.ckan()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sorted(ckan.action.package_list()) != sorted(DEMO):
        time.sleep(0.5)
    for name in DEMO:
        for res in ckan.action.package_show(id=name)["resources"]:
            assert wait_for_ingest(ckan, res["id"])["ingest_status"] == "ready"
    return running


@pytest.fixture(scope="module")
def provider(mosu):
    """A sysadmin and an organization on a plain ``mosu up`` for the tests that upload: the demo site
    stays as loaded, so the tests above can count its datasets whatever order the tests run in."""
    ckan = mosu.ckan(mosu.token("web-provider", sysadmin=True))
    ckan.action.organization_create(name="web-lab")
    return ckan


@pytest.fixture
def idle_site(mosu_factory):
    """``mosu up --workers 0``: an upload stays queued until the test starts a ``mosu worker``."""
    running = mosu_factory("--workers", "0")
    yield running
    running.stop()


def test_demo_datasets_are_loaded_with_source_and_licence(demo_site):
    ckan = demo_site.ckan()
    assert sorted(ckan.action.package_list()) == sorted(DEMO)
    pkg = ckan.action.package_show(id="seattle-weather")
    assert pkg["license_id"] == "other-pd" and pkg["license_title"] == "Other (Public Domain)"
    assert "NOAA" in pkg["notes"] and pkg["url"]
    assert pkg["resources"][0]["row_count"] == 1461


def test_home_page_lists_the_datasets(demo_site, browser):
    page = browser.new_page()
    page.goto(demo_site.url + "/")
    titles = page.locator(".dataset-item strong").all_inner_texts()
    assert "Seattle daily weather, 2012-2015" in titles
    assert len(titles) == 3
    page.close()


def test_search_box_and_facets_narrow_the_catalog(demo_site, browser):
    page = browser.new_page()
    page.goto(demo_site.url + "/")
    page.fill("form.search input[name=q]", "weather")
    page.click("form.search button")
    page.wait_for_selector("text=for “weather”")
    assert page.locator(".dataset-item strong").all_inner_texts() == ["Seattle daily weather, 2012-2015"]
    page.goto(demo_site.url + "/")
    assert "3 datasets" in page.locator(".results h1").inner_text()
    page.click(".facet[data-facet=tags] >> text=energy")
    page.wait_for_selector(".facet li.active")
    assert page.locator(".dataset-item strong").all_inner_texts() == [
        "Iowa net electricity generation by source, 2001-2017"]
    assert "1 dataset" in page.locator(".results h1").inner_text()
    page.close()


def test_dataset_page_shows_metadata_status_and_first_rows(demo_site, browser):
    page = browser.new_page()
    page.goto(demo_site.url + "/")
    page.click("text=Iowa net electricity generation by source, 2001-2017")
    page.wait_for_selector("table.preview")
    assert page.locator(".status").first.inner_text() == "ready"
    assert page.locator("dl.facts").inner_text().count("Other (Public Domain)") == 1
    headers = page.locator("table.preview th").all_inner_texts()
    assert headers == ["year", "source", "net_generation"]
    first = page.locator("table.preview tbody tr").first.locator("td").all_inner_texts()
    assert first == ["2001-01-01", "Fossil Fuels", "35361"]
    assert "First 20 of 51 rows." in page.content()
    page.close()


def test_status_updates_live_from_queued_to_ready(idle_site, browser, tmp_path):
    site = idle_site
    ckan = site.ckan(site.token("live", sysadmin=True))
    ckan.action.organization_create(name="live-org")
    pkg = ckan.action.package_create(name="live-status", title="Live status", owner_org="live-org")
    res = ckan.action.resource_create(package_id=pkg["id"], upload=("n.csv", io.BytesIO(b"n\n1\n2\n3\n")))
    page = browser.new_page()
    page.goto(f"{site.url}/dataset/{pkg['name']}")
    # No worker runs yet: the first render can only show the job waiting.
    section = page.locator(f"#resource-{res['id']}")
    assert section.locator(".status").inner_text() == "queued"
    assert "this page updates by itself" in section.locator(".progress").inner_text()
    assert page.locator("table.preview").count() == 0
    # Now a worker takes the job; the page, never reloaded by the test, shows it ready with its rows.
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen([*MOSU, "worker"], env=site.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        page.wait_for_selector(f"#resource-{res['id']} .status-ready", timeout=60_000)
        page.wait_for_selector("table.preview")
        assert page.locator("table.preview tbody tr").count() == 3
    finally:
        worker.terminate()
        worker.wait(60)
    page.close()


def test_dataset_page_shows_ingest_warnings_and_dictionary_labels(mosu, provider, browser):
    ckan = provider
    pkg = ckan.action.package_create(name="warn-" + uuid.uuid4().hex[:8], owner_org="web-lab")
    body = b"station,reading\n" + b"".join(
        b"s%d,%s\n" % (i, b"broken" if i == 4 else b"%d.5" % i) for i in range(1, 41))
    res = ckan.action.resource_create(package_id=pkg["id"], upload=("r.csv", io.BytesIO(body)),
                                      schema='[{"id": "reading", "label": "Reading (mm)", "description": "Rainfall"}]')
    assert wait_for_ingest(ckan, res["id"])["ingest_status"] == "ready"
    page = browser.new_page()
    page.goto(f"{mosu.url}/dataset/{pkg['name']}")
    warnings = page.locator(".warnings")
    assert "1 warning from the ingest" in warnings.locator("summary").inner_text()
    # The odd value was left empty, so it was never published: the public page gives its count, not it.
    assert warnings.locator("li").inner_text() == ("Column 'reading': 1 value could not be read as float and "
                                                   "was left empty.")
    assert "broken" not in page.content()
    header = page.locator("table.preview th").nth(1)
    assert header.inner_text() == "Reading (mm)" and header.get_attribute("title") == "float: Rainfall"
    page.close()


def test_quality_report_page_draws_histograms_and_lists_checks(mosu, provider, browser):
    ckan = provider
    pkg = ckan.action.package_create(name="qual-" + uuid.uuid4().hex[:8], owner_org="web-lab")
    body = b"id,price,kind\n" + b"".join(
        b"%d,%d.25,%s\n" % (i, i % 50, b"ab"[i % 2:i % 2 + 1]) for i in range(1, 301))
    res = ckan.action.resource_create(package_id=pkg["id"], upload=("q.csv", io.BytesIO(body)))
    assert wait_for_ingest(ckan, res["id"])["ingest_status"] == "ready"
    page = browser.new_page()
    page.goto(f"{mosu.url}/dataset/{pkg['name']}")
    assert page.locator(".quality .score").inner_text() == "100"
    page.click("text=quality report")
    assert page.locator("h1 .score").inner_text() == "100"
    assert "validity" in page.locator("p.explanation").inner_text()
    price = page.locator("section.profile", has_text="price")
    assert price.locator("svg.histogram rect").count() == 20, "a bar per bin"
    assert page.locator("section.profile", has_text="kind").locator("table.top tr").count() == 2
    checks = page.locator("table.checks tbody tr")
    assert checks.count() >= 5 and page.locator("table.checks .check-passed").count() == checks.count()
    assert "No column looks like" in page.content()
    page.close()


def test_failed_ingest_and_missing_dataset_get_clear_pages(mosu, provider, browser):
    ckan = provider
    pkg = ckan.action.package_create(name="broken-" + uuid.uuid4().hex[:8], owner_org="web-lab")
    res = ckan.action.resource_create(package_id=pkg["id"], upload=("x.csv", io.BytesIO(b"%PDF-1.4 junk")))
    assert wait_for_ingest(ckan, res["id"])["ingest_status"] == "failed"
    page = browser.new_page()
    page.goto(f"{mosu.url}/dataset/{pkg['name']}")
    assert "PDF document" in page.locator(".resource .error").inner_text()
    response = page.goto(f"{mosu.url}/dataset/no-such-dataset")
    assert response.status == 404
    assert "Dataset not found" in page.locator("p.error").inner_text()
    page.close()


def test_download_redirects_to_a_short_lived_url_of_the_original(demo_site):
    import requests

    pkg = demo_site.ckan().action.package_show(id="iowa-electricity")
    res = pkg["resources"][0]
    first = requests.get(res["url"], allow_redirects=False, timeout=10)
    assert first.status_code == 302
    assert "X-Amz-Expires=300" in first.headers["Location"]
    body = requests.get(first.headers["Location"], timeout=10)
    assert body.status_code == 200
    assert body.content.startswith(b"year,source,net_generation\n2001-01-01,Fossil Fuels,35361")


def test_pages_run_under_the_content_security_policy(mosu, provider, browser):
    """No page needs an inline script or style (the CSP forbids both), and a script URL stored
    before URL fields were checked is neither a link nor run when clicked."""
    from catalog.db.models import Package

    ckan = provider
    pkg = ckan.action.package_create(name="csp-" + uuid.uuid4().hex[:8], owner_org="web-lab",
                                     url="https://example.org/source")
    body = b"id,kind\n" + b"".join(b"%d,%s\n" % (i, b"abc"[i % 3:i % 3 + 1]) for i in range(1, 61))
    res = ckan.action.resource_create(package_id=pkg["id"], upload=("k.csv", io.BytesIO(body)))
    assert wait_for_ingest(ckan, res["id"])["ingest_status"] == "ready"
    platform = mosu.inspect()
    with platform.write.begin() as s:
        s.get(Package, pkg["id"]).url = "javascript:alert(document.domain)//"
    platform.close()
    page = browser.new_page()
    violations, dialogs = [], []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(mosu.url + "/")
    page.goto(f"{mosu.url}/dataset/{pkg['name']}")
    assert page.locator("a[href^='javascript' i]").count() == 0
    page.click("text=javascript:alert(document.domain)//")
    page.click("text=quality report")
    bars = page.locator("section.profile", has_text="kind").locator("table.top svg.bar rect")
    assert bars.count() == 3 and bars.first.get_attribute("width") == "100.0"
    assert page.locator("table.top svg.bar rect").first.bounding_box()["width"] > 50, "drawn without inline style"
    page.wait_for_timeout(300)
    assert violations == [] and dialogs == []
    page.close()


# -- issue 11: what a new user hit ----------------------------------------------------------------

def test_unknown_routes_get_the_site_s_error_page_and_api_paths_the_ckan_envelope(demo_site):
    import requests

    for method, path, status in (("GET", "/no/such/page", 404), ("GET", "/dataset", 404),
                                 ("POST", "/", 405), ("DELETE", "/dataset/iowa-electricity", 405)):
        r = requests.request(method, demo_site.url + path, timeout=10)
        assert r.status_code == status and r.headers["Content-Type"].startswith("text/html"), (path, r.text[:200])
        assert 'class="brand"' in r.text and 'rel="stylesheet"' in r.text, "the site's page, not Flask's"
        assert f"{status} ·" in r.text and "Back to the datasets" in r.text
    allowed = requests.post(demo_site.url + "/", timeout=10).headers["Allow"]
    assert set(allowed.split(", ")) == {"GET", "HEAD", "OPTIONS"}, "a 405 still says what is allowed"
    for method, path, status, ckan_type in (("GET", "/api/3/nothing", 404, "Not Found Error"),
                                            ("GET", "/api/3/action/", 404, "Not Found Error"),
                                            ("PUT", "/api/3/action/status_show", 405, "Method Not Allowed"),
                                            ("DELETE", "/datastore/dump_sql", 405, "Method Not Allowed")):
        r = requests.request(method, demo_site.url + path, timeout=10)
        assert r.status_code == status and r.headers["Content-Type"] == "application/json", (path, r.text[:200])
        assert r.json()["success"] is False and r.json()["error"]["__type"] == ckan_type


def test_a_malformed_search_keeps_the_search_box_and_the_typed_query(demo_site, browser):
    import requests

    typed = 'title:(unclosed <b>bold</b> "x'
    r = requests.get(demo_site.url + "/", params={"q": typed}, timeout=10)
    assert r.status_code == 400
    assert "<b>bold</b>" not in r.text and "&lt;b&gt;bold&lt;/b&gt;" in r.text, "the query is escaped"
    page = browser.new_page()
    page.goto(demo_site.url + "/?" + requests.compat.urlencode({"q": typed}))
    assert page.input_value("form.search input[name=q]") == typed
    assert "could not be read" in page.locator(".search-error").inner_text().lower()
    page.fill("form.search input[name=q]", "weather")
    page.click("form.search button")
    page.wait_for_selector("text=for “weather”")
    page.close()


def test_every_page_has_a_favicon(demo_site, browser):
    import requests

    icon = requests.get(demo_site.url + "/favicon.ico", timeout=10)
    assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg+xml")
    assert icon.content.lstrip().startswith(b"<svg")
    page = browser.new_page()
    failed = []
    page.on("response", lambda resp: failed.append(resp.url) if resp.status >= 400 else None)
    page.goto(demo_site.url + "/dataset/seattle-weather")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert requests.get(demo_site.url + href, timeout=10).status_code == 200
    page.wait_for_timeout(300)
    assert failed == []
    page.close()


def test_the_quality_page_fits_a_390_px_phone(mosu, provider, browser):
    ckan = provider
    pkg = ckan.action.package_create(name="phone-" + uuid.uuid4().hex[:8], owner_org="web-lab",
                                     private=True)
    long_text = "a-long-unbroken-value-" * 6
    body = b"id,contact,station_with_a_rather_long_column_name,note\n" + b"".join(
        b"%d,user%d@example.org,%d.5,%s%d\n" % (i, i, i, long_text.encode(), i % 3) for i in range(1, 201))
    res = ckan.action.resource_create(package_id=pkg["id"], upload=("p.csv", io.BytesIO(body)))
    assert wait_for_ingest(ckan, res["id"])["ingest_status"] == "ready"
    ckan.action.quality_pii_acknowledge(id=res["id"])
    ckan.action.package_patch(id=pkg["id"], private=False)
    page = browser.new_page(viewport={"width": 390, "height": 900})
    page.goto(f"{mosu.url}/dataset/{pkg['name']}/resource/{res['id']}/quality")
    assert page.locator("table.checks tbody tr").count() >= 3 and page.locator("table.pii tbody tr").count() == 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide: it scrolls sideways on a phone"
    page.close()
