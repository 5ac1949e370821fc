"""The access matrix of controlled access (issue 12): every path × every level × every caller.

The house issue's matrix (:mod:`tests.test_access_matrix`) crossed paths with CKAN's dataset states;
this one crosses them with access levels and with callers who hold every kind of acceptance,
request and grant, in-process on a real SQLite catalog and a real SeaweedFS bucket, with data
ingested for real. The world is built through the actions a provider and researchers call
(``agreement_create``, ``agreement_accept``, ``access_request_create/approve/deny/withdraw``,
``access_grant_create/revoke``); only the expiry of the expired grants is moved into the past
directly in the database (nobody waits). Expected answers come from :func:`expected`, the rules
of the issue written plainly here, not from :mod:`catalog.access.policy`.

Datasets (one organization, each with the same ingested CSV and data dictionary, a tag and a
group of its own): ``open``, ``registered`` (an agreement to accept), ``restricted`` (an agreement
with questions), ``private`` (restricted, its grants given before it went private: private wins),
``embargoed`` (open, embargo until next month), ``embargoed-restricted`` (grants given, then an
embargo), ``embargo-ended`` (grants given, then an embargo until today: over), ``deleted`` and
``draft`` (restricted, grants given first).

Callers: anonymous; ``signed-in`` with nothing; ``accepted`` the current terms of every dataset
(while it was public); ``stale-terms``, who accepted them before the registered dataset's
agreement got a version 2; with a ``pending``, ``denied`` or ``withdrawn`` request, an ``expired``
or ``revoked`` grant, a ``scoped`` grant (columns ``id`` and ``city``: ``secret`` does not exist
for them) or a whole grant (``granted``) on every dataset that took grants; ``org-grantee``, a
member of an organization granted every such dataset; the owning organization's ``member``; a
``collaborator`` (capacity member) of every dataset; a ``sysadmin``.

Paths: metadata (``package_show``, ``resource_show``, ``package_activity_list``,
``resource_version_list``), ``package_show``'s ``access`` summary, ``quality_report_show`` (with
or without values), rows (``datastore_search``, ``datastore_info``, ``datastore_export``,
``quality_suite_show``), whole files (``resource_download`` of the original and the Parquet, each
URL fetched), SQL (``datastore_search_sql``, ``datastore_sql_export``), the house matrix's lists
and writes, and ``access_request_create`` (withdrawn again at once: the world stays as it was).

Besides the outcome, every cell checks what came back: a column-scoped "ok" holds no trace of
``secret`` (fields, records, CSV headers, the quality report, the data dictionary); an answer to
a caller who may not read the rows holds none of the CSV's values; a refusal to a caller who may
see the dataset is Not Authorized, saying what it takes, with none of the values; to a caller who
may not, it is Not Found, word for word what a nonexistent id gets (and SQL's one refusal for a
table one may not read is word for word that of a table that does not exist). The cells' answers
are counted: not one unauthorised "ok".
"""
from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import uuid

import pytest
import requests
from sqlalchemy import func, select, update

from catalog.access.context import Actor, Context
from catalog.access.policy import Permission
from catalog.actions import call, run_checked
from catalog.actions.datastore import datastore_export
from catalog.actions.sql import datastore_sql_export
from catalog.cli.app import create_app
from catalog.core import levels
from catalog.core.errors import NotAuthorized, NotFound, ValidationError
from catalog.db.models import AccessGrant, Agreement, AuditEvent, Package, User, utcnow
from catalog.platform import Platform
from catalog.records import events
from catalog.versions.uploads import Upload
from ingest.worker import Worker
from tests.conftest import s3_settings
from tests.test_access_matrix import LIST_PATHS, WRITE_PATHS, assert_one_rule
from tests.test_access_matrix import _run as run_shared

# -- the data: every text value of it is something no answer to a non-reader may hold ------------

CITIES = ("Trondheim", "Arequipa", "Tamale")
SECRETS = ("qz-amber-51", "qz-birch-52", "qz-cedar-53", "qz-delta-54")
CSV = ("id,city,secret\n" + "".join(f"{i},{CITIES[i % 3]},{s}\n" for i, s in enumerate(SECRETS, 1))).encode()
ALL_COLUMNS, VISIBLE, HIDDEN = ("id", "city", "secret"), ("id", "city"), "secret"
ROW_VALUES = (*CITIES, *SECRETS)
DICTIONARY = [{"id": "id", "type": "integer", "label": "Row key"},
              {"id": "city", "type": "string", "label": "City of residence"},
              {"id": HIDDEN, "type": "string", "label": "Code word", "description": "Known to the study only"}]

# -- the rules, written plainly -------------------------------------------------------------------

CALLERS = ("anonymous", "signed-in", "accepted", "stale-terms", "pending", "denied", "withdrawn", "expired", "revoked",
           "scoped", "granted", "org-grantee", "member", "collaborator", "sysadmin")
