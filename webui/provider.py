"""The providers' pages: my datasets, an organization's page, creating and editing a dataset (with
its data dictionary), uploading a file from the browser, and following its ingest.

Every page calls the catalog's actions as the signed-in user, so a page allows exactly what the
API allows: the edit form of a dataset asks ``resource_upload_check`` (the "may I change this
dataset" question) before it shows anything, and a save is ``package_create`` / ``package_patch``,
whose validation errors come back next to their fields.

The upload goes from the browser straight to object storage (``webui/static/upload.js``): the page
asks ``resource_upload_start`` and ``resource_upload_part`` for presigned PUT URLs and sends each
part there, so the file never passes through the web server. The page's Content-Security-Policy
therefore lets scripts connect to the object store's origin too, and to nothing else.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from catalog.access.context import Context
from catalog.actions import call
from catalog.api import content_security_policy
from catalog.api.session import request_context
from catalog.core.errors import NotAuthorized, NotFound, ValidationError
from webui import errors as page_errors
from webui.account import signed_in_or_redirect as _signed_in

bp = Blueprint("provider", __name__)

ACCESS_LEVELS = ("open", "registered", "restricted")
DASHBOARD_ROWS = 50
FORM_FIELDS = ("title", "name", "notes", "tags", "license_id", "owner_org", "access_level", "agreement_id",
               "embargo_until")




def _require_editor(ctx: Context, dataset_id: str) -> dict:
    """The dataset, if the caller may change it; the action's refusal (403, or 404 for a dataset
    they may not even see) otherwise, which the error page shows."""
    pkg = call(ctx, "package_show", {"id": dataset_id})
    call(ctx, "resource_upload_check", {"package_id": pkg["id"]})
    return pkg


def _editable_orgs(ctx: Context) -> list[dict]:
    return call(ctx, "organization_list_for_user", {"permission": "update_dataset"})


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@bp.app_template_global()
def ingest_label(status: str | None) -> str:
    """An ingest or version state in the page's language."""
    labels = {"queued": _("queued"), "running": _("running"), "ready": _("ready"), "failed": _("failed"),
              "held": _("held"), "done": _("done")}
    return labels.get(status or "", status or "")


# -- my datasets and organizations --------------------------------------------------------------

@bp.route("/dashboard")
def dashboard():
    """The datasets the signed-in user can change: their organizations' (as editor or admin), and
    those they are an editor collaborator on, public or private, drafts included, each with its
    resources' ingest state and quality score."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    orgs = _editable_orgs(ctx)
    names: list[str] = []
    if orgs:
        found = call(ctx, "package_search", {
            "q": "*:*", "fq": "owner_org:(" + " OR ".join(_quoted(o["id"]) for o in orgs) + ")",
            "include_private": True, "include_drafts": True, "rows": DASHBOARD_ROWS,
            "sort": "metadata_modified desc"})
        names = [p["name"] for p in found["results"]]
    # A collaboration is asked of the collaborations themselves, not of a search: a search of what
    # the user may see outside their organizations holds every public dataset of the site.
    shared = call(ctx, "package_collaborator_list_for_user", {"id": ctx.actor.id, "capacity": "editor"})
    datasets, seen = [], set()
    for key in names + [c["package_id"] for c in shared[:DASHBOARD_ROWS]]:
        try:
            pkg = _require_editor(ctx, key)
        except (NotAuthorized, NotFound):
            continue
        if pkg["id"] not in seen:
            seen.add(pkg["id"])
            datasets.append(pkg)
    return render_template("provider/dashboard.html", datasets=datasets, orgs=orgs)


@bp.route("/organization/<org_id>")
def organization(org_id: str):
    """An organization: its description and the datasets the caller may see (the public ones for
    everyone; its members also see the private ones: the action decides)."""
    ctx = request_context()
    org = call(ctx, "organization_show", {"id": org_id, "include_datasets": True, "include_users": False})
    member = ctx.actor is not None and any(
        o["id"] == org["id"] for o in call(ctx, "organization_list_for_user", {"permission": "read"}))
    editor = member and any(o["id"] == org["id"] for o in _editable_orgs(ctx))
    return render_template("provider/organization.html", org=org, member=member, editor=editor)


# -- creating and editing a dataset --------------------------------------------------------------

def _form_choices(ctx: Context, orgs: list[dict]) -> dict[str, Any]:
    licences = call(ctx, "license_list", {})
    agreements = []
    for org in orgs:
        for agreement in call(ctx, "agreement_list", {"owner_org": org["id"]}):
            agreements.append({**agreement, "org_title": org.get("title") or org["name"]})
    return {"licences": licences, "orgs": orgs, "agreements": agreements, "levels": ACCESS_LEVELS}


def _form_data(form) -> dict[str, Any]:
    """A dataset dict from the form: tags split at commas, the private box as a boolean."""
    data: dict[str, Any] = {k: form.get(k, "").strip() for k in FORM_FIELDS}
    data["tags"] = [{"name": t.strip()} for t in form.get("tags", "").split(",") if t.strip()]
    data["private"] = form.get("private") == "on"
    data["agreement_id"] = data["agreement_id"] or None
    data["embargo_until"] = data["embargo_until"] or None
    return data


def _form_values(pkg: dict) -> dict[str, Any]:
    """The form's fields from a dataset dict (as the edit form starts)."""
    return {"title": pkg.get("title") or "", "name": pkg["name"], "notes": pkg.get("notes") or "",
            "tags": ", ".join(t["name"] for t in pkg.get("tags", [])), "license_id": pkg.get("license_id") or "",
            "owner_org": pkg.get("owner_org") or "", "access_level": pkg.get("access_level") or "open",
            "agreement_id": pkg.get("agreement_id") or "", "embargo_until": pkg.get("embargo_until") or "",
            "private": bool(pkg.get("private"))}


