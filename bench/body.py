"""Memory of the web process under a large JSON body (issue 10, item 7).

Run: `.venv/bin/python bench/body.py [--mib 30]`. It starts `mosu up` (with its embedded
SeaweedFS, no workers) on a free loopback port, reads the server's VmRSS, POSTs a JSON body of
``--mib`` MiB (``{"a": [{}, {}, ...]}``: small objects, the worst case for json.loads) to
``status_show`` with a Content-Length and again chunked, then a body nested 200,000 deep, and
prints each answer's status and the process's VmRSS and VmHWM (peak) after it.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import memory  # noqa: E402
from catalog.storage.seaweed import free_port  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=30, help="size of the JSON body")
    args = parser.parse_args()
    body = b'{"a": [' + b",".join([b"{}"] * (args.mib * 1024 * 1024 // 3)) + b"]}"
    with tempfile.TemporaryDirectory(prefix="mosu-bench-body-") as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOSU_")}
        env["MOSU_DATA_DIR"] = str(Path(tmp) / "data")
        log = open(Path(tmp) / "mosu.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "catalog.cli", "up", "--port", str(port), "--workers", "0"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}/api/3/action/status_show"
        try:
            for _ in range(300):
                try:
                    if requests.get(url, timeout=2).ok:
                        break
                except requests.ConnectionError:
                    time.sleep(0.2)
            print(f"start: {memory(proc.pid)}")
            for label, data in (("content-length", body), ("chunked", iter([body[i:i + (1 << 20)] for i in
                                                                           range(0, len(body), 1 << 20)]))):
                t = time.perf_counter()
                resp = requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=300)
                print(f"{len(body) / 2**20:.1f} MiB JSON ({label}): HTTP {resp.status_code} in "
                      f"{time.perf_counter() - t:.2f} s; {memory(proc.pid)}")
            deep = b"[" * 200_000 + b"]" * 200_000
            resp = requests.post(url, data=deep, headers={"Content-Type": "application/json"}, timeout=60)
            print(f"200,000-deep JSON: HTTP {resp.status_code} {resp.text[:160]}")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                print("mosu up did not stop in 120 s; its log ends:\n"
                      + (Path(tmp) / "mosu.log").read_text()[-3000:])
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


if __name__ == "__main__":
    main()
