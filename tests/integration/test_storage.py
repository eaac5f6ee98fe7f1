"""The etcd store against a real etcd: compare-and-swap writes, paged lists at a fixed revision,
watches (replay, live, compaction, cancellation), compaction, the managed etcd process, and the
watch cache running on top of the store."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from controlplane.registry import codec
from controlplane.registry.watchcache import WatchCache
from controlplane.storage.compactor import COMPACT_KEY, CompactorState, compact_once, run_compactor
from controlplane.storage.embedded import EmbeddedEtcd
from controlplane.storage.errors import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    UnavailableError,
)
from controlplane.storage.etcd import KV, EtcdStore, WatchEvent

pytestmark = pytest.mark.integration

# Upper bound for waiting on something that should happen promptly; reaching it is a failure.
PATIENCE = 10.0


async def next_event(it: AsyncIterator[WatchEvent]) -> WatchEvent:
    async with asyncio.timeout(PATIENCE):
        return await anext(it)


async def eventually(check: Any) -> Any:
    """Poll an async check until it returns something truthy (fails after PATIENCE)."""
    async with asyncio.timeout(PATIENCE):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.05)


# -- compare-and-swap writes ----------------------------------------------------------------


async def test_create_then_create_again_is_key_exists(etcd: EtcdStore, etcd_prefix: str) -> None:
    key = etcd_prefix + "a"
    rev = await etcd.create(key, b"one")
    assert await etcd.get(key) == KV(key, b"one", mod_revision=rev, create_revision=rev, version=1)

    with pytest.raises(KeyExistsError) as err:
        await etcd.create(key, b"two")
    assert err.value.key == key
    got = await etcd.get(key)
    assert got is not None and got.value == b"one"


async def test_update_with_current_and_stale_mod_revision(etcd: EtcdStore, etcd_prefix: str) -> None:
    key = etcd_prefix + "a"
    rev1 = await etcd.create(key, b"v1")
    rev2 = await etcd.update(key, b"v2", rev1)
    assert rev2 > rev1
    assert await etcd.get(key) == KV(key, b"v2", rev2, rev1, 2)

    # Stale: the conflict hands back what is there now, without another read.
    with pytest.raises(ConflictError) as err:
        await etcd.update(key, b"v3", rev1)
    assert err.value.key == key
    assert err.value.current == KV(key, b"v2", rev2, rev1, 2)

    await etcd.delete(key)
    with pytest.raises(ConflictError) as err:
        await etcd.update(key, b"v4", rev2)
    assert err.value.current is None
    assert await etcd.get(key) is None


async def test_concurrent_writers_exactly_one_wins(etcd: EtcdStore, etcd_prefix: str) -> None:
    key = etcd_prefix + "contended"
    rev = await etcd.create(key, b"base")
    values = [f"writer-{i}".encode() for i in range(8)]
    results = await asyncio.gather(*(etcd.update(key, v, rev) for v in values), return_exceptions=True)

    winners = [(v, r) for v, r in zip(values, results, strict=True) if isinstance(r, int)]
    losers = [r for r in results if isinstance(r, ConflictError)]
    assert len(winners) == 1 and len(losers) == len(values) - 1
    value, won_rev = winners[0]
    assert await etcd.get(key) == KV(key, value, won_rev, rev, 2)
    assert all(c.current == KV(key, value, won_rev, rev, 2) for c in losers)


async def test_delete_with_precondition(etcd: EtcdStore, etcd_prefix: str) -> None:
    key = etcd_prefix + "a"
    rev1 = await etcd.create(key, b"v1")
    rev2 = await etcd.update(key, b"v2", rev1)

    with pytest.raises(ConflictError) as err:
        await etcd.delete(key, expected_mod_revision=rev1)
    assert err.value.current is not None and err.value.current.mod_revision == rev2
    assert await etcd.get(key) is not None

    deleted_at = await etcd.delete(key, expected_mod_revision=rev2)
    assert deleted_at > rev2
    assert await etcd.get(key) is None
    # The value is still readable just before the deletion.
    before = await etcd.get(key, revision=deleted_at - 1)
    assert before is not None and before.value == b"v2"

    with pytest.raises(KeyNotFoundError):
        await etcd.delete(key)
    with pytest.raises(KeyNotFoundError):
        await etcd.delete(key, expected_mod_revision=rev2)

    await etcd.put(key, b"again")
    assert await etcd.delete(key) > deleted_at


# -- lists ----------------------------------------------------------------------------------


async def test_list_pages_at_a_fixed_revision(etcd: EtcdStore, etcd_prefix: str) -> None:
    names = [f"k{i:02d}" for i in range(10)]
    for n in names:
        await etcd.create(etcd_prefix + n, n.encode())
    # A key just outside the prefix must never appear.
    await etcd.put(etcd_prefix[:-1] + "0", b"outside")

    first = await etcd.list(etcd_prefix, limit=4)
    assert [e.key for e in first.entries] == [etcd_prefix + n for n in names[:4]]
    assert first.more and first.count == 10

    # Writes after the first page: an insert inside a later page, an update, a delete.
    await etcd.create(etcd_prefix + "k05a", b"new")
    k06 = await etcd.get(etcd_prefix + "k06")
    assert k06 is not None
    await etcd.update(k06.key, b"changed", k06.mod_revision)
    await etcd.delete(etcd_prefix + "k09")

    pages = [first]
    while pages[-1].more:
        page = await etcd.list(
            etcd_prefix, revision=first.revision, limit=4, start_key=pages[-1].entries[-1].key + "\0",
        )
        assert page.revision == first.revision
        assert page.count == 10 - 4 * len(pages)  # remaining keys from start_key on
        pages.append(page)
    listed = [(e.key, e.value) for p in pages for e in p.entries]
    assert listed == [(etcd_prefix + n, n.encode()) for n in names]
    assert [len(p.entries) for p in pages] == [4, 4, 2]

    # A start key past the prefix's range (or before it) stays within the prefix.
    assert (await etcd.list(etcd_prefix, start_key=etcd_prefix[:-1] + "0")).entries == []
    assert len((await etcd.list(etcd_prefix, start_key="")).entries) == 10

    now = await etcd.list(etcd_prefix)
    assert not now.more and now.revision > first.revision
    assert [e.key.removeprefix(etcd_prefix) for e in now.entries] == [*names[:6], "k05a", *names[6:9]]
    assert now.count == 10


async def test_list_at_a_compacted_revision(etcd: EtcdStore, etcd_prefix: str) -> None:
    key = etcd_prefix + "a"
    old = await etcd.create(key, b"v1")
    latest = await etcd.update(key, b"v2", old)
    await etcd.compact(latest)

    with pytest.raises(CompactedError) as err:
        await etcd.list(etcd_prefix, revision=old)
    assert err.value.compact_revision >= latest
    assert err.value.current_revision >= latest
    with pytest.raises(CompactedError):
        await etcd.get(key, revision=old)
    # The compaction revision itself is still readable.
    at_latest = await etcd.list(etcd_prefix, revision=latest)
    assert [e.value for e in at_latest.entries] == [b"v2"]
    with pytest.raises(CompactedError):
        await etcd.compact(old)


# -- watches --------------------------------------------------------------------------------


async def test_watch_replays_history_then_streams_live(etcd: EtcdStore, etcd_prefix: str) -> None:
    a, b = etcd_prefix + "a", etcd_prefix + "b"
    r1 = await etcd.create(a, b"a1")
    r2 = await etcd.update(a, b"a2", r1)
    r3 = await etcd.create(b, b"b1")
    await etcd.put(etcd_prefix[:-1] + "-other", b"not watched")

    it = etcd.watch(etcd_prefix, r1)
    try:
        replayed = [await next_event(it) for _ in range(3)]
        assert replayed == [
            WatchEvent("PUT", KV(a, b"a1", r1, r1, 1), None),
            WatchEvent("PUT", KV(a, b"a2", r2, r1, 2), KV(a, b"a1", r1, r1, 1)),
            WatchEvent("PUT", KV(b, b"b1", r3, r3, 1), None),
        ]

        r4 = await etcd.delete(a, expected_mod_revision=r2)
        ev = await next_event(it)
        assert ev.type == "DELETE"
        assert (ev.entry.key, ev.entry.mod_revision) == (a, r4)
        assert ev.prev_entry == KV(a, b"a2", r2, r1, 2)

        r5 = await etcd.update(b, b"b2", r3)
        assert await next_event(it) == WatchEvent("PUT", KV(b, b"b2", r5, r3, 2), KV(b, b"b1", r3, r3, 1))
    finally:
        await it.aclose()  # type: ignore[attr-defined]


async def test_watch_of_whole_keyspace_sees_every_prefix(etcd: EtcdStore, etcd_prefix: str) -> None:
    rev = await etcd.put(etcd_prefix + "x/1", b"1")
    await etcd.put(etcd_prefix + "y/2", b"2")
    it = etcd.watch("", rev)
    try:
        keys = [(await next_event(it)).entry.key for _ in range(2)]
        assert keys == [etcd_prefix + "x/1", etcd_prefix + "y/2"]
    finally:
        await it.aclose()  # type: ignore[attr-defined]


async def test_watch_from_a_compacted_revision(etcd: EtcdStore, etcd_prefix: str) -> None:
    key = etcd_prefix + "a"
    old = await etcd.create(key, b"v1")
    latest = await etcd.update(key, b"v2", old)
    await etcd.compact(latest)

    it = etcd.watch(etcd_prefix, old)
    with pytest.raises(CompactedError) as err:
        await next_event(it)
    assert err.value.compact_revision >= latest
    assert err.value.current_revision >= latest


async def _watcher_count(etcd_server: EmbeddedEtcd) -> tuple[float, float]:
    """(open watch streams, watchers) as the etcd server counts them."""
    async with aiohttp.ClientSession() as http, http.get(etcd_server.client_url + "/metrics") as resp:
        text = await resp.text()
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        values[name] = value
    return (float(values["etcd_debugging_mvcc_watch_stream_total"]),
            float(values["etcd_debugging_mvcc_watcher_total"]))


async def test_cancelling_a_watch_leaves_no_tasks_or_server_watches(
    etcd: EtcdStore, etcd_prefix: str, etcd_server: EmbeddedEtcd,
) -> None:
    # Wait for the server to drop streams of earlier tests before taking the baseline.
    baseline = await eventually(lambda: _quiet(etcd_server))
    tasks_before = asyncio.all_tasks()
    seen: list[WatchEvent] = []
    streaming = asyncio.Event()

    async def consume() -> None:
        async for ev in etcd.watch(etcd_prefix, 0):
            seen.append(ev)
            streaming.set()

    task = asyncio.create_task(consume())
    # Keep writing until the watch is established and delivering.
    async with asyncio.timeout(PATIENCE):
        while not streaming.is_set():
            await etcd.put(etcd_prefix + "k", b"x")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(streaming.wait(), 0.1)
    streams, watchers = await _watcher_count(etcd_server)
    assert streams >= baseline[0] + 1 and watchers >= baseline[1] + 1

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def no_new_tasks() -> bool:
        # gRPC's own per-call bookkeeping task finishes a loop iteration or two after the cancel.
        return not asyncio.all_tasks() - tasks_before

    assert await eventually(no_new_tasks)

    async def back_to_baseline() -> bool:
        return await _watcher_count(etcd_server) == baseline

    assert await eventually(back_to_baseline)
    assert seen and all(e.entry.key == etcd_prefix + "k" for e in seen)


async def test_closing_a_watch_between_events_ends_the_server_watch(
    etcd: EtcdStore, etcd_prefix: str, etcd_server: EmbeddedEtcd,
) -> None:
    baseline = await eventually(lambda: _quiet(etcd_server))
    rev = await etcd.put(etcd_prefix + "k", b"x")
    it = etcd.watch(etcd_prefix, rev)
    assert (await next_event(it)).entry.mod_revision == rev
    streams, watchers = await _watcher_count(etcd_server)
    assert streams >= baseline[0] + 1 and watchers >= baseline[1] + 1

    # The generator is suspended at a yield, not in a read: closing it must end the stream too.
    await it.aclose()  # type: ignore[attr-defined]

    async def back_to_baseline() -> bool:
        return await _watcher_count(etcd_server) == baseline

    assert await eventually(back_to_baseline)


async def _quiet(etcd_server: EmbeddedEtcd) -> tuple[float, float] | None:
    """The server's watch counts once they stop changing (earlier streams closed)."""
    first = await _watcher_count(etcd_server)
    await asyncio.sleep(0.1)
    return first if await _watcher_count(etcd_server) == first else None


