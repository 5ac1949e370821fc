"""What compliance officers use (issue 13): the auditor role, audit_event_list and the four reports.

In-process on a real SQLite catalog and SeaweedFS bucket, every call through the web app (Flask's
test client, API tokens, the real dispatch and error mapping); then end to end over HTTP to
``mosu up`` with ckanapi, requests and the ``mosu audit`` command. Each test makes its own users
(and datasets where it counts), performs reads and refused calls, and computes what the report
must say from what it did, never from the report's own queries.

Refused calls: the refusal event is written where errors become HTTP answers (helper B2's part of
issue 13). :meth:`Caller.refused` makes the real refused call; where no refusal event was written
for it (before that part is merged) it writes the event that part writes, through
:func:`catalog.records.audit.record`, so the reports are tested either way.
"""
from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ckanapi
import pytest
import requests
from sqlalchemy import func, select, update

from catalog.access import policy
from catalog.access.context import Actor, Context
from catalog.actions import call
from catalog.cli.app import create_app
from catalog.db.models import AccessGrant, AuditEvent, User, utcnow
from catalog.platform import Platform
from catalog.versions.uploads import Upload
from ingest.worker import Worker
from tests.conftest import s3_settings, wait_for_ingest

CSV = b"id,city\n1,Oslo\n2,Lima\n3,Pune\n4,Riga\n5,Baku\n"
ACTIONS = ("audit_event_list", "audit_report_dataset", "audit_report_user", "audit_report_grants",
           "audit_report_denials")


@dataclass
class Caller:
    """A user (or anonymous) calling the web app with an API token."""

    world: "World"
    name: str | None
    token: str | None
    id: str | None = None

    def post(self, action: str, **data: Any):
        headers = {"Authorization": self.token} if self.token else {}
        return self.world.web.post(f"/api/3/action/{action}", json=data, headers=headers)

    def ok(self, action: str, **data: Any) -> Any:
        got = self.post(action, **data)
        assert got.status_code == 200, (action, got.status_code, got.get_json())
        return got.get_json()["result"]

    def status(self, action: str, **data: Any) -> int:
        return self.post(action, **data).status_code

    def refused(self, action: str, package: dict, **data: Any) -> int:
        """Make a call that must be refused (403 or 404) and see that one refusal event names it."""
        before = self.world.last_seq()
        got = self.post(action, **data)
        assert got.status_code in (403, 404), (action, got.status_code, got.get_json())
        with self.world.platform.read() as s:
            written = s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.seq > before, AuditEvent.outcome == "refused"))
        assert written == 1, f"{action} refused once, {written} refusal events"
        return got.status_code


