"""Datasets (CKAN packages): create, read, update, patch, delete, purge, collaborators, activity."""
from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from catalog.access import columns, policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.actions.access_grants import access_summary
from catalog.core import levels, licenses, validate
from catalog.core.dictionary import DICTIONARY_KEY, DictionaryError, dictionary_dict, parse_dictionary
from catalog.core.errors import NotAuthorized, NotFound, ValidationError
from catalog.db import dictize, lookup
from catalog.db.models import (
    Acceptance,
    AccessGrant,
    AccessRequest,
    Activity,
    Agreement,
    Collaborator,
    Group,
    IngestJob,
    Member,
    MultipartUpload,
    Package,
    PackageTag,
    PiiAcknowledgement,
    QualitySuite,
    Resource,
    ResourceVersion,
    utcnow,
)
from catalog.records import activity, audit
from catalog.records.dataset_change import record_dataset_change
from catalog.search import changes
from catalog.versions import disclosure
from catalog.versions.lifecycle import UNPUBLISHED_OUTCOMES

log = logging.getLogger(__name__)

TEXT_FIELDS = {"title": 255, "notes": 100_000, "url": 2000, "version": 100, "author": 255,
               "author_email": 255, "maintainer": 255, "maintainer_email": 255}
# Keys of a CKAN dataset dict that are derived or read-only: accepted on input (ckanapi sends
# package_show output back) and ignored.
DERIVED = {"organization", "num_resources", "num_tags", "metadata_created", "metadata_modified",
           "creator_user_id", "isopen", "license_title", "license_url", "relationships_as_object",
           "relationships_as_subject", "tracking_summary", "quality_score", "access"}
ACCESS_FIELDS = ("access_level", "embargo_until", "agreement_id", "grant_days")
CORE = {"id", "name", "type", "owner_org", "private", "state", "license_id", "tags", "extras", *ACCESS_FIELDS,
        "groups", "resources", *TEXT_FIELDS, *DERIVED}
RESOURCE_TEXT = {"name": 2000, "description": 100_000, "format": 100, "url": 4000, "mimetype": 255}
RESOURCE_READONLY = {"id", "package_id", "position", "state", "created", "last_modified",
                     "datastore_active", "ingest_status", "ingest_error", "version_id", "row_count",
                     "url_type", "upload", "metadata_modified", "cache_last_updated"}
ACTIVITY_LIMIT_DEFAULT, ACTIVITY_LIMIT_MAX = 31, 100
RESERVED_NAMES = frozenset({"new", "edit", "search"})
"""Dataset names CKAN refuses: the pages' own addresses under ``/dataset/`` (``/dataset/new``)."""


# -- reading ---------------------------------------------------------------------------------

def package_groups(s: Session, package_id: str) -> list[Group]:
    return list(s.scalars(select(Group).join(Member, Member.group_id == Group.id).where(
        Member.table_name == "package", Member.table_id == package_id, Group.state == "active",
        Group.is_organization.is_(False)).order_by(Group.name)))


def package_dict(s: Session | None, pkg: Package, site_url: str, groups: list[Group] | None = None,
                 editor: bool = False, scope: columns.Columns = None) -> dict[str, Any]:
    """The full CKAN dict of a package with its active resources and groups (looked up unless given;
    with no session, ``groups`` must be given and no resource may have a version yet). Only an
    ``editor`` of the dataset gets the details of unpublished uploads (see :mod:`catalog.versions.unpublished`);
    a reader with a column ``scope`` gets the data dictionaries without the rows of hidden columns."""
    resources = [r for r in pkg.resources if r.state == "active"]
    version_ids = [r.current_version_id for r in resources if r.current_version_id]
    versions = {v.id: v for v in s.scalars(select(ResourceVersion).where(ResourceVersion.id.in_(version_ids)))} \
        if version_ids else {}
    details = error_details(s, resources) if editor else {}
    return dictize.package(pkg, [scoped_resource(dictize.resource(r, versions.get(r.current_version_id or ""), site_url,
                                                                  editor=editor, error_detail=details.get(r.id)), scope)
                                 for r in resources], package_groups(s, pkg.id) if groups is None else groups)


