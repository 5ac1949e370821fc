"""Run the first Great Expectations suite on a converted table.

The suite has table-level expectations: the table has rows, and its columns are
exactly the ones sniffed from the source, in order. Both are decided exactly by
the first rows of the Parquet file, so GX validates a bounded head batch and
memory does not grow with the file. Column-level suites (profiling, ranges,
value sets) come with the quality issue and will run as SQL over the Parquet.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

HEAD_ROWS = 10_000
_gx_lock = threading.Lock()
_batch_definition = None


def _batch_def():
    """One ephemeral GX context per process, created on first use."""
    global _batch_definition
    with _gx_lock:
        if _batch_definition is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            asset = context.data_sources.add_pandas("mosu").add_dataframe_asset("table")
            _batch_definition = asset.add_batch_definition_whole_dataframe("head")
        return _batch_definition


def head_frame(parquet_path: Path, rows: int = HEAD_ROWS):
    """The first ``rows`` rows as pandas, reading only the row groups needed."""
    pf = pq.ParquetFile(parquet_path)
    batches = pf.iter_batches(batch_size=rows)
    first = next(batches, None)
    if first is None:
        return pf.schema_arrow.empty_table().to_pandas()
    return first.to_pandas()


def basic_suite(expected_columns: list[str]):
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="mosu-basic")
    suite.add_expectation(gx.expectations.ExpectTableRowCountToBeBetween(min_value=1))
    suite.add_expectation(gx.expectations.ExpectTableColumnsToMatchOrderedList(column_list=expected_columns))
    return suite


def validate_table(parquet_path: Path, expected_columns: list[str]) -> dict[str, Any]:
    """Validate the Parquet at ``parquet_path``; returns a JSON-able report.

    ``report["success"]`` is False when any expectation failed; every result
    carries its type, kwargs, success and observed value.
    """
    batch_def = _batch_def()
    frame = head_frame(parquet_path)
    with _gx_lock:
        result = batch_def.get_batch(batch_parameters={"dataframe": frame}).validate(basic_suite(expected_columns))
    doc = result.to_json_dict()
    results = []
    for r in doc["results"]:
        cfg = r["expectation_config"]
        kwargs = {k: v for k, v in cfg.get("kwargs", {}).items() if k != "batch_id"}
        results.append({
            "type": cfg["type"], "kwargs": kwargs, "severity": "blocking",
            "success": bool(r["success"]), "observed_value": r.get("result", {}).get("observed_value"),
            "details": r.get("result", {}).get("details"),
            "exception": (r.get("exception_info") or {}).get("exception_message"),
        })
    return {"engine": "great_expectations", "suite": "mosu-basic", "head_rows": len(frame),
            "success": all(r["success"] for r in results), "results": results}


def explain_failures(report: dict[str, Any]) -> str:
    """A sentence a provider understands for each failed expectation (pure)."""
    reasons = []
    for r in report["results"]:
        if r["success"]:
            continue
        if r["type"] == "expect_table_row_count_to_be_between":
            reasons.append("the table has no data rows (only a header, or nothing)")
        elif r["type"] == "expect_table_columns_to_match_ordered_list":
            reasons.append(f"the columns {r['observed_value']} do not match the expected "
                           f"{r['kwargs'].get('column_list')}")
        else:
            reasons.append(f"{r['type']} failed (observed {r['observed_value']!r})")
    return "Quality check failed: " + "; ".join(reasons) + "."
