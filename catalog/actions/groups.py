"""Organizations and groups (one table, as in CKAN), their members and activity."""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from catalog.access import policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.actions.packages import chosen_id, package_dict
from catalog.core import validate
from catalog.core.errors import NotFound, ValidationError
from catalog.db import dictize, like, lookup
from catalog.db.models import Activity, Group, Member, Package, User
from catalog.records import activity, audit
from catalog.search import changes

ROLE_PERMISSIONS = {
    "admin": {"read", "manage_group", "create_dataset", "update_dataset", "delete_dataset", "admin"},
    "editor": {"read", "manage_group", "create_dataset", "update_dataset", "delete_dataset"},
    "member": {"read", "manage_group"},
}
ROLES = {"organization": ("admin", "editor", "member"), "group": ("admin", "member")}
LIST_MAX, LIST_ALL_FIELDS_MAX = 1000, 25
SHOW_DATASETS_MAX = 1000
LAST_ADMIN = "An organization needs at least one admin: make another member admin first."


def _kind(is_org: bool) -> str:
    return "organization" if is_org else "group"


def _get(s: Session, key: str, is_org: bool) -> Group:
    grp = lookup.group(s, key, is_organization=is_org)
    if grp is None:
        raise NotFound(f"{_kind(is_org).capitalize()} not found")
    return grp


def _datasets_query(grp: Group):
    if grp.is_organization:
        return Package.owner_org == grp.id
    return Package.id.in_(select(Member.table_id).where(Member.group_id == grp.id, Member.table_name == "package"))


def _package_count(s: Session, grp: Group) -> int:
    """What anyone may view (public active datasets), whoever asks: counts never reveal private ones."""
    return s.scalar(select(func.count()).select_from(Package).where(
        _datasets_query(grp), policy.datasets_where(None, Permission.VIEW_DATASET))) or 0


def _require_admin(s: Session, ctx: Context, grp: Group, what: str) -> None:
    """Only the group's (or organization's) admins and sysadmins change it or its members."""
    policy.require_user(ctx.actor, what)
    policy.require(s, ctx.actor, Permission.MANAGE_MEMBERS, grp,
                   denied=f"Access denied: only an admin of {grp.name} may {what}")


def _may_see_members(s: Session, ctx: Context, grp: Group) -> bool:
    """Member lists are shown to the group's own members and sysadmins only."""
    return policy.allowed(s, ctx.actor, Permission.VIEW_MEMBERS, grp)


def _users(s: Session, grp: Group) -> list[dict[str, Any]]:
    rows = s.execute(select(User, Member.capacity).join(Member, Member.table_id == User.id).where(
        Member.group_id == grp.id, Member.table_name == "user").order_by(User.name)).all()
    return [{**dictize.user(u), "capacity": cap} for u, cap in rows]


def _set_member(s: Session, grp: Group, user: User, role: str) -> None:
    if role not in ROLES[grp.type]:
        raise ValidationError({"role": [f"Must be one of {', '.join(ROLES[grp.type])}"]})
    row = s.scalar(select(Member).where(Member.group_id == grp.id, Member.table_name == "user",
                                        Member.table_id == user.id))
    if row is None:
        s.add(Member(group_id=grp.id, table_name="user", table_id=user.id, capacity=role))
    else:
        row.capacity = role


def _apply(s: Session, grp: Group, data: dict[str, Any], errors: validate.Errors) -> None:
    name = validate.name(data.get("name"), errors)
    other = lookup.by_id_or_name(s, Group, name) if name else None
    if other is not None and other.id != grp.id:
        errors.add("name", "Group name already exists in database")
    grp.name = name
    grp.title = validate.text(data.get("title"), errors, "title", 255)
    grp.description = validate.text(data.get("description"), errors, "description")
    grp.image_url = validate.url(data.get("image_url"), errors, "image_url", 2000)
    grp.extras = validate.extras(data.get("extras"), errors)


