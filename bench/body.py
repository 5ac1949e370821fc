"""Memory of the web process under a large JSON body (issue 10, item 7).

Run: `.venv/bin/python bench/body.py [--mib 30]`. It starts `mosu up` (with its embedded
SeaweedFS, no workers) on a free loopback port, reads the server's VmRSS, POSTs a JSON body of
``--mib`` MiB (``{"a": [{}, {}, ...]}``: small objects, the worst case for json.loads) to
``status_show`` with a Content-Length and again chunked, then a body nested 200,000 deep, and
prints each answer's status and the process's VmRSS and VmHWM (peak) after it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import embedded_mosu, memory  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=30, help="size of the JSON body")
    args = parser.parse_args()
    body = b'{"a": [' + b",".join([b"{}"] * (args.mib * 1024 * 1024 // 3)) + b"]}"
    with tempfile.TemporaryDirectory(prefix="mosu-bench-body-") as tmp, embedded_mosu(Path(tmp)) as (api, pid):
        url = api + "status_show"
        print(f"start: {memory(pid)}")
        for label, data in (("content-length", body), ("chunked", iter([body[i:i + (1 << 20)] for i in
                                                                       range(0, len(body), 1 << 20)]))):
            t = time.perf_counter()
            resp = requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=300)
            print(f"{len(body) / 2**20:.1f} MiB JSON ({label}): HTTP {resp.status_code} in "
                  f"{time.perf_counter() - t:.2f} s; {memory(pid)}")
        deep = b"[" * 200_000 + b"]" * 200_000
        resp = requests.post(url, data=deep, headers={"Content-Type": "application/json"}, timeout=60)
        print(f"200,000-deep JSON: HTTP {resp.status_code} {resp.text[:160]}")


if __name__ == "__main__":
    main()
