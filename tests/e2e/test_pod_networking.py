"""Pods of the native agent as network citizens: pod IPs, pod-to-pod TCP on one node and across
nodes, ClusterIP Services, cluster DNS, clean removal, and an agent restart that changes nothing
on the wire. The module runs once with ``--network-mode host-gw`` and once with ``vxlan``.

Two nodes, each a network namespace this module creates, share one L2 segment (a bridge in a
namespace of its own) with a veth from the host; the control plane listens on the host end's
address only. Each agent runs in its node's namespace through ``nsenter --net`` (only the
network namespace differs from the host's, so the runtime's mounts stay visible to an agent
restarted later). Bridges, routes, NAT and proxy tables and DNS servers all live in the node
namespaces; traffic only ever goes between those namespaces, their pods and the host end of
the veth. Commands run "in a pod" enter the namespaces and root of its container's process
(like ``kubectl exec``).

Teardown (also on failure): agent stopped, containers, sandboxes and cgroups purged, the node
network purged, the veth and the namespace deleted, temp dirs removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api.core_v1 import Namespace, Node, Pod, Service
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.errors import ApiError
from nodeagent.agent.agent import purge, purge_network
from nodeagent.agent.podnet import table_suffix
from nodeagent.network import netns as nsutil
from nodeagent.network.bridge import bridge_name
from nodeagent.network.pod import host_veth_name
from nodeagent.proxy.rules import table_name
from tests.e2e.test_node_agent import Agent, busybox, condition, pod_manifest, wait_gone
from tests.fixtures.apiserver import ControlPlaneProcess, running_control_plane
from tests.fixtures.wait import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces, veths, nftables, containers"),
]

WAIT = 40.0
CLUSTER_CIDR = "10.244.0.0/16"


def run(*argv: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def host_addresses() -> set[ipaddress.IPv4Network]:
    out = json.loads(run("ip", "-j", "-4", "addr", "show").stdout)
    return {ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False)
            for link in out for a in link.get("addr_info", [])}


@dataclass
class NodeNetns:
    """A node: a network namespace with a veth into the lab's LAN."""

    name: str
    node_ip: str

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "-n", self.name, *args, check=check)

    def nft_ruleset(self) -> str:
        return run("ip", "netns", "exec", self.name, "nft", "list", "ruleset").stdout

    def link_exists(self, name: str) -> bool:
        return self.ip("link", "show", name, check=False).returncode == 0


@dataclass
class Lan:
    """One L2 segment (a bridge in a namespace of its own) joining the host and the nodes."""

    netns: str
    host_if: str
    host_ip: str
    nodes: list[NodeNetns]


