"""Joining nodes with bootstrap tokens: CertificateSigningRequests, approval, signing, cluster-info.

Against the full control plane (API server + controllers), with the real kubectl where a user
would use it and the real ``controlplane token`` / ``nodeagent join`` commands as subprocesses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apimachinery.client import ApiClient, ClientConfig, load_kubeconfig
from apimachinery.errors import ApiError
from apimachinery.jws import sign_detached, verify_detached
from apimachinery.pki import ca_cert_hash
from tests.fixtures.apiserver import ControlPlaneProcess, RawApi
from tests.fixtures.kubectl import Kubectl
from tests.fixtures.wait import eventually

CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"


def _csr_pem(cn: str, orgs: list[str]) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def _csr_body(name: str, pem: bytes, signer: str, usages: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer, "usages": usages},
    }


def _run(*argv: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=timeout)


def _token(cp: ControlPlaneProcess, *extra: str) -> str:
    res = _run("controlplane.main", "token", "create", "--kubeconfig", str(cp.kubeconfig), *extra)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


async def test_invalid_requests_are_refused_with_field_paths(api: RawApi) -> None:
    name = f"bad-{uuid.uuid4().hex[:8]}"
    body = _csr_body(name, b"not a pem", "", ["client auth", "client auth"])
    reply = await api.post(CSR_PATH, body)
    assert reply.status == 422, reply.body
    fields = {c["field"] for c in reply.body["details"]["causes"]}
    assert {"spec.request", "spec.signerName", "spec.usages[1]"} <= fields
    assert (await api.get(f"{CSR_PATH}/{name}")).status == 404


async def test_requester_is_recorded_by_the_server_not_the_body(api: RawApi) -> None:
    name = f"who-{uuid.uuid4().hex[:8]}"
    body = _csr_body(name, _csr_pem("alice", ["devs"]), "kubernetes.io/kube-apiserver-client", ["client auth"])
    body["spec"]["username"] = "someone-else"
    body["spec"]["groups"] = ["system:masters"]
    reply = await api.post(CSR_PATH, body)
    assert reply.status == 201, reply.body
    assert reply.body["spec"]["username"] == "admin"
    assert "system:masters" in reply.body["spec"]["groups"]  # the admin's own group, not the body's
    assert "someone-else" not in str(reply.body["spec"])
    await api.delete(f"{CSR_PATH}/{name}")


async def test_kubectl_certificate_approve_issues_a_working_client_certificate(
    apiserver: ControlPlaneProcess, kubectl: Kubectl, tmp_path: Path,
) -> None:
    name = f"alice-{uuid.uuid4().hex[:8]}"
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devs"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    pem = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM)
    kubectl.ok("create", "-f", "-", stdin=json.dumps(
        _csr_body(name, pem, "kubernetes.io/kube-apiserver-client", ["digital signature", "client auth"])))
    assert "Pending" in kubectl.ok("get", "csr", name)
    kubectl.ok("certificate", "approve", name)

    async def issued() -> str | None:
        return kubectl.json("get", "csr", name, "-o", "json").get("status", {}).get("certificate")

    cert_b64 = await eventually(issued, "the signer to issue the approved request", timeout=30)
    assert "Approved,Issued" in kubectl.ok("get", "csr", name)
    cert = x509.load_pem_x509_certificate(base64.b64decode(cert_b64))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    ca = x509.load_pem_x509_certificate(apiserver.ca_file.read_bytes())
    assert cert.issuer == ca.subject
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg, union-attr, arg-type]

    # The issued certificate authenticates as alice (groups from O).
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    config = ClientConfig(server=apiserver.url, ca_data=apiserver.ca_file.read_bytes(),
                          client_cert_data=base64.b64decode(cert_b64), client_key_data=key_pem)
    async with ApiClient(config) as client:
        review = await client.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert review["status"]["userInfo"]["username"] == "alice"
    assert "devs" in review["status"]["userInfo"]["groups"]
    kubectl.ok("delete", "csr", name)


async def test_denied_or_invalid_requests_get_no_certificate(api: RawApi, kubectl: Kubectl) -> None:
    denied = f"deny-{uuid.uuid4().hex[:8]}"
    kubectl.ok("create", "-f", "-", stdin=json.dumps(_csr_body(
        denied, _csr_pem("mallory", []), "kubernetes.io/kube-apiserver-client", ["client auth"])))
    kubectl.ok("certificate", "deny", denied)
    # A node-client request whose subject is not a node's: approved by hand, refused by the signer.
    bad = f"badnode-{uuid.uuid4().hex[:8]}"
    kubectl.ok("create", "-f", "-", stdin=json.dumps(_csr_body(
        bad, _csr_pem("system:node:x", ["system:masters"]), "kubernetes.io/kube-apiserver-client-kubelet",
        ["digital signature", "client auth"])))
    kubectl.ok("certificate", "approve", bad)

    async def failed() -> dict[str, Any] | None:
        conds = (kubectl.json("get", "csr", bad, "-o", "json").get("status") or {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "Failed"), None)

    cond = await eventually(failed, "the signer to mark the request Failed", timeout=30)
    assert "organization" in cond["message"]
    await asyncio.sleep(1.0)  # give a (wrong) signer the chance to act
    for name in (denied, bad):
        got = (await api.get(f"{CSR_PATH}/{name}")).body
        assert not (got.get("status") or {}).get("certificate"), name
    # An approval may not be withdrawn.
    got = (await api.get(f"{CSR_PATH}/{bad}")).body
    got["status"]["conditions"] = [c for c in got["status"]["conditions"] if c["type"] != "Approved"]
    reply = await api.put(f"{CSR_PATH}/{bad}/approval", got)
    assert reply.status == 422, reply.body
    kubectl.ok("delete", "csr", denied, bad)


async def test_cluster_info_is_public_and_signed_per_token(apiserver: ControlPlaneProcess, api: RawApi) -> None:
    token = _token(apiserver, "--ttl", "10m")
    token_id, _, secret = token.partition(".")
    async with ApiClient(ClientConfig(server=apiserver.url, ca_data=apiserver.ca_file.read_bytes())) as anonymous:
        async def signed() -> dict[str, str] | None:
            cm = await anonymous.request("GET", CLUSTER_INFO)
            data: dict[str, str] = cm["data"]
            return data if f"jws-kubeconfig-{token_id}" in data else None

        data = await eventually(signed, "cluster-info to carry the new token's signature", timeout=30)
        assert verify_detached(data[f"jws-kubeconfig-{token_id}"], data["kubeconfig"], token_id, secret)
        assert not verify_detached(data[f"jws-kubeconfig-{token_id}"], data["kubeconfig"], token_id, "x" * 16)
        assert not verify_detached(sign_detached(data["kubeconfig"], token_id, "y" * 16), data["kubeconfig"], token_id, secret)
        # Nothing else is open to anonymous callers.
        with pytest.raises(ApiError) as e:
            await anonymous.request("GET", "/api/v1/namespaces/kube-public/configmaps")
        assert e.value.code == 401
    # Deleting the token removes its signature.
    res = _run("controlplane.main", "token", "delete", "--kubeconfig", str(apiserver.kubeconfig), token_id)
    assert res.returncode == 0, res.stderr

    async def unsigned() -> bool:
        got = await api.get(CLUSTER_INFO)
        return f"jws-kubeconfig-{token_id}" not in got.body["data"]

    await eventually(unsigned, "the deleted token's signature to go", timeout=30)


async def test_nodeagent_join_gets_a_node_identity(apiserver: ControlPlaneProcess, tmp_path: Path) -> None:
    token = _token(apiserver, "--ttl", "10m")
    ca_hash = ca_cert_hash(apiserver.ca_file.read_bytes())
    node = f"join-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "node.kubeconfig"
    res = _run("nodeagent.main", "join", "--server", apiserver.url, "--token", token, "--ca-cert-hash", ca_hash,
               "--node-name", node, "--kubeconfig", str(out), "--timeout", "60")
    assert res.returncode == 0, res.stderr
    assert out.stat().st_mode & 0o077 == 0
    config = load_kubeconfig(out)
    assert config.token is None and config.client_cert_data
    async with ApiClient(config) as client:
        review = await client.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        assert review["status"]["userInfo"]["username"] == f"system:node:{node}"
        assert "system:nodes" in review["status"]["userInfo"]["groups"]
    # The bootstrap token itself can do nothing but ask for a certificate.
    async with ApiClient(ClientConfig(server=apiserver.url, ca_data=apiserver.ca_file.read_bytes(), token=token)) as boot:
        with pytest.raises(ApiError) as e:
            await boot.request("GET", "/api/v1/pods")
        assert e.value.code == 403
        assert f"system:bootstrap:{token.partition('.')[0]}" in e.value.message


async def test_join_refuses_a_wrong_hash_or_token(apiserver: ControlPlaneProcess, tmp_path: Path) -> None:
    token = _token(apiserver, "--ttl", "10m")
    out = tmp_path / "kc"
    wrong_hash = "sha256:" + "0" * 64
    res = _run("nodeagent.main", "join", "--server", apiserver.url, "--token", token, "--ca-cert-hash", wrong_hash,
               "--node-name", "n", "--kubeconfig", str(out), "--timeout", "20")
    assert res.returncode == 1
    assert "does not match --ca-cert-hash" in res.stderr and "Traceback" not in res.stderr
    forged = token.partition(".")[0] + "." + "a" * 16
    res = _run("nodeagent.main", "join", "--server", apiserver.url, "--token", forged,
               "--node-name", "n", "--kubeconfig", str(out), "--timeout", "20")
    assert res.returncode == 1
    assert "signature does not match the token" in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()


async def test_expired_token_does_not_authenticate(apiserver: ControlPlaneProcess) -> None:
    token = _token(apiserver, "--ttl", "1s")
    await asyncio.sleep(2.0)
    async with ApiClient(ClientConfig(server=apiserver.url, ca_data=apiserver.ca_file.read_bytes(), token=token)) as boot:
        with pytest.raises(ApiError) as e:
            await boot.request("POST", CSR_PATH, body=_csr_body(
                f"late-{uuid.uuid4().hex[:6]}", _csr_pem("system:node:late", ["system:nodes"]),
                "kubernetes.io/kube-apiserver-client-kubelet", ["digital signature", "client auth"]))
        assert e.value.code == 401
