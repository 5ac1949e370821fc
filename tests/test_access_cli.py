"""The README's controlled-access example, run as written with the real ``ckanapi`` command line:
a provider restricts a dataset and grants a researcher 90 days on two of its columns; the
researcher sees what the README says; a revocation ends it on the next call."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import upload

CSV = b"visit_date,diagnosis,patient_id\n2026-01-04,influenza,P-1001\n2026-01-05,bronchitis,P-1002\n"


def _ckanapi(mosu, token: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    return subprocess.run(["ckanapi", "action", *args, "-r", mosu.url, "-a", token], capture_output=True,
                          text=True, env=env, timeout=120)


def _ok(out: subprocess.CompletedProcess):
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout)


def test_a_provider_grants_a_researcher_90_days_from_the_command_line(mosu):
    admin = mosu.ckan(mosu.token("cli-site-admin", sysadmin=True))
    admin.action.organization_create(name="cli-clinic")
    provider_token = mosu.token("cli-provider")
    admin.action.organization_member_create(id="cli-clinic", username="cli-provider", role="editor")
    lin_token = mosu.token("lin")
    admin.action.package_create(name="clinic-visits", owner_org="cli-clinic")
    res = upload(admin, CSV, "visits.csv", dataset="clinic-visits")
    assert res["ingest_status"] == "ready", res

    # The README's commands, in its order.
    _ok(_ckanapi(mosu, provider_token, "package_patch", "id=clinic-visits", "access_level=restricted"))
    refused = _ckanapi(mosu, lin_token, "datastore_search", f"resource_id={res['id']}")
    assert refused.returncode != 0 and "restricted; ask for access" in refused.stderr + refused.stdout
    grant = _ok(_ckanapi(mosu, provider_token, "access_grant_create", "package_id=clinic-visits", "user_id=lin",
                         "days=90", 'columns:["visit_date","diagnosis"]', "note=Flu study, DUA 2026-114"))
    expires = dt.datetime.fromisoformat(grant["expires"])
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert dt.timedelta(days=89, hours=23) < expires - now <= dt.timedelta(days=90)

    access = _ok(_ckanapi(mosu, lin_token, "package_show", "id=clinic-visits"))["access"]
    assert (access["can_read"], access["can_download"], access["via"], access["columns"]) == \
        (True, False, "grant:columns", ["diagnosis", "visit_date"])
    assert access["grant_id"] == grant["id"] and access["grant_expires"] == grant["expires"]
    found = _ok(_ckanapi(mosu, lin_token, "datastore_search", f"resource_id={res['id']}"))
    assert [f["id"] for f in found["fields"] if not f["id"].startswith("_")] == ["visit_date", "diagnosis"]
    assert [(r["visit_date"], r["diagnosis"]) for r in found["records"]] == \
        [("2026-01-04", "influenza"), ("2026-01-05", "bronchitis")]
    assert "P-1001" not in json.dumps(found)

    _ok(_ckanapi(mosu, provider_token, "access_grant_revoke", f"id={grant['id']}", "reason=study over"))
    after = _ckanapi(mosu, lin_token, "datastore_search", f"resource_id={res['id']}")
    assert after.returncode != 0 and "restricted; ask for access" in after.stderr + after.stdout
