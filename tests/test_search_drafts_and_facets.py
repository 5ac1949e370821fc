"""package_search's ``include_drafts`` and ``facet.mincount``, on datasets each test makes for itself.

README: package_search takes "``facet.field``, ``facet.limit``, ``facet.mincount``,
``include_private``, ``include_drafts``", and "a deleted or draft dataset is seen only through a
role that may edit it". Every test filters on an organization of its own (``fq=organization:``),
so its counts do not depend on what other tests made.
"""
from __future__ import annotations

import uuid

import pytest
import requests


@pytest.fixture(scope="module")
def admin(mosu):
    return mosu.ckan(mosu.token(f"search-admin-{uuid.uuid4().hex[:6]}", sysadmin=True))


def _user(mosu, admin, name: str):
    admin.action.user_create(name=name, email=f"{name}@example.org")
    return mosu.ckan(admin.action.api_token_create(user=name, name="laptop")["token"])


def _names(client, org: str, **params) -> list[str]:
    found = client.action.package_search(fq=f"organization:{org}", sort="name asc", rows=100, **params)
    assert found["count"] == len(found["results"])
    return [p["name"] for p in found["results"]]


def test_a_draft_is_found_only_with_include_drafts_and_only_by_who_may_edit_it(mosu, admin):
    suffix = uuid.uuid4().hex[:8]
    org = admin.action.organization_create(name=f"drafts-{suffix}")["name"]
    editor, member, outsider = (_user(mosu, admin, f"drafts-{role}-{suffix}") for role in ("editor", "member", "out"))
    shared_editor, shared_member = (_user(mosu, admin, f"drafts-collab-{cap}-{suffix}") for cap in ("editor", "member"))
    admin.action.organization_member_create(id=org, username=f"drafts-editor-{suffix}", role="editor")
    admin.action.organization_member_create(id=org, username=f"drafts-member-{suffix}", role="member")
    published = admin.action.package_create(name=f"drafts-a-published-{suffix}", owner_org=org)["name"]
    draft = editor.action.package_create(name=f"drafts-b-draft-{suffix}", owner_org=org, state="draft")
    assert draft["state"] == "draft" and draft["private"] is False
    for capacity in ("editor", "member"):
        admin.action.package_collaborator_create(id=draft["id"], user_id=f"drafts-collab-{capacity}-{suffix}",
                                                 capacity=capacity)
    both = [published, draft["name"]]
    callers = (("sysadmin", admin, True), ("organization editor", editor, True),
               ("editing collaborator", shared_editor, True), ("organization member", member, False),
               ("reading collaborator", shared_member, False), ("another user", outsider, False),
               ("anonymous", mosu.ckan(), False))
    for who, client, may_edit in callers:
        assert _names(client, org) == [published], f"{who}: no draft without include_drafts"
        assert _names(client, org, include_drafts=False) == [published], who
        assert _names(client, org, include_drafts=True) == (both if may_edit else [published]), who
    # The query string form of a GET, as CKAN clients send it.
    anonymous = requests.get(f"{mosu.url}/api/3/action/package_search",
                             params={"fq": f"organization:{org}", "include_drafts": "true"}, timeout=30).json()
    assert [p["name"] for p in anonymous["result"]["results"]] == [published]


def test_facet_mincount_drops_the_facets_below_it_and_counts_exactly(mosu, admin):
    suffix = uuid.uuid4().hex[:8]
    org = admin.action.organization_create(name=f"facets-{suffix}")["name"]
    common, some, rare = f"common-{suffix}", f"some-{suffix}", f"rare-{suffix}"
    made = [([common, some, rare], "cc-by"), ([common, some], "cc-by"), ([common], "cc-by"), ([], "cc-by"),
            ([], "cc-by"), ([rare], "odc-odbl")]
    for i, (tags, license_id) in enumerate(made):
        admin.action.package_create(name=f"facets-{i}-{suffix}", owner_org=org, license_id=license_id,
                                    tags=[{"name": t} for t in tags])
    # Not counted by anyone searching without include_private: a private dataset with every tag.
    admin.action.package_create(name=f"facets-private-{suffix}", owner_org=org, private=True, license_id="odc-odbl",
                                tags=[{"name": t} for t in (common, some, rare)])
    anonymous = mosu.ckan()

    def facets(mincount: int | None, client=anonymous, **params) -> dict:
        extra = {} if mincount is None else {"facet.mincount": mincount}
        found = client.action.package_search(fq=f"organization:{org}", rows=0, **extra, **params,
                                             **{"facet.field": ["tags", "license_id", "organization"]})
        return found

    default = facets(None)
    assert default["count"] == 6
    assert default["facets"] == {"tags": {common: 3, some: 2, rare: 2}, "license_id": {"cc-by": 5, "odc-odbl": 1},
                                 "organization": {org: 6}}
    assert facets(1)["facets"] == default["facets"]
    assert facets(2)["facets"] == {"tags": {common: 3, some: 2, rare: 2}, "license_id": {"cc-by": 5},
                                   "organization": {org: 6}}
    three = facets(3)
    assert three["facets"] == {"tags": {common: 3}, "license_id": {"cc-by": 5}, "organization": {org: 6}}
    assert three["search_facets"]["tags"] == {"title": "tags", "items": [
        {"name": common, "display_name": common, "count": 3}]}
    assert facets(7)["facets"] == {"tags": {}, "license_id": {}, "organization": {}}
    # The private dataset counts for a caller who may read it and asks for private ones.
    assert facets(3, client=admin, include_private=True)["facets"] == {
        "tags": {common: 4, some: 3, rare: 3}, "license_id": {"cc-by": 5}, "organization": {org: 7}}
    # The query string form of a GET: facet.field as a JSON list, facet.mincount as text.
    got = requests.get(f"{mosu.url}/api/3/action/package_search", timeout=30, params={
        "fq": f"organization:{org}", "rows": "0", "facet.field": '["tags"]', "facet.mincount": "3"}).json()
    assert got["result"]["facets"] == {"tags": {common: 3}}
