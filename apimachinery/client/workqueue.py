"""The controller work queue: deduplicating, one worker per key at a time, rate-limited retries.

Semantics (client-go's, because every controller's correctness leans on them):

* A key waiting in the queue is there once, however often it is added ("dirty" set).
* A key being processed is never handed to a second worker. Adding it meanwhile marks it dirty;
  ``done(key)`` puts it back so the latest state is reconciled once more.
* ``add_rate_limited`` delays by the larger of a per-key exponential backoff (5 ms doubling up to
  1000 s) and an overall token bucket (10 qps, burst 100); ``forget`` resets the key's backoff.
* After ``shutdown()`` new adds are ignored; ``get`` still hands out what is queued, then raises
  :class:`ShutDown` (``async for key in queue`` simply ends).

Everything runs on one event loop; ``add`` and friends are plain (non-async) calls so that
informer handlers can enqueue without awaiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """Raised by :meth:`WorkQueue.get` once the queue is shut down and drained."""


class ExponentialBackoff:
    """Per-key delay: ``base * 2**failures``, capped (client-go's ItemExponentialFailureRateLimiter)."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        # Past ~2**60 the float is meaningless; the cap has long applied by then.
        return min(self.base * (2.0 ** min(n, 60)), self.cap)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)


class TokenBucket:
    """An overall limit on retries: ``qps`` tokens a second, up to ``burst`` saved.

    ``when()`` reserves a token and returns how long to wait for it (0 while the burst lasts).
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, key: Hashable = None) -> float:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def num_requeues(self, key: Hashable) -> int:
        return 0

    def forget(self, key: Hashable) -> None:
        return None


class RateLimiter:
    """The larger delay of a per-key backoff and an overall bucket (client-go's default limiter)."""

    def __init__(self, backoff: ExponentialBackoff | None = None, bucket: TokenBucket | None = None) -> None:
        self.backoff = backoff or ExponentialBackoff()
        self.bucket = bucket or TokenBucket()

    def when(self, key: Hashable) -> float:
        return max(self.backoff.when(key), self.bucket.when(key))

    def num_requeues(self, key: Hashable) -> int:
        return self.backoff.num_requeues(key)

    def forget(self, key: Hashable) -> None:
        self.backoff.forget(key)


class WorkQueue(Generic[K]):
    """See the module docstring. Create it inside the event loop that will use it."""

    def __init__(self, rate_limiter: RateLimiter | None = None, *, name: str = "") -> None:
        self.name = name
        self.rate_limiter = rate_limiter or RateLimiter()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._timer_due: dict[K, float] = {}
        self._shutting_down = False

    # -- adding --------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # re-queued by done()
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: K, delay: float) -> None:
        """Add ``key`` after ``delay`` seconds; of several pending delays the earliest wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if key in self._timers:
            if self._timer_due[key] <= due:
                return
            self._timers[key].cancel()
        self._timer_due[key] = due
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self._timer_due.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: K) -> None:
        """Add after the rate limiter's delay for this key (each call grows the key's backoff)."""
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """Stop tracking the key's failures (call after a successful reconcile)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)

    # -- processing ----------------------------------------------------------------------------

    async def get(self) -> K:
        """The next key; the caller owns it until ``done(key)``. Raises ShutDown when drained."""
        loop = asyncio.get_running_loop()
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                elif self._queue:
                    self._wake_one()  # we were woken but will not take the item: pass it on
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        """Processing finished; a key added meanwhile goes back into the queue now."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def shutdown(self) -> None:
        """Stop accepting keys, drop pending delayed adds, and release idle workers."""
        self._shutting_down = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._timer_due.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def len(self) -> int:
        """Keys waiting (not counting keys being processed or delayed)."""
        return len(self._queue)

    def __len__(self) -> int:
        return len(self._queue)

    def processing(self) -> frozenset[K]:
        return frozenset(self._processing)

    def __aiter__(self) -> AsyncIterator[K]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[K]:
        while True:
            try:
                yield await self.get()
            except ShutDown:
                return

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
