"""``kubectl top pod|node`` (the real kubectl and kubectl-lite) against a real native agent.

The API server serves metrics.k8s.io by asking the agent's ``/stats/summary`` over the pinned,
mutually authenticated channel of logs and exec; the agent reads its pods' cgroups. One pod
burns CPU, another fills a memory-backed emptyDir; both must show. A Node whose agent cannot be
reached is left out of the answer, as metrics-server leaves it out (kubectl then shows the
Node as ``<unknown>``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.agentapi import SERVING_CERT_ANNOTATION
from apimachinery.api.core_v1 import Node, Pod
from apimachinery.client import ApiClient
from apimachinery.errors import ApiError
from apimachinery.quantity import milli_value, value
from tests.e2e import test_logs_exec as logs
from tests.e2e import test_node_agent as base
from tests.e2e.conftest import running_agent
from tests.e2e.test_logs_exec import lite
from tests.e2e.test_node_agent import Agent, busybox, get_pod, pod_manifest
from tests.fixtures.apiserver import ControlPlaneProcess
from tests.fixtures.kubectl import Kubectl
from tests.fixtures.wait import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the native runtime uses namespaces, mounts and cgroups"),
]

WAIT = 60.0
MI = 1024 * 1024


class TopAgent(Agent):
    def command(self) -> list[str]:
        return [*super().command(), "--agent-port", "0"]


@pytest.fixture(scope="module")
def agent(apiserver: ControlPlaneProcess) -> Iterator[Agent]:
    with running_agent(lambda tmp: TopAgent(apiserver, tmp), "kl-e2e-top-") as a:
        yield a


# The logs/exec module's fixtures, resolved against this module's agent: a client once the node
# published its serving certificate, the base module's namespace, and a real kubectl in it.
client = logs.client
ns = base.ns
kctl = logs.kctl


async def run_pod(client: ApiClient, ns: str, agent: Agent, name: str, container: dict[str, Any], **spec: Any) -> None:
    await client.create(client.resource(Pod), pod_manifest(name, agent.node, [container], **spec), ns)

    async def running() -> bool:
        return bool((await get_pod(client, ns, name))["status"].get("phase") == "Running")

    try:
        await eventually(running, f"pod {name} running", WAIT)
    except AssertionError as e:
        raise AssertionError(f"{e}\nagent log:\n{agent.log_tail()}") from None


def table(text: str) -> dict[str, list[str]]:
    """kubectl's table, rows by their first column (header included)."""
    return {cols[0]: cols for cols in (line.split() for line in text.splitlines()) if cols}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def pods(client: ApiClient, ns: str, agent: Agent) -> AsyncIterator[None]:
    await run_pod(client, ns, agent, "burner", busybox("main", "while :; do :; done"))
    hog = busybox("main", "dd if=/dev/zero of=/cache/fill bs=1M count=40 && exec sleep 3600",
                  volumeMounts=[{"name": "cache", "mountPath": "/cache"}])
    await run_pod(client, ns, agent, "hog", hog, volumes=[{"name": "cache", "emptyDir": {"medium": "Memory"}}])
    yield
    for name in ("burner", "hog"):
        with contextlib.suppress(ApiError):
            await client.delete(client.resource(Pod), name, ns, grace_period_seconds=0)


def _usage_seen(out: str) -> dict[str, list[str]] | None:
    rows = table(out)
    burner, hog = rows.get("burner"), rows.get("hog")
    if burner is None or hog is None:
        return None
    if milli_value(burner[1]) >= 100 and value(hog[2]) >= 30 * MI:
        return rows
    return None


