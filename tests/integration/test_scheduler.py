"""The scheduler against a real control plane, with hollow nodes as the cluster.

Each test gets a cluster of its own inside the shared control plane: hollow nodes labelled and
tainted with a per-test id, a scheduler with a per-test ``schedulerName`` that only sees those
nodes, and pods that name that scheduler and tolerate that taint. So the control plane's own
scheduler leaves these pods alone and other tests' pods stay off these nodes. Every assertion
reads the API (pods, events), never the scheduler's counters.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api.core_v1 import ConfigMap, Event, Node, Pod
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.errors import ApiError
from apimachinery.quantity import milli_value
from controlplane.scheduler import Scheduler
from nodeagent.hollow import HollowNodes
from nodeagent.node import NodeConfig
from tests.fixtures.apiserver import ControlPlaneProcess
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.integration

ISOLATION = "test.kube-lite.io/cluster"
WAIT = 60.0


@pytest_asyncio.fixture(loop_scope="session")
async def client(apiserver: ControlPlaneProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as c:
        yield c


class MiniCluster:
    """Hollow nodes + a scheduler, both private to one test."""

    def __init__(self, client: ApiClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.id = uuid.uuid4().hex[:8]
        self.scheduler_name = f"sched-{self.id}"
        self.pod_rt = client.resource(Pod)
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.node_names: list[str] = []
        self.scheduler: Scheduler | None = None

    async def add_nodes(self, *specs: dict[str, Any]) -> list[str]:
        """Start hollow nodes (each spec: cpu, memory, pods, labels, taints) and wait until registered."""
        configs: list[NodeConfig] = []
        for spec in specs:
            name = f"n-{self.id}-{len(self.node_names) + len(configs)}"
            taints = [{"key": ISOLATION, "value": self.id, "effect": "NoSchedule"}, *spec.get("taints", [])]
            configs.append(NodeConfig(
                name=name, internal_ip=f"10.200.{len(self.node_names) + len(configs)}.1",
                pod_cidr=f"10.201.{len(self.node_names) + len(configs)}.0/24",
                cpu=spec.get("cpu", "4"), memory=spec.get("memory", "16Gi"), pods=spec.get("pods", 110),
                labels={ISOLATION: self.id, **spec.get("labels", {})}, taints=taints,
            ))
        agent = HollowNodes(self.client, configs, lease_interval=2, status_interval=300, run_pods=False)
        self.tasks.append(asyncio.create_task(agent.run(self.stop)))
        await asyncio.wait_for(agent.registered.wait(), WAIT)
        names = [c.name for c in configs]
        self.node_names += names
        return names

    async def start_scheduler(self) -> Scheduler:
        self.scheduler = Scheduler(self.client, name=self.scheduler_name,
                                   node_label_selector=f"{ISOLATION}={self.id}", seed=1)
        self.tasks.append(asyncio.create_task(self.scheduler.run(self.stop)))
        await asyncio.wait_for(self.scheduler.ready.wait(), WAIT)
        return self.scheduler

    async def node_spec_patch(self, name: str, patch: dict[str, Any], subresource: str | None = None) -> None:
        await self.client.patch(self.client.resource(Node), name, patch, patch_type="strategic",
                                subresource=subresource)

    def pod(self, name: str, *, cpu: str | None = None, spec: dict[str, Any] | None = None,
            labels: dict[str, str] | None = None, owner: str | None = None) -> dict[str, Any]:
        container: dict[str, Any] = {"name": "c", "image": "busybox"}
        if cpu:
            container["resources"] = {"requests": {"cpu": cpu}}
        body: dict[str, Any] = {"schedulerName": self.scheduler_name, "containers": [container],
                                "tolerations": [{"key": ISOLATION, "operator": "Exists"}]}
        for k, v in (spec or {}).items():
            if k == "tolerations":
                body["tolerations"] = body["tolerations"] + v
            else:
                body[k] = v
        md: dict[str, Any] = {"name": name, "namespace": self.namespace, "labels": labels or {}}
        if owner:
            md["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner,
                                      "controller": True}]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": body}

    async def create(self, *bodies: dict[str, Any]) -> None:
        await asyncio.gather(*(self.client.create(self.pod_rt, b) for b in bodies))

    async def get(self, name: str) -> dict[str, Any]:
        return await self.client.get(self.pod_rt, name, self.namespace)

    async def pods(self) -> list[dict[str, Any]]:
        items, _ = await self.client.list_all(self.pod_rt, self.namespace)
        return items

    async def wait_bound(self, *names: str) -> dict[str, str]:
        async def check() -> dict[str, str] | None:
            nodes = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in await self.pods()}
            return {n: nodes[n] for n in names} if all(nodes.get(n) for n in names) else None
        result: dict[str, str] = await eventually(check, f"pods {names} to be bound")
        return result

    async def wait_unschedulable(self, name: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            pod = await self.get(name)
            for c in pod["status"].get("conditions") or []:
                if c["type"] == "PodScheduled" and c["status"] == "False":
                    return c
            return None
        result: dict[str, Any] = await eventually(check, f"pod {name} to be marked unschedulable")
        return result

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for name in self.node_names:
            try:
                await self.client.delete(self.client.resource(Node), name)
            except ApiError:
                pass


@pytest_asyncio.fixture(loop_scope="session")
async def cluster(client: ApiClient, namespace: str) -> AsyncIterator[MiniCluster]:
    mc = MiniCluster(client, namespace)
    try:
        yield mc
    finally:
        await mc.close()


async def events_for(client: ApiClient, namespace: str, pod: str) -> list[dict[str, Any]]:
    items, _ = await client.list_all(client.resource(Event), namespace)
    return [e for e in items if e["involvedObject"].get("name") == pod]


# -- binding ---------------------------------------------------------------------------------------


async def test_binds_a_pod_and_records_scheduled(cluster: MiniCluster, client: ApiClient) -> None:
    [node] = await cluster.add_nodes({})
    await cluster.start_scheduler()
    await cluster.create(cluster.pod("web"))
    assert (await cluster.wait_bound("web")) == {"web": node}
    pod = await cluster.get("web")
    assert {"type": "PodScheduled", "status": "True"}.items() <= next(
        c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled").items()

    async def scheduled_event() -> dict[str, Any] | None:
        return next((e for e in await events_for(client, cluster.namespace, "web") if e["reason"] == "Scheduled"), None)

    ev = await eventually(scheduled_event, "the Scheduled event")
    assert ev["type"] == "Normal"
    assert ev["message"] == f"Successfully assigned {cluster.namespace}/web to {node}"
    assert ev["source"]["component"] == cluster.scheduler_name


async def test_pods_of_another_scheduler_are_left_alone(cluster: MiniCluster) -> None:
    await cluster.add_nodes({})
    await cluster.start_scheduler()
    other = cluster.pod("other")
    other["spec"]["schedulerName"] = f"nobody-{cluster.id}"
    await cluster.create(other, cluster.pod("mine"))
    await cluster.wait_bound("mine")
    pod = await cluster.get("other")
    assert not pod["spec"].get("nodeName")
    assert not [c for c in pod["status"].get("conditions") or [] if c["type"] == "PodScheduled"]


# -- one test per filter --------------------------------------------------------------------------


async def test_not_ready_nodes_are_skipped(cluster: MiniCluster) -> None:
    good, sick = await cluster.add_nodes({}, {})
    await cluster.node_spec_patch(sick, {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "test"}]}}, "status")
    await cluster.start_scheduler()
    await cluster.create(*(cluster.pod(f"p{i}") for i in range(4)))
    assert set((await cluster.wait_bound(*(f"p{i}" for i in range(4)))).values()) == {good}


async def test_unschedulable_nodes_are_skipped(cluster: MiniCluster) -> None:
    good, cordoned = await cluster.add_nodes({}, {})
    await cluster.node_spec_patch(cordoned, {"spec": {"unschedulable": True}})
    await cluster.start_scheduler()
    await cluster.create(*(cluster.pod(f"p{i}") for i in range(4)))
    assert set((await cluster.wait_bound(*(f"p{i}" for i in range(4)))).values()) == {good}
    # Once it is the only option, the message names it.
    await cluster.node_spec_patch(good, {"spec": {"unschedulable": True}})
    await eventually(lambda: _node_cordoned(cluster, good), "the scheduler to see the cordon")
    await cluster.create(cluster.pod("late"))
    cond = await cluster.wait_unschedulable("late")
    assert cond["message"] == "0/2 nodes are available: 2 node(s) were unschedulable."


async def _node_cordoned(cluster: MiniCluster, name: str) -> bool:
    assert cluster.scheduler is not None
    ni = cluster.scheduler.cache.nodes.get(name)
    return ni is not None and ni.unschedulable


async def test_cpu_requests_fit_against_allocatable_and_bound_pods(cluster: MiniCluster) -> None:
    await cluster.add_nodes({"cpu": "1"})
    await cluster.start_scheduler()
    await cluster.create(cluster.pod("a", cpu="600m"))
    await cluster.wait_bound("a")
    await cluster.create(cluster.pod("b", cpu="600m"))
    cond = await cluster.wait_unschedulable("b")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == "0/1 nodes are available: 1 Insufficient cpu."
    await cluster.create(cluster.pod("c", cpu="400m"))
    await cluster.wait_bound("c")


async def test_pod_count_capacity(cluster: MiniCluster) -> None:
    await cluster.add_nodes({"pods": 2})
    await cluster.start_scheduler()
    await cluster.create(cluster.pod("a"), cluster.pod("b"))
    await cluster.wait_bound("a", "b")
    await cluster.create(cluster.pod("c"))
    cond = await cluster.wait_unschedulable("c")
    assert cond["message"] == "0/1 nodes are available: 1 Too many pods."


async def test_node_selector(cluster: MiniCluster) -> None:
    _, ssd = await cluster.add_nodes({}, {"labels": {"disk": "ssd"}})
    await cluster.start_scheduler()
    await cluster.create(*(cluster.pod(f"p{i}", spec={"nodeSelector": {"disk": "ssd"}}) for i in range(3)))
    assert set((await cluster.wait_bound("p0", "p1", "p2")).values()) == {ssd}
    await cluster.create(cluster.pod("nvme", spec={"nodeSelector": {"disk": "nvme"}}))
    cond = await cluster.wait_unschedulable("nvme")
    assert cond["message"] == "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."


async def test_required_node_affinity(cluster: MiniCluster) -> None:
    a, b, c = await cluster.add_nodes({"labels": {"zone": "a", "gen": "3"}}, {"labels": {"zone": "b", "gen": "5"}}, {})

    def affinity(*terms: dict[str, Any]) -> dict[str, Any]:
        return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": list(terms)}}}}

    await cluster.start_scheduler()
    await cluster.create(
        cluster.pod("in", spec=affinity({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]})),
        cluster.pod("gt", spec=affinity({"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]})),
        cluster.pod("lt", spec=affinity({"matchExpressions": [{"key": "gen", "operator": "Lt", "values": ["4"]}]})),
        cluster.pod("absent", spec=affinity({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]})),
        cluster.pod("field", spec=affinity(
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["nowhere"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [a]}]})),
        cluster.pod("notin", spec=affinity({"matchExpressions": [
            {"key": "zone", "operator": "NotIn", "values": ["a"]}, {"key": "zone", "operator": "Exists"}]})),
    )
    bound = await cluster.wait_bound("in", "gt", "lt", "absent", "field", "notin")
    assert bound == {"in": b, "gt": b, "lt": a, "absent": c, "field": a, "notin": b}


async def test_taints_and_tolerations(cluster: MiniCluster) -> None:
    plain, gpu = await cluster.add_nodes(
        {"cpu": "1"}, {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]})
    await cluster.start_scheduler()
    tolerate = {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}
    await cluster.create(*(cluster.pod(f"plain{i}", cpu="100m") for i in range(4)))
    assert set((await cluster.wait_bound(*(f"plain{i}" for i in range(4)))).values()) == {plain}
    # Too big for the plain node: only the tainted node has room, and only a tolerating pod may go.
    await cluster.create(cluster.pod("big", cpu="2"), cluster.pod("big-tolerant", cpu="2", spec=tolerate))
    assert (await cluster.wait_bound("big-tolerant")) == {"big-tolerant": gpu}
    cond = await cluster.wait_unschedulable("big")
    assert cond["message"] == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}.")


async def test_host_port_conflicts(cluster: MiniCluster) -> None:
    await cluster.add_nodes({}, {})
    await cluster.start_scheduler()
    ports = {"containers": [{"name": "c", "image": "busybox",
                             "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}]}]}
    await cluster.create(*(cluster.pod(f"web{i}", spec=ports) for i in range(3)))

    async def decided() -> list[dict[str, Any]] | None:
        pods = await cluster.pods()
        done = [p for p in pods if p["spec"].get("nodeName") or any(
            c["type"] == "PodScheduled" and c["status"] == "False" for c in p["status"].get("conditions") or [])]
        return pods if len(done) == 3 else None

    pods = await eventually(decided, "all three pods to be decided")
    bound = [p["spec"]["nodeName"] for p in pods if p["spec"].get("nodeName")]
    assert len(bound) == 2 and len(set(bound)) == 2
    [pending] = [p for p in pods if not p["spec"].get("nodeName")]
    [cond] = [c for c in pending["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert cond["message"] == "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    # UDP on the same port does not conflict.
    udp = {"containers": [{"name": "c", "image": "busybox",
                           "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]}]}
    await cluster.create(cluster.pod("dns", spec=udp))
    await cluster.wait_bound("dns")


async def test_pod_anti_affinity_by_hostname(cluster: MiniCluster) -> None:
    await cluster.add_nodes({}, {}, {})
    await cluster.start_scheduler()
    anti = {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}}
    await cluster.create(*(cluster.pod(f"db{i}", labels={"app": "db"}, spec=anti) for i in range(3)))
    bound = await cluster.wait_bound("db0", "db1", "db2")
    assert len(set(bound.values())) == 3
    await cluster.create(cluster.pod("db3", labels={"app": "db"}, spec=anti))
    cond = await cluster.wait_unschedulable("db3")
    # Each node holds a db pod: the new pod's own terms and the existing pods' terms both refuse.
    assert cond["message"] == "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules."
    # Pods the selector does not match are not affected.
    await cluster.create(cluster.pod("web", labels={"app": "web"}))
    await cluster.wait_bound("web")


# -- scoring ---------------------------------------------------------------------------------------


async def test_replicas_of_one_owner_spread_across_nodes(cluster: MiniCluster) -> None:
    nodes = await cluster.add_nodes({}, {}, {}, {})
    await cluster.start_scheduler()
    # The owner must exist (the garbage collector removes orphans of a missing owner); a ConfigMap
    # stands in for a ReplicaSet so that no workload controller adopts or manages these pods.
    cm = await cluster.client.create(cluster.client.resource(ConfigMap), {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner", "namespace": cluster.namespace}})
    owner = cm["metadata"]["uid"]
    await cluster.create(*(cluster.pod(f"r{i}", owner=owner) for i in range(8)))
    bound = await cluster.wait_bound(*(f"r{i}" for i in range(8)))
    assert Counter(bound.values()) == dict.fromkeys(nodes, 2)


async def test_least_allocated_prefers_the_emptier_node(cluster: MiniCluster) -> None:
    busy, idle = await cluster.add_nodes({"cpu": "4"}, {"cpu": "4"})
    await cluster.start_scheduler()
    filler = cluster.pod("filler", cpu="3", spec={"nodeSelector": {"kubernetes.io/hostname": busy}})
    await cluster.create(filler)
    await cluster.wait_bound("filler")
    await cluster.create(*(cluster.pod(f"p{i}", cpu="100m") for i in range(3)))
    assert set((await cluster.wait_bound("p0", "p1", "p2")).values()) == {idle}


# -- concurrency -----------------------------------------------------------------------------------


async def test_never_overcommits_under_concurrent_pods(cluster: MiniCluster) -> None:
    [node] = await cluster.add_nodes({"cpu": "2"})
    await cluster.start_scheduler()
    # 20 pods of 300m compete for 2 CPUs: exactly 6 fit (1800m); binds run in parallel.
    await cluster.create(*(cluster.pod(f"c{i:02d}", cpu="300m") for i in range(20)))

    async def all_decided() -> list[dict[str, Any]] | None:
        pods = await cluster.pods()
        undecided = [p for p in pods if not p["spec"].get("nodeName") and not any(
            c["type"] == "PodScheduled" and c["status"] == "False" for c in p["status"].get("conditions") or [])]
        return None if undecided else pods

    pods = await eventually(all_decided, "every pod to be bound or marked unschedulable")
    bound = [p for p in pods if p["spec"].get("nodeName") == node]
    used = sum(milli_value(p["spec"]["containers"][0]["resources"]["requests"]["cpu"]) for p in bound)
    assert len(bound) == 6
    assert used <= 2000
    for p in pods:
        if not p["spec"].get("nodeName"):
            [cond] = [c for c in p["status"]["conditions"] if c["type"] == "PodScheduled"]
            assert cond["message"] == "0/1 nodes are available: 1 Insufficient cpu."
    # Deleting a bound pod makes room for exactly one more (the cluster change retries the rest).
    await cluster.client.delete(cluster.pod_rt, bound[0]["metadata"]["name"], cluster.namespace,
                                grace_period_seconds=0)

    async def six_again() -> bool:
        pods = await cluster.pods()
        return sum(1 for p in pods if p["spec"].get("nodeName")) == 6

    await eventually(six_again, "a pending pod to take the freed room")
    pods = await cluster.pods()
    assert sum(milli_value(p["spec"]["containers"][0]["resources"]["requests"]["cpu"])
               for p in pods if p["spec"].get("nodeName")) <= 2000


# -- unschedulable, then scheduled -----------------------------------------------------------------


async def test_unschedulable_pod_gets_condition_and_event_then_lands_on_a_new_node(
    cluster: MiniCluster, client: ApiClient
) -> None:
    await cluster.add_nodes({})
    await cluster.start_scheduler()
    await cluster.create(cluster.pod("waiting", spec={"nodeSelector": {"pool": "late"}}))
    cond = await cluster.wait_unschedulable("waiting")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    assert cond.get("lastTransitionTime")

    async def failed_event() -> dict[str, Any] | None:
        return next((e for e in await events_for(client, cluster.namespace, "waiting")
                     if e["reason"] == "FailedScheduling"), None)

    ev = await eventually(failed_event, "the FailedScheduling event")
    assert ev["type"] == "Warning"
    assert ev["message"] == cond["message"]
    assert ev["source"]["component"] == cluster.scheduler_name
    assert ev["involvedObject"]["kind"] == "Pod" and ev["count"] >= 1
    assert ev["firstTimestamp"] and ev["lastTimestamp"]

    [late] = await cluster.add_nodes({"labels": {"pool": "late"}})
    assert (await cluster.wait_bound("waiting")) == {"waiting": late}
    pod = await cluster.get("waiting")
    [cond] = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert cond["status"] == "True"
