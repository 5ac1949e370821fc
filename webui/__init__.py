"""Web pages for providers, researchers and compliance officers.

Pages call catalog actions only (never the database or storage), so they obey
exactly the permissions and audit of the API.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, Response, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.exceptions import InternalServerError

from catalog.access.context import Actor, Context
from catalog.actions import call
from catalog.api import API_PATHS, ERROR_PAGE, web_auth
from catalog.api.errors import record_refusal
from catalog.api.session import request_context
from catalog.core import validate
from catalog.core.errors import BadRequest, MosuError, NotAuthorized, NotFound, SearchQueryError, http_status
from webui import citation, confirm, errors

bp = Blueprint("webui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")


PAGES = ("account", "grid", "access", "compliance", "provider", "suite", "members", "errors")
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
    """Every form a page posts carries its page's CSRF token (the API has its own rule). A request no
    route takes (an unknown address, a method the address does not take) runs no handler: it gets its
    404 or 405 page, which says what is wrong, rather than a 403 about a token."""
    if not request.path.startswith(API_PATHS) and request.routing_exception is None:
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


@bp.app_template_global()
def status_title(status: str | None) -> str:
    """An ingest or version status in the page's language (the class names stay English)."""
    return {"queued": _("queued"), "running": _("running"), "held": _("held"), "ready": _("ready"),
            "failed": _("failed"), "passed": _("passed"), "errored": _("could not run")
            }.get(status or "", status or "")


@bp.app_template_global()
def ingest_labels() -> dict[str, object]:
    """What status.js shows of a running ingest, in the page's language: the stages and the units."""
    return {"stages": {"queued": _("queued"), "running": _("running"), "starting": _("starting"),
                       "downloading": _("downloading"), "unpacking": _("unpacking"), "converting": _("converting"),
                       "validating": _("validating"), "publishing": _("publishing"),
                       "waiting to retry": _("waiting to retry")},
            "bytes": _("%(n)s bytes"), "rows": _("%(n)s rows")}


@bp.app_template_test()
def linkable(value: object) -> bool:
    """Whether a stored URL may become a link: http(s) or relative only. URL fields are checked
    when saved; this keeps a ``javascript:`` URL stored before that check from becoming one."""
    return isinstance(value, str) and bool(value) and validate.is_link_safe(value)


def error_title(status: int) -> str:
    """An error page's heading for an HTTP status, in the page's language."""
    return {400: _("Bad request"), 403: _("Not allowed"), 404: _("Not found"), 405: _("Method not allowed"),
            409: _("Not accepted"), 413: _("Too large"), 429: _("Too many requests"),
            500: _("Something went wrong"), 503: _("Temporarily unavailable")}.get(status, _("Error"))


def error_explanation(status: int) -> str:
    """What a reader can do about an error of this status, in the page's language."""
    return {403: _("You may not see this page. Signing in, or access granted by the publisher, may help."),
            404: _("There is nothing at this address, or it is not shown to you."),
            405: _("This address does not take that kind of request."),
            429: _("Too many requests in a short time: wait a little and try again."),
            500: _("The site could not answer this request. The error has been logged; please try again later."),
            503: _("A service the site needs is not answering: please try again in a moment.")}.get(status, "")


def _render_error(status: int, message: str) -> str:
    return render_template("error.html", status=status, title=error_title(status),
                           explanation=error_explanation(status), message=message)


@bp.app_errorhandler(MosuError)
def _error_page(exc: MosuError):
    """An error of a page as a page; a refused call's audit event is written here, after the page's
    actions ended (a refusal a page catches and shows in place, as a dataset page's preview, is not
    one: the page answered)."""
    status, _title = http_status(exc)
    record_refusal(exc, status)
    return _render_error(status, errors.translated(exc)), status


@bp.app_errorhandler(InternalServerError)
def _internal_error(exc: InternalServerError):
    """An unexpected error of a page (Flask has logged it): the site's page, which names no cause;
    on the API's paths CKAN's envelope, as the API answers its own."""
    if request.path.startswith(API_PATHS):
        return {"success": False, "error": {"__type": "Internal Server Error",
                                            "message": "Internal Server Error"}}, 500
    return _render_error(500, ""), 500


def _page_for_error(status: int, title: str, message: str) -> Response:
    """The site's error page for an address no route answers (404) or a method it does not take (405)."""
    return make_response(_render_error(status, ""), status)


bp.record_once(lambda state: state.app.extensions.setdefault(ERROR_PAGE, _page_for_error))


