"""Find catalog rows by id or name (CKAN accepts either wherever it takes an id)."""
from __future__ import annotations

from typing import TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from catalog.db.models import Group, Package, Resource, ResourceVersion, User

T = TypeVar("T", Group, Package, User)


def by_id_or_name(session: Session, model: type[T], key: str) -> T | None:
    return session.scalar(select(model).where(or_(model.id == key, model.name == key)))


def package(session: Session, key: str) -> Package | None:
    return by_id_or_name(session, Package, key)


def group(session: Session, key: str, is_organization: bool | None = None,
          include_deleted: bool = False) -> Group | None:
    """An active group or organization (``is_organization`` None accepts either)."""
    found = by_id_or_name(session, Group, key)
    if found is None or (found.state != "active" and not include_deleted):
        return None
    if is_organization is not None and found.is_organization != is_organization:
        return None
    return found


def organization(session: Session, key: str) -> Group | None:
    return group(session, key, is_organization=True)


def user(session: Session, key: str) -> User | None:
    return by_id_or_name(session, User, key)


def resource(session: Session, key: str) -> Resource | None:
    res = session.get(Resource, key)
    return res if res is not None and res.state == "active" else None


MAX_VERSION_NUMBER = 2**31 - 1  # the number column is a 32-bit INTEGER


def version(session: Session, resource_id: str, key: object) -> ResourceVersion | None:
    """A resource's version by its number (``3``) or its id, as ``version`` parameters accept.

    A number no version can have (``99999999999999999999999`` overflowed SQLite's INTEGER: a 500)
    finds nothing, like any other number without a version.
    """
    key = str(key).strip()
    query = select(ResourceVersion).where(ResourceVersion.resource_id == resource_id)
    if key.isascii() and key.isdigit():
        if len(key) > 10 or int(key) > MAX_VERSION_NUMBER:
            return None
        return session.scalar(query.where(ResourceVersion.number == int(key)))
    return session.scalar(query.where(ResourceVersion.id == key))
