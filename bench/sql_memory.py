"""Peak memory of the web process under researcher SQL that builds large values (issue 10, item 3;
the review of its fix, F3).

Run: `.venv/bin/python bench/sql_memory.py [--only N,M] [--timeout S]`. It starts `mosu up` (with its
embedded SeaweedFS, no workers, the default 1 GB query memory limit and 2 query threads) on a free
loopback port, and for each query resets the process's peak RSS (``/proc/PID/clear_refs``), sends it
anonymously to ``datastore_search_sql`` and prints the answer (status, the start of its message),
the seconds it took and the web process's VmHWM (peak) and VmRSS after it, in MiB.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import embedded_mosu, memory

QUERIES = [
    # F3 as the review wrote them: a large value built without repeat/lpad/printf, then copied per row.
    ("recursive s||s, 2^20 chars x 20,000 rows",
     ("WITH RECURSIVE t(s,i) AS (SELECT 'x',0 UNION ALL SELECT s||s,i+1 FROM t WHERE i<20) "
     "SELECT max(length(s||range::VARCHAR)) FROM t, range(20000) WHERE i=20")),
    ("replace x10 six times (10^6 chars) x 20,000 rows",
     ("SELECT max(length(replace(replace(replace(replace(replace(replace('x','x','xxxxxxxxxx'),'x','xxxxxxxxxx'),"
     "'x','xxxxxxxxxx'),'x','xxxxxxxxxx'),'x','xxxxxxxxxx'),'x','xxxxxxxxxx') || range::VARCHAR)) FROM range(20000)")),
    ("string_agg of 10^6 rows x 20,000 rows",
     "SELECT max(length(s || range::VARCHAR)) FROM (SELECT string_agg('x','') s FROM range(1000000)), range(20000)"),
    ("bitstring of 10^9 bits", "SELECT length(bitstring('1', 1000000000)::VARCHAR)"),
    # Siblings found while fixing them.
    ("list_reduce doubling 20 times x 20,000 rows",
     ("SELECT max(length(list_reduce(['x','x','x','x','x','x','x','x','x','x','x','x','x','x','x','x','x','x','x','x',"
     "'x'], lambda a, b: a || a) || range::VARCHAR)) FROM range(20000)")),
    ("hex nested 10 times over 1,000 chars x 20,000 rows",
     ("SELECT max(length(hex(hex(hex(hex(hex(hex(hex(hex(hex(hex(repeat('x', 1000))))))))))) || range::VARCHAR)) "
     "FROM range(20000)")),
    ("lambda: 100 x repeat 9,000 per value x 20,000 rows",
     ("SELECT max(length(list_transform(range(100), lambda x: repeat('x', 9000))::VARCHAR || range::VARCHAR)) "
     "FROM range(20000)")),
    ("list() of 10^6 rows x 20,000 rows",
     "SELECT max(len(list_append(l, range))) FROM (SELECT list(range) l FROM range(1000000)), range(20000)"),
    ("string_agg of 100 x 9,000 chars x 20,000 rows",
     ("SELECT max(length(s || range::VARCHAR)) FROM (SELECT string_agg(repeat('x', 9000), '') s FROM range(100)), "
     "range(20000)")),
    ("window string_agg over 200,000 rows",
     "SELECT max(length(s)) FROM (SELECT string_agg('x', '') OVER (ORDER BY range) s FROM range(200000))"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated query numbers (from 1) to run")
    parser.add_argument("--timeout", type=float, default=120, help="client timeout per query, seconds")
    args = parser.parse_args()
    chosen = [int(n) for n in args.only.split(",")] if args.only else range(1, len(QUERIES) + 1)
    with tempfile.TemporaryDirectory(prefix="mosu-bench-sql-") as tmp, embedded_mosu(Path(tmp)) as (url, pid):
        print(f"start: {memory(pid)}")
        for n in chosen:
            label, sql = QUERIES[n - 1]
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            t = time.perf_counter()
            try:
                resp = requests.post(url + "datastore_search_sql", json={"sql": sql}, timeout=args.timeout)
                body = resp.json()
                answer = (f"HTTP {resp.status_code} " + (str(body["result"]["records"])[:60] if body.get("success")
                                                         else body["error"].get("message", "")[:110]))
            except (requests.RequestException, ValueError) as exc:
                answer = f"no answer: {type(exc).__name__}"
            print(f"{n:2}. {label}: {answer} in {time.perf_counter() - t:.1f} s; {memory(pid)}", flush=True)


if __name__ == "__main__":
    main()
