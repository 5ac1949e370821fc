"""Who works on what: an organization's members (admin, editor, member) and a dataset's
collaborators (editor, member), listed and managed from the browser.

Each page is the answer of the same actions the API has, called as the signed-in user:
``organization_show`` lists the members only to the organization's own members (and sysadmins),
``organization_member_create`` / ``organization_member_delete`` let only its admins change them,
and the ``package_collaborator_*`` actions let only those who manage the dataset's members see or
change its collaborators. The pages add no permission check of their own: a refusal is the
action's, shown on the error page; a wrong user name or role comes back next to its field.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from catalog.access.context import Context
from catalog.actions import call
from catalog.core.errors import NotAuthorized, NotFound, ValidationError
from webui.account import signed_in_or_redirect as _signed_in

bp = Blueprint("members", __name__)

COLLABORATOR_CAPACITIES = ("editor", "member")




@bp.app_template_global()
def role_label(role: str | None) -> str:
    """A member's role or a collaborator's capacity in the page's language."""
    labels = {"admin": _("Admin"), "editor": _("Editor"), "member": _("Member")}
    return labels.get(role or "", role or "")


def _field_errors(exc: ValidationError, fields: dict[str, str]) -> dict[str, str]:
    """The action's field errors keyed by the form's field (``fields`` maps the action's names to
    the form's); any other field's go under ``_form``."""
    out: dict[str, str] = {}
    for field, messages in (exc.field_errors or {}).items():
        text = " ".join(str(m) for m in (messages if isinstance(messages, list) else [messages]))
        key = fields.get(field, "_form")
        out[key] = (out.get(key, "") + " " + text).strip()
    return out


# -- an organization's members -----------------------------------------------------------------

@bp.route("/organization/<name>/members", methods=["GET"])
def organization_members(name: str):
    """The organization's members and their roles; its admins add, change and remove them."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    return _members_page(ctx, name)


def _members_page(ctx: Context, name: str, errors: dict[str, str] | None = None,
                  values: dict[str, str] | None = None, status: int = 200):
    org = call(ctx, "organization_show", {"id": name, "include_users": True})
    if "users" not in org:  # the action shows the member list to the organization's members only
        raise NotAuthorized(_("Only the members of %(name)s may see its members.", name=org["name"]))
    admin = any(o["id"] == org["id"] for o in call(ctx, "organization_list_for_user", {"permission": "admin"}))
    roles = [r["value"] for r in call(ctx, "member_roles_list", {"group_type": "organization"})]
    return render_template("members/organization.html", org=org, users=org["users"], admin=admin, roles=roles,
                           errors=errors or {}, values=values or {"role": "editor"}), status


@bp.route("/organization/<name>/members", methods=["POST"])
def organization_member_save(name: str):
    """Add a user by name with a role, or change a member's role (the same action)."""
    return _save(ORGANIZATION, name)


@bp.route("/organization/<name>/members/remove", methods=["POST"])
def organization_member_remove(name: str):
    """Remove a member from the organization."""
    return _remove(ORGANIZATION, name)


# -- a dataset's collaborators -----------------------------------------------------------------

@bp.route("/dataset/<dataset_id>/collaborators", methods=["GET"])
def collaborators(dataset_id: str):
    """The dataset's collaborators and their capacity, with add and remove."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    return _collaborators_page(ctx, dataset_id)


def _collaborators_page(ctx: Context, dataset_id: str, errors: dict[str, str] | None = None,
                        values: dict[str, str] | None = None, status: int = 200):
    pkg = call(ctx, "package_show", {"id": dataset_id})
    rows = []
    for c in call(ctx, "package_collaborator_list", {"id": pkg["id"]}):
        try:
            user = call(ctx, "user_show", {"id": c["user_id"]})
        except NotFound:  # a deleted account: its id is all there is to show
            user = {"name": c["user_id"], "display_name": c["user_id"]}
        rows.append({**c, "user": user})
    return render_template("members/collaborators.html", pkg=pkg, rows=rows, capacities=COLLABORATOR_CAPACITIES,
                           errors=errors or {}, values=values or {"capacity": "member"}), status


@bp.route("/dataset/<dataset_id>/collaborators", methods=["POST"])
def collaborator_save(dataset_id: str):
    """Add a collaborator by user name, or change one's capacity."""
    return _save(COLLABORATORS, dataset_id)


