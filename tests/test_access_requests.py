"""Controlled access through the real HTTP API and ckanapi (issue 12): agreements, requests, grants.

A provider (an organization admin) writes a data use agreement and restricts a dataset with it; a
researcher reads the metadata, is refused the rows with a message saying how to get them, asks,
is approved for 90 days, reads, is revoked and refused on the very next call; a grant whose
expiry is moved into the past in the database (no waiting) is refused at once too. Then an
organization grant reaching a member added after it, the registered level with a new agreement
version, embargoes, the personal-information hold by level, and the bad inputs: each gets CKAN's
error type and changes nothing (same requests, grants and audit events before and after).
"""
from __future__ import annotations

import datetime as dt
import io
import uuid

import ckanapi
import pytest
from sqlalchemy import func, select, update

from catalog.db.models import (
    Acceptance,
    AccessGrant,
    AccessRequest,
    AuditEvent,
    MultipartUpload,
    Notification,
    User,
)
from tests.conftest import wait_for_ingest

CSV = b"id,city,income\n1,Oslo,300\n2,Lima,400\n3,Pune,500\n"
QUESTIONS = [
    {"id": "institution", "text": "Your institution", "type": "text", "required": True},
    {"id": "use", "text": "What for?", "type": "choice", "choices": ["research", "teaching"], "required": True},
    {"id": "ethics", "text": "Do you hold an ethics approval?", "type": "yesno"},
]
ANSWERS = {"institution": "University of Lima\n(dept. of health)  ", "use": "research", "ethics": True}
CKAN_LICENSE_KEYS = {"domain_content", "domain_data", "domain_software", "family", "id", "is_generic",
                     "is_okd_compliant", "is_osi_compliant", "maintainer", "od_conformance", "osd_conformance",
                     "status", "title", "url"}


@pytest.fixture(scope="module")
def site(mosu):
    """A sysadmin, a provider organization with its admin (the provider) and a member, a researcher,
    an outsider, and a company organization with an admin."""
    admin = mosu.ckan(mosu.token("acc-sys", sysadmin=True))
    clients = {name: mosu.ckan(mosu.token(f"acc-{name}")) for name in
               ("provider", "staff", "researcher", "outsider", "boss", "newhire", "other-admin")}
    admin.action.organization_create(name="acc-org", users=[{"name": "acc-provider", "capacity": "admin"},
                                                            {"name": "acc-staff", "capacity": "member"}])
    admin.action.organization_create(name="acc-company", users=[{"name": "acc-boss", "capacity": "admin"}])
    admin.action.organization_create(name="acc-elsewhere", users=[{"name": "acc-other-admin", "capacity": "admin"}])
    provider = clients["provider"]
    agreement = provider.action.agreement_create(owner_org="acc-org", title="Health data use agreement",
                                                 text="# Terms\n\nNo re-identification.", questions=QUESTIONS)
    return {"admin": admin, "anon": mosu.ckan(), "agreement": agreement, **clients}


def restricted(site, name: str, body: bytes = CSV, **fields) -> dict:
    """A dataset of acc-org with one ingested CSV (restricted with the agreement unless ``fields`` say)."""
    fields = {"access_level": "restricted", "agreement_id": site["agreement"]["id"], **fields}
    pkg = site["provider"].action.package_create(name=name, owner_org="acc-org", **fields)
    res = site["provider"].action.resource_create(package_id=name, name="table", upload=("t.csv", io.BytesIO(body)))
    res = wait_for_ingest(site["provider"], res["id"])
    assert res["ingest_status"] == "ready", res["ingest_error"]
    return {**pkg, "resource": res["id"]}


def refused(call, **params) -> str:
    """The message of a NotAuthorized answer (fails on any other outcome)."""
    with pytest.raises(ckanapi.NotAuthorized) as err:
        call(**params)
    return err.value.args[0]["message"]


