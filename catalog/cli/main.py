"""The ``mosu`` command: run the platform, its workers, and manage users.

This is an entry point, so it is the one place that reads settings from the
environment (``MOSU_*``) and wires the parts together, including the ingest
workers (imported only by ``mosu worker``).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import click

from catalog.access.context import Actor, Context
from catalog.cli.supervisor import WorkerProcesses
from catalog.core.errors import MosuError, StartupError
from catalog.core.settings import Settings

if TYPE_CHECKING:
    from catalog.platform import Platform

log = logging.getLogger("mosu")
WAITRESS_BODY_DEFAULT = 1 << 30  # waitress's own max_request_body_size
data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Data directory (default ./.mosu, or MOSU_DATA_DIR).")


def _settings(data_dir: Path | None) -> Settings:
    return Settings.from_env(data_dir=data_dir)


def _fail(message: str) -> None:
    click.echo(f"mosu: error: {message}", err=True)
    sys.exit(1)


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "urllib3", "waitress.queue"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _site_context(settings: Settings) -> Context:
    from catalog.platform import Platform

    return Context(platform=Platform.open(settings), actor=Actor.site())


PRIVATE_UMASK = 0o077


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Mosu Open Data: an open data sharing platform with a CKAN-compatible catalog."""
    # Everything Mosu writes (catalog database and its -wal/-shm, Arrow cache, object store
    # volumes and logs, credentials) is its user's only: directories 0700, files 0600. Set
    # here, before anything is created; child processes (workers, query nodes, weed) inherit it.
    os.umask(PRIVATE_UMASK)


# -- mosu up --------------------------------------------------------------------------------

def check_data_dir(path: Path) -> None:
    """The data directory exists, is writable, and is private to this user (0700, also when it
    existed before; files made by older versions stay unreachable to others through it)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"cannot write the data directory {path}: {exc.strerror or exc}") from None


def check_smtp_url(url: str | None) -> None:
    """``MOSU_SMTP_URL``, when set, must be one the mailer can use: a typo is refused at start,
    not found out by the first notification's mail failing eight times."""
    if not url:
        return
    from catalog.records.outbox import mail_server

    try:
        mail_server(url)
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def check_port(host: str, port: int) -> None:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


OTHER_WEB_THREADS = 4


def web_threads(settings: Settings) -> int:
    """The web server's threads: one for each query or export that may run or wait for a slot, and
    :data:`OTHER_WEB_THREADS` that none of them can take, for pages, uploads and every other call."""
    return settings.query_max_concurrent + settings.query_queue_length + OTHER_WEB_THREADS


def listen_url(host: str, port: int) -> str:
    """The URL ``mosu up`` is reached at: its listen address, or this machine's name when it
    listens on every address (``http://0.0.0.0:5000`` would send browsers nowhere)."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def check_site_url(url: str) -> str:
    """``MOSU_SITE_URL`` must be an absolute http(s) URL: links to downloads and help are built on it."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise StartupError(f"MOSU_SITE_URL must be an absolute http:// or https:// URL, got {url!r}")
    return url.rstrip("/")


