"""Load datasets in bulk as search documents: their CKAN dict plus the fields the index needs.

A few batched queries per thousand datasets, so the whole catalog (100,000
datasets) loads in seconds rather than one round trip per dataset.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db import dictize
from catalog.db.models import Group, Member, Package, PackageTag, Resource, ResourceVersion

BATCH = 1000


@dataclass(frozen=True)
class Document:
    id: str
    name: str
    title: str
    state: str
    private: bool
    owner_org: str | None
    org_name: str | None
    org_title: str | None
    license_id: str
    modified: float
    created: float
    creator_user_id: str | None
    tags: list[str]
    groups: list[tuple[str, str]]  # (name, title)
    res_formats: list[str]
    res_names: list[str]
    res_descriptions: list[str]
    notes: str
    author: str
    maintainer: str
    extras_text: str
    dict: dict
    quality: float | None = None  # the dataset's quality score, for filtering and sorting
    access_level: str = "open"  # who may read its rows (catalog.core.levels): a filter and a facet


def epoch(value: dt.datetime) -> float:
    """Seconds since 1970 of a naive UTC time (the catalog stores UTC without a zone)."""
    return value.replace(tzinfo=dt.timezone.utc).timestamp()


def _batches(ids: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(ids), BATCH):
        yield ids[i:i + BATCH]


def _ns(row, **extra) -> SimpleNamespace:
    return SimpleNamespace(**row._mapping, **extra)


def _group(row) -> SimpleNamespace:
    return _ns(row, type="organization" if row.is_organization else "group")


def load(session: Session, ids: Iterable[str] | None = None) -> Iterator[Document]:
    """Documents for ``ids`` (or every dataset); ids that no longer exist are skipped.

    Reads plain rows (no ORM objects): building 100,000 documents is dominated by
    object construction otherwise.
    """
    conn = session.connection()
    if ids is None:
        ids = list(conn.execute(select(Package.id).order_by(Package.metadata_created)).scalars())
    groups_by_id = {g.id: _group(g) for g in conn.execute(select(Group.__table__))}
    for batch in _batches(list(ids)):
        pkgs = conn.execute(select(Package.__table__).where(Package.id.in_(batch))).all()
        tags: dict[str, list[str]] = {}
        for pid, name in conn.execute(select(PackageTag.package_id, PackageTag.name)
                                      .where(PackageTag.package_id.in_(batch)).order_by(PackageTag.name)):
            tags.setdefault(pid, []).append(name)
        resources: dict[str, list] = {}
        for r in conn.execute(select(Resource.__table__).where(Resource.package_id.in_(batch),
                                                               Resource.state == "active")
                              .order_by(Resource.position)):
            resources.setdefault(r.package_id, []).append(r)
        version_ids = [r.current_version_id for rs in resources.values() for r in rs if r.current_version_id]
        version_columns = [c for c in ResourceVersion.__table__.columns if c.key != "quality"]  # no report
        versions = {v.id: v for v in conn.execute(select(*version_columns).where(
            ResourceVersion.id.in_(version_ids)))} if version_ids else {}
        member_groups: dict[str, list] = {}
        for pid, gid in conn.execute(select(Member.table_id, Member.group_id).where(
                Member.table_name == "package", Member.table_id.in_(batch))):
            grp = groups_by_id.get(gid)
            if grp is not None and grp.state == "active" and not grp.is_organization:
                member_groups.setdefault(pid, []).append(grp)
        for row in pkgs:
            pkg_tags = tags.get(row.id, [])
            org = groups_by_id.get(row.owner_org) if row.owner_org else None
            pkg = _ns(row, organization=org, tag_names=pkg_tags, tag_rows=pkg_tags)
            res_rows = resources.get(row.id, [])
            # Upload URLs are stored relative; search results add the site URL of the request.
            res_dicts = [dictize.resource(r, versions.get(r.current_version_id or ""), "") for r in res_rows]
            pkg_groups = sorted(member_groups.get(row.id, []), key=lambda g: g.name)
            yield Document(
                id=row.id, name=row.name, title=row.title or row.name, state=row.state, private=row.private,
                owner_org=row.owner_org, org_name=org.name if org else None,
                org_title=(org.title or org.name) if org else None, license_id=row.license_id,
                modified=epoch(row.metadata_modified), created=epoch(row.metadata_created),
                creator_user_id=row.creator_user_id, tags=pkg_tags,
                groups=[(g.name, g.title or g.name) for g in pkg_groups],
                res_formats=sorted({r.format for r in res_rows if r.format}),
                res_names=[r.name for r in res_rows], res_descriptions=[r.description for r in res_rows],
                notes=row.notes or "", author=row.author or "", maintainer=row.maintainer or "",
                extras_text=" ".join(str(e.get("value", "")) for e in row.extras or []),
                dict=(pkg_dict := dictize.package(pkg, res_dicts, pkg_groups)),
                quality=pkg_dict["quality_score"], access_level=pkg_dict["access_level"],
            )
