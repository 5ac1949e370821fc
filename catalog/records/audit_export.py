"""Exports of the audit log that anyone can verify without the database.

``mosu audit export`` writes the events of a time range, each with its RFC 9162 inclusion proof
against a signed tree head taken at export time over the whole log. Whoever receives the file (a
regulator, an outside auditor) checks it with the site's public key alone
(``mosu audit verify --export FILE --public-key KEY``, :func:`verify_export`): the head's
signature, each event's hash from its fields and the previous hash, each event's proof against the
head's root, and the chain links between consecutive exported events. Since the head commits to
every event of the log, an event cannot be edited, dropped from the middle of the range, added
or re-hashed in the file without the check failing; the proofs (⌈log₂ n⌉ hashes each) are what
lets a range be checked without the millions of events around it.

Formats (one per row of :data:`FORMATS`):

- ``jsonl``: the first line is ``{"type": "tree_head", ...SignedTreeHead.to_json()}``; then one line
  per event, ``{"type": "event", "seq", <every field the hash covers>, "prev_hash", "hash",
  "proof": [hex, ...]}`` in ``seq`` order. The fields are exactly :func:`audit.fields_of`.
- ``csv``: a header row, then a row of type ``tree_head`` whose ``detail`` cell holds the head's JSON,
  then one row per event with the columns of :data:`CSV_COLUMNS`: ``detail`` and ``proof`` are JSON;
  ``nulls`` names (space-separated) the fields that are null or not set, so an empty cell is an empty
  string and never a guess; a cell a spreadsheet would run as a formula (or one already starting with ``'``)
  is written with a leading ``'`` that the verifier removes, so the file is safe to open and still
  hashes back to the same events.

The range is by time, ``since`` inclusive and ``until`` exclusive, and always contiguous in ``seq``:
from the first event at or after ``since`` to the last event before ``until``, so the chain links of
the whole range can be checked. Only events up to the head's size are exported.

The verifying half (:func:`verify_export`, :func:`read_export`) opens no database and needs no settings
or Flask: only this module, :mod:`merkle`, :mod:`checkpoints` and the hash function of :mod:`audit`.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from dataclasses import asdict, dataclass
from typing import IO, TYPE_CHECKING, Any, Iterable, Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.core import keys
from catalog.core.errors import MosuError
from catalog.db.models import AuditCheckpoint, AuditEvent, AuditPrune
from catalog.records import checkpoints, merkle
from catalog.records.audit import ENVELOPE, GENESIS, LOCK_CHAIN, event_hash, fields_of
from catalog.records.checkpoints import SignedTreeHead

if TYPE_CHECKING:
    from catalog.platform import Platform

FORMATS = ("jsonl", "csv")
BASE_FIELDS = ("id", "ts", "actor", "action", "object_type", "object_id", "detail")
"""The fields :func:`audit.fields_of` always has (null or not); envelope fields are there only when set."""
CSV_COLUMNS = ("type", "seq", "ts", "id", "actor", "action", "object_type", "object_id", *ENVELOPE,
               "detail", "prev_hash", "hash", "proof", "nulls")
_NOT_FIELDS = frozenset({"type", "seq", "prev_hash", "hash", "proof", "nulls"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
"""What a spreadsheet treats as the start of a formula (OWASP), and the escape character itself."""


class LogMismatch(MosuError):
    """The log in the database does not match what it should (a gap, or a root other than the head's):
    nothing is exported or pruned from a log that ``mosu audit verify`` would not pass."""


# -- taking the head ----------------------------------------------------------------------------

def take_head(platform: "Platform") -> SignedTreeHead:
    """A fresh signed tree head over the whole log, stored like every checkpoint (database row and a
    copy in object storage). Uses ``checkpoints.take`` when that exists (the checkpointing change
    owns it); :func:`take_head_here` is the same thing done here until then, in one place to swap."""
    take = getattr(checkpoints, "take", None)
    if take is None:
        return take_head_here(platform)
    with platform.read() as s:
        _leaves(s)  # no head for an export over a log with a hole or a broken link (take checks roots only)
    try:
        return take(platform)
    except getattr(checkpoints, "LogInconsistent", ()) as exc:  # type: ignore[misc]
        raise LogMismatch(str(exc)) from None


def take_head_here(platform: "Platform", timestamp_ms: int | None = None) -> SignedTreeHead:
    """Sign the root over every event now in the log and store it: a row, and a copy under
    :func:`keys.audit_checkpoint` (put before the commit, so a failed copy leaves no row either).
    The root is computed in a read snapshot, outside the chain's write lock (events up to a size
    never change), so writers wait only for the row. A checkpoint already stored at this size is
    returned as it is (after checking its root)."""
    key = checkpoints.load_key(platform.settings)
    with platform.read() as s:
        prune, leaves = _leaves(s)
    frontier = frontier_of(prune)
    for leaf in leaves:
        frontier.append(leaf)
    root = frontier.root()
    with platform.write.begin() as s:
        stored = s.get(AuditCheckpoint, frontier.size)
        if stored is not None:
            if stored.root_hash != root.hex():
                raise LogMismatch(f"the audit log does not match its checkpoint of size {frontier.size}: "
                                  "run mosu audit verify")
            return head_of(stored)
        head = checkpoints.sign(key, frontier.size, root, timestamp_ms or int(time.time() * 1000))
        s.add(AuditCheckpoint(**asdict(head)))
        s.flush()
        platform.store.put_stream(keys.audit_checkpoint(head.tree_size), io.BytesIO(checkpoints.dumps(head)))
    return head


def head_of(row: AuditCheckpoint) -> SignedTreeHead:
    """The signed tree head a checkpoint row holds."""
    return SignedTreeHead(row.tree_size, row.root_hash, row.timestamp, row.key_id, row.signature)


def lock_chain(s: Session) -> None:
    """Serialise with the writers of the chain (SQLite: BEGIN IMMEDIATE already did)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(LOCK_CHAIN)  # the lock audit.record takes


