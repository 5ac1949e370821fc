"""Notifications (issue 12): the inbox, its e-mail copies through the outbox, grant expiry notices.

Real parts only: a real SMTP server on loopback (aiosmtpd) that the mailer talks SMTP to, that
refuses when a test says so; a closed port; real SQLite and PostgreSQL catalogs; ``mosu up``
with its worker processes for the whole path (event → outbox → worker → SMTP) and for the
Action API. Time is a parameter (``now``), never waited for: a back-off of a minute is stepped
over by calling the next round a minute later.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import ckanapi
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import func, select

from catalog.access.context import Actor, Context
from catalog.actions import call
from catalog.core.errors import ValidationError
from catalog.core.settings import Settings
from catalog.db.models import AccessGrant, Notification, OutboxMail, User, utcnow
from catalog.platform import Platform
from catalog.records import notify, outbox
from catalog.storage.seaweed import free_port
from ingest import mailer
from tests.conftest import s3_settings, start_mosu

# The test server takes AUTH without TLS: it is on loopback, and the login is what is checked.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SITE = "http://portal.example"
SENDER = "portal@mosu.example"
SECRET = "Oslo-row-42"  # stands for a data value: it may be in an entry's data, never in a mail


# -- a real SMTP server ------------------------------------------------------------------------

@dataclass
class Inbox:
    """What the SMTP server received; ``refuse`` set to a reply ("451 ...", "550 ...") refuses every
    recipient with it until set back to None."""

    refuse: str | None = None
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    login: tuple[bytes, bytes] | None = None  # required, when set
    url: str = ""

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        return AuthResult(success=(auth_data.login, auth_data.password) == self.login)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's name
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(msg)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, predicate, timeout: float = 60) -> list[email.message.EmailMessage]:
        """Poll until ``predicate(messages)`` holds (the worker is another process)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                seen = list(self.messages)
            if predicate(seen):
                return seen
            time.sleep(0.1)
        raise AssertionError(f"the SMTP server did not receive the mails in time: {[m['Subject'] for m in seen]}")


def _serve(inbox: Inbox) -> Controller:
    """The SMTP server on a free loopback port (AUTH without TLS: it is loopback)."""
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), auth_require_tls=False,
                            auth_required=inbox.login is not None, authenticator=inbox.authenticate)
    controller.start()
    return controller


@pytest.fixture
def smtp():
    """A server that wants the login of its URL (the password URL-encoded, as an operator writes it)."""
    inbox = Inbox(login=(b"mailer", b"secret pass/1"))
    controller = _serve(inbox)
    inbox.url = f"smtp://mailer:secret%20pass%2F1@127.0.0.1:{controller.port}"
    yield inbox
    controller.stop()


def _platform(tmp_path: Path, smtp_url: str | None, database_url: str | None = None) -> Platform:
    return Platform.open(Settings(data_dir=tmp_path / "data", database_url=database_url, smtp_url=smtp_url,
                                  mail_from=SENDER, site_url=SITE))


def _users(platform: Platform, *specs: tuple[str, str | None]) -> dict[str, str]:
    """Create users (name, e-mail or None) through the real action; their ids by name."""
    site = Context(platform=platform, actor=Actor.site())
    for name, address in specs:
        call(site, "user_create", {"name": name, "email": address, "password": "mail-password"})
    with platform.read() as s:
        return {u.name: u.id for u in s.scalars(select(User))}


def _outbox(platform: Platform) -> list[OutboxMail]:
    with platform.read() as s:
        return list(s.scalars(select(OutboxMail).order_by(OutboxMail.created)))


def _queue_one(platform: Platform, user_id: str, subject: str = "Your request was approved") -> str:
    with platform.write.begin() as s:
        notify.notify(s, [user_id], "access_request.approved", subject, {"request_id": "r1", "row": SECRET})
    return _outbox(platform)[-1].id


# -- queueing --------------------------------------------------------------------------------------

