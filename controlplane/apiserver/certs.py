"""The control plane's PKI: a CA and a serving certificate, generated on first start.

kubectl only sends bearer tokens over https, so TLS is on from the first start. The CA
persists in the data dir (kubeconfigs embed it); the serving certificate is re-issued whenever
the set of names/addresses it must cover changes (a new --bind-address or --tls-san).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apimachinery.agentapi import APISERVER_CLIENT_CN
from apimachinery.pki import (
    certificate_builder,
    general_names,
    leaf_builder,
    new_key,
    private_key_pem,
    write_private,
)

_CA_YEARS = 10
_SERVING_YEARS = 1


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path

    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()


def default_sans(bind_address: str, extra: list[str] | None = None) -> list[str]:
    names = ["localhost", "127.0.0.1", "::1", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    names.append(socket.gethostname())
    if bind_address not in ("0.0.0.0", "::", ""):
        names.append(bind_address)
    names.extend(extra or [])
    return sorted(set(names))


def _issue_ca(pki_dir: Path) -> None:
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-lite-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        certificate_builder(name, name, key.public_key(), now + dt.timedelta(days=365 * _CA_YEARS), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    write_private(pki_dir / "ca.key", private_key_pem(key))
    (pki_dir / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def issue_certificate(
    pki: Pki, common_name: str, *, sans: list[str] | None = None, organizations: list[str] | None = None,
    server: bool = False, client: bool = False, days: int = 365 * _SERVING_YEARS,
) -> tuple[bytes, bytes]:
    """Issue a certificate signed by the cluster CA; returns (cert PEM, key PEM).

    Client certificates name the user in CN and its groups in O, as Kubernetes reads them.
    """
    key = new_key()
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations or []]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    cert = sign_public_key(pki.ca_cert, pki.ca_key, x509.Name(attrs), key.public_key(), usages, sans=sans,
                           lifetime=dt.timedelta(days=days))
    return cert, private_key_pem(key)


def sign_public_key(
    ca_cert_file: Path, ca_key_file: Path, subject: x509.Name, public_key: CertificatePublicKeyTypes,
    extended_usages: list[x509.ObjectIdentifier], *, sans: list[str] | None = None,
    lifetime: dt.timedelta, key_usage_encipherment: bool = False,
) -> bytes:
    """A leaf certificate for ``public_key`` signed by the CA in those files (PEM). Also what the
    certificate signer issues for an approved CertificateSigningRequest."""
    ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_file.read_bytes())
    now = dt.datetime.now(dt.UTC)
    # Never beyond the CA's own validity: a chain that expires mid-way helps nobody.
    not_after = min(now + lifetime, ca_cert.not_valid_after_utc)
    builder = leaf_builder(subject, ca_cert.subject, public_key, not_after, now, extended_usages)
    if key_usage_encipherment:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_encipherment=True, content_commitment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
        ), critical=True)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names(sans)), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _serving_sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    out = {str(v) for v in ext.get_values_for_type(x509.IPAddress)}
    out.update(ext.get_values_for_type(x509.DNSName))
    return out


def ensure_pki(pki_dir: Path, sans: list[str]) -> Pki:
    """Create the CA once, and (re)issue the serving certificate when it is missing, expiring
    within 30 days, or does not cover ``sans``."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki = Pki(pki_dir / "ca.crt", pki_dir / "ca.key", pki_dir / "apiserver.crt", pki_dir / "apiserver.key")
    if not (pki.ca_cert.exists() and pki.ca_key.exists()):
        _issue_ca(pki_dir)
    want = {str(ipaddress.ip_address(s)) if _is_ip(s) else s for s in sans}
    reissue = not (pki.serving_cert.exists() and pki.serving_key.exists())
    if not reissue:
        cert = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
        expiring = cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < dt.timedelta(days=30)
        reissue = expiring or not want <= _serving_sans(pki.serving_cert)
    if reissue:
        cert_pem, key_pem = issue_certificate(pki, "kube-apiserver", sans=sans, server=True)
        write_private(pki.serving_key, key_pem)
        pki.serving_cert.write_bytes(cert_pem)
    return pki


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


def ensure_agent_client_cert(pki: Pki) -> tuple[Path, Path]:
    """The API server's client certificate for node agents (logs, exec): CN
    ``kube-apiserver-kubelet-client``, signed by the cluster CA; re-issued when missing or
    expiring within 30 days. Returns (cert file, key file)."""
    cert_file = pki.ca_cert.with_name("apiserver-kubelet-client.crt")
    key_file = pki.ca_cert.with_name("apiserver-kubelet-client.key")
    if cert_file.exists() and key_file.exists():
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) >= dt.timedelta(days=30):
            return cert_file, key_file
    cert_pem, key_pem = issue_certificate(pki, APISERVER_CLIENT_CN, client=True)
    write_private(key_file, key_pem)
    cert_file.write_bytes(cert_pem)
    return cert_file, key_file
