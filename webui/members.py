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
    ctx, away = _signed_in()
    if away is not None:
        return away
    org = call(ctx, "organization_show", {"id": name, "include_users": False})
    username, role = request.form.get("username", "").strip(), request.form.get("role", "")
    try:
        call(ctx, "organization_member_create", {"id": org["id"], "username": username, "role": role})
    except ValidationError as exc:
        errors = _field_errors(exc, {"username": "username", "role": "role"})
        return _members_page(ctx, name, errors, {"username": username, "role": role}, 409)
    except NotFound:  # the organization was found above: the user is who is unknown
        errors = {"username": _("There is no user named “%(name)s”.", name=username)}
        return _members_page(ctx, name, errors, {"username": username, "role": role}, 409)
    return redirect(url_for("members.organization_members", name=org["name"], done="saved"), code=303)


@bp.route("/organization/<name>/members/remove", methods=["POST"])
def organization_member_remove(name: str):
    """Remove a member from the organization."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    org = call(ctx, "organization_show", {"id": name, "include_users": False})
    call(ctx, "organization_member_delete", {"id": org["id"], "username": request.form.get("username", "")})
    return redirect(url_for("members.organization_members", name=org["name"], done="removed"), code=303)


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
    ctx, away = _signed_in()
    if away is not None:
        return away
    pkg = call(ctx, "package_show", {"id": dataset_id})
    username, capacity = request.form.get("username", "").strip(), request.form.get("capacity", "")
    try:
        call(ctx, "package_collaborator_create", {"id": pkg["id"], "user_id": username, "capacity": capacity})
    except ValidationError as exc:
        errors = _field_errors(exc, {"user_id": "username", "capacity": "capacity"})
        return _collaborators_page(ctx, dataset_id, errors, {"username": username, "capacity": capacity}, 409)
    except NotFound:  # the dataset was found above: the user is who is unknown
        errors = {"username": _("There is no user named “%(name)s”.", name=username)}
        return _collaborators_page(ctx, dataset_id, errors, {"username": username, "capacity": capacity}, 409)
    return redirect(url_for("members.collaborators", dataset_id=pkg["name"], done="saved"), code=303)


@bp.route("/dataset/<dataset_id>/collaborators/remove", methods=["POST"])
def collaborator_remove(dataset_id: str):
    """Remove a collaborator from the dataset."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    pkg = call(ctx, "package_show", {"id": dataset_id})
    call(ctx, "package_collaborator_delete", {"id": pkg["id"], "user_id": request.form.get("user_id", "")})
    return redirect(url_for("members.collaborators", dataset_id=pkg["name"], done="removed"), code=303)
