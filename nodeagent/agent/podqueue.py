"""The pod work loop of an agent (native or hollow): pod keys from a work queue, one sync each.

A key whose sync fails comes back rate-limited, so a pod that keeps failing is retried ever
more slowly while the others go on; the queue hands a key to one worker at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aiohttp

from apimachinery.client import ApiConnectionError, WorkQueue
from apimachinery.errors import ApiError

# What a retry may cure (the API server or the runtime briefly away, a conflict): one log line;
# anything else is a bug and is logged with its traceback.
TRANSIENT: tuple[type[Exception], ...] = (ApiError, ApiConnectionError, aiohttp.ClientError, TimeoutError, OSError)


async def work_pods(queue: WorkQueue[str], sync: Callable[[str], Awaitable[None]], log: logging.Logger,
                    transient: tuple[type[Exception], ...] = TRANSIENT) -> None:
    """Run ``sync(key)`` for every key the queue hands out, until it shuts down."""
    async for key in queue:
        try:
            await sync(key)
            queue.forget(key)
        except transient as exc:
            log.info("pod %s: %s; retrying", key, exc)
            queue.add_rate_limited(key)
        except Exception:
            log.exception("pod %s: sync failed", key)
            queue.add_rate_limited(key)
        finally:
            queue.done(key)
