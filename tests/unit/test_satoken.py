"""Service-account JWTs: sign, verify, expiry, tampering."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from controlplane.apiserver.satoken import BoundPod, TokenSigner, ensure_signing_key


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> TokenSigner:
    return TokenSigner(ensure_signing_key(tmp_path_factory.mktemp("sa") / "sa.key"))


def claims_of(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def test_claims_are_kubernetes_shaped(signer: TokenSigner) -> None:
    issued = signer.issue("ns", "sa", "uid-1", ["aud"], 600, BoundPod("p", "uid-p"), now=1000)
    c = claims_of(issued.token)
    assert c["sub"] == "system:serviceaccount:ns:sa" and c["aud"] == ["aud"]
    assert (c["iat"], c["nbf"], c["exp"]) == (1000, 1000, 1600) and issued.expires == 1600
    assert c["kubernetes.io"] == {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "uid-1"},
                                  "pod": {"name": "p", "uid": "uid-p"}}
    header = json.loads(base64.urlsafe_b64decode(issued.token.split(".")[0] + "=="))
    assert header == {"alg": "RS256", "kid": signer.key_id}


def test_verify_accepts_fresh_and_refuses_expired_tampered_and_foreign(signer: TokenSigner, tmp_path: Path) -> None:
    token = signer.issue("ns", "sa", "u", ["a"], 600).token
    assert signer.verify(token) is not None
    assert signer.verify(token, now=time.time() + 601) is None
    head, _body, sig = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**claims_of(token), "sub": "system:admin"}).encode()).rstrip(b"=")
    assert signer.verify(f"{head}.{forged.decode()}.{sig}") is None
    other = TokenSigner(ensure_signing_key(tmp_path / "other.key"))
    assert other.verify(token) is None
    assert signer.verify("not.a.jwt") is None and signer.verify("x") is None


def test_signing_key_is_kept_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "pki" / "sa.key"
    first = TokenSigner(ensure_signing_key(path))
    assert path.stat().st_mode & 0o777 == 0o600
    assert TokenSigner(ensure_signing_key(path)).key_id == first.key_id