class _Stop(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM/SIGINT to unwind and stop every child.

    A KeyboardInterrupt, not an Exception: the signal often lands while waitress's main loop is
    inside a connection's handler, which swallows any Exception (and logs "uncaptured python
    exception, closing channel"), so SIGTERM was lost under load (4 of 4 tries while a client
    kept connecting); waitress re-raises KeyboardInterrupt there and ends ``server.run()``.
    """


def _raise_stop(signum, _frame) -> None:
    raise _Stop(signal.Signals(signum).name)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="HTTP port.")
@data_dir_option
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 64),
              help="Ingest worker processes to start.")
@click.option("--demo", is_flag=True, help="Load the demo datasets shipped with Mosu.")
def up(host: str, port: int, data_dir: Path | None, workers: int, demo: bool) -> None:
    """Start the whole platform in the foreground: object store, catalog, workers, web server."""
    settings = _settings(data_dir)
    _logging(settings)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    seaweed = None
    workers_procs: WorkerProcesses | None = None
    error: str | None = None
    try:
        check_data_dir(settings.data_dir)
        check_port(host, port)
        check_smtp_url(settings.smtp_url)
        url = f"http://{host}:{port}"
        # Absolute links (downloads, help) are built on the site URL, never on a request's Host.
        if settings.site_url:
            settings = settings.replace(site_url=check_site_url(settings.site_url))
        else:
            settings = settings.replace(site_url=listen_url(host, port))
            if host in ("", "0.0.0.0", "::"):
                log.warning("MOSU_SITE_URL is unset: links name %s; set it to the public URL", settings.site_url)
        if not settings.s3_endpoint:
            from catalog.storage.seaweed import SeaweedServer

            seaweed = SeaweedServer(settings.data_dir, binary=settings.weed_binary,
                                    memory_limit=settings.weed_memory_limit).start()
            settings = settings.replace(s3_endpoint=seaweed.endpoint,
                                        s3_access_key=seaweed.credentials.access_key,
                                        s3_secret_key=seaweed.credentials.secret_key)
        from catalog.cli.app import create_app
        from catalog.platform import Platform

        platform = Platform.open(settings)
        platform.store.ensure_bucket()
        workers_procs = WorkerProcesses(workers, {**os.environ, **settings.to_env()}).start()
        import waitress

        from catalog.api.body import FORM_OVERHEAD

        # waitress spools a body to disk before the app sees it and refuses more than its default
        # 1 GiB with a bare 413: raise that backstop to the upload limit, so 10 GiB uploads get in
        # (below it, catalog.api.body answers with CKAN's envelope; other bodies are never read).
        server = waitress.create_server(create_app(platform=platform), host=host, port=port,
                                        threads=web_threads(settings), ident="mosu",
                                        # keep reading a busy connection, so that a client that leaves
                                        # is noticed (waitress.client_disconnected) and its query stopped
                                        channel_request_lookahead=1,
                                        max_request_body_size=max(WAITRESS_BODY_DEFAULT,
                                                                  settings.max_upload_bytes + FORM_OVERHEAD))
        # Build the search index now rather than on the first search (seconds at 100,000 datasets).
        threading.Thread(target=platform.search.refresh, daemon=True, name="search-warmup").start()
        if demo:
            threading.Thread(target=_load_demo, args=(settings, url), daemon=True).start()
        click.echo(f"Mosu is running at {url}/  (Ctrl-C to stop)", err=False)
        sys.stdout.flush()
        server.run()
    except _Stop:
        pass
    except MosuError as exc:
        error = exc.message
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if workers_procs is not None:
            workers_procs.stop()
        if seaweed is not None:
            seaweed.stop()
    if error:
        _fail(error)
    click.echo("Mosu stopped.")


def _load_demo(settings: Settings, url: str) -> None:
    """Create the demo publisher and its organization, then upload the demo datasets through the HTTP API."""
    from catalog.actions import call
    from catalog.cli import demo

    try:
        ctx = _site_context(settings)
        from catalog.db import lookup

        with ctx.platform.read() as s:
            exists = lookup.user(s, "demo") is not None
        if not exists:
            call(ctx, "user_create", {"name": "demo", "fullname": "Demo publisher"})
            _demo_accounts(ctx, settings)
        org = demo.manifest()["organization"]
        with ctx.platform.read() as s:
            has_org = lookup.organization(s, org["name"]) is not None
        if not has_org:  # creating organizations is for sysadmins: the site makes it, demo administers it
            call(ctx, "organization_create", {**org, "users": [{"name": "demo", "capacity": "admin"}]})
        token = call(ctx, "api_token_create", {"user": "demo", "name": f"demo-load-{int(time.time())}"})["token"]
        created = demo.load(url, token)
        log.info("demo data: %d dataset(s) uploaded", len(created))
    except Exception:
        log.exception("could not load the demo datasets")


DEMO_ACCOUNTS = (("demo", "the demo publisher (administers the demo organization)", {}),
                 ("researcher", "a researcher", {"fullname": "Demo researcher"}),
                 ("auditor", "a compliance officer", {"fullname": "Demo auditor", "auditor": True}))


def _demo_accounts(ctx, settings: Settings) -> None:
    """Give the demo publisher, a researcher and an auditor random passwords to sign in with, written
    to ``<data dir>/demo-accounts.txt`` (readable by the owner only) and never to the log: a demo
    reachable from a network must not have a password anyone could read in the README."""
    import secrets

    from catalog.actions import call

    lines = []
    for name, who, extra in DEMO_ACCOUNTS:
        password = secrets.token_urlsafe(12)
        if name == "demo":
            call(ctx, "user_update", {"id": name, "password": password})
        else:
            call(ctx, "user_create", {"name": name, "password": password, **extra})
        lines.append(f"{name}\t{password}\t{who}")
    path = settings.data_dir / "demo-accounts.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# user\tpassword\twho (sign in at /user/login)\n" + "\n".join(lines) + "\n")
    log.info("demo accounts (demo, researcher, auditor): their passwords are in %s", path)


# -- mosu worker ----------------------------------------------------------------------------

@main.command()
@data_dir_option
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Jobs processed at once in this process.")
@click.option("--exit-with-parent", is_flag=True, hidden=True)
def worker(data_dir: Path | None, concurrency: int, exit_with_parent: bool) -> None:
    """Run ingest workers alone.

    They need the catalog database and object storage: MOSU_DATABASE_URL and
    MOSU_S3_* on another machine, or nothing beside a running ``mosu up`` on the
    same data directory.
    """
    settings = _settings(data_dir)
    _logging(settings)
    try:
        check_smtp_url(settings.smtp_url)
    except MosuError as exc:
        _fail(exc.message)
    if not settings.s3_endpoint:
        from catalog.storage.seaweed import running_endpoint

        embedded = running_endpoint(settings.data_dir)
        if embedded is not None:
            endpoint, creds = embedded
            settings = settings.replace(s3_endpoint=endpoint, s3_access_key=creds.access_key,
                                        s3_secret_key=creds.secret_key)
    if not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
        _fail("mosu worker needs object storage: start 'mosu up' on this data directory, "
              "or set MOSU_S3_ENDPOINT, MOSU_S3_ACCESS_KEY and MOSU_S3_SECRET_KEY")
    from catalog.platform import Platform
    from ingest.worker import run_workers

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if exit_with_parent:
        parent = os.getppid()

        def watch() -> None:
            while not stop.wait(1.0):
                if os.getppid() != parent:
                    stop.set()
        threading.Thread(target=watch, daemon=True).start()
    try:
        run_workers(Platform.open(settings), concurrency, stop)
    except MosuError as exc:
        _fail(exc.message)


# -- mosu push ------------------------------------------------------------------------------

HELD_EXIT_STATUS = 3
"""``mosu push``'s exit status for a version held for a personal-information acknowledgement: not
published, yet not a failure either (1; click's usage errors are 2)."""

@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", required=True, help="Dataset name or id to upload into.")
@click.option("--resource", default=None, help="Resource name or id: a new version of it, or a new resource.")
@click.option("--url", default=None, help="Mosu's URL (default MOSU_URL or http://127.0.0.1:5000).")
@click.option("--token", default=None, envvar="MOSU_TOKEN", help="API token (default MOSU_TOKEN).")
@click.option("--no-wait", is_flag=True, help="Return after the upload, without following the ingest.")
@click.option("--multipart-over", default=64 << 20, show_default=True, type=click.IntRange(1),
              help="Files larger than this many bytes go in parts straight to object storage.")
def push(file: Path, dataset: str, resource: str | None, url: str | None, token: str | None,
         no_wait: bool, multipart_over: int) -> None:
    """Upload FILE with a progress bar, then follow its ingest until it is published or fails.

    Exit status: 0 published; 1 failed (or refused, or the upload broke); 3 held, not published
    until one of the dataset's editors acknowledges the personal information found in it.

    A file sent in parts resumes where it stopped when the same command is run again: open
    uploads are remembered in uploads.json under MOSU_STATE_DIR (default
    $XDG_STATE_HOME/mosu or ~/.local/state/mosu).
    """
    from tqdm import tqdm

    from catalog.cli.client import ApiError, Client, UploadInterrupted, default_url, follow
    from catalog.cli.client import push as push_file
    from catalog.cli.resume import UploadState, default_state_dir
    from catalog.versions.lifecycle import JobState, State

    client = Client(url or default_url(), token)
    try:
        with tqdm(total=file.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=f"uploading {file.name}", file=sys.stderr) as bar:
            res = push_file(client, file, dataset, resource, on_progress=bar.update,
                            multipart_over=multipart_over, state=UploadState(default_state_dir()),
                            on_note=lambda message: bar.write(message, file=sys.stderr))
        click.echo(f"uploaded: resource {res['id']}")
        if no_wait:
            return

        def show(status: dict) -> None:
            progress = status["progress"]
            detail = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                               for k, v in progress.items() if v is not None)
            click.echo(f"ingest: {status['stage']}" + (f" ({detail})" if detail else ""), err=True)

        status = follow(client, res["id"], show)
    except UploadInterrupted as exc:
        _fail(str(exc))
    except ApiError as exc:
        _fail(f"{exc} (HTTP {exc.status})")
    except requests_errors() as exc:
        _fail(f"cannot reach {client.url}: {exc.__class__.__name__}")
    rows = f"{status['progress'].get('rows', 0):,} rows"
    if status["state"] != JobState.DONE or status.get("version_status") == State.FAILED:
        _fail(f"ingest failed: {status['error']}")
    if status.get("version_status") == State.HELD:
        click.echo(f"held: version {status['version']}, {rows}, not published: {status['error']}")
        sys.exit(HELD_EXIT_STATUS)
    click.echo(f"published: version {status['version']}, {rows}")


