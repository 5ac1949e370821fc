"""What the browser tests share: Debian's Chromium through Playwright, users with passwords,
signing in through the form, and axe-core's accessibility check.

Pages are driven as a user would: by their labels and the text they show (``get_by_label``,
``get_by_role``), never by a private API. Screenshots go to ``MOSU_TEST_ARTEFACTS`` (default
``test-artefacts/`` in the checkout, which git ignores) so a failed journey can be looked at.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"
ARTEFACTS = Path(os.environ.get("MOSU_TEST_ARTEFACTS", Path(__file__).resolve().parent.parent / "test-artefacts"))
SERIOUS = ("serious", "critical")


def launch(pw):
    """Debian's headless Chromium as the tests drive it (``bench/grid.py`` times pages in the same one)."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"])


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (pages and contexts are the tests' own)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


def new_user(mosu, name: str | None = None, *, sysadmin: bool = False, auditor: bool = False,
             password: str = PASSWORD) -> str:
    """A user with a password, made through the API by a sysadmin; returns the user name."""
    name = name or f"u-{uuid.uuid4().hex[:8]}"
    admin = mosu.ckan(mosu.token("web-site-admin", sysadmin=True))
    admin.action.user_create(name=name, email=f"{name}@example.org", password=password)
    if sysadmin or auditor:
        admin.action.user_update(id=name, **({"sysadmin": True} if sysadmin else {}),
                                 **({"auditor": True} if auditor else {}))
    return name


def signed_in_page(browser, mosu, name: str, password: str = PASSWORD, *, locale: str = "en-GB"):
    """A new browser context signed in as ``name`` through the sign-in form; returns its page, on
    the page the form leads to. Console errors are collected in ``page.console_errors``."""
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch_console(page)
    page.goto(mosu.url + "/user/login")
    page.get_by_label("Username" if locale.startswith("en") else "用户名").fill(name)
    page.get_by_label("Password" if locale.startswith("en") else "密码").fill(password)
    page.get_by_role("button", name=re.compile("^(Sign in|登录)$")).click()
    page.wait_for_load_state()
    return page


def watch_console(page) -> None:
    """Collect the page's console errors and uncaught exceptions in ``page.console_errors``."""
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda e: page.console_errors.append(str(e)))


def assert_accessible(page) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:5])
           for v in results.response["violations"] if v.get("impact") in SERIOUS]
    assert bad == [], f"axe on {page.url}: {bad}"


def screenshot(page, name: str) -> Path:
    """Keep a full-page screenshot as a test artefact; returns its path."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def unexpected_errors(errors: list[str], *statuses: int) -> list[str]:
    """Console errors other than Chromium's note of a page answered with one of ``statuses`` (a
    refusal page a test expects is an error status, which Chromium logs)."""
    return [e for e in errors if not any(f"status of {s} " in e for s in statuses)]


def watch_dialogs(page) -> list[str]:
    """The messages of every dialog the page opens from now on (each dismissed): an injected
    ``alert`` shows up here, so a test asserts the list stays empty."""
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return dialogs
