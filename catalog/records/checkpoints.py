"""Signed tree heads of the audit log: the commitment to it that lives outside the database.

A checkpoint is an RFC 9162 tree head — the Merkle root (:mod:`catalog.records.merkle`) over the
first ``tree_size`` events, with a time in milliseconds — signed with the site's Ed25519 key. The
key is a PEM file outside the catalog database (``MOSU_AUDIT_KEY_FILE``, by default
``<data_dir>/keys/audit-ed25519.pem``, created 0600 on first use), so someone who can rewrite the
database cannot sign a head for a rewritten log; the public key is all a verifier needs.

Taking a checkpoint (:func:`take`) signs the root over every event so far, after checking that the
log still extends the previous checkpoint (a log never signs a history that contradicts its own
last head), and keeps it twice: a row in the catalog database and a JSON copy in object storage
(:func:`catalog.core.keys.audit_checkpoint`), written first and never overwritten, so that removing
rows from the database removes no commitment. :func:`heads` reads both back for the verifier.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from catalog.core import keys
from catalog.core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from catalog.platform import Platform

log = logging.getLogger(__name__)

VERSION = "mosu-audit-sth/1"
"""Names what is signed, so a signature over one kind of message never verifies as another."""


@dataclass(frozen=True)
class SignedTreeHead:
    """A checkpoint: tree size, root hash (hex), time (ms since the epoch), signer and signature."""

    tree_size: int
    root_hash: str
    timestamp: int
    key_id: str
    signature: str = ""

    def message(self) -> bytes:
        """The exact bytes signed: the version, size, root and time, nothing a reader could reorder."""
        return f"{VERSION}\n{self.tree_size}\n{self.root_hash}\n{self.timestamp}\n".encode()

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SignedTreeHead":
        if data.get("version") != VERSION:
            raise ValueError(f"not a Mosu signed tree head: version {data.get('version')!r}")
        return cls(int(data["tree_size"]), str(data["root_hash"]), int(data["timestamp"]),
                   str(data["key_id"]), str(data["signature"]))


def key_id(public_key: Ed25519PublicKey) -> str:
    """The SHA-256 of the raw public key, hex: names the key a head was signed with."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sign(key: Ed25519PrivateKey, tree_size: int, root_hash: bytes, timestamp: int) -> SignedTreeHead:
    """A signed tree head over ``root_hash`` (raw bytes) of ``tree_size`` events at ``timestamp`` ms."""
    head = SignedTreeHead(tree_size, root_hash.hex(), timestamp, key_id(key.public_key()))
    return SignedTreeHead(**{**asdict(head), "signature": key.sign(head.message()).hex()})


def signature_ok(head: SignedTreeHead, public_key: Ed25519PublicKey) -> bool:
    """Whether ``head`` was signed by ``public_key`` exactly as it reads."""
    if head.key_id != key_id(public_key):
        return False
    try:
        public_key.verify(bytes.fromhex(head.signature), head.message())
    except (InvalidSignature, ValueError):
        return False
    return True


def key_path(settings: Settings) -> Path:
    """Where the signing key lives: ``MOSU_AUDIT_KEY_FILE`` or ``<data_dir>/keys/audit-ed25519.pem``."""
    return Path(settings.audit_key_file or settings.data_dir / "keys" / "audit-ed25519.pem")


def load_key(settings: Settings, *, create: bool = True) -> Ed25519PrivateKey:
    """The site's signing key, made (0600, in a 0700 directory) the first time it is asked for."""
    path = key_path(settings)
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"no audit signing key at {path}")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it at the same moment: use theirs
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The public key as PEM, to hand to an outside verifier."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public(pem: bytes) -> Ed25519PublicKey:
    """A verifier's public key from PEM."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def dumps(head: SignedTreeHead) -> bytes:
    """The JSON a head is stored as in object storage and written to export files."""
    return json.dumps(head.to_json(), sort_keys=True).encode()



# -- a running log's checkpoints -------------------------------------------------------------------

class LogInconsistent(Exception):
    """The log no longer extends its last signed checkpoint: it is not signed again (verify says why)."""


def load_public_key(settings: Settings) -> Ed25519PublicKey:
    """The public half of the site's signing key, for verifying on the machine that holds it."""
    return load_key(settings, create=False).public_key()


def _head_of(row: Any) -> SignedTreeHead:
    return SignedTreeHead(int(row.tree_size), row.root_hash, int(row.timestamp), row.key_id, row.signature)


def database_heads(session: "Session") -> list[SignedTreeHead]:
    """The checkpoints kept in the catalog database, by tree size."""
    from sqlalchemy import select

    from catalog.db.models import AuditCheckpoint

    return [_head_of(r) for r in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size))]


STORE_READERS = 8
"""Checkpoint copies read from object storage at once (one small GET each; hourly heads add up)."""


def stored_heads(platform: "Platform") -> list[SignedTreeHead]:
    """The checkpoints copied to object storage, by tree size. An object under the prefix that is
    not a head, or whose key does not name its size, is read as an unsigned head of the size its key
    names, so the verifier reports it rather than skipping it."""
    store = platform.store
    names = [k for k in store.list(keys.AUDIT_CHECKPOINTS) if k.endswith(".json")]

    def read(name: str) -> SignedTreeHead | None:
        data = store.get_bytes(name)
        if data is None:  # removed between the listing and the read
            return None
        size = int(name.rsplit("/", 1)[-1].removesuffix(".json") or -1)
        try:
            head = SignedTreeHead.from_json(json.loads(data))
        except (ValueError, KeyError, TypeError):
            return SignedTreeHead(size, "", 0, "", "")
        return head if head.tree_size == size else SignedTreeHead(size, head.root_hash, head.timestamp, "", "")

    with cf.ThreadPoolExecutor(STORE_READERS, thread_name_prefix="audit-heads") as pool:
        found = [h for h in pool.map(read, names) if h is not None]
    return sorted(found, key=lambda h: h.tree_size)


