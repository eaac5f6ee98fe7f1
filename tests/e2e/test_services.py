"""Services as a client outside the cluster sees them, and the pod network's edges: NodePort on
every node (also when the backend runs on the other node), ClientIP session affinity, refusal
without ready endpoints, a pod that stops being ready stops getting traffic, a deleted Service
leaves no rules, ``hostPort``, hairpin, and masquerade for traffic leaving the cluster CIDR.

Two nodes (network namespaces on one L2 segment, as in :mod:`.test_pod_networking`, host-gw
mode) plus a *client* namespace on the same segment that is not a node: no agent, no routes to
pods, only its own address. Traffic only goes between these namespaces and their pods; all of
them are removed afterwards (also on failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api.core_v1 import Pod, Service
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.errors import ApiError
from nodeagent.network import netns as nsutil
from tests.e2e.test_node_agent import busybox, pod_manifest, wait_gone
from tests.e2e.test_pod_networking import (
    WAIT,
    Env,
    Lan,
    NetAgent,
    NodeNetns,
    cluster,
    fetch,
    fresh_namespace,
    http_get,
    in_pod,
    lan,
    mentions,
    run,
    wait_nodes_ready,
    wait_running,
    web_pod,
)
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.e2e  # the root check is test_pod_networking's, imported with it


@dataclass
class World:
    env: Env
    client_ns: NodeNetns  # not a node: a machine on the nodes' LAN

    @property
    def nodes(self) -> list[NetAgent]:
        return self.env.agents


@contextlib.contextmanager
def client_netns(segment: Lan) -> Iterator[NodeNetns]:
    """A namespace with one veth into the segment's bridge and the address ``.100``."""
    prefix = segment.host_ip.rsplit(".", 1)[0]
    ns = NodeNetns(f"kl-client-{uuid.uuid4().hex[:8]}", f"{prefix}.100")
    run("ip", "netns", "add", ns.name)
    try:
        run("ip", "-n", segment.netns, "link", "add", "c0", "type", "veth", "peer", "name", "eth0", "netns", ns.name)
        run("ip", "-n", segment.netns, "link", "set", "c0", "master", "br0", "up")
        ns.ip("addr", "add", f"{ns.node_ip}/24", "dev", "eth0")
        ns.ip("link", "set", "eth0", "up")
        ns.ip("link", "set", "lo", "up")
        yield ns
    finally:
        run("ip", "netns", "del", ns.name, check=False)  # its veth (and c0) go with it


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with lan(2) as segment, client_netns(segment) as outside, cluster("host-gw", segment) as env:
        yield World(env, outside)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(world: World) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(world.env.cp.kubeconfig)) as c:
        await wait_nodes_ready(c, world.env)
        yield c


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def ns(client: ApiClient) -> AsyncIterator[str]:
    async with fresh_namespace(client, "e2e-svc") as name:
        yield name


# ------------------------------------------------------------------ helpers


