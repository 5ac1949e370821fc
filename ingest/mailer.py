"""Sends the e-mail outbox (:mod:`catalog.records.outbox`) over SMTP.

One round claims due mails one at a time (each claim is its own short transaction, and the SMTP
conversation happens outside any transaction, so a slow mail server never holds the catalog's
write lock), sends each over one connection, and records the outcome under the claim. A server
that is down or refuses for now ends the round: the mail waits for its back-off, the others wait
for the next round. A server that refuses one mail for good (5xx for its recipient or its
content) fails that mail alone.

Every socket operation has a timeout; the claim's lease outlasts a whole conversation made of
such operations, so a mail is taken back only from a worker that died. A worker that dies after
the server accepted a mail but before recording it leaves it to be sent again after the lease:
the ``Message-ID`` is the outbox row's, so a mail client folds the two copies.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import logging
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage

from catalog.db.models import utcnow
from catalog.platform import Platform
from catalog.records import outbox

log = logging.getLogger("ingest.mailer")

BATCH = 20  # mails per round at most: a long backlog goes out in rounds, between the worker's other duties
TIMEOUT_SECONDS = 30.0  # each SMTP socket operation (connect, each command, the data)
POLL_SECONDS = 1.0


class _Permanent(Exception):
    """The server refused this mail for good (5xx): retrying would get the same answer."""


@dataclass
class Round:
    """What one round did: outbox ids sent, queued again, failed for good."""

    sent: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def lease_seconds(timeout: float) -> float:
    """Longer than a whole conversation (connect, EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA, the
    message, QUIT: each bounded by ``timeout``), so a live worker never loses its claim."""
    return 12 * timeout + 30


def message(mail: outbox.Claimed, sender: str) -> EmailMessage:
    """The e-mail for an outbox row: plain text; its Message-ID is the row's, stable across retries."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.to_address
    msg["Subject"] = mail.subject
    msg["Date"] = email.utils.formatdate(usegmt=True)
    domain = sender.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = f"<{mail.id}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a notification
    msg.set_content(mail.body)
    return msg


def connect(server: outbox.MailServer, timeout: float) -> smtplib.SMTP:
    """An SMTP connection, TLS as the URL asked (certificates checked), logged in if it names a user."""
    context = ssl.create_default_context()
    if server.security == "ssl":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    else:
        conn = smtplib.SMTP(server.host, server.port, timeout=timeout)
    try:
        conn.ehlo()
        if server.security == "starttls":
            conn.starttls(context=context)  # SMTPNotSupportedError when the server cannot: never in clear
            conn.ehlo()
        if server.username:
            conn.login(server.username, server.password or "")
    except BaseException:
        _close(conn)
        raise
    return conn


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):  # already gone: nothing to tell it
        conn.close()


def _send(conn: smtplib.SMTP, msg: EmailMessage) -> None:
    """Send one message; a refusal of this message itself for good raises :class:`_Permanent`."""
    try:
        conn.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            raise _Permanent(f"recipient refused: {_reply(*next(iter(exc.recipients.values())))}") from exc
        raise
    except smtplib.SMTPDataError as exc:
        if exc.smtp_code >= 500:
            raise _Permanent(f"message refused: {_reply(exc.smtp_code, exc.smtp_error)}") from exc
        raise


def _reply(code: int, text: bytes | str) -> str:
    return f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {_reply(exc.smtp_code, exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"{type(exc).__name__}: " + "; ".join(_reply(*r) for r in exc.recipients.values())
    return f"{type(exc).__name__}: {exc}"


def send_round(platform: Platform, worker: str, *, now: dt.datetime | None = None, limit: int = BATCH,
               timeout: float = TIMEOUT_SECONDS, max_attempts: int = outbox.MAX_ATTEMPTS,
               backoff: float = outbox.BACKOFF_SECONDS) -> Round:
    """Send at most ``limit`` due mails as ``worker``. ``now`` (default: the clock) decides what is
    due and when a retry may come, so a test steps through back-offs without waiting."""
    done = Round()
    settings = platform.settings
    if not settings.smtp_url:
        return done
    server = outbox.mail_server(settings.smtp_url)
    with platform.read() as s:
        if not outbox.pending(s, now or utcnow()):
            return done
    conn: smtplib.SMTP | None = None
    try:
        for _ in range(limit):
            with platform.write.begin() as s:
                mail = outbox.claim(s, worker, lease_seconds(timeout), now or utcnow())
            if mail is None:
                break
            permanent, broken = False, False
            try:
                if conn is None:
                    conn = connect(server, timeout)
                _send(conn, message(mail, settings.mail_from))
                error = None
            except _Permanent as exc:
                error, permanent = str(exc), True
            except Exception as exc:  # noqa: BLE001 - the server or the network: try later
                error, broken = _describe(exc), True
            with platform.write.begin() as s:
                if error is None:
                    if outbox.mark_sent(s, mail, now or utcnow()):
                        done.sent.append(mail.id)
                    else:
                        log.warning("mail %s: sent, but its claim was lost meanwhile", mail.id)
                    continue
                state = outbox.mark_failed(s, mail, error, permanent=permanent, max_attempts=max_attempts,
                                           base=backoff, now=now or utcnow())
            log.warning("mail %s attempt %d to the outbox's server failed (%s): %s", mail.id, mail.attempt,
                        state, error)
            (done.failed if state == outbox.FAILED else done.retried).append(mail.id)
            if broken:  # the server is away or refusing for now: the rest waits for the next round
                _close(conn)
                conn = None
                break
    finally:
        _close(conn)
    return done


def run_mailer(platform: Platform, worker: str, stop: threading.Event) -> None:
    """Send the outbox until ``stop`` is set (one per worker process, beside the ingest threads, so
    a long ingest never delays a mail)."""
    while not stop.is_set():
        busy = False
        try:
            busy = len(send_round(platform, worker).sent) > 0
        except Exception:
            log.warning("could not send the outbox", exc_info=True)
        if not busy:
            stop.wait(max(POLL_SECONDS, platform.settings.worker_poll_seconds))
