"""Access grants: the one object that lets someone outside an organization read a restricted dataset.

A grant names the grantee (a user, or an organization: every member, present and future), the
dataset, its expiry (every grant ends), an optional column scope (an allow-list), the agreement
version accepted, the request it came from and who approved it. It is made here directly
(``access_grant_create``) or by approving a request (:mod:`catalog.actions.access_requests`), and
ended by ``access_grant_revoke`` or by its expiry; :mod:`catalog.access.grants` reads the table on
every check, so an ended grant stops working on the very next call in every process.

Deciding is ``manage-access`` on the dataset (its organization's admins and editors, sysadmins);
the people concerned get an inbox entry (:func:`catalog.records.notify.notify`) in the same
transaction as the decision and its audit event.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from catalog.access import policy
from catalog.access.context import Actor, Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.actions.agreements import current, terms_dict
from catalog.core import agreements as rules
from catalog.core import levels, validate
from catalog.core.errors import Hidden, NotAuthorized, NotFound, ValidationError
from catalog.db import lookup
from catalog.db.dictize import iso
from catalog.db.models import (
    AccessGrant,
    AccessRequest,
    Group,
    Member,
    Package,
    Resource,
    ResourceVersion,
    User,
    utcnow,
)
from catalog.records import audit
from catalog.records.notify import notify

LIST_MAX = 1000
GRANT_STATES = ("active", "expired", "revoked")
NOTE_MAX = 10_000
COLUMNS_MAX = 1000
EXPIRES_MAX_CHARS = 40


# -- shared by grants and requests ---------------------------------------------------------------

def approvers(s: Session, org_id: str | None) -> list[str]:
    """The users who decide on a dataset's access: its organization's admins and editors."""
    return members(s, org_id, ("admin", "editor"))


def members(s: Session, org_id: str | None, capacities: Iterable[str] = ("admin", "editor", "member")) -> list[str]:
    if org_id is None:
        return []
    return list(s.scalars(select(Member.table_id).join(User, User.id == Member.table_id).where(
        Member.group_id == org_id, Member.table_name == "user", Member.capacity.in_(list(capacities)),
        User.state == "active").order_by(Member.table_id)))


def refusal(pkg: Package) -> str | None:
    """Why nobody outside the organization can be given access to ``pkg`` by a request or a grant
    (None: they can): only an active, non-private, restricted dataset takes grants."""
    if pkg.state != "active":
        return f"Dataset {pkg.name} is {pkg.state}: access can be given only to an active dataset"
    if pkg.private:
        return (f"Dataset {pkg.name} is private: only its organization's members read it; "
                "make it public at the restricted level to give access to others")
    level = pkg.access_level or levels.Level.OPEN.value
    if level == levels.Level.OPEN.value:
        return f"Dataset {pkg.name} is open: anyone may read it, no request or grant is needed"
    if level == levels.Level.REGISTERED.value:
        return (f"Dataset {pkg.name} is for registered users: sign in and accept its terms with "
                "agreement_accept, no request or grant is needed")
    return None


def require_grantable(pkg: Package, field: str = "package_id") -> None:
    problem = refusal(pkg)
    if problem:
        raise ValidationError({field: [problem]})


def existing_columns(s: Session, pkg: Package) -> set[str]:
    """The column names of the current versions of the dataset's active resources."""
    rows = s.execute(select(ResourceVersion.schema).join(Resource, Resource.current_version_id == ResourceVersion.id)
                     .where(Resource.package_id == pkg.id, Resource.state == "active"))
    return {str(c.get("id")) for (schema,) in rows for c in schema or [] if isinstance(c, dict)}


