"""Users and API tokens."""
from __future__ import annotations

from typing import Any

from catalog import audit, authz, dictize, lookup, tokens, validate
from catalog.actions import action
from catalog.context import Context
from catalog.errors import NotFound
from catalog.models import User


@action
def user_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Create a user (sysadmins only). Fields: ``name``, ``email``, ``fullname``, ``sysadmin``."""
    authz.require_sysadmin(ctx.actor, "create users")
    errors = validate.Errors()
    name = validate.name(data.get("name"), errors)
    email = validate.text(data.get("email"), errors, "email", 255) or None
    fullname = validate.text(data.get("fullname"), errors, "fullname", 255) or None
    sysadmin = validate.boolean(data.get("sysadmin"), errors, "sysadmin")
    with ctx.platform.write.begin() as s:
        if name and lookup.user(s, name) is not None:
            errors.add("name", "That login name is not available.")
        errors.raise_if_any()
        u = User(name=name, email=email, fullname=fullname, sysadmin=sysadmin)
        s.add(u)
        s.flush()
        audit.record(s, ctx.actor_name, "user_create", "user", u.id, {"name": name, "sysadmin": sysadmin})
        return dictize.user(u, include_email=True)


@action
def api_token_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Create an API token for ``user`` named ``name``; returns ``{"token": ...}`` once."""
    actor = authz.require_user(ctx.actor, "create API tokens")
    errors = validate.Errors()
    token_name = validate.text(data.get("name"), errors, "name", 200)
    if not token_name:
        errors.add("name", "Missing value")
    errors.raise_if_any()
    with ctx.platform.write.begin() as s:
        u = lookup.user(s, validate.required_id(data, "user"))
        if u is None or u.state != "active":
            raise NotFound("User not found")
        if not actor.sysadmin and actor.id != u.id:
            authz.require_sysadmin(actor, "create tokens for other users")
        row, clear = tokens.issue(s, u, token_name)
        audit.record(s, ctx.actor_name, "api_token_create", "user", u.id, {"token_id": row.id, "name": token_name})
        return {"token": clear}