def counts(mosu) -> tuple[int, int, int, int]:
    """Requests, grants, acceptances and audit events other than refusals in the database: bad input
    changes none (a refused call leaves its refusal event, which tests/test_audit_refusals.py checks)."""
    with mosu.inspect().read() as s:
        rows = [s.scalar(select(func.count()).select_from(m)) for m in (AccessRequest, AccessGrant, Acceptance)]
        return (*rows, s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.outcome != "refused")))


def events(mosu, object_id: str) -> list[str]:
    with mosu.inspect().read() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.object_id == object_id)
                              .order_by(AuditEvent.seq)))


def inbox(mosu, user: str, kind: str, about: str) -> int:
    """How many inbox entries of ``kind`` the user has about request or grant ``about`` (other tests'
    requests and grants leave entries of their own)."""
    with mosu.inspect().read() as s:
        uid = s.scalar(select(User.id).where(User.name == user))
        found = s.scalars(select(Notification.data).where(Notification.user_id == uid, Notification.kind == kind))
        return sum(1 for data in found if about in (data.get("request_id"), data.get("grant_id")))


def test_request_approve_read_revoke_and_expire(mosu, site):
    provider, researcher = site["provider"], site["researcher"]
    ds = restricted(site, "acc-health")
    # Metadata, the data dictionary's columns and the row count are public; rows are not.
    shown = researcher.action.package_show(id="acc-health")
    assert shown["access_level"] == "restricted" and shown["agreement_id"] == site["agreement"]["id"]
    assert shown["resources"][0]["row_count"] == 3
    access = shown["access"]
    assert access["can_read"] is False and "access_request_create" in access["message"]
    assert access["terms"]["agreement_version"] == 1
    refused(researcher.action.datastore_search, resource_id=ds["resource"])
    terms = researcher.action.agreement_show(id=site["agreement"]["id"])
    assert terms["text"].startswith("# Terms") and terms["questions"][1]["choices"] == ["research", "teaching"]

    req = researcher.action.access_request_create(package_id="acc-health", purpose="  Study of income.\n",
                                                  answers=ANSWERS, duration_days=180)
    assert (req["state"], req["agreement_version"], req["duration_days"]) == ("pending", 1, 180)
    assert req["purpose"] == "  Study of income.\n" and req["answers"] == ANSWERS, "kept verbatim"
    assert researcher.action.package_show(id="acc-health")["access"]["pending_request_id"] == req["id"]
    assert [r["id"] for r in provider.action.access_request_list(package_id="acc-health", state="pending")] == \
        [req["id"]]
    managed = provider.action.access_request_list(managed=True)  # other tests' requests are there too
    assert req["id"] in [r["id"] for r in managed] and {r["package_name"][:4] for r in managed} == {"acc-"}
    mine = researcher.action.access_request_list()
    assert req["id"] in [r["id"] for r in mine] and {r["user_name"] for r in mine} == {"acc-researcher"}
    assert inbox(mosu, "acc-provider", "access_request.created", req["id"]) == 1
    assert inbox(mosu, "acc-researcher", "access_request.created", req["id"]) == 1

    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    approved = provider.action.access_request_approve(id=req["id"], days=90, note="For the 2025 study")
    grant = approved["grant"]
    expires = dt.datetime.fromisoformat(grant["expires"])
    assert dt.timedelta(days=90) <= expires - before < dt.timedelta(days=90, minutes=5)
    assert (approved["state"], approved["grant_id"]) == ("approved", grant["id"])
    assert (grant["request_id"], grant["grantee_name"], grant["state"]) == (req["id"], "acc-researcher", "active")
    assert grant["agreement_version_id"] == req["agreement_version_id"]
    assert inbox(mosu, "acc-researcher", "access_request.approved", req["id"]) == 1
    assert researcher.action.datastore_search(resource_id=ds["resource"])["total"] == 3
    access = researcher.action.package_show(id="acc-health")["access"]
    assert (access["can_read"], access["via"], access["grant_id"]) == (True, "grant:full", grant["id"])
    assert access["grant_expires"] == grant["expires"] and access["pending_request_id"] is None
    assert [g["id"] for g in researcher.action.access_grant_list() if g["package_id"] == ds["id"]] == [grant["id"]]

    revoked = provider.action.access_grant_revoke(id=grant["id"], reason="Study ended early")
    assert (revoked["state"], revoked["revoke_reason"]) == ("revoked", "Study ended early")
    refused(researcher.action.datastore_search, resource_id=ds["resource"])
    assert inbox(mosu, "acc-researcher", "access_grant.revoked", grant["id"]) == 1
    assert researcher.action.package_show(id="acc-health")["access"]["can_read"] is False
    assert events(mosu, req["id"]) == ["access_request_create", "access_request_approve"]
    assert events(mosu, grant["id"]) == ["access_grant_revoke"]

    # Expiry: a grant whose time is over stops working on the very next call (no waiting here).
    again = researcher.action.access_request_create(package_id="acc-health", purpose="Second study", answers=ANSWERS,
                                                    duration_days=180)
    second = provider.action.access_request_approve(id=again["id"])["grant"]
    assert (dt.datetime.fromisoformat(second["expires"]) - before).days in (179, 180), "the requested 180 days"
    assert researcher.action.datastore_search(resource_id=ds["resource"])["total"] == 3
    with mosu.inspect().write.begin() as s:
        s.execute(update(AccessGrant).where(AccessGrant.id == second["id"])
                  .values(expires=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=1)))
    refused(researcher.action.datastore_search, resource_id=ds["resource"])
    assert "access_request_create" in researcher.action.package_show(id="acc-health")["access"]["message"]
    states = {g["id"]: g["state"] for g in provider.action.access_grant_list(package_id="acc-health")}
    assert states == {grant["id"]: "revoked", second["id"]: "expired"}
    assert [g["id"] for g in researcher.action.access_grant_list(state="expired")] == [second["id"]]


