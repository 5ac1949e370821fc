"""The compliance officer's questions as SQL over the audit log, and their answers as CSV or JSON lines.

Pure builders: each function takes filters (ids already resolved, times as naive UTC) and the
reader's scope clause (:meth:`catalog.access.policy.AuditScope.where`) and returns a SQLAlchemy
``Select``; :mod:`catalog.actions.audit` runs them and resolves names. Every query starts from
an indexed column of :class:`~catalog.db.models.AuditEvent` — ``(package_id, ts)`` for a dataset,
``(actor_id, ts)`` for a user, ``(outcome, ts)`` for denials, ``(grant_id)`` for a grant's reads,
``(ts)`` for the newest events — so each report over 1,000,000 events answers within
milliseconds, not a table scan (``bench/audit_reports.py`` prints the figures and the query plans).

What counts as a read is the vocabulary's (:mod:`catalog.records.events`): the events of its
``read`` category, or, before it has categories, :data:`READS`. *Accesses* count the events that
start a read (:data:`READS`: a preview page, a query, an export, a download URL); the ``rows`` an
access took are summed over every read event that carries them (a preview's, a query's, an
export's completion event), so an export is counted once and its rows once.

Refusals are events with outcome ``refused``, whatever their name; their grant id may be null
(nothing allowed them), so a grant's attempts after its end are matched by grantee and dataset.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from sqlalchemy import BigInteger, ColumnElement, Select, and_, case, cast, func, literal_column, or_, select

from catalog.core.auditvocab import EXPORT_ENDS, READ_KINDS, READS
from catalog.core.auditvocab import GRANT_STATES as GRANT_STATES  # the reports answer these states
from catalog.db.models import AccessGrant, AuditEvent, Member, Package

KINDS = READ_KINDS
"""Accesses by kind, the columns of the dataset and user reports."""
EXPIRING_DAYS = 30


READ_CATEGORIES = ("read", "read_end")
"""The vocabulary's categories of reads: their start, and the end of a streamed export (its rows)."""


def read_actions() -> tuple[str, ...]:
    """Every event name that is a read of data: the vocabulary's :data:`READ_CATEGORIES` (start and
    end events) when it defines categories, with :data:`READS` always among them."""
    from catalog.records import events

    names: set[str] = set(READS)
    for name, definition in dict(getattr(events, "EVENTS", None) or {}).items():
        if getattr(definition, "category", None) in READ_CATEGORIES:
            names.add(name)
    return tuple(sorted(names))


def _via() -> ColumnElement[str]:
    """How the caller read (:attr:`AuditEvent.via`, derived from the detail by the database)."""
    return AuditEvent.via


def _rows() -> ColumnElement[Any]:
    """Rows a read returned or an export sent (:attr:`AuditEvent.rows`, derived from the detail)."""
    return AuditEvent.rows


REFUSED = literal_column("'refused'")
"""The outcome of refusals as a literal: the refusals' partial index applies only when SQLite sees it."""


@dataclass(frozen=True)
class Filters:
    """What an event list or a report is narrowed to (each None or empty: no narrowing). ``since``
    is inclusive, ``until`` exclusive, both naive UTC."""

    package_id: str | None = None
    resource_id: str | None = None
    actor_id: str | None = None
    org_id: str | None = None
    actions: tuple[str, ...] = ()
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        ev = AuditEvent
        out: list[ColumnElement[bool]] = []
        for column, value in ((ev.package_id, self.package_id), (ev.resource_id, self.resource_id),
                              (ev.actor_id, self.actor_id), (ev.org_id, self.org_id), (ev.outcome, self.outcome)):
            if value is not None:
                out.append(column == value)
        if self.actions:
            out.append(ev.action == self.actions[0] if len(self.actions) == 1 else ev.action.in_(self.actions))
        if self.since is not None:
            out.append(ev.ts >= self.since)
        if self.until is not None:
            out.append(ev.ts < self.until)
        return out