# -- compaction -----------------------------------------------------------------------------


async def test_compactor_compacts_to_the_revision_seen_one_round_earlier(
    etcd: EtcdStore, etcd_prefix: str,
) -> None:
    key = etcd_prefix + "a"
    old = await etcd.put(key, b"old")
    before = await etcd.put(key, b"before")
    state = CompactorState()
    await compact_once(etcd, state)  # claims the round (or learns another's); observes a revision
    observed = state.observed
    assert observed >= before

    after = await etcd.put(key, b"after")
    assert await compact_once(etcd, state) == observed
    with pytest.raises(CompactedError):
        await etcd.get(key, revision=old)
    # Everything from the observed revision on is still there for slow watchers.
    kept = await etcd.get(key, revision=observed)
    assert kept is not None and kept.value == b"before"
    assert (await etcd.get(key, revision=after)) == KV(key, b"after", after, old, 3)

    # A second control plane with an outdated view loses the round and does not compact.
    other = CompactorState(key_revision=1, observed=after)
    assert await compact_once(etcd, other) is None
    assert other.key_revision == state.key_revision


async def test_run_compactor_keeps_compacting_until_cancelled(etcd: EtcdStore) -> None:
    start = await etcd.get(COMPACT_KEY)
    start_version = start.version if start else 0
    task = asyncio.create_task(run_compactor(etcd, interval=0.01))

    async def rounds_done() -> bool:
        kv = await etcd.get(COMPACT_KEY)
        return kv is not None and kv.version >= start_version + 3

    assert await eventually(rounds_done)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- the managed etcd process -----------------------------------------------------------------


