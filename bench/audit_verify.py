"""Audit verification benchmark: ``mosu audit verify`` over a million events (goal ≤ 20 s, issue 13).

Run: `.venv/bin/python bench/audit_verify.py` (1,000,000 events) or `--events 100000` for a quick look.

A catalog on a fresh SQLite file and its own SeaweedFS; ``--events`` events shaped like the
reads and changes the platform records (a researcher's ``datastore_search`` with its envelope,
``package_patch`` by an editor) are inserted directly with their correct chain hashes (the
benchmark is of verifying, not of writing), a checkpoint is taken (root over every event, signed,
kept in the database and object storage), then the log is verified in-process
(:func:`catalog.records.verify.verify_platform`) and with the command (`mosu audit verify`).
Printed: build, checkpoint and verify times, events per second, and the verifier's peak memory.

Figures (1,000,000 events, 1,016 MiB catalog file, 2 cores, load average 2.0, Dec 2026): checkpoint
4.5 s; verify in-process 13.1 s (76,000 events/s; the second 63 % of the hashes checked by a second
process), `mosu audit verify` 15.1 s with its start-up: goal ≤ 20 s met. One process alone took
~21.6 s. Under a load average of 10 (other test suites on the same 2 cores) the same took 85 s.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from catalog.db.models import AuditEvent  # noqa: E402
from catalog.platform import Platform  # noqa: E402
from catalog.records import checkpoints, verify  # noqa: E402
from catalog.records.audit import GENESIS, event_hash, fields_of  # noqa: E402
from catalog.storage.seaweed import SeaweedServer  # noqa: E402
from tests.conftest import MOSU, clean_env, s3_settings  # noqa: E402


class _Row:
    """The values of one event, read by :func:`fields_of` as attributes."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)


def synthetic(i: int, base: dt.datetime, users: list[tuple[str, str]], resources: list[tuple[str, str, str]]) -> dict:
    """Event ``i``: nine reads for every change, as the access matrix's callers make them."""
    name, user_id = users[i % len(users)]
    package_id, resource_id, version_id = resources[i % len(resources)]
    values = {"id": str(uuid.UUID(int=i + 1)), "ts": base + dt.timedelta(milliseconds=37 * i), "actor": name,
              "actor_id": user_id, "role": "user", "client": f"10.0.{i % 250}.{i % 7}",
              "user_agent": "ckanapi/4.7 Python/3.12", "request_id": uuid.UUID(int=10**12 + i).hex[:16],
              "outcome": "ok", "package_id": package_id, "org_id": None, "grant_id": None,
              "agreement_version_id": None}
    if i % 10:
        values.update(action="datastore_search", object_type="resource", object_id=resource_id,
                      resource_id=resource_id,
                      detail={"version_id": version_id, "limit": 100, "offset": (i % 40) * 100, "rows": 100,
                              "via": "level:open"})
    else:
        values.update(action="package_patch", object_type="package", object_id=package_id, resource_id=None,
                      detail={"fields": ["notes"]})
    return values


def build(platform: Platform, events: int, batch: int = 20_000) -> None:
    """Append ``events`` events with correct hashes to ``platform``'s (empty) log, in batches."""
    base = dt.datetime(2026, 1, 1)
    users = [(f"researcher-{u}", str(uuid.UUID(int=2**40 + u))) for u in range(200)]
    resources = [(str(uuid.UUID(int=2**50 + r)), str(uuid.UUID(int=2**60 + r)), str(uuid.UUID(int=2**70 + r)))
                 for r in range(500)]
    prev, table = GENESIS, AuditEvent.__table__
    with platform.engine.begin() as conn:
        for first in range(0, events, batch):
            rows = []
            for i in range(first, min(events, first + batch)):
                values = synthetic(i, base, users, resources)
                digest = event_hash(prev, fields_of(_Row(values)))
                rows.append({**values, "seq": i + 1, "prev_hash": prev, "hash": digest})
                prev = digest
            conn.execute(table.insert(), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mosu-audit-bench-") as tmp, SeaweedServer(Path(tmp) / "s3") as s3:
        settings = s3_settings(s3, Path(tmp) / "data")
        platform = Platform.open(settings)
        platform.store.ensure_bucket()
        t0 = time.perf_counter()
        build(platform, args.events)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        head = checkpoints.take(platform)
        taken = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = verify.verify_platform(platform)
        verified = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        assert report.finding is None and report.events == args.events == head.tree_size, report.summary()
        env = {**clean_env(), **{k: v for k, v in settings.to_env().items()}}
        t0 = time.perf_counter()
        cli = subprocess.run([*MOSU, "audit", "verify"], env=env, capture_output=True, text=True, timeout=600)
        command = time.perf_counter() - t0
        size = os.path.getsize(settings.data_dir / "catalog.sqlite") / 2**20
        print(f"events: {args.events:,}  (catalog file {size:,.0f} MiB)")
        print(f"build (direct inserts with hashes): {built:.1f} s")
        print(f"checkpoint (root over every event, sign, keep twice): {taken:.2f} s")
        print(f"verify in-process: {verified:.2f} s = {args.events / verified:,.0f} events/s; "
              f"peak RSS of this process {peak} MiB")
        print(f"`mosu audit verify` (process start included): {command:.2f} s, exit {cli.returncode}: "
              f"{(cli.stdout or cli.stderr).strip()}")
        if args.events >= 1_000_000:
            print(f"goal ≤ 20 s over 1,000,000 events: {'met' if command <= 20 else 'NOT met'}")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        platform.close()


if __name__ == "__main__":
    main()
