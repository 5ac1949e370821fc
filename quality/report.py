"""A version's quality report: profile, suite validation, PII findings and score, in one place.

Runs in the ingest worker over the local Parquet it just wrote (or downloaded,
when a changed suite re-validates a published version). Great Expectations is
imported here only to check each expectation's configuration the way GX itself
would (its pydantic models); the expectations then run as SQL (see
``quality.expectations``), so nothing is loaded into memory whole.
"""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import duckdb

from catalog.core.sqltext import first_line, literal
from quality import expectations, pii, suites
from quality.profile import profile_parquet, sample_row_groups


def connect(memory_limit: str = "160MB", threads: int = 2) -> duckdb.DuckDBPyConnection:
    """The worker's own DuckDB for quality checks (it reads the local Parquet it was given)."""
    return duckdb.connect(":memory:", config={"memory_limit": memory_limit, "threads": threads})


def gx_errors(suite: expectations.Suite) -> dict[int, str]:
    """Expectations GX itself refuses to build (wrong kwargs, bad values): index -> GX's message."""
    import great_expectations as gx

    errors = {}
    for i, e in enumerate(suite.expectations):
        name = "".join(part.capitalize() for part in e.type.split("_"))
        cls = getattr(gx.expectations, name, None)
        if cls is None:
            continue  # a Mosu-only spelling: our checks cover it
        kwargs = dict(e.kwargs)
        try:
            cls(**kwargs)
        except Exception as exc:  # noqa: BLE001 - GX raises pydantic and its own errors
            errors[i] = f"Great Expectations refused it: {first_line(exc, 200)}"
    return errors


def build(con: duckdb.DuckDBPyConnection, parquet: Path, resource_id: str, version: int, version_id: str,
          suite_doc: dict[str, Any] | None, odd_values: list[dict[str, Any]] | None = None,
          profile: dict[str, Any] | None = None, column_names: list[str] | None = None) -> dict[str, Any]:
    """The report of one version. ``suite_doc`` None means "first version": a default suite is
    generated from this profile and returned in ``report["suite"]`` for the caller to save.
    ``profile`` may be passed in to re-validate without profiling again."""
    started = time.perf_counter()
    relation = f"read_parquet({literal(parquet)}, file_row_number=true)"
    plain = f"read_parquet({literal(parquet)})"
    timings: dict[str, float] = {}
    if profile is None:
        profile = profile_parquet(con, parquet)
        timings["profile"] = round(time.perf_counter() - started, 3)
    schema = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {plain}").fetchall()]
    generated = suite_doc is None
    if generated:  # candidate keys are confirmed by the validation below, not by a scan of their own
        suite_doc = suites.default_suite(profile, suites.key_candidates(profile))
    t = time.perf_counter()
    try:
        suite = expectations.check_suite(suite_doc)
        # A generated suite is built by our own code from kinds GX accepts (a test checks a wide one
        # with GX); only a provider's suite needs GX's word, and importing GX costs each worker 4-7 s.
        refused = {} if generated else gx_errors(suite)
        footer = {c["name"]: {"nulls": c.get("nulls"), "min": c.get("min"), "max": c.get("max"),
                              "rows": profile.get("row_count"),
                              "non_null": (profile.get("row_count") or 0) - (c.get("nulls") or 0)}
                  for c in profile.get("columns", []) if c.get("nulls") is not None}
        results = expectations.evaluate(con, relation, schema, profile.get("row_count") or 0, suite, footer)
        for i, message in refused.items():
            results[i] = {**results[i], "status": "errored", "success": False, "error": message}
        if generated:  # a generated expectation its own first version breaks was a wrong guess: drop it
            kept = [i for i, r in enumerate(results) if r["success"]]
            suite_doc = {**suite_doc, "expectations": [suite_doc["expectations"][i] for i in kept]}
            results = [results[i] for i in kept]
    except expectations.SuiteError as exc:  # a stored suite that no longer fits: one errored entry
        results = [{"type": "suite", "kwargs": {}, "severity": "blocking", "status": "errored", "success": False,
                    "observed_value": None, "error": str(exc)}]
    timings["validation"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    findings = _scan_pii(con, parquet, schema)
    profile = pii.mask_profile(profile, findings)  # shown beside the masked examples: never the raw values
    timings["pii"] = round(time.perf_counter() - t, 3)
    scored = suites.score(results, profile, odd_values or [])
    blocking = [r for r in results if r["severity"] == "blocking" and not r["success"]]
    warnings = [r for r in results if r["severity"] == "warning" and not r["success"]]
    return {
        "resource_id": resource_id, "version": version, "version_id": version_id,
        "created": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(),
        "score": scored["score"], "score_explanation": scored["explanation"], "score_parts": scored,
        "profile": profile, "validation": results,
        "summary": {"expectations": len(results), "passed": sum(1 for r in results if r["success"]),
                    "blocking_failed": len(blocking), "warnings": len(warnings),
                    "errored": sum(1 for r in results if r["status"] == "errored")},
        "pii": [{"column": f.column, "kind": f.kind, "share": round(f.share, 4), "examples": list(f.examples)}
                for f in findings],
        "odd_values": odd_values or [],
        "suite": suite_doc, "suite_generated": generated,
        "seconds": {**timings, "total": round(time.perf_counter() - started, 3)},
    }


PII_SAMPLE_ROWS = 200_000  # about a dozen 16,384-row groups


def spread_sample(parquet: Path, columns: list[str], rows: int = PII_SAMPLE_ROWS):
    """Rows from row groups spread evenly through the file (the profile's own sampler): a column
    that only fills in late in a large file is still seen, for the cost of reading a few groups."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(parquet)
    return pf.read_row_groups(sample_row_groups(pf.metadata, rows), columns=columns)


def _scan_pii(con: duckdb.DuckDBPyConnection, parquet: Path, schema: list[tuple[str, str]]) -> list:
    """Personal-information findings on a sample drawn from across the whole version."""
    wanted = [(name, kind) for name, kind in schema if pii.scannable(kind)]
    if not wanted:
        return []
    sample = spread_sample(parquet, [name for name, _ in wanted])
    cur = con.cursor()
    try:
        cur.register("pii_sample", sample)
        return pii.scan_table(cur, "pii_sample", wanted, window_rows=sample.num_rows)
    finally:
        cur.close()


def explain_blocking(report: dict[str, Any]) -> str | None:
    """The provider's sentence for blocking failures, or None when the version may be published (pure)."""
    reasons = []
    for r in report["validation"]:
        if r["severity"] != "blocking" or r["success"]:
            continue
        column = r["kwargs"].get("column")
        what = r["type"].replace("expect_", "").replace("_", " ")
        where = f" on column {column!r}" if column else ""
        if r["status"] == "errored":
            reasons.append(f"{what}{where} could not be checked ({r.get('error')})")
        elif r.get("unexpected_count") is not None:
            examples = ", ".join(f"row {x['row']}" if "row" in x else repr(x.get("value"))
                                 for x in r.get("examples", [])[:3])
            reasons.append(f"{what}{where}: {r['unexpected_count']:,} unexpected"
                           + (f" ({examples})" if examples else ""))
        else:
            reasons.append(f"{what}{where}: observed {str(r.get('observed_value'))[:120]}")
    if not reasons:
        return None
    return "Blocking quality checks failed, so this version was not published: " + "; ".join(reasons) + "."
