"""The agent's own TLS identity: a self-signed serving certificate kept in its data dir.

Nobody signs it: the API server trusts it because the agent publishes its fingerprint on its
Node (see :mod:`apimachinery.agentapi`), and only the node itself may write its Node. It is made
on first start and re-made when it nears expiry or no longer names the node's IP, so the
fingerprint stays stable across restarts.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apimachinery.agentapi import cert_fingerprint
from apimachinery.pki import general_names, leaf_builder, new_key, private_key_pem, write_private

_LIFETIME = dt.timedelta(days=365)
_RENEW_BEFORE = dt.timedelta(days=30)


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
        key = new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@agent")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            leaf_builder(name, name, key.public_key(), now + _LIFETIME, now, [ExtendedKeyUsageOID.SERVER_AUTH])
            # The node's name first; its IP as an IP address entry (a DNS name if it is none).
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(node_name), *general_names([node_ip])]),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        write_private(key_file, private_key_pem(key))
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der = x509.load_pem_x509_certificate(cert_file.read_bytes()).public_bytes(serialization.Encoding.DER)
    return cert_file, key_file, cert_fingerprint(der)
