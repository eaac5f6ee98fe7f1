"""Informers: a local, always-fresh cache of one resource type fed by list+watch.

Typed: an ``Informer(client, Pod)`` caches ``Pod`` models keyed by ``namespace/name`` (``name``
for cluster-scoped kinds). Objects handed out by ``get``, ``list``, ``by_index`` and to handlers
are the cache's own instances, shared with every other reader: **never mutate them**; call
``obj.copy_deep()``, change the copy, write it through the API.

Handlers run synchronously on the informer's task and must be quick: per DESIGN.md they only
enqueue keys (``on_event(queue.add)``); the reconcile reads the cache. An exception in a handler
is logged and does not stop the informer.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from apimachinery.client.rest import ApiClient
from apimachinery.client.watch import INITIAL_EVENTS_END, object_key, watch_forever
from apimachinery.meta import KubeObject

T = TypeVar("T", bound=KubeObject)

log = logging.getLogger(__name__)

IndexFunc = Callable[[T], Iterable[str]]
Transform = Callable[[dict[str, Any]], dict[str, Any]]

NAMESPACE_INDEX = "namespace"
OWNER_UID_INDEX = "owner-uid"


def strip_managed_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A transform for informers of components that never read managedFields (the scheduler):
    they are a third of a Pod's bytes, cost decoding time on every event and memory for every
    cached object. kube-scheduler drops them from its informers the same way."""
    md = data.get("metadata")
    if isinstance(md, dict):
        md.pop("managedFields", None)
    return data


def index_by_namespace(obj: KubeObject) -> list[str]:
    return [obj.metadata.namespace] if obj.metadata.namespace else []


def index_by_owner_uid(obj: KubeObject) -> list[str]:
    """The uids of the object's owners: maps a Pod to its ReplicaSet without a scan."""
    return [ref.uid for ref in obj.metadata.owner_references or [] if ref.uid]


@dataclass
class _Handler(Generic[T]):
    on_add: Callable[[T], None] | None = None
    on_update: Callable[[T, T], None] | None = None
    on_delete: Callable[[T], None] | None = None
    on_key: Callable[[str], None] | None = None


