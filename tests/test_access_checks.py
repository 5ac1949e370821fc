"""Every action checks a permission, and the one it should (issue 11, "one choke point").

``actions.call`` records the checks an action makes through :mod:`catalog.access.policy` and
refuses an action that returns without any (CKAN's auth audit). Here each registered action is
called once, in-process on a real SQLite catalog and SeaweedFS bucket, with minimal valid
parameters (as a sysadmin, who gets furthest into every action), and the checks it recorded must
include the expected ones: ``datastore_search`` checks ``read-data`` on its dataset, ``package_patch``
``edit-dataset``, ``member_create`` of a user ``manage-members`` on the organization...
A new action without a row in :data:`EXPECTED` fails :func:`test_every_action_has_an_expected_check`.
"""
from __future__ import annotations

import io
import logging

import pytest
import requests

from catalog.access import policy
from catalog.access.context import Actor, Context
from catalog.actions import _REGISTRY, UncheckedAction, action_names, call, run_checked
from catalog.cli.app import create_app
from catalog.core.errors import MosuError
from catalog.db.models import User
from catalog.platform import Platform
from catalog.versions.uploads import Upload
from ingest.worker import Worker
from tests.conftest import s3_settings

CSV = b"id,city,n\n1,Oslo,3\n2,Lima,4\n"


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory):
    platform = Platform.open(s3_settings(s3, tmp_path_factory.mktemp("checks") / "data"))
    platform.store.ensure_bucket()
    site = Context(platform=platform, actor=Actor.site())
    for name, sysadmin in (("chk-sys", True), ("chk-user", False)):
        call(site, "user_create", {"name": name, "email": f"{name}@example.org", "password": "chk-password",
                                   "sysadmin": sysadmin})
    with platform.read() as s:
        users = {u.name: u for u in s.query(User)}
        sysadmin = Context(platform=platform, actor=Actor.of(users["chk-sys"]))
        ids = {"sys": users["chk-sys"].id, "user": users["chk-user"].id}
    ids["org"] = call(sysadmin, "organization_create", {"name": "chk-org"})["id"]
    ids["org_del"] = call(sysadmin, "organization_create", {"name": "chk-org-del"})["id"]
    ids["group"] = call(sysadmin, "group_create", {"name": "chk-group"})["id"]
    ids["group_del"] = call(sysadmin, "group_create", {"name": "chk-group-del"})["id"]
    for name in ("chk-ds", "chk-del", "chk-purge", "chk-upd"):
        ids[name] = call(sysadmin, "package_create", {"name": name, "owner_org": "chk-org",
                                                      "tags": [{"name": "chk-tag"}]})["id"]
    ids["res"] = call(sysadmin, "resource_create", {"package_id": "chk-ds", "name": "table",
                                                    "upload": Upload(io.BytesIO(CSV), "table.csv", "text/csv")})["id"]
    ids["link"] = call(sysadmin, "resource_create", {"package_id": "chk-ds", "url": "https://example.org/a"})["id"]
    ids["link_del"] = call(sysadmin, "resource_create", {"package_id": "chk-ds", "url": "https://example.org/b"})["id"]
    while Worker(platform).run_once():
        pass
    # Controlled access: an agreement, restricted datasets, pending requests to decide, a grant to revoke.
    ids["agreement"] = call(sysadmin, "agreement_create", {"owner_org": "chk-org", "title": "Terms",
                                                           "text": "Use it well."})["id"]
    for name in ("chk-restricted", "chk-r-approve", "chk-r-deny", "chk-r-withdraw", "chk-r-show"):
        ids[name] = call(sysadmin, "package_create", {"name": name, "owner_org": "chk-org",
                                                      "access_level": "restricted",
                                                      "agreement_id": ids["agreement"]})["id"]
        if name != "chk-restricted":
            ids[f"req_{name[6:]}"] = call(sysadmin, "access_request_create", {"package_id": name,
                                                                              "purpose": "checks"})["id"]
    ids["grant"] = call(sysadmin, "access_grant_create", {"package_id": "chk-restricted", "user_id": "chk-user",
                                                          "days": 30})["id"]
    call(sysadmin, "api_token_create", {"user": "chk-user", "name": "to-revoke"})
    ids["jti"] = call(sysadmin, "api_token_list", {"user_id": "chk-user"})[0]["id"]
    for key in ("abort", "part"):
        ids[f"upload_{key}"] = call(sysadmin, "resource_upload_start", {"package_id": "chk-ds", "size": 10,
                                                                        "filename": f"{key}.csv"})["upload_id"]
    ids["upload_complete"] = call(sysadmin, "resource_upload_start", {"id": ids["res"], "size": len(CSV),
                                                                      "filename": "table.csv"})["upload_id"]
    url = call(sysadmin, "resource_upload_part", {"upload_id": ids["upload_complete"], "part_number": 1})["url"]
    assert requests.put(url, data=CSV, timeout=60).status_code == 200
    yield {"platform": platform, "ctx": sysadmin, "ids": ids}
    platform.close()