# name: (level, private, embargoed, state)
DATASETS = {
    "open": ("open", False, False, "active"),
    "registered": ("registered", False, False, "active"),
    "restricted": ("restricted", False, False, "active"),
    "private": ("restricted", True, False, "active"),
    "embargoed": ("open", False, True, "active"),
    "embargoed-restricted": ("restricted", False, True, "active"),
    "embargo-ended": ("restricted", False, False, "active"),  # embargo_until is today: over, nobody acting
    "deleted": ("restricted", False, False, "deleted"),
    "draft": ("restricted", False, False, "draft"),
}
ROLES = {"member", "collaborator", "sysadmin"}  # read whatever the level or embargo
EDITORS = {"sysadmin"}  # the only caller here who may edit: sees deleted and draft datasets, writes
ACCEPTED = {"accepted"}  # accepted the current terms (counts at the registered level only); stale-terms
# accepted the registered dataset's agreement at version 1, before version 2 was written
GRANTED = {"scoped", "granted", "org-grantee"}  # an active grant (counts at the restricted level only)
COLUMN_SCOPED = {"scoped"}  # ... on the columns id and city only

META_PATHS = ("package_show", "resource_show", "package_activity_list", "resource_version_list")
ROW_PATHS = ("datastore_search", "datastore_info", "datastore_export", "quality_suite_show")
FILE_PATHS = ("resource_download", "resource_download_parquet")
SQL_PATHS = ("datastore_search_sql", "datastore_sql_export")
HTTP_PATHS = {  # over the web app (in-process WSGI, API tokens), and the action each one must answer as
    "GET /api/3/action/datastore_search": "datastore_search",
    "GET /datastore/dump": "datastore_export",
    "GET /datastore/dump_sql": "datastore_sql_export",
    "GET /dataset/<id>/resource/<id>/download": "resource_download",
    "GET /dataset/<id>/resource/<id>/quality": "quality_report_show",
    "GET /dataset/<id>": None,  # the page: a preview for readers, the refusal for the rest
}
PATHS = (*META_PATHS, "package_show_access", "quality_report_show", *ROW_PATHS, *FILE_PATHS, *SQL_PATHS,
         *LIST_PATHS, *WRITE_PATHS, "access_request_create", *HTTP_PATHS)
POSITIVE = {"ok", "ok-scoped", "listed", "values", "values-scoped", "can-read", "can-read-scoped", "preview",
            "preview-scoped"}
"""Outcomes that give something: one that was not expected is an unauthorised answer."""


def views(who: str, ds: str) -> bool:
    """Metadata: a dataset that is not active only for its editors; a private one for its roles."""
    level, private, embargoed, state = DATASETS[ds]
    if state != "active":
        return who in EDITORS
    return who in ROLES or not private


def reads(who: str, ds: str) -> bool:
    """Rows: roles whatever the level or embargo; others only on an active, public, unembargoed
    dataset, by its level: open to all, registered to who accepted, restricted to grantees."""
    level, private, embargoed, state = DATASETS[ds]
    if who in ROLES:
        return views(who, ds)
    return (state == "active" and not private and not embargoed
            and (level == "open" or (level == "registered" and who in ACCEPTED)
                 or (level == "restricted" and who in GRANTED)))


def scoped(who: str, ds: str) -> bool:
    """Reads some columns only: through a column-scoped grant, and nothing wider."""
    return reads(who, ds) and who in COLUMN_SCOPED and DATASETS[ds][0] == "restricted"


def expected(path: str, who: str, ds: str) -> str:
    level, private, embargoed, state = DATASETS[ds]
    seen, rows, narrow = views(who, ds), reads(who, ds), scoped(who, ds)
    hidden = "not-found"  # as if it did not exist
    if path == "GET /dataset/<id>":
        return ("preview-scoped" if narrow else "preview") if rows else "no-preview" if seen else hidden
    if path in HTTP_PATHS:
        return expected(HTTP_PATHS[path], who, ds)
    if path in META_PATHS:
        return "ok" if seen else hidden
    if path == "package_show_access":
        if not seen:
            return hidden
        if who == "anonymous":
            return "no-summary"
        return ("can-read-scoped" if narrow else "can-read") if rows else "cannot-read"
    if path == "quality_report_show":  # public to whoever sees the dataset; its values to readers
        return ("values-scoped" if narrow else "values") if rows else "withheld" if seen else hidden
    if path in ROW_PATHS:
        return ("ok-scoped" if narrow else "ok") if rows else "denied" if seen else hidden
    if path in FILE_PATHS:  # whole files hold every column: not for a column-scoped grant
        return "ok" if rows and not narrow else "denied" if seen else hidden
    if path in SQL_PATHS:  # one refusal for every table one may not read
        return ("ok-scoped" if narrow else "ok") if rows else "denied"
    if path == "package_search":  # lists show metadata, whatever the level (that is the point)
        return "listed" if seen and state != "deleted" else "absent"
    if path in ("package_list", "group_show_packages", "organization_show_packages", "tag_show_packages",
                "user_show_datasets"):
        return "listed" if seen and state == "active" else "absent"
    if path in ("tag_list", "group_package_count"):
        return "listed" if state == "active" and not private else "absent"
    if path in WRITE_PATHS:
        if path == "resource_create" and who == "anonymous":
            return "denied"
        return "ok" if who in EDITORS else "denied" if seen else hidden
    if path == "access_request_create":
        if who == "anonymous":
            return "denied"  # sign in first
        if not seen:
            return hidden
        if state != "active" or private or level != "restricted" or who == "pending":
            return "invalid"  # nothing to ask for (or already asked): a ValidationError saying so
        return "ok"
    raise AssertionError(path)


