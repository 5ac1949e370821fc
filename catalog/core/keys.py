"""Object keys, built in this one place from internal ids only.

Client file names and other user input never reach a key: a name such as
``../../etc/x.csv`` only ever lands in a database column for display.
"""
from __future__ import annotations

import uuid


def _check_id(value: str) -> str:
    # Raises ValueError for anything that is not a UUID: a key can never carry '/' or '..'.
    return str(uuid.UUID(value))


def raw_upload(resource_id: str, version_id: str) -> str:
    """The upload exactly as received; kept for good, whatever happens to the ingest."""
    return f"raw/{_check_id(resource_id)}/{_check_id(version_id)}"


def staging_parquet(job_id: str, attempt: int) -> str:
    """Where a worker writes Parquet before it is checked and published."""
    return f"staging/{_check_id(job_id)}/{int(attempt)}.parquet"


def version_parquet(resource_id: str, version_id: str) -> str:
    """The immutable published Parquet of one version."""
    return f"parquet/{_check_id(resource_id)}/{_check_id(version_id)}.parquet"


def quality_report(resource_id: str, version_id: str) -> str:
    """A version's quality report (JSON), next to its Parquet."""
    return f"parquet/{_check_id(resource_id)}/{_check_id(version_id)}.quality.json"


AUDIT_CHECKPOINTS = "audit/checkpoints/"
"""Where signed tree heads of the audit log are copied; a deployment gives the web process's
credentials no delete or overwrite right under it where the storage allows."""


def audit_checkpoint(tree_size: int) -> str:
    """A signed tree head, by its tree size (zero-padded, so the keys list in order)."""
    return f"{AUDIT_CHECKPOINTS}{int(tree_size):020d}.json"