def test_a_column_scoped_grant_reads_its_columns_only(mosu, site):
    ds = restricted(site, "acc-scoped")
    req = site["researcher"].action.access_request_create(package_id="acc-scoped", purpose="Incomes by city",
                                                          answers=ANSWERS, columns=["city", "income", "id"])
    grant = site["provider"].action.access_request_approve(id=req["id"], columns=["city", "income"])["grant"]
    assert grant["columns"] == ["city", "income"]
    access = site["researcher"].action.package_show(id="acc-scoped")["access"]
    assert (access["can_read"], access["can_download"], access["via"]) == (True, False, "grant:columns")
    assert access["columns"] == ["city", "income"]
    assert ds["resource"]


def test_an_organization_grant_reaches_members_added_after_it(mosu, site):
    ds = restricted(site, "acc-company-data")
    grant = site["provider"].action.access_grant_create(package_id="acc-company-data", organization_id="acc-company",
                                                        days=30, note="Licensed to the company")
    assert (grant["grantee_type"], grant["grantee_name"], grant["request_id"]) == ("organization", "acc-company", None)
    assert inbox(mosu, "acc-boss", "access_grant.created", grant["id"]) == 1
    assert site["boss"].action.datastore_search(resource_id=ds["resource"])["total"] == 3
    refused(site["newhire"].action.datastore_search, resource_id=ds["resource"])
    site["boss"].action.organization_member_create(id="acc-company", username="acc-newhire", role="member")
    assert site["newhire"].action.datastore_search(resource_id=ds["resource"])["total"] == 3
    assert [g["id"] for g in site["newhire"].action.access_grant_list()] == [grant["id"]]
    refused(site["outsider"].action.datastore_search, resource_id=ds["resource"])
    assert events(mosu, grant["id"]) == ["access_grant_create"]


