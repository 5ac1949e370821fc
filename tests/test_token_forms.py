"""Each documented way of sending an API token authenticates as its user, and a bad token in each is refused.

README: "The API token goes in `Authorization` (raw or `Bearer`) or `X-CKAN-API-Key`; a forged,
revoked or expired token is refused with 403." ckanapi sends both headers at once, so each form is
sent alone here with requests.
"""
from __future__ import annotations

import uuid

import pytest
import requests

FORMS = {
    "authorization-raw": lambda token: {"Authorization": token},
    "authorization-bearer": lambda token: {"Authorization": f"Bearer {token}"},
    "x-ckan-api-key": lambda token: {"X-CKAN-API-Key": token},
}
REFUSED = {"__type": "Authorization Error", "message": "Access denied: the API token is not valid"}


@pytest.fixture(scope="module")
def private(mosu):
    """A private dataset of an organization whose only other member is ``reader``; ``outsider`` is not one."""
    suffix = uuid.uuid4().hex[:8]
    admin = mosu.ckan(mosu.token(f"tokens-admin-{suffix}", sysadmin=True))
    org = admin.action.organization_create(name=f"tokens-org-{suffix}")
    reader, outsider = f"tokens-reader-{suffix}", f"tokens-outsider-{suffix}"
    reader_token, outsider_token = (_user_with_token(admin, reader), _user_with_token(admin, outsider))
    admin.action.organization_member_create(id=org["id"], username=reader, role="member")
    pkg = admin.action.package_create(name=f"tokens-private-{suffix}", owner_org=org["id"], private=True)
    return {"admin": admin, "dataset": pkg, "reader": reader, "reader_token": reader_token,
            "outsider_token": outsider_token}


def _user_with_token(admin, name: str) -> str:
    """A new user and a token of theirs, made through the API by a sysadmin (as an operator would)."""
    admin.action.user_create(name=name, email=f"{name}@example.org")
    return admin.action.api_token_create(user=name, name="laptop")["token"]


def _show(mosu, name: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{mosu.url}/api/3/action/package_show", params={"id": name}, headers=headers, timeout=30)


def _orgs_of_caller(mosu, headers: dict[str, str]) -> requests.Response:
    """``organization_list_for_user`` without ``id`` answers for the caller: who the token made us."""
    return requests.post(f"{mosu.url}/api/3/action/organization_list_for_user", json={}, headers=headers,
                         timeout=30)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_each_token_form_authenticates_as_the_tokens_user(mosu, private, form):
    name = private["dataset"]["name"]
    assert _show(mosu, name, {}).status_code == 404, "anonymous: a private dataset is Not Found"
    shown = _show(mosu, name, FORMS[form](private["reader_token"]))
    assert shown.status_code == 200, shown.text
    assert shown.json()["result"]["id"] == private["dataset"]["id"]
    assert [o["name"] for o in _orgs_of_caller(mosu, FORMS[form](private["reader_token"])).json()["result"]] == \
        [private["dataset"]["organization"]["name"]]
    # Another user's valid token in the same form: authenticated, but as someone who may not see it.
    other = _show(mosu, name, FORMS[form](private["outsider_token"]))
    assert other.status_code == 404 and other.json()["error"]["__type"] == "Not Found Error"
    assert _orgs_of_caller(mosu, FORMS[form](private["outsider_token"])).json()["result"] == []


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_forged_or_revoked_token_in_each_form_is_refused_with_403(mosu, private, form):
    forged = "mosu_" + uuid.uuid4().hex + uuid.uuid4().hex[:11]
    revoked = private["admin"].action.api_token_create(user=private["reader"], name=f"to-revoke-{form}")["token"]
    assert _show(mosu, private["dataset"]["name"], FORMS[form](revoked)).status_code == 200
    private["admin"].action.api_token_revoke(token=revoked)
    for token in (forged, revoked):
        for answer in (_show(mosu, private["dataset"]["name"], FORMS[form](token)),
                       _show(mosu, "no-such-dataset", FORMS[form](token))):  # refused before the lookup
            assert answer.status_code == 403
            assert answer.json()["success"] is False and answer.json()["error"] == REFUSED
