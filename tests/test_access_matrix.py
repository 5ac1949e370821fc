"""The access matrix (issue 11): every data path × every kind of caller × every dataset state.

In the style of datasette's permission tests, in-process on a real SQLite catalog and a real
SeaweedFS bucket, with real ingested data: each cell calls a path as one caller on one dataset
and says what came back (``ok``, ``not-found``, ``denied``; for lists ``listed`` or ``absent``).
The expected answers come from :func:`expected`, CKAN's rules written plainly here, not from
:mod:`catalog.access.policy`: a change to the policy that changes an answer fails a cell.

Callers: anonymous, a registered user with no role, an organization member, editor and admin,
a dataset collaborator with capacity member and editor, a sysadmin. Datasets, all in one
organization: public, private, deleted and draft, each with an ingested CSV, a tag of its own
and a group of its own. Built once for the module; a cell takes milliseconds.
"""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from catalog.access import policy
from catalog.access.context import Actor, Context
from catalog.actions import call, run_checked
from catalog.actions.datastore import datastore_export
from catalog.actions.sql import datastore_sql_export
from catalog.core.errors import NotAuthorized, NotFound
from catalog.db.models import Package, User
from catalog.platform import Platform
from catalog.versions.uploads import Upload
from ingest.worker import Worker
from tests.conftest import s3_settings

CALLERS = ("anonymous", "registered", "member", "editor", "admin", "collab-member", "collab-editor", "sysadmin")
STATES = ("public", "private", "deleted", "draft")

# -- CKAN's rules, written plainly ---------------------------------------------------------------
# Who may see a dataset in each state: everyone sees a public one; a private one its organization's
# members and its collaborators; a deleted or draft one only those who may edit it.
EDITORS = {"editor", "admin", "collab-editor", "sysadmin"}  # in every state
READERS = {
    "public": set(CALLERS),
    "private": {"member", "editor", "admin", "collab-member", "collab-editor", "sysadmin"},
    "deleted": EDITORS,
    "draft": EDITORS,
}
MANAGERS = {"admin", "sysadmin"}  # the organization's admins: members and collaborators
READ_PATHS = ("package_show", "resource_show", "package_activity_list", "datastore_search", "datastore_info",
              "datastore_export", "resource_download", "quality_report_show", "resource_version_list")
SQL_PATHS = ("datastore_search_sql", "datastore_sql_export")
LIST_PATHS = ("package_search", "package_list", "tag_list", "group_show_packages", "group_package_count",
              "organization_show_packages", "tag_show_packages", "user_show_datasets")
WRITE_PATHS = ("package_patch", "resource_create", "package_collaborator_create")


def expected(path: str, who: str, state: str) -> str:
    reader = who in READERS[state]
    active = state in ("public", "private")
    if path in READ_PATHS:
        return "ok" if reader else "not-found"  # existence is not leaked: as if it did not exist
    if path in SQL_PATHS:
        return "ok" if reader else "denied"  # one refusal for every table one may not read
    if path == "package_search":  # search lists drafts (include_drafts) but never deleted datasets
        return "listed" if reader and state != "deleted" else "absent"
    if path in ("package_list", "group_show_packages", "organization_show_packages", "tag_show_packages",
                "user_show_datasets"):
        return "listed" if reader and active else "absent"
    if path in ("tag_list", "group_package_count"):  # whoever asks: public datasets only
        return "listed" if state == "public" else "absent"
    if path == "resource_create" and who == "anonymous":
        return "denied"  # "you must be logged in" comes first
    allowed = who in (MANAGERS if path == "package_collaborator_create" else EDITORS)
    return "ok" if allowed else "denied" if reader else "not-found"


# -- the world ------------------------------------------------------------------------------------

