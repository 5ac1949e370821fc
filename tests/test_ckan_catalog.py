"""CKAN's catalog model and permissions, driven through the real ckanapi client over HTTP."""
from __future__ import annotations

import io
import time

import ckanapi
import pytest
import requests
from sqlalchemy import select

from catalog.models import ResourceVersion, User
from tests.conftest import wait_for_ingest


@pytest.fixture(scope="module")
def people(mosu):
    """A sysadmin, an organization with an admin, an editor and a member, and an outsider."""
    sysadmin = mosu.ckan(mosu.token("root", sysadmin=True))
    clients = {name: mosu.ckan(mosu.token(name)) for name in ("alice", "eddie", "mia", "olga", "cora")}
    org = clients["alice"].action.organization_create(name="health-lab", title="Health Lab")
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


def test_private_datasets_never_leak(people, private_ds, public_ds):
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
    assert people["anon"].action.organization_show(id="health-lab")["package_count"] == 1
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


def test_delete_is_soft_and_purge_is_final(mosu, people):
    eddie, root = people["eddie"], people["root"]
    pkg = eddie.action.package_create(name="to-delete", owner_org="health-lab")
    res = eddie.action.resource_create(package_id=pkg["id"], upload=("d.csv", io.BytesIO(b"a,b\n1,2\n")))
    wait_for_ingest(eddie, res["id"])
    eddie.action.package_delete(id=pkg["id"])
    assert eddie.action.package_show(id=pkg["id"])["state"] == "deleted"
    with pytest.raises(ckanapi.NotFound):
        people["anon"].action.package_show(id=pkg["id"])
    assert "to-delete" not in people["anon"].action.package_list()
    with pytest.raises(ckanapi.ValidationError):
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
    grp = olga.action.group_create(name="open-health", title="Open health")
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


def test_tokens_can_expire_be_listed_and_revoked(mosu, people):
    root = people["root"]
    short = root.action.api_token_create(user="mia", name="brief", expires_in=1, unit="second")["token"]
    time.sleep(1.5)
    r = requests.post(mosu.url + "/api/3/action/package_list", json={}, headers={"Authorization": short}, timeout=10)
    assert r.status_code == 403 and "expired" in r.json()["error"]["message"]
    token = people["mia"].action.api_token_create(user="mia", name="laptop")["token"]
    listed = people["mia"].action.api_token_list(user_id="mia")
    laptop = [t for t in listed if t["name"] == "laptop"][0]
    assert "token" not in laptop and laptop["user_id"]
    with pytest.raises(ckanapi.NotFound):
        people["olga"].action.api_token_revoke(jti=laptop["id"])
    assert mosu.ckan(token).action.package_list() is not None
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
    assert _names(s(q='"water levels"'))== ["river-levels"]
    assert set(_names(s(q="water -bridge", fq="organization:river-agency"))) == {"river-levels", "rainfall"}
    assert set(_names(s(q="tags:weather"))) == {"rainfall", "air-quality"}
    assert set(_names(s(q="title:rainfall OR title:bridge"))) == {"rainfall", "bridge-census"}
    assert _names(s(q="water AND NOT tags:rivers")) == ["rainfall"]
    assert set(_names(s(fq="res_format:CSV"))) == {"river-levels", "rainfall"}
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


def test_search_reflects_changes_at_once(people, corpus):
    root, s = people["root"], people["anon"].action.package_search
    root.action.package_patch(id="bridge-census", title="Bridge census of the Huangpu")
    assert _names(s(q="huangpu")) == ["bridge-census"]
    root.action.package_delete(id="air-quality")
    assert "air-quality" not in _names(s(q="air", rows=100))


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