async def test_embedded_etcd_survives_kill_9_and_restarts_on_its_data() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="kube-lite-etcd-restart-"))
    server = EmbeddedEtcd(data_dir)
    store: EtcdStore | None = None
    try:
        url = await server.start()
        store = await EtcdStore.connect([url])
        revs = [await store.create(f"/restart/{i:02d}", f"v{i}".encode()) for i in range(20)]

        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        assert await server.wait() == -signal.SIGKILL
        assert server.returncode == -signal.SIGKILL and not server.running
        with pytest.raises(UnavailableError):
            await store.get("/restart/00")

        assert await server.start() == url  # same data dir, same client URL
        # The store connected before the crash reconnects by itself.
        listed = await eventually(lambda: _list_when_back(store, "/restart/"))
        assert [(e.key, e.value, e.mod_revision) for e in listed.entries] == [
            (f"/restart/{i:02d}", f"v{i}".encode(), revs[i]) for i in range(20)
        ]
        assert await store.current_revision() == revs[-1]

        # If its old client port was taken meanwhile, it comes back elsewhere with the same data.
        await server.stop()
        with socket_port(listen=True, port=int(url.rsplit(":", 1)[1])):
            moved = await server.start()
        assert moved != url and moved == server.client_url
        await store.close()
        store = await EtcdStore.connect([moved])
        assert (await store.list("/restart/")).count == 20
    finally:
        if store is not None:
            await store.close()
        await server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    assert server.returncode is not None


