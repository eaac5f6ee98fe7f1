"""The etcd v3 store: the only code in the project that speaks to etcd.

Everything the registry needs is one etcd request: a create is a transaction "if version == 0
then put", an update "if mod_revision == expected then put else get" (so a lost race hands back
the winner's value without a second read), a list is one range at a fixed revision. The
resourceVersion of every object is its etcd mod_revision.

The aetcd client owns the gRPC channel per endpoint; requests go through its raw stubs
(``aetcd.rpc``) because its high-level methods cannot range at a revision or with a limit, nor
compare on mod_revision and read back in one transaction. Each watch is its own gRPC stream, so
cancelling one closes exactly that stream on the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aetcd
import grpc
from aetcd import rpc

from controlplane.storage.errors import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    StorageError,
    UnavailableError,
)

log = logging.getLogger(__name__)

_CHANNEL_OPTIONS: dict[str, int] = {
    # A page of 5,000 objects easily exceeds gRPC's default 4 MiB; etcd bounds requests itself.
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
    # Pings on open streams notice a silently dead member (no RST) so a watch does not hang.
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    # After an etcd restart, reconnect within a second instead of gRPC's backoff of up to 2 min.
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 1_000,
}

# Failures where retrying on another member is safe for a read: the member is gone or stuck.
_UNAVAILABLE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass(frozen=True)
class KV:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    version: int


@dataclass(frozen=True)
class ListResult:
    entries: list[KV]
    # The revision the list reflects: the requested one, or etcd's current revision.
    revision: int
    # True when ``limit`` cut the range short.
    more: bool
    # Keys in [start_key or prefix, end of prefix) at that revision: remaining = count - len(entries).
    count: int


@dataclass(frozen=True)
class WatchEvent:
    type: Literal["PUT", "DELETE"]
    # For a DELETE: the key, with mod_revision = the deletion's revision and an empty value.
    entry: KV
    # The value before this event (absent for a create, or if that revision was compacted).
    prev_entry: KV | None


def _b(key: str) -> bytes:
    # surrogateescape: keys written by other tools need not be UTF-8, and must round-trip.
    return key.encode("utf-8", "surrogateescape")


def _kv(m: Any) -> KV:
    return KV(m.key.decode("utf-8", "surrogateescape"), m.value, m.mod_revision, m.create_revision, m.version)


def _key_range(prefix: str) -> tuple[bytes, bytes]:
    """[key, range_end) covering every key that starts with ``prefix``; "" is the whole space."""
    if not prefix:
        return b"\0", b"\0"
    start = _b(prefix)
    end = bytearray(start)
    while end and end[-1] == 0xFF:
        end.pop()
    if not end:
        return start, b"\0"
    end[-1] += 1
    return start, bytes(end)


def _event(ev: Any) -> WatchEvent:
    prev = _kv(ev.prev_kv) if ev.HasField("prev_kv") else None
    return WatchEvent("DELETE" if ev.type == rpc.Event.DELETE else "PUT", _kv(ev.kv), prev)


def _parse_endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http":
        raise ValueError(f"unsupported etcd endpoint {url!r}: only http:// endpoints are supported")
    if not parts.hostname:
        raise ValueError(f"invalid etcd endpoint {url!r}")
    return parts.hostname, parts.port or 2379


class _Endpoint:
    """One etcd member: an aetcd client (its gRPC channel and stubs) plus a watch stub."""

    def __init__(self, url: str, timeout: float) -> None:
        host, port = _parse_endpoint(url)
        self.url = url
        self.client = aetcd.Client(host, port, timeout=timeout, options=dict(_CHANNEL_OPTIONS))
        self.watch_stub: Any = None

    async def open(self) -> None:
        await self.client.connect()  # creates the channel; gRPC connects lazily on first use
        self.watch_stub = rpc.WatchStub(self.client.channel)

    def ready(self) -> bool:
        channel = self.client.channel
        return channel is not None and channel.get_state() == grpc.ChannelConnectivity.READY


class EtcdStore:
    """Typed, revision-aware access to etcd; see the module docstring."""

    def __init__(self, endpoints: list[_Endpoint], timeout: float) -> None:
        self._endpoints = endpoints
        self._active = 0
        self._timeout = timeout

    @classmethod
    async def connect(cls, endpoints: list[str], *, timeout: float = 5.0) -> EtcdStore:
        """Connect and check that etcd answers (UnavailableError if no endpoint does)."""
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        store = cls([_Endpoint(url, timeout) for url in endpoints], timeout)
        try:
            for ep in store._endpoints:
                await ep.open()
            await store.current_revision()
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        for ep in self._endpoints:
            await ep.client.close()

    @property
    def endpoint(self) -> str:
        """The member requests go to first (the others are fallbacks)."""
        return self._endpoints[self._active].url

    # -- plumbing ---------------------------------------------------------------------------

    def _failed_over(self, idx: int, why: str) -> None:
        if self._active == idx and len(self._endpoints) > 1:
            self._active = (idx + 1) % len(self._endpoints)
            log.warning("etcd %s failed (%s); using %s", self._endpoints[idx].url, why, self.endpoint)

    async def _call(self, rpc_of: Callable[[Any], Any], request: Any, *, idempotent: bool) -> Any:
        """One unary request, failing over to the next member when that is safe.

        Reads are retried on every member. A write is retried only if it cannot have been
        sent: the channel was not connected before the call and the call found nobody.
        """
        n = len(self._endpoints)
        first = self._active
        for attempt in range(n):
            idx = (first + attempt) % n
            ep = self._endpoints[idx]
            was_ready = ep.ready()
            try:
                return await rpc_of(ep.client)(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as e:
                if e.code() not in _UNAVAILABLE_CODES:
                    raise await self._map_error(e) from e
                self._failed_over(idx, f"{e.code().name}: {e.details()}")
                retry_safe = idempotent or (e.code() == grpc.StatusCode.UNAVAILABLE and not was_ready)
                if not retry_safe or attempt + 1 == n:
                    raise await self._map_error(e) from e
        raise AssertionError("unreachable")

    async def _map_error(self, e: grpc.aio.AioRpcError) -> StorageError:
        code, details = e.code(), e.details() or ""
        if code in _UNAVAILABLE_CODES:
            return UnavailableError(f"etcd unavailable: {details or code.name}")
        if code == grpc.StatusCode.OUT_OF_RANGE and "compacted" in details:
            return await self._compacted_error()
        return StorageError(f"etcd: {code.name}: {details}")

    async def _compacted_error(self) -> CompactedError:
        """A CompactedError with etcd's compaction and current revisions.

        A range error does not say how far etcd compacted; a watch from revision 1 does, so
        ask with a throwaway watch on a key nobody uses (only on this error path).
        """
        ep = self._endpoints[self._active]
        call = ep.watch_stub.Watch(timeout=self._timeout)
        try:
            create = rpc.WatchCreateRequest(key=b"\0compaction-probe", start_revision=1)
            await call.write(rpc.WatchRequest(create_request=create))
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF or resp.canceled or resp.compact_revision:
                    break
            compacted = 0 if resp is grpc.aio.EOF else resp.compact_revision
        except grpc.aio.AioRpcError:
            compacted = 0
        finally:
            call.cancel()
        return CompactedError(compacted, await self._revision_or_zero())

    async def _revision_or_zero(self) -> int:
        try:
            return await self.current_revision()
        except StorageError:
            return 0

    # -- reads ------------------------------------------------------------------------------

    async def get(self, key: str, *, revision: int = 0) -> KV | None:
        req = rpc.RangeRequest(key=_b(key), revision=revision)
        resp = await self._call(lambda c: c.kvstub.Range, req, idempotent=True)
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_key: str | None = None,
    ) -> ListResult:
        """Keys with ``prefix`` in key order, from ``start_key`` on, at ``revision`` (0 = now)."""
        key, end = _key_range(prefix)
        if start_key is not None:
            key = max(key, _b(start_key))
        req = rpc.RangeRequest(key=key, range_end=end, revision=revision, limit=limit)
        resp = await self._call(lambda c: c.kvstub.Range, req, idempotent=True)
        # header.revision is etcd's current revision even when reading the past.
        return ListResult([_kv(m) for m in resp.kvs], revision or resp.header.revision, resp.more, resp.count)

    async def current_revision(self) -> int:
        """etcd's revision now, by a linearizable read (so it covers every acknowledged write)."""
        req = rpc.RangeRequest(key=b"\0", count_only=True)
        resp = await self._call(lambda c: c.kvstub.Range, req, idempotent=True)
        return int(resp.header.revision)

    # -- writes -----------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> int:
        """Store ``key`` only if it does not exist; returns the new revision."""
        k = _b(key)
        txn = rpc.TxnRequest(
            compare=[rpc.Compare(key=k, target=rpc.Compare.VERSION, result=rpc.Compare.EQUAL, version=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))],
        )
        resp = await self._call(lambda c: c.kvstub.Txn, txn, idempotent=False)
        if not resp.succeeded:
            raise KeyExistsError(key)
        return int(resp.header.revision)

    def _cas(self, key: bytes, expected_mod_revision: int, op: Any) -> Any:
        """A transaction: if mod_revision == expected then ``op`` else read the key."""
        return rpc.TxnRequest(
            compare=[rpc.Compare(
                key=key, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=expected_mod_revision,
            )],
            success=[op],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))],
        )

    @staticmethod
    def _current(resp: Any) -> KV | None:
        kvs = resp.responses[0].response_range.kvs
        return _kv(kvs[0]) if kvs else None

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> int:
        """Replace ``key`` if it is still at ``expected_mod_revision``; returns the new revision.

        ConflictError carries the current value (None if the key is gone).
        """
        if expected_mod_revision <= 0:
            # mod_revision 0 would match a missing key and turn the update into a create.
            raise ValueError("expected_mod_revision must be positive")
        k = _b(key)
        txn = self._cas(k, expected_mod_revision, rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value)))
        resp = await self._call(lambda c: c.kvstub.Txn, txn, idempotent=False)
        if not resp.succeeded:
            raise ConflictError(key, self._current(resp))
        return int(resp.header.revision)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> int:
        """Delete ``key`` (if still at ``expected_mod_revision`` when given); returns the revision."""
        k = _b(key)
        if expected_mod_revision is None:
            resp = await self._call(
                lambda c: c.kvstub.DeleteRange, rpc.DeleteRangeRequest(key=k), idempotent=False,
            )
            if resp.deleted == 0:
                raise KeyNotFoundError(key)
            return int(resp.header.revision)
        if expected_mod_revision <= 0:
            raise ValueError("expected_mod_revision must be positive")
        op = rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k))
        resp = await self._call(lambda c: c.kvstub.Txn, self._cas(k, expected_mod_revision, op), idempotent=False)
        if not resp.succeeded:
            current = self._current(resp)
            if current is None:
                raise KeyNotFoundError(key)
            raise ConflictError(key, current)
        return int(resp.header.revision)

    async def put(self, key: str, value: bytes) -> int:
        """Unconditional write (benchmarks, bookkeeping keys); returns the new revision."""
        resp = await self._call(
            lambda c: c.kvstub.Put, rpc.PutRequest(key=_b(key), value=value), idempotent=False,
        )
        return int(resp.header.revision)

    async def compact(self, revision: int) -> None:
        """Drop history before ``revision`` (CompactedError if it already was)."""
        req = rpc.CompactionRequest(revision=revision, physical=False)
        await self._call(lambda c: c.kvstub.Compact, req, idempotent=False)

    # -- watch ------------------------------------------------------------------------------

    async def watch(self, prefix: str, start_revision: int, *, prev_kv: bool = True) -> AsyncIterator[WatchEvent]:
        """Every change under ``prefix`` ("" = all keys) from ``start_revision`` (0 = from now) on.

        Events come in revision order, each with its previous value. Raises CompactedError when
        ``start_revision`` is compacted (or the watcher falls behind a compaction), and
        UnavailableError when the stream breaks; the caller re-watches from its last revision.
        Closing or cancelling the iteration cancels the gRPC stream, which ends the server's watch.
        ``prev_kv=False`` leaves previous values out (prev_entry is None) for a watcher that
        already holds them, halving what every write costs it.
        """
        key, end = _key_range(prefix)
        create = rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=key, range_end=end, start_revision=start_revision, prev_kv=prev_kv,
        ))
        n = len(self._endpoints)
        first = self._active
        for attempt in range(n):
            idx = (first + attempt) % n
            ep = self._endpoints[idx]
            call = ep.watch_stub.Watch()
            created = False
            try:
                await call.write(create)
                while True:
                    resp = await call.read()
                    if resp is grpc.aio.EOF:
                        raise UnavailableError(f"etcd {ep.url} closed the watch stream")
                    if resp.compact_revision:
                        # etcd leaves the header empty here: ask for the current revision.
                        raise CompactedError(resp.compact_revision, await self._revision_or_zero())
                    if resp.canceled:
                        raise StorageError(f"etcd cancelled the watch: {resp.cancel_reason or 'no reason given'}")
                    created = True
                    for ev in resp.events:
                        yield _event(ev)
            except grpc.aio.AioRpcError as e:
                if e.code() in _UNAVAILABLE_CODES:
                    self._failed_over(idx, f"{e.code().name}: {e.details()}")
                    if not created and attempt + 1 < n:
                        continue
                raise await self._map_error(e) from e
            finally:
                call.cancel()
            return

    # -- health -----------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """The answering member's status (version, db size, leader, raft state, alarms)."""
        resp = await self._call(lambda c: c.maintenancestub.Status, rpc.StatusRequest(), idempotent=True)
        return {
            "endpoint": self.endpoint,
            "version": resp.version,
            "dbSize": resp.dbSize,
            "memberID": resp.header.member_id,
            "leader": resp.leader,
            "raftIndex": resp.raftIndex,
            "raftTerm": resp.raftTerm,
            "revision": resp.header.revision,
            "errors": list(resp.errors),
        }

    async def healthy(self) -> bool:
        """Whether etcd serves a linearizable read now (needs a leader and a quorum)."""
        try:
            async with asyncio.timeout(self._timeout):
                await self.current_revision()
        except (StorageError, TimeoutError):
            return False
        return True