@bp.route("/dataset/<dataset_id>/collaborators/remove", methods=["POST"])
def collaborator_remove(dataset_id: str):
    """Remove a collaborator from the dataset."""
    return _remove(COLLABORATORS, dataset_id)


# -- saving and removing, for both pages -------------------------------------------------------

@dataclass(frozen=True)
class Roster:
    """What differs between an organization's members and a dataset's collaborators, so that one
    save and one remove handler serve both pages: the actions, their parameter names (which are
    also the forms' field names) and the page to go back to."""

    show: str  # the action that finds the organization or dataset
    show_params: dict[str, Any]
    create: str  # adds a member, or changes their role
    delete: str
    user_param: str  # the actions' name of the user (the remove form's field too)
    role_param: str  # the actions' name of the role (the forms' field too)
    endpoint: str  # the page, and its route's argument
    page_key: str
    page: Callable[..., Any]  # re-renders the page: (ctx, key, errors, values, status)


ORGANIZATION = Roster("organization_show", {"include_users": False}, "organization_member_create",
                      "organization_member_delete", "username", "role", "members.organization_members", "name",
                      _members_page)
COLLABORATORS = Roster("package_show", {}, "package_collaborator_create", "package_collaborator_delete",
                       "user_id", "capacity", "members.collaborators", "dataset_id", _collaborators_page)


def _save(roster: Roster, key: str):
    """Add the form's user with its role, or change a listed member's role (the table's forms send
    ``row``): a refusal of the add form is shown next to its fields; one of a listed member (the
    organization's last admin kept) above the table, with the member unchanged."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    found = call(ctx, roster.show, {"id": key, **roster.show_params})
    username, role = request.form.get("username", "").strip(), request.form.get(roster.role_param, "")
    values = {"username": username, roster.role_param: role}
    try:
        call(ctx, roster.create, {"id": found["id"], roster.user_param: username, roster.role_param: role})
    except ValidationError as exc:
        if request.form.get("row"):
            return roster.page(ctx, key, _refusal(exc), None, 409)
        return roster.page(ctx, key, _field_errors(exc, {roster.user_param: "username",
                                                         roster.role_param: roster.role_param}), values, 409)
    except NotFound:  # the organization or dataset was found above: the user is who is unknown
        errors = {"username": _("There is no user named “%(name)s”.", name=username)}
        return roster.page(ctx, key, errors, values, 409)
    return redirect(url_for(roster.endpoint, **{roster.page_key: found["name"]}, done="saved"), code=303)


def _remove(roster: Roster, key: str):
    """Remove the form's user; a refusal (the organization's last admin) is shown above the table."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    found = call(ctx, roster.show, {"id": key, **roster.show_params})
    try:
        call(ctx, roster.delete, {"id": found["id"], roster.user_param: request.form.get(roster.user_param, "")})
    except ValidationError as exc:
        return roster.page(ctx, key, _refusal(exc), None, 409)
    return redirect(url_for(roster.endpoint, **{roster.page_key: found["name"]}, done="removed"), code=303)


def _refusal(exc: ValidationError) -> dict[str, str]:
    """A refused change of a listed member, as the page shows it above the table (in the page's
    language when the message is one the translations know, as the last-admin rule's is)."""
    messages = [_(str(m)) for ms in (exc.field_errors or {}).values() for m in (ms if isinstance(ms, list) else [ms])]
    return {"_member": " ".join(messages) or exc.message}
