"""The Namespace controller: empty a terminating namespace, then let it go.

A DELETE of a Namespace only marks it (``deletionTimestamp``, ``status.phase: Terminating``)
because its ``spec.finalizers`` holds ``kubernetes``. This controller then deletes every
namespaced object in it, kind by kind from the scheme, with a DELETE of each collection
(Background propagation, as Kubernetes' namespace deleter). Objects that do not go at once
(pods finishing their grace period, objects with finalizers) are waited for: the namespace's
conditions say what is left (``NamespaceContentRemaining``, ``NamespaceFinalizersRemaining``,
``NamespaceDeletionContentFailure``), and the namespace is looked at again shortly. Once
nothing is left, ``kubernetes`` is removed from ``spec.finalizers`` through
``PUT namespaces/NAME/finalize``, and the API server removes the namespace.

The content is listed from the API server rather than from informers: deciding that a
namespace is empty must not rest on a cache that may be behind. The informers only wake the
controller up when content of a terminating namespace changes or goes.
"""

from __future__ import annotations

from typing import Any

from apimachinery.api.core_v1 import Namespace, NamespaceCondition
from apimachinery.controller.runtime import DONE, Controller, Result, requeue_after
from apimachinery.errors import ApiError
from apimachinery.meta import KubeObject, now
from apimachinery.scheme import ResourceType
from controlplane.controllers.context import ControllerContext

FINALIZER = "kubernetes"
# How soon to look again while content is still going away: quickly at first (most content
# goes at once), then less and less often (pods finishing a long grace period, or waiting
# for someone else's finalizer, should not cost a dozen requests a second per namespace).
RECHECK_FIRST = 0.25
RECHECK_MAX = 15.0

UNWATCHED_KINDS = frozenset({"Event"})

CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
CONDITION_TYPES = (CONTENT_FAILURE, CONTENT_REMAINING, FINALIZERS_REMAINING)


class NamespaceReconciler:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.namespaces = ctx.informers.for_model(Namespace)
        self.ns_rt = ctx.client.resource(Namespace)
        # Every namespaced kind that can be listed and deleted.
        self.kinds: list[ResourceType] = [
            rt for rt in ctx.client.scheme if rt.namespaced and {"list", "delete"} <= set(rt.verbs)
        ]
        # namespace -> the delay of its next look while it waits for content to go
        self._recheck: dict[str, float] = {}

    async def reconcile(self, key: str) -> Result:
        ns = self.namespaces.get(key)
        if ns is None or not ns.metadata.deletion_timestamp or FINALIZER not in (ns.spec.finalizers or []):
            self._recheck.pop(key, None)
            return DONE
        failures: list[str] = []
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for rt in self.kinds:
            try:
                left = await self._delete_all(rt, key)
            except ApiError as e:
                failures.append(f"{rt.group_resource}: {e}")
                continue
            if left:
                remaining[rt.group_resource] = len(left)
                for item in left:
                    for f in (item.get("metadata") or {}).get("finalizers") or []:
                        finalizers[f] = finalizers.get(f, 0) + 1
        if failures or remaining:
            await self._set_conditions(ns, failures, remaining, finalizers)
            delay = self._recheck.get(key, RECHECK_FIRST)
            self._recheck[key] = min(delay * 2, RECHECK_MAX)
            return requeue_after(delay)
        body = ns.to_dict()
        body["spec"] = {**body.get("spec", {}), "finalizers": [f for f in ns.spec.finalizers or [] if f != FINALIZER]}
        await self.client.replace(self.ns_rt, body, subresource="finalize")
        return DONE

    async def _delete_all(self, rt: ResourceType, namespace: str) -> list[dict[str, Any]]:
        """Delete every object of ``rt`` in ``namespace``; the ones still there afterwards."""
        items, _ = await self.client.list_all(rt, namespace)
        if not items:
            return []
        if "deletecollection" in rt.verbs:
            await self.client.request(
                "DELETE", rt.path(namespace),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        else:
            for item in items:
                try:
                    await self.client.delete(rt, item["metadata"]["name"], namespace, propagation_policy="Background")
                except ApiError as e:
                    if e.code != 404:
                        raise
        left, _ = await self.client.list_all(rt, namespace)
        return left

    async def _set_conditions(
        self, ns: Namespace, failures: list[str], remaining: dict[str, int], finalizers: dict[str, int]
    ) -> None:
        """Say what the namespace waits for (Kubernetes' condition types and wording)."""
        wanted: dict[str, tuple[str, str, str]] = {
            CONTENT_FAILURE: ("True", "ContentDeletionFailed", "Failed to delete all resource types, "
                              f"{len(failures)} remaining: {', '.join(failures)}") if failures
            else ("False", "ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
            CONTENT_REMAINING: ("True", "SomeResourcesRemain", "Some resources are remaining: " + ", ".join(
                f"{gr} has {n} resource instances" for gr, n in sorted(remaining.items()))) if remaining
            else ("False", "ContentRemoved", "All content successfully removed"),
            FINALIZERS_REMAINING: ("True", "SomeFinalizersRemain", "Some content in the namespace has finalizers "
                                   "remaining: " + ", ".join(f"{f} in {n} resource instances"
                                                             for f, n in sorted(finalizers.items()))) if finalizers
            else ("False", "ContentHasNoFinalizers", "All content-preserving finalizers finished"),
        }
        new = ns.copy_deep()
        conditions = [c for c in new.status.conditions or [] if c.type not in CONDITION_TYPES]
        old = {c.type: c for c in ns.status.conditions or []}
        for ctype in CONDITION_TYPES:
            status, reason, message = wanted[ctype]
            prev = old.get(ctype)
            stamp = prev.last_transition_time if prev is not None and prev.status == status else now()
            conditions.append(NamespaceCondition(
                type=ctype, status=status, reason=reason, message=message, last_transition_time=stamp,
            ))
        new.status.conditions = conditions
        if new.to_dict() == ns.to_dict():
            return
        try:
            await self.client.typed(Namespace).update_status(new)
        except ApiError as e:
            # Best effort: the namespace may be gone, or changed under us (we look again soon).
            if e.code not in (404, 409):
                raise


def new_controller(ctx: ControllerContext) -> Controller:
    r = NamespaceReconciler(ctx)
    c = Controller("namespace", r, workers=ctx.config.workers)
    c.watch(r.namespaces)

    def terminating_namespace(obj: KubeObject) -> list[str]:
        # Content changing (going) in a terminating namespace: time to look again.
        ns = r.namespaces.get(obj.metadata.namespace or "")
        return [ns.metadata.name or ""] if ns is not None and ns.metadata.deletion_timestamp else []

    # The informers are shared (the garbage collector watches the same kinds); Events are
    # deleted like the rest but not watched: they are many, and nothing waits on them.
    for rt in r.kinds:
        if rt.kind not in UNWATCHED_KINDS:
            c.watch(ctx.informers.for_model(rt.model), map_keys=terminating_namespace)
    return c