@bp.route("/favicon.ico")
def favicon():
    """The site's icon where browsers look for it first (the pages also link it as SVG)."""
    response = bp.send_static_file("favicon.svg")
    response.mimetype = "image/svg+xml"
    return response


FACETS = ("organization", "access_level", "license_id", "tags", "res_format")
"""The search index's facet fields the search page offers, in the order it shows them."""
PAGE_ROWS = 20
QUALITY_BANDS = {"90": "quality_score:[90 TO *]",
                 "75": "quality_score:[75 TO *] -quality_score:[90 TO *]",
                 "50": "quality_score:[50 TO *] -quality_score:[75 TO *]",
                 "0": "quality_score:[* TO *] -quality_score:[50 TO *]"}
"""Quality score bands (the ``quality`` argument of the search page) as filters: each band holds
its low end and not the next band's, so a score of 89.5 is in one band only; unscored datasets
are in none."""
SORTS = {"relevance": "score desc, metadata_modified desc", "modified": "metadata_modified desc",
         "name": "title_string asc", "created": "metadata_created desc",
         "quality": "quality_score desc, metadata_modified desc"}
"""The sort control's choices -> the search's sort."""


def facet_titles() -> dict[str, str]:
    """Each facet's heading, in the page's language."""
    return {"organization": _("Publishers"), "access_level": _("Access"), "license_id": _("Licences"),
            "quality": _("Quality score"), "tags": _("Tags"), "res_format": _("Formats")}


@bp.app_template_global()
def access_level_title(level: str) -> str:
    """An access level's name in the page's language."""
    return {"open": _("Open"), "registered": _("Registered users"), "restricted": _("Restricted")}.get(level, level)


def quality_band_titles() -> dict[str, str]:
    return {"90": _("90 and above"), "75": _("75 to 89"), "50": _("50 to 74"), "0": _("Below 50")}


def sort_titles() -> dict[str, str]:
    return {"relevance": _("Relevance"), "modified": _("Last modified"), "name": _("Name (A–Z)"),
            "created": _("Newest first"), "quality": _("Quality score")}


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _filter(field: str, value: str) -> str:
    return QUALITY_BANDS[value] if field == "quality" else f"{field}:{_quoted(value)}"


@bp.app_template_global()
def facet_args(chosen: list[tuple[str, str]], add: tuple[str, str] | None = None,
               remove: tuple[str, str] | None = None) -> dict[str, list[str]]:
    """Query arguments for the current facet selection, with one value added or removed."""
    pairs = [p for p in chosen if p != remove] + ([add] if add else [])
    out: dict[str, list[str]] = {}
    for field, value in pairs:
        out.setdefault(field, []).append(value)
    return out


def page_numbers(page: int, last: int, around: int = 2) -> list[int | None]:
    """The page numbers a pager shows: the first, the last and ``around`` either side of ``page``,
    with ``None`` where numbers are left out (pure)."""
    shown = sorted({1, last, *range(max(1, page - around), min(last, page + around) + 1)})
    out: list[int | None] = []
    for n in shown:
        if out and n - out[-1] > 1:
            out.append(None)
        out.append(n)
    return out


def _search_facets(ctx: Context, q: str, fq: list[str], result: dict) -> list[tuple[str, list[dict]]]:
    """The facets the page shows, in order: the index's, with display names in the page's language
    (licence titles, access levels), and the quality bands, counted by one search per band."""
    licences = {lic["id"]: lic["title"] for lic in call(ctx, "license_list", {})}
    out = []
    for field in FACETS:
        items = (result.get("search_facets", {}).get(field) or {}).get("items", [])
        for item in items:
            if field == "license_id":
                item["display_name"] = licences.get(item["name"], item["name"])
            elif field == "access_level":
                item["display_name"] = access_level_title(item["name"])
        out.append((field, items))
        if field == "license_id":
            bands = []
            for band, band_fq in QUALITY_BANDS.items():
                count = call(ctx, "package_search", {"q": q or "*:*", "fq_list": [*fq, band_fq], "rows": 0})["count"]
                if count:
                    bands.append({"name": band, "display_name": quality_band_titles()[band], "count": count})
            out.append(("quality", bands))
    return out


