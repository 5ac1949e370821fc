"""Preview benchmark: DataStore queries over HTTP against the same queries in a warm bare DuckDB.

Run: `.venv/bin/python bench/preview.py` (10 million rows) or, for a quick check,
`--rows 200000 --calls 10 --concurrency-seconds 5`. It starts its own SeaweedFS and
`mosu up` on free loopback ports, writes a table (integers, floats, a category, a
timestamp, text; the columns of `bench/ingest.py`) as zstd Parquet with 16,384-row
groups (the layout the worker publishes), uploads it with the multipart client and
waits until it is published. Then, in the same run:
  (a) each query once over HTTP ("cold": the first call may build a cache on the server);
  (b) p50/p95 over `--calls` calls of each query through HTTP (POST JSON to
      /api/3/action/<name>) and of the same query in a warm bare DuckDB connection on
      the local Parquet: first page, deep page, filtered page, sort on a numeric column,
      count(*), a GROUP BY and a filtered aggregate, with the goals;
  (c) `--concurrency-clients` threads, each a user with its own token, for
      `--concurrency-seconds` issuing a random mix of pages (first, random offsets,
      filtered, sorted): requests, errors, throughput, p50/p95/p99.
A query the server does not answer yet (an error, or a `filters`/`sort` parameter it
ignores) is reported as "not available" instead of stopping the run.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import platform, publish  # noqa: E402

ROW_GROUP = 16_384
CATEGORIES = 53


def generate_parquet(path: Path, rows: int) -> None:
    """The rows of `bench.ingest.generate_csv`, written straight to Parquet in the published layout."""
    duckdb.connect().execute(f"""COPY (
        SELECT i AS id, (i * 7919) % 100000 AS quantity, round(random() * 10000, 2) AS price,
               random() AS score, 'category_' || (i % {CATEGORIES}) AS category,
               TIMESTAMP '2015-01-01' + INTERVAL (i * 13) SECOND AS observed_at,
               'record ' || i || ' says ' || ['alpha', 'beta', 'gamma', 'delta'][1 + i % 4]
                 || ' near station ' || (i % 997) AS note
        FROM range({rows}) t(i)) TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP})""")


def pct(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(round(p * len(ordered))) - 1))]


class Unavailable(Exception):
    """The server does not answer this query (yet)."""


class Http:
    """POST JSON to the Action API on one keep-alive session; raises Unavailable on any failure."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = token

    def call(self, action: str, data: dict[str, Any]) -> Any:
        try:
            resp = self.session.post(f"{self.url}/api/3/action/{action}", json=data, timeout=120)
        except requests.RequestException as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}") from None
        try:
            body = resp.json()
        except ValueError:
            raise Unavailable(f"HTTP {resp.status_code}, not JSON") from None
        if resp.status_code != 200 or not body.get("success"):
            error = body.get("error") or {}
            message = error.get("message") or {k: v for k, v in error.items() if k != "__type"} or error
            raise Unavailable(f"HTTP {resp.status_code} {error.get('__type', '')}: {message}"[:200])
        return body["result"]


def first_values(result: dict[str, Any]) -> list[Any]:
    """The values of the first record of a datastore_search(_sql) result (records as objects or lists)."""
    records = result.get("records") or []
    if not records:
        raise Unavailable("no records")
    row = records[0]
    return [v for k, v in row.items() if k != "_id"] if isinstance(row, dict) else list(row)


@dataclass
class Query:
    label: str
    action: str
    data: dict[str, Any]
    bare_sql: str
    check: Callable[[dict[str, Any], list[tuple]], None]
    goal_ms: float | None = None
    cold_ms: float | None = None
    error: str | None = None
    http: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Unavailable(message)


