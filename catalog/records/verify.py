"""Verifying the audit log: the chain, every hash, and every signed checkpoint, in one pass.

:func:`verify_log` is pure: it is handed the events in ``seq`` order (a stream: a million rows are
never held at once), where the chain starts (after a pruning, :class:`~catalog.db.models.AuditPrune`),
the signed tree heads and the public key, and returns the *first* problem as a :class:`Finding`
(``None`` when the log is intact). :func:`verify_platform` feeds it from a running deployment: the
catalog database and the copies of the checkpoints in object storage.

What each tampering looks like, and how it is named (``seq`` is the event the finding is about):

``modified``
    An event whose hash is not the hash of its own fields and previous hash (a field was edited
    without re-hashing it).
``missing``
    No event at a ``seq`` (a deleted row leaves a gap, since the writer assigns ``seq`` without
    gaps), or an event whose previous hash is the hash of no event present (deleted and renumbered).
    Also a checkpoint found in one of its two copies (database, object storage) and not the other.
``reordered``
    An event whose previous hash is the hash of another event present elsewhere (two events swapped,
    or one moved), or a ``seq`` gap whose event is found at another ``seq``.
``inserted``
    An event the chain does not go through: the event after it links to the one before it.
``truncated``
    The log ends before the size of a signed checkpoint; ``seq`` is the first event gone.
``rehashed``
    The chain is self-consistent but the Merkle root over the first ``tree_size`` events is not the
    one a checkpoint signed: events were rewritten and every hash after them recomputed. A signed
    root names a set of events, not which one changed, so ``seq`` is the first event after the last
    checkpoint that still matches (the rewritten event lies between it and the mismatching one).
``bad-signature``
    A checkpoint whose signature does not verify with the public key (``seq`` is its tree size).
``inconsistent``
    Two signed checkpoints that cannot both describe this log (two roots for one size, or an earlier
    head that a later, matching one contradicts), copies of one checkpoint that differ, or a pruning
    whose saved state does not match its checkpoint.

What no verifier can see: events after the last checkpoint removed from the end, or rewritten
from some point on with every later hash recomputed, or forged events appended with correct
hashes — nothing outside the database commits to them yet. Checkpoints are taken at least hourly
(the worker's janitor) and on demand (``mosu audit checkpoint``) to keep that window short.

Checking each checkpoint's root against the root recomputed at its size (the roots of every prefix
come out of one :class:`~catalog.records.merkle.Frontier`) also shows successive checkpoints are
consistent: both are prefixes of the same verified sequence of leaves.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from catalog.records import merkle
from catalog.records.audit import ENVELOPE, GENESIS, event_hash, fields_of
from catalog.records.checkpoints import SignedTreeHead, signature_ok

KINDS = ("modified", "missing", "reordered", "inserted", "truncated", "rehashed", "bad-signature", "inconsistent")


@dataclass(frozen=True)
class Finding:
    """The first thing wrong with the log: the event (``seq``) it is about, what kind, and why."""

    seq: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"event {self.seq}: {self.kind}: {self.message}"


@dataclass
class Report:
    """What a verification saw, and its first finding (``None``: intact)."""

    events: int = 0
    checkpoints: int = 0
    last_checkpoint: int | None = None
    first_seq: int = 1
    finding: Finding | None = None

    def summary(self) -> str:
        if self.finding is not None:
            return f"audit log NOT intact: {self.finding}"
        last = "no checkpoint" if self.last_checkpoint is None else f"last checkpoint at size {self.last_checkpoint}"
        pruned = f" (events before {self.first_seq} pruned)" if self.first_seq > 1 else ""
        return f"audit log intact: {self.events} events, {self.checkpoints} checkpoints, {last}{pruned}"


@dataclass
class _Head:
    head: SignedTreeHead
    signed: bool
    copies: set[str] = field(default_factory=set)


class _Found(Exception):
    def __init__(self, finding: Finding) -> None:
        self.finding = finding


class _Stream:
    """The events with a one-event lookahead, keeping the raw hash of every event seen (32 bytes
    each: 32 MB for a million) so that, once a link is broken, where its target went can be told."""

    def __init__(self, events: Iterable[Any]) -> None:
        self._it = iter(events)
        self._next: Any = None
        self._ended = False
        self.hashes = bytearray()
        self._later: list[Any] | None = None
        self._advance()

    def _advance(self) -> None:
        try:
            self._next = next(self._it)
        except StopIteration:
            self._next, self._ended = None, True

    def __iter__(self) -> Iterator[Any]:
        while not self._ended:
            row = self._next
            self._advance()
            yield row

    def peek(self) -> Any:
        return self._next

    def rest(self) -> list[tuple[int, str, str]]:
        """(seq, prev_hash, hash) of every event not yet read (read now: only after a finding)."""
        if self._later is None:
            self._later = []
            if not self._ended:
                self._later.append(self._next[:3])
                for row in self._it:
                    self._later.append(row[:3])
                self._ended = True
        return self._later

    def seen(self, digest: str) -> bool:
        """Whether ``digest`` is the hash of an event read so far."""
        try:
            raw = bytes.fromhex(digest)
        except ValueError:
            return False
        at = self.hashes.find(raw)
        while at != -1:
            if at % 32 == 0:
                return True
            at = self.hashes.find(raw, at + 1)
        return False


def verify_log(events: Iterable[Any], *, start: Any | None = None, heads: Sequence[SignedTreeHead] = (),
               public_key: Ed25519PublicKey, copies: Mapping[str, Sequence[SignedTreeHead]] | None = None,
               ignore_unpaired: Iterable[SignedTreeHead] = ()) -> Finding | None:
    """The first problem of the log, or ``None`` when it is intact (see the module's docstring)."""
    return check_log(events, start=start, heads=heads, public_key=public_key, copies=copies,
                     ignore_unpaired=ignore_unpaired).finding


def check_log(events: Iterable[Any], *, start: Any | None = None, heads: Sequence[SignedTreeHead] = (),
              public_key: Ed25519PublicKey, copies: Mapping[str, Sequence[SignedTreeHead]] | None = None,
              ignore_unpaired: Iterable[SignedTreeHead] = ()) -> Report:
    """Verify the log and say what was seen: :func:`verify_log` with the counts for a summary line.

    ``events``: rows (or :class:`~catalog.db.models.AuditEvent`) in ``seq`` order, from the first
    one kept. ``start``: the latest pruning (``upto_seq``, ``last_hash``, ``frontier``) or ``None``.
    ``heads``: every signed tree head known. ``copies``: the same heads by where they are kept
    (``{"database": [...], "object storage": [...]}``); a head in one and not the other, or different
    in each, is a finding, except those in ``ignore_unpaired`` (taken while this verification read:
    one copy is written before the other).
    """
    rows = ((e.seq, e.prev_hash, e.hash, e) for e in events)
    return _Verifier(start, heads, public_key, copies, set(ignore_unpaired)).run(
        rows, lambda r: event_hash(r[1], fields_of(r[3])) == r[2])


COLUMNS = ("seq", "prev_hash", "hash", "id", "ts", "actor", "action", "object_type", "object_id", "detail", *ENVELOPE)
"""The columns :func:`row_fields` reads, in this order (by index: attribute access by name costs more
than the rest of checking an event)."""
_ENVELOPE_AT = tuple(enumerate(ENVELOPE, 10))
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def row_fields(row: Sequence[Any], *, text: bool = False) -> dict[str, Any]:
    """:func:`~catalog.records.audit.fields_of` of a row of :data:`COLUMNS`; ``text``: as SQLite
    stores it (the time as text, the detail as JSON text), read without SQLAlchemy's conversions."""
    ts, detail = row[4], row[9]
    if text:
        ts, detail = dt.datetime.fromisoformat(ts), json.loads(detail)
    out = {"id": row[3], "ts": ts.isoformat(), "actor": row[5], "action": row[6], "object_type": row[7],
           "object_id": row[8], "detail": detail}
    for at, name in _ENVELOPE_AT:
        value = row[at]
        if value is not None:
            out[name] = value
    return out


def row_hash_ok(row: Sequence[Any], *, text: bool = False) -> bool:
    """Whether a row of :data:`COLUMNS` matches its hash (:func:`~catalog.records.audit.event_hash`).
    A row whose time or detail cannot even be read (edited into something else) does not."""
    try:
        return hashlib.sha256((row[1] + _canonical(row_fields(row, text=text))).encode()).hexdigest() == row[2]
    except (TypeError, ValueError, AttributeError):
        return False


def _text_hash_ok(row: Sequence[Any]) -> bool:
    return row_hash_ok(row, text=True)


class _Verifier:
    def __init__(self, start: Any | None, heads: Sequence[SignedTreeHead], public_key: Ed25519PublicKey,
                 copies: Mapping[str, Sequence[SignedTreeHead]] | None, ignore: set[SignedTreeHead]) -> None:
        self.start = start
        self.public_key = public_key
        self.by_size: dict[int, list[_Head]] = {}
        for head in heads:
            self._add(head, None)
        self.copy_problems: dict[int, Finding] = {}
        if copies:
            for where, listed in copies.items():
                for head in listed:
                    self._add(head, where)
            self._compare_copies(copies, ignore)
        self.matched = 0 if start is None else int(start.upto_seq)  # the last size whose root matched
        self.pending: tuple[int, int] | None = None  # (size, last matched) of a root that did not match

    def _add(self, head: SignedTreeHead, where: str | None) -> None:
        entries = self.by_size.setdefault(head.tree_size, [])
        for entry in entries:
            if entry.head == head:
                break
        else:
            entry = _Head(head, signature_ok(head, self.public_key))
            entries.append(entry)
        if where:
            entry.copies.add(where)

    def _compare_copies(self, copies: Mapping[str, Sequence[SignedTreeHead]], ignore: set[SignedTreeHead]) -> None:
        places = list(copies)
        found: dict[int, dict[str, SignedTreeHead]] = {}
        for where, listed in copies.items():
            for head in listed:
                found.setdefault(head.tree_size, {})[where] = head
        for size, there in found.items():
            absent = [p for p in places if p not in there]
            if absent:
                if all(h in ignore for h in there.values()):
                    continue
                present = ", ".join(sorted(there))
                self.copy_problems[size] = Finding(
                    size, "missing", f"the checkpoint at tree size {size} is in {present} but not in "
                                     f"{', '.join(absent)}: one copy was removed")
            elif len(set(there.values())) > 1:
                self.copy_problems[size] = Finding(
                    size, "inconsistent", f"the copies of the checkpoint at tree size {size} differ between "
                                          f"{' and '.join(sorted(there))}")

    # -- the pass ---------------------------------------------------------------------------------

    def run(self, events: Iterable[Sequence[Any]], hash_ok: Callable[[Sequence[Any]], bool]) -> Report:
        report = Report(checkpoints=len(self.by_size),
                        last_checkpoint=max(self.by_size) if self.by_size else None)
        try:
            frontier, expected, prev = self._begin(report)
            stream = _Stream(events)
            prev2: str | None = None
            check_at = set(self.by_size) | set(self.copy_problems)
            hashes, append, leaf_hash = stream.hashes, frontier.append, merkle.leaf_hash
            for row in stream:  # a million times: what is looked up once is kept in locals
                if row[0] != expected or row[1] != prev or not hash_ok(row):
                    self._event(row, expected, prev, prev2, stream, hash_ok)
                raw = bytes.fromhex(row[2])
                hashes += raw
                append(leaf_hash(raw))
                if expected in check_at:
                    self._heads_at(expected, frontier.root())
                prev2, prev = prev, row[2]
                expected += 1
            report.events = expected - report.first_seq
            self._end(expected - 1)
        except _Found as found:
            report.finding = found.finding
        return report

    def _begin(self, report: Report) -> tuple[merkle.Frontier, int, str]:
        if self.start is None:
            frontier, upto, last = merkle.Frontier(), 0, GENESIS
        else:
            upto, last = int(self.start.upto_seq), str(self.start.last_hash)
            frontier = merkle.Frontier.load(self.start.frontier or [])
            if frontier.size != upto or (frontier.nodes and frontier.nodes[-1][0] == 1
                                         and frontier.nodes[-1][1] != merkle.event_leaf(last)):
                raise _Found(Finding(upto, "inconsistent", f"the state kept for the events pruned up to {upto} "
                                                           "does not match them"))
        report.first_seq = upto + 1
        for size in sorted(set(self.by_size) | set(self.copy_problems)):
            if size < upto:  # pruned: only the signature and the copies can still be checked
                self._signatures_and_copies(size)
        if upto and not any(h.signed for h in self.by_size.get(upto, [])):
            raise _Found(Finding(upto, "missing", f"no signed checkpoint commits to the events pruned up to {upto}"))
        if upto in self.by_size or upto in self.copy_problems:
            self._heads_at(upto, frontier.root())
        return frontier, upto + 1, last

    def _event(self, row: Sequence[Any], expected: int, prev: str, prev2: str | None, stream: _Stream,
               hash_ok: Callable[[Sequence[Any]], bool]) -> None:
        seq, row_prev = row[0], row[1]
        if seq != expected:
            self._settle()
            if seq < expected:
                raise _Found(Finding(seq, "reordered", f"event {seq} comes after event {expected - 1}"))
            moved = [s for s, p, _ in stream.rest() if p == prev]
            if moved:
                raise _Found(Finding(expected, "reordered", f"no event has seq {expected}; the event that follows "
                                                            f"{expected - 1} in the chain is at seq {moved[0]}"))
            raise _Found(Finding(expected, "missing", f"no event has seq {expected} (the next one is {seq})"))
        nxt = stream.peek()
        links_over = nxt is not None and nxt[1] == prev and nxt[0] == seq + 1
        if not hash_ok(row):
            self._settle()
            if links_over:
                raise _Found(Finding(seq, "inserted", f"event {seq} is not in the chain: event {seq + 1} links "
                                                      f"to event {seq - 1}"))
            raise _Found(Finding(seq, "modified", f"event {seq} does not match its hash: it was changed"))
        if row_prev != prev:
            inserted = prev2 is not None and row_prev == prev2
            # An event inserted right at a checkpoint's size changes that root before its successor shows
            # the broken link: the insertion explains the root, so it is named, not a re-hash.
            if not (inserted and self.pending is not None and self.pending[0] == seq - 1):
                self._settle()
            if inserted:
                raise _Found(Finding(seq - 1, "inserted", f"event {seq - 1} is not in the chain: event {seq} "
                                                          f"links to event {seq - 2}"))
            if stream.seen(row_prev) or any(h == row_prev for _, _, h in stream.rest()):
                raise _Found(Finding(seq, "reordered", f"event {seq} links to an event other than {seq - 1}: "
                                                       "events were swapped or moved"))
            if links_over:
                raise _Found(Finding(seq, "inserted", f"event {seq} is not in the chain: event {seq + 1} links "
                                                      f"to event {seq - 1}"))
            raise _Found(Finding(seq, "missing", f"event {seq} links to an event that is not in the log"))

    def _heads_at(self, size: int, root: bytes) -> None:
        entries = self.by_size.get(size, [])
        signed = [e for e in entries if e.signed]
        matching = [e for e in signed if e.head.root_hash == root.hex()]
        if signed and not matching:
            if self.pending is None:
                self.pending = (size, self.matched)
            return
        if matching:
            if self.pending is not None:
                earlier = self.pending[0]
                raise _Found(Finding(earlier, "inconsistent", f"the checkpoint at tree size {earlier} is signed but "
                                                              f"contradicts the later checkpoint at {size}, which "
                                                              "matches the log"))
            if len(matching) < len(signed):
                raise _Found(Finding(size, "inconsistent", f"two signed checkpoints at tree size {size} have "
                                                           "different roots"))
            self.matched = size
        self._signatures_and_copies(size)

    def _signatures_and_copies(self, size: int) -> None:
        for entry in self.by_size.get(size, []):
            if not entry.signed:
                self._settle()
                where = f" (in {', '.join(sorted(entry.copies))})" if entry.copies else ""
                raise _Found(Finding(size, "bad-signature", f"the checkpoint at tree size {size}{where} does not "
                                                            "verify with the public key"))
        if size in self.copy_problems:
            self._settle()
            raise _Found(self.copy_problems[size])

    def _settle(self) -> None:
        """A root that did not match, with no later checkpoint to tell otherwise: events were re-hashed."""
        if self.pending is not None:
            size, matched = self.pending
            since = f"the checkpoint at {matched} still matches" if matched else "no earlier checkpoint matches"
            raise _Found(Finding(matched + 1, "rehashed", f"the events up to {size} are not those its signed "
                                                          f"checkpoint commits to ({since}): the log was rewritten "
                                                          f"from event {matched + 1} on and re-hashed"))

    def _end(self, last: int) -> None:
        beyond = sorted(s for s in set(self.by_size) | set(self.copy_problems) if s > last)
        for size in beyond:
            if any(e.signed for e in self.by_size.get(size, [])):
                self._settle()
                raise _Found(Finding(last + 1, "truncated", f"the log ends at event {last}, but a signed checkpoint "
                                                            f"covers {size} events"))
        self._settle()
        for size in beyond:
            self._signatures_and_copies(size)


PARALLEL_OVER = 200_000
"""Events above which a SQLite log's hashes are checked by two processes (starting one costs ~1 s)."""
MAIN_SHARE = 0.37
"""The share of the hashes this process checks when another checks the rest: it also reads every
row and makes the one pass over links and roots (balanced by measurement on 2 cores)."""


def verify_platform(platform: Any, *, clock: Callable[[], float] = time.time, settle_seconds: float = 60.0) -> Report:
    """Verify a deployment's log: its events and prunings in the catalog database, its checkpoints
    there and in object storage, with the site's public key. The database is read first, in one
    snapshot, then object storage; a checkpoint found only in object storage and taken less than
    ``settle_seconds`` before (its database row may not be committed yet) is not held against the log."""
    from catalog.records import checkpoints

    started_ms = int(clock() * 1000)
    try:
        key = checkpoints.load_public_key(platform.settings)
    except FileNotFoundError:  # never checkpointed here: a head found anyway cannot be the site's
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate().public_key()
    with platform.read() as s:
        s.connection()  # the snapshot starts here, before object storage is listed
        stored = checkpoints.stored_heads(platform)
        fresh = [h for h in stored if h.timestamp >= started_ms - settle_seconds * 1000]
        return verify_session(s, public_key=key, stored=stored, ignore_unpaired=fresh)


def run_detail(report: Report, seconds: float) -> dict[str, Any]:
    """Pure: the detail of the ``audit_verified`` event of a run that gave ``report`` in ``seconds``
    (the fields :mod:`catalog.records.events` defines). A finding stops the pass, so ``findings`` is
    0 or 1 and the events checked are those before the event it names."""
    found = report.finding
    detail: dict[str, Any] = {"intact": found is None, "findings": 0 if found is None else 1,
                              "first_seq": report.first_seq, "checkpoints": report.checkpoints,
                              "seconds": round(seconds, 3)}
    if found is None:
        detail["events"] = report.events
        detail["last_seq"] = report.first_seq + report.events - 1
    else:
        detail["events"] = max(found.seq - report.first_seq, 0)
        detail["first_finding"] = {"seq": found.seq, "kind": found.kind, "message": found.message}
    if report.last_checkpoint is not None:
        detail["last_checkpoint"] = report.last_checkpoint
    return detail


def record_run(platform: Any, report: Report, seconds: float, who: Any = "site") -> str:
    """Record a run of ``mosu audit verify`` as an ``audit_verified`` event and return its hash, so
    that the compliance dashboard can say when the log was last checked and what was found. Written
    after the check, by the chain's ordinary writer (:func:`catalog.records.audit.record`): it comes
    after every event the check read, and the next run checks it as any other. A log found tampered
    gets its event too (``intact`` false): that the tampering was seen, and when, is the record a
    compliance officer needs; the event links to the last event present, and the finding stays."""
    from catalog.records import audit

    with platform.write.begin() as s:
        return audit.record(s, who, "audit_verified", "audit_log", None, run_detail(report, seconds))


def verify_session(session: Any, *, public_key: Ed25519PublicKey, stored: Sequence[SignedTreeHead],
                   ignore_unpaired: Iterable[SignedTreeHead] = (),
                   hash_ok: Callable[[Sequence[Any]], bool] | None = None,
                   parallel_over: int = PARALLEL_OVER) -> Report:
    """Verify the log in ``session``'s database against the checkpoints there and ``stored`` (the
    copies in object storage). SQLite's rows are read through its own cursor, as text: a million
    rows cost a third less than through SQLAlchemy's conversions. ``hash_ok`` replaces the check of
    one row of :data:`COLUMNS` against its hash (:func:`row_hash_ok`, with ``text=True`` on SQLite):
    it is a pure function of the row, so a caller verifying many copies of one log may memoize it.
    A SQLite log of more than ``parallel_over`` events is checked in two halves at once
    (:func:`_verify_halves`)."""
    from sqlalchemy import select

    from catalog.db.models import AuditEvent, AuditPrune
    from catalog.records import checkpoints

    start = session.scalars(select(AuditPrune).order_by(AuditPrune.upto_seq.desc()).limit(1)).first()
    in_db = checkpoints.database_heads(session)
    verifier = _Verifier(start, [], public_key, {"database": in_db, "object storage": stored}, set(ignore_unpaired))
    upto = start.upto_seq if start is not None else 0
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        database = conn.engine.url.database
        first, last = conn.exec_driver_sql("SELECT min(seq), max(seq) FROM audit_events").one()
        if hash_ok is None and database not in (None, "", ":memory:") and last is not None \
                and last - first >= parallel_over and (os.cpu_count() or 1) > 1:
            return _verify_halves(verifier, conn, upto, database, first + int((last - first) * MAIN_SHARE) + 1)
        return verifier.run(_sqlite_rows(conn, upto), hash_ok or _text_hash_ok)
    table = AuditEvent.__table__
    query = select(*(table.c[name] for name in COLUMNS)).where(table.c.seq > upto).order_by(table.c.seq)
    return verifier.run(conn.execute(query, execution_options={"yield_per": 10_000}), hash_ok or row_hash_ok)


def _sqlite_rows(conn: Any, upto: int, light_from: int | None = None) -> Iterator[tuple]:
    """The rows after ``upto``; from ``light_from`` on only (seq, prev_hash, hash), for events whose
    hashes another process checks."""
    end = light_from if light_from is not None else 2**62
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE seq > ? AND seq < ? ORDER BY seq",
                       (upto, end))
        while batch := cursor.fetchmany(10_000):
            yield from batch
        if light_from is not None:
            cursor.execute("SELECT seq, prev_hash, hash FROM audit_events WHERE seq >= ? AND seq > ? ORDER BY seq",
                           (light_from, upto))
            while batch := cursor.fetchmany(10_000):
                yield from batch
    finally:
        cursor.close()



