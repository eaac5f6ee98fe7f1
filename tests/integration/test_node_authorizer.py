"""Node restriction against a real API server: a node's credential reaches its own Node and Lease,
the pods bound to it and what those pods use, and nothing of the same kind that belongs to
another node."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import pytest_asyncio

from tests.fixtures.apiserver import ControlPlaneProcess, RawApi
from tests.fixtures.users import user_api
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.integration

MERGE = "application/merge-patch+json"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


@pytest_asyncio.fixture(loop_scope="session")
async def api(api_bare: RawApi) -> RawApi:
    # The API server alone: no controller touches the nodes and pods these tests make.
    return api_bare


def _node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def _pod(name: str, node: str, secret: str, configmap: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "image": "busybox",
                            "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": configmap, "key": "k"}}}]}],
            "volumes": [{"name": "s", "secret": {"secretName": secret}}],
        },
    }


def _lease(name: str) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40}}


@pytest_asyncio.fixture(loop_scope="session")
async def two_nodes(api: RawApi, namespace: str) -> dict[str, str]:
    """Nodes a and b, each with one pod that uses its own secret and configmap."""
    suffix = uuid.uuid4().hex[:6]
    names = {"a": f"node-a-{suffix}", "b": f"node-b-{suffix}"}
    for key, node in names.items():
        for kind, path in (("Secret", "secrets"), ("ConfigMap", "configmaps")):
            body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": f"{path}-{key}"}, "data": {"k": "dg=="}}
            assert (await api.post(f"/api/v1/namespaces/{namespace}/{path}", body)).status == 201
        r = await api.post(f"/api/v1/namespaces/{namespace}/pods",
                           _pod(f"pod-{key}", node, f"secrets-{key}", f"configmaps-{key}"))
        assert r.status == 201, r.body
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "unused"}, "data": {"k": "dg=="}}
    assert (await api.post(f"/api/v1/namespaces/{namespace}/secrets", body)).status == 201
    return names


async def test_node_reads_only_what_its_pods_use(bare_apiserver: ControlPlaneProcess,
                                                 namespace: str, two_nodes: dict[str, str]) -> None:
    node_a = two_nodes["a"]
    async with user_api(bare_apiserver, f"system:node:{node_a}", ("system:nodes",)) as a:
        async def sees_own_secret() -> bool:
            r = await a.get(f"/api/v1/namespaces/{namespace}/secrets/secrets-a")
            assert r.status == 200, r.body
            return True
        await eventually(sees_own_secret, "node a reads its pod's secret")
        assert (await a.get(f"/api/v1/namespaces/{namespace}/configmaps/configmaps-a")).status == 200
        r = await a.get(f"/api/v1/namespaces/{namespace}/secrets/secrets-b")
        assert r.status == 403
        assert r.body["message"] == (
            f'secrets "secrets-b" is forbidden: User "system:node:{node_a}" cannot get resource "secrets" in API '
            f'group "" in the namespace "{namespace}": no relationship found between node \'{node_a}\' and this object')
        assert (await a.get(f"/api/v1/namespaces/{namespace}/secrets/unused")).status == 403
        assert (await a.get(f"/api/v1/namespaces/{namespace}/configmaps/configmaps-b")).status == 403
        assert (await a.get(f"/api/v1/namespaces/{namespace}/secrets")).status == 403
        # What an agent reads to run its pods, proxy and DNS stays open.
        for path in (f"/api/v1/pods?fieldSelector=spec.nodeName%3D{node_a}", "/api/v1/services", "/api/v1/nodes",
                     "/apis/discovery.k8s.io/v1/endpointslices"):
            assert (await a.get(path)).status == 200, path


async def test_node_writes_only_its_own_pods_status(bare_apiserver: ControlPlaneProcess, namespace: str,
                                                    two_nodes: dict[str, str]) -> None:
    node_a = two_nodes["a"]
    status = {"status": {"phase": "Running"}}
    async with user_api(bare_apiserver, f"system:node:{node_a}", ("system:nodes",)) as a:
        async def own_status() -> bool:
            r = await a.patch(f"/api/v1/namespaces/{namespace}/pods/pod-a/status", status, MERGE)
            assert r.status == 200, r.body
            return True
        await eventually(own_status, "node a patches its pod's status")
        r = await a.patch(f"/api/v1/namespaces/{namespace}/pods/pod-b/status", status, MERGE)
        assert r.status == 403 and "can only update the status of and delete pods bound to it" in r.body["message"]
        assert (await a.delete(f"/api/v1/namespaces/{namespace}/pods/pod-b")).status == 403
        r = await a.patch(f"/api/v1/namespaces/{namespace}/pods/pod-a", {"metadata": {"labels": {"x": "y"}}}, MERGE)
        assert r.status == 403  # spec and metadata are not the node's to change
        r = await a.post(f"/api/v1/namespaces/{namespace}/pods", _pod("mine", node_a, "secrets-a", "configmaps-a"))
        assert r.status == 403


async def test_node_writes_only_its_own_node_and_lease(bare_apiserver: ControlPlaneProcess, api: RawApi,
                                                       two_nodes: dict[str, str]) -> None:
    node_a, node_b = two_nodes["a"], two_nodes["b"]
    async with user_api(bare_apiserver, f"system:node:{node_a}", ("system:nodes",)) as a:
        assert (await a.post("/api/v1/nodes", _node(node_a))).status == 201
        r = await a.post("/api/v1/nodes", _node(node_b))
        assert r.status == 403 and r.body["message"] == (
            f'nodes "{node_b}" is forbidden: node "{node_a}" is not allowed to modify node "{node_b}"')
        assert (await api.post("/api/v1/nodes", _node(node_b))).status == 201
        patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        assert (await a.patch(f"/api/v1/nodes/{node_a}/status", patch, MERGE)).status == 200
        assert (await a.patch(f"/api/v1/nodes/{node_b}/status", patch, MERGE)).status == 403
        assert (await a.patch(f"/api/v1/nodes/{node_b}", {"metadata": {"labels": {"x": "y"}}}, MERGE)).status == 403
        assert (await a.delete(f"/api/v1/nodes/{node_b}")).status == 403

        assert (await a.post(LEASES, _lease(node_a))).status == 201
        assert (await a.post(LEASES, _lease(node_b))).status == 403
        assert (await api.post(LEASES, _lease(node_b))).status == 201
        lease_a = (await a.get(f"{LEASES}/{node_a}")).body
        assert (await a.put(f"{LEASES}/{node_a}", lease_a)).status == 200
        assert (await a.patch(f"{LEASES}/{node_b}", {"spec": {"holderIdentity": node_a}}, MERGE)).status == 403
        r = await a.post("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", _lease(node_a))
        assert r.status == 403
        event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"e-{node_a}"},
                 "involvedObject": {"kind": "Node", "name": node_a}, "reason": "Test", "message": "hi"}
        assert (await a.post("/api/v1/namespaces/default/events", event)).status == 201


async def test_access_follows_the_pod(bare_apiserver: ControlPlaneProcess, api: RawApi, namespace: str,
                                      two_nodes: dict[str, str]) -> None:
    """Once node a's pod is gone, so is node a's access to its secret."""
    node_a = two_nodes["a"]
    async with user_api(bare_apiserver, f"system:node:{node_a}", ("system:nodes",)) as a:
        await eventually(lambda: _status_is(a, f"/api/v1/namespaces/{namespace}/secrets/secrets-a", 200))
        r = await api.delete(f"/api/v1/namespaces/{namespace}/pods/pod-a", {"gracePeriodSeconds": 0})
        assert r.status in (200, 202)
        await eventually(lambda: _status_is(a, f"/api/v1/namespaces/{namespace}/secrets/secrets-a", 403))


async def _status_is(client: RawApi, path: str, status: int) -> bool:
    return (await client.get(path)).status == status