def hint(path: str, who: str, ds: str) -> str:
    """What a refusal of rows to a caller who sees the dataset says it takes."""
    level, private, embargoed, state = DATASETS[ds]
    if (path in FILE_PATHS or HTTP_PATHS.get(path) in FILE_PATHS) and scoped(who, ds):
        return "use datastore_search or an export"
    if embargoed:
        return "is under embargo until"
    return {"registered": "accept its terms (agreement_accept)",
            "restricted": "ask for access with access_request_create"}[level]


# -- the world, built through the actions ---------------------------------------------------------

QUESTIONS = [{"id": "institution", "text": "Your institution", "type": "text", "required": True}]
ANSWERS = {"institution": "University of Bergen"}
REQUESTERS = ("pending", "denied", "withdrawn", "expired", "scoped")


def _user(name: str) -> str:
    return f"lv-{name}"


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory):
    # no cap on refusal events: the cells refuse hundreds of calls a second from one address
    platform = Platform.open(s3_settings(s3, tmp_path_factory.mktemp("levels") / "data", audit_refusals_per_second=0))
    platform.store.ensure_bucket()
    site = Context(platform=platform, actor=Actor.site())
    names = [*(w for w in CALLERS if w != "anonymous"), "provider", "other"]
    for who in names:
        call(site, "user_create", {"name": _user(who), "email": f"{_user(who)}@example.org",
                                   "password": "lv-password", "sysadmin": who == "sysadmin"})
    with platform.read() as s:
        actors = {u.name.removeprefix("lv-"): Actor.of(u) for u in s.scalars(select(User))}
    actors["anonymous"] = None

    def as_(who: str) -> Context:
        return Context(platform=platform, actor=actors[who], client=f"lv-{who}")

    admin, provider = as_("sysadmin"), as_("provider")
    call(admin, "organization_create", {"name": "lv-org", "users": [
        {"name": _user("provider"), "capacity": "admin"}, {"name": _user("member"), "capacity": "member"}]})
    call(admin, "organization_create", {"name": "lv-company", "users": [
        {"name": _user("org-grantee"), "capacity": "member"}]})
    terms = call(provider, "agreement_create", {"owner_org": "lv-org", "title": "Terms of use",
                                                "text": "Cite the source."})
    agreement = call(provider, "agreement_create", {"owner_org": "lv-org", "title": "Data use agreement",
                                                    "text": "# No re-identification", "questions": QUESTIONS})
    datasets = {}
    for key, (level, _, _, _) in DATASETS.items():
        name = f"lv-{key}"
        call(admin, "group_create", {"name": f"lv-g-{key}"})
        pkg = call(admin, "package_create", {
            "name": name, "owner_org": "lv-org", "access_level": level, "tags": [{"name": f"lv-tag-{key}"}],
            "groups": [{"name": f"lv-g-{key}"}],
            "agreement_id": {"registered": terms["id"], "restricted": agreement["id"]}.get(level),
            "embargo_until": (levels.today() + dt.timedelta(days=30)).isoformat() if key == "embargoed" else None})
        call(admin, "package_collaborator_create", {"id": name, "user_id": _user("collaborator"),
                                                    "capacity": "member"})
        res = call(admin, "resource_create", {"package_id": name, "name": "table", "schema": DICTIONARY,
                                              "upload": Upload(io.BytesIO(CSV), "table.csv", "text/csv")})
        datasets[key] = {"id": pkg["id"], "name": name, "resource": res["id"], "key": key,
                         "tag": f"lv-tag-{key}", "group": f"lv-g-{key}", "org": "lv-org", "other": _user("other")}
    while Worker(platform).run_once():
        pass
    for ds in datasets.values():
        assert call(admin, "resource_show", {"id": ds["resource"]})["ingest_status"] == "ready", ds["name"]

    # Acceptances, requests and grants, on every dataset that takes them (while it still does).
    for ds in datasets.values():
        call(as_("stale-terms"), "agreement_accept", {"package_id": ds["id"]})
    call(provider, "agreement_update", {"id": terms["id"], "text": "Cite the source, and the version."})
    for ds in datasets.values():
        call(as_("accepted"), "agreement_accept", {"package_id": ds["id"]})
        if DATASETS[ds["key"]][0] != "restricted":
            continue
        asked = {who: call(as_(who), "access_request_create", {
            "package_id": ds["id"], "purpose": f"Study by {who}", "answers": ANSWERS,
            **({"columns": list(VISIBLE)} if who == "scoped" else {})})["id"] for who in REQUESTERS}
        call(provider, "access_request_deny", {"id": asked["denied"], "reason": "No ethics approval"})
        call(as_("withdrawn"), "access_request_withdraw", {"id": asked["withdrawn"]})
        call(provider, "access_request_approve", {"id": asked["expired"], "days": 30})
        call(provider, "access_request_approve", {"id": asked["scoped"], "columns": list(VISIBLE)})
        call(provider, "access_grant_create", {"package_id": ds["id"], "user_id": _user("granted"), "days": 90})
        call(provider, "access_grant_create", {"package_id": ds["id"], "organization_id": "lv-company"})
        revoked = call(provider, "access_grant_create", {"package_id": ds["id"], "user_id": _user("revoked")})
        call(provider, "access_grant_revoke", {"id": revoked["id"], "reason": "Study ended"})
    with platform.write.begin() as s:  # the expired grants' time is over (no waiting)
        s.execute(update(AccessGrant).where(AccessGrant.grantee_id == actors["expired"].id)
                  .values(expires=utcnow() - dt.timedelta(seconds=1)))
    for ds in datasets.values():  # the world is what the rules say it is, as its managers see it
        if DATASETS[ds["key"]][0] == "restricted":
            held = {g["grantee_name"]: (g["state"], g["columns"])
                    for g in call(provider, "access_grant_list", {"package_id": ds["id"]})}
            assert held == {"lv-expired": ("expired", None), "lv-scoped": ("active", list(VISIBLE)),
                            "lv-granted": ("active", None), "lv-company": ("active", None),
                            "lv-revoked": ("revoked", None)}, held
            asked = {r["user_name"]: r["state"] for r in call(provider, "access_request_list",
                                                                {"package_id": ds["id"]})}
            assert asked == {"lv-pending": "pending", "lv-denied": "denied", "lv-withdrawn": "withdrawn",
                             "lv-expired": "approved", "lv-scoped": "approved"}, asked

    tokens = {who: call(as_(who), "api_token_create", {"user": _user(who), "name": "matrix"})["token"]
              for who in CALLERS if who != "anonymous"}

    # Then the datasets leave the restricted level's ordinary state.
    call(admin, "package_patch", {"id": "lv-private", "private": True})
    call(admin, "package_patch", {"id": "lv-embargoed-restricted",
                                  "embargo_until": (levels.today() + dt.timedelta(days=30)).isoformat()})
    call(admin, "package_patch", {"id": "lv-embargo-ended", "embargo_until": levels.today().isoformat()})
    call(admin, "package_delete", {"id": "lv-deleted"})
    call(admin, "package_patch", {"id": "lv-draft", "state": "draft"})
    with platform.read() as s:
        for key, ds in datasets.items():
            pkg = s.get(Package, ds["id"])
            level, private, embargoed, state = DATASETS[key]
            assert (pkg.access_level, pkg.private, levels.embargoed(pkg.embargo_until), pkg.state) == \
                (level, private, embargoed, state), key
            assert (pkg.embargo_until is not None) == (embargoed or key == "embargo-ended"), key
            ds["creator"] = pkg.creator_user_id
    web = create_app(platform=platform).test_client()
    org = call(admin, "organization_show", {"id": "lv-org"})["id"]
    yield {"platform": platform, "actors": actors, "datasets": datasets, "tokens": tokens, "web": web, "org": org}
    platform.close()


