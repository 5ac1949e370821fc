"""The one access policy: named permissions, who holds them, and the one choke point every path asks.

CKAN's model, written as two tables. :data:`IMPLIES` names each permission and what holding it
implies (``download-original`` → ``read-data`` → ``view-dataset``); :data:`GRANTS` says which
permission each role holds: anyone on a public active dataset, an organization's admins, editors
and members (on the organization and its datasets), a dataset's collaborators, a group's admins
and members (on the group). One state rule completes it: a dataset that is not active (deleted,
draft) is seen only through a role that may edit it. Sysadmins hold everything.

Two functions answer every question, both from those tables, so a list can never show what a
read refuses:

- :func:`allowed` / :func:`require`: may this actor do P on this object (a dataset, a group or
  organization, a user account)? ``require`` answers Not Found when the actor may not even
  view the dataset (its existence does not leak; raised as :class:`~catalog.core.errors.Hidden`, so
  the audit log tells this refusal from an unknown id), Not Authorized otherwise.
- :func:`datasets_where`: a WHERE clause on ``Package`` selecting the datasets the actor holds P
  on (lists, counts, tags, activity); :func:`dataset_scope` gives the same set as ids for the
  search index's masks.

Every check is recorded (:func:`recording`): :func:`catalog.actions.call` refuses an action that
returns without having made one, as CKAN's ``check_access`` audit does. An action that is open to
everyone says so with :func:`public`, so that ``grep -rn "policy.public("`` lists them all.

Access levels, embargoes, acceptances and grants (:mod:`catalog.access.levels`,
:mod:`catalog.access.grants`) are rows of :data:`GRANTS` too, on the rows of a dataset outside its
organization; :func:`require_data` also says which columns a reader sees and through which grant.
"""
from __future__ import annotations

import contextvars
import enum
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Union

from sqlalchemy import ColumnElement, false, func, or_, select, true
from sqlalchemy.orm import Session

from catalog.access import grants
from catalog.access.context import Actor
from catalog.core import levels
from catalog.core.errors import Hidden, NotAuthorized, NotFound
from catalog.db import lookup
from catalog.db.models import AuditEvent, Collaborator, Group, Member, Package, Resource, User


class Permission(str, enum.Enum):
    VIEW_DATASET = "view-dataset"
    READ_DATA = "read-data"
    DOWNLOAD_ORIGINAL = "download-original"
    EDIT_DATASET = "edit-dataset"
    VIEW_MEMBERS = "view-members"
    MANAGE_MEMBERS = "manage-members"
    MANAGE_ACCESS = "manage-access"
    MANAGE_ACCOUNT = "manage-account"
    READ_AUDIT = "read-audit"
    SYSADMIN = "sysadmin"


P = Permission

# Each permission: what it allows, and the permissions holding it implies (the closure is taken).
IMPLIES: dict[Permission, tuple[str, frozenset[Permission]]] = {
    P.VIEW_DATASET: ("see a dataset's metadata: show, lists, search, tags, counts, activity", frozenset()),
    P.READ_DATA: ("read its rows: datastore_search, SQL, exports, column summaries, value examples in "
                  "quality reports, the published Parquet", frozenset({P.VIEW_DATASET})),
    P.DOWNLOAD_ORIGINAL: ("download a published version's upload as it was received", frozenset({P.READ_DATA})),
    P.EDIT_DATASET: ("change a dataset, its resources and suites, see and download its unpublished "
                     "versions; on an organization: create datasets in it; on a group: add datasets to it",
                     frozenset({P.DOWNLOAD_ORIGINAL})),
    P.VIEW_MEMBERS: ("see a group's or organization's member list", frozenset()),
    P.MANAGE_ACCESS: ("decide who outside the organization reads a dataset: approve and deny access "
                      "requests, grant and revoke access; on an organization: write its data use agreements",
                      frozenset({P.EDIT_DATASET})),
    P.MANAGE_MEMBERS: ("change a group or organization and its members; a dataset's collaborators",
                       frozenset({P.MANAGE_ACCESS, P.VIEW_MEMBERS})),
    P.MANAGE_ACCOUNT: ("change a user account and its API tokens, see its e-mail address and uploads",
                       frozenset()),
    P.READ_AUDIT: ("read the audit log's events and reports: every event (sysadmins, auditors), or those "
                   "filed under an organization (its admins); no data by it", frozenset()),
    P.SYSADMIN: ("everything", frozenset({P.MANAGE_MEMBERS, P.MANAGE_ACCOUNT, P.READ_AUDIT})),
}