def heads(platform: "Platform") -> list[SignedTreeHead]:
    """Every checkpoint, from the database and object storage merged by tree size (a head that
    differs between the two appears twice; :func:`catalog.records.verify.verify_platform` reports
    a head kept in only one place, or differing)."""
    with platform.read() as s:
        in_db = database_heads(s)
    merged = {(h.tree_size, h): h for h in [*in_db, *stored_heads(platform)]}
    return [merged[k] for k in sorted(merged, key=lambda k: (k[0], k[1].timestamp))]


def _latest_signed(candidates: list[SignedTreeHead], public: Ed25519PublicKey) -> SignedTreeHead | None:
    signed = [h for h in candidates if signature_ok(h, public)]
    return max(signed, key=lambda h: (h.tree_size, h.timestamp)) if signed else None


CHECKPOINT_LOCK = 7208312
"""PostgreSQL advisory lock of checkpoint taking (the event writers' is :data:`catalog.records.audit.CHAIN_LOCK`)."""


def take(platform: "Platform", *, clock: Callable[[], float] = time.time) -> SignedTreeHead:
    """Sign a tree head over every event so far and keep it in the database and object storage.

    With no event since the last checkpoint, that checkpoint is returned. The root is computed
    outside the write lock (events up to a size never change); only keeping the head takes it, so
    two processes taking one at once keep one head, the same in both places. Raises
    :class:`LogInconsistent` when the log does not extend the last signed checkpoint."""
    from sqlalchemy import func, select, text

    from catalog.db.models import AuditCheckpoint, AuditEvent, AuditPrune
    from catalog.records import merkle

    key = load_key(platform.settings)
    public = key.public_key()
    with platform.read() as s:
        pruned = s.scalars(select(AuditPrune).order_by(AuditPrune.upto_seq.desc()).limit(1)).first()
        upto = pruned.upto_seq if pruned else 0
        size = s.scalar(select(func.max(AuditEvent.seq))) or upto
        newest = _latest_signed(database_heads(s), public)
        if newest is not None and newest.tree_size == size:  # nothing new
            return newest
        last = _latest_signed([*database_heads(s), *stored_heads(platform)], public)
        if last is not None and last.tree_size == size:
            return last
        if last is not None and last.tree_size > size:
            raise LogInconsistent(f"the audit log has {size} events but its checkpoint at {last.tree_size} covers "
                                  "more: run `mosu audit verify`")
        frontier = merkle.Frontier.load(pruned.frontier) if pruned else merkle.Frontier()
        check = last.tree_size if last is not None and last.tree_size >= upto else None
        if check == frontier.size and frontier.root().hex() != last.root_hash:  # type: ignore[union-attr]
            raise LogInconsistent(f"the pruned log does not match its checkpoint at {check}")
        hashes = s.execute(select(AuditEvent.hash).where(AuditEvent.seq > upto, AuditEvent.seq <= size)
                           .order_by(AuditEvent.seq), execution_options={"yield_per": 50_000}).scalars()
        for digest in hashes:
            frontier.append(merkle.event_leaf(digest))
            if frontier.size == check and frontier.root().hex() != last.root_hash:  # type: ignore[union-attr]
                raise LogInconsistent(f"the audit log no longer matches its checkpoint at {check}: "
                                      "run `mosu audit verify`")
    if frontier.size != size:
        raise LogInconsistent(f"the audit log has a gap below event {size}: run `mosu audit verify`")
    head = sign(key, size, frontier.root(), int(clock() * 1000))
    with platform.write.begin() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text(f"SELECT pg_advisory_xact_lock({CHECKPOINT_LOCK})"))
        existing = s.get(AuditCheckpoint, size)
        if existing is not None:
            return _head_of(existing)
        name = keys.audit_checkpoint(size)
        stored = platform.store.get_bytes(name)
        if stored is None:
            platform.store.put_stream(name, io.BytesIO(dumps(head)))
        else:  # kept by an earlier try whose database row did not commit: keep that one, never overwrite
            try:
                earlier = SignedTreeHead.from_json(json.loads(stored))
            except (ValueError, KeyError, TypeError):
                earlier = None
            if earlier is None or earlier.root_hash != head.root_hash or not signature_ok(earlier, public):
                raise LogInconsistent(f"object storage holds another checkpoint at {size} ({name})")
            head = earlier
        s.add(AuditCheckpoint(tree_size=head.tree_size, root_hash=head.root_hash, timestamp=head.timestamp,
                              key_id=head.key_id, signature=head.signature))
    log.info("audit checkpoint: %d events, root %s", head.tree_size, head.root_hash)
    return head


def due(platform: "Platform", every_seconds: float, *, clock: Callable[[], float] = time.time) -> bool:
    """Whether the last checkpoint in the database is older than ``every_seconds`` (or there is none)."""
    from sqlalchemy import func, select

    from catalog.db.models import AuditCheckpoint

    with platform.read() as s:
        newest = s.scalar(select(func.max(AuditCheckpoint.timestamp)))
    return newest is None or clock() * 1000 - newest >= every_seconds * 1000
