"""Signing in and out, and the profile page with the user's API tokens.

The password check, the session and the CSRF rules live in :mod:`catalog.api.web_auth`; the token
list, creation and revocation are the API's actions, called as the signed-in user.
"""
from __future__ import annotations

from flask import Blueprint, Response, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from catalog.access.context import Context
from catalog.actions import call
from catalog.api import web_auth
from catalog.api.errors import record_refusal
from catalog.api.session import request_context
from catalog.core.errors import NotAuthorized, TooManyRequests, ValidationError, http_status
from webui.i18n import safe_next

bp = Blueprint("account", __name__)

EXPIRY_UNITS = ("day", "week", "hour")


@bp.route("/user/login", methods=["GET", "POST"])
def sign_in():
    """The sign-in form (CKAN's address). A wrong pair gets the form again with one message for both
    a wrong name and a wrong password; too many get 429 and the time to wait."""
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if web_auth.current() is not None:
            return redirect(target, code=303)
        return render_template("sign_in.html", next=target, username="")
    name, password = request.form.get("username", ""), request.form.get("password", "")
    request_context()  # the envelope (address, agent, request id) of the events below
    try:
        value, _actor = web_auth.sign_in(name[:200], password[:1000])
    except (NotAuthorized, TooManyRequests) as exc:
        # A wrong pair shows the form again with 200, as sign-in forms do (an error status would be a
        # console error in every browser for an everyday typo); too many attempts are a 429.
        status = http_status(exc)[0] if isinstance(exc, TooManyRequests) else 200
        record_refusal(exc, status)
        message = (_("Wrong username or password.") if not isinstance(exc, TooManyRequests) else
                   _("Too many failed sign-ins: try again in %(minutes)s minutes.",
                     minutes=max(1, round((exc.retry_after or 60) / 60))))
        response = make_response(render_template("sign_in.html", next=target, username=name[:200],
                                                 error=message), status)
        if isinstance(exc, TooManyRequests) and exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    response = make_response(redirect(target, code=303))
    web_auth.set_session_cookie(response, value)
    return response


@bp.route("/user/logout", methods=["POST"])
def sign_out():
    web_auth.sign_out()
    response = make_response(redirect(url_for("webui.home"), code=303))
    web_auth.clear_session_cookie(response)
    return response


def signed_in_or_redirect() -> tuple[Context | None, Response | None]:
    """(the caller, None), or (None, a redirect to the sign-in form that comes back here) for an
    anonymous caller: the pages that are personal, or for a role, start with it. A signed-in caller
    without the right is refused by the action, not here."""
    ctx = request_context()
    if ctx.actor is None:
        return None, redirect(url_for("account.sign_in", next=request.full_path.rstrip("?")), code=303)
    return ctx, None


_signed_in = signed_in_or_redirect


@bp.route("/user/me", methods=["GET"])
def profile():
    """The signed-in user's page: who they are and their API tokens."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    user = call(ctx, "user_show", {"id": ctx.actor.id})
    tokens = call(ctx, "api_token_list", {"user_id": ctx.actor.id})
    return render_template("profile.html", user=user, tokens=tokens, units=EXPIRY_UNITS)


@bp.route("/user/me/tokens", methods=["POST"])
def create_token():
    """Create a token; its secret is shown on the page this once, with a copy button."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    args = {"user": ctx.actor.id, "name": request.form.get("name", "")}
    if request.form.get("expires_in"):
        args.update(expires_in=request.form["expires_in"], unit=request.form.get("unit", "day"))
    user = call(ctx, "user_show", {"id": ctx.actor.id})
    try:
        created = call(ctx, "api_token_create", args)
    except ValidationError as exc:
        tokens = call(ctx, "api_token_list", {"user_id": ctx.actor.id})
        return render_template("profile.html", user=user, tokens=tokens, units=EXPIRY_UNITS,
                               token_errors=exc.field_errors, form=request.form), 409
    tokens = call(ctx, "api_token_list", {"user_id": ctx.actor.id})
    return render_template("profile.html", user=user, tokens=tokens, units=EXPIRY_UNITS, new_token=created["token"])


@bp.route("/user/me/tokens/<token_id>/revoke", methods=["POST"])
def revoke_token(token_id: str):
    ctx, away = _signed_in()
    if away is not None:
        return away
    call(ctx, "api_token_revoke", {"jti": token_id})
    return redirect(url_for("account.profile"), code=303)