async def _list_when_back(store: EtcdStore, prefix: str) -> Any:
    try:
        return await store.list(prefix)
    except UnavailableError:
        return None


async def test_connect_fails_over_to_a_live_endpoint(etcd_server: EmbeddedEtcd, etcd_prefix: str) -> None:
    # A port nobody listens on, first in the list: requests must move to the live member.
    with socket_port() as dead:
        store = await EtcdStore.connect([f"http://127.0.0.1:{dead}", etcd_server.client_url])
    try:
        assert store.endpoint == etcd_server.client_url
        rev = await store.create(etcd_prefix + "a", b"1")
        assert (await store.get(etcd_prefix + "a")) == KV(etcd_prefix + "a", b"1", rev, rev, 1)
        assert await store.healthy()
        assert (await store.status())["version"].startswith("3.")
    finally:
        await store.close()

    with socket_port() as dead:
        with pytest.raises(UnavailableError):
            await EtcdStore.connect([f"http://127.0.0.1:{dead}"], timeout=2.0)


async def _retry_unavailable(op: Any) -> Any:
    """Run ``op()`` until etcd serves it (a member died; the rest may be electing a leader)."""
    async with asyncio.timeout(PATIENCE):
        while True:
            try:
                return await op()
            except UnavailableError:
                await asyncio.sleep(0.1)


