"""Filters: may this pod run on this node? Each one answers with the reasons it may not.

A filter takes the parsed pod, the node (with what is already on it) and the cycle's precomputed
state, and returns ``()`` when the node passes or Kubernetes' reason strings when it does not.
The reasons are counted over all nodes to build kube-scheduler's message::

    0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu.

Filters run in kube-scheduler's plugin order and a node stops at the first one that fails
(NodeResourcesFit alone may give several reasons at once). They run for up to every node for
every pod, so each starts with the cheapest test that lets the common pod through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from apimachinery.api.core_v1 import NodeSelectorRequirement, NodeSelectorTerm, Toleration
from controlplane.scheduler.cache import NodeInfo, PodInfo, SchedulerCache

Reasons = tuple[str, ...]
PASS: Reasons = ()

NOT_READY = "node(s) were not ready"
UNSCHEDULABLE = "node(s) were unschedulable"
NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
HOST_PORTS = "node(s) didn't have free ports for the requested pod ports"
TOO_MANY_PODS = "Too many pods"
INSUFFICIENT_CPU = "Insufficient cpu"
INSUFFICIENT_MEMORY = "Insufficient memory"
ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


@dataclass
class CycleState:
    """What a scheduling cycle computes once per pod, before looking at nodes (PreFilter)."""

    # (topologyKey, value) domains the pod must stay out of: because of its own anti-affinity
    # terms, and because of existing pods' terms that match it.
    anti_domains: set[tuple[str, str]] = field(default_factory=set)
    existing_domains: set[tuple[str, str]] = field(default_factory=set)


def prefilter(pi: PodInfo, cache: SchedulerCache) -> CycleState:
    state = CycleState()
    if pi.anti_affinity:
        # One pass over the pods (only for pods that carry anti-affinity): which domains already
        # hold a pod one of our terms selects.
        for ni in cache.nodes.values():
            for term in pi.anti_affinity:
                value = ni.labels.get(term.topology_key)
                if value is None or (term.topology_key, value) in state.anti_domains:
                    continue
                if any(other.key != pi.key and term.matches(other) for other in ni.pods.values()):
                    state.anti_domains.add((term.topology_key, value))
    for other in cache.anti_affinity_pods.values():
        if other.key == pi.key:
            continue
        node = cache.nodes.get(cache.node_of(other.key) or "")
        if node is None:
            continue
        for term in other.anti_affinity:
            value = node.labels.get(term.topology_key)
            if value is not None and term.matches(pi):
                state.existing_domains.add((term.topology_key, value))
    return state


# -- NodeReady / NodeUnschedulable ----------------------------------------------------------------


def tolerates(tolerations: Iterable[Toleration], key: str, value: str, effect: str) -> bool:
    """Kubernetes' ToleratesTaint over a pod's tolerations (an empty key with Exists matches all)."""
    for t in tolerations:
        if t.effect and t.effect != effect:
            continue
        if t.key and t.key != key:
            continue
        op = t.operator or "Equal"
        if op == "Exists" or (op == "Equal" and (t.value or "") == value):
            return True
    return False


def node_ready(pi: PodInfo, ni: NodeInfo, state: CycleState) -> Reasons:
    return PASS if ni.ready else (NOT_READY,)


def node_unschedulable(pi: PodInfo, ni: NodeInfo, state: CycleState) -> Reasons:
    if not ni.unschedulable:
        return PASS
    # A cordoned node still takes pods that tolerate the unschedulable taint (DaemonSet pods).
    if tolerates(pi.tolerations, UNSCHEDULABLE_TAINT, "", "NoSchedule"):
        return PASS
    return (UNSCHEDULABLE,)


# -- TaintToleration ------------------------------------------------------------------------------


def taint_toleration(pi: PodInfo, ni: NodeInfo, state: CycleState) -> Reasons:
    for key, value, effect in ni.taints:
        if not tolerates(pi.tolerations, key, value, effect):
            return (f"node(s) had untolerated taint {{{key}: {value}}}",)
    return PASS


# -- NodeAffinity (nodeSelector and required node affinity) ---------------------------------------


def _requirement_matches(req: NodeSelectorRequirement, have: str | None) -> bool:
    op = req.operator
    values = req.values or []
    if op == "In":
        return have is not None and have in values
    if op == "NotIn":
        return have is None or have not in values
    if op == "Exists":
        return have is not None
    if op == "DoesNotExist":
        return have is None
    if op in ("Gt", "Lt"):
        if have is None or len(values) != 1:
            return False
        try:
            mine, theirs = int(have), int(values[0])
        except ValueError:
            return False
        return mine > theirs if op == "Gt" else mine < theirs
    return False


def term_matches(term: NodeSelectorTerm, labels: Mapping[str, str], node_name: str) -> bool:
    """All expressions (on labels) and fields (only metadata.name exists) of one term hold.

    A term with neither matches no node, as in Kubernetes."""
    exprs = term.match_expressions or []
    fields = term.match_fields or []
    if not exprs and not fields:
        return False
    for req in exprs:
        if not _requirement_matches(req, labels.get(req.key)):
            return False
    for req in fields:
        have = node_name if req.key == "metadata.name" else None
        if not _requirement_matches(req, have):
            return False
    return True


def node_affinity(pi: PodInfo, ni: NodeInfo, state: CycleState) -> Reasons:
    labels = ni.labels
    for k, v in pi.node_selector.items():
        if labels.get(k) != v:
            return (NODE_AFFINITY,)
    if pi.required_terms is not None and not any(term_matches(t, labels, ni.name) for t in pi.required_terms):
        return (NODE_AFFINITY,)
    return PASS


# -- NodePorts ------------------------------------------------------------------------------------


def node_ports(pi: PodInfo, ni: NodeInfo, state: CycleState) -> Reasons:
    for want in pi.host_ports:
        for used in ni.host_ports:
            if want.conflicts(used):
                return (HOST_PORTS,)
    return PASS


# -- NodeResourcesFit -----------------------------------------------------------------------------


def node_resources_fit(pi: PodInfo, ni: NodeInfo, state: CycleState) -> Reasons:
    """Requests against allocatable minus what bound and assumed pods already request."""
    reasons: list[str] = []
    if len(ni.pods) + 1 > ni.alloc_pods:
        reasons.append(TOO_MANY_PODS)
    if pi.milli_cpu and ni.req_cpu + pi.milli_cpu > ni.alloc_cpu:
        reasons.append(INSUFFICIENT_CPU)
    if pi.memory and ni.req_memory + pi.memory > ni.alloc_memory:
        reasons.append(INSUFFICIENT_MEMORY)
    return tuple(reasons)


# -- InterPodAffinity (required anti-affinity) ----------------------------------------------------


def pod_anti_affinity(pi: PodInfo, ni: NodeInfo, state: CycleState) -> Reasons:
    if state.existing_domains:
        for key, value in state.existing_domains:
            if ni.labels.get(key) == value:
                return (EXISTING_ANTI_AFFINITY,)
    if state.anti_domains:
        for key, value in state.anti_domains:
            if ni.labels.get(key) == value:
                return (ANTI_AFFINITY,)
    return PASS


Filter = Callable[[PodInfo, NodeInfo, CycleState], Reasons]

# kube-scheduler's order: cheap, node-only checks first.
FILTERS: tuple[Filter, ...] = (
    node_ready,
    node_unschedulable,
    taint_toleration,
    node_affinity,
    node_ports,
    node_resources_fit,
    pod_anti_affinity,
)


def run_filters(pi: PodInfo, ni: NodeInfo, state: CycleState) -> Reasons:
    """The first failing filter's reasons, or ``()`` when the node fits."""
    # The common case (a ready node without taints, a pod without constraints) is decided by the
    # resource check alone; skip the calls that cannot fail.
    if ni.ready and not ni.unschedulable and not ni.taints and not pi.node_selector and pi.required_terms is None \
            and not pi.host_ports and not state.anti_domains and not state.existing_domains:
        return node_resources_fit(pi, ni, state)
    for f in FILTERS:
        reasons = f(pi, ni, state)
        if reasons:
            return reasons
    return PASS


def failure_message(total_nodes: int, counts: Mapping[str, int]) -> str:
    """kube-scheduler's FitError text: reasons with node counts, sorted as strings."""
    if total_nodes == 0:
        return "no nodes available to schedule pods"
    parts = sorted(f"{n} {reason}" for reason, n in counts.items())
    if not parts:
        return f"0/{total_nodes} nodes are available."
    return f"0/{total_nodes} nodes are available: {', '.join(parts)}."
