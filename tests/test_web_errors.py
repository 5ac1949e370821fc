"""The actions' refusals in the page's language (webui/errors.py): a restricted dataset's rows refused
to a signed-out and to a signed-in reader without a grant, an unknown dataset, and a dataset form's
missing value, each shown in 简体中文 on a Chinese page, with the dataset's name in place. Against
``mosu up`` in Debian's Chromium; the language is chosen with the switch the pages link to."""
from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import wait_for_ingest
from tests.web import assert_accessible, browser, new_user, signed_in_page, watch_console  # noqa: F401

CATALOG = Path(__file__).resolve().parent.parent / "catalog"


@pytest.fixture(scope="module")
def world(mosu):
    admin = mosu.ckan(mosu.token("errors-admin", sysadmin=True))
    suffix = uuid.uuid4().hex[:6]
    org = admin.action.organization_create(name=f"errors-lab-{suffix}")
    closed = admin.action.package_create(name=f"errors-closed-{suffix}", title="Closed rows", owner_org=org["id"],
                                         access_level="restricted")
    res = admin.action.resource_create(package_id=closed["id"], name="closed",
                                       upload=("c.csv", io.BytesIO(b"id,secret\n1,hush-1\n2,hush-2\n")))
    assert wait_for_ingest(admin, res["id"])["ingest_status"] == "ready"
    outsider = new_user(mosu, f"errors-outsider-{suffix}")
    provider = new_user(mosu, f"errors-provider-{suffix}")
    admin.action.organization_member_create(id=org["id"], username=provider, role="editor")
    return {"closed": closed, "rid": res["id"], "outsider": outsider, "provider": provider}


def _chinese(page, mosu, path: str):
    """Switch the page's browser to 简体中文 with the pages' switch, landing on ``path``."""
    return page.goto(f"{mosu.url}/language/zh_Hans?next={path}")


def test_a_refused_preview_is_said_in_chinese_to_the_signed_out_and_the_signed_in(mosu, world, browser):  # noqa: F811
    name, rid = world["closed"]["name"], world["rid"]
    refusal = f"拒绝访问：数据集 {name} 受限，请向发布者申请访问。"
    anonymous = browser.new_context(locale="en-GB").new_page()
    watch_console(anonymous)
    outsider = signed_in_page(browser, mosu, world["outsider"])
    for page in (anonymous, outsider):
        _chinese(page, mosu, f"/dataset/{name}")
        expect(page.locator("p.restricted")).to_have_text(refusal)
        page.goto(f"{mosu.url}/dataset/{name}/resource/{rid}")
        expect(page.get_by_role("alert")).to_have_text(refusal)
        assert "hush-" not in page.content() and "access_request_create" not in page.content()
        assert page.console_errors == []
    assert_accessible(outsider)
    # A refusal the error page shows (a signed-out download of the restricted file): in Chinese too.
    response = anonymous.goto(f"{mosu.url}/dataset/{name}/resource/{rid}/download")
    assert response.status == 403
    expect(anonymous.locator("main")).to_contain_text("拒绝访问：")
    assert "Access denied" not in anonymous.locator("main").inner_text()
    for page in (anonymous, outsider):
        page.context.close()


def test_an_unknown_dataset_and_a_missing_value_are_said_in_chinese(mosu, world, browser):  # noqa: F811
    page = signed_in_page(browser, mosu, world["provider"])
    response = _chinese(page, mosu, f"/dataset/no-such-{uuid.uuid4().hex[:6]}")
    assert response.status == 404
    expect(page.locator("main")).to_contain_text("未找到数据集")
    page.goto(f"{mosu.url}/dataset/new")
    page.get_by_role("textbox", name=re.compile("^标题")).fill("<script>alert(1)</script>")
    with page.expect_response(lambda r: r.url.endswith("/dataset/new") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="创建数据集").click()
    assert answer.value.status == 409
    expect(page.locator("#name-error")).to_have_text("缺少值")
    assert "Missing value" not in page.content()
    page.context.close()


def test_each_fixed_message_translated_is_one_the_catalog_still_says():
    """A fixed message is looked up by its English text: when the catalog rewords one, this says which
    translation no longer matches (it would silently fall back to English)."""
    from flask import Flask
    from flask_babel import Babel

    from webui.errors import fixed_texts

    app = Flask(__name__)
    Babel(app)
    with app.test_request_context():
        texts = list(fixed_texts())
    source = "\n".join(p.read_text(encoding="utf-8") for p in CATALOG.rglob("*.py"))
    assert [t for t in texts if f'"{t}"' not in source] == []
