"""Resources: the files and links of a dataset, and their uploads into the ingest queue."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access import policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.actions.packages import apply_resource_fields, error_details, package_dict, scoped_resource
from catalog.core import keys, validate
from catalog.core.errors import NotFound, ValidationError
from catalog.db import dictize, lookup
from catalog.db.models import IngestJob, Package, Resource, ResourceVersion, new_id, utcnow
from catalog.records import audit
from catalog.records.dataset_change import record_dataset_change
from catalog.storage.objects import StoredObject
from catalog.versions import intake, lifecycle, unpublished
from catalog.versions.lifecycle import JobState
from catalog.versions.resolve import NoPublishedVersion, Read, version_to_read
from catalog.versions.uploads import Upload, format_from_filename

log = logging.getLogger(__name__)
DOWNLOAD_URL_SECONDS = 300


def resource_dict(s: Session, ctx: Context, res: Resource) -> dict[str, Any]:
    """The resource as the caller may see it: the details of an unpublished upload for its editors."""
    version = s.get(ResourceVersion, res.current_version_id) if res.current_version_id else None
    editor = policy.allowed(s, ctx.actor, Permission.EDIT_DATASET, res.package)
    detail = error_details(s, [res]).get(res.id) if editor else None
    return scoped_resource(dictize.resource(res, version, ctx.site_url, editor=editor, error_detail=detail),
                           policy.shown_columns(s, ctx.actor, res.package))


def _upload_of(data: dict[str, Any]) -> Upload | None:
    upload = data.get("upload")
    if upload in (None, ""):
        return None
    if not isinstance(upload, Upload):
        raise ValidationError({"upload": ["Must be a file sent as multipart/form-data"]})
    return upload


def _store_upload(ctx: Context, resource_id: str, upload: Upload) -> tuple[str, StoredObject]:
    """Stream the upload to its raw key (outside any transaction: it may take minutes)."""
    version_id = new_id()
    stored = ctx.platform.store.put_stream(keys.raw_upload(resource_id, version_id), upload.stream,
                                           ctx.settings.max_upload_bytes)
    return version_id, stored


def resource_changed(s: Session, ctx: Context, res: Resource, pkg: Package, verb: str, detail: dict) -> None:
    """A resource of ``pkg`` was created, updated or deleted (``verb``): the dataset is modified now,
    and the change recorded (see :func:`record_dataset_change`)."""
    pkg.metadata_modified = utcnow()
    s.flush()
    record_dataset_change(s, ctx, pkg, "changed", package_dict(s, pkg, ctx.site_url), f"resource_{verb}",
                          about=("resource", res.id), detail=detail)


@action
def resource_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Add a resource to dataset ``package_id``: a link (``url``) or a file (multipart ``upload``).

    An upload is streamed to object storage as received, then recorded and queued
    for ingest in one transaction; ``ingest_status`` follows its progress.
    """
    policy.require_user(ctx.actor, "add resources")
    with ctx.platform.read() as s:
        pkg = policy.require(s, ctx.actor, Permission.EDIT_DATASET,
                             lookup.package(s, validate.required_id(data, "package_id")))
        package_id = pkg.id
    upload = _upload_of(data)
    resource_id = new_id()
    version_id, stored = _store_upload(ctx, resource_id, upload) if upload else (None, None)
    try:
        with ctx.platform.write.begin() as s:
            pkg = policy.require(s, ctx.actor, Permission.EDIT_DATASET, s.get(Package, package_id))
            now = utcnow()
            res = Resource(id=resource_id, package_id=pkg.id, created=now, extras={},
                           position=len([r for r in pkg.resources if r.state == "active"]))
            errors = validate.Errors()
            apply_resource_fields(res, data, errors, replace=True)
            errors.raise_if_any()
            s.add(res)
            s.flush()
            detail: dict[str, Any] = {}
            if upload is not None:
                res.name = res.name or upload.display_name
                res.format = res.format or format_from_filename(upload.filename)
                intake.add_version(s, res, version_id, stored, upload.display_name, ctx.actor.id if ctx.actor else None)
                detail.update(version_id=version_id, size=stored.size, sha256=stored.sha256)
            resource_changed(s, ctx, res, pkg, "create", detail)
            return resource_dict(s, ctx, res)
    except Exception:
        intake.discard(ctx.platform.store, stored)
        raise


