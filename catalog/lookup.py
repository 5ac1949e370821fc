"""Find catalog rows by id or name (CKAN accepts either wherever it takes an id)."""
from __future__ import annotations

from typing import TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from catalog.models import Organization, Package, Resource, User

T = TypeVar("T", Organization, Package, User)


def by_id_or_name(session: Session, model: type[T], key: str) -> T | None:
    return session.scalar(select(model).where(or_(model.id == key, model.name == key)))


def package(session: Session, key: str) -> Package | None:
    return by_id_or_name(session, Package, key)


def organization(session: Session, key: str) -> Organization | None:
    org = by_id_or_name(session, Organization, key)
    return org if org is not None and org.state == "active" else None


def user(session: Session, key: str) -> User | None:
    return by_id_or_name(session, User, key)


def resource(session: Session, key: str) -> Resource | None:
    res = session.get(Resource, key)
    return res if res is not None and res.state == "active" else None