def columns(s: Session, pkg: Package, value: Any, errors: validate.Errors, field: str = "columns",
            within: list[str] | None = None) -> list[str] | None:
    """A column scope: None (every column) or a non-empty list of distinct column names that exist
    in the current schema of one of the dataset's resources (and, with ``within``, are among them)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = [c.strip() for c in value.split(",")]
    if not isinstance(value, list) or not value or not all(isinstance(c, str) and c for c in value):
        errors.add(field, "Must be a non-empty list of column names (or left out for every column)")
        return None
    if len(value) > COLUMNS_MAX:
        errors.add(field, f"At most {COLUMNS_MAX} columns")
        return None
    known = existing_columns(s, pkg)
    unknown = [c for c in value if c not in known]
    if unknown:
        errors.add(field, f"No column {', '.join(repr(c[:100]) for c in unknown[:20])} in dataset {pkg.name}")
    if within is not None:
        wider = [c for c in value if c not in within and c in known]
        if wider:
            errors.add(field, f"Only the requested columns may be granted; not requested: "
                              f"{', '.join(repr(c) for c in wider[:20])}")
    return list(dict.fromkeys(value))


def expiry(data: dict[str, Any], default_days: int, errors: validate.Errors,
           now: dt.datetime | None = None) -> dt.datetime:
    """When a grant ends: ``expires`` (an ISO date or time; a date means its start, UTC; an offset is
    converted to UTC) or ``days`` from now, default ``default_days``. Every grant ends: in the
    future, and within :data:`~catalog.core.levels.MAX_GRANT_DAYS` days."""
    now = now or utcnow()
    latest = now + dt.timedelta(days=levels.MAX_GRANT_DAYS)
    value = data.get("expires")
    if value in (None, ""):
        try:
            days = validate.integer(data.get("days"), "days", default_days, 1, levels.MAX_GRANT_DAYS)
        except ValidationError as exc:
            errors.add("days", exc.field_errors["days"][0])
            days = default_days
        return now + dt.timedelta(days=days)
    if data.get("days") not in (None, ""):
        errors.add("days", "Give expires or days, not both")
    try:
        if not isinstance(value, str) or len(value) > EXPIRES_MAX_CHARS:
            raise ValueError
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        errors.add("expires", "Must be a date or time as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC unless an offset "
                              "is given)")
        return now
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if parsed <= now:
        errors.add("expires", "Must be in the future")
    elif parsed > latest:
        errors.add("expires", f"Must be within {levels.MAX_GRANT_DAYS} days: every grant ends")
    return parsed


def note(value: Any, errors: validate.Errors, field: str = "note") -> str:
    return validate.text(value, errors, field, NOTE_MAX)


def state_of(grant: AccessGrant, now: dt.datetime | None = None) -> str:
    """``revoked``, ``expired`` or ``active``, computed at ``now`` (never stored: time passes)."""
    if grant.revoked is not None:
        return "revoked"
    return "expired" if grant.expires <= (now or utcnow()) else "active"


def grant_dict(s: Session, grant: AccessGrant) -> dict[str, Any]:
    pkg = s.get(Package, grant.package_id)
    grantee = s.get(User if grant.grantee_type == "user" else Group, grant.grantee_id)
    return {"id": grant.id, "package_id": grant.package_id, "package_name": pkg.name if pkg else None,
            "grantee_type": grant.grantee_type, "grantee_id": grant.grantee_id,
            "grantee_name": grantee.name if grantee else None, "expires": iso(grant.expires),
            "columns": grant.columns, "agreement_version_id": grant.agreement_version_id,
            "request_id": grant.request_id, "approved_by": grant.approved_by, "note": grant.note,
            "created": iso(grant.created), "revoked": iso(grant.revoked), "revoked_by": grant.revoked_by,
            "revoke_reason": grant.revoke_reason, "state": state_of(grant)}


def grantee_users(s: Session, grant: AccessGrant) -> list[str]:
    """Who hears about a grant on the grantee's side: the user, or the granted organization's admins."""
    if grant.grantee_type == "user":
        return [grant.grantee_id]
    return members(s, grant.grantee_id, ("admin",))


def make_grant(s: Session, actor: Actor, pkg: Package, grantee_type: str, grantee_id: str, expires: dt.datetime,
               scope: list[str] | None, agreement_version_id: str | None, request_id: str | None,
               text: str) -> AccessGrant:
    grant = AccessGrant(package_id=pkg.id, grantee_type=grantee_type, grantee_id=grantee_id, expires=expires,
                        columns=scope, agreement_version_id=agreement_version_id, request_id=request_id,
                        approved_by=actor.id, note=text, created=utcnow(), revoke_reason="", expiry_notified=False)
    s.add(grant)
    s.flush()
    return grant


def _mine(actor: Actor) -> ColumnElement[bool]:
    """Grants to the actor or to an organization the actor belongs to (any capacity)."""
    orgs = select(Member.group_id).where(Member.table_name == "user", Member.table_id == actor.id)
    return or_(and_(AccessGrant.grantee_type == "user", AccessGrant.grantee_id == actor.id),
               and_(AccessGrant.grantee_type == "organization", AccessGrant.grantee_id.in_(orgs)))


def _is_grantee(s: Session, actor: Actor | None, grant: AccessGrant) -> bool:
    if actor is None or actor.id is None:
        return False
    return s.scalar(select(AccessGrant.id).where(AccessGrant.id == grant.id, _mine(actor))) is not None


def _own_account(s: Session, actor: Actor | None) -> User | None:
    """The actor's account, if the actor may act as it (a check of ``manage-account`` on it)."""
    user = s.get(User, actor.id) if actor is not None and actor.id is not None else None
    return user if user is not None and policy.allowed(s, actor, Permission.MANAGE_ACCOUNT, user) else None


