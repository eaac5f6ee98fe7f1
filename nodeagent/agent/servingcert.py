"""The agent's own TLS identity: a self-signed serving certificate kept in its data dir.

Nobody signs it: the API server trusts it because the agent publishes its fingerprint on its
Node (see :mod:`apimachinery.agentapi`), and only the node itself may write its Node. It is made
on first start and re-made when it nears expiry or no longer names the node's IP, so the
fingerprint stays stable across restarts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apimachinery.agentapi import cert_fingerprint

_LIFETIME = dt.timedelta(days=365)
_RENEW_BEFORE = dt.timedelta(days=30)


def _names(node_name: str, node_ip: str) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = [x509.DNSName(node_name)]
    try:
        out.append(x509.IPAddress(ipaddress.ip_address(node_ip)))
    except ValueError:
        out.append(x509.DNSName(node_ip))
    return out


def _usable(cert_file: Path, key_file: Path, node_ip: str) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key_file.stat()
    except (FileNotFoundError, ValueError):
        return False
    if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < _RENEW_BEFORE:
        return False
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return node_ip in ips or node_ip in sans.get_values_for_type(x509.DNSName)


def ensure_serving_cert(directory: Path, node_name: str, node_ip: str) -> tuple[Path, Path, str]:
    """(cert file, key file, SHA-256 fingerprint) of the agent's serving certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "agent.crt", directory / "agent.key"
    if not _usable(cert_file, key_file, node_ip):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@agent")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(_names(node_name, node_ip)), critical=False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        tmp = key_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        os.replace(tmp, key_file)
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der = x509.load_pem_x509_certificate(cert_file.read_bytes()).public_bytes(serialization.Encoding.DER)
    return cert_file, key_file, cert_fingerprint(der)
