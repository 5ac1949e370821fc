"""Access benchmark: what the access policy costs on the two hot paths of issue 12.

Run: `.venv/bin/python bench/access.py` (defaults below) or, quicker,
`--rows 100000 --calls 100 --datasets 10000 --grants 200 --queries 50`.

1. Preview: one table uploaded twice, into an ``open`` dataset and a ``restricted`` one that a
   researcher reads through an active grant (``access_grant_create``). The same first page
   (``datastore_search``, limit 100) is fetched alternately from each, as that researcher, over
   HTTP; p50/p95 of each and the difference of the p50s (goal: ≤ 1 ms).
2. Search: ``--datasets`` synthetic datasets (``bench/search.py``'s generator, loaded through
   ``package_create``), ``--grants`` of them restricted and granted to one researcher. The same
   ``package_search`` queries (rows=20, three facets) alternately as that researcher and as a
   sysadmin; p50 of each and the ratio (goal: within 10 %).
Both comparisons are made in the same run, alternating calls, since these machines are noisy.
"""
from __future__ import annotations

import argparse
import io
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import platform, wait  # noqa: E402
from bench.search import load_part, make_queries  # noqa: E402
from catalog.access.context import Actor, Context  # noqa: E402
from catalog.actions import call  # noqa: E402
from catalog.core.settings import Settings  # noqa: E402
from catalog.platform import Platform  # noqa: E402
from tests.conftest import start_mosu  # noqa: E402


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(round(p * len(ordered))) - 1))]


def csv_rows(rows: int) -> bytes:
    out = io.StringIO()
    out.write("id,city,score,national_id\n")
    for i in range(rows):
        out.write(f"{i},city-{i % 97},{(i * 7919) % 1000 / 10},ID{i:012d}\n")
    return out.getvalue().encode()


def preview(rows: int, calls: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mosu-access-bench-") as tmp, platform(Path(tmp)) as b:
        body = csv_rows(rows)
        org = b.ckan.action.organization_create(name="access-bench")
        ids = {}
        for level in ("open", "restricted"):
            pkg = b.ckan.action.package_create(name=f"bench-{level}", owner_org=org["id"], access_level=level)
            res = b.ckan.action.resource_create(package_id=pkg["id"], upload=("t.csv", io.BytesIO(body)))
            done = wait(b.client, res["id"])
            assert done["ingest_status"] == "ready", done
            ids[level] = res["id"]
        token = b.mosu.token("researcher")
        b.ckan.action.access_grant_create(package_id="bench-restricted", user_id="researcher", days=30)
        session = requests.Session()
        session.headers["Authorization"] = token
        url = b.mosu.url + "/api/3/action/datastore_search"
        times: dict[str, list[float]] = {"open": [], "restricted": []}
        for level in ids:  # warm both: the first call maps the table
            session.post(url, json={"resource_id": ids[level], "limit": 100}).raise_for_status()
        for _ in range(calls):
            for level, rid in ids.items():
                t = time.perf_counter()
                r = session.post(url, json={"resource_id": rid, "limit": 100})
                times[level].append((time.perf_counter() - t) * 1000)
                assert r.ok and len(r.json()["result"]["records"]) == 100, r.text[:300]
        p50 = {k: statistics.median(v) for k, v in times.items()}
        print(f"preview, first page of {rows:,} rows (limit 100), {calls} calls each, alternating, as the researcher:")
        for level in ids:
            print(f"  {level:<10} p50 {p50[level]:.2f} ms  p95 {pct(times[level], 0.95):.2f} ms")
        print(f"  the policy's cost (restricted through a grant − open), p50: {p50['restricted'] - p50['open']:+.2f} ms"
              "  goal ≤ 1 ms")


def search(datasets: int, grants: int, queries: int, processes: int) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="mosu-access-search-") as tmp:
        data_dir = Path(tmp) / "data"
        plat = Platform.open(Settings(data_dir=data_dir))
        site = Context(platform=plat, actor=Actor.site())
        orgs = [f"org-{i:02d}" for i in range(60)]
        for name in orgs:
            call(site, "organization_create", {"name": name})
        started = time.perf_counter()
        jobs = [(str(data_dir), datasets, processes, k, orgs) for k in range(processes)]
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            pool.map(load_part, jobs)
        print(f"search: {datasets:,} datasets loaded in {time.perf_counter() - started:.0f} s")
        call(site, "user_create", {"name": "researcher", "email": "r@example.org", "password": "bench-password"})
        call(site, "user_create", {"name": "admin", "email": "a@example.org", "password": "bench-password",
                                   "sysadmin": True})
        started = time.perf_counter()
        for i in rng.sample(range(datasets), grants):
            call(site, "package_patch", {"id": f"ds-{i:06d}", "access_level": "restricted"})
            call(site, "access_grant_create", {"package_id": f"ds-{i:06d}", "user_id": "researcher", "days": 30})
        took = time.perf_counter() - started
        print(f"  {grants:,} datasets restricted and granted to one researcher in {took:.0f} s")
        plat.close()
        mosu = start_mosu(data_dir, {}, Settings(data_dir=data_dir), ("--workers", "0"))
        try:
            tokens = {who: mosu.token(who, sysadmin=who == "admin") for who in ("researcher", "admin")}
            sessions = {}
            for who, token in tokens.items():
                sessions[who] = requests.Session()
                sessions[who].headers["Authorization"] = token
            url = mosu.url + "/api/3/action/package_search"
            for s in sessions.values():
                s.get(url, params={"q": "*:*", "rows": 1}).raise_for_status()  # the index is built
            qs = make_queries(rng, queries, orgs)
            times: dict[str, list[float]] = {who: [] for who in sessions}
            for q in qs:
                for who, s in sessions.items():
                    t = time.perf_counter()
                    r = s.get(url, params=q)
                    times[who].append((time.perf_counter() - t) * 1000)
                    assert r.ok, r.text[:300]
        finally:
            mosu.stop()
    p50 = {k: statistics.median(v) for k, v in times.items()}
    print(f"  package_search, {queries} queries each, alternating (rows=20, three facets):")
    for who in times:
        print(f"    {who:<11} p50 {p50[who]:.1f} ms  p95 {pct(times[who], 0.95):.1f} ms")
    print(f"    researcher with {grants:,} grants / sysadmin, p50: {p50['researcher'] / p50['admin']:.3f}"
          "  goal ≤ 1.10")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--datasets", type=int, default=100_000)
    ap.add_argument("--grants", type=int, default=1_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--only", choices=("preview", "search"))
    args = ap.parse_args()
    if args.only != "search":
        preview(args.rows, args.calls)
    if args.only != "preview":
        search(args.datasets, args.grants, args.queries, args.processes)


if __name__ == "__main__":
    main()