def queries(resource_id: str, rows: int, deep: int) -> list[Query]:
    rid = f'"{resource_id}"'
    agg_where = "quantity < 1000 AND category = 'category_3'"

    def page(n: int = 100) -> Callable[[dict, list], None]:
        def check(res: dict, bare: list) -> None:
            expect(len(res.get("records", [])) == min(n, len(bare) or n), f"{len(res.get('records', []))} records")
        return check

    def offset_check(offset: int) -> Callable[[dict, list], None]:
        def check(res: dict, bare: list) -> None:
            page(100)(res, bare)
            expect(res["records"][0].get("id") == offset, f"first id {res['records'][0].get('id')}, not {offset}")
        return check

    def filtered(res: dict, bare: list) -> None:
        cats = {r.get("category") for r in res.get("records", [])}
        expect(cats == {"category_7"}, f"'filters' ignored (categories {sorted(cats)[:3]}...)")
        page(100)(res, bare)

    def sorted_desc(res: dict, bare: list) -> None:
        prices = [r.get("price") for r in res.get("records", [])]
        expect(prices == sorted(prices, reverse=True) and prices[:1] == [bare[0][2]],
               f"'sort' ignored (first prices {prices[:3]})")

    def scalar(res: dict, bare: list) -> None:
        expect(first_values(res)[0] == bare[0][0], f"{first_values(res)} != {bare[0]}")

    def groups(res: dict, bare: list) -> None:
        expect(len(res.get("records", [])) == len(bare), f"{len(res.get('records', []))} groups, not {len(bare)}")

    def agg(res: dict, bare: list) -> None:
        expect(first_values(res)[0] == bare[0][0], f"{first_values(res)} != {bare[0]}")

    search = "datastore_search"
    sql = "datastore_search_sql"
    return [
        Query("first page", search, {"resource_id": resource_id, "limit": 100},
              "SELECT * FROM t LIMIT 100", page(), goal_ms=15),
        Query(f"deep page (offset {deep:,})", search, {"resource_id": resource_id, "limit": 100, "offset": deep},
              f"SELECT * FROM t LIMIT 100 OFFSET {deep}", offset_check(deep), goal_ms=25),
        Query("filtered page (category_7)", search,
              {"resource_id": resource_id, "limit": 100, "filters": {"category": "category_7"}},
              "SELECT * FROM t WHERE category = 'category_7' LIMIT 100", filtered),
        Query("sort price desc", search, {"resource_id": resource_id, "limit": 100, "sort": "price desc"},
              "SELECT * FROM t ORDER BY price DESC LIMIT 100", sorted_desc),
        Query("SQL count(*)", sql, {"sql": f"SELECT count(*) FROM {rid}"},
              "SELECT count(*) FROM t", scalar),
        Query("SQL GROUP BY category", sql,
              {"sql": f"SELECT category, count(*), avg(price) FROM {rid} GROUP BY category"},
              "SELECT category, count(*), avg(price) FROM t GROUP BY category", groups),
        Query("SQL filtered aggregate", sql, {"sql": f"SELECT count(*), avg(price) FROM {rid} WHERE {agg_where}"},
              f"SELECT count(*), avg(price) FROM t WHERE {agg_where}", agg, goal_ms=300),
    ]


def measure(qs: list[Query], http: Http, con: duckdb.DuckDBPyConnection, calls: int) -> None:
    expected = {q.label: con.execute(q.bare_sql).fetchall() for q in qs}
    for q in qs:  # (a) cold: the first call of each query through HTTP
        t = time.perf_counter()
        try:
            result = http.call(q.action, q.data)
            q.cold_ms = (time.perf_counter() - t) * 1000
            q.check(result, expected[q.label])
        except Unavailable as exc:
            q.error = str(exc)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            q.error = f"unexpected result ({type(exc).__name__}: {exc})"
    for q in qs:  # (b) alternating HTTP and bare calls, so both see the same noise
        for _ in range(calls):
            if q.error is None:
                t = time.perf_counter()
                try:
                    http.call(q.action, q.data)
                    q.http.append((time.perf_counter() - t) * 1000)
                except Unavailable as exc:
                    q.error = f"failed while measuring: {exc}"
            t = time.perf_counter()
            con.execute(q.bare_sql).fetchall()
            q.bare.append((time.perf_counter() - t) * 1000)


def report(qs: list[Query], calls: int) -> None:
    print(f"\n(a, b) {calls} calls each; ms; 'ok' = HTTP p95 <= 2 x bare p95 + 10 ms")
    print(f"{'query':30s} {'cold':>7s} {'HTTP p50':>9s} {'p95':>7s} {'bare p50':>9s} {'p95':>7s}  ratio  goal")
    for q in qs:
        b50, b95 = pct(q.bare, 0.5), pct(q.bare, 0.95)
        if q.error is not None:
            print(f"{q.label:30s} not available: {q.error}  (bare p50 {b50:.1f} p95 {b95:.1f})")
            continue
        h50, h95 = pct(q.http, 0.5), pct(q.http, 0.95)
        ok = "ok" if h95 <= 2 * b95 + 10 else "SLOW"
        goal = "" if q.goal_ms is None else f"p95 <= {q.goal_ms:.0f}: {'met' if h95 <= q.goal_ms else 'MISSED'}"
        print(f"{q.label:30s} {q.cold_ms:7.1f} {h50:9.1f} {h95:7.1f} {b50:9.1f} {b95:7.1f}  {ok:5s}  {goal}")


