"""Catalog tables (SQLAlchemy 2 ORM), portable between SQLite and PostgreSQL.

Ids are UUID strings generated here, never taken from user input; object keys
and paths are built from them (:mod:`catalog.core.keys`). Times are naive UTC, as
CKAN renders them.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    literal_column,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.functions import FunctionElement


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str | None] = mapped_column(String(255))
    fullname: Mapped[str | None] = mapped_column(String(255))
    about: Mapped[str] = mapped_column(Text, default="")
    image_url: Mapped[str] = mapped_column(Text, default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    sysadmin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Site-wide compliance role: reads every audit event and report, and by it no data at all.
    auditor: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(20), default="active")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    """An API token; only its SHA-256 is stored (tokens are 256-bit random)."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_used: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    user: Mapped[User] = relationship()


class WebSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's 256-bit random value is stored, so a copy
    of the database signs nobody in; the CSRF token of the session's forms is kept beside it."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie value
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    client: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    user: Mapped[User] = relationship()


class Group(Base):
    """An organization (``is_organization``) or a group; CKAN keeps both in one table too."""

    __tablename__ = "groups"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    image_url: Mapped[str] = mapped_column(Text, default="")
    is_organization: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(20), default="active")
    extras: Mapped[list[Any]] = mapped_column(default=list)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def type(self) -> str:
        return "organization" if self.is_organization else "group"


class Member(Base):
    """A user's capacity in a group or organization, or a dataset's membership of a group.

    ``table_name`` is ``user`` (capacity ``admin``/``editor``/``member``) or
    ``package`` (datasets in a group; organizations own datasets via ``owner_org``).
    """

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("group_id", "table_name", "table_id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    table_name: Mapped[str] = mapped_column(String(20))
    table_id: Mapped[str] = mapped_column(String(36), index=True)
    capacity: Mapped[str] = mapped_column(String(20))


class Collaborator(Base):
    """A user given ``editor`` or ``member`` capacity on one dataset."""

    __tablename__ = "package_collaborators"
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    capacity: Mapped[str] = mapped_column(String(20))
    modified: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class PackageTag(Base):
    __tablename__ = "package_tags"
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Activity(Base):
    """CKAN's activity stream: who changed what, with a snapshot of the object."""

    __tablename__ = "activities"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    timestamp: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    user_id: Mapped[str | None] = mapped_column(String(36))
    object_id: Mapped[str] = mapped_column(String(36), index=True)
    group_id: Mapped[str | None] = mapped_column(String(36), index=True)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    activity_type: Mapped[str] = mapped_column(String(50))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Package(Base):
    """A dataset (CKAN calls it a package)."""

    __tablename__ = "packages"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(255), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(100), default="")
    author: Mapped[str] = mapped_column(String(255), default="")
    author_email: Mapped[str] = mapped_column(String(255), default="")
    maintainer: Mapped[str] = mapped_column(String(255), default="")
    maintainer_email: Mapped[str] = mapped_column(String(255), default="")
    license_id: Mapped[str] = mapped_column(String(100), default="notspecified")
    # Controlled access (catalog.access.levels): who may read the rows of a public dataset.
    access_level: Mapped[str] = mapped_column(String(20), default="open", index=True)  # open, registered, restricted
    embargo_until: Mapped[dt.date | None] = mapped_column(Date)  # before it only the organization sees data
    agreement_id: Mapped[str | None] = mapped_column(ForeignKey("agreements.id"))
    grant_days: Mapped[int] = mapped_column(Integer, default=365)  # default length of a grant
    owner_org: Mapped[str | None] = mapped_column(ForeignKey("groups.id"), index=True)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(20), default="active")
    type: Mapped[str] = mapped_column(String(100), default="dataset")
    extras: Mapped[list[Any]] = mapped_column(default=list)
    creator_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    metadata_created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    metadata_modified: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    organization: Mapped[Group | None] = relationship()
    resources: Mapped[list["Resource"]] = relationship(
        back_populates="package", order_by="Resource.position", cascade="all, delete-orphan"
    )
    tag_rows: Mapped[list[PackageTag]] = relationship(cascade="all, delete-orphan", order_by="PackageTag.name")

    @property
    def tag_names(self) -> list[str]:
        return [t.name for t in self.tag_rows]