EVENT_COLUMNS: tuple[str, ...] = (
    "seq", "id", "ts", "action", "outcome", "actor", "actor_id", "role", "client", "user_agent", "request_id",
    "object_type", "object_id", "package_id", "resource_id", "org_id", "grant_id", "agreement_version_id",
    "detail", "prev_hash", "hash")
"""An event as the list shows it: every column, the hashes too (so a listed event can be checked)."""


def events(filters: Filters, scope: ColumnElement[bool], limit: int, offset: int = 0) -> Select:
    """Events matching ``filters`` within ``scope``, newest first (``ts``, then ``seq``: the writer's
    order for events of the same instant)."""
    columns = [getattr(AuditEvent, c) for c in EVENT_COLUMNS]
    return (select(*columns).where(scope, *filters.where())
            .order_by(AuditEvent.ts.desc(), AuditEvent.seq.desc()).limit(limit).offset(offset))


def event_row(row: Any) -> dict[str, Any]:
    """One listed event as a dict (times ISO 8601, UTC)."""
    out = dict(zip(EVENT_COLUMNS, row))
    out["ts"] = _iso(out["ts"])
    return out


def ends_of(starts: Sequence[dict[str, Any]], scope: ColumnElement[bool]) -> Select | None:
    """The end events of the exports among listed events ``starts`` (:func:`event_row` dicts), found
    by their request id (ends are recorded after their start: the ``(action, ts)`` index from the
    oldest start on), or None when no listed event starts an export."""
    exports = [e for e in starts if e["action"] in EXPORT_ENDS and e.get("request_id")]
    if not exports:
        return None
    ev = AuditEvent
    oldest = min(dt.datetime.fromisoformat(e["ts"]) for e in exports)
    return select(*(getattr(ev, c) for c in EVENT_COLUMNS)).where(
        scope, ev.action.in_(sorted({EXPORT_ENDS[e["action"]] for e in exports})), ev.ts >= oldest,
        ev.request_id.in_(sorted({e["request_id"] for e in exports})))


def paired(starts: list[dict[str, Any]], ends: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``starts`` with each export's end (same request id, the name its start's :data:`EXPORT_ENDS`
    says) as ``end``: its time, outcome, ``rows``, ``bytes``, ``complete`` and ``error``; None while
    the export streams, or when its end could not be recorded (pure)."""
    found = {(e["request_id"], e["action"]): e for e in ends}
    out = []
    for event in starts:
        if event["action"] in EXPORT_ENDS:
            end = found.get((event.get("request_id"), EXPORT_ENDS[event["action"]]))
            detail = (end or {}).get("detail") or {}
            event = {**event, "end": None if end is None else {
                "ts": end["ts"], "outcome": end["outcome"], "rows": detail.get("rows"), "bytes": detail.get("bytes"),
                "complete": detail.get("complete"), "error": detail.get("error")}}
        out.append(event)
    return out


def _count_of(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)


def _access_columns(ends: Any) -> list[Any]:
    """The aggregates of the dataset and user reports: accesses (all, and by kind), rows taken,
    refused attempts, first and last time. ``ends`` is the :func:`export_ends` joined to each export's
    start: an export's rows are its end's, counted on its start's row (its way of reading)."""
    ev = AuditEvent
    ok = ev.outcome == "ok"
    cols: list[Any] = [_count_of(ok, ev.action.in_(READS)).label("accesses")]
    cols += [_count_of(ok, ev.action.in_(names)).label(kind) for kind, names in KINDS.items()]
    taken = and_(ev.outcome != REFUSED, ev.action.in_(READS))
    rows = func.coalesce(_rows(), 0) + func.coalesce(ends.c.rows, 0)  # an export stopped early took rows too
    # cast: PostgreSQL sums a bigint as numeric (a Decimal, shown as text in JSON)
    cols += [cast(func.coalesce(func.sum(case((taken, rows), else_=0)), 0), BigInteger).label("rows"),
             _count_of(ev.outcome == REFUSED).label("refused"),
             func.min(ev.ts).label("first"), func.max(ev.ts).label("last")]
    return cols