VIEW, READ, EDIT, ACCESS = "view-dataset", "read-data", "edit-dataset", "manage-access"
MEMBERS, ACCOUNT, SYSADMIN = "manage-members", "manage-account", "sysadmin"
DS, ORG, GROUP, USER = "package:{chk-ds}", "organization:{org}", "group:{group}", "user:{user}"
RDS, SELF = "package:{chk-restricted}", "user:{sys}"
LIST = "datasets"
ANY = None  # a public declaration: any text

# action: (parameters, the checks it must record). Values in braces are the world's ids.
EXPECTED: dict[str, tuple[dict, set[tuple[str, str | None]]]] = {
    "access_grant_create": ({"package_id": "chk-restricted", "user_id": "chk-user"}, {(ACCESS, RDS)}),
    "access_grant_list": ({}, {(ACCOUNT, SELF)}),
    "access_grant_revoke": ({"id": "{grant}", "reason": "checked"}, {(ACCESS, RDS)}),
    "access_request_approve": ({"id": "{req_approve}"}, {(ACCESS, "package:{chk-r-approve}")}),
    "access_request_create": ({"package_id": "chk-restricted", "purpose": "checking"}, {(VIEW, RDS)}),
    "access_request_deny": ({"id": "{req_deny}", "reason": "checked"}, {(ACCESS, "package:{chk-r-deny}")}),
    "access_request_list": ({"package_id": "chk-restricted"}, {(ACCESS, RDS)}),
    "access_request_show": ({"id": "{req_show}"}, {(ACCOUNT, SELF)}),
    "access_request_withdraw": ({"id": "{req_withdraw}"}, {(ACCOUNT, SELF)}),
    "agreement_accept": ({"package_id": "chk-restricted"}, {(VIEW, RDS)}),
    "agreement_create": ({"owner_org": "chk-org", "title": "Checked", "text": "Terms"}, {(ACCESS, ORG)}),
    "agreement_list": ({"owner_org": "chk-org"}, {("public", ANY)}),
    "agreement_show": ({"id": "{agreement}"}, {("public", ANY)}),
    "agreement_update": ({"id": "{agreement}", "text": "Checked terms"}, {(ACCESS, ORG)}),
    "audit_event_list": ({"dataset": "chk-ds"}, {("read-audit", "site")}),
    "audit_report_dataset": ({"id": "chk-ds"}, {("read-audit", "site")}),
    "audit_report_denials": ({}, {("read-audit", "site")}),
    "audit_report_grants": ({"state": "active"}, {("read-audit", "site")}),
    "audit_report_user": ({"id": "chk-user"}, {("read-audit", "site")}),
    "audit_summary": ({}, {("read-audit", "site")}),
    "api_token_create": ({"user": "chk-user", "name": "t"}, {(ACCOUNT, USER)}),
    "api_token_list": ({"user_id": "chk-user"}, {(ACCOUNT, USER)}),
    "api_token_revoke": ({"jti": "{jti}"}, {(ACCOUNT, USER)}),
    "current_package_list_with_resources": ({}, {(VIEW, LIST)}),
    "dataset_purge": ({"id": "chk-purge"}, {(SYSADMIN, "site")}),
    "datastore_info": ({"id": "{res}"}, {(READ, DS)}),
    "datastore_search": ({"resource_id": "{res}"}, {(READ, DS)}),
    "datastore_search_sql": ({"sql": 'SELECT * FROM "{res}"'}, {(READ, DS)}),
    "group_activity_list": ({"id": "chk-group"}, {("public", ANY)}),
    "group_create": ({"name": "chk-group-new"}, {(SYSADMIN, "site")}),
    "group_delete": ({"id": "chk-group-del"}, {(MEMBERS, "group:{group_del}")}),
    "group_list": ({"all_fields": True, "include_users": True}, {("public", ANY), (VIEW, LIST)}),
    "group_member_create": ({"id": "chk-group", "username": "chk-user", "role": "member"}, {(MEMBERS, GROUP)}),
    "group_member_delete": ({"id": "chk-group", "username": "chk-user"}, {(MEMBERS, GROUP)}),
    "group_patch": ({"id": "chk-group", "title": "Checked"}, {(MEMBERS, GROUP)}),
    "group_show": ({"id": "chk-group", "include_datasets": True}, {("public", ANY), (VIEW, LIST),
                                                                  ("view-members", GROUP)}),
    "group_update": ({"id": "chk-group", "name": "chk-group", "title": "Checked"}, {(MEMBERS, GROUP)}),
    "help_show": ({"name": "status_show"}, {("public", ANY)}),
    "ingest_status_show": ({"id": "{res}"}, {(VIEW, DS)}),
    "license_list": ({}, {("public", ANY)}),
    "member_create": ({"id": "chk-group", "object": "chk-ds", "object_type": "package"},
                      {(EDIT, GROUP), (VIEW, DS)}),
    "member_roles_list": ({}, {("public", ANY)}),
    "notification_list": ({"unread_only": True}, {(ACCOUNT, "user:{sys}")}),
    "notification_mark_read": ({"all": True}, {(ACCOUNT, "user:{sys}")}),
    "organization_activity_list": ({"id": "chk-org"}, {("public", ANY)}),
    "organization_create": ({"name": "chk-org-new"}, {(SYSADMIN, "site")}),
    "organization_delete": ({"id": "chk-org-del"}, {(MEMBERS, "organization:{org_del}")}),
    "organization_list": ({}, {("public", ANY), (VIEW, LIST)}),
    "organization_list_for_user": ({"id": "chk-user"}, {(ACCOUNT, USER)}),
    "organization_member_create": ({"id": "chk-org", "username": "chk-user", "role": "editor"}, {(MEMBERS, ORG)}),
    "organization_member_delete": ({"id": "chk-org", "username": "chk-user"}, {(MEMBERS, ORG)}),
    "organization_patch": ({"id": "chk-org", "title": "Checked"}, {(MEMBERS, ORG)}),
    "organization_show": ({"id": "chk-org", "include_datasets": True}, {("public", ANY), (VIEW, LIST),
                                                                       ("view-members", ORG)}),
    "organization_update": ({"id": "chk-org", "name": "chk-org"}, {(MEMBERS, ORG)}),
    "package_activity_list": ({"id": "chk-ds"}, {(VIEW, DS)}),
    "package_collaborator_create": ({"id": "chk-ds", "user_id": "chk-user", "capacity": "member"}, {(MEMBERS, DS)}),
    "package_collaborator_delete": ({"id": "chk-ds", "user_id": "chk-user"}, {(MEMBERS, DS)}),
    "package_collaborator_list": ({"id": "chk-ds"}, {(MEMBERS, DS)}),
    "package_collaborator_list_for_user": ({"id": "chk-user"}, {(ACCOUNT, USER)}),
    "package_create": ({"name": "chk-new", "owner_org": "chk-org"}, {(EDIT, ORG)}),
    "package_delete": ({"id": "chk-del"}, {(EDIT, "package:{chk-del}")}),
    "package_list": ({}, {(VIEW, LIST)}),
    "package_patch": ({"id": "chk-ds", "notes": "checked"}, {(EDIT, DS)}),
    "package_search": ({"include_private": True}, {(VIEW, LIST)}),
    "package_show": ({"id": "chk-ds"}, {(VIEW, DS), (EDIT, DS)}),
    "package_update": ({"id": "chk-upd", "name": "chk-upd", "owner_org": "chk-org"}, {(EDIT, "package:{chk-upd}")}),
    "quality_pii_acknowledge": ({"id": "{res}"}, {(EDIT, DS)}),  # then refused: nothing to acknowledge
    "quality_report_show": ({"id": "{res}"}, {(READ, DS)}),
    "quality_suite_show": ({"id": "{res}"}, {(READ, DS)}),
    "quality_suite_update": ({"id": "{res}", "suite": {"expectations": []}}, {(EDIT, DS)}),
    "resource_create": ({"package_id": "chk-ds", "url": "https://example.org/c"}, {(EDIT, DS)}),
    "resource_delete": ({"id": "{link_del}"}, {(EDIT, DS)}),
    "resource_download": ({"id": "{res}"}, {("download-original", DS)}),  # whole files: asked first
    "resource_patch": ({"id": "{link}", "description": "checked"}, {(EDIT, DS)}),
    "resource_show": ({"id": "{res}"}, {(VIEW, DS)}),
    "resource_update": ({"id": "{link}", "url": "https://example.org/d"}, {(EDIT, DS)}),
    "resource_upload_abort": ({"upload_id": "{upload_abort}"}, {(ACCOUNT, "user:{sys}")}),
    "resource_upload_complete": ({"upload_id": "{upload_complete}"}, {(ACCOUNT, "user:{sys}"), (EDIT, DS)}),
    "resource_upload_part": ({"upload_id": "{upload_part}", "part_number": 1}, {(ACCOUNT, "user:{sys}")}),
    "resource_upload_show": ({"upload_id": "{upload_part}"}, {(ACCOUNT, "user:{sys}")}),
    "resource_upload_check": ({"package_id": "chk-ds", "size": 10}, {(EDIT, DS)}),
    "resource_upload_start": ({"package_id": "chk-ds", "size": 10}, {(EDIT, DS)}),
    "resource_version_list": ({"id": "{res}"}, {(VIEW, DS)}),
    "resource_view_list": ({"id": "{res}"}, {(VIEW, DS)}),
    "status_show": ({}, {("public", ANY)}),
    "tag_list": ({}, {(VIEW, LIST)}),
    "tag_show": ({"id": "chk-tag", "include_datasets": True}, {(VIEW, LIST)}),
    "user_create": ({"name": "chk-created", "password": "chk-password"}, {(SYSADMIN, "site")}),
    "user_list": ({"q": "chk"}, {("public", ANY)}),
    "user_show": ({"id": "chk-user", "include_datasets": True}, {("public", ANY), (ACCOUNT, USER), (VIEW, LIST)}),
    "user_update": ({"id": "chk-user", "fullname": "Checked"}, {(ACCOUNT, USER)}),
}


