"""Audit reports benchmark (issue 13): each report over 1,000,000 events, goal ≤ 200 ms.

Run: `.venv/bin/python bench/audit_reports.py` (defaults below), or quicker `--events 100000`.

Builds a catalog on SQLite (no object storage: the reports read only the database) with
``--datasets`` datasets in 40 organizations (20 % restricted, each with a few grants: active,
expiring, expired, revoked), ``--users`` users, and ``--events`` audit events inserted directly
(one transaction, ``executemany``): over one year, 90 % reads (previews, queries, exports with their
end event, downloads), 5 % refusals, 5 % changes; datasets and users drawn with a Zipf-like skew
(a few are read far more than the rest), as real catalogs are. The hash chain of these rows is not
valid (random hashes): reports never read it; ``bench/audit_verify.py`` times verification.

Then each report and list is called through its action (``catalog.actions.call``, as the API and
the CLI do: name resolution, scope, query, names of the rows), ``--repeat`` times after one warm-up;
the best and median times are printed with the row counts, and ``EXPLAIN QUERY PLAN`` of every
query the action ran on ``audit_events``, which shows the index each one uses.

Figures (Dec 2026, 1,090,169 events, skew 0.7: the busiest dataset and user hold 3.4 % of all
events each; 2 cores at load average ~8 from other work, so every figure is inflated), p50 ms:
event lists 2-15; dataset report 9 (median dataset), 34 (busiest, a month), 198 (busiest, all
time); user report 31 (median), 379 (busiest, all time); grants 140 (expired and revoked), 456 (all
3,282 with their four counts); denials 49 (a month), 242 (all time, the top 1,000 groups). Every
query reads one index and never the table (``rows`` and ``via`` are columns the database derives
from ``detail`` and the indexes hold: SQLite's plan says "USING INDEX", without "COVERING", for any
index holding a generated column, yet the bytecode reads every value from the index cursor, and
summing ``rows`` over 36,546 events takes 26 ms from it against 230 ms from the table).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from catalog.access.context import Actor, Context  # noqa: E402
from catalog.actions import call  # noqa: E402
from catalog.core.settings import Settings  # noqa: E402
from catalog.db.models import AccessGrant, AuditEvent, Group, Member, Package, Resource, User  # noqa: E402
from catalog.platform import Platform  # noqa: E402

START = dt.datetime(2026, 1, 1)
YEAR = dt.timedelta(days=365)
READS = [("datastore_search", 60), ("datastore_search_sql", 20), ("datastore_export", 10), ("resource_download", 10)]
CHANGES = ["package_update", "resource_update", "member_create", "access_grant_create", "agreement_accept"]
COLUMNS = ("seq", "id", "ts", "actor", "action", "object_type", "object_id", "detail", "prev_hash", "hash",
           "actor_id", "role", "client", "user_agent", "request_id", "outcome", "package_id", "resource_id",
           "org_id", "grant_id", "agreement_version_id")


def skewed(rng: random.Random, n: int, s: float = 0.9) -> list[float]:
    """Zipf-like weights for ``n`` items (rank r weighs 1/r^s), shuffled so ids are not ordered by rank."""
    weights = [1 / (r ** s) for r in range(1, n + 1)]
    rng.shuffle(weights)
    return weights


def build_catalog(platform: Platform, datasets: int, users: int, rng: random.Random) -> dict:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    orgs = [Group(id=str(uuid.uuid4()), name=f"org-{i}", is_organization=True) for i in range(40)]
    people = [User(id=str(uuid.uuid4()), name=f"user-{i}") for i in range(users)]
    pkgs = [Package(id=str(uuid.uuid4()), name=f"dataset-{i}", owner_org=rng.choice(orgs).id,
                    access_level="restricted" if rng.random() < 0.2 else "open") for i in range(datasets)]
    resources = [Resource(id=str(uuid.uuid4()), package_id=p.id, name="table") for p in pkgs]
    members = [Member(group_id=o.id, table_name="user", table_id=rng.choice(people).id, capacity="admin")
               for o in orgs]
    grants = []
    for p in pkgs:
        if p.access_level != "restricted":
            continue
        for _ in range(rng.randint(3, 12)):
            created = START + YEAR * rng.random() * 0.8
            kind = rng.random()
            expires = now + dt.timedelta(days=rng.randint(1, 25) if kind < 0.2 else rng.randint(31, 365)) \
                if kind < 0.6 else created + dt.timedelta(days=rng.randint(10, 60))
            grants.append(AccessGrant(id=str(uuid.uuid4()), package_id=p.id, grantee_type="user",
                                      grantee_id=rng.choice(people).id, created=created, expires=expires,
                                      revoked=created + dt.timedelta(days=5) if kind > 0.9 else None))
    with platform.write.begin() as s:
        for rows in (orgs, people, pkgs, resources, members, grants):  # in foreign-key order
            s.add_all(rows)
            s.flush()
    return {"orgs": orgs, "users": people, "members": members, "datasets": pkgs, "grants": grants,
            "resources": {r.package_id: r.id for r in resources}}


def load_catalog(platform: Platform) -> dict:
    """What :func:`build_catalog` made, read back from an earlier run's database."""
    with platform.read() as s:
        return {"orgs": list(s.query(Group)), "users": list(s.query(User)), "datasets": list(s.query(Package)),
                "members": list(s.query(Member)), "grants": list(s.query(AccessGrant)),
                "resources": {r.package_id: r.id for r in s.query(Resource)}}


