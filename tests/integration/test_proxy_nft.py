"""The service proxy against real nftables, inside network namespaces this test creates.

Topology (all names unique per run, all removed at the end even on failure)::

    node netns:  br0 10.244.0.1/24 (the node IP), ip_forward on, the proxy table
      |- be1 netns  eth0 10.244.0.11  TCP server answering "be1"
      |- be2 netns  eth0 10.244.0.12  TCP server answering "be2"
      |- cl  netns  eth0 10.244.0.100 (a client outside the node, for NodePort)

Connections are made by small stdlib scripts run with ``ip netns exec``; traffic only ever goes
to addresses inside these namespaces.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from apimachinery.api.core_v1 import Namespace
from apimachinery.api.core_v1 import Service as ServiceModel
from apimachinery.api.discovery_v1 import EndpointSlice
from apimachinery.client.kubeconfig import load_kubeconfig
from apimachinery.client.rest import ApiClient
from nodeagent.proxy.apply import NftApplier
from nodeagent.proxy.proxier import Proxier
from nodeagent.proxy.rules import render, table_name
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None, reason="needs root and nft"
)

NODE_IP = "10.244.0.1"
BACKENDS = {"be1": "10.244.0.11", "be2": "10.244.0.12"}
CLIENT_IP = "10.244.0.100"
CLUSTER_IP = "10.96.0.10"
EMPTY_IP = "10.96.0.11"
BACKEND_PORT = 8080

SERVER = r"""
import socket, sys
name, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:
        c.sendall(name.encode() + b"\n")
        if len(sys.argv) > 3:
            c.recv(1)  # hold the connection open until the client closes it
    finally:
        c.close()
"""

CLIENT = r"""
import json, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = []
for _ in range(n):
    try:
        with socket.create_connection((host, port), timeout=5) as c:
            out.append(c.makefile().readline().strip())
    except ConnectionRefusedError:
        out.append("refused")
    except OSError as exc:
        out.append(type(exc).__name__)
