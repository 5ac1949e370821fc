"""Quality benchmark: profile + validation + PII scan against the bare CSV->Parquet conversion.

Run: `.venv/bin/python bench/quality.py [--rows N]` (10 million rows, the data of
bench/ingest.py). In one run it generates the CSV, times (a) a bare DuckDB
`COPY (FROM read_csv(...)) TO ... (FORMAT parquet, COMPRESSION zstd)` and then, on a
Parquet written the way the worker writes it (16,384-row groups), the worker's
quality step (`quality.report.build`, the code the ingest worker runs):
  (b) the first version: profile, default suite generated (with the exact key check),
      validation, PII scan;
  (c) a later version: profile, validation against that suite, PII scan.
Goal: (b) and (c) each <= 50 % of (a); the process's peak RSS <= 1.5 GB (Great
Expectations is imported, as in the worker).
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.ingest import generate_csv  # noqa: E402
from quality import report  # noqa: E402


def prepare(work: Path, rows: int) -> None:
    """In a child process: the CSV, the timed bare conversion, and the worker-shaped Parquet."""
    csv = work / "data.csv"
    generate_csv(csv, rows)
    t = time.perf_counter()
    duckdb.connect().execute(f"COPY (FROM read_csv('{csv}')) TO '{work / 'bare.parquet'}' "
                             "(FORMAT parquet, COMPRESSION zstd)")
    bare = time.perf_counter() - t
    duckdb.connect().execute(f"COPY (FROM read_csv('{csv}')) TO '{work / 'data.parquet'}' "
                             "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 16384)")
    print(f"{bare:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.prepare:
        return prepare(args.prepare, args.rows)
    import great_expectations  # noqa: F401 - the worker has it loaded; count its memory too

    with tempfile.TemporaryDirectory(prefix="mosu-bench-quality-") as tmp:
        work = Path(tmp)
        csv, parquet = work / "data.csv", work / "data.parquet"
        # The data is made in a child process, so this process's peak memory is the quality step's.
        bare = float(subprocess.run([sys.executable, __file__, "--prepare", str(work), "--rows", str(args.rows)],
                                    check=True, capture_output=True, text=True).stdout.split()[-1])
        print(f"CSV: {args.rows:,} rows, {csv.stat().st_size / 1e6:,.0f} MB")
        print(f"(a) bare DuckDB CSV->Parquet: {bare:.2f} s")
        con = report.connect()
        suite = None
        for label in ("(b) first version (suite generated)", "(c) later version"):
            t = time.perf_counter()
            built = report.build(con, parquet, "bench", 1, "bench", suite)
            elapsed = time.perf_counter() - t
            suite = built["suite"]
            parts = ", ".join(f"{k} {v:.2f} s" for k, v in built["seconds"].items())
            print(f"{label}: {elapsed:.2f} s = {elapsed / bare:.0%} of (a) (goal <= 50 %); {parts}; "
                  f"{built['summary']['passed']}/{built['summary']['expectations']} expectations passed, "
                  f"{len(built['pii'])} PII findings, score {built['score']}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process (GX imported): {peak:,.0f} MiB (goal <= 1536 MiB)")


if __name__ == "__main__":
    main()
