"""The members and collaborators pages in a real Chromium against ``mosu up``: an organization's
admin adds a user, changes the role and removes them (and the user's rights follow); a wrong user
name comes back next to the field; the only admin can neither leave nor be demoted; an editor, an
outsider and a signed-out visitor change nothing; a dataset's collaborators are added and removed;
forms without the CSRF token are refused; hostile full names stay text. Every change is checked
through the API, not only on the page.

Each test builds its own organization, users and dataset under a unique suffix.
"""
from __future__ import annotations

import re
import uuid

import pytest

from tests import web
from tests.web import assert_accessible, new_user, signed_in_page
from tests.web import unexpected_errors as _unexpected
from tests.web import watch_dialogs as _no_dialogs

browser = web.browser  # the module's Chromium (a fixture)

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

HOSTILE = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>')


@pytest.fixture(scope="module")
def admin(mosu):
    """A sysadmin's API client: sets up and checks what the pages did."""
    return mosu.ckan(mosu.token(f"mem-admin-{uuid.uuid4().hex[:6]}", sysadmin=True))


@pytest.fixture
def team(mosu, admin) -> dict:
    """An organization with an admin and an editor, a private dataset in it, and an outsider whose
    full name is hostile text."""
    suffix = uuid.uuid4().hex[:8]
    org = admin.action.organization_create(name=f"team-{suffix}", title=f"Team {suffix}")
    boss, editor, outsider = (new_user(mosu, f"{who}-{suffix}") for who in ("boss", "ed", "out"))
    admin.action.organization_member_create(id=org["id"], username=boss, role="admin")
    admin.action.organization_member_create(id=org["id"], username=editor, role="editor")
    admin.action.user_update(id=outsider, fullname=HOSTILE[0])
    admin.action.user_update(id=editor, fullname=HOSTILE[1])
    pkg = admin.action.package_create(name=f"plans-{suffix}", title="Plans", owner_org=org["id"], private=True)
    return {"org": org, "boss": boss, "editor": editor, "outsider": outsider, "pkg": pkg, "suffix": suffix}


def _roles(admin, org_id: str) -> dict[str, str]:
    """The organization's members and roles, as the API answers a sysadmin."""
    return {u["name"]: u["capacity"] for u in admin.action.organization_show(id=org_id, include_users=True)["users"]}


def _collaborators(admin, pkg_id: str) -> dict[str, str]:
    """The dataset's collaborators (by user name) and capacities, as the API answers a sysadmin."""
    return {admin.action.user_show(id=c["user_id"])["name"]: c["capacity"]
            for c in admin.action.package_collaborator_list(id=pkg_id)}


def _status(page, mosu, path: str) -> int:
    """The status the page's browser gets on opening ``path``."""
    return page.goto(mosu.url + path).status


def test_an_admin_adds_a_user_as_editor_changes_the_role_and_removes_them(mosu, admin, browser, team):
    org, newcomer = team["org"], team["outsider"]
    before = _roles(admin, org["id"])
    assert newcomer not in before
    page = signed_in_page(browser, mosu, team["boss"])
    dialogs = _no_dialogs(page)
    other = signed_in_page(browser, mosu, newcomer)
    edit = f"/dataset/{team['pkg']['name']}/edit"
    assert _status(other, mosu, edit) in (403, 404), "not a member yet: the edit page is refused"

    page.goto(f"{mosu.url}/organization/{org['name']}")
    page.get_by_role("link", name="Members", exact=True).click()
    page.wait_for_url(f"**/organization/{org['name']}/members")
    expect(page.locator(f'tr[data-user="{team["editor"]}"] .member-name')).to_have_text(HOSTILE[1])
    expect(page.locator(f'tr[data-user="{team["editor"]}"] .role')).to_have_text("Editor")
    assert_accessible(page)

    page.get_by_label("User name").fill(newcomer)
    page.get_by_label("Role", exact=True).select_option("editor")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("status")).to_have_text("The member was saved.")
    row = page.locator(f'tr[data-user="{newcomer}"]')
    expect(row.locator(".member-name")).to_have_text(HOSTILE[0])
    expect(row.locator(".role")).to_have_text("Editor")
    assert _roles(admin, org["id"])[newcomer] == "editor"
    assert _status(other, mosu, edit) == 200, "an editor of the organization opens its dataset's edit page"
    expect(other.get_by_role("heading", name="Edit dataset")).to_be_visible()
    assert_accessible(page)

    row.get_by_label(f"Role of {newcomer}").select_option("member")
    row.get_by_role("button", name=f"Change the role of {newcomer}").click()
    expect(page.get_by_role("status")).to_have_text("The member was saved.")
    expect(page.locator(f'tr[data-user="{newcomer}"] .role')).to_have_text("Member")
    assert _roles(admin, org["id"])[newcomer] == "member"
    assert _status(other, mosu, edit) == 403, "a plain member may not edit"

    row = page.locator(f'tr[data-user="{newcomer}"]')
    row.get_by_text("Remove…").click()
    row.get_by_role("button", name=f"Remove {newcomer} from {org['title']}").click()
    expect(page.get_by_role("status")).to_have_text("The member was removed.")
    expect(page.locator(f'tr[data-user="{newcomer}"]')).to_have_count(0)
    assert _roles(admin, org["id"]) == before
    assert _status(other, mosu, edit) in (403, 404)
    assert_accessible(page)
    assert page.console_errors == [] and dialogs == []
    assert _unexpected(other.console_errors, 403, 404) == []


