"""Fixtures that start real services: SeaweedFS, the catalog on SQLite, and ``mosu up``.

Nothing is mocked: tests talk HTTP to a real server process, which talks S3 to
a real SeaweedFS on free loopback ports, and they check the real database and
object store afterwards.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import ckanapi
import pytest
import requests

from catalog.access.context import Actor, Context
from catalog.actions import call
from catalog.core.errors import ValidationError
from catalog.core.settings import Settings
from catalog.platform import Platform
from catalog.storage.seaweed import SeaweedServer, free_port
from tests.web import browser  # noqa: F401 - every module may use the Chromium fixture of tests/web.py

MOSU = [sys.executable, "-m", "catalog.cli"]


def clean_env() -> dict[str, str]:
    """This process's environment without any MOSU_* setting, so each test sets its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MOSU_")}


def _pg_bin(name: str) -> str:
    import glob
    import shutil

    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is missing: `make test` installs the postgresql package")
    return found


@pytest.fixture(scope="session")
def postgres(tmp_path_factory) -> Iterator:
    """A real PostgreSQL cluster on a free loopback port; ``postgres()`` makes a new empty database.

    initdb refuses root, so the cluster runs as the ``postgres`` user (in a directory it owns).
    """
    import shutil
    import tempfile

    import psycopg

    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="mosu-pg-"))
    data = root / "data"
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    subprocess.run([*as_pg, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run([*as_pg, _pg_bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True, timeout=120)
    made = []

    def new_database() -> str:
        name = "mosu_" + uuid.uuid4().hex[:10]
        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        made.append(name)
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"

    yield new_database
    subprocess.run([*as_pg, _pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                   capture_output=True, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def s3(tmp_path_factory) -> Iterator[SeaweedServer]:
    """One real SeaweedFS for the session; each test module gets its own bucket, a collection of volumes
    of its own: room for 1,000 of them whatever the disk's free space."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed"), max_volumes=1000).start()
    yield server
    server.stop()


def s3_settings(s3: SeaweedServer, data_dir: Path, **changes) -> Settings:
    return Settings(data_dir=data_dir, s3_endpoint=s3.endpoint, s3_access_key=s3.credentials.access_key,
                    s3_secret_key=s3.credentials.secret_key, s3_bucket="t" + uuid.uuid4().hex[:12],
                    **changes)


@pytest.fixture
def platform(s3, tmp_path) -> Iterator[Platform]:
    """The catalog core on a fresh SQLite file and a fresh bucket."""
    p = Platform.open(s3_settings(s3, tmp_path / "data"))
    p.store.ensure_bucket()
    yield p
    p.close()


@pytest.fixture
def site(platform) -> Context:
    """Acting as the local operator (what the CLI does)."""
    return Context(platform=platform, actor=Actor.site())


@dataclass
class RunningMosu:
    """A ``mosu up`` process and what a test needs to talk to it and inspect it."""

    url: str
    settings: Settings
    env: dict[str, str]
    proc: subprocess.Popen
    log: Path
    opened: list[Platform] = field(default_factory=list)  # by inspect(); closed by stop()
    _site: Platform | None = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*MOSU, *args], env=self.env, capture_output=True, text=True,
                              check=check, timeout=120)

    def token(self, user: str, sysadmin: bool = False) -> str:
        """Create ``user`` (if new) and return a fresh API token: what ``mosu user add`` and ``mosu user
        token add`` do (the same actions, as the site operator, on the same catalog), run in this
        process. Two CLI processes per call cost ~2.7 s of CPU, and the suite asks for hundreds of
        tokens; the commands themselves are tested in test_end_to_end and test_audit_reports."""
        ctx = Context(platform=self._site_platform(), actor=Actor.site())
        try:
            call(ctx, "user_create", {"name": user, "sysadmin": sysadmin})
        except ValidationError:  # exists already: as `mosu user add` fails, and the token is still made
            pass
        return call(ctx, "api_token_create", {"user": user, "name": f"t-{uuid.uuid4().hex[:6]}"})["token"]

    def _site_platform(self) -> Platform:
        """One platform on this server's catalog, configured from the same variables as its CLI."""
        if self._site is None:
            self._site = Platform.open(Settings.from_env(self.env))
            self.opened.append(self._site)
        return self._site

    def ckan(self, token: str | None = None) -> ckanapi.RemoteCKAN:
        return ckanapi.RemoteCKAN(self.url, apikey=token)

    def admin_with_dataset(self, dataset: str) -> ckanapi.RemoteCKAN:
        """A sysadmin client, with organization ``<dataset>-org`` and dataset ``dataset`` created."""
        admin = self.ckan(self.token(f"{dataset}-admin", sysadmin=True))
        admin.action.organization_create(name=f"{dataset}-org")
        admin.action.package_create(name=dataset, owner_org=f"{dataset}-org")
        return admin

    def worker_pids(self) -> list[int]:
        """PIDs of the ingest worker processes ``mosu up`` runs now (its children)."""
        return [pid for pid, cmd in children(self.proc.pid) if "catalog.cli worker" in cmd]

    def inspect(self) -> Platform:
        """The same database and object store, opened directly for assertions; closed by :meth:`stop`
        (the fixture's teardown), so a test need not close it."""
        platform = Platform.open(self.settings)
        self.opened.append(platform)
        return platform

    def stop(self) -> int:
        self._site = None
        while self.opened:
            self.opened.pop().close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                kill_group(self.proc)
        return self.proc.returncode


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live child processes of ``pid``, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append((int(entry.name), cmd))
    return found


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``mosu up`` and everything it started: it runs in its own session, so killing only
    the parent would leave its workers, query processes and SeaweedFS running."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


ENDLESS_SQL = "SELECT count(*) FROM range(1000000) a, range(10000000) b WHERE (a.range+b.range)%7=3"
"""A researcher query of hours of work that passes the SQL check: only a time limit, a client leaving
or an interrupt stops it."""


def start_mosu(data_dir: Path, env_extra: dict[str, str], settings: Settings,
               args: tuple[str, ...] = (), attempts: int = 3) -> RunningMosu:
    """Start ``mosu up`` on a free port and wait until it answers. The port is found free by binding
    port 0 and letting it go, so another process (a server of another test process) may take it
    before ``mosu up`` binds it; ``mosu up`` then exits saying the address is in use, and it is
    started again on another port, up to ``attempts`` times."""
    for _ in range(attempts - 1):
        try:
            return _start_mosu_once(data_dir, env_extra, settings, args)
        except PortTaken:
            pass
    return _start_mosu_once(data_dir, env_extra, settings, args)


class PortTaken(RuntimeError):
    """``mosu up`` could not listen on the port it was given: another process took it first."""


def _start_mosu_once(data_dir: Path, env_extra: dict[str, str], settings: Settings,
                     args: tuple[str, ...]) -> RunningMosu:
    port = free_port()
    # MOSU_STATE_DIR: a `mosu push` run by a test remembers its uploads here, not in the runner's home.
    env = {**clean_env(), "MOSU_DATA_DIR": str(data_dir), "MOSU_STATE_DIR": str(data_dir.parent / "push-state"),
           **env_extra}
    log = data_dir.parent / f"mosu-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as fh:
        proc = subprocess.Popen([*MOSU, "up", "--port", str(port), *args], env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = log.read_text()
            error = PortTaken if f"cannot listen on 127.0.0.1:{port}: Address already in use" in said else RuntimeError
            raise error(f"mosu up exited with {proc.returncode}:\n{said}")
        # Only once this server says it listens (it bound the port): before that, an answer on the
        # port may come from another test process's server that took the port first.
        if f"Mosu is running at {url}/" not in log.read_text(errors="replace"):
            time.sleep(0.2)
            continue
        try:
            if requests.get(url + "/api/3/action/status_show", timeout=2).ok:
                return RunningMosu(url, settings, env, proc, log)
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow on a loaded machine
            pass
        time.sleep(0.2)
    kill_group(proc)
    raise RuntimeError(f"mosu up did not answer in time:\n{log.read_text()}")


MosuFactory = Callable[..., RunningMosu]


@pytest.fixture(scope="module")
def mosu_factory(request, tmp_path_factory) -> Iterator[MosuFactory]:
    """Start ``mosu up`` servers for this module; every one still running is stopped at its end.

    ``mosu_factory(*args, store=..., data_dir=None, env=None, **settings_changes)``: ``args`` go
    to ``mosu up`` (``"--demo"``, ``"--workers", "3"``); ``settings_changes`` are
    :class:`Settings` fields, passed as ``MOSU_*`` variables; ``env`` adds other variables. By
    default the server uses a fresh bucket of the session's SeaweedFS (fixture ``s3``) and a fresh
    data directory; ``store`` names another :class:`SeaweedServer`, or ``None`` for ``mosu up``'s
    own embedded SeaweedFS (in ``data_dir``). A test may stop its server early with
    :meth:`RunningMosu.stop`.
    """
    started: list[RunningMosu] = []
    default = object()

    def start(*args: str, store: SeaweedServer | None | object = default, data_dir: Path | None = None,
              env: dict[str, str] | None = None, **changes: object) -> RunningMosu:
        data_dir = data_dir or tmp_path_factory.mktemp("mosu") / "data"
        if store is None:
            settings = Settings(data_dir=data_dir, **changes)
            # Only the changes: the defaults are what a new user gets without setting anything.
            variables = {k: v for k, v in settings.to_env().items() if k.removeprefix("MOSU_").lower() in changes}
        else:
            server = request.getfixturevalue("s3") if store is default else store
            settings = s3_settings(server, data_dir, **changes)
            variables = {k: v for k, v in settings.to_env().items() if k != "MOSU_DATA_DIR"}
        running = start_mosu(data_dir, {**variables, **(env or {})}, settings, args)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="module")
def mosu(mosu_factory) -> RunningMosu:
    """``mosu up`` on the session's SeaweedFS (MOSU_S3_ENDPOINT), with a 2 MB upload limit
    and a 1 MB line limit, so tests can exceed them cheaply."""
    return mosu_factory(max_upload_bytes=2 * 1024 * 1024, max_line_bytes=1024 * 1024)


def wait_for_ingest(ckan: ckanapi.RemoteCKAN, resource_id: str, timeout: float = 90) -> dict:
    """Poll ``resource_show`` until the ingest reaches ``ready``, ``failed`` or ``held`` (waiting for
    a personal-information acknowledgement)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = ckan.action.resource_show(id=resource_id)
        if res["ingest_status"] in ("ready", "failed", "held"):
            return res
        time.sleep(0.25)
    raise AssertionError(f"ingest of {resource_id} did not finish in {timeout} s: {res}")


def upload(ckan: ckanapi.RemoteCKAN, content: bytes, filename: str = "data.csv", *, dataset: str | None = None,
           resource_id: str | None = None, wait: bool = True, timeout: float = 90, **fields: object) -> dict:
    """Upload ``content`` as file ``filename``: a new resource of ``dataset`` (``resource_create``),
    or a new version of ``resource_id`` (``resource_patch``), with any other resource ``fields``.

    With ``wait`` (the default) it returns the resource once its ingest ended (:func:`wait_for_ingest`),
    else the action's answer at once.
    """
    file = (filename, io.BytesIO(content))
    if resource_id is not None:
        res = ckan.action.resource_patch(id=resource_id, upload=file, **fields)
    else:
        res = ckan.action.resource_create(package_id=dataset, upload=file, **fields)
    return wait_for_ingest(ckan, res["id"], timeout) if wait else res


def restricted_dataset(platform: Platform, prefix: str) -> tuple[Context, dict, dict]:
    """In-process on ``platform``: users ``<prefix>-owner`` (a sysadmin) and ``<prefix>-scoped``,
    organization ``<prefix>-org`` and restricted dataset ``<prefix>-data``, made by the owner.
    Returns the owner's context, the two users by role (``owner``, ``scoped``) and the dataset."""
    from sqlalchemy import select

    from catalog.db.models import User

    site = Context(platform=platform, actor=Actor.site())
    for role in ("owner", "scoped"):
        call(site, "user_create", {"name": f"{prefix}-{role}", "email": f"{prefix}-{role}@example.org",
                                   "password": f"{prefix}-password", "sysadmin": role == "owner"})
    with platform.read() as s:
        users = {u.name.removeprefix(f"{prefix}-"): u
                 for u in s.scalars(select(User).where(User.name.in_([f"{prefix}-owner", f"{prefix}-scoped"])))}
    owner = Context(platform=platform, actor=Actor.of(users["owner"]), client=f"{prefix}-owner")
    call(owner, "organization_create", {"name": f"{prefix}-org"})
    pkg = call(owner, "package_create", {"name": f"{prefix}-data", "owner_org": f"{prefix}-org",
                                         "access_level": "restricted"})
    return owner, users, pkg


def cn_id_check(first17: str) -> str:
    """The check character of a PRC resident ID number (GB 11643-1999: ISO 7064 MOD 11-2), computed
    here from the standard, not by the code under test."""
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights)) % 11]


# The modules that take longest (a full run on 2 cores: the tamper campaign ~300 s, the others 50-130 s),
# longest first. ``make test`` hands whole modules to its processes in collection order
# (``--no-loadscope-reorder``), so these start first and the processes finish together, instead of
# one long module left running alone at the end. Every other module keeps pytest-randomly's order.
LONGEST_FIRST = ("test_audit_tamper", "test_access_levels_matrix", "test_fuzz_actions", "test_web_provider",
                 "test_web_compliance", "test_processes", "test_audit_export", "test_web_access", "test_webui",
                 "test_multipart", "test_web_grid", "test_sql")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the :data:`LONGEST_FIRST` modules first (after pytest-randomly's shuffle; a stable sort)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def key(item: pytest.Item) -> int:
        module = getattr(item, "module", None)
        return rank.get(module.__name__.rpartition(".")[2], len(rank)) if module is not None else len(rank)

    items.sort(key=key)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Print pytest-randomly's seed at the end, also under ``make test``'s ``-q`` (which hides the
    header line where the plugin prints it): an order-dependent failure is rerun with that seed."""
    seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.hasplugin("randomly") and isinstance(seed, int):
        terminalreporter.write_line(f'random order: seed {seed}; rerun this order with '
                                    f'make test ARGS="--randomly-seed={seed}"')