def test_registered_needs_the_current_terms_accepted(mosu, site):
    provider, researcher = site["provider"], site["researcher"]
    agreement = provider.action.agreement_create(owner_org="acc-org", title="Registered terms", text="v1 text")
    ds = restricted(site, "acc-registered", access_level="registered", agreement_id=agreement["id"])
    refused(researcher.action.datastore_search, resource_id=ds["resource"])
    assert "agreement_accept" in researcher.action.package_show(id="acc-registered")["access"]["message"]
    with pytest.raises(ckanapi.ValidationError) as err:
        researcher.action.access_request_create(package_id="acc-registered", purpose="x")
    assert "agreement_accept" in err.value.error_dict["package_id"][0]
    accepted = researcher.action.agreement_accept(package_id="acc-registered")
    assert (accepted["agreement_version"], accepted["agreement_title"]) == (1, "Registered terms")
    assert researcher.action.agreement_accept(package_id="acc-registered")["id"] == accepted["id"], "idempotent"
    assert researcher.action.datastore_search(resource_id=ds["resource"])["total"] == 3
    assert researcher.action.package_show(id="acc-registered")["access"]["via"] == "accepted"

    v2 = provider.action.agreement_update(id=agreement["id"], text="v2 text: no commercial use")
    assert (v2["current_version"], v2["title"]) == (2, "Registered terms")
    assert [v["number"] for v in v2["versions"]] == [1, 2]
    assert provider.action.agreement_update(id=agreement["id"], text="v2 text: no commercial use")["current_version"] \
        == 2, "the same content makes no version"
    assert provider.action.agreement_show(id=agreement["id"], version=1)["text"] == "v1 text"
    refused(researcher.action.datastore_search, resource_id=ds["resource"])
    assert researcher.action.package_show(id="acc-registered")["access"]["terms"]["agreement_version"] == 2
    renewed = researcher.action.agreement_accept(package_id="acc-registered")
    assert renewed["agreement_version"] == 2 and renewed["id"] != accepted["id"]
    assert researcher.action.datastore_search(resource_id=ds["resource"])["total"] == 3
    assert events(mosu, agreement["id"]) == ["agreement_create", "agreement_update"]
    listed = site["anon"].action.agreement_list(owner_org="acc-org")
    assert {a["id"]: a["current_version"] for a in listed}[agreement["id"]] == 2 and "text" not in listed[0]


def test_a_licence_acceptance_counts_for_that_licence_only(site):
    ds = restricted(site, "acc-licensed", access_level="registered", agreement_id=None, license_id="CC-BY-NC-4.0")
    accepted = site["researcher"].action.agreement_accept(package_id="acc-licensed")
    assert (accepted["license_id"], accepted["agreement_version_id"]) == ("CC-BY-NC-4.0", None)
    assert accepted["license_url"] == "https://creativecommons.org/licenses/by-nc/4.0/"
    assert site["researcher"].action.datastore_search(resource_id=ds["resource"])["total"] == 3
    site["provider"].action.package_patch(id="acc-licensed", license_id="other-closed")
    refused(site["researcher"].action.datastore_search, resource_id=ds["resource"])


def test_an_embargo_holds_every_level_until_its_date(site):
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    ds = restricted(site, "acc-embargo", access_level="open", agreement_id=None, embargo_until=later)
    refused(site["outsider"].action.datastore_search, resource_id=ds["resource"])
    assert f"under embargo until {later}" in site["outsider"].action.package_show(id="acc-embargo")["access"]["message"]
    refused(site["anon"].action.datastore_search, resource_id=ds["resource"])
    assert site["staff"].action.datastore_search(resource_id=ds["resource"])["total"] == 3, "members read"
    past = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    site["provider"].action.package_patch(id="acc-embargo", embargo_until=past)
    assert site["outsider"].action.datastore_search(resource_id=ds["resource"])["total"] == 3
    assert site["anon"].action.datastore_search(resource_id=ds["resource"])["total"] == 3