def concurrency(url: str, resource_id: str, rows: int, available: set[str], tokens: list[str],
                seconds: float) -> None:
    """A thread per token (each its own user on its own session: a caller may run only a few queries at
    once, and 20 anonymous threads on one address would be one caller), issuing a random mix of pages
    for ``seconds``."""
    clients = len(tokens)
    kinds = ["first", "offset"] + [k for k in ("filtered", "sorted") if k in available]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def request(rng: random.Random) -> dict[str, Any]:
        data: dict[str, Any] = {"resource_id": resource_id, "limit": 100}
        kind = rng.choice(kinds)
        if kind == "offset":
            data["offset"] = rng.randrange(max(1, rows - 100))
        elif kind == "filtered":
            data["filters"] = {"category": f"category_{rng.randrange(CATEGORIES)}"}
            data["offset"] = rng.randrange(0, 1000)
        elif kind == "sorted":
            data["sort"] = rng.choice(["price desc", "price asc", "quantity desc", "score asc"])
            data["offset"] = rng.choice([0, 0, 100, rng.randrange(0, 10_000)])
        return data

    def client(seed: int) -> None:
        rng, http = random.Random(seed), Http(url, tokens[seed])
        mine, bad = [], []
        while time.monotonic() < deadline:
            data = request(rng)
            t = time.perf_counter()
            try:
                http.call("datastore_search", data)
            except Unavailable as exc:
                bad.append(str(exc))
            mine.append((time.perf_counter() - t) * 1000)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    print(f"\n(c) concurrency: {clients} clients for {seconds:g} s, mix of {', '.join(kinds)} pages")
    if not latencies:
        print("    no requests completed")
        return
    print(f"    requests {len(latencies):,}, errors {len(errors)} (goal 0), "
          f"throughput {len(latencies) / elapsed:,.0f}/s")
    print(f"    latency p50 {pct(latencies, 0.5):.1f} ms, p95 {pct(latencies, 0.95):.1f} ms, "
          f"p99 {pct(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms")
    for message in sorted(set(errors))[:5]:
        print(f"    error: {message} (x{errors.count(message)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--calls", type=int, default=50, help="calls of each query (default 50)")
    ap.add_argument("--concurrency-clients", type=int, default=20)
    ap.add_argument("--concurrency-seconds", type=float, default=60)
    ap.add_argument("--queue-length", type=int, default=None,
                    help="MOSU_QUERY_QUEUE_LENGTH of the server (default: the platform's default)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to put the files (default: a temp dir)")
    args = ap.parse_args()
    deep = min(5_000_000, args.rows // 2)
    with tempfile.TemporaryDirectory(prefix="mosu-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        local = work / "data.parquet"
        t = time.perf_counter()
        generate_parquet(local, args.rows)
        size = local.stat().st_size
        print(f"Parquet: {args.rows:,} rows, {size / 1e6:,.0f} MB, {ROW_GROUP:,}-row groups "
              f"(written in {time.perf_counter() - t:.1f} s)")

        server = {} if args.queue_length is None else {"query_queue_length": args.queue_length}
        with platform(work, **server) as bench:
            mosu = bench.mosu
            res, uploaded, published = publish(bench, local)
            print(f"    upload (multipart) {uploaded:.2f} s ({size / 1e6 / uploaded:.0f} MB/s); "
                  f"upload complete -> published {published:.2f} s")

            con = duckdb.connect()
            con.execute(f"CREATE VIEW t AS FROM '{local}'")
            qs = queries(res["id"], args.rows, deep)
            measure(qs, Http(mosu.url), con, args.calls)
            report(qs, args.calls)
            available = {kind for q, kind in zip(qs[2:4], ("filtered", "sorted")) if q.error is None}
            tokens = [mosu.token(f"bench-reader-{i}") for i in range(args.concurrency_clients)]
            concurrency(mosu.url, res["id"], args.rows, available, tokens, args.concurrency_seconds)


if __name__ == "__main__":
    main()
