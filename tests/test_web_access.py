"""Access pages in a real Chromium against ``mosu up`` (issue 14): a researcher requests access
with the agreement's answers, the provider approves it for 30 days with one column excluded (or
denies it with a reason), the researcher sees the outcome on "My access" and through the API; a
registered dataset's terms are accepted in one click; grants are revoked from the grants page.
Wrong users get refusal pages without data, signed-out users are sent to sign in, a form posted
without its CSRF token changes nothing, and hostile text in every field renders as text.
"""
from __future__ import annotations

import datetime as dt
import io
import re
import uuid

import ckanapi
import pytest
from babel.dates import format_date
from playwright.sync_api import expect

from tests import web
from tests.conftest import wait_for_ingest
from tests.web import assert_accessible, new_user, screenshot, signed_in_page, watch_console

browser = web.browser  # the module's Chromium (a fixture)

CSV = b"id,city,income\n1,Oslo,300\n2,Lima,400\n3,Pune,500\n"
XSS = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
QUESTIONS = [
    {"id": "institution", "text": "Your institution", "type": "text", "required": True},
    {"id": "use", "text": "What for?", "type": "choice", "choices": ["research", "teaching"], "required": True},
    {"id": "ethics", "text": "Do you hold an ethics approval?", "type": "yesno"},
]
TERMS = ("# Terms of use\n\nNo **re-identification** of anyone.\n\n- Keep it safe\n- Delete it after\n\n"
         f"{XSS}\n\n[a link](javascript:alert(1)) and [the site](https://example.org/terms)")


@pytest.fixture(scope="module")
def world(mosu):
    """A provider (admin of organization wa-org, with a password and a token), a data use agreement
    with three questions, and two researchers with passwords and tokens."""
    tag = uuid.uuid4().hex[:6]
    names = {k: new_user(mosu, f"wa-{k}-{tag}") for k in ("provider", "researcher", "outsider")}
    admin = mosu.ckan(mosu.token(f"wa-sys-{tag}", sysadmin=True))
    org = f"wa-org-{tag}"
    admin.action.organization_create(name=org, users=[{"name": names["provider"], "capacity": "admin"}])
    clients = {k: mosu.ckan(mosu.token(n)) for k, n in names.items()}
    agreement = clients["provider"].action.agreement_create(owner_org=org, title="Health data use agreement",
                                                            text=TERMS, questions=QUESTIONS)
    return {"org": org, "names": names, "agreement": agreement, **clients}


def dataset(world, level: str = "restricted", **fields) -> dict:
    """A new dataset of the provider's organization with one ingested CSV (id, city, income)."""
    name = f"wa-ds-{uuid.uuid4().hex[:8]}"
    pkg = world["provider"].action.package_create(name=name, title=f"Clinic {name}", owner_org=world["org"],
                                                  access_level=level, agreement_id=world["agreement"]["id"],
                                                  **fields)
    res = world["provider"].action.resource_create(package_id=name, name="table", upload=("t.csv", io.BytesIO(CSV)))
    assert wait_for_ingest(world["provider"], res["id"])["ingest_status"] == "ready"
    return {**pkg, "resource": res["id"]}


def watched(page) -> list[str]:
    """Dialogs the page opens (a script that ran would open one): collected, then dismissed."""
    dialogs: list[str] = []

    def seen(d) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", seen)
    return dialogs


def as_user(browser, mosu, name: str):
    page = signed_in_page(browser, mosu, name)
    return page, watched(page)


def clean(page, dialogs: list[str], status: int | None = None) -> None:
    """No console error, no script run, no serious accessibility violation on the page as it is.
    ``status``: the page itself was answered with it on purpose (a form's errors are 409), and the
    browser's one console line about that answer is expected; any other line still fails."""
    expected = f"Failed to load resource: the server responded with a status of {status} "
    errors = [e for e in page.console_errors if not (status and e.startswith(expected))]
    assert errors == [] and dialogs == []
    page.console_errors.clear()
    assert_accessible(page)


def ask(world, ds: dict, purpose: str = "Study of income.", **more) -> dict:
    return world["researcher"].action.access_request_create(
        package_id=ds["name"], purpose=purpose, answers={"institution": "Lima", "use": "research"}, **more)


