"""The e-mail outbox: copies of notifications, queued with the event and sent later by the worker.

A notification's e-mail is a row of ``outbox_mail`` written in the transaction of the event (so
the event never happens without its mail being queued, and a mail server that is down never
loses one). The worker (``ingest.mailer``) sends the due rows. Each row is claimed by one
conditional UPDATE (``state`` still claimable, checked by row count), as ingest jobs are
(:mod:`catalog.versions.jobs`), so two workers never send the same mail; the claim is a lease,
taken back only if a worker died while sending. A failed send is retried with exponential
back-off and, after :data:`MAX_ATTEMPTS`, kept as ``failed`` with its last error (never
deleted: an operator can see what was not delivered and why).

The mail holds the notification's one-line subject and a link to the site, never data rows nor
the entry's ``data``: a mailbox is outside the access policy, so the reader signs in to see more.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from catalog.db.models import OutboxMail, utcnow

QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
MAX_ATTEMPTS = 8
BACKOFF_SECONDS = 60.0  # after the first failure; doubled after each next one
MAX_BACKOFF_SECONDS = 6 * 3600.0  # eight attempts span about four hours
ERROR_CHARS = 1000

SCHEMES = {"smtp": ("plain", 25), "smtps": ("ssl", 465), "smtp+starttls": ("starttls", 587)}
# One address, no display name, nothing a header could be split on.
ADDRESS_RE = re.compile(r"[^@\s<>,;:\"()\[\]\\]{1,64}@[^@\s<>,;:\"()\[\]\\]{1,190}")


@dataclass(frozen=True)
class MailServer:
    """Where to send, from ``MOSU_SMTP_URL``: ``smtp://`` (plain), ``smtps://`` (TLS from the first
    byte) or ``smtp+starttls://`` (upgraded with STARTTLS, refused if the server cannot)."""

    security: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never the password, in a log line or a traceback
        return f"MailServer({self.security}://{self.host}:{self.port}, user={self.username!r})"


def mail_server(url: str) -> MailServer:
    """Parse ``MOSU_SMTP_URL``; a ValueError whose message never repeats the password."""
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise ValueError(f"MOSU_SMTP_URL must start with {', '.join(s + '://' for s in SCHEMES)}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("MOSU_SMTP_URL has an invalid port") from None
    if not parts.hostname:
        raise ValueError("MOSU_SMTP_URL names no host")
    security, default_port = SCHEMES[parts.scheme]
    return MailServer(security, parts.hostname, port or default_port,
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password is not None else None)


def valid_address(address: str | None) -> bool:
    """Whether ``address`` is one plain e-mail address (what a user record may hold is not checked
    as strictly, and a header must never be built from a line break)."""
    return bool(address) and len(address) <= 254 and ADDRESS_RE.fullmatch(address) is not None


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with every run of whitespace (line breaks included) made one space, cut to ``limit``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def compose(subject: str, site_url: str | None) -> tuple[str, str]:
    """The mail's subject and plain-text body for a notification: its subject and where to read
    it. Nothing else of the event goes in (see the module doc)."""
    subject = one_line(subject)
    site = (site_url or "").rstrip("/")
    where = (f"Sign in at {site}/ to see it (your notifications are also listed by the API's "
             "notification_list)." if site else
             "Sign in to the data portal to see it (the API's notification_list lists your notifications).")
    signature = f"This message was sent by the Mosu data portal{' at ' + site if site else ''}."
    body = f"{subject}\n\n{where}\n\n-- \n{signature}\n"
    return subject, body


def queue(s: Session, notification_id: str, to_address: str, subject: str, site_url: str | None) -> OutboxMail:
    """Add the e-mail copy of a notification, in the caller's transaction."""
    subject, body = compose(subject, site_url)
    row = OutboxMail(notification_id=notification_id, to_address=to_address, subject=subject, body=body,
                     state=QUEUED, attempts=0, not_before=utcnow())
    s.add(row)
    return row


# -- the sending side (the worker) ---------------------------------------------------------------

@dataclass(frozen=True)
class Claimed:
    """A mail this worker holds: what to send, and which attempt this is."""

    id: str
    to_address: str
    subject: str
    body: str
    attempt: int
    worker: str


def _due(now: dt.datetime):
    """The rows a worker may claim: queued and due, or held under a lease that ran out (its worker
    died while sending; whether that mail left is unknown, so it is sent again)."""
    return or_(and_(OutboxMail.state == QUEUED, OutboxMail.not_before <= now),
               and_(OutboxMail.state == SENDING, OutboxMail.lease_until < now))


def pending(s: Session, now: dt.datetime | None = None) -> bool:
    """Whether any mail is due: a read, so an idle worker never takes the write lock to find out."""
    return s.scalar(select(OutboxMail.id).where(_due(now or utcnow())).limit(1)) is not None


def claim(s: Session, worker: str, lease_seconds: float, now: dt.datetime | None = None) -> Claimed | None:
    """Take the oldest due mail for ``worker``, or None; the caller commits (then sends)."""
    now = now or utcnow()
    query = select(OutboxMail.id).where(_due(now)).order_by(OutboxMail.not_before, OutboxMail.id).limit(5)
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    for mail_id in s.scalars(query).all():
        result = s.execute(
            update(OutboxMail).where(OutboxMail.id == mail_id, _due(now))
            .values(state=SENDING, claimed_by=worker, attempts=OutboxMail.attempts + 1,
                    lease_until=now + dt.timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            row = s.get(OutboxMail, mail_id)
            s.refresh(row)
            return Claimed(row.id, row.to_address, row.subject, row.body, row.attempts, worker)
    return None


def _owned(mail: Claimed) -> tuple:
    """The WHERE clause that says ``mail.worker`` still holds this attempt of the mail."""
    return (OutboxMail.id == mail.id, OutboxMail.state == SENDING, OutboxMail.claimed_by == mail.worker,
            OutboxMail.attempts == mail.attempt)


def mark_sent(s: Session, mail: Claimed, now: dt.datetime | None = None) -> bool:
    """Record that the server accepted the mail; False if the claim was lost meanwhile."""
    result = s.execute(update(OutboxMail).where(*_owned(mail))
                       .values(state=SENT, sent=now or utcnow(), lease_until=None, last_error=None)
                       .execution_options(synchronize_session=False))
    return result.rowcount == 1


def backoff_seconds(attempts: int, base: float = BACKOFF_SECONDS, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """The wait after the ``attempts``-th failed attempt: ``base``, then doubled each time, at most ``cap``."""
    return min(cap, base * 2.0 ** max(0, attempts - 1))


def mark_failed(s: Session, mail: Claimed, error: str, *, permanent: bool = False,
                max_attempts: int = MAX_ATTEMPTS, base: float = BACKOFF_SECONDS,
                now: dt.datetime | None = None) -> str | None:
    """Record a failed attempt: queued again after the back-off, or ``failed`` for good when it was
    the last attempt or the server refused the mail itself (``permanent``). The new state, or None
    if the claim was lost meanwhile."""
    now = now or utcnow()
    give_up = permanent or mail.attempt >= max_attempts
    values: dict = {"state": FAILED if give_up else QUEUED, "lease_until": None,
                    "last_error": error[:ERROR_CHARS]}
    if not give_up:
        values["not_before"] = now + dt.timedelta(seconds=backoff_seconds(mail.attempt, base))
    result = s.execute(update(OutboxMail).where(*_owned(mail)).values(**values)
                       .execution_options(synchronize_session=False))
    return values["state"] if result.rowcount == 1 else None