def test_personal_information_holds_only_public_levels(mosu, site):
    people = "id,email\n" + "".join(f"{i},user{i}@example.org\n" for i in range(60))
    ds = restricted(site, "acc-people", body=people.encode(), agreement_id=None)  # restricted: publishes
    with pytest.raises(ckanapi.ValidationError) as err:
        site["provider"].action.package_patch(id="acc-people", access_level="open")
    assert "lowering the dataset to open" in err.value.error_dict["access_level"][0]
    assert site["provider"].action.package_show(id="acc-people")["access_level"] == "restricted"
    with pytest.raises(ckanapi.ValidationError):
        site["provider"].action.package_patch(id="acc-people", access_level="registered")
    site["provider"].action.quality_pii_acknowledge(id=ds["resource"], reason="consented")
    assert site["provider"].action.package_patch(id="acc-people", access_level="open")["access_level"] == "open"


def test_search_facets_and_filters_access_levels(site):
    restricted(site, "acc-facet-open", access_level="open", agreement_id=None, tags=[{"name": "acc-facet"}])
    restricted(site, "acc-facet-restricted", tags=[{"name": "acc-facet"}])
    found = site["anon"].action.package_search(fq="access_level:restricted", rows=1000,
                                               **{"facet.field": '["access_level"]'})
    names = {p["name"] for p in found["results"]}
    assert "acc-facet-restricted" in names and "acc-facet-open" not in names
    assert all(p["access_level"] == "restricted" for p in found["results"])
    ours = site["anon"].action.package_search(fq="tags:acc-facet", **{"facet.field": '["access_level"]'})
    assert ours["facets"]["access_level"] == {"open": 1, "restricted": 1}


def test_the_licence_register_has_ckan_s_shape_and_spdx_ids(site):
    listed = {lic["id"]: lic for lic in site["anon"].action.license_list()}
    assert all(set(lic) == CKAN_LICENSE_KEYS for lic in listed.values())
    assert {"CC-BY-4.0", "CC0-1.0", "ODbL-1.0", "cc-by", "notspecified"} <= set(listed)
    assert listed["ODbL-1.0"]["domain_data"] is True and listed["other-closed"]["is_generic"] is True


# -- bad input: the right error, and nothing changed ----------------------------------------------

@pytest.fixture(scope="module")
def pending(site):
    restricted(site, "acc-bad")
    return site["researcher"].action.access_request_create(package_id="acc-bad", purpose="Pending", answers=ANSWERS)


def _unchanged(mosu, error, call, **params):
    before = counts(mosu)
    with pytest.raises(error) as err:
        call(**params)
    assert counts(mosu) == before, f"{call} changed something"
    return err.value


def test_deciding_needs_the_dataset_s_managers(mosu, site, pending):
    # Another test may have approved it already (the tests run in any order): whatever its state, it stays.
    state = site["provider"].action.access_request_show(id=pending["id"])["state"]
    # The requester sees the request but may not decide; others do not see it at all.
    _unchanged(mosu, ckanapi.NotAuthorized, site["researcher"].action.access_request_approve, id=pending["id"])
    for who in ("outsider", "other-admin", "staff"):
        _unchanged(mosu, ckanapi.NotFound, site[who].action.access_request_approve, id=pending["id"])
        _unchanged(mosu, ckanapi.NotFound, site[who].action.access_request_deny, id=pending["id"], reason="no")
        _unchanged(mosu, ckanapi.NotFound, site[who].action.access_request_show, id=pending["id"])
        _unchanged(mosu, ckanapi.NotFound, site[who].action.access_request_withdraw, id=pending["id"])
    _unchanged(mosu, ckanapi.NotAuthorized, site["anon"].action.access_request_approve, id=pending["id"])
    # Granting on a dataset one does not manage: refused; on an invisible one, Not Found.
    _unchanged(mosu, ckanapi.NotAuthorized, site["other-admin"].action.access_grant_create, package_id="acc-bad",
               user_id="acc-other-admin")
    _unchanged(mosu, ckanapi.NotAuthorized, site["staff"].action.access_grant_create, package_id="acc-bad",
               user_id="acc-staff")
    _unchanged(mosu, ckanapi.NotAuthorized, site["researcher"].action.access_request_list, package_id="acc-bad")
    _unchanged(mosu, ckanapi.NotAuthorized, site["other-admin"].action.agreement_create, owner_org="acc-org",
               title="Mine now", text="")
    _unchanged(mosu, ckanapi.NotAuthorized, site["other-admin"].action.agreement_update,
               id=site["agreement"]["id"], text="Changed")
    assert site["provider"].action.access_request_show(id=pending["id"])["state"] == state


