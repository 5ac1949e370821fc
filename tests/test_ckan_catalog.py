"""CKAN's catalog model and permissions, driven through the real ckanapi client over HTTP."""
from __future__ import annotations

import datetime as dt
import io
import json

import ckanapi
import pytest
import requests
from sqlalchemy import func, select

from catalog.db.models import (
    Activity,
    ApiToken,
    AuditEvent,
    Group,
    Package,
    ResourceVersion,
    SearchChange,
    User,
    utcnow,
)
from tests.conftest import wait_for_ingest


@pytest.fixture(scope="module")
def people(mosu):
    """A sysadmin, an organization with an admin, an editor and a member, and an outsider."""
    sysadmin = mosu.ckan(mosu.token("root", sysadmin=True))
    clients = {name: mosu.ckan(mosu.token(name)) for name in ("alice", "eddie", "mia", "olga", "cora")}
    # Creating organizations is for sysadmins (MOSU_USERS_CREATE_ORGANIZATIONS is off): root makes
    # one with alice as its only admin.
    org = sysadmin.action.organization_create(name="health-lab", title="Health Lab",
                                              users=[{"name": "alice", "capacity": "admin"}])
    clients["alice"].action.organization_member_create(id=org["id"], username="eddie", role="editor")
    clients["alice"].action.organization_member_create(id=org["id"], username="mia", role="member")
    return {"root": sysadmin, "anon": mosu.ckan(), "org": org, **clients}


@pytest.fixture(scope="module")
def private_ds(people):
    return people["eddie"].action.package_create(
        name="patient-visits", title="Patient visits", owner_org="health-lab", private=True,
        tags=[{"name": "confidential-tag"}], notes="Hospital visits per ward")


@pytest.fixture(scope="module")
def public_ds(people):
    return people["eddie"].action.package_create(
        name="clinic-locations", title="Clinic locations", owner_org="health-lab",
        tags=[{"name": "health"}, {"name": "maps"}], license_id="cc-by", notes="Where the clinics are",
        extras=[{"key": "source", "value": "city survey"}],
        resources=[{"name": "map", "url": "https://example.org/clinics.geojson", "format": "GeoJSON"}])


# -- organizations and members ---------------------------------------------------------------

def test_roles_decide_who_creates(people):
    with pytest.raises(ckanapi.NotAuthorized):
        people["mia"].action.package_create(name="by-member", owner_org="health-lab")
    with pytest.raises(ckanapi.NotAuthorized):
        people["olga"].action.package_create(name="by-outsider", owner_org="health-lab")
    with pytest.raises(ckanapi.NotAuthorized):
        people["eddie"].action.organization_member_create(id="health-lab", username="olga", role="admin")
    with pytest.raises(ckanapi.NotAuthorized):
        people["eddie"].action.organization_update(id="health-lab", title="Hijacked")
    assert people["anon"].action.organization_show(id="health-lab")["title"] == "Health Lab"


def test_member_lists_and_roles(people):
    org = people["alice"].action.organization_show(id="health-lab", include_users=True)
    assert {(u["name"], u["capacity"]) for u in org["users"]} == {("alice", "admin"), ("eddie", "editor"),
                                                                 ("mia", "member")}
    assert "users" not in people["anon"].action.organization_show(id="health-lab")
    roles = people["anon"].action.member_roles_list(group_type="organization")
    assert [r["value"] for r in roles] == ["admin", "editor", "member"]
    mine = people["eddie"].action.organization_list_for_user(permission="create_dataset")
    assert [o["name"] for o in mine] == ["health-lab"]
    assert people["mia"].action.organization_list_for_user(permission="create_dataset") == []