def scoped_resource(out: dict[str, Any], scope: columns.Columns) -> dict[str, Any]:
    """A resource dict as a reader with a column ``scope`` sees it: its data dictionary without the
    rows of the columns that do not exist for them."""
    return columns.resource_extras(out, DICTIONARY_KEY, scope)


def error_details(s: Session, resources: list[Resource]) -> dict[str, str]:
    """For each failed or held resource, its latest upload's detailed error (which may quote the
    upload's values: for the dataset's editors only; the resource row holds the public summary)."""
    ids = [r.id for r in resources if r.ingest_status in UNPUBLISHED_OUTCOMES]
    if not ids:
        return {}
    outcomes = [state.value for state in UNPUBLISHED_OUTCOMES]
    rows = s.execute(select(ResourceVersion.resource_id, ResourceVersion.error)
                     .where(ResourceVersion.resource_id.in_(ids), ResourceVersion.status.in_(outcomes))
                     .order_by(ResourceVersion.number))
    return {rid: error for rid, error in rows if error}  # the latest version's comes last and wins


def _find(s: Session, ctx: Context, data: dict[str, Any]) -> Package:
    return policy.require(s, ctx.actor, Permission.VIEW_DATASET, lookup.package(s, validate.required_id(data)))


# -- writing ---------------------------------------------------------------------------------

def chosen_id(s: Session, ctx: Context, model, value: Any, errors: validate.Errors, field: str = "id") -> str | None:
    """A caller-chosen id (ckanapi load keeps ids across sites): a free UUID, or an error.

    Only sysadmins choose ids; anyone else's is ignored (None: a new one is drawn), as CKAN ignores
    a non-sysadmin's dataset id, so nobody can squat the ids a later ``ckanapi load`` needs.
    """
    if value in (None, "") or not policy.is_sysadmin(ctx.actor):
        return None
    try:
        value = str(uuid.UUID(str(value)))
    except ValueError:
        errors.add(field, "Must be a UUID")
        return None
    if s.get(model, value) is not None:
        errors.add(field, "That id is already in use")
        return None
    return value


def _apply_fields(s: Session, ctx: Context, pkg: Package, data: dict[str, Any], errors: validate.Errors) -> None:
    """Set every dataset field from ``data`` (a full dict: missing fields are reset, as CKAN does)."""
    name = validate.name(data.get("name"), errors)
    if name in RESERVED_NAMES and name != pkg.name:  # as CKAN: /dataset/new is the form, not a dataset
        errors.add("name", "That name cannot be used")
    if name and name != pkg.name:
        other = s.scalar(select(Package.id).where(Package.name == name))
        if other is not None and other != pkg.id:
            errors.add("name", "That URL is already in use.")
    pkg.name = name
    for field, max_len in TEXT_FIELDS.items():
        check = validate.url if field == "url" else validate.text
        setattr(pkg, field, check(data.get(field), errors, field, max_len))
    license_id = data.get("license_id") or "notspecified"  # kept even when not in the register, as in CKAN
    if not isinstance(license_id, str):
        errors.add("license_id", "Must be a string")
    elif licenses.id_problem(license_id):
        errors.add("license_id", licenses.id_problem(license_id))
    pkg.license_id = license_id if isinstance(license_id, str) else "notspecified"
    pkg.private = validate.boolean(data.get("private"), errors, "private")
    state = data.get("state") or "active"
    if state not in ("active", "draft", "deleted"):
        errors.add("state", "Must be active, draft or deleted")
    pkg.state = state
    pkg.type = validate.text(data.get("type"), errors, "type", 100) or "dataset"
    extras = validate.extras(data.get("extras"), errors)
    for extra in extras:
        if extra["key"] in CORE:
            errors.add("extras", f"There is a schema field with the same name: {extra['key']}")
    for key, value in data.items():  # unknown top-level keys are kept as extras, as CKAN's plugins do
        if key not in CORE and not key.startswith("_") and isinstance(value, (str, int, float, bool)):
            extras.append({"key": key, "value": str(value)})
    pkg.extras = extras
    tags = sorted({t["name"] for t in validate.tags(data.get("tags"), errors)})
    existing = {t.name: t for t in pkg.tag_rows}  # reuse rows: same primary key, no delete+insert
    pkg.tag_rows = [existing.get(t) or PackageTag(package_id=pkg.id, name=t) for t in tags]
    _apply_access(s, pkg, data, errors)


