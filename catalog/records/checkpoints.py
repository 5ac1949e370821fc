"""Signed tree heads of the audit log: the commitment to it that lives outside the database.

A checkpoint is an RFC 9162 tree head — the Merkle root (:mod:`catalog.records.merkle`) over the
first ``tree_size`` events, with a time in milliseconds — signed with the site's Ed25519 key. The
key is a PEM file outside the catalog database (``MOSU_AUDIT_KEY_FILE``, by default
``<data_dir>/keys/audit-ed25519.pem``, created 0600 on first use), so someone who can rewrite the
database cannot sign a head for a rewritten log; the public key is all a verifier needs.

This module holds the pure part (what is signed, signing, checking, the key file); taking a
checkpoint of a running log and keeping copies in object storage come with the verifier.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from catalog.core.settings import Settings

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
