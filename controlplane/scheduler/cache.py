"""The scheduler's view of the cluster: per-node resource accounting, kept incrementally.

Every pod the scheduler places is *assumed* on its node before the bind request goes out, so the
next scheduling decision already sees those resources taken even though the API has not
confirmed the bind yet. That is what lets binds run in parallel without over-committing a node:
the only source of truth for "is there room" is this cache, and it is only ever changed from the
one event-loop thread (informer handlers and the scheduling loop), so check-and-reserve is atomic.

* ``assume`` reserves; ``forget`` releases when the bind fails;
* the informer's view of a bound pod ``add_pod`` confirms the reservation (or moves it, when the
  pod turned out bound elsewhere); ``remove_pod`` releases it when the pod is deleted or finishes.

Pods are parsed once into :class:`PodInfo` (integers and small tuples), and nodes into
:class:`NodeInfo`, so the per-node filter loop does no quantity parsing and no model walking.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from apimachinery.api.core_v1 import Container, Node, NodeSelectorTerm, Pod, PodAffinityTerm, Toleration
from apimachinery.quantity import QuantityError, milli_value, value
from apimachinery.selectors.labels import LabelSelector, SelectorError, selector_from_model

log = logging.getLogger(__name__)

# What the scoring functions assume a container without requests uses (Kubernetes'
# DefaultMilliCPURequest and DefaultMemoryRequest), so best-effort pods still spread out.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024

HOSTNAME_LABEL = "kubernetes.io/hostname"


def _milli(q: str | None) -> int:
    if q is None:
        return 0
    try:
        return milli_value(q)
    except QuantityError:
        return 0


def _whole(q: str | None) -> int:
    if q is None:
        return 0
    try:
        return value(q)
    except QuantityError:
        return 0


def _container_requests(c: Container, nonzero: bool) -> tuple[int, int]:
    reqs = (c.resources.requests if c.resources else None) or {}
    cpu = _milli(reqs.get("cpu"))
    mem = _whole(reqs.get("memory"))
    if nonzero:
        if "cpu" not in reqs:
            cpu = DEFAULT_MILLI_CPU
        if "memory" not in reqs:
            mem = DEFAULT_MEMORY
    return cpu, mem


def pod_requests(pod: Pod, *, nonzero: bool = False) -> tuple[int, int]:
    """(milli-CPU, memory bytes) the pod asks for, by Kubernetes' rule.

    App containers add up; init containers run one at a time, so the pod needs the largest of
    them, except sidecars (init containers with restartPolicy Always), which keep running and
    add to everything started after them. The pod needs the larger of the two totals, plus its
    overhead. ``nonzero`` counts a container without requests as 100m / 200Mi (for scoring).
    """
    cpu = mem = 0
    for c in pod.spec.containers:
        c_cpu, c_mem = _container_requests(c, nonzero)
        cpu += c_cpu
        mem += c_mem
    side_cpu = side_mem = 0
    init_cpu = init_mem = 0
    for c in pod.spec.init_containers or []:
        c_cpu, c_mem = _container_requests(c, nonzero)
        if c.restart_policy == "Always":
            cpu += c_cpu
            mem += c_mem
            side_cpu += c_cpu
            side_mem += c_mem
            need_cpu, need_mem = side_cpu, side_mem
        else:
            need_cpu, need_mem = c_cpu + side_cpu, c_mem + side_mem
        init_cpu = max(init_cpu, need_cpu)
        init_mem = max(init_mem, need_mem)
    cpu = max(cpu, init_cpu)
    mem = max(mem, init_mem)
    overhead = pod.spec.overhead or {}
    cpu += _milli(overhead.get("cpu"))
    mem += _whole(overhead.get("memory"))
    return cpu, mem


@dataclass(frozen=True)
class HostPort:
    protocol: str
    port: int
    ip: str  # "" and "0.0.0.0" both mean every address

    def conflicts(self, other: HostPort) -> bool:
        if self.port != other.port or self.protocol != other.protocol:
            return False
        return self.ip in ("", "0.0.0.0") or other.ip in ("", "0.0.0.0") or self.ip == other.ip


@dataclass(frozen=True)
class AffinityTerm:
    """A required pod (anti-)affinity term, parsed: which pods, in which namespaces, what domain."""

    selector: LabelSelector
    namespaces: frozenset[str]
    topology_key: str

    def matches(self, pod: PodInfo) -> bool:
        return pod.namespace in self.namespaces and self.selector.matches(pod.labels)


def _affinity_terms(pod: Pod, terms: Iterable[PodAffinityTerm] | None) -> tuple[AffinityTerm, ...]:
    out: list[AffinityTerm] = []
    for t in terms or []:
        try:
            sel = selector_from_model(t.label_selector)
        except SelectorError:
            sel = LabelSelector.match_nothing()
        namespaces = frozenset(t.namespaces or [pod.metadata.namespace or ""])
        out.append(AffinityTerm(sel, namespaces, t.topology_key or HOSTNAME_LABEL))
    return tuple(out)


@dataclass
class PodInfo:
    """What scheduling needs of one pod, computed once per pod version."""

    key: str
    uid: str
    namespace: str
    name: str
    labels: dict[str, str]
    milli_cpu: int
    memory: int
    nonzero_cpu: int
    nonzero_memory: int
    node_selector: dict[str, str]
    required_terms: tuple[NodeSelectorTerm, ...] | None  # None: no required node affinity
    tolerations: tuple[Toleration, ...]
    host_ports: tuple[HostPort, ...]
    anti_affinity: tuple[AffinityTerm, ...]
    owner_uid: str | None
    pod: Pod

    def is_simple(self) -> bool:
        """No constraint but resources: the scheduler's fast path applies."""
        return not self.node_selector and self.required_terms is None and not self.host_ports \
            and not self.anti_affinity

    @classmethod
    def of(cls, pod: Pod) -> PodInfo:
        md = pod.metadata
        spec = pod.spec
        cpu, mem = pod_requests(pod)
        nz_cpu, nz_mem = pod_requests(pod, nonzero=True)
        required: tuple[NodeSelectorTerm, ...] | None = None
        anti: tuple[AffinityTerm, ...] = ()
        aff = spec.affinity
        if aff is not None:
            na = aff.node_affinity
            if na is not None and na.required_during_scheduling_ignored_during_execution is not None:
                required = tuple(na.required_during_scheduling_ignored_during_execution.node_selector_terms)
            if aff.pod_anti_affinity is not None:
                anti = _affinity_terms(pod, aff.pod_anti_affinity.required_during_scheduling_ignored_during_execution)
        ports: list[HostPort] = []
        for c in [*(spec.init_containers or []), *spec.containers]:
            for p in c.ports or []:
                if p.host_port:
                    ports.append(HostPort(p.protocol or "TCP", p.host_port, p.host_ip or ""))
        owner = next((r.uid for r in md.owner_references or [] if r.controller and r.uid), None)
        return cls(
            key=f"{md.namespace}/{md.name}", uid=md.uid or "", namespace=md.namespace or "", name=md.name or "",
            labels=dict(md.labels or {}), milli_cpu=cpu, memory=mem, nonzero_cpu=nz_cpu, nonzero_memory=nz_mem,
            node_selector=dict(spec.node_selector or {}), required_terms=required,
            tolerations=tuple(spec.tolerations or ()), host_ports=tuple(ports), anti_affinity=anti,
            owner_uid=owner, pod=pod,
        )


