"""The ServiceAccount controller: every namespace has a ``default`` service account.

Pods run as ``default`` unless they name another account, so it must exist in every namespace;
deleting it just brings a fresh one back (with a new UID, so tokens of the old one stop working).
Terminating namespaces are left alone: nothing new may be created in them.
"""

from __future__ import annotations

from apimachinery.api.core_v1 import Namespace, ServiceAccount
from apimachinery.controller.runtime import DONE, Controller, Result
from apimachinery.errors import ApiError
from apimachinery.meta import KubeObject, ObjectMeta
from controlplane.controllers.context import ControllerContext

DEFAULT_NAME = "default"


class ServiceAccountReconciler:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.namespaces = ctx.informers.for_model(Namespace)
        self.accounts = ctx.informers.for_model(ServiceAccount)

    async def reconcile(self, key: str) -> Result:
        ns = self.namespaces.get(key)
        if ns is None or ns.metadata.deletion_timestamp or ns.status.phase == "Terminating":
            return DONE
        if self.accounts.get(f"{key}/{DEFAULT_NAME}") is not None:
            return DONE
        try:
            await self.client.create_object(ServiceAccount(metadata=ObjectMeta(name=DEFAULT_NAME, namespace=key)))
        except ApiError as e:
            # 409: made meanwhile (the cache was behind); 403/404: the namespace is going away.
            if e.code not in (403, 404, 409):
                raise
        return DONE


def new_controller(ctx: ControllerContext) -> Controller:
    r = ServiceAccountReconciler(ctx)
    c = Controller("serviceaccount", r, workers=ctx.config.workers)
    c.watch(r.namespaces)

    def namespace_of(obj: KubeObject) -> list[str]:
        return [obj.metadata.namespace or ""] if obj.metadata.name == DEFAULT_NAME else []

    c.watch(r.accounts, map_keys=namespace_of)
    return c
