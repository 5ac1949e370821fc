"""The frozen context every action receives: who is acting, on which platform."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Callable

from catalog.db.models import User
from catalog.platform import Platform


@dataclass(frozen=True)
class Actor:
    """The caller, reduced to what authorization needs."""

    id: str | None
    name: str
    sysadmin: bool = False
    auditor: bool = False  # site-wide compliance role: reads the audit log, no data by it

    @classmethod
    def of(cls, user: User) -> "Actor":
        return cls(user.id, user.name, bool(user.sysadmin), bool(user.auditor))

    @property
    def role(self) -> str:
        """The site-wide role an audit event names: ``site`` (the local operator), ``sysadmin``,
        ``auditor`` or ``user``; how the actor held a permission on the object is the event's
        ``via`` (its organization role or its grant)."""
        if self.id is None:
            return "site"
        return "sysadmin" if self.sysadmin else "auditor" if self.auditor else "user"

    @classmethod
    def site(cls) -> "Actor":
        """The local operator (the ``mosu`` CLI on the server): acts as sysadmin."""
        return cls(None, "site", True)


@dataclass(frozen=True)
class Context:
    platform: Platform
    actor: Actor | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    client: str = ""  # the client's address, for per-caller limits on anonymous calls and the audit log
    user_agent: str = ""  # the client's User-Agent header, cut to 300 characters, for the audit log
    disconnected: Callable[[], bool] | None = None  # true once the HTTP client has gone away

    @property
    def site_url(self) -> str:
        """Where clients reach this site: the configured URL (``mosu up`` sets it to the listen URL),
        else "" so that links stay relative. Never the request's Host header: a client chooses
        that, and a link built on it would point wherever the client said (issue 10, item 12)."""
        return (self.platform.settings.site_url or "").rstrip("/")

    @property
    def settings(self):
        return self.platform.settings

    @property
    def caller(self) -> str:
        """Who a per-caller limit counts: the user, or the address of an anonymous client."""
        return f"user:{self.actor.id or self.actor.name}" if self.actor else f"address:{self.client}"

    @property
    def role(self) -> str:
        """The caller's site-wide role for the audit log (``anonymous`` without a token)."""
        return self.actor.role if self.actor else "anonymous"

    @property
    def actor_name(self) -> str | None:
        return self.actor.name if self.actor else None
