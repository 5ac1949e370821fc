"""Audit exports with inclusion proofs, their offline verifier, and retention pruning (issue 13).

The issue: "``mosu audit export --since … --until … --format jsonl|csv`` writes events with inclusion
proofs against a signed tree head, and a verifier anyone can run (``mosu audit verify --export FILE
--public-key KEY``) checks them without the database", and "events older than a configured age can be
pruned without breaking verification (the pruned range stays committed by its checkpoint)"; DESIGN.md:
"pruning below six months is refused".

Events are written by ``audit.record`` on real SQLite with a test clock (``audit.utcnow``) so that
they are months old; heads go to the real SeaweedFS of the ``s3`` fixture; the commands run as
``mosu`` subprocesses, the verifier in a directory with no database and no ``MOSU_*`` setting.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import random
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select

from catalog.access.context import Actor, Context
from catalog.core import keys
from catalog.core.errors import ValidationError
from catalog.db.models import AuditCheckpoint, AuditEvent, AuditPrune, utcnow
from catalog.records import audit, audit_export, checkpoints, merkle, retention
from tests.conftest import MOSU, clean_env

NOW = utcnow()
DAY = dt.timedelta(days=1)


# -- pure: proofs when the first leaves are pruned -------------------------------------------------

def test_proofs_after_a_prune_are_the_proofs_of_the_whole_tree():
    """proof_tree over a frontier (the pruned leaves) and the kept leaves gives the full tree's root
    and, for every kept leaf, the same inclusion proof as merkle.levels over all the leaves."""
    rng = random.Random(13)
    for size in range(1, 70):
        leaves = [merkle.leaf_hash(rng.randbytes(32)) for _ in range(size)]
        full = merkle.levels(leaves)
        for pruned in range(size + 1):
            frontier = merkle.Frontier()
            for leaf in leaves[:pruned]:
                frontier.append(leaf)
            tree = audit_export.proof_tree(frontier, leaves[pruned:])
            assert tree[-1][0] == merkle.root(leaves), (size, pruned)
            for i in range(pruned, size):
                assert merkle.inclusion_proof(tree, i) == merkle.inclusion_proof(full, i), (size, pruned, i)


def test_the_retention_cutoff_refuses_less_than_six_months():
    assert retention.cutoff(1095, now=NOW) == NOW - 1095 * DAY
    assert retention.cutoff(183, NOW - 400 * DAY, now=NOW) == NOW - 400 * DAY
    with pytest.raises(ValidationError, match="at least 183 days"):
        retention.cutoff(182, now=NOW)
    with pytest.raises(ValidationError, match="must be on or before"):
        retention.cutoff(183, NOW - 182 * DAY, now=NOW)  # --before may not prune younger than the retention


def test_the_verifier_imports_neither_flask_nor_the_query_engine():
    code = ("import sys; from catalog.records import audit_export; "
            "print(sorted(m for m in ('flask', 'duckdb', 'pyarrow', 'minio') if m in sys.modules))")
    env = {**clean_env(), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([MOSU[0], "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


# -- a log of old events -------------------------------------------------------------------------------

AGENT = "=HYPERLINK(\"http://x\") Mozilla/5.0 ‘quoted’"  # a formula and non-ASCII: the CSV keeps both


def write_events(platform, monkeypatch, days_ago: list[float]) -> list[int]:
    """One event per entry, dated that many days before NOW, through audit.record; returns their seqs."""
    ctx = Context(platform=platform, actor=Actor(id="u-1", name="reader"), client="203.0.113.9", user_agent=AGENT)
    seqs = []
    for n, days in enumerate(days_ago):
        monkeypatch.setattr(audit, "utcnow", lambda days=days: NOW - days * DAY)
        with platform.write.begin() as s:
            who = ctx if n % 3 else ("worker:w1" if n % 2 else None)  # full envelopes, a worker, anonymous
            audit.record(s, who, "datastore_search", "resource", f"res-{n}" if n != 1 else "",
                         {"rows": n, "filters": {"city": ["Oslo", "Zürich"]}, "q": "-1" if n % 4 == 0 else ""},
                         package_id="pkg-1" if n % 2 else None, resource_id=f"res-{n}")
            seqs.append(s.scalar(select(func.max(AuditEvent.seq))))
    monkeypatch.setattr(audit, "utcnow", utcnow)
    return seqs


def all_events(platform) -> list[AuditEvent]:
    with platform.read() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def public_key_file(platform, tmp_path: Path) -> Path:
    path = tmp_path / "audit-public.pem"
    path.write_bytes(checkpoints.public_pem(checkpoints.load_key(platform.settings)))
    return path


def mosu(platform, *args: str, env: dict[str, str] | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``mosu`` on the platform's data directory and bucket (or with ``env`` alone)."""
    env = env if env is not None else {**clean_env(), **platform.settings.to_env()}
    return subprocess.run([*MOSU, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def verify(export: Path, key: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """``mosu audit verify --export`` as an outside auditor runs it: no MOSU_* setting, no data directory."""
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir(exist_ok=True)
    env = {**clean_env(), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = mosu(None, "audit", "verify", "--export", str(export), "--public-key", str(key), env=env, cwd=elsewhere)
    assert list(elsewhere.iterdir()) == [], "the offline verifier made files (a database?)"
    return done


# -- export and verify ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_exported_range_verifies_without_the_database(platform, monkeypatch, tmp_path, fmt):
    seqs = write_events(platform, monkeypatch, [30 - i for i in range(30)])  # 30 days ago ... yesterday
    out = tmp_path / f"audit.{fmt}"
    since, until = (NOW - 20 * DAY).isoformat(), (NOW - 10 * DAY).isoformat()
    done = mosu(platform, "audit", "export", "--since", since, "--until", until, "--format", fmt, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported 10 audit event(s) (seq 11-20)" in done.stderr

    # The file holds exactly the range (since inclusive, until exclusive), faithful to the database.
    with out.open(encoding="utf-8", newline="") as stream:
        records = list(audit_export.read_export(stream))
    head = checkpoints.SignedTreeHead.from_json(records[0]["head"])
    events = {ev.seq: ev for ev in all_events(platform)}
    assert [r["seq"] for r in records[1:]] == seqs[10:20]
    for r in records[1:]:
        ev = events[r["seq"]]
        assert (r["fields"], r["prev_hash"], r["hash"]) == (audit.fields_of(ev), ev.prev_hash, ev.hash)
    assert any(r["fields"].get("user_agent") == AGENT for r in records[1:])

    # The head covers the whole log, is signed, and is stored in the database and object storage.
    assert head.tree_size == 30 and checkpoints.signature_ok(head, checkpoints.load_key(platform.settings).public_key())
    with platform.read() as s:
        assert audit_export.head_of(s.get(AuditCheckpoint, 30)) == head
    platform.store.download(keys.audit_checkpoint(30), str(tmp_path / "head.json"))
    assert checkpoints.SignedTreeHead.from_json(json.loads((tmp_path / "head.json").read_bytes())) == head

    checked = verify(out, public_key_file(platform, tmp_path), tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("export intact: 10 event(s) (seq 11-20), each included in the tree head of "
                                     "size 30")


def test_the_csv_export_escapes_formulas_and_keeps_nulls_and_empty_strings(platform, monkeypatch, tmp_path):
    write_events(platform, monkeypatch, [3, 2, 1])
    out = io.StringIO()
    audit_export.export(platform, out, fmt="csv")
    text = out.getvalue()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text  # a spreadsheet shows it, never runs it
    rows = list(audit_export.read_export(io.StringIO(text)))
    anonymous = rows[1]["fields"]  # the first event has no actor: null, not ""
    assert anonymous["actor"] is None and "client" not in anonymous and anonymous["detail"]["q"] == "-1"
    assert rows[2]["fields"]["detail"]["q"] == "" and rows[2]["fields"]["object_id"] == ""
    key = checkpoints.load_key(platform.settings).public_key()
    assert audit_export.verify_export(io.StringIO(text), key).ok


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def _rehash(record: dict) -> None:
    fields = {k: v for k, v in record.items() if k not in ("type", "seq", "prev_hash", "hash", "proof")}
    record["hash"] = audit.event_hash(record["prev_hash"], fields)


TAMPERING = {
    # name: (change to the JSON lines, the event named, the kind of wrong)
    "edit a field": (lambda r: r[4].update(actor="somebody-else"), 4, "modified"),
    "edit the detail": (lambda r: r[2]["detail"].update(rows=999), 2, "modified"),
    "edit a field and re-hash it": (lambda r: (r[3].update(client="198.51.100.1"), _rehash(r[3])), 3, "not-included"),
    "drop a proof hash": (lambda r: r[5]["proof"].pop(), 5, "not-included"),
    "change a proof hash": (lambda r: r[1]["proof"].__setitem__(0, "00" * 32), 1, "not-included"),
    "drop an event": (lambda r: r.pop(3), 4, "missing"),
    "swap two events": (lambda r: r.__setitem__(slice(2, 4), [r[3], r[2]]), 3, "missing"),
    "repeat an event": (lambda r: r.insert(3, json.loads(json.dumps(r[2]))), 2, "reordered"),
    "change the head's size": (lambda r: r[0].update(tree_size=r[0]["tree_size"] + 1), None, "bad-signature"),
    "change the head's root": (lambda r: r[0].update(root_hash="ab" * 32), None, "bad-signature"),
}


@pytest.mark.parametrize("change", list(TAMPERING))
def test_a_tampered_export_fails_naming_the_event(platform, monkeypatch, tmp_path, change):
    write_events(platform, monkeypatch, [8, 7, 6, 5, 4, 3, 2, 1])
    out = tmp_path / "audit.jsonl"
    assert mosu(platform, "audit", "export", "--out", str(out)).returncode == 0
    key = public_key_file(platform, tmp_path)
    records = _lines(out)
    assert [r.get("seq") for r in records] == [None, 1, 2, 3, 4, 5, 6, 7, 8]
    edit, seq, kind = TAMPERING[change]
    edit(records)
    _write(out, records)
    checked = verify(out, key, tmp_path)
    assert checked.returncode == 2, checked.stdout
    where = f"event {seq}" if seq is not None else "the export"
    assert f"export NOT intact: {where}: {kind}:" in checked.stderr, checked.stderr


def test_an_export_checked_with_another_key_fails(platform, monkeypatch, tmp_path):
    write_events(platform, monkeypatch, [2, 1])
    out = tmp_path / "audit.jsonl"
    assert mosu(platform, "audit", "export", "--out", str(out)).returncode == 0
    to_stdout = mosu(platform, "audit", "export")  # no new event: the same head, so the same bytes
    assert to_stdout.returncode == 0 and to_stdout.stdout == out.read_text(encoding="utf-8")
    other = tmp_path / "other.pem"
    other.write_bytes(checkpoints.public_pem(Ed25519PrivateKey.generate()))
    checked = verify(out, other, tmp_path)
    assert checked.returncode == 2
    assert "export NOT intact: the export: bad-signature: the tree head (size 2) is not signed by this key" \
        in checked.stderr
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello")
    checked = verify(out, not_a_key, tmp_path)
    assert checked.returncode == 1 and "is not an Ed25519 public key in PEM" in checked.stderr  # not checked


def test_an_export_whose_events_do_not_link_fails_naming_the_event(tmp_path):
    """A head signed over a log with a broken link (an event edited and re-hashed before the export)
    passes every proof: the link between consecutive events is what shows it."""
    key = Ed25519PrivateKey.generate()
    events, prev = [], audit.GENESIS
    for seq in (1, 2, 3):
        fields = {"id": f"e{seq}", "ts": "2026-01-01T00:00:00", "actor": None, "action": "x", "object_type": "y",
                  "object_id": None, "detail": {}}
        prev = "ff" * 32 if seq == 3 else prev  # event 3 does not link to event 2
        digest = audit.event_hash(prev, fields)
        events.append({"type": "event", "seq": seq, **fields, "prev_hash": prev, "hash": digest})
        prev = digest
    leaves = [merkle.event_leaf(e["hash"]) for e in events]
    tree = merkle.levels(leaves)
    head = checkpoints.sign(key, 3, merkle.root(leaves), 1_700_000_000_000)
    records = [{"type": "tree_head", **head.to_json()}] + \
        [{**e, "proof": [p.hex() for p in merkle.inclusion_proof(tree, i)]} for i, e in enumerate(events)]
    out = tmp_path / "audit.jsonl"
    _write(out, records[:3])
    assert audit_export.verify_export(out.open(), key.public_key()).ok
    _write(out, records)
    check = audit_export.verify_export(out.open(), key.public_key())
    assert (check.finding.seq, check.finding.kind) == (3, "broken-link"), check.summary()


def test_no_head_is_signed_nor_export_written_over_a_log_with_a_broken_link(platform, monkeypatch, tmp_path):
    write_events(platform, monkeypatch, [4, 3, 2, 1])
    with platform.write.begin() as s:  # edit event 2 and re-hash it alone: event 3 no longer links to it
        ev = s.get(AuditEvent, 2)
        ev.actor = "mallory"
        ev.hash = audit.event_hash(ev.prev_hash, audit.fields_of(ev))
    (tmp_path / "exports").mkdir()
    out = tmp_path / "exports" / "audit.jsonl"
    done = mosu(platform, "audit", "export", "--out", str(out))
    assert done.returncode == 1
    assert "audit event 3 does not link to the event before it" in done.stderr
    assert list(out.parent.iterdir()) == []  # no file, not even a partial one
    with platform.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditCheckpoint)) == 0


def test_a_tampered_csv_export_fails_naming_the_event(platform, monkeypatch, tmp_path):
    write_events(platform, monkeypatch, [4, 3, 2, 1])
    out = tmp_path / "audit.csv"
    assert mosu(platform, "audit", "export", "--format", "csv", "--out", str(out)).returncode == 0
    key = public_key_file(platform, tmp_path)
    assert verify(out, key, tmp_path).returncode == 0
    text = out.read_text(encoding="utf-8")
    out.write_text(text.replace("res-2", "res-7", 1), encoding="utf-8")  # event 3's object id
    checked = verify(out, key, tmp_path)
    assert checked.returncode == 2 and "event 3: modified" in checked.stderr, checked.stderr


# -- prune ---------------------------------------------------------------------------------------------

def test_prune_stops_at_a_checkpoint_keeps_what_verification_needs_and_exports_still_verify(
        platform, monkeypatch, tmp_path):
    settings_env = {"MOSU_AUDIT_RETENTION_DAYS": "183"}
    write_events(platform, monkeypatch, [400, 390, 380, 370, 360, 350, 340, 330])  # 1-8
    first = audit_export.take_head_here(platform)  # a checkpoint of size 8: only old events
    write_events(platform, monkeypatch, [300, 290, 280, 270, 100, 60, 50, 40])  # 9-12 old, 13-16 young
    audit_export.take_head_here(platform)  # size 16: it holds young events, so it cannot be pruned to
    before = {ev.seq: ev for ev in all_events(platform)}

    done = mosu(platform, "audit", "prune", env={**clean_env(), **platform.settings.to_env(), **settings_env})
    assert done.returncode == 0, done.stderr
    assert "pruned 8 audit event(s), up to seq 8" in done.stdout
    remaining = all_events(platform)
    # 9-12 are older than the retention too, but no checkpoint ends among them: they stay.
    assert [ev.seq for ev in remaining] == list(range(9, 18))
    assert (remaining[-1].action, remaining[-1].detail["upto_seq"], remaining[-1].detail["events"]) == \
        ("audit_prune", 8, 8)
    with platform.read() as s:
        prune = s.scalars(select(AuditPrune)).one()
    assert (prune.upto_seq, prune.last_hash) == (8, before[8].hash)
    assert merkle.Frontier.load(prune.frontier).root().hex() == first.root_hash
    assert remaining[0].prev_hash == prune.last_hash

    # A second prune, later, goes on from the stored frontier (not from the deleted events).
    again = retention.prune(platform, now=NOW + 1200 * DAY)  # retention 1095 days
    assert again is not None and (again.upto_seq, again.events) == (16, 8)
    with platform.read() as s:
        assert [p.upto_seq for p in s.scalars(select(AuditPrune).order_by(AuditPrune.upto_seq))] == [8, 16]
        assert s.get(AuditPrune, 16).last_hash == before[16].hash
    assert [ev.seq for ev in all_events(platform)] == [17, 18]

    # Exports after the prunes still carry proofs against a head over the whole log (size 18).
    write_events(platform, monkeypatch, [0.5])
    out = tmp_path / "after-prune.jsonl"
    done = mosu(platform, "audit", "export", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported 3 audit event(s) (seq 17-19)" in done.stderr
    checked = verify(out, public_key_file(platform, tmp_path), tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "size 19" in checked.stdout
    # The head over the pruned log is the head the full log would have had.
    leaves = [merkle.event_leaf(before[seq].hash) for seq in range(1, 17)] + \
        [merkle.event_leaf(ev.hash) for ev in all_events(platform)]
    assert json.loads(out.read_text().splitlines()[0])["root_hash"] == merkle.root(leaves).hex()


def test_the_database_verifier_accepts_a_pruned_log(platform, monkeypatch):
    """Through the interface of AUDIT.md: ``verify_log`` starts from the latest AuditPrune row."""
    verify_module = pytest.importorskip("catalog.records.verify", reason="the database verifier is not merged yet")
    write_events(platform, monkeypatch, [1500, 1450, 1400])  # older than the default 1095 days
    audit_export.take_head_here(platform)
    write_events(platform, monkeypatch, [2, 1])
    audit_export.take_head_here(platform)
    assert retention.prune(platform, now=NOW).upto_seq == 3
    audit_export.take_head_here(platform)
    with platform.read() as s:
        start = s.scalars(select(AuditPrune)).one()
        heads = [audit_export.head_of(row) for row in s.scalars(select(AuditCheckpoint)
                                                                .order_by(AuditCheckpoint.tree_size))]
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        public = checkpoints.load_key(platform.settings).public_key()
        assert verify_module.verify_log(events, start=start, heads=heads, public_key=public) is None
    report = verify_module.verify_platform(platform)  # the database and object storage copies, as the CLI does
    assert report.finding is None and report.first_seq == 4, report.summary()


@pytest.mark.parametrize("how", [{"MOSU_AUDIT_RETENTION_DAYS": "182"}, "--before"])
def test_pruning_below_six_months_is_refused(platform, monkeypatch, how):
    write_events(platform, monkeypatch, [400, 300, 200, 100, 10])
    audit_export.take_head_here(platform)
    env = {**clean_env(), **platform.settings.to_env()}
    args = ["audit", "prune"]
    if how == "--before":
        env["MOSU_AUDIT_RETENTION_DAYS"] = "183"
        args += ["--before", (NOW - 150 * DAY).date().isoformat()]  # the checkpoint at 5 would be reachable
    else:
        env.update(how)
    done = mosu(platform, *args, env=env)
    assert done.returncode == 1
    assert ("at least 183 days" if how != "--before" else "events of the last 183 days are kept") in done.stderr
    assert len(all_events(platform)) == 5
    with platform.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditPrune)) == 0


def test_prune_without_a_checkpoint_among_old_events_prunes_nothing(platform, monkeypatch):
    write_events(platform, monkeypatch, [1300, 1250, 1200])  # older than the default 1095 days
    assert retention.prune(platform) is None  # no checkpoint at all
    write_events(platform, monkeypatch, [10])
    audit_export.take_head_here(platform)  # a checkpoint over old and young events
    assert retention.prune(platform) is None
    assert [ev.seq for ev in all_events(platform)] == [1, 2, 3, 4]


def test_prune_refuses_a_range_that_does_not_verify(platform, monkeypatch):
    """A prune never destroys the evidence of tampering: an edited event in the range is refused."""
    write_events(platform, monkeypatch, [500, 450, 400])
    audit_export.take_head_here(platform)
    with platform.write.begin() as s:
        s.get(AuditEvent, 2).actor = "mallory"
    with pytest.raises(audit_export.LogMismatch, match="event 2"):
        retention.prune(platform, now=NOW + 1200 * DAY)
    assert len(all_events(platform)) == 3


def test_a_worker_prunes_past_the_retention_on_its_own(platform, monkeypatch, tmp_path):
    """``mosu worker``'s janitor prunes once a day, starting with its first round."""
    write_events(platform, monkeypatch, [400, 300])
    audit_export.take_head_here(platform)
    write_events(platform, monkeypatch, [1])
    env = {**clean_env(), **platform.settings.to_env(), "MOSU_AUDIT_RETENTION_DAYS": "183"}
    with (tmp_path / "worker.log").open("w") as log:
        worker = subprocess.Popen([*MOSU, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            with platform.read() as s:
                if s.get(AuditPrune, 2) is not None:
                    break
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert [(ev.seq, ev.action, (ev.actor or "").split(":")[0]) for ev in all_events(platform)] == \
        [(3, "datastore_search", ""), (4, "audit_prune", "worker")], (tmp_path / "worker.log").read_text()


def test_prune_export_and_verify_on_postgresql(postgres, s3, tmp_path, monkeypatch):
    """The same on PostgreSQL (the chain's advisory lock, JSON frontier, the delete)."""
    from catalog.platform import Platform
    from tests.conftest import s3_settings

    platform = Platform.open(s3_settings(s3, tmp_path / "data", database_url=postgres()))
    platform.store.ensure_bucket()
    try:
        assert platform.engine.dialect.name == "postgresql"
        write_events(platform, monkeypatch, [1500, 1400, 1300])
        audit_export.take_head_here(platform)
        write_events(platform, monkeypatch, [2, 1])
        assert retention.prune(platform).upto_seq == 3
        with platform.read() as s:
            prune = s.get(AuditPrune, 3)
            assert merkle.Frontier.load(prune.frontier).size == 3
        out = tmp_path / "audit.csv"
        done = mosu(platform, "audit", "export", "--format", "csv", "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert "exported 3 audit event(s) (seq 4-6)" in done.stderr
        checked = verify(out, public_key_file(platform, tmp_path), tmp_path)
        assert checked.returncode == 0 and "size 6" in checked.stdout, checked.stderr
    finally:
        platform.close()


def test_a_long_backlog_is_pruned_in_steps_from_checkpoint_to_checkpoint(platform, monkeypatch):
    heads = []
    for ages in ([1500, 1490, 1480], [1470, 1460, 1450], [1440, 1430]):
        write_events(platform, monkeypatch, ages)
        heads.append(audit_export.take_head_here(platform))  # checkpoints at 3, 6 and 8
    write_events(platform, monkeypatch, [1420])
    hashes = {ev.seq: ev.hash for ev in all_events(platform)}
    done = retention.prune(platform, batch=3)
    assert (done.upto_seq, done.events) == (8, 8)
    with platform.read() as s:
        prunes = list(s.scalars(select(AuditPrune).order_by(AuditPrune.upto_seq)))
    assert [(p.upto_seq, p.last_hash) for p in prunes] == [(3, hashes[3]), (6, hashes[6]), (8, hashes[8])]
    assert [merkle.Frontier.load(p.frontier).root().hex() for p in prunes] == [h.root_hash for h in heads]
    assert [(ev.seq, ev.action) for ev in all_events(platform)] == \
        [(9, "datastore_search"), (10, "audit_prune"), (11, "audit_prune"), (12, "audit_prune")]
