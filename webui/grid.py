"""A researcher's data pages: a grid per resource (pages of rows, sort, filters, full-text search,
a summary of each column, exports of the current view) and a SQL console.

Everything shown comes from the actions (``datastore_search``, ``quality_report_show``,
``datastore_search_sql``): the columns a caller sees are the ones the action answers with, so a
column hidden from a column-scoped grantee has no other way onto the page. The first page is
rendered here, so the grid works without scripts; ``grid.js`` then turns every change (page, sort,
filter, search) into exactly one ``datastore_search`` call and redraws only the rows.

Exports go through page addresses (``.../export``, ``/sql/export``) that stream exactly what
``/datastore/dump`` and ``/datastore/dump_sql`` stream: a form on a page carries the session
cookie and the page's CSRF token, but cannot carry the CSRF header the API asks of a cookie caller,
so a researcher whose access comes from a grant would be refused by the API address. They are POST
forms; a signed-in GET only asks for confirmation (:mod:`webui.confirm`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from catalog.actions import call
from catalog.api import dump as api_dump
from catalog.api.errors import record_refusal
from catalog.api.session import request_context
from catalog.core.errors import (
    BadRequest,
    MosuError,
    NotAuthorized,
    NotFound,
    QueryRejected,
    ValidationError,
    http_status,
)
from webui import confirm, errors

bp = Blueprint("grid", __name__)

PAGE_ROWS = 100
"""Rows per page of the grid."""
FILTER_PREFIX = "f."
"""Query-string prefix of a column filter: ``f.<column>=<exact value>``."""
NUMERIC = ("int", "float", "numeric")
"""CKAN types shown right-aligned."""
EXPORT_FORMATS = (("csv", "CSV"), ("jsonl", "JSON lines"), ("parquet", "Parquet"))


@dataclass
class View:
    """What the grid shows: a page of the rows that match ``q`` and ``filters``, sorted by ``sort``."""

    offset: int = 0
    sort: str = ""
    q: str = ""
    filters: dict[str, str] = field(default_factory=dict)

    def search_args(self) -> dict[str, Any]:
        """The ``datastore_search`` parameters of this view (without resource, limit and offset)."""
        out: dict[str, Any] = {}
        if self.q:
            out["q"] = self.q
        if self.filters:
            out["filters"] = dict(self.filters)
        if self.sort:
            out["sort"] = self.sort
        return out

    def query(self, **changes: Any) -> dict[str, str]:
        """The page's query string of this view with ``changes`` (offset, sort), for ``url_for``."""
        offset, sort = changes.get("offset", self.offset), changes.get("sort", self.sort)
        out: dict[str, str] = {}
        if self.q:
            out["q"] = self.q
        if sort:
            out["sort"] = sort
        for name, value in self.filters.items():
            out[FILTER_PREFIX + name] = value
        if offset:
            out["offset"] = str(offset)
        return out

    def export_args(self, fmt: str) -> dict[str, str]:
        """The query string of an export of exactly this view's rows (every page of them)."""
        out = {"format": fmt}
        if self.q:
            out["q"] = self.q
        if self.filters:
            out["filters"] = json.dumps(self.filters, ensure_ascii=False)
        if self.sort:
            out["sort"] = self.sort
        return out

    def as_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "sort": self.sort, "q": self.q, "filters": self.filters}


def parse_view(args: MultiDict) -> View:
    """The view a page's query string asks for (pure): ``offset`` or ``row`` (1-based, the "go to
    row" box), ``sort`` ("column" or "column desc"), ``q``, and ``f.<column>`` filters (empty ones
    ignored). Whether the columns exist is the action's to say."""
    offset = _non_negative(args.get("offset"))
    row = _non_negative(args.get("row"))
    if row:
        offset = row - 1
    filters = {k[len(FILTER_PREFIX):]: v.strip() for k, v in args.items()
               if k.startswith(FILTER_PREFIX) and len(k) > len(FILTER_PREFIX) and v.strip()}
    return View(offset=offset, sort=(args.get("sort") or "").strip(), q=(args.get("q") or "").strip(),
                filters=filters)


