"""Doing one thing for each of many nodes every ``interval`` seconds, evenly spread.

A thousand hollow nodes renewing their leases at the same instant would be a burst of a thousand
requests every ten seconds; spreading the items over the interval turns it into a steady rate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)


async def spread_forever(
    items: Sequence[str],
    interval: float,
    fn: Callable[[str], Awaitable[None]],
    *,
    concurrency: int = 16,
    what: str = "task",
) -> None:
    """Call ``fn(item)`` for every item once per ``interval``, starting one every
    ``interval / len(items)`` seconds, with at most ``concurrency`` calls outstanding.
    A failing call is logged and tried again in the next round."""
    if not items:
        await asyncio.Event().wait()
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def one(item: str) -> None:
        try:
            await fn(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s for %s failed: %s", what, item, exc)
        finally:
            slots.release()

    step = interval / len(items)
    try:
        next_at = time.monotonic()
        while True:
            for item in items:
                await slots.acquire()
                task = asyncio.create_task(one(item))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                next_at += step
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -interval:
                    next_at = time.monotonic()  # fell far behind (a stalled server): do not burst
    finally:
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_until(stop: asyncio.Event, tasks: list[asyncio.Task[Any]]) -> None:
    """Let background ``tasks`` run until ``stop`` is set (or this is cancelled), then cancel
    them and wait until they are gone."""
    try:
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