def _apply_users(s: Session, ctx: Context, grp: Group, users: Any) -> None:
    """Replace the member list with ``users`` ([{name, capacity}]), as ``ckanapi load`` sends it."""
    if users is None:
        return
    if not isinstance(users, list):
        raise ValidationError({"users": ["Must be a list of {\"name\", \"capacity\"} objects"]})
    wanted: dict[str, str] = {}
    for item in users:
        key = item.get("name") or item.get("id") if isinstance(item, dict) else item
        user = lookup.user(s, str(key)) if key else None
        if user is None:
            continue  # CKAN skips unknown users when loading
        wanted[user.id] = (item.get("capacity") if isinstance(item, dict) else None) or "member"
        _set_member(s, grp, user, wanted[user.id])
    keep_creator = {ctx.actor.id} if ctx.actor and ctx.actor.id and not wanted else set()
    s.execute(delete(Member).where(Member.group_id == grp.id, Member.table_name == "user",
                                   Member.table_id.not_in(set(wanted) | keep_creator)))


def _record(s: Session, ctx: Context, grp: Group, verb: str) -> dict[str, Any]:
    s.flush()
    if verb == "changed":  # its datasets' dicts embed its name and title
        for pid in s.scalars(select(Package.id).where(_datasets_query(grp))):
            changes.mark(s, pid)
    out = dictize.group(grp, package_count=_package_count(s, grp))
    activity.record(s, ctx.actor, f"{verb} {grp.type}", grp.id, {"group": out}, group_id=grp.id)
    audit.record(s, ctx, f"{grp.type}_{activity.AUDIT_VERBS[verb]}", grp.type, grp.id, {"name": grp.name},
                 org_id=grp.id if grp.is_organization else None)
    return out


def _create(ctx: Context, data: dict[str, Any], is_org: bool) -> dict[str, Any]:
    actor = policy.require_create_group(ctx.actor, is_org, ctx.settings.users_create_organizations)
    errors = validate.Errors()
    with ctx.platform.write.begin() as s:
        grp = Group(is_organization=is_org, id=chosen_id(s, ctx, Group, data.get("id"), errors) or str(uuid.uuid4()))
        _apply(s, grp, data, errors)
        errors.raise_if_any()
        s.add(grp)
        s.flush()
        if actor.id is not None:
            s.add(Member(group_id=grp.id, table_name="user", table_id=actor.id, capacity="admin"))
        if data.get("users") is not None:
            _apply_users(s, ctx, grp, data["users"])
        return _record(s, ctx, grp, "new")


def _update(ctx: Context, data: dict[str, Any], is_org: bool, patch: bool) -> dict[str, Any]:
    errors = validate.Errors()
    with ctx.platform.write.begin() as s:
        grp = _get(s, validate.required_id(data), is_org)
        _require_admin(s, ctx, grp, f"update {grp.name}")
        if patch:
            data = {**dictize.group(grp), **data}
        data = {**data, "name": data.get("name") or grp.name}
        _apply(s, grp, data, errors)
        errors.raise_if_any()
        had_admin = _admins(s, grp)
        _apply_users(s, ctx, grp, data.get("users"))
        if had_admin and not _admins(s, grp):  # a ``users`` list without an admin: refused, nothing changed
            raise ValidationError({"users": [LAST_ADMIN]}, LAST_ADMIN)
        return _record(s, ctx, grp, "changed")


def _delete(ctx: Context, data: dict[str, Any], is_org: bool) -> None:
    with ctx.platform.write.begin() as s:
        grp = _get(s, validate.required_id(data), is_org)
        _require_admin(s, ctx, grp, f"delete {grp.name}")
        if is_org and s.scalar(select(func.count()).select_from(Package).where(
                Package.owner_org == grp.id, Package.state != "deleted")):
            raise ValidationError({"message": ["Organization cannot be deleted while it still has datasets"]})
        grp.state = "deleted"
        if not is_org:  # its datasets' dicts change (their groups list)
            for pid in s.scalars(select(Member.table_id).where(Member.group_id == grp.id,
                                                               Member.table_name == "package")):
                changes.mark(s, pid)
        _record(s, ctx, grp, "deleted")
    return None


def _show(ctx: Context, data: dict[str, Any], is_org: bool) -> dict[str, Any]:
    errors = validate.Errors()
    include_datasets = validate.boolean(data.get("include_datasets"), errors, "include_datasets", False)
    include_users = validate.boolean(data.get("include_users"), errors, "include_users", True)
    errors.raise_if_any()
    with ctx.platform.read() as s:
        grp = _get(s, validate.required_id(data), is_org)
        policy.public(f"{grp.type} page")
        out = dictize.group(grp, package_count=_package_count(s, grp))
        if include_users and _may_see_members(s, ctx, grp):
            out["users"] = _users(s, grp)
        if include_datasets:
            pkgs = s.scalars(select(Package).where(_datasets_query(grp), Package.state == "active",
                                                   policy.datasets_where(ctx.actor, Permission.VIEW_DATASET))
                             .order_by(Package.name).limit(SHOW_DATASETS_MAX))
            out["packages"] = [package_dict(s, p, ctx.site_url) for p in pkgs]
        return out