def requests_errors() -> tuple[type[BaseException], ...]:
    import requests

    return (requests.ConnectionError, requests.Timeout)


# -- mosu user ------------------------------------------------------------------------------

@main.group()
def user() -> None:
    """Manage users and their API tokens."""


@user.command("add")
@click.argument("name")
@click.option("--sysadmin", is_flag=True, help="Give the user every permission.")
@click.option("--auditor", is_flag=True, help="Make the user an auditor: reads the audit log, and no data by it.")
@click.option("--email", default=None, help="The user's e-mail address.")
@click.option("--password", is_flag=True, help="Ask for a password (typed twice, not echoed), to sign in on the web.")
@data_dir_option
def user_add(name: str, sysadmin: bool, auditor: bool, email: str | None, password: bool,
             data_dir: Path | None) -> None:
    """Create user NAME."""
    from catalog.actions import call

    secret = click.prompt("Password", hide_input=True, confirmation_prompt=True) if password else None
    try:
        result = call(_site_context(_settings(data_dir)), "user_create",
                      {"name": name, "sysadmin": sysadmin, "auditor": auditor, "email": email, "password": secret})
    except MosuError as exc:
        _fail(exc.message)
    roles = " and ".join(r for r, on in (("sysadmin", sysadmin), ("auditor", auditor)) if on)
    click.echo(f"created user {result['name']} ({result['id']})" + (f" as {roles}" if roles else ""))