# -- one cell: call a path as a caller on a dataset, and say what came back -------------------------

def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _leaked(text: str, values=ROW_VALUES) -> list[str]:
    return [v for v in values if v in text]


def _columns(names: list[str], answer: str, rows: bool = True) -> str:
    """``ok`` when every column came back; ``ok-scoped`` when exactly the granted ones did, and
    nothing of the hidden column (its name, any of its values) is anywhere in the answer. ``rows``:
    the answer holds rows (their cities must be there: the check could see values)."""
    names = [n for n in names if n != "_id"]
    assert not rows or _leaked(answer, CITIES), "a reader got the rows"
    if names == list(ALL_COLUMNS):
        assert not rows or _leaked(answer, SECRETS), "a reader of every column got every column's values"
        return "ok"
    assert names == list(VISIBLE), names
    assert HIDDEN not in answer and not _leaked(answer, SECRETS), "the hidden column exists for them"
    return "ok-scoped"


def _drain(ctx: Context, name: str, export_of, data: dict) -> str:
    export = run_checked(ctx, name, export_of, data)
    return b"".join(export.chunks).decode()


def _fetch(url: str) -> bytes:
    got = requests.get(url, timeout=30)
    assert got.status_code == 200, got.status_code
    return got.content


def _run(path: str, ctx: Context, ds: dict) -> tuple[str, str]:
    """The outcome of one call and the text of what came back."""
    rid, name = ds["resource"], ds["name"]
    if path in META_PATHS:
        answer = _text(call(ctx, path, {"id": name if path in ("package_show", "package_activity_list") else rid}))
        return "ok", answer
    if path == "package_show_access":
        shown = call(ctx, "package_show", {"id": name})
        access = shown.get("access")
        if access is None:
            return "no-summary", _text(shown)
        if not access["can_read"]:
            assert access["message"] and not access["can_download"], access
            return "cannot-read", _text(shown)
        if access["columns"] is None:
            assert access["can_download"], access
            return "can-read", _text(shown)
        assert access["columns"] == sorted(VISIBLE) and not access["can_download"], access
        return "can-read-scoped", _text(shown)
    if path == "quality_suite_show":  # a generated suite names the data's values: for readers
        out = call(ctx, path, {"id": rid})
        named = {str(e["kwargs"].get("column")) for e in out["suite"]["expectations"]}
        return _columns([c for c in ALL_COLUMNS if c in named], _text(out), rows=False), _text(out)
    if path == "quality_report_show":
        report = call(ctx, path, {"id": rid})
        text = _text(report)
        if report.get("values_withheld"):
            assert not _leaked(text), "a report without values holds none"
            return "withheld", text
        names = [c["name"] for c in report["profile"]["columns"]]
        assert _leaked(text, CITIES), "a reader's report has the values (top values, examples)"
        return {"ok": "values", "ok-scoped": "values-scoped"}[_columns(names, text)], text
    if path == "datastore_search":
        out = call(ctx, path, {"resource_id": rid, "limit": 100})
        assert out["total"] == len(SECRETS) and len(out["records"]) == len(SECRETS)
        assert all(list(r) == [f["id"] for f in out["fields"]] for r in out["records"])
        return _columns([f["id"] for f in out["fields"]], _text(out)), _text(out)
    if path == "datastore_info":
        out = call(ctx, path, {"id": rid})
        assert out["meta"]["count"] == len(SECRETS)
        return _columns([f["id"] for f in out["fields"]], _text(out), rows=False), _text(out)
    if path == "datastore_export":
        body = _drain(ctx, path, datastore_export, {"resource_id": rid, "format": "csv"})
        return _columns(body.splitlines()[0].split(","), body), body
    if path == "datastore_search_sql":
        out = call(ctx, path, {"sql": f'SELECT * FROM "{rid}"'})
        assert len(out["records"]) == len(SECRETS)
        return _columns([f["id"] for f in out["fields"]], _text(out)), _text(out)
    if path == "datastore_sql_export":
        body = _drain(ctx, path, datastore_sql_export, {"sql": f'SELECT * FROM "{rid}"', "format": "csv"})
        return _columns(body.splitlines()[0].split(","), body), body
    if path in FILE_PATHS:
        fmt = "parquet" if path.endswith("parquet") else "original"
        out = call(ctx, "resource_download", {"id": rid, "format": fmt})
        assert out["format"] == fmt and out["expires_in"] <= 300
        content = _fetch(out["url"])  # the one object, fetched: a URL is the file
        assert content == CSV if fmt == "original" else content[:4] == b"PAR1"
        return "ok", _text({k: v for k, v in out.items() if k != "url"})
    if path == "access_request_create":
        req = call(ctx, path, {"package_id": ds["id"], "purpose": "Matrix", "answers": ANSWERS})
        call(ctx, "access_request_withdraw", {"id": req["id"]})  # the world stays as it was
        return "ok", _text(req)
    return run_shared(path, ctx, ds), ""


