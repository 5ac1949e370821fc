"""Users and API tokens."""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select

from catalog.access import passwords, policy, tokens, web_sessions
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.actions.packages import chosen_id, package_dict
from catalog.core import validate
from catalog.core.errors import Hidden, NotFound, ValidationError
from catalog.db import dictize, like, lookup
from catalog.db.models import ApiToken, Package, User, new_id, utcnow
from catalog.records import audit

TOKEN_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
TOKEN_MAX_SECONDS = 100 * 365 * 86400  # a longer expiry is no expiry (and past 9999 a datetime overflows)


def _password(value: Any, errors: validate.Errors) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) < passwords.MIN_LENGTH:
        errors.add("password", f"Your password must be {passwords.MIN_LENGTH} characters or longer")
        return None
    return passwords.hash_password(value)


def _get_user(s, key: str) -> User:
    user = lookup.user(s, key)
    if user is None or user.state == "deleted":
        raise NotFound("User not found")
    return user


def _may_see_private(s, ctx: Context, user: User) -> bool:
    return policy.allowed(s, ctx.actor, Permission.MANAGE_ACCOUNT, user)


@action
def user_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Create a user (sysadmins only). Fields: ``name``, ``email``, ``password`` (hashed with
    argon2, at least 8 characters), ``fullname``, ``about``, ``sysadmin``, ``auditor`` (the site-wide
    compliance role: reads the audit log, and by it no data). Sysadmins may set ``id``."""
    policy.require_sysadmin(ctx.actor, "create users")
    errors = validate.Errors()
    name = validate.name(data.get("name"), errors)
    fields = {f: validate.text(data.get(f), errors, f, 255 if f != "about" else 10_000)
              for f in ("fullname", "about")}
    fields["email"] = validate.email(data.get("email"), errors)
    fields["image_url"] = validate.url(data.get("image_url"), errors, "image_url", 255)
    sysadmin = validate.boolean(data.get("sysadmin"), errors, "sysadmin")
    auditor = validate.boolean(data.get("auditor"), errors, "auditor")
    password_hash = _password(data.get("password"), errors)
    with ctx.platform.write.begin() as s:
        if name and lookup.user(s, name) is not None:
            errors.add("name", "That login name is not available.")
        errors.raise_if_any()
        user = User(name=name, email=fields["email"] or None, fullname=fields["fullname"] or None,
                    about=fields["about"], image_url=fields["image_url"], sysadmin=sysadmin,
                    auditor=auditor, password_hash=password_hash)
        user.id = chosen_id(s, ctx, User, data.get("id"), errors) or new_id()
        errors.raise_if_any()
        s.add(user)
        s.flush()
        audit.record(s, ctx, "user_create", "user", user.id, {"name": name, "sysadmin": sysadmin,
                                                              "auditor": auditor})
        return dictize.user(user, include_email=True)


@action
def user_update(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Update user ``id`` (themselves or a sysadmin): ``email``, ``fullname``, ``about``,
    ``image_url``, ``password`` (changing one's own needs ``old_password``); ``sysadmin`` and
    ``auditor`` by sysadmins only (nobody makes themselves an auditor)."""
    actor = policy.require_user(ctx.actor, "update a user")
    errors = validate.Errors()
    with ctx.platform.write.begin() as s:
        user = _get_user(s, validate.required_id(data))
        policy.require(s, actor, Permission.MANAGE_ACCOUNT, user,
                       denied="Access denied: only a sysadmin may update other users")
        for field in ("email", "fullname", "about", "image_url"):
            if field in data:
                if field == "email":
                    value = validate.email(data.get(field), errors)
                else:
                    check = validate.url if field == "image_url" else validate.text
                    value = check(data.get(field), errors, field, 255 if field != "about" else 10_000)
                setattr(user, field, value or (None if field in ("email", "fullname") else ""))
        if data.get("password"):
            if not actor.sysadmin and not passwords.check_password(user.password_hash,
                                                                    str(data.get("old_password") or "")):
                errors.add("old_password", "Old password is incorrect")
            new_hash = _password(data["password"], errors)
            if new_hash:
                user.password_hash = new_hash
                web_sessions.end_all(s, user.id)  # a stolen session ends with the password it was opened with
        if "sysadmin" in data:
            wanted = validate.boolean(data.get("sysadmin"), errors, "sysadmin")
            if wanted != user.sysadmin:
                policy.require_sysadmin(actor, "change sysadmin rights")
                user.sysadmin = wanted
        if "auditor" in data:
            wanted = validate.boolean(data.get("auditor"), errors, "auditor")
            if wanted != bool(user.auditor):
                policy.require_sysadmin(actor, "change auditor rights")
                user.auditor = wanted
        errors.raise_if_any()
        audit.record(s, ctx, "user_update", "user", user.id,
                     {"fields": sorted(k for k in data if k not in ("password", "old_password"))})
        return dictize.user(user, include_email=True)


