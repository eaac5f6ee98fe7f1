"""Detached HS256 JWS over cluster-info, keyed by a bootstrap token (kubeadm's discovery).

The control plane signs the cluster-info kubeconfig with each bootstrap token's secret and
publishes ``jws-kubeconfig-<token-id>`` next to it. A node that holds the token can then check,
before trusting anything, that whoever published the CA also knew the token: a
man-in-the-middle without the token cannot forge the signature. The payload is detached: the
stored value is ``<header>..<signature>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url, as JWS and JWT segments are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_detached(payload: str, token_id: str, secret: str) -> str:
    header = b64url_encode(json.dumps({"alg": "HS256", "kid": token_id}, separators=(",", ":")).encode())
    signing_input = f"{header}.{b64url_encode(payload.encode())}".encode()
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}..{b64url_encode(sig)}"


def verify_detached(detached: str, payload: str, token_id: str, secret: str) -> bool:
    """True when ``detached`` is our HS256 signature of ``payload`` by this token."""
    header, _, signature = detached.partition("..")
    try:
        decoded = json.loads(b64url_decode(header))
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(decoded, dict) or decoded.get("alg") != "HS256" or decoded.get("kid") != token_id:
        return False
    return hmac.compare_digest(sign_detached(payload, token_id, secret), f"{header}..{signature}")