def _non_negative(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


@bp.app_template_filter()
def cell(value: Any) -> str:
    """A value of a row as the grid shows it, the same way ``grid.js`` does (pure): empty for null,
    JSON for nested values, ``true``/``false``, whole floats without ``.0`` (as JavaScript prints them)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


@bp.app_template_global()
def sort_key(name: str) -> str:
    """Column ``name`` as ``datastore_search``'s ``sort`` spells it: in double quotes when it holds a
    space, a comma or a quote (pure)."""
    if name and not any(c.isspace() or c in ',"' for c in name):
        return name
    return '"' + name.replace('"', '""') + '"'


@bp.app_template_filter()
def top_segments(top: list[dict[str, Any]], rows: int, width: float = 120) -> list[dict[str, Any]]:
    """The most frequent values of a column as segments of one bar ``width`` wide: each as wide as its
    share of the ``rows`` (pure; what is left of the bar is every other value)."""
    out, x = [], 0.0
    for entry in top[:5]:
        count = int(entry.get("count") or 0)
        if not rows or count <= 0:
            continue
        w = round(width * count / rows, 2)
        out.append({"x": round(x, 2), "w": max(w - 1, 0.5), "value": entry.get("value"), "count": count,
                    "share": count / rows})
        x += w
    return out


def _resource(pkg: dict, resource_id: str) -> dict:
    res = next((r for r in pkg["resources"] if r["id"] == resource_id), None)
    if res is None:
        raise NotFound("Resource not found")
    return res


def _profiles(ctx, resource_id: str, version: Any, names: set[str]) -> dict[str, dict]:
    """Column profiles of the version the grid reads, for the columns the search answered with only
    (a report is not a second source of column names). A resource without a report gets none."""
    try:
        report = call(ctx, "quality_report_show", {"id": resource_id, "version": version})
    except MosuError:
        return {}
    columns = (report.get("profile") or {}).get("columns") or []
    rows = (report.get("profile") or {}).get("row_count") or 0
    return {c["name"]: {**c, "row_count": rows} for c in columns if c.get("name") in names}


@bp.route("/dataset/<dataset_id>/resource/<resource_id>")
def grid(dataset_id: str, resource_id: str):
    """The grid of a resource's rows; a caller who may see the dataset but not read its rows gets
    the action's refusal in place of rows."""
    ctx = request_context()
    pkg = call(ctx, "package_show", {"id": dataset_id})
    res = _resource(pkg, resource_id)
    view = parse_view(request.args)
    search, refusal, error, status = None, None, None, 200
    if res.get("datastore_active"):
        args = {"resource_id": res["id"], "limit": PAGE_ROWS, "offset": view.offset, **view.search_args()}
        try:
            search = call(ctx, "datastore_search", args)
        except NotAuthorized as exc:  # the page stays: what the dataset is, and what it takes to read it
            refusal = errors.translated(exc)
        except (ValidationError, BadRequest, QueryRejected) as exc:  # the user's filter, sort or search: say why
            error, status = errors.translated(exc), http_status(exc)[0]
            search = call(ctx, "datastore_search", {"resource_id": res["id"], "limit": 0})
            search["records"], search["total"] = [], None
    profiles = {}
    if search is not None:
        profiles = _profiles(ctx, res["id"], search.get("version"), {f["id"] for f in search["fields"]})
    return render_template("grid/grid.html", pkg=pkg, res=res, view=view, search=search, refusal=refusal,
                           error=error, profiles=profiles, page_rows=PAGE_ROWS, numeric=NUMERIC,
                           formats=EXPORT_FORMATS), status


def _page_error(response: Response) -> Response:
    """An export refused before its first byte, as the site's error page (the API's JSON otherwise)."""
    if response.status_code < 400 or response.mimetype != "application/json":
        return response
    try:
        message = json.loads(response.get_data(as_text=True))["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = _("The export could not be made.")
    title = {400: _("Bad request"), 403: _("Not authorized"), 404: _("Not found"), 409: _("Invalid request"),
             429: _("Too many requests")}.get(response.status_code, _("Error"))
    page = render_template("error.html", status=response.status_code, title=title, message=message)
    return Response(page, status=response.status_code, headers={
        k: v for k, v in response.headers.items() if k.lower() == "retry-after"}, mimetype="text/html")


EXPORT_PARAMS = ("format", "q", "filters", "sort", "fields", "distinct", "version", "limit", "offset")
"""The parameters of ``/datastore/dump/<id>`` an export page carries from a GET to its confirmation's POST."""


@bp.route("/dataset/<dataset_id>/resource/<resource_id>/export", methods=["GET", "POST"])
def export(dataset_id: str, resource_id: str):
    """Every row of the grid's view (``q``, ``filters``, ``sort``) as ``format``: the stream of
    ``/datastore/dump/<id>``, as the signed-in user of the page. The grid's buttons post it; a GET
    signed in by the session cookie alone gets a confirmation page (:mod:`webui.confirm`)."""
    pkg = call(request_context(), "package_show", {"id": dataset_id})
    res = _resource(pkg, resource_id)
    if confirm.needs_confirmation():
        fields = confirm.params(EXPORT_PARAMS)
        return confirm.page(heading=_("Export rows"), button=_("Export"), fields=fields,
                            fmt=fields.get("format", "csv"), pkg=pkg, res=res, details=confirm.view_details(fields))
    return _page_error(api_dump.dump(resource_id))


@bp.route("/sql/export", methods=["GET", "POST"])
def sql_export():
    """A query's whole result as ``format``: the stream of ``/datastore/dump_sql``, as the page's user.
    The console's buttons post it (the query in the body, however long); a GET signed in by the session
    cookie alone gets a confirmation page showing the query (:mod:`webui.confirm`)."""
    if confirm.needs_confirmation():
        fields = confirm.params(("sql", "format"))
        return confirm.page(heading=_("Export a query's result"), button=_("Export"), fields=fields,
                            fmt=fields.get("format", "csv"), sql=fields.get("sql", ""))
    return _page_error(api_dump.dump_sql())


def _tables(ctx, resource_id: str | None) -> list[dict]:
    """The tables the console offers to insert: the linking resource's, and its dataset's other
    resources with data (what the caller may read is the query's to say)."""
    if not resource_id:
        return []
    try:
        res = call(ctx, "resource_show", {"id": resource_id})
        pkg = call(ctx, "package_show", {"id": res["package_id"]})
    except MosuError:  # an id that names nothing the caller may see: a console without tables
        return []
    out = [r for r in pkg["resources"] if r["id"] == resource_id]
    out += [r for r in pkg["resources"] if r["id"] != resource_id and r.get("datastore_active")]
    return [{"id": r["id"], "name": r.get("name") or "", "dataset": pkg.get("title") or pkg["name"],
             "dataset_name": pkg["name"]} for r in out]


def _examples(table: str | None) -> list[tuple[str, str]]:
    if table:
        return [(_("First rows"), f'SELECT * FROM "{table}" LIMIT 10'),
                (_("Count the rows"), f'SELECT count(*) AS row_count FROM "{table}"'),
                (_("Last rows"), f'SELECT * FROM "{table}" ORDER BY _id DESC LIMIT 10')]
    return [(_("Numbers without a table"), "SELECT range AS n, range * range AS square FROM range(10)"),
            (_("A query of a table"), 'SELECT * FROM "<resource id>" LIMIT 10')]


@bp.route("/sql")
def sql():
    """The SQL console: a query over the resources the caller may read, run by
    ``datastore_search_sql``; a refusal is shown with the action's reason."""
    ctx = request_context()
    resource_id = (request.args.get("resource_id") or "").strip() or None
    tables = _tables(ctx, resource_id)
    text = request.args.get("sql")
    ran = text is not None and text.strip() != ""
    if text is None:
        text = f'SELECT * FROM "{tables[0]["id"]}" LIMIT 10' if tables else ""
    result, error, status = None, None, 200
    if ran:
        try:
            result = call(ctx, "datastore_search_sql", {"sql": text})
        except MosuError as exc:  # shown where the result would be, as the API answers it (and recorded)
            status = http_status(exc)[0]
            record_refusal(exc, status, params={"sql": text})
            error = errors.translated(exc)
    return render_template("grid/sql.html", text=text, ran=ran, result=result, error=error, tables=tables,
                           resource_id=resource_id, examples=_examples(tables[0]["id"] if tables else None),
                           numeric=NUMERIC, formats=EXPORT_FORMATS,
                           export_url=url_for("grid.sql_export")), status