def test_private_datasets_never_leak(mosu, people, private_ds, public_ds):
    anon, olga, mia = people["anon"], people["olga"], people["mia"]
    for client in (anon, olga):
        with pytest.raises(ckanapi.NotFound):
            client.action.package_show(id=private_ds["name"])
        assert private_ds["name"] not in client.action.package_list(include_private=True)
        found = client.action.package_search(q="*:*", include_private=True, rows=1000)
        assert private_ds["name"] not in {d["name"] for d in found["results"]}
        assert "confidential-tag" not in client.action.tag_list()
        with pytest.raises(ckanapi.NotFound):
            client.action.tag_show(id="confidential-tag")
        acts = client.action.organization_activity_list(id="health-lab")
        assert private_ds["id"] not in {a["object_id"] for a in acts}
    # Other tests of this module add datasets to health-lab: the count is checked against the database.
    with mosu.inspect().read() as s:
        public = set(s.scalars(select(Package.name).where(Package.owner_org == people["org"]["id"],
                                                          Package.private.is_(False), Package.state == "active")))
    assert public_ds["name"] in public and private_ds["name"] not in public
    assert people["anon"].action.organization_show(id="health-lab")["package_count"] == len(public)
    # Members of the organization see it, in search only when they ask for private datasets.
    assert mia.action.package_show(id=private_ds["name"])["private"] is True
    assert private_ds["name"] not in {d["name"] for d in mia.action.package_search(q="visits")["results"]}
    assert [d["name"] for d in mia.action.package_search(q="visits", include_private=True)["results"]] == \
        [private_ds["name"]]


def test_collaborators_get_the_capacity_they_were_given(people, private_ds):
    alice, cora = people["alice"], people["cora"]
    with pytest.raises(ckanapi.NotFound):
        cora.action.package_show(id=private_ds["id"])
    alice.action.package_collaborator_create(id=private_ds["id"], user_id="cora", capacity="member")
    assert cora.action.package_show(id=private_ds["id"])["name"] == private_ds["name"]
    with pytest.raises(ckanapi.NotAuthorized):
        cora.action.package_patch(id=private_ds["id"], title="Changed by a reader")
    alice.action.package_collaborator_create(id=private_ds["id"], user_id="cora", capacity="editor")
    assert cora.action.package_patch(id=private_ds["id"], notes="Edited by a collaborator")["notes"] == \
        "Edited by a collaborator"
    listed = alice.action.package_collaborator_list(id=private_ds["id"])
    assert [(c["capacity"]) for c in listed] == ["editor"]
    with pytest.raises(ckanapi.NotAuthorized):
        people["eddie"].action.package_collaborator_create(id=private_ds["id"], user_id="olga", capacity="editor")
    alice.action.package_collaborator_delete(id=private_ds["id"], user_id="cora")
    with pytest.raises(ckanapi.NotFound):
        cora.action.package_show(id=private_ds["id"])


def test_an_unauthorised_call_changes_nothing(people, public_ds):
    before = people["anon"].action.package_show(id=public_ds["id"])
    for client in (people["olga"], people["mia"], people["anon"]):
        with pytest.raises(ckanapi.NotAuthorized):
            client.action.package_patch(id=public_ds["id"], title="Vandalised")
        with pytest.raises(ckanapi.NotAuthorized):
            client.action.package_delete(id=public_ds["id"])
        with pytest.raises(ckanapi.NotAuthorized):
            client.action.dataset_purge(id=public_ds["id"])
        with pytest.raises(ckanapi.NotAuthorized):
            client.action.user_create(name="sneaky")
    after = people["anon"].action.package_show(id=public_ds["id"])
    assert after == before


# -- datasets --------------------------------------------------------------------------------

def test_create_show_round_trips_ckan_fields(people, public_ds):
    shown = people["anon"].action.package_show(id="clinic-locations")
    assert shown["organization"]["name"] == "health-lab"
    assert [t["name"] for t in shown["tags"]] == ["health", "maps"]
    assert shown["extras"] == [{"key": "source", "value": "city survey"}]
    assert shown["license_title"] == "Creative Commons Attribution" and shown["isopen"] is True
    assert shown["resources"][0]["format"] == "GeoJSON" and shown["num_resources"] == 1
    assert shown["metadata_created"] <= shown["metadata_modified"]


