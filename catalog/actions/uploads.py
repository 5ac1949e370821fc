"""Large uploads in parts, sent by the client straight to object storage with presigned URLs, and
the permission check a client asks before it sends a file at all.

``resource_upload_start`` opens an S3 multipart upload under a key built from
ids; ``resource_upload_part`` hands out a short-lived PUT URL for one part;
``resource_upload_show`` lists the parts already stored, so a broken transfer
resumes where it stopped; ``resource_upload_complete`` joins the parts, hashes
the result and records the version and its ingest job in one transaction.
``resource_upload_check`` answers, before a byte is sent, whether an upload would be refused.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Any

from catalog.access import policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.actions.resources import resource_changed, resource_dict
from catalog.core import keys, validate
from catalog.core.errors import Hidden, NotFound, PayloadTooLarge, ValidationError
from catalog.db import lookup
from catalog.db.models import MultipartUpload, Package, Resource, User, new_id, utcnow
from catalog.records import audit
from catalog.storage.objects import StoredObject
from catalog.versions import intake
from catalog.versions.uploads import display_filename, format_from_filename

MIN_PART = 16 * 1024 * 1024
MAX_PARTS = 9000
URL_SECONDS = 3600


def _get(s, ctx: Context, upload_id: str) -> MultipartUpload:
    """The caller's open upload (sysadmins see every one); others' uploads do not exist for them."""
    up = s.get(MultipartUpload, upload_id)
    uploader = s.get(User, up.user_id) if up is not None and up.user_id else None
    if up is None or uploader is None or not policy.allowed(s, ctx.actor, Permission.MANAGE_ACCOUNT, uploader):
        raise (NotFound if uploader is None else Hidden)("Upload not found")  # Hidden: a refusal
    if up.state != "open":
        raise ValidationError({"upload_id": [f"This upload is {up.state}"]})
    return up


def _info(up: MultipartUpload) -> dict[str, Any]:
    return {"upload_id": up.id, "resource_id": up.resource_id, "size": up.size, "part_size": up.part_size,
            "part_count": max(1, math.ceil(up.size / up.part_size)), "state": up.state,
            "url_expires_in": URL_SECONDS}


def _upload_size(ctx: Context, data: dict[str, Any], minimum: int) -> int:
    size = validate.integer(data.get("size"), "size", 0, minimum)
    if size > ctx.settings.max_upload_bytes:
        raise PayloadTooLarge(f"The upload of {size} bytes exceeds the limit of {ctx.settings.max_upload_bytes} bytes")
    return size


def _upload_target(s, ctx: Context, data: dict[str, Any]) -> tuple[Package, Resource | None]:
    """The dataset an upload goes to and the resource it makes a new version of (``id``; None for a
    new resource of ``package_id``), if the caller may edit that dataset."""
    policy.require_user(ctx.actor, "upload files")
    if data.get("id"):
        res, pkg = policy.require_resource(s, ctx.actor, str(data["id"]), Permission.EDIT_DATASET)
        return pkg, res
    return policy.require(s, ctx.actor, Permission.EDIT_DATASET,
                          lookup.package(s, validate.required_id(data, "package_id"))), None


@action
def resource_upload_check(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Whether the caller may upload a file of ``size`` bytes (optional) to resource ``id`` (a new
    version) or dataset ``package_id`` (a new resource): the checks ``resource_create``,
    ``resource_patch`` and ``resource_upload_start`` make, answered before a byte is sent, so a
    client never streams a large file only to learn it is refused (``mosu push`` asks it first).
    The refusals are theirs (403, 404, 413); the answer says where the upload would go."""
    with ctx.platform.read() as s:
        pkg, res = _upload_target(s, ctx, data)
        answer = {"package_id": pkg.id, "resource_id": res.id if res else None,
                  "max_upload_bytes": ctx.settings.max_upload_bytes}
    if data.get("size") not in (None, ""):
        answer["size"] = _upload_size(ctx, data, 0)
    return answer