def node_is_ready(node: Node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


@dataclass
class NodeInfo:
    """One node with the pods on it (bound or assumed) and the running totals they add up to."""

    name: str
    node: Node
    labels: dict[str, str] = field(default_factory=dict)
    ready: bool = False
    unschedulable: bool = False
    # Only the taints the Filter phase looks at (PreferNoSchedule does not filter).
    taints: tuple[tuple[str, str, str], ...] = ()
    alloc_cpu: int = 0
    alloc_memory: int = 0
    alloc_pods: int = 0
    req_cpu: int = 0
    req_memory: int = 0
    nonzero_cpu: int = 0
    nonzero_memory: int = 0
    pods: dict[str, PodInfo] = field(default_factory=dict)
    host_ports: list[HostPort] = field(default_factory=list)
    owner_counts: dict[str, int] = field(default_factory=dict)
    is_simple: bool = False

    @classmethod
    def of(cls, node: Node) -> NodeInfo:
        ni = cls(name=node.metadata.name or "", node=node)
        ni.set_node(node)
        return ni

    def set_node(self, node: Node) -> None:
        self.node = node
        self.labels = dict(node.metadata.labels or {})
        self.ready = node_is_ready(node)
        self.unschedulable = bool(node.spec.unschedulable)
        self.taints = tuple(
            (t.key, t.value or "", t.effect) for t in node.spec.taints or [] if t.effect in ("NoSchedule", "NoExecute")
        )
        alloc = node.status.allocatable or node.status.capacity or {}
        self.alloc_cpu = _milli(alloc.get("cpu"))
        self.alloc_memory = _whole(alloc.get("memory"))
        self.alloc_pods = _whole(alloc.get("pods"))
        # Ready, schedulable and untainted: only resources can keep a simple pod off it.
        self.is_simple = self.ready and not self.unschedulable and not self.taints

    @property
    def schedulable(self) -> bool:
        return self.ready and not self.unschedulable


    def add(self, pi: PodInfo) -> None:
        self.pods[pi.key] = pi
        self.req_cpu += pi.milli_cpu
        self.req_memory += pi.memory
        self.nonzero_cpu += pi.nonzero_cpu
        self.nonzero_memory += pi.nonzero_memory
        self.host_ports.extend(pi.host_ports)
        if pi.owner_uid:
            self.owner_counts[pi.owner_uid] = self.owner_counts.get(pi.owner_uid, 0) + 1

    def remove(self, key: str) -> PodInfo | None:
        pi = self.pods.pop(key, None)
        if pi is None:
            return None
        self.req_cpu -= pi.milli_cpu
        self.req_memory -= pi.memory
        self.nonzero_cpu -= pi.nonzero_cpu
        self.nonzero_memory -= pi.nonzero_memory
        for hp in pi.host_ports:
            self.host_ports.remove(hp)
        if pi.owner_uid:
            n = self.owner_counts.get(pi.owner_uid, 0) - 1
            if n > 0:
                self.owner_counts[pi.owner_uid] = n
            else:
                self.owner_counts.pop(pi.owner_uid, None)
        return pi


def _is_terminal(pod: Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


class SchedulerCache:
    """Nodes and the pods that take their resources (bound ones and assumed ones).

    Pods bound to a node the cache does not know yet are kept aside and counted as soon as the
    node appears (informers for nodes and pods are not ordered against each other).
    """

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.node_list: list[NodeInfo] = []  # stable order for the round-robin search
        self._pod_node: dict[str, str] = {}  # pod key -> node it is counted on
        self._assumed: set[str] = set()  # reserved by us, not yet seen bound by the informer
        self._orphans: dict[str, dict[str, PodInfo]] = {}  # node name -> pods waiting for it
        # Pods with required anti-affinity terms, by key: existing pods' terms also keep new pods
        # away (the symmetric rule), and they are few, so a flat map is cheap to scan.
        self.anti_affinity_pods: dict[str, PodInfo] = {}

    # -- nodes ---------------------------------------------------------------------------------

    def set_node(self, node: Node) -> NodeInfo:
        name = node.metadata.name or ""
        ni = self.nodes.get(name)
        if ni is None:
            ni = NodeInfo.of(node)
            self.nodes[name] = ni
            self.node_list.append(ni)
            for pi in self._orphans.pop(name, {}).values():
                ni.add(pi)
        else:
            ni.set_node(node)
        return ni

    def remove_node(self, name: str) -> None:
        ni = self.nodes.pop(name, None)
        if ni is None:
            return
        self.node_list = [n for n in self.node_list if n.name != name]
        # Bound pods stay accounted to the name: if the node comes back they still run there.
        if ni.pods:
            self._orphans[name] = dict(ni.pods)

    # -- pods ----------------------------------------------------------------------------------

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def node_of(self, key: str) -> str | None:
        return self._pod_node.get(key)

    def assume(self, pi: PodInfo, node_name: str) -> None:
        """Reserve the pod's resources on ``node_name`` before binding."""
        self._account(pi, node_name)
        self._assumed.add(pi.key)

    def forget(self, key: str) -> None:
        """The bind failed: release the reservation (unless the informer already saw it bound)."""
        if key in self._assumed:
            self._assumed.discard(key)
            self._unaccount(key)

    def add_pod(self, pod: Pod) -> None:
        """The informer's view of a pod bound to a node: count it there (confirming an assumption)."""
        key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        if _is_terminal(pod):
            # Finished pods hold no resources any more.
            self.remove_pod(key)
            return
        node_name = pod.spec.node_name or ""
        self._assumed.discard(key)
        current = self._pod_node.get(key)
        if current == node_name:
            # Status updates of running pods are the common case: skip re-parsing the pod when
            # nothing scheduling looks at can have changed.
            ni = self.nodes.get(node_name)
            known = ni.pods.get(key) if ni is not None else None
            if known is not None and known.uid == pod.metadata.uid and known.labels == (pod.metadata.labels or {}):
                return
        self._account(PodInfo.of(pod), node_name)

    def remove_pod(self, key: str) -> None:
        self._assumed.discard(key)
        self._unaccount(key)

    def _account(self, pi: PodInfo, node_name: str) -> None:
        self._unaccount(pi.key)
        self._pod_node[pi.key] = node_name
        ni = self.nodes.get(node_name)
        if ni is not None:
            ni.add(pi)
        else:
            self._orphans.setdefault(node_name, {})[pi.key] = pi
        if pi.anti_affinity:
            self.anti_affinity_pods[pi.key] = pi

    def _unaccount(self, key: str) -> None:
        node_name = self._pod_node.pop(key, None)
        if node_name is None:
            return
        ni = self.nodes.get(node_name)
        if ni is not None:
            ni.remove(key)
        else:
            orphans = self._orphans.get(node_name)
            if orphans is not None:
                orphans.pop(key, None)
                if not orphans:
                    del self._orphans[node_name]
        self.anti_affinity_pods.pop(key, None)