def _http(path: str, web, token: str | None, ds: dict) -> tuple[str, str]:
    """One request to the web app: its status as an outcome, and its body."""
    rid, name = ds["resource"], ds["name"]
    url, params = {
        "GET /api/3/action/datastore_search": ("/api/3/action/datastore_search", {"resource_id": rid, "limit": 100}),
        "GET /datastore/dump": (f"/datastore/dump/{rid}", {"format": "csv"}),
        "GET /datastore/dump_sql": ("/datastore/dump_sql", {"sql": f'SELECT * FROM "{rid}"', "format": "csv"}),
        "GET /dataset/<id>/resource/<id>/download": (f"/dataset/{name}/resource/{rid}/download", {}),
        "GET /dataset/<id>/resource/<id>/quality": (f"/dataset/{name}/resource/{rid}/quality", {}),
        "GET /dataset/<id>": (f"/dataset/{name}", {}),
    }[path]
    got = web.get(url, query_string=params, headers={"Authorization": token} if token else {})
    body = got.get_data(as_text=True)
    if got.status_code in (403, 404):
        assert "location" not in got.headers
        return {403: "denied", 404: "not-found"}[got.status_code], body
    if got.status_code == 302:  # a download: the URL of the one object, issued after the check
        assert path.endswith("/download") and "X-Amz-Expires=300" in got.headers["location"], got.headers
        assert _fetch(got.headers["location"]) == CSV
        return "ok", body
    assert got.status_code == 200, (got.status_code, body[:500])
    if path == "GET /api/3/action/datastore_search":
        out = json.loads(body)["result"]
        return _columns([f["id"] for f in out["fields"]], body), body
    if path in ("GET /datastore/dump", "GET /datastore/dump_sql"):
        return _columns(body.splitlines()[0].split(","), body), body
    if path == "GET /dataset/<id>/resource/<id>/quality":
        if "shown to readers of the data only" in body:
            assert not _leaked(body)
            return "withheld", body
        assert _leaked(body, CITIES)
        return ("values-scoped" if _columns_of_page(body) == "scoped" else "values"), body
    if not _leaked(body, CITIES):  # the dataset page without a preview: the refusal instead
        return "no-preview", body
    return ("preview-scoped" if _columns_of_page(body) == "scoped" else "preview"), body