@bp.route("/")
def home():
    """The catalog: full-text search with facets (Solr syntax works in the box too), a sort control
    and numbered pages."""
    ctx = _ctx()
    q = request.args.get("q", "").strip()
    page = max(1, request.args.get("page", 1, type=int) or 1)
    chosen = [(f, v) for f in (*FACETS, "quality") for v in request.args.getlist(f)
              if f != "quality" or v in QUALITY_BANDS]
    sort = request.args.get("sort", "")
    if sort not in SORTS or (sort == "relevance" and not q):  # without words every dataset is as relevant
        sort = "relevance" if q else "modified"
    fq = [_filter(f, v) for f, v in chosen]
    page_args = {"q": q, "chosen": chosen, "rows": PAGE_ROWS, "sort": sort, "sorts": sort_titles(),
                 "facet_titles": facet_titles()}
    try:
        result = call(ctx, "package_search", {
            "q": q or "*:*", "fq_list": fq, "facet.field": list(FACETS), "facet.limit": 8, "rows": PAGE_ROWS,
            "start": (page - 1) * PAGE_ROWS, "sort": SORTS[sort]})
        facets = _search_facets(ctx, q, fq, result)
    except (SearchQueryError, BadRequest) as exc:  # the user's words: answer on the page, box and query kept
        empty = {"count": 0, "results": []}
        return render_template("home.html", result=empty, facets=[], page=1, pages=[], last=1,
                               search_error=exc.message, **page_args), 400
    last = max(1, -(-result["count"] // PAGE_ROWS))
    return render_template("home.html", result=result, facets=facets, page=page,
                           pages=page_numbers(min(page, last), last), last=last, **page_args)


@bp.route("/dataset/<dataset_id>")
def dataset(dataset_id: str):
    """A dataset: its metadata, who may read its rows, its resources with their first rows, their
    version history and quality, and how to cite it."""
    ctx = _ctx()
    pkg = call(ctx, "package_show", {"id": dataset_id})
    previews, refusals, versions, changes = {}, {}, {}, {}
    for res in pkg["resources"]:
        if res["datastore_active"]:
            try:  # the same action as the API: a restricted dataset's rows are for its readers only
                previews[res["id"]] = call(ctx, "datastore_search", {"resource_id": res["id"], "limit": PREVIEW_ROWS})
            except NotAuthorized as exc:  # the page stays: metadata, row count and quality are public
                refusals[res["id"]] = errors.translated(exc)
        if res.get("url_type") == "upload":
            versions[res["id"]] = call(ctx, "resource_version_list", {"id": res["id"]})
            changes.update(citation.schema_changes(versions[res["id"]]))
    cite = citation.citation(pkg, versions, ctx.site_url + url_for("webui.dataset", dataset_id=pkg["name"]))
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    embargoed = bool(pkg.get("embargo_until")) and pkg["embargo_until"] > today
    response = make_response(render_template(
        "dataset.html", pkg=pkg, previews=previews, refusals=refusals, editor=_may_edit(ctx, pkg),
        versions=versions, changes=changes, cite=cite, embargoed=embargoed))
    response.headers["Content-Security-Policy"] = confirm.download_csp(ctx)  # its download buttons' redirect
    return response


@bp.route("/dataset/<dataset_id>/resource/<resource_id>/quality")
def quality(dataset_id: str, resource_id: str):
    """A version's quality report as a page: score, checks, personal information, column profiles."""
    ctx = _ctx()
    pkg = call(ctx, "package_show", {"id": dataset_id})
    res = next((r for r in pkg["resources"] if r["id"] == resource_id), None)
    if res is None:
        raise NotFound(_("Resource not found"))
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


@bp.route("/dataset/<dataset_id>/resource/<resource_id>/download", methods=["GET", "POST"])
def download(dataset_id: str, resource_id: str):
    """Check permission, record the download, then hand out a 5-minute URL for one object.

    The dataset page's buttons post this (with the page's CSRF token); a GET signed in by the session
    cookie alone gets a confirmation page and reads nothing (:mod:`webui.confirm`). A GET with an API
    token, or anonymous, downloads as before: a resource's ``url`` is this address, and CKAN clients
    fetch it."""
    ctx = _ctx()
    fields = confirm.params(("format", "version"))
    if confirm.needs_confirmation():
        pkg = call(ctx, "package_show", {"id": dataset_id})
        res = next((r for r in pkg["resources"] if r["id"] == resource_id), None)
        if res is None:
            raise NotFound(_("Resource not found"))
        details = [(_("Version"), fields["version"])] if fields.get("version") else []
        return confirm.page(heading=_("Download a file"), button=_("Download"), fields=fields,
                            fmt=fields.get("format", "original"), pkg=pkg, res=res, details=details,
                            redirects_to=confirm.storage_origin(ctx))
    result = call(ctx, "resource_download", {"id": resource_id, **fields})
    return redirect(result["url"], code=303 if request.method == "POST" else 302)
