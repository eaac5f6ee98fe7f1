"""Recording core/v1 Events, aggregated like Kubernetes' recorder: a repeat of the same event for
the same object bumps ``count`` and ``lastTimestamp`` instead of creating another Event.

Recording never blocks or fails the caller: events are written in the background, at most a
few at a time, and a failed write is logged and dropped (events are best-effort in Kubernetes too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from apimachinery.api.core_v1 import Event
from apimachinery.client.rest import ApiClient
from apimachinery.errors import ApiError
from apimachinery.meta import KubeObject, now

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
_MAX_IN_FLIGHT = 8
# Events waiting to be written; past this, new ones are dropped (as client-go's recorder does)
# so a burst of 10,000 scheduling decisions cannot queue 10,000 writes.
_MAX_QUEUED = 1000
_CACHE_SIZE = 4096


@dataclass
class _Seen:
    name: str
    namespace: str
    count: int


class EventRecorder:
    def __init__(self, client: ApiClient, component: str, host: str = "") -> None:
        self.client = client
        self.component = component
        self.host = host
        self._seen: dict[tuple[str, ...], _Seen] = {}
        self._sem = asyncio.Semaphore(_MAX_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def event(self, obj: KubeObject, type_: str, reason: str, message: str) -> None:
        """Record an event about ``obj`` in the background (needs a running loop)."""
        if len(self._tasks) >= _MAX_QUEUED:
            self.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self.emit(obj, type_, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def emit(self, obj: KubeObject, type_: str, reason: str, message: str) -> None:
        md = obj.metadata
        namespace = md.namespace or "default"
        ref = {"kind": obj.kind, "namespace": md.namespace, "name": md.name, "uid": md.uid,
               "apiVersion": obj.api_version, "resourceVersion": md.resource_version}
        key = (str(md.uid or md.name), type_, reason, message, self.component)
        async with self._sem:
            try:
                seen = self._seen.get(key)
                if seen is not None:
                    seen.count += 1
                    try:
                        await self.client.patch(
                            self.client.resource(Event), seen.name,
                            {"count": seen.count, "lastTimestamp": now()}, namespace=seen.namespace,
                        )
                        return
                    except ApiError as e:
                        if e.code != 404:
                            raise
                        # The event expired or was deleted: start a new one.
                name = f"{md.name}.{time.time_ns():x}"
                stamp = now()
                body: dict[str, Any] = {
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": {k: v for k, v in ref.items() if v is not None},
                    "reason": reason, "message": message, "type": type_,
                    "source": {"component": self.component, **({"host": self.host} if self.host else {})},
                    "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
                    "reportingComponent": self.component, "reportingInstance": self.host,
                }
                await self.client.create(self.client.resource(Event), body, namespace=namespace)
                if len(self._seen) >= _CACHE_SIZE:
                    self._seen.pop(next(iter(self._seen)))
                self._seen[key] = _Seen(name, namespace, 1)
            except Exception as e:  # best effort: never fail the caller
                log.debug("event %s/%s not recorded: %s", reason, md.name, e)

    async def flush(self) -> None:
        """Wait for events in flight (tests and shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
