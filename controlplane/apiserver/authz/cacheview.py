"""Following resources in the watch cache without copying them or reading etcd per request.

A :class:`ChangeHook` is a watch-cache subscriber that queues nothing: it calls back, inside the
cache's own dispatch (so with no delay and no task), for every change of one resource. When the
cache is rebuilt (after falling behind compaction) the hook is told to start over and re-attaches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.registry.watchcache import CachedEvent, Subscriber, WatchCache


@dataclass(eq=False)
class _Hook(Subscriber):
    on_event: Callable[[CachedEvent], None] = lambda ev: None
    on_reset: Callable[[], None] = lambda: None

    def offer(self, ev: CachedEvent) -> None:
        self.on_event(ev)

    def _put(self, item: tuple[str, Any]) -> None:
        # Only the cache's rebuild notice arrives here (offer is overridden).
        if item[0] == "ERROR":
            self.closed = True
            self.on_reset()


@dataclass
class ChangeHook:
    """Calls ``on_event`` for each change of the resource under ``prefix`` and ``on_reset`` when
    its cached objects were replaced wholesale (then :meth:`objects` is the new truth)."""

    cache: WatchCache
    prefix: str
    on_event: Callable[[CachedEvent], None]
    on_reset: Callable[[], None]
    _hook: _Hook | None = field(default=None, init=False)

    def attach(self) -> None:
        """(Re)subscribe; idempotent. Call before reading :meth:`objects`."""
        if self._hook is not None and not self._hook.closed:
            return
        hook = _Hook(self.prefix, None, on_event=self.on_event, on_reset=self.on_reset)
        self.cache.cache_for(self.prefix).subscribers.add(hook)
        self._hook = hook

    def objects(self) -> dict[str, dict[str, Any]]:
        """The current objects by storage key (the cache's own dict: read, never mutate)."""
        return self.cache.cache_for(self.prefix).objects