def test_notify_queues_a_mail_in_the_event_transaction_with_the_subject_and_a_link_only(tmp_path, smtp):
    platform = _platform(tmp_path, smtp.url)
    try:
        ids = _users(platform, ("ann", "ann@example.org"), ("bob", None), ("eve", "eve@example.org"))
        with platform.write.begin() as s:  # an address from before user_create checked them (see below)
            s.get(User, ids["eve"]).email = "eve@example.org\nBcc: x@y.z"
        with platform.write.begin() as s:
            entries = notify.notify(s, [ids["ann"], ids["bob"], ids["ann"], ids["eve"]], "access_request.approved",
                                    "Your request for\nCity counts was approved", {"row": SECRET})
        assert len(entries) == 3  # each user once; bob (no address) and eve (unusable one) only in the inbox
        [mail] = _outbox(platform)
        assert (mail.to_address, mail.state, mail.attempts) == ("ann@example.org", "queued", 0)
        assert mail.subject == "Your request for City counts was approved"  # one line: no header injection
        assert mail.subject in mail.body and f"{SITE}/" in mail.body and SECRET not in mail.body

        with pytest.raises(RuntimeError):  # the event rolls back: its inbox entry and mail go with it
            with platform.write.begin() as s:
                notify.notify(s, [ids["ann"]], "access_request.approved", "rolled back", {})
                raise RuntimeError("the event failed")
        assert len(_outbox(platform)) == 1

        sent = mailer.send_round(platform, "w1")
        assert sent.sent == [mail.id]
        [msg] = smtp.messages
        assert (msg["To"], msg["From"], msg["Subject"]) == ("ann@example.org", SENDER, mail.subject)
        assert msg["Message-ID"] == f"<{mail.id}@mosu.example>"
        assert SECRET not in msg.as_string() and f"{SITE}/" in msg.get_content()
        assert mailer.send_round(platform, "w1", now=utcnow() + dt.timedelta(days=1)).sent == []
        assert len(smtp.messages) == 1  # never twice
        [row] = _outbox(platform)
        assert (row.state, row.attempts, row.last_error) == ("sent", 1, None) and row.sent is not None
    finally:
        platform.close()


def test_without_smtp_nothing_is_queued(tmp_path):
    platform = _platform(tmp_path, None)
    try:
        ids = _users(platform, ("ann", "ann@example.org"))
        with platform.write.begin() as s:
            assert len(notify.notify(s, [ids["ann"]], "access_grant.created", "Granted", {})) == 1
        assert _outbox(platform) == []
        assert mailer.send_round(platform, "w1").sent == []
    finally:
        platform.close()


# -- failures, back-off, giving up -------------------------------------------------------------

def test_a_failing_server_is_retried_after_back_off_and_the_mail_sent_once(tmp_path, smtp):
    closed = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    down = _platform(tmp_path, closed)
    up = Platform.open(down.settings.replace(smtp_url=smtp.url))  # the same catalog, the server back
    try:
        ids = _users(down, ("ann", "ann@example.org"))
        mail_id = _queue_one(down, ids["ann"])
        t0 = utcnow() + dt.timedelta(seconds=1)

        assert mailer.send_round(down, "w1", now=t0).retried == [mail_id]
        [row] = _outbox(down)
        assert (row.state, row.attempts) == ("queued", 1) and "ConnectionRefusedError" in row.last_error
        assert row.not_before == t0 + dt.timedelta(seconds=outbox.BACKOFF_SECONDS)
        assert row.claimed_by == "w1" and row.lease_until is None

        smtp.refuse = "451 4.3.0 Try again later"
        assert mailer.send_round(up, "w1", now=t0 + dt.timedelta(seconds=59)).retried == []  # not due yet
        t1 = t0 + dt.timedelta(seconds=61)
        assert mailer.send_round(up, "w1", now=t1).retried == [mail_id]
        [row] = _outbox(up)
        assert row.attempts == 2 and "451" in row.last_error
        assert row.not_before == t1 + dt.timedelta(seconds=2 * outbox.BACKOFF_SECONDS)  # doubled
        assert smtp.messages == []

        smtp.refuse = None
        assert mailer.send_round(up, "w1", now=t1 + dt.timedelta(seconds=119)).sent == []
        t2 = t1 + dt.timedelta(seconds=121)
        assert mailer.send_round(up, "w1", now=t2).sent == [mail_id]
        assert mailer.send_round(up, "w1", now=t2 + dt.timedelta(days=7)).sent == []
        assert len(smtp.to("ann@example.org")) == 1
        [row] = _outbox(up)
        assert (row.state, row.attempts, row.last_error, row.sent) == ("sent", 3, None, t2)
    finally:
        up.close()
        down.close()