def _list(ctx: Context, data: dict[str, Any], is_org: bool) -> list[Any]:
    errors = validate.Errors()
    all_fields = validate.boolean(data.get("all_fields"), errors, "all_fields")
    include_count = validate.boolean(data.get("include_dataset_count"), errors, "include_dataset_count", True)
    include_users = validate.boolean(data.get("include_users"), errors, "include_users", False)
    errors.raise_if_any()
    cap = LIST_ALL_FIELDS_MAX if all_fields else LIST_MAX
    limit = validate.integer(data.get("limit"), "limit", cap, 0, cap)
    offset = validate.integer(data.get("offset"), "offset", 0)
    sort = str(data.get("sort") or "title asc").strip().lower()
    with ctx.platform.read() as s:
        policy.public(f"{_kind(is_org)} list")
        query = select(Group).where(Group.state == "active", Group.is_organization.is_(is_org))
        names_field = "organizations" if is_org else "groups"
        names = validate.strings(data.get(names_field), names_field)
        if names:
            query = query.where(Group.name.in_(names))
        if data.get("q"):
            q = data["q"]
            query = query.where(or_(like.contains(Group.name, q), like.contains(Group.title, q),
                                    like.contains(Group.description, q)))
        groups = list(s.scalars(query))
        counts = {g.id: _package_count(s, g) for g in groups} if (include_count or "package_count" in sort) else {}
        field, _, direction = sort.partition(" ")
        key = {"name": lambda g: g.name, "package_count": lambda g: counts.get(g.id, 0)}.get(
            field, lambda g: (g.title or g.name).lower())
        groups.sort(key=key, reverse=direction.strip() == "desc")
        groups = groups[offset:offset + limit]
        if not all_fields:
            return [g.name for g in groups]
        out = []
        for g in groups:
            d = dictize.group(g, package_count=counts.get(g.id) if include_count else None)
            if include_users and _may_see_members(s, ctx, g):
                d["users"] = _users(s, g)
            out.append(d)
        return out


def _activity(ctx: Context, data: dict[str, Any], is_org: bool) -> list[dict[str, Any]]:
    limit = validate.integer(data.get("limit"), "limit", 31, 0, 100)
    offset = validate.integer(data.get("offset"), "offset", 0)
    with ctx.platform.read() as s:
        grp = _get(s, validate.required_id(data), is_org)
        policy.public(f"{grp.type} activity (of datasets: what the caller may view)")
        query = select(Activity).where(or_(Activity.group_id == grp.id, Activity.object_id == grp.id),
                                       activity.visible_to(ctx.actor))
        return [activity.as_dict(a) for a in s.scalars(activity.filtered(query, data).offset(offset).limit(limit))]


def _admins(s: Session, grp: Group) -> set[str]:
    """The user ids of an organization's admins (none for a group), their rows locked (PostgreSQL)
    so two changes of the admins cannot both pass."""
    if not grp.is_organization:
        return set()
    s.flush()
    return set(s.scalars(select(Member.table_id).where(
        Member.group_id == grp.id, Member.table_name == "user", Member.capacity == "admin").with_for_update()))


def _keep_an_admin(s: Session, grp: Group, user: User, role: str | None) -> None:
    """Refuse to take an organization's last admin away (``role`` None: removed; another role:
    demoted), whoever asks, sysadmins too: nobody but a sysadmin could manage it any more. Adding
    another admin first is the way. The admins' rows are locked, so two admins removing each other
    at once cannot both pass (PostgreSQL; SQLite's writers take turns)."""
    if not grp.is_organization or role == "admin" or (role is not None and role not in ROLES[grp.type]):
        return  # an unknown role is refused by name when it is set
    if _admins(s, grp) == {user.id}:
        raise ValidationError({"username": [LAST_ADMIN]}, LAST_ADMIN)


