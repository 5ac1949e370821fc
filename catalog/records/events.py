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
    "audit": "the audit log itself: prunings past the retention, runs of mosu audit verify",
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
    if definition is None:
        raise ValueError(f"audit event {name!r} is not defined in catalog.records.events")
    unknown = sorted(set(detail) - set(definition.fields))
    if unknown:
        raise ValueError(f"audit event {name}: detail field(s) {unknown} not defined in catalog.records.events")


def E(name: str, category: str, summary: str, /, **fields: str) -> EventType:  # noqa: N802 - reads as a table
    return EventType(name, category, summary, fields)


# Fields several events share.
_VERSION = {"version_id": "the resource version's id", "version": "its number"}
_VIA = {"via": "how the caller held the permission: sysadmin, public, level:open, accepted, grant:full, "
               "grant:columns or an organization/collaborator role",
        "columns": "the columns the caller may see (a column-scoped grant); absent: all"}
_SQL = {"sql": "the full text of the query as checked", "sql_sha256": "SHA-256 of that text (hex)",
        "resources": "the resource ids (tables) read, in the order the query names them",
        "versions": "the version id read of each resource, in the same order",
        "columns_read": "resource id -> the columns of it the query reads (from DuckDB's plan)",
        "readings": "resource id -> how the caller read it (via, grant_id, agreement_version_id, columns)"}
_END = {"rows": "rows read into the export", "bytes": "bytes sent to the client",
        "complete": "whether the whole file was sent", "error": "why it stopped, if it did"}

