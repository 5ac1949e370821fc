"""Data use agreements: an organization writes them, datasets name them, users accept them.

Editing an agreement makes a new numbered version and keeps the old ones: acceptances, access
requests and grants name the version their user saw, and a ``registered`` dataset asks for the
*current* version to be accepted again (:func:`catalog.access.grants.acceptance`). Writing needs
``manage-access`` on the organization (its admins and editors); reading is public, since a
researcher must read the terms before asking for anything.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.access import policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.core import agreements as rules
from catalog.core import licenses, validate
from catalog.core.errors import NotFound
from catalog.db import lookup
from catalog.db.dictize import iso
from catalog.db.models import Acceptance, Agreement, AgreementVersion, Group, Package, utcnow
from catalog.records import audit

LIST_MAX = 1000


def find(s: Session, key: Any) -> Agreement:
    """An active agreement of an active organization by id, else Not Found."""
    found = s.get(Agreement, key) if isinstance(key, str) and key.strip() else None
    org = s.get(Group, found.owner_org) if found is not None else None
    if found is None or found.state != "active" or org is None or org.state != "active":
        raise NotFound("Agreement not found")
    return found


def current(s: Session, agreement_id: str | None) -> AgreementVersion | None:
    """The current version of an agreement (None for no agreement)."""
    if agreement_id is None:
        return None
    found = s.get(Agreement, agreement_id)
    return s.get(AgreementVersion, found.current_version_id) if found and found.current_version_id else None


def version_of(s: Session, agreement: Agreement, key: Any) -> AgreementVersion:
    """A version by its number (``2``) or id, else Not Found."""
    query = select(AgreementVersion).where(AgreementVersion.agreement_id == agreement.id)
    text = str(key).strip()
    if text.isascii() and text.isdigit() and len(text) <= 9:
        found = s.scalar(query.where(AgreementVersion.number == int(text)))
    else:
        found = s.scalar(query.where(AgreementVersion.id == text))
    if found is None:
        raise NotFound("Agreement version not found")
    return found


def version_brief(v: AgreementVersion) -> dict[str, Any]:
    return {"id": v.id, "number": v.number, "title": v.title, "created": iso(v.created),
            "creator_user_id": v.creator_user_id}


def agreement_dict(s: Session, agreement: Agreement, shown: AgreementVersion | None = None,
                   full: bool = True) -> dict[str, Any]:
    """An agreement with the text of ``shown`` (default its current version); ``full`` adds the
    text, questions and the list of every version."""
    latest = s.get(AgreementVersion, agreement.current_version_id)
    shown = shown or latest
    org = s.get(Group, agreement.owner_org)
    out = {"id": agreement.id, "owner_org": agreement.owner_org, "organization": org.name if org else None,
           "state": agreement.state, "created": iso(agreement.created), "creator_user_id": agreement.creator_user_id,
           "current_version": latest.number, "current_version_id": latest.id,
           "version": shown.number, "version_id": shown.id, "title": shown.title,
           "modified": iso(latest.created)}
    if full:
        out.update(text=shown.text, questions=shown.questions, versions=[version_brief(v) for v in s.scalars(
            select(AgreementVersion).where(AgreementVersion.agreement_id == agreement.id)
            .order_by(AgreementVersion.number))])
    return out


def _content(data: dict[str, Any], base: AgreementVersion | None) -> tuple[str, str, list[dict[str, Any]]]:
    """Title, text and questions from ``data``; a field left out keeps ``base``'s value."""
    errors = validate.Errors()
    title = data.get("title", base.title if base else None)
    if not isinstance(title, str) or not title.strip():
        errors.add("title", "Missing value")
    elif len(title) > rules.TITLE_MAX:
        errors.add("title", f"Must be at most {rules.TITLE_MAX} characters")
    text = validate.text(data.get("text", base.text if base else ""), errors, "text", rules.TEXT_MAX)
    questions = rules.questions(data["questions"], errors) if "questions" in data else \
        list(base.questions) if base else []
    errors.raise_if_any()
    return title, text, questions


def _manage(s: Session, ctx: Context, org: Group) -> None:
    policy.require_user(ctx.actor, "write data use agreements")
    policy.require(s, ctx.actor, Permission.MANAGE_ACCESS, org,
                   denied=f"Access denied: only an admin or editor of {org.name} may write its data use agreements")