def test_the_only_admin_cannot_remove_or_demote_themselves_and_the_page_says_why(mosu, admin, browser, team):
    """The organization's only admin tries to leave it and to become an editor from the members page:
    each is refused with the action's reason above the table (409), and they stay its admin; in 简体中文
    the reason is translated."""
    org, boss = team["org"], team["boss"]
    for u in admin.action.organization_show(id=org["id"], include_users=True)["users"]:
        if u["capacity"] == "admin" and u["name"] != boss:  # the sysadmin who created it: boss stays alone
            admin.action.organization_member_delete(id=org["id"], username=u["name"])
    before = _roles(admin, org["id"])
    assert [n for n, r in before.items() if r == "admin"] == [boss]
    page = signed_in_page(browser, mosu, boss)
    dialogs = _no_dialogs(page)
    page.goto(f"{mosu.url}/organization/{org['name']}/members")
    row = page.locator(f'tr[data-user="{boss}"]')
    row.get_by_text("Remove…").click()
    with page.expect_response(lambda r: r.url.endswith("/members/remove")) as answer:
        row.get_by_role("button", name=f"Remove {boss} from {org['title']}").click()
    assert answer.value.status == 409
    expect(page.get_by_role("alert")).to_have_text(
        "Nothing was changed: An organization needs at least one admin: make another member admin first.")
    expect(page.locator(f'tr[data-user="{boss}"] .role')).to_have_text("Admin")
    assert _roles(admin, org["id"]) == before

    row = page.locator(f'tr[data-user="{boss}"]')
    row.get_by_label(f"Role of {boss}").select_option("editor")
    with page.expect_response(lambda r: r.url.endswith("/members") and r.request.method == "POST") as answer:
        row.get_by_role("button", name=f"Change the role of {boss}").click()
    assert answer.value.status == 409
    expect(page.get_by_role("alert")).to_contain_text("An organization needs at least one admin")
    expect(page.locator(f'tr[data-user="{boss}"] .role')).to_have_text("Admin")
    expect(page.get_by_label("User name")).to_have_value("")  # the add form is not filled with the refused change
    assert _roles(admin, org["id"]) == before
    assert_accessible(page)

    page.goto(mosu.url + f"/language/zh_Hans?next=/organization/{org['name']}/members")
    row = page.locator(f'tr[data-user="{boss}"]')
    row.locator("summary").click()
    row.locator("form[action$='/members/remove'] button").click()
    reason = "组织至少需要一位管理员：请先将另一位成员设为管理员。"
    expect(page.get_by_role("alert")).to_have_text("未做任何更改： " + reason)
    assert _roles(admin, org["id"]) == before
    assert _unexpected(page.console_errors, 409) == [] and dialogs == []


def test_an_unknown_user_name_is_shown_next_to_the_field_and_nothing_changes(mosu, admin, browser, team):
    page = signed_in_page(browser, mosu, team["boss"])
    page.goto(f"{mosu.url}/organization/{team['org']['name']}/members")
    before = _roles(admin, team["org"]["id"])
    ghost = f"ghost-{team['suffix']}"
    page.get_by_label("User name").fill(ghost)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Add member").click()
    assert answer.value.status == 409
    field = page.get_by_label("User name")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value(ghost)
    described = page.locator("#" + field.get_attribute("aria-describedby").split()[0])
    expect(described).to_have_text(f"There is no user named “{ghost}”.")
    assert _roles(admin, team["org"]["id"]) == before
    assert_accessible(page)

    page.get_by_label("User name").fill("")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_label("User name")).to_have_attribute("aria-invalid", "true")
    assert _roles(admin, team["org"]["id"]) == before
    assert _unexpected(page.console_errors, 409) == []


