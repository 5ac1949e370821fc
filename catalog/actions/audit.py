"""What compliance officers ask the audit log: its events, and four reports (a dataset, a user, the
grants, the refusals), each as JSON (CKAN's envelope) or, with ``format=csv|jsonl``, as a file.

Who may read: sysadmins and auditors every event; an organization's admins the events filed under
their organizations (:func:`catalog.access.policy.audit_scope`); everyone else is refused. Being an
auditor gives no data: these actions read the log, never a dataset's rows.

Every answer has ``columns`` and ``rows`` (one dict per row); the CSV and JSON-lines files hold
exactly those rows, in that column order. The queries are :mod:`catalog.records.reports`'.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.access import policy
from catalog.access.context import Context
from catalog.actions import action
from catalog.core import validate
from catalog.core.errors import NotFound, ValidationError
from catalog.datastore.exports import FORMATS, Export
from catalog.db import lookup
from catalog.db.models import AuditCheckpoint, AuditEvent, Group, Package, Resource, User, utcnow
from catalog.records import audit as audit_log
from catalog.records import reports

EVENTS_LIMIT, EVENTS_MAX, OFFSET_MAX = 100, 1000, 100_000
REPORT_MAX, DENIALS_LIMIT = 10_000, 1000
OUTPUTS = ("json", "csv", "jsonl")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# -- parameters -------------------------------------------------------------------------------------

def _format(data: dict[str, Any]) -> str:
    fmt = str(data.get("format") or "json").lower()
    if fmt not in OUTPUTS:
        raise ValidationError({"format": [f"Must be one of {', '.join(OUTPUTS)}"]})
    return fmt


def _time(value: Any, errors: validate.Errors, field: str) -> dt.datetime | None:
    """An ISO 8601 date or time (``2026-12-01``, ``2026-12-01T08:00:00+08:00``; naive is UTC), as naive UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, str) and len(value) <= 40:
        try:
            found = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return found.astimezone(dt.timezone.utc).replace(tzinfo=None) if found.tzinfo else found
    errors.add(field, "Must be an ISO 8601 date or time, e.g. 2026-12-01 or 2026-12-01T08:00:00Z")
    return None


def _period(data: dict[str, Any], errors: validate.Errors) -> tuple[dt.datetime | None, dt.datetime | None]:
    since, until = _time(data.get("since"), errors, "since"), _time(data.get("until"), errors, "until")
    if since and until and until <= since:
        errors.add("until", "Must be after since")
    return since, until