@dataclass
class World:
    platform: Platform
    site: Context
    web: Any
    users: dict[str, Caller]
    orgs: dict[str, str]
    datasets: dict[str, dict]

    def last_seq(self) -> int:
        with self.platform.read() as s:
            return s.scalar(select(func.max(AuditEvent.seq))) or 0

    def user(self, prefix: str, **fields: Any) -> Caller:
        """A new user with a token (unique name), e.g. ``auditor=True``."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        made = call(self.site, "user_create", {"name": name, "email": f"{name}@example.org", **fields})
        token = call(self.site, "api_token_create", {"user": name, "name": "t"})["token"]
        return Caller(self, name, token, made["id"])

    def dataset(self, org: str, prefix: str, **fields: Any) -> dict:
        """A new dataset of ``org`` with one ingested resource (``resource_id`` in the answer)."""
        pkg = call(self.site, "package_create", {"name": f"{prefix}-{uuid.uuid4().hex[:6]}", "owner_org": org,
                                                 **fields})
        res = call(self.site, "resource_create", {"package_id": pkg["id"], "name": "cities",
                                                  "upload": Upload(io.BytesIO(CSV), "cities.csv", "text/csv")})
        while Worker(self.platform).run_once():
            pass
        return {**pkg, "resource_id": res["id"]}


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory) -> World:
    platform = Platform.open(s3_settings(s3, tmp_path_factory.mktemp("reports") / "data",
                                         audit_refusals_per_second=0))  # every refusal recorded one by one
    platform.store.ensure_bucket()
    site = Context(platform=platform, actor=Actor.site())
    w = World(platform, site, create_app(platform=platform).test_client(), {}, {}, {})
    w.users["anonymous"] = Caller(w, None, None)
    for role, fields in (("sysadmin", {"sysadmin": True}), ("auditor", {"auditor": True}), ("admin", {}),
                         ("editor", {}), ("member", {}), ("other-admin", {}), ("plain", {})):
        w.users[role] = w.user(f"ar-{role}", **fields)
    for org, members in (("a", ("admin", "editor", "member")), ("b", ("other-admin",))):
        users = [{"name": w.users[m].name, "capacity": m if m in ("editor", "member") else "admin"} for m in members]
        w.orgs[org] = call(site, "organization_create", {"name": f"ar-org-{org}-{uuid.uuid4().hex[:6]}",
                                                         "users": users})["id"]
    for name, org, fields in (("open", "a", {}), ("restricted", "a", {"access_level": "restricted"}),
                              ("registered", "a", {"access_level": "registered"}),
                              ("private", "a", {"access_level": "restricted", "private": True}),
                              ("b-open", "b", {})):
        w.datasets[name] = w.dataset(w.orgs[org], f"ar-{name}", **fields)
    yield w
    platform.close()


def _since(world: World) -> str:
    """A lower bound on the time of every event written from now on (the writer's clock: this process's)."""
    return utcnow().isoformat()


def _preview(caller: Caller, ds: dict, limit: int) -> int:
    return len(caller.ok("datastore_search", resource_id=ds["resource_id"], limit=limit)["records"])


def _query(caller: Caller, ds: dict, where: str) -> int:
    sql = f'SELECT * FROM "{ds["resource_id"]}" WHERE {where}'
    return len(caller.ok("datastore_search_sql", sql=sql)["records"])


# -- the auditor role ----------------------------------------------------------------------------

def test_only_a_sysadmin_makes_an_auditor_and_only_they_and_the_user_see_it(world):
    sysadmin, plain = world.users["sysadmin"], world.users["plain"]
    user = world.user("ar-becomes")
    assert user.ok("user_show", id=user.name)["auditor"] is False
    assert user.status("user_update", id=user.name, auditor=True) == 403, "nobody makes themselves an auditor"
    assert world.users["admin"].status("user_update", id=user.name, auditor=True) == 403
    assert user.ok("user_show", id=user.name)["auditor"] is False
    assert sysadmin.ok("user_update", id=user.name, auditor=True)["auditor"] is True
    assert user.ok("user_show", id=user.name)["auditor"] is True
    assert sysadmin.ok("user_show", id=user.name)["auditor"] is True
    assert "auditor" not in plain.ok("user_show", id=user.name), "who audits is not everyone's business"
    assert "auditor" not in world.users["anonymous"].ok("user_show", id=user.name)
    assert user.status("user_update", id=user.name, auditor=False) == 403, "nor drops the role themselves"
    assert sysadmin.ok("user_update", id=user.name, auditor=False)["auditor"] is False
    with world.platform.read() as s:
        assert s.scalar(select(User.auditor).where(User.name == user.name)) is False


def test_the_auditor_role_holds_no_data_permission():
    assert policy.GRANTS["auditor"] == {policy.Permission.READ_AUDIT}
    assert not policy.GRANTS["auditor"] & policy.DATA_PERMISSIONS


DATA_CALLS = {
    "datastore_search": lambda ds: ("POST", "/api/3/action/datastore_search", {"resource_id": ds["resource_id"]}),
    "datastore_search_sql": lambda ds: ("POST", "/api/3/action/datastore_search_sql",
                                        {"sql": f'SELECT * FROM "{ds["resource_id"]}"'}),
    "resource_download": lambda ds: ("POST", "/api/3/action/resource_download", {"id": ds["resource_id"]}),
    "datastore_export": lambda ds: ("GET", f"/datastore/dump/{ds['resource_id']}", None),
    "datastore_sql_export": lambda ds: ("GET", "/datastore/dump_sql",
                                        {"sql": f'SELECT * FROM "{ds["resource_id"]}"'}),
}


@pytest.mark.parametrize("dataset", ["restricted", "registered", "private"])
@pytest.mark.parametrize("path", sorted(DATA_CALLS))
def test_an_auditor_reads_no_data_refused_as_a_plain_user_is(world, dataset, path):
    # A streamed export left unread by an earlier test holds its request context; collected during
    # one of this test's requests it would pop that request's context. Close such leftovers here.
    gc.collect()
    ds = world.datasets[dataset]
    answers = {}
    for who in ("auditor", "plain", "sysadmin"):
        method, url, params = DATA_CALLS[path](ds)
        headers = {"Authorization": world.users[who].token}
        got = (world.web.post(url, json=params, headers=headers) if method == "POST"
               else world.web.get(url, query_string=params, headers=headers))
        answers[who] = (got.status_code, got.get_json()["error"]["message"] if got.status_code >= 400 else None)
        got.get_data()  # a streamed export holds its request context until it is read and closed
        got.close()
    assert answers["sysadmin"][0] == 200, "the call works for whoever may read"
    assert answers["auditor"][0] in (403, 404)
    assert answers["auditor"] == answers["plain"], "an auditor is refused exactly as a plain user"


# -- who may read the log ------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["editor", "member", "plain", "anonymous"])
def test_everyone_else_is_refused_every_audit_action(world, who):
    caller = world.users[who]
    params = {"audit_report_dataset": {"id": world.datasets["open"]["name"]},
              "audit_report_user": {"id": world.users["plain"].name}}
    for name in ACTIONS:
        got = caller.post(name, **params.get(name, {}))
        assert got.status_code == 403, (who, name, got.get_json())
        assert got.get_json()["error"]["__type"] == "Authorization Error"
        assert "rows" not in json.dumps(got.get_json())


def test_an_auditor_reads_every_organization_and_an_admin_only_their_own(world):
    reader = world.user("ar-scope")
    since = _since(world)
    a, b = world.datasets["open"], world.datasets["b-open"]
    _preview(reader, a, 1)
    _preview(reader, b, 2)
    auditor, admin, other = world.users["auditor"], world.users["admin"], world.users["other-admin"]

    def orgs(caller: Caller, **params: Any) -> list[str | None]:
        return [r["org_id"] for r in caller.ok("audit_event_list", since=since, user=reader.name, **params)["rows"]]

    assert orgs(auditor) == [world.orgs["b"], world.orgs["a"]], "newest first, both organizations"
    assert orgs(world.users["sysadmin"]) == [world.orgs["b"], world.orgs["a"]]
    assert orgs(admin) == [world.orgs["a"]]
    assert orgs(other) == [world.orgs["b"]]
    assert set(orgs(admin, limit=1000) + [r["org_id"] for r in admin.ok("audit_event_list", limit=1000)["rows"]]) \
        == {world.orgs["a"]}, "nothing of another organization, unfiltered either"
    # another organization's dataset is not found, as if it did not exist; so are its reports
    assert admin.status("audit_event_list", dataset=b["name"]) == 404
    assert admin.status("audit_report_dataset", id=b["name"]) == 404
    assert admin.ok("audit_report_dataset", id=a["name"], since=since)["totals"]["accesses"] == 1
    assert [r["package_id"] for r in admin.ok("audit_report_user", id=reader.name, since=since)["rows"]] == [a["id"]]
    assert sorted(r["package_id"] for r in auditor.ok("audit_report_user", id=reader.name, since=since)["rows"]) \
        == sorted([a["id"], b["id"]])


# -- the event list ------------------------------------------------------------------------------

def test_the_event_list_filters_and_pages_newest_first(world):
    reader = world.user("ar-list")
    since = _since(world)
    ds, other = world.datasets["open"], world.datasets["b-open"]
    made = []  # (action, package id) of every read, in order
    for limit in (1, 2, 3):
        _preview(reader, ds, limit)
        made.append(("datastore_search", ds["id"]))
    _query(reader, ds, "id > 3")
    made.append(("datastore_search_sql", ds["id"]))
    _preview(reader, other, 1)
    made.append(("datastore_search", other["id"]))
    auditor = world.users["auditor"]

    def listed(**params: Any) -> list[tuple[str, str]]:
        rows = auditor.ok("audit_event_list", user=reader.id, since=since, **params)["rows"]
        assert all(r["actor"] == reader.name and r["actor_id"] == reader.id and r["outcome"] == "ok" for r in rows)
        return [(r["action"], r["package_id"]) for r in rows]

    newest_first = made[::-1]
    assert listed() == newest_first
    assert listed(dataset=ds["name"]) == [m for m in newest_first if m[1] == ds["id"]]
    assert listed(dataset=ds["id"]) == listed(dataset=ds["name"])
    assert listed(resource=ds["resource_id"]) == listed(dataset=ds["name"])
    assert listed(organization=world.orgs["b"]) == [("datastore_search", other["id"])]
    assert listed(event="datastore_search_sql") == [("datastore_search_sql", ds["id"])]
    assert listed(event=["datastore_search_sql", "datastore_search"]) == newest_first
    assert listed(outcome="refused") == []
    assert auditor.ok("audit_event_list", user=reader.id, until=since)["rows"] == [], "nothing before it began"
    first = auditor.ok("audit_event_list", user=reader.name, since=since, limit=2)
    second = auditor.ok("audit_event_list", user=reader.name, since=since, limit=2, offset=2)
    last = auditor.ok("audit_event_list", user=reader.name, since=since, limit=2, offset=4)
    assert [(r["action"], r["package_id"]) for r in first["rows"] + second["rows"] + last["rows"]] == newest_first
    assert (first["next_offset"], second["next_offset"], last["next_offset"]) == (2, 4, None)
    rows = [r["detail"]["rows"] for r in first["rows"] + second["rows"] + last["rows"]]
    assert rows == [1, 2, 3, 2, 1], "each event's detail as written (rows returned)"
    seqs = [r["seq"] for r in auditor.ok("audit_event_list", user=reader.name, since=since)["rows"]]
    assert seqs == sorted(seqs, reverse=True)
    assert auditor.status("audit_event_list", limit=1001) == 409
    assert auditor.status("audit_event_list", since="yesterday") == 409
    assert auditor.status("audit_event_list", outcome="maybe") == 409
    assert auditor.status("audit_event_list", user="ar-nobody-like-this") == 404


# -- the reports ---------------------------------------------------------------------------------

def test_the_dataset_report_says_who_read_how_often_how_many_rows_under_which_grant(world):
    ds = world.dataset(world.orgs["a"], "ar-report", access_level="restricted")
    granted, opener, stranger = world.user("ar-granted"), world.user("ar-member2"), world.user("ar-stranger")
    call(world.site, "organization_member_create", {"id": world.orgs["a"], "username": opener.name, "role": "member"})
    grant = call(world.site, "access_grant_create", {"package_id": ds["id"], "user_id": granted.id, "days": 30})
    since = _since(world)
    rows_granted = _preview(granted, ds, 2) + _preview(granted, ds, 4) + _query(granted, ds, "id <= 3")
    assert rows_granted == 2 + 4 + 3
    assert granted.ok("resource_download", id=ds["resource_id"])["url"]
    rows_member = _preview(opener, ds, 5)
    for _ in range(2):
        stranger.refused("datastore_search", ds, resource_id=ds["resource_id"])
    report = world.users["auditor"].ok("audit_report_dataset", id=ds["name"], since=since)
    by_user = {r["user"]: r for r in report["rows"]}
    assert set(by_user) == {granted.name, opener.name, stranger.name}
    assert {k: by_user[granted.name][k] for k in ("user_id", "via", "grant_id", "accesses", "previews", "queries",
                                                  "exports", "downloads", "rows", "refused")} == {
        "user_id": granted.id, "via": "grant:full", "grant_id": grant["id"], "accesses": 4, "previews": 2,
        "queries": 1, "exports": 0, "downloads": 1, "rows": rows_granted, "refused": 0}
    assert {k: by_user[opener.name][k] for k in ("via", "grant_id", "accesses", "previews", "rows")} == {
        "via": "organization:member", "grant_id": None, "accesses": 1, "previews": 1, "rows": rows_member}
    assert {k: by_user[stranger.name][k] for k in ("accesses", "rows", "refused")} == {
        "accesses": 0, "rows": 0, "refused": 2}
    assert [r["user"] for r in report["rows"]] == [granted.name, opener.name, stranger.name], "most accesses first"
    assert report["totals"] == {"accesses": 5, "rows": rows_granted + rows_member, "refused": 2, "users": 2}
    assert report["dataset"] == {"id": ds["id"], "name": ds["name"]}
    first, last = by_user[granted.name]["first"], by_user[granted.name]["last"]
    assert since <= first <= last
    # the period: nothing before it started
    assert world.users["auditor"].ok("audit_report_dataset", id=ds["id"], until=since)["rows"] == []
    # an organization's admin gets the same report for a dataset of theirs
    assert world.users["admin"].ok("audit_report_dataset", id=ds["name"], since=since)["rows"] == report["rows"]


def test_the_user_report_lists_everything_the_user_read(world):
    reader = world.user("ar-everything")
    accept_ctx = Context(platform=world.platform, actor=Actor(reader.id, reader.name))
    call(accept_ctx, "agreement_accept", {"package_id": world.datasets["registered"]["id"]})
    since = _since(world)
    opened, registered, other = world.datasets["open"], world.datasets["registered"], world.datasets["b-open"]
    expected = {opened["id"]: _preview(reader, opened, 2) + _preview(reader, opened, 1),
                registered["id"]: _query(reader, registered, "city = 'Lima'"),
                other["id"]: _preview(reader, other, 4)}
    got = world.web.get(f"/datastore/dump/{other['resource_id']}", headers={"Authorization": reader.token})
    assert got.status_code == 200
    reader.refused("datastore_search", world.datasets["restricted"],
                   resource_id=world.datasets["restricted"]["resource_id"])
    report = world.users["auditor"].ok("audit_report_user", id=reader.name, since=since)
    by_dataset = {r["package_id"]: r for r in report["rows"]}
    assert set(by_dataset) == {*expected, world.datasets["restricted"]["id"]}
    for package_id, rows in expected.items():
        assert by_dataset[package_id]["rows"] == rows
    assert by_dataset[opened["id"]]["previews"] == 2 and by_dataset[opened["id"]]["via"] == "level:open"
    assert by_dataset[registered["id"]]["queries"] == 1 and by_dataset[registered["id"]]["via"] == "accepted"
    assert by_dataset[registered["id"]]["agreement_version_id"] is None, "no agreement: its licence was accepted"
    assert by_dataset[other["id"]]["exports"] == 1 and by_dataset[other["id"]]["accesses"] == 2
    assert by_dataset[other["id"]]["dataset"] == other["name"] and by_dataset[other["id"]]["resource"] == "cities"
    assert by_dataset[world.datasets["restricted"]["id"]]["refused"] == 1
    assert report["totals"] == {"accesses": 5, "rows": sum(expected.values()), "refused": 1, "datasets": 3}
    assert [r["last"] for r in report["rows"]] == sorted((r["last"] for r in report["rows"]), reverse=True)


def test_the_grants_report_gives_states_and_attempts_after_the_end(world):
    ds = world.dataset(world.orgs["a"], "ar-grants", access_level="restricted")
    users = {k: world.user(f"ar-g-{k}") for k in ("active", "expiring", "revoked", "expired")}
    for k in ("revoked", "expired"):  # refused before their grant: not an attempt after its end
        users[k].refused("datastore_search", ds, resource_id=ds["resource_id"])
    grants = {k: call(world.site, "access_grant_create", {"package_id": ds["id"], "user_id": u.id,
                                                          "days": 5 if k == "expiring" else 90})["id"]
              for k, u in users.items()}
    taken = {k: _preview(u, ds, n) for (k, u), n in zip(users.items(), (2, 0, 3, 4)) if n}
    _preview(users["active"], ds, 1)
    taken["active"] += 1
    call(world.site, "access_grant_revoke", {"id": grants["revoked"], "reason": "study over"})
    with world.platform.write.begin() as s:  # ends now, after its read: past from the next call on, no waiting
        s.execute(update(AccessGrant).where(AccessGrant.id == grants["expired"]).values(expires=utcnow()))
    for k, attempts in (("revoked", 2), ("expired", 1)):
        for _ in range(attempts):
            users[k].refused("datastore_search", ds, resource_id=ds["resource_id"])
    report = world.users["auditor"].ok("audit_report_grants", dataset=ds["name"])
    by_grant = {r["grant_id"]: r for r in report["rows"]}
    assert set(by_grant) == set(grants.values())
    for k, grant_id in grants.items():
        row = by_grant[grant_id]
        assert (row["state"], row["grantee"], row["grantee_id"], row["package_id"], row["dataset"]) == (
            k, users[k].name, users[k].id, ds["id"], ds["name"])
        assert row["accesses"] == {"active": 2, "expiring": 0, "revoked": 1, "expired": 1}[k]
        assert row["attempts_after_end"] == {"revoked": 2, "expired": 1}.get(k, 0)
        assert row["accesses_after_end"] == 0
    assert (by_grant[grants["active"]]["last_access"] or "") >= (by_grant[grants["revoked"]]["last_access"] or "")
    order = [grants[k] for k in ("revoked", "expired", "expiring", "active")]
    assert [r["grant_id"] for r in report["rows"]] == order, "ending soonest first: revoked, then expired just after"
    assert report["totals"] == {"active": 1, "expiring": 1, "expired": 1, "revoked": 1}

    def states(**params: Any) -> list[str]:
        found = world.users["auditor"].ok("audit_report_grants", dataset=ds["id"], **params)
        return [r["state"] for r in found["rows"]]

    assert states(state="expired") == ["expired"]
    assert states(state=["revoked", "expired"]) == ["revoked", "expired"]
    assert states(days=3) == ["revoked", "expired", "active", "active"], "5 days left is not expiring within 3"
    assert states(user=users["active"].name) == ["active"]
    assert world.users["other-admin"].status("audit_report_grants", dataset=ds["name"]) == 404
    assert ds["id"] not in {r["package_id"] for r in world.users["other-admin"].ok("audit_report_grants")["rows"]}
    assert world.users["admin"].ok("audit_report_grants", dataset=ds["id"])["rows"] == report["rows"]


def test_the_denials_report_counts_refusals_by_caller_dataset_and_event(world):
    prober = world.user("ar-prober")
    since = _since(world)
    restricted, private = world.datasets["restricted"], world.datasets["private"]
    for ds, times in ((restricted, 3), (private, 2)):
        for _ in range(times):
            assert prober.refused("datastore_search", ds, resource_id=ds["resource_id"]) == (
                404 if ds is private else 403)
    _preview(prober, world.datasets["open"], 1)  # an answered call is no denial
    report = world.users["auditor"].ok("audit_report_denials", user=prober.name, since=since)
    events = world.users["auditor"].ok("audit_event_list", user=prober.name, since=since, outcome="refused")["rows"]
    assert len(events) == 5, "one refusal event per refused call"
    assert {(r["package_id"], r["dataset"], r["count"]) for r in report["rows"]} == {
        (restricted["id"], restricted["name"], 3), (private["id"], private["name"], 2)}
    assert [r["count"] for r in report["rows"]] == [3, 2], "most first"
    assert all(r["user"] == prober.name and r["user_id"] == prober.id for r in report["rows"])
    assert {r["action"] for r in report["rows"]} == {e["action"] for e in events}
    assert report["totals"] == {"refused": 5, "groups": 2}
    only = world.users["auditor"].ok("audit_report_denials", user=prober.name, since=since, dataset=private["name"])
    assert [r["count"] for r in only["rows"]] == [2]
    top = world.users["auditor"].ok("audit_report_denials", user=prober.name, since=since, limit=1)
    assert [(r["package_id"], r["count"]) for r in top["rows"]] == [(restricted["id"], 3)], "the most refused first"
    assert world.users["auditor"].ok("audit_report_denials", user=prober.name, until=since)["rows"] == []


# -- files: CSV and JSON lines -------------------------------------------------------------------

def _cell(value: Any) -> str:
    """What the test expects in a CSV cell for a JSON value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _same_rows(columns: list[str], rows: list[dict], csv_body: str, jsonl_body: str) -> None:
    parsed = list(csv.reader(io.StringIO(csv_body, newline="")))
    assert parsed[0] == columns
    assert len(parsed) - 1 == len(rows)
    for row, line in zip(rows, parsed[1:]):
        for column, cell in zip(columns, line):
            value = row[column]
            if isinstance(value, (dict, list)):
                assert json.loads(cell) == value
            else:
                assert cell == _cell(value), (column, cell, value)
    lines = jsonl_body.splitlines()
    assert [json.loads(x) for x in lines] == rows
    assert all(list(json.loads(x)) == columns for x in lines), "keys in column order"


