"""The security configuration that keeps the embedded SeaweedFS's internal ports closed.

``weed mini`` runs a master, a volume server, a filer and the S3 gateway; only the S3 gateway
checks credentials. Without this configuration anyone on the machine read a private upload
through the filer's HTTP port, wrote and deleted there, and got answers from master
``/dir/assign`` and volume ``/status``; the gRPC ports let any client read files too.

What closes them (found by experiment on SeaweedFS 4.48, Dec 2026):
- mutual TLS on the master, volume and filer HTTP ports (``[https.*]`` with a ``ca``, which
  makes them require a client certificate) and on every gRPC port (``[grpc.*]``): a client
  without the certificate generated here is refused during the TLS handshake, whatever it asks;
- the four JWT keys (volume write/read, filer write/read) as a second lock, and the only one on
  the filer's Unix socket (``/tmp/seaweedfs-filer-<port>.sock``, 0700 under ``mosu up``'s umask),
  which serves plain HTTP: without a token the filer and volume answer 401.
JWT alone was not enough: master ``/dir/assign`` and ``/dir/lookup`` (which hands out write
tokens) and volume ``/status`` ignore the keys, and ``[guard] white_list`` cannot tell local users
apart (they all connect from 127.0.0.1).

Everything is generated afresh at every start (a CA and one certificate for all parts, EC P-256,
a few milliseconds), in a 0700 directory with 0600 files, and passed with ``weed -config_dir``,
which SeaweedFS searches before ``./``, ``$HOME/.seaweedfs`` and ``/etc/seaweedfs``.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "security.toml"
# Components that serve or dial gRPC; each gets the same certificate.
GRPC_COMPONENTS = ("master", "volume", "filer", "s3", "admin", "worker", "msg_broker", "msg_agent",
                   "mq", "client")
HTTPS_COMPONENTS = ("master", "volume", "filer")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def jwt_keys() -> dict[str, str]:
    """Fresh random signing keys for the four JWT sections SeaweedFS knows."""
    return {section: secrets.token_hex(32)
            for section in ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")}


def render(tls: TlsFiles, keys: dict[str, str]) -> str:
    """``security.toml`` text: JWT keys, mutual TLS for gRPC and for the internal HTTP ports."""

    def q(value: object) -> str:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = []
    for section, key in keys.items():
        lines += [f"[{section}]", f"key = {q(key)}", ""]
    lines += ["[access]", "ui = false", "", "[filer.expose_directory_metadata]", "enabled = false", ""]
    lines += ["[grpc]", f"ca = {q(tls.ca)}", ""]
    for component in GRPC_COMPONENTS:
        lines += [f"[grpc.{component}]", f"cert = {q(tls.cert)}", f"key = {q(tls.key)}", ""]
    for component in HTTPS_COMPONENTS:
        lines += [f"[https.{component}]", f"cert = {q(tls.cert)}", f"key = {q(tls.key)}", f"ca = {q(tls.ca)}", ""]
    lines += ["[https.client]", "enabled = true", f"cert = {q(tls.cert)}", f"key = {q(tls.key)}",
              f"ca = {q(tls.ca)}", ""]
    return "\n".join(lines)


def _private_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a new 0600 file and move it over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _certificates(host: str) -> tuple[bytes, bytes, bytes]:
    """A CA and one certificate signed by it (server and client use), as PEM: ca, cert, key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mosu embedded SeaweedFS CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mosu embedded SeaweedFS")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem), cert.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def write_config(config_dir: Path, host: str = "127.0.0.1") -> Path:
    """Generate keys and certificates into ``config_dir`` (0700, files 0600); return the directory
    to pass as ``weed -config_dir``."""
    config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(config_dir, 0o700)
    tls = TlsFiles(config_dir / "ca.crt", config_dir / "node.crt", config_dir / "node.key")
    ca, cert, key = _certificates(host)
    _private_write(tls.key, key)
    _private_write(tls.cert, cert)
    _private_write(tls.ca, ca)
    _private_write(config_dir / CONFIG_FILE, render(tls, jwt_keys()).encode())
    return config_dir
