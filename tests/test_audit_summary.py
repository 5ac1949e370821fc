"""``audit_summary``, the compliance dashboard's figures (issue 14), and the dataset report's ``user``
filter: counted by the database from the events the test's own calls wrote.

In-process on a real SQLite catalog and SeaweedFS bucket, through the web app with API tokens (the
``world`` of :mod:`tests.test_audit_reports`, a fresh one for this module: every read in it is this
module's, so the counts are exact).
"""
from __future__ import annotations

import datetime as dt
import re
import subprocess
from typing import Iterator

import pytest
from sqlalchemy import select, update

from catalog.access.context import Actor, Context
from catalog.actions import call
from catalog.cli.app import create_app
from catalog.db.models import AuditEvent, utcnow
from catalog.platform import Platform
from catalog.records import checkpoints
from tests.conftest import MOSU, clean_env, s3_settings
from tests.test_audit_reports import World, _preview, _query, world  # noqa: F401 - the fixture

assert world


def _latest_read(w: World, user_id: str) -> int:
    with w.platform.read() as s:
        return s.scalar(select(AuditEvent.seq).where(AuditEvent.actor_id == user_id,
                                                     AuditEvent.action == "datastore_search")
                        .order_by(AuditEvent.seq.desc()).limit(1))


def test_the_summary_counts_accesses_by_day_top_datasets_and_users_and_refusals(world):
    auditor = world.users["auditor"]
    before = auditor.ok("audit_summary", top=50)
    heavy, light = world.user("sum-heavy"), world.user("sum-light")
    busy, quiet = (world.dataset(world.orgs[o], f"sum-{n}", title=f"<script>{n}</script>")
                   for o, n in (("a", "busy"), ("b", "quiet")))
    rows = sum(_preview(heavy, busy, n) for n in (1, 2, 3))
    _preview(light, quiet, 2)
    rows += _query(light, busy, "id > 3")
    with world.platform.write.begin() as s:  # one read three days ago, one before the period
        for seq, days in ((_latest_read(world, light.id), 3), (_latest_read(world, heavy.id), 40)):
            s.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(ts=utcnow() - dt.timedelta(days=days)))
    restricted = world.datasets["restricted"]
    light.refused("datastore_search", restricted, resource_id=restricted["resource_id"])
    got = auditor.ok("audit_summary", top=50)
    days = [d["day"] for d in got["accesses_by_day"]]
    today = utcnow().date()
    assert days == [(today - dt.timedelta(days=29 - i)).isoformat() for i in range(30)], "30 days, oldest first"
    counts = [d["accesses"] - b["accesses"] for d, b in zip(got["accesses_by_day"], before["accesses_by_day"])]
    assert counts[-1] == 3 and counts[-4] == 1 and sum(counts) == got["accesses"] - before["accesses"] == 4, counts
    ours = [(d["dataset"], d["title"], d["accesses"], d["rows"]) for d in got["top_datasets"]
            if d["package_id"] in (busy["id"], quiet["id"])]
    assert ours == [(busy["name"], busy["title"], 3, rows - 3), (quiet["name"], quiet["title"], 1, 2)], \
        "most first; the 40-day-old read (3 rows) is outside the period"
    users = {u["user"]: (u["user_id"], u["accesses"], u["rows"]) for u in got["top_users"]}
    assert users[heavy.name] == (heavy.id, 2, 3) and users[light.name] == (light.id, 2, 4)
    refused = {r["event"]: r["count"] for r in got["refusals"]}
    was = {r["event"]: r["count"] for r in before["refusals"]}
    assert refused.get("access_denied", 0) - was.get("access_denied", 0) == 1
    assert got["refused"] - before["refused"] == sum(refused.values()) - sum(was.values()) == 1
    assert len(auditor.ok("audit_summary", days=1)["accesses_by_day"]) == 1
    assert len(auditor.ok("audit_summary", top=1)["top_datasets"]) == 1
    assert auditor.status("audit_summary", days=0) == 409 and auditor.status("audit_summary", days=400) == 409


def test_the_summary_gives_the_last_checkpoint(world):
    auditor = world.users["auditor"]
    head = checkpoints.take(world.platform)
    log = auditor.ok("audit_summary")["log"]
    assert log["checkpoint"]["tree_size"] == head.tree_size == log["events"]
    assert log["checkpoint"]["root_hash"] == head.root_hash and log["events_after_checkpoint"] == 0
    taken = dt.datetime.fromisoformat(log["checkpoint"]["time"])
    assert abs((taken - utcnow()).total_seconds()) < 3600
    _preview(world.user("sum-after"), world.datasets["open"], 1)
    assert auditor.ok("audit_summary")["log"]["events_after_checkpoint"] >= 1


