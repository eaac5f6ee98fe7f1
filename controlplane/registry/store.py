"""The generic store: every resource's create, read, update, delete and list on etcd.

It is Kubernetes' registry Store in small: the server-owned metadata (uid, creationTimestamp,
generation, deletionTimestamp), the spec/status split, optimistic concurrency on etcd's
mod_revision, graceful deletion and finalizers, namespace lifecycle, and consistent lists with
paging. HTTP handlers translate requests into these calls and never touch etcd themselves.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apimachinery import errors
from apimachinery.jsonutil import deep_copy
from apimachinery.meta import now
from apimachinery.scheme import ResourceType, Scheme
from controlplane.registry import codec, managedfields, strategy
from controlplane.registry.admission import WARN, AdmissionConfig, build_chain
from controlplane.registry.servicealloc import Allocated, ServiceAllocator
from controlplane.registry.watchcache import WatchCache
from controlplane.storage.errors import CompactedError, ConflictError, KeyExistsError, KeyNotFoundError
from controlplane.storage.etcd import KV, EtcdStore

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

# Kubernetes' generateName suffix: 5 characters from an alphabet without vowels or look-alikes.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# How often a write retries from fresh state when another writer won the race and the caller
# gave no resourceVersion of its own (patches, unconditional updates, deletes, status changes).
_MAX_RETRIES = 8

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


@dataclass
class WriteResult:
    obj: Obj
    warnings: list[str] = field(default_factory=list)
    created: bool = False


@dataclass
class ListResult:
    items: list[Obj]
    resource_version: str
    continue_: str | None = None
    remaining: int | None = None


@dataclass
class DeleteOptions:
    propagation_policy: str | None = None
    grace_period_seconds: int | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False


class Store:
    def __init__(
        self, etcd: EtcdStore, cache: WatchCache, scheme: Scheme, admission: AdmissionConfig | None = None,
        services: ServiceAllocator | None = None,
    ) -> None:
        self.etcd = etcd
        self.cache = cache
        self.scheme = scheme
        self.admission = admission or AdmissionConfig()
        self.chain = build_chain(self.admission, scheme, self._lookup, self._list_cached)
        # Cluster IPs and node ports of Services; None leaves them to the client (unit setups).
        self.services = services

    def _allocates(self, rt: ResourceType) -> ServiceAllocator | None:
        return self.services if rt.kind == "Service" and rt.group == "" else None

    # -----------------------------------------------------------------------------------------
    # reads

    async def _read(self, rt: ResourceType, namespace: str | None, name: str) -> tuple[Obj, KV]:
        kv = await self.etcd.get(rt.storage_key(namespace, name))
        if kv is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return codec.decode(kv.value, kv.mod_revision), kv

    async def get(self, rt: ResourceType, namespace: str | None, name: str, *, resource_version: str = "") -> Obj:
        if resource_version == "0":
            # "Any version is fine": serve from the watch cache without an etcd round trip.
            obj = self.cache.cache_for(rt.storage_prefix()).objects.get(rt.storage_key(namespace, name))
            if obj is None:
                raise errors.not_found(rt.plural, rt.group, name)
            return obj
        obj, _ = await self._read(rt, namespace, name)
        return obj

    async def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        predicate: Predicate | None,
        *,
        limit: int = 0,
        continue_: str = "",
        resource_version: str = "",
        resource_version_match: str = "",
    ) -> ListResult:
        prefix = rt.storage_prefix(namespace)
        if continue_:
            rev, start = _decode_continue(continue_, prefix)
            return await self._list_etcd(rt, prefix, predicate, limit, rev, start)
        if resource_version_match == "Exact":
            if not resource_version:
                raise errors.bad_request("resourceVersionMatch=Exact needs a resourceVersion")
            return await self._list_etcd(rt, prefix, predicate, limit, _parse_rv(resource_version), prefix)
        if limit > 0 and resource_version == "":
            return await self._list_etcd(rt, prefix, predicate, limit, 0, prefix)
        # Served from the watch cache: "0" = whatever it has; unset = consistent with etcd now;
        # N = at least as new as N.
        if resource_version == "":
            if not await self.cache.wait_fresh():
                return await self._list_etcd(rt, prefix, predicate, limit, 0, prefix)
        elif resource_version != "0":
            await self._wait_for_revision(_parse_rv(resource_version))
        revision = self.cache.revision
        items = self.cache.cache_for(rt.storage_prefix()).list(prefix, predicate)
        return ListResult(items, str(revision))

    async def _wait_for_revision(self, rev: int) -> None:
        if self.cache.revision >= rev:
            return
        current = await self.etcd.current_revision()
        if rev > current:
            raise errors.timeout(f"Too large resource version: {rev}, current: {current}")
        await self.cache.wait_fresh()

    async def _list_etcd(
        self, rt: ResourceType, prefix: str, predicate: Predicate | None, limit: int, revision: int, start: str
    ) -> ListResult:
        """A list read from etcd at one revision, ``limit`` matching items per page."""
        items: list[Obj] = []
        remaining: int | None = None
        next_key: str | None = None
        page = max(limit, 50) if limit else 0
        try:
            while True:
                res = await self.etcd.list(prefix, revision=revision, limit=page, start_key=start)
                revision = res.revision
                stopped_at: int | None = None
                for i, kv in enumerate(res.entries):
                    obj = codec.decode(kv.value, kv.mod_revision)
                    if predicate is None or predicate(obj):
                        items.append(obj)
                        if limit and len(items) >= limit:
                            stopped_at = i
                            break
                if stopped_at is not None:
                    more_here = stopped_at < len(res.entries) - 1
                    if more_here or res.more:
                        next_key = res.entries[stopped_at].key + "\x00"
                        if predicate is None:
                            remaining = res.count - (stopped_at + 1)
                    break
                if not res.more or not res.entries:
                    break
                start = res.entries[-1].key + "\x00"
        except CompactedError as e:
            raise errors.gone(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter."
            ) from e
        token = _encode_continue(revision, next_key, prefix) if next_key else None
        return ListResult(items, str(revision), token, remaining)

    # -----------------------------------------------------------------------------------------
    # create

    async def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Obj,
        *,
        dry_run: bool = False,
        field_validation: str = WARN,
        manager: managedfields.FieldManager | None = None,
    ) -> WriteResult:
        """Create from ``body``, which the store takes over (callers pass a freshly decoded dict)."""
        obj = body
        _check_type(rt, obj)
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        _check_namespace(rt, md, namespace)
        if rt.namespaced and namespace:
            md["namespace"] = namespace
        generated = not md.get("name") and bool(md.get("generateName"))
        for _ in range(3 if generated else 1):
            if generated:
                md["name"] = str(md["generateName"]) + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
            for server_owned in ("uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
                md.pop(server_owned, None)
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now()
            if strategy.tracks_generation(rt):
                md["generation"] = 1
            else:
                md.pop("generation", None)
            strategy.normalize(rt, obj)
            strategy.prepare_for_create(rt, obj)
            admitted = await self.chain.admit(rt, obj, None, field_validation=field_validation, dry_run=dry_run)
            if manager is not None:
                managedfields.record(rt, None, admitted.obj, manager)
            allocator = self._allocates(rt)
            # After validation, as Kubernetes' BeginCreate: a refused object takes nothing.
            taken = await allocator.for_create(admitted.obj, dry_run=dry_run) if allocator else Allocated()
            if dry_run:
                return WriteResult(admitted.obj, admitted.warnings, created=True)
            name = str(admitted.obj["metadata"]["name"])
            try:
                rev = await self.etcd.create(rt.storage_key(namespace, name), codec.encode(admitted.obj))
            except KeyExistsError:
                if allocator:
                    await allocator.release(taken)
                if generated:
                    continue
                raise errors.already_exists(rt.plural, rt.group, name) from None
            # Any other failure may or may not have stored the object (e.g. an etcd timeout):
            # the allocation stays, and the repair loop frees it if the write did not happen.
            admitted.obj["metadata"]["resourceVersion"] = str(rev)
            return WriteResult(admitted.obj, admitted.warnings, created=True)
        raise errors.ApiError.make(
            409, "AlreadyExists", f"could not find a free name for generateName {md.get('generateName')!r}"
        )

    def _list_cached(self, rt: ResourceType, namespace: str) -> builtins.list[Obj]:
        """A namespace's objects of one kind for admission plugins, from the watch cache."""
        return self.cache.cache_for(rt.storage_prefix()).list(rt.storage_prefix(namespace), None)

    async def _lookup(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """An object for admission plugins: the watch cache's copy, else etcd's, else None."""
        key = rt.storage_key(namespace, name)
        obj = self.cache.cache_for(rt.storage_prefix()).objects.get(key)
        if obj is None:
            kv = await self.etcd.get(key)
            if kv is None:
                return None
            obj = codec.decode(kv.value, kv.mod_revision)
        return obj

    # -----------------------------------------------------------------------------------------
    # update (PUT, status, and the common path of patch/scale/binding)

    async def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str = WARN,
        manager: managedfields.FieldManager | None = None,
    ) -> WriteResult:
        # The store takes the freshly decoded body over, as create does; mutate hands out copies.
        new = body
        _check_type(rt, new)
        md = new.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        _check_namespace(rt, md, namespace)
        if md.get("name") not in (None, "", name):
            raise errors.bad_request(f"the name of the object ({md.get('name')}) does not match the name on the URL ({name})")
        md["name"] = name
        if rt.namespaced and namespace:
            md["namespace"] = namespace
        wanted_rv = str(md.get("resourceVersion") or "")

        def mutate(old: Obj) -> Obj:
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, name)
            return deep_copy(new)

        return await self.guaranteed_update(
            rt, namespace, name, mutate, subresource=subresource, dry_run=dry_run,
            field_validation=field_validation, manager=manager,
        )

    async def guaranteed_update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        mutate: Callable[[Obj], Obj],
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str = WARN,
        manager: managedfields.FieldManager | None = None,
        copy_current: bool = True,
    ) -> WriteResult:
        """Read, ``mutate(current) -> desired``, check, compare-and-swap; retry lost races.

        ``mutate`` gets a private copy of the current object and raises to refuse (e.g. a
        resourceVersion precondition that no longer holds, which then surfaces as 409). With
        ``copy_current=False`` it gets the stored object itself and must build its result
        without changing it (sharing the parts it leaves alone): for hot paths that change
        little of a big object.
        """
        key = rt.storage_key(namespace, name)
        # Start from the watch cache's copy: usually current, and when it is not, the failed
        # compare-and-swap hands back the current value, so a write costs one etcd round trip.
        state = self._cached_state(rt, key)
        from_cache = state is not None
        for _attempt in range(_MAX_RETRIES):
            if state is None:
                old, kv = await self._read(rt, namespace, name)
                from_cache = False
            else:
                old, kv = state
            try:
                desired = mutate(deep_copy(old) if copy_current else old)
                result = await self._prepare_update(rt, desired, old, subresource, field_validation, manager,
                                                    dry_run)
            except errors.ApiError:
                if from_cache:
                    # Judged against a possibly stale copy: decide again on etcd's.
                    state = None
                    continue
                raise
            if result.obj == old:
                if from_cache:
                    state = None
                    continue
                # Nothing changed: Kubernetes answers with the stored object and writes nothing.
                return WriteResult(old, result.warnings)
            allocator = self._allocates(rt)
            taken, freed = Allocated(), Allocated()
            removing = _should_remove(rt, result.obj)
            if allocator and not removing:
                try:
                    taken, freed = await allocator.for_update(result.obj, old, dry_run=dry_run)
                except errors.ApiError:
                    if from_cache:
                        state = None
                        continue
                    raise
            if dry_run:
                return result
            try:
                if removing:
                    rev = await self.etcd.delete(kv.key, kv.mod_revision)
                else:
                    rev = await self.etcd.update(kv.key, codec.encode(result.obj), kv.mod_revision)
            except ConflictError as e:
                if allocator:
                    await allocator.release(taken)
                state = (codec.decode(e.current.value, e.current.mod_revision), e.current) if e.current else None
                from_cache = False
                if e.current is None:
                    raise errors.not_found(rt.plural, rt.group, name) from None
                continue
            except KeyNotFoundError:
                if allocator:
                    await allocator.release(taken)
                raise errors.not_found(rt.plural, rt.group, name) from None
            if allocator:
                if removing:
                    await allocator.release_held(old)
                else:
                    await allocator.release(freed)
            result.obj["metadata"]["resourceVersion"] = str(rev)
            return result
        raise errors.conflict(rt.plural, rt.group, name, "too many concurrent writers; please retry")

    def _cached_state(self, rt: ResourceType, key: str) -> tuple[Obj, KV] | None:
        obj = self.cache.cache_for(rt.storage_prefix()).objects.get(key)
        if obj is None:
            return None
        rv = int(obj["metadata"]["resourceVersion"])
        # Only mod_revision matters for the compare-and-swap; the rest of KV is informational.
        return obj, KV(key, b"", rv, 0, 0)

    async def _prepare_update(
        self, rt: ResourceType, new: Obj, old: Obj, subresource: str | None, field_validation: str,
        manager: managedfields.FieldManager | None = None, dry_run: bool = False,
    ) -> WriteResult:
        md = new.setdefault("metadata", {})
        old_md = old["metadata"]
        if subresource == "binding":
            # As in Kubernetes, a binding is a storage-level write of the stored pod: the handler
            # built ``new`` from it (same metadata, managedFields included) with spec.nodeName and
            # the PodScheduled condition set, and the pod was admitted when it was created.
            # Re-admitting the whole pod was a third of the API server's work per scheduled pod.
            if strategy.tracks_generation(rt):
                md["generation"] = int(old_md.get("generation") or 0) + 1  # spec.nodeName changed
            md["resourceVersion"] = old_md["resourceVersion"]
            return WriteResult(new, [])
        strategy.normalize(rt, new)
        if subresource == "status":
            new = strategy.prepare_for_status_update(rt, new, old)
        elif subresource == "finalize":
            new = strategy.prepare_for_finalize(new, old)
        elif subresource == "approval":
            new = strategy.prepare_for_approval(new, old)
        else:
            strategy.prepare_for_update(rt, new, old)
            md = new["metadata"]
            # Server-owned metadata is never taken from the request.
            for owned in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
                if owned in old_md:
                    md[owned] = old_md[owned]
                else:
                    md.pop(owned, None)
            if old_md.get("deletionTimestamp") and len(md.get("finalizers") or []) > len(old_md.get("finalizers") or []):
                new_f = set(md.get("finalizers") or []) - set(old_md.get("finalizers") or [])
                raise errors.invalid(
                    rt.kind, rt.group, str(old_md.get("name")),
                    [errors.FieldError.forbidden("metadata.finalizers", f"no new finalizers can be added if the object is being deleted, found new finalizers {sorted(new_f)}")],
                )
            if strategy.tracks_generation(rt) and strategy.spec_of(new) != strategy.spec_of(old):
                md["generation"] = int(old_md.get("generation") or 0) + 1
        new["metadata"]["resourceVersion"] = old_md["resourceVersion"]
        admitted = await self.chain.admit(rt, new, old, subresource=subresource, field_validation=field_validation,
                                          dry_run=dry_run)
        admitted.obj["metadata"]["resourceVersion"] = old_md["resourceVersion"]
        if manager is not None:
            managedfields.record(rt, old, admitted.obj, manager)
        elif "managedFields" in old_md:
            # Writes the server makes on its own behalf leave field ownership as it was.
            admitted.obj["metadata"]["managedFields"] = deep_copy(old_md["managedFields"])
        else:
            admitted.obj["metadata"].pop("managedFields", None)
        return WriteResult(admitted.obj, admitted.warnings)

    # -----------------------------------------------------------------------------------------
    # delete

    async def delete(
        self, rt: ResourceType, namespace: str | None, name: str, opts: DeleteOptions
    ) -> tuple[Obj, bool]:
        """Delete or start deleting; returns (object, removed_now)."""
        for _attempt in range(_MAX_RETRIES):
            old, kv = await self._read(rt, namespace, name)
            md = old["metadata"]
            if opts.precondition_uid and opts.precondition_uid != md.get("uid"):
                raise errors.conflict(
                    rt.plural, rt.group, name,
                    f"Precondition failed: UID in precondition: {opts.precondition_uid}, UID in object meta: {md.get('uid')}",
                )
            if opts.precondition_rv and opts.precondition_rv != md.get("resourceVersion"):
                raise errors.conflict(
                    rt.plural, rt.group, name,
                    f"Precondition failed: ResourceVersion in precondition: {opts.precondition_rv}, "
                    f"ResourceVersion in object meta: {md.get('resourceVersion')}",
                )
            new = deep_copy(old)
            graceful = _begin_deletion(rt, new, opts)
            if not graceful:
                if opts.dry_run:
                    return old, True
                try:
                    rev = await self.etcd.delete(kv.key, kv.mod_revision)
                except (ConflictError, KeyNotFoundError):
                    continue
                allocator = self._allocates(rt)
                if allocator:
                    await allocator.release_held(old)
                old["metadata"] = {**md, "resourceVersion": str(rev)}
                return old, True
            if new == old:
                return old, False
            if opts.dry_run:
                return new, False
            try:
                rev = await self.etcd.update(kv.key, codec.encode(new), kv.mod_revision)
            except (ConflictError, KeyNotFoundError):
                continue
            new["metadata"]["resourceVersion"] = str(rev)
            return new, False
        raise errors.conflict(rt.plural, rt.group, name, "too many concurrent writers; please retry")


