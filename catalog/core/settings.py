"""The one settings object of the platform.

Entry points (the CLI) read it from ``MOSU_*`` environment variables with
:meth:`Settings.from_env`; everything below them receives it as an argument, and
tests build it directly.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

GIB = 1024**3


@dataclass(frozen=True)
class Settings:
    """Every tunable of a Mosu deployment. Field docs live in README's table."""

    data_dir: Path = Path(".mosu")
    database_url: str | None = None
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "mosu"
    s3_region: str = "us-east-1"
    # Ranged GETs / parts in flight per object a worker moves. On 2 cores shared with SeaweedFS, 2-3
    # beat one stream by ~20% and 4+ lose to oversubscription (bench/storage.py); a remote S3 wants more.
    s3_transfer_threads: int = 3
    weed_binary: str | None = None
    weed_memory_limit: str = "1GiB"
    site_url: str | None = None
    # How long a write waits for the SQLite catalog's write lock (another writer, a backup holding
    # it) before it fails; a read whose audit event cannot be written by then is refused with 503.
    database_busy_timeout_seconds: float = 30.0
    # The Ed25519 key that signs the audit log's tree heads; kept outside the catalog database (and
    # outside its backups), by default <data_dir>/keys/audit-ed25519.pem, created 0600 on first use.
    audit_key_file: Path | None = None
    # Audit retention (PRC Cybersecurity Law art. 21: six months at least; PIPL art. 56: three years).
    audit_retention_days: int = 1095
    audit_checkpoint_seconds: int = 3600
    # E-mail copies of notifications (issue 12): unset, nothing is queued or sent; the inbox works alone.
    smtp_url: str | None = None
    mail_from: str = "mosu@localhost"
    # CKAN's default (ckan.auth.user_create_organizations/groups = false): only sysadmins create
    # organizations and groups, so nobody can conjure an organization to move datasets into.
    users_create_organizations: bool = False
    # An action that returns without having checked a permission is a bug that may leak data: refuse
    # its answer (500) rather than only log it. Off, it is logged and the answer returned.
    strict_permission_checks: bool = True
    max_upload_bytes: int = 10 * GIB
    # Any body other than a file upload (JSON, forms): json.loads turns 1 MiB into up to ~28 MiB of objects.
    max_body_bytes: int = 1024 * 1024
    max_unpacked_bytes: int = 50 * GIB
    max_unpack_ratio: int = 200
    max_line_bytes: int = 10 * 1024 * 1024
    job_lease_seconds: int = 60
    job_max_attempts: int = 5
    worker_poll_seconds: float = 0.2
    staging_max_age_seconds: int = 3600
    upload_max_age_seconds: int = 86400
    convert_memory_limit: str = "160MB"
    convert_threads: int = 2
    query_memory_limit: str = "1GB"
    query_threads: int = 2
    query_timeout_seconds: float = 10.0
    export_timeout_seconds: float = 1800.0
    query_max_rows: int = 32_000
    # Bytes of values a query answer may hold, and an export batch (2,048 rows) too: the row cap alone
    # let 500 rows of repeat('x', 1000000) raise the web process by 1.9 GB.
    query_max_result_bytes: int = 128 * 1024 * 1024
    # Researcher queries and exports running at once (each holds a web thread), and how many more may
    # wait, and how long, for one to finish when the site runs its maximum (the web server has threads
    # for all of them and 4 more for everything else).
    query_max_concurrent: int = 4
    query_max_concurrent_per_caller: int = 2
    query_queue_length: int = 16
    query_queue_seconds: float = 5.0
    query_cache_bytes: int = 20 * GIB
    # Memory the web process may keep for row orders of cached versions (4 bytes a row per sorted column
    # and direction: 40 MB for 10M rows), so a sorted page is a take, not a sort of every row (110-450 ms
    # on 10M rows). Heap, unlike the cached tables (page cache), hence its own bound; 0: always sort in SQL.
    query_sort_cache_bytes: int = 512 * 1024**2
    # Memory the web process may keep for answers of repeatable datastore_search_sql queries, reused for
    # an identical query over the same versions and column scopes (least recently used dropped; 0: none).
    query_result_cache_bytes: int = 64 * 1024**2
    parquet_row_group_rows: int = 16_384
    log_level: str = "INFO"
    # Requests with an invalid API token per client address and minute before the rest get 429 (0: no limit).
    token_failure_limit: int = 20
    # Web sign-in: a session ends this many hours after sign-in, or after this many idle minutes.
    web_session_hours: int = 12
    web_session_idle_minutes: int = 120
    # Wrong passwords per account, and per client address, in 15 minutes before sign-in waits (0: no limit).
    sign_in_failures_per_account: int = 5
    sign_in_failures_per_address: int = 20
    # Audit events of refused calls per client address and second, per web process; the rest of a
    # second's refusals are counted in one refusals_suppressed event (0: no cap).
    audit_refusals_per_second: int = 20
    # Tests only (MOSU_TEST_HOLD_INGEST): while no file exists at this path, a worker that has claimed
    # a job waits before working on it, its lease renewed and its stage "test-hold", so a test can act
    # on a job provably held (kill the worker, stop the object store) with no timing. Unset, the
    # default, it does nothing; like every setting it comes from the environment, never over HTTP.
    test_hold_ingest: Path | None = None

    @property
    def effective_database_url(self) -> str:
        """The SQLAlchemy URL: ``MOSU_DATABASE_URL`` or SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'catalog.sqlite').resolve()}"

    def replace(self, **changes: object) -> "Settings":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Build settings from ``MOSU_*`` variables; explicit overrides win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get("MOSU_" + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.type, raw, f.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])  # type: ignore[arg-type]
        if values.get("audit_key_file"):
            values["audit_key_file"] = Path(values["audit_key_file"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The ``MOSU_*`` variables that reproduce these settings in a child process."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out["MOSU_" + f.name.upper()] = str(value)
        return out


TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def _coerce(type_name: object, raw: str, name: str) -> object:
    text = str(type_name)
    if text.startswith("bool"):
        word = raw.strip().lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise ValueError(f"MOSU_{name.upper()} must be true or false, got {raw!r}")
        return word in TRUE_WORDS
    try:
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError:
        raise ValueError(f"MOSU_{name.upper()} must be a number, got {raw!r}") from None
    if text.startswith("Path"):
        return Path(raw)
    return raw