def implied(perm: Permission) -> frozenset[Permission]:
    """``perm`` and everything holding it implies."""
    out, todo = {perm}, [perm]
    while todo:
        for other in IMPLIES[todo.pop()][1]:
            if other not in out:
                out.add(other)
                todo.append(other)
    return frozenset(out)


def _held(*perms: Permission) -> frozenset[Permission]:
    return frozenset().union(*(implied(p) for p in perms))


# Who holds what. "public": everyone, anonymous callers too, on an active dataset that is not
# private. "organization:<capacity>": a member of the organization, on it and on its datasets.
# "collaborator:<capacity>": on that one dataset. "group:<capacity>": on the group only (a group
# grants nothing on its datasets, as in CKAN). "self": a user on their own account.
#
# Outside the organization, the rows of an active, non-private dataset go by its access level
# (:mod:`catalog.access.levels`), and an embargo suspends them all: "level:open" is everyone on an
# open dataset, "accepted" a signed-in user who accepted a registered dataset's terms,
# "grant:full" and "grant:columns" the holder of an active grant (a column-scoped grant reads
# rows through previews, SQL and exports, never whole files, which hold every column).
# "auditor": the site-wide compliance role (``User.auditor``): the audit log, and no data at all.
GRANTS: dict[str, frozenset[Permission]] = {
    "public": _held(P.VIEW_DATASET),
    "level:open": _held(P.DOWNLOAD_ORIGINAL),
    "accepted": _held(P.DOWNLOAD_ORIGINAL),
    "grant:full": _held(P.DOWNLOAD_ORIGINAL),
    "grant:columns": _held(P.READ_DATA),
    "auditor": _held(P.READ_AUDIT),
    "organization:admin": _held(P.MANAGE_MEMBERS, P.READ_AUDIT),
    "organization:editor": _held(P.MANAGE_ACCESS, P.VIEW_MEMBERS),
    "organization:member": _held(P.DOWNLOAD_ORIGINAL, P.VIEW_MEMBERS),
    "collaborator:editor": _held(P.EDIT_DATASET),
    "collaborator:member": _held(P.DOWNLOAD_ORIGINAL),
    "group:admin": _held(P.MANAGE_MEMBERS),
    "group:member": _held(P.EDIT_DATASET, P.VIEW_MEMBERS),  # any member adds datasets to a group (CKAN)
    "self": _held(P.MANAGE_ACCOUNT),
}
EVERYTHING = _held(P.SYSADMIN)
DATA_PERMISSIONS = frozenset({P.READ_DATA, P.DOWNLOAD_ORIGINAL})
"""Permissions on rows and files: held outside the organization by level, acceptance or grant."""


def _sees_inactive(grant: frozenset[Permission]) -> bool:
    """The state rule: a deleted or draft dataset is seen only through a role that may edit it."""
    return P.EDIT_DATASET in grant


def _capacities(kind: str, perm: Permission, active: bool) -> list[str]:
    """The capacities of ``kind`` (organization, collaborator) whose grant holds ``perm`` on a
    dataset that is (or is not) active: the one place the grant table becomes SQL and id sets."""
    return sorted(role.split(":", 1)[1] for role, grant in GRANTS.items()
                  if role.startswith(kind + ":") and perm in grant and (active or _sees_inactive(grant)))