class Informer(Generic[T]):
    """List+watch one type into a cache; see the module docstring for the sharing rules."""

    def __init__(
        self,
        client: ApiClient,
        model: type[T],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float | None = None,
        transform: Transform | None = None,
    ) -> None:
        self.client = client
        # Applied to each object as it arrives, before decoding and caching.
        self.transform = transform
        self.model = model
        self.rt = client.scheme.for_model(model)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self._cache: dict[str, T] = {}
        self._handlers: list[_Handler[T]] = []
        self._index_funcs: dict[str, IndexFunc[T]] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self._index_values: dict[str, dict[str, list[str]]] = {}
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_resource_version = ""

    # -- registration --------------------------------------------------------------------------

    def add_handler(
        self,
        on_add: Callable[[T], None] | None = None,
        on_update: Callable[[T, T], None] | None = None,
        on_delete: Callable[[T], None] | None = None,
    ) -> None:
        """Object callbacks. ``on_update(old, new)`` also fires on resync with ``old is new``."""
        self._handlers.append(_Handler(on_add, on_update, on_delete))

    def on_event(self, fn: Callable[[str], None]) -> None:
        """Call ``fn(key)`` for every add, update, delete and resync (the usual ``queue.add``)."""
        self._handlers.append(_Handler(on_key=fn))

    def add_index(self, name: str, fn: IndexFunc[T]) -> None:
        """Index the cache by ``fn(obj)`` (several values allowed); usable any time."""
        self._index_funcs[name] = fn
        self._indexes[name] = {}
        self._index_values[name] = {}
        for key, obj in self._cache.items():
            self._index_one(name, key, obj)

    # -- reading -------------------------------------------------------------------------------

    def get(self, key: str) -> T | None:
        """The cached object for ``namespace/name`` (or ``name``); shared: copy before changing."""
        return self._cache.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> T | None:
        return self._cache.get(f"{namespace}/{name}" if namespace and self.rt.namespaced else name)

    def list(self) -> builtins.list[T]:
        return builtins.list(self._cache.values())

    def keys(self) -> builtins.list[str]:
        return builtins.list(self._cache)

    def by_index(self, name: str, value: str) -> builtins.list[T]:
        keys = self._indexes[name].get(value, set())
        return [self._cache[k] for k in sorted(keys) if k in self._cache]

    @property
    def has_synced(self) -> bool:
        """True once the first full list is in the cache."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    # -- running -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Run in a background task (kept here; ``stop()`` cancels it)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.rt.group_resource}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def run(self) -> None:
        """List and watch until cancelled."""
        resync: asyncio.Task[None] | None = None
        if self.resync_period:
            resync = asyncio.create_task(self._resync_loop(self.resync_period))
        try:
            # What the cache already holds (after a stop/start) seeds the relist, so objects
            # deleted meanwhile come out as DELETED instead of lingering in the cache.
            held = {key: obj.to_dict() for key, obj in self._cache.items()}
            async for ev in watch_forever(
                self.client, self.rt, self.namespace,
                label_selector=self.label_selector, field_selector=self.field_selector, known=held,
            ):
                md = ev.object.get("metadata") or {}
                if md.get("resourceVersion"):
                    self.last_resource_version = str(md["resourceVersion"])
                if ev.type == "BOOKMARK":
                    if (md.get("annotations") or {}).get(INITIAL_EVENTS_END) == "true":
                        self._synced.set()
                    continue
                self._apply(ev.type, ev.object)
        finally:
            if resync is not None:
                resync.cancel()

    def _apply(self, kind: str, data: dict[str, Any]) -> None:
        key = object_key(data)
        if kind == "DELETED":
            gone = self._cache.pop(key, None)
            self._unindex(key)
            if gone is None:
                gone = self._decode(data)
            if gone is not None:
                self._dispatch(lambda h: h.on_delete and h.on_delete(gone), key)
            return
        obj = self._decode(data)
        if obj is None:
            return
        old = self._cache.get(key)
        self._cache[key] = obj
        self._unindex(key)
        for name in self._index_funcs:
            self._index_one(name, key, obj)
        if old is None:
            self._dispatch(lambda h: h.on_add and h.on_add(obj), key)
        else:
            self._dispatch(lambda h: h.on_update and h.on_update(old, obj), key)

    def _decode(self, data: dict[str, Any]) -> T | None:
        if self.transform is not None:
            data = self.transform(data)
        data.setdefault("apiVersion", self.rt.api_version)
        data.setdefault("kind", self.rt.kind)
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            log.warning("informer %s: cannot decode %s: %s", self.rt.group_resource, object_key(data), exc)
            return None

    def _dispatch(self, call: Callable[[_Handler[T]], object], key: str) -> None:
        for h in builtins.list(self._handlers):
            try:
                if h.on_key is not None:
                    h.on_key(key)
                else:
                    call(h)
            except Exception:
                log.exception("informer %s: handler failed for %s", self.rt.group_resource, key)

    async def _resync_loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            if not self.has_synced:
                continue
            for key, obj in builtins.list(self._cache.items()):
                self._resync_one(key, obj)

    def _resync_one(self, key: str, obj: T) -> None:
        self._dispatch(lambda h: h.on_update and h.on_update(obj, obj), key)

    # -- indexes -------------------------------------------------------------------------------

    def _index_one(self, name: str, key: str, obj: T) -> None:
        try:
            values = builtins.list(self._index_funcs[name](obj))
        except Exception:
            log.exception("informer %s: index %s failed for %s", self.rt.group_resource, name, key)
            values = []
        self._index_values[name][key] = values
        for v in values:
            self._indexes[name].setdefault(v, set()).add(key)

    def _unindex(self, key: str) -> None:
        for name, per_key in self._index_values.items():
            for v in per_key.pop(key, []):
                bucket = self._indexes[name].get(v)
                if bucket is not None:
                    bucket.discard(key)
                    if not bucket:
                        del self._indexes[name][v]