def _reads_or_refusals() -> ColumnElement[bool]:
    return or_(AuditEvent.action.in_(READS), AuditEvent.outcome == REFUSED)


def export_ends(scope: ColumnElement[bool], *where: ColumnElement[bool]) -> Any:
    """The ends of exports (the ``..._end`` events: ``request_id``, ``start``, the name of the event
    that began it, and ``rows``) within ``scope`` and ``where``, as a subquery to join to their
    starts by request id: the end records what was taken, its start how it was allowed (``via``)."""
    ev = AuditEvent
    start = case(*((ev.action == end, begun) for begun, end in EXPORT_ENDS.items()))
    return (select(ev.request_id.label("request_id"), start.label("start"), _rows().label("rows"))
            .where(scope, ev.action.in_(tuple(EXPORT_ENDS.values())), ev.request_id.is_not(None), *where)
            .subquery("export_ends"))


def _with_ends(query: Select, ends: Any) -> Select:
    """``query`` (over the events) with each export's start joined to its end (outer: a start whose
    end is not recorded yet keeps its row)."""
    return query.outerjoin(ends, and_(ends.c.request_id == AuditEvent.request_id, ends.c.start == AuditEvent.action))


def dataset_accesses(package_id: str, scope: ColumnElement[bool], since: dt.datetime | None = None,
                     until: dt.datetime | None = None, actor_id: str | None = None) -> Select:
    """Who read dataset ``package_id`` in the period, how often (by kind), how many rows, under which
    grant or acceptance (``via``, ``grant_id``, ``agreement_version_id``), and who was refused: one
    row per user and way of reading, most accesses first (only user ``actor_id``'s when given). An
    export counts once, on its way of reading, with the rows its end recorded."""
    ev = AuditEvent
    via = _via()
    keys = [ev.actor_id.label("user_id"), ev.actor.label("user"), via.label("via"),
            ev.grant_id.label("grant_id"), ev.agreement_version_id.label("agreement_version_id")]
    period = Filters(package_id=package_id, actor_id=actor_id, since=since, until=until)
    ends = export_ends(scope, *Filters(package_id=package_id, actor_id=actor_id, since=since).where())
    return (_with_ends(select(*keys, *_access_columns(ends)).select_from(ev), ends)
            .where(scope, *period.where(), _reads_or_refusals())
            .group_by(ev.actor_id, ev.actor, via, ev.grant_id, ev.agreement_version_id)
            .order_by(_desc("accesses"), _desc("refused"), ev.actor))


def _desc(name: str) -> Any:
    """ORDER BY an output column's label, descending (portable between SQLite and PostgreSQL)."""
    return literal_column(name).desc()


def user_accesses(actor_id: str, scope: ColumnElement[bool], since: dt.datetime | None = None,
                  until: dt.datetime | None = None) -> Select:
    """Everything user ``actor_id`` read in the period, and was refused: one row per dataset,
    resource and way of reading, most recent first (an export once, with its end's rows)."""
    ev = AuditEvent
    via = _via()
    keys = [ev.package_id.label("package_id"), ev.resource_id.label("resource_id"), via.label("via"),
            ev.grant_id.label("grant_id"), ev.agreement_version_id.label("agreement_version_id")]
    period = Filters(actor_id=actor_id, since=since, until=until)
    ends = export_ends(scope, *Filters(actor_id=actor_id, since=since).where())
    return (_with_ends(select(*keys, *_access_columns(ends)).select_from(ev), ends)
            .where(scope, *period.where(), _reads_or_refusals())
            .group_by(ev.package_id, ev.resource_id, via, ev.grant_id, ev.agreement_version_id)
            .order_by(_desc("last"), ev.package_id))


def grant_end() -> ColumnElement[dt.datetime]:
    """When a grant stopped (or stops) working: its revocation, else its expiry."""
    return func.coalesce(AccessGrant.revoked, AccessGrant.expires)


