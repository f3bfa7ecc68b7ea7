"""The sandbox CA and the TLS certificate the offline mirror presents for the real upstream names.

Sandbox hosts trust this CA (as a cloud image with a corporate CA would), so `https://download.docker.com`
answered by the mirror container verifies like the real one. Kept under `<cache>/sandbox-ca/`:
ca.pem, ca.key (0600), server.pem (server certificate + CA), server.key (0600). The server
certificate is reissued when the names it must cover change, it nears expiry, or the CA changes.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

SERVER_NAMES = ("download.docker.com", "nvidia.github.io")
CA_NAME = "Provision sandbox CA (offline upstreams)"  # trusted by sandbox hosts only
CA_DAYS = 3650
SERVER_DAYS = 397
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class Certificates:
    """PEM texts; the keys stay in their files and are never logged."""

    ca_pem: str
    server_chain_pem: str
    server_key_path: Path
    server_chain_path: Path

    @property
    def fingerprint(self) -> str:
        """Short identity of the server certificate (changes when it is reissued)."""
        return hashlib.sha256(self.server_chain_pem.encode()).hexdigest()[:16]


def ensure_certificates(cache: Path, names: tuple[str, ...] = SERVER_NAMES) -> Certificates:
    """The CA (created once) and a current server certificate for `names`."""
    folder = cache / "sandbox-ca"
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ensure_ca(folder)
    chain_path, key_path = folder / "server.pem", folder / "server.key"
    if not _server_cert_is_current(chain_path, key_path, ca_cert, names):
        key = _new_key()
        cert = issue_server_cert(ca_key, ca_cert, key.public_key(), names)
        _write_private_key(key_path, key)
        chain_path.write_bytes(_pem(cert) + _pem(ca_cert))
    return Certificates(_pem(ca_cert).decode(), chain_path.read_text(), key_path, chain_path)


def _ensure_ca(folder: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key_path, cert_path = folder / "ca.key", folder / "ca.pem"
    if key_path.exists() and cert_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc - _now() > RENEW_BEFORE:
            return serialization.load_pem_private_key(key_path.read_bytes(), None), cert
    key = _new_key()
    cert = issue_ca_cert(key)
    _write_private_key(key_path, key)
    cert_path.write_bytes(_pem(cert))
    return key, cert


def issue_ca_cert(key):
    """A self-signed CA certificate that may sign server certificates only (path length 0)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "provision sandbox")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        _builder(name, name, key.public_key(), CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )


def issue_server_cert(ca_key, ca_cert, public_key, names: tuple[str, ...]):
    """A TLS server certificate for `names` (subjectAltName), signed by the sandbox CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    return (
        _builder(subject, ca_cert.subject, public_key, SERVER_DAYS)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def certificate_names(cert) -> tuple[str, ...]:
    """The DNS names of a certificate's subjectAltName, in order."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.DNSName))


def _server_cert_is_current(chain_path: Path, key_path: Path, ca_cert, names: tuple[str, ...]) -> bool:
    from cryptography import x509

    if not (chain_path.exists() and key_path.exists()):
        return False
    cert = x509.load_pem_x509_certificates(chain_path.read_bytes())[0]
    return (certificate_names(cert) == tuple(names) and cert.issuer == ca_cert.subject
            and _signed_by(cert, ca_cert) and cert.not_valid_after_utc - _now() > RENEW_BEFORE)


def _signed_by(cert, ca_cert) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError):  # another CA, or another kind of key
        return False
    return True


def _builder(subject, issuer, public_key, days: int):
    from cryptography import x509

    now = _now()
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days)))


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write_private_key(path: Path, key) -> None:
    from cryptography.hazmat.primitives import serialization

    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
