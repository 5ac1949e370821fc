"""Property-based: no input makes any action answer 5xx (security issue, item 13).

Every registered action gets random and boundary values of the right and the wrong
types for the parameters it reads (found by scanning the action modules for
``data.get("...")`` / ``data["..."]`` / ``required_id(data, "...")``, plus the
parameter tables the actions loop over), plus unknown keys, as anonymous, a plain
user and a sysadmin, by JSON POST and by GET. The answer must be a CKAN envelope with
a status below 500. The home page's search box and the dump routes get the same.

It runs in-process (Flask's test client through the real dispatch and error mapping)
on its own real SQLite catalog and SeaweedFS bucket, seeded with a user, an
organization, a group, datasets and an ingested resource, so that ids resolve and
the actions get past their lookups. Derandomized and bounded (``max_examples``) so it
is reproducible and takes well under a minute.
"""
from __future__ import annotations

import importlib
import inspect
import io
import json
import logging
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.access.context import Actor, Context
from catalog.actions import action_names, call, get_action
from catalog.actions.packages import RESOURCE_TEXT, TEXT_FIELDS
from catalog.cli.app import create_app
from catalog.platform import Platform
from catalog.versions.uploads import Upload
from ingest.worker import Worker
from tests.conftest import s3_settings

ROOT = Path(__file__).resolve().parent.parent
_KEY_RE = re.compile(r"""data(?:\.get\(|\[)\s*["']([A-Za-z_.]+)["']|required_id\(data,\s*["']([A-Za-z_.]+)["']""")
# Parameters read in shared helpers rather than in the action modules.
HELPER_FILES = ("catalog/datastore/searchspec.py", "catalog/records/activity.py")
EXTRA_KEYS = {"id", "schema", "encoding", "sheet", "table", *TEXT_FIELDS, *RESOURCE_TEXT}
ID_KEYS = {"id", "resource_id", "package_id", "user", "user_id", "username", "owner_org", "object"}
SETTINGS = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


def _keys_in(source: str) -> set[str]:
    return {a or b for a, b in _KEY_RE.findall(source)}


def _parameters() -> tuple[dict[str, list[str]], list[str]]:
    """Per action, the parameter names its module reads; and every name any of them reads."""
    helpers = set().union(*(_keys_in((ROOT / f).read_text()) for f in HELPER_FILES))
    per_module: dict[str, set[str]] = {}
    per_action = {}
    for name in action_names():
        module = get_action(name).__module__
        if module not in per_module:
            per_module[module] = _keys_in(inspect.getsource(importlib.import_module(module)))
        per_action[name] = sorted(per_module[module] | {"id"} | (helpers if "datastore" in module else set())
                                  | (EXTRA_KEYS if module.endswith(("packages", "resources")) else set()))
    everything = sorted(set().union(*per_action.values()) | helpers | EXTRA_KEYS)
    return per_action, everything


PER_ACTION, ALL_KEYS = _parameters()


@pytest.fixture(scope="module")
def world(s3, tmp_path_factory):
    """Its own platform (what the fuzzing deletes or changes touches no other test), seeded."""
    logging.getLogger("catalog.api").setLevel(logging.CRITICAL)  # the 500s it may find are asserted, not logged
    platform = Platform.open(s3_settings(s3, tmp_path_factory.mktemp("fuzz") / "data"))
    platform.store.ensure_bucket()
    site = Context(platform=platform, actor=Actor.site())
    call(site, "user_create", {"name": "fuzz-admin", "email": "admin@fuzz.example", "password": "fuzz-password",
                               "sysadmin": True})
    call(site, "user_create", {"name": "fuzz-user", "email": "user@fuzz.example", "password": "fuzz-password"})
    tokens = {who: call(site, "api_token_create", {"user": who, "name": "fuzz"})["token"]
              for who in ("fuzz-admin", "fuzz-user")}
    call(site, "organization_create", {"name": "fuzz-org"})
    call(site, "group_create", {"name": "fuzz-group"})
    call(site, "package_create", {"name": "fuzz-ds", "owner_org": "fuzz-org", "tags": [{"name": "fuzz"}]})
    call(site, "package_create", {"name": "fuzz-private", "owner_org": "fuzz-org", "private": True})
    res = call(site, "resource_create", {"package_id": "fuzz-ds", "name": "table",
                                         "upload": Upload(io.BytesIO(b"id,city,n\n1,Oslo,3\n2,Lima,4\n"),
                                                          "table.csv", "text/csv")})
    while Worker(platform).run_once():
        pass
    app = create_app(platform=platform)
    yield {"client": app.test_client(), "tokens": tokens, "resource": res["id"], "platform": platform}
    platform.close()


def _known(resource_id: str) -> st.SearchStrategy:
    return st.sampled_from(["fuzz-ds", "fuzz-private", "fuzz-org", "fuzz-group", "fuzz-user", "fuzz-admin",
                            resource_id, "fuzz", "csv", "1", "2", "*:*", "name asc", "week", "day"])


