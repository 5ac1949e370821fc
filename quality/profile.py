"""Per-column profile of a converted Parquet file, cheap enough to run on every version.

A generic profiler (DuckDB's ``SUMMARIZE``) takes ~3 x the conversion itself on
10M rows, so the profile is assembled from what is already paid for:

1. The Parquet footer (pyarrow, milliseconds): exact row count, null counts and
   min/max per column, aggregated over row groups. DuckDB truncates string
   statistics to 256 bytes and flags that in the footer, so string columns whose
   flags say "not exact" (read through ``parquet_metadata``), nested columns and
   columns without statistics fall back to one SQL query over just those columns.
2. ONE ungrouped DuckDB scan with every remaining aggregate for every column:
   ``approx_count_distinct``; shifted sums of x and x^2 (mean and stddev from two
   plain sums, cheaper than DuckDB's Welford ``stddev_samp``); string lengths;
   ``count_if(x <= edge)`` per histogram edge, the edges coming from the footer
   min/max. ``histogram()`` is avoided on purpose: DuckDB plans it as a GROUP BY
   over a materialised copy of the whole input, which made the scan 3 x slower
   and ~500 MB bigger once a text column was in the same SELECT.
3. Top values of text columns: exact counts with a GROUP BY over only the
   low-cardinality columns (their estimated distinct count is small, so the hash
   table is too); for high-cardinality text, counts from a sample of evenly
   spread row groups read with pyarrow (the whole file when it is small).

Every column records which of its statistics are exact, approximate (HyperLogLog
distinct counts) or sampled. JSON representation: dates and timestamps as ISO
8601 strings; decimal min/max as strings (no precision lost), decimal mean and
stddev as floats; NaN and infinities as None. Histogram bins are right-closed,
(edge[i], edge[i+1]], except the first, which includes the minimum; NaN never
falls in a bin. Float statistics (min, max, mean, stddev, histogram) cover the
finite values; ``non_finite`` counts NaN and infinities.
"""
from __future__ import annotations

import datetime as dt
import decimal
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from catalog.core import coltypes
from catalog.core.sqltext import ident, literal

LOW_CARDINALITY = 10_000  # text columns with at most this many (estimated) values get exact top counts
SAMPLE_ROWS = 200_000  # rows read for the top values of high-cardinality text
_NUMBER, _TEMPORAL, _TEXT, _BOOL, _NESTED = (coltypes.NUMBER, coltypes.TEMPORAL, coltypes.TEXT, coltypes.BOOL,
                                             coltypes.NESTED)


@dataclass
class Column:
    """One top-level column: its types, what the footer says, and what the scans found."""

    name: str
    duck_type: str
    ckan: str
    kind: str
    nulls: int | None = None
    min: Any = None
    max: Any = None
    has_min_max: bool = False  # footer (or fallback SQL) min/max known; False also for all-null columns
    bounded: bool = True  # no value below min: footer min/max were finite (a float fallback skips -inf)
    scan: dict[str, Any] = field(default_factory=dict)


