"""The service proxy loop: informers over Services and EndpointSlices -> one nftables table.

Level-triggered like every other loop here: informer events only mark the proxy dirty, and a sync
always renders the *whole* ruleset from the caches (rendering is cheap; the applier sends only a
diff-free atomic transaction and skips unchanged text). Bursts of events are coalesced: a sync
starts at most every ``min_sync_interval`` seconds (~50 ms). A periodic full resync re-applies the
ruleset even when unchanged, repairing rules someone else changed.

For benchmarks, the proxier measures the time from an EndpointSlice change being seen by its
informer to the ruleset that contains it being applied, and keeps p50/p99 in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence

from apimachinery.api.core_v1 import Service
from apimachinery.api.discovery_v1 import EndpointSlice
from apimachinery.client.informer import Informer
from apimachinery.client.rest import ApiClient
from nodeagent.proxy.apply import NftApplier
from nodeagent.proxy.rules import Ruleset, render, table_name

log = logging.getLogger(__name__)


class LatencyStats:
    """A bounded window of latency samples (seconds) with percentiles."""

    def __init__(self, maxlen: int = 10000) -> None:
        self.samples: deque[float] = deque(maxlen=maxlen)

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile, ``q`` in [0, 100]; None without samples."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        rank = max(1, -(-len(ordered) * q // 100))  # ceil(n*q/100), at least 1
        return ordered[int(rank) - 1]

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p99(self) -> float | None:
        return self.percentile(99)

    def __len__(self) -> int:
        return len(self.samples)


class Proxier:
    """Keeps ``table ip kube_lite_proxy_<suffix>`` in line with the cluster's Services."""

    def __init__(
        self,
        client: ApiClient,
        *,
        table_suffix: str,
        node_ips: Sequence[str] = (),
        cluster_cidr: str | None = None,
        netns: str | None = None,
        applier: NftApplier | None = None,
        min_sync_interval: float = 0.05,
        full_resync_period: float = 30.0,
    ) -> None:
        self.table = table_name(table_suffix)
        self.node_ips = list(node_ips)
        self.cluster_cidr = cluster_cidr
        self.applier = applier or NftApplier(netns=netns)
        self.min_sync_interval = min_sync_interval
        self.full_resync_period = full_resync_period
        self.services: Informer[Service] = Informer(client, Service)
        self.slices: Informer[EndpointSlice] = Informer(client, EndpointSlice)
        self.latency = LatencyStats()
        self.sync_count = 0
        self.last_ruleset: Ruleset | None = None
        self._dirty = asyncio.Event()
        self._pending_seen: list[float] = []  # monotonic times of slice changes not yet applied
        self._task: asyncio.Task[None] | None = None
        self.services.on_event(self._on_service)
        self.slices.on_event(self._on_slice)

    # -- events (informer task: only mark dirty) --------------------------------------------

    def _on_service(self, _key: str) -> None:
        self._dirty.set()

    def _on_slice(self, _key: str) -> None:
        self._pending_seen.append(time.monotonic())
        self._dirty.set()

    # -- running -----------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"proxier-{self.table}")
        return self._task

    async def stop(self, *, delete_table: bool = False) -> None:
        """Stop the loop and the informers; with ``delete_table`` remove the rules too."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if delete_table:
            await self.applier.delete(self.table)

    async def run(self) -> None:
        self.services.start()
        self.slices.start()
        try:
            await self.services.wait_synced()
            await self.slices.wait_synced()
            # Slice events of the initial list are not "changes": measure from here on.
            self._pending_seen.clear()
            last_full = 0.0
            last_sync = 0.0
            failures = 0
            while True:
                now = time.monotonic()
                full = now - last_full >= self.full_resync_period
                if not full and not self._dirty.is_set():
                    timeout = self.full_resync_period - (now - last_full)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._dirty.wait(), timeout)
                    continue
                wait = self.min_sync_interval - (time.monotonic() - last_sync)
                if wait > 0:
                    await asyncio.sleep(wait)  # coalesce a burst of events into one sync
                self._dirty.clear()
                seen, self._pending_seen = self._pending_seen, []
                last_sync = time.monotonic()
                try:
                    await self.sync(force=full)
                except Exception:
                    failures += 1
                    log.exception("proxy sync failed (%d in a row)", failures)
                    self._pending_seen = seen + self._pending_seen
                    self._dirty.set()
                    await asyncio.sleep(min(5.0, 0.1 * 2 ** min(failures, 6)))
                    continue
                failures = 0
                if full:
                    last_full = last_sync
                done = time.monotonic()
                for t in seen:
                    self.latency.add(done - t)
        finally:
            await self.services.stop()
            await self.slices.stop()

    async def sync(self, *, force: bool = False) -> bool:
        """Render from the caches and apply; True when nft was called."""
        ruleset = render(
            self.services.list(),
            self.slices.list(),
            table=self.table,
            node_ips=self.node_ips,
            cluster_cidr=self.cluster_cidr,
        )
        applied = await self.applier.apply(ruleset, force=force)
        self.last_ruleset = ruleset
        self.sync_count += 1
        return applied
