"""Building blocks of X.509 certificates and their keys, shared by the control plane's CA
(:mod:`controlplane.apiserver.certs`) and the node agent's self-signed serving certificate
(:mod:`nodeagent.agent.servingcert`), which may not import each other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes, PrivateKeyTypes

# EC P-256 keys: as widely supported as RSA by Go's TLS stack and much faster to generate.
CURVE = ec.SECP256R1()
# Backdated a little so a peer whose clock lags slightly behind still accepts a new certificate.
_BACKDATE = dt.timedelta(minutes=5)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(CURVE)


def private_key_pem(key: PrivateKeyTypes) -> bytes:
    """An unencrypted PKCS#8 PEM of ``key`` (kept in 0600 files, see :func:`write_private`)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file atomically with mode 0600 (no window where it is world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def general_names(names: list[str]) -> list[x509.GeneralName]:
    """Subject alternative names: an IP address entry for what parses as one, else a DNS name."""
    out: list[x509.GeneralName] = []
    for s in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            out.append(x509.DNSName(s))
    return out


def certificate_builder(subject: x509.Name, issuer: x509.Name, public_key: CertificatePublicKeyTypes,
                        not_after: dt.datetime, now: dt.datetime) -> x509.CertificateBuilder:
    """A certificate for ``public_key`` valid from (a little before) ``now`` to ``not_after``,
    with a random serial; the caller adds its extensions and signs."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
    )


def leaf_builder(subject: x509.Name, issuer: x509.Name, public_key: CertificatePublicKeyTypes,
                 not_after: dt.datetime, now: dt.datetime,
                 extended_usages: list[x509.ObjectIdentifier]) -> x509.CertificateBuilder:
    """:func:`certificate_builder` for an end-entity certificate (not a CA) for ``extended_usages``."""
    return (
        certificate_builder(subject, issuer, public_key, not_after, now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(extended_usages), critical=False)
    )


def ca_cert_hash(ca_pem: bytes) -> str:
    """``sha256:<hex>`` of a CA's DER SubjectPublicKeyInfo (kubeadm's discovery hash): printed
    with join tokens by the control plane, checked by joining nodes."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()