@action
def resource_upload_start(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Start a large upload of ``size`` bytes (``filename``): to existing resource ``id`` as a new
    version, or as a new resource ``name`` of dataset ``package_id``. Returns ``upload_id``,
    ``part_size`` and ``part_count``; fetch a URL per part with ``resource_upload_part``."""
    policy.require_user(ctx.actor, "upload files")
    size = _upload_size(ctx, data, 1)
    filename = display_filename(str(data.get("filename") or ""))
    with ctx.platform.read() as s:
        pkg, res = _upload_target(s, ctx, data)
        resource_id, new = (res.id, False) if res is not None else (new_id(), True)
        package_id, org_id = pkg.id, pkg.owner_org
    version_id = new_id()
    key = keys.raw_upload(resource_id, version_id)
    part_size = max(MIN_PART, math.ceil(size / MAX_PARTS / (1 << 20)) << 20)
    s3_id = ctx.platform.store.multipart_start(key)
    with ctx.platform.write.begin() as s:
        up = MultipartUpload(package_id=package_id, resource_id=resource_id, version_id=version_id,
                             new_resource=new, resource_name=str(data.get("name") or filename),
                             user_id=ctx.actor.id, key=key, s3_upload_id=s3_id, filename=filename, size=size,
                             part_size=part_size, created=utcnow(), state="open")
        s.add(up)
        s.flush()
        audit.record(s, ctx, "resource_upload_start", "resource", resource_id,
                     {"upload_id": up.id, "size": size}, package_id=package_id, resource_id=resource_id,
                     org_id=org_id)
        return _info(up)


@action
def resource_upload_part(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """A presigned PUT URL (valid one hour) for part ``part_number`` (1-based) of ``upload_id``."""
    with ctx.platform.read() as s:
        up = _get(s, ctx, validate.required_id(data, "upload_id"))
        count = max(1, math.ceil(up.size / up.part_size))
        number = validate.integer(data.get("part_number"), "part_number", 1, 1, count)
        key, s3_id = up.key, up.s3_upload_id
    url = ctx.platform.store.multipart_part_url(key, s3_id, number, dt.timedelta(seconds=URL_SECONDS))
    return {"upload_id": data["upload_id"], "part_number": number, "url": url, "expires_in": URL_SECONDS}


@action
def resource_upload_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """The state of ``upload_id`` with the parts already stored, so a client can resume."""
    with ctx.platform.read() as s:
        up = _get(s, ctx, validate.required_id(data, "upload_id"))
        info = _info(up)
        key, s3_id = up.key, up.s3_upload_id
    parts = ctx.platform.store.multipart_parts(key, s3_id)
    return {**info, "parts": [{"part_number": n, "size": size} for n, size, _ in parts]}


@action
def resource_upload_complete(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Join the parts of ``upload_id``, check the size, and queue the new version for ingest."""
    upload_id = validate.required_id(data, "upload_id")
    with ctx.platform.read() as s:
        up = _get(s, ctx, upload_id)
        key, s3_id, size, part_size = up.key, up.s3_upload_id, up.size, up.part_size
    store = ctx.platform.store
    parts = store.multipart_parts(key, s3_id)
    expected = max(1, math.ceil(size / part_size))
    missing = sorted(set(range(1, expected + 1)) - {n for n, _, _ in parts})
    if missing or sum(p[1] for p in parts) != size:
        raise ValidationError({"parts": [f"{len(parts)} of {expected} parts stored "
                                         f"({sum(p[1] for p in parts)} of {size} bytes); missing: {missing[:20]}"]})
    store.multipart_complete(key, s3_id, sorted(parts))
    stored_size, digest = store.sha256(key)
    stored = StoredObject(key, stored_size, digest)
    try:
        with ctx.platform.write.begin() as s:
            up = _get(s, ctx, upload_id)
            pkg = policy.require(s, ctx.actor, Permission.EDIT_DATASET, s.get(Package, up.package_id))
            if up.new_resource:
                now = utcnow()
                res = Resource(id=up.resource_id, package_id=pkg.id, name=up.resource_name,
                               format=format_from_filename(up.filename), created=now, last_modified=now,
                               extras={}, position=len([r for r in pkg.resources if r.state == "active"]))
                s.add(res)
                s.flush()
            else:
                res = s.get(Resource, up.resource_id)
            created = intake.add_version(s, res, up.version_id, stored, display_filename(up.filename),
                                         ctx.actor.id if ctx.actor else None)
            up.state = "completed"
            resource_changed(s, ctx, res, pkg, "create" if up.new_resource else "update",
                             {"upload_id": up.id, "version_id": up.version_id, "size": stored_size, "sha256": digest}
                             if created else {"unchanged_upload": digest})
            result = resource_dict(s, ctx, res)
    except Exception:
        intake.discard(ctx.platform.store, stored)
        raise
    if not created:
        intake.discard(ctx.platform.store, stored)  # identical bytes: the current version already holds them
    return result


@action
def resource_upload_abort(ctx: Context, data: dict[str, Any]) -> None:
    """Abandon ``upload_id`` and free the parts stored so far."""
    with ctx.platform.write.begin() as s:
        up = _get(s, ctx, validate.required_id(data, "upload_id"))
        up.state = "aborted"
        ctx.platform.store.multipart_abort(up.key, up.s3_upload_id)
        pkg = s.get(Package, up.package_id)
        audit.record(s, ctx, "resource_upload_abort", "resource", up.resource_id, {"upload_id": up.id},
                     package_id=up.package_id, resource_id=up.resource_id, org_id=pkg.owner_org if pkg else None)
    return None