# ---------------------------------------------------------------------------------------------
# helpers


def _check_type(rt: ResourceType, obj: Obj) -> None:
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if api_version and api_version != rt.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})"
        )
    if kind and kind != rt.kind:
        raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
    obj["apiVersion"] = rt.api_version
    obj["kind"] = rt.kind


def _check_namespace(rt: ResourceType, md: Obj, namespace: str | None) -> None:
    given = md.get("namespace")
    if rt.namespaced:
        if given and namespace and given != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
    elif given:
        md.pop("namespace")


def _begin_deletion(rt: ResourceType, obj: Obj, opts: DeleteOptions) -> bool:
    """Apply a delete request to ``obj``; True when the object must stay (graceful/finalizers)."""
    md = obj["metadata"]
    finalizers: list[str] = list(md.get("finalizers") or [])
    policy = opts.propagation_policy
    if policy == "Foreground" and FOREGROUND not in finalizers:
        finalizers.append(FOREGROUND)
    elif policy == "Orphan" and ORPHAN not in finalizers:
        finalizers.append(ORPHAN)
    if policy in ("Foreground", "Orphan") and finalizers != list(md.get("finalizers") or []):
        md["finalizers"] = finalizers

    grace = _grace_period(rt, obj, opts)
    waits_for_namespace_content = rt.kind == "Namespace" and bool((obj.get("spec") or {}).get("finalizers"))
    if not finalizers and not grace and not waits_for_namespace_content:
        return False
    current = md.get("deletionGracePeriodSeconds")
    if md.get("deletionTimestamp") and (current is None or (grace or 0) >= current):
        # Already being deleted; a second delete may only shorten the grace period.
        return True
    try:
        when = datetime.now(UTC) + timedelta(seconds=grace or 0)
    except OverflowError:  # a grace period ending after the year 9999 never ends anyway
        when = datetime.max.replace(tzinfo=UTC)
    md["deletionTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    md["deletionGracePeriodSeconds"] = grace or 0
    if strategy.tracks_generation(rt):
        md["generation"] = int(md.get("generation") or 0) + 1
    if rt.kind == "Namespace":
        obj.setdefault("status", {})["phase"] = "Terminating"
    return True


def _grace_period(rt: ResourceType, obj: Obj, opts: DeleteOptions) -> int:
    """Only pods on a node get a grace period: their agent stops them, then deletes with 0."""
    if rt.kind != "Pod":
        return 0
    spec = obj.get("spec") or {}
    if not spec.get("nodeName") or (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    if opts.grace_period_seconds is not None:
        return max(0, opts.grace_period_seconds)
    return int(spec.get("terminationGracePeriodSeconds") or 0)


def _should_remove(rt: ResourceType, obj: Obj) -> bool:
    """An update that clears the last finalizer of a deleting object removes it (as Kubernetes)."""
    md = obj["metadata"]
    if not md.get("deletionTimestamp") or md.get("finalizers"):
        return False
    if rt.kind == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return False
    return not md.get("deletionGracePeriodSeconds")


def _parse_rv(value: str) -> int:
    try:
        rv = int(value)
    except ValueError:
        raise errors.bad_request(f"invalid resource version: {value!r}") from None
    if rv < 0:
        raise errors.bad_request(f"invalid resource version: {value!r}")
    return rv


def _encode_continue(revision: int, next_key: str, prefix: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": revision, "start": next_key[len(prefix):]}
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode()


def _decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        rev = int(data["rv"])
        start = str(data["start"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion") from None
    if data.get("v") != "meta.k8s.io/v1" or rev <= 0 or ".." in start.split("/"):
        raise errors.bad_request("continue key is not valid: unsupported continue token")
    return rev, prefix + start
