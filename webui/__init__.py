"""Web pages for providers, researchers and compliance officers.

Pages call catalog actions only (never the database or storage), so they obey
exactly the permissions and audit of the API.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, Response, g, make_response, redirect, render_template, request
from markupsafe import Markup

from catalog.access.context import Actor, Context
from catalog.actions import call
from catalog.api import API_PATHS, ERROR_PAGE, web_auth
from catalog.api.errors import record_refusal
from catalog.api.session import request_context
from catalog.core import validate
from catalog.core.errors import BadRequest, MosuError, NotAuthorized, NotFound, SearchQueryError, http_status

bp = Blueprint("webui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")


PAGES = ("account", "provider")
"""The modules of webui whose blueprint ``bp`` holds a group of pages."""


def install(app: Flask) -> None:
    """The pages on ``app``: languages, sign-in and its CSRF rule, and every page's blueprint."""
    from importlib import import_module

    from webui import i18n

    i18n.install(app)
    web_auth.install(app, app.extensions["mosu"].settings)
    app.before_request(_check_form)
    app.register_blueprint(bp)
    for name in PAGES:
        app.register_blueprint(import_module(f"webui.{name}").bp)


def _check_form() -> None:
    """Every form a page posts carries its page's CSRF token (the API has its own rule)."""
    if not request.path.startswith(API_PATHS):
        web_auth.check_csrf()


@bp.app_template_global()
def csrf_token() -> str:
    return web_auth.csrf_token()


@bp.app_template_global()
def csrf_field() -> Markup:
    """The hidden field every form a page posts must carry."""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(web_auth.csrf_token())


@bp.app_template_global()
def signed_in() -> Actor | None:
    """The signed-in user of this page (by the session cookie; an API token signs a page in too)."""
    ctx = g.get("mosu_context")
    if ctx is not None and ctx.actor is not None:
        return ctx.actor
    signed = web_auth.current()
    return signed.actor if signed is not None else None


@bp.app_template_filter()
def parse_time(value: str | None) -> dt.datetime | None:
    """An ISO 8601 time of an action's answer (UTC) as a datetime, for Flask-Babel's date filters."""
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)

PREVIEW_ROWS = 20


def _ctx() -> Context:
    """The caller, as the API sees it: the signed-in user of the session cookie, or of an API token
    (``Authorization``, as scripts send), else anonymous (what the public may see)."""
    return request_context()


def _may_edit(ctx: Context, pkg: dict) -> bool:
    """Whether the caller may edit the dataset (asked as "may I upload to it", the provider's question)."""
    if ctx.actor is None:
        return False
    try:
        call(ctx, "resource_upload_check", {"package_id": pkg["id"]})
    except (NotAuthorized, NotFound):
        return False
    return True


@bp.app_template_global()
def shown_status(res: dict, editor: bool) -> str | None:
    """The ingest status a dataset page shows for resource ``res`` (pure).

    The dataset's editors see its latest upload's: a newer version queued, running, held or
    failed, and why. Everyone else sees the version they can read: ``ready`` while one is
    published, whatever happened to a newer upload since; the latest upload's status only while
    nothing is published (with the value-free summary of why, when it did not pass).
    """
    if editor or not res.get("datastore_active"):
        return res.get("ingest_status")
    return "ready"


@bp.app_template_test()
def linkable(value: object) -> bool:
    """Whether a stored URL may become a link: http(s) or relative only. URL fields are checked
    when saved; this keeps a ``javascript:`` URL stored before that check from becoming one."""
    return isinstance(value, str) and bool(value) and validate.is_link_safe(value)


@bp.app_errorhandler(MosuError)
def _error_page(exc: MosuError):
    """An error of a page as a page; a refused call's audit event is written here, after the page's
    actions ended (a refusal a page catches and shows in place, as a dataset page's preview, is not
    one: the page answered)."""
    status, title = http_status(exc)
    record_refusal(exc, status)
    return render_template("error.html", status=status, title=title, message=exc.message), status


def _page_for_error(status: int, title: str, message: str) -> Response:
    """The site's error page for an address no route answers (404) or a method it does not take (405)."""
    return make_response(render_template("error.html", status=status, title=title, message=message), status)


bp.record_once(lambda state: state.app.extensions.setdefault(ERROR_PAGE, _page_for_error))


