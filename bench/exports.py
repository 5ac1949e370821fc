"""Export writers: seconds to write N rows as CSV, TSV, JSON lines and Parquet with
:func:`catalog.datastore.exports.stream`, and JSON lines the way it was written before (one ``json.dumps`` per
row in Python, holding the GIL) as the baseline of the same run.

Run: `.venv/bin/python bench/exports.py [--rows 500000] [--repeat 3] [--memory-rows 2000000]`. The table
has the columns of the preview benchmark (integers, floats, a category, a timestamp, a date, a decimal
and text); it is streamed in 2,048-row batches, as DuckDB hands an export's rows over. Best of
``--repeat`` runs.

Then the memory an export holds with the production slice and row-group sizes: ``--memory-rows``
rows (2M by default: ~64 MB of Arrow, ~57 MB of CSV) made 50,000 at a time while they are written,
the peak of Python (tracemalloc) plus Arrow allocations against the sizes of the input and output.
tests/test_exports.py checks the same bound on fewer rows with the sizes scaled down.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from catalog.datastore import exports  # noqa: E402
from catalog.datastore.sandbox import json_value  # noqa: E402


def table(rows: int) -> pa.Table:
    ids = pa.array(range(rows), pa.int64())
    start = dt.datetime(2024, 1, 1)
    return pa.table({
        "id": ids,
        "price": pc.multiply(ids, 0.37),
        "category": pc.binary_join_element_wise("category_", pc.cast(pc.bit_wise_and(ids, 63), pa.string()), ""),
        "ts": pa.array([start + dt.timedelta(seconds=i) for i in range(rows)], pa.timestamp("us")),
        "day": pa.array([(start + dt.timedelta(days=i % 3650)).date() for i in range(rows)], pa.date32()),
        "amount": pc.cast(pc.divide(pc.cast(ids, pa.float64()), 100.0), pa.decimal128(12, 2)),
        "note": pc.binary_join_element_wise("a \"quoted\" note, number ", pc.cast(ids, pa.string()), ""),
    })


def python_jsonl(reader: pa.RecordBatchReader):
    """The writer before: one JSON text per row, in Python."""
    for batch in reader:
        yield "".join(json.dumps(json_value(row), ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                                 default=str) + "\n" for row in batch.to_pylist()).encode()


def timed(write, data: pa.Table, repeat: int) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        size = sum(len(chunk) for chunk in write(data.to_reader(max_chunksize=2048)))
        best = min(best, time.perf_counter() - t0)
    return best, size


MEMORY_SCHEMA = pa.schema([("id", pa.int64()), ("x", pa.float64()), ("name", pa.string())])


def peak_memory(fmt: str, rows: int, batch: int = 50_000) -> tuple[int, int, int, int]:
    """(Python peak, Arrow peak, input bytes, output bytes) of streaming ``rows`` rows made batch by
    batch (never all in memory) as ``fmt``; a clock that stands still, so sizes alone decide chunks."""
    made = 0

    def batches():
        nonlocal made
        for start in range(0, rows, batch):
            ids = pa.array(range(start, min(start + batch, rows)), pa.int64())
            b = pa.record_batch([ids, pc.multiply(ids, 0.5),
                                 pc.binary_join_element_wise("name-", ids.cast(pa.string()), "")],
                                schema=MEMORY_SCHEMA)
            made += b.nbytes
            yield b

    list(exports.stream(table(10).to_reader(), fmt))  # warm up: pyarrow.compute builds its wrappers
    tracemalloc.start()
    base, arrow_peak, total = pa.total_allocated_bytes(), 0, 0
    try:
        for chunk in exports.stream(pa.RecordBatchReader.from_batches(MEMORY_SCHEMA, batches()), fmt,
                                    clock=lambda: 0.0):
            total += len(chunk)
            arrow_peak = max(arrow_peak, pa.total_allocated_bytes() - base)
        python_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return python_peak, arrow_peak, made, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-rows", type=int, default=2_000_000)
    args = parser.parse_args()
    data = table(args.rows)
    results = {fmt: timed(lambda r, f=fmt: exports.stream(r, f), data, args.repeat)
               for fmt in ("csv", "tsv", "jsonl", "parquet")}
    results["jsonl, per-row Python (before)"] = timed(python_jsonl, data, args.repeat)
    print(f"{args.rows:,} rows, best of {args.repeat}")
    for name, (seconds, size) in results.items():
        print(f"  {name:32s} {seconds:6.2f} s  {size / 2**20:7.1f} MiB")
    print(f"  jsonl / csv: {results['jsonl'][0] / results['csv'][0]:.2f}; before / now: "
          f"{results['jsonl, per-row Python (before)'][0] / results['jsonl'][0]:.1f}x")
    print(f"peak memory streaming {args.memory_rows:,} rows (id, x, name), made 50,000 at a time")
    for fmt in ("csv", "tsv", "jsonl", "parquet"):
        python_peak, arrow_peak, made, total = peak_memory(fmt, args.memory_rows)
        print(f"  {fmt:8s} peak {(python_peak + arrow_peak) / 2**20:6.1f} MiB (Python {python_peak / 2**20:.1f}, "
              f"Arrow {arrow_peak / 2**20:.1f}); input {made / 2**20:.1f} MiB, output {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