def _grantee(s: Session, data: dict[str, Any]) -> tuple[str, str, str]:
    """(type, id, name) of the grantee named by ``user_id`` or ``organization_id`` (ids or names)."""
    user_key, org_key = data.get("user_id"), data.get("organization_id")
    if (user_key in (None, "")) == (org_key in (None, "")):
        raise ValidationError({"user_id": ["Give the grantee: user_id or organization_id (one of them)"]})
    if user_key not in (None, ""):
        user = lookup.user(s, str(user_key))
        if user is None or user.state != "active":
            raise ValidationError({"user_id": ["No such user"]})
        return "user", user.id, user.name
    org = lookup.organization(s, str(org_key))
    if org is None:
        raise ValidationError({"organization_id": ["No such organization"]})
    return "organization", org.id, org.name


# -- actions ------------------------------------------------------------------------------------

def _manage(s: Session, ctx: Context, pkg: Package | None) -> Package:
    policy.require_user(ctx.actor, "manage access to datasets")
    return policy.require(s, ctx.actor, Permission.MANAGE_ACCESS, pkg,
                          denied="Access denied: only an admin or editor of the dataset's organization "
                                 "may decide who reads it")


@action
def access_grant_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Grant access to restricted dataset ``package_id`` directly, without a request: to a user
    (``user_id``) or an organization (``organization_id``: every member, present and future; ids or
    names), until ``expires`` (ISO date or time, UTC) or for ``days`` (default the dataset's
    ``grant_days``; at most 3650), optionally only ``columns``, with a ``note``. Needs
    ``manage-access`` on the dataset. The grant names the agreement version current now."""
    errors = validate.Errors()
    with ctx.platform.write.begin() as s:
        pkg = _manage(s, ctx, lookup.package(s, validate.required_id(data, "package_id")))
        require_grantable(pkg)
        grantee_type, grantee_id, grantee_name = _grantee(s, data)
        expires = expiry(data, pkg.grant_days or levels.DEFAULT_GRANT_DAYS, errors)
        scope = columns(s, pkg, data.get("columns"), errors)
        text = note(data.get("note"), errors)
        errors.raise_if_any()
        version = current(s, pkg.agreement_id)
        grant = make_grant(s, ctx.actor, pkg, grantee_type, grantee_id, expires, scope,
                           version.id if version else None, None, text)
        audit.record(s, ctx, "access_grant_create", "access_grant", grant.id,
                     {"grantee_type": grantee_type, "grantee_id": grantee_id, "expires": iso(expires),
                      "columns": scope}, package_id=pkg.id, org_id=pkg.owner_org, grant_id=grant.id,
                     agreement_version_id=grant.agreement_version_id)
        notify(s, [*grantee_users(s, grant), *approvers(s, pkg.owner_org)], "access_grant.created",
               f"Access to dataset {pkg.name} granted to {grantee_name} until {expires:%Y-%m-%d}",
               {"grant_id": grant.id, "package_id": pkg.id})
        return grant_dict(s, grant)


def _states(query, state: Any):
    if state in (None, ""):
        return query
    if state not in GRANT_STATES:
        raise ValidationError({"state": [f"Must be one of {', '.join(GRANT_STATES)}"]})
    now = utcnow()
    if state == "revoked":
        return query.where(AccessGrant.revoked.is_not(None))
    query = query.where(AccessGrant.revoked.is_(None))
    return query.where(AccessGrant.expires > now if state == "active" else AccessGrant.expires <= now)


@action
def access_grant_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Grants, newest first, each with its ``state`` (``active``, ``expired``, ``revoked``, computed
    now): by default those held by the caller, personally or through an organization they belong
    to; with ``package_id``, those on that dataset (its managers only); with ``managed=true``, those
    on every dataset the caller manages. ``state`` filters; ``limit`` (default 100, max 1000), ``offset``."""
    errors = validate.Errors()
    managed = validate.boolean(data.get("managed"), errors, "managed")
    errors.raise_if_any()
    limit = validate.integer(data.get("limit"), "limit", 100, 0, LIST_MAX)
    offset = validate.integer(data.get("offset"), "offset", 0)
    policy.require_user(ctx.actor, "list access grants")
    with ctx.platform.read() as s:
        query = select(AccessGrant)
        if data.get("package_id") not in (None, ""):
            pkg = _manage(s, ctx, lookup.package(s, str(data["package_id"])))
            query = query.where(AccessGrant.package_id == pkg.id)
        elif managed:
            query = query.where(AccessGrant.package_id.in_(select(Package.id).where(
                policy.datasets_where(ctx.actor, Permission.MANAGE_ACCESS, public_grant=False))))
        elif _own_account(s, ctx.actor) is not None:
            query = query.where(_mine(ctx.actor))
        else:
            return []
        query = _states(query, data.get("state"))
        found = s.scalars(query.order_by(AccessGrant.created.desc(), AccessGrant.id).limit(limit).offset(offset))
        return [grant_dict(s, g) for g in found]


