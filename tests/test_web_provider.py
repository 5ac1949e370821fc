"""The providers' pages in a real Chromium against ``mosu up``: a provider creates a dataset through
the form, uploads a CSV from the browser straight to object storage, follows its ingest to the
quality report, edits the data dictionary and acknowledges a version held for personal
information; a stranger is refused; hostile text stays text.

Each test builds its own organization, users and datasets under a unique suffix.
"""
from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import ckanapi
import pytest

from tests import web
from tests.conftest import upload
from tests.web import assert_accessible, new_user, screenshot, signed_in_page
from tests.web import unexpected_errors as _unexpected
from tests.web import watch_dialogs as _no_dialogs

browser = web.browser  # the module's Chromium (a fixture)

pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

HOSTILE = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>')
TREES = b"id,species,height_m\n" + b"".join(f"{i},oak,{10 + i % 7}\n".encode() for i in range(60))


@pytest.fixture(scope="module")
def admin(mosu):
    return mosu.ckan(mosu.token(f"prov-admin-{uuid.uuid4().hex[:6]}", sysadmin=True))


@pytest.fixture
def lab(mosu, admin) -> dict:
    """An organization with a provider (an editor of it)."""
    suffix = uuid.uuid4().hex[:8]
    org = admin.action.organization_create(name=f"lab-{suffix}", title=f"Lab {suffix}",
                                           description="A lab that measures trees.")
    provider = new_user(mosu, f"prov-{suffix}")
    admin.action.organization_member_create(id=org["id"], username=provider, role="editor")
    return {"org": org, "provider": provider, "suffix": suffix}


WATCH_PROGRESS = """() => {
  const message = document.getElementById("upload-message"), bar = document.getElementById("upload-progress");
  sessionStorage.removeItem("seen-progress");
  new MutationObserver(() => {
    const seen = JSON.parse(sessionStorage.getItem("seen-progress") || "[]");
    seen.push([message.textContent, bar.value, bar.max]);
    sessionStorage.setItem("seen-progress", JSON.stringify(seen));
  }).observe(message, {childList: true, characterData: true, subtree: true});
  const notice = document.getElementById("resume-notice");
  sessionStorage.removeItem("seen-notice");
  new MutationObserver(() => sessionStorage.setItem("seen-notice", notice.textContent))
    .observe(notice, {childList: true, characterData: true, subtree: true});
}"""
"""Record what the upload's message and progress bar show at each change from now on (in
sessionStorage, which the navigation to the ingest page keeps), so the test can read what the page
showed on its way."""


def test_provider_creates_a_restricted_dataset_uploads_a_csv_and_reads_its_quality_report(mosu, admin, browser, lab):
    page = signed_in_page(browser, mosu, lab["provider"])
    dialogs = _no_dialogs(page)
    name = f"trees-{lab['suffix']}"
    page.goto(mosu.url + "/dataset/new")
    assert_accessible(page)
    page.get_by_label("Title", exact=True).fill("Street trees")
    page.get_by_label("Name (in the address)").fill(name)
    page.get_by_label("Description", exact=True).fill("Every street tree of the city, measured.")
    page.get_by_label("Tags", exact=True).fill("trees, city")
    page.get_by_label("Licence", exact=True).select_option("CC-BY-4.0")
    page.get_by_label("Organization", exact=True).select_option(lab["org"]["id"])
    page.get_by_role("radio", name=re.compile("^Restricted")).check()
    page.get_by_role("button", name="Create dataset").click()
    page.wait_for_url(f"**/dataset/{name}/upload")
    pkg = admin.action.package_show(id=name)
    assert (pkg["title"], pkg["access_level"], pkg["license_id"], pkg["owner_org"]) == (
        "Street trees", "restricted", "CC-BY-4.0", lab["org"]["id"])
    assert sorted(t["name"] for t in pkg["tags"]) == ["city", "trees"] and pkg["private"] is False
    assert_accessible(page)

    response = page.request.get(page.url)
    assert response.url == page.url and response.status == 200, (response.url, response.status)
    s3_origin = "{0.scheme}://{0.netloc}".format(urlsplit(mosu.settings.s3_endpoint))
    policy = response.headers["content-security-policy"]
    assert f"connect-src 'self' {s3_origin};" in policy, policy
    assert "connect-src" not in page.request.get(mosu.url + "/dashboard").headers["content-security-policy"]

    puts: list[str] = []
    page.on("request", lambda r: r.method == "PUT" and puts.append(r.url))
    page.evaluate(WATCH_PROGRESS)
    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "trees.csv", "mimeType": "text/csv", "buffer": TREES}])
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url("**/ingest")
    seen = page.evaluate("() => JSON.parse(sessionStorage.getItem('seen-progress') || '[]')")
    assert seen[-1] == ["Upload complete. Opening its ingest…", 1, 1], seen
    assert [f"{len(TREES):,} of {len(TREES):,} bytes sent", len(TREES), len(TREES)] in seen, seen
    assert puts and all(u.startswith(s3_origin + "/") for u in puts), "the parts went straight to object storage"
    expect(page.locator("#ingest-status")).to_have_text("ready", timeout=90_000)
    res = admin.action.package_show(id=name)["resources"][0]
    assert res["ingest_status"] == "ready" and res["row_count"] == 60 and res["name"] == "trees.csv"
    expect(page.get_by_text("Published: 60 rows.")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "provider-ingest-ready")
    page.get_by_role("link", name=re.compile(r"^Quality report \(score \d+\)$")).click()
    expect(page.get_by_role("heading", name=re.compile("^Quality report"))).to_be_visible()

    page.goto(mosu.url + "/dashboard")
    item = page.locator(f'[data-dataset="{name}"]')
    expect(item.get_by_role("link", name="Street trees")).to_have_attribute("href", f"/dataset/{name}")
    expect(item.locator(".status")).to_have_text("ready")
    expect(item.get_by_role("link", name=re.compile(r"^Quality report of trees.csv: score \d+$"))).to_be_visible()
    assert_accessible(page)
    screenshot(page, "provider-dashboard")
    assert page.console_errors == [] and dialogs == []


