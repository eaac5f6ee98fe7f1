"""Hollow nodes against a real control plane: registration, heartbeats, pods to Running/Ready,
deletion. The CLI runs as users run it (a subprocess); the pod tests run the agent in-process.
Pods are created already bound (spec.nodeName) so that these tests do not depend on a scheduler,
except the last one, which goes through the control plane's own scheduler.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api.coordination_v1 import Lease
from apimachinery.api.core_v1 import Node, Pod
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.errors import ApiError
from nodeagent.hollow import HollowNodes, hollow_configs
from tests.fixtures.apiserver import ControlPlaneProcess
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.integration

WAIT = 60.0


@pytest_asyncio.fixture(loop_scope="session")
async def client(apiserver: ControlPlaneProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as c:
        yield c


async def delete_nodes(client: ApiClient, names: list[str]) -> None:
    for name in names:
        try:
            await client.delete(client.resource(Node), name)
        except ApiError:
            pass


@pytest.fixture
def agent_cli(apiserver: ControlPlaneProcess) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``nodeagent`` processes; each is stopped (its whole session) afterwards."""
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="kl-nodeagent-"))

    def start(*args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from nodeagent.main import main; main()", "--kubeconfig",
             str(apiserver.kubeconfig), "--data-dir", str(tmp / f"a{len(procs)}"), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def test_native_runtime_refuses_count(agent_cli: Callable[..., subprocess.Popen[bytes]]) -> None:
    """--count is for hollow nodes; the native agent refuses it before touching anything."""
    proc = agent_cli("--node-name", "x", "--runtime", "native", "--count", "2")
    _, err = proc.communicate(timeout=30)
    if os.geteuid() != 0:
        assert proc.returncode == 1
    else:
        assert proc.returncode == 2
        assert err.decode().strip() == "nodeagent: --count is for the fake runtime"


async def test_cli_registers_nodes_and_renews_leases(
    client: ApiClient, agent_cli: Callable[..., subprocess.Popen[bytes]]
) -> None:
    prefix = f"h-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-{i}" for i in range(3)]
    agent_cli("--node-name", prefix, "--node-ip", "10.150.0.10", "--runtime", "fake", "--count", "3",
              "--cpu", "8", "--memory", "32Gi", "--pods", "50", "--lease-interval", "0.5")
    try:
        async def registered() -> list[dict[str, Any]] | None:
            items, _ = await client.list_all(client.resource(Node))
            mine = sorted((n for n in items if n["metadata"]["name"].startswith(prefix + "-")),
                          key=lambda n: n["metadata"]["name"])
            return mine if len(mine) == 3 else None

        nodes = await eventually(registered, "three hollow nodes")
        assert [n["metadata"]["name"] for n in nodes] == names
        for i, node in enumerate(nodes):
            name = node["metadata"]["name"]
            labels = node["metadata"]["labels"]
            assert labels["kubernetes.io/hostname"] == name
            assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"] == "amd64"
            st = node["status"]
            assert st["capacity"]["cpu"] == "8" and st["allocatable"]["memory"] == "32Gi"
            assert st["allocatable"]["pods"] == "50"
            assert {"type": "InternalIP", "address": f"10.150.0.{10 + i}"} in st["addresses"]
            assert {"type": "Hostname", "address": name} in st["addresses"]
            info = st["nodeInfo"]
            for field in ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
                          "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
                          "operatingSystem", "architecture"):
                assert info[field], field
            assert info["containerRuntimeVersion"].startswith("fake://")
            conds = {c["type"]: c["status"] for c in st["conditions"]}
            assert conds == {"Ready": "True", "MemoryPressure": "False", "DiskPressure": "False",
                             "PIDPressure": "False"}
            assert all(c.get("lastHeartbeatTime") and c.get("lastTransitionTime") for c in st["conditions"])

        lease_rt = client.resource(Lease)

        async def lease(name: str) -> dict[str, Any] | None:
            try:
                return await client.get(lease_rt, name, "kube-node-lease")
            except ApiError:
                return None

        first = await eventually(lambda: lease(names[1]), "the node's lease")
        assert first["spec"]["holderIdentity"] == names[1]
        assert first["spec"]["leaseDurationSeconds"] == 40
        assert [r["name"] for r in first["metadata"]["ownerReferences"]] == [names[1]]

        async def renewed() -> bool:
            now = await lease(names[1])
            return bool(now and now["spec"]["renewTime"] > first["spec"]["renewTime"])

        await eventually(renewed, "the lease renewTime to advance")
    finally:
        await delete_nodes(client, names)


