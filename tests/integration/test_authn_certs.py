"""Client-certificate authentication and per-component credentials against a real control plane."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fixtures.apiserver import ControlPlaneProcess
from tests.fixtures.kubectl import Kubectl
from tests.fixtures.users import user_api

pytestmark = pytest.mark.integration

SSR = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def _controlplane(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controlplane.main", *args], capture_output=True, text=True,
                          timeout=60)


def _whoami(binary: str, kubeconfig: Path, cache: Path) -> dict[str, object]:
    out = Kubectl(binary, kubeconfig, cache).ok("auth", "whoami", "-o", "json")
    return dict(json.loads(out)["status"]["userInfo"])


async def test_certificate_names_user_and_groups(bare_apiserver: ControlPlaneProcess) -> None:
    async with user_api(bare_apiserver, "grace", ("ops", "devs")) as client:
        r = await client.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", SSR)
        assert r.status == 201, r.body
        assert r.body["status"]["userInfo"] == {"username": "grace",
                                                "groups": ["ops", "devs", "system:authenticated"]}


def _foreign_cert(directory: Path) -> tuple[Path, Path]:
    """A client certificate from a CA the cluster never heard of."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    crt, pem = directory / "f.crt", directory / "f.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


async def test_certificate_from_another_ca_is_refused(bare_apiserver: ControlPlaneProcess) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        crt, key = _foreign_cert(Path(tmp))
        ctx = bare_apiserver.ssl_context()
        ctx.load_cert_chain(crt, key)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
            with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError, asyncio.TimeoutError)):
                async with session.get(f"{bare_apiserver.url}/api/v1/namespaces") as r:
                    # TLS 1.3 may report the refusal only when the response is read.
                    await r.read()
                    assert r.status != 200


def test_components_have_their_own_credentials(bare_apiserver: ControlPlaneProcess, kubectl_binary: str) -> None:
    data = bare_apiserver.data_dir
    token = bare_apiserver.token
    with tempfile.TemporaryDirectory() as cache:
        for filename, user in (("controllers.kubeconfig", "system:kube-controller-manager"),
                               ("scheduler.kubeconfig", "system:kube-scheduler")):
            path = data / filename
            assert token not in path.read_text()
            doc = yaml.safe_load(path.read_text())
            assert "client-certificate-data" in doc["users"][0]["user"]
            assert _whoami(kubectl_binary, path, Path(cache))["username"] == user


def test_cli_issues_node_and_user_credentials(bare_apiserver: ControlPlaneProcess, kubectl_binary: str) -> None:
    data = bare_apiserver.data_dir
    res = _controlplane("node-credentials", "--data-dir", str(data), "--node", "cli-node")
    assert res.returncode == 0, res.stderr
    path = Path(res.stdout.strip())
    assert path == data / "nodes" / "cli-node.kubeconfig"
    with tempfile.TemporaryDirectory() as tmp:
        who = _whoami(kubectl_binary, path, Path(tmp) / "cache")
        assert who["username"] == "system:node:cli-node" and "system:nodes" in who["groups"]  # type: ignore[operator]
        res = _controlplane("certs", "issue", "--data-dir", str(data), "--user", "heidi", "--group", "qa",
                            "--out", tmp)
        assert res.returncode == 0, res.stderr
        assert (Path(tmp) / "heidi.crt").exists() and (Path(tmp) / "heidi.key").stat().st_mode & 0o077 == 0
        who = _whoami(kubectl_binary, Path(res.stdout.strip()), Path(tmp) / "cache")
        assert who["username"] == "heidi" and who["groups"] == ["qa", "system:authenticated"]
    res = _controlplane("node-credentials", "--data-dir", str(data), "--node", "../etc")
    assert res.returncode == 1 and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = _controlplane("node-credentials", "--data-dir", "/nonexistent-kl", "--node", "n")
    assert res.returncode == 1 and "no cluster CA" in res.stderr
