"""Access requests: a researcher asks for a restricted dataset; its managers approve or deny.

A request states a purpose and answers the dataset's agreement questions (kept verbatim, with
length limits: they are evidence), may ask for a shorter time than the dataset's ``grant_days``
and for some columns only, and names the agreement version the researcher saw. Approving it
makes an access grant (:mod:`catalog.actions.access_grants`) naming that version and the request.

Who sees a request: its requester and the dataset's managers (``manage-access``); to anyone else
it does not exist (Not Found). Only a pending request is decided or withdrawn, once.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access import policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.actions.access_grants import (
    approvers,
    columns,
    expiry,
    grant_dict,
    make_grant,
    note,
    require_grantable,
)
from catalog.actions.agreements import current
from catalog.core import agreements as rules
from catalog.core import jsoninput, levels, validate
from catalog.core.errors import Hidden, NotFound, ValidationError
from catalog.db import lookup
from catalog.db.dictize import iso
from catalog.db.models import AccessRequest, AgreementVersion, Package, User, utcnow
from catalog.records import audit
from catalog.records.notify import notify

STATES = ("pending", "approved", "denied", "withdrawn")
LIST_MAX = 1000


def request_dict(s: Session, req: AccessRequest) -> dict[str, Any]:
    pkg = s.get(Package, req.package_id)
    user = s.get(User, req.user_id)
    version = s.get(AgreementVersion, req.agreement_version_id) if req.agreement_version_id else None
    return {"id": req.id, "package_id": req.package_id, "package_name": pkg.name if pkg else None,
            "user_id": req.user_id, "user_name": user.name if user else None, "purpose": req.purpose,
            "answers": req.answers, "duration_days": req.duration_days, "columns": req.columns,
            "agreement_id": version.agreement_id if version else None,
            "agreement_version_id": req.agreement_version_id, "agreement_version": version.number if version else None,
            "state": req.state, "created": iso(req.created), "decided": iso(req.decided),
            "decided_by": req.decided_by, "decision_note": req.decision_note, "grant_id": req.grant_id}


def _requester(s: Session, ctx: Context, req: AccessRequest) -> bool:
    """Whether the caller acts as the request's requester (``manage-account`` on that account)."""
    user = s.get(User, req.user_id)
    return user is not None and policy.allowed(s, ctx.actor, Permission.MANAGE_ACCOUNT, user)


def _find(s: Session, ctx: Context, data: dict[str, Any], *, lock: bool = False) -> tuple[AccessRequest, Package, bool]:
    """The request ``id``, its dataset, and whether the caller is its requester; Not Found unless the
    caller is its requester or manages its dataset (a forged id and another's request look alike)."""
    policy.require_user(ctx.actor, "see access requests")
    req = s.get(AccessRequest, validate.required_id(data), with_for_update=lock)
    pkg = s.get(Package, req.package_id) if req is not None else None
    if req is None or pkg is None:
        raise NotFound("Access request not found")
    mine = _requester(s, ctx, req)
    if not mine and not policy.allowed(s, ctx.actor, Permission.MANAGE_ACCESS, pkg):
        raise Hidden("Access request not found")  # as a missing one; Hidden: the audit log's refusal
    return req, pkg, mine


def _decide(s: Session, ctx: Context, data: dict[str, Any]) -> tuple[AccessRequest, Package]:
    """A pending request the caller may decide on: its dataset's managers only."""
    req, pkg, _ = _find(s, ctx, data, lock=True)
    policy.require(s, ctx.actor, Permission.MANAGE_ACCESS, pkg,
                   denied="Access denied: only an admin or editor of the dataset's organization may decide "
                          "on its access requests")
    _require_pending(req)
    return req, pkg


def _require_pending(req: AccessRequest) -> None:
    if req.state != "pending":
        raise ValidationError({"id": [f"The request is already {req.state}; only a pending request can change"]})


def _answers(value: Any) -> Any:
    """Answers as an object; a form or query string sends them as JSON text."""
    if isinstance(value, str) and value.strip().startswith("{"):
        return jsoninput.loads(value)
    return value


def _tell(s: Session, req: AccessRequest, pkg: Package, kind: str, subject: str) -> None:
    notify(s, [req.user_id, *approvers(s, pkg.owner_org)], kind, subject,
           {"request_id": req.id, "package_id": pkg.id, **({"grant_id": req.grant_id} if req.grant_id else {})})


