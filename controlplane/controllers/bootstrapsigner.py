"""Bootstrap signer: sign ``kube-public/cluster-info`` with every bootstrap token.

For each unexpired bootstrap-token Secret with ``usage-bootstrap-signing: "true"`` the
ConfigMap carries ``jws-kubeconfig-<token-id>``, an HS256 signature of its kubeconfig made with
the token's secret (see :mod:`apimachinery.jws`); signatures of deleted or expired tokens are
removed. Level-triggered on the one ConfigMap: an event of it or of any bootstrap-token Secret
re-derives the whole set.
"""

from __future__ import annotations

import datetime as dt

from apimachinery import bootstraptoken as bt
from apimachinery.api.core_v1 import ConfigMap, Secret
from apimachinery.controller.runtime import DONE, Controller, Result, requeue_after
from apimachinery.jws import sign_detached
from controlplane.controllers.context import ControllerContext

CLUSTER_INFO_KEY = "kube-public/cluster-info"
SIGNATURE_PREFIX = "jws-kubeconfig-"


def signing_tokens(secrets: list[Secret], now: dt.datetime) -> tuple[dict[str, str], float | None]:
    """token id -> secret of the tokens that sign now, and seconds until the next one expires."""
    out: dict[str, str] = {}
    next_expiry: float | None = None
    for s in secrets:
        if s.type != bt.SECRET_TYPE or s.metadata.namespace != bt.NAMESPACE or s.metadata.deletion_timestamp:
            continue
        data = bt.secret_fields(s.data)
        if data.get("usage-bootstrap-signing") != "true" or not data.get("token-id") or not data.get("token-secret"):
            continue
        left = bt.seconds_left(data, now)
        if left is not None:
            if left <= 0:
                continue
            next_expiry = left if next_expiry is None else min(next_expiry, left)
        out[data["token-id"]] = data["token-secret"]
    return out, next_expiry


class BootstrapSignerReconciler:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.configmaps = ctx.informers.for_model(ConfigMap)
        self.secrets = ctx.informers.for_model(Secret)

    async def reconcile(self, key: str) -> Result:
        cm = self.configmaps.get(CLUSTER_INFO_KEY)
        if cm is None or not (cm.data or {}).get("kubeconfig"):
            return DONE
        data = cm.data or {}
        tokens, next_expiry = signing_tokens(self.secrets.list(), dt.datetime.now(dt.UTC))
        wanted = {k: v for k, v in data.items() if not k.startswith(SIGNATURE_PREFIX)}
        for token_id, secret in tokens.items():
            wanted[SIGNATURE_PREFIX + token_id] = sign_detached(data["kubeconfig"], token_id, secret)
        if wanted != data:
            new = cm.copy_deep()
            new.data = wanted
            await self.ctx.client.typed(ConfigMap).update(new)
        # Expiry is not an event: look again when the next token runs out.
        return requeue_after(next_expiry + 1) if next_expiry is not None else DONE


def new_controller(ctx: ControllerContext) -> Controller:
    r = BootstrapSignerReconciler(ctx)
    c = Controller("bootstrapsigner", r, workers=1)
    # Only cluster-info itself and bootstrap-token Secrets matter; every other ConfigMap and Secret
    # in the cluster would wake a reconcile that lists all Secrets for nothing.
    c.watch(r.configmaps, lambda cm: [CLUSTER_INFO_KEY] if cm.key == CLUSTER_INFO_KEY else [])
    c.watch(r.secrets, lambda s: [CLUSTER_INFO_KEY] if s.type == bt.SECRET_TYPE else [])
    return c
