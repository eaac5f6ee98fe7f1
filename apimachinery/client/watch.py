"""Watches: one watch request as an async iterator of events, and a watch that never ends.

:func:`watch` is one HTTP request (``?watch=true``), decoded line by line from the chunked body;
it ends when the server closes the stream (``timeoutSeconds``) and yields ERROR events as they
come. :func:`watch_forever` is what informers and CLIs want: it lists first, then watches from
the list's resourceVersion, reconnects from the last resourceVersion it saw (bookmarks move it),
and when the server says 410 Expired it relists and emits the ADDED/MODIFIED/DELETED events that
bring the consumer from what it had to what the list shows, so no deletion is lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from apimachinery import jsonutil
from apimachinery.client.rest import TABLE_ACCEPT, ApiClient, ApiConnectionError
from apimachinery.errors import ApiError
from apimachinery.meta import Status, WatchEvent
from apimachinery.scheme import ResourceType

log = logging.getLogger(__name__)

# The annotation that marks the end of the initial events in Kubernetes' watch-list protocol;
# watch_forever ends its initial list the same way so consumers can tell "synced".
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

__all__ = ["INITIAL_EVENTS_END", "TABLE_ACCEPT", "WatchEvent", "object_key", "watch", "watch_forever"]


def object_key(obj: dict[str, Any]) -> str:
    """``namespace/name`` or ``name``: the cache and workqueue key of a JSON object."""
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{ns}/{md.get('name')}" if ns else str(md.get("name"))


def _resource_version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


async def watch(
    client: ApiClient,
    rt: ResourceType,
    namespace: str | None = None,
    *,
    resource_version: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    timeout_seconds: int | None = None,
    allow_bookmarks: bool = True,
    accept: str | None = None,
) -> AsyncIterator[WatchEvent]:
    """One watch request. ``namespace=None`` watches all namespaces. Raises ApiError if the server
    refuses the request itself (e.g. 410 for a resourceVersion it no longer has)."""
    params = {
        "watch": True,
        "resourceVersion": resource_version,
        "labelSelector": label_selector or None,
        "fieldSelector": field_selector or None,
        "timeoutSeconds": timeout_seconds,
        "allowWatchBookmarks": allow_bookmarks or None,
    }
    path = rt.path(namespace if rt.namespaced else None)
    async with client.open("GET", path, params=params, accept=accept) as resp:
        buf = b""
        async for chunk in resp.content.iter_any():
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                line, buf = buf[:nl], buf[nl + 1 :]
                if line.strip():
                    yield _decode_event(line)
        if buf.strip():
            yield _decode_event(buf)


def _decode_event(line: bytes) -> WatchEvent:
    data = jsonutil.loads(line)
    return WatchEvent(type=data["type"], object=data.get("object") or {})


def _is_expired(event_or_error: WatchEvent | ApiError) -> bool:
    if isinstance(event_or_error, ApiError):
        return event_or_error.code == 410
    return int(event_or_error.object.get("code") or 0) == 410


async def watch_forever(
    client: ApiClient,
    rt: ResourceType,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
    resource_version: str | None = None,
    min_watch_timeout: int = 300,
    max_backoff: float = 30.0,
    known: dict[str, dict[str, Any]] | None = None,
) -> AsyncIterator[WatchEvent]:
    """List, then watch, forever (until the consumer stops iterating or is cancelled).

    Without ``resource_version`` it starts with one ADDED event per listed object followed by a
    synthetic BOOKMARK whose annotations carry ``k8s.io/initial-events-end: "true"``; with one it
    watches from there directly. Server BOOKMARKs only advance the resume point and are not
    yielded. After a 410 Expired it relists and yields the difference to what it had emitted, then
    another initial-events-end BOOKMARK. Every other failure (connection errors, ERROR events,
    refused requests) is logged and retried with capped backoff: this only ends when the consumer
    stops iterating or the task is cancelled.

    ``known`` seeds what the consumer already holds (an informer restarted after ``stop()``), so
    the first list also reports objects deleted in the meantime.
    """
    known = dict(known or {})
    rv = resource_version
    must_list = resource_version is None
    backoff = 0.2
    while True:
        try:
            if must_list:
                items, rv = await client.list_all(
                    rt, namespace, label_selector=label_selector, field_selector=field_selector
                )
                for ev in relist_events(known, items):
                    yield ev
                yield WatchEvent(
                    type="BOOKMARK",
                    object={
                        "apiVersion": rt.api_version,
                        "kind": rt.kind,
                        "metadata": {"resourceVersion": rv, "annotations": {INITIAL_EVENTS_END: "true"}},
                    },
                )
                must_list = False
            # Spread reconnections like client-go: a random timeout in [min, 2*min).
            timeout = min_watch_timeout + random.randrange(max(min_watch_timeout, 1))
            got_any = False
            async for ev in watch(
                client, rt, namespace, resource_version=rv, label_selector=label_selector,
                field_selector=field_selector, timeout_seconds=timeout,
            ):
                got_any = True
                backoff = 0.2
                if ev.type == "ERROR":
                    if _is_expired(ev):
                        must_list = True
                        break
                    status = Status.model_validate(ev.object)
                    raise ApiError(status)
                new_rv = _resource_version(ev.object)
                if new_rv:
                    rv = new_rv
                if ev.type == "BOOKMARK":
                    continue
                key = object_key(ev.object)
                if ev.type == "DELETED":
                    known.pop(key, None)
                else:
                    known[key] = ev.object
                yield ev
            if not got_any and not must_list:
                # A stream that closes at once and empty, over and over, must not spin the CPU.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff)
        except ApiError as exc:
            if _is_expired(exc):
                must_list = True
                continue
            # Like client-go's reflector: any other refusal (throttling, a restarting server,
            # even 403 while RBAC catches up) is retried with capped backoff, never fatal.
            log.warning("watch %s: %s; retrying in %.1fs", rt.group_resource, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
        except (TimeoutError, ApiConnectionError, aiohttp.ClientError, OSError, ValueError) as exc:
            # ValueError: a truncated JSON line when the connection dropped mid-event.
            log.info("watch %s: %s; reconnecting in %.1fs", rt.group_resource, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)


def relist_events(known: dict[str, dict[str, Any]], items: list[dict[str, Any]]) -> list[WatchEvent]:
    """Events turning ``known`` into ``items`` (and update ``known`` to match)."""
    events: list[WatchEvent] = []
    seen: set[str] = set()
    for item in items:
        key = object_key(item)
        seen.add(key)
        old = known.get(key)
        if old is None:
            events.append(WatchEvent(type="ADDED", object=item))
        elif _resource_version(old) != _resource_version(item):
            events.append(WatchEvent(type="MODIFIED", object=item))
        known[key] = item
    for key in [k for k in known if k not in seen]:
        events.append(WatchEvent(type="DELETED", object=known.pop(key)))
    return events
