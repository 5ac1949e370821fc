"""The database side of controlled access: acceptances and active grants, as objects and as SQL.

:mod:`catalog.access.policy` asks these when a dataset's rows are read from outside its
organization. Every call reads the tables afresh (no cache), so an expired or revoked grant, or
a new agreement version, takes effect on the very next call in every process.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session, aliased

from catalog.db.models import Acceptance, AccessGrant, Agreement, Member, Package, utcnow


def acceptance(session: Session, user_id: str, pkg: Package) -> Acceptance | None:
    """The user's acceptance of the dataset's terms as they stand now: its agreement's current
    version, or (no agreement) its current licence. Accepting an older version, or another licence,
    does not count: the terms changed since."""
    q = select(Acceptance).where(Acceptance.user_id == user_id, Acceptance.package_id == pkg.id)
    if pkg.agreement_id is None:
        q = q.where(Acceptance.agreement_version_id.is_(None), Acceptance.license_id == pkg.license_id)
    else:
        current = select(Agreement.current_version_id).where(Agreement.id == pkg.agreement_id).scalar_subquery()
        q = q.where(Acceptance.agreement_version_id == current)
    return session.scalars(q.order_by(Acceptance.created.desc()).limit(1)).first()


def accepted_ids(user_id: str) -> Select:
    """The ids of the datasets whose current terms the user accepted (the SQL of :func:`acceptance`)."""
    pkg = aliased(Package)
    agreement = aliased(Agreement)
    return (select(Acceptance.package_id)
            .join(pkg, pkg.id == Acceptance.package_id)
            .outerjoin(agreement, agreement.id == pkg.agreement_id)
            .where(Acceptance.user_id == user_id,
                   or_(and_(pkg.agreement_id.is_(None), Acceptance.agreement_version_id.is_(None),
                            Acceptance.license_id == pkg.license_id),
                       and_(pkg.agreement_id.is_not(None),
                            Acceptance.agreement_version_id == agreement.current_version_id))))


def _grantee(user_id: str) -> ColumnElement[bool]:
    """Grants to the user, or to an organization the user belongs to (any capacity, present or future)."""
    orgs = select(Member.group_id).where(Member.table_name == "user", Member.table_id == user_id)
    return or_(and_(AccessGrant.grantee_type == "user", AccessGrant.grantee_id == user_id),
               and_(AccessGrant.grantee_type == "organization", AccessGrant.grantee_id.in_(orgs)))


def active(now: dt.datetime | None = None) -> ColumnElement[bool]:
    """Grants neither revoked nor expired at ``now`` (default: this instant, UTC)."""
    return and_(AccessGrant.revoked.is_(None), AccessGrant.expires > (now or utcnow()))


def granted_ids(user_id: str, *, whole: bool = False, now: dt.datetime | None = None) -> Select:
    """The ids of the datasets the user holds an active grant on (``whole``: one without a column
    scope, what whole-file downloads need)."""
    q = select(AccessGrant.package_id).where(active(now), _grantee(user_id))
    return q.where(AccessGrant.columns.is_(None)) if whole else q


@dataclass(frozen=True)
class Effective:
    """What a user's active grants on one dataset add up to: ``columns`` None for every column,
    else the union of the grants' column scopes. ``grant`` is the one that decides (a whole grant
    when there is one, else the latest to expire), named in audit events."""

    grant: AccessGrant
    columns: frozenset[str] | None


def effective(session: Session, user_id: str, package_id: str, now: dt.datetime | None = None) -> Effective | None:
    """The user's active grants on the dataset, combined; None without any."""
    found = list(session.scalars(select(AccessGrant).where(
        AccessGrant.package_id == package_id, active(now), _grantee(user_id)).order_by(AccessGrant.expires.desc())))
    if not found:
        return None
    whole = next((g for g in found if g.columns is None), None)
    if whole is not None:
        return Effective(whole, None)
    return Effective(found[0], frozenset(str(c) for g in found for c in g.columns or ()))
