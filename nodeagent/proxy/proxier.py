"""The service proxy loop: informers over Services and EndpointSlices -> one nftables table.

Level-triggered like every other loop here: informer events only mark the proxy dirty, and a sync
always renders the *whole* ruleset from the caches (rendering is cheap; the applier sends only a
diff-free atomic transaction and skips unchanged text). Bursts of events are coalesced: a sync
starts at most every ``min_sync_interval`` seconds (20 ms: a sync through libnftables costs a
few ms, and every ms of waiting is endpoint-change latency; the first change after a quiet
spell is applied at once). A periodic full resync re-applies the
ruleset even when unchanged, repairing rules someone else changed.

For benchmarks, the proxier measures the time from an EndpointSlice change being seen by its
informer to the ruleset that contains it being applied (``nft -f`` returned: the kernel has
committed it), keeps p50/p99 in memory and logs one line per change on the
``nodeagent.proxy.latency`` logger with the slice's key, its resourceVersion and both wall-clock
times, so a client that watched the same change can measure watch-to-rule from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from apimachinery.api.core_v1 import Service
from apimachinery.api.discovery_v1 import EndpointSlice
from apimachinery.client.informer import Informer
from apimachinery.client.rest import ApiClient
from nodeagent.proxy.apply import NftApplier
from nodeagent.proxy.rules import Ruleset, render, table_name

log = logging.getLogger(__name__)
latency_log = logging.getLogger("nodeagent.proxy.latency")


@dataclass(frozen=True)
class SliceChange:
    """An EndpointSlice event as the informer delivered it."""

    key: str
    resource_version: str
    seen_wall: float  # time.time()
    seen_mono: float  # time.monotonic()


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
        min_sync_interval: float = 0.02,
        full_resync_period: float = 30.0,
    ) -> None:
        self.table = table_name(table_suffix)
        self.node_ips = list(node_ips)
        self.cluster_cidr = cluster_cidr
        self.applier = applier or NftApplier(netns=netns, background_flush=True)
        self.min_sync_interval = min_sync_interval
        self.full_resync_period = full_resync_period
        self.services: Informer[Service] = Informer(client, Service)
        self.slices: Informer[EndpointSlice] = Informer(client, EndpointSlice)
        self.latency = LatencyStats()
        self.sync_count = 0
        self.last_ruleset: Ruleset | None = None
        self._dirty = asyncio.Event()
        self._pending_seen: list[SliceChange] = []  # slice changes not yet applied
        self._task: asyncio.Task[None] | None = None
        self.services.on_event(self._on_service)
        self.slices.on_event(self._on_slice)

    # -- events (informer task: only mark dirty) --------------------------------------------

    def _on_service(self, _key: str) -> None:
        self._dirty.set()

    def _on_slice(self, key: str) -> None:
        # The informer records the event's resourceVersion before dispatching it.
        rv = self.slices.last_resource_version
        self._pending_seen.append(SliceChange(key, rv, time.time(), time.monotonic()))
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
        await self.applier.wait_flushed()
        if delete_table:
            await self.applier.delete(self.table)
        self.applier.close()

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
                    changed = await self.sync(force=full)
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
                # A change is in the kernel once nft committed the transaction that carries it
                # (or, for an unchanged ruleset, already was); the conntrack flush after the
                # commit does not count.
                done, done_wall = self.applier.committed_at or (time.monotonic(), time.time())
                for change in seen:
                    applied, applied_wall = max(done, change.seen_mono), max(done_wall, change.seen_wall)
                    self.latency.add(applied - change.seen_mono)
                    # changed=0: the ruleset came out the same (e.g. a not-ready endpoint's
                    # conditions moved), nothing had to reach the kernel.
                    latency_log.info("endpointslice %s rv=%s seen=%.6f applied=%.6f changed=%d wait=%.1fms "
                                     "nft=%.1fms libnft=%.1fms", change.key, change.resource_version,
                                     change.seen_wall, applied_wall, int(changed),
                                     (last_sync - change.seen_mono) * 1000, self.applier.last_nft_seconds * 1000,
                                     self.applier.last_nft_inside_seconds * 1000)
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