def _columns_of_page(body: str) -> str:
    """``scoped`` when a page shows nothing of the hidden column, ``all`` when it shows its values."""
    if "Code word" in body or _leaked(body, SECRETS):
        assert _leaked(body, SECRETS), "a page naming the hidden column shows its values to its readers"
        return "all"
    return "scoped"


def outcome(path: str, ctx: Context, ds: dict, web=None, token: str | None = None) -> tuple[str, str]:
    if path in HTTP_PATHS:
        return _http(path, web, token, ds)
    try:
        return _run(path, ctx, ds)
    except NotFound as exc:
        return "not-found", exc.message
    except NotAuthorized as exc:
        return "denied", exc.message
    except ValidationError as exc:
        return "invalid", _text(exc.field_errors)


_REQUEST_ID = re.compile(r'"request_id": ?"[^"]*"|request id [0-9a-f-]+', re.I)
GHOST = {"id": str(uuid.uuid4()), "name": "lv-ghost", "resource": str(uuid.uuid4()), "key": "ghost",
         "tag": "lv-tag-ghost", "group": "lv-g-ghost", "org": "lv-org", "other": _user("other")}


def _as_ghost(message: str, ds: dict) -> str:
    for key in ("id", "name", "resource"):
        message = message.replace(ds[key], GHOST[key])
    return _REQUEST_ID.sub("", message)


CELLS = [(path, who, ds) for path in PATHS for who in CALLERS for ds in DATASETS]
RESULTS: dict[tuple[str, str, str], tuple[str, str]] = {}
"""(path, caller, dataset) → (outcome, expected), for the count of unauthorised answers."""


def observe(world, path: str, who: str, key: str, ds: dict | None = None) -> tuple[str, str]:
    """Call ``path`` as ``who`` on dataset ``key`` (or on ``ds``, not recorded: the ghost)."""
    ctx = Context(platform=world["platform"], actor=world["actors"][who], client=f"lv-{who}")
    got, text = outcome(path, ctx, ds or world["datasets"][key], world["web"], world["tokens"].get(who))
    if ds is not None:
        return got, text
    RESULTS[(path, who, key)] = (got, expected(path, who, key))
    return got, text


# -- the audit event of a cell that reads data (issue 13) ------------------------------------------

READ_EVENTS = {  # a path that reads data -> the event its read leaves
    "datastore_search": "datastore_search", "GET /api/3/action/datastore_search": "datastore_search",
    "GET /dataset/<id>": "datastore_search",  # the page's preview
    "datastore_export": "datastore_export", "GET /datastore/dump": "datastore_export",
    "datastore_search_sql": "datastore_search_sql",
    "datastore_sql_export": "datastore_sql_export", "GET /datastore/dump_sql": "datastore_sql_export",
    "resource_download": "resource_download", "resource_download_parquet": "resource_download",
    "GET /dataset/<id>/resource/<id>/download": "resource_download",
}
READ_OK = {"ok", "ok-scoped", "preview", "preview-scoped"}


# -- refusal events (issue 13): every refused cell leaves one, when it is answered over HTTP ----------

REPLAY = {  # an in-process cell's call, as a client sends it: (method, URL, parameters)
    **{p: lambda ds, p=p: ("GET", f"/api/3/action/{p}", {"id": ds["name"]})
       for p in ("package_show", "package_activity_list")},
    "package_show_access": lambda ds: ("GET", "/api/3/action/package_show", {"id": ds["name"]}),
    **{p: lambda ds, p=p: ("GET", f"/api/3/action/{p}", {"id": ds["resource"]})
       for p in ("resource_show", "resource_version_list", "quality_report_show", "quality_suite_show",
                 "datastore_info")},
    "datastore_search": lambda ds: ("GET", "/api/3/action/datastore_search", {"resource_id": ds["resource"]}),
    "datastore_export": lambda ds: ("GET", f"/datastore/dump/{ds['resource']}", {"format": "csv"}),
    "resource_download": lambda ds: ("GET", "/api/3/action/resource_download", {"id": ds["resource"]}),
    "resource_download_parquet": lambda ds: ("GET", "/api/3/action/resource_download",
                                             {"id": ds["resource"], "format": "parquet"}),
    "datastore_search_sql": lambda ds: ("GET", "/api/3/action/datastore_search_sql",
                                        {"sql": f'SELECT * FROM "{ds["resource"]}"'}),
    "datastore_sql_export": lambda ds: ("GET", "/datastore/dump_sql", {"sql": f'SELECT * FROM "{ds["resource"]}"'}),
    "package_patch": lambda ds: ("POST", "/api/3/action/package_patch", {"id": ds["id"], "notes": "patched"}),
    "resource_create": lambda ds: ("POST", "/api/3/action/resource_create",
                                   {"package_id": ds["id"], "url": "https://example.org/more.csv"}),
    "package_collaborator_create": lambda ds: ("POST", "/api/3/action/package_collaborator_create",
                                               {"id": ds["id"], "user_id": ds["other"], "capacity": "member"}),
    "access_request_create": lambda ds: ("POST", "/api/3/action/access_request_create",
                                         {"package_id": ds["id"], "purpose": "Matrix", "answers": ANSWERS}),
}


