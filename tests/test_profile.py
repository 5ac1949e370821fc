"""Column profiles of small Parquet files whose contents are known exactly.

Files are written with pyarrow (several row groups, one column without
statistics) and with DuckDB (as the ingest conversion writes them), and every
figure is checked against Python's own arithmetic on the same values.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import random
import statistics
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quality.profile import classify, connect, footer_stats, histogram_edges, json_value, profile_parquet, top_values

N = 1000
rng = random.Random(7)
INTS = [None if i % 10 == 0 else i for i in range(N)]
FLOATS = [None if i % 25 == 3 else rng.uniform(-50, 150) for i in range(N)]
DATES = [dt.date(2020, 1, 1) + dt.timedelta(days=i % 400) for i in range(N)]
STAMPS = [dt.datetime(2021, 3, 1) + dt.timedelta(minutes=37 * i) for i in range(N)]
ZONED = [dt.datetime(2021, 3, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=i) for i in range(N)]
CATS = [None if i % 50 == 0 else ("a" if i % 10 < 5 else "b" if i % 10 < 8 else "c") for i in range(N)]
TEXT = ["N/A" if i % 20 == 1 else f"row {i} says hello é" for i in range(N)]
BOOLS = [None if i % 9 == 0 else i % 3 == 0 for i in range(N)]
STRUCTS = [None if i % 7 == 0 else {"x": i, "y": str(i)} for i in range(N)]
PRICES = [decimal.Decimal(i) / 4 for i in range(N)]


def _table(rows: int = N) -> pa.Table:
    return pa.table({
        "i": pa.array(INTS[:rows], pa.int64()), "f": pa.array(FLOATS[:rows], pa.float64()),
        "d": pa.array(DATES[:rows], pa.date32()), "ts": pa.array(STAMPS[:rows], pa.timestamp("us")),
        "tz": pa.array(ZONED[:rows], pa.timestamp("us", tz="UTC")), "cat": pa.array(CATS[:rows], pa.string()),
        "text": pa.array(TEXT[:rows], pa.string()), "b": pa.array(BOOLS[:rows], pa.bool_()),
        "s": pa.array(STRUCTS[:rows], pa.struct([("x", pa.int64()), ("y", pa.string())])),
        "empty": pa.nulls(rows, pa.int64()), "nostats": pa.array(INTS[:rows], pa.int64()),
        "price": pa.array(PRICES[:rows], pa.decimal128(10, 2)),
    })


def _write(path: Path, table: pa.Table) -> Path:
    stats = [n for n in table.column_names if n != "nostats"]
    pq.write_table(table, path, row_group_size=300, write_statistics=stats)
    return path


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return connect()


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory, con: duckdb.DuckDBPyConnection) -> dict:
    path = _write(tmp_path_factory.mktemp("profile") / "t.parquet", _table())
    return profile_parquet(con, path)


def _col(profile: dict, name: str) -> dict:
    return next(c for c in profile["columns"] if c["name"] == name)


def _check_histogram(col: dict, values: list, lo, hi) -> None:
    hist = col["histogram"]
    assert len(hist["counts"]) == 20 and len(hist["edges"]) == 21
    assert sum(hist["counts"]) == len(values)
    assert hist["edges"][0] == lo and hist["edges"][-1] == hi


def test_shape_and_json(profile: dict) -> None:
    assert profile["row_count"] == N
    assert [c["name"] for c in profile["columns"]] == list(_table(1).column_names)
    assert [c["type"] for c in profile["columns"]] == [
        "int", "float", "date", "timestamp", "timestamptz", "text", "text", "bool", "json", "int", "int", "numeric"]
    json.dumps(profile, allow_nan=False)


def test_integers_with_nulls(profile: dict) -> None:
    col = _col(profile, "i")
    values = [v for v in INTS if v is not None]
    assert col["nulls"] == 100 and col["null_share"] == pytest.approx(0.1)
    assert (col["min"], col["max"]) == (1, 999)
    assert col["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert col["stddev"] == pytest.approx(statistics.stdev(values), rel=1e-9)
    assert col["distinct"] == pytest.approx(len(values), rel=0.05) and col["distinct_approximate"]
    _check_histogram(col, values, 1, 999)
    edges = col["histogram"]["edges"]
    for k, count in enumerate(col["histogram"]["counts"]):  # right-closed bins, the first one includes min
        assert count == sum(1 for v in values if (edges[k] < v or k == 0) and v <= edges[k + 1])
    assert {"nulls", "min", "max", "mean", "stddev", "histogram"} <= set(col["exact"])
    assert col["approximate"] == ["distinct"]


def test_floats(profile: dict) -> None:
    col = _col(profile, "f")
    values = [v for v in FLOATS if v is not None]
    assert col["nulls"] == N - len(values)
    assert (col["min"], col["max"]) == (min(values), max(values))
    assert col["mean"] == pytest.approx(statistics.fmean(values), rel=1e-9)
    assert col["stddev"] == pytest.approx(statistics.stdev(values), rel=1e-9)
    _check_histogram(col, values, min(values), max(values))


def test_dates_and_timestamps(profile: dict) -> None:
    col = _col(profile, "d")
    assert (col["min"], col["max"]) == ("2020-01-01", (dt.date(2020, 1, 1) + dt.timedelta(days=399)).isoformat())
    _check_histogram(col, DATES, "2020-01-01", col["max"])
    assert col["histogram"]["counts"][0] == sum(1 for d in DATES if d <= dt.date(2020, 1, 20))
    assert col["distinct"] == pytest.approx(400, rel=0.05)
    col = _col(profile, "ts")
    assert (col["min"], col["max"]) == (STAMPS[0].isoformat(), STAMPS[-1].isoformat())
    _check_histogram(col, STAMPS, STAMPS[0].isoformat(), STAMPS[-1].isoformat())
    assert col["histogram"]["counts"] == [50] * 20
    assert "mean" not in col
    col = _col(profile, "tz")
    assert dt.datetime.fromisoformat(col["min"]) == ZONED[0]
    assert dt.datetime.fromisoformat(col["max"]) == ZONED[-1]
    _check_histogram(col, ZONED, col["min"], col["max"])


def test_low_cardinality_strings_exact_top(profile: dict) -> None:
    col = _col(profile, "cat")
    assert col["nulls"] == 20
    assert col["top"] == [{"value": "a", "count": 480}, {"value": "b", "count": 300}, {"value": "c", "count": 200}]
    assert col["distinct"] == 3 and col["distinct_approximate"] is False
    assert (col["min"], col["max"]) == ("a", "c")
    assert col["length"] == {"min": 1, "max": 1, "mean": 1.0}
    assert {"top", "distinct", "length"} <= set(col["exact"])
    assert "histogram" not in col


def test_free_text(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = _write(tmp_path / "t.parquet", _table())
    col = _col(profile_parquet(con, path, low_cardinality=10), "text")
    assert col["top"][0] == {"value": "N/A", "count": 50}
    assert all(t["count"] == 1 for t in col["top"][1:]) and len(col["top"]) == 10
    assert "top" in col["exact"]  # the "sample" was the whole file
    assert col["distinct"] == pytest.approx(len(set(TEXT)), rel=0.05) and col["distinct_approximate"]
    lengths = [len(t) for t in TEXT]  # characters, not bytes: "é" is one
    assert col["length"] == {"min": min(lengths), "max": max(lengths), "mean": pytest.approx(statistics.fmean(lengths))}


def test_sampled_top_of_high_cardinality_text(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "big.parquet"
    duckdb.execute(f"""COPY (SELECT CASE WHEN i % 4 = 0 THEN 'unknown' ELSE 'note ' || i END AS t
        FROM range(100000) r(i)) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 2048)""")
    col = _col(profile_parquet(con, path, sample_rows=10_000, low_cardinality=100), "t")
    assert col["top"][0]["value"] == "unknown"
    assert col["top"][0]["count"] == pytest.approx(25_000, rel=0.1)
    assert len(col["top"]) == 1  # values seen once in the sample are noise, not reported
    assert col["sampled"] == ["top"] and 9_000 < col["top_sample_rows"] < 20_000


def test_booleans(profile: dict) -> None:
    col = _col(profile, "b")
    values = [v for v in BOOLS if v is not None]
    assert col["nulls"] == N - len(values)
    assert col["top"] == [{"value": False, "count": values.count(False)}, {"value": True, "count": values.count(True)}]
    assert col["distinct"] == 2 and not col["distinct_approximate"]
    assert (col["min"], col["max"]) == (False, True)


def test_struct_gets_type_and_nulls_only(profile: dict) -> None:
    col = _col(profile, "s")
    assert col["type"] == "json"
    assert col["nulls"] == sum(1 for s in STRUCTS if s is None)
    assert set(col) == {"name", "type", "nulls", "null_share", "exact", "approximate", "sampled"}


def test_all_null_column(profile: dict) -> None:
    col = _col(profile, "empty")
    assert col["nulls"] == N and col["null_share"] == 1.0
    assert col["distinct"] == 0 and "min" not in col and "histogram" not in col


def test_column_without_footer_statistics(profile: dict) -> None:
    col = _col(profile, "nostats")
    values = [v for v in INTS if v is not None]
    assert col["nulls"] == 100 and (col["min"], col["max"]) == (1, 999)
    assert col["mean"] == pytest.approx(statistics.fmean(values))
    _check_histogram(col, values, 1, 999)
    assert col["histogram"] == _col(profile, "i")["histogram"]


def test_decimals_as_strings(profile: dict) -> None:
    col = _col(profile, "price")
    assert (col["min"], col["max"]) == ("0.00", "249.75")
    assert col["mean"] == pytest.approx(float(statistics.fmean(PRICES)))
    _check_histogram(col, PRICES, 0.0, 249.75)


def test_empty_table(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.parquet", _table(0))
    prof = profile_parquet(con, path)
    assert prof["row_count"] == 0 and len(prof["columns"]) == 12
    for col in prof["columns"]:
        assert col["nulls"] == 0 and col["null_share"] is None
        assert "histogram" not in col and "top" not in col
    json.dumps(prof, allow_nan=False)


def test_duckdb_written_file_with_truncated_string_stats(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    """DuckDB cuts string statistics at 256 bytes; the profile must not report the cut value."""
    path = tmp_path / "long.parquet"
    duckdb.execute(f"""COPY (SELECT repeat('x', 300) || i AS long, i % 5 AS k,
        CASE WHEN i = 3 THEN 'nan'::DOUBLE WHEN i = 5 THEN '-inf' WHEN i = 4 THEN NULL ELSE i / 2 END AS v
        FROM range(50) r(i))
        TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 16384)""")
    prof = profile_parquet(con, path, bins=5)
    long = _col(prof, "long")
    assert long["max"] == "x" * 300 + "9" and long["min"] == "x" * 300 + "0"
    assert long["length"] == {"min": 301, "max": 302, "mean": pytest.approx((10 * 301 + 40 * 302) / 50)}
    k = _col(prof, "k")
    assert k["histogram"] == {"edges": [0.0, 0.8, 1.6, 2.4, 3.2, 4.0], "counts": [10, 10, 10, 10, 10]}
    v = _col(prof, "v")  # NaN and -inf: counted apart, left out of the other statistics
    finite = [i / 2 for i in range(50) if i not in (3, 4, 5)]
    assert v["nulls"] == 1 and v["non_finite"] == 2 and (v["min"], v["max"]) == (0.0, 24.5)
    assert v["mean"] == pytest.approx(statistics.fmean(finite))
    assert v["stddev"] == pytest.approx(statistics.stdev(finite))
    assert sum(v["histogram"]["counts"]) == 47
    json.dumps(prof, allow_nan=False)


def test_pure_helpers(tmp_path: Path) -> None:
    assert classify("BIGINT") == ("int", "number") and classify("DECIMAL(10,2)")[0] == "numeric"
    assert classify("TIMESTAMP WITH TIME ZONE")[0] == "timestamptz" and classify("TIMESTAMP_NS")[0] == "timestamp"
    assert classify("STRUCT(a BIGINT)")[0] == "json" and classify("VARCHAR[]")[0] == "json"
    assert histogram_edges(0, 10, 4) == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert histogram_edges(3, 3, 20) == [3, 3]
    assert histogram_edges(dt.date(2020, 1, 1), dt.date(2020, 1, 3), 2) == [
        dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 2), dt.datetime(2020, 1, 3)]
    assert json_value(float("inf")) is None and json_value(math.nan) is None
    assert json_value(decimal.Decimal("1.10")) == "1.10" and json_value(dt.date(2020, 1, 2)) == "2020-01-02"
    assert top_values([("b", 2), ("a", 2), ("c", 5)], 2) == [{"value": "c", "count": 5}, {"value": "a", "count": 2}]
    path = _write(tmp_path / "t.parquet", _table())
    pf = pq.ParquetFile(path)
    stats = footer_stats(pf.metadata, pf.schema_arrow)
    assert pf.metadata.num_row_groups == 4
    assert stats["i"] == (100, 1, 999, True) and stats["nostats"][0] is None and "s" not in stats
    assert stats["empty"] == (N, None, None, False)