def build_events(platform: Platform, world: dict, count: int, rng: random.Random, skew: float) -> None:
    pkgs, people = world["datasets"], world["users"]
    pkg_w, user_w = skewed(rng, len(pkgs), skew), skewed(rng, len(people), skew)
    grants_of: dict[str, list[AccessGrant]] = {}
    for g in world["grants"]:
        grants_of.setdefault(g.package_id, []).append(g)
    read_names, read_w = zip(*READS)
    step = YEAR / count
    rows = []
    seq = 0
    chosen_pkgs = rng.choices(pkgs, pkg_w, k=count)  # in bulk: one draw at a time is O(n) each
    chosen_users = rng.choices(people, user_w, k=count)
    chosen_reads = rng.choices(read_names, read_w, k=count)
    for i in range(count):
        pkg, user = chosen_pkgs[i], chosen_users[i]
        rid = world["resources"][pkg.id]
        ts = START + step * i
        kind = rng.random()
        grant = None
        if kind < 0.90:
            action, outcome = chosen_reads[i], "ok"
            if pkg.access_level == "restricted":
                grant = rng.choice(grants_of[pkg.id]) if pkg.id in grants_of else None
                user_id = grant.grantee_id if grant else user.id
                via = "grant:full" if grant else "organization:member"
            else:
                user_id, via = user.id, "level:open"
            n = rng.randint(0, 1000)
            detail = ({"rows": n, "readings": {rid: {"via": via}}, "sql": "SELECT 1"}
                      if action == "datastore_search_sql" else {"rows": n, "via": via} if action == "datastore_search"
                      else {"via": via})
        elif kind < 0.95:
            action, outcome, user_id, detail = "datastore_search", "refused", user.id, {}
        else:
            action, outcome, user_id, detail = rng.choice(CHANGES), "ok", user.id, {}
        name = people_name(world, user_id)
        seq += 1
        rows.append((seq, str(uuid.uuid4()), ts.isoformat(sep=" "), name, action, "resource", rid, json.dumps(detail),
                     "0" * 64, uuid.uuid4().hex * 2, user_id, "user", f"10.0.{i % 200}.{i % 250}", "bench/1.0",
                     uuid.uuid4().hex, outcome, pkg.id, rid, pkg.owner_org, grant.id if grant else None, None))
        if action == "datastore_export" and outcome == "ok":  # its end event, with the rows sent
            seq += 1
            rows.append((seq, str(uuid.uuid4()), (ts + dt.timedelta(seconds=1)).isoformat(sep=" "), name,
                         "datastore_export_end", "resource", rid, json.dumps({"rows": rng.randint(0, 100000)}),
                         "0" * 64, uuid.uuid4().hex * 2, user_id, "user", None, None, None, "ok", pkg.id, rid,
                         pkg.owner_org, grant.id if grant else None, None))
        if len(rows) >= 50_000 or i == count - 1:
            with platform.engine.begin() as conn:
                conn.exec_driver_sql(f"INSERT INTO audit_events ({', '.join(COLUMNS)}) "
                                     f"VALUES ({', '.join('?' * len(COLUMNS))})", rows)
            rows = []


_NAMES: dict[str, str] = {}


def people_name(world: dict, user_id: str) -> str:
    if not _NAMES:
        _NAMES.update({u.id: u.name for u in world["users"]})
    return _NAMES[user_id]


