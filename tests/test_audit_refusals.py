"""Every refused call leaves one audit event (issue 13): outcome ``refused``, the caller's envelope,
what was refused and why, over real HTTP.

The web app runs in this process (so a test can hold a query slot, step the refusal cap's clock and
break the audit table), served on a loopback port by a real HTTP server, on a real SQLite catalog and
a real SeaweedFS bucket. Each request carries a User-Agent of its own; the events of a request are
found by it, so "exactly one event" is counted per request.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import uuid

import pytest
import requests
from sqlalchemy import select, text, update
from werkzeug.serving import make_server

from catalog.access import tokens
from catalog.access.context import Actor, Context
from catalog.access.throttle import FailureCounter
from catalog.actions import call
from catalog.api.errors import REFUSAL_CAP
from catalog.api.session import FAILURES
from catalog.cli.app import create_app
from catalog.db.models import ApiToken, AuditEvent, utcnow
from catalog.platform import Platform
from catalog.records import audit, refusals
from catalog.records.refusals import RefusalCap
from tests.conftest import s3_settings

TOKEN_FAILURES = 3  # requests with a bad token per address and minute before 429


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory):
    platform = Platform.open(s3_settings(s3, tmp_path_factory.mktemp("refusals") / "data",
                                         query_max_concurrent_per_caller=1, audit_refusals_per_second=0))
    platform.store.ensure_bucket()
    site = Context(platform=platform, actor=Actor.site())
    users = {}
    for name in ("rf-owner", "rf-outsider", "rf-gone"):
        users[name] = call(site, "user_create", {"name": name, "email": f"{name}@example.org",
                                                 "password": "rf-password"})
    owner = Context(platform=platform, actor=Actor(users["rf-owner"]["id"], "rf-owner"))
    call(site, "organization_create", {"name": "rf-org", "users": [{"name": "rf-owner", "capacity": "admin"}]})
    public = call(owner, "package_create", {"name": "rf-public", "owner_org": "rf-org"})
    private = call(owner, "package_create", {"name": "rf-private", "owner_org": "rf-org", "private": True})
    res = call(owner, "resource_create", {"package_id": "rf-private", "name": "t", "url": "https://example.org/t.csv"})
    tokens = {name: call(site, "api_token_create", {"user": name, "name": "rf"})["token"] for name in users}
    org = call(site, "organization_show", {"id": "rf-org"})
    app = create_app(platform=platform)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"platform": platform, "app": app, "url": f"http://127.0.0.1:{server.server_port}", "users": users,
           "tokens": tokens, "public": public, "private": private, "resource": res, "org": org, "site": site}
    server.shutdown()
    thread.join(30)
    platform.close()


@pytest.fixture(autouse=True)
def fresh_limits(world):
    """Each test starts with no bad tokens counted and no refusal cap (one test sets its own)."""
    world["app"].extensions[FAILURES] = FailureCounter(TOKEN_FAILURES)
    world["app"].extensions[REFUSAL_CAP] = RefusalCap(0)


def _get(world, path: str, token: str | None = None, **params) -> tuple[requests.Response, str]:
    agent = f"rf-test/{uuid.uuid4().hex}"
    headers = {"User-Agent": agent, **({"Authorization": token} if token else {})}
    return requests.get(world["url"] + path, params=params, headers=headers, timeout=60), agent


def _post(world, path: str, token: str | None = None, **body) -> tuple[requests.Response, str]:
    agent = f"rf-test/{uuid.uuid4().hex}"
    headers = {"User-Agent": agent, **({"Authorization": token} if token else {})}
    return requests.post(world["url"] + path, json=body, headers=headers, timeout=60), agent


def events_of(world, agent: str) -> list[AuditEvent]:
    with world["platform"].read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.user_agent == agent).order_by(AuditEvent.seq)))


def one_refusal(world, agent: str, name: str, **envelope) -> AuditEvent:
    """The one event of the request made with ``agent``: a refusal ``name`` with this envelope."""
    found = events_of(world, agent)
    assert [(e.action, e.outcome) for e in found] == [(name, "refused")], [(e.action, e.outcome) for e in found]
    ev = found[0]
    assert ev.client == "127.0.0.1" and ev.user_agent == agent and ev.request_id and len(ev.request_id) == 12
    for key, value in envelope.items():
        assert getattr(ev, key) == value, (key, getattr(ev, key), value)
    return ev


def _as(world, who: str) -> dict:
    user = world["users"][who]
    return {"actor": who, "actor_id": user["id"], "role": "user"}


# -- the access policy: 403, and the 404 that hides an object ------------------------------------------

def test_not_authorized_leaves_one_event(world):
    got, agent = _post(world, "/api/3/action/package_patch", world["tokens"]["rf-outsider"],
                       id=world["public"]["id"], notes="defaced", name="x y <script>")
    assert got.status_code == 403, got.text
    ev = one_refusal(world, agent, "access_denied", **_as(world, "rf-outsider"), package_id=world["public"]["id"],
                     org_id=world["org"]["id"], object_type="package", object_id=world["public"]["id"])
    assert ev.detail == {"call": "package_patch", "status": 403, "error": "NotAuthorized",
                         "message": got.json()["error"]["message"], "permission": "edit-dataset",
                         "object": f"package:{world['public']['id']}", "params": {"id": world["public"]["id"]}}
    # the name sent was not a name: it is not kept, nor any other text the caller typed
    assert "script" not in str(ev.detail) and "defaced" not in str(ev.detail)


def test_hidden_dataset_404_leaves_one_event_and_an_unknown_id_none(world):
    got, agent = _get(world, "/api/3/action/package_show", world["tokens"]["rf-outsider"], id="rf-private")
    assert got.status_code == 404 and got.json()["error"]["message"] == "Dataset not found", got.text
    ev = one_refusal(world, agent, "access_denied", **_as(world, "rf-outsider"), package_id=world["private"]["id"],
                     org_id=world["org"]["id"])
    assert ev.detail["status"] == 404 and ev.detail["error"] == "Hidden" and ev.detail["call"] == "package_show"
    assert ev.detail["permission"] == "view-dataset" and ev.detail["params"] == {"id": "rf-private"}
    # the same answer for a dataset that does not exist, and no event: nothing was refused
    missing, agent = _get(world, "/api/3/action/package_show", world["tokens"]["rf-outsider"], id="rf-nothing")
    assert (missing.status_code, missing.json()["error"]) == (404, got.json()["error"])
    assert events_of(world, agent) == []
    for params in ({"resource_id": str(uuid.uuid4())}, {"resource_id": "not an id"}):
        missing, agent = _get(world, "/api/3/action/datastore_search", world["tokens"]["rf-outsider"], **params)
        assert missing.status_code in (404, 409) and events_of(world, agent) == []


def test_hidden_resource_anonymous_and_the_dump(world):
    rid = world["resource"]["id"]
    got, agent = _get(world, "/api/3/action/datastore_search", None, resource_id=rid)
    assert got.status_code == 404
    ev = one_refusal(world, agent, "access_denied", actor=None, actor_id=None, role="anonymous",
                     package_id=world["private"]["id"], resource_id=rid, org_id=world["org"]["id"])
    assert ev.detail["call"] == "datastore_search" and ev.detail["params"] == {"resource_id": rid}
    got, agent = _get(world, f"/datastore/dump/{rid}", world["tokens"]["rf-outsider"], format="csv")
    assert got.status_code == 404
    ev = one_refusal(world, agent, "access_denied", **_as(world, "rf-outsider"), resource_id=rid,
                     package_id=world["private"]["id"])
    assert ev.detail["call"] == "datastore_export" and ev.detail["status"] == 404


def test_web_page_refusal(world):
    got, agent = _get(world, "/dataset/rf-private", world["tokens"]["rf-outsider"])
    assert got.status_code == 404 and "text/html" in got.headers["content-type"]
    ev = one_refusal(world, agent, "access_denied", **_as(world, "rf-outsider"), package_id=world["private"]["id"])
    assert ev.detail["page"] == "/dataset/<dataset_id>" and ev.detail["call"] == "package_show"
    got, agent = _get(world, "/dataset/rf-nothing-here", world["tokens"]["rf-outsider"])
    assert got.status_code == 404 and events_of(world, agent) == []


# -- refused SQL -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/3/action/datastore_search_sql", "/datastore/dump_sql"])
def test_refused_sql_keeps_its_full_text_and_hash(world, path):
    sql = "SELECT * FROM read_csv('/etc/passwd') -- " + "x" * 3000
    got, agent = _post(world, path, world["tokens"]["rf-outsider"], sql=sql)
    assert got.status_code == 400, got.text
    ev = one_refusal(world, agent, "sql_refused", **_as(world, "rf-outsider"))
    assert ev.detail["sql"] == sql and ev.detail["sql_sha256"] == hashlib.sha256(sql.encode()).hexdigest()
    assert ev.detail["sql_chars"] == len(sql) and ev.detail["error"] == "QueryRejected"
    assert ev.detail["call"] == ("datastore_search_sql" if "action" in path else "datastore_sql_export")


def test_sql_over_a_table_one_may_not_read(world):
    sql = f'SELECT * FROM "{world["resource"]["id"]}"'
    got, agent = _post(world, "/api/3/action/datastore_search_sql", world["tokens"]["rf-outsider"], sql=sql)
    assert got.status_code == 403
    ev = one_refusal(world, agent, "access_denied", **_as(world, "rf-outsider"), package_id=world["private"]["id"])
    assert ev.detail["sql"] == sql and ev.detail["sql_sha256"] == hashlib.sha256(sql.encode()).hexdigest()


def test_sql_longer_than_any_query_run_is_cut_and_hashed_whole(world):
    sql = "SELECT 1 -- " + "y" * 25_000
    got, agent = _post(world, "/api/3/action/datastore_search_sql", world["tokens"]["rf-outsider"], sql=sql)
    assert got.status_code == 400
    ev = one_refusal(world, agent, "sql_refused")
    assert ev.detail["sql"] == sql[:refusals.MAX_SQL_KEPT] and ev.detail["sql_truncated"] is True
    assert ev.detail["sql_sha256"] == hashlib.sha256(sql.encode()).hexdigest() and ev.detail["sql_chars"] == len(sql)


# -- rate limits ---------------------------------------------------------------------------------------

def test_query_slots_429(world):
    outsider = world["users"]["rf-outsider"]["id"]
    with world["platform"].query.slots.acquire(f"user:{outsider}"):  # their one query running
        got, agent = _post(world, "/api/3/action/datastore_search_sql", world["tokens"]["rf-outsider"],
                           sql="SELECT 1 AS one")
    assert got.status_code == 429, got.text
    ev = one_refusal(world, agent, "rate_limited", **_as(world, "rf-outsider"))
    assert ev.detail["limit"] == "query_slots_caller" and ev.detail["call"] == "datastore_search_sql"
    # the slot is back: the same query is answered, and leaves no refusal
    got, agent = _post(world, "/api/3/action/datastore_search_sql", world["tokens"]["rf-outsider"],
                       sql="SELECT 1 AS one")
    assert got.status_code == 200 and not [e for e in events_of(world, agent) if e.outcome == "refused"]


# -- sign-in failures: bad tokens, and the throttle after them ------------------------------------------

def test_bad_tokens_then_the_throttle(world):
    for _ in range(TOKEN_FAILURES):
        got, agent = _get(world, "/api/3/action/package_show", "mosu-forged-token", id="rf-public")
        assert got.status_code == 403
        ev = one_refusal(world, agent, "sign_in_failure", actor=None, role="anonymous", object_type="call")
        assert ev.detail == {"call": "package_show", "status": 403, "error": "InvalidToken", "method": "token",
                             "reason": "unknown", "message": "Access denied: the API token is not valid",
                             "params": {"id": "rf-public"}}
        assert "mosu-forged-token" not in str(ev.detail)
    got, agent = _get(world, "/dataset/rf-public", "mosu-forged-token")  # a page: the same throttle
    assert got.status_code == 429
    ev = one_refusal(world, agent, "rate_limited", actor=None, role="anonymous")
    assert ev.detail["limit"] == "bad_token" and ev.detail["retry_after"] > 0
    assert ev.detail["page"] == "/dataset/<dataset_id>" and "call" not in ev.detail


def test_revoked_and_expired_tokens(world):
    site, platform = world["site"], world["platform"]
    gone = world["users"]["rf-gone"]["id"]
    revoked = call(site, "api_token_create", {"user": "rf-gone", "name": "revoked"})["token"]
    call(site, "api_token_revoke", {"token": revoked})
    expired = call(site, "api_token_create", {"user": "rf-gone", "name": "expired"})["token"]
    with platform.write.begin() as s:
        s.execute(update(ApiToken).where(ApiToken.token_hash == tokens.digest(expired))
                  .values(expires=utcnow() - dt.timedelta(seconds=1)))
        ids = {t: s.scalar(select(ApiToken.id).where(ApiToken.token_hash == tokens.digest(t)))
               for t in (revoked, expired)}
    for token, reason in ((revoked, "revoked"), (expired, "expired")):
        got, agent = _get(world, "/datastore/dump/" + world["resource"]["id"], token)
        assert got.status_code == 403
        ev = one_refusal(world, agent, "sign_in_failure", actor=None, role="anonymous", object_type="user",
                         object_id=gone)
        assert ev.detail["reason"] == reason and ev.detail["user_id"] == gone
        assert ev.detail["token_id"] == ids[token] and ev.detail["call"] == "datastore_export"


# -- a refusal whose event cannot be written, and a flood ---------------------------------------------

def test_unwritable_refusal_event_still_answers_the_4xx(world, caplog):
    platform = world["platform"]
    before, _ = _post(world, "/api/3/action/package_patch", world["tokens"]["rf-outsider"], id="rf-public")
    with platform.write.begin() as s:  # the database itself refuses the write (as a full disk would)
        s.execute(text("CREATE TRIGGER rf_no_refusals BEFORE INSERT ON audit_events WHEN NEW.outcome = 'refused' "
                       "BEGIN SELECT RAISE(ABORT, 'rf: no space left'); END"))
    try:
        with caplog.at_level(logging.ERROR, logger="catalog.records.refusals"):
            got, agent = _post(world, "/api/3/action/package_patch", world["tokens"]["rf-outsider"], id="rf-public")
    finally:
        with platform.write.begin() as s:
            s.execute(text("DROP TRIGGER rf_no_refusals"))
    assert got.status_code == 403 and got.json()["error"] == before.json()["error"]
    assert events_of(world, agent) == []
    assert any("could not be written" in r.getMessage() and r.exc_info for r in caplog.records), caplog.text


def test_a_flood_is_capped_and_counted(world):
    now = [1_000_000.25]
    world["app"].extensions[REFUSAL_CAP] = RefusalCap(2, clock=lambda: now[0])
    agents = [_get(world, "/api/3/action/package_show", world["tokens"]["rf-outsider"], id="rf-private")[1]
              for _ in range(5)]
    assert [len(events_of(world, a)) for a in agents] == [1, 1, 0, 0, 0]
    now[0] += 1  # the next second: the first refusal recorded writes the count of the last
    got, agent = _get(world, "/api/3/action/package_show", world["tokens"]["rf-outsider"], id="rf-private")
    assert got.status_code == 404
    one_refusal(world, agent, "access_denied")
    with world["platform"].read() as s:
        summary = s.scalars(select(AuditEvent).where(AuditEvent.action == "refusals_suppressed")
                            .order_by(AuditEvent.seq.desc())).first()
    assert summary.outcome == "refused" and summary.client == "127.0.0.1"
    assert summary.detail == {"client_key": "127.0.0.1", "count": 3, "events": {"access_denied": 3},
                              "since": "1970-01-12T13:46:40", "until": "1970-01-12T13:46:41"}


def test_the_chain_stays_whole(world):
    """Refusal events are links of the one chain (written by audit.record, under its lock)."""
    _get(world, "/api/3/action/package_show", world["tokens"]["rf-outsider"], id="rf-private")
    with world["platform"].read() as s:
        assert audit.verify(s.scalars(select(AuditEvent).order_by(AuditEvent.seq))) == (True, None)


def test_id_params_keep_ids_and_names_only():
    uid = str(uuid.uuid4())
    assert refusals.id_params({"id": uid, "resource_id": "x" * 101, "name": "Robert'); DROP TABLE", "notes": "ab",
                               "user": "rf-owner", "version": 3, "package_id": uid.upper()}) == \
        {"id": uid, "user": "rf-owner", "version": "3", "package_id": uid.upper()}
