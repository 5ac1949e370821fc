"""The README's claims about ``mosu push`` as a client of a running server: ``MOSU_URL`` and
``MOSU_TOKEN`` give its defaults, a part answered with a 5xx is retried, and the presigned part
URLs of large uploads are valid one hour."""
from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import MOSU, RunningMosu
from tests.proxy import Proxy


def _csv(path: Path, rows: int) -> Path:
    path.write_bytes(b"id,label\n" + b"".join(b"%d,label %d\n" % (i, i) for i in range(rows)))
    return path


@pytest.fixture(scope="module")
def pusher(mosu: RunningMosu) -> tuple[str, str]:
    """A sysadmin's token and a dataset to push into."""
    token = mosu.token("cli-pusher", sysadmin=True)
    ckan = mosu.ckan(token)
    ckan.action.organization_create(name="cli-org")
    ckan.action.package_create(name="cli-data", owner_org="cli-org")
    return token, "cli-data"


def _env(mosu: RunningMosu, **extra: str) -> dict[str, str]:
    """The test server's environment for a CLI run, without any proxy or MOSU_URL/MOSU_TOKEN of the
    runner's, plus ``extra``."""
    drop = {"http_proxy", "https_proxy", "no_proxy", "all_proxy", "mosu_url", "mosu_token"}
    return {**{k: v for k, v in mosu.env.items() if k.lower() not in drop}, **extra}


def _push(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*MOSU, "push", *args], env=env, capture_output=True, text=True, timeout=120)


def test_push_takes_its_url_and_token_from_mosu_url_and_mosu_token(mosu, pusher, tmp_path):
    """README: "``MOSU_URL`` and ``MOSU_TOKEN`` give the defaults": with neither ``--url`` nor
    ``--token``, ``mosu push`` reaches the server in MOSU_URL (on a random port, so the built-in
    default cannot be it) as the user of MOSU_TOKEN."""
    token, dataset = pusher
    data = _csv(tmp_path / "env.csv", 5)
    out = _push(_env(mosu, MOSU_URL=mosu.url, MOSU_TOKEN=token), str(data), "--dataset", dataset)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "published: version 1, 5 rows"
    resources = mosu.ckan(token).action.package_show(id=dataset)["resources"]
    assert [r["name"] for r in resources if r["name"] == "env.csv"] == ["env.csv"]
    # The same run without MOSU_TOKEN is anonymous: it is the token that made the push allowed.
    anonymous = _push(_env(mosu, MOSU_URL=mosu.url), str(data), "--dataset", dataset)
    assert anonymous.returncode == 1
    assert "mosu: error: Access denied: you must be logged in to upload files (HTTP 403)" in anonymous.stderr


def test_push_retries_a_part_answered_with_a_5xx(mosu, pusher, tmp_path):
    """README: "a part that fails on a broken connection or a 5xx is retried with backoff": object
    storage answers the first PUT of the part 503 (at a real proxy between ``mosu push`` and it); the
    push retries it, succeeds and is published, and the proxy saw the part sent twice."""
    token, dataset = pusher
    data = _csv(tmp_path / "retried.csv", 2000)
    proxy = Proxy()  # as HTTP_PROXY: every request of the push goes through it
    proxy.fail(lambda method, url: method == "PUT" and "partNumber=" in url, 503)
    try:
        out = _push(_env(mosu, HTTP_PROXY=proxy.url, http_proxy=proxy.url), str(data), "--dataset", dataset,
                    "--resource", "retried", "--url", mosu.url, "--token", token, "--multipart-over", "1000")
    finally:
        proxy.close()
    assert out.returncode == 0, out.stderr
    assert "part 1 of 1: HTTP 503 from object storage; retrying in 1 s" in out.stderr
    puts = [(parse_qs(urlsplit(s.target).query)["partNumber"], s.status) for s in proxy.seen if s.method == "PUT"]
    assert puts == [(["1"], 503), (["1"], 200)], "the part went twice: refused, then stored"
    completes = [s for s in proxy.seen if s.target.endswith("/resource_upload_complete")]
    assert [s.status for s in completes] == [200]
    assert out.stdout.strip().splitlines()[-1] == "published: version 1, 2,000 rows"


def test_part_upload_urls_are_valid_one_hour(mosu, pusher):
    """README: ``resource_upload_part`` gives "a presigned PUT URL valid one hour": the URL's
    ``X-Amz-Expires`` is exactly 3600 (and ``expires_in`` says so), and the URL stores the part."""
    token, dataset = pusher
    ckan = mosu.ckan(token)
    body = b"id\n" + b"".join(b"%d\n" % i for i in range(100))
    up = ckan.action.resource_upload_start(package_id=dataset, name=f"hour-{uuid.uuid4().hex[:6]}",
                                           filename="hour.csv", size=len(body))
    assert up["url_expires_in"] == 3600
    part = ckan.action.resource_upload_part(upload_id=up["upload_id"], part_number=1)
    query = parse_qs(urlsplit(part["url"]).query)
    assert query["X-Amz-Expires"] == ["3600"] and part["expires_in"] == 3600
    assert query["uploadId"] and query["partNumber"] == ["1"]
    assert requests.put(part["url"], data=body, timeout=30).status_code == 200
    ckan.action.resource_upload_abort(upload_id=up["upload_id"])