def connect(threads: int = 2, memory_limit: str = "512MB") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection sized for profiling next to the other ingest stages."""
    return duckdb.connect(":memory:", config={"threads": threads, "memory_limit": memory_limit})


def classify(duck_type: str) -> tuple[str, str]:
    """(CKAN type, internal kind) for a DuckDB type name (pure), from ``catalog.core.coltypes``."""
    row = coltypes.of_duckdb(duck_type)
    return row.ckan, row.kind


def _leaves(t: pa.DataType) -> int:
    """How many Parquet leaf columns an Arrow type occupies (struct fields, list items, map keys and values)."""
    if pa.types.is_struct(t):
        return sum(_leaves(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return _leaves(t.key_type) + _leaves(t.item_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _leaves(t.value_type)
    return 1


def _plain(value: Any) -> Any:
    """pandas Timestamps (nanosecond footers) as datetimes, so arithmetic and isoformat behave alike."""
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value


def footer_stats(meta: pq.FileMetaData, schema: pa.Schema, inexact_leaves: frozenset[int] | set[int] = frozenset()
                 ) -> dict[str, tuple[int | None, Any, Any, bool]]:
    """Per top-level flat column: (null count, min, max, min/max usable), aggregated over row groups (pure).

    Nested columns are left out (their leaves' nulls are not the column's). A row
    group without statistics makes the column's figure unknown (None / False),
    except min/max of a row group that holds only nulls, which has nothing to add.
    """
    out: dict[str, tuple[int | None, Any, Any, bool]] = {}
    leaf = 0
    for f in schema:
        width = _leaves(f.type)
        if width == 1 and not pa.types.is_nested(f.type):
            nulls: int | None = 0
            lo = hi = None
            usable = leaf not in inexact_leaves
            for g in range(meta.num_row_groups):
                chunk = meta.row_group(g).column(leaf)
                st = chunk.statistics
                rows = meta.row_group(g).num_rows
                if st is None or not st.has_null_count:
                    nulls, usable = None, False
                    break
                nulls += st.null_count
                if st.has_min_max:
                    mn, mx = _plain(st.min), _plain(st.max)
                    lo = mn if lo is None or mn < lo else lo
                    hi = mx if hi is None or mx > hi else hi
                elif st.null_count != rows:
                    usable = False
            out[f.name] = (nulls, lo, hi, usable and lo is not None)
        leaf += width
    return out


def histogram_edges(lo: Any, hi: Any, bins: int) -> list[Any]:
    """``bins`` equal-width bins from lo to hi (numbers, dates or datetimes); one bin when lo == hi (pure)."""
    if lo == hi:
        return [lo, hi]
    if isinstance(lo, dt.date) and not isinstance(lo, dt.datetime):
        lo, hi = dt.datetime.combine(lo, dt.time()), dt.datetime.combine(hi, dt.time())
    if isinstance(lo, dt.datetime):
        return [lo + (hi - lo) * i / bins for i in range(bins)] + [hi]
    lo_f, hi_f = float(lo), float(hi)
    return [lo_f + (hi_f - lo_f) * i / bins for i in range(bins)] + [hi_f]


def _edge_sql(col: Column, edge: Any) -> str:
    """A literal for ``column <= edge`` that compares in the column's own domain (no per-row cast)."""
    if isinstance(edge, dt.datetime):
        if col.ckan == "timestamptz":
            return f"CAST({literal(edge.isoformat())} AS TIMESTAMPTZ)"
        return f"CAST({literal(edge.isoformat())} AS TIMESTAMP)"
    if col.ckan == "int":
        return str(math.floor(edge))  # x <= 4.5 and x <= 4 agree for integers
    return f"CAST({literal(repr(float(edge)))} AS DOUBLE)"


def _finite(value: Any) -> bool:
    return not (isinstance(value, float) and not math.isfinite(value))


def _shift(col: Column) -> float:
    """A value near the middle, subtracted before summing x^2 so the variance does not cancel out."""
    if not col.has_min_max or not (_finite(col.min) and _finite(col.max)):
        return 0.0
    mid = (float(col.min) + float(col.max)) / 2
    return float(math.floor(mid)) if col.ckan == "int" else mid


def moment_aggregates(col: Column, finite_only: bool = False) -> list[tuple[str, str]]:
    """Shifted sums of x and x^2; ``finite_only`` for the rerun when NaN or infinities spoilt them (pure)."""
    c = ident(col.name)
    s = f"({c}::DOUBLE - CAST({literal(repr(_shift(col)))} AS DOUBLE))"
    if not finite_only:
        return [("s1", f"sum({s})"), ("s2", f"sum({s} * {s})")]
    only = f" FILTER (WHERE isfinite({c}))"
    return [("s1", f"sum({s}){only}"), ("s2", f"sum({s} * {s}){only}"), ("finite", f"count_if(isfinite({c}))")]