def _key(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise ValidationError({field: ["Must be a name or an id"]})
    return value.strip()


def _resolve(found: Any, key: str, what: str, scope: policy.AuditScope, org_of: Callable[[Any], str | None]) -> str:
    """The id events are filed under for ``key``: the object's, if it exists and the reader's scope
    covers it (an organization's admin is not told another organization's private names exist);
    else the key itself when it is an id (a purged dataset's events stay under its id); else Not Found."""
    if found is not None and (scope.everything or scope.covers(org_of(found))):
        return found.id
    if _UUID.match(key):
        return key
    raise NotFound(f"{what} not found")


def _dataset(s: Session, key: str, scope: policy.AuditScope) -> str:
    return _resolve(lookup.package(s, key), key, "Dataset", scope, lambda p: p.owner_org)


def _resource(s: Session, key: str, scope: policy.AuditScope) -> str:
    return _resolve(lookup.resource(s, key), key, "Resource", scope, lambda r: r.package.owner_org)


def _user(s: Session, key: str) -> str:
    return _resolve(lookup.user(s, key), key, "User", policy.AuditScope(everything=True), lambda u: None)


def _organization(s: Session, key: str, scope: policy.AuditScope) -> str:
    return _resolve(lookup.organization(s, key), key, "Organization", scope, lambda g: g.id)


def _filters(s: Session, data: dict[str, Any], scope: policy.AuditScope, errors: validate.Errors) -> reports.Filters:
    since, until = _period(data, errors)
    outcome = _key(data, "outcome")
    if outcome is not None and outcome not in audit_log.OUTCOMES:
        errors.add("outcome", f"Must be one of {', '.join(audit_log.OUTCOMES)}")
    events = tuple(validate.strings(data.get("event"), "event"))
    errors.raise_if_any()
    keys = {f: _key(data, f) for f in ("dataset", "resource", "user", "organization")}
    return reports.Filters(
        package_id=_dataset(s, keys["dataset"], scope) if keys["dataset"] else None,
        resource_id=_resource(s, keys["resource"], scope) if keys["resource"] else None,
        actor_id=_user(s, keys["user"]) if keys["user"] else None,
        org_id=_organization(s, keys["organization"], scope) if keys["organization"] else None,
        actions=events, outcome=outcome, since=since, until=until)


# -- answers ----------------------------------------------------------------------------------------

def _answer(name: str, fmt: str, columns: list[str], rows: list[dict[str, Any]], **extra: Any) -> Any:
    """The JSON result (``columns``, ``rows`` and ``extra``), or the rows as a CSV or JSON-lines file."""
    if fmt == "json":
        return {**extra, "columns": columns, "rows": [reports.plain(r) for r in rows]}
    content_type, extension = FORMATS[fmt]
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return Export(f"{name}-{stamp}.{extension}", content_type, iter([reports.WRITERS[fmt](columns, rows)]))


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _names(s: Session, model: Any, ids: set[str | None]) -> dict[str, str]:
    ids.discard(None)
    if not ids:
        return {}
    return dict(s.execute(select(model.id, model.name).where(model.id.in_(sorted(ids)))).all())


def _grouped(s: Session, query: Any, limit: int = REPORT_MAX) -> tuple[list[str], list[dict[str, Any]]]:
    result = s.execute(query.limit(limit))
    columns = list(result.keys())
    return columns, [dict(zip(columns, row)) for row in result]


def _report_request(data: dict[str, Any], what: str) -> tuple[str, str, dt.datetime | None, dt.datetime | None]:
    """The dataset and user reports' parameters: the format, the key of the ``what`` reported on
    (``id``, or ``what`` itself), and the period."""
    fmt = _format(data)
    errors = validate.Errors()
    since, until = _period(data, errors)
    errors.raise_if_any()
    key = _key(data, "id") or _key(data, what)
    if key is None:
        raise ValidationError({"id": ["Missing value"]})
    return fmt, key, since, until


def _totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """A dataset or user report's totals over its rows."""
    return {name: sum(r[name] for r in rows) for name in ("accesses", "rows", "refused")}


# -- actions ----------------------------------------------------------------------------------------

@action
def audit_event_list(ctx: Context, data: dict[str, Any]) -> Any:
    """Audit events, newest first. Filters: ``dataset`` and ``resource`` (name or id), ``user`` (name
    or id), ``organization`` (name or id), ``event`` (an event name or a list), ``outcome`` (ok,
    refused, failed), ``since`` (inclusive) and ``until`` (exclusive), ISO 8601, UTC unless an
    offset is given. ``limit`` (default 100, at most 1000), ``offset`` (at most 100,000; page
    further back with ``until``). ``format``: json (default), csv or jsonl.

    ``pair_exports`` (JSON only): each export's start event carries its end as ``end`` (time,
    outcome, ``rows``, ``bytes``, ``complete``, ``error``; null while it streams), found by request
    id, so an export reads as one event with its way of reading and what it took.

    Sysadmins and auditors read every event; an organization's admins those of its datasets."""
    fmt = _format(data)
    limit = validate.integer(data.get("limit"), "limit", EVENTS_LIMIT, 1, EVENTS_MAX)
    offset = validate.integer(data.get("offset"), "offset", 0, 0, OFFSET_MAX)
    errors = validate.Errors()
    pair = validate.boolean(data.get("pair_exports"), errors, "pair_exports", False)
    with ctx.platform.read() as s:
        scope = policy.audit_scope(s, ctx.actor)
        filters = _filters(s, data, scope, errors)
        found = [reports.event_row(r) for r in s.execute(reports.events(filters, scope.where(), limit + 1, offset))]
        more = len(found) > limit
        rows = found[:limit]
        ends = reports.ends_of(rows, scope.where()) if pair and fmt == "json" else None
        if ends is not None:
            rows = reports.paired(rows, [reports.event_row(r) for r in s.execute(ends)])
    return _answer("audit-events", fmt, list(reports.EVENT_COLUMNS), rows, limit=limit, offset=offset,
                   next_offset=offset + limit if more else None)


@action
def audit_report_dataset(ctx: Context, data: dict[str, Any]) -> Any:
    """Who read dataset ``id`` (name or id) in a period (``since``, ``until``): one row per user and way
    of reading (``via``, ``grant_id``, ``agreement_version_id``) with its ``accesses`` (``previews``,
    ``queries``, ``exports``, ``downloads``), the ``rows`` taken, ``refused`` attempts, ``first`` and
    ``last``; with the totals. ``user`` (name or id) narrows it to one reader.
    ``format``: json (default), csv or jsonl."""
    fmt, key, since, until = _report_request(data, "dataset")
    with ctx.platform.read() as s:
        scope = policy.audit_scope(s, ctx.actor)
        package_id = _dataset(s, key, scope)
        reader = _key(data, "user")
        columns, rows = _grouped(s, reports.dataset_accesses(package_id, scope.where(), since, until,
                                                             actor_id=_user(s, reader) if reader else None))
        name = s.scalar(select(Package.name).where(Package.id == package_id))
    totals = {**_totals(rows), "users": len({r["user_id"] or r["user"] for r in rows if r["accesses"]})}
    return _answer(f"audit-dataset-{name or package_id}", fmt, columns, rows,
                   dataset={"id": package_id, "name": name}, since=_iso(since), until=_iso(until), totals=totals)


@action
def audit_report_user(ctx: Context, data: dict[str, Any]) -> Any:
    """Everything user ``id`` (name or id) read in a period (``since``, ``until``), and was refused:
    one row per dataset, resource and way of reading, most recent first, with the dataset's and
    resource's names. ``format``: json (default), csv or jsonl."""
    fmt, key, since, until = _report_request(data, "user")
    with ctx.platform.read() as s:
        scope = policy.audit_scope(s, ctx.actor)
        user_id = _user(s, key)
        columns, rows = _grouped(s, reports.user_accesses(user_id, scope.where(), since, until))
        datasets = _names(s, Package, {r["package_id"] for r in rows})
        resources = _names(s, Resource, {r["resource_id"] for r in rows})
        name = s.scalar(select(User.name).where(User.id == user_id))
    for row in rows:
        row["dataset"], row["resource"] = datasets.get(row["package_id"]), resources.get(row["resource_id"])
    columns = ["package_id", "dataset", "resource_id", "resource", *columns[2:]]
    totals = {**_totals(rows), "datasets": len({r["package_id"] for r in rows if r["accesses"]})}
    return _answer(f"audit-user-{name or user_id}", fmt, columns, rows, user={"id": user_id, "name": name},
                   since=_iso(since), until=_iso(until), totals=totals)


@action
def audit_report_grants(ctx: Context, data: dict[str, Any]) -> Any:
    """Access grants and what happened under them: ``state`` at this instant (``active``, ``expiring``
    within ``days`` (default 30), ``expired``, ``revoked``; one or a list, default all), the accesses
    and rows under each, its last access, accesses naming it after its end (there should be none)
    and refused attempts by its grantee on its dataset after its end. Narrowed by ``dataset``,
    ``organization`` (the dataset's) and ``user`` (the grantee, a user). Ending soonest first.
    ``format``: json (default), csv or jsonl."""
    fmt = _format(data)
    days = validate.integer(data.get("days"), "days", reports.EXPIRING_DAYS, 0, 3650)
    states = validate.strings(data.get("state"), "state")
    if set(states) - set(reports.GRANT_STATES):
        raise ValidationError({"state": [f"Must be one or more of {', '.join(reports.GRANT_STATES)}"]})
    errors = validate.Errors()
    with ctx.platform.read() as s:
        scope = policy.audit_scope(s, ctx.actor)
        keys = {f: _key(data, f) for f in ("dataset", "organization", "user")}
        errors.raise_if_any()
        query = reports.grants(scope.where(Package.owner_org), scope.where(), utcnow(), states=states, days=days,
                               package_id=_dataset(s, keys["dataset"], scope) if keys["dataset"] else None,
                               org_id=_organization(s, keys["organization"], scope) if keys["organization"] else None,
                               grantee_id=_user(s, keys["user"]) if keys["user"] else None)
        columns, rows = _grouped(s, query)
        users = _names(s, User, {r["grantee_id"] for r in rows if r["grantee_type"] == "user"})
        orgs = _names(s, Group, {r["grantee_id"] for r in rows if r["grantee_type"] == "organization"})
    for row in rows:
        row["grantee"] = (users if row["grantee_type"] == "user" else orgs).get(row["grantee_id"])
    at = columns.index("grantee_id") + 1
    columns = [*columns[:at], "grantee", *columns[at:]]
    counts = {state: sum(1 for r in rows if r["state"] == state) for state in reports.GRANT_STATES}
    return _answer("audit-grants", fmt, columns, rows, days=days, totals=counts)


@action
def audit_report_denials(ctx: Context, data: dict[str, Any]) -> Any:
    """Refused calls in a period: one row per caller (user, or client address when anonymous),
    dataset and event name, with ``count``, ``first`` and ``last``; most first. Filters as
    :func:`audit_event_list`'s (``dataset``, ``resource``, ``user``, ``organization``, ``event``,
    ``since``, ``until``); ``limit`` (default 1000 rows, at most 10,000). ``format``: json, csv or jsonl."""
    fmt = _format(data)
    limit = validate.integer(data.get("limit"), "limit", DENIALS_LIMIT, 1, REPORT_MAX)
    errors = validate.Errors()
    with ctx.platform.read() as s:
        scope = policy.audit_scope(s, ctx.actor)
        filters = _filters(s, {**data, "outcome": None}, scope, errors)
        columns, rows = _grouped(s, reports.denials(filters, scope.where(), limit), limit)
        datasets = _names(s, Package, {r["package_id"] for r in rows})
        total = s.scalar(select(func.count()).select_from(AuditEvent).where(
            scope.where(), *reports.Filters(**{**filters.__dict__, "outcome": "refused"}).where()))
    for row in rows:
        row["dataset"] = datasets.get(row["package_id"])
    at = columns.index("package_id") + 1
    columns = [*columns[:at], "dataset", *columns[at:]]
    return _answer("audit-denials", fmt, columns, rows, totals={"refused": total or 0, "groups": len(rows)})


SUMMARY_DAYS, SUMMARY_DAYS_MAX, SUMMARY_TOP, SUMMARY_TOP_MAX = 30, 366, 5, 50


def _last_verify(s: Session) -> dict[str, Any] | None:
    """The last run of ``mosu audit verify``, from its ``audit_verified`` event (index on action, ts)."""
    event = s.scalars(select(AuditEvent).where(AuditEvent.action == "audit_verified")
                      .order_by(AuditEvent.ts.desc(), AuditEvent.seq.desc()).limit(1)).first()
    if event is None:
        return None
    d = event.detail or {}
    return {"time": event.ts.isoformat(), "seq": event.seq, "actor": event.actor, "intact": bool(d.get("intact")),
            "events": d.get("events"), "checkpoints": d.get("checkpoints"), "findings": d.get("findings", 0),
            "first_finding": d.get("first_finding"), "last_seq": d.get("last_seq"), "seconds": d.get("seconds")}


@action
def audit_summary(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """The compliance dashboard's figures over the last ``days`` UTC days (default 30, today included):
    ``accesses_by_day`` (every day, oldest first, zeros included), the ``top`` (default 5) datasets
    and users by accesses with the rows they took, refused calls by event name, and the log's state:
    its size, last signed checkpoint and ``last_verify``, the last run of ``mosu audit verify`` (its
    ``audit_verified`` event: time, ``intact``, events checked, ``findings`` and ``first_finding``; null
    when none ran). Aggregated by the database, so a page never fetches thousands of events to count
    them. Who may read: as the reports (an organization's admins see their datasets' figures, and no
    checkpoint or verification: they cover every organization's events)."""
    days = validate.integer(data.get("days"), "days", SUMMARY_DAYS, 1, SUMMARY_DAYS_MAX)
    top = validate.integer(data.get("top"), "top", SUMMARY_TOP, 1, SUMMARY_TOP_MAX)
    now = utcnow()
    first = (now - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    until = first + dt.timedelta(days=days)
    with ctx.platform.read() as s:
        scope = policy.audit_scope(s, ctx.actor)
        where = scope.where()
        per_day = {str(day)[:10]: n for day, n in s.execute(reports.accesses_by_day(where, first, until))}
        datasets = [dict(r._mapping) for r in s.execute(
            reports.top_readers(AuditEvent.package_id, where, first, until, top))]
        users = [dict(r._mapping) for r in s.execute(
            reports.top_readers(AuditEvent.actor_id, where, first, until, top, extra_keys=[AuditEvent.actor]))]
        refusals = [dict(r._mapping) for r in s.execute(reports.refusals_by_event(where, first, until))]
        packages = {p.id: p for p in s.scalars(select(Package).where(
            Package.id.in_(sorted({d["key"] for d in datasets}))))} if datasets else {}
        log = None
        if scope.everything:
            last = s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)).first()
            size = s.scalar(select(func.max(AuditEvent.seq))) or 0
            log = {"events": size, "last_verify": _last_verify(s), "checkpoint": None if last is None else {
                "tree_size": last.tree_size, "root_hash": last.root_hash, "key_id": last.key_id,
                "time": dt.datetime.fromtimestamp(last.timestamp / 1000, dt.timezone.utc).replace(tzinfo=None)
                .isoformat()}, "events_after_checkpoint": size - (last.tree_size if last else 0)}
    by_day = [{"day": (first + dt.timedelta(days=i)).date().isoformat(),
               "accesses": per_day.get((first + dt.timedelta(days=i)).date().isoformat(), 0)} for i in range(days)]
    return {"days": days, "since": first.isoformat(), "until": until.isoformat(), "accesses_by_day": by_day,
            "accesses": sum(d["accesses"] for d in by_day),
            "top_datasets": [{"package_id": d["key"], "dataset": getattr(packages.get(d["key"]), "name", None),
                              "title": getattr(packages.get(d["key"]), "title", None), "accesses": d["accesses"],
                              "rows": d["rows"]} for d in datasets],
            "top_users": [{"user_id": u["key"], "user": u["actor"], "accesses": u["accesses"], "rows": u["rows"]}
                          for u in users],
            "refusals": refusals, "refused": sum(r["count"] for r in refusals), "log": log}