def test_the_form_shows_validation_errors_next_to_their_fields_and_creates_nothing(mosu, admin, browser, lab):
    page = signed_in_page(browser, mosu, lab["provider"])
    page.goto(mosu.url + "/dataset/new")
    page.get_by_label("Title", exact=True).fill(f"Badly named {lab['suffix']}")
    page.get_by_label("Name (in the address)").fill("Bad Name!")
    page.get_by_label("Embargo until (optional)").fill("2031-05-04")
    with page.expect_response(lambda r: r.url.endswith("/dataset/new") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Create dataset").click()
    assert answer.value.status == 409
    field = page.get_by_label("Name (in the address)")
    expect(field).to_have_attribute("aria-invalid", "true")
    described = field.get_attribute("aria-describedby").split()
    assert "name-error" in described
    expect(page.locator("#name-error")).to_contain_text("lowercase")
    expect(page.get_by_label("Title", exact=True)).to_have_value(f"Badly named {lab['suffix']}")  # what was typed stays
    expect(page.get_by_label("Embargo until (optional)")).to_have_value("2031-05-04")
    assert page.get_by_label("Title", exact=True).get_attribute("aria-invalid") is None, "only the bad field is marked"
    assert_accessible(page)
    found = admin.action.package_search(q=f'title:"Badly named {lab["suffix"]}"', include_private=True,
                                        include_drafts=True)
    assert found["count"] == 0, "nothing was created"
    assert _unexpected(page.console_errors, 409) == []


def test_a_stranger_cannot_open_the_edit_upload_or_ingest_pages(mosu, admin, browser, lab):
    name = f"kept-{lab['suffix']}"
    admin.action.package_create(name=name, owner_org=lab["org"]["id"], notes="Owners only: edit me")
    res = upload(admin, TREES, "kept.csv", dataset=name)
    stranger = new_user(mosu)
    page = signed_in_page(browser, mosu, stranger)
    for path in (f"/dataset/{name}/edit", f"/dataset/{name}/upload", f"/dataset/{name}/resource/{res['id']}/ingest"):
        response = page.goto(mosu.url + path)
        assert response.status == 403, path
        expect(page.get_by_role("heading", level=1)).to_contain_text("403")
        assert page.locator("form.dataset-form, #upload-form").count() == 0
        assert "Owners only" not in page.content()
        assert_accessible(page)
    refused = page.request.post(mosu.url + f"/dataset/{name}/edit", form={
        "csrf_token": page.locator('meta[name="csrf-token"]').get_attribute("content"), "title": "Taken over",
        "name": name})
    assert refused.status == 403
    assert admin.action.package_show(id=name)["title"] != "Taken over"
    anonymous = browser.new_page()
    anonymous.goto(mosu.url + f"/dataset/{name}/edit")
    assert urlsplit(anonymous.url).path == "/user/login", "signed out: the sign-in form, then back here"
    anonymous.close()
    assert _unexpected(page.console_errors, 403) == []


def test_a_held_upload_is_acknowledged_with_a_reason_from_the_page(mosu, admin, browser, lab):
    name = f"people-{lab['suffix']}"
    admin.action.package_create(name=name, owner_org=lab["org"]["id"])  # open and public: PII holds it
    people = b"id,email\n" + b"".join(f"{i},person{i}@example.org\n".encode() for i in range(80))
    res = upload(admin, people, "people.csv", dataset=name)
    assert res["ingest_status"] == "held"
    page = signed_in_page(browser, mosu, lab["provider"])
    page.goto(mosu.url + f"/dataset/{name}/resource/{res['id']}/ingest")
    expect(page.locator("#ingest-status")).to_have_text("held")
    expect(page.get_by_role("heading", name="Version 1 is held: personal information")).to_be_visible()
    expect(page.locator("table.pii")).to_contain_text("email")
    assert_accessible(page)
    with page.expect_response(lambda r: r.url.endswith("/acknowledge")) as answer:
        page.get_by_role("button", name="Acknowledge and publish").click()  # no reason yet
    assert answer.value.status == 409
    expect(page.get_by_label("Reason")).to_have_attribute("aria-invalid", "true")
    assert admin.action.resource_show(id=res["id"])["ingest_status"] == "held"
    page.get_by_label("Reason").fill("Published with the consent of everyone listed.")
    page.get_by_role("button", name="Acknowledge and publish").click()
    expect(page.get_by_role("status").filter(has_text="Acknowledged")).to_be_visible()
    expect(page.locator("#ingest-status")).to_have_text("ready")
    assert admin.action.resource_show(id=res["id"])["ingest_status"] == "ready"
    events = admin.action.audit_event_list(event="quality_pii_acknowledge", resource=res["id"])
    assert [e["actor"] for e in events["rows"]] == [lab["provider"]], "the provider acknowledged, once"
    assert_accessible(page)
    assert _unexpected(page.console_errors, 409) == []


def test_hostile_titles_descriptions_tags_and_columns_render_as_text(mosu, admin, browser, lab):
    page = signed_in_page(browser, mosu, lab["provider"])
    dialogs = _no_dialogs(page)
    name = f"hostile-{lab['suffix']}"
    page.goto(mosu.url + "/dataset/new")
    page.get_by_label("Title", exact=True).fill(HOSTILE[0] + HOSTILE[1])
    page.get_by_label("Name (in the address)").fill(name)
    page.get_by_label("Description", exact=True).fill(HOSTILE[1] + " " + HOSTILE[0])
    page.get_by_label("Tags", exact=True).fill(", ".join(HOSTILE))
    page.get_by_label("Organization", exact=True).select_option(lab["org"]["id"])
    page.get_by_role("button", name="Create dataset").click()
    page.wait_for_url(f"**/dataset/{name}/upload")
    assert sorted(t["name"] for t in admin.action.package_show(id=name)["tags"]) == sorted(HOSTILE)
    hostile_csv = f'id,"{HOSTILE[1]}"\n1,a\n2,b\n'.encode()
    res = upload(admin, hostile_csv, "hostile.csv", dataset=name)
    assert res["ingest_status"] == "ready", res

    column = next(f["id"] for f in admin.action.datastore_info(id=res["id"])["fields"] if f["id"] not in ("_id", "id"))
    assert "<img" in column, column
    page.goto(mosu.url + f"/dataset/{name}/edit")
    page.get_by_label(f"Label of {column}").fill(HOSTILE[0])
    page.get_by_label(f"Description of {column}").fill(HOSTILE[1])
    page.get_by_role("button", name=re.compile("^Save the data dictionary")).click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    info = admin.action.datastore_info(id=res["id"])
    assert {f["id"]: f.get("info") for f in info["fields"]}[column]["label"] == HOSTILE[0]
    expect(page.get_by_label(f"Label of {column}")).to_have_value(HOSTILE[0])
    expect(page.locator("table.dictionary-table code").filter(has_text=column)).to_have_count(1)

    for path in (f"/dataset/{name}/edit", f"/dataset/{name}/upload", "/dashboard",
                 f"/organization/{lab['org']['name']}", f"/dataset/{name}/resource/{res['id']}/ingest"):
        page.goto(mosu.url + path)
        assert page.locator("script:not([src])").count() == 0 and page.locator("img[src=x]").count() == 0, path
        if path != f"/dataset/{name}/resource/{res['id']}/ingest":
            expect(page.get_by_text(HOSTILE[0] + HOSTILE[1]).first).to_be_visible()
        assert_accessible(page)
    assert page.console_errors == [] and dialogs == []


def test_the_organization_page_lists_private_datasets_to_members_only(mosu, admin, browser, lab):
    org = lab["org"]
    admin.action.package_create(name=f"pub-{lab['suffix']}", title=f"Public {lab['suffix']}", owner_org=org["id"])
    admin.action.package_create(name=f"priv-{lab['suffix']}", title=f"Private {lab['suffix']}", owner_org=org["id"],
                                private=True)
    anonymous = browser.new_page()
    anonymous.goto(mosu.url + f"/organization/{org['name']}")
    expect(anonymous.get_by_role("heading", level=1)).to_have_text(org["title"])
    expect(anonymous.get_by_text("A lab that measures trees.")).to_be_visible()
    expect(anonymous.get_by_role("link", name=f"Public {lab['suffix']}")).to_be_visible()
    assert anonymous.get_by_role("link", name=f"Private {lab['suffix']}").count() == 0
    assert_accessible(anonymous)
    anonymous.close()
    page = signed_in_page(browser, mosu, lab["provider"])
    page.goto(mosu.url + f"/organization/{org['name']}")
    expect(page.get_by_role("link", name=f"Private {lab['suffix']}")).to_be_visible()
    expect(page.get_by_role("link", name="New dataset")).to_be_visible()
    page.goto(mosu.url + "/dashboard")
    expect(page.locator(f'[data-dataset="priv-{lab["suffix"]}"]')).to_be_visible()
    assert_accessible(page)
    assert page.console_errors == []


def test_a_dropped_part_is_retried_and_a_stopped_upload_resumes_after_a_reload(mosu_factory, browser, tmp_path):
    """A 17 MiB file goes in two parts. The connection drops once on part 1 (sent again at once),
    and part 2 never gets through: the upload stops, its id kept. After a reload, choosing the same
    file resumes that upload: only part 2 is sent, no new upload is started, and it is ingested."""
    site = mosu_factory(max_upload_bytes=64 * 1024 * 1024)
    admin = site.ckan(site.token("resume-admin", sysadmin=True))
    admin.action.organization_create(name="resume-lab")
    admin.action.package_create(name="big-trees", owner_org="resume-lab", access_level="restricted",
                                private=True)  # its ingest is followed as the provider (status.js)
    provider = new_user(site, "resume-provider")
    admin.action.organization_member_create(id="resume-lab", username=provider, role="editor")
    data = tmp_path / "big.csv"
    with data.open("w") as fh:
        fh.write("id,species,height_m\n")
        i = 0
        while fh.tell() < 17 * 1024 * 1024:
            fh.write("".join(f"{n},oak,{10 + n % 7}\n" for n in range(i, i + 10_000)))
            i += 10_000
    rows = i
    s3_origin = "{0.scheme}://{0.netloc}".format(urlsplit(site.settings.s3_endpoint))
    attempts: list[int] = []

    def flaky(route):
        part = int(re.search(r"partNumber=(\d+)", route.request.url).group(1))
        attempts.append(part)
        if part == 2 or attempts.count(1) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page = signed_in_page(browser, site, provider)
    page.goto(site.url + "/dataset/big-trees/upload")
    page.route(lambda url: url.startswith(s3_origin), flaky)
    page.evaluate(WATCH_PROGRESS)
    page.get_by_label("File", exact=True).set_input_files(str(data))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-message")).to_contain_text("The upload stopped", timeout=60_000)
    assert attempts == [1, 1, 2, 2, 2, 2], "part 1 again after its drop; part 2 tried 4 times"
    seen = [text for text, *_ in page.evaluate("() => JSON.parse(sessionStorage.getItem('seen-progress'))")]
    assert "The connection dropped: trying part 1 / 2 again (attempt 2)…" in seen
    kept = page.evaluate("() => JSON.parse(sessionStorage.getItem(Object.keys(sessionStorage).find("
                         "k => k.startsWith('mosu-upload:'))))")
    assert kept["name"] == "big.csv" and kept["size"] == data.stat().st_size

    page.unroute(lambda url: url.startswith(s3_origin))
    page.unroute_all()
    page.reload()
    expect(page.locator("#resume-notice")).to_have_text(
        "An upload of big.csv was interrupted. Choose the same file again to resume it.")
    actions: list[str] = []
    page.on("request", lambda r: "/api/3/action/" in r.url and actions.append(r.url.rsplit("/", 1)[1]))
    puts: list[str] = []
    page.on("request", lambda r: r.method == "PUT" and puts.append(r.url))
    page.evaluate(WATCH_PROGRESS)
    page.get_by_label("File", exact=True).set_input_files(str(data))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url("**/ingest", timeout=60_000)
    seen = [text for text, *_ in page.evaluate("() => JSON.parse(sessionStorage.getItem('seen-progress'))")]
    assert page.evaluate("() => sessionStorage.getItem('seen-notice')") == (
        "Resuming the upload: 1 of 2 parts were already stored.")
    assert seen[0] == "16,777,216 of 17,938,910 bytes sent".replace("17,938,910", f"{data.stat().st_size:,}"), seen
    assert "resource_upload_start" not in actions and "resource_upload_show" in actions, actions
    assert len(puts) == 1 and "partNumber=2" in puts[0], "only the missing part was sent"
    expect(page.locator("#ingest-status")).to_have_text("ready", timeout=120_000)
    res = admin.action.package_show(id="big-trees")["resources"][0]
    assert res["row_count"] == rows and res["size"] == data.stat().st_size
    dropped = [e for e in page.console_errors if "ERR_CONNECTION_RESET" in e]
    assert len(dropped) == 5, "Chromium notes each dropped PUT (the test's doing)"
    assert [e for e in page.console_errors if e not in dropped] == []


def test_the_dashboard_lists_collaborations_as_editor_and_speaks_chinese(mosu, admin, browser, lab):
    """A private dataset of another organization is on the dashboard of its editor collaborator, not of
    a member collaborator (who may read it but not change it); the page in 简体中文."""
    other = admin.action.organization_create(name=f"other-{lab['suffix']}")
    shared = admin.action.package_create(name=f"shared-{lab['suffix']}", title=f"Shared {lab['suffix']}",
                                         owner_org=other["id"], private=True)
    reader = new_user(mosu, f"reader-{lab['suffix']}")
    admin.action.package_collaborator_create(id=shared["id"], user_id=lab["provider"], capacity="editor")
    admin.action.package_collaborator_create(id=shared["id"], user_id=reader, capacity="member")
    page = signed_in_page(browser, mosu, lab["provider"])
    page.goto(mosu.url + "/language/zh_Hans?next=/dashboard")  # the switch at the top of every page
    expect(page.get_by_role("heading", level=1)).to_have_text("我的数据集")
    item = page.locator(f'[data-dataset="shared-{lab["suffix"]}"]')
    expect(item.get_by_role("link", name=f"Shared {lab['suffix']}")).to_be_visible()
    expect(item.get_by_text("私有")).to_be_visible()
    expect(item.get_by_role("link", name="编辑")).to_have_attribute("href", f"/dataset/shared-{lab['suffix']}/edit")
    assert_accessible(page)
    assert page.console_errors == []
    page = signed_in_page(browser, mosu, reader)
    page.goto(mosu.url + "/dashboard")
    expect(page.get_by_text("You have no datasets to manage yet.")).to_be_visible()
    assert page.locator(f'[data-dataset="shared-{lab["suffix"]}"]').count() == 0
    assert page.console_errors == []


def test_the_dashboard_lists_public_and_private_collaborations_and_nothing_else(mosu, admin, browser, lab):
    """An editor collaborator's dashboard lists the datasets of another organization they collaborate
    on, the public one as well as the private one (a search for private or draft datasets missed the
    public one), each with its edit link; a public dataset of that organization they have no role on
    is not listed. The same through the API: package_collaborator_list_for_user answers the user
    (both datasets, public and private) and refuses another user."""
    suffix = lab["suffix"]
    other = admin.action.organization_create(name=f"partner-{suffix}")
    public = admin.action.package_create(name=f"pub-shared-{suffix}", title=f"Public shared {suffix}",
                                         owner_org=other["id"], private=False)
    private = admin.action.package_create(name=f"priv-shared-{suffix}", title=f"Private shared {suffix}",
                                          owner_org=other["id"], private=True)
    admin.action.package_create(name=f"not-mine-{suffix}", title=f"Not mine {suffix}", owner_org=other["id"],
                                private=False)
    for pkg in (public, private):
        admin.action.package_collaborator_create(id=pkg["id"], user_id=lab["provider"], capacity="editor")
    page = signed_in_page(browser, mosu, lab["provider"])
    page.goto(mosu.url + "/dashboard")
    for pkg, private_flag in ((public, 0), (private, 1)):
        item = page.locator(f'[data-dataset="{pkg["name"]}"]')
        expect(item.get_by_role("link", name=pkg["title"])).to_be_visible()
        expect(item.get_by_role("link", name="Edit")).to_have_attribute("href", f"/dataset/{pkg['name']}/edit")
        expect(item.get_by_text("Private", exact=True)).to_have_count(private_flag)
    expect(page.locator(f'[data-dataset="not-mine-{suffix}"]')).to_have_count(0)
    assert page.get_by_text(f"Not mine {suffix}").count() == 0
    assert_accessible(page)
    assert page.console_errors == []

    provider = mosu.ckan(admin.action.api_token_create(user=lab["provider"], name="dash")["token"])
    mine = provider.action.package_collaborator_list_for_user(id=lab["provider"])
    assert {c["package_id"] for c in mine} == {public["id"], private["id"]}
    assert {c["capacity"] for c in mine} == {"editor"}
    assert provider.action.package_collaborator_list_for_user(id=lab["provider"], capacity="member") == []
    stranger = mosu.ckan(admin.action.api_token_create(user=new_user(mosu, f"nosy-{suffix}"), name="x")["token"])
    with pytest.raises(ckanapi.NotAuthorized):
        stranger.action.package_collaborator_list_for_user(id=lab["provider"])


def test_the_edit_form_sets_agreement_embargo_level_and_privacy_and_fits_a_phone(mosu, admin, browser, lab):
    name = f"edited-{lab['suffix']}"
    admin.action.package_create(name=name, title="Before", owner_org=lab["org"]["id"], tags=[{"name": "old"}])
    agreement = admin.action.agreement_create(owner_org=lab["org"]["id"], title=f"Terms {lab['suffix']}",
                                              text="Use it well.")
    page = signed_in_page(browser, mosu, lab["provider"])
    page.goto(mosu.url + f"/dataset/{name}/edit")
    expect(page.get_by_label("Title", exact=True)).to_have_value("Before")
    expect(page.get_by_label("Tags", exact=True)).to_have_value("old")
    page.get_by_label("Title", exact=True).fill("After")
    page.get_by_label("Tags", exact=True).fill("new, newer")
    page.get_by_role("radio", name=re.compile("^Registered users")).check()
    page.get_by_label("Data use agreement").select_option(label=f"Terms {lab['suffix']} ({lab['org']['title']})")
    page.get_by_label("Embargo until (optional)").fill("2031-05-04")
    page.get_by_role("checkbox", name=re.compile("^Private")).check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    pkg = admin.action.package_show(id=name)
    assert (pkg["title"], pkg["access_level"], pkg["agreement_id"], pkg["embargo_until"], pkg["private"]) == (
        "After", "registered", agreement["id"], "2031-05-04", True)
    assert sorted(t["name"] for t in pkg["tags"]) == ["new", "newer"]
    expect(page.get_by_role("radio", name=re.compile("^Registered users"))).to_be_checked()
    expect(page.get_by_label("Embargo until (optional)")).to_have_value("2031-05-04")
    assert_accessible(page)
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (f"/dataset/{name}/edit", f"/dataset/{name}/upload", "/dashboard", "/dataset/new"):
        page.goto(mosu.url + path)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, f"{path} scrolls sideways"
    assert page.console_errors == []


def test_a_dataset_cannot_be_named_after_the_new_dataset_page(mosu, admin, lab):
    """``/dataset/new`` is the form: a dataset named ``new`` would be unreachable (CKAN refuses it too)."""
    import ckanapi

    for reserved in ("new", "edit", "search"):
        with pytest.raises(ckanapi.ValidationError) as refused:
            admin.action.package_create(name=reserved, owner_org=lab["org"]["id"])
        assert refused.value.error_dict["name"] == ["That name cannot be used"]