def _apply_access(s: Session, pkg: Package, data: dict[str, Any], errors: validate.Errors) -> None:
    """The access fields. Unlike CKAN's other fields, one left out of an update keeps its value:
    resetting it would open restricted or embargoed data to a client that does not know the field
    (``ckanapi`` sending back an old dict)."""
    level = data.get("access_level", pkg.access_level) or levels.Level.OPEN.value
    if level not in levels.LEVELS:
        errors.add("access_level", f"Must be one of: {', '.join(levels.LEVELS)}")
        level = pkg.access_level or levels.Level.OPEN.value
    pkg.access_level = level
    if "embargo_until" in data:
        pkg.embargo_until = validate.date(data.get("embargo_until"), errors, "embargo_until")
    if "grant_days" in data or pkg.grant_days is None:
        try:
            pkg.grant_days = validate.integer(data.get("grant_days"), "grant_days", levels.DEFAULT_GRANT_DAYS,
                                              minimum=1, maximum=levels.MAX_GRANT_DAYS)
        except ValidationError as exc:
            errors.add("grant_days", exc.field_errors["grant_days"][0])
            pkg.grant_days = pkg.grant_days or levels.DEFAULT_GRANT_DAYS
    if "agreement_id" in data:
        wanted = data.get("agreement_id") or None
        if wanted is None:
            pkg.agreement_id = None
        elif not isinstance(wanted, str):
            errors.add("agreement_id", "Must be an agreement id")
        else:
            found = s.get(Agreement, wanted)
            if found is None or found.state != "active" or found.owner_org != pkg.owner_org:
                errors.add("agreement_id", "No such agreement in the dataset's organization")
            else:
                pkg.agreement_id = found.id


def _apply_groups(s: Session, ctx: Context, pkg: Package, value: Any, errors: validate.Errors,
                  new: bool = False) -> None:
    """Set the dataset's groups; groups the caller may not manage stay as they were (CKAN's rule)."""
    if value is None:
        value = []
    if not isinstance(value, list):
        errors.add("groups", "Must be a list of {\"name\": ...} objects")
        return
    if new and not value:
        return
    wanted: dict[str, Group] = {}
    for item in value:
        key = item.get("id") or item.get("name") if isinstance(item, dict) else item
        grp = lookup.group(s, str(key), is_organization=False) if key else None
        if grp is None:
            errors.add("groups", f"Group {key!r} does not exist")
            continue
        wanted[grp.id] = grp
    current = {m.group_id: m for m in s.scalars(select(Member).where(
        Member.table_name == "package", Member.table_id == pkg.id))}

    def may_manage(group_id: str) -> bool:  # any member of a group adds datasets to it, as in CKAN
        grp = wanted.get(group_id) or s.get(Group, group_id)
        return grp is not None and policy.allowed(s, ctx.actor, Permission.EDIT_DATASET, grp)

    for group_id in wanted.keys() - current.keys():
        if may_manage(group_id):
            s.add(Member(group_id=group_id, table_name="package", table_id=pkg.id, capacity="public"))
    for group_id in current.keys() - wanted.keys():
        if may_manage(group_id):
            s.delete(current[group_id])


def apply_resource_fields(res: Resource, data: dict[str, Any], errors: validate.Errors, replace: bool) -> None:
    """Resource metadata from ``data``; unknown keys become resource extras, as in CKAN.

    ``schema`` is the data dictionary: checked here and stored in its normal form.
    """
    for field, max_len in RESOURCE_TEXT.items():
        if replace or field in data:
            check = validate.url if field == "url" else validate.text
            value = check(data.get(field), errors, field, max_len)
            if field == "url" and res.url_type == "upload":
                continue  # an uploaded file's URL is ours to build
            setattr(res, field, value if field != "mimetype" else (value or None))
    extras = {} if replace else dict(res.extras or {})
    for key, value in data.items():
        if key in RESOURCE_TEXT or key in RESOURCE_READONLY or key.startswith("_"):
            continue
        if value is None or (key == DICTIONARY_KEY and value == ""):
            extras.pop(key, None)
        elif key == "encoding":  # the provider's declared text encoding, read by ingest
            extras[key] = validate.encoding(value, errors)
        elif key == DICTIONARY_KEY:
            try:
                extras[key] = dictionary_dict(parse_dictionary(value))
            except DictionaryError as exc:
                errors.add(key, f"Invalid data dictionary: {exc}")
        elif isinstance(value, (str, int, float, bool, list, dict)):
            extras[key] = value
    res.extras = extras
    res.last_modified = utcnow()


