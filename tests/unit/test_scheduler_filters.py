"""Scheduler filters, scores, accounting and queue, on parsed objects (no API server)."""

from __future__ import annotations

from typing import Any

import pytest

from apimachinery.api.core_v1 import Node, Pod
from controlplane.scheduler import filters as f
from controlplane.scheduler.cache import NodeInfo, PodInfo, SchedulerCache, pod_requests
from controlplane.scheduler.queue import SchedulingQueue
from controlplane.scheduler.scheduler import num_feasible_nodes_to_find
from controlplane.scheduler.scores import least_allocated, owner_spread, total_scores

GI = 1024**3


def make_node(
    name: str, *, cpu: str = "4", memory: str = "16Gi", pods: str = "110", labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None, ready: str = "True", unschedulable: bool = False,
) -> Node:
    return Node.model_validate({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "conditions": [{"type": "Ready", "status": ready}],
        },
    })


def make_pod(
    name: str = "p", *, ns: str = "default", cpu: str | None = None, memory: str | None = None,
    labels: dict[str, str] | None = None, spec: dict[str, Any] | None = None, owner: str | None = None,
    node: str | None = None,
) -> Pod:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if requests:
        container["resources"] = {"requests": requests}
    md: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}", "labels": labels or {}}
    if owner:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner,
                                  "controller": True}]
    body: dict[str, Any] = {"containers": [container], **(spec or {})}
    if node:
        body["nodeName"] = node
    return Pod.model_validate({"metadata": md, "spec": body})


def fits(pod: Pod, node: Node, cache: SchedulerCache | None = None) -> tuple[str, ...]:
    cache = cache or SchedulerCache()
    ni = cache.nodes.get(node.metadata.name or "") or cache.set_node(node)
    pi = PodInfo.of(pod)
    return f.run_filters(pi, ni, f.prefilter(pi, cache))


# -- requests ----------------------------------------------------------------------------------


def test_requests_sum_containers_and_take_the_largest_init_container() -> None:
    pod = Pod.model_validate({"metadata": {"name": "p"}, "spec": {
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            {"name": "b", "resources": {"requests": {"cpu": "200m", "memory": "64Mi"}}},
        ],
        "initContainers": [
            {"name": "i1", "resources": {"requests": {"cpu": "1", "memory": "10Mi"}}},
            {"name": "i2", "resources": {"requests": {"cpu": "50m", "memory": "1Gi"}}},
        ],
        "overhead": {"cpu": "10m"},
    }})
    assert pod_requests(pod) == (1000 + 10, GI)


def test_sidecar_init_containers_add_to_the_app_containers() -> None:
    pod = Pod.model_validate({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "a", "resources": {"requests": {"cpu": "500m"}}}],
        "initContainers": [
            {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
            {"name": "setup", "resources": {"requests": {"cpu": "600m"}}},
        ],
    }})
    # App phase: 500m + 200m sidecar = 700m; init phase: 600m + 200m sidecar = 800m.
    assert pod_requests(pod)[0] == 800


def test_nonzero_requests_for_scoring() -> None:
    assert pod_requests(make_pod()) == (0, 0)
    assert pod_requests(make_pod(), nonzero=True) == (100, 200 * 1024 * 1024)


# -- filters -----------------------------------------------------------------------------------


def test_not_ready_and_unschedulable_nodes_are_filtered() -> None:
    assert fits(make_pod(), make_node("n", ready="False")) == (f.NOT_READY,)
    assert fits(make_pod(), make_node("n", unschedulable=True)) == (f.UNSCHEDULABLE,)
    tolerant = make_pod(spec={"tolerations": [{"key": f.UNSCHEDULABLE_TAINT, "operator": "Exists",
                                               "effect": "NoSchedule"}]})
    assert fits(tolerant, make_node("n", unschedulable=True)) == ()


def test_resources_against_allocatable_minus_bound_pods() -> None:
    cache = SchedulerCache()
    node = make_node("n", cpu="2", memory="1Gi", pods="3")
    cache.set_node(node)
    assert fits(make_pod(cpu="1500m"), node, cache) == ()
    cache.add_pod(make_pod("bound", cpu="1", memory="512Mi", node="n"))
    assert fits(make_pod(cpu="1500m"), node, cache) == (f.INSUFFICIENT_CPU,)
    assert fits(make_pod(cpu="1", memory="600Mi"), node, cache) == (f.INSUFFICIENT_MEMORY,)
    assert fits(make_pod(cpu="2", memory="1Gi"), node, cache) == (f.INSUFFICIENT_CPU, f.INSUFFICIENT_MEMORY)
    cache.add_pod(make_pod("b2", node="n"))
    cache.add_pod(make_pod("b3", node="n"))
    assert fits(make_pod(), node, cache) == (f.TOO_MANY_PODS,)
    # A finished pod frees its resources.
    done = make_pod("b3", node="n")
    done.status.phase = "Succeeded"
    cache.add_pod(done)
    assert fits(make_pod(), node, cache) == ()