class Resource(Base):
    """A file of a dataset; its published data is ``current_version``."""

    __tablename__ = "resources"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id"), index=True)
    name: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str] = mapped_column(String(100), default="")
    url: Mapped[str] = mapped_column(Text, default="")
    url_type: Mapped[str | None] = mapped_column(String(50))
    mimetype: Mapped[str | None] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(20), default="active")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_modified: Mapped[dt.datetime | None] = mapped_column(DateTime)
    extras: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ingest_status: Mapped[str | None] = mapped_column(String(20))  # lifecycle.State of its latest upload
    ingest_error: Mapped[str | None] = mapped_column(Text)
    current_version_id: Mapped[str | None] = mapped_column(String(36))
    package: Mapped[Package] = relationship(back_populates="resources")


class ResourceVersion(Base):
    """One immutable upload of a resource and, once ingested, its Parquet."""

    __tablename__ = "resource_versions"
    __table_args__ = (UniqueConstraint("resource_id", "number"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="queued")  # catalog.versions.lifecycle.State
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    raw_key: Mapped[str] = mapped_column(Text)
    original_filename: Mapped[str] = mapped_column(Text, default="")
    parquet_key: Mapped[str | None] = mapped_column(Text)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    schema: Mapped[list[Any] | None] = mapped_column(JSON)
    validation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    uploader_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    published: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The whole quality report (also in object storage): loaded only when read, since it holds the
    # profile of every column and dataset pages and the search index need just quality_score.
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    quality_score: Mapped[float | None] = mapped_column(Float)
    report_key: Mapped[str | None] = mapped_column(Text)


class QualitySuite(Base):
    """A resource's expectation suite (GX JSON): generated from its first version, then the provider's."""

    __tablename__ = "quality_suites"
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"), primary_key=True)
    suite: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(20), default="generated")  # generated or provider
    updated: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(200))


class PiiAcknowledgement(Base):
    """A provider's statement that a resource's personal-information findings may be published."""

    __tablename__ = "pii_acknowledgements"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"), index=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("resource_versions.id"))
    findings: Mapped[list[Any]] = mapped_column(JSON)  # [{"column", "kind"}] acknowledged
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    user_name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class IngestJob(Base):
    """A queued ingest of one version; claimed by a worker under a lease."""

    __tablename__ = "ingest_jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"))
    version_id: Mapped[str] = mapped_column(ForeignKey("resource_versions.id"))
    kind: Mapped[str] = mapped_column(String(20), default="ingest")  # ingest, or validate (suite changed)
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)  # lifecycle.JobState
    stage: Mapped[str] = mapped_column(String(40), default="queued")
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    not_before: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class MultipartUpload(Base):
    """A large upload that a client sends in parts straight to object storage."""

    __tablename__ = "multipart_uploads"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id"))
    resource_id: Mapped[str] = mapped_column(String(36))  # new or existing resource
    version_id: Mapped[str] = mapped_column(String(36))
    new_resource: Mapped[bool] = mapped_column(Boolean)
    resource_name: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[str | None] = mapped_column(String(36))
    key: Mapped[str] = mapped_column(Text)
    s3_upload_id: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(BigInteger)
    part_size: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(20), default="open")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Counter(Base):
    """Named sequences shared by all processes (e.g. ``search``: the catalog's change number)."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class SearchChange(Base):
    """A dataset whose search entry must be refreshed (or dropped) as of change number ``seq``."""

    __tablename__ = "search_changes"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    package_id: Mapped[str] = mapped_column(String(36), index=True)


class SchemaInfo(Base):
    """One row: the schema version this database was created with."""

    __tablename__ = "schema_info"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class EventRows(FunctionElement):
    """``detail.rows`` (rows a read returned or an export sent) as a number, null when absent or not a
    number: the SQL of :attr:`AuditEvent.rows`, for SQLite and PostgreSQL."""

    type = Integer()
    inherit_cache = True


class EventVia(FunctionElement):
    """How the caller read: ``detail.via``, or for a query ``detail.readings[resource_id].via`` (a query
    event holds one reading per table and is filed under its first): the SQL of :attr:`AuditEvent.via`."""

    type = String()
    inherit_cache = True


@compiles(EventRows)
def _rows_sqlite(element: EventRows, compiler: Any, **kw: Any) -> str:
    (detail,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"CASE json_type({detail}, '$.rows') WHEN 'integer' THEN json_extract({detail}, '$.rows') END"


@compiles(EventRows, "postgresql")
def _rows_postgresql(element: EventRows, compiler: Any, **kw: Any) -> str:
    (detail,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"CASE json_typeof({detail} -> 'rows') WHEN 'number' THEN ({detail} ->> 'rows')::numeric::bigint END"


@compiles(EventVia)
def _via_sqlite(element: EventVia, compiler: Any, **kw: Any) -> str:
    detail, resource_id = (compiler.process(c, **kw) for c in element.clauses)
    return (f"coalesce(json_extract({detail}, '$.via'), "
            f"json_extract({detail}, '$.readings.\"' || {resource_id} || '\".via'))")


@compiles(EventVia, "postgresql")
def _via_postgresql(element: EventVia, compiler: Any, **kw: Any) -> str:
    detail, resource_id = (compiler.process(c, **kw) for c in element.clauses)
    return f"coalesce({detail} ->> 'via', {detail} -> 'readings' -> {resource_id} ->> 'via')"


REPORTED = ("action", "outcome", "grant_id", "agreement_version_id", "org_id", "rows", "via")
"""What the dataset and user reports read of an event besides the index's key."""