@pytest_asyncio.fixture(loop_scope="session")
async def hollow(client: ApiClient) -> AsyncIterator[HollowNodes]:
    prefix = f"hp-{uuid.uuid4().hex[:6]}"
    configs = hollow_configs(prefix, 2, node_ip="10.160.3.1")
    for c in configs:
        # Keep other tests' pods off these nodes.
        c.taints = [{"key": "test.kube-lite.io/private", "value": prefix, "effect": "NoSchedule"}]
    agent = HollowNodes(client, configs, lease_interval=2, status_interval=300, stop_delay=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.wait_for(agent.registered.wait(), WAIT)
        yield agent
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await delete_nodes(client, [c.name for c in configs])


def bound_pod(name: str, namespace: str, node: str, containers: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {"nodeName": node, "containers": [
            {"name": f"c{i}", "image": f"registry.local/app{i}:1.0"} for i in range(containers)]},
    }


async def test_pods_bound_to_hollow_nodes_become_running_and_ready(
    client: ApiClient, hollow: HollowNodes, namespace: str
) -> None:
    rt = client.resource(Pod)
    n0, n1 = list(hollow.nodes)
    await client.create(rt, bound_pod("a", namespace, n0, containers=2))
    with_init = bound_pod("b", namespace, n0)
    with_init["spec"]["initContainers"] = [{"name": "setup", "image": "registry.local/setup:1"}]
    await client.create(rt, with_init)
    await client.create(rt, bound_pod("c", namespace, n1))

    async def running(name: str) -> dict[str, Any] | None:
        pod = await client.get(rt, name, namespace)
        return pod if pod["status"].get("phase") == "Running" else None

    pods = {n: await eventually(functools.partial(running, n), f"pod {n} Running") for n in "abc"}
    for pod in pods.values():
        node = hollow.nodes[pod["spec"]["nodeName"]]
        st = pod["status"]
        conds = {c["type"]: c["status"] for c in st["conditions"]}
        assert conds == {"PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}
        assert st["hostIP"] == node.config.internal_ip
        assert st["hostIPs"] == [{"ip": node.config.internal_ip}]
        assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network(node.config.pod_cidr or "")
        assert st["podIPs"] == [{"ip": st["podIP"]}]
        assert st["startTime"]
        statuses = st["containerStatuses"]
        assert [s["name"] for s in statuses] == [c["name"] for c in pod["spec"]["containers"]]
        for s, c in zip(statuses, pod["spec"]["containers"], strict=True):
            assert s["ready"] is True and s["started"] is True and s["restartCount"] == 0
            assert s["state"]["running"]["startedAt"]
            assert s["image"] == c["image"]
            assert s["imageID"].startswith("fake://") and s["containerID"].startswith("fake://")
    [init] = pods["b"]["status"]["initContainerStatuses"]
    assert init["name"] == "setup" and init["state"]["terminated"]["reason"] == "Completed"
    assert init["state"]["terminated"]["exitCode"] == 0
    ips = [p["status"]["podIP"] for p in pods.values()]
    assert len(set(ips)) == 3
    # The node's pod CIDR is what it registered with.
    stored = await client.get(client.resource(Node), n0)
    assert stored["spec"]["podCIDR"] == hollow.nodes[n0].config.pod_cidr


async def test_deleted_pods_are_stopped_then_removed(
    client: ApiClient, hollow: HollowNodes, namespace: str
) -> None:
    rt = client.resource(Pod)
    node = list(hollow.nodes)[1]
    await client.create(rt, bound_pod("doomed", namespace, node))

    async def running(name: str) -> dict[str, Any] | None:
        pod = await client.get(rt, name, namespace)
        return pod if pod["status"].get("phase") == "Running" else None

    doomed_ip = (await eventually(functools.partial(running, "doomed"), "the pod to run"))["status"]["podIP"]
    # A graceful delete (30 s by default) only marks the pod; the agent finishes it.
    answer = await client.delete(rt, "doomed", namespace)
    assert answer["metadata"].get("deletionTimestamp")

    async def gone() -> bool:
        try:
            await client.get(rt, "doomed", namespace)
            return False
        except ApiError as exc:
            return exc.code == 404

    await eventually(gone, "the agent to delete the pod")
    assert hollow.runtime.is_running(answer["metadata"]["uid"]) is False
    # Its IP went back to the node's pool: the next pod there gets it again.
    await client.create(rt, bound_pod("next", namespace, node))
    reborn = await eventually(functools.partial(running, "next"), "the next pod to run")
    assert reborn["status"]["podIP"] == doomed_ip


async def test_scheduled_by_the_control_plane_and_run_by_a_cli_agent(
    client: ApiClient, agent_cli: Callable[..., subprocess.Popen[bytes]], namespace: str
) -> None:
    """End to end: the control plane's scheduler binds, a `nodeagent` process runs the pod."""
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    agent_cli("--node-name", name, "--node-ip", "10.170.0.5", "--runtime", "fake", "--lease-interval", "1")
    try:
        async def node_ready() -> bool:
            try:
                node = await client.get(client.resource(Node), name)
            except ApiError:
                return False
            return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions") or [])

        await eventually(node_ready, "the CLI node to register")
        rt = client.resource(Pod)
        await client.create(rt, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "e2e", "namespace": namespace},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": name},
                     "containers": [{"name": "app", "image": "registry.local/app:1"}]},
        })

        async def running() -> dict[str, Any] | None:
            pod = await client.get(rt, "e2e", namespace)
            return pod if pod["status"].get("phase") == "Running" else None

        pod = await eventually(running, "the pod to be scheduled and run")
        assert pod["spec"]["nodeName"] == name
        assert pod["status"]["hostIP"] == "10.170.0.5"
    finally:
        await delete_nodes(client, [name])