def latest_prune(s: Session) -> AuditPrune | None:
    """The last pruning of the log: where its events now start."""
    return s.scalars(select(AuditPrune).order_by(AuditPrune.upto_seq.desc()).limit(1)).first()


def frontier_of(prune: AuditPrune | None) -> merkle.Frontier:
    return merkle.Frontier.load(prune.frontier) if prune is not None else merkle.Frontier()


def _leaves(s: Session, upto: int | None = None) -> tuple[AuditPrune | None, list[bytes]]:
    """The latest prune and the leaf hashes of every event after it (up to ``upto``), checked
    contiguous and linked (each event's previous hash is the hash before it): a head is never
    signed, nor an export written, over a log with a hole or a broken link. (Re-hashing every event
    after a point keeps the links; only the stored checkpoints show that: ``mosu audit verify``.)"""
    prune = latest_prune(s)
    after = prune.upto_seq if prune is not None else 0
    prev = prune.last_hash if prune is not None else GENESIS
    query = select(AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash).where(AuditEvent.seq > after)
    if upto is not None:
        query = query.where(AuditEvent.seq <= upto)
    leaves = []
    for expected, (seq, prev_hash, digest) in enumerate(s.execute(query.order_by(AuditEvent.seq)), after + 1):
        if seq != expected:
            raise LogMismatch(f"the audit log has no event {expected} (the next is {seq}): run mosu audit verify")
        if prev_hash != prev:
            raise LogMismatch(f"audit event {seq} does not link to the event before it: run mosu audit verify")
        leaves.append(merkle.event_leaf(digest))
        prev = digest
    return prune, leaves


def proof_tree(frontier: merkle.Frontier, leaves: list[bytes]) -> list[list[bytes | None]]:
    """:func:`merkle.levels` of the whole tree when its first ``frontier.size`` leaves are pruned.

    The pruned leaves are ``None`` and the frontier's perfect subtrees stand in at their level, so
    every node an inclusion proof of a kept leaf needs is known: a sibling on such a path is either a
    kept subtree, a frontier node, or a subtree made of frontier nodes and kept leaves (it can never
    lie strictly inside a frontier subtree, which holds only pruned leaves)."""
    tree: list[list[bytes | None]] = [[None] * frontier.size + list(leaves)]
    placed: dict[int, dict[int, bytes]] = {}
    offset = 0
    for size, node in frontier.nodes:
        height = size.bit_length() - 1
        placed.setdefault(height, {})[offset >> height] = node
        offset += size
    for index, node in placed.get(0, {}).items():
        tree[0][index] = node
    while len(tree[-1]) > 1:
        below = tree[-1]
        level: list[bytes | None] = []
        for i in range(0, len(below), 2):
            if i + 1 == len(below):
                level.append(below[i])
            else:
                left, right = below[i], below[i + 1]
                level.append(merkle.node_hash(left, right) if left is not None and right is not None else None)
        for index, node in placed.get(len(tree), {}).items():
            level[index] = node
        tree.append(level)
    return tree


