"""Node lifecycle: mark silent nodes Unknown, taint unhealthy nodes, evict pods from them.

Health. A node proves it is alive in two ways: its Lease in ``kube-node-lease`` (same name as
the node; the agent renews ``spec.renewTime`` every few seconds) and the ``lastHeartbeatTime``
of its Ready condition. Like Kubernetes, this controller never compares those remote
timestamps with its own clock (clocks differ between machines): it remembers, on *its* clock,
when either value last *changed*. A node with no change for longer than
``node_monitor_grace_period`` gets every condition set to Unknown through the status
subresource (reason ``NodeStatusUnknown``, "Kubelet stopped posting node status.").

Taints. Ready=Unknown puts ``node.kubernetes.io/unreachable:NoExecute`` on the node and
Ready=False ``node.kubernetes.io/not-ready:NoExecute`` (with ``timeAdded``); they are removed
when the node reports Ready again.

Pods on a node whose Ready is Unknown get their own Ready condition set to False, so Services
stop sending them traffic long before they are evicted.

Eviction (Kubernetes' taint manager). A pod on a node with NoExecute taints is deleted at once
when some taint has no matching toleration, else after the smallest ``tolerationSeconds`` of
the tolerations used, counted from when this controller first saw the pod needing it (again on
its own clock); tolerations without seconds tolerate forever. Pods normally carry 300 s
tolerations for both taints, added at creation by the API server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from apimachinery.api.coordination_v1 import Lease
from apimachinery.api.core_v1 import Node, NodeCondition, Pod, Taint, Toleration
from apimachinery.controller.runtime import DONE, Controller, Result, requeue_after
from apimachinery.errors import ApiError
from apimachinery.events import NORMAL
from apimachinery.meta import now
from controlplane.controllers.context import ControllerContext
from controlplane.scheduler.filters import tolerates

LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
NO_EXECUTE = "NoExecute"
NODE_NAME_INDEX = "nodelifecycle:spec.nodeName"
# Conditions besides Ready that become Unknown with it (NetworkUnavailable is the network's).
OTHER_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
NEVER_REASON = "NodeStatusNeverUpdated"
NEVER_MESSAGE = "Kubelet never posted node status."


@dataclass
class _Health:
    """What we last saw of a node's heartbeats, and when (monotonic) one last changed."""

    heartbeat: str | None
    renew_time: str | None
    probe: float
    ready_status: str | None = None
    # pod uid -> monotonic time we first saw that pod needing eviction
    evicting_since: dict[str, float] = field(default_factory=dict)


def ready_condition(node: Node) -> NodeCondition | None:
    for c in node.status.conditions or []:
        if c.type == "Ready":
            return c
    return None


def desired_taint_key(node: Node) -> str | None:
    ready = ready_condition(node)
    if ready is None or ready.status == "True":
        return None
    return UNREACHABLE_TAINT if ready.status == "Unknown" else NOT_READY_TAINT


def mark_unknown(node: Node, stamp: str) -> Node:
    """A copy of ``node`` with Ready and the pressure conditions Unknown (Kubernetes' wording)."""
    new = node.copy_deep()
    conditions = new.status.conditions if new.status.conditions is not None else []
    for ctype in ("Ready", *OTHER_CONDITIONS):
        cond = next((c for c in conditions if c.type == ctype), None)
        if cond is None:
            conditions.append(NodeCondition(
                type=ctype, status="Unknown", reason=NEVER_REASON, message=NEVER_MESSAGE,
                last_heartbeat_time=node.metadata.creation_timestamp, last_transition_time=stamp,
            ))
            continue
        if cond.status != "Unknown":
            cond.last_transition_time = stamp
        cond.status = "Unknown"
        cond.reason = UNKNOWN_REASON
        cond.message = UNKNOWN_MESSAGE
    new.status.conditions = conditions
    return new


def needs_unknown(node: Node) -> bool:
    conds = {c.type: c.status for c in node.status.conditions or []}
    return any(conds.get(t) != "Unknown" for t in ("Ready", *OTHER_CONDITIONS))


def with_taint(node: Node, key: str | None) -> Node | None:
    """A copy of ``node`` carrying exactly the lifecycle taint ``key`` (None: neither), or None
    when it already does."""
    taints = node.spec.taints or []
    ours = {UNREACHABLE_TAINT, NOT_READY_TAINT}
    have = {t.key for t in taints if t.key in ours and t.effect == NO_EXECUTE}
    want = {key} if key else set()
    if have == want:
        return None
    new = node.copy_deep()
    kept = [t for t in new.spec.taints or [] if not (t.key in ours and t.effect == NO_EXECUTE and t.key not in want)]
    if key and key not in have:
        kept.append(Taint(key=key, effect=NO_EXECUTE, time_added=now()))
    new.spec.taints = kept or None
    return new


def min_toleration_seconds(taints: list[Taint], tolerations: list[Toleration]) -> float | None:
    """Seconds until eviction: 0 when some taint is not tolerated, None for never.

    As Kubernetes: the first toleration matching each taint is used, the smallest seconds among
    them wins, tolerations without seconds tolerate forever and negative seconds mean 0."""
    used: list[Toleration] = []
    for t in taints:
        match = next((tol for tol in tolerations if tolerates([tol], t.key, t.value or "", t.effect)), None)
        if match is None:
            return 0.0
        used.append(match)
    seconds = [tol.toleration_seconds for tol in used if tol.toleration_seconds is not None]
    if not seconds:
        return None
    return float(max(0, min(seconds)))


