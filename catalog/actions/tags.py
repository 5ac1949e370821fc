"""Tags and licences."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from catalog.access import policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.actions.packages import package_dict
from catalog.core import validate
from catalog.core.errors import NotFound
from catalog.core.licenses import LICENSES
from catalog.db import like
from catalog.db.models import Package, PackageTag


def _tag_dict(name: str) -> dict[str, Any]:
    return {"id": name, "name": name, "display_name": name, "vocabulary_id": None}


@action
def tag_list(ctx: Context, data: dict[str, Any]) -> list[Any]:
    """Tags of the public datasets (private ones never show here): names, or dicts with
    ``all_fields=true``; ``query`` keeps tags containing it."""
    errors = validate.Errors()
    all_fields = validate.boolean(data.get("all_fields"), errors, "all_fields")
    errors.raise_if_any()
    with ctx.platform.read() as s:
        query = (select(PackageTag.name).join(Package, Package.id == PackageTag.package_id)
                 .where(policy.datasets_where(None, Permission.VIEW_DATASET)).distinct().order_by(PackageTag.name))
        if data.get("query") or data.get("q"):
            query = query.where(like.contains(PackageTag.name, data.get("query") or data.get("q")))
        names = list(s.scalars(query))
    return [_tag_dict(n) for n in names] if all_fields else names


@action
def tag_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Return tag ``id`` (its name); ``include_datasets`` adds the datasets the caller may read."""
    errors = validate.Errors()
    include_datasets = validate.boolean(data.get("include_datasets"), errors, "include_datasets")
    errors.raise_if_any()
    name = validate.required_id(data)
    with ctx.platform.read() as s:
        query = select(Package).join(PackageTag, PackageTag.package_id == Package.id).where(
            PackageTag.name == name, Package.state == "active",
            policy.datasets_where(ctx.actor, Permission.VIEW_DATASET))
        if not s.scalar(select(func.count()).select_from(query.subquery())):
            raise NotFound("Tag not found")
        out = _tag_dict(name)
        if include_datasets:
            out["packages"] = [package_dict(s, p, ctx.site_url) for p in s.scalars(query.order_by(Package.name))]
        return out


@action
def license_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The licences a dataset may carry."""
    policy.public("the licence register")
    return [lic.as_dict() for lic in LICENSES.values()]
