"""Failover, checked from the API: a standby controller manager takes over from a killed leader
without double actions, and pods of a node whose heartbeat stops are recreated elsewhere."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fixtures.apiserver import ControlPlaneProcess, RawApi, raw_api, running_control_plane
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.integration

LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager"


class Processes:
    """Subprocesses this test started, each in its own session; all ended afterwards."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs[name] = proc
        return proc

    def kill9(self, name: str) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    p = Processes(tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


@pytest.fixture(scope="module")
def api_only_cp() -> Iterator[ControlPlaneProcess]:
    with running_control_plane("apiserver", prefix="kl-failover-") as cp:
        yield cp


@pytest_asyncio.fixture(loop_scope="session")
async def fapi(api_only_cp: ControlPlaneProcess) -> AsyncIterator[RawApi]:
    async with raw_api(api_only_cp) as a:
        yield a


def replicaset(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"rs": name}},
                     "template": {"metadata": {"labels": {"rs": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


class PodCounter:
    """Watches pods of one ReplicaSet and remembers the most that were ever alive at once."""

    def __init__(self, api: RawApi, namespace: str, selector: str) -> None:
        self.api = api
        self.path = f"/api/v1/namespaces/{namespace}/pods"
        self.selector = selector
        self.alive: dict[str, bool] = {}
        self.max_alive = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.api.token}"}
        params = {"watch": "1", "labelSelector": self.selector}
        async with self.api.session.get(self.api.cp.url + self.path, params=params, headers=headers) as r:
            import json

            async for line in r.content:
                ev = json.loads(line)
                obj = ev["object"]
                name = obj["metadata"]["name"]
                if ev["type"] == "DELETED" or obj["metadata"].get("deletionTimestamp"):
                    self.alive.pop(name, None)
                else:
                    self.alive[name] = True
                self.max_alive = max(self.max_alive, len(self.alive))

    def __enter__(self) -> PodCounter:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def lease_holder(api: RawApi) -> str | None:
    r = await api.get(LEASE)
    return (r.body.get("spec") or {}).get("holderIdentity") if r.status == 200 else None


async def test_standby_takes_over_without_double_action(
    fapi: RawApi, api_only_cp: ControlPlaneProcess, procs: Processes
) -> None:
    timing = ["--leader-elect-lease-duration", "3", "--leader-elect-renew-deadline", "2",
              "--leader-elect-retry-period", "0.5", "--controllers", "replicaset"]
    for who in ("cm-a", "cm-b"):
        procs.start(who, "controlplane.main", "controllers", "--kubeconfig", str(api_only_cp.kubeconfig),
                    "--leader-elect-identity", who, *timing)
    leader = await eventually(lambda: lease_holder(fapi), "a controller manager to lead")
    assert leader in ("cm-a", "cm-b")
    standby = "cm-b" if leader == "cm-a" else "cm-a"

    ns = f"fo-{uuid.uuid4().hex[:8]}"
    await fapi.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    rs_path = f"/apis/apps/v1/namespaces/{ns}/replicasets"
    with PodCounter(fapi, ns, "rs=web") as counter:
        assert (await fapi.post(rs_path, replicaset("web", 3))).status == 201

        async def count_is(n: int) -> bool:
            return len(counter.alive) == n

        await eventually(lambda: count_is(3), "3 pods from the leader")
        procs.kill9(leader)
        new_leader = await eventually(
            lambda: _holder_is(fapi, standby), f"{standby} to take the lease", timeout=30)
        assert new_leader
        r = await fapi.patch(f"{rs_path}/web", {"spec": {"replicas": 5}}, "application/merge-patch+json")
        assert r.status == 200
        await eventually(lambda: count_is(5), "5 pods from the new leader")
        await asyncio.sleep(1.0)  # give a would-be second actor time to overshoot
        assert counter.max_alive == 5, f"saw {counter.max_alive} pods alive at once"
    pods = (await fapi.get(f"/api/v1/namespaces/{ns}/pods")).body["items"]
    assert len(pods) == 5


async def _holder_is(api: RawApi, who: str) -> bool:
    return await lease_holder(api) == who


@pytest.fixture(scope="module")
def fast_nodes_cp() -> Iterator[ControlPlaneProcess]:
    with running_control_plane("--node-monitor-grace-period", "3", "--default-toleration-seconds", "2",
                               "--leader-elect", "false", prefix="kl-nodefail-") as cp:
        yield cp


async def test_pods_of_a_dead_node_are_recreated_elsewhere(fast_nodes_cp: ControlPlaneProcess, procs: Processes,
                                                          tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    nodes = [f"nf-{tag}-a", f"nf-{tag}-b"]
    for i, node in enumerate(nodes):
        procs.start(node, "nodeagent.main", "--kubeconfig", str(fast_nodes_cp.kubeconfig), "--node-name", node,
                    "--node-ip", f"10.{70 + i}.0.1", "--data-dir", str(tmp_path / node), "--runtime", "fake",
                    "--lease-interval", "1", "--status-interval", "1", "--label", f"failover={tag}")
    async with raw_api(fast_nodes_cp) as api:
        async def both_ready() -> bool:
            r = await api.get("/api/v1/nodes", params={"labelSelector": f"failover={tag}"})
            ready = [n for n in r.body["items"]
                     if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))]
            return len(ready) == 2

        await eventually(both_ready, "two hollow nodes Ready")
        ns = f"nf-{tag}"
        await api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        rs = replicaset("web", 4)
        rs["spec"]["template"]["spec"]["nodeSelector"] = {"failover": tag}
        assert (await api.post(f"/apis/apps/v1/namespaces/{ns}/replicasets", rs)).status == 201

        async def running_on() -> dict[str, int] | None:
            items = (await api.get(f"/api/v1/namespaces/{ns}/pods")).body["items"]
            live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
            if len(live) != 4 or any(p.get("status", {}).get("phase") != "Running" for p in live):
                return None
            spread: dict[str, int] = {}
            for p in live:
                spread[p["spec"]["nodeName"]] = spread.get(p["spec"]["nodeName"], 0) + 1
            return spread

        spread = await eventually(running_on, "4 pods Running")
        victim = max(spread, key=lambda n: spread[n])
        survivor = next(n for n in nodes if n != victim)
        procs.kill9(victim)

        async def all_on_survivor() -> dict[str, int] | None:
            now = await running_on()
            return now if now == {survivor: 4} else None

        await eventually(all_on_survivor, f"the 4 pods Running on {survivor}", timeout=60)
        node = (await api.get(f"/api/v1/nodes/{victim}")).body
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "Unknown"
        assert any(t["key"] == "node.kubernetes.io/unreachable" for t in node["spec"].get("taints", []))
