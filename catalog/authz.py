"""Authorization, after CKAN's model: checked first in every action.

Anonymous callers read public active datasets; organization members read their
organization's private datasets; editors and admins create and edit them;
sysadmins do everything. Unknown or hidden objects answer Not Found, so a
private dataset's existence does not leak.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.context import Actor
from catalog.errors import NotAuthorized, NotFound
from catalog.models import Membership, Package

EDIT_CAPACITIES = frozenset({"admin", "editor"})
READ_CAPACITIES = frozenset({"admin", "editor", "member"})


def require_user(actor: Actor | None, what: str) -> Actor:
    if actor is None:
        raise NotAuthorized(f"Access denied: you must be logged in to {what}")
    return actor


def require_sysadmin(actor: Actor | None, what: str) -> Actor:
    if actor is None or not actor.sysadmin:
        raise NotAuthorized(f"Access denied: only a sysadmin may {what}")
    return actor


def capacity(session: Session, actor: Actor | None, organization_id: str | None) -> str | None:
    """The actor's role in an organization, or None."""
    if actor is None or actor.id is None or organization_id is None:
        return None
    return session.scalar(select(Membership.capacity).where(
        Membership.organization_id == organization_id, Membership.user_id == actor.id))


def can_read_package(session: Session, actor: Actor | None, pkg: Package) -> bool:
    if actor is not None and actor.sysadmin:
        return True
    cap = capacity(session, actor, pkg.owner_org)
    if pkg.state == "active" and not pkg.private:
        return True
    if pkg.state == "deleted":
        return cap in EDIT_CAPACITIES
    return cap in READ_CAPACITIES


def can_edit_package(session: Session, actor: Actor | None, pkg: Package) -> bool:
    if actor is None:
        return False
    return actor.sysadmin or capacity(session, actor, pkg.owner_org) in EDIT_CAPACITIES


def require_read_package(session: Session, actor: Actor | None, pkg: Package | None) -> Package:
    """The package if the actor may see it; Not Found otherwise (existence is not leaked)."""
    if pkg is None or not can_read_package(session, actor, pkg):
        raise NotFound("Dataset not found")
    return pkg


def require_edit_package(session: Session, actor: Actor | None, pkg: Package) -> Package:
    require_read_package(session, actor, pkg)
    if not can_edit_package(session, actor, pkg):
        raise NotAuthorized(f"Access denied: you may not edit dataset {pkg.name}")
    return pkg


def require_create_in_org(session: Session, actor: Actor | None, organization_id: str) -> None:
    require_user(actor, "create a dataset")
    if actor.sysadmin:  # type: ignore[union-attr]
        return
    if capacity(session, actor, organization_id) not in EDIT_CAPACITIES:
        raise NotAuthorized("Access denied: you must be an editor or admin of the organization "
                            "to create datasets in it")