def test_after_the_last_attempt_the_mail_is_kept_as_failed_with_its_error(tmp_path, smtp):
    platform = _platform(tmp_path, smtp.url)
    try:
        ids = _users(platform, ("ann", "ann@example.org"), ("bob", "bob@example.org"))
        mail_id = _queue_one(platform, ids["ann"])
        smtp.refuse = "421 4.7.0 Too busy"
        now = utcnow() + dt.timedelta(seconds=1)
        for attempt in (1, 2, 3):
            result = mailer.send_round(platform, "w1", now=now, max_attempts=3)
            assert (result.retried if attempt < 3 else result.failed) == [mail_id]
            now += dt.timedelta(days=1)  # past any back-off
        assert mailer.send_round(platform, "w1", now=now + dt.timedelta(days=30), max_attempts=3).failed == []
        [row] = _outbox(platform)
        assert (row.state, row.attempts) == ("failed", 3) and "421" in row.last_error and row.sent is None

        # A recipient the server refuses for good (5xx) fails at once; the next mail still goes.
        smtp.refuse = "550 5.1.1 No such user"
        bad = _queue_one(platform, ids["bob"])
        assert mailer.send_round(platform, "w1", now=now).failed == [bad]
        row = next(r for r in _outbox(platform) if r.id == bad)
        assert (row.state, row.attempts) == ("failed", 1) and "550" in row.last_error
        assert smtp.messages == []
    finally:
        platform.close()


# -- two workers -------------------------------------------------------------------------------

