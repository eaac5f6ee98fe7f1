"""``nodeagent join``: turn a join token into this node's own credentials (TLS bootstrap).

The steps are Kubernetes' (kubeadm join + kubelet TLS bootstrap):

1. Fetch the public ``kube-public/cluster-info`` ConfigMap over TLS *without* trusting the
   server yet, and accept the CA it names only if the control plane signed it with the join
   token (``jws-kubeconfig-<token-id>``, which only holders of the token can make) and, when
   ``--ca-cert-hash`` is given (printed by the server with the token), the SHA-256 of the CA's
   public key matches. From here on every connection verifies the server against that CA, so
   the token itself is only ever sent to the real server.
2. Make a fresh key pair on this node (the private key never leaves it) and post a
   CertificateSigningRequest for ``CN=system:node:<name>, O=system:nodes`` to the
   ``kubernetes.io/kube-apiserver-client-kubelet`` signer, authenticated by the bootstrap token.
3. Wait for the control plane to approve and sign it, then write a kubeconfig (mode 0600) with
   the issued certificate and the key. The agent runs with that kubeconfig as
   ``system:node:<name>``, which node restriction confines to its own Node, Lease and pods.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from apimachinery import bootstraptoken as bt
from apimachinery.api.certificates_v1 import SIGNER_KUBELET_CLIENT, CertificateSigningRequest
from apimachinery.client import ApiClient, ClientConfig
from apimachinery.client.kubeconfig import write_kubeconfig
from apimachinery.jws import verify_detached
from apimachinery.pki import ca_cert_hash, new_key, private_key_pem

CLUSTER_INFO_PATH = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
SIGNATURE_PREFIX = "jws-kubeconfig-"


class JoinError(Exception):
    """A join that cannot go on; the message is for the person running it."""


class ServerUnreachable(JoinError):
    """The server did not answer (yet): machines provisioned together boot in any order."""


async def _get_cluster_info(server: str, timeout: float) -> dict[str, str]:
    url = server.rstrip("/") + CLUSTER_INFO_PATH
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
            # Not verified on purpose: what we get is checked below against the token's
            # signature (and the pinned CA hash), and nothing secret is sent on this connection.
            async with s.get(url, ssl=False) as resp:
                if resp.status != 200:
                    raise JoinError(f"{server} did not hand out cluster-info (HTTP {resp.status}); is it a kube-lite server?")
                doc: dict[str, Any] = await resp.json()
    except (aiohttp.ClientError, TimeoutError) as e:
        raise ServerUnreachable(f"cannot reach {server}: {e}") from e
    data = doc.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("kubeconfig"), str):
        raise JoinError(f"{server} answered with a cluster-info that holds no kubeconfig")
    return data


async def fetch_cluster_ca(server: str, token: str, expected_hash: str | None, timeout: float = 30.0) -> bytes:
    """The cluster CA from cluster-info, accepted only if the bootstrap token signed it and, when
    ``expected_hash`` is given, its public key matches that hash."""
    if expected_hash is not None and (not expected_hash.startswith("sha256:") or len(expected_hash) != 7 + 64):
        raise JoinError("--ca-cert-hash must look like sha256:<64 hex digits>")
    token_id, _, secret = token.partition(".")
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = await _get_cluster_info(server, min(10.0, timeout))
        except ServerUnreachable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)
            continue
        signature = data.get(SIGNATURE_PREFIX + token_id)
        if signature is not None:
            break
        # The control plane signs cluster-info for a new token within moments of its creation.
        if time.monotonic() > deadline:
            raise JoinError(f"cluster-info carries no signature for token {token_id!r}: the token is unknown or expired")
        await asyncio.sleep(0.5)
    if not verify_detached(signature, data["kubeconfig"], token_id, secret):
        raise JoinError("cluster-info's signature does not match the token: wrong token, or not the server you meant")
    try:
        kubeconfig = yaml.safe_load(data["kubeconfig"])
        ca_pem = base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"])
        got = ca_cert_hash(ca_pem)
    except (KeyError, IndexError, TypeError, ValueError, yaml.YAMLError) as e:
        raise JoinError(f"{server} answered with a cluster-info that holds no usable CA ({e})") from e
    if expected_hash is not None and not hmac.compare_digest(got, expected_hash.lower()):
        raise JoinError(f"the server's CA does not match --ca-cert-hash (it is {got}); refusing to join")
    return ca_pem


def node_key_and_request(node_name: str) -> tuple[bytes, bytes]:
    """A new private key (PEM) and a certificate request for the node's client identity."""
    key = new_key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}"),
    ])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return private_key_pem(key), csr.public_bytes(serialization.Encoding.PEM)