def _apply_resources(s: Session, ctx: Context, pkg: Package, value: Any, errors: validate.Errors) -> None:
    """Replace the resource list: listed ids are updated, new ones created (with the listed id only
    when a sysadmin sends it), the rest deleted."""
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        errors.add("resources", "Must be a list of resource objects")
        return
    existing = {r.id: r for r in pkg.resources if r.state == "active"}
    kept: set[str] = set()
    for position, rdata in enumerate(value):
        res = existing.get(str(rdata.get("id") or ""))
        if res is None:
            rid = chosen_id(s, ctx, Resource, rdata.get("id"), errors, "resources")
            if rid in kept:  # the same new id twice in one list
                errors.add("resources", "That id is already in use")
                rid = None
            res = Resource(id=rid or str(uuid.uuid4()), package_id=pkg.id, created=utcnow(), state="active",
                           url_type=None, ingest_status=None, ingest_error=None, current_version_id=None)
            pkg.resources.append(res)
        kept.add(res.id)
        res.position = position
        apply_resource_fields(res, rdata, errors, replace=True)
    for rid, res in existing.items():
        if rid not in kept:
            res.state = "deleted"


def _record_change(s: Session, ctx: Context, pkg: Package, verb: str,
                   pkg_dict: dict[str, Any] | None = None) -> dict[str, Any]:
    """Activity, audit event and search mark for a dataset change; returns the new dict."""
    s.flush()
    with s.no_autoflush:  # one flush at commit instead of one per statement below
        if pkg_dict is None:
            pkg_dict = package_dict(s, pkg, ctx.site_url)
        record_dataset_change(s, ctx, pkg, verb, pkg_dict, f"package_{activity.AUDIT_VERBS[verb]}",
                              detail={"name": pkg.name})
    return pkg_dict


def _owner(s: Session, ctx: Context, key: Any, errors: validate.Errors) -> Group | None:
    org = lookup.organization(s, str(key)) if key else None
    if org is None:
        errors.add("owner_org", "An organization must be provided" if not key else "Organization does not exist")
    return org


