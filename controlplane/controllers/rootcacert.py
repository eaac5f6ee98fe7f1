"""The root CA publisher: a ``kube-root-ca.crt`` ConfigMap in every namespace.

It holds (key ``ca.crt``) the CA that signed the API server's certificate, so a pod can verify
the server it reaches with its service-account token (the token volume projects this key). The
CA is the one this controller itself trusts when it talks to the API server. A changed or deleted
ConfigMap is put back.
"""

from __future__ import annotations

from apimachinery.api.core_v1 import ConfigMap, Namespace
from apimachinery.controller.runtime import DONE, Controller, Result
from apimachinery.errors import ApiError
from apimachinery.meta import ObjectMeta
from controlplane.controllers.context import ControllerContext
from controlplane.controllers.pernamespace import live, watch_per_namespace

NAME = "kube-root-ca.crt"
KEY = "ca.crt"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
    "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)


class RootCAReconciler:
    def __init__(self, ctx: ControllerContext, ca_pem: str) -> None:
        self.client = ctx.client
        self.ca_pem = ca_pem
        self.namespaces = ctx.informers.for_model(Namespace)
        self.config_maps = ctx.informers.for_model(ConfigMap)

    async def reconcile(self, key: str) -> Result:
        if not live(self.namespaces.get(key)):
            return DONE
        current = self.config_maps.get(f"{key}/{NAME}")
        try:
            if current is None:
                await self.client.create_object(ConfigMap(
                    metadata=ObjectMeta(name=NAME, namespace=key, annotations={"kubernetes.io/description": DESCRIPTION}),
                    data={KEY: self.ca_pem},
                ))
            elif (current.data or {}) != {KEY: self.ca_pem}:
                fixed = current.copy_deep()
                fixed.data = {KEY: self.ca_pem}
                fixed.binary_data = None
                await self.client.update_object(fixed)
        except ApiError as e:
            # 409: someone wrote meanwhile (the informer brings us back); 403/404: namespace going.
            if e.code not in (403, 404, 409):
                raise
        return DONE


def new_controller(ctx: ControllerContext) -> Controller | None:
    ca = ctx.client.config.ca_data
    if not ca:
        return None  # a client that trusts the system store has no cluster CA to publish
    r = RootCAReconciler(ctx, ca.decode())
    c = Controller("root-ca-cert-publisher", r, workers=ctx.config.workers)
    watch_per_namespace(c, r.namespaces, r.config_maps, NAME)
    return c