def grant_state(now: dt.datetime, days: int) -> ColumnElement[str]:
    """A grant's state at ``now``: revoked, expired, expiring (within ``days``) or active."""
    return case((AccessGrant.revoked.is_not(None), "revoked"), (AccessGrant.expires <= now, "expired"),
                (AccessGrant.expires <= now + dt.timedelta(days=days), "expiring"), else_="active")


def grants(scope_org: ColumnElement[bool], scope: ColumnElement[bool], now: dt.datetime, *,
           states: Iterable[str] = (), days: int = EXPIRING_DAYS, package_id: str | None = None,
           org_id: str | None = None, grantee_id: str | None = None) -> Select:
    """Grants with their state at ``now`` and what happened under them: accesses under the grant (their
    rows are in the dataset report, by grant), the last one, accesses that name the grant after its
    end (a finding: there should be none), and refused attempts on its dataset by its grantee after
    its end. ``scope_org`` narrows the grants (by their dataset's organization), ``scope`` the events
    counted. Ending soonest first. Every subquery reads one index only (see the models' indexes)."""
    ev = AuditEvent  # correlated subqueries: the outer query is on the grants
    end = grant_end()
    state = grant_state(now, days)
    under = [ev.grant_id == AccessGrant.id, ev.outcome == "ok", ev.action.in_(READS), scope]

    def sub(*columns: Any, where: Iterable[ColumnElement[bool]]) -> Any:
        return select(*columns).where(*where).correlate(AccessGrant).scalar_subquery()

    accesses = sub(func.count(), where=under)
    last = sub(func.max(ev.ts), where=under)
    after = sub(func.count(), where=[*under, ev.ts >= end])
    # Refusals of the grantee on the dataset after the end (their grant id is null: nothing allowed them).
    refused = [ev.outcome == REFUSED, ev.package_id == AccessGrant.package_id, ev.ts >= end, scope]
    members = select(Member.table_id).where(Member.table_name == "user", Member.group_id == AccessGrant.grantee_id)
    attempts = case((AccessGrant.grantee_type == "user",
                     sub(func.count(), where=[ev.actor_id == AccessGrant.grantee_id, *refused])),
                    else_=sub(func.count(), where=[ev.actor_id.in_(members), *refused]))
    query = (select(AccessGrant.id.label("grant_id"), AccessGrant.package_id.label("package_id"),
                    Package.name.label("dataset"), Package.owner_org.label("org_id"),
                    AccessGrant.grantee_type.label("grantee_type"), AccessGrant.grantee_id.label("grantee_id"),
                    AccessGrant.columns.label("columns"), AccessGrant.created.label("created"),
                    AccessGrant.expires.label("expires"), AccessGrant.revoked.label("revoked"),
                    state.label("state"), accesses.label("accesses"), last.label("last_access"),
                    after.label("accesses_after_end"), attempts.label("attempts_after_end"))
             .join(Package, Package.id == AccessGrant.package_id)
             .where(scope_org))
    wanted = tuple(states)
    if wanted:
        query = query.where(state.in_(wanted))
    if package_id is not None:
        query = query.where(AccessGrant.package_id == package_id)
    if org_id is not None:
        query = query.where(Package.owner_org == org_id)
    if grantee_id is not None:
        query = query.where(AccessGrant.grantee_id == grantee_id)
    return query.order_by(end, AccessGrant.id)


def denials(filters: Filters, scope: ColumnElement[bool], limit: int) -> Select:
    """Refused calls in the period: one row per caller (user, or the address of an anonymous
    client), dataset and event name, with how many, the first and the last; most first."""
    ev = AuditEvent
    client = case((ev.actor_id.is_(None), ev.client), else_=None)  # who an anonymous caller is
    keys = [ev.actor_id.label("user_id"), ev.actor.label("user"), client.label("client"),
            ev.package_id.label("package_id"), ev.org_id.label("org_id"), ev.action.label("action")]
    return (select(*keys, func.count().label("count"), func.min(ev.ts).label("first"), func.max(ev.ts).label("last"))
            .where(scope, ev.outcome == REFUSED, *Filters(**{**filters.__dict__, "outcome": None}).where())
            .group_by(ev.actor_id, ev.actor, client, ev.package_id, ev.org_id, ev.action)
            .order_by(_desc("count"), _desc("last")).limit(limit))