def _verify_halves(verifier: _Verifier, conn: Any, upto: int, database: str, split: int) -> Report:
    """Check the hashes of the events from ``split`` on in another process while this one checks
    those before it and every link, gap and root: recomputing the hashes is most of the work, and
    it needs no order. This process takes the other's answer (the first event from ``split`` on
    that does not match its hash, if any) when its pass gets there; a row after that one is never
    looked at, since the pass stops at the first finding."""
    import concurrent.futures as cf
    import multiprocessing

    with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        later = pool.submit(first_bad_hash, database, split)

        def hash_ok(row: Sequence[Any]) -> bool:
            if row[0] < split:
                return row_hash_ok(row, text=True)
            return row[0] != later.result()

        return verifier.run(_sqlite_rows(conn, upto, light_from=split), hash_ok)


def first_bad_hash(database: str, first: int) -> int | None:
    """The first event from seq ``first`` on, in the SQLite file ``database``, that does not match
    its hash (run in a process of its own by :func:`_verify_halves`)."""
    import sqlite3

    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        cursor = db.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE seq >= ? ORDER BY seq", (first,))
        while batch := cursor.fetchmany(10_000):
            for row in batch:
                if not row_hash_ok(row, text=True):
                    return row[0]
        return None
    finally:
        db.close()
