"""Signing in on the web: the form, server-side sessions, CSRF, sign-in limits, the profile's API tokens.

Against ``mosu up`` on loopback, in Debian's Chromium where a user would use a browser, and with
``requests`` where the test plays an attacker (a forged form post, a planted cookie). The audit
events are read back from the catalog database.
"""
from __future__ import annotations

import re
import uuid
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from sqlalchemy import select

from catalog.db.models import AuditEvent, WebSession
from tests.web import PASSWORD, assert_accessible, browser, new_user, signed_in_page, watch_console  # noqa: F401

FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def site(mosu_factory):
    """The module's server: 3 wrong passwords per account in 15 minutes, and a per-address limit the
    other tests' few wrong passwords (all from 127.0.0.1) stay far from."""
    return mosu_factory(sign_in_failures_per_account=3, sign_in_failures_per_address=100)


def _form_token(session: requests.Session, url: str) -> str:
    r = session.get(url, timeout=30)
    assert r.status_code == 200, r.text[:300]
    return FORM_TOKEN.search(r.text).group(1)


def _sign_in(site, name: str, password: str = PASSWORD, client: requests.Session | None = None) -> requests.Session:
    """Sign in through the form with ``requests`` (as a browser posts it); returns the session."""
    client = client or requests.Session()
    token = _form_token(client, site.url + "/user/login")
    r = client.post(site.url + "/user/login", data={"username": name, "password": password, "csrf_token": token},
                    allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text[:500]
    return client


def _events(site, action: str, actor_id: str | None = None) -> list[AuditEvent]:
    with site.inspect().read() as s:
        q = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        rows = list(s.scalars(q))
    return [e for e in rows if actor_id is None or e.actor_id == actor_id or e.detail.get("user_id") == actor_id]


def _user_id(site, name: str) -> str:
    return site.ckan(site.token("web-site-admin", sysadmin=True)).action.user_show(id=name)["id"]


def test_a_user_signs_in_sees_their_profile_and_signs_out(site, browser):  # noqa: F811
    name = new_user(site)
    page = signed_in_page(browser, site, name)
    assert page.get_by_role("link", name=name).is_visible(), "the header names the signed-in user"
    page.get_by_role("link", name=name).click()
    assert page.get_by_role("heading", level=1).inner_text() == name
    assert_accessible(page)
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["mosu_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax", session
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert page.get_by_role("link", name="Sign in").is_visible()
    page.goto(site.url + "/user/me")
    assert "/user/login" in page.url, "signed out: the profile asks to sign in again"
    assert page.console_errors == []
    uid = _user_id(site, name)
    signs_in, signs_out = _events(site, "sign_in", uid), _events(site, "sign_out", uid)
    assert [e.detail["method"] for e in signs_in] == ["password"] and len(signs_out) == 1
    assert signs_in[0].detail["session"] == signs_out[0].detail["session"], "sign-out names the session it ended"
    assert signs_in[0].client == "127.0.0.1" and signs_in[0].user_agent and "Chrome" in signs_in[0].user_agent
    with site.inspect().read() as s:
        assert s.scalars(select(WebSession).where(WebSession.user_id == uid)).all() == [], "the session row is gone"
    page.context.close()


def test_the_sign_in_page_is_accessible_and_a_wrong_password_is_one_message(site, browser):  # noqa: F811
    name = new_user(site)
    page = browser.new_page()
    watch_console(page)
    page.goto(site.url + "/user/login")
    assert_accessible(page)
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    assert page.get_by_label("Username").input_value() == name, "the name is kept, the password is not"
    assert page.get_by_label("Password").input_value() == ""
    page.get_by_label("Username").fill(f"nobody-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong username or password.", "an unknown name: the same"
    assert page.console_errors == []
    page.close()
    failures = [e for e in _events(site, "sign_in_failure") if e.detail.get("method") == "password"]
    reasons = {e.detail["reason"] for e in failures}
    assert {"wrong_password", "unknown_user"} <= reasons
    wrong = next(e for e in failures if e.detail["reason"] == "wrong_password")
    assert wrong.detail["user_id"] == _user_id(site, name) and wrong.outcome == "refused"
    assert not any("not the password" in str(e.detail) for e in failures), "a typed password is never logged"


def test_the_session_id_changes_at_sign_in_and_a_planted_one_signs_nobody_in(site):
    name = new_user(site)
    client = requests.Session()
    planted = "planted-by-an-attacker-" + uuid.uuid4().hex
    client.cookies.set("mosu_session", planted, domain="127.0.0.1", path="/")
    _sign_in(site, name, client=client)
    value = client.cookies.get("mosu_session")
    assert value and value != planted
    r = client.get(site.url + "/user/me", allow_redirects=False, timeout=30)
    assert r.status_code == 200 and f">{name}<" in r.text
    attacker = requests.Session()
    attacker.cookies.set("mosu_session", planted, domain="127.0.0.1", path="/")
    r = attacker.get(site.url + "/user/me", allow_redirects=False, timeout=30)
    assert r.status_code == 303 and "/user/login" in r.headers["Location"]
    again = _sign_in(site, name)
    assert again.cookies.get("mosu_session") != value, "every sign-in opens a new session"


def test_a_form_without_its_token_is_refused_and_changes_nothing(site):
    name = new_user(site)
    client = _sign_in(site, name)
    uid = _user_id(site, name)
    for data in ({"name": "forged"}, {"name": "forged", "csrf_token": "x" * 43}):
        r = client.post(site.url + "/user/me/tokens", data=data, allow_redirects=False, timeout=30)
        assert r.status_code == 403, r.text[:300]
        assert "security token is missing or wrong" in r.text and "<!doctype html>" in r.text.lower()
    # another user's valid token is no token for this session
    other = _sign_in(site, new_user(site))
    r = client.post(site.url + "/user/me/tokens", data={"name": "forged",
                                                        "csrf_token": _form_token(other, site.url + "/user/me")},
                    allow_redirects=False, timeout=30)
    assert r.status_code == 403
    r = client.post(site.url + "/user/logout", allow_redirects=False, timeout=30)
    assert r.status_code == 403, "signing out needs the token too (no forced sign-out from another site)"
    admin = site.ckan(site.token("web-site-admin", sysadmin=True))
    assert admin.action.api_token_list(user_id=uid) == [], "no token was made"
    refused = [e for e in _events(site, "access_denied", uid) if e.detail.get("error") == "CsrfRefused"]
    assert len(refused) == 4 and {e.detail.get("page") for e in refused} == {"/user/me/tokens", "/user/logout"}


def test_the_sign_in_form_itself_needs_its_token(site):
    name = new_user(site)
    r = requests.post(site.url + "/user/login", data={"username": name, "password": PASSWORD},
                      allow_redirects=False, timeout=30)
    assert r.status_code == 403 and "mosu_session" not in r.headers.get("Set-Cookie", "")


def test_a_cookie_alone_does_not_sign_in_an_api_call_the_page_s_header_does(site):
    name = new_user(site)
    client = _sign_in(site, name)
    token = _form_token(client, site.url + "/user/me")
    url = site.url + "/api/3/action/api_token_list"
    r = client.post(url, json={}, timeout=30)
    assert r.status_code == 403 and "logged in" in r.json()["error"]["message"], "cookie only: anonymous"
    r = client.get(url, timeout=30)
    assert r.status_code == 403, "a GET link from another site is anonymous too"
    r = client.post(url, json={}, headers={"X-CSRF-Token": token}, timeout=30)
    assert r.status_code == 200 and r.json()["result"] == []
    r = client.post(url, json={}, headers={"X-CSRF-Token": token[:-1] + ("A" if token[-1] != "A" else "B")},
                    timeout=30)
    assert r.status_code == 403


def test_wrong_passwords_lock_the_account_then_the_address(mosu_factory):
    """On a server of its own (the per-address count is the whole module's otherwise): 3 per account, 6 per
    address."""
    site = mosu_factory(sign_in_failures_per_account=3, sign_in_failures_per_address=6)
    victim, others = new_user(site), [new_user(site) for _ in range(3)]
    for _ in range(3):
        client = requests.Session()
        token = _form_token(client, site.url + "/user/login")
        r = client.post(site.url + "/user/login", data={"username": victim, "password": "guess", "csrf_token": token},
                        timeout=30)
        assert r.status_code == 200 and "Wrong username or password." in r.text
    client = requests.Session()
    token = _form_token(client, site.url + "/user/login")
    r = client.post(site.url + "/user/login", data={"username": victim, "password": PASSWORD, "csrf_token": token},
                    allow_redirects=False, timeout=30)
    assert r.status_code == 429, "locked: even the right password waits"
    assert int(r.headers["Retry-After"]) > 800 and "Too many failed sign-ins: try again in 15 minutes" in r.text
    assert "mosu_session" not in client.cookies
    assert r.text.count("Username") >= 1, "the form is shown again with the reason"
    # the same address, other accounts: 3 more failures reach the address's limit of 6
    for name in others:
        r = client.post(site.url + "/user/login", data={"username": name, "password": "guess", "csrf_token": token},
                        timeout=30)
        assert r.status_code == 200 and "Wrong username or password." in r.text
    r = client.post(site.url + "/user/login", data={"username": others[0], "password": PASSWORD,
                                                    "csrf_token": token}, allow_redirects=False, timeout=30)
    assert r.status_code == 429, "the address is past its limit"
    limited = [e for e in _events(site, "rate_limited") if e.detail.get("limit") == "sign_in"]
    assert len(limited) == 2 and all(e.detail["retry_after"] > 800 for e in limited)


def test_api_tokens_are_made_shown_once_and_revoked_from_the_profile(site, browser):  # noqa: F811
    name = new_user(site)
    page = signed_in_page(browser, site, name)
    page.goto(site.url + "/user/me")
    assert page.get_by_text("You have no API tokens.").is_visible()
    page.get_by_label("Name", exact=True).fill("<script>alert('t')</script> notebook")
    page.get_by_label("Expires after (leave empty for never)").fill("30")
    page.get_by_label("Unit").select_option("day")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text()
    assert secret.startswith("mosu_") and len(secret) > 40
    assert page.get_by_role("button", name="Copy").is_visible()
    assert_accessible(page)
    me = site.ckan(secret).action.user_show(id=name)
    assert me["name"] == name, "the token shown signs the user in"
    row = page.get_by_role("row").filter(has_text="notebook")
    assert row.get_by_role("cell").first.inner_text() == "<script>alert('t')</script> notebook", "shown as text"
    expires = row.get_by_role("cell").nth(3).inner_text()
    assert expires != "never"
    listed = site.ckan(secret).action.api_token_list()
    assert len(listed) == 1 and listed[0]["expires_at"] is not None
    page.goto(site.url + "/user/me")
    assert page.locator("#new-token").count() == 0, "the secret is shown once only"
    page.get_by_role("button", name=re.compile("^Revoke")).click()
    page.wait_for_load_state()
    assert page.get_by_text("You have no API tokens.").is_visible()
    with pytest.raises(Exception, match="not valid"):
        site.ckan(secret).action.user_show(id=name)
    assert page.console_errors == []
    page.context.close()


def test_a_new_password_ends_every_session(site):
    name = new_user(site)
    first, second = _sign_in(site, name), _sign_in(site, name)
    token = _form_token(first, site.url + "/user/me")
    r = first.post(site.url + "/api/3/action/user_update", headers={"X-CSRF-Token": token}, timeout=30,
                   json={"id": name, "password": "a brand new password", "old_password": PASSWORD})
    assert r.status_code == 200, r.text[:300]
    for client in (first, second):
        r = client.get(site.url + "/user/me", allow_redirects=False, timeout=30)
        assert r.status_code == 303, "signed out everywhere"
    _sign_in(site, name, "a brand new password")


def test_the_demo_has_accounts_to_sign_in_with_and_keeps_their_passwords_private(mosu_factory):
    import os
    import stat
    import time

    demo = mosu_factory("--demo")
    path = demo.settings.data_dir / "demo-accounts.txt"
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, "readable by the owner only"
    accounts = {line.split("\t")[0]: line.split("\t")[1] for line in path.read_text().splitlines()
                if line and not line.startswith("#")}
    assert sorted(accounts) == ["auditor", "demo", "researcher"]
    for name, password in accounts.items():
        client = _sign_in(demo, name, password)
        assert f">{name}<" in client.get(demo.url + "/user/me", timeout=30).text
    assert all(p not in demo.log.read_text() for p in accounts.values()), "no password in the log"
    admin = demo.ckan(demo.token("web-site-admin", sysadmin=True))
    assert admin.action.user_show(id="auditor")["auditor"] is True


HOSTILE_NEXT = ("https://evil.example/", "//evil.example", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
                "/%2F%2Fevil.example", " https://evil.example", "http:evil.example", "/\t/evil.example",
                "https:/evil.example", "/%5Cevil.example")


@pytest.fixture(scope="module")
def traveller(site) -> str:
    """One user for the ``next`` tests (each signs in anew, in its own session)."""
    return new_user(site)


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_signing_in_never_sends_the_browser_to_another_site(site, traveller, target):
    """The sign-in form's ``next`` (from the query string or the form) is followed only to a path of
    this site; anything a browser could read as another site's address goes to the home page."""
    name = traveller
    for where in ("query", "form"):
        client = requests.Session()
        token = _form_token(client, site.url + "/user/login?" + requests.compat.urlencode({"next": target}))
        r = client.post(site.url + "/user/login" + ("?" + requests.compat.urlencode({"next": target})
                                                    if where == "query" else ""),
                        data={"username": name, "password": PASSWORD, "csrf_token": token,
                              **({"next": target} if where == "form" else {})},
                        allow_redirects=False, timeout=30)
        assert r.status_code == 303 and "mosu_session" in r.cookies, (target, where, r.status_code)
        location = r.headers["Location"]
        # as a browser resolves it: on this site, and the path a browser would ask for stays here too
        resolved = urlsplit(urljoin(site.url + "/user/login", location))
        assert (resolved.scheme, resolved.netloc) == ("http", urlsplit(site.url).netloc), (target, where, location)
        assert location.startswith("/") and not location.startswith(("//", "/\\")), (target, where, location)
        # Already signed in, the form's GET follows ``next`` the same way.
        again = client.get(site.url + "/user/login", params={"next": target}, allow_redirects=False, timeout=30)
        assert again.status_code == 303 and urlsplit(urljoin(site.url, again.headers["Location"])).netloc == \
            urlsplit(site.url).netloc, (target, again.headers["Location"])


def test_signing_in_follows_a_path_of_the_site(site, traveller):
    name = traveller
    client = requests.Session()
    token = _form_token(client, site.url + "/user/login?next=/dataset/x%3Fq%3D1")
    r = client.post(site.url + "/user/login", data={"username": name, "password": PASSWORD, "csrf_token": token,
                                                    "next": "/dataset/x?q=1"}, allow_redirects=False, timeout=30)
    assert r.status_code == 303 and r.headers["Location"] == "/dataset/x?q=1"
    page = client.get(site.url + "/user/login?next=/dataset/x%3Fq%3D1", allow_redirects=False, timeout=30)
    assert page.headers["Location"] == "/dataset/x?q=1"
