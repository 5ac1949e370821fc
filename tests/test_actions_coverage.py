"""The README's actions that no other test called, each through ckanapi, with its CKAN-shaped result
and its effect: current_package_list_with_resources, resource_update, resource_view_list,
organization_patch, organization_member_delete (and its refusal to take an organization's last admin away),
group_update, group_delete, group_member_create,
group_member_delete and group_activity_list.

Every test makes its own organization, group, datasets and users under a unique suffix, so it
reads only what it built, in any order.
"""
from __future__ import annotations

import io
import uuid

import ckanapi
import pytest
import requests

from tests.conftest import wait_for_ingest

GROUP_KEYS = {"id", "name", "title", "display_name", "description", "image_url", "image_display_url", "created",
              "state", "type", "is_organization", "approval_status", "extras", "package_count"}
MEMBERSHIP_KEYS = {"group_id", "table_name", "table_id", "capacity"}


@pytest.fixture(scope="module")
def admin_name() -> str:
    return f"actions-admin-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def admin(mosu, admin_name):
    return mosu.ckan(mosu.token(admin_name, sysadmin=True))


@pytest.fixture(scope="module")
def home(admin) -> dict:
    """The organization owning the datasets of the group and resource tests."""
    return admin.action.organization_create(name=f"actions-home-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def suffix() -> str:
    return uuid.uuid4().hex[:8]


def _user(mosu, admin, name: str) -> tuple[dict, ckanapi.RemoteCKAN]:
    """A new user and a ckanapi client acting as them."""
    user = admin.action.user_create(name=name, email=f"{name}@example.org")
    return user, mosu.ckan(admin.action.api_token_create(user=name, name="laptop")["token"])


def _member_names(admin, action: str, key: str) -> dict[str, str]:
    return {u["name"]: u["capacity"] for u in getattr(admin.action, action)(id=key, include_users=True)["users"]}


# -- datasets and resources ----------------------------------------------------------------------

def test_current_package_list_with_resources_lists_public_datasets_with_resources_newest_first(mosu, admin, suffix):
    org = admin.action.organization_create(name=f"cplr-{suffix}")
    older = admin.action.package_create(name=f"cplr-older-{suffix}", owner_org=org["id"], resources=[
        {"name": "a", "url": "https://example.org/a.csv"}, {"name": "b", "url": "https://example.org/b.csv"}])
    newer = admin.action.package_create(name=f"cplr-newer-{suffix}", owner_org=org["id"])
    hidden = admin.action.package_create(name=f"cplr-private-{suffix}", owner_org=org["id"], private=True)
    admin.action.package_patch(id=older["id"], notes="touched last, so now the most recently modified")
    mine = {older["name"], newer["name"], hidden["name"]}
    listed = [p for p in mosu.ckan().action.current_package_list_with_resources(limit=1000) if p["name"] in mine]
    assert [p["name"] for p in listed] == [older["name"], newer["name"]], "public only, newest first"
    first = listed[0]
    assert first["id"] == older["id"] and first["notes"] == "touched last, so now the most recently modified"
    assert first["organization"]["name"] == org["name"] and first["num_resources"] == 2
    assert [(r["name"], r["url"], r["package_id"]) for r in first["resources"]] == [
        ("a", "https://example.org/a.csv", older["id"]), ("b", "https://example.org/b.csv", older["id"])]
    assert listed[1]["resources"] == [] and listed[1]["num_resources"] == 0
    assert first["metadata_modified"] > listed[1]["metadata_modified"]


def test_resource_update_replaces_the_fields_and_an_upload_makes_a_new_version(admin, home, suffix):
    pkg = admin.action.package_create(owner_org=home["id"], name=f"resupdate-{suffix}")
    res = admin.action.resource_create(package_id=pkg["id"], name="readings", description="first description",
                                       format="CSV", url="https://example.org/readings.csv")
    updated = admin.action.resource_update(id=res["id"], name="readings-2024", format="CSV",
                                           upload=("readings.csv", io.BytesIO(b"day,value\n1,10\n2,20\n")))
    assert (updated["id"], updated["package_id"], updated["name"]) == (res["id"], pkg["id"], "readings-2024")
    assert updated["description"] == "", "resource_update replaces: a field left out is cleared"
    assert updated["url_type"] == "upload" and updated["url"].endswith(f"/resource/{res['id']}/download")
    shown = wait_for_ingest(admin, res["id"])
    assert shown["ingest_status"] == "ready" and shown["name"] == "readings-2024" and shown["description"] == ""
    assert [r["value"] for r in admin.action.datastore_search(resource_id=res["id"])["records"]] == [10, 20]
    same = admin.action.resource_update(id=res["id"], name="readings-2024",
                                        upload=("readings.csv", io.BytesIO(b"day,value\n1,10\n2,20\n")))
    assert same["version_id"] == shown["version_id"], "identical bytes make no version"
    assert [v["number"] for v in admin.action.resource_version_list(id=res["id"])] == [1]
    admin.action.resource_update(id=res["id"], name="readings-2024",
                                 upload=("readings.csv", io.BytesIO(b"day,value\n1,11\n2,21\n3,31\n")))
    assert wait_for_ingest(admin, res["id"])["ingest_status"] == "ready"
    assert sorted(v["number"] for v in admin.action.resource_version_list(id=res["id"])) == [1, 2]
    assert [r["value"] for r in admin.action.datastore_search(resource_id=res["id"])["records"]] == [11, 21, 31]


def test_resource_view_list_has_a_table_view_once_the_data_is_published(mosu, admin, home, suffix):
    pkg = admin.action.package_create(owner_org=home["id"], name=f"views-{suffix}")
    res = admin.action.resource_create(package_id=pkg["id"], name="link only", url="https://example.org/x.csv")
    assert admin.action.resource_view_list(id=res["id"]) == [], "no data in the datastore: no view"
    admin.action.resource_patch(id=res["id"], upload=("x.csv", io.BytesIO(b"k,v\n1,a\n2,b\n")))
    assert wait_for_ingest(admin, res["id"])["ingest_status"] == "ready"
    views = mosu.ckan().action.resource_view_list(id=res["id"])
    assert views == [{"id": f"{res['id']}-table", "resource_id": res["id"], "package_id": pkg["id"],
                      "view_type": "datatables_view", "title": "Table", "description": "", "filterable": True}]
    with pytest.raises(ckanapi.NotFound):
        admin.action.resource_view_list(id=str(uuid.uuid4()))


# -- organizations --------------------------------------------------------------------------------

def test_organization_patch_changes_only_the_given_fields(mosu, admin, suffix):
    member, _ = _user(mosu, admin, f"patch-member-{suffix}")
    org = admin.action.organization_create(name=f"patch-org-{suffix}", title="Before", description="Kept as it is",
                                           image_url="https://example.org/logo.png")
    admin.action.organization_member_create(id=org["id"], username=member["name"], role="editor")
    patched = admin.action.organization_patch(id=org["id"], title="After")
    assert GROUP_KEYS <= set(patched) and patched["is_organization"] is True and patched["type"] == "organization"
    assert (patched["id"], patched["name"], patched["title"], patched["display_name"]) == (
        org["id"], org["name"], "After", "After")
    assert (patched["description"], patched["image_url"]) == ("Kept as it is", "https://example.org/logo.png")
    shown = admin.action.organization_show(id=org["name"])
    assert (shown["title"], shown["description"]) == ("After", "Kept as it is")
    assert member["name"] in _member_names(admin, "organization_show", org["id"]), "a patch keeps the members"


def test_organization_member_delete_takes_the_membership_and_its_rights_away(mosu, admin, suffix):
    editor, as_editor = _user(mosu, admin, f"leaving-editor-{suffix}")
    org = admin.action.organization_create(name=f"leaving-org-{suffix}")
    secret = admin.action.package_create(name=f"leaving-secret-{suffix}", owner_org=org["id"], private=True)
    admin.action.organization_member_create(id=org["id"], username=editor["name"], role="editor")
    as_editor.action.package_create(name=f"leaving-made-{suffix}", owner_org=org["id"])
    assert as_editor.action.package_show(id=secret["id"])["id"] == secret["id"]
    assert _member_names(admin, "organization_show", org["id"])[editor["name"]] == "editor"

    assert admin.action.organization_member_delete(id=org["id"], username=editor["name"]) is None
    assert editor["name"] not in _member_names(admin, "organization_show", org["id"])
    assert [o["name"] for o in as_editor.action.organization_list_for_user()] == []
    with pytest.raises(ckanapi.NotAuthorized):
        as_editor.action.package_create(name=f"leaving-refused-{suffix}", owner_org=org["id"])
    with pytest.raises(ckanapi.NotFound):
        as_editor.action.package_show(id=secret["id"])


LAST_ADMIN = "An organization needs at least one admin: make another member admin first."


def test_the_last_admin_of_an_organization_is_neither_removed_nor_demoted(mosu, admin, admin_name, suffix):
    """Whoever asks (the admin themselves, a sysadmin), the only admin stays: a removal or a role change
    is a 409 Validation Error with the reason, and the member list is unchanged; once another member
    is made admin, the first may step down and leave."""
    boss, as_boss = _user(mosu, admin, f"only-admin-{suffix}")
    helper, _ = _user(mosu, admin, f"next-admin-{suffix}")
    org = admin.action.organization_create(name=f"one-admin-{suffix}")
    admin.action.organization_member_create(id=org["id"], username=boss["name"], role="admin")
    admin.action.organization_member_delete(id=org["id"], username=admin_name)  # the creator leaves: boss remains
    admin.action.organization_member_create(id=org["id"], username=helper["name"], role="editor")
    before = _member_names(admin, "organization_show", org["id"])
    assert before == {boss["name"]: "admin", helper["name"]: "editor"}

    for client in (as_boss, admin):
        for action, params in (("organization_member_delete", {}), ("organization_member_create", {"role": "editor"}),
                               ("organization_member_create", {"role": "member"}),
                               ("member_create",
                                {"object_type": "user", "object": boss["name"], "capacity": "member"})):
            params = {"id": org["id"], **({} if action == "member_create" else {"username": boss["name"]}), **params}
            with pytest.raises(ckanapi.ValidationError) as refused:
                client.call_action(action, params)
            assert refused.value.error_dict["username"] == [LAST_ADMIN], (action, params)
            assert _member_names(admin, "organization_show", org["id"]) == before
    raw = requests.post(f"{mosu.url}/api/3/action/organization_member_delete", headers={"Authorization": admin.apikey},
                        json={"id": org["id"], "username": boss["name"]}, timeout=30)
    assert raw.status_code == 409 and raw.json()["error"]["__type"] == "Validation Error"
    assert as_boss.action.organization_member_create(id=org["id"], username=boss["name"], role="admin")["capacity"] \
        == "admin", "staying admin is no change"

    for client in (as_boss, admin):  # nor through organization_update/_patch's `users` list (ckanapi load's way)
        for action in ("organization_update", "organization_patch"):
            with pytest.raises(ckanapi.ValidationError) as refused:
                client.call_action(action, {"id": org["id"], "name": org["name"], "users": [
                    {"name": boss["name"], "capacity": "editor"}, {"name": helper["name"], "capacity": "editor"}]})
            assert refused.value.error_dict["users"] == [LAST_ADMIN], action
            assert _member_names(admin, "organization_show", org["id"]) == before
    as_boss.action.organization_patch(id=org["id"], users=[{"name": boss["name"], "capacity": "admin"}])
    assert _member_names(admin, "organization_show", org["id"]) == {boss["name"]: "admin"}, "a list with an admin"
    as_boss.action.organization_member_create(id=org["id"], username=helper["name"], role="editor")

    as_boss.action.organization_member_create(id=org["id"], username=helper["name"], role="admin")
    as_boss.action.organization_member_create(id=org["id"], username=boss["name"], role="editor")
    assert _member_names(admin, "organization_show", org["id"]) == {boss["name"]: "editor", helper["name"]: "admin"}
    admin.action.organization_member_delete(id=org["id"], username=boss["name"])
    assert _member_names(admin, "organization_show", org["id"]) == {helper["name"]: "admin"}
    with pytest.raises(ckanapi.ValidationError):
        admin.action.organization_member_delete(id=org["id"], username=helper["name"])


# -- groups --------------------------------------------------------------------------------------

def test_group_update_replaces_the_fields(admin, home, suffix):
    group = admin.action.group_create(name=f"update-group-{suffix}", title="Rivers", description="All rivers",
                                      image_url="https://example.org/river.png")
    pkg = admin.action.package_create(owner_org=home["id"], name=f"update-group-ds-{suffix}",
                                      groups=[{"name": group["name"]}])
    updated = admin.action.group_update(id=group["id"], title="Rivers and lakes")
    assert GROUP_KEYS <= set(updated) and updated["is_organization"] is False and updated["type"] == "group"
    assert (updated["id"], updated["name"], updated["title"]) == (group["id"], group["name"], "Rivers and lakes")
    assert (updated["description"], updated["image_url"]) == ("", ""), "group_update replaces the fields"
    assert admin.action.group_show(id=group["name"])["title"] == "Rivers and lakes"
    assert [g["title"] for g in admin.action.package_show(id=pkg["id"])["groups"]] == ["Rivers and lakes"]


def test_group_delete_removes_the_group_and_keeps_its_datasets(mosu, admin, home, suffix):
    group = admin.action.group_create(name=f"delete-group-{suffix}")
    pkg = admin.action.package_create(owner_org=home["id"], name=f"delete-group-ds-{suffix}",
                                      groups=[{"name": group["name"]}])
    assert [g["name"] for g in admin.action.package_show(id=pkg["id"])["groups"]] == [group["name"]]
    assert admin.action.group_delete(id=group["id"]) is None
    with pytest.raises(ckanapi.NotFound):
        mosu.ckan().action.group_show(id=group["name"])
    assert group["name"] not in admin.action.group_list()
    kept = mosu.ckan().action.package_show(id=pkg["id"])
    assert kept["state"] == "active" and kept["groups"] == []
    assert admin.action.package_search(fq=f"groups:{group['name']}")["count"] == 0


def test_group_member_create_makes_a_member_who_may_add_datasets(mosu, admin, home, suffix):
    user, as_user = _user(mosu, admin, f"joining-{suffix}")
    group = admin.action.group_create(name=f"joining-group-{suffix}")
    pkg = admin.action.package_create(owner_org=home["id"], name=f"joining-ds-{suffix}")
    with pytest.raises(ckanapi.NotAuthorized):
        as_user.action.member_create(id=group["id"], object=pkg["id"], object_type="package", capacity="public")
    made = admin.action.group_member_create(id=group["name"], username=user["name"], role="member")
    assert set(made) == MEMBERSHIP_KEYS
    assert made == {"group_id": group["id"], "table_name": "user", "table_id": user["id"], "capacity": "member"}
    assert _member_names(admin, "group_show", group["id"])[user["name"]] == "member"
    as_user.action.member_create(id=group["id"], object=pkg["id"], object_type="package", capacity="public")
    assert [g["name"] for g in admin.action.package_show(id=pkg["id"])["groups"]] == [group["name"]]
    with pytest.raises(ckanapi.ValidationError):
        admin.action.group_member_create(id=group["id"], username=user["name"], role="editor")  # groups: admin, member


def test_group_member_delete_removes_the_member_and_their_rights(mosu, admin, home, suffix):
    user, as_user = _user(mosu, admin, f"leaving-{suffix}")
    group = admin.action.group_create(name=f"leaving-group-{suffix}")
    first = admin.action.package_create(owner_org=home["id"], name=f"leaving-first-{suffix}")
    second = admin.action.package_create(owner_org=home["id"], name=f"leaving-second-{suffix}")
    admin.action.group_member_create(id=group["id"], username=user["name"], role="member")
    as_user.action.member_create(id=group["id"], object=first["id"], object_type="package", capacity="public")
    assert user["name"] in _member_names(admin, "group_show", group["id"])

    assert admin.action.group_member_delete(id=group["id"], username=user["name"]) is None
    assert user["name"] not in _member_names(admin, "group_show", group["id"])
    with pytest.raises(ckanapi.NotAuthorized):
        as_user.action.member_create(id=group["id"], object=second["id"], object_type="package", capacity="public")
    assert admin.action.package_show(id=second["id"])["groups"] == []
    with pytest.raises(ckanapi.NotFound):
        admin.action.group_member_delete(id=group["id"], username=f"nobody-{suffix}")


def test_group_activity_list_is_the_groups_activity_newest_first(mosu, admin, admin_name, suffix):
    me = admin.action.user_show(id=admin_name)
    group = admin.action.group_create(name=f"activity-group-{suffix}", title="First title")
    admin.action.group_patch(id=group["id"], title="Second title")
    admin.action.group_update(id=group["id"], title="Third title")
    activity = mosu.ckan().action.group_activity_list(id=group["name"])
    assert [(a["activity_type"], a["object_id"], a["user_id"], a["data"]["group"]["title"]) for a in activity] == [
        ("changed group", group["id"], me["id"], "Third title"),
        ("changed group", group["id"], me["id"], "Second title"),
        ("new group", group["id"], me["id"], "First title")]
    assert all(set(a) == {"id", "timestamp", "user_id", "object_id", "activity_type", "data"} for a in activity)
    assert [a["data"]["group"]["title"] for a in
            mosu.ckan().action.group_activity_list(id=group["id"], limit=1, offset=1)] == ["Second title"]
