"""Sorted deep pages: sorting every row per page (SQL) against a take from the kept row order.

Run: `.venv/bin/python bench/sort.py` (10 million rows) or `--rows 2000000 --calls 20`. It
starts its own SeaweedFS and `mosu up`, publishes the table of `bench/preview.py`, and then,
in the same run, for `sort` = "price desc" and "note" (text) at a deep offset:
  - SQL path: the same sort with `_id` as a second key (the order the row order gives, but two
    keys keep `datastore_search` on DuckDB's ORDER BY of every row);
  - row order: the one-key sort, answered by a take from the column's kept order (issue 16);
    its first call is sorted in SQL and starts the order's build in the background: reported
    apart ("first"), with the seconds until pages come from the order ("ready").
Calls alternate between the two, so both see the same noise; the pages are checked equal.
The load average is printed: the figures mean little without it.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import platform, wait  # noqa: E402
from bench.preview import Http, generate_parquet, pct  # noqa: E402
from catalog.cli.client import push_parts  # noqa: E402


def timed(http: Http, data: dict) -> tuple[float, dict]:
    t = time.perf_counter()
    result = http.call("datastore_search", data)
    return (time.perf_counter() - t) * 1000, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--calls", type=int, default=30, help="calls of each path and sort (default 30)")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    deep = args.rows // 2
    with tempfile.TemporaryDirectory(prefix="mosu-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        local = work / "data.parquet"
        generate_parquet(local, args.rows)
        with platform(work) as bench:
            res = push_parts(bench.client, local, {"package_id": bench.package["id"], "name": "data.parquet"})
            assert wait(bench.client, res["id"])["state"] == "done"
            http = Http(bench.mosu.url)
            base = {"resource_id": res["id"], "limit": 100, "offset": deep}
            ms, _ = timed(http, {"resource_id": res["id"], "sort": "id desc, _id", "limit": 1})
            print(f"{args.rows:,} rows; table cache built by the first query in {ms:.0f} ms; "
                  f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            print(f"{'sort (offset ' + format(deep, ',') + ')':28s} {'path':10s} {'first':>7s} {'ready':>7s} "
                  f"{'p50':>7s} {'p95':>7s}  (ms, {args.calls} calls; ready in s)")
            for sort in ("price desc", "price", "note"):
                start = time.perf_counter()
                first, _ = timed(http, {**base, "sort": sort})
                while time.perf_counter() - start < 120:  # until a page is clearly not a sort of every row
                    ms, _ = timed(http, {**base, "sort": sort})
                    if ms < first / 3:
                        break
                    time.sleep(0.2)
                ready = time.perf_counter() - start
                sql: list[float] = []
                order: list[float] = []
                for _ in range(args.calls):
                    a, by_sql = timed(http, {**base, "sort": f"{sort}, _id"})
                    b, by_order = timed(http, {**base, "sort": sort})
                    assert by_sql["records"] == by_order["records"], sort
                    sql.append(a)
                    order.append(b)
                print(f"{sort:28s} {'SQL':10s} {'':>7s} {'':>7s} {pct(sql, 0.5):7.1f} {pct(sql, 0.95):7.1f}")
                print(f"{'':28s} {'row order':10s} {first:7.0f} {ready:7.1f} {pct(order, 0.5):7.1f} "
                      f"{pct(order, 0.95):7.1f}")
            print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