def test_update_replaces_and_patch_merges(people):
    eddie = people["eddie"]
    pkg = eddie.action.package_create(name="beds", owner_org="health-lab", title="Beds", notes="n",
                                      tags=[{"name": "beds"}],
                                      resources=[{"name": "a", "url": "https://x/a"}, {"name": "b", "url": "https://x/b"}])
    keep = pkg["resources"][1]
    updated = eddie.action.package_update(id=pkg["id"], name="beds", title="Hospital beds",
                                          resources=[{"id": keep["id"], "name": "b2", "url": keep["url"]}])
    assert updated["notes"] == "" and updated["tags"] == [], "package_update resets fields left out"
    assert [(r["id"], r["name"]) for r in updated["resources"]] == [(keep["id"], "b2")]
    with pytest.raises(ckanapi.NotFound):
        eddie.action.resource_show(id=pkg["resources"][0]["id"])
    patched = eddie.action.package_patch(id=pkg["id"], notes="Beds per hospital")
    assert patched["title"] == "Hospital beds" and patched["notes"] == "Beds per hospital"
    assert [r["id"] for r in patched["resources"]] == [keep["id"]]
    res = eddie.action.resource_patch(id=keep["id"], description="Counted nightly")
    assert res["name"] == "b2" and res["description"] == "Counted nightly"
    acts = eddie.action.package_activity_list(id=pkg["id"])
    assert [a["activity_type"] for a in acts][-1] == "new package"
    assert {a["activity_type"] for a in acts} == {"new package", "changed package"}


def test_delete_is_soft_and_purge_is_final(mosu, people, public_ds):
    eddie, root = people["eddie"], people["root"]
    pkg = eddie.action.package_create(name="to-delete", owner_org="health-lab")
    res = eddie.action.resource_create(package_id=pkg["id"], upload=("d.csv", io.BytesIO(b"a,b\n1,2\n")))
    wait_for_ingest(eddie, res["id"])
    eddie.action.package_delete(id=pkg["id"])
    assert eddie.action.package_show(id=pkg["id"])["state"] == "deleted"
    with pytest.raises(ckanapi.NotFound):
        people["anon"].action.package_show(id=pkg["id"])
    assert "to-delete" not in people["anon"].action.package_list()
    with pytest.raises(ckanapi.ValidationError):  # public_ds is still in it
        people["alice"].action.organization_delete(id="health-lab")
    platform = mosu.inspect()
    with platform.read() as s:
        keys = [k for v in s.scalars(select(ResourceVersion).where(ResourceVersion.resource_id == res["id"]))
                for k in (v.raw_key, v.parquet_key)]
    assert all(platform.store.exists(k) for k in keys)
    with pytest.raises(ckanapi.NotAuthorized):
        eddie.action.dataset_purge(id=pkg["id"])
    root.action.dataset_purge(id=pkg["id"])
    with pytest.raises(ckanapi.NotFound):
        root.action.package_show(id=pkg["id"])
    assert not any(platform.store.exists(k) for k in keys)


def test_groups_hold_datasets_from_any_organization(people, public_ds):
    olga = people["olga"]
    grp = people["root"].action.group_create(name="open-health", title="Open health",
                                             users=[{"name": "olga", "capacity": "admin"}])
    olga.action.member_create(id=grp["id"], object=public_ds["name"], object_type="package", capacity="public")
    shown = people["anon"].action.group_show(id="open-health", include_datasets=True)
    assert [p["name"] for p in shown["packages"]] == [public_ds["name"]] and shown["package_count"] == 1
    assert "open-health" in people["anon"].action.group_list()
    in_pkg = people["anon"].action.package_show(id=public_ds["name"])["groups"]
    assert [g["name"] for g in in_pkg] == ["open-health"]
    listed = people["anon"].action.group_list(all_fields=True)
    assert listed[0]["package_count"] == 1
    olga.action.group_patch(id="open-health", description="Health data open to all")
    assert people["anon"].action.group_show(id="open-health")["title"] == "Open health"


def test_licenses_and_help(people):
    ids = {lic["id"] for lic in people["anon"].action.license_list()}
    assert {"cc-by", "odc-odbl", "notspecified"} <= ids
    assert "Replace a dataset" in people["anon"].action.help_show(name="package_update")