def scan_aggregates(col: Column, bins: int) -> list[tuple[str, str]]:
    """(stat key, SQL aggregate) for one column in the single scan (pure)."""
    c = ident(col.name)
    if col.kind == _NESTED or col.nulls is None or col.scan.get("non_null", 1) == 0:
        return []
    aggs = [("distinct", f"approx_count_distinct({c})")] if col.kind != _BOOL else [("trues", f"count_if({c})")]
    if col.kind == _NUMBER:
        aggs += moment_aggregates(col)
    if col.kind == _TEXT:
        aggs += [("len_min", f"min(length({c}))"), ("len_max", f"max(length({c}))"),
                 ("len_sum", f"sum(length({c}))")]
    if col.kind in (_NUMBER, _TEMPORAL) and col.has_min_max and col.min != col.max \
            and _finite(col.min) and _finite(col.max):
        edges = histogram_edges(col.min, col.max, bins)
        aggs += [(f"le{i}", f"count_if({c} <= {_edge_sql(col, e)})") for i, e in enumerate(edges[1:], 1)]
        if not col.bounded:  # -inf is <= every edge
            aggs.append(("below", f"count_if({c} < {_edge_sql(col, edges[0])})"))
    return aggs


def build_scan(source: str, columns: list[Column], bins: int) -> tuple[str | None, list[tuple[str, str]]]:
    """The one SELECT with every column's aggregates, and the (column, stat) of each output (pure)."""
    keys: list[tuple[str, str]] = []
    exprs: list[str] = []
    for col in columns:
        for stat, expr in scan_aggregates(col, bins):
            keys.append((col.name, stat))
            exprs.append(expr)
    if not exprs:
        return None, keys
    return f"SELECT {', '.join(exprs)} FROM {source}", keys


def build_fallback(source: str, columns: list[Column]) -> tuple[str | None, list[tuple[str, str]]]:
    """SQL for what the footer could not say: nulls of nested columns, min/max without exact statistics."""
    keys: list[tuple[str, str]] = []
    exprs: list[str] = []
    for col in columns:
        c = ident(col.name)
        if col.nulls is None:
            keys.append((col.name, "count"))
            exprs.append(f"count({c})")
        if col.kind != _NESTED and not col.has_min_max:
            keys += [(col.name, "min"), (col.name, "max")]
            only = f" FILTER (WHERE isfinite({c}))" if col.ckan == "float" else ""
            exprs += [f"min({c}){only}", f"max({c}){only}"]
    if not exprs:
        return None, keys
    return f"SELECT {', '.join(exprs)} FROM {source}", keys


def build_top(source: str, names: list[str]) -> str:
    """Exact value counts for low-cardinality columns, all in one scan with GROUPING SETS (pure).

    Each result row is (value of column 0, ..., value of column n-1, which, count)
    where ``which`` is the index of the column the group belongs to.
    """
    cols = [ident(n) for n in names]
    which = " ".join(f"WHEN grouping({c}) = 0 THEN {i}" for i, c in enumerate(cols))
    sets = ", ".join(f"({c})" for c in cols)
    return (f"SELECT {', '.join(cols)}, CASE {which} END AS which, count(*) FROM {source} "
            f"GROUP BY GROUPING SETS ({sets})")


def json_value(value: Any) -> Any:
    """A value as JSON: ISO 8601 times, decimals as strings, NaN and infinities as None (pure)."""
    value = _plain(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (int, str, bool)) or value is None:
        return value
    if isinstance(value, dict):  # structs and maps
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)  # UUID, intervals


def _edge_json(col: Column, edge: Any) -> Any:
    if col.ckan == "date" and isinstance(edge, dt.datetime) and edge.time() == dt.time():
        return edge.date().isoformat()
    return json_value(edge)


def top_values(counts: list[tuple[Any, int]], k: int) -> list[dict[str, Any]]:
    """The k most frequent values, ties broken by value so the result is stable (pure)."""
    ranked = sorted(counts, key=lambda vc: (-vc[1], str(vc[0])))[:k]
    return [{"value": json_value(v), "count": int(n)} for v, n in ranked]