def _update(ctx: Context, data: dict[str, Any], replace: bool) -> dict[str, Any]:
    resource_id = validate.required_id(data)
    with ctx.platform.read() as s:
        policy.require_resource(s, ctx.actor, resource_id, Permission.EDIT_DATASET)
    upload = _upload_of(data)
    version_id, stored = _store_upload(ctx, resource_id, upload) if upload else (None, None)
    try:
        with ctx.platform.write.begin() as s:
            res, pkg = policy.require_resource(s, ctx.actor, resource_id, Permission.EDIT_DATASET)
            errors = validate.Errors()
            apply_resource_fields(res, data, errors, replace=replace)
            errors.raise_if_any()
            detail: dict[str, Any] = {}
            if upload is not None:
                uploader = ctx.actor.id if ctx.actor else None
                if intake.add_version(s, res, version_id, stored, upload.display_name, uploader):
                    detail.update(version_id=version_id, size=stored.size, sha256=stored.sha256)
                else:
                    detail["unchanged_upload"] = stored.sha256
            resource_changed(s, ctx, res, pkg, "update", detail)
            result = resource_dict(s, ctx, res)
    except Exception:
        intake.discard(ctx.platform.store, stored)
        raise
    if upload is not None and "unchanged_upload" in detail:
        intake.discard(ctx.platform.store, stored)  # identical bytes: the current version already holds them
    return result


@action
def resource_update(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Replace the metadata of resource ``id`` (fields left out are cleared). With a multipart
    ``upload`` the file becomes a new version (identical bytes make none)."""
    return _update(ctx, data, replace=True)


@action
def resource_patch(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Change only the given fields of resource ``id``; an ``upload`` makes a new version."""
    return _update(ctx, data, replace=False)


@action
def resource_delete(ctx: Context, data: dict[str, Any]) -> None:
    """Delete resource ``id`` (soft: its stored versions are kept)."""
    with ctx.platform.write.begin() as s:
        res, pkg = policy.require_resource(s, ctx.actor, validate.required_id(data), Permission.EDIT_DATASET)
        res.state = "deleted"
        resource_changed(s, ctx, res, pkg, "delete", {})
    return None


@action
def resource_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Return a resource by ``id``, with ``ingest_status``, ``ingest_error`` and ``datastore_active``."""
    with ctx.platform.read() as s:
        res, _ = policy.require_resource(s, ctx.actor, validate.required_id(data))
        return resource_dict(s, ctx, res)


@action
def ingest_status_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """The ingest job of resource ``id``'s latest upload: ``state`` (queued, running, done,
    failed), ``stage``, ``attempts``, ``progress`` (bytes, rows, format, encoding), ``error``, and
    ``version_status``, the state of the version it ingests: a job ``done`` left it ``ready``
    (published) or ``held`` for a personal-information acknowledgement (``error`` says why)."""
    with ctx.platform.read() as s:
        res, pkg = policy.require_resource(s, ctx.actor, validate.required_id(data))
        job = s.scalar(select(IngestJob).where(IngestJob.resource_id == res.id)
                       .order_by(IngestJob.created.desc()).limit(1))
        if job is None:
            raise NotFound("This resource has no upload to ingest")
        version = s.get(ResourceVersion, job.version_id)
        editor = policy.allowed(s, ctx.actor, Permission.EDIT_DATASET, pkg)
        error, progress = job.error, job.progress or {}
        if error is None and version is not None and version.status in lifecycle.UNPUBLISHED_OUTCOMES:
            error = version.error  # held: the job is done, the reason is the version's
        if not editor:  # the job's messages and odd values may quote the upload: a summary for others
            error = (unpublished.error_summary(version.status, version.validation) if version else None) \
                or (unpublished.FAILED if job.state == JobState.FAILED else None)
            progress = unpublished.progress(progress)
        return {"resource_id": res.id, "job_id": job.id, "version_id": job.version_id,
                "version": version.number if version else None, "state": job.state, "stage": job.stage,
                "attempts": job.attempts, "progress": progress, "error": error,
                "version_status": version.status if version else None,
                "ingest_status": res.ingest_status, "created": dictize.iso(job.created),
                "updated": dictize.iso(job.updated)}


@action
def resource_view_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The views of resource ``id``: a table view once its data is in the datastore."""
    with ctx.platform.read() as s:
        res, pkg = policy.require_resource(s, ctx.actor, validate.required_id(data))
        if res.current_version_id is None:
            return []
        return [{"id": f"{res.id}-table", "resource_id": res.id, "package_id": pkg.id,
                 "view_type": "datatables_view", "title": "Table", "description": "", "filterable": True}]


