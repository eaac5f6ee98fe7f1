"""WorkQueue: dedup, one worker per key, re-queue after done, backoff growth, token bucket, shutdown.

Timing is driven by the event loop (add_after with tiny delays) or by an injected clock; no test
depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from apimachinery.client.workqueue import ExponentialBackoff, RateLimiter, ShutDown, TokenBucket, WorkQueue


async def test_add_deduplicates_waiting_keys() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ["a", "b", "a", "a", "c", "b"]:
        q.add(key)
    assert len(q) == 3
    assert [await q.get(), await q.get(), await q.get()] == ["a", "b", "c"]
    assert len(q) == 0


async def test_key_added_while_processing_is_not_handed_out_until_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    first = await q.get()
    assert first == "a"
    q.add("a")  # changes arrive while a worker reconciles "a"
    q.add("a")
    assert len(q) == 0, "a key being processed must not be queued for a second worker"
    second_worker = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not second_worker.done()
    q.done("a")
    assert await asyncio.wait_for(second_worker, 5) == "a"
    q.done("a")
    assert len(q) == 0


async def test_no_key_is_processed_by_two_workers_at_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    active: set[str] = set()
    overlaps: list[str] = []
    processed: list[str] = []
    enough = asyncio.Event()

    async def worker() -> None:
        async for key in q:
            if key in active:
                overlaps.append(key)
            active.add(key)
            await asyncio.sleep(0)  # let the producer and other workers run mid-reconcile
            q.add(key if len(processed) % 3 else "k0")
            await asyncio.sleep(0)
            active.discard(key)
            processed.append(key)
            if len(processed) >= 200:
                enough.set()
            q.done(key)

    for i in range(5):
        q.add(f"k{i}")
    workers = [asyncio.create_task(worker()) for _ in range(4)]
    await asyncio.wait_for(enough.wait(), 30)
    q.shutdown()
    await asyncio.wait_for(asyncio.gather(*workers), 5)
    assert overlaps == []
    assert set(processed) == {f"k{i}" for i in range(5)}


async def test_add_after_delays_and_earliest_wins() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("late", 3600)
    q.add_after("late", 0.01)  # an earlier deadline replaces the later one
    assert len(q) == 0
    assert await asyncio.wait_for(q.get(), 5) == "late"
    q.done("late")
    q.shutdown()
    with pytest.raises(ShutDown):
        await q.get()


def test_exponential_backoff_doubles_from_5ms_to_1000s_and_forget_resets() -> None:
    b = ExponentialBackoff()
    delays = [b.when("x") for _ in range(22)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert all(later == min(2 * earlier, 1000.0) for earlier, later in itertools.pairwise(delays))
    assert delays[-1] == 1000.0
    assert b.num_requeues("x") == 22
    assert b.when("other") == 0.005, "backoff is per key"
    b.forget("x")
    assert b.num_requeues("x") == 0
    assert b.when("x") == 0.005


def test_token_bucket_allows_a_burst_of_100_then_10_per_second() -> None:
    now = [0.0]
    bucket = TokenBucket(qps=10, burst=100, clock=lambda: now[0])
    assert [bucket.when() for _ in range(100)] == [0.0] * 100
    assert bucket.when() == pytest.approx(0.1)
    assert bucket.when() == pytest.approx(0.2)
    now[0] += 10.0  # 100 tokens refill, minus the two reserved
    assert bucket.when() == 0.0


def test_rate_limiter_takes_the_larger_delay() -> None:
    now = [0.0]
    rl = RateLimiter(ExponentialBackoff(), TokenBucket(qps=10, burst=1, clock=lambda: now[0]))
    assert rl.when("a") == 0.005  # bucket has a token; backoff 5 ms
    assert rl.when("b") == pytest.approx(0.1)  # bucket empty: 100 ms beats b's 5 ms
    assert rl.num_requeues("a") == 1
    rl.forget("a")
    assert rl.num_requeues("a") == 0


async def test_add_rate_limited_counts_requeues_and_delivers() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_rate_limited("k")
    q.add_rate_limited("k")
    assert q.num_requeues("k") == 2
    assert await asyncio.wait_for(q.get(), 5) == "k"
    q.done("k")
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_shutdown_drains_then_releases_waiting_workers() -> None:
    q: WorkQueue[str] = WorkQueue()
    idle = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(idle, 5)

    q2: WorkQueue[str] = WorkQueue()
    q2.add("a")
    q2.add("b")
    q2.add_after("never", 3600)
    q2.shutdown()
    q2.add("c")  # ignored after shutdown
    assert [k async for k in q2] == ["a", "b"]
    assert q2.shutting_down


async def test_cancelled_getter_does_not_swallow_a_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    doomed = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    q.add("a")
    assert await asyncio.wait_for(q.get(), 5) == "a"
