"""The scheduling queue: pods waiting for a decision, and pods waiting to be tried again.

* active: keys to schedule now, FIFO, each once;
* backoff: keys that did not fit (or whose bind failed), each with the time it may be retried:
  1 s after the first failure, doubling up to 10 s. A cluster change (a node added or changed,
  a pod deleted) shortens every wait to 1 s after the pod's last failure, since the change may
  have made room; ``flush`` (called periodically) moves due keys back to active.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0


class SchedulingQueue:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._active: deque[str] = deque()
        self._active_set: set[str] = set()
        self._backoff: dict[str, tuple[float, float]] = {}  # key -> (failed at, retry at)
        self._attempts: dict[str, int] = {}
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._active_set) + len(self._backoff)

    @property
    def waiting(self) -> int:
        """Keys in backoff (unschedulable for now)."""
        return len(self._backoff)

    def add(self, key: str) -> None:
        """A pod to schedule. A pod already waiting in backoff keeps waiting."""
        if key in self._active_set or key in self._backoff:
            return
        self._active.append(key)
        self._active_set.add(key)
        self._wake.set()

    def remove(self, key: str) -> None:
        """The pod is bound, deleted or no longer ours."""
        self._active_set.discard(key)  # the deque entry is skipped when popped
        self._backoff.pop(key, None)
        self._attempts.pop(key, None)

    def failed(self, key: str) -> float:
        """Back off before retrying; returns the delay."""
        n = self._attempts.get(key, 0)
        self._attempts[key] = n + 1
        delay = min(INITIAL_BACKOFF * (2**n), MAX_BACKOFF)
        t = self._clock()
        self._active_set.discard(key)
        self._backoff[key] = (t, t + delay)
        return delay

    def succeeded(self, key: str) -> None:
        self._attempts.pop(key, None)

    def cluster_changed(self) -> None:
        for key, (failed_at, retry_at) in self._backoff.items():
            self._backoff[key] = (failed_at, min(retry_at, failed_at + INITIAL_BACKOFF))
        self.flush()

    def flush(self) -> None:
        if not self._backoff:
            return
        t = self._clock()
        due = [k for k, (_, retry_at) in self._backoff.items() if retry_at <= t]
        for key in due:
            del self._backoff[key]
            self._active.append(key)
            self._active_set.add(key)
        if due:
            self._wake.set()

    def pop_nowait(self) -> str | None:
        while self._active:
            key = self._active.popleft()
            if key in self._active_set:
                self._active_set.discard(key)
                return key
        self._wake.clear()
        return None

    async def pop(self) -> str:
        while True:
            key = self.pop_nowait()
            if key is not None:
                return key
            await self._wake.wait()