@user.group("token")
def user_token() -> None:
    """API tokens."""


@user_token.command("add")
@click.argument("name")
@click.argument("token_name")
@data_dir_option
def user_token_add(name: str, token_name: str, data_dir: Path | None) -> None:
    """Create an API token TOKEN_NAME for user NAME; prints the token as the last line."""
    from catalog.actions import call

    try:
        result = call(_site_context(_settings(data_dir)), "api_token_create", {"user": name, "name": token_name})
    except MosuError as exc:
        _fail(exc.message)
    click.echo(f"API token {token_name!r} for {name} (shown once; keep it secret):")
    click.echo(result["token"])


# -- mosu audit -----------------------------------------------------------------------------

@main.group()
def audit() -> None:
    """The tamper-evident audit log: verify it, checkpoint it, hand out its public key, export it with
    proofs, prune it; its events and the compliance reports."""


@contextlib.contextmanager
def _audit_platform(data_dir: Path | None) -> Iterator["Platform"]:
    """The platform of ``data_dir`` for audit commands: its catalog database and the object storage
    that keeps the checkpoints' copies (MOSU_S3_*, the embedded SeaweedFS of a running ``mosu up``
    on this data directory, or, when it is stopped, that SeaweedFS started for the command)."""
    from catalog.platform import Platform

    settings = _settings(data_dir)
    if settings.database_url is None and not (settings.data_dir / "catalog.sqlite").exists():
        _fail(f"no catalog database in {settings.data_dir}")
    seaweed = None
    if not settings.s3_endpoint:
        from catalog.storage.seaweed import SeaweedServer, running_endpoint

        embedded = running_endpoint(settings.data_dir)
        if embedded is None:
            if not (settings.data_dir / "s3").is_dir():
                _fail("the audit checkpoints' copies are in object storage: set MOSU_S3_ENDPOINT, "
                      "MOSU_S3_ACCESS_KEY and MOSU_S3_SECRET_KEY")
            seaweed = SeaweedServer(settings.data_dir, binary=settings.weed_binary,
                                    memory_limit=settings.weed_memory_limit).start()
            embedded = seaweed.endpoint, seaweed.credentials
        endpoint, creds = embedded
        settings = settings.replace(s3_endpoint=endpoint, s3_access_key=creds.access_key,
                                    s3_secret_key=creds.secret_key)
    platform = None
    try:
        platform = Platform.open(settings)
        yield platform
    except MosuError as exc:
        _fail(exc.message)
    finally:
        if platform is not None:
            platform.close()
        if seaweed is not None:
            seaweed.stop()


