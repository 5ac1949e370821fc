"""What every platform benchmark needs: its own SeaweedFS and `mosu up`, a sysadmin client and a
dataset, and a worker that has already taken its first job (Great Expectations imported)."""
from __future__ import annotations

import io
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import ckanapi

from catalog.cli.client import Client, follow, push_parts
from catalog.core.settings import Settings
from catalog.storage.seaweed import SeaweedServer
from tests.conftest import RunningMosu, s3_settings, start_mosu


@dataclass
class Bench:
    mosu: RunningMosu
    settings: Settings
    ckan: ckanapi.RemoteCKAN
    client: Client
    package: dict[str, Any]


def wait(client: Client, resource_id: str, timeout: float = 7200) -> dict:
    """The finished job, polled often: a benchmark times the moment it ends."""
    return follow(client, resource_id, lambda _status: None, timeout, poll=0.05)


def publish(bench: Bench, local: Path, name: str = "data.parquet") -> tuple[dict[str, Any], float, float]:
    """Upload ``local`` to the bench dataset with the multipart client and wait until it is published:
    (the resource, seconds uploading, seconds from upload complete to published)."""
    t = time.perf_counter()
    res = push_parts(bench.client, local, {"package_id": bench.package["id"], "name": name})
    uploaded = time.perf_counter() - t
    t = time.perf_counter()
    status = wait(bench.client, res["id"])
    assert status["state"] == "done", status
    return res, uploaded, time.perf_counter() - t


@contextmanager
def platform(work: Path, **settings: Any) -> Iterator[Bench]:
    """A running platform under ``work`` with generous upload limits and ``settings`` on top."""
    with SeaweedServer(work / "s3") as s3:
        data_dir = work / "mosu"
        chosen = s3_settings(s3, data_dir, **{"max_upload_bytes": 64 * 1024**3, "max_unpacked_bytes": 64 * 1024**3,
                                               **settings})
        mosu = start_mosu(data_dir, {k: v for k, v in chosen.to_env().items() if k != "MOSU_DATA_DIR"}, chosen)
        try:
            token = mosu.token("bench", sysadmin=True)
            ckan, client = mosu.ckan(token), Client(mosu.url, token)
            org = ckan.action.organization_create(name="bench")
            pkg = ckan.action.package_create(name="bench-data", owner_org=org["id"])
            warm = ckan.action.resource_create(package_id=pkg["id"], upload=("w.csv", io.BytesIO(b"a\n1\n")))
            wait(client, warm["id"])
            yield Bench(mosu, chosen, ckan, client, pkg)
        finally:
            mosu.stop()


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of process ``pid`` in MiB, from /proc: what the memory figures quote."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out


@contextmanager
def embedded_mosu(workdir: Path) -> Iterator[tuple[str, int]]:
    """``mosu up`` with its own embedded SeaweedFS and no workers, on a free loopback port, as a
    fresh machine runs it (no MOSU_* settings but the data dir): yields the Action API's base URL
    and the web process's pid (for memory figures), and stops the whole process group after."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import requests

    from catalog.storage.seaweed import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSU_")}
    env["MOSU_DATA_DIR"] = str(workdir / "data")
    with open(workdir / "mosu.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "catalog.cli", "up", "--port", str(port), "--workers", "0"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/3/action/"
    try:
        for _ in range(300):
            try:
                if requests.get(url + "status_show", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
