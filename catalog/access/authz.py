"""Authorization, after CKAN's model: checked first in every action.

Anonymous callers read public active datasets. Organization members read their
organization's private datasets; editors and admins also create and edit them;
admins manage members. Dataset collaborators get the capacity they were given
(``editor`` edits, ``member`` reads). Sysadmins do everything. A dataset the
caller may not read answers Not Found, so its existence does not leak.
"""
from __future__ import annotations

from sqlalchemy import false, select, true
from sqlalchemy.orm import Session

from catalog.access.context import Actor
from catalog.core.errors import NotAuthorized, NotFound
from catalog.db.models import Collaborator, Group, Member, Package

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


def is_sysadmin(actor: Actor | None) -> bool:
    return actor is not None and actor.sysadmin


def capacity(session: Session, actor: Actor | None, group_id: str | None) -> str | None:
    """The actor's role in a group or organization, or None."""
    if actor is None or actor.id is None or group_id is None:
        return None
    return session.scalar(select(Member.capacity).where(
        Member.group_id == group_id, Member.table_name == "user", Member.table_id == actor.id))


def collaborator_capacity(session: Session, actor: Actor | None, package_id: str) -> str | None:
    if actor is None or actor.id is None:
        return None
    return session.scalar(select(Collaborator.capacity).where(
        Collaborator.package_id == package_id, Collaborator.user_id == actor.id))


def can_edit_package(session: Session, actor: Actor | None, pkg: Package) -> bool:
    if actor is None:
        return False
    if actor.sysadmin or capacity(session, actor, pkg.owner_org) in EDIT_CAPACITIES:
        return True
    return collaborator_capacity(session, actor, pkg.id) in EDIT_CAPACITIES


def can_read_package(session: Session, actor: Actor | None, pkg: Package) -> bool:
    if is_sysadmin(actor):
        return True
    if pkg.state == "active" and not pkg.private:
        return True
    if pkg.state != "active":  # deleted or draft: only those who may edit it
        return can_edit_package(session, actor, pkg)
    return (capacity(session, actor, pkg.owner_org) in READ_CAPACITIES
            or collaborator_capacity(session, actor, pkg.id) is not None)


def require_read_package(session: Session, actor: Actor | None, pkg: Package | None) -> Package:
    """The package if the actor may see it; Not Found otherwise (existence is not leaked)."""
    if pkg is None or not can_read_package(session, actor, pkg):
        raise NotFound("Dataset not found")
    return pkg


def require_edit_package(session: Session, actor: Actor | None, pkg: Package | None) -> Package:
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


def require_move_package(session: Session, actor: Actor | None, pkg: Package, target: Group) -> None:
    """Moving a dataset to another organization takes it from one set of members to another: it
    needs edit rights (editor or admin) in both organizations. A dataset collaborator never moves
    it, whatever their capacity: otherwise an ``editor`` collaborator could carry a private dataset
    into an organization of their own and lock its owners out."""
    require_user(actor, "move a dataset")
    if actor.sysadmin:  # type: ignore[union-attr]
        return
    if (capacity(session, actor, pkg.owner_org) not in EDIT_CAPACITIES
            or capacity(session, actor, target.id) not in EDIT_CAPACITIES):
        raise NotAuthorized(f"Access denied: moving dataset {pkg.name} to organization {target.name} needs "
                            "edit rights in both its organization and the new one")


def require_create_group(actor: Actor | None, is_organization: bool, users_may_create: bool) -> Actor:
    """Creating organizations and groups is for sysadmins unless the site lets users
    (``MOSU_USERS_CREATE_ORGANIZATIONS``), as CKAN's ``ckan.auth.user_create_*`` defaults."""
    what = "create organizations" if is_organization else "create groups"
    actor = require_user(actor, what)
    if not actor.sysadmin and not users_may_create:
        raise NotAuthorized(f"Access denied: only a sysadmin may {what} on this site")
    return actor


def require_group_admin(session: Session, actor: Actor | None, group: Group, what: str) -> None:
    """Only the group's (or organization's) admins and sysadmins change it or its members."""
    require_user(actor, what)
    if not actor.sysadmin and capacity(session, actor, group.id) != "admin":  # type: ignore[union-attr]
        raise NotAuthorized(f"Access denied: only an admin of {group.name} may {what}")


def require_group_member(session: Session, actor: Actor | None, group: Group, what: str) -> None:
    """Any member of a group (and sysadmins) may add datasets to it, as in CKAN."""
    require_user(actor, what)
    if not actor.sysadmin and capacity(session, actor, group.id) is None:  # type: ignore[union-attr]
        raise NotAuthorized(f"Access denied: you are not a member of {group.name}")


def readable_packages(actor: Actor | None):
    """A WHERE clause on Package matching :func:`can_read_package`, in any state: public active
    ones, active ones of the actor's organizations or shared with them, and non-active (deleted,
    draft) ones the actor may edit."""
    if is_sysadmin(actor):
        return true()
    active = Package.state == "active"
    public = active & Package.private.is_(False)
    if actor is None or actor.id is None:
        return public
    edit_orgs = select(Member.group_id).where(Member.table_name == "user", Member.table_id == actor.id,
                                              Member.capacity.in_(EDIT_CAPACITIES))
    edit_shared = select(Collaborator.package_id).where(Collaborator.user_id == actor.id,
                                                        Collaborator.capacity.in_(EDIT_CAPACITIES))
    editing = Package.owner_org.in_(edit_orgs) | Package.id.in_(edit_shared)
    return public | (active & insider_packages(actor)) | (~active & editing)


def insider_packages(actor: Actor | None):
    """A WHERE clause on Package: the datasets the actor could read even while they are private
    (their organization's members, their collaborators; sysadmins all)."""
    if is_sysadmin(actor):
        return true()
    if actor is None or actor.id is None:
        return false()
    member_orgs = select(Member.group_id).where(Member.table_name == "user", Member.table_id == actor.id)
    shared = select(Collaborator.package_id).where(Collaborator.user_id == actor.id)
    return Package.owner_org.in_(member_orgs) | Package.id.in_(shared)


def visible_packages(actor: Actor | None, include_private: bool = True):
    """A WHERE clause selecting the active datasets ``actor`` may read.

    With ``include_private=False`` only public ones (``package_search``'s default).
    """
    active = Package.state == "active"
    if is_sysadmin(actor):
        return active if include_private else active & Package.private.is_(False)
    public = active & Package.private.is_(False)
    if actor is None or actor.id is None or not include_private:
        return public
    return public | (active & insider_packages(actor))