AUDIT_TAMPERED_EXIT_STATUS = 2
"""``mosu audit verify``'s exit status when the log is not intact (1: it could not be checked)."""


@audit.command("verify")
@data_dir_option
@click.option("--export", "export_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Check this export of 'mosu audit export' instead, without the database.")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="With --export: the site's Ed25519 public key (PEM, from 'mosu audit public-key').")
def audit_verify(data_dir: Path | None, export_file: Path | None, public_key: Path | None) -> None:
    """Check the whole audit log: every event's hash and link, no gaps, every checkpoint's
    signature and root, and that both copies of each checkpoint agree. With --export FILE
    --public-key KEY, check an export instead, without the database: the head's signature, every
    event's hash, its inclusion proof, and the links between events.

    Exit status: 0 intact (one summary line); 2 not intact (the first bad event and what is wrong
    with it: modified, missing, reordered, inserted, truncated, rehashed, bad-signature,
    inconsistent; of an export also not-included, broken-link, malformed); 1 it could not be checked.
    A check of the database leaves an audit_verified event (what it found), which the compliance
    dashboard shows as the last verification.
    """
    if export_file is not None or public_key is not None:
        if export_file is None or public_key is None:
            _fail("--export and --public-key go together")
        _verify_export(export_file, public_key)  # type: ignore[arg-type]
        return
    from sqlalchemy.exc import SQLAlchemyError

    from catalog.records.verify import record_run, verify_platform

    with _audit_platform(data_dir) as platform:
        started = time.monotonic()
        try:
            report = verify_platform(platform)
        except FileNotFoundError as exc:  # no signing key: nothing was ever checkpointed here
            _fail(str(exc))
        try:  # the run's audit_verified event, after the events it checked (the next run checks it)
            record_run(platform, report, time.monotonic() - started, Actor.site())
        except SQLAlchemyError as exc:  # the check's answer still stands: say it, and that it is not recorded
            reason = str(exc).splitlines()[0] if str(exc) else ""
            click.echo(f"mosu: warning: this verification could not be recorded in the audit log: "
                       f"{exc.__class__.__name__}: {reason}", err=True)
    if report.finding is not None:
        click.echo(f"mosu: {report.summary()}", err=True)
        sys.exit(AUDIT_TAMPERED_EXIT_STATUS)
    click.echo(report.summary())