# What an action needs in place before it is called (made as the sysadmin, outside the recording):
# the tests run in random order, so a delete must not count on its create having run first.
PREPARE: dict[str, tuple[str, dict]] = {
    "package_collaborator_delete": ("package_collaborator_create",
                                    {"id": "chk-ds", "user_id": "chk-user", "capacity": "member"}),
    "group_member_delete": ("group_member_create", {"id": "chk-group", "username": "chk-user", "role": "member"}),
    "organization_member_delete": ("organization_member_create",
                                   {"id": "chk-org", "username": "chk-user", "role": "editor"}),
}


def _fill(value, ids: dict[str, str]):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def test_every_action_has_an_expected_check():
    assert sorted(EXPECTED) == action_names()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_action_records_the_permission_it_needs(world, name):
    params, expected = EXPECTED[name]
    ids = world["ids"]
    if name in PREPARE:
        before, before_params = PREPARE[name]
        call(world["ctx"], before, _fill(before_params, ids))
    with policy.recording() as checks:
        try:
            call(world["ctx"], name, _fill(params, ids))
        except MosuError as exc:  # a few are refused after their check (nothing to acknowledge)
            assert name in ("quality_pii_acknowledge", "quality_suite_update"), f"{name}: {exc!r}"
    made = {(c.permission, c.object) for c in checks}
    for perm, obj in expected:
        if obj is None:
            assert any(p == perm for p, _ in made), f"{name} recorded {made}, not {perm}"
        else:
            assert (perm, _fill(obj, ids)) in made, f"{name} recorded {made}, not {(perm, _fill(obj, ids))}"
    assert all(c.allowed for c in checks if (c.permission, c.object) in
               {(p, _fill(o, ids)) for p, o in expected if o}), "a sysadmin is allowed everything"