DOWNLOAD_FORMATS = ("original", "parquet")


def _download_version(s: Session, res: Resource, key: Any, fmt: str, editor: bool) -> ResourceVersion:
    """The version to download: by default the current one; a named ``key`` (number or id) if it was
    published, or, for the ``original`` upload, an unpublished one to the dataset's editors (to see
    why it failed, say). A held version's Parquet must not leave the platform until it is published."""
    named = key not in (None, "")
    try:
        return version_to_read(s, res, key, Read.EDITORS if named and fmt == "original" else Read.PUBLISHED,
                               editor=editor)
    except NoPublishedVersion:
        raise ValidationError({"id": ["This resource has no published upload to download"]}) from None


@action
def resource_download(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """A short-lived (5 minute) URL for one stored file of resource ``id``, after the permission check.

    ``version``: a version number or id (default the current one). ``format``: ``original`` (the
    default: the upload exactly as received) or ``parquet`` (the published Parquet of that version).
    The URL is a presigned GET of that single object, so it cannot be widened to others, and it
    expires quickly because it bypasses the catalog's permission check once issued. Only a published
    version has a Parquet to download; the original of an unpublished one (queued, failed, held) is
    for the dataset's editors only, as a held version may hold personal information. The audit event
    records the version and format.
    """
    resource_id = validate.required_id(data)
    fmt = data.get("format") or "original"
    if fmt not in DOWNLOAD_FORMATS:
        raise ValidationError({"format": [f"Must be one of: {', '.join(DOWNLOAD_FORMATS)}"]})
    with ctx.platform.read() as s:
        # Whole files hold every column: the original and the Parquet both need DOWNLOAD_ORIGINAL, which a
        # column-scoped grant lacks (its holder is told to use datastore_search or an export). Asked before
        # anything about the versions is looked up, and long before the URL is signed.
        res, pkg, reading = policy.require_resource_data(s, ctx.actor, resource_id, Permission.DOWNLOAD_ORIGINAL)
        editor = policy.allowed(s, ctx.actor, Permission.EDIT_DATASET, pkg)
        version = _download_version(s, res, data.get("version"), fmt, editor)
        published = lifecycle.is_published(version)
        if fmt == "parquet":
            key = version.parquet_key
            stem = (version.original_filename or res.id).rsplit(".", 1)[0] or res.id
            filename = f"{stem}.v{version.number}.parquet"
        else:
            # A published version's original is for whoever may download originals; an unpublished
            # one's (failed, held: it may hold personal information) for the dataset's editors.
            if not published:
                policy.require(s, ctx.actor, Permission.EDIT_DATASET, pkg, missing="Resource not found",
                               denied=f"Access denied: version {version.number} is {version.status}, not published; "
                                      "only the dataset's editors may download its original upload")
            key = version.raw_key
            filename = version.original_filename or f"{res.id}.bin"
        # A read: its event is committed (or the URL refused with 503) before the URL is signed.
        audit.record_read(ctx, "resource_download", "resource", res.id,
                          {"version_id": version.id, "version": version.number, "format": fmt, "filename": filename,
                           "expires_in": DOWNLOAD_URL_SECONDS, **reading.audit()},
                          **reading.refs(pkg, res.id))
        url = ctx.platform.store.presigned_get(key, dt.timedelta(seconds=DOWNLOAD_URL_SECONDS), filename)
        return {"url": url, "expires_in": DOWNLOAD_URL_SECONDS, "version": version.number,
                "version_id": version.id, "format": fmt, "filename": filename}