def shape_column(col: Column, row_count: int, bins: int, top: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON profile of one column from the footer, scan and top-value results (pure)."""
    s = col.scan
    out: dict[str, Any] = {"name": col.name, "type": col.ckan, "nulls": col.nulls,
                           "null_share": (col.nulls / row_count) if row_count and col.nulls is not None else None}
    exact = ["nulls", "null_share"]
    approx: list[str] = []
    sampled: list[str] = []
    non_null = row_count - (col.nulls or 0)
    if col.kind == _NESTED:
        return {**out, "exact": exact, "approximate": approx, "sampled": sampled}
    if non_null == 0:
        out.update(distinct=0, distinct_approximate=False)
        return {**out, "exact": exact + ["distinct"], "approximate": approx, "sampled": sampled}
    if col.has_min_max:
        out.update(min=json_value(col.min), max=json_value(col.max))
        exact += ["min", "max"]
    if col.kind == _BOOL:
        trues = int(s["trues"])
        pairs = [(v, n) for v, n in ((True, trues), (False, non_null - trues)) if n]
        out.update(distinct=len(pairs), distinct_approximate=False, top=top_values(pairs, len(pairs)))
        exact += ["distinct", "top"]
    elif top is not None and top["exact"] and top["complete"]:
        out.update(distinct=top["distinct"], distinct_approximate=False)
        exact.append("distinct")
    else:
        out.update(distinct=min(int(s["distinct"]), non_null), distinct_approximate=True)
        approx.append("distinct")
    if col.kind == _NUMBER:
        n = non_null
        if col.ckan == "float":
            n = int(s.get("finite", non_null))
            out["non_finite"] = non_null - n
            exact.append("non_finite")
        mean = s["s1"] / n + _shift(col) if n and s["s1"] is not None else None
        var = (s["s2"] - s["s1"] ** 2 / n) / (n - 1) if n > 1 and s["s1"] is not None else None
        out.update(mean=json_value(mean), stddev=json_value(math.sqrt(max(var, 0.0)) if var is not None else None))
        exact += ["mean", "stddev"]
    if col.kind == _TEXT:
        out["length"] = {"min": s["len_min"], "max": s["len_max"], "mean": s["len_sum"] / non_null}
        exact.append("length")
    if col.kind in (_NUMBER, _TEMPORAL) and col.has_min_max and _finite(col.min) and _finite(col.max):
        edges = histogram_edges(col.min, col.max, bins)
        if len(edges) == 2:
            counts = [int(s.get("finite", non_null))]
        else:
            cumulative = [int(s[f"le{i}"]) for i in range(1, len(edges))]
            counts = [b - a for a, b in zip([int(s.get("below", 0))] + cumulative, cumulative)]
        out["histogram"] = {"edges": [_edge_json(col, e) for e in edges], "counts": counts}
        exact.append("histogram")
    if top is not None:
        out["top"] = top["values"]
        if top["exact"]:
            exact.append("top")
        else:
            sampled.append("top")
            out["top_sample_rows"] = top["sample_rows"]
    return {**out, "exact": exact, "approximate": approx, "sampled": sampled}


def _row(con: duckdb.DuckDBPyConnection, sql: str | None, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    if sql is None:
        return {}
    return dict(zip(keys, con.execute(sql).fetchall()[0]))  # fetchall: fetchone leaves the result open


def _inexact_text_leaves(con: duckdb.DuckDBPyConnection, path: Path) -> set[int]:
    """Leaf columns whose footer min/max a writer truncated (DuckDB cuts strings at 256 bytes)."""
    rows = con.execute(
        "SELECT column_id FROM parquet_metadata(?) WHERE type = 'BYTE_ARRAY' "
        "GROUP BY column_id HAVING NOT bool_and(coalesce(min_is_exact, true) AND coalesce(max_is_exact, true))",
        [str(path)]).fetchall()
    return {int(r[0]) for r in rows}


def sample_row_groups(meta: pq.FileMetaData, rows: int) -> list[int]:
    """Evenly spread row groups holding about ``rows`` rows: a system sample that reads only what it uses."""
    n = meta.num_row_groups
    per = max(1, meta.num_rows // max(n, 1))
    step = max(1, math.ceil(n / max(1, math.ceil(rows / per))))
    return list(range(0, n, step))


def profile_parquet(con: duckdb.DuckDBPyConnection, path: Path, bins: int = 20, top_k: int = 10, *,
                    low_cardinality: int = LOW_CARDINALITY, sample_rows: int = SAMPLE_ROWS) -> dict[str, Any]:
    """Profile every column of the Parquet file at ``path``; see the module docstring for what and how.

    ``con`` needs file access (``connect()`` gives one with 2 threads and 512 MB);
    it is used through its own cursor so the caller's state is untouched.
    ``low_cardinality`` and ``sample_rows`` are the thresholds above, exposed so
    tests can reach the sampled path with small files.
    """
    started = time.perf_counter()
    cur = con.cursor()
    try:
        pf = pq.ParquetFile(path)
        meta, schema = pf.metadata, pf.schema_arrow
        source = f"read_parquet({literal(str(path))})"
        types = cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        columns = [Column(name, t, *classify(t)) for name, t, *_ in types]
        has_text = any(c.kind == _TEXT for c in columns)
        footer = footer_stats(meta, schema, _inexact_text_leaves(cur, path) if has_text else set())
        for col in columns:
            nulls, lo, hi, usable = footer.get(col.name, (None, None, None, False))
            col.nulls = nulls
            if usable and (col.ckan != "float" or (_finite(lo) and _finite(hi))):
                col.min, col.max, col.has_min_max = lo, hi, True
            elif nulls is not None and nulls == meta.num_rows:
                col.has_min_max = False  # all null: nothing to find
        row_count = meta.num_rows

        need = [c for c in columns if c.nulls is None or (c.kind != _NESTED and not c.has_min_max
                                                          and c.nulls != row_count)]
        fallback = _row(cur, *build_fallback(source, need))
        for col in need:
            if (col.name, "count") in fallback:
                col.nulls = row_count - int(fallback[(col.name, "count")])
            if (col.name, "min") in fallback and fallback[(col.name, "min")] is not None:
                col.min, col.max, col.has_min_max = fallback[(col.name, "min")], fallback[(col.name, "max")], True
                col.bounded = col.ckan != "float"
        for col in columns:
            col.scan["non_null"] = row_count - (col.nulls or 0)

        by_name = {c.name: c for c in columns}
        for (name, stat), value in _row(cur, *build_scan(source, columns, bins)).items():
            by_name[name].scan[stat] = value
        # Plain sums are NaN or infinite only when such values are there: rare, so filter only then.
        spoilt = [c for c in columns if c.ckan == "float" and c.scan["non_null"]
                  and not (_finite(c.scan["s1"]) and _finite(c.scan["s2"]))]
        keys = [(c.name, stat) for c in spoilt for stat, _ in moment_aggregates(c, True)]
        exprs = [e for c in spoilt for _, e in moment_aggregates(c, True)]
        rerun = f"SELECT {', '.join(exprs)} FROM {source}" if exprs else None
        for (name, stat), value in _row(cur, rerun, keys).items():
            by_name[name].scan[stat] = value

        tops: dict[str, dict[str, Any]] = {}
        texts = [c for c in columns if c.kind == _TEXT and c.scan["non_null"] > 0]
        low = [c.name for c in texts if c.scan["distinct"] <= low_cardinality]
        if low:
            counts: dict[str, list[tuple[Any, int]]] = {n: [] for n in low}
            for *values, which, n in cur.execute(build_top(source, low)).fetchall():
                if values[which] is not None:
                    counts[low[which]].append((values[which], n))
            for name, pairs in counts.items():
                tops[name] = {"values": top_values(pairs, top_k), "exact": True, "complete": True,
                              "distinct": len(pairs)}
        high = [c.name for c in texts if c.name not in tops]
        if high:
            groups = sample_row_groups(meta, sample_rows)
            whole = len(groups) == meta.num_row_groups
            sample = pf.read_row_groups(groups, columns=high)
            cur.register("__profile_sample", sample)
            for name in high:
                c = ident(name)
                pairs = cur.execute(
                    f"SELECT {c}, count(*) AS n FROM __profile_sample WHERE {c} IS NOT NULL "
                    f"GROUP BY ALL HAVING count(*) > 1 OR {whole} ORDER BY n DESC, {c} LIMIT {int(top_k)}"
                ).fetchall()
                scale = 1.0 if whole else row_count / max(sample.num_rows, 1)
                tops[name] = {"values": top_values([(v, round(n * scale)) for v, n in pairs], top_k),
                              "exact": whole, "complete": False, "sample_rows": sample.num_rows}
            cur.unregister("__profile_sample")
            del sample

        result = [shape_column(c, row_count, bins, tops.get(c.name)) for c in columns]
    finally:
        cur.close()
    return {"row_count": row_count, "columns": result, "seconds": round(time.perf_counter() - started, 4)}
