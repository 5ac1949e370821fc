"""Ingest benchmark: Mosu's upload-complete -> published time against bare DuckDB, and peak memory.

Run: `.venv/bin/python bench/ingest.py` (10 million rows, ~1 GB of CSV) or
`--rows 50000000` for the ~5 GB run. It starts its own SeaweedFS and `mosu up`
on free loopback ports, generates a CSV (integers, floats, categories,
timestamps, free text), and in the same run measures:
  (a) bare DuckDB `COPY (FROM read_csv(...)) TO ... (FORMAT parquet, COMPRESSION zstd)`
      of the local file, with DuckDB's defaults;
  (b) Mosu: the client's upload throughput (multipart, as `mosu push` sends large
      files), then upload complete -> published (download of the raw object, sniff,
      convert, Great Expectations, publish), with the time of each stage as the
      worker recorded it in the job's progress;
  (c) the ingest worker's peak resident memory (VmHWM of the worker process).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import platform, wait  # noqa: E402
from catalog.cli.client import push_parts  # noqa: E402


def generate_csv(path: Path, rows: int) -> None:
    """~100 bytes a row: an id, a count, two floats, a category, a timestamp and a sentence."""
    duckdb.execute(f"""COPY (
        SELECT i AS id, (i * 7919) % 100000 AS quantity, round(random() * 10000, 2) AS price,
               random() AS score, 'category_' || (i % 53) AS category,
               TIMESTAMP '2015-01-01' + INTERVAL (i * 13) SECOND AS observed_at,
               'record ' || i || ' says ' || ['alpha', 'beta', 'gamma', 'delta'][1 + i % 4]
                 || ' near station ' || (i % 997) AS note
        FROM range({rows}) t(i)) TO '{path}' (HEADER, DELIMITER ',')""")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the worker processes of `mosu up`)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def worker_peak_rss(root_pid: int) -> dict[int, int]:
    """VmHWM (peak resident set) in bytes of each ingest worker process under ``root_pid``."""
    peaks = {}
    for pid in descendants(root_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"worker" not in cmdline:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = int(line.split()[1]) * 1024
        except OSError:
            continue
    return peaks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--workdir", type=Path, default=None, help="where to put the files (default: a temp dir)")
    ap.add_argument("--convert-memory-limit", default=None, help="MOSU_CONVERT_MEMORY_LIMIT for the worker")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mosu-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        csv = work / "data.csv"
        t = time.perf_counter()
        generate_csv(csv, args.rows)
        size = csv.stat().st_size
        print(f"CSV: {args.rows:,} rows, {size / 1e6:,.0f} MB (generated in {time.perf_counter() - t:.1f} s)")

        t = time.perf_counter()
        duckdb.connect().execute(f"COPY (FROM read_csv('{csv}')) TO '{work / 'bare.parquet'}' "
                                 "(FORMAT parquet, COMPRESSION zstd)")
        bare = time.perf_counter() - t
        (work / "bare.parquet").unlink()
        print(f"(a) bare DuckDB CSV->Parquet: {bare:.2f} s ({size / 1e6 / bare:.0f} MB/s)")

        limits = {"convert_memory_limit": args.convert_memory_limit} if args.convert_memory_limit else {}
        with platform(work, **limits) as bench:
            mosu, settings, client, pkg = bench.mosu, bench.settings, bench.client, bench.package
            t = time.perf_counter()
            res = push_parts(client, csv, {"package_id": pkg["id"], "name": "data.csv"})
            uploaded = time.perf_counter() - t
            t = time.perf_counter()
            status = wait(client, res["id"])
            ingest = time.perf_counter() - t
            assert status["state"] == "done", status
            peaks = worker_peak_rss(mosu.proc.pid)
            progress = status["progress"]
            print(f"    client upload (multipart, presigned parts): {uploaded:.2f} s "
                  f"({size / 1e6 / uploaded:.0f} MB/s)")
            print(f"    conversion memory limit: {settings.convert_memory_limit}")
            print(f"(b) Mosu ingest, upload complete -> published: {ingest:.2f} s "
                  f"({size / 1e6 / ingest:.0f} MB/s); ratio to (a): {ingest / bare:.2f}x (goal <= 2x)")
            stages = ", ".join(f"{k} {v:.2f} s" for k, v in progress.get("seconds", {}).items())
            print(f"    worker stages: {stages}; rows {progress.get('rows', 0):,}")
            for pid, peak in peaks.items():
                print(f"(c) worker {pid} peak RSS: {peak / 2**20:,.0f} MiB (goal <= 512 MiB)")


if __name__ == "__main__":
    main()