def test_assumed_pods_count_until_forgotten() -> None:
    cache = SchedulerCache()
    node = make_node("n", cpu="1")
    cache.set_node(node)
    cache.assume(PodInfo.of(make_pod("a", cpu="800m")), "n")
    assert fits(make_pod("b", cpu="300m"), node, cache) == (f.INSUFFICIENT_CPU,)
    cache.forget("default/a")
    assert fits(make_pod("b", cpu="300m"), node, cache) == ()
    # Confirmed by the informer: forget (a late bind error) must not release it any more.
    cache.assume(PodInfo.of(make_pod("a", cpu="800m")), "n")
    cache.add_pod(make_pod("a", cpu="800m", node="n"))
    cache.forget("default/a")
    assert cache.nodes["n"].req_cpu == 800


def test_pods_bound_to_unknown_nodes_count_once_the_node_appears() -> None:
    cache = SchedulerCache()
    cache.add_pod(make_pod("early", cpu="3", node="late"))
    ni = cache.set_node(make_node("late", cpu="4"))
    assert ni.req_cpu == 3000
    cache.remove_pod("default/early")
    assert ni.req_cpu == 0


def test_node_selector() -> None:
    node = make_node("n", labels={"disk": "ssd"})
    assert fits(make_pod(spec={"nodeSelector": {"disk": "ssd"}}), node) == ()
    assert fits(make_pod(spec={"nodeSelector": {"disk": "hdd"}}), node) == (f.NODE_AFFINITY,)


def _affinity(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}}


@pytest.mark.parametrize(("expr", "ok"), [
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
    ({"key": "zone", "operator": "In", "values": ["c"]}, False),
    ({"key": "zone", "operator": "NotIn", "values": ["c"]}, True),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
    ({"key": "missing", "operator": "NotIn", "values": ["a"]}, True),
    ({"key": "zone", "operator": "Exists"}, True),
    ({"key": "missing", "operator": "Exists"}, False),
    ({"key": "missing", "operator": "DoesNotExist"}, True),
    ({"key": "zone", "operator": "DoesNotExist"}, False),
    ({"key": "gen", "operator": "Gt", "values": ["3"]}, True),
    ({"key": "gen", "operator": "Gt", "values": ["4"]}, False),
    ({"key": "gen", "operator": "Lt", "values": ["5"]}, True),
    ({"key": "gen", "operator": "Lt", "values": ["4"]}, False),
    ({"key": "zone", "operator": "Gt", "values": ["1"]}, False),  # not an integer label
])
def test_required_node_affinity_operators(expr: dict[str, Any], ok: bool) -> None:
    node = make_node("n", labels={"zone": "a", "gen": "4"})
    assert fits(make_pod(spec=_affinity({"matchExpressions": [expr]})), node) == (() if ok else (f.NODE_AFFINITY,))


def test_node_affinity_terms_are_ored_and_match_fields_by_name() -> None:
    node = make_node("n1", labels={"zone": "a"})
    bad = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z"]}]}
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
    other_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}
    assert fits(make_pod(spec=_affinity(bad, by_name)), node) == ()
    assert fits(make_pod(spec=_affinity(bad, other_name)), node) == (f.NODE_AFFINITY,)
    assert fits(make_pod(spec=_affinity({})), node) == (f.NODE_AFFINITY,)  # an empty term matches nothing


def test_taints_and_tolerations() -> None:
    node = make_node("n", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    message = "node(s) had untolerated taint {dedicated: gpu}"
    assert fits(make_pod(), node) == (message,)
    cases = [
        ({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}, True),
        ({"key": "dedicated", "value": "gpu"}, True),  # operator defaults to Equal, any effect
        ({"key": "dedicated", "operator": "Equal", "value": "cpu"}, False),
        ({"key": "dedicated", "operator": "Exists"}, True),
        ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"operator": "Exists"}, True),  # empty key with Exists tolerates everything
        ({"key": "other", "operator": "Exists"}, False),
    ]
    for tol, ok in cases:
        assert fits(make_pod(spec={"tolerations": [tol]}), node) == (() if ok else (message,)), tol
    # PreferNoSchedule never filters; NoExecute does.
    assert fits(make_pod(), make_node("n2", taints=[{"key": "k", "effect": "PreferNoSchedule"}])) == ()
    assert fits(make_pod(), make_node("n3", taints=[{"key": "k", "value": "v", "effect": "NoExecute"}])) == (
        "node(s) had untolerated taint {k: v}",)


def _ports(port: int, protocol: str = "TCP", ip: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"containerPort": 80, "hostPort": port, "protocol": protocol}
    if ip:
        p["hostIP"] = ip
    return {"containers": [{"name": "c", "image": "x", "ports": [p]}]}


