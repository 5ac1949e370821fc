"""Datasets (CKAN packages)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import audit, authz, dictize, lookup, validate
from catalog.actions import action
from catalog.context import Actor, Context
from catalog.licenses import LICENSES
from catalog.models import Membership, Package, Resource, ResourceVersion, utcnow


def package_dict(s: Session, pkg: Package, site_url: str) -> dict[str, Any]:
    """The full CKAN dict of a package with its active resources."""
    resources = [r for r in pkg.resources if r.state == "active"]
    version_ids = [r.current_version_id for r in resources if r.current_version_id]
    versions = {v.id: v for v in s.scalars(select(ResourceVersion).where(ResourceVersion.id.in_(version_ids)))} \
        if version_ids else {}
    return dictize.package(pkg, [dictize.resource(r, versions.get(r.current_version_id or ""), site_url)
                                 for r in resources])


def visible_packages(actor: Actor | None):
    """A WHERE clause selecting the active packages ``actor`` may read."""
    if actor is not None and actor.sysadmin:
        return Package.state == "active"
    public = (Package.state == "active") & Package.private.is_(False)
    if actor is None or actor.id is None:
        return public
    member_orgs = select(Membership.organization_id).where(Membership.user_id == actor.id)
    return public | ((Package.state == "active") & Package.owner_org.in_(member_orgs))


@action
def package_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Create a dataset in ``owner_org``. Fields as in CKAN: ``name``, ``title``, ``notes``,
    ``license_id``, ``private``, ``tags``, ``extras``, ``url``, ``version``, ``author``...;
    ``resources`` may list resources without uploads."""
    authz.require_user(ctx.actor, "create a dataset")
    errors = validate.Errors()
    name = validate.name(data.get("name"), errors)
    fields = {f: validate.text(data.get(f), errors, f, 255 if f != "notes" else 100_000)
              for f in ("title", "notes", "url", "version", "author", "author_email",
                        "maintainer", "maintainer_email")}
    license_id = validate.text(data.get("license_id"), errors, "license_id", 100) or "notspecified"
    if license_id not in LICENSES:
        errors.add("license_id", f"Unknown licence: {license_id}")
    private = validate.boolean(data.get("private"), errors, "private")
    tags = validate.tags(data.get("tags"), errors)
    extras = validate.extras(data.get("extras"), errors)
    owner_key = data.get("owner_org")
    with ctx.platform.write.begin() as s:
        org = lookup.organization(s, owner_key) if isinstance(owner_key, str) and owner_key else None
        if org is None:
            errors.add("owner_org", "An organization must be provided" if not owner_key
                       else "Organization does not exist")
            errors.raise_if_any()
        authz.require_create_in_org(s, ctx.actor, org.id)
        if name and lookup.package(s, name) is not None:
            errors.add("name", "That URL is already in use.")
        errors.raise_if_any()
        now = utcnow()
        pkg = Package(name=name, license_id=license_id, owner_org=org.id, private=private, tags=tags,
                      extras=extras, creator_user_id=ctx.actor.id, metadata_created=now,
                      metadata_modified=now, **fields)
        s.add(pkg)
        s.flush()
        for position, rdata in enumerate(data.get("resources") or []):
            if isinstance(rdata, dict):
                s.add(Resource(package_id=pkg.id, position=position, name=str(rdata.get("name") or ""),
                               description=str(rdata.get("description") or ""),
                               format=str(rdata.get("format") or ""), url=str(rdata.get("url") or "")))
        s.flush()
        s.refresh(pkg)
        audit.record(s, ctx.actor_name, "package_create", "package", pkg.id, {"name": name})
        return package_dict(s, pkg, ctx.site_url)


@action
def package_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Return a dataset by ``id`` or name, with its resources."""
    with ctx.platform.read() as s:
        pkg = authz.require_read_package(s, ctx.actor, lookup.package(s, validate.required_id(data)))
        return package_dict(s, pkg, ctx.site_url)


@action
def package_list(ctx: Context, data: dict[str, Any]) -> list[str]:
    """Names of the active datasets visible to the caller; ``limit``/``offset`` page it."""
    limit = validate.integer(data.get("limit"), "limit", 1_000_000, 0)
    offset = validate.integer(data.get("offset"), "offset", 0)
    with ctx.platform.read() as s:
        return list(s.scalars(select(Package.name).where(visible_packages(ctx.actor))
                              .order_by(Package.name).limit(limit).offset(offset)))


@action
def current_package_list_with_resources(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Visible datasets with their resources, most recently modified first (``limit``, ``offset``)."""
    limit = validate.integer(data.get("limit"), "limit", 100, 0, 1000)
    offset = validate.integer(data.get("offset"), "offset", 0)
    with ctx.platform.read() as s:
        pkgs = s.scalars(select(Package).where(visible_packages(ctx.actor))
                         .order_by(Package.metadata_modified.desc()).limit(limit).offset(offset)).all()
        return [package_dict(s, p, ctx.site_url) for p in pkgs]