@pytest.fixture
def fresh(s3, tmp_path) -> Iterator[World]:
    """A log of its own, with an auditor: the module's ``world`` holds events whose time the first
    test moves without re-hashing them, which ``mosu audit verify`` rightly calls modified."""
    platform = Platform.open(s3_settings(s3, tmp_path / "data"))
    platform.store.ensure_bucket()
    try:
        w = World(platform, Context(platform=platform, actor=Actor.site()), create_app(platform=platform).test_client(),
                  {}, {}, {})
        w.users["auditor"] = w.user("v-auditor", auditor=True)
        w.user("v-someone")
        yield w
    finally:
        platform.close()


def _mosu_verify(w: World) -> subprocess.CompletedProcess:
    """``mosu audit verify`` as the operator runs it: the CLI in its own process, on this world's data
    directory (its SQLite catalog and signing key) and bucket (the checkpoints' copies)."""
    settings = w.platform.settings
    env = {**clean_env(), **{k: v for k, v in settings.to_env().items() if k != "MOSU_DATA_DIR"}}
    return subprocess.run([*MOSU, "audit", "verify", "--data-dir", str(settings.data_dir)], env=env,
                          capture_output=True, text=True, timeout=120)


def _verified_after(w: World, seq: int) -> list[AuditEvent]:
    with w.platform.read() as s:
        found = list(s.scalars(select(AuditEvent).where(AuditEvent.seq > seq, AuditEvent.action == "audit_verified")
                               .order_by(AuditEvent.seq)))
        s.expunge_all()
        return found


def _verify_recorded(w: World) -> tuple[subprocess.CompletedProcess, AuditEvent]:
    """Run the command; return it with the one ``audit_verified`` event it left, right after the log it read."""
    before = w.last_seq()
    run = _mosu_verify(w)
    recorded = _verified_after(w, before)
    assert [e.seq for e in recorded] == [before + 1], ("one audit_verified event after the run", run.stderr)
    return run, recorded[0]


def test_each_run_of_mosu_audit_verify_is_recorded_and_is_the_summarys_last_verify(fresh):
    auditor = fresh.users["auditor"]
    assert auditor.ok("audit_summary")["log"]["last_verify"] is None, "no run yet"
    head = checkpoints.take(fresh.platform)
    fresh.user("v-after-checkpoint")
    run, first = _verify_recorded(fresh)
    assert run.returncode == 0, run.stderr
    checked = int(re.match(r"audit log intact: (\d+) events", run.stdout).group(1))
    assert checked == first.seq - 1 > head.tree_size, "every event before the record was checked"
    assert (first.actor, first.actor_id, first.role, first.object_type, first.outcome) == (
        "site", None, "site", "audit_log", "ok"), "the operator's CLI, as other CLI events"
    assert {k: first.detail.get(k) for k in ("intact", "findings", "events", "first_seq", "last_seq", "checkpoints",
                                             "last_checkpoint", "first_finding")} == {
        "intact": True, "findings": 0, "events": checked, "first_seq": 1, "last_seq": checked, "checkpoints": 1,
        "last_checkpoint": head.tree_size, "first_finding": None}
    assert first.detail["seconds"] >= 0
    last = auditor.ok("audit_summary")["log"]["last_verify"]
    assert last == {**last, "time": first.ts.isoformat(), "seq": first.seq, "intact": True, "events": checked,
                    "findings": 0, "first_finding": None}, last
    assert dt.datetime.fromisoformat(last["time"]) <= utcnow()

    run, second = _verify_recorded(fresh)
    assert run.returncode == 0, run.stderr
    assert second.detail["last_seq"] == second.detail["events"] == first.seq, "the next run checks the record"
    assert auditor.ok("audit_summary")["log"]["last_verify"]["seq"] == second.seq, "the latest run"


