"""Controller: informer events -> workqueue keys -> ``reconcile(key)`` in a few workers.

The contract (DESIGN.md principles 1 and 2):

* Event handlers only enqueue keys; an informer of dependents maps each event to its owner's
  key (``watch(pods, map_keys=owner_key_mapper("ReplicaSet"))``).
* ``reconcile(key)`` is level-triggered and idempotent: it reads desired and actual state from
  the informer caches and moves one step. It returns :data:`DONE`, :func:`requeue_after`, or
  raises; a raise re-queues the key with per-key exponential back-off (plus the queue's global
  rate limit), a success forgets the key's failures.
* The queue never hands one key to two workers at once, so a reconcile never races itself.

Every reconcile is logged with a short reconcile id, and counted in Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from apimachinery.client.informer import Informer
from apimachinery.client.workqueue import ShutDown, WorkQueue
from apimachinery.controller import metrics
from apimachinery.errors import ApiError

log = logging.getLogger(__name__)

_reconcile_ids = itertools.count(1)


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: nothing, or another look after ``requeue_after`` seconds."""

    requeue_after: float | None = None


DONE = Result()


def requeue_after(seconds: float) -> Result:
    return Result(requeue_after=seconds)


class Reconciler(Protocol):
    async def reconcile(self, key: str) -> Result: ...


class Controller:
    def __init__(self, name: str, reconciler: Reconciler, *, workers: int = 2,
                 queue: WorkQueue[str] | None = None) -> None:
        self.name = name
        self.reconciler = reconciler
        self.workers = workers
        self.queue: WorkQueue[str] = queue if queue is not None else WorkQueue(name=name)
        self._informers: list[Informer[Any]] = []
        self.log = logging.getLogger(f"controller.{name}")

    def watch(self, informer: Informer[Any], map_keys: Callable[[Any], Iterable[str]] | None = None) -> None:
        """Enqueue on every event of ``informer``: the object's own key, or ``map_keys(obj)``."""
        self._informers.append(informer)
        if map_keys is None:
            informer.on_event(self.queue.add)
            return

        def enqueue(obj: Any) -> None:
            for key in map_keys(obj):
                self.queue.add(key)

        def on_update(old: Any, new: Any) -> None:
            # A dependent whose owner changed (adoption, release) concerns both owners.
            enqueue(new)
            if old is not new:
                enqueue(old)

        informer.add_handler(on_add=enqueue, on_update=on_update, on_delete=enqueue)

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: str, delay: float) -> None:
        self.queue.add_after(key, delay)

    async def run(self) -> None:
        """Wait for the caches, then reconcile until cancelled."""
        await asyncio.gather(*(inf.wait_synced() for inf in self._informers))
        self.log.info("caches synced; starting %d workers", self.workers)
        workers = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}") for i in range(self.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            self.queue.shutdown()
            for w in workers:
                w.cancel()
            for w in workers:
                with contextlib.suppress(asyncio.CancelledError, ShutDown):
                    await w

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)
                metrics.QUEUE_DEPTH.labels(self.name).set(len(self.queue))

    async def process(self, key: str) -> None:
        """One reconcile of ``key`` with logging, metrics and re-queueing."""
        rid = next(_reconcile_ids)
        start = time.perf_counter()
        try:
            result = await self.reconciler.reconcile(key)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            metrics.RECONCILE_ERRORS.labels(self.name).inc()
            metrics.RECONCILE_TOTAL.labels(self.name, "error").inc()
            metrics.QUEUE_RETRIES.labels(self.name).inc()
            retries = self.queue.num_requeues(key)
            if isinstance(e, ApiError) and e.code == 409:
                # Lost a race: normal under concurrency; retry from fresh state quietly.
                self.log.debug("reconcile=%d key=%s conflict, retrying: %s", rid, key, e)
            else:
                self.log.warning("reconcile=%d key=%s failed (retry %d): %s", rid, key, retries, e,
                                 exc_info=not isinstance(e, ApiError))
            self.queue.add_rate_limited(key)
            return
        finally:
            metrics.RECONCILE_SECONDS.labels(self.name).observe(time.perf_counter() - start)
        self.queue.forget(key)
        if result.requeue_after is not None:
            metrics.RECONCILE_TOTAL.labels(self.name, "requeue_after").inc()
            self.queue.add_after(key, result.requeue_after)
        else:
            metrics.RECONCILE_TOTAL.labels(self.name, "success").inc()
        self.log.debug("reconcile=%d key=%s done in %.1f ms", rid, key, (time.perf_counter() - start) * 1000)
