"""Audit benchmark: what recording every read costs on the preview path (issue 13).

Run: `.venv/bin/python bench/audit.py` (defaults below) or, quicker,
`--rows 200000 --calls 100 --seconds 10`; `--all` also runs `bench/audit_verify.py` and
`bench/audit_reports.py` when they exist.

A table (`bench/preview.py`'s columns, `--rows` rows, the published Parquet layout) is uploaded
to an open dataset through `mosu up` and published. Then two web servers are started on the same
data directory, database and object store, each as `mosu up` serves (the same Flask app, waitress
with 8 threads): one as shipped, one in which `audit.record_read` is replaced by a no-op (in that
benchmark process only: the product has no switch to turn auditing off). A researcher with an API
token fetches the first page (`datastore_search`, limit 100) of the resource:
  (1) one client, alternating call by call between the two servers: p50, p95, throughput;
  (2) `--clients` clients (default 20), in alternating blocks of `--block` seconds on each server
      for `--seconds` seconds per server: requests, errors, throughput, p50, p95.
The overhead is audited / not audited − 1 for p50 and not audited / audited − 1 for throughput;
goal ≤ 5 % each. The audit events the audited server wrote are counted against its answers.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.harness import platform, wait  # noqa: E402
from bench.preview import generate_parquet  # noqa: E402
from catalog.cli.client import push_parts  # noqa: E402
from catalog.storage.seaweed import free_port  # noqa: E402

GOAL = 0.05


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(round(p * len(ordered))) - 1))]


def serve(port: int, audited: bool) -> None:
    """Run the web app as `mosu up` does (settings from MOSU_*), with or without read auditing."""
    import waitress

    from catalog.cli.app import create_app
    from catalog.core.settings import Settings
    from catalog.platform import Platform
    from catalog.records import audit

    batches: list[tuple[int, float]] = []  # (events, ms) of each group commit
    reads: list[float] = []  # ms of each record_read call, waiting for its commit included
    if audited:
        write = audit.ReadLog._write

        def timed(self, batch):  # noqa: ANN001 - the benchmark's own instrument
            t = time.perf_counter()
            try:
                write(self, batch)
            finally:
                batches.append((len(batch), (time.perf_counter() - t) * 1000))

        audit.ReadLog._write = timed
        record_read = audit.record_read

        def timed_read(*args, **kwargs):  # noqa: ANN002, ANN003 - the benchmark's own instrument
            t = time.perf_counter()
            try:
                return record_read(*args, **kwargs)
            finally:
                reads.append((time.perf_counter() - t) * 1000)

        audit.record_read = timed_read
    else:
        audit.record_read = lambda *args, **kwargs: ""  # the benchmark's "without" arm only
    plat = Platform.open(Settings.from_env())
    server = waitress.create_server(create_app(platform=plat), host="127.0.0.1", port=port, threads=8,
                                    ident="mosu", channel_request_lookahead=1)
    signal.signal(signal.SIGTERM, lambda *_: server.close())
    signal.signal(signal.SIGUSR1, lambda *_: print(json.dumps({"commits": batches, "reads": reads}), flush=True))
    try:
        server.run()
    except (OSError, ValueError):  # the listening socket closed under the loop by SIGTERM
        pass
    finally:
        plat.close()


class Server:
    """A `serve` child process on a free port."""

    def __init__(self, env: dict[str, str], audited: bool, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/3/action/datastore_search"
        self.log = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, __file__, "serve", "--port", str(self.port)]
                                     + ([] if audited else ["--no-audit"]), env=env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(self.url.replace("datastore_search", "status_show"), timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"the {'audited' if audited else 'unaudited'} server did not start; see {log}")

    def batches(self) -> dict[str, list]:
        """The audited server's group commits so far, (events, ms) each, and its record_read calls
        (ms each, waiting for the commit included): it prints them on SIGUSR1."""
        self.log.flush()
        size = Path(self.log.name).stat().st_size
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(self.log.name, "rb") as fh:
                fh.seek(size)
                tail = fh.read().decode(errors="replace")
            for text in tail.splitlines():
                if text.startswith("{"):
                    return json.loads(text)
            time.sleep(0.05)
        return {"commits": [], "reads": []}

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def fetch(session: requests.Session, url: str, body: dict[str, Any]) -> float:
    t = time.perf_counter()
    r = session.post(url, json=body, timeout=120)
    took = (time.perf_counter() - t) * 1000
    if r.status_code != 200 or len(r.json()["result"]["records"]) != body["limit"]:
        raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")
    return took


def line(name: str, times: list[float], seconds: float, errors: int = 0) -> str:
    return (f"  {name:<12} requests {len(times):6,}  errors {errors}  throughput {len(times) / seconds:7.1f}/s  "
            f"p50 {statistics.median(times):7.2f} ms  p95 {pct(times, 0.95):7.2f} ms")


def overhead(label: str, audited: tuple[list[float], float], plain: tuple[list[float], float]) -> None:
    p50 = statistics.median(audited[0]) / statistics.median(plain[0]) - 1
    p95 = pct(audited[0], 0.95) / pct(plain[0], 0.95) - 1
    thr = (len(plain[0]) / plain[1]) / (len(audited[0]) / audited[1]) - 1
    verdict = "met" if p50 <= GOAL and thr <= GOAL else "MISSED"
    print(f"  overhead ({label}): p50 {p50:+.1%}, p95 {p95:+.1%}, throughput {thr:+.1%}  "
          f"goal ≤ {GOAL:.0%} on p50 and throughput: {verdict}")


def single(urls: dict[str, str], token: str, body: dict[str, Any], calls: int) -> dict[str, tuple[list[float], float]]:
    session = requests.Session()
    session.headers["Authorization"] = token
    times: dict[str, list[float]] = {k: [] for k in urls}
    for _ in range(calls):
        for arm, url in urls.items():
            times[arm].append(fetch(session, url, body))
    # Sequential calls: throughput is 1 / mean latency of the arm's own calls.
    return {arm: (t, sum(t) / 1000) for arm, t in times.items()}


def concurrent(urls: dict[str, str], token: str, body: dict[str, Any], clients: int, seconds: float,
               block: float) -> dict[str, tuple[list[float], float, int]]:
    results: dict[str, tuple[list[float], float, int]] = {k: ([], 0.0, 0) for k in urls}
    sessions = []
    for _ in range(clients):
        s = requests.Session()
        s.headers["Authorization"] = token
        sessions.append(s)
    rounds = max(1, round(seconds / block))
    for r in range(rounds):
        for arm in (list(urls) if r % 2 == 0 else list(reversed(urls))):
            times, took, errors = burst(sessions, urls[arm], body, block)
            old = results[arm]
            results[arm] = (old[0] + times, old[1] + took, old[2] + errors)
    return results


def burst(sessions: list[requests.Session], url: str, body: dict[str, Any],
          seconds: float) -> tuple[list[float], float, int]:
    """Every session in its own thread fetching ``url`` for ``seconds``: latencies, elapsed, errors."""
    lock, times, errors = threading.Lock(), [], [0]
    deadline = time.monotonic() + seconds

    def client(session: requests.Session) -> None:
        mine, bad = [], 0
        while time.monotonic() < deadline:
            try:
                mine.append(fetch(session, url, body))
            except (RuntimeError, requests.RequestException):
                bad += 1
        with lock:
            times.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client, args=(s,)) for s in sessions]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return times, time.perf_counter() - t, errors[0]


def group_commits(label: str, before: dict[str, list], after: dict[str, list]) -> None:
    commits, calls = after["commits"][len(before["commits"]):], after["reads"][len(before["reads"]):]
    if commits and calls:
        sizes, ms = [b[0] for b in commits], [b[1] for b in commits]
        print(f"  group commits ({label}): {len(commits):,}, events per commit mean {statistics.mean(sizes):.2f} "
              f"max {max(sizes)}; ms per commit p50 {statistics.median(ms):.2f} p95 {pct(ms, 0.95):.2f} "
              f"max {max(ms):.1f}; ms per record_read call p50 {statistics.median(calls):.2f} "
              f"p95 {pct(calls, 0.95):.2f}")


def audit_rows(settings) -> int:
    from sqlalchemy import func, select

    from catalog.db.models import AuditEvent
    from catalog.platform import Platform

    plat = Platform.open(settings)
    try:
        with plat.read() as s:
            return s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "datastore_search")) or 0
    finally:
        plat.close()


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="mosu-audit-bench-") as tmp, platform(Path(tmp)) as b:
        local = Path(tmp) / "data.parquet"
        generate_parquet(local, args.rows)
        res = push_parts(b.client, local, {"package_id": b.package["id"], "name": "data.parquet"})
        status = wait(b.client, res["id"])
        assert status["state"] == "done", status
        token = b.mosu.token("researcher")
        env = {**b.mosu.env, **b.settings.to_env()}
        servers = {"audited": Server(env, True, Path(tmp) / "audited.log"),
                   "not audited": Server(env, False, Path(tmp) / "plain.log")}
        try:
            urls = {arm: s.url for arm, s in servers.items()}
            body = {"resource_id": res["id"], "limit": 100}
            for _ in range(20):  # warm both: the first call maps the table, the rest fill caches
                single(urls, token, body, 1)
            before = audit_rows(b.settings)
            warm = servers["audited"].batches()
            print(f"preview: first page (datastore_search, limit 100) of {args.rows:,} rows, as a researcher, "
                  f"over HTTP; {os.cpu_count()} cores")
            print(f"(1) one client, {args.calls} calls per server, alternating call by call:")
            one = single(urls, token, body, args.calls)
            for arm, (times, took) in one.items():
                print(line(arm, times, took))
            overhead("1 client", one["audited"], one["not audited"])
            first = servers["audited"].batches()
            print(f"(2) {args.clients} clients, {args.seconds:g} s per server in alternating {args.block:g} s blocks:")
            many = concurrent(urls, token, body, args.clients, args.seconds, args.block)
            for arm, (times, took, errors) in many.items():
                print(line(arm, times, took, errors))
            overhead(f"{args.clients} clients", many["audited"][:2], many["not audited"][:2])
            written = audit_rows(b.settings) - before
            expected = len(one["audited"][0]) + len(many["audited"][0])
            print(f"  audit events written by the audited server: {written:,} for {expected:,} answers "
                  f"({'one each' if written == expected else 'MISMATCH'})")
            end = servers["audited"].batches()
            group_commits("1 client", warm, first)
            group_commits(f"{args.clients} clients", first, end)
        finally:
            for s in servers.values():
                s.stop()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        sp = argparse.ArgumentParser()
        sp.add_argument("serve")
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--no-audit", action="store_true")
        a = sp.parse_args()
        serve(a.port, not a.no_audit)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=1000, help="one-client calls per server (default 1000)")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30, help="seconds per server with --clients (default 30)")
    ap.add_argument("--block", type=float, default=2, help="seconds of each alternating block (default 2)")
    ap.add_argument("--all", action="store_true", help="also run bench/audit_verify.py and bench/audit_reports.py")
    args = ap.parse_args()
    run(args)
    if args.all:
        for name in ("audit_verify.py", "audit_reports.py"):
            script = ROOT / "bench" / name
            if script.exists():
                print(f"\n== bench/{name}", flush=True)
                subprocess.run([sys.executable, str(script)], cwd=ROOT, check=False)
            else:
                print(f"\n== bench/{name}: not there (yet)")


if __name__ == "__main__":
    main()