def _errors_by_field(exc: ValidationError) -> dict[str, str]:
    """The action's field errors, one message per form field; any other field's go under ``_form``
    (shown at the top of the form)."""
    out: dict[str, str] = {}
    for field, messages in (exc.field_errors or {}).items():
        listed = messages if isinstance(messages, list) else [messages]
        text = " ".join(page_errors.translated(str(m)) for m in listed)
        if field in (*FORM_FIELDS, "private"):
            out[field] = text
        else:
            out["_form"] = (out.get("_form", "") + f" {field}: {text}").strip()
    return out


@bp.route("/dataset/new", methods=["GET", "POST"])
def new_dataset():
    """A new dataset in one of the caller's organizations; then its upload page."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    orgs = _editable_orgs(ctx)
    choices = _form_choices(ctx, orgs)
    if request.method == "GET":
        values = {"access_level": "open", "license_id": "", "private": False,
                  "owner_org": request.args.get("organization", "")}
        return render_template("provider/dataset_form.html", values=values, errors={}, new=True, **choices)
    data = _form_data(request.form)
    try:
        pkg = call(ctx, "package_create", data)
    except ValidationError as exc:
        values = {**data, "tags": request.form.get("tags", ""), "private": data["private"]}
        return render_template("provider/dataset_form.html", values=values, errors=_errors_by_field(exc), new=True,
                               **choices), 409
    return redirect(url_for("provider.upload", dataset_id=pkg["name"]), code=303)


@bp.route("/dataset/<dataset_id>/edit", methods=["GET", "POST"])
def edit_dataset(dataset_id: str):
    """Edit a dataset's description and access; below, each resource's data dictionary."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    pkg = _require_editor(ctx, dataset_id)
    orgs = _editable_orgs(ctx)
    if pkg.get("organization") and not any(o["id"] == pkg["owner_org"] for o in orgs):
        orgs = [pkg["organization"], *orgs]  # a collaborator edits in place: the owner stays a choice
    choices = _form_choices(ctx, orgs)
    status, errors, values = 200, {}, _form_values(pkg)
    if request.method == "POST":
        data = _form_data(request.form)
        try:
            pkg = call(ctx, "package_patch", {**data, "id": pkg["id"]})
        except ValidationError as exc:
            status, errors = 409, _errors_by_field(exc)
            values = {**data, "tags": request.form.get("tags", ""), "private": data["private"]}
        else:
            return redirect(url_for("provider.edit_dataset", dataset_id=pkg["name"], saved=1), code=303)
    return render_template("provider/dataset_form.html", pkg=pkg, values=values, errors=errors, new=False,
                           dictionaries=_dictionaries(ctx, pkg), saved=request.args.get("saved") == "1",
                           **choices), status


def _dictionaries(ctx: Context, pkg: dict) -> list[dict[str, Any]]:
    """Each resource with data: its columns and their label and description (``datastore_info``)."""
    out = []
    for res in pkg["resources"]:
        if not res.get("datastore_active"):
            continue
        info = call(ctx, "datastore_info", {"id": res["id"]})
        out.append({"resource": res, "fields": [f for f in info["fields"] if f["id"] != "_id"]})
    return out