@action
def user_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Return user ``id`` (e-mail and ``auditor`` only to themselves and sysadmins); ``include_datasets`` adds
    the datasets they created that the caller may read."""
    errors = validate.Errors()
    include_datasets = validate.boolean(data.get("include_datasets"), errors, "include_datasets")
    errors.raise_if_any()
    with ctx.platform.read() as s:
        user = _get_user(s, validate.required_id(data))
        policy.public("user profile")
        out = dictize.user(user, include_email=_may_see_private(s, ctx, user))
        visible = (Package.state == "active") & policy.datasets_where(ctx.actor, Permission.VIEW_DATASET)
        out["number_created_packages"] = s.scalar(select(func.count()).select_from(Package).where(
            Package.creator_user_id == user.id, visible)) or 0
        if include_datasets:
            pkgs = s.scalars(select(Package).where(Package.creator_user_id == user.id, visible)
                             .order_by(Package.metadata_modified.desc()).limit(1000))
            out["datasets"] = [package_dict(s, p, ctx.site_url) for p in pkgs]
        return out


@action
def user_list(ctx: Context, data: dict[str, Any]) -> list[Any]:
    """Active users (``q`` filters by name or full name, and by e-mail for sysadmins; ``order_by`` name default;
    ``limit``, ``offset``); with ``all_fields=false``, names only."""
    errors = validate.Errors()
    all_fields = validate.boolean(data.get("all_fields"), errors, "all_fields", True)
    errors.raise_if_any()
    limit = validate.integer(data.get("limit"), "limit", 1000, 0, 10_000)
    offset = validate.integer(data.get("offset"), "offset", 0)
    with ctx.platform.read() as s:
        policy.public("user list")
        query = select(User).where(User.state == "active")
        if data.get("q"):
            q = data["q"]
            matched = [like.contains(User.name, q), like.contains(User.fullname, q)]
            if policy.is_sysadmin(ctx.actor):  # e-mail addresses are private: only sysadmins search them (as CKAN)
                matched.append(like.contains(User.email, q))
            query = query.where(or_(*matched))
        order = {"created": User.created, "fullname": User.fullname}.get(str(data.get("order_by")), User.name)
        users = s.scalars(query.order_by(order, User.name).limit(limit).offset(offset)).all()
        if not all_fields:
            return [u.name for u in users]
        return [dictize.user(u, include_email=policy.is_sysadmin(ctx.actor)) for u in users]


# -- API tokens ------------------------------------------------------------------------------

def _token_owner(s, ctx: Context, key: str | None) -> User:
    actor = policy.require_user(ctx.actor, "manage API tokens")
    user = _get_user(s, key) if key else (s.get(User, actor.id) if actor.id else None)
    if user is None:
        raise NotFound("User not found")
    return policy.require(s, actor, Permission.MANAGE_ACCOUNT, user,
                          denied="Access denied: only a sysadmin may manage other users' tokens")


def _token_dict(t: ApiToken) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "user_id": t.user_id, "created_at": t.created.isoformat(),
            "last_access": t.last_used.isoformat() if t.last_used else None,
            "expires_at": t.expires.isoformat() if t.expires else None}


@action
def api_token_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Create an API token ``name`` for ``user``; ``expires_in`` with ``unit`` (second, minute,
    hour, day, week; default day) sets an expiry. Returns ``{"token": ...}``: shown only once."""
    errors = validate.Errors()
    token_name = validate.text(data.get("name"), errors, "name", 200)
    if not token_name:
        errors.add("name", "Missing value")
    expires = None
    if data.get("expires_in") not in (None, ""):
        amount = validate.integer(data.get("expires_in"), "expires_in", 0, 1)
        unit = data.get("unit")
        if isinstance(unit, str) and unit.rstrip("s") in TOKEN_UNITS:
            seconds = TOKEN_UNITS[unit.rstrip("s")]
        elif isinstance(unit, (int, str)) and not isinstance(unit, bool) and str(unit).strip().isdigit():
            seconds = validate.integer(unit, "unit", 86400, 1)  # CKAN also takes the unit in seconds
        elif unit in (None, ""):
            seconds = TOKEN_UNITS["day"]
        else:
            errors.add("unit", f"Must be one of {', '.join(TOKEN_UNITS)}, or a number of seconds")
            seconds = TOKEN_UNITS["day"]
        if amount * seconds > TOKEN_MAX_SECONDS:
            errors.add("expires_in", f"A token must expire within {TOKEN_MAX_SECONDS // (365 * 86400)} years")
        else:
            expires = utcnow() + dt.timedelta(seconds=amount * seconds)
    errors.raise_if_any()
    with ctx.platform.write.begin() as s:
        user = _token_owner(s, ctx, str(data.get("user") or data.get("user_id") or "") or None)
        row, clear = tokens.issue(s, user, token_name)
        row.expires = expires
        audit.record(s, ctx, "api_token_create", "user", user.id,
                     {"token_id": row.id, "name": token_name, "expires": expires.isoformat() if expires else None})
        return {"token": clear}


@action
def api_token_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The active API tokens of ``user_id`` (or ``user``; default the caller), without secrets."""
    with ctx.platform.read() as s:
        user = _token_owner(s, ctx, str(data.get("user_id") or data.get("user") or "") or None)
        rows = s.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))
                         .order_by(ApiToken.created))
        return [_token_dict(t) for t in rows]


@action
def api_token_revoke(ctx: Context, data: dict[str, Any]) -> None:
    """Revoke a token by its ``jti`` (id) or by the ``token`` itself; refused from the next request."""
    actor = policy.require_user(ctx.actor, "revoke API tokens")
    with ctx.platform.write.begin() as s:
        if data.get("token"):
            row = s.scalar(select(ApiToken).where(ApiToken.token_hash == tokens.digest(str(data["token"]))))
        elif data.get("jti") or data.get("id"):
            row = s.get(ApiToken, str(data.get("jti") or data.get("id")))
        else:
            raise ValidationError({"jti": ["Give the token's jti (id) or the token"]})
        owner = s.get(User, row.user_id) if row is not None else None
        if owner is None or not policy.allowed(s, actor, Permission.MANAGE_ACCOUNT, owner):
            raise (NotFound if owner is None else Hidden)("API token not found")  # Hidden: a refusal
        row.revoked = True
        audit.record(s, ctx, "api_token_revoke", "user", row.user_id, {"token_id": row.id})
    return None