def _values(resource_id: str) -> st.SearchStrategy:
    """Right and wrong types, with the boundaries that broke things: huge and negative numbers,
    NaN, digits of other scripts, deep parentheses, ids and names that exist. Boundaries are
    drawn as often as everything else together: random values alone rarely reach them."""
    known = _known(resource_id)
    boundary = st.sampled_from([0, 1, -1, 2**31, 2**53, 2**63, 10**12, 10**40, -10**40, 1.5, float("nan"),
                                float("inf"), True, False, None, "", " ", "99999999999999999999999", "1e400",
                                "²", "١٢", "1_000", "-0", "(" * 300 + "x" + ")" * 300, "NOT " * 300 + "x", "[",
                                "{", "%", "_", "\x00", "a" * 5000, "title:", "metadata_modified:[* TO", "null",
                                "true", "SELECT 1", "\ud800", {}, [], [{}], {"a": {}}, [[1]], {"name": {}}])
    scalars = st.one_of(boundary, known, st.integers(), st.floats(), st.text(max_size=20))
    nested = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(st.one_of(known, st.text(max_size=8)),
                                                                           inner, max_size=3)),
                          max_leaves=6)
    return st.one_of(boundary, known, nested)


def _body(draw, action: str, resource_id: str) -> dict:
    """Some of the action's own parameters, often an id that exists, sometimes an unknown key."""
    values = _values(resource_id)
    chosen = draw(st.lists(st.sampled_from(PER_ACTION[action]), min_size=1, max_size=4, unique=True))
    ids = st.one_of(_known(resource_id), values)  # ids that exist get the actions past their lookups
    body = {key: draw(ids if key in ID_KEYS else values) for key in chosen}
    if "id" not in body and draw(st.booleans()):
        body["id"] = draw(_known(resource_id))
    if draw(st.booleans()):
        body[draw(st.one_of(st.sampled_from(ALL_KEYS), st.text(max_size=10)))] = draw(values)
    return body


# The boundary values that broke actions, each sent alone in every parameter of every action.
GRID = [10**40, -10**40, 2**63, float("nan"), "99999999999999999999999", "²", "\ud800", {}, [{}], {"a": {"b": 1}},
        "(" * 300]
# Actions that remove what the others look up run last.
DESTRUCTIVE = ("dataset_purge", "package_delete", "resource_delete", "organization_delete", "group_delete",
               "api_token_revoke", "user_update", "organization_member_delete", "group_member_delete")


def _grid_base(action: str, resource_id: str) -> dict:
    if action.startswith(("resource", "datastore", "ingest", "quality")):
        return {"id": resource_id, "resource_id": resource_id}
    if action.startswith("organization"):
        return {"id": "fuzz-org"}
    if action.startswith("group"):
        return {"id": "fuzz-group"}
    if action.startswith(("user", "api_token")):
        return {"id": "fuzz-user", "user": "fuzz-user", "name": "grid"}
    return {"id": "fuzz-ds"}


def _check(response, what: str) -> None:
    assert response.status_code < 500, f"{what} answered {response.status_code}: {response.get_data()[:500]!r}"


@pytest.mark.parametrize("action", action_names())
def test_no_action_answers_5xx_whatever_it_is_sent(world, action):
    client, tokens = world["client"], world["tokens"]

    @SETTINGS
    @given(data=st.data(), who=st.sampled_from([None, "fuzz-user", "fuzz-admin"]), by_get=st.booleans())
    def run(data, who, by_get):
        body = _body(data.draw, action, world["resource"])
        headers = {"Authorization": tokens[who]} if who else {}
        if by_get:  # a query string carries text only
            query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
            response = client.get(f"/api/3/action/{action}", query_string=query, headers=headers)
        else:
            response = client.post(f"/api/3/action/{action}", data=json.dumps(body), headers=headers,
                                   content_type="application/json")
        _check(response, f"{action}({body!r}) as {who}")
        envelope = response.get_json()
        assert envelope is not None and envelope["success"] is (response.status_code == 200)

    run()


@pytest.mark.parametrize("action", sorted(action_names(), key=lambda a: a in DESTRUCTIVE))
def test_every_parameter_of_every_action_survives_each_boundary_value(world, action):
    """Deterministic, next to the random test: each boundary value in each parameter, as a sysadmin
    (who gets furthest into each action), on top of ids that exist."""
    client, token = world["client"], world["tokens"]["fuzz-admin"]
    base = _grid_base(action, world["resource"])
    for key in PER_ACTION[action]:
        for value in GRID:
            body = {**base, key: value}
            response = client.post(f"/api/3/action/{action}", data=json.dumps(body), content_type="application/json",
                                   headers={"Authorization": token})
            _check(response, f"{action}({body!r})")


@SETTINGS
@given(q=st.one_of(st.text(max_size=40), st.sampled_from(["(" * 5000 + "x" + ")" * 5000, "NOT " * 3000 + "x",
                                                          "title:(a OR", "[* TO *]", "*:*"])),
       page=st.one_of(st.integers(), st.text(max_size=5), st.just(str(10**40))),
       facet=st.text(max_size=10))
def test_the_home_page_search_never_answers_5xx(world, q, page, facet):
    response = world["client"].get("/", query_string={"q": q, "page": page, "tags": facet})
    _check(response, f"/?q={q[:80]!r}&page={page!r}")


@SETTINGS
@given(params=st.dictionaries(st.sampled_from(["version", "format", "limit", "offset", "sort", "q", "filters",
                                               "fields", "distinct", "sql"]),
                              st.one_of(st.text(max_size=20),
                                        st.sampled_from(["99999999999999999999999", str(10**40), "-1", "²",
                                                         "{}", "[]", '{"city": {}}', "csv", "parquet"])),
                              max_size=4))
def test_the_dumps_never_answer_5xx(world, params):
    client = world["client"]
    _check(client.get(f"/datastore/dump/{world['resource']}", query_string=params), f"dump {params!r}")
    _check(client.get("/datastore/dump_sql", query_string=params), f"dump_sql {params!r}")