def test_any_short_licence_id_is_kept_and_the_common_spdx_ids_are_registered(people):
    """Issue 11: 'Unknown licence: CC-BY-4.0' made ``ckanapi load`` from real portals fail; CKAN keeps
    any licence id, its title falling back to the id."""
    eddie = people["eddie"]
    listed = {lic["id"]: lic for lic in people["anon"].action.license_list()}
    spdx = {"CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "ODbL-1.0", "ODC-By-1.0", "PDDL-1.0", "OGL-UK-3.0"}
    assert spdx | {"cc-by", "odc-odbl", "notspecified", "other-closed"} <= set(listed), "beside CKAN's defaults"
    assert set(listed["CC-BY-4.0"]) == set(listed["cc-by"]), "license_list keeps CKAN's shape"
    assert listed["CC-BY-4.0"]["is_okd_compliant"] is True and listed["CC-BY-NC-4.0"]["is_okd_compliant"] is False
    pkg = eddie.action.package_create(name="spdx-licensed", owner_org="health-lab", license_id="CC-BY-4.0")
    assert (pkg["license_id"], pkg["license_title"], pkg["isopen"]) == (
        "CC-BY-4.0", "Creative Commons Attribution 4.0 International", True)
    assert pkg["license_url"] == "https://creativecommons.org/licenses/by/4.0/"
    own = eddie.action.package_create(name="own-licence", owner_org="health-lab", license_id="city-data-licence-2.1")
    assert (own["license_id"], own["license_title"], own["license_url"], own["isopen"]) == (
        "city-data-licence-2.1", "city-data-licence-2.1", "", False)
    patched = eddie.action.package_patch(id="own-licence", notes="kept on patch")
    assert patched["license_id"] == "city-data-licence-2.1"
    for bad, message in (("x" * 101, "Must be at most 100 characters"),
                         ("cc-by\nInjected: yes", "Must not contain control characters")):
        with pytest.raises(ckanapi.ValidationError) as err:
            eddie.action.package_create(name="bad-licence", owner_org="health-lab", license_id=bad)
        assert err.value.error_dict["license_id"] == [message]


# -- users and tokens ------------------------------------------------------------------------

def test_passwords_are_argon2_and_changing_one_needs_the_old(mosu, people):
    root = people["root"]
    root.action.user_create(name="pat", email="pat@example.org", password="correct horse")
    with pytest.raises(ckanapi.ValidationError):
        root.action.user_create(name="short-pw", password="short")
    with mosu.inspect().read() as s:
        assert s.scalar(select(User.password_hash).where(User.name == "pat")).startswith("$argon2id$")
    pat = mosu.ckan(mosu.token("pat"))
    with pytest.raises(ckanapi.ValidationError) as err:
        pat.action.user_update(id="pat", password="new password!", old_password="wrong one")
    assert "old_password" in err.value.error_dict
    pat.action.user_update(id="pat", password="new password!", old_password="correct horse")
    assert pat.action.user_show(id="pat")["email"] == "pat@example.org"
    assert "email" not in people["anon"].action.user_show(id="pat")
    assert "pat" in people["anon"].action.user_list(all_fields=False)


def test_tokens_can_expire_be_listed_and_revoked(mosu, people, private_ds):
    root = people["root"]
    short = root.action.api_token_create(user="mia", name="brief", expires_in=1, unit="second")["token"]
    brief = [t for t in root.action.api_token_list(user_id="mia") if t["name"] == "brief"][0]
    lifetime = dt.datetime.fromisoformat(brief["expires_at"]) - dt.datetime.fromisoformat(brief["created_at"])
    assert dt.timedelta(seconds=0.5) < lifetime <= dt.timedelta(seconds=1), lifetime
    # The second has passed: its expiry is put in the past rather than waited for.
    with mosu.inspect().write.begin() as s:
        s.get(ApiToken, brief["id"]).expires = utcnow() - dt.timedelta(seconds=1)
    r = requests.post(mosu.url + "/api/3/action/package_list", json={}, headers={"Authorization": short}, timeout=10)
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]
    token = people["mia"].action.api_token_create(user="mia", name="laptop")["token"]
    listed = people["mia"].action.api_token_list(user_id="mia")
    laptop = [t for t in listed if t["name"] == "laptop"][0]
    assert "token" not in laptop and laptop["user_id"]
    with pytest.raises(ckanapi.NotFound):
        people["olga"].action.api_token_revoke(jti=laptop["id"])
    # The new token acts as mia: it lists her organization's private dataset, which no anonymous
    # caller sees, and exactly the list her first token gets.
    listed_with_token = mosu.ckan(token).action.package_list(include_private=True)
    assert private_ds["name"] in listed_with_token
    assert private_ds["name"] not in people["anon"].action.package_list(include_private=True)
    assert listed_with_token == people["mia"].action.package_list(include_private=True)
    people["mia"].action.api_token_revoke(jti=laptop["id"])
    with pytest.raises(ckanapi.NotAuthorized):
        mosu.ckan(token).action.package_list()


