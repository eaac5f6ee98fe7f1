"""WATCH: a chunked stream of JSON lines, fed by the watch cache (or etcd for old revisions).

Semantics follow Kubernetes:

* ``resourceVersion`` unset or ``"0"``: first every current object as ADDED, then changes;
  unset waits until the cache has every acknowledged write (a consistent start).
* ``resourceVersion=N``: every change after N, in order; ``410 Expired`` (as an ERROR event)
  when N was compacted away.
* ``sendInitialEvents=true`` (watch-list): the current objects as ADDED, then a BOOKMARK
  annotated ``k8s.io/initial-events-end: "true"``, then changes.
* ``allowWatchBookmarks``: a BOOKMARK with the current revision when the stream is idle, so a
  client that resumes after a quiet period does not fall off the end of the event window.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from apimachinery import errors, jsonutil
from apimachinery.scheme import ResourceType
from controlplane.apiserver import tables
from controlplane.apiserver.reqinfo import RequestInfo, parse_bool
from controlplane.registry import codec
from controlplane.registry.store import Store
from controlplane.registry.watchcache import CachedEvent
from controlplane.storage.errors import CompactedError

BOOKMARK_INTERVAL = 5.0
# Kubernetes spreads watch timeouts over [min-request-timeout, 2x] so clients do not reconnect in lockstep.
MIN_REQUEST_TIMEOUT = 1800

Event = tuple[str, Any]


def _status_event(err: errors.ApiError) -> bytes:
    return jsonutil.dumps({"type": "ERROR", "object": err.status.to_dict()}) + b"\n"


class _Encoder:
    """Turns events into wire lines: plain objects, or one-row Tables when Tables were asked for."""

    def __init__(self, rt: ResourceType, table: bool, include_object: str) -> None:
        self.rt = rt
        self.table = table
        self.include_object = include_object

    def line(self, type_: str, obj: dict[str, Any], encoded: bytes | None = None) -> bytes:
        if self.table and type_ != "BOOKMARK":
            # Every event carries the column definitions. kubectl's printer remembers the columns
            # of the last table it *printed* and repeats no header for equal ones, but `kubectl get
            # NAME -w` drops the first (initial ADDED) event unprinted: had only that one carried
            # the columns, later rows would print without any.
            table = tables.build_table(self.rt, [obj], include_object=self.include_object)
            encoded = jsonutil.dumps(table)
        elif encoded is None:
            encoded = jsonutil.dumps(obj)
        return b'{"type":"' + type_.encode() + b'","object":' + encoded + b"}\n"

    def bookmark(self, revision: int, initial_end: bool = False) -> bytes:
        md: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        return self.line("BOOKMARK", {"kind": self.rt.kind, "apiVersion": self.rt.api_version, "metadata": md})


def _timeout(query: Any) -> float:
    raw = query.get("timeoutSeconds")
    if raw:
        try:
            return max(0.0, float(int(raw)))
        except ValueError:
            raise errors.bad_request(f'invalid value for timeoutSeconds: "{raw}"') from None
    return float(random.randint(MIN_REQUEST_TIMEOUT, 2 * MIN_REQUEST_TIMEOUT))


async def serve_watch(
    request: web.Request, store: Store, info: RequestInfo, predicate: Callable[[dict[str, Any]], bool] | None
) -> web.StreamResponse:
    q = request.query
    rt = info.rt
    rv = q.get("resourceVersion", "")
    bookmarks = parse_bool(q.get("allowWatchBookmarks"), "allowWatchBookmarks")
    send_initial_raw = q.get("sendInitialEvents")
    watch_list = send_initial_raw is not None and parse_bool(send_initial_raw, "sendInitialEvents")
    if send_initial_raw is not None:
        if q.get("resourceVersionMatch") != "NotOlderThan":
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.FieldError.forbidden(
                "resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")])
        if watch_list and not bookmarks:
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.FieldError.forbidden(
                "allowWatchBookmarks", "sendInitialEvents requires allowWatchBookmarks=true")])
    elif q.get("resourceVersionMatch"):
        raise errors.bad_request("resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
    initial = watch_list if send_initial_raw is not None else rv in ("", "0")
    since: int | None = None
    if rv not in ("", "0"):
        try:
            since = int(rv)
        except ValueError:
            raise errors.bad_request(f"invalid resource version: {rv!r}") from None
    timeout = _timeout(q)

    cache = store.cache
    if initial:
        if rv == "" or since is not None:
            await cache.wait_fresh()
    encoder = _Encoder(rt, tables.wants_table(request.headers.get("Accept", "")), q.get("includeObject", "Metadata"))

    prefix = rt.storage_prefix()
    ns_prefix = rt.storage_prefix(info.namespace)
    sub = cache.subscribe(prefix, ns_prefix, predicate, since, initial=initial)

    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        async with asyncio.timeout(timeout):
            if sub is None:
                assert since is not None
                await _stream_from_etcd(resp, store, ns_prefix, since, predicate, encoder)
            else:
                try:
                    await _stream_from_cache(resp, sub, encoder, watch_list, bookmarks, lambda: cache.revision)
                finally:
                    cache.unsubscribe(prefix, sub)
    except (TimeoutError, ConnectionResetError):
        pass
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await resp.write_eof()
    return resp


# At most this many queued events go out in one write: under load a watcher's queue holds many
# events, and one TLS record and one syscall for a batch costs far less than one per event.
MAX_BATCH = 128


async def _stream_from_cache(
    resp: web.StreamResponse,
    sub: Any,
    encoder: _Encoder,
    watch_list: bool,
    bookmarks: bool,
    revision: Callable[[], int],
) -> None:
    queue: asyncio.Queue[Event] = sub.queue
    initial_done = not watch_list
    while True:
        try:
            item = await asyncio.wait_for(queue.get(), BOOKMARK_INTERVAL)
        except TimeoutError:
            if bookmarks and initial_done and queue.empty():
                await resp.write(encoder.bookmark(revision()))
            continue
        lines: list[bytes] = []
        while True:
            kind, payload = item
            if kind == "INITIAL_END":
                initial_done = True
                if watch_list:
                    lines.append(encoder.bookmark(int(payload), initial_end=True))
            elif kind == "BOOKMARK":
                if bookmarks:
                    lines.append(encoder.bookmark(int(payload)))
            elif kind == "ERROR":
                lines.append(_status_event(errors.gone(str(payload))))
                await resp.write(b"".join(lines))
                return
            else:
                ev: CachedEvent = payload
                # An object that left this watcher's selection is reported DELETED as of that change.
                lines.append(encoder.line(kind, ev.obj, ev.encoded() if not encoder.table else None))
            if queue.empty() or len(lines) >= MAX_BATCH:
                break
            item = queue.get_nowait()
        if lines:
            await resp.write(b"".join(lines))


async def _etcd_events(store: Store, prefix: str, since: int) -> AsyncIterator[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    async for ev in store.etcd.watch(prefix, since + 1):
        prev = codec.decode(ev.prev_entry.value, ev.prev_entry.mod_revision) if ev.prev_entry else None
        if ev.type == "PUT":
            yield "PUT", codec.decode(ev.entry.value, ev.entry.mod_revision), prev
        else:
            yield "DELETE", codec.deleted(prev, ev.entry.mod_revision), prev


async def _stream_from_etcd(
    resp: web.StreamResponse,
    store: Store,
    prefix: str,
    since: int,
    predicate: Callable[[dict[str, Any]], bool] | None,
    encoder: _Encoder,
) -> None:
    """A watch older than the cache's window: its own etcd watch (410 once compacted)."""

    def match(obj: dict[str, Any] | None) -> bool:
        return obj is not None and (predicate is None or predicate(obj))

    try:
        async for type_, obj, prev in _etcd_events(store, prefix, since):
            now_in, was_in = (type_ == "PUT" and match(obj)), match(prev)
            if type_ == "DELETE" and was_in:
                await resp.write(encoder.line("DELETED", obj))
            elif now_in:
                await resp.write(encoder.line("MODIFIED" if was_in else "ADDED", obj))
            elif was_in:
                await resp.write(encoder.line("DELETED", obj))
    except CompactedError as e:
        await resp.write(_status_event(errors.gone(
            f"too old resource version: {since} ({getattr(e, 'compact_revision', since)})")))