def _tree_root(tree: list[list[bytes | None]]) -> bytes | None:
    return tree[-1][0] if tree[0] else merkle.EMPTY_ROOT


# -- export -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Exported:
    """What an export wrote: the head the proofs are against, and the range of events."""

    head: SignedTreeHead
    events: int
    first_seq: int | None
    last_seq: int | None


def export(platform: "Platform", out: IO[str], *, since: dt.datetime | None = None,
           until: dt.datetime | None = None, fmt: str = "jsonl", head: SignedTreeHead | None = None) -> Exported:
    """Write the events from ``since`` (inclusive) to ``until`` (exclusive; naive UTC) to ``out`` with
    their inclusion proofs against ``head`` (default: a fresh one, :func:`take_head`)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown audit export format {fmt!r}; one of {', '.join(FORMATS)}")
    head = head or take_head(platform)
    with platform.read() as s:
        prune, leaves = _leaves(s, upto=head.tree_size)
        frontier = frontier_of(prune)
        tree = proof_tree(frontier, leaves)
        if len(tree[0]) != head.tree_size or (_tree_root(tree) or b"").hex() != head.root_hash:
            raise LogMismatch(f"the audit log does not match the tree head of size {head.tree_size}: "
                              "run mosu audit verify")
        first, last = _range(s, frontier.size, head.tree_size, since, until)
        writer = _WRITERS[fmt](out)
        writer.head(head)
        count = 0
        if first is not None and last is not None and first <= last:
            rows = s.scalars(select(AuditEvent).where(AuditEvent.seq >= first, AuditEvent.seq <= last)
                             .order_by(AuditEvent.seq).execution_options(yield_per=1000))
            for ev in rows:
                proof = merkle.inclusion_proof(tree, ev.seq - 1)  # type: ignore[arg-type]
                if any(p is None for p in proof):  # cannot happen (see proof_tree); never write a bad proof
                    raise LogMismatch(f"no inclusion proof for event {ev.seq}")
                writer.event(ev, [p.hex() for p in proof])
                count += 1
    return Exported(head, count, first if count else None, last if count else None)


def _range(s: Session, after: int, size: int, since: dt.datetime | None,
           until: dt.datetime | None) -> tuple[int | None, int | None]:
    """The first and last ``seq`` of the time range among the events kept and under the head."""
    kept = (AuditEvent.seq > after, AuditEvent.seq <= size)
    first = s.scalar(select(func.min(AuditEvent.seq)).where(*kept, AuditEvent.ts >= since)) if since else \
        (after + 1 if size > after else None)
    last = s.scalar(select(func.max(AuditEvent.seq)).where(*kept, AuditEvent.ts < until)) if until else \
        (size if size > after else None)
    return first, last


def _event_record(ev: Any, proof: list[str]) -> dict[str, Any]:
    return {"type": "event", "seq": ev.seq, **fields_of(ev), "prev_hash": ev.prev_hash, "hash": ev.hash,
            "proof": proof}


class _JsonLines:
    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def head(self, head: SignedTreeHead) -> None:
        self.out.write(json.dumps({"type": "tree_head", **head.to_json()}) + "\n")

    def event(self, ev: Any, proof: list[str]) -> None:
        self.out.write(json.dumps(_event_record(ev, proof), ensure_ascii=False) + "\n")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _uncell(value: str) -> str:
    return value[1:] if value.startswith("'") else value


class _Csv:
    def __init__(self, out: IO[str]) -> None:
        self.writer = csv.writer(out, lineterminator="\n")
        self.writer.writerow(CSV_COLUMNS)

    def head(self, head: SignedTreeHead) -> None:
        row = {"type": "tree_head", "detail": checkpoints.dumps(head).decode()}
        self.writer.writerow([_cell(row.get(c, "")) for c in CSV_COLUMNS])

    def event(self, ev: Any, proof: list[str]) -> None:
        record = _event_record(ev, proof)
        nulls = [c for c in CSV_COLUMNS if c not in _NOT_FIELDS and record.get(c) is None]
        cells = []
        for column in CSV_COLUMNS:
            value = record.get(column)
            if column in ("detail", "proof"):
                value = json.dumps(value, ensure_ascii=False, sort_keys=True)
            elif column == "nulls":
                value = " ".join(nulls)
            elif value is None:
                value = ""
            elif not isinstance(value, (str, int)):  # every field but detail is text: say so if one is not
                raise TypeError(f"audit event {ev.seq}: field {column} is {type(value).__name__}, not text")
            cells.append(_cell(str(value)))
        self.writer.writerow(cells)


_WRITERS = {"jsonl": _JsonLines, "csv": _Csv}


# -- reading and verifying an export (no database) ----------------------------------------------

@dataclass(frozen=True)
class Finding:
    """The first thing wrong in an export: the event (``seq``, None for the head or the file), what
    kind of wrong, and a sentence for a person."""

    seq: int | None
    kind: str  # bad-signature | malformed | modified | not-included | broken-link | missing | reordered
    message: str

    def __str__(self) -> str:
        where = f"event {self.seq}" if self.seq is not None else "the export"
        return f"{where}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class ExportCheck:
    """The result of :func:`verify_export`: ``finding`` is None when every check passed."""

    head: SignedTreeHead | None
    events: int
    first_seq: int | None
    last_seq: int | None
    finding: Finding | None

    @property
    def ok(self) -> bool:
        return self.finding is None

    def summary(self) -> str:
        if self.finding is not None:
            return f"export NOT intact: {self.finding}"
        assert self.head is not None
        when = dt.datetime.fromtimestamp(self.head.timestamp / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        span = f" (seq {self.first_seq}-{self.last_seq})" if self.events else ""
        return (f"export intact: {self.events} event(s){span}, each included in the tree head of size "
                f"{self.head.tree_size} (root {self.head.root_hash[:16]}…, {when}) signed by key "
                f"{self.head.key_id[:16]}…")


class Malformed(ValueError):
    """A line of an export that is not what an export writes."""

    def __init__(self, line: int, message: str, seq: int | None = None) -> None:
        super().__init__(f"line {line}: {message}")
        self.seq = seq


def read_export(stream: IO[str]) -> Iterator[dict[str, Any]]:
    """Records of an export, either format: ``{"type": "tree_head", "head": {...}}`` then
    ``{"type": "event", "seq", "fields", "prev_hash", "hash", "proof"}``. Raises :class:`Malformed`."""
    first = stream.readline()
    rest: Iterable[str] = stream
    if first.lstrip().startswith("{"):
        yield from _read_jsonl(first, rest)
    else:
        yield from _read_csv(first, rest)


def _read_jsonl(first: str, rest: Iterable[str]) -> Iterator[dict[str, Any]]:
    def lines() -> Iterator[str]:
        yield first
        yield from rest

    for number, line in enumerate(lines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise Malformed(number, f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise Malformed(number, "not a JSON object")
        kind = data.pop("type", None)
        if kind == "tree_head":
            yield {"type": "tree_head", "head": data, "line": number}
        elif kind == "event":
            yield _event(number, data.pop("seq", None), data.pop("prev_hash", None), data.pop("hash", None),
                         data.pop("proof", None), data)
        else:
            raise Malformed(number, f"unknown record type {kind!r}")


def _read_csv(first: str, rest: Iterable[str]) -> Iterator[dict[str, Any]]:
    def lines() -> Iterator[str]:
        yield first
        yield from rest

    reader = csv.reader(lines())
    header = next(reader, None)
    if not header or header[0] != "type" or not {"seq", "hash", "prev_hash", "proof", "nulls"} <= set(header):
        raise Malformed(1, "neither a JSON lines nor a CSV audit export (no header naming type, seq, hash, ...)")
    for row in reader:
        number = reader.line_num
        if not row:
            continue
        if len(row) != len(header):
            raise Malformed(number, f"{len(row)} cells where the header has {len(header)}")
        cells = {c: _uncell(v) for c, v in zip(header, row)}
        if cells["type"] == "tree_head":
            try:
                yield {"type": "tree_head", "head": json.loads(cells["detail"]), "line": number}
            except ValueError:
                raise Malformed(number, "the tree head is not JSON") from None
            continue
        if cells["type"] != "event":
            raise Malformed(number, f"unknown record type {cells['type']!r}")
        nulls = set(cells["nulls"].split())
        fields: dict[str, Any] = {}
        for column, value in cells.items():
            if column in _NOT_FIELDS:
                continue
            if column in nulls:
                if column in BASE_FIELDS:
                    fields[column] = None
                continue
            if column == "detail":
                try:
                    value = json.loads(value)
                except ValueError:
                    raise Malformed(number, "detail is not JSON") from None
            fields[column] = value
        try:
            proof = json.loads(cells["proof"])
        except ValueError:
            raise Malformed(number, "proof is not JSON") from None
        yield _event(number, cells["seq"], cells["prev_hash"], cells["hash"], proof, fields)


def _event(number: int, seq: Any, prev_hash: Any, digest: Any, proof: Any, fields: dict) -> dict[str, Any]:
    try:
        seq = int(seq)
    except (TypeError, ValueError):
        raise Malformed(number, f"seq {seq!r} is not a number") from None
    if not (isinstance(prev_hash, str) and isinstance(digest, str) and isinstance(proof, list)
            and all(isinstance(p, str) for p in proof)):
        raise Malformed(number, "prev_hash, hash and proof must be a hash, a hash and a list of hashes", seq)
    return {"type": "event", "seq": seq, "fields": fields, "prev_hash": prev_hash, "hash": digest,
            "proof": proof, "line": number}


def verify_export(stream: IO[str], public_key: Ed25519PublicKey) -> ExportCheck:
    """Check an export (either format) with the site's public key alone: the head's signature, then
    for each event in order its hash, its inclusion in the head's tree, and its link to the event
    before it. Stops at the first thing wrong (:class:`Finding`)."""
    head: SignedTreeHead | None = None
    count, first, prev = 0, None, None

    def result(finding: Finding | None) -> ExportCheck:
        return ExportCheck(head, count, first, prev["seq"] if prev else None, finding)

    try:
        for record in read_export(stream):
            if record["type"] == "tree_head":
                if head is not None:
                    return result(Finding(None, "malformed", f"line {record['line']}: a second tree head"))
                try:
                    head = SignedTreeHead.from_json(record["head"])
                except (KeyError, TypeError, ValueError) as exc:
                    return result(Finding(None, "malformed", f"the tree head cannot be read: {exc}"))
                if not checkpoints.signature_ok(head, public_key):
                    signer = "" if head.key_id == checkpoints.key_id(public_key) else \
                        f" (it names key {head.key_id[:16]}…, the key given is {checkpoints.key_id(public_key)[:16]}…)"
                    return result(Finding(None, "bad-signature",
                                          f"the tree head (size {head.tree_size}) is not signed by this key{signer}"))
                continue
            if head is None:
                return result(Finding(record["seq"], "malformed", "an event comes before the tree head"))
            finding = _check_event(record, prev, head)
            if finding is not None:
                return result(finding)
            count += 1
            first = record["seq"] if first is None else first
            prev = record
    except Malformed as exc:
        return result(Finding(exc.seq, "malformed", str(exc)))
    if head is None:
        return result(Finding(None, "malformed", "no tree head: not an audit export"))
    return result(None)


def _check_event(record: dict[str, Any], prev: dict[str, Any] | None, head: SignedTreeHead) -> Finding | None:
    seq = record["seq"]
    if prev is not None and seq <= prev["seq"]:
        return Finding(seq, "reordered", f"comes after event {prev['seq']}")
    if prev is not None and seq != prev["seq"] + 1:
        gap = f"event {seq - 1} is" if seq == prev["seq"] + 2 else f"events {prev['seq'] + 1}-{seq - 1} are"
        return Finding(seq, "missing", f"follows event {prev['seq']}: {gap} missing from the export (or out of "
                                       "order)")
    if event_hash(record["prev_hash"], record["fields"]) != record["hash"]:
        return Finding(seq, "modified", "its fields and previous hash do not hash to its hash")
    try:
        leaf = merkle.event_leaf(record["hash"])
        proof = [bytes.fromhex(p) for p in record["proof"]]
        root = bytes.fromhex(head.root_hash)
    except ValueError:
        return Finding(seq, "malformed", "a hash is not hexadecimal")
    if not merkle.verify_inclusion(leaf, seq - 1, head.tree_size, proof, root):
        return Finding(seq, "not-included", f"its inclusion proof does not lead to the root of the signed tree "
                                            f"head of size {head.tree_size}")
    if prev is not None and record["prev_hash"] != prev["hash"]:
        return Finding(seq, "broken-link", f"its previous hash is not the hash of event {prev['seq']}")
    return None
