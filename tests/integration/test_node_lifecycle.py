"""Node lifecycle and node IPAM in a real control plane with a 3 s node grace period.

The test plays the node agent: it creates the Node with a Ready condition, renews the node's
Lease in kube-node-lease while the node is "up", and simply stops to make it "go away".
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api.coordination_v1 import Lease
from apimachinery.api.core_v1 import Event, Node, Pod
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.meta import now, now_micro
from apimachinery.scheme import default_scheme
from tests.fixtures.apiserver import ControlPlaneProcess, running_control_plane
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.integration

NODE = default_scheme().for_model(Node)
POD = default_scheme().for_model(Pod)
LEASE = default_scheme().for_model(Lease)
EVENT = default_scheme().for_model(Event)

GRACE = 3
CLUSTER_CIDR = "10.123.0.0/16"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"

@pytest.fixture(scope="module")
def cp() -> Iterator[ControlPlaneProcess]:
    with running_control_plane("--node-monitor-grace-period", str(GRACE), "--leader-elect", "false",
                               "--cluster-cidr", CLUSTER_CIDR, "--node-cidr-mask-size", "24",
                               prefix="kl-nodelc-") as proc:
        yield proc


@pytest_asyncio.fixture(loop_scope="session")
async def client(cp: ControlPlaneProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(cp.kubeconfig)) as c:
        yield c


def ready_condition(status: str, heartbeat: str) -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": "KubeletReady" if status == "True" else "KubeletNotReady",
            "message": "kubelet is posting ready status", "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": heartbeat}


class FakeKubelet:
    """Posts a node's status and renews its Lease, until stopped."""

    def __init__(self, client: ApiClient, name: str) -> None:
        self.client = client
        self.name = name
        self._task: asyncio.Task[None] | None = None

    async def register(self) -> None:
        stamp = now()
        await self.client.create(NODE, {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name},
            "status": {"conditions": [
                ready_condition("True", stamp),
                {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": stamp, "lastTransitionTime": stamp},
            ]},
        })
        await self.client.create(LEASE, {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.name},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": now_micro()},
        }, "kube-node-lease")

    async def post_ready(self, status: str) -> None:
        node = await self.client.get(NODE, self.name)
        stamp = now()
        node["status"]["conditions"] = [c for c in node["status"]["conditions"] if c["type"] != "Ready"]
        node["status"]["conditions"].append(ready_condition(status, stamp))
        await self.client.replace_status(NODE, node)

    async def renew(self) -> None:
        lease = await self.client.get(LEASE, self.name, "kube-node-lease")
        lease["spec"]["renewTime"] = now_micro()
        await self.client.replace(LEASE, lease, "kube-node-lease")

    def start(self) -> None:
        async def loop() -> None:
            while True:
                await self.renew()
                await asyncio.sleep(0.5)

        self._task = asyncio.create_task(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


@contextlib.asynccontextmanager
async def kubelet(client: ApiClient, name: str) -> AsyncIterator[FakeKubelet]:
    k = FakeKubelet(client, name)
    await k.register()
    k.start()
    try:
        yield k
    finally:
        await k.stop()


def bound_pod(name: str, node: str, tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": node, "containers": [{"name": "app", "image": "busybox"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def taint_keys(node: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}


async def events_for(client: ApiClient, ns: str, name: str, reason: str) -> list[dict[str, Any]]:
    listed = await client.list(EVENT, ns)
    return [e for e in listed["items"] if e["involvedObject"].get("name") == name and e["reason"] == reason]


async def test_silent_node_becomes_unknown_is_tainted_evicts_and_recovers(client: ApiClient) -> None:
    name = f"node-{uuid.uuid4().hex[:6]}"
    ns = "default"
    suffix = uuid.uuid4().hex[:5]
    short, default, forever = f"short-{suffix}", f"default-{suffix}", f"forever-{suffix}"
    async with kubelet(client, name) as k:
        await client.create(POD, bound_pod(short, name, [
            {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2},
            {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2},
        ]), ns)
        created = await client.create(POD, bound_pod(default, name), ns)
        # The API server gave it the two 300 s tolerations.
        assert {(t["key"], t.get("tolerationSeconds")) for t in created["spec"]["tolerations"]} == {
            (UNREACHABLE, 300), (NOT_READY, 300),
        }
        await client.create(POD, bound_pod(forever, name, [{"operator": "Exists"}]), ns)
        # The kubelet reported it Ready.
        pod = await client.get(POD, forever, ns)
        pod["status"] = {"phase": "Running", "podIP": "10.123.9.9",
                         "conditions": [{"type": "Ready", "status": "True"}]}
        await client.replace_status(POD, pod, ns)

        # The Lease alone keeps the node healthy, well past the grace period: the Ready
        # condition's heartbeat never changes here.
        for _ in range(int(GRACE * 2 / 0.5)):
            await asyncio.sleep(0.5)
            node = await client.get(NODE, name)
            assert next(c for c in node["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"
            assert not taint_keys(node)

        await k.stop()

        async def unknown() -> dict[str, Any] | None:
            node = await client.get(NODE, name)
            conds = {c["type"]: c for c in node["status"]["conditions"]}
            return node if conds["Ready"]["status"] == "Unknown" and (UNREACHABLE, "NoExecute") in taint_keys(node) else None

        node = await eventually(unknown)
        conds = {c["type"]: c for c in node["status"]["conditions"]}
        assert conds["Ready"]["reason"] == "NodeStatusUnknown"
        assert conds["Ready"]["message"] == "Kubelet stopped posting node status."
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure"):
            assert conds[t]["status"] == "Unknown"
        assert conds["DiskPressure"]["reason"] == "NodeStatusNeverUpdated"
        [taint] = node["spec"]["taints"]
        assert taint["timeAdded"]

        async def short_evicted() -> bool:
            pod = await client.get(POD, short, ns)
            return bool(pod["metadata"].get("deletionTimestamp"))

        await eventually(short_evicted)
        # The pods tolerating the taint longer (300 s) or forever are still there, not deleting.
        for other in (default, forever):
            pod = await client.get(POD, other, ns)
            assert "deletionTimestamp" not in pod["metadata"], other
        # Pods on the silent node are not Ready any more.
        pod = await client.get(POD, forever, ns)
        assert [c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready"] == ["False"]
        assert await eventually(lambda: events_for(client, ns, short, "TaintManagerEviction"))
        assert await eventually(lambda: events_for(client, "default", name, "NodeNotReady"))

        # The node comes back: Ready again, taint gone.
        await k.post_ready("True")
        k.start()

        async def recovered() -> bool:
            node = await client.get(NODE, name)
            return not taint_keys(node)

        await eventually(recovered)
        node = await client.get(NODE, name)
        assert next(c for c in node["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"
    for pod in (short, default, forever):
        await client.delete(POD, pod, ns, grace_period_seconds=0)


async def test_not_ready_taint_and_untolerated_taint_evicts_at_once(client: ApiClient) -> None:
    name = f"node-{uuid.uuid4().hex[:6]}"
    ns = "default"
    suffix = uuid.uuid4().hex[:5]
    plain, tolerant = f"plain-{suffix}", f"tolerant-{suffix}"
    async with kubelet(client, name) as k:
        # The kubelet says NotReady: the not-ready taint, and only it.
        await k.post_ready("False")

        async def taints_are(want: set[tuple[str, str]]) -> bool:
            return taint_keys(await client.get(NODE, name)) == want

        await eventually(lambda: taints_are({(NOT_READY, "NoExecute")}))
        await k.post_ready("True")
        await eventually(lambda: taints_are(set()))

        await client.create(POD, bound_pod(plain, name), ns)
        await client.create(POD, bound_pod(tolerant, name, [
            {"key": "example.com/drain", "operator": "Exists", "effect": "NoExecute"},
        ]), ns)
        # An administrator's NoExecute taint: pods that do not tolerate it go at once.
        await client.patch(NODE, name, {"spec": {"taints": [{"key": "example.com/drain", "effect": "NoExecute"}]}})

        async def plain_evicted() -> bool:
            pod = await client.get(POD, plain, ns)
            return bool(pod["metadata"].get("deletionTimestamp"))

        await eventually(plain_evicted)
        pod = await client.get(POD, tolerant, ns)
        assert "deletionTimestamp" not in pod["metadata"]
    for pod_name in (plain, tolerant):
        await client.delete(POD, pod_name, ns, grace_period_seconds=0)


async def test_pod_cidrs_are_unique_released_and_rebuilt_after_restart(client: ApiClient, cp: ControlPlaneProcess) -> None:
    prefix = f"ipam-{uuid.uuid4().hex[:5]}"
    names = [f"{prefix}-{i}" for i in range(6)]
    await asyncio.gather(*(
        client.create(NODE, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}) for n in names
    ))

    async def all_cidrs(node_names: list[str]) -> dict[str, str] | None:
        out = {}
        for n in node_names:
            node = await client.get(NODE, n)
            cidr = node["spec"].get("podCIDR")
            if not cidr:
                return None
            assert node["spec"]["podCIDRs"] == [cidr]
            out[n] = cidr
        return out

    cidrs = await eventually(lambda: all_cidrs(names))
    cluster = ipaddress.ip_network(CLUSTER_CIDR)
    for c in cidrs.values():
        net = ipaddress.ip_network(c)
        assert net.prefixlen == 24 and net.subnet_of(cluster)  # type: ignore[arg-type]

    async def every_cidr() -> list[str]:
        listed = await client.list(NODE)
        return [n["spec"]["podCIDR"] for n in listed["items"] if n["spec"].get("podCIDR")]

    used = await every_cidr()
    assert len(used) == len(set(used))

    # A deleted node gives its block back; a new node still gets a block nobody has.
    await client.delete(NODE, names[0])
    later = f"{prefix}-later"
    await client.create(NODE, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": later}})
    await eventually(lambda: all_cidrs([later]))
    used = await every_cidr()
    assert len(used) == len(set(used))

    # After a restart the allocator rebuilds from the nodes: no block is handed out twice.
    cp.stop()
    cp.start()
    restarted = [f"{prefix}-r{i}" for i in range(3)]
    async with ApiClient(load_kubeconfig(cp.kubeconfig)) as fresh:
        await asyncio.gather(*(
            fresh.create(NODE, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}) for n in restarted
        ))

        async def fresh_cidrs() -> list[str] | None:
            listed = await fresh.list(NODE)
            mine = [n for n in listed["items"] if n["metadata"]["name"].startswith(prefix)]
            got = [n["spec"].get("podCIDR") for n in mine]
            return [c for c in got if c] if all(got) else None

        used = await eventually(fresh_cidrs)
    assert len(used) == len(names) - 1 + 1 + len(restarted)
    assert len(used) == len(set(used))


# -- the rules behind the controllers, without a control plane ----------------------------------


def test_eviction_delay_follows_kubernetes_toleration_rules() -> None:
    from apimachinery.api.core_v1 import Taint, Toleration
    from controlplane.controllers.nodelifecycle import min_toleration_seconds

    unreachable = Taint(key=UNREACHABLE, effect="NoExecute")
    drain = Taint(key="example.com/drain", value="yes", effect="NoExecute")
    t300 = Toleration(key=UNREACHABLE, operator="Exists", effect="NoExecute", toleration_seconds=300)
    t5 = Toleration(key="example.com/drain", operator="Equal", value="yes", effect="NoExecute", toleration_seconds=5)
    forever = Toleration(operator="Exists")
    assert min_toleration_seconds([unreachable], []) == 0  # not tolerated: at once
    assert min_toleration_seconds([unreachable], [t300]) == 300
    assert min_toleration_seconds([unreachable, drain], [t300, t5]) == 5  # the smallest wins
    assert min_toleration_seconds([unreachable, drain], [t300]) == 0  # one taint untolerated
    assert min_toleration_seconds([unreachable], [forever]) is None  # no seconds: forever
    # The first matching toleration is the one used, as in Kubernetes.
    assert min_toleration_seconds([unreachable], [forever, t300]) is None
    negative = Toleration(key=UNREACHABLE, operator="Exists", toleration_seconds=-4)
    assert min_toleration_seconds([unreachable], [negative]) == 0
    wrong_value = Toleration(key="example.com/drain", operator="Equal", value="no", effect="NoExecute")
    assert min_toleration_seconds([drain], [wrong_value]) == 0


def test_cidr_set_hands_out_each_block_once() -> None:
    from controlplane.controllers.nodeipam import CIDRSet

    s = CIDRSet("10.9.0.0/22", 24)
    s.occupy("10.9.1.0/24")  # already on a node
    s.occupy("192.168.0.0/24")  # not ours: ignored
    got = [s.allocate() for _ in range(3)]
    assert got == ["10.9.0.0/24", "10.9.2.0/24", "10.9.3.0/24"]
    assert s.allocate() is None  # exhausted
    s.release("10.9.2.0/24")
    assert s.allocate() == "10.9.2.0/24"
    with pytest.raises(ValueError):
        CIDRSet("10.9.0.0/16", 8)