_define(
    # -- auth and accounts ---------------------------------------------------------------------
    E("api_token_create", "auth", "An API token was created for a user (the event's object).",
      token_id="the token's id (jti)", name="the token's name", expires="expiry time (UTC) or null"),
    E("api_token_revoke", "auth", "An API token was revoked.", token_id="the token's id (jti)"),
    E("user_create", "account", "A user account was created.", name="login name", sysadmin="made a sysadmin",
      auditor="made an auditor"),
    E("user_update", "account", "A user account was changed.", fields="the names of the fields sent (no values)"),
    E("notification_mark_read", "account", "A user marked inbox notices read.",
      all="all of them", ids="the notice ids", marked="how many changed"),
    # -- changes -------------------------------------------------------------------------------
    E("package_create", "change", "A dataset was created.", name="the dataset's name"),
    E("package_update", "change", "A dataset's metadata was changed.", name="the dataset's name"),
    E("package_delete", "change", "A dataset was deleted (it can be restored until purged).",
      name="the dataset's name"),
    E("dataset_purge", "change", "A dataset was removed for good with its resources, versions and files.",
      name="the dataset's name", resources="its resource ids", objects="stored files removed",
      grants="access grants removed", requests="access requests removed", acceptances="acceptances removed"),
    E("package_collaborator_create", "change", "A user was made a collaborator on a dataset.",
      user_id="the collaborator", capacity="editor or member"),
    E("package_collaborator_delete", "change", "A collaborator was removed from a dataset.",
      user_id="the collaborator"),
    E("resource_create", "change", "A resource was added to a dataset (a link or an upload).",
      upload_id="the multipart upload, if any", version_id="the new version's id", size="bytes uploaded",
      sha256="the upload's SHA-256", unchanged_upload="SHA-256 of an upload identical to the current version"),
    E("resource_update", "change", "A resource was changed (metadata, or a new upload).",
      upload_id="the multipart upload, if any", version_id="the new version's id", size="bytes uploaded",
      sha256="the upload's SHA-256", unchanged_upload="SHA-256 of an upload identical to the current version"),
    E("resource_delete", "change", "A resource was deleted."),
    E("resource_upload_start", "change", "A multipart upload to a resource was started.",
      upload_id="the upload's id", size="announced size in bytes"),
    E("resource_upload_abort", "change", "A multipart upload was aborted.", upload_id="the upload's id"),
    E("quality_suite_update", "change", "A resource's quality suite was replaced.",
      expectations="number of expectations", revalidation_job="the job that re-checks the current version"),
    E("organization_create", "change", "An organization was created.", name="its name"),
    E("organization_update", "change", "An organization was changed.", name="its name"),
    E("organization_delete", "change", "An organization was deleted.", name="its name"),
    E("group_create", "change", "A group was created.", name="its name"),
    E("group_update", "change", "A group was changed.", name="its name"),
    E("group_delete", "change", "A group was deleted.", name="its name"),
    E("member_create", "change", "A user joined an organization or group (or changed role), or a dataset "
                                 "(the package_id column) was added to a group.",
      user_id="the member user", role="their role (member, editor, admin)"),
    E("member_delete", "change", "A user left an organization or group.", user_id="the member user"),
    E("agreement_create", "change", "An organization's data use agreement was created.",
      number="version number (1; the version is the agreement_version_id column)", title="its title"),
    E("agreement_update", "change", "A new version of a data use agreement was published.",
      number="the new version's number (its id is the agreement_version_id column)",
      previous_version_id="the version it replaces",
      title="its title"),
    # -- versions ------------------------------------------------------------------------------
    E("resource_publish", "version", "The worker published a version of a resource.",
      version_id="the version", rows="rows published", quality_score="its quality score"),
    E("resource_held", "version", "The worker held a version for a personal-information acknowledgement.",
      version_id="the version", pii="the findings (column, kind) that hold it"),
    E("quality_pii_acknowledge", "version", "An editor acknowledged a version's personal-information findings.",
      version_id="the version", findings="the findings acknowledged", published="whether it was published by it"),
    E("resource_rejected", "version", "The worker rejected a version: a blocking quality check failed.",
      version_id="the version", error="the reason"),
    E("resource_ingest_failed", "version", "The worker could not ingest a version (unreadable, or an error).",
      version_id="the version", error="the reason"),
    E("quality_revalidated", "version", "The worker re-checked the current version against a changed suite.",
      version_id="the version", quality_score="its new score", blocking_failed="blocking checks that failed"),
    E("quality_revalidation_failed", "version", "Re-checking the current version failed.",
      version_id="the version", error="the reason"),
    # -- consent -------------------------------------------------------------------------------
    E("agreement_accept", "consent", "A user accepted a dataset's licence and data use agreement version "
                                     "(the agreement_version_id column).",
      acceptance_id="the acceptance", agreement_id="the agreement", license_id="the dataset's licence"),
    # -- access --------------------------------------------------------------------------------
    E("access_request_create", "access", "A user asked for access to a restricted dataset.",
      duration_days="days asked for", columns="the columns asked for (null: all)"),
    E("access_request_approve", "access", "An access request was approved; its grant is the grant_id column.",
      user_id="the requester", expires="the grant's end (UTC)", columns="the columns granted (null: all)"),
    E("access_request_deny", "access", "An access request was denied.", user_id="the requester",
      reason="the reason given"),
    E("access_request_withdraw", "access", "A requester withdrew their access request.", user_id="the requester"),
    E("access_grant_create", "access", "A grant of access to a dataset was made directly.",
      grantee_type="user or organization", grantee_id="who was granted", expires="its end (UTC)",
      columns="the columns granted (null: all)"),
    E("access_grant_revoke", "access", "A grant was revoked.", grantee_type="user or organization",
      grantee_id="who held it", reason="the reason given"),
    # -- reads ---------------------------------------------------------------------------------
    E("datastore_search", "read", "A preview (datastore_search) of a resource's rows.",
      **_VERSION, filters="the filters (column -> values)", q="the full-text query", fields="the columns returned",
      sort="the sort", distinct="distinct rows", limit="page size", offset="first row",
      rows="rows returned", **_VIA),
    E("datastore_search_sql", "read", "A researcher's SQL query (datastore_search_sql).",
      **_SQL, rows="rows returned", truncated="whether more rows were there than returned"),
    E("datastore_export", "read", "An export of a resource's rows (/datastore/dump), recorded before the first "
                                  "byte; datastore_export_end follows when the stream ends.",
      **_VERSION, format="csv, tsv, jsonl or parquet", filters="the filters (column -> values)",
      q="the full-text query", fields="the columns exported", sort="the sort", distinct="distinct rows",
      limit="row limit", offset="first row", **_VIA),
    E("datastore_export_end", "read_end", "The end of an export of a resource (same request id as its "
                                          "datastore_export); outcome failed if it stopped early.",
      format="csv, tsv, jsonl or parquet", **_END),
    E("datastore_sql_export", "read", "An export of a SQL query's result (/datastore/dump_sql), recorded before "
                                      "the first byte; datastore_sql_export_end follows when the stream ends.",
      **_SQL, format="csv, tsv, jsonl or parquet"),
    E("datastore_sql_export_end", "read_end", "The end of an export of a query (same request id as its "
                                              "datastore_sql_export); outcome failed if it stopped early.",
      format="csv, tsv, jsonl or parquet", **_END),
    E("resource_download", "read", "A download URL of a whole file (the original upload or the Parquet) "
                                   "was issued.",
      **_VERSION, format="original or parquet", filename="the file name of the download",
      expires_in="seconds the URL is valid", **_VIA),
    # -- the audit log -------------------------------------------------------------------------
    E("audit_prune", "audit", "Audit events past the retention were deleted, up to a signed checkpoint that "
                              "keeps committing to them.",
      upto_seq="the last event deleted (the checkpoint's size)", events="how many were deleted",
      before="the cutoff: only events older than it (UTC)", retention_days="MOSU_AUDIT_RETENTION_DAYS then"),
    E("audit_verified", "audit", "mosu audit verify checked the log: every event's hash and link, every checkpoint's "
                                 "signature, root and copies (recorded after the check; the next run checks it).",
      intact="true when nothing was found", findings="problems found: 0, or 1 (the check stops at the first)",
      first_finding="the first problem: seq (the event it is about), kind (modified, missing, reordered, "
                    "inserted, truncated, rehashed, bad-signature, inconsistent) and message; absent when intact",
      events="events checked: all of them when intact, else those before the first finding's seq",
      first_seq="the first event checked (after the last pruning)",
      last_seq="the last event checked, when intact (this event comes after it)",
      checkpoints="signed checkpoints checked", last_checkpoint="the tree size of the last one (absent: none)",
      seconds="how long the check took"),
)


