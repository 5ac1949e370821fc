"""Access to restricted and registered datasets as pages: accept terms, request access, decide.

A researcher accepts a ``registered`` dataset's terms in one click, asks for a ``restricted`` one
with the agreement's text and questions in front of them, and follows their requests and grants on
"My access". A provider (an admin or editor of the dataset's organization) reads the requests of the
datasets they manage, approves them (expiry, column scope) or denies them with a reason, and revokes
grants. Every page calls the same actions as the API (``agreement_accept``, ``access_request_*``,
``access_grant_*``): who may see or decide what is theirs to say, never this module's.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape

from catalog.access.context import Context
from catalog.actions import call
from catalog.api.session import request_context
from catalog.core.errors import NotAuthorized, NotFound, ValidationError
from webui.account import signed_in_or_redirect as _signed_in

bp = Blueprint("access", __name__)

REQUEST_STATES = ("pending", "approved", "denied", "withdrawn")
GRANT_STATES = ("active", "expired", "revoked")


def _list_filters(values: Any, default: str, states: tuple[str, ...]) -> tuple[str, str, dict[str, Any]]:
    """(state shown, dataset asked for, the list action's arguments) of an inbox or grants page: one
    state or ``all``, and one dataset or every dataset the caller manages (pure over ``values``)."""
    state = values.get("state", default)
    args: dict[str, Any] = {"limit": 1000}
    if state in states:
        args["state"] = state
    else:
        state = "all"
    dataset = values.get("dataset", "").strip()
    if dataset:
        args["package_id"] = dataset
    else:
        args["managed"] = True
    return state, dataset, args
QUESTION_ERROR = re.compile(r"^Question '([A-Za-z0-9_-]{1,64})'")




# -- Markdown, a safe subset -----------------------------------------------------------------------

_INLINE = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|\*(.+?)\*|\[([^\]]+)\]\((https?://[^\s)]+)\)")


def _inline(text: str) -> Markup:
    """One line's inline Markdown: code, bold, italic and http(s) links; everything else is text."""
    out, last = [], 0
    for m in _INLINE.finditer(text):
        out.append(escape(text[last:m.start()]))
        code, bold, italic, label, href = m.groups()
        if code is not None:
            out.append(Markup("<code>{}</code>").format(code))
        elif bold is not None:
            out.append(Markup("<strong>{}</strong>").format(bold))
        elif italic is not None:
            out.append(Markup("<em>{}</em>").format(italic))
        else:
            out.append(Markup('<a href="{}" rel="nofollow noopener">{}</a>').format(href, label))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@bp.app_template_filter("agreement_markdown")
def agreement_markdown(text: str | None) -> Markup:
    """An agreement's Markdown as HTML from a safe subset (pure): headings, paragraphs, bulleted and
    numbered lists, code, bold, italic and http(s) links. Every character of the text is escaped
    first, so HTML written into the terms shows as text and a ``javascript:`` link stays text."""
    blocks: list[Markup] = []
    para: list[str] = []
    items: list[str] = []
    kind = ""

    def flush() -> None:
        nonlocal kind
        if para:
            blocks.append(Markup("<p>{}</p>").format(Markup("<br>").join(_inline(p) for p in para)))
            para.clear()
        if items:
            inner = Markup("").join(Markup("<li>{}</li>").format(_inline(i)) for i in items)
            blocks.append(Markup("<{0}>{1}</{0}>").format(Markup(kind), inner))
            items.clear()
        kind = ""

    for raw in (text or "").splitlines():
        line = raw.strip()
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        bullet = re.match(r"^[-*+]\s+(.*)$", line)
        number = re.match(r"^\d{1,9}[.)]\s+(.*)$", line)
        if not line:
            flush()
        elif heading:
            flush()
            level = min(len(heading.group(1)) + 2, 6)  # under the page's own h1 and h2
            blocks.append(Markup("<h{0}>{1}</h{0}>").format(level, _inline(heading.group(2))))
        elif bullet or number:
            wanted = "ul" if bullet else "ol"
            if para or (kind and kind != wanted):
                flush()
            kind = wanted
            items.append((bullet or number).group(1))
        elif items:
            items[-1] += " " + line
        else:
            para.append(line)
    flush()
    return Markup("\n").join(blocks)


# -- researchers -------------------------------------------------------------------------------------

@bp.route("/dataset/<dataset_id>/access/accept", methods=["POST"])
def accept(dataset_id: str):
    """Accept a dataset's current terms (its agreement's current version, or its licence): what a
    ``registered`` dataset asks before its rows. Back to the dataset page, which then says so."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    pkg = call(ctx, "package_show", {"id": dataset_id})
    call(ctx, "agreement_accept", {"package_id": pkg["id"]})
    return redirect(url_for("webui.dataset", dataset_id=pkg["name"]) + "#access", code=303)


@bp.route("/agreement/<agreement_id>")
def agreement(agreement_id: str):
    """An agreement's full terms (public: terms are read before anything is asked)."""
    args = {"id": agreement_id}
    if request.args.get("version"):
        args["version"] = request.args["version"]
    found = call(request_context(), "agreement_show", args)
    return render_template("access/agreement.html", agreement=found)


def _answers(questions: list[dict[str, Any]], form) -> dict[str, Any]:
    """The form's answers as the action takes them: text as typed, a choice's value, yes/no as a
    boolean; an unanswered question is left out (the action says whether it had to be answered)."""
    out: dict[str, Any] = {}
    for q in questions:
        value = form.get(f"answer-{q['id']}")
        if value is None or (q["type"] != "text" and value == "") or (q["type"] == "text" and not value.strip()):
            continue
        out[q["id"]] = {"yes": True, "no": False}.get(value, value) if q["type"] == "yesno" else value
    return out


def _request_errors(exc: ValidationError) -> dict[str, list[str]]:
    """The action's field errors keyed by form field: an answer's error goes next to its question."""
    out: dict[str, list[str]] = {}
    for field, messages in exc.field_errors.items():
        for message in messages:
            found = QUESTION_ERROR.match(message) if field == "answers" else None
            out.setdefault(f"answer-{found.group(1)}" if found else field, []).append(message)
    return out


@bp.route("/dataset/<dataset_id>/access/request", methods=["GET", "POST"])
def request_form(dataset_id: str):
    """Ask for access to a restricted dataset: its agreement's full text and questions, a purpose and
    an optional shorter duration. The action checks everything; its errors come back next to fields."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    pkg = call(ctx, "package_show", {"id": dataset_id})
    terms = None
    if pkg.get("agreement_id"):
        try:
            terms = call(ctx, "agreement_show", {"id": pkg["agreement_id"]})
        except NotFound:  # its organization withdrew it: the licence is the terms, the action decides the rest
            terms = None
    questions = terms["questions"] if terms else []
    page = {"pkg": pkg, "terms": terms, "questions": questions, "access": pkg.get("access") or {}}
    if request.method == "GET":
        return render_template("access/request.html", form={}, errors={}, **page)
    args: dict[str, Any] = {"package_id": pkg["id"], "purpose": request.form.get("purpose", ""),
                            "answers": _answers(questions, request.form)}
    if request.form.get("duration_days", "").strip():
        args["duration_days"] = request.form["duration_days"].strip()
    try:
        call(ctx, "access_request_create", args)
    except ValidationError as exc:
        return render_template("access/request.html", form=request.form, errors=_request_errors(exc), **page), 409
    return redirect(url_for("access.mine", sent=pkg["name"]), code=303)


@bp.route("/user/me/access")
def mine():
    """My requests (with their states and the decision's reason) and my grants (expiry, columns)."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    requests = call(ctx, "access_request_list", {"limit": 1000})
    grants = call(ctx, "access_grant_list", {"limit": 1000})
    return render_template("access/mine.html", requests=requests, grants=grants, sent=request.args.get("sent"))


@bp.route("/user/me/access/requests/<request_id>/withdraw", methods=["POST"])
def withdraw(request_id: str):
    return _submit("access_request_withdraw", lambda ctx: {"id": request_id}, None, lambda: url_for("access.mine"))


def _submit(action: str, args: Callable[[Context], dict[str, Any]],
            refused: Callable[[Context, ValidationError], Any] | None, then: Callable[[], str]):
    """The form handlers' one shape: the signed-in caller calls ``action`` with ``args(ctx)``; a
    Validation Error goes to ``refused`` (the form again, with the messages, 409), else the page
    ``then()`` names is shown (303, so a reload does not submit again)."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    try:
        call(ctx, action, args(ctx))
    except ValidationError as exc:
        if refused is None:
            raise
        return refused(ctx, exc)
    return redirect(then(), code=303)


# -- providers ---------------------------------------------------------------------------------------

@bp.route("/access/requests")
def inbox():
    """The access requests of the datasets the caller manages (or of one, ``dataset``: its managers
    only, others get the action's refusal), pending first by default."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    state, dataset, args = _list_filters(request.args, "pending", REQUEST_STATES)
    found = call(ctx, "access_request_list", args)
    return render_template("access/inbox.html", requests=found, state=state, dataset=dataset,
                           states=REQUEST_STATES)


def _columns(ctx: Context, pkg: dict[str, Any]) -> list[dict[str, Any]]:
    """The dataset's columns from its data dictionary (``datastore_info`` of each published
    resource, as the provider reads them): name and label, each once."""
    seen: dict[str, dict[str, Any]] = {}
    for res in pkg["resources"]:
        if not res.get("datastore_active"):
            continue
        try:
            info = call(ctx, "datastore_info", {"id": res["id"]})
        except (NotAuthorized, NotFound):
            continue
        for f in info["fields"]:
            if f["id"] != "_id" and f["id"] not in seen:
                seen[f["id"]] = {"id": f["id"], "label": (f.get("info") or {}).get("label") or ""}
    return list(seen.values())


def _decider(ctx: Context, req: dict[str, Any]) -> bool:
    """Whether the caller decides on ``req``'s dataset, as the action sees it (its request list for
    that dataset is for its managers only)."""
    try:
        call(ctx, "access_request_list", {"package_id": req["package_id"], "limit": 0})
    except (NotAuthorized, NotFound):
        return False
    return True


def _review(ctx: Context, request_id: str, errors: dict[str, list[str]] | None = None, form=None,
            status: int = 200):
    req = call(ctx, "access_request_show", {"id": request_id})
    pkg = call(ctx, "package_show", {"id": req["package_id"]})
    terms = None
    if req.get("agreement_id"):
        terms = call(ctx, "agreement_show", {"id": req["agreement_id"], "version": req["agreement_version"]})
    decider = _decider(ctx, req)
    columns = _columns(ctx, pkg) if decider and req["state"] == "pending" else []
    if req.get("columns"):
        columns = [c for c in columns if c["id"] in req["columns"]]
    default_days = min(pkg.get("grant_days") or 365, req.get("duration_days") or pkg.get("grant_days") or 365)
    return render_template("access/review.html", req=req, pkg=pkg, terms=terms, decider=decider, columns=columns,
                           default_days=default_days, errors=errors or {}, form=form or {}), status


@bp.route("/access/requests/<request_id>")
def review(request_id: str):
    """One request: purpose, answers next to their questions, and (for its deciders) approve or deny."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    return _review(ctx, request_id)


@bp.route("/access/requests/<request_id>/approve", methods=["POST"])
def approve(request_id: str):
    """Approve with an expiry (days, or a date) and the columns left ticked (all ticked: every column)."""
    def args(ctx: Context) -> dict[str, Any]:
        req = call(ctx, "access_request_show", {"id": request_id})
        out: dict[str, Any] = {"id": request_id, "note": request.form.get("note", "")}
        if request.form.get("expires", "").strip():
            out["expires"] = request.form["expires"].strip()
        else:
            out["days"] = request.form.get("days", "").strip()
        offered = request.form.getlist("offered")
        chosen = request.form.getlist("columns")
        if offered and (chosen != offered or req.get("columns")):
            out["columns"] = chosen  # an empty list is the action's error: at least one column
        return out

    return _submit("access_request_approve", args,
                   lambda ctx, exc: _review(ctx, request_id, exc.field_errors, request.form, 409),
                   lambda: url_for("access.review", request_id=request_id))


@bp.route("/access/requests/<request_id>/deny", methods=["POST"])
def deny(request_id: str):
    def refused(ctx: Context, exc: ValidationError):
        errors = {("deny_reason" if k == "reason" else k): v for k, v in exc.field_errors.items()}
        return _review(ctx, request_id, errors, request.form, 409)

    return _submit("access_request_deny", lambda ctx: {"id": request_id, "reason": request.form.get("reason", "")},
                   refused, lambda: url_for("access.review", request_id=request_id))


@bp.route("/access/grants")
def grants():
    """The grants on the datasets the caller manages (or on one, ``dataset``), with revoke."""
    ctx, away = _signed_in()
    if away is not None:
        return away
    return _grants(ctx)


def _grants(ctx: Context, errors: dict[str, dict[str, list[str]]] | None = None, status: int = 200):
    state, dataset, args = _list_filters(request.values, "active", GRANT_STATES)
    found = call(ctx, "access_grant_list", args)
    return render_template("access/grants.html", grants=found, state=state, dataset=dataset,
                           errors=errors or {}), status


@bp.route("/access/grants/<grant_id>/revoke", methods=["POST"])
def revoke(grant_id: str):
    """End a grant now; the reason (required) is told to the grantee."""
    back = {k: request.form[k] for k in ("state", "dataset") if request.form.get(k)}
    return _submit("access_grant_revoke", lambda ctx: {"id": grant_id, "reason": request.form.get("reason", "")},
                   lambda ctx, exc: _grants(ctx, {grant_id: exc.field_errors}, 409),
                   lambda: url_for("access.grants", **back))


def state_label(state: str | None) -> str:
    """A request's or grant's state in the page's language."""
    labels = {"pending": _("pending"), "approved": _("approved"), "denied": _("denied"),
              "withdrawn": _("withdrawn"), "active": _("active"), "expired": _("expired"),
              "revoked": _("revoked"), "all": _("all")}
    return labels.get(state or "", state or "")


bp.add_app_template_global(state_label, "access_state")
