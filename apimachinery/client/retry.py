"""Retrying a read-modify-write when someone else wrote first (409 Conflict).

The function passed in must re-read the object every time it runs: retrying with the stale copy
would just conflict again. Defaults are client-go's ``retry.DefaultRetry`` (5 steps, 10 ms,
factor 1, jitter 0.1).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from apimachinery.errors import ApiError

R = TypeVar("R")


@dataclass(frozen=True)
class Backoff:
    duration: float = 0.01
    factor: float = 1.0
    jitter: float = 0.1
    cap: float | None = None

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (0-based)."""
        d = self.duration * (self.factor**attempt)
        if self.cap is not None:
            d = min(d, self.cap)
        if self.jitter > 0:
            d += d * self.jitter * random.random()
        return d


DEFAULT_BACKOFF = Backoff()


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, ApiError) and exc.code == 409 and exc.reason == "Conflict"


async def retry_on(
    predicate: Callable[[BaseException], bool],
    fn: Callable[[], Awaitable[R]],
    *,
    attempts: int = 5,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> R:
    """Run ``fn`` up to ``attempts`` times while it raises errors ``predicate`` accepts."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(attempts):
        try:
            return await fn()
        except Exception as exc:
            if not predicate(exc) or attempt == attempts - 1:
                raise
        await asyncio.sleep(backoff.delay(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


async def retry_on_conflict(
    fn: Callable[[], Awaitable[R]], *, attempts: int = 5, backoff: Backoff = DEFAULT_BACKOFF
) -> R:
    """Run ``fn`` again (after a short pause) while it fails with 409 Conflict.

    409 AlreadyExists is not retried: creating again cannot succeed."""
    return await retry_on(is_conflict, fn, attempts=attempts, backoff=backoff)