def _get(host: str, port: int, timeout: float) -> str:
    """One HTTP/1.0 GET on a new connection, from the calling thread's namespace."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        chunks = []
        while data := s.recv(4096):
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


async def outside_get(world: World, host: str, port: int, timeout: float = 5.0) -> str:
    """GET from the client namespace; raises what the connection raised (refused, timeout)."""
    return await asyncio.to_thread(nsutil.run_in_netns, world.client_ns.path, _get, host, port, timeout)


async def outside_says(world: World, host: str, port: int) -> str | None:
    """The ``hello from <pod>`` pod name that answered, or None if the request failed."""
    try:
        out = await outside_get(world, host, port)
    except OSError:
        return None
    return out.split("hello from ", 1)[1].split()[0] if "200 OK" in out and "hello from " in out else None


def service(name: str, selector: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}}


def labelled(pod: dict[str, Any], **labels: str) -> dict[str, Any]:
    pod["metadata"]["labels"].update(labels)
    return pod


async def node_rules(agent: NetAgent) -> str:
    return await asyncio.to_thread(agent.netns.nft_ruleset)


# ------------------------------------------------------------------ the tests


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def backends(client: ApiClient, ns: str, world: World) -> dict[str, dict[str, Any]]:
    """One web pod per node, both labelled ``tier=web``."""
    pods = {}
    for i, agent in enumerate(world.nodes):
        name = f"web-{i}"
        await client.create(client.resource(Pod), labelled(web_pod(name, agent.node), tier="web"), ns)
    for i, agent in enumerate(world.nodes):
        pods[f"web-{i}"] = await wait_running(client, ns, f"web-{i}", agent)
    return pods


async def test_node_port_answers_on_every_node_also_for_a_backend_on_the_other_node(
    client: ApiClient, ns: str, world: World, backends: dict[str, dict[str, Any]],
) -> None:
    svc = await client.create(client.resource(Service), service("np", {"app": "web-0"}, type="NodePort"), ns)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    # web-0 runs on the first node only; the second node forwards (and masquerades) to it.
    for agent in world.nodes:
        got = await eventually(lambda a=agent: outside_says(world, a.netns.node_ip, node_port),  # type: ignore[misc]
                               f"NodePort {node_port} on {agent.netns.node_ip}", WAIT, interval=0.5)
        assert got == "web-0"


async def test_client_ip_session_affinity_sends_a_client_to_one_endpoint(
    client: ApiClient, ns: str, world: World, backends: dict[str, dict[str, Any]],
) -> None:
    svc = await client.create(client.resource(Service), service(
        "sticky", {"tier": "web"}, type="NodePort", sessionAffinity="ClientIP",
        sessionAffinityConfig={"clientIP": {"timeoutSeconds": 300}}), ns)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    node_ip = world.nodes[0].netns.node_ip

    async def both_endpoints_routed() -> bool:
        rules = await node_rules(world.nodes[0])
        return all(mentions(rules, p["status"]["podIP"]) for p in backends.values())

    await eventually(both_endpoints_routed, "both endpoints in the sticky Service's rules", WAIT)
    # With two endpoints picked at random, 20 answers from one pod happen by chance once in 2**19.
    answers = Counter([await outside_says(world, node_ip, node_port) for _ in range(20)])
    assert len(answers) == 1 and None not in answers, answers


async def test_a_service_without_ready_endpoints_refuses_connections(
    client: ApiClient, ns: str, world: World, backends: dict[str, dict[str, Any]],
) -> None:
    svc = await client.create(client.resource(Service), service("nobody", {"app": "nobody"}, type="NodePort"), ns)
    node_port, cluster_ip = svc["spec"]["ports"][0]["nodePort"], svc["spec"]["clusterIP"]

    async def rejected() -> bool:
        return all([mentions(await node_rules(a), cluster_ip) for a in world.nodes])

    await eventually(rejected, "the Service's reject rules on both nodes", WAIT)
    # Refused (a reset), not left to time out: the client's own timeout would raise TimeoutError.
    for agent in world.nodes:
        with pytest.raises(ConnectionRefusedError):
            await outside_get(world, agent.netns.node_ip, node_port, timeout=10.0)
    code, out = await in_pod(world.nodes[1], backends["web-1"], http_get(cluster_ip))
    assert code != 0 and "refused" in out, out


async def test_a_pod_that_stops_being_ready_stops_getting_traffic(
    client: ApiClient, ns: str, world: World,
) -> None:
    # Ready while /www/ok exists: the probe asks httpd for it.
    script = ("mkdir -p /www && echo \"hello from $(hostname)\" > /www/index.html && echo ok > /www/ok"
              " && exec httpd -f -p 8080 -h /www")
    probe = {"httpGet": {"path": "/ok", "port": 8080}, "periodSeconds": 1, "failureThreshold": 1}
    agents = {"flaky-0": world.nodes[0], "flaky-1": world.nodes[1]}
    for name, agent in agents.items():
        pod = pod_manifest(name, agent.node, [busybox("web", script, readinessProbe=probe)],
                           terminationGracePeriodSeconds=1)
        await client.create(client.resource(Pod), labelled(pod, tier="flaky"), ns)
    pods = {name: await wait_running(client, ns, name, agent) for name, agent in agents.items()}
    svc = await client.create(client.resource(Service), service("flaky", {"tier": "flaky"}, type="NodePort"), ns)
    node_port, node_ip = svc["spec"]["ports"][0]["nodePort"], world.nodes[0].netns.node_ip

    async def answered_by(names: set[str], tries: int = 16) -> bool:
        return {await outside_says(world, node_ip, node_port) for _ in range(tries)} == names

    await eventually(lambda: answered_by({"flaky-0", "flaky-1"}), "both pods answer", WAIT, interval=0.5)
    await in_pod(agents["flaky-1"], pods["flaky-1"], "rm /www/ok")

    async def not_ready() -> bool:
        pod = await client.get(client.resource(Pod), "flaky-1", ns)
        return any(c["type"] == "Ready" and c["status"] == "False" for c in pod["status"]["conditions"])

    await eventually(not_ready, "flaky-1 reports not ready", WAIT)
    await eventually(lambda: answered_by({"flaky-0"}), "only flaky-0 answers", WAIT, interval=0.5)
    # The pod still serves on its own IP: it is the proxy that stopped sending it traffic.
    assert "hello from flaky-1" in await fetch(agents["flaky-0"], pods["flaky-0"], pods["flaky-1"]["status"]["podIP"], 8080)


async def test_deleting_a_service_removes_its_rules_on_every_node(
    client: ApiClient, ns: str, world: World, backends: dict[str, dict[str, Any]],
) -> None:
    svc = await client.create(client.resource(Service), service("brief", {"tier": "web"}, type="NodePort"), ns)
    cluster_ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]

    async def in_rules(present: bool) -> bool:
        for agent in world.nodes:
            rules = await node_rules(agent)
            if mentions(rules, cluster_ip) != present or (f"tcp . {node_port} :" in rules) != present:
                return False
        return True

    await eventually(lambda: in_rules(True), "the Service's ClusterIP and NodePort in both nodes' rules", WAIT)
    await client.delete(client.resource(Service), "brief", ns)
    await eventually(lambda: in_rules(False), "no trace of the Service in either node's rules", WAIT)


async def test_host_port_publishes_the_pod_on_its_node_until_it_is_deleted(
    client: ApiClient, ns: str, world: World,
) -> None:
    agent = world.nodes[1]
    script = "mkdir -p /www && echo 'hello from hp' > /www/index.html && exec httpd -f -p 8080 -h /www"
    container = busybox("web", script, ports=[{"containerPort": 8080, "hostPort": 18080}])
    await client.create(client.resource(Pod), pod_manifest("hp", agent.node, [container],
                                                           terminationGracePeriodSeconds=1), ns)
    pod = await wait_running(client, ns, "hp", agent)
    pod_ip = pod["status"]["podIP"]
    rule = f"dnat to {pod_ip}:8080"
    assert rule in await node_rules(agent)
    assert rule not in await node_rules(world.nodes[0])
    assert await outside_says(world, agent.netns.node_ip, 18080) == "hp"
    # From another pod (on the other node) to the node's address, and from the pod to itself.
    assert "hello from hp" in await fetch(world.nodes[0], await _any_pod(client, ns, world), agent.netns.node_ip, 18080)
    code, out = await in_pod(agent, pod, http_get(agent.netns.node_ip, 18080))
    assert code == 0 and "hello from hp" in out, out

    await client.delete(client.resource(Pod), "hp", ns)
    await wait_gone(client, ns, "hp")
    assert rule not in await node_rules(agent)
    with pytest.raises(ConnectionRefusedError):  # nothing listens on the node's port 18080
        await outside_get(world, agent.netns.node_ip, 18080)


async def _any_pod(client: ApiClient, ns: str, world: World) -> dict[str, Any]:
    """A running web pod on the first node (created here when no earlier test made one)."""
    with contextlib.suppress(ApiError):
        await client.create(client.resource(Pod), web_pod("helper-0", world.nodes[0].node), ns)
    return await wait_running(client, ns, "helper-0", world.nodes[0])


async def test_a_pod_reaches_itself_through_its_service(client: ApiClient, ns: str, world: World) -> None:
    agent = world.nodes[0]
    await client.create(client.resource(Pod), web_pod("self", agent.node), ns)
    pod = await wait_running(client, ns, "self", agent)
    svc = await client.create(client.resource(Service), service("self", {"app": "self"}), ns)
    cluster_ip = svc["spec"]["clusterIP"]

    async def hairpin() -> bool:
        code, out = await in_pod(agent, pod, http_get(cluster_ip))
        return code == 0 and "hello from self" in out

    await eventually(hairpin, "the pod reaches itself through its Service", WAIT, interval=0.5)


async def test_traffic_leaving_the_cluster_cidr_is_masqueraded_to_the_node_address(
    client: ApiClient, ns: str, world: World,
) -> None:
    agent = world.nodes[1]
    await client.create(client.resource(Pod), web_pod("egress", agent.node), ns)
    pod = await wait_running(client, ns, "egress", agent)

    def listen() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((world.client_ns.node_ip, 0))
        s.listen(1)
        s.settimeout(15)
        return s

    server = await asyncio.to_thread(nsutil.run_in_netns, world.client_ns.path, listen)
    try:
        port = server.getsockname()[1]

        def accept() -> str:
            conn, (peer, _) = server.accept()
            with conn:
                conn.sendall(b"seen\n")
            return str(peer)

        peer_task = asyncio.create_task(asyncio.to_thread(accept))
        code, out = await in_pod(agent, pod, f"echo hi | nc -w 3 {world.client_ns.node_ip} {port}")
        peer = await peer_task
    finally:
        server.close()
    # The client has no route to pod addresses: without masquerade it could not have answered.
    assert code == 0 and "seen" in out, out
    assert peer == agent.netns.node_ip != pod["status"]["podIP"]


def test_the_client_namespace_is_not_a_node(world: World) -> None:
    """The client reaches pods only through node addresses: it has no route to the pod network."""
    routes = subprocess.run(["ip", "-n", world.client_ns.name, "-4", "route", "show"],
                            capture_output=True, text=True, check=True).stdout
    assert "10.244." not in routes and "default" not in routes, routes
