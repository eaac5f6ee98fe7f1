"""The ReplicaSet controller: keep ``spec.replicas`` pods from ``spec.template`` alive.

One reconcile (Kubernetes' syncReplicaSet, step by step):

1. Claim pods: owned pods whose labels stopped matching the selector are released (their
   ownerReference removed); orphans that match are adopted (an ownerReference added).
2. If the controller's :class:`Expectations` are met (its cache has caught up with its own
   earlier creates and deletes), create or delete the difference. Creates go in doubling batches
   (1, 2, 4, ...) so a template the API refuses costs one failed call, not hundreds; deletes pick
   the pods that matter least first (:func:`deletion_order`).
3. Write the status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
   observedGeneration, the ReplicaFailure condition) when it changed, and ask to look again
   when a Ready pod will pass ``minReadySeconds``.

Pods being deleted (``deletionTimestamp`` set) and finished pods (Succeeded/Failed) do not count:
a replacement is created as soon as a pod starts terminating, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apimachinery.api.apps_v1 import ReplicaSet, ReplicaSetCondition, ReplicaSetStatus
from apimachinery.api.core_v1 import Pod
from apimachinery.client.informer import NAMESPACE_INDEX, OWNER_UID_INDEX, Informer
from apimachinery.controller.expectations import Expectations
from apimachinery.controller.owners import controller_ref
from apimachinery.controller.runtime import DONE, Controller, Result, requeue_after
from apimachinery.errors import ApiError
from apimachinery.meta import KubeObject, now, parse_time
from apimachinery.selectors.labels import LabelSelector, selector_from_model
from controlplane.controllers.context import ControllerContext

log = logging.getLogger(__name__)

# At most this many creates or deletes per reconcile (Kubernetes' BurstReplicas).
BURST_REPLICAS = 500
# The first create batch; each successful batch doubles the next (Kubernetes' SlowStartInitialBatchSize).
SLOW_START_INITIAL_BATCH = 1
# Lower deletion cost = deleted first (the annotation Kubernetes' PodDeletionCost feature reads).
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"

REPLICA_FAILURE = "ReplicaFailure"

_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


# ---------------------------------------------------------------------------------------------
# Pod facts shared with the Deployment controller


def is_pod_active(pod: Pod) -> bool:
    """Counts toward replicas: not finished and not being deleted (Kubernetes' IsPodActive)."""
    return pod.status.phase not in ("Succeeded", "Failed") and pod.metadata.deletion_timestamp is None


def _ready_condition(pod: Pod) -> Any:
    for cond in pod.status.conditions or []:
        if cond.type == "Ready":
            return cond
    return None


def is_pod_ready(pod: Pod) -> bool:
    cond = _ready_condition(pod)
    return cond is not None and cond.status == "True"


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parse_time(value).timestamp()
    except ValueError:
        return None


def ready_since(pod: Pod) -> float | None:
    """When the pod last became Ready (epoch seconds), or None when it is not Ready."""
    cond = _ready_condition(pod)
    if cond is None or cond.status != "True":
        return None
    return _timestamp(cond.last_transition_time)


def seconds_until_available(pod: Pod, min_ready_seconds: int, at: float) -> float | None:
    """0 when the pod is available at ``at``, the wait when it is Ready but not yet for long
    enough, None when it is not Ready at all (Kubernetes' IsPodAvailable)."""
    if not is_pod_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = ready_since(pod)
    if since is None:
        return 0.0
    return max(0.0, since + min_ready_seconds - at)


def is_pod_available(pod: Pod, min_ready_seconds: int, at: float) -> bool:
    return seconds_until_available(pod, min_ready_seconds, at) == 0.0


# ---------------------------------------------------------------------------------------------
# Which pods to delete first


def deletion_order(pods: list[Pod], related: list[Pod] | None = None) -> list[Pod]:
    """``pods`` sorted so the first ones are the best to delete (Kubernetes' ActivePodsWithRanks):
    unscheduled before scheduled, Pending before Unknown before Running, not-ready before ready,
    lower pod-deletion-cost first, pods sharing a node with more related pods first, then the
    most recently Ready, the most restarted, and the newest.
    """
    on_node: dict[str, int] = {}
    for p in related if related is not None else pods:
        if p.spec.node_name:
            on_node[p.spec.node_name] = on_node.get(p.spec.node_name, 0) + 1

    def key(p: Pod) -> tuple[Any, ...]:
        ready = ready_since(p) if is_pod_ready(p) else None
        try:
            cost = int((p.metadata.annotations or {}).get(POD_DELETION_COST, "0"))
        except ValueError:
            cost = 0
        restarts = max((c.restart_count for c in p.status.container_statuses or []), default=0)
        created = _timestamp(p.metadata.creation_timestamp)
        return (
            1 if p.spec.node_name else 0,
            _PHASE_ORDER.get(p.status.phase or "", 0),
            1 if is_pod_ready(p) else 0,
            cost,
            -on_node.get(p.spec.node_name or "", 0) if p.spec.node_name else 0,
            -(ready or 0.0),
            -restarts,
            -(created if created is not None else math.inf),
        )

    return sorted(pods, key=key)


# ---------------------------------------------------------------------------------------------
# Ownership


# An index of the shared pod informer: namespace -> pods without a controller (adoption candidates).
ORPHANS_INDEX = "orphans-by-namespace"


def index_orphans(obj: KubeObject) -> list[str]:
    if controller_ref(obj) is not None or not obj.metadata.namespace:
        return []
    return [obj.metadata.namespace]


def owner_reference(owner: KubeObject) -> dict[str, Any]:
    """The controller ownerReference a dependent of ``owner`` carries."""
    return {
        "apiVersion": owner.api_version, "kind": owner.kind, "name": owner.metadata.name,
        "uid": owner.metadata.uid, "controller": True, "blockOwnerDeletion": True,
    }


def adopt_patch(owner: KubeObject, dependent: KubeObject) -> dict[str, Any]:
    """Strategic merge patch adding the owner; the dependent's uid makes it a precondition."""
    return {"metadata": {"ownerReferences": [owner_reference(owner)], "uid": dependent.metadata.uid}}


def release_patch(owner_uid: str, dependent: KubeObject) -> dict[str, Any]:
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
                         "uid": dependent.metadata.uid}}