def test_a_query_over_no_dataset_is_declared_open(world):
    """``SELECT * FROM range(3)`` reads no dataset: it checks nothing, and says so (it answered 500)."""
    with policy.recording() as checks:
        result = call(Context(platform=world["platform"], actor=None), "datastore_search_sql",
                      {"sql": "SELECT * FROM range(3)"})
    assert len(result["records"]) == 3
    assert [c.permission for c in checks] == ["public"]


def test_an_action_that_returns_without_a_check_is_refused(world):
    ctx = world["ctx"]
    with pytest.raises(UncheckedAction, match="leaky returned without checking a permission"):
        run_checked(ctx, "leaky", lambda c, d: {"rows": ["secret"]}, {})
    assert run_checked(ctx, "declared", lambda c, d: policy.public("a test") or "ok", {}) == "ok"


def test_an_unchecked_action_answers_500_over_http(world):
    """Through the Action API as a client sees it: a 500 that hides the cause, never the data."""
    _REGISTRY["leaky_probe"] = lambda c, d: {"rows": ["secret"]}
    try:
        response = create_app(platform=world["platform"]).test_client().get("/api/3/action/leaky_probe")
    finally:
        del _REGISTRY["leaky_probe"]
    assert response.status_code == 500
    assert b"secret" not in response.get_data() and response.get_json()["success"] is False


def test_with_strict_checks_off_an_unchecked_action_is_logged_and_answered(world, caplog):
    lenient = Platform.open(world["platform"].settings.replace(strict_permission_checks=False))
    try:
        ctx = Context(platform=lenient, actor=None)
        with caplog.at_level(logging.ERROR, logger="catalog.actions"):
            assert run_checked(ctx, "leaky", lambda c, d: "answer", {}) == "answer"
    finally:
        lenient.close()
    assert "leaky returned without checking a permission" in caplog.text
