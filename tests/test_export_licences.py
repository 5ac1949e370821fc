"""An export names the licences of the rows it holds (HTTP ``Link``, relation ``license``), as the
dataset's page and dict do: a file saved from a dump still says under which terms it came."""
from __future__ import annotations

import uuid

import requests

from tests.conftest import upload


def _dataset(admin, license_id: str) -> dict:
    name = "lic-" + uuid.uuid4().hex[:8]
    admin.action.package_create(name=name, owner_org="lic-org", license_id=license_id)
    res = upload(admin, b"city,n\nOslo,1\nLima,2\n", "t.csv", dataset=name)
    assert res["ingest_status"] == "ready", res
    return res


def test_exports_name_the_licences_of_their_rows(mosu):
    admin = mosu.ckan(mosu.token("lic-admin", sysadmin=True))
    admin.action.organization_create(name="lic-org")
    by = _dataset(admin, "cc-by")
    odbl = _dataset(admin, "odc-odbl")
    odd = _dataset(admin, 'Own terms "v2">; rel=x 许可')

    dump = requests.get(f"{mosu.url}/datastore/dump/{by['id']}", params={"format": "parquet"}, timeout=60)
    assert dump.status_code == 200
    assert dump.headers["Link"] == ('<http://www.opendefinition.org/licenses/cc-by>; rel="license"; '
                                    'title="Creative Commons Attribution"')

    sql = f'SELECT a.city, b.n FROM "{by["id"]}" a JOIN "{odbl["id"]}" b USING (city)'
    joined = requests.get(f"{mosu.url}/datastore/dump_sql", params={"sql": sql}, timeout=60)
    assert joined.status_code == 200 and joined.text.splitlines()[0] == "city,n"
    assert requests.utils.parse_header_links(joined.headers["Link"]) == [
        {"url": "http://www.opendefinition.org/licenses/cc-by", "rel": "license",
         "title": "Creative Commons Attribution"},
        {"url": "http://www.opendefinition.org/licenses/odc-odbl", "rel": "license",
         "title": "Open Data Commons Open Database License (ODbL)"}]

    own = requests.get(f"{mosu.url}/datastore/dump/{odd['id']}", timeout=60)
    assert own.status_code == 200
    assert own.headers["Link"] == ('<urn:mosu:license:Own%20terms%20%22v2%22%3E%3B%20rel%3Dx%20%E8%AE%B8%E5%8F%AF>; '
                                   'rel="license"; title="Own terms ?v2?>; rel=x ??"')