CSV = b"id,city,n\n1,Oslo,3\n2,Lima,4\n"


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory):
    platform = Platform.open(s3_settings(s3, tmp_path_factory.mktemp("matrix") / "data"))
    platform.store.ensure_bucket()
    site = Context(platform=platform, actor=Actor.site())
    names = {who: f"mx-{who}" for who in CALLERS if who != "anonymous"}
    for who, name in [*names.items(), ("other", "mx-other")]:
        call(site, "user_create", {"name": name, "email": f"{name}@example.org", "password": "mx-password",
                                   "sysadmin": who == "sysadmin"})
    with platform.read() as s:
        users = {u.name: Actor.of(u) for u in s.scalars(select(User))}
    site = Context(platform=platform, actor=users[names["sysadmin"]])  # a user: the datasets' creator
    call(site, "organization_create", {"name": "mx-org", "users": [
        {"name": names["member"], "capacity": "member"}, {"name": names["editor"], "capacity": "editor"},
        {"name": names["admin"], "capacity": "admin"}]})
    datasets = {}
    for state in STATES:
        name = f"mx-{state}"
        call(site, "group_create", {"name": f"mx-g-{state}"})
        pkg = call(site, "package_create", {"name": name, "owner_org": "mx-org", "private": state == "private",
                                            "state": "draft" if state == "draft" else "active",
                                            "tags": [{"name": f"mx-tag-{state}"}],
                                            "groups": [{"name": f"mx-g-{state}"}]})
        for who, capacity in (("collab-member", "member"), ("collab-editor", "editor")):
            call(site, "package_collaborator_create", {"id": name, "user_id": names[who], "capacity": capacity})
        res = call(site, "resource_create", {"package_id": name, "name": "table",
                                             "upload": Upload(io.BytesIO(CSV), "table.csv", "text/csv")})
        datasets[state] = {"id": pkg["id"], "name": name, "resource": res["id"], "state": state,
                           "tag": f"mx-tag-{state}", "group": f"mx-g-{state}", "org": "mx-org"}
    while Worker(platform).run_once():
        pass
    call(site, "package_delete", {"id": "mx-deleted"})
    with platform.read() as s:
        for ds in datasets.values():
            ds["creator"] = s.get(Package, ds["id"]).creator_user_id
            assert s.get(Package, ds["id"]).state == {"deleted": "deleted", "draft": "draft"}.get(ds["state"], "active")
    actors = {who: users[name] for who, name in names.items()}
    actors["anonymous"] = None
    yield {"platform": platform, "actors": actors, "datasets": datasets, "site": site}
    platform.close()


def _drain(ctx: Context, name: str, export_of, data: dict) -> str:
    export = run_checked(ctx, name, export_of, data)
    assert b"Oslo" in b"".join(export.chunks)  # drained: the query slot is freed
    return "ok"


def _listed(found: bool) -> str:
    return "listed" if found else "absent"


def _run(path: str, ctx: Context, ds: dict) -> str:
    rid, pid, name = ds["resource"], ds["id"], ds["name"]
    if path in ("package_show", "package_activity_list"):
        call(ctx, path, {"id": name})
    elif path in ("resource_show", "datastore_info", "quality_report_show", "resource_version_list"):
        call(ctx, path, {"id": rid})
    elif path == "datastore_search":
        assert call(ctx, path, {"resource_id": rid})["total"] == 2
    elif path == "datastore_search_sql":
        assert call(ctx, path, {"sql": f'SELECT count(*) AS n FROM "{rid}"'})["records"] == [{"n": 2}]
    elif path == "datastore_export":
        return _drain(ctx, path, datastore_export, {"resource_id": rid})
    elif path == "datastore_sql_export":
        return _drain(ctx, path, datastore_sql_export, {"sql": f'SELECT city FROM "{rid}"'})
    elif path == "resource_download":
        assert call(ctx, path, {"id": rid})["format"] == "original"
    elif path == "package_search":
        found = call(ctx, path, {"q": "*:*", "rows": 1000, "include_private": True, "include_drafts": True})
        return _listed(pid in {p["id"] for p in found["results"]})
    elif path == "package_list":
        return _listed(name in call(ctx, path, {"include_private": True}))
    elif path == "tag_list":
        return _listed(ds["tag"] in call(ctx, path, {}))
    elif path == "tag_show_packages":
        try:
            shown = call(ctx, "tag_show", {"id": ds["tag"], "include_datasets": True})
        except NotFound:
            return "absent"
        return _listed(pid in {p["id"] for p in shown["packages"]})
    elif path == "group_show_packages":
        shown = call(ctx, "group_show", {"id": ds["group"], "include_datasets": True})
        return _listed(pid in {p["id"] for p in shown["packages"]})
    elif path == "organization_show_packages":
        shown = call(ctx, "organization_show", {"id": ds["org"], "include_datasets": True})
        return _listed(pid in {p["id"] for p in shown["packages"]})
    elif path == "group_package_count":
        return _listed(call(ctx, "group_show", {"id": ds["group"]})["package_count"] == 1)
    elif path == "user_show_datasets":
        shown = call(ctx, "user_show", {"id": ds["creator"], "include_datasets": True})
        return _listed(pid in {p["id"] for p in shown["datasets"]})
    elif path == "package_patch":
        call(ctx, path, {"id": pid, "notes": "patched"})
    elif path == "resource_create":
        call(ctx, path, {"package_id": pid, "url": "https://example.org/more.csv"})
    elif path == "package_collaborator_create":  # a user who is none of the callers: no cell changes
        call(ctx, path, {"id": pid, "user_id": ds.get("other", "mx-other"), "capacity": "member"})
    else:
        raise AssertionError(path)
    return "ok"


