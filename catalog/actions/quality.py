"""Quality reports, expectation suites and personal-information acknowledgements.

Reports are made by the ingest worker; these actions show them, let providers
replace a resource's suite (which re-validates the current version without a
re-upload) and record a provider's acknowledgement of personal-information
findings, which publishes a version held for it. Great Expectations is never
imported here: suites are checked by ``quality.expectations.check_suite``.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.access import columns, policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.core import validate
from catalog.core.errors import NotFound, ValidationError
from catalog.db.models import PiiAcknowledgement, QualitySuite, Resource, ResourceVersion, utcnow
from catalog.records import audit
from catalog.versions import disclosure, jobs, unpublished
from catalog.versions.lifecycle import State
from catalog.versions.publish import publish_version
from catalog.versions.resolve import Read, version_to_read
from quality.expectations import SuiteError, check_suite


@action
def quality_report_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """The quality report of resource ``id`` (optional ``version``: number or id; default the current
    one): ``score`` and how it was computed, per-column ``profile``, ``validation`` per expectation
    (type, kwargs, severity, status, success, observed value, unexpected count, examples) and
    ``pii`` findings with masked examples.

    A published version's report is for whoever may see the dataset, so that researchers can judge
    data they may not read yet: to them (a restricted dataset without a grant, a registered one whose
    terms they have not accepted, an embargoed one) without any value of a row (no examples, top
    values, text minimums and maximums, value sets or suite; ``values_withheld`` says so). A reader
    with a column-scoped grant sees nothing of the columns outside it. The report of a version that
    was never published (failed the gate, held, still running) is for the dataset's editors.
    """
    with ctx.platform.read() as s:
        res, pkg = policy.require_resource(s, ctx.actor, validate.required_id(data))
        editor = policy.allowed(s, ctx.actor, Permission.EDIT_DATASET, pkg)
        version = version_to_read(s, res, data.get("version"), Read.EDITORS, editor=editor)
        if version.published is None:
            policy.require(s, ctx.actor, Permission.EDIT_DATASET, pkg, missing="Resource not found")
        reading = policy.reading(s, ctx.actor, pkg)
        if version.quality is None:
            raise NotFound(f"Version {version.number} has no quality report yet (ingest {version.status})")
        report = version.quality if editor else unpublished.report(version.quality)
        report = columns.report(report, rows=reading is not None, columns=reading.columns if reading else None)
        return {**report, "version": version.number, "version_id": version.id,
                "version_status": version.status, "report_key": version.report_key}


@action
def quality_suite_show(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Resource ``id``'s expectation suite as GX JSON, with ``source`` (generated or provider)."""
    with ctx.platform.read() as s:
        # A suite generated from the data names its values (sets, ranges): for readers of the data
        # (without the expectations on columns outside a column-scoped grant), and for its editors
        # before a version is published.
        res, pkg, reading = policy.require_resource_data(s, ctx.actor, validate.required_id(data))
        if res.current_version_id is None:
            policy.require(s, ctx.actor, Permission.EDIT_DATASET, pkg)
        suite = s.get(QualitySuite, res.id)
        if suite is None:
            raise NotFound("This resource has no suite yet: one is generated from its first ingested version")
        return {"resource_id": res.id, "suite": columns.suite(suite.suite, reading.columns), "source": suite.source,
                "updated": suite.updated.isoformat(), "updated_by": suite.updated_by}


@action
def quality_suite_update(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Replace resource ``id``'s suite with ``suite`` (GX JSON; each expectation's ``meta.severity``
    is ``blocking`` or ``warning``). The current version is validated again, without a re-upload."""
    policy.require_user(ctx.actor, "change expectation suites")
    resource_id = validate.required_id(data)
    with ctx.platform.write.begin() as s:
        res, pkg = policy.require_resource(s, ctx.actor, resource_id, Permission.EDIT_DATASET)
        current = s.get(ResourceVersion, res.current_version_id) if res.current_version_id else None
        columns = [c["id"] for c in current.schema] if current is not None and current.schema else None
        try:
            suite = check_suite(data.get("suite"), columns)
        except SuiteError as exc:
            raise ValidationError({"suite": [str(exc)]}) from None
        row = s.get(QualitySuite, res.id)
        if row is None:
            row = QualitySuite(resource_id=res.id)
            s.add(row)
        row.suite, row.source, row.updated, row.updated_by = suite.as_gx(), "provider", utcnow(), ctx.actor_name
        job = jobs.enqueue(s, res.id, current.id, kind="validate") if current is not None else None
        audit.record(s, ctx, "quality_suite_update", "resource", res.id,
                     {"expectations": len(suite.expectations), "revalidation_job": job.id if job else None},
                     package_id=pkg.id, resource_id=res.id, org_id=pkg.owner_org)
        return {"resource_id": res.id, "suite": row.suite, "source": row.source,
                "revalidation_job_id": job.id if job else None}


@action
def quality_pii_acknowledge(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Acknowledge the personal-information findings of resource ``id``'s ``version`` (default: the
    held or current one), with an optional ``reason``. Recorded with who and when; a version held
    for it is published. Only the dataset's editors may do this."""
    policy.require_user(ctx.actor, "acknowledge personal information")
    resource_id = validate.required_id(data)
    errors = validate.Errors()
    reason = validate.text(data.get("reason"), errors, "reason", 2000) or ""
    errors.raise_if_any()
    with ctx.platform.write.begin() as s:
        res, pkg = policy.require_resource(s, ctx.actor, resource_id, Permission.EDIT_DATASET)
        version = version_to_read(s, res, data.get("version"), Read.PENDING, editor=True)
        findings = (version.quality or {}).get("pii") or []
        if not findings:
            raise ValidationError({"version": [f"Version {version.number} has no personal-information findings"]})
        ack = PiiAcknowledgement(resource_id=res.id, version_id=version.id, findings=disclosure.pairs_list(findings),
                                 user_id=ctx.actor.id, user_name=ctx.actor_name, reason=reason)
        s.add(ack)
        published = False
        if version.status == State.HELD:
            publish_version(s, res, version)
            published = True
        audit.record(s, ctx, "quality_pii_acknowledge", "resource", res.id,
                     {"version_id": version.id, "findings": ack.findings, "published": published},
                     package_id=pkg.id, resource_id=res.id, org_id=pkg.owner_org)
        s.flush()
        return {"id": ack.id, "resource_id": res.id, "version": version.number, "findings": ack.findings,
                "user": ctx.actor_name, "created": ack.created.isoformat(), "reason": reason,
                "published": published}


def unacknowledged_pii(s: Session, package_id: str) -> list[tuple[Resource, list[dict[str, Any]]]]:
    """Resources of a dataset whose current version has personal information nobody acknowledged."""
    out = []
    resources = s.scalars(select(Resource).where(Resource.package_id == package_id, Resource.state == "active"))
    for res in resources:
        version = s.get(ResourceVersion, res.current_version_id) if res.current_version_id else None
        findings = ((version.quality or {}).get("pii") or []) if version is not None else []
        pending = disclosure.pending(s, res.id, findings)
        if pending:
            out.append((res, pending))
    return out