print(json.dumps(out))
"""

HOLD = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print(c.makefile().readline().strip(), flush=True)
sys.stdin.readline()
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


@dataclass
class Topology:
    node: str
    client: str
    backends: dict[str, str]  # name -> netns
    table: str


@pytest.fixture(scope="module")
def topo() -> Iterator[Topology]:
    sfx = uuid.uuid4().hex[:6]
    node, client = f"kl{sfx}-node", f"kl{sfx}-cl"
    backends = {name: f"kl{sfx}-{name}" for name in BACKENDS}
    made: list[str] = []
    servers: list[subprocess.Popen[str]] = []
    try:
        for ns in [node, client, *backends.values()]:
            sh("ip", "netns", "add", ns)
            made.append(ns)
        sh("ip", "-n", node, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", node, "addr", "add", f"{NODE_IP}/24", "dev", "br0")
        sh("ip", "-n", node, "link", "set", "br0", "up")
        sh("ip", "-n", node, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # The service range must be routable for locally generated packets before DNAT.
        sh("ip", "-n", node, "route", "add", "10.96.0.0/16", "dev", "br0")
        members = [(ns, ip) for ns, ip in ((backends[n], BACKENDS[n]) for n in BACKENDS)]
        members.append((client, CLIENT_IP))
        for i, (ns, ip) in enumerate(members):
            host_if = f"v{i}"
            sh("ip", "-n", node, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", node, "link", "set", host_if, "master", "br0", "up")
            # With br_netfilter loaded, a hairpinned (DNATed back to its sender) frame must be
            # allowed to leave through the port it came in by: the pod network sets this too.
            sh("ip", "-n", node, "link", "set", host_if, "type", "bridge_slave", "hairpin", "on")
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", NODE_IP)
        for name, ns in backends.items():
            p = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, name, str(BACKEND_PORT)],
                stdout=subprocess.PIPE, text=True,
            )
            servers.append(p)
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        yield Topology(node=node, client=client, backends=backends, table=table_name(f"t{sfx}"))
    finally:
        for p in servers:
            p.kill()
            p.wait()
        for ns in made:
            sh("ip", "netns", "del", ns, check=False)
        left = sh("ip", "netns", "list").stdout
        assert not any(ns in left for ns in made), left


async def connect(ns: str, host: str, port: int, n: int) -> list[str]:
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, host, str(port), str(n),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    result: list[str] = json.loads(out)
    return result


def service(name: str, ip: str, *, type_: str = "ClusterIP", node_port: int | None = None,
            affinity: bool = False) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "port": 80, "protocol": "TCP", "targetPort": BACKEND_PORT}
    if node_port:
        port["nodePort"] = node_port
    spec: dict[str, Any] = {"type": type_, "clusterIP": ip, "clusterIPs": [ip], "ports": [port]}
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 600}}
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def slice_for(svc: str, *backends: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{svc}-x", "namespace": "default", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [BACKENDS[b]], "conditions": {"ready": True}} for b in backends],
        "ports": [{"name": "http", "port": BACKEND_PORT, "protocol": "TCP"}],
    }


def listing_without_expiry(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "expires" not in line)


async def test_cluster_ip_nodeport_affinity_and_reject(topo: Topology) -> None:
    applier = NftApplier(netns=topo.node)
    try:
        svcs = [
            service("web", CLUSTER_IP, type_="NodePort", node_port=30080),
            service("empty", EMPTY_IP),
            service("sticky", "10.96.0.12", affinity=True),
        ]
        slices = [slice_for("web", "be1", "be2"), slice_for("sticky", "be1", "be2")]

        def rs(svcs: list[dict[str, Any]], slices: list[dict[str, Any]]) -> Any:
            return render(svcs, slices, table=topo.table, node_ips=[NODE_IP])

        assert await applier.apply(rs(svcs, slices))

        # ClusterIP from the node itself spreads over both backends.
        got = await connect(topo.node, CLUSTER_IP, 80, 40)
        assert set(got) == {"be1", "be2"}, got

        # NodePort from a client outside the node (masqueraded so replies come back through it).
        got = await connect(topo.client, NODE_IP, 30080, 20)
        assert set(got) == {"be1", "be2"}, got

        # No endpoints: refused at once, not a timeout; for its ClusterIP only.
        assert await connect(topo.node, EMPTY_IP, 80, 3) == ["refused"] * 3

        # ClientIP affinity: every connection of one client lands on the same backend.
        got = await connect(topo.node, "10.96.0.12", 80, 20)
        assert len(set(got)) == 1 and got[0] in BACKENDS, got
        # ... and survives an unrelated change (the incremental sync keeps affinity sets).
        svcs.append(service("other", "10.96.0.13"))
        assert await applier.apply(rs(svcs, slices))
        assert set(await connect(topo.node, "10.96.0.12", 80, 10)) == {got[0]}

        # Hairpin: a backend reaching itself through its own service.
        one = [*slices, slice_for("self", "be1")]
        svcs.append(service("self", "10.96.0.14"))
        assert await applier.apply(rs(svcs, one))
        assert await connect(topo.backends["be1"], "10.96.0.14", 80, 3) == ["be1"] * 3

        # A backend removed from the EndpointSlice gets no new connections.
        slices = [slice_for("web", "be1"), slice_for("sticky", "be1", "be2")]
        assert await applier.apply(rs(svcs, slices))
        assert set(await connect(topo.node, CLUSTER_IP, 80, 20)) == {"be1"}
        assert set(await connect(topo.client, NODE_IP, 30080, 10)) == {"be1"}

        # Identical input: skipped; forced, the kernel's table is unchanged.
        before = await applier.list_table()
        assert not await applier.apply(rs(svcs, slices))
        assert await applier.apply(rs(svcs, slices), force=True)
        assert listing_without_expiry(await applier.list_table()) == listing_without_expiry(before)

        # Deleting a Service removes its rules and chains.
        assert "default/web/" in before and CLUSTER_IP in before
        svcs = [s for s in svcs if s["metadata"]["name"] != "web"]
        assert await applier.apply(rs(svcs, slices))
        after = await applier.list_table()
        assert "default/web/" not in after and CLUSTER_IP not in after and "30080" not in after
    finally:
        await applier.delete(topo.table)
    tables = sh("ip", "netns", "exec", topo.node, "nft", "list", "tables").stdout
    assert topo.table not in tables


@pytest.mark.parametrize("tool", ["conntrack", None], ids=["conntrack-tool", "netlink"])
async def test_removed_endpoint_conntrack_flushed(topo: Topology, tool: str | None) -> None:
    if tool is not None and shutil.which(tool) is None:
        pytest.skip("conntrack tool not installed")
    if shutil.which("conntrack") is None:
        pytest.skip("conntrack tool needed to observe the table")
    applier = NftApplier(netns=topo.node, conntrack=tool)
    hold: asyncio.subprocess.Process | None = None
    try:
        svcs = [service("held", CLUSTER_IP)]
        await applier.apply(render(svcs, [slice_for("held", "be2")], table=topo.table))
        hold = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", topo.node, sys.executable, "-c", HOLD, CLUSTER_IP, "80",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert hold.stdout is not None
        assert (await hold.stdout.readline()).decode().strip() == "be2"

        def flows() -> str:
            return sh("ip", "netns", "exec", topo.node, "conntrack", "-L", "-p", "tcp",
                      "--orig-dst", CLUSTER_IP, "--reply-src", BACKENDS["be2"], check=False).stdout

        assert BACKENDS["be2"] in flows()
        await applier.apply(render(svcs, [slice_for("held", "be1")], table=topo.table))
        assert applier.flushed_routes == [(CLUSTER_IP, "tcp", BACKENDS["be2"], BACKEND_PORT)]
        assert BACKENDS["be2"] not in flows()
    finally:
        if hold is not None:
            hold.kill()
            await hold.wait()
        await applier.delete(topo.table)


async def test_proxier_follows_the_api(topo: Topology, apiserver: Any) -> None:
    """End to end through a real apiserver: Service + EndpointSlice -> rules -> connections."""
    ns = f"proxy-{uuid.uuid4().hex[:6]}"
    ip = "10.96.0.20"
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as client:
        await client.create_object(Namespace.model_validate({"metadata": {"name": ns}}))
        svc = service("px", ip)
        svc["metadata"]["namespace"] = ns
        await client.create_object(ServiceModel.model_validate(svc))
        es = slice_for("px", "be1")
        es["metadata"]["namespace"] = ns
        created = await client.create_object(EndpointSlice.model_validate(es))

        proxier = Proxier(client, table_suffix=topo.table.removeprefix("kube_lite_proxy_"),
                          node_ips=[NODE_IP], netns=topo.node)
        proxier.start()
        try:
            async def only(names: set[str]) -> bool:
                return set(await connect(topo.node, ip, 80, 10)) == names

            await eventually(lambda: only({"be1"}), "service routed to be1")
            fresh = created.copy_deep()
            fresh.endpoints = EndpointSlice.model_validate(slice_for("px", "be1", "be2")).endpoints
            await client.update_object(fresh)
            await eventually(lambda: only({"be1", "be2"}), "both backends", timeout=30)
            assert len(proxier.latency) >= 1
            p50, p99 = proxier.latency.p50, proxier.latency.p99
            assert p50 is not None and p99 is not None and 0 <= p50 <= p99
        finally:
            await proxier.stop(delete_table=True)
            await client.delete(client.scheme.for_model(Namespace), ns)
    tables = sh("ip", "netns", "exec", topo.node, "nft", "list", "tables").stdout
    assert topo.table not in tables