def outcome(path: str, ctx: Context, ds: dict) -> str:
    try:
        return _run(path, ctx, ds)
    except NotFound:
        return "not-found"
    except NotAuthorized:
        return "denied"


PATHS = READ_PATHS + SQL_PATHS + LIST_PATHS + WRITE_PATHS
CELLS = [(path, who, state) for path in PATHS for who in CALLERS for state in STATES]


@pytest.mark.parametrize("path,who,state", CELLS, ids=[f"{p}-{w}-{s}" for p, w, s in CELLS])
def test_access_matrix(world, path, who, state):
    ctx = Context(platform=world["platform"], actor=world["actors"][who], client=f"mx-{who}")
    assert outcome(path, ctx, world["datasets"][state]) == expected(path, who, state)


@pytest.mark.parametrize("who", CALLERS)
def test_adding_members_to_the_organization_is_for_its_admins(world, who):
    """``member_create`` of a user: ``manage-members`` on the organization (no dataset state involved)."""
    ctx = Context(platform=world["platform"], actor=world["actors"][who])
    try:
        call(ctx, "member_create", {"id": "mx-org", "object": "mx-other", "object_type": "user", "capacity": "member"})
        got = "ok"
    except NotAuthorized:
        got = "denied"
    assert got == ("ok" if who in MANAGERS else "denied")


def assert_one_rule(platform: Platform, actor: Actor | None, package_ids: list[str]) -> int:
    """For every permission, ``allowed`` on each dataset agrees with ``datasets_where`` (lists) and,
    for the permissions on metadata, with ``dataset_scope`` (the search index's masks). Returns the
    number of (permission, dataset) pairs compared."""
    compared = 0
    with platform.read() as s:
        for perm in policy.Permission:
            listed = set(s.scalars(select(Package.id).where(policy.datasets_where(actor, perm))))
            scope = None if perm in policy.DATA_PERMISSIONS else policy.dataset_scope(s, actor, perm)
            for pid in package_ids:
                pkg = s.get(Package, pid)
                assert policy.allowed(s, actor, perm, pkg) == (pkg.id in listed), (perm, pkg.name)
                compared += 1
                if scope is None:  # the index's masks are for seeing datasets, not their rows
                    continue
                active = pkg.state == "active"
                in_scope = (scope.everything or (active and scope.public and not pkg.private)
                            or (active and (pkg.owner_org in scope.org_ids or pkg.id in scope.package_ids))
                            or pkg.owner_org in scope.any_state_org_ids or pkg.id in scope.package_ids
                            and active or pkg.id in scope.any_state_package_ids)
                assert (pkg.id in listed) == in_scope, (perm, pkg.name)
    return compared


@pytest.mark.parametrize("who", CALLERS)
def test_lists_and_reads_come_from_one_rule(world, who):
    """For every permission, ``allowed`` on each dataset agrees with ``datasets_where`` (lists) and
    with ``dataset_scope`` (the search index's masks): a list can never show what a read refuses."""
    assert_one_rule(world["platform"], world["actors"][who], [ds["id"] for ds in world["datasets"].values()])