@action
def access_request_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Ask for access to restricted dataset ``package_id``: ``purpose`` (required, at most 10,000
    characters, kept verbatim), ``answers`` to its agreement's questions (``{"question id": answer}``;
    required questions must be answered, a choice must be one of its choices, yes/no is true/false),
    optional ``duration_days`` (at most the dataset's ``grant_days``, its default) and ``columns``
    (names that exist; default every column). One pending request per user and dataset. The request
    names the agreement version current now; the dataset's managers are notified."""
    actor = policy.require_user(ctx.actor, "ask for access to a dataset")
    errors = validate.Errors()
    with ctx.platform.write.begin() as s:
        pkg = policy.require(s, actor, Permission.VIEW_DATASET,
                             lookup.package(s, validate.required_id(data, "package_id")))
        require_grantable(pkg)
        if actor.id is None:
            raise ValidationError({"package_id": ["The site operator has no account to ask with"]})
        version = current(s, pkg.agreement_id)
        purpose = rules.required_text(data.get("purpose"), errors, "purpose", rules.PURPOSE_MAX)
        answers = rules.answers(version.questions if version else [], _answers(data.get("answers")), errors)
        longest = pkg.grant_days or levels.DEFAULT_GRANT_DAYS
        duration = None
        if data.get("duration_days") not in (None, ""):
            try:
                duration = validate.integer(data["duration_days"], "duration_days", longest, 1, longest)
            except ValidationError as exc:
                errors.add("duration_days", f"{exc.field_errors['duration_days'][0]} (the dataset grants at "
                                            f"most {longest} days at a time)")
        scope = columns(s, pkg, data.get("columns"), errors)
        pending = s.scalar(select(AccessRequest.id).where(
            AccessRequest.package_id == pkg.id, AccessRequest.user_id == actor.id, AccessRequest.state == "pending"))
        if pending is not None:
            errors.add("package_id", f"You already have a pending request for this dataset: {pending}")
        errors.raise_if_any()
        req = AccessRequest(package_id=pkg.id, user_id=actor.id, purpose=purpose, answers=answers,
                            duration_days=duration, columns=scope, agreement_version_id=version.id if version else None,
                            state="pending", created=utcnow(), decision_note="")
        s.add(req)
        s.flush()
        audit.record(s, ctx, "access_request_create", "access_request", req.id,
                     {"duration_days": duration, "columns": scope}, package_id=pkg.id, org_id=pkg.owner_org,
                     agreement_version_id=req.agreement_version_id)
        _tell(s, req, pkg, "access_request.created", f"{actor.name} asks for access to dataset {pkg.name}")
        return request_dict(s, req)


@action
def access_request_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Access requests, newest first: by default the caller's own; with ``package_id``, that
    dataset's (its managers only); with ``managed=true``, those for every dataset the caller manages.
    ``state`` (pending, approved, denied, withdrawn) filters; ``limit`` (default 100, max 1000), ``offset``."""
    errors = validate.Errors()
    managed = validate.boolean(data.get("managed"), errors, "managed")
    state = data.get("state")
    if state not in (None, "") and state not in STATES:
        errors.add("state", f"Must be one of {', '.join(STATES)}")
    errors.raise_if_any()
    limit = validate.integer(data.get("limit"), "limit", 100, 0, LIST_MAX)
    offset = validate.integer(data.get("offset"), "offset", 0)
    actor = policy.require_user(ctx.actor, "list access requests")
    with ctx.platform.read() as s:
        query = select(AccessRequest)
        if data.get("package_id") not in (None, ""):
            pkg = policy.require(s, actor, Permission.MANAGE_ACCESS, lookup.package(s, str(data["package_id"])),
                                 denied="Access denied: only an admin or editor of the dataset's organization "
                                        "may see its access requests")
            query = query.where(AccessRequest.package_id == pkg.id)
        elif managed:
            query = query.where(AccessRequest.package_id.in_(select(Package.id).where(
                policy.datasets_where(actor, Permission.MANAGE_ACCESS, public_grant=False))))
        else:
            user = s.get(User, actor.id) if actor.id is not None else None
            if user is None or not policy.allowed(s, actor, Permission.MANAGE_ACCOUNT, user):
                return []
            query = query.where(AccessRequest.user_id == user.id)
        if state not in (None, ""):
            query = query.where(AccessRequest.state == state)
        found = s.scalars(query.order_by(AccessRequest.created.desc(), AccessRequest.id).limit(limit).offset(offset))
        return [request_dict(s, r) for r in found]


@action
def access_request_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Access request ``id``, for its requester and its dataset's managers (Not Found to anyone else)."""
    with ctx.platform.read() as s:
        req, _, _ = _find(s, ctx, data)
        return request_dict(s, req)


@action
def access_request_approve(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Approve pending request ``id``: makes a grant to the requester until ``expires`` (ISO date or
    time, UTC) or for ``days``, by default the dataset's ``grant_days`` or the requested
    ``duration_days`` if shorter; optionally narrower ``columns`` (a subset of those requested) and
    a ``note``. The grant names the request and the agreement version the requester saw. Needs
    ``manage-access`` on the dataset. Returns the request, with ``grant`` (the new grant)."""
    errors = validate.Errors()
    with ctx.platform.write.begin() as s:
        req, pkg = _decide(s, ctx, data)
        require_grantable(pkg, "id")
        longest = pkg.grant_days or levels.DEFAULT_GRANT_DAYS
        expires = expiry(data, min(longest, req.duration_days or longest), errors)
        scope = req.columns
        if data.get("columns") not in (None, ""):
            scope = columns(s, pkg, data["columns"], errors, within=req.columns)
        text = note(data.get("note"), errors)
        errors.raise_if_any()
        grant = make_grant(s, ctx.actor, pkg, "user", req.user_id, expires, scope, req.agreement_version_id,
                           req.id, text)
        req.state, req.decided, req.decided_by = "approved", utcnow(), ctx.actor.id
        req.decision_note, req.grant_id = text, grant.id
        audit.record(s, ctx, "access_request_approve", "access_request", req.id,
                     {"user_id": req.user_id, "expires": iso(expires), "columns": scope}, package_id=pkg.id,
                     org_id=pkg.owner_org, grant_id=grant.id, agreement_version_id=req.agreement_version_id)
        _tell(s, req, pkg, "access_request.approved",
              f"Access to dataset {pkg.name} approved until {expires:%Y-%m-%d}")
        s.flush()
        return {**request_dict(s, req), "grant": grant_dict(s, grant)}


@action
def access_request_deny(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Deny pending request ``id`` with a ``reason`` (required; the requester reads it). Needs
    ``manage-access`` on the dataset."""
    errors = validate.Errors()
    with ctx.platform.write.begin() as s:
        req, pkg = _decide(s, ctx, data)
        reason = rules.required_text(data.get("reason"), errors, "reason", rules.REASON_MAX)
        errors.raise_if_any()
        req.state, req.decided, req.decided_by, req.decision_note = "denied", utcnow(), ctx.actor.id, reason
        audit.record(s, ctx, "access_request_deny", "access_request", req.id,
                     {"user_id": req.user_id, "reason": reason}, package_id=pkg.id, org_id=pkg.owner_org,
                     agreement_version_id=req.agreement_version_id)
        _tell(s, req, pkg, "access_request.denied", f"Access to dataset {pkg.name} denied")
        s.flush()
        return request_dict(s, req)


@action
def access_request_withdraw(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Withdraw your own pending request ``id``."""
    with ctx.platform.write.begin() as s:
        req, pkg, mine = _find(s, ctx, data, lock=True)
        if not mine:
            policy.require(s, ctx.actor, Permission.MANAGE_ACCOUNT, s.get(User, req.user_id),
                           denied="Access denied: only its requester may withdraw a request (deny it instead)")
        _require_pending(req)
        req.state, req.decided, req.decided_by = "withdrawn", utcnow(), ctx.actor.id
        audit.record(s, ctx, "access_request_withdraw", "access_request", req.id,
                     {"user_id": req.user_id}, package_id=pkg.id, org_id=pkg.owner_org,
                     agreement_version_id=req.agreement_version_id)
        _tell(s, req, pkg, "access_request.withdrawn", f"{_name(s, req)} withdrew the request for dataset {pkg.name}")
        s.flush()
        return request_dict(s, req)


def _name(s: Session, req: AccessRequest) -> str:
    user = s.get(User, req.user_id)
    return user.name if user else "the requester"