async def test_three_member_cluster_fails_over_when_a_member_dies(etcd_prefix: str) -> None:
    base = Path(tempfile.mkdtemp(prefix="kube-lite-etcd-cluster-"))
    with contextlib.ExitStack() as ports:
        # Hold the ports until just before etcd binds them, then hand them over.
        held = [ports.enter_context(socket_port()) for _ in range(6)]
    cluster = {f"m{i}": (held[2 * i], held[2 * i + 1]) for i in range(3)}
    members = [EmbeddedEtcd(base / name, name=name, cluster=cluster) for name in cluster]
    store: EtcdStore | None = None
    try:
        urls = await asyncio.gather(*(m.start() for m in members))
        store = await EtcdStore.connect(list(urls))
        key = etcd_prefix + "a"
        rev = await store.create(key, b"v1")
        watch = store.watch(etcd_prefix, rev)
        assert (await next_event(watch)).entry.mod_revision == rev

        victim = next(m for m in members if m.client_url == store.endpoint)
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        await victim.wait()

        # The watch on the dead member breaks; the store moves on to a live one.
        with pytest.raises(UnavailableError):
            await next_event(watch)
        got = await _retry_unavailable(lambda: store.get(key))
        assert got == KV(key, b"v1", rev, rev, 1)
        assert store.endpoint != victim.client_url
        rev2 = await _retry_unavailable(lambda: store.update(key, b"v2", rev))

        # Re-watching from the last revision seen continues on a live member, nothing lost.
        watch = store.watch(etcd_prefix, rev + 1)
        ev = await next_event(watch)
        assert (ev.entry.value, ev.entry.mod_revision, ev.prev_entry) == (b"v2", rev2, KV(key, b"v1", rev, rev, 1))
        await watch.aclose()  # type: ignore[attr-defined]
        assert await store.healthy()
    finally:
        if store is not None:
            await store.close()
        # The data is thrown away, so skip etcd's graceful stop: a leader whose peers are gone
        # spends seconds trying to hand over leadership.
        for m in members:
            if m.running and m.pid is not None:
                os.kill(m.pid, signal.SIGKILL)
        await asyncio.gather(*(m.stop() for m in members))
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def socket_port(*, listen: bool = False, port: int = 0) -> Iterator[int]:
    """A loopback port held by this test: bound (nobody else takes it), listening if asked."""
    with socket.socket() as s:
        # A killed server's connections may linger in TIME_WAIT on that port; they do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        if listen:
            s.listen()
        yield s.getsockname()[1]


# -- the watch cache on this store ------------------------------------------------------------


def _obj(ns: str, name: str, **labels: str) -> bytes:
    return codec.encode({"metadata": {"namespace": ns, "name": name, "labels": labels}})


async def test_watch_cache_snapshot_live_events_and_freshness(etcd: EtcdStore, etcd_prefix: str) -> None:
    root = etcd_prefix + "registry"
    pods = f"{root}/pods/"
    r1 = await etcd.create(pods + "ns1/a", _obj("ns1", "a"))
    await etcd.create(pods + "ns2/b", _obj("ns2", "b"))
    await etcd.create(f"{root}/configmaps/ns1/c", _obj("ns1", "c"))

    cache = WatchCache(etcd, root)
    await cache.start()
    try:
        snapshot = cache.cache_for(pods).objects
        assert sorted(snapshot) == [pods + "ns1/a", pods + "ns2/b"]
        assert snapshot[pods + "ns1/a"]["metadata"]["resourceVersion"] == str(r1)
        assert list(cache.cache_for(f"{root}/configmaps/").objects) == [f"{root}/configmaps/ns1/c"]

        sub = cache.subscribe(pods, pods + "ns1/", None, cache.revision, initial=False)
        assert sub is not None
        a = await etcd.get(pods + "ns1/a")
        assert a is not None
        r_mod = await etcd.update(a.key, _obj("ns1", "a", app="web"), a.mod_revision)
        await etcd.create(pods + "ns2/other-namespace", _obj("ns2", "other-namespace"))
        r_add = await etcd.create(pods + "ns1/d", _obj("ns1", "d"))
        r_del = await etcd.delete(a.key)

        assert await cache.wait_fresh()
        assert cache.revision >= r_del
        got = []
        for _ in range(3):
            async with asyncio.timeout(PATIENCE):
                kind, ev = await sub.queue.get()
            got.append((kind, ev.key, ev.obj["metadata"]["resourceVersion"]))
        assert got == [
            ("MODIFIED", pods + "ns1/a", str(r_mod)),
            ("ADDED", pods + "ns1/d", str(r_add)),
            ("DELETED", pods + "ns1/a", str(r_del)),
        ]
        assert sub.queue.empty()
        assert sorted(cache.cache_for(pods).objects) == [
            pods + "ns1/d", pods + "ns2/b", pods + "ns2/other-namespace",
        ]

        initial = cache.subscribe(pods, pods + "ns2/", None, None, initial=True)
        assert initial is not None
        items = [initial.queue.get_nowait() for _ in range(initial.queue.qsize())]
        assert [(k, e.key) for k, e in items[:-1]] == [
            ("ADDED", pods + "ns2/b"), ("ADDED", pods + "ns2/other-namespace"),
        ]
        assert items[-1] == ("INITIAL_END", cache.revision)
        cache.unsubscribe(pods, sub)
        cache.unsubscribe(pods, initial)
    finally:
        await cache.stop()