async def request_node_certificate(client: ApiClient, node_name: str, timeout: float) -> tuple[bytes, bytes]:
    """Post the CSR and wait until it is issued; returns (certificate PEM, key PEM)."""
    key_pem, csr_pem = node_key_and_request(node_name)
    rt = client.resource(CertificateSigningRequest)
    body = {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": f"node-csr-{node_name}-{secrets.token_hex(4)}"},
        "spec": {"request": base64.b64encode(csr_pem).decode(), "signerName": SIGNER_KUBELET_CLIENT,
                 "usages": ["digital signature", "client auth"]},
    }
    created = await client.create(rt, body)
    name = created["metadata"]["name"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        csr = await client.get(rt, name)
        status = csr.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") in ("Denied", "Failed") and cond.get("status") == "True":
                raise JoinError(f"certificate request {name} was {cond['type'].lower()}: {cond.get('message') or cond.get('reason')}")
        if status.get("certificate"):
            return base64.b64decode(status["certificate"]), key_pem
        await asyncio.sleep(0.3)
    raise JoinError(f"certificate request {name} was not signed within {timeout:.0f}s "
                    f"(approve it with: kubectl certificate approve {name})")


async def join(server: str, token: str, expected_hash: str | None, node_name: str, kubeconfig: Path,
               timeout: float = 120.0) -> Path:
    """The whole join; writes and returns ``kubeconfig``."""
    if not bt.TOKEN_RE.match(token):
        raise JoinError("a join token looks like abcdef.0123456789abcdef ([a-z0-9]{6}.[a-z0-9]{16})")
    ca_pem = await fetch_cluster_ca(server, token, expected_hash, timeout)
    async with ApiClient(ClientConfig(server=server, ca_data=ca_pem, token=token)) as client:
        cert_pem, key_pem = await request_node_certificate(client, node_name, timeout)
    return write_kubeconfig(kubeconfig, server, ca_pem, None, user=f"system:node:{node_name}",
                            client_cert=cert_pem, client_key=key_pem)


def main(argv: list[str]) -> int:
    """``nodeagent join --server URL --token T --ca-cert-hash sha256:H --node-name N --kubeconfig F``."""
    p = argparse.ArgumentParser(prog="nodeagent join", description="get this node's credentials with a join token")
    p.add_argument("--server", required=True, help="the API server, https://HOST:PORT")
    p.add_argument("--token", required=True, help="bootstrap token from `controlplane token create`")
    p.add_argument("--ca-cert-hash", default=None,
                   help="sha256:<hex> of the cluster CA's public key (pins the CA; without it the token's signature alone vouches)")
    p.add_argument("--node-name", default=socket.gethostname(), help="this node's name (default: hostname)")
    p.add_argument("--kubeconfig", type=Path, required=True, help="where to write the node's kubeconfig")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds to wait for the server to answer and for the certificate (default 300)")
    args = p.parse_args(argv)
    try:
        path = asyncio.run(join(args.server, args.token, args.ca_cert_hash, args.node_name, args.kubeconfig, args.timeout))
    except JoinError as e:
        print(f"nodeagent join: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # one readable line, never a traceback
        print(f"nodeagent join: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"node {args.node_name} joined; credentials written to {path}")
    return 0