def test_request_approve_for_30_days_without_one_column(mosu, world, browser):
    ds = dataset(world)
    me, provider_name = world["names"]["researcher"], world["names"]["provider"]
    page, dialogs = as_user(browser, mosu, me)
    page.goto(f"{mosu.url}/dataset/{ds['name']}")
    block = page.locator("#access")
    expect(block).to_contain_text("Restricted")
    block.get_by_role("link", name="Request access").click()

    # The agreement's full text, its Markdown rendered from a safe subset: hostile HTML is text.
    terms = page.locator("section.terms")
    expect(terms.get_by_role("heading", name="Terms of use")).to_be_visible()
    expect(terms.locator("strong")).to_have_text("re-identification")
    expect(terms.locator("li")).to_have_text(["Keep it safe", "Delete it after"])
    expect(terms).to_contain_text(XSS)
    assert terms.locator("img, script").count() == 0
    assert terms.locator("a").evaluate_all("els => els.map(e => e.href)") == ["https://example.org/terms"]
    clean(page, dialogs)

    # Nothing filled in: the action's errors come back next to the purpose and the required questions.
    page.get_by_role("button", name="Send the request").click()
    expect(page.locator("#purpose-error")).to_contain_text("Missing value")
    expect(page.get_by_label("Purpose (required)")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#answer-institution-error")).to_contain_text("must be answered")
    expect(page.get_by_label("Your institution (required)")).to_have_attribute("aria-describedby",
                                                                                "answer-institution-error")
    expect(page.locator("#answer-use-error")).to_contain_text("must be answered")
    assert [r for r in world["researcher"].action.access_request_list() if r["package_id"] == ds["id"]] == []
    clean(page, dialogs, 409)

    page.get_by_label("Purpose (required)").fill("Income study " + XSS)
    page.get_by_label("Your institution (required)").fill(XSS)
    page.get_by_role("group", name="What for? (required)").get_by_label("research").check()
    page.get_by_role("group", name="Do you hold an ethics approval?").get_by_label("Yes").check()
    page.get_by_label(re.compile("^For how many days")).fill("60")
    page.get_by_role("button", name="Send the request").click()
    expect(page.get_by_role("status")).to_contain_text("was sent")
    row = page.locator("tr.request", has_text=ds["name"])
    expect(row.locator(".status")).to_have_text("pending")
    (req,) = [r for r in world["researcher"].action.access_request_list() if r["package_id"] == ds["id"]]
    assert req["purpose"] == "Income study " + XSS
    assert req["answers"] == {"institution": XSS, "use": "research", "ethics": True}
    assert req["duration_days"] == 60
    clean(page, dialogs)
    screenshot(page, "access-my-requests-pending")

    # The provider's inbox: the purpose as text; the request with its answers; approve 30 days without income.
    prov, prov_dialogs = as_user(browser, mosu, provider_name)
    prov.goto(f"{mosu.url}/access/requests")
    row = prov.locator("tr.request", has_text=ds["name"])
    expect(row.locator(".purpose")).to_have_text("Income study " + XSS)
    expect(row).to_contain_text(me)
    clean(prov, prov_dialogs)
    row.get_by_role("link", name=re.compile("^Review")).click()
    expect(prov.locator("p.purpose")).to_have_text("Income study " + XSS)
    answers = prov.locator("dl.answers dd")
    expect(answers).to_have_text([XSS, "research", "Yes"])
    expect(prov.get_by_label("Access for how many days")).to_have_value("60")
    clean(prov, prov_dialogs)
    screenshot(prov, "access-review")
    prov.get_by_label("Access for how many days").fill("30")
    columns = prov.get_by_role("group", name=re.compile("^Columns granted"))
    expect(columns.get_by_role("checkbox")).to_have_count(3)
    columns.get_by_label("income").uncheck()
    prov.get_by_role("button", name="Approve the request").click()
    expect(prov.locator("dd .status")).to_have_text("approved")
    clean(prov, prov_dialogs)

    # The researcher: approved, the grant's expiry date in the page's language, the columns granted.
    grants = [g for g in world["researcher"].action.access_grant_list() if g["package_id"] == ds["id"]]
    assert len(grants) == 1 and grants[0]["columns"] == ["id", "city"] and grants[0]["state"] == "active"
    expires = dt.datetime.fromisoformat(grants[0]["expires"].replace("Z", "+00:00")).replace(tzinfo=None)
    left = expires - dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert dt.timedelta(days=29, hours=23) < left <= dt.timedelta(days=30)
    shown = format_date(expires.date(), "medium", locale="en")
    page.goto(f"{mosu.url}/user/me/access")
    expect(page.locator("tr.request", has_text=ds["name"]).locator(".status")).to_have_text("approved")
    grant_row = page.locator("tr.grant", has_text=ds["name"])
    expect(grant_row.locator(".status")).to_have_text("active")
    expect(grant_row.locator(".expires")).to_have_text(shown)
    expect(grant_row.locator(".columns")).to_have_text("id, city")
    clean(page, dialogs)
    screenshot(page, "access-my-grants")
    page.goto(f"{mosu.url}/dataset/{ds['name']}")
    expect(page.locator("#access")).to_contain_text(f"You have access until {shown}.")
    clean(page, dialogs)
    # Through the API as that researcher: the rows, without the excluded column.
    found = world["researcher"].action.datastore_search(resource_id=ds["resource"])
    assert [f["id"] for f in found["fields"] if f["id"] != "_id"] == ["id", "city"]
    page.context.close()
    prov.context.close()


def test_deny_with_a_reason_shows_it_to_the_researcher(mosu, world, browser):
    ds = dataset(world)
    req = ask(world, ds, purpose=XSS)
    prov, prov_dialogs = as_user(browser, mosu, world["names"]["provider"])
    prov.set_viewport_size({"width": 390, "height": 800})  # a phone: the page never scrolls sideways
    prov.goto(f"{mosu.url}/access/requests/{req['id']}")
    expect(prov.locator("p.purpose")).to_have_text(XSS)
    assert prov.evaluate("document.documentElement.scrollWidth") <= 390
    prov.goto(f"{mosu.url}/access/requests?dataset={ds['name']}")
    assert prov.evaluate("document.documentElement.scrollWidth") <= 390
    prov.goto(f"{mosu.url}/access/requests/{req['id']}")
    prov.get_by_role("button", name="Deny the request").click()  # no reason: refused, next to the field
    expect(prov.locator("#deny_reason-error")).to_contain_text("Missing value")
    expect(prov.get_by_label(re.compile("^Reason"))).to_have_attribute("aria-invalid", "true")
    assert world["provider"].action.access_request_show(id=req["id"])["state"] == "pending"
    clean(prov, prov_dialogs, 409)
    reason = "Not for this purpose " + XSS
    prov.get_by_label(re.compile("^Reason")).fill(reason)
    prov.get_by_role("button", name="Deny the request").click()
    expect(prov.locator("dd .status")).to_have_text("denied")
    expect(prov.locator("p.decision-note")).to_have_text(reason)
    clean(prov, prov_dialogs)

    page, dialogs = as_user(browser, mosu, world["names"]["researcher"])
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{mosu.url}/user/me/access")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    row = page.locator("tr.request", has_text=ds["name"])
    expect(row.locator(".status")).to_have_text("denied")
    expect(row.locator(".decision")).to_contain_text(reason)
    assert world["researcher"].action.access_request_show(id=req["id"])["decision_note"] == reason
    clean(page, dialogs)
    prov.context.close()
    page.context.close()


def test_withdraw_a_pending_request(mosu, world, browser):
    ds = dataset(world)
    req = ask(world, ds)
    page, dialogs = as_user(browser, mosu, world["names"]["researcher"])
    page.goto(f"{mosu.url}/dataset/{ds['name']}")
    expect(page.locator("#access")).to_contain_text("waiting for a decision")
    page.goto(f"{mosu.url}/user/me/access")
    page.get_by_role("button", name=f"Withdraw the request for {ds['name']}").click()
    expect(page.locator("tr.request", has_text=ds["name"]).locator(".status")).to_have_text("withdrawn")
    assert world["researcher"].action.access_request_show(id=req["id"])["state"] == "withdrawn"
    clean(page, dialogs)
    page.context.close()


def test_registered_dataset_terms_accepted_in_one_click(mosu, world, browser):
    ds = dataset(world, level="registered")
    researcher = world["researcher"]
    with pytest.raises(ckanapi.NotAuthorized):
        researcher.action.datastore_search(resource_id=ds["resource"])
    page, dialogs = as_user(browser, mosu, world["names"]["researcher"])
    page.goto(f"{mosu.url}/dataset/{ds['name']}")
    block = page.locator("#access")
    expect(block).to_contain_text("Health data use agreement, version 1")
    clean(page, dialogs)
    block.get_by_role("link", name="Read the terms").click()
    expect(page.get_by_role("heading", name="Terms of use")).to_be_visible()
    expect(page.locator(".terms")).to_contain_text(XSS)
    clean(page, dialogs)
    page.go_back()
    page.get_by_role("button", name="Accept the terms and read the data").click()
    expect(page.locator("#access")).to_contain_text("You accepted the terms")
    clean(page, dialogs)
    found = researcher.action.datastore_search(resource_id=ds["resource"])
    assert found["total"] == 3
    page.context.close()


def test_revoke_a_grant_from_the_grants_page(mosu, world, browser):
    ds = dataset(world)
    grant = world["provider"].action.access_grant_create(package_id=ds["name"], user_id=world["names"]["researcher"],
                                                         days=10, note=XSS)
    assert world["researcher"].action.datastore_search(resource_id=ds["resource"])["total"] == 3
    prov, dialogs = as_user(browser, mosu, world["names"]["provider"])
    prov.goto(f"{mosu.url}/access/grants?dataset={ds['name']}")
    item = prov.locator(f"li.grant[data-grant-id='{grant['id']}']")
    expect(item).to_contain_text(XSS)
    clean(prov, dialogs)
    item.get_by_text("Revoke…").click()
    button = item.get_by_role("button", name=f"Revoke the access of {world['names']['researcher']} "
                                             f"to {ds['name']} now")
    button.click()  # no reason: refused in place, the grant stays
    expect(prov.locator(f"li.grant[data-grant-id='{grant['id']}'] p.error")).to_contain_text("Missing value")
    assert world["researcher"].action.datastore_search(resource_id=ds["resource"])["total"] == 3
    clean(prov, dialogs, 409)
    prov.locator(f"li.grant[data-grant-id='{grant['id']}']").get_by_label(re.compile("^Reason")).fill("study over")
    prov.locator(f"li.grant[data-grant-id='{grant['id']}']").get_by_role("button", name=re.compile("^Revoke")).click()
    expect(prov.locator(f"li.grant[data-grant-id='{grant['id']}']")).to_have_count(0)  # the active list
    prov.goto(f"{mosu.url}/access/grants?dataset={ds['name']}&state=revoked")
    expect(prov.locator(f"li.grant[data-grant-id='{grant['id']}']")).to_contain_text("Revoked: study over")
    clean(prov, dialogs)
    with pytest.raises(ckanapi.NotAuthorized):
        world["researcher"].action.datastore_search(resource_id=ds["resource"])
    prov.context.close()


def test_wrong_users_and_signed_out_users_see_no_requests(mosu, world, browser):
    ds = dataset(world)
    secret = f"secret purpose {uuid.uuid4().hex}"
    req = ask(world, ds, purpose=secret)
    page, dialogs = as_user(browser, mosu, world["names"]["outsider"])
    # Another organization's inbox for that dataset: refused, no data.
    response = page.goto(f"{mosu.url}/access/requests?dataset={ds['name']}")
    assert response.status == 403
    expect(page.locator("h1")).to_contain_text("403")
    assert secret not in page.content()
    clean(page, dialogs, 403)
    # The request itself: as if it did not exist.
    response = page.goto(f"{mosu.url}/access/requests/{req['id']}")
    assert response.status == 404 and secret not in page.content()
    clean(page, dialogs, 404)
    # The inbox of the datasets they manage (none) and the grants list: nothing of that dataset.
    page.goto(f"{mosu.url}/access/requests?state=all")
    expect(page.locator("main")).to_contain_text("No requests here.")
    assert secret not in page.content() and ds["name"] not in page.content()
    clean(page, dialogs)
    page.goto(f"{mosu.url}/access/grants?state=all")
    expect(page.locator("main")).to_contain_text("No grants here.")
    response = page.goto(f"{mosu.url}/access/grants?dataset={ds['name']}")
    assert response.status == 403
    page.context.close()

    context = browser.new_context(locale="en-GB")
    anon = context.new_page()
    watch_console(anon)
    for path in ("/access/requests", f"/access/requests/{req['id']}", "/access/grants", "/user/me/access",
                 f"/dataset/{ds['name']}/access/request"):
        anon.goto(mosu.url + path)
        assert anon.url.startswith(f"{mosu.url}/user/login?next="), path
        assert secret not in anon.content()
    anon.goto(f"{mosu.url}/dataset/{ds['name']}")
    expect(anon.locator("#access").get_by_role("link", name="Sign in to request access")).to_be_visible()
    assert anon.console_errors == []
    context.close()


def test_approve_without_the_csrf_token_changes_nothing(mosu, world, browser):
    ds = dataset(world)
    req = ask(world, ds)
    prov, dialogs = as_user(browser, mosu, world["names"]["provider"])
    prov.goto(f"{mosu.url}/access/requests/{req['id']}")
    prov.locator("form.approve-form input[name=csrf_token]").evaluate("e => e.remove()")
    with prov.expect_response(lambda r: r.request.method == "POST") as posted:
        prov.get_by_role("button", name="Approve the request").click()
    assert posted.value.status == 403
    expect(prov.locator("h1")).to_contain_text("403")
    clean(prov, dialogs, 403)
    assert world["provider"].action.access_request_show(id=req["id"])["state"] == "pending"
    assert [g for g in world["provider"].action.access_grant_list(package_id=ds["name"], state="")] == []
    prov.context.close()


def test_my_access_in_chinese(mosu, world, browser):
    """States and the expiry date follow the chosen language (the dates by Flask-Babel)."""
    ds = dataset(world)
    grant = world["provider"].action.access_grant_create(package_id=ds["name"], user_id=world["names"]["researcher"],
                                                         days=45, columns=["city"])
    page, dialogs = as_user(browser, mosu, world["names"]["researcher"])
    page.goto(f"{mosu.url}/language/zh_Hans?next=/user/me/access")
    expect(page.get_by_role("heading", level=1)).to_have_text("我的申请与授权")
    row = page.locator(f"tr.grant[data-grant-id='{grant['id']}']")
    expect(row.locator(".status")).to_have_text("有效")
    expires = dt.datetime.fromisoformat(grant["expires"].replace("Z", "+00:00")).date()
    expect(row.locator(".expires")).to_have_text(format_date(expires, "medium", locale="zh_Hans"))
    assert format_date(expires, "medium", locale="zh_Hans") != format_date(expires, "medium", locale="en")
    clean(page, dialogs)
    page.goto(f"{mosu.url}/dataset/{ds['name']}")
    expect(page.locator("#access-title")).to_have_text("访问")
    expect(page.locator("#access")).to_contain_text(
        f"您的访问权限有效期至 {format_date(expires, 'medium', locale='zh_Hans')}。")
    page.context.close()


def test_approve_until_a_date_after_a_refused_number_of_days(mosu, world, browser):
    ds = dataset(world)
    req = ask(world, ds)
    prov, dialogs = as_user(browser, mosu, world["names"]["provider"])
    prov.goto(f"{mosu.url}/access/requests/{req['id']}")
    prov.get_by_label("Access for how many days").fill("0")
    prov.get_by_role("button", name="Approve the request").click()  # refused next to the field, nothing made
    expect(prov.locator("#days-error")).to_be_visible()
    expect(prov.get_by_label("Access for how many days")).to_have_attribute("aria-invalid", "true")
    assert world["provider"].action.access_request_show(id=req["id"])["state"] == "pending"
    clean(prov, dialogs, 409)
    until = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=20)).date()
    prov.get_by_label("Or until this date (instead of days)").fill(until.isoformat())
    prov.get_by_role("button", name="Approve the request").click()
    expect(prov.locator("dd .status")).to_have_text("approved")
    (grant,) = world["provider"].action.access_grant_list(package_id=ds["name"])
    assert grant["expires"].startswith(f"{until.isoformat()}T00:00:00") and grant["columns"] is None
    clean(prov, dialogs)
    prov.context.close()
