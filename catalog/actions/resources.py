"""Resources: the files of a dataset, and their uploads into the ingest queue."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from catalog import audit, authz, dictize, jobs, keys, lookup, validate
from catalog.actions import action
from catalog.context import Context
from catalog.errors import NotFound, ValidationError
from catalog.models import Package, Resource, ResourceVersion, new_id, utcnow
from catalog.uploads import Upload, format_from_filename

log = logging.getLogger(__name__)
DOWNLOAD_URL_SECONDS = 300


def _resource_and_package(s, ctx: Context, resource_id: str) -> tuple[Resource, Package]:
    res = lookup.resource(s, resource_id)
    if res is None:
        raise NotFound("Resource not found")
    pkg = authz.require_read_package(s, ctx.actor, res.package)
    return res, pkg


def resource_dict(s, ctx: Context, res: Resource) -> dict[str, Any]:
    version = s.get(ResourceVersion, res.current_version_id) if res.current_version_id else None
    return dictize.resource(res, version, ctx.site_url)


@action
def resource_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Add a resource to dataset ``package_id``: a link (``url``) or a file (multipart ``upload``).

    An upload is streamed to object storage as received, then recorded and queued
    for ingest in one transaction; ``ingest_status`` follows its progress.
    """
    authz.require_user(ctx.actor, "add resources")
    package_key = validate.required_id(data, "package_id")
    with ctx.platform.read() as s:
        pkg = lookup.package(s, package_key)
        authz.require_edit_package(s, ctx.actor, pkg)
        package_id = pkg.id
    errors = validate.Errors()
    upload = data.get("upload")
    if upload is not None and not isinstance(upload, Upload):
        errors.add("upload", "Must be a file sent as multipart/form-data")
    fields = {f: validate.text(data.get(f), errors, f, 2000 if f != "description" else 100_000)
              for f in ("name", "description", "format", "url", "mimetype")}
    errors.raise_if_any()

    resource_id, version_id = new_id(), new_id()
    stored = None
    if upload is not None:
        raw_key = keys.raw_upload(resource_id, version_id)
        stored = ctx.platform.store.put_stream(raw_key, upload.stream, ctx.settings.max_upload_bytes)
        fields["name"] = fields["name"] or upload.display_name
        fields["format"] = fields["format"] or format_from_filename(upload.filename)
        fields["url"] = ""
    try:
        with ctx.platform.write.begin() as s:
            pkg = authz.require_edit_package(s, ctx.actor, s.get(Package, package_id))
            position = len([r for r in pkg.resources if r.state == "active"])
            now = utcnow()
            res = Resource(id=resource_id, package_id=pkg.id, position=position, created=now,
                           last_modified=now, **fields)
            s.add(res)
            detail: dict[str, Any] = {"package_id": pkg.id}
            if stored is not None:
                res.url_type = "upload"
                res.ingest_status = "queued"
                s.add(ResourceVersion(id=version_id, resource_id=res.id, number=1, sha256=stored.sha256,
                                      size=stored.size, raw_key=stored.key,
                                      original_filename=upload.display_name, uploader_id=ctx.actor.id))
                s.flush()
                jobs.enqueue(s, res.id, version_id)
                detail.update(version_id=version_id, size=stored.size, sha256=stored.sha256)
            pkg.metadata_modified = now
            audit.record(s, ctx.actor_name, "resource_create", "resource", res.id, detail)
            s.flush()
            return resource_dict(s, ctx, res)
    except Exception:
        if stored is not None:  # nothing refers to it: do not leave an orphan behind
            try:
                ctx.platform.store.remove(stored.key)
            except Exception:  # pragma: no cover - best effort
                log.warning("could not remove orphan upload %s", stored.key)
        raise


@action
def resource_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Return a resource by ``id``, with ``ingest_status``, ``ingest_error`` and ``datastore_active``."""
    with ctx.platform.read() as s:
        res, _ = _resource_and_package(s, ctx, validate.required_id(data))
        return resource_dict(s, ctx, res)


@action
def resource_download(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """A short-lived (5 minute) URL for the original upload of resource ``id``'s current version."""
    resource_id = validate.required_id(data)
    with ctx.platform.write.begin() as s:
        res, _ = _resource_and_package(s, ctx, resource_id)
        version = s.get(ResourceVersion, res.current_version_id) if res.current_version_id else None
        if version is None:
            raise ValidationError({"id": ["This resource has no published upload to download"]})
        audit.record(s, ctx.actor_name, "resource_download", "resource", res.id,
                     {"version_id": version.id})
        url = ctx.platform.store.presigned_get(version.raw_key, dt.timedelta(seconds=DOWNLOAD_URL_SECONDS),
                                               version.original_filename or f"{res.id}.bin")
        return {"url": url, "expires_in": DOWNLOAD_URL_SECONDS}