@pytest.mark.parametrize("name", ACTIONS)
def test_every_answer_as_csv_and_json_lines_holds_the_same_rows(world, name):
    user = world.user("ar-files")
    params = {"audit_event_list": {"dataset": world.datasets["open"]["name"], "limit": 50},
              "audit_report_dataset": {"id": world.datasets["open"]["name"]},
              "audit_report_user": {"id": user.name},
              "audit_report_grants": {},
              "audit_report_denials": {}}[name]
    _preview(user, world.datasets["open"], 2)
    restricted = world.datasets["restricted"]
    user.refused("datastore_search", restricted, resource_id=restricted["resource_id"])
    call(world.site, "access_grant_create", {"package_id": world.datasets["restricted"]["id"], "user_id": user.id,
                                             "days": 2})
    auditor = world.users["auditor"]
    as_json = auditor.ok(name, **params)
    assert as_json["rows"], "something to compare"
    bodies = {}
    for fmt, content_type in (("csv", "text/csv; charset=utf-8"), ("jsonl", "application/x-ndjson")):
        got = auditor.post(name, format=fmt, **params)
        assert got.status_code == 200 and got.headers["Content-Type"] == content_type
        assert got.headers["Content-Disposition"].startswith("attachment; filename=\"audit-")
        bodies[fmt] = got.get_data(as_text=True)
    if name == "audit_event_list":  # written meanwhile by nobody: the same newest events
        assert json.loads(bodies["jsonl"].splitlines()[0])["seq"] == as_json["rows"][0]["seq"]
    _same_rows(as_json["columns"], as_json["rows"], bodies["csv"], bodies["jsonl"])
    assert bodies["csv"].endswith("\r\n") and bodies["jsonl"].endswith("\n")
    assert auditor.status(name, format="xml", **params) == 409