# -- search ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(people):
    root = people["root"]
    root.action.organization_create(name="river-agency", title="River Agency")
    docs = [
        ("river-levels", "River levels", "Daily water levels of the Yangtze river", ["water", "rivers"],
         "CSV", "cc-by"),
        ("rainfall", "Rainfall totals", "Monthly rainfall near the river delta", ["water", "weather"],
         "CSV", "odc-odbl"),
        ("bridge-census", "Bridge census", "Every bridge over a river, with its length", ["transport"],
         "JSON", "cc-by"),
        ("air-quality", "Air quality", "PM2.5 readings from city stations", ["air", "weather"], "XLSX", "cc-zero"),
    ]
    for name, title, notes, tags, fmt, lic in docs:
        root.action.package_create(name=name, title=title, notes=notes, owner_org="river-agency", license_id=lic,
                                   tags=[{"name": t} for t in tags],
                                   resources=[{"name": f"{name} file", "url": f"https://x/{name}", "format": fmt}])
    return [d[0] for d in docs]


def _names(result):
    return [d["name"] for d in result["results"]]


def test_search_ranks_and_filters(people, corpus):
    s = people["anon"].action.package_search
    hits = s(q="river", fq="organization:river-agency")
    assert hits["count"] == 4, "the organization's name is searchable text too"
    assert _names(hits)[0] == "river-levels", "a title match ranks first"
    assert _names(hits)[-1] == "air-quality", "a match on the organization alone ranks last"
    # Scoped to the corpus's organization: other tests of this module add datasets of their own.
    org = "organization:river-agency"
    assert _names(s(q='"water levels"', fq=org)) == ["river-levels"]
    assert set(_names(s(q="water -bridge", fq=org))) == {"river-levels", "rainfall"}
    assert set(_names(s(q="tags:weather", fq=org))) == {"rainfall", "air-quality"}
    assert set(_names(s(q="title:rainfall OR title:bridge", fq=org))) == {"rainfall", "bridge-census"}
    assert _names(s(q="water AND NOT tags:rivers", fq=org)) == ["rainfall"]
    assert set(_names(s(fq_list=[org, "res_format:CSV"]))) == {"river-levels", "rainfall"}
    assert set(_names(s(fq_list=["organization:river-agency", "license_id:cc-by"]))) == \
        {"river-levels", "bridge-census"}
    assert "river-levels" not in _names(s(fq="-organization:river-agency", rows=1000))
    assert s(fq="metadata_modified:[2000-01-01T00:00:00Z TO *]", rows=0)["count"] >= 4
    assert s(fq="metadata_modified:[* TO 2000-01-01T00:00:00Z]")["count"] == 0


def test_search_sorts_pages_and_facets(people, corpus):
    s = people["anon"].action.package_search
    by_name = _names(s(fq="organization:river-agency", sort="name asc"))
    assert by_name == sorted(corpus)
    assert _names(s(fq="organization:river-agency", sort="title_string desc")) == \
        ["river-levels", "rainfall", "bridge-census", "air-quality"]
    page = s(fq="organization:river-agency", sort="name asc", rows=2, start=2)
    assert _names(page) == sorted(corpus)[2:] and page["count"] == 4
    newest = _names(s(fq="organization:river-agency", sort="metadata_modified desc"))
    assert newest[0] == "air-quality"
    faceted = s(fq="organization:river-agency", **{"facet.field": '["tags","res_format","license_id"]',
                                                    "facet.limit": 2})
    assert faceted["facets"]["tags"] == {"water": 2, "weather": 2}
    items = faceted["search_facets"]["res_format"]["items"]
    assert items[0] == {"name": "CSV", "display_name": "CSV", "count": 2}
    org_facet = s(q="river", **{"facet.field": '["organization"]'})["search_facets"]["organization"]["items"]
    assert org_facet[0]["display_name"] == "River Agency"


def test_search_reflects_changes_at_once(people):
    """On datasets of its own: the corpus stays as the other search tests read it."""
    root, s = people["root"], people["anon"].action.package_search
    root.action.organization_create(name="ferry-office")
    for name, title in (("ferry-census", "Ferry census"), ("smog-readings", "Smog readings")):
        root.action.package_create(name=name, title=title, owner_org="ferry-office")
    assert _names(s(q="huangpu")) == []
    root.action.package_patch(id="ferry-census", title="Ferry census of the Huangpu")
    assert _names(s(q="huangpu")) == ["ferry-census"]
    assert _names(s(q="smog")) == ["smog-readings"]
    root.action.package_delete(id="smog-readings")
    assert _names(s(q="smog", rows=100)) == []


