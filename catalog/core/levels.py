"""Access levels and embargoes: the pure rules of who may read a public dataset's rows.

A dataset's metadata is public unless it is private (CKAN's rule, unchanged). Its *rows* are
governed by its access level, and an embargo suspends every level until a date:

- ``open``: anyone may preview, query and download.
- ``registered``: signed-in users who accepted the dataset's terms (its agreement at its current
  version, or its licence when it names no agreement).
- ``restricted``: users holding an active grant (their own, or their organization's), optionally
  limited to some columns.

Organization members and collaborators read through their roles whatever the level or embargo;
``private`` wins over every level. Nothing here touches the database: :mod:`catalog.access.grants`
does the lookups and :mod:`catalog.access.policy` combines them.
"""
from __future__ import annotations

import datetime as dt
import enum

DEFAULT_GRANT_DAYS = 365
MAX_GRANT_DAYS = 3650  # ten years: every grant ends


class Level(str, enum.Enum):
    OPEN = "open"
    REGISTERED = "registered"
    RESTRICTED = "restricted"


LEVELS = tuple(level.value for level in Level)
PUBLIC_READABLE = frozenset({Level.OPEN.value, Level.REGISTERED.value})
"""Levels under which rows reach people outside the organization without a decision about them:
a version with unacknowledged personal information is held there, as for any public dataset."""


def today() -> dt.date:
    """The UTC date an embargo is compared with (one clock for every process)."""
    return dt.datetime.now(dt.timezone.utc).date()


def embargoed(embargo_until: dt.date | None, on: dt.date | None = None) -> bool:
    """Whether an embargo is still running ``on`` a date (default today, UTC): it ends at the start
    of ``embargo_until``, with nobody acting."""
    return embargo_until is not None and (on or today()) < embargo_until


def needs_pii_acknowledgement(private: bool, level: str) -> bool:
    """Whether a dataset's versions wait for a personal-information acknowledgement before they
    publish: when their rows would be readable by the public (``open``, ``registered``). A
    restricted dataset publishes, and its grants decide who sees which column."""
    return not private and level in PUBLIC_READABLE