@contextlib.contextmanager
def lan(nodes: int) -> Iterator[Lan]:
    """A /24 no host address overlaps: ``.1`` on the host's end, ``.10``, ``.11``... the nodes'."""
    tag = uuid.uuid4().hex[:8]
    used = host_addresses()
    for _ in range(100):
        net = ipaddress.IPv4Network(f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used) and not net.overlaps(ipaddress.IPv4Network(CLUSTER_CIDR)):
            break
    else:
        raise RuntimeError("no free /24 for the lab's LAN")
    prefix = str(net.network_address).rsplit(".", 1)[0]
    segment = Lan(f"kl-lan-{tag}", f"klh{tag}", f"{prefix}.1",
                  [NodeNetns(f"kl-node{i}-{tag}", f"{prefix}.{10 + i}") for i in range(nodes)])
    made: list[str] = []
    try:
        run("ip", "netns", "add", segment.netns)
        made.append(segment.netns)
        run("ip", "-n", segment.netns, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", segment.netns, "link", "set", "br0", "up")
        run("ip", "link", "add", segment.host_if, "type", "veth", "peer", "name", "up0", "netns", segment.netns)
        run("ip", "-n", segment.netns, "link", "set", "up0", "master", "br0", "up")
        run("ip", "addr", "add", f"{segment.host_ip}/24", "dev", segment.host_if)
        run("ip", "link", "set", segment.host_if, "up")
        for i, node in enumerate(segment.nodes):
            run("ip", "netns", "add", node.name)
            made.append(node.name)
            run("ip", "-n", segment.netns, "link", "add", f"n{i}", "type", "veth", "peer", "name", "eth0",
                "netns", node.name)
            run("ip", "-n", segment.netns, "link", "set", f"n{i}", "master", "br0", "up")
            node.ip("addr", "add", f"{node.node_ip}/24", "dev", "eth0")
            node.ip("link", "set", "eth0", "up")
            node.ip("link", "set", "lo", "up")
        yield segment
    finally:
        run("ip", "link", "del", segment.host_if, check=False)
        for name in made:
            run("ip", "netns", "del", name, check=False)


@contextlib.contextmanager
def control_plane(host: str) -> Iterator[ControlPlaneProcess]:
    """A control plane listening on ``host`` (the host end of the node's veth) only."""
    with running_control_plane("--bind-address", host, "--cluster-cidr", CLUSTER_CIDR,
                               prefix="kl-podnet-cp-") as cp:
        yield cp


class NetAgent(Agent):
    """``nodeagent --runtime native --network-mode <mode>`` inside a node namespace."""

    def __init__(self, cp: ControlPlaneProcess, node: NodeNetns, tmp: Path, mode: str) -> None:
        super().__init__(cp, tmp)
        self.netns = node
        self.mode = mode
        self.node = f"e2e-net-{uuid.uuid4().hex[:8]}"

    def command(self) -> list[str]:
        return ["nsenter", f"--net={self.netns.path}", sys.executable, "-m", "nodeagent.main",
                "--kubeconfig", str(self.kubeconfig()), "--node-name", self.node,
                "--node-ip", self.netns.node_ip, "--data-dir", str(self.data_dir), "--runtime", "native",
                "--busybox-image", "--network-mode", self.mode, "--cluster-cidr", CLUSTER_CIDR,
                *self.timings()]

    def container_pid(self, pod: dict[str, Any], container: str) -> int:
        for st in pod["status"].get("containerStatuses") or []:
            if st["name"] == container and st.get("containerID"):
                cid = st["containerID"].removeprefix("kube-lite://")
                return int(json.loads((self.data_dir / "runtime" / "containers" / cid / "pid.json").read_text())["pid"])
        raise AssertionError(f"no running container {container} in {pod['status']}")

    def ipam_files(self) -> set[str]:
        d = self.data_dir / "ipam"
        return {p.name for p in d.iterdir() if not p.name.startswith(".") and p.name != "last_reserved"}


@dataclass
class Env:
    cp: ControlPlaneProcess
    agents: list[NetAgent]

    @property
    def agent(self) -> NetAgent:
        return self.agents[0]

    @property
    def node(self) -> NodeNetns:
        return self.agents[0].netns


@contextlib.contextmanager
def cluster(mode: str, segment: Lan) -> Iterator[Env]:
    """The control plane and one agent per node of ``segment``; everything purged afterwards."""
    with control_plane(segment.host_ip) as cp:
        agents = []
        for node in segment.nodes:
            tmp = Path(tempfile.mkdtemp(prefix="kl-e2e-podnet-"))
            agents.append(NetAgent(cp, node, tmp, mode))
        try:
            for agent in agents:
                agent.start()
            yield Env(cp, agents)
        finally:
            left: list[str] = []
            for agent in agents:
                agent.stop()
                left += purge(agent.data_dir, agent.node) if agent.data_dir.exists() else []
                nsutil.run_in_netns(agent.netns.path, purge_network, agent.node)
                keep = os.environ.get("KL_E2E_KEEP_LOGS")
                if keep:
                    Path(keep).mkdir(parents=True, exist_ok=True)
                    for log in agent.tmp.glob("agent-*.log"):
                        shutil.copy(log, Path(keep) / f"podnet-{mode}-{agent.node}-{log.name}")
                shutil.rmtree(agent.tmp, ignore_errors=True)
            assert not left, left


@pytest.fixture(scope="module", params=["host-gw", "vxlan"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    """Two nodes on one LAN with the control plane; the whole module runs once per network mode."""
    with lan(2) as segment, cluster(str(request.param), segment) as e:
        yield e


async def wait_nodes_ready(c: ApiClient, env: Env) -> None:
    """Every agent's Node is Ready and has its podCIDR."""
    for agent in env.agents:
        async def ready(agent: NetAgent = agent) -> bool:
            node = await c.get(c.resource(Node), agent.node)
            return bool(node["spec"].get("podCIDR")) and any(
                x["type"] == "Ready" and x["status"] == "True" for x in node["status"]["conditions"])

        try:
            await eventually(ready, "the agent registers its node and it gets a podCIDR", WAIT)
        except AssertionError:
            raise AssertionError(f"node not ready; agent log:\n{agent.log_tail()}") from None


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(env: Env) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(env.cp.kubeconfig)) as c:
        await wait_nodes_ready(c, env)
        yield c


@contextlib.asynccontextmanager
async def fresh_namespace(client: ApiClient, prefix: str) -> AsyncIterator[str]:
    """A namespace with a unique name, deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    await client.create(client.resource(Namespace), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        with contextlib.suppress(ApiError):
            await client.delete(client.resource(Namespace), name)


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def ns(client: ApiClient) -> AsyncIterator[str]:
    async with fresh_namespace(client, "e2e-net") as name:
        yield name


def web_pod(name: str, node: str) -> dict[str, Any]:
    """busybox httpd on 8080 serving ``hello from <name>``, with a readiness probe (from the node
    to the pod IP)."""
    script = f"mkdir -p /www && echo 'hello from {name}' > /www/index.html && exec httpd -f -p 8080 -h /www"
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    return pod_manifest(name, node, [busybox("web", script, readinessProbe=probe)], terminationGracePeriodSeconds=1)


async def wait_running(client: ApiClient, ns: str, name: str, agent: NetAgent) -> dict[str, Any]:
    async def ready() -> dict[str, Any] | None:
        pod = await client.get(client.resource(Pod), name, ns)
        ok = pod["status"].get("phase") == "Running" and condition(pod, "Ready") == "True"
        return pod if ok and pod["status"].get("podIP") else None

    try:
        return await eventually(ready, f"pod {name} Running, Ready, with a podIP", WAIT)
    except AssertionError as e:
        raise AssertionError(f"{e}\nagent log:\n{agent.log_tail()}") from None


async def in_pod(agent: NetAgent, pod: dict[str, Any], script: str, timeout: float = 10.0) -> tuple[int, str]:
    """``sh -c script`` in the pod's container (its namespaces and root), like kubectl exec."""
    pid = agent.container_pid(pod, "web")
    proc = await asyncio.create_subprocess_exec(
        "nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "/bin/sh", "-c", script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")


def http_get(host: str, port: int = 80) -> str:
    """A shell command fetching ``/`` over TCP with busybox nc (busybox-static's wget crashes in
    its resolver)."""
    return f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}"


async def fetch(agent: NetAgent, pod: dict[str, Any], host: str, port: int = 80) -> str:
    code, out = await in_pod(agent, pod, http_get(host, port))
    assert code == 0 and "200 OK" in out, f"GET http://{host}:{port}/ from {pod['metadata']['name']} failed ({code}): {out}"
    return out


def mentions(text: str, ip: str) -> bool:
    """``ip`` appears in ``text`` as a whole address (10.244.0.3 is not in 10.244.0.30)."""
    return re.search(rf"(?<![\d.]){re.escape(ip)}(?![\d])", text) is not None


@dataclass
class Pods:
    a: dict[str, Any]
    b: dict[str, Any]
    service: str
    cluster_ip: str


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def pods(client: ApiClient, ns: str, env: Env) -> Pods:
    agent = env.agent
    for name in ("web-a", "web-b"):
        await client.create(client.resource(Pod), web_pod(name, agent.node), ns)
    cluster_ip = f"10.96.{random.randint(100, 250)}.{random.randint(2, 250)}"
    await client.create(client.resource(Service), {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"clusterIP": cluster_ip, "selector": {"app": "web-a"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }, ns)
    a = await wait_running(client, ns, "web-a", agent)
    b = await wait_running(client, ns, "web-b", agent)
    return Pods(a, b, "web", cluster_ip)


async def test_pods_get_distinct_ips_from_the_node_cidr_and_talk_over_tcp(
    client: ApiClient, env: Env, pods: Pods,
) -> None:
    node = await client.get(client.resource(Node), env.agent.node)
    cidr = ipaddress.IPv4Network(node["spec"]["podCIDR"])
    ip_a, ip_b = pods.a["status"]["podIP"], pods.b["status"]["podIP"]
    assert ip_a != ip_b
    for pod, ip in ((pods.a, ip_a), (pods.b, ip_b)):
        assert ipaddress.IPv4Address(ip) in cidr
        assert ipaddress.IPv4Address(ip) != cidr.network_address + 1  # the gateway
        assert pod["status"]["podIPs"] == [{"ip": ip}]
    # Each pod's eth0 holds its address; /etc/hosts names it.
    code, out = await in_pod(env.agent, pods.a, "ip -4 addr show eth0; cat /etc/hosts")
    assert code == 0 and f"inet {ip_a}/{cidr.prefixlen}" in out and f"{ip_a}\tweb-a" in out, out
    assert "hello from web-a" in await fetch(env.agent, pods.b, ip_a, 8080)
    assert "hello from web-b" in await fetch(env.agent, pods.a, ip_b, 8080)
    # The node reaches pods directly too (the readiness probes did so already).
    assert sorted(env.agent.ipam_files()) == sorted([ip_a, ip_b])


async def test_a_pod_reaches_a_cluster_ip_service_backed_by_the_other_pod(env: Env, pods: Pods) -> None:
    async def through_service() -> str | None:
        code, out = await in_pod(env.agent, pods.b, http_get(pods.cluster_ip))
        return out if code == 0 and "200 OK" in out else None

    out = await eventually(through_service, "web-b reaches the Service web", WAIT, interval=0.5)
    assert "hello from web-a" in out


async def test_service_names_resolve_from_inside_a_pod(env: Env, ns: str, pods: Pods) -> None:
    code, resolv = await in_pod(env.agent, pods.b, "cat /etc/resolv.conf")
    assert code == 0
    gateway = resolv.split("nameserver ", 1)[1].split()[0]
    assert ipaddress.IPv4Address(gateway) in ipaddress.IPv4Network(CLUSTER_CIDR), resolv
    assert f"search {ns}.svc.cluster.local svc.cluster.local cluster.local" in resolv, resolv
    assert "options ndots:5" in resolv, resolv
    fqdn = f"{pods.service}.{ns}.svc.cluster.local"

    async def resolves(name: str) -> str | None:
        code, out = await in_pod(env.agent, pods.b, f"nslookup {name}")
        return out if code == 0 and pods.cluster_ip in out else None

    await eventually(lambda: resolves(fqdn), f"{fqdn} resolves to {pods.cluster_ip}", WAIT, interval=0.5)
    assert "hello from web-a" in await fetch(env.agent, pods.b, fqdn)
    # The C library's resolver applies the search path (busybox nslookup does not).
    out = await fetch(env.agent, pods.b, pods.service)
    assert "hello from web-a" in out


async def test_pods_on_different_nodes_reach_each_other_and_their_services(
    client: ApiClient, env: Env, ns: str, pods: Pods,
) -> None:
    remote = env.agents[1]
    await client.create(client.resource(Pod), web_pod("web-x", remote.node), ns)
    cluster_ip = f"10.97.{random.randint(100, 250)}.{random.randint(2, 250)}"
    await client.create(client.resource(Service), {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-x"},
        "spec": {"clusterIP": cluster_ip, "selector": {"app": "web-x"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }, ns)
    x = await wait_running(client, ns, "web-x", remote)
    nodes = {n: await client.get(client.resource(Node), n) for n in (env.agent.node, remote.node)}
    remote_cidr = nodes[remote.node]["spec"]["podCIDR"]
    assert ipaddress.IPv4Address(x["status"]["podIP"]) in ipaddress.IPv4Network(remote_cidr)

    # The first node routes the second node's podCIDR (kube-lite's routes carry proto 75).
    async def routed() -> str | None:
        out = (await asyncio.to_thread(env.node.ip, "route", "show", "proto", "75")).stdout
        want = f"via {remote.netns.node_ip}" if env.agent.mode == "host-gw" else "dev kl-vxlan"
        return out if any(line.startswith(remote_cidr) and want in line for line in out.splitlines()) else None

    await eventually(routed, f"a route to {remote_cidr}", WAIT)
    assert "hello from web-x" in await fetch(env.agent, pods.b, x["status"]["podIP"], 8080)
    assert "hello from web-b" in await fetch(remote, x, pods.b["status"]["podIP"], 8080)

    async def through_service(agent: NetAgent, pod: dict[str, Any], target: str, expect: str) -> bool:
        code, out = await in_pod(agent, pod, http_get(target))
        return code == 0 and expect in out

    # Each node's proxy sends its pods to endpoints on the other node; names resolve on both.
    await eventually(lambda: through_service(env.agent, pods.b, cluster_ip, "hello from web-x"),
                     "web-b reaches the Service web-x on the other node", WAIT, interval=0.5)
    await eventually(lambda: through_service(remote, x, f"{pods.service}.{ns}.svc.cluster.local", "hello from web-a"),
                     "web-x reaches the Service web by name", WAIT, interval=0.5)
    await client.delete(client.resource(Service), "web-x", ns)
    await client.delete(client.resource(Pod), "web-x", ns)
    await wait_gone(client, ns, "web-x")


async def test_agent_restart_keeps_traffic_flowing_and_rules_unchanged(
    client: ApiClient, env: Env, ns: str, pods: Pods,
) -> None:
    agent = env.agent

    async def service_ok() -> bool:
        return "hello from web-a" in await fetch(agent, pods.b, pods.cluster_ip)

    await eventually(service_ok, "the Service works before the restart", WAIT, interval=0.5)
    ruleset = await asyncio.to_thread(env.node.nft_ruleset)
    assert table_name(table_suffix(agent.node)) in ruleset
    ipam = agent.ipam_files()
    links = await asyncio.to_thread(env.node.ip, "-o", "link", "show")
    agent.kill9()
    # The datapath is the kernel's: traffic flows while the agent is away.
    assert await service_ok()
    agent.start()

    async def resynced() -> bool:
        pod = await client.get(client.resource(Pod), "web-a", ns)
        lease = await client.get(client.resource(Node), agent.node)
        return pod["status"]["podIP"] == pods.a["status"]["podIP"] and bool(lease)

    await eventually(resynced, "the restarted agent serves the node", WAIT)

    async def same_rules() -> bool:
        return await asyncio.to_thread(env.node.nft_ruleset) == ruleset

    await eventually(same_rules, "the nft ruleset is the same after the restart", WAIT)
    assert await service_ok()
    assert "hello from web-b" in await fetch(agent, pods.a, pods.b["status"]["podIP"], 8080)
    assert agent.ipam_files() == ipam
    after = await asyncio.to_thread(env.node.ip, "-o", "link", "show")
    names = [line.split(":")[1].strip().split("@")[0] for line in links.stdout.splitlines()]
    assert names == [line.split(":")[1].strip().split("@")[0] for line in after.stdout.splitlines()]


async def test_deleting_a_pod_leaves_no_veth_address_or_endpoint(
    client: ApiClient, env: Env, ns: str, pods: Pods,
) -> None:
    agent = env.agent
    uid, ip = pods.a["metadata"]["uid"], pods.a["status"]["podIP"]
    veth = host_veth_name(uid)
    assert env.node.link_exists(veth)
    assert mentions(await asyncio.to_thread(env.node.nft_ruleset), ip)
    await client.delete(client.resource(Pod), "web-a", ns)
    await wait_gone(client, ns, "web-a")
    assert not env.node.link_exists(veth)
    assert ip not in agent.ipam_files()

    async def no_endpoint() -> bool:
        return not mentions(await asyncio.to_thread(env.node.nft_ruleset), ip)

    await eventually(no_endpoint, "the deleted pod's endpoint leaves the proxy rules", WAIT)
    # The Service has no endpoint now: connections are refused at once (not DNATed anywhere).
    code, out = await in_pod(agent, pods.b, http_get(pods.cluster_ip))
    assert "hello from" not in out and ("refused" in out or code != 0), out


async def test_pod_deleted_while_the_agent_is_down_is_cleaned_up_after_a_kill9_restart(
    client: ApiClient, env: Env, ns: str, pods: Pods,
) -> None:
    agent = env.agent
    await client.create(client.resource(Pod), web_pod("web-c", agent.node), ns)
    c = await wait_running(client, ns, "web-c", agent)
    uid, ip = c["metadata"]["uid"], c["status"]["podIP"]
    assert env.node.link_exists(host_veth_name(uid)) and ip in agent.ipam_files()
    agent.kill9()
    # Nobody runs the graceful path: remove the Pod object for good.
    await client.delete(client.resource(Pod), "web-c", ns, grace_period_seconds=0)
    # What a crash between two steps leaves: an address whose pod never got a sandbox, and a
    # veth on the bridge that belongs to no pod.
    node = await client.get(client.resource(Node), agent.node)
    stray_ip = str(ipaddress.IPv4Network(node["spec"]["podCIDR"]).broadcast_address - 1)
    (agent.data_dir / "ipam" / stray_ip).write_text(f"{uuid.uuid4()}\n")
    stray_veth = host_veth_name(str(uuid.uuid4()))
    env.node.ip("link", "add", stray_veth, "master", bridge_name(agent.node), "type", "veth", "peer", "name",
                f"p{stray_veth[4:]}")
    agent.start()

    async def cleaned() -> bool:
        return (not env.node.link_exists(host_veth_name(uid)) and ip not in agent.ipam_files()
                and stray_ip not in agent.ipam_files() and not env.node.link_exists(stray_veth))

    try:
        await eventually(cleaned, "the restarted agent removes web-c's and the stray veth and address", WAIT)
    except AssertionError as e:
        raise AssertionError(f"{e}\nagent log:\n{agent.log_tail()}") from None
    # The surviving pod still has its address and its veth.
    assert env.node.link_exists(host_veth_name(pods.b["metadata"]["uid"]))
    assert pods.b["status"]["podIP"] in agent.ipam_files()
    assert agent.ipam_files() <= {pods.a["status"]["podIP"], pods.b["status"]["podIP"]}