@bp.route("/favicon.ico")
def favicon():
    """The site's icon where browsers look for it first (the pages also link it as SVG)."""
    response = bp.send_static_file("favicon.svg")
    response.mimetype = "image/svg+xml"
    return response


FACETS = ("organization", "tags", "res_format", "license_id")
FACET_TITLES = {"organization": "Publishers", "tags": "Tags", "res_format": "Formats", "license_id": "Licences"}
PAGE_ROWS = 20


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@bp.app_template_global()
def facet_args(chosen: list[tuple[str, str]], add: tuple[str, str] | None = None,
               remove: tuple[str, str] | None = None) -> dict[str, list[str]]:
    """Query arguments for the current facet selection, with one value added or removed."""
    pairs = [p for p in chosen if p != remove] + ([add] if add else [])
    out: dict[str, list[str]] = {}
    for field, value in pairs:
        out.setdefault(field, []).append(value)
    return out


@bp.route("/")
def home():
    """The catalog: full-text search with facets (Solr syntax works in the box too)."""
    q = request.args.get("q", "").strip()
    page = max(1, request.args.get("page", 1, type=int) or 1)
    chosen = [(f, v) for f in FACETS for v in request.args.getlist(f)]
    try:
        result = call(_ctx(), "package_search", {
            "q": q or "*:*", "fq_list": [f"{f}:{_quoted(v)}" for f, v in chosen],
            "facet.field": list(FACETS), "facet.limit": 8, "rows": PAGE_ROWS, "start": (page - 1) * PAGE_ROWS,
            "sort": "score desc, metadata_modified desc" if q else "metadata_modified desc"})
    except (SearchQueryError, BadRequest) as exc:  # the user's words: answer on the page, box and query kept
        empty = {"count": 0, "results": [], "search_facets": {}}
        return render_template("home.html", result=empty, q=q, chosen=chosen, page=1, rows=PAGE_ROWS,
                               facet_titles=FACET_TITLES, search_error=exc.message), 400
    return render_template("home.html", result=result, q=q, chosen=chosen, page=page, rows=PAGE_ROWS,
                           facet_titles=FACET_TITLES)


@bp.route("/dataset/<dataset_id>")
def dataset(dataset_id: str):
    ctx = _ctx()
    pkg = call(ctx, "package_show", {"id": dataset_id})
    previews, refusals = {}, {}
    for res in pkg["resources"]:
        if res["datastore_active"]:
            try:  # the same action as the API: a restricted dataset's rows are for its readers only
                previews[res["id"]] = call(ctx, "datastore_search", {"resource_id": res["id"], "limit": PREVIEW_ROWS})
            except NotAuthorized as exc:  # the page stays: metadata, row count and quality are public
                refusals[res["id"]] = exc.message
    return render_template("dataset.html", pkg=pkg, previews=previews, refusals=refusals, editor=_may_edit(ctx, pkg))


@bp.route("/dataset/<dataset_id>/resource/<resource_id>/quality")
def quality(dataset_id: str, resource_id: str):
    """A version's quality report as a page: score, checks, personal information, column profiles."""
    ctx = _ctx()
    pkg = call(ctx, "package_show", {"id": dataset_id})
    res = next((r for r in pkg["resources"] if r["id"] == resource_id), None)
    if res is None:
        raise NotFound("Resource not found")
    args = {"id": resource_id}
    if request.args.get("version"):
        args["version"] = request.args["version"]
    report = call(ctx, "quality_report_show", args)
    return render_template("quality.html", pkg=pkg, res=res, report=report)


@bp.app_template_filter()
def bars(counts: list[int], width: int = 240, height: int = 48) -> list[dict[str, float]]:
    """Bar geometry for a histogram drawn as inline SVG (pure)."""
    if not counts:
        return []
    top, step = max(counts) or 1, width / len(counts)
    return [{"x": round(i * step, 2), "w": round(max(step - 1, 1), 2), "h": round(height * c / top, 2),
             "y": round(height - height * c / top, 2), "count": c} for i, c in enumerate(counts)]


@bp.route("/dataset/<dataset_id>/resource/<resource_id>/download")
def download(dataset_id: str, resource_id: str):
    """Check permission, record the download, then hand out a 5-minute URL for one object."""
    args = {"id": resource_id, **{k: request.args[k] for k in ("format", "version") if request.args.get(k)}}
    result = call(_ctx(), "resource_download", args)
    return redirect(result["url"], code=302)