# -- the dashboard's figures (audit_summary) ------------------------------------------------------

def _period_where(since: dt.datetime, until: dt.datetime) -> list[ColumnElement[bool]]:
    return [AuditEvent.ts >= since, AuditEvent.ts < until]


def accesses_by_day(scope: ColumnElement[bool], since: dt.datetime, until: dt.datetime) -> Select:
    """Accesses (:data:`READS` answered) per UTC day of the period: ``day`` (``YYYY-MM-DD``), ``accesses``;
    days without any are absent. Reads the ``(action, ts)`` index."""
    day = func.date(AuditEvent.ts)
    return (select(day.label("day"), func.count().label("accesses"))
            .where(scope, AuditEvent.action.in_(READS), AuditEvent.outcome == "ok", *_period_where(since, until))
            .group_by(day).order_by(day))


def top_readers(key: Any, scope: ColumnElement[bool], since: dt.datetime, until: dt.datetime, limit: int,
                extra_keys: Sequence[Any] = (), reads: Sequence[str] | None = None) -> Select:
    """The ``limit`` values of ``key`` (a dataset's or a user's id) with the most accesses in the
    period, with the rows they took; most first."""
    reads = tuple(reads or read_actions())
    ev = AuditEvent
    accesses = _count_of(ev.outcome == "ok", ev.action.in_(READS))
    rows = cast(func.coalesce(func.sum(case((ev.outcome != REFUSED, _rows()), else_=0)), 0), BigInteger)
    return (select(key.label("key"), *extra_keys, accesses.label("accesses"), rows.label("rows"))
            .where(scope, key.is_not(None), ev.action.in_(reads), ev.outcome != REFUSED, *_period_where(since, until))
            .group_by(key, *extra_keys).order_by(_desc("accesses"), key).limit(limit))


def refusals_by_event(scope: ColumnElement[bool], since: dt.datetime, until: dt.datetime) -> Select:
    """Refused calls in the period by event name (``access_denied``, ``sql_refused``...), most first."""
    return (select(AuditEvent.action.label("event"), func.count().label("count"))
            .where(scope, AuditEvent.outcome == REFUSED, *_period_where(since, until))
            .group_by(AuditEvent.action).order_by(_desc("count"), AuditEvent.action))


# -- answers as files ---------------------------------------------------------------------------

def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else value


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A result row with JSON's types: times as ISO 8601 text."""
    return {k: _iso(v) for k, v in row.items()}


def _cell(value: Any) -> str:
    """A CSV cell: null empty, nested values as JSON, text safe to open in a spreadsheet (a cell that
    could start a formula gets a leading ``'``: events quote what callers typed, user agents too)."""
    from catalog.datastore.exports import neutralise

    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return neutralise(json.dumps(value, ensure_ascii=False, sort_keys=True))
    if isinstance(value, (int, float)):
        return str(value)
    return neutralise(str(_iso(value)))


def to_csv(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> bytes:
    """RFC 4180 CSV, as :mod:`catalog.datastore.exports` writes it: a header, CRLF, UTF-8 without BOM."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_cell(c) for c in columns])
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue().encode()


def to_jsonl(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> bytes:
    """One JSON object per row, LF-terminated, keys in column order, values as the JSON answer has them."""
    return "".join(json.dumps({c: _iso(row.get(c)) for c in columns}, ensure_ascii=False) + "\n"
                   for row in rows).encode()


WRITERS = {"csv": to_csv, "jsonl": to_jsonl}
"""Format name -> writer; the content types are :data:`catalog.datastore.exports.FORMATS`'."""

