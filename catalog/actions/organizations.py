"""Organizations: the publishers that own datasets."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from catalog import audit, authz, dictize, lookup, validate
from catalog.actions import action
from catalog.context import Context
from catalog.errors import NotFound
from catalog.models import Membership, Organization, Package


@action
def organization_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Create an organization; the creator becomes its admin. Fields: ``name``, ``title``, ``description``."""
    actor = authz.require_user(ctx.actor, "create an organization")
    errors = validate.Errors()
    name = validate.name(data.get("name"), errors)
    title = validate.text(data.get("title"), errors, "title", 255)
    description = validate.text(data.get("description"), errors, "description")
    image_url = validate.text(data.get("image_url"), errors, "image_url", 2000)
    with ctx.platform.write.begin() as s:
        if name and lookup.by_id_or_name(s, Organization, name) is not None:
            errors.add("name", "Group name already exists in database")
        errors.raise_if_any()
        org = Organization(name=name, title=title, description=description, image_url=image_url)
        s.add(org)
        s.flush()
        if actor.id is not None:
            s.add(Membership(organization_id=org.id, user_id=actor.id, capacity="admin"))
        audit.record(s, actor.name, "organization_create", "organization", org.id, {"name": name})
        return dictize.organization(org, package_count=0)


def _public_count(s, org_id: str) -> int:
    return s.scalar(select(func.count()).select_from(Package).where(
        Package.owner_org == org_id, Package.state == "active", Package.private.is_(False))) or 0


@action
def organization_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Return an organization by ``id`` or name."""
    with ctx.platform.read() as s:
        org = lookup.organization(s, validate.required_id(data))
        if org is None:
            raise NotFound("Organization not found")
        return dictize.organization(org, package_count=_public_count(s, org.id))


@action
def organization_list(ctx: Context, data: dict[str, Any]) -> list[Any]:
    """List organization names, or dicts with ``all_fields=true``; ``limit``/``offset`` page it."""
    errors = validate.Errors()
    all_fields = validate.boolean(data.get("all_fields"), errors, "all_fields")
    errors.raise_if_any()
    limit = validate.integer(data.get("limit"), "limit", 1000, 0, 1000)
    offset = validate.integer(data.get("offset"), "offset", 0)
    with ctx.platform.read() as s:
        orgs = s.scalars(select(Organization).where(Organization.state == "active")
                         .order_by(Organization.name).limit(limit).offset(offset)).all()
        if not all_fields:
            return [o.name for o in orgs]
        return [dictize.organization(o, package_count=_public_count(s, o.id)) for o in orgs]