@pytest.mark.asyncio(loop_scope="session")
async def test_real_kubectl_top_pod_shows_cpu_and_memory(kctl: Kubectl, pods: None, agent: Agent) -> None:
    async def seen() -> dict[str, list[str]] | None:
        res = await asyncio.to_thread(kctl.run, "top", "pod")
        return _usage_seen(res.stdout) if res.ok else None

    try:
        rows = await eventually(seen, "kubectl top pod: the burner >= 100m CPU, the hog >= 30Mi", WAIT)
    except AssertionError as e:
        res = kctl.run("top", "pod")
        raise AssertionError(f"{e}\n{res}\nagent log:\n{agent.log_tail()}") from None
    assert rows["NAME"] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    # One pod by name, per container; the API underneath is metrics-server's.
    assert table(kctl.ok("top", "pod", "burner", "--containers"))["burner"][1] == "main"
    doc = json.loads(kctl.ok("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{kctl.namespace}/pods/hog"))
    assert doc["kind"] == "PodMetrics" and doc["metadata"]["labels"] == {"app": "hog"}
    assert [c["name"] for c in doc["containers"]] == ["main"] and doc["window"].endswith("s")
    missing = kctl.fail("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{kctl.namespace}/pods/nosuchpod")
    assert "NotFound" in missing.stderr or "not found" in missing.stderr


@pytest.mark.asyncio(loop_scope="session")
async def test_kubectl_lite_top_pod(kctl: Kubectl, pods: None) -> None:
    async def seen() -> dict[str, list[str]] | None:
        res = await asyncio.to_thread(lite, kctl, "top", "pods")
        return _usage_seen(res.stdout) if res.returncode == 0 else None

    await eventually(seen, "kubectl-lite top pods: the burner >= 100m CPU, the hog >= 30Mi", WAIT)
    res = lite(kctl, "top", "pods", "-l", "app=hog")
    assert res.returncode == 0 and list(table(res.stdout)) == ["NAME", "hog"], res


@pytest.mark.asyncio(loop_scope="session")
async def test_top_node_shows_the_node_and_leaves_out_an_unreachable_one(
        client: ApiClient, kctl: Kubectl, agent: Agent, pods: None) -> None:
    # A Node that names an agent nobody answers for (a port just closed): left out of the
    # metrics, no error; kubectl shows it as <unknown>.
    ghost = f"e2e-ghost-{uuid.uuid4().hex[:6]}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    await client.create(client.resource(Node), {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": ghost, "annotations": {SERVING_CERT_ANNOTATION: "00" * 32}}})
    try:
        await client.patch(client.resource(Node), ghost, {"status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": closed_port}}}}, subresource="status")

        async def seen() -> dict[str, list[str]] | None:
            res = await asyncio.to_thread(kctl.run, "top", "node")
            rows = table(res.stdout) if res.ok else {}
            return rows if agent.node in rows else None

        rows = await eventually(seen, f"kubectl top node lists {agent.node}", WAIT)
        assert rows[ghost] == [ghost, *["<unknown>"] * 4]  # kubectl lists the Node; it has no metrics
        assert rows["NAME"][:3] == ["NAME", "CPU(cores)", "CPU(%)"]
        assert milli_value(rows[agent.node][1]) > 0 and value(rows[agent.node][3]) > 0
        res = lite(kctl, "top", "nodes")
        assert res.returncode == 0 and table(res.stdout)[ghost] == rows[ghost], res
        raw = json.loads(kctl.ok("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"))
        assert agent.node in [m["metadata"]["name"] for m in raw["items"]]
        assert ghost not in [m["metadata"]["name"] for m in raw["items"]]
        gone = kctl.fail("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{ghost}")
        assert "not found" in gone.stderr.lower()
    finally:
        with contextlib.suppress(ApiError):
            await client.delete(client.resource(Node), ghost)


@pytest.mark.asyncio(loop_scope="session")
async def test_view_role_reads_metrics(kctl: Kubectl, pods: None) -> None:
    # As Kubernetes aggregates system:aggregated-metrics-reader into view: a namespace viewer may
    # read pod metrics there, but not node metrics (a cluster-wide kind).
    viewer = f"viewer-{uuid.uuid4().hex[:6]}"
    kctl.apply(f"""apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {viewer}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {viewer}}}]
""")
    assert kctl.ok("auth", "can-i", "list", "pods.metrics.k8s.io", "--as", viewer).strip() == "yes"
    assert "forbidden" in kctl.fail("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", "--as", viewer).stderr.lower()
    rows = table(kctl.ok("top", "pod", "hog", "--as", viewer))
    assert "hog" in rows
    denied = kctl.fail("top", "pod", "-n", "default", "--as", viewer)
    assert "forbidden" in denied.stderr.lower()