@bp.route("/dataset/<dataset_id>/resource/<resource_id>/dictionary", methods=["POST"])
def save_dictionary(dataset_id: str, resource_id: str):
    """Save a resource's column labels and descriptions (its ``schema``), keeping each column's
    declared type as it was: a type changes how the next upload is read, which this form does not."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    pkg = _require_editor(ctx, dataset_id)
    res = next((r for r in pkg["resources"] if r["id"] == resource_id), None)
    if res is None:
        raise NotFound("Resource not found")
    stored = {f["id"]: f for f in ((res.get("schema") or {}).get("fields") or []) if isinstance(f, dict)}
    columns = request.form.getlist("column")
    labels, descriptions = request.form.getlist("label"), request.form.getlist("description")
    fields = []
    for i, column in enumerate(columns):
        label = (labels[i] if i < len(labels) else "").strip()
        description = (descriptions[i] if i < len(descriptions) else "").strip()
        kind = (stored.get(column) or {}).get("type")
        if label or description or kind:
            fields.append({"id": column, "type": kind, "label": label or None, "description": description or None})
    try:
        call(ctx, "resource_patch", {"id": resource_id, "schema": {"fields": fields} if fields else ""})
    except ValidationError as exc:
        pkg = call(ctx, "package_show", {"id": pkg["id"]})
        choices = _form_choices(ctx, _editable_orgs(ctx))
        return render_template("provider/dataset_form.html", pkg=pkg, values=_form_values(pkg), errors={},
                               new=False, dictionaries=_dictionaries(ctx, pkg), saved=False,
                               dictionary_errors={resource_id: " ".join(
                                   " ".join(map(str, v)) for v in exc.field_errors.values())}, **choices), 409
    return redirect(url_for("provider.edit_dataset", dataset_id=pkg["name"], saved=1) + f"#dictionary-{resource_id}",
                    code=303)


# -- uploading and following the ingest ----------------------------------------------------------

def storage_origin(endpoint: str | None) -> str | None:
    """The origin (scheme://host:port) of the object store's endpoint, which presigned URLs name
    (path-style addressing, as on SeaweedFS and MinIO), or None when none is set (pure)."""
    if not endpoint:
        return None
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


@bp.route("/dataset/<dataset_id>/upload")
def upload(dataset_id: str):
    """Upload a file as a new resource, or a new version of one, straight to object storage."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    pkg = _require_editor(ctx, dataset_id)
    limit = call(ctx, "resource_upload_check", {"package_id": pkg["id"]})["max_upload_bytes"]
    response = make_response(render_template("provider/upload.html", pkg=pkg, max_upload_bytes=limit,
                                             chosen=request.args.get("resource", "")))
    origin = storage_origin(ctx.settings.s3_endpoint)
    response.headers["Content-Security-Policy"] = content_security_policy(connect=[origin] if origin else [])
    return response


@bp.route("/dataset/<dataset_id>/resource/<resource_id>/ingest")
def ingest(dataset_id: str, resource_id: str):
    """A resource's latest upload as its editors follow it: the ingest live, then the outcome, its
    versions (failed and held ones too) with their quality reports, and, for a version held for
    personal information, the form that acknowledges it."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    return _ingest_page(ctx, _require_editor(ctx, dataset_id), resource_id)


def _ingest_page(ctx: Context, pkg: dict, resource_id: str, errors: dict[str, str] | None = None,
                 status: int = 200):
    res = next((r for r in pkg["resources"] if r["id"] == resource_id), None)
    if res is None:
        raise NotFound("Resource not found")
    versions = call(ctx, "resource_version_list", {"id": resource_id})
    held = next((v for v in versions if v["status"] == "held"), None)
    findings = []
    if held is not None:
        findings = call(ctx, "quality_report_show", {"id": resource_id, "version": held["number"]}).get("pii") or []
    return render_template("provider/ingest.html", pkg=pkg, res=res, versions=versions, held=held,
                           findings=findings, acknowledged=request.args.get("acknowledged") == "1",
                           errors=errors or {}, reason=request.form.get("reason", "")), status


@bp.route("/dataset/<dataset_id>/resource/<resource_id>/acknowledge", methods=["POST"])
def acknowledge(dataset_id: str, resource_id: str):
    """Acknowledge a held version's personal information, with the editor's reason: it is published."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    pkg = _require_editor(ctx, dataset_id)
    args = {"id": resource_id, "reason": request.form.get("reason", "").strip()}
    if request.form.get("version"):
        args["version"] = request.form["version"]
    try:
        if not args["reason"]:
            raise ValidationError({"reason": [_("Say why these values may be published.")]})
        call(ctx, "quality_pii_acknowledge", args)
    except ValidationError as exc:
        return _ingest_page(ctx, pkg, resource_id, {k: " ".join(map(str, v)) for k, v in exc.field_errors.items()},
                            409)
    return redirect(url_for("provider.ingest", dataset_id=pkg["name"], resource_id=resource_id, acknowledged=1),
                    code=303)