def test_forged_and_other_people_s_ids_are_not_found(mosu, site, pending):
    forged = str(uuid.uuid4())
    for call in (site["provider"].action.access_request_show, site["provider"].action.access_request_approve,
                 site["researcher"].action.access_request_withdraw):
        _unchanged(mosu, ckanapi.NotFound, call, id=forged)
    _unchanged(mosu, ckanapi.NotFound, site["provider"].action.access_grant_revoke, id=forged, reason="x")
    _unchanged(mosu, ckanapi.NotFound, site["admin"].action.agreement_show, id=forged)
    grant = site["provider"].action.access_grant_create(package_id="acc-bad", user_id="acc-outsider", days=5)
    _unchanged(mosu, ckanapi.NotFound, site["researcher"].action.access_grant_revoke, id=grant["id"], reason="x")
    _unchanged(mosu, ckanapi.NotAuthorized, site["outsider"].action.access_grant_revoke, id=grant["id"], reason="x")
    assert [r["id"] for r in site["outsider"].action.access_request_list()] == []


def test_bad_decisions_are_validation_errors(mosu, site, pending):
    provider = site["provider"]
    yesterday = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).isoformat()
    err = _unchanged(mosu, ckanapi.ValidationError, provider.action.access_request_approve, id=pending["id"],
                     expires=yesterday)
    assert "future" in err.error_dict["expires"][0]
    err = _unchanged(mosu, ckanapi.ValidationError, provider.action.access_request_approve, id=pending["id"],
                     days=99999)
    assert "days" in err.error_dict
    err = _unchanged(mosu, ckanapi.ValidationError, provider.action.access_request_approve, id=pending["id"],
                     columns=["nope"])
    assert "No column 'nope'" in err.error_dict["columns"][0]
    _unchanged(mosu, ckanapi.ValidationError, provider.action.access_request_deny, id=pending["id"], reason=" ")
    err = _unchanged(mosu, ckanapi.ValidationError, provider.action.access_grant_create, package_id="acc-bad",
                     user_id="acc-outsider", expires="2001-01-01")
    assert "future" in err.error_dict["expires"][0]
    _unchanged(mosu, ckanapi.ValidationError, provider.action.access_grant_create, package_id="acc-bad",
               user_id="acc-outsider", organization_id="acc-company")
    _unchanged(mosu, ckanapi.ValidationError, provider.action.access_grant_create, package_id="acc-bad",
               user_id="no-such-user")
    _unchanged(mosu, ckanapi.ValidationError, provider.action.agreement_create, owner_org="acc-org", title="Q",
               questions=[{"id": "a", "text": "Pick", "type": "choice"}])
    # Approve once; twice is refused.
    provider.action.access_request_approve(id=pending["id"], days=30)
    err = _unchanged(mosu, ckanapi.ValidationError, provider.action.access_request_approve, id=pending["id"])
    assert "already approved" in err.error_dict["id"][0]
    _unchanged(mosu, ckanapi.ValidationError, provider.action.access_request_deny, id=pending["id"], reason="late")
    _unchanged(mosu, ckanapi.ValidationError, site["researcher"].action.access_request_withdraw, id=pending["id"])


