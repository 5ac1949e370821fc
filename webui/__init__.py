"""Web pages for providers, researchers and compliance officers.

Pages call catalog actions only (never the database or storage), so they obey
exactly the permissions and audit of the API.
"""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request

from catalog.actions import call
from catalog.context import Context
from catalog.errors import MosuError, http_status

bp = Blueprint("webui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")

PREVIEW_ROWS = 20


def _ctx() -> Context:
    # Anonymous until web login lands: pages show what the public may see.
    return Context(platform=current_app.extensions["mosu"], base_url=request.host_url)


@bp.app_errorhandler(MosuError)
def _error_page(exc: MosuError):
    status, title = http_status(exc)
    return render_template("error.html", status=status, title=title, message=exc.message), status


@bp.route("/")
def home():
    ctx = _ctx()
    datasets = call(ctx, "current_package_list_with_resources", {"limit": 100})
    return render_template("home.html", datasets=datasets)


@bp.route("/dataset/<dataset_id>")
def dataset(dataset_id: str):
    ctx = _ctx()
    pkg = call(ctx, "package_show", {"id": dataset_id})
    previews = {}
    for res in pkg["resources"]:
        if res["datastore_active"]:
            previews[res["id"]] = call(ctx, "datastore_search", {"resource_id": res["id"], "limit": PREVIEW_ROWS})
    return render_template("dataset.html", pkg=pkg, previews=previews)


@bp.route("/dataset/<dataset_id>/resource/<resource_id>/download")
def download(dataset_id: str, resource_id: str):
    """Check permission, record the download, then hand out a 5-minute URL for one object."""
    result = call(_ctx(), "resource_download", {"id": resource_id})
    return redirect(result["url"], code=302)
