"""The tamper campaign of issue 13: whatever is done to the audit log's rows, verification says so,
naming the first bad event and what is wrong with it.

A log of 10,000 events is built through real actions (in-process, on a real SQLite catalog and
a SeaweedFS bucket: a researcher's ``datastore_search`` pages of a published resource, editors'
``package_patch`` and ``notification_mark_read``, from two processes at once as a site's callers
would), with signed checkpoints taken along the way and at the end (kept in the database and
object storage). Then 1,000 random single mutations are applied straight to the database, each
to a fresh copy of its file, and :func:`catalog.records.verify.verify_session` (what ``mosu
audit verify`` runs) must report each one at the event and with the kind a reader would name:

- a field of one event edited (every column, the hashes too) → that event, ``modified``;
- an event deleted → ``missing`` at its seq (the last one: ``truncated``, a checkpoint covers it);
- an event moved to another seq → ``reordered`` at its old seq;
- two events swapped → ``reordered`` at the first;
- a forged event inserted (later ones renumbered), with a correct or a wrong hash → ``inserted``;
- the tail cut → ``truncated`` at the first event gone;
- an event rewritten (or one inserted) and every hash after it recomputed, or the whole table
  replaced by a re-hashed copy → ``rehashed``, at the first event after the last checkpoint that
  still matches (a signed root commits to a set of events, not to which one changed);
- checkpoint rows deleted → ``missing`` at the smallest (its copy in object storage remains);
  a checkpoint row edited or forged → ``bad-signature``.
The untouched log (and its copy) verifies intact. The ``mosu audit`` commands are run as a
process on a real data directory for their exit statuses and messages, and the worker's janitor
is seen taking a checkpoint by itself.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, func, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from catalog.access.context import Actor, Context
from catalog.actions import call
from catalog.core import keys
from catalog.core.settings import Settings
from catalog.db.models import AuditCheckpoint, AuditEvent, User
from catalog.platform import Platform
from catalog.records import checkpoints, verify
from catalog.records.audit import ENVELOPE, GENESIS
from catalog.versions.uploads import Upload
from ingest.worker import Worker, run_janitor
from tests.conftest import MOSU, clean_env, s3_settings

EVENTS = 10_000
MUTATIONS = 1_000
CSV = b"id,city,population\n1,Oslo,709037\n2,Bergen,291940\n3,Trondheim,212660\n"
PAST = 7200.0  # checkpoints are taken "two hours ago": none is fresh enough to be still settling


def _past() -> float:
    return time.time() - PAST


def _contexts(platform: Platform, names: list[str]) -> list[Context]:
    with platform.read() as s:
        users = {u.name: u for u in s.scalars(select(User).where(User.name.in_(names)))}
    return [Context(platform=platform, actor=Actor.of(users[n]), client=f"192.0.2.{i + 10}",
                    user_agent=f"ckanapi/4.7 tamper-{i}") for i, n in enumerate(names)]


def make_events(settings: Settings, names: list[str], resource_id: str, package: str, calls: int,
                seed: int) -> int:
    """``calls`` actions by the users ``names`` (run in a process of its own): a mix of reads and changes."""
    platform = Platform.open(settings)
    try:
        ctxs, rnd = _contexts(platform, names), random.Random(seed)
        for i in range(calls):
            ctx = rnd.choice(ctxs)
            pick = rnd.random()
            if pick < 0.2:
                call(ctx, "datastore_search", {"resource_id": resource_id, "limit": rnd.randint(1, 3),
                                               "offset": rnd.randint(0, 2)})
            elif pick < 0.25:
                call(ctxs[0], "package_patch", {"id": package, "notes": f"note {seed}-{i} {'é' * (i % 3)}"})
            else:
                call(ctx, "notification_mark_read", {"all": True})
        return calls
    finally:
        platform.close()


def _count(platform: Platform) -> int:
    with platform.read() as s:
        return s.scalar(select(func.max(AuditEvent.seq))) or 0


@pytest.fixture(scope="module")
def log(s3, tmp_path_factory):
    """A 10,000-event log made through actions, checkpointed, and a clean copy of its database file."""
    work = tmp_path_factory.mktemp("tamper")
    settings = s3_settings(s3, work / "data")
    platform = Platform.open(settings)
    platform.store.ensure_bucket()
    site = Context(platform=platform, actor=Actor.site())
    names = ["tamper-editor", "tamper-researcher", "tamper-steward"]
    for name in names:
        call(site, "user_create", {"name": name, "email": f"{name}@example.org", "password": "tamper-password",
                                   "sysadmin": name == "tamper-editor"})
    editor = _contexts(platform, names[:1])[0]
    call(editor, "organization_create", {"name": "tamper-org"})
    package = call(editor, "package_create", {"name": "tamper-ds", "owner_org": "tamper-org"})["id"]
    resource = call(editor, "resource_create", {"package_id": "tamper-ds", "name": "cities",
                                                "upload": Upload(io.BytesIO(CSV), "cities.csv", "text/csv")})["id"]
    while Worker(platform).run_once():
        pass
    sizes = []
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        for round_ in range(4):  # a checkpoint after each quarter, the last one over every event
            missing = EVENTS * (round_ + 1) // 4 - _count(platform)
            list(pool.map(make_events, [settings] * 2, [names] * 2, [resource] * 2, [package] * 2,
                          [missing // 2, missing - missing // 2], [round_ * 2, round_ * 2 + 1]))
            sizes.append(checkpoints.take(platform, clock=_past).tree_size)
    assert sizes[-1] == _count(platform) >= EVENTS
    assert len(set(sizes)) == 4
    with platform.read() as s:
        actions = dict(s.execute(select(AuditEvent.action, func.count()).group_by(AuditEvent.action)).all())
    changes = sum(n for name, n in actions.items() if name.startswith("package_") and name != "package_create")
    assert actions["datastore_search"] > EVENTS // 8 and changes > EVENTS // 30, actions
    stored = checkpoints.stored_heads(platform)
    key = checkpoints.load_public_key(settings)
    db_file = settings.data_dir / "catalog.sqlite"
    platform.close()
    with sqlite3.connect(db_file) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pristine = work / "pristine.sqlite"
    shutil.copyfile(db_file, pristine)
    with sqlite3.connect(pristine) as conn:
        # The log and its checkpoints are all verify reads; the rest of the catalog (activity snapshots,
        # datasets) and the reports' indexes only made each of the thousand copies and mutations slower.
        # Verification reads by seq, the primary key; the unique index on id stays.
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix_audit_%'"
                                    ).fetchall():
            conn.execute(f'DROP INDEX "{name}"')
        keep = {"audit_events", "audit_checkpoints", "audit_prunes"}
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                                    ).fetchall():
            if name not in keep:
                conn.execute(f'DROP TABLE "{name}"')
        conn.commit()
        conn.execute("VACUUM")
    yield {"pristine": pristine, "work": work / "copy.sqlite", "stored": stored, "key": key, "sizes": sizes,
           "n": sizes[-1], "settings": settings, "names": names}


def _verify(path: Path, key, stored, hash_ok=None) -> verify.Report:
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with Session(engine) as s:
            return verify.verify_session(s, public_key=key, stored=stored, hash_ok=hash_ok)
    finally:
        engine.dispose()


# -- the mutations: each changes a copy of the database and says what verify must report -----------

COLUMNS = verify.COLUMNS
TEXT_COLUMNS = [c for c in COLUMNS if c not in ("seq", "ts", "detail")]


def _rows(db: sqlite3.Connection, where: str = "", args: tuple = ()) -> list[list]:
    return [list(r) for r in db.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_events {where} ORDER BY seq", args)]


def _rehash(rows: list[list], prev: str) -> None:
    """Recompute every hash of ``rows`` (in order) from ``prev``: what a forger with write access does."""
    for row in rows:
        row[1] = prev
        fields = verify.row_fields(row, text=True)
        row[2] = hashlib.sha256((prev + json.dumps(fields, sort_keys=True, separators=(",", ":"),
                                                   default=str)).encode()).hexdigest()
        prev = row[2]


def _put(db: sqlite3.Connection, rows: list[list]) -> None:
    db.executemany(f"INSERT INTO audit_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                   rows)


def _shift(db: sqlite3.Connection, first: int, by: int) -> None:
    """Renumber the events from ``first`` on by ``by`` (in two steps: seq is the primary key)."""
    db.execute("UPDATE audit_events SET seq = -(seq + ?) WHERE seq >= ?", (by, first))
    db.execute("UPDATE audit_events SET seq = -seq WHERE seq < 0")


def _prev_of(db: sqlite3.Connection, seq: int) -> str:
    row = db.execute("SELECT hash FROM audit_events WHERE seq = ?", (seq - 1,)).fetchone()
    return row[0] if row else GENESIS


def _rehashed_from(k: int, new_length: int, sizes: list[int]) -> tuple[int, str]:
    """What verify names when the events from ``k`` on were rewritten and re-hashed."""
    matched = max([c for c in sizes if c < k], default=0)
    first = min(c for c in sizes if c >= k)
    return (matched + 1, "rehashed") if first <= new_length else (new_length + 1, "truncated")


def _changed(column: str, value, rnd: random.Random):
    if column in ("hash", "prev_hash"):
        return hashlib.sha256(f"{value}{rnd.random()}".encode()).hexdigest()
    if column == "ts":
        when = dt.datetime.fromisoformat(value) + dt.timedelta(microseconds=rnd.choice([1, -1, 10**6]))
        return when.isoformat(sep=" ", timespec="microseconds")
    if column == "detail":
        detail = json.loads(value)
        if isinstance(detail, dict) and detail:
            name = rnd.choice(sorted(detail))
            detail[name] = (detail[name] + 1) if isinstance(detail[name], int) and not isinstance(
                detail[name], bool) else f"{detail[name]}x"
        else:
            detail = {"added": 1}
        return json.dumps(detail)
    if value is None:
        return "forged"
    return rnd.choice([None, value + "x", value[:-1] or "y"]) if column in ENVELOPE else value + "x"


def m_edit(db, n, sizes, rnd):
    k = rnd.randint(1, n)
    column = rnd.choice(TEXT_COLUMNS + ["ts", "detail", "detail", "hash", "prev_hash"])
    value = db.execute(f"SELECT {column} FROM audit_events WHERE seq = ?", (k,)).fetchone()[0]
    db.execute(f"UPDATE audit_events SET {column} = ? WHERE seq = ?", (_changed(column, value, rnd), k))
    return k, "modified"


def m_delete(db, n, sizes, rnd):
    k = rnd.randint(1, n)
    db.execute("DELETE FROM audit_events WHERE seq = ?", (k,))
    return (k, "missing") if k < n else (n, "truncated")


def m_move(db, n, sizes, rnd):
    k = rnd.randint(1, n)
    db.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", (n + rnd.randint(1, 50), k))
    return k, "reordered"


def m_swap(db, n, sizes, rnd):
    i, j = sorted(rnd.sample(range(1, n + 1), 2)) if rnd.random() < 0.7 else (lambda a: (a, a + 1))(
        rnd.randint(1, n - 1))
    a, b = _rows(db, "WHERE seq IN (?, ?)", (i, j))
    db.execute("DELETE FROM audit_events WHERE seq IN (?, ?)", (i, j))
    a[0], b[0] = j, i
    _put(db, [a, b])
    return i, "reordered"


def m_insert(db, n, sizes, rnd):
    k = rnd.randint(1, n)
    forged = _rows(db, "WHERE seq = ?", (rnd.randint(1, n),))[0]
    forged[0], forged[3] = k, str(uuid.uuid4())
    forged[5] = "someone-else"
    _rehash([forged], _prev_of(db, k))
    if rnd.random() < 0.3:
        forged[2] = hashlib.sha256(b"not its hash").hexdigest()
    _shift(db, k, 1)
    _put(db, [forged])
    return k, "inserted"


def m_truncate(db, n, sizes, rnd):
    t = rnd.randint(0, n - 1)
    db.execute("DELETE FROM audit_events WHERE seq > ?", (t,))
    return t + 1, "truncated"


def m_rewrite_after(db, n, sizes, rnd):
    k = rnd.randint(1, n)
    rows = _rows(db, "WHERE seq >= ?", (k,))
    new_length = n
    if rnd.random() < 0.25:  # a forged event slipped in, everything after it re-hashed
        forged = [*rows[0]]
        forged[3], forged[5] = str(uuid.uuid4()), "someone-else"
        rows.insert(0, forged)
        for seq, row in enumerate(rows, k):
            row[0] = seq
        new_length = n + 1
    else:
        rows[0][5] = (rows[0][5] or "") + "-rewritten"
    _rehash(rows, _prev_of(db, k))
    db.execute("DELETE FROM audit_events WHERE seq >= ?", (k,))
    _put(db, rows)
    return _rehashed_from(k, new_length, sizes)


def m_replace_table(db, n, sizes, rnd):
    rows = _rows(db)
    mode = rnd.choice(["every", "one", "drop"])
    if mode == "every":  # every event's address rewritten
        for row in rows:
            row[COLUMNS.index("client")] = "198.51.100.7"
        k = 1
    elif mode == "one":
        k = rnd.randint(1, n)
        rows[k - 1][COLUMNS.index("outcome")] = "refused"
    else:  # events dropped and the rest renumbered
        k = rnd.randint(1, n)
        del rows[k - 1: k - 1 + rnd.randint(1, 5)]
        for seq, row in enumerate(rows, 1):
            row[0] = seq
    _rehash(rows, GENESIS)
    db.execute("DELETE FROM audit_events")
    _put(db, rows)
    return _rehashed_from(k, len(rows), sizes)


def m_delete_checkpoints(db, n, sizes, rnd):
    gone = rnd.sample(sizes, rnd.randint(1, len(sizes)))
    db.executemany("DELETE FROM audit_checkpoints WHERE tree_size = ?", [(s,) for s in gone])
    return min(gone), "missing"


def m_edit_checkpoint(db, n, sizes, rnd):
    size = rnd.choice(sizes)
    column = rnd.choice(["root_hash", "timestamp", "signature", "key_id"])
    if column == "timestamp":
        db.execute("UPDATE audit_checkpoints SET timestamp = timestamp + 1 WHERE tree_size = ?", (size,))
    else:
        db.execute(f"UPDATE audit_checkpoints SET {column} = ? WHERE tree_size = ?",
                   (hashlib.sha256(rnd.randbytes(8)).hexdigest() * (2 if column == "signature" else 1), size))
    return size, "bad-signature"


def m_forge_checkpoint(db, n, sizes, rnd):
    size = rnd.choice([s for s in range(1, n + 100) if s not in sizes])
    db.execute("INSERT INTO audit_checkpoints (tree_size, root_hash, timestamp, key_id, signature) "
               "VALUES (?, ?, ?, ?, ?)", (size, hashlib.sha256(b"forged").hexdigest(), int(time.time() * 1000),
                                          "0" * 64, "0" * 128))
    return size, "bad-signature"


MIX = [(m_edit, 25), (m_delete, 12), (m_move, 5), (m_swap, 12), (m_insert, 12), (m_truncate, 8),
       (m_rewrite_after, 12), (m_replace_table, 4), (m_delete_checkpoints, 5), (m_edit_checkpoint, 3),
       (m_forge_checkpoint, 2)]


def _fresh_copy(pristine: Path, work: Path) -> Path:
    for extra in (Path(f"{work}-wal"), Path(f"{work}-shm")):
        extra.unlink(missing_ok=True)
    shutil.copyfile(pristine, work)
    return work


def test_the_untouched_log_verifies_intact(log):
    report = _verify(_fresh_copy(log["pristine"], log["work"]), log["key"], log["stored"])
    assert report.finding is None, report.summary()
    assert (report.events, report.checkpoints, report.last_checkpoint) == (log["n"], 4, log["n"])
    assert report.summary() == f"audit log intact: {log['n']} events, 4 checkpoints, last checkpoint at size {log['n']}"


def test_an_event_inserted_right_at_a_checkpoint_is_named_inserted(log):
    """At a checkpoint's size the inserted event changes the signed root before the next event shows
    the broken link (seed 3071504027 of the campaign named it rehashed at the checkpoint before)."""
    for k in log["sizes"]:
        path = _fresh_copy(log["pristine"], log["work"])
        db = sqlite3.connect(path)
        try:
            forged = _rows(db, "WHERE seq = ?", (1,))[0]
            forged[0], forged[3], forged[5] = k, str(uuid.uuid4()), "someone-else"
            _rehash([forged], _prev_of(db, k))  # a good hash, linked to the event before it
            _shift(db, k, 1)
            _put(db, [forged])
            db.commit()
        finally:
            db.close()
        report = _verify(path, log["key"], log["stored"])
        assert (report.finding.seq, report.finding.kind) == (k, "inserted"), (k, str(report.finding))


def campaign(pristine: Path, work: Path, public_pem: bytes, stored: list, n: int, sizes: list[int], seed: str,
             mutations: int) -> tuple[list[str], dict[str, int]]:
    """Apply ``mutations`` random mutations, each to a fresh copy of ``pristine`` (run in a process of
    its own), and say which were misnamed. Each row's check against its hash is memoized by the
    row's whole content: a pure function, so a row seen before (unchanged by this copy's mutation)
    is known, and every row a mutation made is checked afresh."""
    rnd, key = random.Random(seed), checkpoints.load_public(public_pem)
    functions, weights = zip(*MIX)
    known: dict[tuple, bool] = {}

    def hash_ok(row) -> bool:
        ok = known.get(row)
        if ok is None:
            ok = known[row] = verify.row_hash_ok(row, text=True)
        return ok

    wrong, seen = [], {}
    for i in range(mutations):
        mutate = rnd.choices(functions, weights)[0]
        path = _fresh_copy(pristine, work)
        db = sqlite3.connect(path)
        db.execute("PRAGMA synchronous = OFF")  # a scratch copy: no need to wait for the disk
        try:
            expected = mutate(db, n, sizes, rnd)
            db.commit()
        finally:
            db.close()
        report = _verify(path, key, stored, hash_ok)
        got = (report.finding.seq, report.finding.kind) if report.finding else None
        seen[mutate.__name__] = seen.get(mutate.__name__, 0) + 1
        if got != expected:
            wrong.append(f"{seed}#{i} {mutate.__name__}: expected {expected}, got {report.finding}")
    return wrong, seen


def test_every_one_of_a_thousand_mutations_is_found_at_the_right_event(log):
    seed = random.randrange(2**32)
    parts = 2
    pem = checkpoints.public_pem(log["key"])
    with ProcessPoolExecutor(parts, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(campaign, [log["pristine"]] * parts, [log["work"].with_suffix(f".{p}") for p in
                                                                      range(parts)],
                                [pem] * parts, [log["stored"]] * parts, [log["n"]] * parts, [log["sizes"]] * parts,
                                [f"{seed}-{p}" for p in range(parts)], [MUTATIONS // parts] * parts))
    wrong = [w for part, _ in results for w in part]
    seen: dict[str, int] = {}
    for _, counts in results:
        for name, count in counts.items():
            seen[name] = seen.get(name, 0) + count
    assert not wrong, f"seed {seed}: {len(wrong)} of {MUTATIONS} misnamed:\n" + "\n".join(wrong[:30])
    assert sum(seen.values()) == MUTATIONS and set(seen) == {f.__name__ for f, _ in MIX}, seen


# -- the commands, the janitor and the copies in object storage, on small real logs ---------------

def _small_log(platform: Platform, users: int = 4) -> int:
    site = Context(platform=platform, actor=Actor.site())
    for i in range(users):
        call(site, "user_create", {"name": f"small-{i}-{uuid.uuid4().hex[:6]}", "email": f"s{i}@example.org"})
    return _count(platform)


def test_mosu_audit_commands_exit_status_and_messages(s3, tmp_path):
    settings = s3_settings(s3, tmp_path / "data")
    platform = Platform.open(settings)
    platform.store.ensure_bucket()
    n = _small_log(platform, 5)
    platform.close()
    env = {**clean_env(), **{k: v for k, v in settings.to_env().items() if k != "MOSU_DATA_DIR"}}

    def mosu(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*MOSU, "audit", *args, "--data-dir", str(settings.data_dir)], env=env,
                              capture_output=True, text=True, timeout=120)

    first = mosu("verify")
    assert (first.returncode, first.stdout.strip()) == (0, f"audit log intact: {n} events, 0 checkpoints, "
                                                            "no checkpoint"), first.stderr
    n += 1  # each run leaves its audit_verified event, after the events it checked
    taken = mosu("checkpoint")
    assert taken.returncode == 0, taken.stderr
    head = checkpoints.SignedTreeHead.from_json(json.loads(taken.stdout))
    assert head.tree_size == n
    pem = mosu("public-key")
    assert pem.returncode == 0 and pem.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert checkpoints.signature_ok(head, checkpoints.load_public(pem.stdout.encode()))
    intact = mosu("verify")
    assert (intact.returncode, intact.stdout.strip()) == (
        0, f"audit log intact: {n} events, 1 checkpoints, last checkpoint at size {n}"), intact.stderr
    n += 1
    again = mosu("checkpoint")  # one new event, the last run's: a head over it
    assert checkpoints.SignedTreeHead.from_json(json.loads(again.stdout)).tree_size == n
    same = mosu("checkpoint")  # nothing new: the same head
    assert same.stdout == again.stdout

    db_file = settings.data_dir / "catalog.sqlite"
    kept = tmp_path / "kept.sqlite"
    with sqlite3.connect(db_file) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(db_file, kept)
    edit = sqlite3.connect(db_file)
    with edit:
        edit.execute("UPDATE audit_events SET actor = 'nobody' WHERE seq = 2")
    edit.close()  # no connection left open on the file the copy below replaces
    edited = mosu("verify")
    assert edited.returncode == 2 and edited.stdout == ""
    assert edited.stderr.startswith("mosu: audit log NOT intact: event 2: modified: "), edited.stderr

    for written in (db_file.with_name(db_file.name + "-wal"), db_file.with_name(db_file.name + "-shm")):
        written.unlink(missing_ok=True)  # that run recorded its event: it goes with the edited file
    shutil.copyfile(kept, db_file)
    with sqlite3.connect(db_file) as db:
        db.execute("DELETE FROM audit_events WHERE seq > ?", (n - 2,))
        db.execute("DELETE FROM audit_checkpoints")  # its copy in object storage still says n
    cut = mosu("verify")
    assert cut.returncode == 2 and f"event {n - 1}: truncated: " in cut.stderr, cut.stderr
    refused = mosu("checkpoint")  # a log that no longer extends its last head is not signed again
    assert refused.returncode == 1 and refused.stdout == ""
    assert "covers more" in refused.stderr, refused.stderr


def test_the_janitor_takes_a_checkpoint_when_one_is_due(platform):
    n = _small_log(platform)
    stop = threading.Event()
    janitor = threading.Thread(target=run_janitor, args=(platform, stop), daemon=True)
    janitor.start()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            with platform.read() as s:
                rows = s.scalars(select(AuditCheckpoint)).all()
            if rows:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        janitor.join(30)
    assert [r.tree_size for r in rows] == [n]
    head = checkpoints.heads(platform)
    assert [h.tree_size for h in head] == [n]  # the same head in the database and object storage
    assert verify.verify_platform(platform).finding is None
    taken = head[0].timestamp / 1000
    assert not checkpoints.due(platform, 3600, clock=lambda: taken + 3599)
    assert checkpoints.due(platform, 3600, clock=lambda: taken + 3600)


def test_each_copy_of_a_checkpoint_is_checked_against_the_other(platform):
    n = _small_log(platform)
    head = checkpoints.take(platform)
    assert verify.verify_platform(platform).finding is None
    # its database row removed, just taken: it may be a checkpoint being written (object first),
    # not held against the log until settle_seconds have passed
    with platform.write.begin() as s:
        s.execute(delete(AuditCheckpoint))
    assert verify.verify_platform(platform).finding is None
    later = verify.verify_platform(platform, clock=lambda: head.timestamp / 1000 + 61).finding
    assert (later.seq, later.kind) == (n, "missing") and "object storage but not in database" in later.message
    # the object removed instead: no settling for a row whose object is gone
    with platform.write.begin() as s:
        s.add(AuditCheckpoint(**{k: v for k, v in head.to_json().items() if k != "version"}))
    platform.store.remove(keys.audit_checkpoint(n))
    found = verify.verify_platform(platform).finding
    assert (found.seq, found.kind) == (n, "missing") and "database but not in object storage" in found.message
    # a different head planted in object storage
    platform.store.put_stream(keys.audit_checkpoint(n), io.BytesIO(checkpoints.dumps(
        checkpoints.SignedTreeHead(n, "00" * 32, head.timestamp, head.key_id, head.signature))))
    found = verify.verify_platform(platform).finding
    assert (found.seq, found.kind) == (n, "bad-signature") and "object storage" in found.message


# -- verify_log alone (pure): what needs a signing key or a pruning to show ------------------------

class _Event:
    def __init__(self, seq: int, prev: str) -> None:
        from catalog.records.audit import event_hash, fields_of

        self.seq, self.prev_hash = seq, prev
        self.id, self.ts, self.actor, self.action = str(uuid.UUID(int=seq)), dt.datetime(2026, 1, 1, 0, 0, seq % 60), \
            f"user-{seq % 3}", "datastore_search"
        self.object_type, self.object_id, self.detail = "resource", "r1", {"rows": seq}
        self.hash = event_hash(prev, fields_of(self))


def _chain(n: int) -> list[_Event]:
    events, prev = [], GENESIS
    for seq in range(1, n + 1):
        events.append(_Event(seq, prev))
        prev = events[-1].hash
    return events


def _head(key, events: list[_Event], size: int, ts: int = 1) -> checkpoints.SignedTreeHead:
    from catalog.records import merkle

    return checkpoints.sign(key, size, merkle.root([merkle.event_leaf(e.hash) for e in events[:size]]), ts)


def test_verify_log_signed_heads_that_contradict_each_other_and_prunings():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from catalog.records import merkle

    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    pub, events = key.public_key(), _chain(40)
    heads = [_head(key, events, 10), _head(key, events, 25), _head(key, events, 40)]
    assert verify.verify_log(events, heads=heads, public_key=pub) is None
    # a head signed by another key: bad-signature at its size, though its root is right
    found = verify.verify_log(events, heads=[heads[0], _head(other, events, 25)], public_key=pub)
    assert (found.seq, found.kind) == (25, "bad-signature")
    # the site's key signed a root at 10 that the log (vouched for by the head at 25) contradicts
    forged = _chain(40)
    forged[3].detail = {"rows": -1}
    from catalog.records.audit import event_hash, fields_of

    prev = forged[2].hash
    for e in forged[3:]:
        e.prev_hash, e.hash = prev, event_hash(prev, fields_of(e))
        prev = e.hash
    split = [_head(key, forged, 10), heads[1]]
    found = verify.verify_log(events, heads=split, public_key=pub)
    assert (found.seq, found.kind) == (10, "inconsistent")
    # two signed roots for one size
    found = verify.verify_log(events, heads=[heads[0], _head(key, forged, 10, ts=2)], public_key=pub)
    assert (found.seq, found.kind) == (10, "inconsistent")
    # the forged log against the true heads: re-hashed from event 1 (nothing before the head at 10 matches)
    found = verify.verify_log(forged, heads=heads, public_key=pub)
    assert (found.seq, found.kind) == (1, "rehashed")

    # after a pruning up to the head at 25: the chain goes on from its last hash and frontier
    frontier = merkle.Frontier()
    for e in events[:25]:
        frontier.append(merkle.event_leaf(e.hash))

    class Pruned:
        upto_seq, last_hash, frontier = 25, events[24].hash, None

    Pruned.frontier = frontier.dump()
    kept = events[25:]
    assert verify.verify_log(kept, start=Pruned, heads=heads, public_key=pub) is None
    report = verify.check_log(kept, start=Pruned, heads=heads, public_key=pub)
    assert report.events == 15 and report.first_seq == 26 and "(events before 26 pruned)" in report.summary()
    assert (lambda f: (f.seq, f.kind))(verify.verify_log(kept[1:], start=Pruned, heads=heads, public_key=pub)) \
        == (26, "missing")
    Pruned.last_hash = events[23].hash  # the saved last hash is not the pruned last event's
    found = verify.verify_log(kept, start=Pruned, heads=heads, public_key=pub)
    assert (found.seq, found.kind) == (25, "inconsistent")  # 25 = 16 + 8 + 1: the last leaf is kept
    Pruned.last_hash, Pruned.frontier = events[24].hash, merkle.Frontier().dump()
    found = verify.verify_log(kept, start=Pruned, heads=heads, public_key=pub)
    assert (found.seq, found.kind) == (25, "inconsistent")
    Pruned.frontier = frontier.dump()
    found = verify.verify_log(kept, start=Pruned, heads=heads[2:], public_key=pub)  # no head at 25
    assert (found.seq, found.kind) == (25, "missing")


def test_a_large_sqlite_log_is_checked_in_two_halves_with_the_same_findings(tmp_path):
    """Above ``parallel_over`` events another process checks the second half's hashes: it must
    name the same first bad event as the single pass, in either half."""
    platform = Platform.open(Settings(data_dir=tmp_path / "data"))
    n = _small_log(platform, 12)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate().public_key()
    db_file = platform.settings.data_dir / "catalog.sqlite"

    def both() -> list:
        found = []
        for over in (0, 10**9):
            with platform.read() as s:
                f = verify.verify_session(s, public_key=key, stored=[], parallel_over=over).finding
            found.append(f and (f.seq, f.kind))
        return found

    assert both() == [None, None]
    for seq in (n - 1, 2):  # in the second half, then in the first (both edited: the first is named)
        with sqlite3.connect(db_file) as db:
            db.execute("UPDATE audit_events SET detail = '{\"forged\": true}' WHERE seq = ?", (seq,))
        assert both() == [(seq, "modified")] * 2
    platform.close()