# -- recorded checks --------------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """One permission check: ``permission`` (a :class:`Permission` value; ``public`` for what is
    open to everyone, ``registered`` for what any logged-in user may do) on
    ``object`` (``package:<id>``, ``organization:<id>``, ``group:<id>``, ``user:<id>``,
    ``datasets`` for a list, ``site``), and whether it was allowed."""

    permission: str
    object: str
    allowed: bool = True


_checks: contextvars.ContextVar[list[Check] | None] = contextvars.ContextVar("mosu_permission_checks",
                                                                             default=None)


@contextmanager
def recording() -> Iterator[list[Check]]:
    """Record the checks made inside the block (an action call); nested blocks also pass theirs up."""
    checks: list[Check] = []
    token = _checks.set(checks)
    try:
        yield checks
    finally:
        _checks.reset(token)
        outer = _checks.get()
        if outer is not None:
            outer.extend(checks)


def _record(perm: Permission | str, obj: str, ok: bool) -> bool:
    checks = _checks.get()
    if checks is not None:
        checks.append(Check(perm.value if isinstance(perm, Permission) else perm, obj, ok))
    return ok


def public(what: str) -> None:
    """Declare that what follows is open to everyone (site status, licences, a group's page): the
    explicit, greppable form of "this action needs no permission"."""
    _record("public", what, True)


# -- may this actor do P on this object --------------------------------------------------------

Object = Union[Package, Group, User]


def _describe(obj: Object) -> str:
    if isinstance(obj, Package):
        return f"package:{obj.id}"
    if isinstance(obj, Group):
        return f"{'organization' if obj.is_organization else 'group'}:{obj.id}"
    return f"user:{obj.id}"


def _capacity(session: Session, actor: Actor, group_id: str | None) -> str | None:
    if actor.id is None or group_id is None:
        return None
    return session.scalar(select(Member.capacity).where(
        Member.group_id == group_id, Member.table_name == "user", Member.table_id == actor.id))


@dataclass(frozen=True)
class Reading:
    """How an actor holds a permission on a dataset: ``via`` the row of :data:`GRANTS` that gave it
    (``sysadmin``, ``public``, ``level:open``, ``accepted``, ``grant:full``, ``grant:columns`` or a
    role such as ``organization:member``), the ``columns`` they may see (None: all), and the grant
    and agreement version that allowed it (for the audit record)."""

    via: str
    columns: frozenset[str] | None = None
    grant_id: str | None = None
    agreement_version_id: str | None = None

    def refs(self, pkg: Package, resource_id: str | None = None) -> dict[str, str | None]:
        """The object ids an audit event of this read is filed under (its indexed columns): the
        dataset, its organization, the resource, and the grant and agreement version that allowed it."""
        return {"package_id": pkg.id, "org_id": pkg.owner_org, "resource_id": resource_id,
                "grant_id": self.grant_id, "agreement_version_id": self.agreement_version_id}

    def audit(self) -> dict[str, Any]:
        """What an audit event of a read records in its detail about how it was allowed: ``via`` and
        the column scope, if any (the grant and agreement version are the event's columns: :meth:`refs`)."""
        out: dict[str, Any] = {"via": self.via}
        if self.columns is not None:
            out["columns"] = sorted(self.columns)
        return out


def _package_holds(session: Session, actor: Actor | None, perm: Permission, pkg: Package) -> Reading | None:
    if actor is not None and actor.sysadmin:
        return Reading("sysadmin") if perm in EVERYTHING else None
    active = pkg.state == "active"
    outside = active and not pkg.private
    if outside and perm in GRANTS["public"]:
        return Reading("public")  # no query on the hot path: metadata
    readable = outside and not levels.embargoed(pkg.embargo_until)
    level = pkg.access_level or levels.Level.OPEN.value
    if readable and level == levels.Level.OPEN.value and perm in GRANTS["level:open"]:
        return Reading("level:open")  # no query on the hot path: open data
    if actor is None or actor.id is None:
        return None
    for role in _roles(session, actor, pkg):
        grant = GRANTS.get(role, frozenset())
        if perm in grant and (active or _sees_inactive(grant)):
            return Reading(role)
    if not readable:
        return None
    if level == levels.Level.REGISTERED.value and perm in GRANTS["accepted"]:
        accepted = grants.acceptance(session, actor.id, pkg)
        if accepted is not None:
            return Reading("accepted", agreement_version_id=accepted.agreement_version_id)
    if level == levels.Level.RESTRICTED.value:
        found = grants.effective(session, actor.id, pkg.id)
        via = "grant:full" if found is not None and found.columns is None else "grant:columns"
        if found is not None and perm in GRANTS[via]:
            return Reading(via, found.columns, found.grant.id, found.grant.agreement_version_id)
    return None


def _roles(session: Session, actor: Actor, pkg: Package) -> tuple[str, str]:
    """The actor's roles on a dataset (``organization:<capacity>``, ``collaborator:<capacity>``;
    ``...:None`` for none), in one query: every read of a restricted dataset asks."""
    org = select(Member.capacity).where(Member.group_id == pkg.owner_org, Member.table_name == "user",
                                        Member.table_id == actor.id).scalar_subquery()
    shared = select(Collaborator.capacity).where(Collaborator.package_id == pkg.id,
                                                 Collaborator.user_id == actor.id).scalar_subquery()
    capacity, collaborator = session.execute(select(org, shared)).one()
    return f"organization:{capacity}", f"collaborator:{collaborator}"


def _holds(session: Session, actor: Actor | None, perm: Permission, obj: Object) -> bool:
    if isinstance(obj, Package):
        return _package_holds(session, actor, perm, obj) is not None
    if actor is not None and actor.sysadmin:
        return perm in EVERYTHING
    if actor is None or actor.id is None:
        return False
    if isinstance(obj, Group):
        kind = "organization" if obj.is_organization else "group"
        return perm in GRANTS.get(f"{kind}:{_capacity(session, actor, obj.id)}", frozenset())
    if isinstance(obj, User):
        return actor.id == obj.id and perm in GRANTS["self"]
    raise TypeError(f"no permissions on {type(obj).__name__}")


def allowed(session: Session, actor: Actor | None, perm: Permission, obj: Object) -> bool:
    """Whether ``actor`` holds ``perm`` on ``obj`` (recorded)."""
    return _record(perm, _describe(obj), _holds(session, actor, perm, obj))


_DOING = {P.VIEW_DATASET: "see", P.READ_DATA: "read the data of", P.DOWNLOAD_ORIGINAL: "download the files of",
          P.EDIT_DATASET: "edit", P.VIEW_MEMBERS: "see the members of", P.MANAGE_MEMBERS: "manage",
          P.MANAGE_ACCESS: "manage access to",
          P.MANAGE_ACCOUNT: "manage", P.READ_AUDIT: "read the audit log of", P.SYSADMIN: "administer"}


def require(session: Session, actor: Actor | None, perm: Permission, obj: Object | None, *,
            missing: str | None = None, denied: str | None = None):
    """``obj`` if ``actor`` holds ``perm`` on it. A dataset the actor may not even view answers
    Not Found (``missing``, default "Dataset not found"), exactly as one that does not exist (``obj``
    None: the lookup found nothing); otherwise a refusal is Not Authorized (``denied``, default
    "Access denied: you may not <do> <object>"). Groups and users are public: callers look them up
    and answer their own Not Found first."""
    if obj is None:
        raise NotFound(missing or "Dataset not found")
    if isinstance(obj, Package) and perm is not P.VIEW_DATASET and not _holds(session, actor, P.VIEW_DATASET, obj):
        _record(perm, _describe(obj), False)
        raise Hidden(missing or "Dataset not found")
    if not allowed(session, actor, perm, obj):
        if isinstance(obj, Package) and perm is P.VIEW_DATASET:
            raise Hidden(missing or "Dataset not found")
        kind = "dataset" if isinstance(obj, Package) else "user" if isinstance(obj, User) else \
            "organization" if obj.is_organization else "group"
        raise NotAuthorized(denied or f"Access denied: you may not {_DOING[perm]} {kind} {obj.name}")
    return obj


def require_data(session: Session, actor: Actor | None, pkg: Package | None,
                 perm: Permission = Permission.READ_DATA, *, missing: str | None = None) -> Reading:
    """:func:`require` for the rows of a dataset, answering *how* the actor may read them: every path
    to rows or files (previews, SQL, exports, downloads, value examples) asks this and shows only
    ``columns`` (None: all). Refusals are those of :func:`require`: Not Found to whoever may not
    even see the dataset, Not Authorized (naming what it takes) to whoever may."""
    denied = None
    if pkg is not None:
        found = _package_holds(session, actor, perm, pkg)
        if found is not None:
            _record(perm, _describe(pkg), True)
            return found
        # A column-scoped grant holds READ_DATA, not DOWNLOAD_ORIGINAL: its holder is told to use exports;
        # whoever holds no grant at all, to ask for one.
        scoped = perm is Permission.DOWNLOAD_ORIGINAL and _holds(session, actor, Permission.READ_DATA, pkg)
        denied = _denied_data(pkg, perm, scoped)
    try:
        require(session, actor, perm, pkg, missing=missing, denied=denied)
    except NotAuthorized as exc:  # what it takes to read the rows, by code for the pages' languages
        if pkg is not None and denied is not None:
            exc.coded(_denied_code(pkg, scoped), dataset=pkg.name, perm=perm.value,
                      until=pkg.embargo_until.isoformat() if pkg.embargo_until else "")
        raise
    raise AssertionError("require() refuses what _package_holds() refused")  # pragma: no cover


def reading(session: Session, actor: Actor | None, pkg: Package,
            perm: Permission = Permission.READ_DATA) -> Reading | None:
    """:func:`require_data` without the refusal (recorded): how ``actor`` reads ``pkg``'s rows, or None.
    For answers that show a dataset to whoever may see it and its values only to its readers (a
    quality report), and for the columns a dataset's metadata shows (its data dictionary)."""
    found = _package_holds(session, actor, perm, pkg)
    _record(perm, _describe(pkg), found is not None)
    return found


def shown_columns(session: Session, actor: Actor | None, pkg: Package) -> frozenset[str] | None:
    """The columns that exist for ``actor`` in ``pkg``'s metadata (versions' schemas, the data
    dictionary): those of a column-scoped grant; None (every column) for everyone else, since
    whoever may not read the rows still sees the dataset's whole public metadata."""
    found = reading(session, actor, pkg)
    return found.columns if found is not None else None


def _denied_data(pkg: Package, perm: Permission, scoped: bool = False) -> str:
    """What a caller who sees a dataset but may not read its rows is told: what it takes to read them
    (``scoped``: they read some columns through a grant, but may not download whole files)."""
    doing = _DOING[perm]
    if not pkg.private and pkg.state == "active" and levels.embargoed(pkg.embargo_until):
        return f"Access denied: dataset {pkg.name} is under embargo until {pkg.embargo_until.isoformat()}"
    level = pkg.access_level or levels.Level.OPEN.value
    if level == levels.Level.REGISTERED.value:
        return (f"Access denied: to {doing} dataset {pkg.name}, sign in and accept its terms "
                "(agreement_accept)")
    if level == levels.Level.RESTRICTED.value:
        if scoped:
            return (f"Access denied: you may not {doing} dataset {pkg.name}: whole files hold every column, "
                    "and your grant covers some of them; use datastore_search or an export")
        return (f"Access denied: dataset {pkg.name} is restricted; ask for access with access_request_create")
    return f"Access denied: you may not {doing} dataset {pkg.name}"


def _denied_code(pkg: Package, scoped: bool) -> str:
    """The code of :func:`_denied_data`'s message (``data.embargo``, ``data.registered``,
    ``data.scoped_files``, ``data.restricted`` or ``data.denied``), in the same order of cases."""
    if not pkg.private and pkg.state == "active" and levels.embargoed(pkg.embargo_until):
        return "data.embargo"
    level = pkg.access_level or levels.Level.OPEN.value
    if level == levels.Level.REGISTERED.value:
        return "data.registered"
    if level == levels.Level.RESTRICTED.value:
        return "data.scoped_files" if scoped else "data.restricted"
    return "data.denied"


def require_resource_data(session: Session, actor: Actor | None, resource_id: str,
                          perm: Permission = Permission.READ_DATA) -> tuple[Resource, Package, Reading]:
    """:func:`require_resource` for rows: the resource, its dataset and how the actor reads it."""
    res = lookup.resource(session, resource_id)
    if res is None:
        raise NotFound("Resource not found")
    return res, res.package, require_data(session, actor, res.package, perm, missing="Resource not found")


def require_user(actor: Actor | None, what: str) -> Actor:
    """A logged-in actor, else Not Authorized. Not a permission check by itself (not recorded):
    the object's check follows."""
    if actor is None:
        raise NotAuthorized(f"Access denied: you must be logged in to {what}").coded("login_required")
    return actor


def require_sysadmin(actor: Actor | None, what: str) -> Actor:
    if not _record(P.SYSADMIN, "site", actor is not None and actor.sysadmin):
        raise NotAuthorized(f"Access denied: only a sysadmin may {what}")
    return actor  # type: ignore[return-value]


def is_sysadmin(actor: Actor | None) -> bool:
    """Whether the actor is a sysadmin (recorded as a check of ``sysadmin`` on the site)."""
    return _record(P.SYSADMIN, "site", actor is not None and actor.sysadmin)


def require_create_group(actor: Actor | None, is_organization: bool, users_may_create: bool) -> Actor:
    """Creating organizations and groups is for sysadmins unless the site lets users
    (``MOSU_USERS_CREATE_ORGANIZATIONS``), as CKAN's ``ckan.auth.user_create_*`` defaults."""
    what = "create organizations" if is_organization else "create groups"
    actor = require_user(actor, what)
    if users_may_create and not actor.sysadmin:
        _record("registered", "site", True)
        return actor
    return require_sysadmin(actor, f"{what} on this site")


# -- which datasets may this actor see with P --------------------------------------------------

def _role_clause(actor: Actor, perm: Permission, active: bool) -> ColumnElement[bool]:
    orgs = _capacities("organization", perm, active)
    shared = _capacities("collaborator", perm, active)
    clauses = []
    if orgs:
        clauses.append(Package.owner_org.in_(select(Member.group_id).where(
            Member.table_name == "user", Member.table_id == actor.id, Member.capacity.in_(orgs))))
    if shared:
        clauses.append(Package.id.in_(select(Collaborator.package_id).where(
            Collaborator.user_id == actor.id, Collaborator.capacity.in_(shared))))
    return or_(*clauses) if clauses else false()


def datasets_where(actor: Actor | None, perm: Permission = P.VIEW_DATASET, *,
                   public_grant: bool = True) -> ColumnElement[bool]:
    """A WHERE clause on ``Package``: the datasets, in any state, on which :func:`allowed` would
    give ``actor`` ``perm`` (recorded as a check on ``datasets``). Lists narrow it further (active
    ones only, public ones unless ``include_private``), never widen it. With ``public_grant=False``,
    only what the actor holds through a role (what they could read were the dataset private)."""
    _record(perm, "datasets", True)
    if actor is not None and actor.sysadmin:
        return true()
    active = Package.state == "active"
    outside = active & Package.private.is_(False)
    readable = outside & or_(Package.embargo_until.is_(None), Package.embargo_until <= levels.today())
    level = func.coalesce(Package.access_level, levels.Level.OPEN.value)
    clauses = []
    if public_grant and perm in GRANTS["public"]:
        clauses.append(outside)
    if public_grant and perm in GRANTS["level:open"]:
        clauses.append(readable & (level == levels.Level.OPEN.value))
    if actor is not None and actor.id is not None:
        clauses.append(active & _role_clause(actor, perm, True))
        clauses.append(~active & _role_clause(actor, perm, False))
        if public_grant and perm in GRANTS["accepted"]:
            clauses.append(readable & (level == levels.Level.REGISTERED.value)
                           & Package.id.in_(grants.accepted_ids(actor.id)))
        if public_grant and perm in GRANTS["grant:columns"] | GRANTS["grant:full"]:
            whole = perm not in GRANTS["grant:columns"]
            clauses.append(readable & (level == levels.Level.RESTRICTED.value)
                           & Package.id.in_(grants.granted_ids(actor.id, whole=whole)))
    return or_(*clauses) if clauses else false()


@dataclass(frozen=True)
class Scope:
    """:func:`datasets_where` as ids, for the search index's masks: ``everything`` (sysadmins), or
    public active datasets plus the active datasets of ``org_ids`` and ``package_ids`` and the
    datasets in any state of ``any_state_org_ids`` and ``any_state_package_ids``."""

    everything: bool = False
    public: bool = True
    org_ids: frozenset[str] = frozenset()
    package_ids: frozenset[str] = frozenset()
    any_state_org_ids: frozenset[str] = frozenset()
    any_state_package_ids: frozenset[str] = frozenset()


def dataset_scope(session: Session, actor: Actor | None, perm: Permission = P.VIEW_DATASET, *,
                  roles: bool = True) -> Scope:
    """The datasets ``actor`` holds ``perm`` on, as the search index takes them (recorded as a check
    on ``datasets``). ``roles=False`` skips the lookup of the actor's roles: public datasets only."""
    if perm in DATA_PERMISSIONS:
        raise ValueError("the search index's masks are for seeing datasets; ask datasets_where for rows")
    _record(perm, "datasets", True)
    if actor is not None and actor.sysadmin:
        return Scope(everything=True)
    public_ok = perm in GRANTS["public"]
    if not roles or actor is None or actor.id is None:
        return Scope(public=public_ok)
    memberships = session.execute(select(Member.group_id, Member.capacity).where(
        Member.table_name == "user", Member.table_id == actor.id)).all()
    shared = session.execute(select(Collaborator.package_id, Collaborator.capacity).where(
        Collaborator.user_id == actor.id)).all()

    def ids(rows, kind: str, active: bool) -> frozenset[str]:
        caps = set(_capacities(kind, perm, active))
        return frozenset(i for i, cap in rows if cap in caps)

    return Scope(public=public_ok, org_ids=ids(memberships, "organization", True),
                 package_ids=ids(shared, "collaborator", True),
                 any_state_org_ids=ids(memberships, "organization", False),
                 any_state_package_ids=ids(shared, "collaborator", False))


def require_resource(session: Session, actor: Actor | None, resource_id: str,
                     perm: Permission = Permission.VIEW_DATASET) -> tuple[Resource, Package]:
    """A resource and its dataset if ``actor`` holds ``perm`` on the dataset. One answer, "Resource
    not found", whether it does not exist or is in a dataset the actor may not see: two would tell
    a stranger which ids are private resources."""
    res = lookup.resource(session, resource_id)
    if res is None:
        raise NotFound("Resource not found")
    require(session, actor, perm, res.package, missing="Resource not found")
    return res, res.package


# -- who may read the audit log ----------------------------------------------------------------

@dataclass(frozen=True)
class AuditScope:
    """The audit events an actor may read: ``everything`` (sysadmins, auditors, the site), or those
    filed under the organizations in ``org_ids`` (their admins): the events of those organizations'
    datasets, by the ``org_id`` each event was written with (a dataset moved to another organization
    leaves its older events with the first one)."""

    everything: bool = False
    org_ids: frozenset[str] = frozenset()

    def where(self, org_id: Any = AuditEvent.org_id) -> ColumnElement[bool]:
        """A WHERE clause on ``org_id`` (default :class:`AuditEvent`'s) selecting what this scope reads."""
        return true() if self.everything else org_id.in_(sorted(self.org_ids))

    def covers(self, org_id: str | None) -> bool:
        return self.everything or (org_id is not None and org_id in self.org_ids)


def audit_scope(session: Session, actor: Actor | None) -> AuditScope:
    """The audit events ``actor`` may read (recorded as checks of ``read-audit``), or Not Authorized:
    reading the log is for sysadmins and auditors (everything) and organizations' admins (their
    organizations' events); everyone else, anonymous callers included, is refused, and no data
    permission comes with it (the auditor's row of :data:`GRANTS` holds none)."""
    if actor is not None and (actor.sysadmin or actor.auditor):
        held = EVERYTHING if actor.sysadmin else GRANTS["auditor"]
        if _record(P.READ_AUDIT, "site", P.READ_AUDIT in held):
            return AuditScope(everything=True)
    if actor is None or actor.id is None:
        _record(P.READ_AUDIT, "site", False)
        raise NotAuthorized("Access denied: you must be logged in to read the audit log")
    capacities = [role.split(":", 1)[1] for role, grant in GRANTS.items()
                  if role.startswith("organization:") and P.READ_AUDIT in grant]
    org_ids = frozenset(session.scalars(select(Member.group_id).join(Group, Group.id == Member.group_id).where(
        Member.table_name == "user", Member.table_id == actor.id, Member.capacity.in_(capacities),
        Group.is_organization.is_(True), Group.state == "active")))
    for org_id in sorted(org_ids):
        _record(P.READ_AUDIT, f"organization:{org_id}", True)
    if not org_ids:
        _record(P.READ_AUDIT, "site", False)
        raise NotAuthorized("Access denied: only auditors, sysadmins and organizations' admins may read the audit log")
    return AuditScope(org_ids=org_ids)
