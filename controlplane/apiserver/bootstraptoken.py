"""Bootstrap-token authentication (see :mod:`apimachinery.bootstraptoken` for the format).

A valid, unexpired token authenticates as ``system:bootstrap:<id>`` in the group
``system:bootstrappers`` (plus the Secret's ``auth-extra-groups``). That identity may only create
a CertificateSigningRequest for a node client certificate, which the control plane approves and
signs: the join token never becomes the node's credential.

Lookups read the API server's watch cache (no etcd round trip per request); the secret part is
compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hmac

from apimachinery import bootstraptoken as bt
from controlplane.apiserver.authn import UserInfo
from controlplane.registry.watchcache import ResourceCache


class BootstrapTokenAuthenticator:
    """Authenticates bearer tokens against bootstrap-token Secrets in the watch cache."""

    def __init__(self, secrets_cache: ResourceCache) -> None:
        self._cache = secrets_cache

    def authenticate_token(self, token: str) -> UserInfo | None:
        m = bt.TOKEN_RE.match(token)
        if not m:
            return None
        token_id, secret = m.group(1), m.group(2)
        obj = self._cache.objects.get(f"{self._cache.prefix}{bt.NAMESPACE}/{bt.SECRET_PREFIX}{token_id}")
        if obj is None or obj.get("type") != bt.SECRET_TYPE or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return None
        fields = bt.secret_fields(obj.get("data"))
        if not hmac.compare_digest(fields.get("token-secret", "").encode(), secret.encode()):
            return None
        if fields.get("token-id") != token_id or fields.get("usage-bootstrap-authentication") != "true":
            return None
        left = bt.seconds_left(fields, dt.datetime.now(dt.UTC))
        if left is not None and left <= 0:
            return None
        extra = [g.strip() for g in fields.get("auth-extra-groups", "").split(",")
                 if g.strip().startswith(bt.GROUP + ":")]
        return UserInfo(bt.USER_PREFIX + token_id, groups=(bt.GROUP, *extra, "system:authenticated"))