@action
def agreement_create(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Write a data use agreement for organization ``owner_org`` (id or name): ``title``, ``text``
    (Markdown, the full terms), optional ``questions`` for requesters
    (``[{"id", "text", "type": "text"|"choice"|"yesno", "choices": [...], "required": bool}]``).
    Its organization's admins and editors write agreements. Returns it at version 1."""
    with ctx.platform.write.begin() as s:
        org = lookup.organization(s, validate.required_id(data, "owner_org"))
        if org is None:
            raise NotFound("Organization not found")
        _manage(s, ctx, org)
        title, text, questions = _content(data, None)
        agreement = Agreement(owner_org=org.id, creator_user_id=ctx.actor.id, created=utcnow(), state="active")
        s.add(agreement)
        s.flush()
        first = AgreementVersion(agreement_id=agreement.id, number=1, title=title, text=text, questions=questions,
                                 creator_user_id=ctx.actor.id, created=agreement.created)
        s.add(first)
        s.flush()
        agreement.current_version_id = first.id
        audit.record(s, ctx, "agreement_create", "agreement", agreement.id,
                     {"number": 1, "title": title}, org_id=org.id,
                     agreement_version_id=first.id)
        return agreement_dict(s, agreement)


@action
def agreement_update(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Edit agreement ``id``: a new version with the given ``title``, ``text`` and ``questions``
    (those left out are kept). Older versions stay, and whoever accepted or asked under one keeps
    naming it; a ``registered`` dataset asks its users to accept the new version. Sending the
    current content again makes no version."""
    with ctx.platform.write.begin() as s:
        agreement = find(s, validate.required_id(data))
        _manage(s, ctx, s.get(Group, agreement.owner_org))
        latest = s.get(AgreementVersion, agreement.current_version_id)
        title, text, questions = _content(data, latest)
        if (title, text, questions) == (latest.title, latest.text, latest.questions):
            return agreement_dict(s, agreement)
        number = (s.scalar(select(func.max(AgreementVersion.number))
                           .where(AgreementVersion.agreement_id == agreement.id)) or 0) + 1
        new = AgreementVersion(agreement_id=agreement.id, number=number, title=title, text=text,
                               questions=questions, creator_user_id=ctx.actor.id, created=utcnow())
        s.add(new)
        s.flush()
        agreement.current_version_id = new.id
        audit.record(s, ctx, "agreement_update", "agreement", agreement.id,
                     {"number": number, "previous_version_id": latest.id, "title": title},
                     org_id=agreement.owner_org, agreement_version_id=new.id)
        return agreement_dict(s, agreement)


@action
def agreement_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Agreement ``id`` at its current version (or ``version``: a number or version id), with its
    text, questions and the list of its versions. Public: terms are read before asking."""
    policy.public("data use agreements")
    with ctx.platform.read() as s:
        agreement = find(s, validate.required_id(data))
        shown = version_of(s, agreement, data["version"]) if data.get("version") not in (None, "") else None
        return agreement_dict(s, agreement, shown)


@action
def agreement_list(ctx: Context, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The active agreements of organization ``owner_org`` (id or name), or of every organization,
    newest first (``limit`` default 100, max 1000; ``offset``): title and current version, without
    the text (``agreement_show`` has it). Public."""
    policy.public("data use agreements")
    limit = validate.integer(data.get("limit"), "limit", 100, 0, LIST_MAX)
    offset = validate.integer(data.get("offset"), "offset", 0)
    with ctx.platform.read() as s:
        query = select(Agreement).join(Group, Group.id == Agreement.owner_org).where(
            Agreement.state == "active", Group.state == "active")
        if data.get("owner_org") not in (None, ""):
            org = lookup.organization(s, str(data["owner_org"]))
            if org is None:
                raise NotFound("Organization not found")
            query = query.where(Agreement.owner_org == org.id)
        found = s.scalars(query.order_by(Agreement.created.desc(), Agreement.id).limit(limit).offset(offset))
        return [agreement_dict(s, a, full=False) for a in found]


def terms_dict(s: Session, pkg: Package) -> dict[str, Any]:
    """The terms a dataset's users accept now: its agreement's current version, else its licence."""
    lic = licenses.LICENSES.get(pkg.license_id)
    out: dict[str, Any] = {"license_id": pkg.license_id, "license_title": lic.title if lic else pkg.license_id,
                           "license_url": lic.url if lic else "", "agreement_id": pkg.agreement_id,
                           "agreement_version_id": None, "agreement_version": None, "agreement_title": None}
    version = current(s, pkg.agreement_id)
    if version is not None:
        out.update(agreement_version_id=version.id, agreement_version=version.number, agreement_title=version.title)
    return out


@action
def agreement_accept(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Accept the terms of dataset ``package_id`` as they stand: its agreement's current version, or
    its licence when it names no agreement. What a ``registered`` dataset asks before its rows; a
    new agreement version (or licence) needs a new acceptance. Accepting the same terms again
    changes nothing. Returns what was accepted and when."""
    actor = policy.require_user(ctx.actor, "accept a dataset's terms")
    with ctx.platform.write.begin() as s:
        pkg = policy.require(s, actor, Permission.VIEW_DATASET,
                             lookup.package(s, validate.required_id(data, "package_id")))
        terms = terms_dict(s, pkg)
        if actor.id is None:
            raise NotFound("User not found")  # the site operator has no account to accept with
        query = select(Acceptance).where(Acceptance.user_id == actor.id, Acceptance.package_id == pkg.id)
        if terms["agreement_version_id"] is None:
            query = query.where(Acceptance.agreement_version_id.is_(None), Acceptance.license_id == pkg.license_id)
        else:
            query = query.where(Acceptance.agreement_version_id == terms["agreement_version_id"])
        found = s.scalars(query.order_by(Acceptance.created).limit(1)).first()
        if found is None:
            found = Acceptance(user_id=actor.id, package_id=pkg.id, agreement_version_id=terms["agreement_version_id"],
                               license_id=pkg.license_id, created=utcnow())
            s.add(found)
            s.flush()
            audit.record(s, ctx, "agreement_accept", "package", pkg.id,
                         {"acceptance_id": found.id, "agreement_id": pkg.agreement_id, "license_id": found.license_id},
                         package_id=pkg.id, org_id=pkg.owner_org, agreement_version_id=found.agreement_version_id)
        return {"id": found.id, "package_id": pkg.id, "user_id": actor.id, "accepted": iso(found.created), **terms}