def test_host_port_conflicts() -> None:
    cache = SchedulerCache()
    node = make_node("n")
    cache.set_node(node)
    cache.add_pod(make_pod("web", spec=_ports(8080), node="n"))
    assert fits(make_pod("a", spec=_ports(8080)), node, cache) == (f.HOST_PORTS,)
    assert fits(make_pod("b", spec=_ports(8080, "UDP")), node, cache) == ()
    assert fits(make_pod("c", spec=_ports(8081)), node, cache) == ()
    cache.add_pod(make_pod("pinned", spec=_ports(9090, ip="10.0.0.1"), node="n"))
    assert fits(make_pod("d", spec=_ports(9090, ip="10.0.0.2")), node, cache) == ()
    assert fits(make_pod("e", spec=_ports(9090, ip="10.0.0.1")), node, cache) == (f.HOST_PORTS,)
    assert fits(make_pod("g", spec=_ports(9090)), node, cache) == (f.HOST_PORTS,)  # 0.0.0.0 overlaps all
    cache.remove_pod("default/web")
    assert fits(make_pod("a", spec=_ports(8080)), node, cache) == ()


def _anti(app: str, namespaces: list[str] | None = None) -> dict[str, Any]:
    term: dict[str, Any] = {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "kubernetes.io/hostname"}
    if namespaces is not None:
        term["namespaces"] = namespaces
    return {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}}


def test_pod_anti_affinity_by_hostname() -> None:
    cache = SchedulerCache()
    n1, n2 = make_node("n1"), make_node("n2")
    cache.set_node(n1)
    cache.set_node(n2)
    cache.add_pod(make_pod("db-0", labels={"app": "db"}, node="n1"))
    cache.add_pod(make_pod("db-x", ns="other", labels={"app": "db"}, node="n2"))
    pod = make_pod("db-1", labels={"app": "db"}, spec=_anti("db"))
    assert fits(pod, n1, cache) == (f.ANTI_AFFINITY,)
    assert fits(pod, n2, cache) == ()  # a matching pod in another namespace does not count
    pod_all = make_pod("db-2", labels={"app": "db"}, spec=_anti("db", ["default", "other"]))
    assert fits(pod_all, n2, cache) == (f.ANTI_AFFINITY,)


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    cache = SchedulerCache()
    n1 = make_node("n1")
    cache.set_node(n1)
    cache.add_pod(make_pod("loner", labels={"app": "loner"}, spec=_anti("web"), node="n1"))
    assert fits(make_pod("web", labels={"app": "web"}), n1, cache) == (f.EXISTING_ANTI_AFFINITY,)
    assert fits(make_pod("api", labels={"app": "api"}), n1, cache) == ()


def test_failure_message_matches_kube_scheduler() -> None:
    msg = f.failure_message(3, {"node(s) had untolerated taint {dedicated: gpu}": 1, "Insufficient cpu": 2})
    assert msg == "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
    assert f.failure_message(0, {}) == "no nodes available to schedule pods"


# -- scores and search -------------------------------------------------------------------------


def test_least_allocated_prefers_emptier_nodes() -> None:
    empty = NodeInfo.of(make_node("a", cpu="4", memory="8Gi"))
    busy = NodeInfo.of(make_node("b", cpu="4", memory="8Gi"))
    busy.add(PodInfo.of(make_pod("x", cpu="2", memory="4Gi", node="b")))
    pi = PodInfo.of(make_pod(cpu="1", memory="2Gi"))
    assert least_allocated(pi, empty) == 75
    assert least_allocated(pi, busy) == 25


def test_owner_spread_prefers_nodes_without_siblings() -> None:
    a = NodeInfo.of(make_node("a"))
    b = NodeInfo.of(make_node("b"))
    a.add(PodInfo.of(make_pod("r1", owner="rs-1", node="a")))
    pi = PodInfo.of(make_pod("r2", owner="rs-1"))
    assert owner_spread(pi, a, 1) == 0
    assert owner_spread(pi, b, 1) == 100
    scores = total_scores(pi, [a, b])
    assert scores[1] > scores[0]


def test_feasible_nodes_to_find_follows_kube_scheduler() -> None:
    assert num_feasible_nodes_to_find(50, None) == 50
    assert num_feasible_nodes_to_find(1000, None) == 420  # 50% - 1000/125 = 42%
    assert num_feasible_nodes_to_find(5000, None) == 500  # 10%
    assert num_feasible_nodes_to_find(1000, 100) == 1000
    assert num_feasible_nodes_to_find(200, 10) == 100  # never fewer than 100


# -- queue -------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_queue_backoff_doubles_to_ten_seconds_and_cluster_changes_shorten_it() -> None:
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add("ns/a")
    q.add("ns/a")
    assert q.pop_nowait() == "ns/a"
    assert q.pop_nowait() is None
    delays = [q.failed("ns/a") for _ in range(6)]
    assert delays == [1, 2, 4, 8, 10, 10]
    q.add("ns/a")  # an update while backing off does not jump the queue
    assert q.pop_nowait() is None
    clock.t += 1.5
    q.flush()
    assert q.pop_nowait() is None  # still 10 s to go
    q.cluster_changed()
    assert q.pop_nowait() == "ns/a"
    q.add("ns/b")
    q.remove("ns/b")
    assert q.pop_nowait() is None