class AuditEvent(Base):
    """One link of the tamper-evident audit chain (see :mod:`catalog.records.audit`).

    ``seq`` is assigned by the writer (last + 1, under the chain's lock), never by a database
    sequence: a rolled-back insert must not leave a gap, since a gap is how a deleted event shows.
    The envelope columns (who, from where, under which grant, the outcome) and the object ids
    the reports filter on are columns, indexed; the rest of an event is its ``detail``, whose
    fields the vocabulary (:mod:`catalog.records.events`) defines per event name."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    ts: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(36))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The envelope (issue 13). Null on events written before it; the hash covers each one that is set.
    actor_id: Mapped[str | None] = mapped_column(String(36))
    role: Mapped[str | None] = mapped_column(String(20))
    client: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    request_id: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str | None] = mapped_column(String(20))
    package_id: Mapped[str | None] = mapped_column(String(36))
    resource_id: Mapped[str | None] = mapped_column(String(36))
    org_id: Mapped[str | None] = mapped_column(String(36))
    grant_id: Mapped[str | None] = mapped_column(String(36))
    agreement_version_id: Mapped[str | None] = mapped_column(String(36))
    # Derived by the database from ``detail`` (Mosu never writes them, and the hash covers ``detail``),
    # so that the reports' indexes hold them: a report over a busy dataset reads tens of thousands of
    # events, and fetching each row from the table costs ~6 µs (36,000 events: 230 ms on SQLite
    # before any JSON is parsed); from an index that holds every column it needs, a few ms.
    rows: Mapped[int | None] = mapped_column(BigInteger, Computed(EventRows(literal_column("detail")), persisted=True))
    via: Mapped[str | None] = mapped_column(Text, Computed(
        EventVia(literal_column("detail"), literal_column("resource_id")), persisted=True))

    __table_args__ = (
        # (package_id, ts) and (actor_id, ts), carrying every column the dataset and user reports read
        # (catalog.records.reports), so a report never fetches a row from the table.
        Index("ix_audit_package_ts", "package_id", "ts", "actor_id", "actor", *REPORTED),
        Index("ix_audit_resource_ts", "resource_id", "ts"),
        Index("ix_audit_actor_ts", "actor_id", "ts", "package_id", "resource_id", *REPORTED),
        Index("ix_audit_org_ts", "org_id", "ts"),
        Index("ix_audit_action_ts", "action", "ts"),
        Index("ix_audit_outcome_ts", "outcome", "ts"),
        Index("ix_audit_grant", "grant_id"),
    )


# -- indexes of the audit reports (catalog.records.reports) --------------------------------------
# Each holds every column its report reads, so the report never fetches a row from the table.
_ev = AuditEvent.__table__.c
# The grants report: accesses under each grant, and after its end.
Index("ix_audit_report_grant", _ev.grant_id, _ev.outcome, _ev.action, _ev.ts, _ev.org_id)
# Refused calls only (5 % of events): the denials report by period, and a grant's attempts after its end
# (grantee, dataset, after the end).
_REFUSED = {"sqlite_where": _ev.outcome == "refused", "postgresql_where": _ev.outcome == "refused"}
Index("ix_audit_refused_ts", _ev.ts, _ev.actor_id, _ev.actor, _ev.client, _ev.package_id, _ev.org_id, _ev.action,
      _ev.outcome, **_REFUSED)
Index("ix_audit_refused_actor", _ev.actor_id, _ev.package_id, _ev.ts, _ev.org_id, _ev.outcome, _ev.client, _ev.actor,
      _ev.action, **_REFUSED)

class AuditCheckpoint(Base):
    """A signed tree head: the RFC 9162 Merkle root over the first ``tree_size`` events, signed with
    the site's Ed25519 key (kept outside this database). A copy goes to object storage, so removing
    rows here does not remove the commitment (see :mod:`catalog.records.checkpoints`)."""

    __tablename__ = "audit_checkpoints"
    tree_size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[int] = mapped_column(BigInteger)  # milliseconds since the epoch, as RFC 9162
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


class AuditPrune(Base):
    """A pruning of the log's oldest events, up to a checkpoint: what verification needs to go on
    without them (the last pruned event's hash and the Merkle frontier at that size)."""

    __tablename__ = "audit_prunes"
    upto_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_hash: Mapped[str] = mapped_column(String(64))
    frontier: Mapped[list[Any]] = mapped_column(JSON, default=list)
    ts: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Agreement(Base):
    """A data use agreement an organization writes; its text lives in numbered versions (editing makes
    a new one), so acceptances, requests and grants name the exact text the user saw."""

    __tablename__ = "agreements"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_org: Mapped[str] = mapped_column(ForeignKey("groups.id"), index=True)
    current_version_id: Mapped[str | None] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(20), default="active")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    creator_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))