def test_an_editor_sees_the_members_but_cannot_change_them_and_strangers_see_nothing(mosu, admin, browser, team):
    org = team["org"]
    path = f"/organization/{org['name']}/members"
    before = _roles(admin, org["id"])
    page = signed_in_page(browser, mosu, team["editor"])
    dialogs = _no_dialogs(page)
    assert _status(page, mosu, path) == 200
    expect(page.locator(f'tr[data-user="{team["boss"]}"] .role')).to_have_text("Admin")
    expect(page.get_by_role("button", name="Add member")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Change the role"))).to_have_count(0)
    assert_accessible(page)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    for target, form in ((path, {"username": team["outsider"], "role": "admin"}),
                         (path, {"username": team["editor"], "role": "admin"}),
                         (path + "/remove", {"username": team["boss"]})):
        refused = page.request.post(mosu.url + target, form={**form, "csrf_token": token}, max_redirects=0)
        assert refused.status == 403, (target, form, refused.status)
        assert "Access denied" in refused.text()
    assert _roles(admin, org["id"]) == before
    assert page.console_errors == [] and dialogs == []

    stranger = signed_in_page(browser, mosu, team["outsider"])
    assert _status(stranger, mosu, path) == 403
    expect(stranger.get_by_text(team["boss"])).to_have_count(0)
    assert_accessible(stranger)

    anonymous = browser.new_context().new_page()
    anonymous.goto(mosu.url + path)
    assert anonymous.url.startswith(mosu.url + "/user/login"), anonymous.url
    expect(anonymous.get_by_text(team["boss"])).to_have_count(0)
    assert anonymous.request.post(mosu.url + path, form={"username": team["outsider"], "role": "admin"},
                                  max_redirects=0).status == 403
    assert _roles(admin, org["id"]) == before


def test_an_admin_adds_and_removes_a_dataset_collaborator(mosu, admin, browser, team):
    pkg, helper = team["pkg"], team["outsider"]
    page = signed_in_page(browser, mosu, team["boss"])
    dialogs = _no_dialogs(page)
    page.goto(f"{mosu.url}/dataset/{pkg['name']}/edit")
    page.get_by_role("link", name="Collaborators", exact=True).click()
    page.wait_for_url(f"**/dataset/{pkg['name']}/collaborators")
    expect(page.get_by_text("No collaborators yet.")).to_be_visible()
    assert_accessible(page)

    page.get_by_label("User name").fill(f"nobody-{team['suffix']}")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Add collaborator").click()
    assert answer.value.status == 409
    expect(page.get_by_label("User name")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text(f"There is no user named “nobody-{team['suffix']}”.")).to_be_visible()
    assert _collaborators(admin, pkg["id"]) == {}

    page.get_by_label("User name").fill(helper)
    page.get_by_label("Capacity").select_option("editor")
    page.get_by_role("button", name="Add collaborator").click()
    expect(page.get_by_role("status")).to_have_text("The collaborator was saved.")
    row = page.locator(f'tr[data-user="{helper}"]')
    expect(row.locator(".member-name")).to_have_text(HOSTILE[0])
    expect(row.locator(".role")).to_have_text("Editor")
    assert _collaborators(admin, pkg["id"]) == {helper: "editor"}
    assert_accessible(page)

    row.get_by_text("Remove…").click()
    row.get_by_role("button", name=f"Remove {helper} from the collaborators of {pkg['title']}").click()
    expect(page.get_by_role("status")).to_have_text("The collaborator was removed.")
    expect(page.get_by_text("No collaborators yet.")).to_be_visible()
    assert _collaborators(admin, pkg["id"]) == {}
    assert _unexpected(page.console_errors, 409) == [] and dialogs == []


def test_only_who_manages_the_dataset_sees_its_collaborators_and_forms_need_the_token(mosu, admin, browser, team):
    pkg = team["pkg"]
    path = f"/dataset/{pkg['name']}/collaborators"
    admin.action.package_collaborator_create(id=pkg["id"], user_id=team["outsider"], capacity="member")
    editor = signed_in_page(browser, mosu, team["editor"])
    assert _status(editor, mosu, path) == 403, "an organization editor does not manage collaborators"
    expect(editor.get_by_text(team["outsider"])).to_have_count(0)
    token = editor.locator('meta[name="csrf-token"]').get_attribute("content")
    refused = editor.request.post(mosu.url + path + "/remove", form={"user_id": team["outsider"], "csrf_token": token},
                                  max_redirects=0)
    assert refused.status == 403
    assert _collaborators(admin, pkg["id"]) == {team["outsider"]: "member"}

    roles = _roles(admin, team["org"]["id"])
    boss = signed_in_page(browser, mosu, team["boss"])
    assert _status(boss, mosu, path) == 200
    members = f"/organization/{team['org']['name']}/members"
    for target, form in ((path, {"username": team["editor"], "capacity": "editor"}),
                         (path + "/remove", {"user_id": team["outsider"]}),
                         (members, {"username": team["outsider"], "role": "admin"}),
                         (members + "/remove", {"username": team["editor"]})):
        without = boss.request.post(mosu.url + target, form=form, max_redirects=0)
        assert without.status == 403 and "security token" in without.text(), (target, without.status)
    assert _collaborators(admin, pkg["id"]) == {team["outsider"]: "member"}
    assert _roles(admin, team["org"]["id"]) == roles
    assert boss.console_errors == []