@action
def package_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Create a dataset in ``owner_org``. Fields as in CKAN: ``name``, ``title``, ``notes``,
    ``license_id``, ``private``, ``tags``, ``extras``, ``groups``, ``url``, ``version``,
    ``author``..., and ``resources`` (links; files come through ``resource_create``).
    Sysadmins may set ``id`` (as ``ckanapi load`` does)."""
    policy.require_user(ctx.actor, "create a dataset")
    errors = validate.Errors()
    # Validate and build the whole dataset, and its dict, before taking the write lock: the
    # lock is then held only for the inserts, so concurrent writers (ckanapi load -p N) overlap.
    with ctx.platform.read() as s:
        org = _owner(s, ctx, data.get("owner_org"), errors)
        if org is None:
            errors.raise_if_any()
        _require_create_in(s, ctx, org)
        now = utcnow()
        pkg = Package(owner_org=org.id, creator_user_id=ctx.actor.id, metadata_created=now,
                      metadata_modified=now, resources=[], organization=org)
        pkg.id = chosen_id(s, ctx, Package, data.get("id"), errors) or str(uuid.uuid4())
        _apply_fields(s, ctx, pkg, data, errors)
        _apply_resources(s, ctx, pkg, data.get("resources"), errors)
        errors.raise_if_any()
        s.expunge(org)
    pkg_dict = None if data.get("groups") else package_dict(None, pkg, ctx.site_url, groups=[])
    with ctx.platform.write.begin() as s:
        _require_create_in(s, ctx, s.get(Group, org.id))  # again: membership may have changed
        if s.scalar(select(Package.id).where((Package.name == pkg.name) | (Package.id == pkg.id))):
            raise ValidationError({"name": ["That URL is already in use."]})
        conn = s.connection()
        conn.execute(insert(Package), [_row(Package, pkg)])
        if pkg.tag_rows:
            conn.execute(insert(PackageTag), [_row(PackageTag, t) for t in pkg.tag_rows])
        if pkg.resources:
            conn.execute(insert(Resource), [_row(Resource, r) for r in pkg.resources])
        if pkg_dict is None:  # groups need the rows in place (rare on create)
            pkg = s.get(Package, pkg.id)
            _apply_groups(s, ctx, pkg, data.get("groups"), errors, new=True)
            errors.raise_if_any()
        return _record_change(s, ctx, pkg, "new", pkg_dict=pkg_dict)


def _require_create_in(s: Session, ctx: Context, org: Group) -> None:
    policy.require(s, ctx.actor, Permission.EDIT_DATASET, org,
                   denied="Access denied: you must be an editor or admin of the organization to create datasets in it")


def _require_move(s: Session, ctx: Context, pkg: Package, target: Group) -> None:
    """Moving a dataset to another organization takes it from one set of members to another: it
    needs edit rights (editor or admin) in both organizations. A dataset collaborator never moves
    it, whatever their capacity: otherwise an ``editor`` collaborator could carry a private dataset
    into an organization of their own and lock its owners out. (Edit rights on an organization come
    from its members only, never from a collaboration.)"""
    source = s.get(Group, pkg.owner_org)
    if not (source is not None and policy.allowed(s, ctx.actor, Permission.EDIT_DATASET, source)
            and policy.allowed(s, ctx.actor, Permission.EDIT_DATASET, target)):
        raise NotAuthorized(f"Access denied: moving dataset {pkg.name} to organization {target.name} needs "
                            "edit rights in both its organization and the new one")


def _refuse_unacknowledged_pii(s: Session, pkg: Package, errors: validate.Errors, field: str = "private") -> None:
    """A dataset's rows become readable by the public (made public, or lowered to ``open`` or
    ``registered``) only once its personal-information findings are acknowledged. The error names
    the field that did it: ``private`` when it goes public, ``access_level`` when it is lowered."""
    from catalog.actions.quality import unacknowledged_pii

    doing = "making the dataset public" if field == "private" else f"lowering the dataset to {pkg.access_level}"
    for res, pending in unacknowledged_pii(s, pkg.id):
        errors.add(field, f"Resource {res.name or res.id!r} holds personal information "
                          f"({disclosure.describe(pending)}); acknowledge it with quality_pii_acknowledge "
                          f"before {doing}.")


def _row(model, obj) -> dict[str, Any]:
    """The column values of a fully built (never flushed) object, for a Core INSERT."""
    return {c.key: getattr(obj, c.key) for c in model.__table__.columns}


def _update(ctx: Context, data: dict[str, Any], verb: str = "changed") -> dict[str, Any]:
    errors = validate.Errors()
    with ctx.platform.write.begin() as s:
        pkg = policy.require(s, ctx.actor, Permission.EDIT_DATASET, lookup.package(s, validate.required_id(data)))
        if data.get("owner_org") and data["owner_org"] not in (pkg.owner_org, getattr(pkg.organization, "name", None)):
            org = _owner(s, ctx, data["owner_org"], errors)
            errors.raise_if_any()
            if org.id != pkg.owner_org:
                _require_move(s, ctx, pkg, org)
                pkg.owner_org, pkg.organization = org.id, org  # both: the returned dict names the new one
        data = {**data, "name": data.get("name") or pkg.name}
        was_public = levels.needs_pii_acknowledgement(pkg.private, pkg.access_level)
        was_private = pkg.private
        _apply_fields(s, ctx, pkg, data, errors)
        if not was_public and levels.needs_pii_acknowledgement(pkg.private, pkg.access_level):
            _refuse_unacknowledged_pii(s, pkg, errors, "private" if was_private else "access_level")
        _apply_resources(s, ctx, pkg, data.get("resources"), errors)
        _apply_groups(s, ctx, pkg, data.get("groups"), errors)
        errors.raise_if_any()
        pkg.metadata_modified = utcnow()
        return _record_change(s, ctx, pkg, verb)


@action
def package_update(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Replace a dataset (``id`` or name) with the given dict: fields left out are reset and
    resources left out are deleted. Call ``package_show``, change the result, send it back."""
    return _update(ctx, data)


