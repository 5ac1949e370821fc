"""Skeleton benchmark: ingest time and preview latency through the platform vs bare DuckDB.

Run: `make bench` or `.venv/bin/python bench/ingest_preview.py --rows 1000000`.
It starts its own SeaweedFS and `mosu up` on free loopback ports, generates a
CSV, and in the same run times:
  (a) bare DuckDB CSV -> zstd Parquet of the local file;
  (b) Mosu: upload throughput, then upload complete -> published (download of the
      raw object, sniff, convert, Great Expectations, publish);
  (c) datastore_search over HTTP (first page, middle page) vs the same LIMIT/OFFSET
      query in a warm bare DuckDB connection on a local copy of the Parquet.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from catalog.seaweed import SeaweedServer  # noqa: E402
from tests.conftest import s3_settings, start_mosu  # noqa: E402


def pcts(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(round(0.95 * len(ordered))) - 1)]


def generate_csv(path: Path, rows: int) -> None:
    duckdb.execute(f"""COPY (SELECT i AS id, 'cat_' || (i % 37) AS category, random() * 1000 AS value,
        TIMESTAMP '2020-01-01' + INTERVAL (i) SECOND AS ts,
        'free text number ' || i || ' with some words' AS note FROM range({rows}) t(i))
        TO '{path}' (HEADER, DELIMITER ',')""")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mosu-bench-") as tmp:
        work = Path(tmp)
        csv = work / "data.csv"
        generate_csv(csv, args.rows)
        size_mb = csv.stat().st_size / 1e6
        print(f"CSV: {args.rows:,} rows, {size_mb:.1f} MB")

        t = time.perf_counter()
        duckdb.execute(f"COPY (FROM read_csv('{csv}')) TO '{work / 'bare.parquet'}' "
                       "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 16384)")
        bare = time.perf_counter() - t
        print(f"(a) bare DuckDB CSV->Parquet: {bare:.2f} s ({size_mb / bare:.0f} MB/s)")

        with SeaweedServer(work / "s3") as s3:
            data_dir = work / "mosu"
            settings = s3_settings(s3, data_dir, max_upload_bytes=50 * 1024**3)
            env = {k: v for k, v in settings.to_env().items() if k != "MOSU_DATA_DIR"}
            mosu = start_mosu(data_dir, env, settings)
            try:
                ckan = mosu.ckan(mosu.token("bench", sysadmin=True))
                org = ckan.action.organization_create(name="bench")
                pkg = ckan.action.package_create(name="bench-data", owner_org=org["id"])
                # Warm the worker (it imports Great Expectations on its first job).
                warm = ckan.action.resource_create(package_id=pkg["id"], upload=("w.csv", io.BytesIO(b"a\n1\n")))
                wait(mosu.url, warm["id"])
                t = time.perf_counter()
                with open(csv, "rb") as fh:
                    r = requests.post(mosu.url + "/api/3/action/resource_create", data={"package_id": pkg["id"]},
                                      files={"upload": ("data.csv", fh)}, headers={"Authorization": ckan.apikey})
                uploaded = time.perf_counter() - t
                res = r.json()["result"]
                t = time.perf_counter()
                done = wait(mosu.url, res["id"])
                ingest = time.perf_counter() - t
                assert done["ingest_status"] == "ready", done
                print(f"    upload (HTTP, multipart): {uploaded:.2f} s ({size_mb / uploaded:.0f} MB/s)")
                print(f"(b) Mosu ingest, upload complete -> published: {ingest:.2f} s "
                      f"({size_mb / ingest:.0f} MB/s); ratio to (a): {ingest / bare:.2f}x")

                con = duckdb.connect()
                con.execute(f"CREATE VIEW t AS FROM '{work / 'bare.parquet'}'")
                for label, offset in (("first page", 0), ("middle page", args.rows // 2)):
                    http, local = [], []
                    for _ in range(args.calls):
                        t = time.perf_counter()
                        body = requests.get(mosu.url + "/api/3/action/datastore_search",
                                            params={"resource_id": res["id"], "limit": 100, "offset": offset}).json()
                        http.append((time.perf_counter() - t) * 1000)
                        assert len(body["result"]["records"]) == 100
                        t = time.perf_counter()
                        con.execute("SELECT * FROM t LIMIT 100 OFFSET ?", [offset]).fetchall()
                        local.append((time.perf_counter() - t) * 1000)
                    (h50, h95), (l50, l95) = pcts(http), pcts(local)
                    print(f"(c) {label:12s} HTTP p50 {h50:6.1f} ms p95 {h95:6.1f} ms | "
                          f"bare DuckDB p50 {l50:6.1f} ms p95 {l95:6.1f} ms | p95 ratio {h95 / l95:.1f}x")
            finally:
                mosu.stop()


def wait(url: str, resource_id: str, timeout: float = 1800) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = requests.get(url + "/api/3/action/resource_show", params={"id": resource_id}).json()["result"]
        if res["ingest_status"] in ("ready", "failed"):
            return res
        time.sleep(0.05)
    raise TimeoutError(resource_id)


if __name__ == "__main__":
    main()
