"""Refused calls in the audit log: one event per refusal, outcome ``refused``.

A refused call is one the access policy refused (403 Not Authorized, or a 404 raised to hide an
object the caller may not see: :class:`~catalog.core.errors.Hidden`), a researcher's SQL refused
(:class:`~catalog.core.errors.QueryRejected` on a call that carried ``sql``), a rate-limited call
(429) or a request with an API token that signs nobody in (``sign_in_failure``). A 404 for an id
that does not exist is not a refusal (nothing was there to refuse), nor is a validation error.

The places that turn errors into HTTP answers (the Action API, the streamed exports, the web
pages) call :func:`refused` once per answer, after the refused action's transaction rolled back, so
each event is written in its own short transaction. Writing one must never turn the 4xx into a
500: a failure is logged and the answer goes out as it was.

Amplification: every refused call would be a database write, so a flood of them (a script with a
bad token, a crawler on a restricted dataset) would be a flood of writes serialised on the chain's
lock. :class:`RefusalCap` lets through at most ``audit_refusals_per_second`` events per client
address a second; the rest of that second are counted and written as one ``refusals_suppressed``
event (per address and second) with the next refusal recorded from any client. The count lives in
each web process's memory: counts not yet written when the process ends are lost (the log then
under-counts a flood, never invents one).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy.orm import Session

from catalog.core.errors import Hidden, InvalidToken, NotAuthorized, QueryRejected, TooManyRequests
from catalog.db.models import Package, Resource
from catalog.records import audit

if TYPE_CHECKING:
    from catalog.access.context import Context

log = logging.getLogger(__name__)

MAX_SQL_KEPT = 20_000
"""Characters of a refused query's text kept: sqlcheck's MAX_SQL_CHARS, the longest query ever run
(a longer one is refused for its length; its SHA-256 still covers the whole text)."""
MAX_MESSAGE = 500
ID_PARAMS = ("id", "resource_id", "package_id", "dataset_id", "name", "owner_org", "organization_id", "group_id",
             "user_id", "user", "username", "jti", "upload_id", "version")
"""Request parameters that name objects: kept in an event when their value is a UUID or a name."""
_NAME = re.compile(r"[a-z0-9_-]{1,100}")  # catalog names (and version numbers), never free text


def kind(exc: BaseException, sql: object = None) -> str | None:
    """The event name of a refusal, or None when ``exc`` is no refusal (pure). ``sql``: the call's
    ``sql`` parameter, if any (a QueryRejected without SQL is an export's limit, not a refused query)."""
    if isinstance(exc, InvalidToken):
        return "sign_in_failure"
    if isinstance(exc, TooManyRequests):
        return "rate_limited"
    if isinstance(exc, QueryRejected):
        return "sql_refused" if isinstance(sql, str) else None
    if isinstance(exc, (NotAuthorized, Hidden)):
        return "access_denied"
    return None


def is_uuid(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def id_params(params: dict[str, Any] | None) -> dict[str, str]:
    """The object ids of a request's parameters that may go into the log (pure): UUIDs and catalog
    names only, so no free text a caller typed is stored (a value of any other shape is left out)."""
    out: dict[str, str] = {}
    for key in ID_PARAMS:
        value = (params or {}).get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if is_uuid(value) or (isinstance(value, str) and _NAME.fullmatch(value)):
            out[key] = value
    return out


def sql_fields(sql: object) -> dict[str, Any]:
    """A refused query's text (up to :data:`MAX_SQL_KEPT` characters), its SHA-256 and length (pure)."""
    if not isinstance(sql, str):
        return {}
    out: dict[str, Any] = {"sql": sql[:MAX_SQL_KEPT], "sql_sha256": hashlib.sha256(sql.encode("utf-8", "replace"))
                           .hexdigest(), "sql_chars": len(sql)}
    if len(sql) > MAX_SQL_KEPT:
        out["sql_truncated"] = True
    return out


def detail_of(exc: BaseException, status: int, name: str, *, call: str | None = None, page: str | None = None,
              params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The detail of refusal event ``name`` for ``exc`` answered with ``status`` (pure)."""
    detail: dict[str, Any] = {"status": status, "error": type(exc).__name__,
                              "message": str(getattr(exc, "message", exc))[:MAX_MESSAGE]}
    if call:
        detail["call"] = call
    if page:
        detail["page"] = page
    denied = getattr(exc, "denied", None)
    if denied:
        detail["permission"], detail["object"] = denied
    ids = id_params(params)
    if ids:
        detail["params"] = ids
    if name in ("access_denied", "sql_refused"):
        detail.update(sql_fields((params or {}).get("sql")))
    if name == "rate_limited":
        if getattr(exc, "limit", None):
            detail["limit"] = exc.limit  # type: ignore[attr-defined]
        if getattr(exc, "retry_after", None):
            detail["retry_after"] = exc.retry_after  # type: ignore[attr-defined]
    if isinstance(exc, InvalidToken):
        detail.update({"method": exc.method, "reason": exc.reason})
        if exc.token_id:
            detail.update({"token_id": exc.token_id, "user_id": exc.user_id})
        elif exc.user_id:
            detail["user_id"] = exc.user_id
    return detail


def _target(s: Session, exc: BaseException, params: dict[str, Any] | None) -> tuple[str, str | None, dict]:
    """The event's object (type, id) and the ids reports filter on: the object of the refused
    permission check when there is one (``package:<id>``...: an object that exists), else a resource,
    dataset or token named by a UUID parameter that exists."""
    refs: dict[str, str | None] = {}
    obj: tuple[str, str | None] = ("call", None)
    denied = getattr(exc, "denied", None)
    if denied:
        kind_, _, oid = denied[1].partition(":")
        if kind_ == "package" and oid:
            pkg = s.get(Package, oid)
            refs.update(package_id=oid, org_id=pkg.owner_org if pkg is not None else None)
        elif kind_ == "organization" and oid:
            refs["org_id"] = oid
        obj = (kind_, oid or None)
    params = params or {}
    for key in ("resource_id", "id", "package_id", "dataset_id"):
        value = params.get(key)
        if not is_uuid(value):
            continue
        res = s.get(Resource, value)
        if res is not None and refs.get("package_id") in (None, res.package_id):
            pkg = s.get(Package, res.package_id)
            refs.update(resource_id=res.id, package_id=res.package_id, org_id=pkg.owner_org if pkg else None)
            if obj[0] == "call":
                obj = ("resource", res.id)
            break
        if "package_id" not in refs:
            pkg = s.get(Package, value)
            if pkg is not None:
                refs.update(package_id=pkg.id, org_id=pkg.owner_org)
                obj = ("package", pkg.id) if obj[0] == "call" else obj
    if isinstance(exc, InvalidToken) and exc.user_id:
        obj = ("user", exc.user_id)
    return obj[0], obj[1], refs


@dataclass
class _Window:
    second: int
    written: int = 0
    over: Counter = field(default_factory=Counter)


class RefusalCap:
    """At most ``per_second`` refusal events per client key and second (0: no cap); the overflow of
    an ended second comes back from :meth:`admit` as a summary to write. ``clock``: seconds since the
    epoch (injectable: tests step it)."""

    def __init__(self, per_second: int, clock: Callable[[], float] = time.time, max_keys: int = 10_000) -> None:
        self.per_second, self.clock, self.max_keys = per_second, clock, max_keys
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, name: str) -> tuple[bool, list[dict[str, Any]]]:
        """Whether the event ``name`` of ``key`` is written now, and the summaries of ended seconds."""
        if self.per_second <= 0:
            return True, []
        second = math.floor(self.clock())
        with self._lock:
            due = []
            for k, w in list(self._windows.items()):
                if w.second < second:
                    del self._windows[k]
                    if w.over:
                        due.append(_summary(k, w))
            if key not in self._windows and len(self._windows) >= self.max_keys:
                key = "*"  # too many addresses at once: the rest share one count
            w = self._windows.setdefault(key, _Window(second))
            if w.written < self.per_second:
                w.written += 1
                return True, due
            w.over[name] += 1
            return False, due


def _summary(key: str, w: _Window) -> dict[str, Any]:
    since = dt.datetime.fromtimestamp(w.second, dt.timezone.utc).replace(tzinfo=None)
    return {"client_key": key, "count": sum(w.over.values()), "events": dict(w.over),
            "since": since.isoformat(), "until": (since + dt.timedelta(seconds=1)).isoformat()}


def refused(ctx: "Context", exc: BaseException, status: int, *, call: str | None = None, page: str | None = None,
            params: dict[str, Any] | None = None, cap: RefusalCap | None = None, client_key: str = "-") -> bool:
    """Record the refusal ``exc`` (answered with ``status``) if it is one, in its own transaction; True
    when an event was written. Never raises: a failure is logged and the answer goes out unchanged."""
    from catalog.access.context import Context

    params = params or {}
    name = kind(exc, params.get("sql"))
    if name is None or (isinstance(exc, QueryRejected) and ctx.disconnected is not None and ctx.disconnected()):
        return False  # not a refusal; or a query stopped because its client left: nobody was answered
    write, due = cap.admit(client_key, name) if cap is not None else (True, [])
    if not write and not due:
        return False
    try:
        with ctx.platform.write.begin() as s:
            for summary in due:  # filed under the address counted (who it was is in the events let through)
                who = Context(platform=ctx.platform, client=summary["client_key"])
                audit.record(s, who, "refusals_suppressed", "client", None, summary, outcome="refused")
            if write:
                object_type, object_id, refs = _target(s, exc, params)
                detail = detail_of(exc, status, name, call=call, page=page, params=params)
                audit.record(s, ctx, name, object_type, object_id, detail, outcome="refused", **refs)
        return write
    except Exception:  # noqa: BLE001 - the refusal is answered whatever happens here
        log.error("the audit event %s of a refused call (request %s, %s %s) could not be written",
                  name, ctx.request_id, type(exc).__name__, status, exc_info=True)
        return False