class NodeLifecycleReconciler:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.nodes = ctx.informers.for_model(Node)
        self.leases = ctx.informers.for_model(Lease)
        self.pods = ctx.informers.for_model(Pod)
        self.pods.add_index(NODE_NAME_INDEX, lambda p: [p.spec.node_name] if p.spec.node_name else [])
        self.node_api = ctx.client.typed(Node)
        self.pod_api = ctx.client.typed(Pod)
        self._health: dict[str, _Health] = {}

    def _observe(self, node: Node) -> _Health:
        """Update what we know of the node's heartbeats; a changed value resets the clock."""
        name = node.metadata.name or ""
        ready = ready_condition(node)
        heartbeat = ready.last_heartbeat_time if ready else None
        lease = self.leases.get(f"{LEASE_NAMESPACE}/{name}")
        renew = lease.spec.renew_time if lease else None
        health = self._health.get(name)
        if health is None:
            # First sight (or a controller restart): give the node a full grace period.
            health = _Health(heartbeat, renew, time.monotonic())
            self._health[name] = health
        elif health.heartbeat != heartbeat or health.renew_time != renew:
            health.heartbeat, health.renew_time, health.probe = heartbeat, renew, time.monotonic()
        status = ready.status if ready else None
        if health.ready_status == "True" and status != "True":
            self.ctx.recorder.event(node, NORMAL, "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        health.ready_status = status
        return health

    async def reconcile(self, key: str) -> Result:
        node = self.nodes.get(key)
        if node is None:
            self._health.pop(key, None)
            return DONE
        health = self._observe(node)
        grace = self.ctx.config.node_monitor_grace_period
        silent_for = time.monotonic() - health.probe
        if silent_for > grace and needs_unknown(node):
            # The write comes back as an event and we carry on from the new state.
            await self.node_api.update_status(mark_unknown(node, now()))
            return DONE
        tainted = with_taint(node, desired_taint_key(node))
        if tainted is not None:
            await self.node_api.update(tainted)
            return DONE
        ready = ready_condition(node)
        if ready is not None and ready.status == "Unknown":
            await self._mark_pods_not_ready(node)
        # Look again when the grace period would run out, and at least every monitor period.
        next_check = self.ctx.config.node_monitor_period
        if silent_for <= grace:
            next_check = min(next_check, grace - silent_for + 0.05)
        evict_in = await self._evict(node, health)
        if evict_in is not None:
            next_check = min(next_check, evict_in)
        return requeue_after(max(next_check, 0.05))

    async def _mark_pods_not_ready(self, node: Node) -> None:
        """Pods on a silent node are not Ready any more (Kubernetes' MarkPodsNotReady), so they
        leave Services' endpoints long before they are evicted. Only for Unknown: a node that
        reports NotReady itself also reports its pods."""
        for pod in self.pods.by_index(NODE_NAME_INDEX, node.metadata.name or ""):
            cond = next((c for c in pod.status.conditions or [] if c.type == "Ready"), None)
            if cond is None or cond.status != "True":
                continue
            new = pod.copy_deep()
            for c in new.status.conditions or []:
                if c.type == "Ready":
                    c.status = "False"
                    c.last_transition_time = now()
            try:
                await self.pod_api.update_status(new)
            except ApiError as e:
                if e.code != 404:
                    raise

    async def _evict(self, node: Node, health: _Health) -> float | None:
        """Delete pods whose tolerations ran out; the seconds until the next one, if any."""
        taints = [t for t in node.spec.taints or [] if t.effect == NO_EXECUTE]
        if not taints:
            health.evicting_since.clear()
            return None
        now_m = time.monotonic()
        soonest: float | None = None
        seen: set[str] = set()
        for pod in self.pods.by_index(NODE_NAME_INDEX, node.metadata.name or ""):
            uid = pod.metadata.uid or ""
            if pod.metadata.deletion_timestamp or pod.status.phase in ("Succeeded", "Failed"):
                continue
            seconds = min_toleration_seconds(taints, pod.spec.tolerations or [])
            if seconds is None:
                continue
            seen.add(uid)
            since = health.evicting_since.setdefault(uid, now_m)
            left = since + seconds - now_m
            if left > 0:
                soonest = left if soonest is None else min(soonest, left)
                continue
            await self._delete_pod(pod)
        for uid in list(health.evicting_since):
            if uid not in seen:
                del health.evicting_since[uid]
        return soonest

    async def _delete_pod(self, pod: Pod) -> None:
        ns, name = pod.metadata.namespace, pod.metadata.name or ""
        self.ctx.recorder.event(pod, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {ns}/{name}")
        try:
            await self.pod_api.delete(name, ns, preconditions={"uid": pod.metadata.uid or ""})
        except ApiError as e:
            # Gone already, or replaced by a new pod of the same name: nothing to evict.
            if e.code not in (404, 409):
                raise


def new_controller(ctx: ControllerContext) -> Controller:
    r = NodeLifecycleReconciler(ctx)
    c = Controller("nodelifecycle", r, workers=ctx.config.workers)
    c.watch(r.nodes)

    def lease_keys(lease: Lease) -> list[str]:
        return [lease.metadata.name or ""] if lease.metadata.namespace == LEASE_NAMESPACE else []

    def pod_keys(pod: Pod) -> list[str]:
        # Only nodes with NoExecute taints care about their pods.
        node = r.nodes.get(pod.spec.node_name or "")
        if node is None or not any(t.effect == NO_EXECUTE for t in node.spec.taints or []):
            return []
        return [node.metadata.name or ""]

    c.watch(r.leases, map_keys=lease_keys)
    c.watch(r.pods, map_keys=pod_keys)
    return c