@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_two_racing_workers_send_each_mail_once(tmp_path, smtp, request, db):
    url = request.getfixturevalue("postgres")() if db == "postgresql" else None
    platforms = [_platform(tmp_path, smtp.url, url)]
    platforms.append(Platform.open(platforms[0].settings))  # a second process's connections
    try:
        ids = _users(platforms[0], ("ann", "ann@example.org"))
        with platforms[0].write.begin() as s:
            for i in range(30):
                notify.notify(s, [ids["ann"]], "access_request.created", f"Request number {i}", {})
        start = threading.Barrier(2)
        sent: dict[str, list[str]] = {"w0": [], "w1": []}
        trouble: list[str] = []

        def work(name: str, platform: Platform) -> None:
            start.wait()
            while True:
                done = mailer.send_round(platform, name, limit=3)
                sent[name].extend(done.sent)
                trouble.extend(done.retried + done.failed)
                if not done.sent:
                    return

        threads = [threading.Thread(target=work, args=(f"w{i}", p)) for i, p in enumerate(platforms)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        every = sent["w0"] + sent["w1"]
        assert trouble == [] and len(every) == len(set(every)) == 30
        assert len(smtp.messages) == 30
        assert len({m["Message-ID"] for m in smtp.messages}) == 30
        assert sorted(m["Subject"] for m in smtp.messages) == sorted(f"Request number {i}" for i in range(30))
        assert {(r.state, r.attempts) for r in _outbox(platforms[0])} == {("sent", 1)}
    finally:
        for p in platforms:
            p.close()


# -- grant expiry notices ----------------------------------------------------------------------

def _provider(platform: Platform, prefix: str) -> tuple[dict[str, str], dict[str, str]]:
    """An organization (admin, editor, member) with two datasets, a researcher, and a company
    (an organization with an admin and a member) that may hold grants; (user ids, dataset ids)."""
    site = Context(platform=platform, actor=Actor.site())
    ids = _users(platform, *[(f"{prefix}-{r}", f"{prefix}-{r}@example.org") for r in
                             ("admin", "editor", "member", "researcher", "co-admin", "co-member")])
    call(site, "organization_create", {"name": f"{prefix}-org", "users": [
        {"name": f"{prefix}-admin", "capacity": "admin"}, {"name": f"{prefix}-editor", "capacity": "editor"},
        {"name": f"{prefix}-member", "capacity": "member"}]})
    ids["company"] = call(site, "organization_create", {"name": f"{prefix}-company", "title": "Acme Labs", "users": [
        {"name": f"{prefix}-co-admin", "capacity": "admin"},
        {"name": f"{prefix}-co-member", "capacity": "member"}]})["id"]
    datasets = {}
    for name, title in (("soon", "Clinic visits"), ("later", "Loan book")):
        datasets[name] = call(site, "package_create", {"name": f"{prefix}-{name}", "title": title,
                                                       "owner_org": f"{prefix}-org"})["id"]
    return ids, datasets


def _grant(platform: Platform, package_id: str, grantee_id: str, days: float, *, kind: str = "user",
           now: dt.datetime | None = None, revoked: bool = False) -> str:
    """A grant row made directly (the request and grant actions are not what this file tests)."""
    now = now or utcnow()
    with platform.write.begin() as s:
        grant = AccessGrant(package_id=package_id, grantee_type=kind, grantee_id=grantee_id,
                            expires=now + dt.timedelta(days=days), revoked=now if revoked else None)
        s.add(grant)
        s.flush()
        return grant.id


def _notices(platform: Platform, ids: dict[str, str]) -> dict[str, list[str]]:
    """The expiry notices each user received, by user name: their subjects."""
    names = {v: k for k, v in ids.items()}
    out: dict[str, list[str]] = {}
    with platform.read() as s:
        for n in s.scalars(select(Notification).where(Notification.kind == notify.EXPIRING)
                           .order_by(Notification.subject)):
            out.setdefault(names[n.user_id], []).append(n.subject)
    return out


def test_grants_expiring_within_14_days_notify_both_sides_once(tmp_path, smtp):
    platform = _platform(tmp_path, smtp.url)
    try:
        ids, ds = _provider(platform, "x")
        now = utcnow()
        soon = _grant(platform, ds["soon"], ids["x-researcher"], 10, now=now)
        company = _grant(platform, ds["soon"], ids["company"], 10, kind="organization", now=now)
        later = _grant(platform, ds["later"], ids["x-researcher"], 30, now=now)
        _grant(platform, ds["later"], ids["x-researcher"], 5, now=now, revoked=True)
        _grant(platform, ds["later"], ids["x-researcher"], -1, now=now)  # already over: nothing to warn of

        with platform.write.begin() as s:
            assert sorted(notify.expiring_grants(s, now=now)) == sorted([soon, company])
        notices = _notices(platform, ids)
        assert sorted(notices) == ["x-admin", "x-co-admin", "x-editor", "x-researcher"]  # no plain members
        ends = f"{now + dt.timedelta(days=10):%Y-%m-%d %H:%M} UTC"
        assert notices["x-researcher"] == [f"Your access to Clinic visits ends on {ends}"]
        assert notices["x-co-admin"][0].startswith("Access of your organization Acme Labs to Clinic visits ends")
        assert sorted(s.split(" to ")[0] for s in notices["x-admin"]) == [
            "Access of organization Acme Labs", "Access of x-researcher"]
        assert notices["x-admin"] == notices["x-editor"]
        with platform.read() as s:
            flags = {g.id: g.expiry_notified for g in s.scalars(select(AccessGrant))}
        assert flags[soon] and flags[company] and not flags[later]

        with platform.write.begin() as s:  # the next scan (another worker, or later) tells nobody again
            assert notify.expiring_grants(s, now=now + dt.timedelta(hours=1)) == []
        assert _notices(platform, ids) == notices

        assert len(_outbox(platform)) == 6  # everyone above has an address: one mail per entry
        assert len(mailer.send_round(platform, "w1").sent) == 6
        assert [m["Subject"] for m in smtp.to("x-researcher@example.org")] == notices["x-researcher"]

        with platform.write.begin() as s:  # 30 days out is 14 days out 16 days later: told then
            assert notify.expiring_grants(s, now=now + dt.timedelta(days=16, minutes=1)) == [later]
    finally:
        platform.close()


# -- the whole path under `mosu up`: worker processes, the Action API ------------------------------

@pytest.fixture(scope="module")
def mailsite(s3, tmp_path_factory):
    """``mosu up`` with e-mail configured, on a catalog prepared beforehand with a provider, a
    researcher, a grant ending in 10 days and one in 30: its workers' first scan finds them."""
    inbox = Inbox()
    controller = _serve(inbox)
    data_dir = tmp_path_factory.mktemp("mailsite") / "data"
    settings = s3_settings(s3, data_dir, smtp_url=f"smtp://127.0.0.1:{controller.port}", mail_from=SENDER,
                           site_url=SITE)
    platform = Platform.open(settings)
    ids, ds = _provider(platform, "m")
    _grant(platform, ds["soon"], ids["m-researcher"], 10)
    _grant(platform, ds["later"], ids["m-researcher"], 30)
    platform.close()
    env = {k: v for k, v in settings.to_env().items() if k != "MOSU_DATA_DIR"}
    running = start_mosu(data_dir, env, settings)
    yield running, inbox, ids
    running.stop()
    controller.stop()


def test_the_worker_sends_expiry_notices_and_queued_mail(mailsite):
    running, inbox, ids = mailsite
    def expiry(ms):
        return [m for m in ms if " ends on " in m["Subject"]]

    seen = expiry(inbox.wait_for(lambda ms: len(expiry(ms)) >= 3))
    assert sorted(m["To"] for m in seen) == ["m-admin@example.org", "m-editor@example.org",
                                             "m-researcher@example.org"]
    assert all("Clinic visits" in m["Subject"] for m in seen)  # the 30-day grant: not yet

    platform = running.inspect()  # an event in another process: the worker sends its mail
    with platform.write.begin() as s:
        notify.notify(s, [ids["m-member"]], "access_request.created", "A request to decide", {"row": SECRET})
    inbox.wait_for(lambda ms: any(m["To"] == "m-member@example.org" for m in ms))
    [msg] = inbox.to("m-member@example.org")
    assert msg["Subject"] == "A request to decide" and SECRET not in msg.as_string()
    assert len(expiry(inbox.messages)) == 3  # the workers (each process scans) told each side once
    with platform.read() as s:
        assert s.scalar(select(func.count()).select_from(Notification)
                        .where(Notification.kind == notify.EXPIRING)) == 3
    rows = _outbox(platform)
    assert len(rows) == len(inbox.messages) and {(r.state, r.attempts) for r in rows} == {("sent", 1)}


def test_notification_list_and_mark_read_over_http(mailsite):
    running, inbox, ids = mailsite
    inbox.wait_for(lambda ms: len(ms) >= 3)  # the workers' expiry scan has run
    researcher = running.ckan(running.token("m-researcher"))
    admin = running.ckan(running.token("m-admin"))
    platform = running.inspect()
    with platform.write.begin() as s:
        notify.notify(s, [ids["m-researcher"]], "access_request.approved", "Your request was approved", {"x": 1})
    mine = researcher.action.notification_list()
    assert (mine["count"], mine["unread_count"]) == (2, 2)
    assert [n["subject"] for n in mine["results"]][0] == "Your request was approved"  # newest first
    assert mine["results"][1]["kind"] == notify.EXPIRING and mine["results"][1]["is_read"] is False
    page = researcher.action.notification_list(limit=1, offset=1)
    assert [n["id"] for n in page["results"]] == [mine["results"][1]["id"]] and page["count"] == 2

    theirs = admin.action.notification_list()["results"][0]["id"]
    with pytest.raises(ckanapi.NotFound):  # another user's entry: not found, and nothing marked
        researcher.action.notification_mark_read(ids=[mine["results"][0]["id"], theirs])
    assert researcher.action.notification_list()["unread_count"] == 2
    assert admin.action.notification_list(unread_only=True)["count"] == 1

    marked = researcher.action.notification_mark_read(ids=[mine["results"][0]["id"]])
    assert marked == {"marked": 1, "unread_count": 1}
    unread = researcher.action.notification_list(unread_only=True)
    assert [n["kind"] for n in unread["results"]] == [notify.EXPIRING] and unread["count"] == 1
    assert researcher.action.notification_mark_read(all=True) == {"marked": 1, "unread_count": 0}
    assert researcher.action.notification_list()["results"][0]["is_read"] is True
    assert admin.action.notification_list()["unread_count"] == 1  # all=true was the caller's own

    with pytest.raises(ckanapi.NotAuthorized):
        running.ckan().action.notification_list()
    with pytest.raises(ckanapi.ValidationError):
        researcher.action.notification_mark_read()


def test_smtp_urls_are_parsed_and_their_passwords_never_shown():
    assert outbox.mail_server("smtp://127.0.0.1") == outbox.MailServer("plain", "127.0.0.1", 25)
    assert outbox.mail_server("smtps://u%40x:p%3Aw@mail.example") == outbox.MailServer(
        "ssl", "mail.example", 465, "u@x", "p:w")
    tls = outbox.mail_server("smtp+starttls://relay:s3cret@mail.example:2587")
    assert (tls.security, tls.port, tls.password) == ("starttls", 2587, "s3cret") and "s3cret" not in repr(tls)
    for bad in ("http://mail.example", "smtp://user:s3cret@", "smtp://user:s3cret@mail.example:port"):
        with pytest.raises(ValueError) as refused:
            outbox.mail_server(bad)
        assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("address", ["eve@example.org\nBcc: x@y.z", "a@b.org, c@d.org", "Eve <eve@example.org>",
                                     "eve@example.org\r\n", "no-at-sign"])
def test_user_create_and_update_refuse_an_address_that_is_not_one_mailbox(tmp_path, address):
    """Mail goes to users' addresses: a line break or a list there would add headers or recipients."""
    platform = _platform(tmp_path, None)
    site = Context(platform=platform, actor=Actor.site())
    with pytest.raises(ValidationError) as refused:
        call(site, "user_create", {"name": "mallory", "email": address, "password": "mail-password"})
    assert refused.value.field_errors == {"email": ["Must be one e-mail address, like name@example.org"]}
    call(site, "user_create", {"name": "mallory", "email": "m@example.org", "password": "mail-password"})
    with pytest.raises(ValidationError):
        call(site, "user_update", {"id": "mallory", "email": address})
    with platform.read() as s:
        assert s.scalar(select(User.email).where(User.name == "mallory")) == "m@example.org"
    platform.close()