# == Refusals ===================================================================================
# Refused calls (outcome "refused").
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
                                 "exports, or an address past the limit of requests with an invalid API token "
                                 "or of failed sign-ins.",
      **_REFUSED, limit="query_slots_caller, query_slots_site, bad_token or sign_in",
      retry_after="seconds the caller was told to wait, if any"),
    E("sign_in", "auth", "A user signed in (the web sign-in form; API tokens are checked on every request "
                         "and record only their failures).", method="password",
      session="the first 12 hex digits of the SHA-256 of the session (what sign_out names)"),
    E("sign_out", "auth", "A user signed out of the web (the session ended at once).",
      session="the first 12 hex digits of the SHA-256 of the session"),
    E("sign_in_failure", "auth", "A sign-in failed (outcome refused): a request with an API token that is unknown, "
                                 "revoked, expired or of an inactive user, or (the web form) a wrong password.",
      **_REFUSED, method="token or password",
      reason="unknown, revoked, expired or inactive_user (a token); wrong_password, unknown_user or "
             "inactive_user (the form)",
      token_id="the token's id (jti), when the token exists", user_id="the token owner's id, when it exists"),
    E("refusals_suppressed", "refusal", "Refusals from one client address past the cap of events per second "
                                        "(audit_refusals_per_second), counted here instead of recorded one by "
                                        "one: a flood of refused calls makes one write a second, not one each.",
      client_key="the address (an IPv6 /64) counted", count="refusals not recorded one by one",
      events="event name -> how many of them", since="start of the window (UTC)", until="its end (UTC)"),
)
