"""The real ``ckanapi`` command line against a running Mosu: load, dump, search, action."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ORG_IDS = ("5b1c9c1e-6f0a-4b5e-9a55-4d2f3c7e8a01", "5b1c9c1e-6f0a-4b5e-9a55-4d2f3c7e8a02")
ORGS = [
    {"id": ORG_IDS[0], "name": "port-authority", "title": "Port Authority", "description": "Harbour data"},
    {"id": ORG_IDS[1], "name": "city-transit", "title": "City Transit", "description": "Buses and trams"},
]
DATASETS = [
    {"id": "8a0f2d7e-1c3b-4e5f-8a9b-0c1d2e3f4a01", "name": "ship-arrivals", "title": "Ship arrivals",
     "notes": "Every ship arriving in the harbour", "owner_org": ORG_IDS[0], "license_id": "odc-odbl",
     "private": False, "url": "https://port.example/arrivals", "version": "2.1", "author": "Harbour office",
     "author_email": "office@port.example", "maintainer": "Data team", "maintainer_email": "data@port.example",
     "tags": [{"name": "harbour"}, {"name": "shipping"}], "extras": [{"key": "frequency", "value": "daily"}],
     "resources": [{"id": "9b1e3f8a-2d4c-4f6a-9b0c-1d2e3f4a5b01", "name": "arrivals.csv", "format": "CSV",
                    "url": "https://port.example/arrivals.csv", "description": "One row per arrival",
                    "temporal_coverage": "2020/2024"}]},
    {"id": "8a0f2d7e-1c3b-4e5f-8a9b-0c1d2e3f4a02", "name": "tram-stops", "title": "Tram stops",
     "notes": "Locations of tram stops", "owner_org": ORG_IDS[1], "license_id": "cc-by", "private": False,
     "tags": [{"name": "transport"}], "extras": [],
     "resources": [{"id": "9b1e3f8a-2d4c-4f6a-9b0c-1d2e3f4a5b02", "name": "stops", "format": "GeoJSON",
                    "url": "https://transit.example/stops.geojson", "description": ""}]},
    {"id": "8a0f2d7e-1c3b-4e5f-8a9b-0c1d2e3f4a03", "name": "ticket-sales", "title": "Ticket sales",
     "notes": "Daily ticket sales by line", "owner_org": ORG_IDS[1], "license_id": "other-closed",
     "private": True, "tags": [{"name": "transport"}, {"name": "sales"}], "extras": [], "resources": []},
]
ROUND_TRIPPED = ("id", "name", "title", "notes", "owner_org", "license_id", "private", "url", "version",
                 "author", "author_email", "maintainer", "maintainer_email", "extras")


@pytest.fixture(scope="module")
def ckanapi_cli(mosu, tmp_path_factory):
    token = mosu.token("loader", sysadmin=True)
    work = tmp_path_factory.mktemp("ckanapi")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}

    def ckanapi(*args: str) -> subprocess.CompletedProcess:
        out = subprocess.run(["ckanapi", *args, "-r", mosu.url, "-a", token], capture_output=True,
                             text=True, env=env, timeout=300, cwd=work)
        assert out.returncode == 0, out.stderr + out.stdout
        return out

    def write(name: str, rows: list[dict]) -> str:
        path = work / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)

    return ckanapi, write, work


def _load(ckanapi_cli, thing: str, rows: list[dict], name: str) -> list[tuple[str, str | None]]:
    """Run ``ckanapi load``; (action, error) per record, from its JSON-lines log (-l)."""
    ckanapi, write, work = ckanapi_cli
    log = work / f"{name}.log"
    ckanapi("load", thing, "-I", write(f"{name}.jsonl", rows), "-l", str(log))
    return [(r[2], r[3]) for r in map(json.loads, log.read_text().splitlines())]


@pytest.fixture(scope="module")
def loaded(ckanapi_cli) -> dict[str, list[tuple[str, str | None]]]:
    """ORGS and DATASETS loaded with ``ckanapi load`` once, for every test that reads them; what
    the loads logged, per record."""
    return {"organizations": _load(ckanapi_cli, "organizations", ORGS, "orgs"),
            "datasets": _load(ckanapi_cli, "datasets", DATASETS, "datasets")}


def test_load_then_dump_round_trips_and_reload_updates(mosu, ckanapi_cli, loaded):
    ckanapi, write, work = ckanapi_cli
    assert loaded["organizations"] == [("create", None), ("create", None)]
    assert loaded["datasets"] == [("create", None)] * 3

    ckanapi("dump", "datasets", "--all", "--include-private", "-O", "dump.jsonl")
    dumped = {d["name"]: d for d in map(json.loads, (work / "dump.jsonl").read_text().splitlines())}
    assert set(dumped) == {d["name"] for d in DATASETS}
    for original in DATASETS:
        got = dumped[original["name"]]
        for key in ROUND_TRIPPED:
            assert got[key] == original.get(key, got[key]), (original["name"], key)
        assert sorted(t["name"] for t in got["tags"]) == sorted(t["name"] for t in original["tags"])
        assert [(r["id"], r["name"], r["url"], r["format"], r["description"]) for r in got["resources"]] == \
            [(r["id"], r["name"], r["url"], r["format"], r["description"]) for r in original["resources"]]
    assert dumped["ship-arrivals"]["resources"][0]["temporal_coverage"] == "2020/2024"

    public = [json.loads(line)["name"] for line in
              ckanapi("dump", "datasets", "--all").stdout.splitlines() if line.strip()]
    assert "ticket-sales" not in public and len(public) == 2

    # Loading the dump again updates in place: no duplicates, changes applied.
    changed = [dict(d, title=d["title"] + " (revised)") for d in dumped.values()]
    assert _load(ckanapi_cli, "datasets", changed, "again") == [("update", None)] * 3
    everything = mosu.ckan().action.package_search(q="*:*", rows=1000)["results"]
    assert sorted(d["name"] for d in everything) == ["ship-arrivals", "tram-stops"]
    assert mosu.ckan().action.package_show(id="tram-stops")["title"] == "Tram stops (revised)"


def test_dump_organizations(ckanapi_cli, loaded):
    ckanapi, _, work = ckanapi_cli
    ckanapi("dump", "organizations", "--all", "-O", "orgs-out.jsonl")
    orgs = {o["name"]: o for o in map(json.loads, (work / "orgs-out.jsonl").read_text().splitlines())}
    assert {"port-authority", "city-transit"} <= set(orgs)
    assert orgs["port-authority"]["id"] == ORG_IDS[0]
    assert orgs["port-authority"]["description"] == "Harbour data"


def test_search_and_action_commands(ckanapi_cli, loaded):
    ckanapi, _, _ = ckanapi_cli
    found = [json.loads(line) for line in
             ckanapi("search", "datasets", "q=tram", "fq=organization:city-transit").stdout.splitlines()
             if line.strip()]
    assert [d["name"] for d in found] == ["tram-stops"]
    shown = json.loads(ckanapi("action", "package_show", "id=ship-arrivals").stdout)
    assert shown["organization"]["name"] == "port-authority"
    orgs = json.loads(ckanapi("action", "organization_list", "all_fields:true").stdout)
    assert {o["name"] for o in orgs} >= {"port-authority", "city-transit"}


def test_errors_reach_ckanapi_as_typed_exceptions(mosu, loaded):
    import ckanapi

    anon = mosu.ckan()
    with pytest.raises(ckanapi.NotFound):
        anon.action.package_show(id="no-such-thing")
    with pytest.raises(ckanapi.NotAuthorized):
        anon.action.package_create(name="nope", owner_org="port-authority")
    admin = mosu.ckan(mosu.token("loader", sysadmin=True))
    with pytest.raises(ckanapi.ValidationError) as err:
        # any short licence id is kept, as CKAN does: only a long one is refused
        admin.action.package_create(name="ship-arrivals", owner_org="port-authority", license_id="x" * 101)
    assert err.value.error_dict["name"] == ["That URL is already in use."]
    assert "license_id" in err.value.error_dict
