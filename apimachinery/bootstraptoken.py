"""Bootstrap (join) tokens: format, storage as Secrets, and reading them back.

Same as Kubernetes: a token ``<id>.<secret>`` (6 and 16 characters of ``[a-z0-9]``) lives in
the Secret ``kube-system/bootstrap-token-<id>`` of type ``bootstrap.kubernetes.io/token``. Used
by the API server (authentication), the bootstrap signer (signing cluster-info), the
``controlplane token`` command and joining nodes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
NAMESPACE = "kube-system"
GROUP = "system:bootstrappers"
USER_PREFIX = "system:bootstrap:"
_ALPHABET = string.ascii_lowercase + string.digits


def generate_token() -> str:
    """A fresh ``<id>.<secret>`` token."""
    pick = lambda n: "".join(secrets.choice(_ALPHABET) for _ in range(n))  # noqa: E731
    return f"{pick(6)}.{pick(16)}"


@dataclass(frozen=True)
class BootstrapToken:
    token_id: str
    secret: str

    @classmethod
    def parse(cls, token: str) -> BootstrapToken:
        m = TOKEN_RE.match(token)
        if not m:
            raise ValueError("a bootstrap token looks like abcdef.0123456789abcdef ([a-z0-9]{6}.[a-z0-9]{16})")
        return cls(m.group(1), m.group(2))

    def secret_manifest(self, ttl_seconds: float | None, description: str = "",
                        extra_groups: list[str] | None = None) -> dict[str, Any]:
        """The Secret that makes this token valid."""
        data = {
            "token-id": self.token_id,
            "token-secret": self.secret,
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
        }
        if ttl_seconds:
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl_seconds)
            data["expiration"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        if description:
            data["description"] = description
        if extra_groups:
            data["auth-extra-groups"] = ",".join(extra_groups)
        return {
            "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {"name": SECRET_PREFIX + self.token_id, "namespace": NAMESPACE},
            "stringData": data,
        }


def secret_fields(data: dict[str, Any] | None) -> dict[str, str]:
    """A token Secret's ``data``, decoded (undecodable values are left out)."""
    out: dict[str, str] = {}
    for key, raw in (data or {}).items():
        if not isinstance(raw, str):
            continue
        try:
            out[key] = base64.b64decode(raw, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
    return out


def seconds_left(fields: dict[str, str], now: dt.datetime) -> float | None:
    """Seconds until the token expires (<= 0: expired; None: never). An unreadable expiry
    counts as expired, never as "forever"."""
    expiration = fields.get("expiration")
    if not expiration:
        return None
    try:
        when = dt.datetime.fromisoformat(expiration.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (when - now).total_seconds()
