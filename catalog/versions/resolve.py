"""Which version of a resource a call reads: one answer, with its policy named by the caller.

Every call that reads a version takes an optional ``version`` (a number or an id) and
says how it reads, as one of three policies:

- :attr:`Read.PUBLISHED` (rows, SQL, exports, Parquet): the current version, or a named one
  if it was published. An unpublished version is refused whoever asks: its values are
  not public, and a data path that would serve them to its editors would serve them to
  anyone who gets hold of the link or the query.
- :attr:`Read.EDITORS` (quality reports, original uploads): any version by name; none named
  means the current one, else the latest upload. An unpublished one only for the dataset's
  editors (the caller says whether it is one: the access check is the caller's).
- :attr:`Read.PENDING` (acknowledging personal information): the latest held version, else
  as :attr:`Read.EDITORS`.

Which calls may read a dataset at all is asked before, by the caller; this module
answers only which version, and whether its state lets this caller read it.
"""
from __future__ import annotations

from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.core.errors import NotAuthorized, NotFound, ValidationError
from catalog.db import lookup
from catalog.db.models import Resource, ResourceVersion
from catalog.versions.lifecycle import State, is_published


class Read(Enum):
    """How a call reads versions (see the module's docstring)."""

    PUBLISHED = "published"
    EDITORS = "editors"
    PENDING = "pending"


class NoPublishedVersion(NotFound):
    """The resource has no published version yet (nothing uploaded, or not ingested, held or failed)."""


class NotPublished(ValidationError):
    """A named version was not published, and the policy reads published versions only."""

    def __init__(self, version: ResourceVersion) -> None:
        super().__init__({"version": [f"Version {version.number} is {version.status}, not published"]})
        self.version = version


def _named(s: Session, res: Resource, key: object) -> ResourceVersion:
    version = lookup.version(s, res.id, key)
    if version is None:
        raise NotFound(f"Version {key} of this resource not found")
    return version


def current(s: Session, res: Resource) -> ResourceVersion | None:
    """The resource's published version, if it has one."""
    version = s.get(ResourceVersion, res.current_version_id) if res.current_version_id else None
    return version if version is not None and is_published(version) else None


def _latest(s: Session, res: Resource, status: State | None = None) -> ResourceVersion | None:
    query = select(ResourceVersion).where(ResourceVersion.resource_id == res.id)
    if status is not None:
        query = query.where(ResourceVersion.status == status.value)
    return s.scalar(query.order_by(ResourceVersion.number.desc()).limit(1))


def _default(s: Session, res: Resource, policy: Read) -> ResourceVersion:
    """The version a call reads when it names none."""
    if policy is Read.PUBLISHED:
        version = current(s, res)
        if version is None:
            raise NoPublishedVersion(f"Resource \"{res.id}\" was not found in the datastore"
                                     + (f" (ingest {res.ingest_status})" if res.ingest_status else ""))
        return version
    version = (_latest(s, res, State.HELD) if policy is Read.PENDING else None) \
        or current(s, res) or _latest(s, res)
    if version is None:
        raise NotFound("This resource has no upload yet")
    return version


def version_to_read(s: Session, res: Resource, key: object, policy: Read, *, editor: bool = False) -> ResourceVersion:
    """The version of ``res`` that a call naming ``key`` (a number or id; None or "" for the default)
    reads under ``policy``; ``editor`` says whether the caller may edit the dataset.

    Raises :class:`NotFound` for a version that does not exist, :class:`NoPublishedVersion` when
    ``PUBLISHED`` names none and nothing is published, :class:`NotPublished` when ``PUBLISHED``
    names an unpublished one, and :class:`NotAuthorized` when someone other than an editor asks
    for an unpublished one under ``EDITORS`` or ``PENDING``.
    """
    version = _named(s, res, key) if key not in (None, "") else _default(s, res, policy)
    if is_published(version):
        return version
    if policy is Read.PUBLISHED:
        raise NotPublished(version)
    if not editor:
        raise NotAuthorized(f"Access denied: version {version.number} is {version.status}, not published; "
                            "only the dataset's editors may see it")
    return version