def _events_after(world, seq: int) -> list:
    with world["platform"].read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)))


def _last_seq(world) -> int:
    with world["platform"].read() as s:
        return s.scalar(select(func.max(AuditEvent.seq))) or 0


def via(who: str, ds: str) -> str:
    """How a reader reads, by the rules: sysadmins as such; open data as open data; roles before
    acceptances and grants (and through an embargo); then the acceptance or the grant."""
    level, private, embargoed, state = DATASETS[ds]
    if who == "sysadmin":
        return "sysadmin"
    if level == "open" and not embargoed and not private and state == "active":
        return "level:open"
    if who in ROLES:
        return {"member": "organization:member", "collaborator": "collaborator:member"}[who]
    if level == "registered":
        return "accepted"
    return "grant:columns" if who in COLUMN_SCOPED else "grant:full"


def _allowed_by(world, who: str, ds: dict, how: str) -> tuple[str | None, str | None]:
    """The grant and agreement version a read ``how`` rests on, looked up in the tables: the caller's
    (or their organization's) grant on the dataset; the current version of an accepted agreement."""
    with world["platform"].read() as s:
        if how.startswith("grant:"):
            mine = (AccessGrant.grantee_type == "organization" if who == "org-grantee"
                    else AccessGrant.grantee_id == world["actors"][who].id)
            grant = s.scalars(select(AccessGrant).where(AccessGrant.package_id == ds["id"], mine)).one()
            return grant.id, grant.agreement_version_id
        if how == "accepted":
            pkg = s.get(Package, ds["id"])
            return None, s.get(Agreement, pkg.agreement_id).current_version_id
    return None, None


def check_read_event(world, path: str, who: str, key: str, before: int) -> None:
    """A cell that read data left exactly one read event (an export's end is not a read), naming the
    caller, the dataset, resource and organization, and the grant, agreement version and ``via``."""
    ds = world["datasets"][key]
    with world["platform"].read() as s:
        found = [e for e in s.scalars(select(AuditEvent).where(AuditEvent.seq > before).order_by(AuditEvent.seq))
                 if events.EVENTS[e.action].category == "read"]
        s.expunge_all()
    assert [e.action for e in found] == [READ_EVENTS[path]], [e.action for e in found]
    ev, actor, how = found[0], world["actors"][who], via(who, key)
    grant_id, version_id = _allowed_by(world, who, ds, how)
    assert (ev.actor, ev.actor_id, ev.outcome) == (actor.name if actor else None, actor.id if actor else None, "ok")
    assert ev.client == ("127.0.0.1" if path in HTTP_PATHS else f"lv-{who}")
    assert (ev.package_id, ev.resource_id, ev.org_id) == (ds["id"], ds["resource"], world["org"])
    assert (ev.grant_id, ev.agreement_version_id) == (grant_id, version_id), how
    reading = ev.detail["readings"][ds["resource"]] if "readings" in ev.detail else ev.detail
    assert reading["via"] == how and reading.get("grant_id") == (grant_id if "readings" in ev.detail else None)
    assert ("columns" in reading) == (how == "grant:columns")


def check_refusal_events(world, path: str, who: str, key: str, got: str, before: int) -> None:
    """A cell answered over HTTP leaves one refusal event when refused, none otherwise; a refused
    in-process cell is sent again as a client sends it (same answer) and leaves one."""
    if path not in HTTP_PATHS:
        if got not in ("denied", "not-found"):
            return
        method, url, params = REPLAY[path](world["datasets"][key])
        token = world["tokens"].get(who)
        before = _last_seq(world)
        headers = {"Authorization": token} if token else {}
        answer = world["web"].get(url, query_string=params, headers=headers) if method == "GET" else \
            world["web"].post(url, json=params, headers=headers)
        assert answer.status_code == {"denied": 403, "not-found": 404}[got], (answer.status_code, answer.data[:300])
    refused = [e for e in _events_after(world, before) if e.outcome == "refused"]
    if got not in ("denied", "not-found"):
        assert refused == [], [(e.action, e.detail) for e in refused]
        return
    assert [e.action for e in refused] == ["access_denied"], [(e.action, e.detail) for e in refused]
    ev, actor = refused[0], world["actors"][who]
    assert (ev.actor, ev.actor_id, ev.role) == ((actor.name, actor.id, actor.role) if actor else
                                                (None, None, "anonymous"))
    assert ev.package_id == world["datasets"][key]["id"] and ev.org_id is not None, (ev.package_id, ev.detail)
    assert ev.detail["status"] == {"denied": 403, "not-found": 404}[got], ev.detail
    if path.startswith("GET /dataset/"):  # a page: its first action refused (the dataset), or the one it shows
        assert ev.detail["call"] in (HTTP_PATHS[path], "package_show") and ev.detail["page"], ev.detail
    else:
        called = HTTP_PATHS.get(path) or {"package_show_access": "package_show",
                                          "resource_download_parquet": "resource_download"}.get(path, path)
        assert ev.detail["call"] == called, ev.detail