@action
def package_patch(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Change only the given fields of dataset ``id``; everything else stays as it is."""
    with ctx.platform.read() as s:
        pkg = policy.require(s, ctx.actor, Permission.EDIT_DATASET, lookup.package(s, validate.required_id(data)))
        current = package_dict(s, pkg, ctx.site_url)
    patched = {**current, **{k: v for k, v in data.items() if k != "id"}, "id": current["id"]}
    return _update(ctx, patched)


@action
def package_delete(ctx: Context, data: dict[str, Any]) -> None:
    """Delete dataset ``id`` (soft: its state becomes ``deleted``; editors still see it)."""
    with ctx.platform.write.begin() as s:
        pkg = policy.require(s, ctx.actor, Permission.EDIT_DATASET, lookup.package(s, validate.required_id(data)))
        pkg.state = "deleted"
        pkg.metadata_modified = utcnow()
        _record_change(s, ctx, pkg, "deleted")
    return None


@action
def dataset_purge(ctx: Context, data: dict[str, Any]) -> None:
    """Remove dataset ``id`` for good, with its resources, versions and stored files (sysadmins only)."""
    policy.require_sysadmin(ctx.actor, "purge datasets")
    with ctx.platform.write.begin() as s:
        pkg = lookup.package(s, validate.required_id(data))
        if pkg is None:
            raise NotFound("Dataset not found")
        resource_ids = [r.id for r in pkg.resources]
        versions = list(s.scalars(select(ResourceVersion).where(ResourceVersion.resource_id.in_(resource_ids))))
        keys = [k for v in versions for k in (v.raw_key, v.parquet_key, v.report_key) if k]
        s.execute(delete(IngestJob).where(IngestJob.resource_id.in_(resource_ids)))
        s.execute(delete(PiiAcknowledgement).where(PiiAcknowledgement.resource_id.in_(resource_ids)))
        s.execute(delete(QualitySuite).where(QualitySuite.resource_id.in_(resource_ids)))
        s.execute(delete(ResourceVersion).where(ResourceVersion.resource_id.in_(resource_ids)))
        s.execute(delete(Member).where(Member.table_name == "package", Member.table_id == pkg.id))
        s.execute(delete(Collaborator).where(Collaborator.package_id == pkg.id))
        uploads = [(u.key, u.s3_upload_id) for u in s.scalars(select(MultipartUpload).where(
            MultipartUpload.package_id == pkg.id, MultipartUpload.state == "open"))]
        s.execute(delete(MultipartUpload).where(MultipartUpload.package_id == pkg.id))
        # Its grants, requests and acceptances go with it (a purge is final); the audit chain keeps
        # the record of each, and this event counts them.
        access = {name: s.execute(delete(model).where(model.package_id == pkg.id)).rowcount
                  for name, model in (("grants", AccessGrant), ("requests", AccessRequest),
                                      ("acceptances", Acceptance))}
        audit.record(s, ctx, "dataset_purge", "package", pkg.id,
                     {"name": pkg.name, "resources": resource_ids, "objects": len(keys), **access},
                     package_id=pkg.id, org_id=pkg.owner_org)
        changes.mark(s, pkg.id)
        s.delete(pkg)
    for key in keys:  # after the commit: a failed delete leaves an orphan object, never a dangling row
        try:
            ctx.platform.store.remove(key)
        except Exception:
            log.warning("purge: could not remove object %s", key, exc_info=True)
    for key, upload_id in uploads:  # multipart uploads in flight: their parts go too
        try:
            ctx.platform.store.multipart_abort(key, upload_id)
        except Exception:
            log.warning("purge: could not abort multipart upload %s", upload_id, exc_info=True)
    return None


@action
def package_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Return a dataset by ``id`` or name, with its resources and groups. For a signed-in caller,
    ``access`` says what they hold on its rows (``can_read``, ``can_download``, ``via``, ``columns``,
    ``grant_id``, ``grant_expires``, ``pending_request_id``, the ``terms`` to accept) or, in
    ``message``, what it takes to read them."""
    with ctx.platform.read() as s:
        pkg = _find(s, ctx, data)
        out = package_dict(s, pkg, ctx.site_url, editor=policy.allowed(s, ctx.actor, Permission.EDIT_DATASET, pkg),
                           scope=policy.shown_columns(s, ctx.actor, pkg))
        if ctx.actor is not None and ctx.actor.id is not None:
            out["access"] = access_summary(s, ctx.actor, pkg)
        return out


def _listed(ctx: Context, include_private: bool):
    """The datasets a list shows: active ones the caller may view, public ones only unless
    ``include_private`` (CKAN's default)."""
    where = policy.datasets_where(ctx.actor, Permission.VIEW_DATASET) & (Package.state == "active")
    return where if include_private else where & Package.private.is_(False)


@action
def package_list(ctx: Context, data: dict[str, Any]) -> list[str]:
    """Names of the site's public active datasets (``limit``, ``offset``). With
    ``include_private=true``, also the private ones the caller may read."""
    errors = validate.Errors()
    include_private = validate.boolean(data.get("include_private"), errors, "include_private")
    errors.raise_if_any()
    limit = validate.integer(data.get("limit"), "limit", 10_000_000, 0)
    offset = validate.integer(data.get("offset"), "offset", 0)
    with ctx.platform.read() as s:
        return list(s.scalars(select(Package.name).where(_listed(ctx, include_private))
                              .order_by(Package.name).limit(limit).offset(offset)))


@action
def current_package_list_with_resources(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Public datasets with their resources, most recently modified first (``limit``, ``offset``)."""
    limit = validate.integer(data.get("limit"), "limit", 10, 0, 1000)
    offset = validate.integer(data.get("offset"), "offset", 0)
    with ctx.platform.read() as s:
        pkgs = s.scalars(select(Package).where(_listed(ctx, include_private=False))
                         .order_by(Package.metadata_modified.desc()).limit(limit).offset(offset)).all()
        return [package_dict(s, p, ctx.site_url) for p in pkgs]


# -- collaborators ---------------------------------------------------------------------------

COLLABORATOR_CAPACITIES = ("editor", "member")


def _manage_collaborators(s: Session, ctx: Context, data: dict[str, Any]) -> Package:
    pkg = lookup.package(s, validate.required_id(data))
    return policy.require(s, ctx.actor, Permission.MANAGE_MEMBERS, pkg,
                          denied=f"Access denied: only a sysadmin may manage the collaborators of "
                                 f"{pkg.name if pkg else ''} (organization admins may)")


def _collaborator_dict(c: Collaborator) -> dict[str, Any]:
    return {"package_id": c.package_id, "user_id": c.user_id, "capacity": c.capacity,
            "modified": c.modified.isoformat()}


@action
def package_collaborator_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Give ``user_id`` (id or name) the ``capacity`` ``editor`` or ``member`` on dataset ``id``."""
    capacity = data.get("capacity")
    with ctx.platform.write.begin() as s:
        pkg = _manage_collaborators(s, ctx, data)
        if capacity not in COLLABORATOR_CAPACITIES:
            raise ValidationError({"capacity": [f"Must be one of {', '.join(COLLABORATOR_CAPACITIES)}"]})
        user = lookup.user(s, validate.required_id(data, "user_id"))
        if user is None or user.state != "active":
            raise NotFound("User not found")
        row = s.get(Collaborator, (pkg.id, user.id)) or Collaborator(package_id=pkg.id, user_id=user.id)
        row.capacity, row.modified = capacity, utcnow()
        s.add(row)
        audit.record(s, ctx, "package_collaborator_create", "package", pkg.id,
                     {"user_id": user.id, "capacity": capacity}, package_id=pkg.id, org_id=pkg.owner_org)
        changes.mark(s, pkg.id)
        s.flush()
        return _collaborator_dict(row)


@action
def package_collaborator_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The collaborators of dataset ``id`` (optionally only one ``capacity``)."""
    with ctx.platform.read() as s:
        pkg = _manage_collaborators(s, ctx, data)
        query = select(Collaborator).where(Collaborator.package_id == pkg.id)
        if data.get("capacity"):
            if data["capacity"] not in COLLABORATOR_CAPACITIES:
                raise ValidationError({"capacity": [f"Must be one of {', '.join(COLLABORATOR_CAPACITIES)}"]})
            query = query.where(Collaborator.capacity == data["capacity"])
        return [_collaborator_dict(c) for c in s.scalars(query.order_by(Collaborator.modified))]


@action
def package_collaborator_delete(ctx: Context, data: dict[str, Any]) -> None:
    """Remove collaborator ``user_id`` from dataset ``id``."""
    with ctx.platform.write.begin() as s:
        pkg = _manage_collaborators(s, ctx, data)
        user = lookup.user(s, validate.required_id(data, "user_id"))
        row = s.get(Collaborator, (pkg.id, user.id)) if user else None
        if row is None:
            raise NotFound("User is not a collaborator on this dataset")
        s.delete(row)
        audit.record(s, ctx, "package_collaborator_delete", "package", pkg.id, {"user_id": user.id},
                     package_id=pkg.id, org_id=pkg.owner_org)
        changes.mark(s, pkg.id)
    return None


@action
def package_collaborator_list_for_user(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The datasets user ``id`` (name or id) is a collaborator on, as CKAN answers it: one
    ``{package_id, user_id, capacity, modified}`` per dataset, public or private, drafts included
    (deleted ones left out), optionally only one ``capacity``. The user themselves and sysadmins may ask."""
    with ctx.platform.read() as s:
        user = lookup.user(s, validate.required_id(data))
        if user is None:
            raise NotFound("User not found")
        policy.require(s, ctx.actor, Permission.MANAGE_ACCOUNT, user,
                       denied="Access denied: only a sysadmin may list another user's collaborations")
        query = (select(Collaborator).join(Package, Package.id == Collaborator.package_id)
                 .where(Collaborator.user_id == user.id, Package.state != "deleted"))
        if data.get("capacity"):
            if data["capacity"] not in COLLABORATOR_CAPACITIES:
                raise ValidationError({"capacity": [f"Must be one of {', '.join(COLLABORATOR_CAPACITIES)}"]})
            query = query.where(Collaborator.capacity == data["capacity"])
        return [_collaborator_dict(c) for c in s.scalars(query.order_by(Collaborator.modified.desc()))]


@action
def package_activity_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The activity stream of dataset ``id``, newest first (``offset``, ``limit`` default 31, max 100;
    ``activity_types`` / ``exclude_activity_types`` filter it). A column-scoped grantee sees the
    snapshots' data dictionaries without the hidden columns, as ``package_show`` shows them."""
    limit = validate.integer(data.get("limit"), "limit", ACTIVITY_LIMIT_DEFAULT, 0, ACTIVITY_LIMIT_MAX)
    offset = validate.integer(data.get("offset"), "offset", 0)
    with ctx.platform.read() as s:
        pkg = _find(s, ctx, data)
        scope = policy.shown_columns(s, ctx.actor, pkg)
        query = activity.filtered(select(Activity).where(Activity.object_id == pkg.id,
                                                         activity.visible_to(ctx.actor)), data)
        return [scoped_activity(activity.as_dict(a), scope) for a in s.scalars(query.offset(offset).limit(limit))]


def scoped_activity(out: dict[str, Any], scope: columns.Columns) -> dict[str, Any]:
    """An activity whose ``data.package`` is a snapshot of the dataset dict, as a reader with a column
    ``scope`` sees it: its resources' data dictionaries without the columns that do not exist for
    them (a snapshot taken after an ingest holds the whole dictionary)."""
    snapshot = (out.get("data") or {}).get("package") if isinstance(out.get("data"), dict) else None
    if scope is None or not isinstance(snapshot, dict) or not isinstance(snapshot.get("resources"), list):
        return out
    resources = [scoped_resource(r, scope) if isinstance(r, dict) else r for r in snapshot["resources"]]
    return {**out, "data": {**out["data"], "package": {**snapshot, "resources": resources}}}