def test_a_run_that_finds_a_tampered_event_is_recorded_not_intact(fresh):
    auditor = fresh.users["auditor"]
    run, honest = _verify_recorded(fresh)
    assert run.returncode == 0, run.stderr
    checkpoints.take(fresh.platform)  # the tampered event is under a signed checkpoint too
    with fresh.platform.write.begin() as s:  # a field edited in the database, not re-hashed
        s.execute(update(AuditEvent).where(AuditEvent.seq == honest.seq).values(actor="nobody"))
    try:
        run, found = _verify_recorded(fresh)
        assert run.returncode == 2 and f"event {honest.seq}: modified" in run.stderr, run.stderr
        assert {k: found.detail.get(k) for k in ("intact", "findings", "events", "last_seq")} == {
            "intact": False, "findings": 1, "events": honest.seq - 1, "last_seq": None}
        assert (found.detail["first_finding"]["seq"], found.detail["first_finding"]["kind"]) == (honest.seq, "modified")
        last = auditor.ok("audit_summary")["log"]["last_verify"]
        assert (last["seq"], last["time"], last["intact"], last["findings"]) == (
            found.seq, found.ts.isoformat(), False, 1), last
        assert (last["first_finding"]["seq"], last["first_finding"]["kind"]) == (honest.seq, "modified")
        assert "hash" in last["first_finding"]["message"], last["first_finding"]
    finally:
        with fresh.platform.write.begin() as s:
            s.execute(update(AuditEvent).where(AuditEvent.seq == honest.seq).values(actor="site"))
    run, again = _verify_recorded(fresh)  # the edit undone: intact again, the not-intact record among those checked
    assert run.returncode == 0, run.stderr
    assert again.detail["intact"] is True and again.detail["last_seq"] == found.seq
    assert auditor.ok("audit_summary")["log"]["last_verify"]["intact"] is True


def test_the_summary_is_for_the_log_readers_only_and_an_admin_sees_their_own(world):
    reader = world.user("sum-reader")
    _preview(reader, world.datasets["open"], 1)
    _preview(reader, world.datasets["b-open"], 1)
    assert world.users["plain"].status("audit_summary") == 403
    assert world.users["anonymous"].status("audit_summary") == 403
    assert world.users["sysadmin"].ok("audit_summary")["log"] is not None
    mine = world.users["other-admin"].ok("audit_summary", top=50)
    listed = {d["package_id"] for d in mine["top_datasets"]}
    assert world.datasets["b-open"]["id"] in listed and world.datasets["open"]["id"] not in listed
    assert {u["user"] for u in mine["top_users"]} >= {reader.name}
    assert mine["log"] is None, "the checkpoint covers every organization's events"


def test_the_dataset_report_narrowed_to_one_user(world):
    ds = world.datasets["open"]
    one, two = world.user("sum-one"), world.user("sum-two")
    taken = _preview(one, ds, 2) + _preview(one, ds, 1)
    _preview(two, ds, 3)
    auditor = world.users["auditor"]
    report = auditor.ok("audit_report_dataset", id=ds["name"], user=one.name)
    assert [(r["user"], r["accesses"], r["rows"]) for r in report["rows"]] == [(one.name, 2, taken)]
    assert report["totals"]["accesses"] == 2
    everyone = {r["user"] for r in auditor.ok("audit_report_dataset", id=ds["name"])["rows"]}
    assert {one.name, two.name} <= everyone
    assert auditor.status("audit_report_dataset", id=ds["name"], user="no-such-user") == 404


def test_the_summary_on_postgresql(s3, postgres, tmp_path):
    """The day buckets (``date(ts)`` is a date there, text on SQLite) and the aggregates on PostgreSQL."""
    platform = Platform.open(s3_settings(s3, tmp_path / "data", database_url=postgres(), audit_refusals_per_second=0))
    platform.store.ensure_bucket()
    try:
        w = World(platform, Context(platform=platform, actor=Actor.site()), create_app(platform=platform).test_client(),
                  {}, {}, {})
        auditor, reader, stranger = w.user("pg-auditor", auditor=True), w.user("pg-reader"), w.user("pg-stranger")
        org = call(w.site, "organization_create", {"name": "pg-sum-org"})["id"]
        ds, closed = w.dataset(org, "pg-open"), w.dataset(org, "pg-closed", access_level="restricted")
        taken = _preview(reader, ds, 2) + _query(reader, ds, "id > 1")
        stranger.refused("datastore_search", closed, resource_id=closed["resource_id"])
        got = auditor.ok("audit_summary", days=7)
        assert [d["accesses"] for d in got["accesses_by_day"]] == [0] * 6 + [2]
        assert got["accesses_by_day"][-1]["day"] == utcnow().date().isoformat()
        assert [(d["dataset"], d["accesses"], d["rows"]) for d in got["top_datasets"]] == [(ds["name"], 2, taken)]
        assert [(u["user"], u["accesses"], u["rows"]) for u in got["top_users"]] == [(reader.name, 2, taken)]
        assert got["refusals"] == [{"event": "access_denied", "count": 1}]
        assert got["log"]["checkpoint"] is None and got["log"]["events_after_checkpoint"] == got["log"]["events"] > 0
        assert got["log"]["last_verify"] is None, "mosu audit verify never ran on this log"
    finally:
        platform.close()
