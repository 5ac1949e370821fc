"""The pages in English and 简体中文: every message translated, the language switchable and remembered,
dates and numbers formatted for it, and the switch no open redirect."""
from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from babel.dates import format_date, format_datetime
from babel.messages.extract import extract_from_dir

from tests.conftest import upload
from tests.web import browser, watch_console  # noqa: F401 - browser is a fixture
from webui.i18n import load_catalogs

WEBUI = Path(__file__).resolve().parent.parent / "webui"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted_messages() -> dict[str, list[str]]:
    """Every ``_()``/``gettext`` message of the pages' templates and Python modules -> where it is."""
    found: dict[str, list[str]] = {}
    method_map = [("templates/**.html", "jinja2.ext.babel_extract"), ("*.py", "python")]
    for filename, lineno, message, _comments, _context in extract_from_dir(str(WEBUI), method_map=method_map):
        for msgid in (message if isinstance(message, tuple) else (message,)):
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def test_every_message_of_the_pages_has_a_chinese_translation_with_the_same_placeholders():
    messages = extracted_messages()
    assert len(messages) > 150, "the extraction sees the templates and the modules"
    assert "Sign in" in messages and "Publishers" in messages and "Wrong username or password." in messages
    catalog = load_catalogs()["zh_Hans"]
    missing = [f"{msgid!r} ({where[0]})" for msgid, where in messages.items()
               if catalog.get(msgid) is None or not str(catalog.get(msgid).string or "").strip()]
    assert missing == [], "messages without a zh_Hans translation:\n" + "\n".join(missing)
    mismatched = [(msgid, catalog.get(msgid).string) for msgid in messages
                  if sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(catalog.get(msgid).string))]
    assert mismatched == [], f"placeholders differ between msgid and msgstr: {mismatched}"


@pytest.fixture(scope="module")
def shelf(mosu):
    """A dataset with 1,234 rows in an organization, for dates and numbers in both languages."""
    ckan = mosu.ckan(mosu.token("i18n-admin", sysadmin=True))
    org = f"i18n-{uuid.uuid4().hex[:6]}"
    ckan.action.organization_create(name=org, title="I18n Lab")
    pkg = ckan.action.package_create(name=f"{org}-rain", title="Rainfall", owner_org=org, tags=[{"name": "rain"}])
    res = upload(ckan, b"n\n" + b"".join(b"%d\n" % i for i in range(1234)), "n.csv", dataset=pkg["id"])
    assert res["ingest_status"] == "ready" and res["row_count"] == 1234
    return ckan.action.package_show(id=pkg["id"])


def test_the_switch_turns_the_pages_chinese_with_dates_and_numbers_for_zh_and_remembers_it(mosu, browser, shelf):  # noqa: F811
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    watch_console(page)
    page.goto(f"{mosu.url}/dataset/{shelf['name']}")
    nav = page.locator("header.top")
    assert nav.get_by_role("link", name="Sign in", exact=True).count() == 1
    when = dt.datetime.fromisoformat(shelf["metadata_modified"][:19]).replace(tzinfo=dt.timezone.utc)
    assert page.locator("dd.updated").inner_text() == format_datetime(when, "medium", locale="en")
    nav.get_by_role("link", name="简体中文").click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == f"/dataset/{shelf['name']}", "the switch goes back to the page it was on"
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert nav.get_by_role("link", name="登录", exact=True).count() == 1
    assert page.get_by_role("heading", name="资源").count() == 1
    zh_when = format_datetime(when, "medium", locale="zh_Hans")
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", zh_when), zh_when
    assert page.locator("dd.updated").inner_text() == zh_when, "the date in Chinese form"
    assert "1,234 行" in page.locator(".resource .meta").first.inner_text(), "the number grouped, the unit Chinese"
    # The next page is Chinese too: the choice is remembered (a cookie), not a parameter of the link.
    page.goto(mosu.url + "/")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.locator("form.search button").inner_text() == "搜索"
    item = page.locator(".dataset-item", has_text="Rainfall")
    assert f"更新于 {format_date(when, 'medium', locale='zh_Hans')}" in item.inner_text()
    # And back to English.
    page.locator("header.top").get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert page.locator("form.search button").inner_text() == "Search"
    assert page.console_errors == []
    context.close()


def test_a_chinese_browser_gets_chinese_by_default(mosu, browser, shelf):  # noqa: F811
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(f"{mosu.url}/dataset/{shelf['name']}")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    assert page.locator("header.top").get_by_role("link", name="登录", exact=True).count() == 1
    assert page.locator("dl.facts dt").first.inner_text() == "发布者"
    context.close()
    r = requests.get(mosu.url + "/", headers={"Accept-Language": "en-GB,en;q=0.9"}, timeout=10)
    assert ">Sign in<" in r.text and "登录" not in r.text.replace(">登录<", "")


def test_the_language_switch_is_no_open_redirect(mosu):
    for target in ("//evil.example", "https://evil.example/", "/\\evil.example", "\\\\evil.example"):
        r = requests.get(mosu.url + "/language/zh_Hans", params={"next": target}, allow_redirects=False, timeout=10)
        assert r.status_code == 303
        location = urlsplit(r.headers["Location"])
        assert location.path == "/" and location.netloc in ("", urlsplit(mosu.url).netloc), (target, location)
        assert "mosu_lang=zh_Hans" in r.headers["Set-Cookie"]
    r = requests.get(mosu.url + "/language/zh_Hans", params={"next": "/dataset/x?a=1"}, allow_redirects=False,
                     timeout=10)
    assert urlsplit(r.headers["Location"]).path == "/dataset/x"
    r = requests.get(mosu.url + "/language/xx", params={"next": "/"}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and "mosu_lang" not in r.headers.get("Set-Cookie", ""), "unknown: not kept"
