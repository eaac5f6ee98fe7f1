"""Cluster IPs and node ports are allocated by the API server, as Kubernetes does it: unique under
concurrent creates, refused with Kubernetes' messages when taken or out of range, given back on
delete and on type change, kept across restarts, and the ``kubernetes`` Service exists."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from tests.fixtures.apiserver import ControlPlaneProcess, RawApi, raw_api, running_control_plane

pytestmark = pytest.mark.integration

CIDR = "10.100.0.0/24"
# An address the endpoints may hold (not loopback); TEST-NET-1, so nothing is ever sent to it.
ADVERTISE = "192.0.2.10"
FIRST_PORT, LAST_PORT = 30000, 30010


@pytest.fixture(scope="module")
def alloc_cp() -> Iterator[ControlPlaneProcess]:
    with running_control_plane("apiserver", "--service-cidr", CIDR,
                               "--service-node-port-range", f"{FIRST_PORT}-{LAST_PORT}",
                               "--advertise-address", ADVERTISE, prefix="kl-svcalloc-") as cp:
        yield cp


@pytest_asyncio.fixture(loop_scope="session")
async def api(alloc_cp: ControlPlaneProcess) -> AsyncIterator[RawApi]:
    async with raw_api(alloc_cp) as a:
        yield a


def svc(name: str, type_: str = "ClusterIP", cluster_ip: str | None = None,
        node_ports: list[int | None] | None = None) -> dict[str, Any]:
    ports: list[dict[str, Any]] = []
    for i, np in enumerate(node_ports or [None]):
        port: dict[str, Any] = {"name": f"p{i}", "port": 80 + i, "targetPort": 8080}
        if np is not None:
            port["nodePort"] = np
        ports.append(port)
    spec: dict[str, Any] = {"type": type_, "selector": {"app": name}, "ports": ports}
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/services" + (f"/{name}" if name else "")


async def create(api: RawApi, ns: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    r = await api.post(path(ns), body, **kw)
    assert r.status == 201, r.body
    return dict(r.body)


async def used_node_ports(api: RawApi) -> set[int]:
    r = await api.get("/api/v1/services")
    return {p["nodePort"] for s in r.body["items"] for p in s["spec"].get("ports") or [] if p.get("nodePort")}


async def test_kubernetes_service_and_endpoints(api: RawApi, alloc_cp: ControlPlaneProcess) -> None:
    r = await api.get(path("default", "kubernetes"))
    assert r.status == 200, r.body
    assert r.body["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
    spec = r.body["spec"]
    assert spec["clusterIP"] == "10.100.0.1" and spec["clusterIPs"] == ["10.100.0.1"]
    assert spec["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": alloc_cp.port}]
    r = await api.get("/api/v1/namespaces/default/endpoints/kubernetes")
    assert r.status == 200, r.body
    assert r.body["subsets"] == [{"addresses": [{"ip": ADVERTISE}],
                                  "ports": [{"name": "https", "port": alloc_cp.port, "protocol": "TCP"}]}]
    r = await api.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
    assert r.status == 200, r.body
    assert r.body["endpoints"][0]["addresses"] == [ADVERTISE]
    assert r.body["ports"][0]["port"] == alloc_cp.port


async def test_cluster_ip_and_node_port_allocated(api: RawApi, namespace: str) -> None:
    body = await create(api, namespace, svc("np", "NodePort", node_ports=[None, None]))
    spec = body["spec"]
    ip = spec["clusterIP"]
    assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(CIDR)
    assert ip not in ("10.100.0.0", "10.100.0.1", "10.100.0.255")
    assert spec["clusterIPs"] == [ip] and spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    ports = [p["nodePort"] for p in spec["ports"]]
    assert len(set(ports)) == 2 and all(FIRST_PORT <= p <= LAST_PORT for p in ports)
    # What the create answered is what is stored.
    got = await api.get(path(namespace, "np"))
    assert got.body["spec"]["clusterIP"] == ip and [p["nodePort"] for p in got.body["spec"]["ports"]] == ports
    # A ClusterIP Service gets no node port.
    plain = await create(api, namespace, svc("plain"))
    assert "nodePort" not in plain["spec"]["ports"][0] and plain["spec"]["clusterIP"] != ip
    for name in ("np", "plain"):
        assert (await api.delete(path(namespace, name))).status == 200


async def test_concurrent_creates_get_unique_ips(api: RawApi, namespace: str) -> None:
    replies = await asyncio.gather(*(api.post(path(namespace), svc(f"c{i}")) for i in range(20)))
    assert [r.status for r in replies] == [201] * 20, [r.body for r in replies if r.status != 201]
    ips = [r.body["spec"]["clusterIP"] for r in replies]
    assert len(set(ips)) == 20
    listed = await api.get(path(namespace))
    assert sorted(s["spec"]["clusterIP"] for s in listed.body["items"]) == sorted(ips)
    await asyncio.gather(*(api.delete(path(namespace, f"c{i}")) for i in range(20)))


async def test_requested_ip_conflict_and_range(api: RawApi, namespace: str) -> None:
    body = await create(api, namespace, svc("a", cluster_ip="10.100.0.5"))
    assert body["spec"]["clusterIPs"] == ["10.100.0.5"]
    r = await api.post(path(namespace), svc("b", cluster_ip="10.100.0.5"))
    assert r.status == 422 and r.reason == "Invalid", r.body
    assert r.body["message"] == (
        'Service "b" is invalid: spec.clusterIPs: Invalid value: ["10.100.0.5"]: '
        "failed to allocate IP 10.100.0.5: provided IP is already allocated"
    )
    r = await api.post(path(namespace), svc("b", cluster_ip="10.96.0.5"))
    assert r.status == 422, r.body
    assert r.body["message"] == (
        'Service "b" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.5"]: '
        "failed to allocate IP 10.96.0.5: provided IP is not in the valid range. "
        "The range of valid IPs is 10.100.0.0/24"
    )
    # The first address is the kubernetes Service's.
    r = await api.post(path(namespace), svc("b", cluster_ip="10.100.0.1"))
    assert r.status == 422 and "provided IP is already allocated" in r.body["message"]
    # Deleting gives the address back.
    assert (await api.delete(path(namespace, "a"))).status == 200
    body = await create(api, namespace, svc("b", cluster_ip="10.100.0.5"))
    assert body["spec"]["clusterIP"] == "10.100.0.5"
    await api.delete(path(namespace, "b"))


async def test_requested_node_port_conflict_and_range(api: RawApi, namespace: str) -> None:
    await create(api, namespace, svc("a", "NodePort", node_ports=[30005]))
    r = await api.post(path(namespace), svc("b", "NodePort", node_ports=[None, 30005]))
    assert r.status == 422, r.body
    assert r.body["message"] == (
        'Service "b" is invalid: spec.ports[1].nodePort: Invalid value: 30005: provided port is already allocated'
    )
    # The refused create took nothing: port 0 of "b" would have been allocated before the conflict.
    assert await used_node_ports(api) == {30005}
    r = await api.post(path(namespace), svc("b", "NodePort", node_ports=[31000]))
    assert r.status == 422, r.body
    assert r.body["message"] == (
        'Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 31000: '
        "provided port is not in the valid range. The range of valid ports is 30000-30010"
    )
    await api.delete(path(namespace, "a"))
    body = await create(api, namespace, svc("b", "NodePort", node_ports=[30005]))
    assert body["spec"]["ports"][0]["nodePort"] == 30005
    await api.delete(path(namespace, "b"))


async def test_type_change_allocates_and_releases_node_ports(api: RawApi, namespace: str) -> None:
    body = await create(api, namespace, svc("t"))
    ip = body["spec"]["clusterIP"]
    body["spec"]["type"] = "NodePort"
    r = await api.put(path(namespace, "t"), body)
    assert r.status == 200, r.body
    port = r.body["spec"]["ports"][0]["nodePort"]
    assert FIRST_PORT <= port <= LAST_PORT and r.body["spec"]["clusterIP"] == ip
    assert port in await used_node_ports(api)
    # Back to ClusterIP: the node port goes, and another Service can ask for it.
    body = r.body
    body["spec"]["type"] = "ClusterIP"
    del body["spec"]["ports"][0]["nodePort"]
    r = await api.put(path(namespace, "t"), body)
    assert r.status == 200, r.body
    assert "nodePort" not in r.body["spec"]["ports"][0]
    other = await create(api, namespace, svc("other", "NodePort", node_ports=[port]))
    assert other["spec"]["ports"][0]["nodePort"] == port
    # To ExternalName: the cluster IP goes too.
    body = r.body
    body["spec"] = {"type": "ExternalName", "externalName": "example.com"}
    r = await api.put(path(namespace, "t"), body)
    assert r.status == 200, r.body
    assert not r.body["spec"].get("clusterIP")
    again = await create(api, namespace, svc("again", cluster_ip=ip))
    assert again["spec"]["clusterIP"] == ip
    for name in ("t", "other", "again"):
        await api.delete(path(namespace, name))


async def test_node_port_range_exhaustion(api: RawApi, namespace: str) -> None:
    # The range holds 11 ports; earlier tests gave theirs back.
    for i in range(11):
        await create(api, namespace, svc(f"x{i}", "NodePort"))
    assert await used_node_ports(api) == set(range(FIRST_PORT, LAST_PORT + 1))
    r = await api.post(path(namespace), svc("full", "NodePort"))
    assert r.status == 500 and r.reason == "InternalError", r.body
    assert r.body["message"] == "Internal error occurred: failed to allocate a nodePort: range is full"
    # The refused create did not keep the cluster IP it took first.
    listed = await api.get("/api/v1/services")
    ips = {s["spec"]["clusterIP"] for s in listed.body["items"]}
    r = await api.post(path(namespace), svc("full"))
    assert r.status == 201 and r.body["spec"]["clusterIP"] not in ips
    await api.delete(path(namespace, "full"))
    # A ClusterIP Service still fits; LoadBalancer needs a node port as NodePort does.
    r = await api.post(path(namespace), svc("lb", "LoadBalancer"))
    assert r.status == 500, r.body
    await api.delete(path(namespace, "x0"))
    lb = await create(api, namespace, svc("lb", "LoadBalancer"))
    assert FIRST_PORT <= lb["spec"]["ports"][0]["nodePort"] <= LAST_PORT
    for name in ["lb", *(f"x{i}" for i in range(1, 11))]:
        await api.delete(path(namespace, name))


async def test_headless_and_external_name_allocate_nothing(api: RawApi, namespace: str) -> None:
    head = await create(api, namespace, svc("head", cluster_ip="None"))
    assert head["spec"]["clusterIP"] == "None" and head["spec"]["clusterIPs"] == ["None"]
    ext = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
           "spec": {"type": "ExternalName", "externalName": "example.com"}}
    body = await create(api, namespace, ext)
    assert "clusterIP" not in body["spec"] and "clusterIPs" not in body["spec"]
    await api.delete(path(namespace, "head"))
    await api.delete(path(namespace, "ext"))


async def test_dry_run_allocates_nothing(api: RawApi, namespace: str) -> None:
    r = await api.post(path(namespace), svc("dry", "NodePort", cluster_ip="10.100.0.77", node_ports=[30007]),
                       params={"dryRun": "All"})
    assert r.status == 201, r.body
    assert r.body["spec"]["clusterIP"] == "10.100.0.77"
    # Nothing was taken: the same IP and port are free for a real create.
    body = await create(api, namespace, svc("real", "NodePort", cluster_ip="10.100.0.77", node_ports=[30007]))
    assert body["spec"]["clusterIP"] == "10.100.0.77"
    # And a dry run still sees what is taken.
    r = await api.post(path(namespace), svc("dry2", cluster_ip="10.100.0.77"), params={"dryRun": "All"})
    assert r.status == 422 and "provided IP is already allocated" in r.body["message"]
    await api.delete(path(namespace, "real"))


async def test_allocations_survive_restart() -> None:
    with running_control_plane("apiserver", "--service-cidr", CIDR,
                               "--service-node-port-range", f"{FIRST_PORT}-{LAST_PORT}",
                               prefix="kl-svcalloc-restart-") as cp:
        ns = "default"
        name = f"keep-{uuid.uuid4().hex[:6]}"
        async with raw_api(cp) as api:
            body = await create(api, ns, svc(name, "NodePort"))
        ip, port = body["spec"]["clusterIP"], body["spec"]["ports"][0]["nodePort"]
        cp.stop()
        cp.start()
        async with raw_api(cp) as api:
            r = await api.post(path(ns), svc("dup-ip", cluster_ip=ip))
            assert r.status == 422 and "provided IP is already allocated" in r.body["message"], r.body
            r = await api.post(path(ns), svc("dup-port", "NodePort", node_ports=[port]))
            assert r.status == 422 and "provided port is already allocated" in r.body["message"], r.body
            # Still exactly one kubernetes Service, still at the first address.
            r = await api.get(path(ns, "kubernetes"))
            assert r.body["spec"]["clusterIP"] == "10.100.0.1"
            # Advertised on loopback: no endpoints (validation refuses loopback addresses there).
            assert (await api.get("/api/v1/namespaces/default/endpoints/kubernetes")).status == 404
            assert (await api.delete(path(ns, name))).status == 200
            body = await create(api, ns, svc("dup-ip", "NodePort", cluster_ip=ip, node_ports=[port]))
            assert body["spec"]["clusterIP"] == ip