@action
def access_grant_revoke(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """End grant ``id`` now, giving a ``reason`` (required; the grantee is told). Needs
    ``manage-access`` on its dataset; the grant stops working on the very next call."""
    errors = validate.Errors()
    with ctx.platform.write.begin() as s:
        grant = s.get(AccessGrant, validate.required_id(data), with_for_update=True)
        pkg = s.get(Package, grant.package_id) if grant is not None else None
        if grant is None or pkg is None or not (
                policy.allowed(s, ctx.actor, Permission.MANAGE_ACCESS, pkg) or _is_grantee(s, ctx.actor, grant)):
            raise (NotFound if pkg is None else Hidden)("Access grant not found")  # Hidden: a refusal
        _manage(s, ctx, pkg)
        reason = rules.required_text(data.get("reason"), errors, "reason", rules.REASON_MAX)
        if grant.revoked is not None:
            errors.add("id", f"The grant was already revoked on {grant.revoked:%Y-%m-%d %H:%M} UTC")
        errors.raise_if_any()
        grant.revoked, grant.revoked_by, grant.revoke_reason = utcnow(), ctx.actor.id, reason
        audit.record(s, ctx, "access_grant_revoke", "access_grant", grant.id,
                     {"grantee_type": grant.grantee_type, "grantee_id": grant.grantee_id, "reason": reason},
                     package_id=pkg.id, org_id=pkg.owner_org, grant_id=grant.id,
                     agreement_version_id=grant.agreement_version_id)
        notify(s, [*grantee_users(s, grant), *approvers(s, pkg.owner_org)], "access_grant.revoked",
               f"Access to dataset {pkg.name} revoked", {"grant_id": grant.id, "package_id": pkg.id})
        s.flush()
        return grant_dict(s, grant)


# -- what a signed-in user holds, for package_show ----------------------------------------------

def access_summary(s: Session, actor: Actor, pkg: Package) -> dict[str, Any]:
    """What ``actor`` holds on ``pkg``'s rows, and otherwise what it takes (``message``): so pages
    and clients can say "accept the terms", "ask for access" or "under embargo until"."""
    out: dict[str, Any] = {"can_read": False, "can_download": False, "via": None, "columns": None,
                           "grant_id": None, "grant_expires": None, "agreement_version_id": None,
                           "message": None, "pending_request_id": None, "terms": terms_dict(s, pkg)}
    try:
        reading = policy.require_data(s, actor, pkg, Permission.READ_DATA)
    except (NotAuthorized, NotFound) as exc:
        out["message"] = exc.message
    else:
        grant = s.get(AccessGrant, reading.grant_id) if reading.grant_id else None
        out.update(can_read=True, via=reading.via,
                   columns=sorted(reading.columns) if reading.columns is not None else None,
                   grant_id=reading.grant_id, grant_expires=iso(grant.expires) if grant else None,
                   agreement_version_id=reading.agreement_version_id)
        try:
            policy.require_data(s, actor, pkg, Permission.DOWNLOAD_ORIGINAL)
            out["can_download"] = True
        except (NotAuthorized, NotFound):
            pass
    if actor.id is not None:
        out["pending_request_id"] = s.scalar(select(AccessRequest.id).where(
            AccessRequest.package_id == pkg.id, AccessRequest.user_id == actor.id, AccessRequest.state == "pending"))
    return out