def _verify_export(export_file: Path, public_key: Path) -> None:
    from catalog.records import audit_export as export
    from catalog.records.checkpoints import load_public

    try:
        key = load_public(public_key.read_bytes())
    except ValueError as exc:
        _fail(f"{public_key} is not an Ed25519 public key in PEM: {exc}")
    with open(export_file, encoding="utf-8", newline="") as stream:
        check = export.verify_export(stream, key)
    if not check.ok:
        click.echo(f"mosu: {check.summary()}", err=True)
        sys.exit(AUDIT_TAMPERED_EXIT_STATUS)
    click.echo(check.summary())


@audit.command("checkpoint")
@data_dir_option
def audit_checkpoint(data_dir: Path | None) -> None:
    """Sign a tree head over every event so far (kept in the database and object storage); prints it."""
    from catalog.records import checkpoints

    with _audit_platform(data_dir) as platform:
        try:
            head = checkpoints.take(platform)
        except checkpoints.LogInconsistent as exc:
            _fail(str(exc))
    click.echo(checkpoints.dumps(head).decode())


@audit.command("public-key")
@data_dir_option
def audit_public_key(data_dir: Path | None) -> None:
    """Print the public key that verifies the checkpoints (PEM), for an outside verifier."""
    from catalog.records import checkpoints

    try:
        key = checkpoints.load_key(_settings(data_dir), create=False)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    click.echo(checkpoints.public_pem(key).decode().rstrip("\n"))


def _utc(value: str | None, name: str) -> dt.datetime | None:
    """A date or date-time option as naive UTC (how the catalog stores times); no zone means UTC."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or an ISO date-time", param_hint=name) from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when


@audit.command("export")
@click.option("--since", default=None, help="First time included (YYYY-MM-DD or ISO date-time, UTC).")
@click.option("--until", default=None, help="First time excluded (YYYY-MM-DD or ISO date-time, UTC).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default standard output).")
@data_dir_option
def audit_export(since: str | None, until: str | None, fmt: str, out: Path | None, data_dir: Path | None) -> None:
    """Write the events of a time range with inclusion proofs against a fresh signed tree head.

    Anyone with the site's public key checks the file with
    'mosu audit verify --export FILE --public-key KEY', without the database.
    """
    from catalog.records import audit_export as export

    start, end = _utc(since, "--since"), _utc(until, "--until")
    with _audit_platform(data_dir) as platform:
        if out is None:
            done = export.export(platform, sys.stdout, since=start, until=end, fmt=fmt)
        else:
            partial = out.with_name(out.name + ".partial")
            try:
                with open(partial, "w", encoding="utf-8", newline="") as stream:
                    done = export.export(platform, stream, since=start, until=end, fmt=fmt)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            partial.replace(out)  # a failed export leaves no file that looks complete
    span = f" (seq {done.first_seq}-{done.last_seq})" if done.events else ""
    click.echo(f"exported {done.events} audit event(s){span} with inclusion proofs against the signed tree "
               f"head of size {done.head.tree_size}", err=True)


@audit.command("prune")
@click.option("--before", default=None,
              help="Prune only events before this date (UTC); at most what MOSU_AUDIT_RETENTION_DAYS allows.")
@data_dir_option
def audit_prune(before: str | None, data_dir: Path | None) -> None:
    """Delete audit events older than the retention (MOSU_AUDIT_RETENTION_DAYS, at least 183), up to
    the last signed checkpoint among them, keeping what verification needs to go on."""
    from catalog.platform import Platform
    from catalog.records import retention

    cut = _utc(before, "--before")
    platform = Platform.open(_settings(data_dir))
    try:
        done = retention.prune(platform, before=cut)
    except MosuError as exc:
        _fail(exc.message)
    finally:
        platform.close()
    if done is None:
        click.echo("nothing to prune: no signed checkpoint covers only events older than the retention")
    else:
        click.echo(f"pruned {done.events} audit event(s), up to seq {done.upto_seq} "
                   f"(older than {done.cutoff:%Y-%m-%d %H:%M:%S} UTC)")



def _audit_commands() -> None:
    from catalog.cli import audit_reports

    audit_reports.add_commands(audit)


_audit_commands()


if __name__ == "__main__":
    main()
