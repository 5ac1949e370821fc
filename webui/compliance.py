"""The compliance officer's pages: a dashboard of the audit log and its reports, with filters and exports.

Every figure comes from the audit actions (``audit_summary``, ``audit_event_list`` and the
``audit_report_*`` reports), called as the signed-in user: who may read what is the actions' rule
(sysadmins and auditors everything, an organization's admins their datasets'), so a page shows
exactly what the API would answer, and a refused caller gets the refusal page, never a figure. The
exports are the same actions with ``format=csv|jsonl``, streamed as a download by a page route
(a plain link cannot send the API's CSRF header).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, render_template, request

from catalog.actions import call
from catalog.api.session import request_context
from catalog.core import auditvocab
from catalog.core.errors import NotAuthorized, NotFound, ValidationError
from webui.account import signed_in_or_redirect as _signed_in

bp = Blueprint("compliance", __name__)

CHART_DAYS = 30
EXPIRING_DAYS = 14
EVENTS_PER_PAGE = 100
KINDS: dict[str, tuple[str, ...]] = {
    **auditvocab.READ_KINDS,
    "refusals": ("access_denied", "sql_refused", "rate_limited"),
    "sign_in_failures": ("sign_in_failure",),
    "access": ("access_request_create", "access_request_approve", "access_request_deny", "access_grant_create",
               "access_grant_revoke"),
}
"""The event kinds a filter offers -> the event names of the vocabulary they stand for (the reads'
kinds are the reports' own)."""
READ_KINDS = tuple(auditvocab.READ_KINDS)
REFUSAL_EVENTS = ("access_denied", "sql_refused", "rate_limited", "sign_in_failure")
GRANT_STATES = auditvocab.GRANT_STATES
REPORTS = {"events": "audit_event_list", "dataset": "audit_report_dataset", "user": "audit_report_user",
           "grants": "audit_report_grants", "denials": "audit_report_denials"}
"""A report page's name -> its action."""
FILTERS = {"events": ("dataset", "user", "since", "to", "kind", "outcome"),
           "dataset": ("dataset", "user", "since", "to", "kind"),
           "user": ("user", "since", "to"),
           "grants": ("dataset", "user", "state", "days"),
           "denials": ("dataset", "user", "since", "to", "kind")}
"""The filters each report page shows (``to`` is the last day included)."""
FIELD_OF = {"id": None, "until": "to", "event": "kind", "format": None}
"""An action's parameter -> the form field its validation error is shown next to."""




def _day_after(value: str) -> str:
    """The day after the ISO date ``value`` (the form's "to" day is included; the actions' ``until``
    is not), or ``value`` itself when it is not a date, for the action to refuse by name."""
    try:
        return (dt.date.fromisoformat(value) + dt.timedelta(days=1)).isoformat()
    except ValueError:
        return value


def form_values(report: str, args: Any) -> dict[str, Any]:
    """What the filter form of ``report`` holds, from the query string (pure over ``args``)."""
    out: dict[str, Any] = {}
    for name in FILTERS[report]:
        if name in ("kind", "state"):
            out[name] = [v for v in args.getlist(name) if v in (KINDS if name == "kind" else GRANT_STATES)]
        else:
            out[name] = (args.get(name) or "").strip()[:200]
    return out


def action_params(report: str, form: dict[str, Any], offset: int = 0) -> dict[str, Any]:
    """The action's parameters for the filters ``form`` of ``report`` (pure)."""
    params: dict[str, Any] = {}
    if form.get("since"):
        params["since"] = form["since"]
    if form.get("to"):
        params["until"] = _day_after(form["to"])
    events = [name for kind in form.get("kind", ()) for name in KINDS[kind]]
    if report == "events":
        params.update({k: form[k] for k in ("dataset", "user", "outcome") if form.get(k)})
        params.update(limit=EVENTS_PER_PAGE, offset=offset)
        if events:
            params["event"] = events
    elif report == "dataset":
        params["id"] = form["dataset"]
        if form.get("user"):
            params["user"] = form["user"]
    elif report == "user":
        params["id"] = form["user"]
    elif report == "grants":
        params.update({k: form[k] for k in ("dataset", "user") if form.get(k)})
        if form.get("state"):
            params["state"] = form["state"]
        if form.get("days"):
            params["days"] = form["days"]
    elif report == "denials":
        params.update({k: form[k] for k in ("dataset", "user") if form.get(k)})
        if events:
            params["event"] = events
    return params


def _field_errors(exc: ValidationError | NotFound, report: str) -> dict[str, list[str]]:
    """A refused filter's message next to its field."""
    if isinstance(exc, NotFound):
        return {"user" if exc.message.startswith("User") else "dataset": [exc.message]}
    out: dict[str, list[str]] = {}
    for field, messages in exc.field_errors.items():
        name = FIELD_OF.get(field, field) or ("user" if report == "user" else "dataset")
        out.setdefault(name if name in FILTERS[report] else "dataset", []).extend(messages)
    return out


@bp.app_template_global()
def may_read_access_history(pkg: dict) -> bool:
    """Whether the caller may read dataset ``pkg``'s access history (the dataset page's link): asked
    of the action itself, for one event, so the link shows exactly to those it would answer."""
    ctx = request_context()
    if ctx.actor is None:
        return False
    if ctx.actor.sysadmin or ctx.actor.auditor:
        return True
    try:
        call(ctx, "audit_event_list", {"dataset": pkg["id"], "limit": 1})
    except (NotAuthorized, NotFound):
        return False
    return True


@bp.app_template_global()
def chart_bars(days: list[dict], width: int = 600, height: int = 160) -> list[dict[str, Any]]:
    """The geometry of the dashboard's bars, one per day, from the day's accesses (pure)."""
    top = max((d["accesses"] for d in days), default=0) or 1
    step = width / max(len(days), 1)
    return [{"x": round(i * step + 1, 2), "w": round(max(step - 2, 1), 2),
             "h": round(height * d["accesses"] / top, 2), "y": round(height - height * d["accesses"] / top, 2),
             "day": d["day"], "accesses": d["accesses"]} for i, d in enumerate(days)]


@bp.route("/compliance")
def dashboard():
    """Accesses over the last 30 days, top datasets and users, refusals, grants ending soon and
    attempts after a grant's end, and the audit log's last checkpoint."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    summary = call(ctx, "audit_summary", {"days": CHART_DAYS})
    refusals = call(ctx, "audit_event_list", {"event": list(REFUSAL_EVENTS), "outcome": "refused", "limit": 10,
                                              "since": summary["since"]})
    expiring = call(ctx, "audit_report_grants", {"state": "expiring", "days": EXPIRING_DAYS})
    ended = call(ctx, "audit_report_grants", {"state": ["expired", "revoked"]})
    attempts = [g for g in ended["rows"] if g["attempts_after_end"] or g["accesses_after_end"]]
    return render_template("compliance/dashboard.html", summary=summary, refusals=refusals["rows"],
                           expiring=expiring["rows"], attempts=attempts, expiring_days=EXPIRING_DAYS,
                           refusal_events=REFUSAL_EVENTS,
                           refusal_counts={r["event"]: r["count"] for r in summary["refusals"]})


@bp.route("/compliance/<any(events, dataset, user, grants, denials):report>")
def report_page(report: str):
    """A report with its filters, and links to export exactly its rows as CSV or JSON lines."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    form = form_values(report, request.args)
    offset = max(0, min(request.args.get("offset", 0, type=int) or 0, 100_000))
    page = {"report": report, "form": form, "kinds": KINDS, "states": GRANT_STATES, "offset": offset,
            "per_page": EVENTS_PER_PAGE}
    if report in ("dataset", "user") and not form.get(report):
        return render_template("compliance/report.html", **page, result=None)
    try:
        result = call(ctx, REPORTS[report], action_params(report, form, offset))
        reads = None
        if report == "dataset":  # the reads themselves, newest first, as the filters narrow them
            kinds = form["kind"] or list(READ_KINDS)
            reads = call(ctx, "audit_event_list", {**action_params("events", {**form, "kind": kinds}),
                                                   "dataset": result["dataset"]["id"], "pair_exports": True})
    except (ValidationError, NotFound) as exc:  # a filter naming nothing, or a bad date: said next to it
        return render_template("compliance/report.html", **page, result=None,
                               errors=_field_errors(exc, report)), 409 if isinstance(exc, ValidationError) else 404
    return render_template("compliance/report.html", **page, result=result, reads=reads, errors={})


@bp.route("/compliance/<any(events, dataset, user, grants, denials):report>/export.<any(csv, jsonl):fmt>")
def export(report: str, fmt: str):
    """The report's rows as a file: the action's own CSV or JSON lines, as the signed-in user."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    form = form_values(report, request.args)
    offset = max(0, min(request.args.get("offset", 0, type=int) or 0, 100_000))
    result = call(ctx, REPORTS[report], {**action_params(report, form, offset), "format": fmt})
    response = current_app.response_class(result.chunks, content_type=result.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    return response


def export_args(report: str, form: dict[str, Any], offset: int) -> dict[str, Any]:
    """The query string of a report's export links: its filters as the page has them (pure)."""
    args: dict[str, Any] = {k: v for k, v in form.items() if v}
    if report == "events" and offset:
        args["offset"] = offset
    return args


bp.add_app_template_global(export_args)