def is_controlled_by(obj: KubeObject, owner_uid: str | None) -> bool:
    ref = controller_ref(obj)
    return ref is not None and bool(owner_uid) and ref.uid == owner_uid


def _ignorable(e: ApiError) -> bool:
    # The dependent is gone (404) or changed so that the patch no longer applies (409/422).
    return e.code in (404, 409, 422)


# ---------------------------------------------------------------------------------------------
# Batches


async def slow_start_batch(count: int, initial: int, fn: Callable[[], Awaitable[None]]) -> tuple[int, Exception | None]:
    """Call ``fn`` ``count`` times in concurrent batches of 1, 2, 4, ...; stop after a batch with
    an error. Returns the number of successful calls and the first error."""
    done = 0
    batch = min(count, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for r in errors:
            if isinstance(r, asyncio.CancelledError):
                raise r
        done += batch - len(errors)
        if errors:
            first = errors[0]
            return done, first if isinstance(first, Exception) else RuntimeError(str(first))
        remaining = count - done
        batch = min(remaining, 2 * batch)
    return done, None


# ---------------------------------------------------------------------------------------------
# The reconciler


def _rs_key(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


class ReplicaSetReconciler:
    """Reconciles one ReplicaSet key; see the module docstring."""

    def __init__(self, ctx: ControllerContext, *, pods: Informer[Pod] | None = None,
                 replicasets: Informer[ReplicaSet] | None = None,
                 expectations: Expectations | None = None) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.recorder = ctx.recorder
        self.replicasets = replicasets if replicasets is not None else ctx.informers.for_model(ReplicaSet)
        self.pods = pods if pods is not None else ctx.informers.for_model(Pod)
        self.expectations = expectations if expectations is not None else Expectations()
        self.pod_rt = self.client.resource(Pod)
        self.rs_rt = self.client.resource(ReplicaSet)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)
        self.pods.add_index(ORPHANS_INDEX, index_orphans)

    # -- informer bookkeeping (only expectations; the queue is fed by Controller.watch) ----------

    @staticmethod
    def _owner_key(pod: Pod) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.kind != "ReplicaSet":
            return None
        return _rs_key(pod.metadata.namespace, ref.name)

    def _pod_added(self, pod: Pod) -> None:
        key = self._owner_key(pod)
        if key is None:
            return
        if pod.metadata.deletion_timestamp is not None:
            # Seen for the first time already terminating (e.g. after a relist): a deletion.
            self.expectations.deletion_observed(key, pod.metadata.uid or "")
        else:
            self.expectations.creation_observed(key)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        if old is new:
            return
        if new.metadata.deletion_timestamp is not None and old.metadata.deletion_timestamp is None:
            # Graceful deletion started: for counting, the pod is gone now.
            key = self._owner_key(new)
            if key is not None:
                self.expectations.deletion_observed(key, new.metadata.uid or "")

    def _pod_deleted(self, pod: Pod) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, pod.metadata.uid or "")

    def keys_for_pod(self, pod: Pod) -> list[str]:
        """The ReplicaSets a pod event concerns: its controller, or, for an orphan, every
        ReplicaSet of its namespace whose selector matches it (one of them may adopt it)."""
        ref = controller_ref(pod)
        if ref is not None:
            if ref.kind == "ReplicaSet" and ref.api_version.split("/")[0] == "apps":
                return [_rs_key(pod.metadata.namespace, ref.name)]
            return []
        if pod.metadata.deletion_timestamp is not None or not pod.metadata.namespace:
            return []
        labels = pod.metadata.labels or {}
        out: list[str] = []
        for rs in self.replicasets.by_index(NAMESPACE_INDEX, pod.metadata.namespace):
            if labels and selector_from_model(rs.spec.selector).matches(labels):
                out.append(rs.key)
        return out

    # -- reconcile -------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> Result:
        rs = self.replicasets.get(key)
        if rs is None:
            self.expectations.forget(key)
            return DONE
        needs_sync = self.expectations.satisfied(key)
        selector = selector_from_model(rs.spec.selector)
        owned = await self._claim(rs, selector, self._candidates(rs))

        manage_error: Exception | None = None
        gone: set[str] = set()
        if needs_sync and rs.metadata.deletion_timestamp is None:
            try:
                gone = await self._manage(key, rs, owned)
            except Exception as e:  # reported in status, then re-raised for a retry with back-off
                manage_error = e
        live = [p for p in owned if p.metadata.uid not in gone]

        _, pending_deletes = self.expectations.pending(key)
        at = datetime.now(UTC).timestamp()
        if needs_sync or not pending_deletes:
            # While deletions are unobserved the cache still shows those pods as alive; the status
            # written by the reconcile that deleted them (which left them out) is the better one.
            await self._write_status(rs, calculate_status(rs, live, manage_error, at))
        if manage_error is not None:
            raise manage_error
        return _requeue_for_availability(rs, live, at)

    # -- claiming --------------------------------------------------------------------------------

    def _candidates(self, rs: ReplicaSet) -> list[Pod]:
        """The active pods this ReplicaSet controls or could adopt: its own (by the owner index)
        and its namespace's orphans, never a scan of every pod in the namespace."""
        uid = rs.metadata.uid or ""
        mine = [p for p in self.pods.by_index(OWNER_UID_INDEX, uid) if is_controlled_by(p, uid)]
        orphans = self.pods.by_index(ORPHANS_INDEX, rs.metadata.namespace or "")
        return [p for p in (*mine, *orphans) if is_pod_active(p)]

    async def _claim(self, rs: ReplicaSet, selector: LabelSelector, active: list[Pod]) -> list[Pod]:
        owned: list[Pod] = []
        uid = rs.metadata.uid or ""
        can_adopt: bool | None = None
        for pod in active:
            labels = pod.metadata.labels or {}
            ref = controller_ref(pod)
            if ref is not None:
                if ref.uid != uid:
                    continue
                if selector.matches(labels):
                    owned.append(pod)
                elif rs.metadata.deletion_timestamp is None:
                    await self._release(rs, pod)
                continue
            if rs.metadata.deletion_timestamp is not None or not selector.matches(labels):
                continue
            if can_adopt is None:
                can_adopt = await self._can_adopt(rs)
            if not can_adopt:
                continue
            adopted = await self._adopt(rs, pod)
            if adopted is not None:
                owned.append(adopted)
        return owned

    async def _can_adopt(self, rs: ReplicaSet) -> bool:
        """Adopt only for a ReplicaSet that still exists and is not being deleted, checked with a
        fresh read (the cache might be behind a delete)."""
        try:
            fresh = await self.client.get(self.rs_rt, rs.metadata.name or "", rs.metadata.namespace)
        except ApiError as e:
            if e.code == 404:
                return False
            raise
        md = fresh.get("metadata") or {}
        return md.get("uid") == rs.metadata.uid and not md.get("deletionTimestamp")

    async def _adopt(self, rs: ReplicaSet, pod: Pod) -> Pod | None:
        try:
            data = await self.client.patch(self.pod_rt, pod.metadata.name or "", adopt_patch(rs, pod),
                                           patch_type="strategic", namespace=pod.metadata.namespace)
        except ApiError as e:
            if _ignorable(e):
                return None
            raise
        log.info("replicaset %s adopted pod %s", rs.key, pod.metadata.name)
        return Pod.model_validate(data)

    async def _release(self, rs: ReplicaSet, pod: Pod) -> None:
        try:
            await self.client.patch(self.pod_rt, pod.metadata.name or "", release_patch(rs.metadata.uid or "", pod),
                                    patch_type="strategic", namespace=pod.metadata.namespace)
        except ApiError as e:
            if not _ignorable(e):
                raise
        log.info("replicaset %s released pod %s", rs.key, pod.metadata.name)

    # -- creating and deleting --------------------------------------------------------------------

    async def _manage(self, key: str, rs: ReplicaSet, owned: list[Pod]) -> set[str]:
        """Create or delete the difference; returns the uids of the pods it deleted."""
        wanted = rs.spec.replicas if rs.spec.replicas is not None else 1
        diff = len(owned) - wanted
        if diff < 0:
            count = min(-diff, BURST_REPLICAS)
            # Record before writing: an ADDED event may arrive before the create call returns.
            self.expectations.expect_creations(key, count)
            created, err = await slow_start_batch(count, SLOW_START_INITIAL_BATCH, lambda: self._create_pod(rs))
            for _ in range(count - created):
                # Failed or never attempted: these creations will never be observed.
                self.expectations.creation_failed(key)
            if err is not None:
                raise err
            return set()
        if diff > 0:
            count = min(diff, BURST_REPLICAS)
            victims = deletion_order(owned)[:count]
            uids = [p.metadata.uid or "" for p in victims]
            self.expectations.expect_deletions(key, uids)
            results = await asyncio.gather(*(self._delete_pod(key, rs, p) for p in victims), return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                first = errors[0]
                raise first if isinstance(first, Exception) else RuntimeError(str(first))
            return set(uids)
        return set()

    async def _create_pod(self, rs: ReplicaSet) -> None:
        template = rs.spec.template
        if template is None:
            raise ValueError("the ReplicaSet has no pod template")
        tmd = template.metadata
        md: dict[str, Any] = {
            "generateName": f"{rs.metadata.name}-",
            "namespace": rs.metadata.namespace,
            "labels": dict(tmd.labels or {}),
            "ownerReferences": [owner_reference(rs)],
        }
        if tmd.annotations:
            md["annotations"] = dict(tmd.annotations)
        if tmd.finalizers:
            md["finalizers"] = list(tmd.finalizers)
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": template.spec.to_dict()}
        try:
            created = await self.client.create(self.pod_rt, body, rs.metadata.namespace)
        except ApiError as e:
            if not _namespace_terminating(e):
                self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {e}")
            raise
        name = (created.get("metadata") or {}).get("name")
        self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {name}")

    async def _delete_pod(self, key: str, rs: ReplicaSet, pod: Pod) -> None:
        try:
            await self.client.delete(self.pod_rt, pod.metadata.name or "", pod.metadata.namespace)
        except ApiError as e:
            # This deletion will never be observed (or already was): do not wait for it.
            self.expectations.deletion_observed(key, pod.metadata.uid or "")
            if e.code == 404:
                return
            self.recorder.event(rs, "Warning", "FailedDelete", f"Error deleting: {e}")
            raise
        except Exception:
            self.expectations.deletion_observed(key, pod.metadata.uid or "")
            raise
        self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")

    # -- status ----------------------------------------------------------------------------------

    async def _write_status(self, rs: ReplicaSet, status: ReplicaSetStatus) -> None:
        if status.to_dict() == rs.status.to_dict():
            return
        updated = rs.copy_deep()
        updated.status = status
        # A PUT with the cached resourceVersion: a 409 means the cache was behind; the runtime
        # retries from fresh state.
        await self.client.replace_status(self.rs_rt, updated.to_dict())


def _namespace_terminating(e: ApiError) -> bool:
    return e.code == 403 and "being terminated" in str(e)


def _labels_match_template(pod: Pod, template_labels: dict[str, str]) -> bool:
    labels = pod.metadata.labels or {}
    return all(labels.get(k) == v for k, v in template_labels.items())


def calculate_status(rs: ReplicaSet, pods: list[Pod], manage_error: Exception | None, at: float) -> ReplicaSetStatus:
    """The status ``pods`` (the active pods the ReplicaSet owns) stand for."""
    min_ready = rs.spec.min_ready_seconds or 0
    template_labels = dict(rs.spec.template.metadata.labels or {}) if rs.spec.template else {}
    conditions = [c.copy_deep() for c in rs.status.conditions or []]
    failure = next((c for c in conditions if c.type == REPLICA_FAILURE), None)
    if manage_error is not None and failure is None:
        wanted = rs.spec.replicas if rs.spec.replicas is not None else 1
        reason = "FailedCreate" if len(pods) < wanted else "FailedDelete"
        conditions.append(ReplicaSetCondition(
            type=REPLICA_FAILURE, status="True", last_transition_time=now(), reason=reason, message=str(manage_error)))
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.type != REPLICA_FAILURE]
    return ReplicaSetStatus(
        replicas=len(pods),
        # Zero counts are left out, as Go's omitempty does on the wire.
        fully_labeled_replicas=sum(1 for p in pods if _labels_match_template(p, template_labels)) or None,
        ready_replicas=sum(1 for p in pods if is_pod_ready(p)) or None,
        available_replicas=sum(1 for p in pods if is_pod_available(p, min_ready, at)) or None,
        observed_generation=rs.metadata.generation,
        conditions=conditions or None,
    )


def _requeue_for_availability(rs: ReplicaSet, pods: list[Pod], at: float) -> Result:
    """Look again when the next Ready pod passes minReadySeconds (nothing else would wake us)."""
    min_ready = rs.spec.min_ready_seconds or 0
    if min_ready <= 0:
        return DONE
    waits = [w for p in pods if (w := seconds_until_available(p, min_ready, at))]
    if not waits:
        return DONE
    # Timestamps have one-second precision: a little extra avoids waking up just too early.
    return requeue_after(min(waits) + 0.1)


def new_controller(ctx: ControllerContext) -> Controller:
    reconciler = ReplicaSetReconciler(ctx)
    controller = Controller("replicaset", reconciler, workers=ctx.config.workers)
    controller.watch(reconciler.replicasets)
    controller.watch(reconciler.pods, map_keys=reconciler.keys_for_pod)
    return controller


__all__ = [
    "ReplicaSetReconciler",
    "calculate_status",
    "deletion_order",
    "is_pod_active",
    "is_pod_available",
    "is_pod_ready",
    "new_controller",
    "owner_reference",
    "slow_start_batch",
]