@pytest.mark.parametrize("path,who,ds", CELLS, ids=[f"{p}-{w}-{d}" for p, w, d in CELLS])
def test_access_levels_matrix(world, path, who, ds):
    before = _last_seq(world)
    got, text = observe(world, path, who, ds)
    check_refusal_events(world, path, who, ds, got, before)
    assert got == expected(path, who, ds)
    if got in READ_OK and path in READ_EVENTS:
        check_read_event(world, path, who, ds, before)
    if not reads(who, ds):  # refusals and metadata reveal nothing of the rows
        assert not _leaked(text), _leaked(text)
    if who in COLUMN_SCOPED and DATASETS[ds][0] == "restricted":  # nothing of the hidden column, ever
        assert not _leaked(text, SECRETS)
    if scoped(who, ds):
        assert HIDDEN not in text, "the hidden column does not exist for them"
    elif got == "ok" and path in ("package_show", "resource_show", "resource_version_list"):
        assert HIDDEN in text, "everyone else sees every column's name and description: public metadata"
    if path in (*META_PATHS, "package_show_access", "GET /dataset/<id>"):
        assert "X-Amz-" not in text, "no signed URL outside resource_download"
    sql = path in SQL_PATHS or HTTP_PATHS.get(path) in SQL_PATHS
    if got == "denied" and not sql:
        assert "Access denied" in text, text  # Not Authorized, saying why
        if path in (*ROW_PATHS, *FILE_PATHS) or HTTP_PATHS.get(path) in (*ROW_PATHS, *FILE_PATHS):
            assert hint(path, who, ds) in text, text
    if got == "cannot-read":
        assert hint(path, who, ds) in json.loads(text)["access"]["message"]
    if got == "no-preview":
        assert hint(path, who, ds) in html.unescape(text), "the page says what it takes"
    if got == "not-found" or sql and got == "denied":  # exactly as a nonexistent id
        assert (got, _as_ghost(text, world["datasets"][ds])) == observe(world, path, who, ds, GHOST)


def test_no_unauthorised_answer_anywhere(world):
    """Every cell (those not run above run here), counted: not one answer gave more than the rules say."""
    for path, who, ds in CELLS:
        if (path, who, ds) not in RESULTS:
            observe(world, path, who, ds)
    unauthorised = sorted(cell for cell, (got, want) in RESULTS.items() if got in POSITIVE and got != want)
    assert len(RESULTS) == len(CELLS) and len(unauthorised) == 0, unauthorised
    given = sum(1 for got, _ in RESULTS.values() if got in POSITIVE)
    assert 0 < given < len(CELLS)  # the matrix says yes and no


@pytest.mark.parametrize("who", CALLERS)
def test_lists_and_reads_come_from_one_rule_on_every_level(world, who):
    """``allowed`` and ``datasets_where`` (and the search index's masks) agree for every permission on
    every level, embargo and grant state: a list can never show what a read refuses, nor hide what it allows."""
    ids = [ds["id"] for ds in world["datasets"].values()]
    assert assert_one_rule(world["platform"], world["actors"][who], ids) == len(ids) * len(list(Permission))


LIST_CALLS = (("package_search", {"q": "*:*", "rows": 1000, "include_private": True, "include_drafts": True}),
              ("package_list", {"include_private": True}), ("tag_list", {}),
              ("organization_show", {"id": "lv-org", "include_datasets": True}))


@pytest.mark.parametrize("who", CALLERS)
def test_lists_never_hold_a_row(world, who):
    """Search and lists show restricted datasets' metadata, to readers and everyone else, never a row."""
    ctx = Context(platform=world["platform"], actor=world["actors"][who])
    answers = [call(ctx, name, params) for name, params in LIST_CALLS]
    for key in DATASETS:
        answers.append(call(ctx, "group_show", {"id": f"lv-g-{key}", "include_datasets": True}))
    answers.append(call(ctx, "user_show", {"id": _user("sysadmin"), "include_datasets": True}))
    assert not _leaked(_text(answers))
    assert any(p["name"] == "lv-restricted" for p in answers[0]["results"])
