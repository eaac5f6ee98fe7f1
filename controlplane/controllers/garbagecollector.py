"""The garbage collector: cascading deletion through ownerReferences.

The graph is the informer caches of every kind in the scheme (Events aside): an object's owners
are its ``ownerReferences``, its dependents are found through each cache's owner-uid index. The
work key is one object, ``<group_resource>/<namespace>/<name>``; any event of an object enqueues
the object itself, its owners and its dependents, and its reconcile does the object's share:

* **as a dependent** - each owner is *solid* (exists), *waiting* (exists, being deleted in the
  foreground) or *dangling* (gone, or a different uid now has the name). With a solid owner
  left, references to dangling and waiting owners are removed; with none left, the object is
  deleted: in the foreground when a waiting owner is behind it and it has dependents of its
  own (so foreground deletion recurses), else with the policy its own finalizers ask for,
  Background by default. An owner the cache does not show is looked up on the API server
  before anything is deleted: the cache may simply be behind.
* **as an owner being deleted** - with the ``orphan`` finalizer, the references to it are
  removed from all its dependents, then the finalizer; with ``foregroundDeletion``, its
  dependents are deleted (through their own reconcile, which sees it waiting) and the finalizer
  goes once no dependent with ``blockOwnerDeletion`` is left. Other finalizers are never touched;
  removing the last finalizer is what lets the API server remove the object.

The API server adds ``orphan``/``foregroundDeletion`` on DELETE with propagationPolicy
Orphan/Foreground.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from apimachinery.client.informer import OWNER_UID_INDEX, Informer
from apimachinery.controller.runtime import DONE, Controller, Result, requeue_after
from apimachinery.errors import ApiError
from apimachinery.meta import KubeObject, OwnerReference
from apimachinery.scheme import ResourceType
from controlplane.controllers.context import ControllerContext

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
# Events are never owners and nobody makes them dependents; watching them would only cost.
EXCLUDED_KINDS = frozenset({"Event"})
# While waiting for blocking dependents: events wake us, this is only a safety net.
FOREGROUND_RECHECK = 5.0

SOLID, WAITING, DANGLING = "solid", "waiting", "dangling"
# Owner uids confirmed gone by the API server: a uid never comes back, so when a big owner
# goes, its many dependents need one lookup, not one each (Kubernetes' absentOwnerCache).
ABSENT_OWNER_CACHE_SIZE = 4096


def gc_key(rt: ResourceType, obj: KubeObject) -> str:
    return f"{rt.group_resource}/{obj.metadata.namespace or ''}/{obj.metadata.name}"


class GarbageCollector:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.scheme = ctx.client.scheme
        # group_resource -> (resource type, informer)
        self.kinds: dict[str, tuple[ResourceType, Informer[Any]]] = {}
        for rt in self.scheme:
            if rt.kind in EXCLUDED_KINDS or not {"list", "watch", "delete"} <= set(rt.verbs):
                continue
            self.kinds[rt.group_resource] = (rt, ctx.informers.for_model(rt.model))
        self.controller: Controller | None = None
        self._absent: OrderedDict[str, None] = OrderedDict()

    # -- the graph ---------------------------------------------------------------------------

    def owner_type(self, ref: OwnerReference) -> ResourceType | None:
        rt = self.scheme.by_kind(ref.api_version, ref.kind)
        if rt is None:
            # Another version of a known group/kind still names the same object.
            group = ref.api_version.rpartition("/")[0] if "/" in ref.api_version else ""
            rt = next((t for t in self.scheme if t.group == group and t.kind == ref.kind), None)
        return rt if rt is not None and rt.group_resource in self.kinds else None

    def owner_key(self, dependent: KubeObject, ref: OwnerReference) -> str | None:
        rt = self.owner_type(ref)
        if rt is None:
            return None
        ns = dependent.metadata.namespace if rt.namespaced else None
        return f"{rt.group_resource}/{ns or ''}/{ref.name}"

    def dependents(self, uid: str) -> list[tuple[ResourceType, KubeObject]]:
        out: list[tuple[ResourceType, KubeObject]] = []
        for rt, inf in self.kinds.values():
            out.extend((rt, obj) for obj in inf.by_index(OWNER_UID_INDEX, uid))
        return out

    def related_keys(self, rt: ResourceType, obj: KubeObject) -> list[str]:
        """What an event of ``obj`` concerns: itself, its owners, its dependents."""
        keys = [gc_key(rt, obj)]
        for ref in obj.metadata.owner_references or []:
            k = self.owner_key(obj, ref)
            if k:
                keys.append(k)
        if obj.metadata.uid:
            keys.extend(gc_key(drt, d) for drt, d in self.dependents(obj.metadata.uid))
        return keys

    async def owner_state(self, dependent: KubeObject, ref: OwnerReference) -> str:
        rt = self.owner_type(ref)
        if rt is None:
            # A kind we do not serve: we cannot tell, so we never delete because of it.
            return SOLID
        ns = dependent.metadata.namespace if rt.namespaced else None
        if rt.namespaced and not ns:
            return SOLID
        if ref.uid in self._absent:
            return DANGLING
        _, inf = self.kinds[rt.group_resource]
        owner: KubeObject | None = inf.get(f"{ns}/{ref.name}" if ns else ref.name)
        if owner is None or owner.metadata.uid != ref.uid:
            # The cache may be behind (an owner created a moment ago): ask the server.
            try:
                data = await self.client.get(rt, ref.name, ns)
            except ApiError as e:
                if e.code != 404:
                    raise
                data = {}
            if (data.get("metadata") or {}).get("uid") != ref.uid:
                self._remember_absent(ref.uid)
                return DANGLING
            owner = rt.model.model_validate(data)
        if owner.metadata.deletion_timestamp and FOREGROUND in (owner.metadata.finalizers or []):
            return WAITING
        return SOLID

    def _remember_absent(self, uid: str) -> None:
        self._absent[uid] = None
        if len(self._absent) > ABSENT_OWNER_CACHE_SIZE:
            self._absent.popitem(last=False)

    # -- reconcile ---------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result:
        group_resource, ns, name = key.split("/", 2)
        entry = self.kinds.get(group_resource)
        if entry is None:
            return DONE
        rt, inf = entry
        obj: KubeObject | None = inf.get(f"{ns}/{name}" if ns else name)
        if obj is None:
            return DONE
        if obj.metadata.deletion_timestamp:
            finalizers = obj.metadata.finalizers or []
            if ORPHAN in finalizers:
                await self._orphan_dependents(obj)
                await self._remove_finalizer(rt, obj, ORPHAN)
                return DONE
            if FOREGROUND in finalizers:
                return await self._foreground(rt, obj)
            # Being deleted some other way (grace period, other finalizers): nothing for us.
            return DONE
        if obj.metadata.owner_references:
            await self._check_owners(rt, obj)
        return DONE

    async def _check_owners(self, rt: ResourceType, obj: KubeObject) -> None:
        states: dict[str, list[OwnerReference]] = {SOLID: [], WAITING: [], DANGLING: []}
        for ref in obj.metadata.owner_references or []:
            states[await self.owner_state(obj, ref)].append(ref)
        if not states[DANGLING] and not states[WAITING]:
            return
        if states[SOLID]:
            # Someone still owns it: only forget the owners that are gone or going.
            drop = [{"$patch": "delete", "uid": r.uid} for r in states[DANGLING] + states[WAITING]]
            await self._patch(rt, obj, {"metadata": {"ownerReferences": drop}})
            return
        finalizers = obj.metadata.finalizers or []
        if states[WAITING] and obj.metadata.uid and self.dependents(obj.metadata.uid):
            policy = "Foreground"
        elif ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        try:
            await self.client.delete(
                rt, obj.metadata.name or "", obj.metadata.namespace, propagation_policy=policy,
                preconditions={"uid": obj.metadata.uid or ""},
            )
        except ApiError as e:
            # 404: gone already; 409: a new object took the name, its owners are its own.
            if e.code not in (404, 409):
                raise

    async def _foreground(self, rt: ResourceType, obj: KubeObject) -> Result:
        uid = obj.metadata.uid or ""
        blocking = 0
        for drt, dep in self.dependents(uid):
            ref = next((r for r in dep.metadata.owner_references or [] if r.uid == uid), None)
            if ref is not None and ref.block_owner_deletion:
                blocking += 1
            if self.controller is not None:
                self.controller.enqueue(gc_key(drt, dep))
        if blocking:
            return requeue_after(FOREGROUND_RECHECK)
        await self._remove_finalizer(rt, obj, FOREGROUND)
        return DONE

    async def _orphan_dependents(self, owner: KubeObject) -> None:
        uid = owner.metadata.uid or ""
        for drt, dep in self.dependents(uid):
            await self._patch(drt, dep, {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}]}})

    async def _remove_finalizer(self, rt: ResourceType, obj: KubeObject, finalizer: str) -> None:
        await self._patch(rt, obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": [finalizer]}})

    async def _patch(self, rt: ResourceType, obj: KubeObject, patch: dict[str, Any]) -> None:
        """A strategic merge patch: it names only what we change, so it never races other
        writers of the object (no resourceVersion needed)."""
        try:
            await self.client.patch(
                rt, obj.metadata.name or "", patch, patch_type="strategic", namespace=obj.metadata.namespace,
            )
        except ApiError as e:
            if e.code != 404:
                raise


def new_controller(ctx: ControllerContext) -> Controller:
    gc = GarbageCollector(ctx)
    c = Controller("garbagecollector", gc, workers=ctx.config.workers)
    gc.controller = c
    for rt, inf in gc.kinds.values():
        c.watch(inf, map_keys=_mapper(gc, rt))
    return c


def _mapper(gc: GarbageCollector, rt: ResourceType) -> Callable[[KubeObject], list[str]]:
    return lambda obj: gc.related_keys(rt, obj)
