"""ServiceAccount tokens: signed JWTs the API server issues (TokenRequest) and accepts.

A token is an RS256 JWT signed with the control plane's service-account key
(``DATA/pki/sa.key``, made on first start). Its claims are Kubernetes': ``iss``, ``aud``,
``exp``, ``iat``, ``nbf``, ``jti``, ``sub`` = ``system:serviceaccount:NS:NAME`` and
``kubernetes.io`` = {namespace, serviceaccount {name, uid}, pod {name, uid} when bound}.

A presented token authenticates as ``system:serviceaccount:NS:NAME`` (groups
``system:serviceaccounts``, ``system:serviceaccounts:NS``) only while it is unexpired, meant for
this server, and the service account (and the pod it is bound to) still exists with the UID it
was issued for: deleting either revokes it.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from apimachinery.jws import b64url_decode, b64url_encode
from apimachinery.meta import parse_time
from apimachinery.pki import private_key_pem, write_private
from apimachinery.scheme import ResourceType, Scheme
from controlplane.apiserver.authn import AUTHENTICATED, UserInfo
from controlplane.registry.watchcache import WatchCache

ISSUER = "https://kubernetes.default.svc.cluster.local"
# Tokens meant for the API server carry this audience unless the request names others.
API_AUDIENCES = (ISSUER,)
USER_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS = "system:serviceaccounts"
# Clock skew tolerated on nbf/exp between the issuer and other readers of the token.
_LEEWAY = 60

Obj = dict[str, Any]
# (resource type, namespace, name) -> the object as the watch cache has it, or None.
CachedLookup = Callable[[ResourceType, str | None, str], Obj | None]


def service_account_user(namespace: str, name: str) -> str:
    return f"{USER_PREFIX}{namespace}:{name}"


def cache_lookup(cache: WatchCache) -> CachedLookup:
    """Lookups served from the API server's watch cache: no etcd round trip per request."""

    def lookup(rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        return cache.cache_for(rt.storage_prefix()).objects.get(rt.storage_key(namespace, name))

    return lookup


def ensure_signing_key(path: Path) -> rsa.RSAPrivateKey:
    """The service-account signing key at ``path``, created (0600) on first use."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} is not an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, private_key_pem(key))
    return key


@dataclass(frozen=True)
class BoundPod:
    name: str
    uid: str


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires: int  # unix seconds


class TokenSigner:
    """Signs and verifies the cluster's service-account JWTs (RS256)."""

    def __init__(self, key: rsa.RSAPrivateKey, issuer: str = ISSUER) -> None:
        self._key = key
        self._public = key.public_key()
        der = self._public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = b64url_encode(hashlib.sha256(der).digest())
        self.issuer = issuer

    def issue(
        self, namespace: str, name: str, sa_uid: str, audiences: list[str], seconds: int,
        pod: BoundPod | None = None, now: float | None = None,
    ) -> IssuedToken:
        issued = int(now if now is not None else time.time())
        k8s: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": sa_uid}}
        if pod is not None:
            k8s["pod"] = {"name": pod.name, "uid": pod.uid}
        claims = {
            "aud": list(audiences), "exp": issued + seconds, "iat": issued, "iss": self.issuer,
            "jti": str(uuid.uuid4()), "kubernetes.io": k8s, "nbf": issued,
            "sub": service_account_user(namespace, name),
        }
        header = {"alg": "RS256", "kid": self.key_id}
        signing_input = f"{b64url_encode(json.dumps(header, separators=(',', ':')).encode())}." \
                        f"{b64url_encode(json.dumps(claims, separators=(',', ':')).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return IssuedToken(f"{signing_input}.{b64url_encode(signature)}", issued + seconds)

    def verify(self, token: str, now: float | None = None) -> dict[str, Any] | None:
        """The claims of a token this signer made that is valid now, or None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(b64url_decode(parts[0]))
            if not isinstance(header, dict) or header.get("alg") != "RS256":
                return None
            self._public.verify(b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                                hashes.SHA256())
            claims = json.loads(b64url_decode(parts[1]))
        except (ValueError, binascii.Error, InvalidSignature, UnicodeDecodeError):
            return None
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            return None
        t = now if now is not None else time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or not isinstance(nbf, int) or t >= exp or t + _LEEWAY < nbf:
            return None
        return claims


class ServiceAccountTokenAuthenticator:
    """Bearer tokens that are service-account JWTs: ``authenticate`` as the other authenticators."""

    def __init__(self, signer: TokenSigner, scheme: Scheme, lookup: CachedLookup,
                 audiences: tuple[str, ...] = API_AUDIENCES) -> None:
        self.signer = signer
        self.lookup = lookup
        self.audiences = audiences
        sa_rt, pod_rt = scheme.by_resource("", "v1", "serviceaccounts"), scheme.by_resource("", "v1", "pods")
        assert sa_rt is not None and pod_rt is not None
        self.sa_rt, self.pod_rt = sa_rt, pod_rt

    def authenticate_token(self, token: str) -> UserInfo | None:
        """The service account a bearer token speaks for, or None when it is not (or no longer) one."""
        # Cheap shape test first: other tokens never have two dots, so they skip the RSA work.
        if token.count(".") != 2:
            return None
        claims = self.signer.verify(token)
        if claims is None:
            return None
        aud = claims.get("aud")
        if not isinstance(aud, list) or not set(self.audiences) & {str(a) for a in aud}:
            return None
        return self._user(claims)

    def _user(self, claims: dict[str, Any]) -> UserInfo | None:
        k8s = claims.get("kubernetes.io")
        if not isinstance(k8s, dict):
            return None
        ns = str(k8s.get("namespace") or "")
        sa_ref = k8s.get("serviceaccount") or {}
        name, uid = str(sa_ref.get("name") or ""), str(sa_ref.get("uid") or "")
        if claims.get("sub") != service_account_user(ns, name):
            return None
        sa = self.lookup(self.sa_rt, ns, name)
        if sa is None or sa["metadata"].get("uid") != uid:
            return None  # the account was deleted (and maybe re-created): its tokens are revoked
        pod_ref = k8s.get("pod")
        if isinstance(pod_ref, dict):
            pod = self.lookup(self.pod_rt, ns, str(pod_ref.get("name") or ""))
            if pod is None or pod["metadata"].get("uid") != pod_ref.get("uid"):
                return None
            deleting = pod["metadata"].get("deletionTimestamp")
            if deleting and parse_time(deleting).timestamp() < time.time():
                return None
        return UserInfo(service_account_user(ns, name), uid,
                        (ALL_SERVICE_ACCOUNTS, f"{ALL_SERVICE_ACCOUNTS}:{ns}", AUTHENTICATED))
