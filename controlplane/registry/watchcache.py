"""The watch cache: one etcd watch feeds every watcher of every resource.

Without it each HTTP watch would be its own etcd watch that decodes every change of its
resource, so 1,000 node agents watching pods would decode each pod change 1,000 times. Here one
etcd watch over the whole key space is decoded once per change, kept per resource as the current
objects plus a window of recent events, and fanned out in process to subscribers that filter by
namespace and selectors.

Watching the whole key space (not just this server's prefix) makes the cache's revision track
etcd's revision exactly, so "is the cache at least as new as etcd?" is a cheap comparison.
A watch that starts before the cache's window falls back to its own etcd watch (see
``controlplane.apiserver.watch``), so a resourceVersion is only too old once etcd compacted it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apimachinery import jsonutil
from controlplane.registry import codec
from controlplane.storage.errors import CompactedError
from controlplane.storage.etcd import EtcdStore

log = logging.getLogger(__name__)

Predicate = Callable[[dict[str, Any]], bool]

# Events kept per resource for watchers resuming from a recent resourceVersion.
DEFAULT_WINDOW = 10_000
# Events a subscriber may have queued before it is cut off as too slow (it re-watches).
SUBSCRIBER_BACKLOG = 50_000


@dataclass
class CachedEvent:
    revision: int
    type: str  # "PUT" or "DELETE" as seen in etcd
    key: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    _encoded: bytes | None = None

    def encoded(self) -> bytes:
        """The object's JSON, encoded once however many watchers send it."""
        if self._encoded is None:
            self._encoded = jsonutil.dumps(self.obj)
        return self._encoded


@dataclass(eq=False)
class Subscriber:
    """One watcher: events it should see are put on its queue as (type, event) pairs.

    Items are ("ADDED"|"MODIFIED"|"DELETED", CachedEvent), ("BOOKMARK", revision) or
    ("ERROR", reason) after which nothing more comes.
    """

    namespace_prefix: str
    predicate: Predicate | None
    queue: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    closed: bool = False

    def _put(self, item: tuple[str, Any]) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= SUBSCRIBER_BACKLOG:
            self.closed = True
            self.queue.put_nowait(("ERROR", "too slow: the watch fell behind; re-watch from the last resourceVersion"))
            return
        self.queue.put_nowait(item)

    def _matches(self, key: str, obj: dict[str, Any] | None) -> bool:
        if obj is None or not key.startswith(self.namespace_prefix):
            return False
        return self.predicate is None or self.predicate(obj)

    def offer(self, ev: CachedEvent) -> None:
        now = self._matches(ev.key, ev.obj) if ev.type == "PUT" else False
        before = self._matches(ev.key, ev.prev)
        if ev.type == "DELETE":
            if before:
                self._put(("DELETED", ev))
        elif now and before:
            self._put(("MODIFIED", ev))
        elif now:
            self._put(("ADDED", ev))
        elif before:
            # The object left the selection: to this watcher it is gone.
            self._put(("DELETED", ev))


class ResourceCache:
    """Current objects and recent events of one resource (one storage prefix)."""

    def __init__(self, prefix: str, window: int = DEFAULT_WINDOW) -> None:
        self.prefix = prefix
        self.objects: dict[str, dict[str, Any]] = {}
        self.events: deque[CachedEvent] = deque(maxlen=window)
        # Events with revision > window_start are all in ``events``.
        self.window_start = 0
        self.subscribers: set[Subscriber] = set()

    def reset(self, objects: dict[str, dict[str, Any]], revision: int) -> None:
        self.objects = objects
        self.events.clear()
        self.window_start = revision
        for sub in list(self.subscribers):
            sub._put(("ERROR", "the watch cache was rebuilt; re-list and watch again"))
            sub.closed = True
        self.subscribers.clear()

    def apply(self, ev: CachedEvent) -> None:
        if ev.type == "PUT":
            self.objects[ev.key] = ev.obj
        else:
            self.objects.pop(ev.key, None)
        if len(self.events) == self.events.maxlen:
            self.window_start = self.events[0].revision
        self.events.append(ev)
        for sub in list(self.subscribers):
            if sub.closed:
                self.subscribers.discard(sub)
            else:
                sub.offer(ev)

    def list(self, namespace_prefix: str, predicate: Predicate | None) -> list[dict[str, Any]]:
        return [
            o for k, o in sorted(self.objects.items())
            if k.startswith(namespace_prefix) and (predicate is None or predicate(o))
        ]


