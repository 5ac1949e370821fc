"""Turn catalog rows into CKAN-shaped dicts (pure: rows in, dicts out)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from catalog.core.licenses import LICENSES
from catalog.db.models import Group, Package, Resource, ResourceVersion, User
from catalog.versions import unpublished


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def group(g: Group, package_count: int | None = None) -> dict[str, Any]:
    """A CKAN group or organization dict (without members and datasets)."""
    out = {
        "id": g.id, "name": g.name, "title": g.title or g.name, "display_name": g.title or g.name,
        "description": g.description, "image_url": g.image_url, "image_display_url": g.image_url,
        "created": iso(g.created), "state": g.state, "type": g.type,
        "is_organization": g.is_organization, "approval_status": "approved",
        "extras": list(g.extras or []),
    }
    if package_count is not None:
        out["package_count"] = package_count
    return out


def group_brief(g: Group) -> dict[str, Any]:
    """The short group dict CKAN embeds in a dataset's ``groups``."""
    return {"id": g.id, "name": g.name, "title": g.title or g.name, "display_name": g.title or g.name,
            "description": g.description, "image_display_url": g.image_url}


def user(u: User, include_email: bool = False) -> dict[str, Any]:
    """A CKAN user dict; ``include_email`` (the user and sysadmins) adds the private fields: the
    e-mail address and whether the user is an auditor (who reads the audit log is nobody else's business)."""
    out = {"id": u.id, "name": u.name, "fullname": u.fullname, "display_name": u.fullname or u.name,
           "about": u.about, "image_url": u.image_url, "sysadmin": u.sysadmin, "state": u.state,
           "created": iso(u.created)}
    if include_email:
        out["email"] = u.email
        out["auditor"] = bool(u.auditor)
    return out


def resource(res: Resource, version: ResourceVersion | None, site_url: str, *, editor: bool = False,
             error_detail: str | None = None) -> dict[str, Any]:
    """A CKAN resource dict plus Mosu's ingest fields.

    ``datastore_active`` is true once a version is published: a failed later
    upload leaves the earlier version readable. ``ingest_error`` is the value-free
    summary stored on the resource unless the caller is one of the dataset's
    ``editor``s, who get the latest version's ``error_detail``; the same goes for
    the odd values in ``ingest_warnings`` (see :mod:`catalog.versions.unpublished`).
    """
    out: dict[str, Any] = {
        **(res.extras or {}),
        "id": res.id, "package_id": res.package_id, "name": res.name,
        "description": res.description, "format": res.format, "url": res.url,
        "url_type": res.url_type, "mimetype": res.mimetype, "position": res.position,
        "state": res.state, "created": iso(res.created), "last_modified": iso(res.last_modified),
        "datastore_active": res.current_version_id is not None,
        "ingest_status": res.ingest_status,
        "ingest_error": (error_detail or res.ingest_error) if editor else res.ingest_error,
        "size": None, "hash": "", "version_id": res.current_version_id, "row_count": None,
        "ingest_warnings": [], "quality_score": None,
    }
    if res.url_type == "upload":
        out["url"] = f"{site_url}/dataset/{res.package_id}/resource/{res.id}/download"
    if version is not None:
        out.update(size=version.size, hash=f"sha256:{version.sha256}", row_count=version.row_count,
                   ingest_warnings=warnings(version, editor), quality_score=version.quality_score)
    return out


def package(pkg: Package, resources: list[dict[str, Any]], groups: list[Group] | None = None) -> dict[str, Any]:
    lic = LICENSES.get(pkg.license_id)
    return {
        "id": pkg.id, "name": pkg.name, "title": pkg.title or pkg.name, "notes": pkg.notes,
        "url": pkg.url, "version": pkg.version, "author": pkg.author,
        "author_email": pkg.author_email, "maintainer": pkg.maintainer,
        "maintainer_email": pkg.maintainer_email, "license_id": pkg.license_id,
        "license_title": lic.title if lic else pkg.license_id,
        "license_url": lic.url if lic else "", "isopen": bool(lic and lic.is_open),
        "owner_org": pkg.owner_org,
        "organization": group(pkg.organization) if pkg.organization else None,
        "private": pkg.private, "state": pkg.state, "type": pkg.type,
        "access_level": pkg.access_level or "open",
        "embargo_until": pkg.embargo_until.isoformat() if pkg.embargo_until else None,
        "agreement_id": pkg.agreement_id, "grant_days": pkg.grant_days,
        "tags": [{"name": t, "display_name": t, "state": "active", "vocabulary_id": None}
                 for t in pkg.tag_names],
        "num_tags": len(pkg.tag_rows), "extras": list(pkg.extras or []),
        "groups": [group_brief(g) for g in groups or []],
        "relationships_as_object": [], "relationships_as_subject": [],
        "creator_user_id": pkg.creator_user_id,
        "metadata_created": iso(pkg.metadata_created), "metadata_modified": iso(pkg.metadata_modified),
        "resources": resources, "num_resources": len(resources),
        "quality_score": quality_score(resources),
    }


def quality_score(resources: list[dict[str, Any]]) -> float | None:
    """A dataset's score: the mean of its resources' current scores (None before any is scored)."""
    scores = [r["quality_score"] for r in resources if r.get("quality_score") is not None]
    return round(sum(scores) / len(scores), 1) if scores else None


def version(v: ResourceVersion, current_id: str | None, editor: bool = False) -> dict[str, Any]:
    """One immutable upload of a resource (``resource_version_list``). Others than the dataset's
    ``editor``s see a value-free ``error`` and ``warnings``, and no ``schema`` of a version that was
    never published (its column names are part of the unpublished upload)."""
    public = v.published is not None
    return {"id": v.id, "resource_id": v.resource_id, "number": v.number, "status": v.status,
            "current": v.id == current_id, "sha256": v.sha256, "size": v.size, "row_count": v.row_count,
            "schema": v.schema if editor or public else None, "original_filename": v.original_filename,
            "uploader_id": v.uploader_id, "created": iso(v.created), "published": iso(v.published),
            "error": v.error if editor else unpublished.error_summary(v.status, v.validation),
            "warnings": warnings(v, editor), "quality_score": v.quality_score}


def warnings(v: ResourceVersion, editor: bool = False) -> list[str]:
    """What the ingest noticed but published anyway (values left empty that did not fit their type):
    with the values and rows for the dataset's editors, counts only for everyone else."""
    validation = v.validation or {}
    if editor:
        return list(validation.get("warnings") or [])
    return unpublished.odd_value_notes(validation.get("odd_values") or [])
