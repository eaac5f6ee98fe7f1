"""One informer per type, shared by every controller in a process (one watch per type)."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from apimachinery.client.informer import (
    NAMESPACE_INDEX,
    OWNER_UID_INDEX,
    Informer,
    index_by_namespace,
    index_by_owner_uid,
)
from apimachinery.client.rest import ApiClient
from apimachinery.meta import KubeObject

T = TypeVar("T", bound=KubeObject)


class InformerFactory:
    def __init__(self, client: ApiClient, *, resync_period: float | None = None) -> None:
        self.client = client
        self.resync_period = resync_period
        self._informers: dict[type[Any], Informer[Any]] = {}

    def for_model(self, model: type[T]) -> Informer[T]:
        inf = self._informers.get(model)
        if inf is None:
            inf = Informer(self.client, model, resync_period=self.resync_period)
            # Every controller wants these two; adding them once here keeps them shared.
            inf.add_index(NAMESPACE_INDEX, index_by_namespace)
            inf.add_index(OWNER_UID_INDEX, index_by_owner_uid)
            self._informers[model] = inf
        return inf

    def start(self) -> None:
        for inf in self._informers.values():
            inf.start()

    async def wait_synced(self) -> None:
        await asyncio.gather(*(inf.wait_synced() for inf in self._informers.values()))

    async def stop(self) -> None:
        for inf in self._informers.values():
            await inf.stop()