@pytest.mark.parametrize("params", [
    {"q": "title:(unclosed"}, {"q": '"unbalanced'}, {"q": "nosuchfield:x"}, {"q": "AND"},
    {"sort": "popularity sideways"}, {"fq": "metadata_modified:[yesterday TO *]"},
    {"facet.field": "{not json"},
])
def test_malformed_searches_get_search_query_error(mosu, params):
    r = requests.post(mosu.url + "/api/3/action/package_search", json=params, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["__type"] == "Search Query Error"
    with pytest.raises(ckanapi.SearchQueryError):
        mosu.ckan().action.package_search(**params)


def test_rows_are_capped_at_1000(people):
    with pytest.raises(ckanapi.ValidationError):
        people["anon"].action.package_search(rows=1001)


# -- attacks from the security review (issue 10: items 1, 8, 10, 16) -------------------------

def test_users_may_not_create_organizations_or_groups_by_default(people):
    """CKAN's default: organizations and groups are made by sysadmins (MOSU_USERS_CREATE_ORGANIZATIONS)."""
    for client in (people["olga"], people["alice"]):  # a plain user, and an organization's admin
        with pytest.raises(ckanapi.NotAuthorized) as err:
            client.action.organization_create(name="carols-own-org")
        assert err.value.args[0]["message"] == "Access denied: only a sysadmin may create organizations on this site"
        with pytest.raises(ckanapi.NotAuthorized):
            client.action.group_create(name="carols-own-group")
    assert "carols-own-org" not in people["root"].action.organization_list()
    assert "carols-own-group" not in people["root"].action.group_list()


@pytest.fixture(scope="module")
def open_site(mosu_factory):
    """A second ``mosu up`` whose users may create organizations and groups
    (MOSU_USERS_CREATE_ORGANIZATIONS=true): a dataset must not be taken even there."""
    return mosu_factory(users_create_organizations=True)


def test_a_collaborator_cannot_take_a_dataset_into_her_own_organization(open_site):
    site = open_site
    ada, mo, carol = (site.ckan(site.token(name)) for name in ("ada", "mo", "carol"))
    ada.action.organization_create(name="org-a")  # users may, on this site
    ada.action.organization_member_create(id="org-a", username="mo", role="member")
    pkg = ada.action.package_create(name="a-private", owner_org="org-a", private=True, notes="Ward records")
    ada.action.package_collaborator_create(id=pkg["id"], user_id="carol", capacity="editor")
    carols = carol.action.organization_create(name="carols-org")

    with pytest.raises(ckanapi.NotAuthorized) as err:
        carol.action.package_patch(id=pkg["id"], owner_org=carols["id"])
    assert "needs edit rights in both" in err.value.args[0]["message"]
    with pytest.raises(ckanapi.NotAuthorized):  # package_update replaces the whole dataset: same rule
        carol.action.package_update(**{**carol.action.package_show(id=pkg["id"]), "owner_org": "carols-org"})

    # The dataset stays in org-a: its admin and members still read it, and the admin removes carol.
    assert ada.action.package_show(id=pkg["id"])["organization"]["name"] == "org-a"
    assert mo.action.package_show(id=pkg["id"])["notes"] == "Ward records"
    assert carol.action.organization_show(id="carols-org", include_datasets=True)["packages"] == []
    ada.action.package_collaborator_delete(id=pkg["id"], user_id="carol")
    with pytest.raises(ckanapi.NotFound):
        carol.action.package_show(id=pkg["id"])
    with site.inspect().read() as s:
        assert s.scalar(select(Group.name).join(Package, Package.owner_org == Group.id)
                        .where(Package.id == pkg["id"])) == "org-a"


def test_moving_a_dataset_needs_edit_rights_in_both_organizations(open_site):
    site = open_site
    root = site.ckan(site.token("root-o", sysadmin=True))
    ed, mem = site.ckan(site.token("ed")), site.ckan(site.token("mem"))
    root.action.organization_create(name="org-src", users=[{"name": "ed", "capacity": "editor"},
                                                           {"name": "mem", "capacity": "member"}])
    ed.action.organization_create(name="org-dst")  # ed is its admin
    root.action.organization_create(name="org-other", users=[{"name": "ed", "capacity": "member"},
                                                             {"name": "mem", "capacity": "admin"}])
    pkg = ed.action.package_create(name="movable", owner_org="org-src", private=True)

    with pytest.raises(ckanapi.NotAuthorized):  # only a member of the target
        ed.action.package_patch(id=pkg["id"], owner_org="org-other")
    with pytest.raises(ckanapi.NotAuthorized):  # only a member of the source
        mem.action.package_patch(id=pkg["id"], owner_org="org-other")
    assert ed.action.package_show(id=pkg["id"])["organization"]["name"] == "org-src"

    moved = ed.action.package_patch(id=pkg["id"], owner_org="org-dst")  # editor here, admin there
    assert moved["organization"]["name"] == "org-dst"
    with pytest.raises(ckanapi.NotFound):  # private: org-src's members no longer read it
        mem.action.package_show(id=pkg["id"])
    assert root.action.package_patch(id=pkg["id"], owner_org="org-other")["organization"]["name"] == "org-other"


def test_users_may_create_organizations_when_the_site_allows_it(open_site):
    site = open_site
    uma = site.ckan(site.token("uma"))
    org = uma.action.organization_create(name="uma-lab", id="33333333-3333-3333-3333-333333333333")
    assert org["id"] != "33333333-3333-3333-3333-333333333333", "only sysadmins choose ids"
    assert [u["name"] for u in uma.action.organization_show(id="uma-lab")["users"]] == ["uma"]
    assert uma.action.group_create(name="uma-group")["name"] == "uma-group"


def test_user_list_matches_e_mail_only_for_sysadmins_and_wildcards_literally(mosu, people):
    root, anon, olga = people["root"], people["anon"], people["olga"]
    root.action.user_create(name="carol", fullname="Carol", email="carol.private@secretcorp.example")
    for q in ("secretcorp", "c_rol.pri%@secret"):
        r = requests.get(mosu.url + "/api/3/action/user_list", params={"q": q}, timeout=10)
        assert r.status_code == 200 and r.json()["result"] == [], q
        assert olga.action.user_list(q=q, all_fields=False) == [], q
    assert root.action.user_list(q="secretcorp", all_fields=False) == ["carol"]
    assert root.action.user_list(q="c_rol.pri%@secret", all_fields=False) == [], "% and _ match themselves"
    assert anon.action.user_list(q="caro", all_fields=False) == ["carol"], "names still match"
    for q in ("%", "_", "\\"):
        assert anon.action.user_list(q=q, all_fields=False) == [], q
        assert anon.action.organization_list(q=q) == [], q
        assert anon.action.group_list(q=q) == [], q
        assert anon.action.tag_list(query=q) == [], q


def test_activity_follows_the_dataset_s_current_visibility(people):
    eddie, anon, olga, mia = people["eddie"], people["anon"], people["olga"], people["mia"]
    pkg = eddie.action.package_create(name="ward-plans", owner_org="health-lab", notes="Bed counts per ward")

    def seen(client, action="organization_activity_list", **params):
        acts = getattr(client.action, action)(limit=100, **params)
        return [a for a in acts if a["object_id"] == pkg["id"]]

    assert [a["activity_type"] for a in seen(anon, id="health-lab")] == ["new package"]
    eddie.action.package_patch(id=pkg["id"], private=True, notes="Merger plan with Acme")
    for client in (anon, olga):  # the "new package" snapshot (name, notes) went private with it
        assert seen(client, id="health-lab") == []
        with pytest.raises(ckanapi.NotFound):
            client.action.package_activity_list(id=pkg["id"])
    assert len(seen(mia, id="health-lab")) == 2, "members still see all of it"

    # Public again: what was recorded while private stays with those who could read it then.
    eddie.action.package_patch(id=pkg["id"], private=False, notes="Published summary")
    for client in (anon, olga):
        for acts in (seen(client, id="health-lab"), seen(client, "package_activity_list", id=pkg["id"])):
            assert [a["activity_type"] for a in acts] == ["changed package", "new package"]
            assert "Merger plan" not in json.dumps(acts)
    assert "Merger plan" in json.dumps(seen(mia, "package_activity_list", id=pkg["id"]))
    assert len(seen(mia, id="health-lab")) == 3

    eddie.action.package_delete(id=pkg["id"])  # deleted: only its editors still read it, and its activity
    assert seen(anon, id="health-lab") == [] and seen(mia, id="health-lab") == []
    assert len(seen(eddie, id="health-lab")) == 4


def test_each_dataset_change_leaves_an_activity_an_audit_event_and_a_search_change(mosu, people):
    eddie = people["eddie"]
    pkg = eddie.action.package_create(name="three-records", owner_org="health-lab")
    res = eddie.action.resource_create(package_id=pkg["id"], name="link", url="https://example.org/a.csv")
    eddie.action.resource_patch(id=res["id"], description="Daily")
    eddie.action.resource_delete(id=res["id"])
    eddie.action.package_patch(id=pkg["id"], notes="Counted twice")
    eddie.action.package_delete(id=pkg["id"])
    with mosu.inspect().read() as s:
        acts = s.scalars(select(Activity.activity_type).where(Activity.object_id == pkg["id"])
                         .order_by(Activity.timestamp)).all()
        events = s.execute(select(AuditEvent.action, AuditEvent.object_id, AuditEvent.actor)
                           .where(AuditEvent.object_id.in_([pkg["id"], res["id"]])).order_by(AuditEvent.seq)).all()
        marks = s.scalar(select(func.count()).select_from(SearchChange).where(SearchChange.package_id == pkg["id"]))
    assert acts == ["new package"] + ["changed package"] * 4 + ["deleted package"]
    assert [tuple(e) for e in events] == [
        ("package_create", pkg["id"], "eddie"), ("resource_create", res["id"], "eddie"),
        ("resource_update", res["id"], "eddie"), ("resource_delete", res["id"], "eddie"),
        ("package_update", pkg["id"], "eddie"), ("package_delete", pkg["id"], "eddie")]
    assert marks == 6


def test_a_dataset_change_with_an_unknown_verb_records_nothing(site):
    from catalog.actions import call
    from catalog.records.dataset_change import record_dataset_change

    call(site, "organization_create", {"name": "verbs"})
    pkg = call(site, "package_create", {"name": "verbs-ds", "owner_org": "verbs"})
    with site.platform.write.begin() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
        with pytest.raises(ValueError, match="unknown activity verb 'edited'"):
            record_dataset_change(s, site.actor, s.get(Package, pkg["id"]), "edited", {}, "package_update")
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_only_sysadmins_choose_ids(people):
    eddie, root = people["eddie"], people["root"]
    pkg_id, res_id, res_id2 = ("11111111-1111-1111-1111-11111111111" + d for d in "123")
    pkg = eddie.action.package_create(id=pkg_id, name="squatter", owner_org="health-lab",
                                      resources=[{"id": res_id, "name": "r", "url": "https://example.org/r"}])
    assert pkg["id"] != pkg_id and pkg["resources"][0]["id"] != res_id
    kept = pkg["resources"][0]
    updated = eddie.action.package_update(id=pkg["id"], name="squatter", owner_org="health-lab",
                                          resources=[kept, {"id": res_id2, "url": "https://example.org/s"}])
    assert updated["resources"][0]["id"] == kept["id"], "an existing resource is still updated by its id"
    assert updated["resources"][1]["id"] != res_id2
    for rid in (res_id, res_id2):
        with pytest.raises(ckanapi.NotFound):
            root.action.resource_show(id=rid)
    # The ids stay free for the sysadmin's ckanapi load, which keeps them.
    loaded = root.action.package_create(id=pkg_id, name="loaded", owner_org="health-lab",
                                        resources=[{"id": res_id, "url": "https://example.org/r"},
                                                   {"id": res_id2, "url": "https://example.org/s"}])
    assert loaded["id"] == pkg_id and [r["id"] for r in loaded["resources"]] == [res_id, res_id2]
    with pytest.raises(ckanapi.ValidationError) as err:
        root.action.package_create(name="twice", owner_org="health-lab",
                                   resources=[{"id": "44444444-4444-4444-4444-444444444444", "url": "https://x/1"},
                                              {"id": "44444444-4444-4444-4444-444444444444", "url": "https://x/2"}])
    assert err.value.error_dict["resources"] == ["That id is already in use"]
    with pytest.raises(ckanapi.ValidationError) as err:
        root.action.user_create(name="odd-id", id="bob")
    assert err.value.error_dict["id"] == ["Must be a UUID"]
