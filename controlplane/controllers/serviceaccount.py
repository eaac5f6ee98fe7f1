"""The ServiceAccount controller: every namespace has a ``default`` service account.

Pods run as ``default`` unless they name another account, so it must exist in every namespace;
deleting it just brings a fresh one back (with a new UID, so tokens of the old one stop working).
Terminating namespaces are left alone: nothing new may be created in them.
"""

from __future__ import annotations

from apimachinery.api.core_v1 import Namespace, ServiceAccount
from apimachinery.controller.runtime import DONE, Controller, Result
from apimachinery.errors import ApiError
from apimachinery.meta import ObjectMeta
from controlplane.controllers.context import ControllerContext
from controlplane.controllers.pernamespace import live, watch_per_namespace

DEFAULT_NAME = "default"


class ServiceAccountReconciler:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.namespaces = ctx.informers.for_model(Namespace)
        self.accounts = ctx.informers.for_model(ServiceAccount)

    async def reconcile(self, key: str) -> Result:
        if not live(self.namespaces.get(key)) or self.accounts.get(f"{key}/{DEFAULT_NAME}") is not None:
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
    watch_per_namespace(c, r.namespaces, r.accounts, DEFAULT_NAME)
    return c
