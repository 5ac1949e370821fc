"""The audit vocabulary: one typed definition per event name (datasette's ``events.py`` pattern).

Reports and compliance officers rely on an event name meaning one thing and on its detail holding
known fields, so every name an action may record is defined here once, with its category, a
one-line summary and the fields of its ``detail``; :func:`check` (called by
:func:`catalog.records.audit.record`) refuses anything else, a programming error caught by the
first test that records it. The README's "Audit events" table lists the same definitions (a test
keeps the two in step).

What every event has besides its detail is the envelope (:data:`catalog.records.audit.ENVELOPE`):
actor and actor id, the actor's site-wide role, UTC time, client address, user agent, request id,
the outcome, and the ids reports filter on (dataset, resource, organization, grant, agreement
version). Those are columns, never repeated in the detail.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CATEGORIES = {
    "auth": "API tokens",
    "account": "user accounts and their notices",
    "change": "changes to datasets, resources, organizations, groups and memberships",
    "version": "what happened to a version of a resource: published, held, acknowledged, rejected, failed",
    "consent": "licence and agreement acceptances",
    "access": "access requests, their decisions, grants and revocations",
    "read": "reads of data (one event per read, written before the data leaves)",
    "read_end": "the end of a streamed export: what was actually sent",
    "refusal": "refused calls (outcome refused)",
}


@dataclass(frozen=True)
class EventType:
    """One event name: its ``category`` (a key of :data:`CATEGORIES`), what it records, and the
    fields its detail may hold (name -> short description)."""

    name: str
    category: str
    summary: str
    fields: dict[str, str]


EVENTS: dict[str, EventType] = {}
"""Every event name -> its definition."""
_COMPLETE = False


def _define(*types: EventType) -> None:
    for t in types:
        if t.name in EVENTS:
            raise ValueError(f"audit event {t.name} defined twice")
        if t.category not in CATEGORIES:
            raise ValueError(f"audit event {t.name}: unknown category {t.category!r}")
        EVENTS[t.name] = t


def check(name: str, detail: dict[str, Any]) -> None:
    """Refuse an event name or a detail field the vocabulary does not define (a programming error)."""
    definition = EVENTS.get(name)
    if definition is None and not _COMPLETE:  # on this branch only the refusals are defined (B1 defines the rest)
        return
    if definition is None:
        raise ValueError(f"audit event {name!r} is not defined in catalog.records.events")
    unknown = sorted(set(detail) - set(definition.fields))
    if unknown:
        raise ValueError(f"audit event {name}: detail field(s) {unknown} not defined in catalog.records.events")


def E(name: str, category: str, summary: str, **fields: str) -> EventType:  # noqa: N802 - reads as a table
    return EventType(name, category, summary, fields)


# == Refusals (helper B2) ========================================================================
# Refused calls (outcome "refused"): add their definitions in a _define(...) call below this line.
# Written by catalog.records.refusals, each in its own short transaction after the refused call's
# transaction rolled back; what the call touched is in the envelope's columns (package_id,
# resource_id, org_id) when the policy's refused check or the request's ids name it.

_REFUSED = {
    "call": "the action called (an export: datastore_export or datastore_sql_export)",
    "page": "the web page's route (its pattern, never the address typed), for a page",
    "status": "the HTTP status answered: 403, 404, 400 or 429",
    "error": "the error's type: NotAuthorized, Hidden (a 404 hiding an object), QueryRejected, TooManyRequests",
    "message": "the message answered (at most 500 characters)",
    "permission": "the last permission check refused before the error (view-dataset, edit-dataset...)",
    "object": "what that check was on: package:<id>, organization:<id>, group:<id>, user:<id>, site",
    "params": "the request's id parameters (id, resource_id, package_id...) whose values are UUIDs or names; "
              "anything else is left out",
}
_SQL_REFUSED = {"sql": "the full text of the query sent (at most 20,000 characters, the longest ever run)",
                "sql_sha256": "SHA-256 of the whole text sent (hex)", "sql_chars": "its length in characters",
                "sql_truncated": "true when the text was longer than what is kept"}
_define(
    E("access_denied", "refusal", "A call the access policy refused: 403 (Not Authorized), or 404 answered to hide "
                                  "an object the caller may not see. A 404 for an id that does not exist is "
                                  "not a refusal and is not recorded.",
      **_REFUSED, **_SQL_REFUSED),
    E("sql_refused", "refusal", "A researcher's SQL refused (400) by the SQL check (anything but one SELECT over "
                                "resource tables) or stopped by a query limit (time, memory, result size).",
      **_REFUSED, **_SQL_REFUSED),
    E("rate_limited", "refusal", "A call refused with 429: the caller's or the site's running queries and "
                                 "exports, or an address past the limit of requests with an invalid API token.",
      **_REFUSED, limit="query_slots_caller, query_slots_site or bad_token",
      retry_after="seconds the caller was told to wait, if any"),
    E("sign_in", "auth", "A user signed in (the web sign-in form; API tokens are checked on every request "
                         "and record only their failures).", method="password"),
    E("sign_in_failure", "auth", "A sign-in failed (outcome refused): a request with an API token that is unknown, "
                                 "revoked, expired or of an inactive user, or (the web form) a wrong password.",
      **_REFUSED, method="token or password",
      reason="unknown, revoked, expired or inactive_user (a token); wrong_password (the form)",
      token_id="the token's id (jti), when the token exists", user_id="the token owner's id, when it exists"),
    E("refusals_suppressed", "refusal", "Refusals from one client address past the cap of events per second "
                                        "(audit_refusals_per_second), counted here instead of recorded one by "
                                        "one: a flood of refused calls makes one write a second, not one each.",
      client_key="the address (an IPv6 /64) counted", count="refusals not recorded one by one",
      events="event name -> how many of them", since="start of the window (UTC)", until="its end (UTC)"),
)
