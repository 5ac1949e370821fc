"""Column profile time vs DuckDB's SUMMARIZE on the same Parquet file, in the same run.

Run: `.venv/bin/python bench/profile.py [PATH] [--repeat N]` (default
/tmp/bench/out.parquet, a 10M-row zstd Parquet from bench/ingest.py's data).
Both use one DuckDB connection with 2 threads and a 512 MB memory limit. The
profile runs ``--repeat`` times (the best and median are printed, the machines
are noisy), SUMMARIZE once; then the process peak RSS. The goal: profile plus
validation within 50 % of the bare CSV->Parquet conversion (~3.7-4.0 s here).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from quality.profile import connect, profile_parquet  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", nargs="?", default="/tmp/bench/out.parquet", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-summarize", action="store_true", help="skip SUMMARIZE (it takes ~10x longer)")
    args = ap.parse_args()
    con = connect(threads=2, memory_limit="512MB")

    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        prof = profile_parquet(con, args.path)
        times.append(time.perf_counter() - t)
    print(f"{args.path}: {prof['row_count']:,} rows, {len(prof['columns'])} columns")
    print(f"profile:   best {min(times):.3f} s, median {statistics.median(times):.3f} s ({args.repeat} runs)")
    rss_profile = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS after the profile: {rss_profile:.0f} MiB")

    if not args.no_summarize:
        t = time.perf_counter()
        con.execute(f"SUMMARIZE SELECT * FROM read_parquet('{args.path}')").fetchall()
        summarize = time.perf_counter() - t
        print(f"SUMMARIZE: {summarize:.3f} s; profile best is {min(times) / summarize:.1%} of it")
        print(f"peak RSS after SUMMARIZE: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    for col in prof["columns"]:
        print(f"  {col['name']:<16} {col['type']:<12} exact={','.join(col['exact'])} "
              f"approximate={','.join(col['approximate']) or '-'} sampled={','.join(col['sampled']) or '-'}")


if __name__ == "__main__":
    main()