class WatchCache:
    """Feeds all :class:`ResourceCache` objects under ``root`` from one etcd watch."""

    def __init__(self, etcd: EtcdStore, root: str, window: int = DEFAULT_WINDOW) -> None:
        self.etcd = etcd
        self.root = root.rstrip("/") + "/"
        self.window = window
        self.revision = 0
        self._caches: dict[str, ResourceCache] = {}
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._ready = asyncio.Event()

    def cache_for(self, prefix: str) -> ResourceCache:
        """The cache of one resource; ``prefix`` is its storage prefix ``<root>/<resource>/``."""
        cache = self._caches.get(prefix)
        if cache is None:
            cache = self._caches[prefix] = ResourceCache(prefix, self.window)
            cache.window_start = self.revision
        return cache

    def _resource_prefix(self, key: str) -> str | None:
        if not key.startswith(self.root):
            return None
        rest = key[len(self.root):]
        resource, sep, _ = rest.partition("/")
        return f"{self.root}{resource}/" if sep else None

    async def start(self) -> None:
        await self._snapshot()
        self._task = asyncio.create_task(self._run(), name="watch-cache")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _snapshot(self) -> None:
        """Load every object under root at one revision and rebuild the caches from it."""
        revision = 0
        start: str | None = None
        per_prefix: dict[str, dict[str, dict[str, Any]]] = {}
        while True:
            res = await self.etcd.list(self.root, revision=revision, limit=5000, start_key=start)
            revision = res.revision
            for e in res.entries:
                prefix = self._resource_prefix(e.key)
                if prefix is not None:
                    per_prefix.setdefault(prefix, {})[e.key] = codec.decode(e.value, e.mod_revision)
            if not res.more or not res.entries:
                break
            start = res.entries[-1].key + "\x00"
        self.revision = revision
        for prefix in set(self._caches) | set(per_prefix):
            self.cache_for(prefix).reset(per_prefix.get(prefix, {}), revision)
        self._ready.set()
        self._notify()

    async def _run(self) -> None:
        while True:
            try:
                # "" watches the whole key space: see the module docstring for why.
                # No prev_kv: the cache already holds every object's previous state.
                async for ev in self.etcd.watch("", self.revision + 1, prev_kv=False):
                    self._dispatch(ev)
            except asyncio.CancelledError:
                raise
            except CompactedError:
                log.warning("watch cache fell behind compaction at %d; rebuilding", self.revision)
                await self._snapshot()
            except Exception:  # etcd restarts, connection loss: keep serving, retry
                log.exception("watch cache lost its etcd watch; retrying")
                await asyncio.sleep(0.5)

    def _dispatch(self, ev: Any) -> None:
        entry = ev.entry
        revision = entry.mod_revision
        prefix = self._resource_prefix(entry.key)
        if prefix is not None:
            cache = self.cache_for(prefix)
            prev = cache.objects.get(entry.key)
            if ev.type == "PUT":
                obj = codec.decode(entry.value, revision)
            else:
                obj = codec.deleted(prev, revision)
            cache.apply(CachedEvent(revision, ev.type, entry.key, obj, prev))
        if revision > self.revision:
            self.revision = revision
            self._notify()

    def _notify(self) -> None:
        # Wake only the readers waiting for a revision we now have (no task per event).
        if not self._waiters:
            return
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, fut in self._waiters:
            if self.revision >= target:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((target, fut))
        self._waiters = still

    async def wait_fresh(self, timeout: float = 3.0) -> bool:
        """Wait until the cache has seen every write etcd has acknowledged (a consistent read)."""
        await self._ready.wait()
        target = await self.etcd.current_revision()
        if self.revision >= target:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return False
        finally:
            if not fut.done():
                fut.cancel()
        return True

    def subscribe(
        self, prefix: str, namespace_prefix: str, predicate: Predicate | None, since: int | None,
        *, initial: bool,
    ) -> Subscriber | None:
        """Register a watcher, atomically with its replay (no await between them).

        ``since`` = deliver events after this revision; ``initial`` = first send every current
        object as ADDED (then ``since`` is ignored). Returns None when ``since`` is older than the
        window: the caller must watch etcd directly.
        """
        cache = self.cache_for(prefix)
        sub = Subscriber(namespace_prefix, predicate)
        if initial:
            for key, obj in sorted(cache.objects.items()):
                if sub._matches(key, obj):
                    rev = int(obj["metadata"]["resourceVersion"])
                    sub._put(("ADDED", CachedEvent(rev, "PUT", key, obj, None)))
            sub._put(("INITIAL_END", self.revision))
        else:
            assert since is not None
            if since < cache.window_start:
                return None
            for ev in cache.events:
                if ev.revision > since:
                    sub.offer(ev)
        cache.subscribers.add(sub)
        return sub

    def unsubscribe(self, prefix: str, sub: Subscriber) -> None:
        sub.closed = True
        self.cache_for(prefix).subscribers.discard(sub)