def test_bad_requests_are_refused(mosu, site, pending):
    researcher, provider = site["researcher"], site["provider"]
    restricted(site, "acc-bad-2")
    good = {"package_id": "acc-bad-2", "purpose": "A study", "answers": ANSWERS}

    def bad(field: str, error=ckanapi.ValidationError, who=researcher, **changes) -> None:
        err = _unchanged(mosu, error, who.action.access_request_create, **{**good, **changes})
        if field:
            assert field in err.error_dict, err.error_dict

    bad("answers", answers={"use": "research"})  # a required question left out
    bad("answers", answers={**ANSWERS, "use": "profit"})  # not one of the choices
    bad("answers", answers={**ANSWERS, "ethics": "maybe"})
    bad("answers", answers={**ANSWERS, "extra": "?"})
    bad("purpose", purpose="x" * 10_001)
    bad("purpose", purpose="   ")
    bad("columns", columns=["city", "salary"])
    bad("duration_days", duration_days=366)  # the dataset grants 365 days at most
    bad("", error=ckanapi.NotAuthorized, who=site["anon"])
    # Datasets that take no requests: open, registered, deleted, private.
    provider.action.package_create(name="acc-open", owner_org="acc-org")
    bad("package_id", package_id="acc-open")
    provider.action.package_create(name="acc-reg", owner_org="acc-org", access_level="registered")
    bad("package_id", package_id="acc-reg")
    provider.action.package_create(name="acc-private", owner_org="acc-org", private=True, access_level="restricted")
    bad("", error=ckanapi.NotFound, package_id="acc-private")
    bad("package_id", who=site["staff"], package_id="acc-private")  # a member sees it, and reads it already
    provider.action.package_create(name="acc-deleted", owner_org="acc-org", access_level="restricted")
    provider.action.package_delete(id="acc-deleted")
    bad("", error=ckanapi.NotFound, package_id="acc-deleted")
    bad("", error=ckanapi.NotFound, package_id="acc-nowhere")
    # One pending request per user and dataset.
    researcher.action.access_request_create(**good)
    bad("package_id")
    assert [r["package_name"] for r in researcher.action.access_request_list(state="pending")].count("acc-bad-2") == 1
    pending_now = researcher.action.access_request_list(state="pending")
    [withdrawn] = [r for r in pending_now if r["package_name"] == "acc-bad-2"]
    assert researcher.action.access_request_withdraw(id=withdrawn["id"])["state"] == "withdrawn"
    assert inbox(mosu, "acc-provider", "access_request.withdrawn", withdrawn["id"]) == 1


def test_purging_a_dataset_takes_its_grants_requests_and_acceptances_with_it(mosu, site):
    """A purge used to fail with a 500 (a foreign key) once anyone had asked for access, or while a
    multipart upload to the dataset was open (found by the fuzz test in random order); the audit
    chain keeps the record of each."""
    ds = restricted(site, "acc-purged")
    req = site["researcher"].action.access_request_create(package_id="acc-purged", purpose="Purge test",
                                                          answers=ANSWERS)
    grant = site["provider"].action.access_grant_create(package_id="acc-purged", user_id="acc-outsider", days=5)
    site["staff"].action.agreement_accept(package_id="acc-purged")
    started = site["provider"].action.resource_upload_start(package_id="acc-purged", size=10, filename="late.csv")
    site["admin"].action.dataset_purge(id="acc-purged")
    with pytest.raises(ckanapi.NotFound):
        site["admin"].action.package_show(id="acc-purged")
    with mosu.inspect().read() as s:
        for model in (AccessGrant, AccessRequest, Acceptance, MultipartUpload):  # an upload in flight too
            assert s.scalar(select(func.count()).select_from(model).where(model.package_id == ds["id"])) == 0
        purge = s.scalars(select(AuditEvent).where(AuditEvent.action == "dataset_purge",
                                                   AuditEvent.object_id == ds["id"])).one()
    assert (purge.detail["grants"], purge.detail["requests"], purge.detail["acceptances"]) == (1, 1, 1)
    assert started["upload_id"]
    assert events(mosu, req["id"]) == ["access_request_create"] and events(mosu, grant["id"]) == ["access_grant_create"]
