"""The Endpoints and EndpointSlice controllers in a real control plane.

The test plays the kubelet: it creates pods already bound to a (made-up) node and writes their
status (IP, Ready condition) through the status subresource, then reads what the controllers
made of them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api.core_v1 import Endpoints, Pod, Service
from apimachinery.api.discovery_v1 import EndpointSlice
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.errors import ApiError
from apimachinery.scheme import default_scheme
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.integration

POD = default_scheme().for_model(Pod)
SVC = default_scheme().for_model(Service)
EP = default_scheme().for_model(Endpoints)
SLICE = default_scheme().for_model(EndpointSlice)

@pytest_asyncio.fixture(loop_scope="session")
async def client(apiserver: Any) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as c:
        yield c


def pod_body(name: str, node: str, labels: dict[str, str], ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "busybox"}
    if ports:
        container["ports"] = ports
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        # Bound at creation to a node nobody runs, with no grace period: the test is the kubelet.
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0, "containers": [container]},
    }


async def set_pod_status(client: ApiClient, ns: str, name: str, ip: str, ready: bool) -> None:
    pod = await client.get(POD, name, ns)
    pod["status"] = {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    await client.replace_status(POD, pod, ns)


def endpoint_view(ep: dict[str, Any]) -> set[tuple[str, str, str, frozenset[tuple[str, int, str]]]]:
    """(ip, ready|notReady, pod name, ports) for every address of an Endpoints object."""
    out = set()
    for subset in ep.get("subsets") or []:
        ports = frozenset((p.get("name", ""), p["port"], p["protocol"]) for p in subset.get("ports") or [])
        for kind in ("addresses", "notReadyAddresses"):
            for a in subset.get(kind) or []:
                out.add((a["ip"], kind, a["targetRef"]["name"], ports))
    return out


async def slices_of(client: ApiClient, ns: str, svc: str) -> list[dict[str, Any]]:
    listed = await client.list(SLICE, ns, label_selector=f"kubernetes.io/service-name={svc}")
    return list(listed["items"])


def slice_view(slices: list[dict[str, Any]]) -> set[tuple[str, str, bool, bool, bool, frozenset[tuple[str, int]]]]:
    out = set()
    for s in slices:
        ports = frozenset((p["name"], p["port"]) for p in s.get("ports") or [])
        for e in s.get("endpoints") or []:
            c = e["conditions"]
            out.add((e["addresses"][0], e["targetRef"]["name"], c["ready"], c["serving"], c["terminating"], ports))
    return out


async def test_endpoints_follow_readiness_named_ports_and_service_lifetime(client: ApiClient, namespace: str) -> None:
    ns = namespace
    node = f"ep-node-{uuid.uuid4().hex[:6]}"
    svc = await client.create(SVC, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "metrics", "port": 9090, "targetPort": 9090},
        ]},
    }, ns)
    await client.create(POD, pod_body("a", node, {"app": "web"}, [{"name": "http", "containerPort": 8080}]), ns)
    await client.create(POD, pod_body("b", node, {"app": "web"}, [{"name": "http", "containerPort": 8081}]), ns)
    # No port named "http": only the numeric port applies to it.
    await client.create(POD, pod_body("c", node, {"app": "web"}), ns)
    # Not selected.
    await client.create(POD, pod_body("other", node, {"app": "db"}, [{"name": "http", "containerPort": 8080}]), ns)
    # Selected but without an IP yet: nowhere.
    await client.create(POD, pod_body("pending", node, {"app": "web"}), ns)
    await set_pod_status(client, ns, "a", "10.244.1.1", ready=True)
    await set_pod_status(client, ns, "b", "10.244.1.2", ready=False)
    await set_pod_status(client, ns, "c", "10.244.1.3", ready=True)
    await set_pod_status(client, ns, "other", "10.244.1.4", ready=True)

    both_a = frozenset({("http", 8080, "TCP"), ("metrics", 9090, "TCP")})
    both_b = frozenset({("http", 8081, "TCP"), ("metrics", 9090, "TCP")})
    metrics = frozenset({("metrics", 9090, "TCP")})
    want = {
        ("10.244.1.1", "addresses", "a", both_a),
        ("10.244.1.2", "notReadyAddresses", "b", both_b),
        ("10.244.1.3", "addresses", "c", metrics),
    }

    async def endpoints_are(expected: set[Any]) -> dict[str, Any] | None:
        ep = await client.get(EP, "web", ns)
        return ep if endpoint_view(ep) == expected else None

    ep = await eventually(lambda: endpoints_are(want))
    assert ep["metadata"]["labels"] == {"tier": "front"}
    addr = next(a for s in ep["subsets"] for a in s.get("addresses") or [] if a["ip"] == "10.244.1.1")
    pod_a = await client.get(POD, "a", ns)
    assert addr["nodeName"] == node
    assert addr["targetRef"] == {"kind": "Pod", "namespace": ns, "name": "a", "uid": pod_a["metadata"]["uid"]}

    # EndpointSlices: one per port set; a pod whose named port cannot be resolved is left out.
    want_slices = {
        ("10.244.1.1", "a", True, True, False, frozenset({("http", 8080), ("metrics", 9090)})),
        ("10.244.1.2", "b", False, False, False, frozenset({("http", 8081), ("metrics", 9090)})),
    }

    async def slices_are(expected: set[Any]) -> list[dict[str, Any]] | None:
        slices = await slices_of(client, ns, "web")
        return slices if slice_view(slices) == expected else None

    slices = await eventually(lambda: slices_are(want_slices))
    assert len(slices) == 2
    for s in slices:
        assert s["apiVersion"] == "discovery.k8s.io/v1"
        assert s["addressType"] == "IPv4"
        assert s["metadata"]["name"].startswith("web-")
        assert s["metadata"]["labels"] == {
            "tier": "front",
            "kubernetes.io/service-name": "web",
            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        }
        [owner] = s["metadata"]["ownerReferences"]
        assert owner == {"apiVersion": "v1", "kind": "Service", "name": "web", "uid": svc["metadata"]["uid"],
                         "controller": True, "blockOwnerDeletion": True}
        for e in s["endpoints"]:
            assert e["nodeName"] == node
            assert e["targetRef"]["kind"] == "Pod"

    # b becomes ready; a starts terminating (a finalizer keeps it around while it does).
    await set_pod_status(client, ns, "b", "10.244.1.2", ready=True)
    await client.patch(POD, "a", {"metadata": {"finalizers": ["example.com/hold"]}}, namespace=ns)
    await client.delete(POD, "a", ns)
    await eventually(lambda: endpoints_are({
        ("10.244.1.2", "addresses", "b", both_b),
        ("10.244.1.3", "addresses", "c", metrics),
    }))
    # Slices keep terminating endpoints: not ready, still serving, terminating.
    await eventually(lambda: slices_are({
        ("10.244.1.1", "a", False, True, True, frozenset({("http", 8080), ("metrics", 9090)})),
        ("10.244.1.2", "b", True, True, False, frozenset({("http", 8081), ("metrics", 9090)})),
    }))
    await client.patch(POD, "a", {"metadata": {"finalizers": None}}, namespace=ns)
    await eventually(lambda: slices_are({
        ("10.244.1.2", "b", True, True, False, frozenset({("http", 8081), ("metrics", 9090)})),
    }))

    # Deleting the Service removes its Endpoints and slices.
    await client.delete(SVC, "web", ns)

    async def gone() -> bool:
        try:
            await client.get(EP, "web", ns)
            return False
        except ApiError as e:
            assert e.code == 404
        return not await slices_of(client, ns, "web")

    await eventually(gone)


async def test_publish_not_ready_addresses_and_headless(client: ApiClient, namespace: str) -> None:
    ns = namespace
    node = f"ep-node-{uuid.uuid4().hex[:6]}"
    await client.create(SVC, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": {"app": "db"},
                 "ports": [{"port": 5432}]},
    }, ns)
    body = pod_body("db-0", node, {"app": "db"})
    body["spec"]["hostname"] = "db-0"
    body["spec"]["subdomain"] = "db"
    await client.create(POD, body, ns)
    await set_pod_status(client, ns, "db-0", "10.244.2.1", ready=False)

    async def published() -> dict[str, Any] | None:
        ep = await client.get(EP, "db", ns)
        subsets = ep.get("subsets") or []
        return ep if subsets and subsets[0].get("addresses") else None

    ep = await eventually(published)
    [subset] = ep["subsets"]
    [addr] = subset["addresses"]
    assert "notReadyAddresses" not in subset
    assert addr["ip"] == "10.244.2.1" and addr["hostname"] == "db-0"
    assert subset["ports"] == [{"port": 5432, "protocol": "TCP"}]
    assert ep["metadata"]["labels"] == {"service.kubernetes.io/headless": ""}

    async def slice_ready() -> list[dict[str, Any]] | None:
        slices = await slices_of(client, ns, "db")
        eps = [e for s in slices for e in s.get("endpoints") or []]
        return slices if eps and eps[0]["conditions"]["ready"] else None

    [s] = await eventually(slice_ready)
    [e] = s["endpoints"]
    assert e["conditions"] == {"ready": True, "serving": False, "terminating": False}
    assert e["hostname"] == "db-0"


async def test_services_without_selector_are_left_alone(client: ApiClient, namespace: str) -> None:
    ns = namespace
    await client.create(SVC, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "external"},
        "spec": {"ports": [{"port": 443}]},
    }, ns)
    manual = await client.create(EP, {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external"},
        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 443, "protocol": "TCP"}]}],
    }, ns)
    # A selector Service created afterwards is processed: once its Endpoints exist, the
    # controllers have had their chance to touch the manual ones too.
    await client.create(SVC, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "marker"},
        "spec": {"selector": {"app": "marker"}, "ports": [{"port": 80}]},
    }, ns)
    await eventually(lambda: client.get(EP, "marker", ns))
    await eventually(lambda: slices_of(client, ns, "marker"))
    again = await client.get(EP, "external", ns)
    assert again["metadata"]["resourceVersion"] == manual["metadata"]["resourceVersion"]
    assert again["subsets"] == manual["subsets"]
    assert await slices_of(client, ns, "external") == []
    # The placeholder slice of a Service that selects nothing.
    [placeholder] = await slices_of(client, ns, "marker")
    assert placeholder["endpoints"] == [] or "endpoints" not in placeholder