class AgreementVersion(Base):
    """One version of an agreement: title, Markdown text and the questions requesters answer
    (``[{"id", "text", "type": "text"|"choice"|"yesno", "choices": [...], "required": bool}]``)."""

    __tablename__ = "agreement_versions"
    __table_args__ = (UniqueConstraint("agreement_id", "number"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text, default="")
    questions: Mapped[list[Any]] = mapped_column(default=list)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    creator_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))


class Acceptance(Base):
    """A user accepted a dataset's terms: its agreement at one version, or (no agreement) its licence.
    What a ``registered`` dataset asks of a signed-in user before its rows."""

    __tablename__ = "acceptances"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"), index=True)
    agreement_version_id: Mapped[str | None] = mapped_column(ForeignKey("agreement_versions.id"))
    license_id: Mapped[str] = mapped_column(String(100))
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AccessRequest(Base):
    """A researcher asks for a restricted dataset: purpose and answers kept verbatim (they are evidence)."""

    __tablename__ = "access_requests"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(Text)
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    duration_days: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))  # None: every column
    agreement_version_id: Mapped[str | None] = mapped_column(ForeignKey("agreement_versions.id"))
    state: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending approved denied withdrawn
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    decided: Mapped[dt.datetime | None] = mapped_column(DateTime)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str] = mapped_column(Text, default="")  # the approver's note or the denial's reason
    grant_id: Mapped[str | None] = mapped_column(String(36))


class AccessGrant(Base):
    """The one object that lets a grantee read a restricted dataset: a user, or an organization (every
    member, present and future), until ``expires``, optionally only ``columns``. Revoked or expired
    grants stop working on the next call: every check reads this table."""

    __tablename__ = "access_grants"
    # The worker's periodic "expires within 14 days, not yet told" scan (catalog.records.notify).
    __table_args__ = (Index("ix_access_grants_expiry", "expiry_notified", "expires"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    package_id: Mapped[str] = mapped_column(ForeignKey("packages.id"), index=True)
    grantee_type: Mapped[str] = mapped_column(String(20))  # user or organization
    grantee_id: Mapped[str] = mapped_column(String(36), index=True)
    expires: Mapped[dt.datetime] = mapped_column(DateTime)
    columns: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))  # None: every column
    agreement_version_id: Mapped[str | None] = mapped_column(ForeignKey("agreement_versions.id"))
    request_id: Mapped[str | None] = mapped_column(String(36))
    approved_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    revoke_reason: Mapped[str] = mapped_column(Text, default="")
    expiry_notified: Mapped[bool] = mapped_column(Boolean, default=False)


class Notification(Base):
    """An inbox entry for a user (a request to decide, a decision, a grant about to expire)."""

    __tablename__ = "notifications"
    # notification_list: one user's entries, newest first, and the count of those unread.
    __table_args__ = (Index("ix_notifications_user_created", "user_id", "created"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    read: Mapped[dt.datetime | None] = mapped_column(DateTime)


class OutboxMail(Base):
    """An e-mail to send, written in the same transaction as its notification; the worker sends it with
    retries, so a mail failure never loses the event.

    ``state``: ``queued`` (due at ``not_before``) → ``sending`` (claimed by ``claimed_by`` until
    ``lease_until``; one conditional UPDATE, so two workers never both hold it) → ``sent``, or back to
    ``queued`` with ``last_error`` and a later ``not_before``, or ``failed`` after the last attempt
    (kept with its error, never deleted). See :mod:`catalog.records.outbox`."""

    __tablename__ = "outbox_mail"
    __table_args__ = (Index("ix_outbox_mail_due", "state", "not_before"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    notification_id: Mapped[str] = mapped_column(ForeignKey("notifications.id"), index=True)
    to_address: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    sent: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