def _member_change(ctx: Context, data: dict[str, Any], is_org: bool, remove: bool) -> dict[str, Any] | None:
    with ctx.platform.write.begin() as s:
        grp = _get(s, validate.required_id(data), is_org)
        _require_admin(s, ctx, grp, "manage members")
        user = lookup.user(s, validate.required_id(data, "username"))
        if user is None:
            raise NotFound("User not found")
        _keep_an_admin(s, grp, user, None if remove else str(data.get("role") or "member"))
        if remove:
            s.execute(delete(Member).where(Member.group_id == grp.id, Member.table_name == "user",
                                           Member.table_id == user.id))
            audit.record(s, ctx, "member_delete", grp.type, grp.id, {"user_id": user.id},
                         org_id=grp.id if grp.is_organization else None)
            return None
        role = str(data.get("role") or "member")
        _set_member(s, grp, user, role)
        audit.record(s, ctx, "member_create", grp.type, grp.id, {"user_id": user.id, "role": role},
                     org_id=grp.id if grp.is_organization else None)
        return {"group_id": grp.id, "table_name": "user", "table_id": user.id, "capacity": role}


# -- the actions -----------------------------------------------------------------------------

@action
def organization_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Create an organization (``name``, ``title``, ``description``, ``image_url``, ``extras``,
    ``users``); the creator becomes its admin. Sysadmins only, unless the site sets
    ``MOSU_USERS_CREATE_ORGANIZATIONS``. Sysadmins may set ``id``."""
    return _create(ctx, data, True)


@action
def group_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Create a group (fields as ``organization_create``); the creator becomes its admin.
    Sysadmins only, unless the site sets ``MOSU_USERS_CREATE_ORGANIZATIONS``."""
    return _create(ctx, data, False)