# -- end to end: ckanapi, requests and the mosu command against `mosu up` -------------------------

def test_a_compliance_officer_over_http_and_the_command_line(mosu):
    suffix = uuid.uuid4().hex[:6]
    admin = mosu.ckan(mosu.token(f"co-admin-{suffix}", sysadmin=True))
    officer = f"co-officer-{suffix}"
    assert "as auditor" in mosu.cli("user", "add", officer, "--auditor").stdout
    officer_token = mosu.cli("user", "token", "add", officer, "laptop").stdout.strip().splitlines()[-1]
    assert admin.action.user_show(id=officer)["auditor"] is True
    org = admin.action.organization_create(name=f"co-org-{suffix}")
    pkg = admin.action.package_create(name=f"co-data-{suffix}", owner_org=org["id"])
    res = admin.action.resource_create(package_id=pkg["id"], upload=("c.csv", io.BytesIO(CSV)))
    assert wait_for_ingest(admin, res["id"])["ingest_status"] == "ready"
    researcher = f"co-researcher-{suffix}"
    admin.action.user_create(name=researcher, email=f"{researcher}@example.org")
    token = admin.action.api_token_create(user=researcher, name="nb")["token"]
    reader = mosu.ckan(token)
    taken = sum(len(reader.action.datastore_search(resource_id=res["id"], limit=n)["records"]) for n in (1, 3))
    formula = "=HYPERLINK(\"http://evil.example\")"
    got = requests.post(f"{mosu.url}/api/3/action/datastore_search", json={"resource_id": res["id"], "limit": 2},
                        headers={"Authorization": token, "User-Agent": formula}, timeout=30)
    assert got.ok
    taken += 2
    auditor = mosu.ckan(officer_token)
    with pytest.raises(ckanapi.NotAuthorized):
        mosu.ckan(None).action.audit_event_list()
    with pytest.raises(ckanapi.NotAuthorized):
        mosu.ckan(token).action.audit_report_dataset(id=pkg["name"])
    report = auditor.action.audit_report_dataset(id=pkg["name"])
    assert [(r["user"], r["previews"], r["rows"], r["via"]) for r in report["rows"]] == [
        (researcher, 3, taken, "level:open")]
    for fmt in ("csv", "jsonl"):
        raw = requests.post(f"{mosu.url}/api/3/action/audit_report_dataset", json={"id": pkg["name"], "format": fmt},
                            headers={"Authorization": officer_token}, timeout=30)
        assert raw.status_code == 200
        assert raw.headers["Content-Type"] == {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}[fmt]
        if fmt == "jsonl":
            assert [json.loads(x) for x in raw.text.splitlines()] == report["rows"]
        else:
            assert [r["rows"] for r in csv.DictReader(io.StringIO(raw.text))] == [str(taken)]
    events = requests.get(f"{mosu.url}/api/3/action/audit_event_list",
                          params={"dataset": pkg["id"], "format": "csv"},
                          headers={"Authorization": officer_token}, timeout=30)
    agents = [r["user_agent"] for r in csv.DictReader(io.StringIO(events.text)) if r["role"] != "worker"]
    assert agents[0] == "'" + formula, "a cell that would be a spreadsheet formula is quoted as text"
    assert all(a.startswith("ckanapi") for a in agents[1:]), agents
    # the README's example as written: the ckanapi command line, with a period
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    today = utcnow().date()
    period = [f"since={today - dt.timedelta(days=1)}", f"until={today + dt.timedelta(days=1)}"]
    out = subprocess.run(["ckanapi", "action", "audit_report_dataset", f"id={pkg['name']}", *period,
                          "-r", mosu.url, "-a", officer_token], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"] == report["rows"]
    # the same report from the command line, on the server
    out = mosu.cli("audit", "report", "dataset", pkg["name"], "--format", "jsonl").stdout
    assert [json.loads(x) for x in out.splitlines()] == report["rows"]
    out = json.loads(mosu.cli("audit", "report", "user", researcher).stdout)
    assert [(r["dataset"], r["rows"]) for r in out["rows"] if r["dataset"]] == [(pkg["name"], taken)]
    # their refused call for the dataset's report (403: not an auditor) is on it too, without a dataset
    assert [(r["refused"], r["accesses"]) for r in out["rows"] if not r["dataset"]] == [(1, 0)]
    out = mosu.cli("audit", "events", "--dataset", pkg["name"], "--event", "datastore_search", "--format", "csv").stdout
    assert len(list(csv.DictReader(io.StringIO(out)))) == 3
    failed = mosu.cli("audit", "report", "dataset", f"no-such-{suffix}", check=False)
    assert failed.returncode == 1 and "Dataset not found" in failed.stderr


# -- PostgreSQL: the same reports, from the same indexes' columns ---------------------------------

def test_the_reports_on_postgresql(s3, postgres, tmp_path):
    """The derived columns (rows, via), the partial indexes and every report's SQL on PostgreSQL."""
    platform = Platform.open(s3_settings(s3, tmp_path / "data", database_url=postgres(), audit_refusals_per_second=0))
    platform.store.ensure_bucket()
    try:
        w = World(platform, Context(platform=platform, actor=Actor.site()), create_app(platform=platform).test_client(),
                  {}, {}, {})
        auditor, reader, stranger = w.user("pg-auditor", auditor=True), w.user("pg-reader"), w.user("pg-stranger")
        org = call(w.site, "organization_create", {"name": "pg-org"})["id"]
        ds = w.dataset(org, "pg-restricted", access_level="restricted")
        grant = call(w.site, "access_grant_create", {"package_id": ds["id"], "user_id": reader.id, "days": 90})
        taken = _preview(reader, ds, 2) + _query(reader, ds, "id > 1")
        stranger.refused("datastore_search", ds, resource_id=ds["resource_id"])
        report = auditor.ok("audit_report_dataset", id=ds["name"])
        assert [(r["user"], r["via"], r["grant_id"], r["accesses"], r["rows"], r["refused"]) for r in report["rows"]] \
            == [(reader.name, "grant:full", grant["id"], 2, taken, 0), (stranger.name, None, None, 0, 0, 1)]
        assert auditor.ok("audit_report_user", id=reader.name)["totals"] == {
            "accesses": 2, "rows": taken, "refused": 0, "datasets": 1}
        grants = auditor.ok("audit_report_grants", dataset=ds["id"])["rows"]
        assert [(g["grant_id"], g["state"], g["accesses"]) for g in grants] == [(grant["id"], "active", 2)]
        denials = auditor.ok("audit_report_denials", dataset=ds["id"])["rows"]
        assert [(d["user"], d["count"]) for d in denials] == [(stranger.name, 1)]
        events = auditor.ok("audit_event_list", dataset=ds["name"])["rows"]
        assert len([e for e in events if e["outcome"] == "ok" and e["action"].startswith("datastore")]) == 2
        got = auditor.post("audit_report_dataset", id=ds["name"], format="csv")
        assert got.status_code == 200 and len(list(csv.DictReader(io.StringIO(got.get_data(as_text=True))))) == 2
    finally:
        platform.close()