def timed(ctx: Context, name: str, params: dict, repeat: int, captured: list) -> tuple[float, float, int]:
    call(ctx, name, params)  # warm-up: the page cache
    times = []
    for _ in range(repeat):
        captured.clear()
        t0 = time.perf_counter()
        result = call(ctx, name, params)
        times.append((time.perf_counter() - t0) * 1000)
    return min(times), statistics.median(times), len(result["rows"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--datasets", type=int, default=2000)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--skew", type=float, default=0.7,
                    help="Zipf exponent of datasets' and users' popularity (0: uniform).")
    ap.add_argument("--data-dir", type=Path, default=None, help="Build here and keep it (default: a temporary one).")
    ap.add_argument("--no-plans", action="store_true", help="Do not print the query plans.")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="mosu-audit-reports-") as tmp:
        platform = Platform.open(Settings(data_dir=args.data_dir or Path(tmp)))
        t0 = time.perf_counter()
        with platform.engine.connect() as conn:
            built = conn.exec_driver_sql("SELECT count(*) FROM audit_events").scalar()
        if built:  # --data-dir of an earlier run: reuse it, with any index added since
            for index in AuditEvent.__table__.indexes:
                index.create(platform.engine, checkfirst=True)
            world = load_catalog(platform)
        else:
            world = build_catalog(platform, args.datasets, args.users, rng)
            build_events(platform, world, args.events, rng, args.skew)
        with platform.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
            total = conn.exec_driver_sql("SELECT count(*) FROM audit_events").scalar()
        print(f"{'reused' if built else 'built'} {total:,} events ({args.datasets:,} datasets, {args.users:,} users, "
              f"{len(world['grants']):,} grants) in {time.perf_counter() - t0:.1f} s")
        captured: list[tuple[str, tuple]] = []

        @event.listens_for(platform.engine, "before_cursor_execute")
        def _capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            if "audit_events" in statement and statement.lstrip().upper().startswith("SELECT"):
                captured.append((statement, parameters))

        ctx = Context(platform=platform, actor=Actor.site())
        with platform.engine.connect() as conn:
            hot = conn.exec_driver_sql("SELECT package_id, count(*) c FROM audit_events GROUP BY package_id "
                                       "ORDER BY c DESC").all()
            users = conn.exec_driver_sql("SELECT actor_id, count(*) c FROM audit_events GROUP BY actor_id "
                                         "ORDER BY c DESC").all()
        names = {p.id: p.name for p in world["datasets"]}
        unames = {u.id: u.name for u in world["users"]}
        hot_ds, mid_ds = hot[0], hot[len(hot) // 2]
        hot_user, mid_user = users[0], users[len(users) // 2]
        month = {"since": "2026-06-01", "until": "2026-07-01"}
        admin_id = world["members"][0].table_id
        admin = Context(platform=platform, actor=Actor(admin_id, unames[admin_id]))
        cases = [
            ("audit_event_list (newest 100)", "audit_event_list", {}),
            ("audit_event_list as an organization's admin", "audit_event_list", {}, admin),
            ("audit_event_list dataset=hot", "audit_event_list", {"dataset": names[hot_ds[0]]}),
            ("audit_event_list outcome=refused, a month", "audit_event_list", {"outcome": "refused", **month}),
            ("audit_event_list user=hot event=sql", "audit_event_list",
             {"user": unames[hot_user[0]], "event": "datastore_search_sql"}),
            (f"audit_report_dataset hot ({hot_ds[1]:,} events), all time", "audit_report_dataset",
             {"id": names[hot_ds[0]]}),
            ("audit_report_dataset hot, a month", "audit_report_dataset", {"id": names[hot_ds[0]], **month}),
            (f"audit_report_dataset median ({mid_ds[1]:,} events)", "audit_report_dataset", {"id": names[mid_ds[0]]}),
            (f"audit_report_user hot ({hot_user[1]:,} events), all time", "audit_report_user",
             {"id": unames[hot_user[0]]}),
            (f"audit_report_user median ({mid_user[1]:,} events)", "audit_report_user", {"id": unames[mid_user[0]]}),
            ("audit_report_grants, all", "audit_report_grants", {}),
            ("audit_report_grants expired+revoked", "audit_report_grants", {"state": ["expired", "revoked"]}),
            ("audit_report_denials, a month", "audit_report_denials", month),
            ("audit_report_denials, all time", "audit_report_denials", {}),
        ]
        print(f"\n{'report':<58} {'best ms':>8} {'p50 ms':>8} {'rows':>7}")
        plans = []
        worst = 0.0
        for label, name, params, *who in cases:
            best, median, n = timed(who[0] if who else ctx, name, params, args.repeat, captured)
            worst = max(worst, median)
            print(f"{label:<58} {best:8.1f} {median:8.1f} {n:7,}")
            plans.append((label, list(captured)))
        print(f"\nslowest p50: {worst:.1f} ms (goal ≤ 200 ms); load average {os.getloadavg()[0]:.1f} "
              f"on {os.cpu_count()} cores (other work on the machine slows every figure)")
        if not args.no_plans:
            with platform.engine.connect() as conn:
                for label, queries in plans:
                    print(f"\n-- {label}")
                    for statement, parameters in queries:
                        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                        for row in rows:
                            print("   ", row[-1])
        platform.close()


if __name__ == "__main__":
    main()