@action
def organization_update(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Replace organization ``id``'s fields (admins); a ``users`` list replaces its members."""
    return _update(ctx, data, True, patch=False)


@action
def group_update(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Replace group ``id``'s fields (admins); a ``users`` list replaces its members."""
    return _update(ctx, data, False, patch=False)


@action
def organization_patch(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Change only the given fields of organization ``id``."""
    return _update(ctx, data, True, patch=True)


@action
def group_patch(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Change only the given fields of group ``id``."""
    return _update(ctx, data, False, patch=True)


@action
def organization_delete(ctx: Context, data: dict[str, Any]) -> None:
    """Delete organization ``id`` (soft); refused while it still has datasets."""
    return _delete(ctx, data, True)


@action
def group_delete(ctx: Context, data: dict[str, Any]) -> None:
    """Delete group ``id`` (soft); its datasets stay."""
    return _delete(ctx, data, False)


@action
def organization_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Return organization ``id``; ``include_datasets`` (default false) adds the datasets the
    caller may read, ``include_users`` (default true) the members (shown to members only)."""
    return _show(ctx, data, True)


@action
def group_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Return group ``id``; ``include_datasets`` and ``include_users`` as in ``organization_show``."""
    return _show(ctx, data, False)


@action
def organization_list(ctx: Context, data: dict[str, Any]) -> list[Any]:
    """Organization names, or dicts with ``all_fields=true``. ``sort`` (``title asc`` default,
    ``name``, ``package_count``), ``limit`` (1000, or 25 with all_fields), ``offset``, ``q``,
    ``organizations``, ``include_dataset_count``, ``include_users``."""
    return _list(ctx, data, True)


@action
def group_list(ctx: Context, data: dict[str, Any]) -> list[Any]:
    """Group names, or dicts with ``all_fields=true`` (parameters as ``organization_list``)."""
    return _list(ctx, data, False)


@action
def organization_activity_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The activity of organization ``id`` and its datasets, newest first (``offset``, ``limit``);
    a dataset's activity is shown to those who may read the dataset now (private ones to members)."""
    return _activity(ctx, data, True)


@action
def group_activity_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The activity of group ``id``, newest first (``offset``, ``limit``)."""
    return _activity(ctx, data, False)


@action
def organization_member_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Make ``username`` a member of organization ``id`` with ``role`` (admin, editor, member). The
    organization's only admin cannot be given another role (409): make another member admin first."""
    return _member_change(ctx, data, True, remove=False)


@action
def organization_member_delete(ctx: Context, data: dict[str, Any]) -> None:
    """Remove ``username`` from organization ``id``; its only admin cannot be removed (409)."""
    return _member_change(ctx, data, True, remove=True)


@action
def group_member_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Make ``username`` a member of group ``id`` with ``role`` (admin, member)."""
    return _member_change(ctx, data, False, remove=False)


@action
def group_member_delete(ctx: Context, data: dict[str, Any]) -> None:
    """Remove ``username`` from group ``id``."""
    return _member_change(ctx, data, False, remove=True)


@action
def member_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Add ``object`` (a dataset or user, by id or name) of ``object_type`` (``package`` or
    ``user``) to group or organization ``id`` with ``capacity``."""
    object_type = data.get("object_type")
    if object_type == "user":
        return _member_change(ctx, {"id": data.get("id"), "username": data.get("object"),
                                    "role": data.get("capacity")}, _is_org(ctx, data), remove=False)
    if object_type != "package":
        raise ValidationError({"object_type": ["Must be package or user"]})
    with ctx.platform.write.begin() as s:
        grp = lookup.group(s, validate.required_id(data))
        if grp is None:
            raise NotFound("Group not found")
        if grp.is_organization:
            raise ValidationError({"id": ["Datasets belong to an organization through owner_org"]})
        policy.require_user(ctx.actor, "add datasets to it")
        policy.require(s, ctx.actor, Permission.EDIT_DATASET, grp,  # any member adds datasets to a group (CKAN)
                       denied=f"Access denied: you are not a member of {grp.name}")
        pkg = policy.require(s, ctx.actor, Permission.VIEW_DATASET,
                             lookup.package(s, validate.required_id(data, "object")))
        exists = s.scalar(select(Member).where(Member.group_id == grp.id, Member.table_name == "package",
                                               Member.table_id == pkg.id))
        if exists is None:
            s.add(Member(group_id=grp.id, table_name="package", table_id=pkg.id, capacity="public"))
        audit.record(s, ctx, "member_create", "group", grp.id, {}, package_id=pkg.id, org_id=pkg.owner_org)
        changes.mark(s, pkg.id)
        return {"group_id": grp.id, "table_name": "package", "table_id": pkg.id,
                "capacity": str(data.get("capacity") or "public")}


def _is_org(ctx: Context, data: dict[str, Any]) -> bool:
    with ctx.platform.read() as s:
        grp = lookup.group(s, validate.required_id(data))
        if grp is None:
            raise NotFound("Group not found")
        return grp.is_organization


@action
def member_roles_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, str]]:
    """The roles a member may have in a ``group_type`` (``organization`` default, or ``group``)."""
    policy.public("the roles members may have")
    group_type = str(data.get("group_type") or "organization")
    if group_type not in ROLES:
        raise ValidationError({"group_type": ["Must be organization or group"]})
    return [{"text": role.capitalize(), "value": role} for role in ROLES[group_type]]


@action
def organization_list_for_user(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The organizations where user ``id`` (default: the caller) has ``permission``
    (``manage_group`` default, ``create_dataset``, ``update_dataset``, ``read``, ``admin``)."""
    permission = str(data.get("permission") or "manage_group")
    with ctx.platform.read() as s:
        if data.get("id"):
            user = lookup.user(s, str(data["id"]))
            if user is None:
                raise NotFound("User not found")
            policy.require(s, ctx.actor, Permission.MANAGE_ACCOUNT, user,
                           denied="Access denied: only a sysadmin may list another user's organizations")
            user_id, sysadmin = user.id, user.sysadmin
        else:
            policy.public("the caller's own organizations")
            if ctx.actor is None:
                return []
            user_id, sysadmin = ctx.actor.id, ctx.actor.sysadmin
        query = select(Group).where(Group.state == "active", Group.is_organization.is_(True))
        if sysadmin:
            orgs = [(g, "admin") for g in s.scalars(query.order_by(Group.name))]
        else:
            orgs = [(g, cap) for g, cap in s.execute(
                select(Group, Member.capacity).join(Member, Member.group_id == Group.id)
                .where(Group.state == "active", Group.is_organization.is_(True), Member.table_name == "user",
                       Member.table_id == user_id).order_by(Group.name))]
        return [{**dictize.group(g, package_count=_package_count(s, g)), "capacity": cap}
                for g, cap in orgs if permission in ROLE_PERMISSIONS.get(cap, set())]
