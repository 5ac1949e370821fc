"""Excel ingest speed: rows per second for read (calamine) + conversion to Parquet (DuckDB).

Run: `.venv/bin/python bench/excel.py [--rows 200000]`. Goal: >= 50,000 rows/s for .xlsx.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ingest.convert import connect, to_parquet  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=200_000)
    args = ap.parse_args()
    from openpyxl import Workbook

    with tempfile.TemporaryDirectory(prefix="mosu-excel-") as tmp:
        work = Path(tmp)
        path = work / "data.xlsx"
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("data")
        ws.append(["id", "city", "value", "day", "note"])
        start = dt.date(2020, 1, 1)
        for i in range(args.rows):
            ws.append([i, f"city {i % 300}", i * 0.25, start + dt.timedelta(days=i % 2000), f"row number {i}"])
        wb.save(path)
        print(f"workbook: {args.rows:,} rows, {path.stat().st_size / 1e6:.1f} MB")
        con = connect(work)
        t = time.perf_counter()
        converted = to_parquet(con, "excel", path, work / "out.parquet", 16_384)
        elapsed = time.perf_counter() - t
        assert converted.row_count == args.rows
        print(f"read + convert: {elapsed:.2f} s = {args.rows / elapsed:,.0f} rows/s (goal >= 50,000 rows/s)")


if __name__ == "__main__":
    main()
