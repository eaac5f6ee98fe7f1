"""Pod networking for real: IPAM, bridge + veths, NAT, host-gw and VXLAN routes between nodes.

A "node" here is a network namespace the test creates (its bridge, NAT table, routes and vxlan
device live inside it), and a "pod" is another namespace pinned at a file like a sandbox's
``ns/net``, so the host's own network is never touched. Traffic is only ever sent to addresses
inside these namespaces. Each test's namespaces have unique names and are deleted in a
``finally`` (deleting a namespace deletes every link, route and nft table in it); the fixture
then checks that none is left.

The IPAM tests need no root; everything else does (skipped otherwise).
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from nodeagent.network import bridge, netns, pod, routes
from nodeagent.network.ipam import IPAM, IPAMExhausted

T = TypeVar("T")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

CLUSTER_CIDR = "10.244.0.0/16"
CIDR_A, CIDR_B = "10.244.1.0/24", "10.244.2.0/24"
LAB_A, LAB_B = "192.168.77.1", "192.168.77.2"  # the "lab link" between two node namespaces
ROUTED_B = "192.168.78.2"  # node B behind a router (another L2 segment)


# -- IPAM (no root) ---------------------------------------------------------------------------


@pytest.fixture
def state_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="kl-ipam-"))
    try:
        yield d
    finally:
        shutil.rmtree(d)


def test_ipam_unique_and_idempotent(state_dir: Path) -> None:
    ipam = IPAM("10.244.1.0/28", state_dir)  # .2 .. .14: 13 pod addresses
    assert str(ipam.gateway) == "10.244.1.1"
    assert ipam.prefix_len == 28
    ips = [ipam.allocate(f"pod-{i}") for i in range(13)]
    assert len(set(ips)) == 13
    assert ips[0] == "10.244.1.2"
    assert "10.244.1.1" not in ips and "10.244.1.0" not in ips and "10.244.1.15" not in ips
    assert ipam.allocate("pod-3") == ips[3]  # same pod, same address
    with pytest.raises(IPAMExhausted):
        ipam.allocate("one-too-many")
    assert sorted(p.name for p in state_dir.iterdir() if p.name[0].isdigit()) == sorted(ips)
    assert (state_dir / ips[5]).read_text().strip() == "pod-5"


def test_ipam_release_and_round_robin(state_dir: Path) -> None:
    ipam = IPAM("10.244.1.0/24", state_dir)
    a = ipam.allocate("a")
    b = ipam.allocate("b")
    assert ipam.release("a") == a
    assert ipam.release("a") is None  # idempotent
    c = ipam.allocate("c")
    assert c not in (a, b)  # a just-freed address is not handed out again right away
    assert ipam.allocations() == {"b": b, "c": c}


def test_ipam_survives_restart(state_dir: Path) -> None:
    first = IPAM("10.244.1.0/24", state_dir)
    held = {uid: first.allocate(uid) for uid in ("a", "b", "c")}
    second = IPAM("10.244.1.0/24", state_dir)  # the agent restarted
    assert second.allocations() == held
    assert second.allocate("b") == held["b"]
    new = second.allocate("d")
    assert new not in held.values()
    # Two live instances on one directory (old and new agent overlapping) never collide.
    got = [first.allocate(f"x{i}") if i % 2 else second.allocate(f"x{i}") for i in range(20)]
    assert len(set(got) | set(held.values()) | {new}) == 24


def test_ipam_concurrent_allocations_never_collide(state_dir: Path) -> None:
    instances = [IPAM("10.244.1.0/24", state_dir) for _ in range(3)]  # as if three processes
    got: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(25):
            ip = instances[(n + i) % 3].allocate(f"w{n}-{i}")
            with lock:
                got.append(ip)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 200 and len(set(got)) == 200
    assert len(instances[0].allocations()) == 200


def test_ipam_reconcile_frees_leaks(state_dir: Path) -> None:
    ipam = IPAM("10.244.1.0/24", state_dir)
    ips = {uid: ipam.allocate(uid) for uid in ("live1", "gone1", "live2", "gone2")}
    (state_dir / ".tmp-crashed").write_text("half")  # a crash mid-claim
    (state_dir / "10.244.1.200").write_text("")  # a file naming no owner
    freed = ipam.reconcile({"live1", "live2"})
    assert freed == {ips["gone1"]: "gone1", ips["gone2"]: "gone2", "10.244.1.200": ""}
    assert ipam.allocations() == {"live1": ips["live1"], "live2": ips["live2"]}
    assert not (state_dir / ".tmp-crashed").exists()
    assert IPAM("10.244.1.0/24", state_dir).allocations() == {"live1": ips["live1"], "live2": ips["live2"]}


# -- lab: namespaces the test owns ------------------------------------------------------------


class Lab:
    """Named network namespaces (``ip netns add``, test set-up only) and threads inside them."""

    def __init__(self) -> None:
        self.prefix = f"kl{uuid.uuid4().hex[:8]}"
        self.names: list[str] = []
        self.executors: dict[str, ThreadPoolExecutor] = {}

    def add(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.names.append(name)
        return name

    @staticmethod
    def path(name: str) -> str:
        return f"/run/netns/{name}"

    def run(self, name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` on the (reused) thread that lives in namespace ``name``."""
        if name not in self.executors:
            self.executors[name] = netns.netns_executor(self.path(name))
        return self.executors[name].submit(fn, *args, **kwargs).result()

    def close(self) -> None:
        for ex in self.executors.values():
            netns.shutdown_executor(ex)
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert lab.prefix not in listed


# -- traffic helpers (sockets are created inside a namespace and keep belonging to it) ---------


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(ns_path: str, dst: str, timeout: float = 2.0) -> bool:
    """One ICMP echo from inside the namespace at ``ns_path``; True if ``dst`` answered."""
    sock = netns.run_in_netns(ns_path, socket.socket, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    with sock:
        ident = os.getpid() & 0xFFFF
        seq = int.from_bytes(os.urandom(2), "big")
        payload = b"kube-lite"
        header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload
        try:
            sock.sendto(packet, (dst, 0))
        except OSError:  # no route at all
            return False
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, (src, _) = sock.recvfrom(1024)
            except TimeoutError:
                return False
            ihl = (data[0] & 0x0F) * 4
            icmp_type, _, _, r_ident, r_seq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
            if icmp_type == 0 and src == dst and (r_ident, r_seq) == (ident, seq):
                return True
        return False


def tcp_peer(server_ns: str, server_ip: str, client_ns: str, dst_ip: str | None = None) -> str | None:
    """Connect from ``client_ns`` to a listener on ``server_ip`` in ``server_ns``; the source
    address the server saw (None if the connection failed), after an echo round trip."""
    listener = netns.run_in_netns(server_ns, socket.create_server, (server_ip, 0))
    client = netns.run_in_netns(client_ns, socket.socket, socket.AF_INET, socket.SOCK_STREAM)
    with listener, client:
        client.settimeout(2.0)
        listener.settimeout(2.0)
        try:
            client.connect((dst_ip or server_ip, listener.getsockname()[1]))
            conn, (peer, _) = listener.accept()
        except OSError:
            return None
        with conn:
            client.sendall(b"hello")
            conn.sendall(conn.recv(5).upper())
            assert client.recv(5) == b"HELLO"
        return str(peer)


def tcp_bulk(server_ns: str, server_ip: str, client_ns: str, size: int) -> int:
    """Send ``size`` bytes from ``client_ns`` to a listener in ``server_ns``; bytes received."""
    listener = netns.run_in_netns(server_ns, socket.create_server, (server_ip, 0))
    client = netns.run_in_netns(client_ns, socket.socket, socket.AF_INET, socket.SOCK_STREAM)
    received = 0
    with listener, client:
        listener.settimeout(5.0)
        client.settimeout(5.0)
        client.connect((server_ip, listener.getsockname()[1]))
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5.0)

            def send() -> None:
                client.sendall(b"x" * size)
                client.shutdown(socket.SHUT_WR)

            sender = threading.Thread(target=send)
            sender.start()
            try:
                while chunk := conn.recv(65536):
                    received += len(chunk)
            finally:
                sender.join()
    return received


def links(lab: Lab, name: str) -> list[str]:
    return lab.run(name, lambda: sorted(str(x.get("ifname")) for x in netns.iproute().get_links()))


def make_node(lab: Lab, name: str, node_name: str, pod_cidr: str) -> bridge.NodeNetwork:
    return lab.run(name, bridge.setup_node, node_name, pod_cidr, CLUSTER_CIDR)


def make_pod(
    lab: Lab, node_ns: str, node: bridge.NodeNetwork, ipam: IPAM, suffix: str, mtu: int | None = None
) -> pod.PodNetwork:
    pod_ns = lab.add(suffix)
    uid = str(uuid.uuid4())
    ip = ipam.allocate(uid)
    return lab.run(
        node_ns, pod.setup_pod, lab.path(pod_ns), uid, ip, node.prefix_len, node.gateway, node.bridge, mtu=mtu
    )


def veth_between(lab: Lab, a: str, b: str, name: str, ip_a: str, ip_b: str) -> None:
    """A veth pair ``name`` between namespaces ``a`` and ``b`` with a /24 address on each end."""

    def in_a() -> None:
        ipr = netns.iproute()
        fd = os.open(lab.path(b), os.O_RDONLY)
        try:
            ipr.link("add", ifname=name, kind="veth", peer={"ifname": name, "net_ns_fd": fd})
        finally:
            os.close(fd)

    lab.run(a, in_a)
    for ns, ip in ((a, ip_a), (b, ip_b)):

        def up(ip: str = ip) -> None:
            ipr = netns.iproute()
            index = ipr.link_lookup(ifname=name)[0]
            ipr.addr("add", index=index, address=ip, prefixlen=24)
            ipr.link("set", index=index, state="up")

        lab.run(ns, up)


def lab_link(lab: Lab, a: str, b: str) -> None:
    """The nodes' "physical" network: one L2 segment between node namespaces ``a`` and ``b``."""
    veth_between(lab, a, b, "lab0", LAB_A, LAB_B)


def routed_lab(lab: Lab, a: str, b: str) -> None:
    """Nodes on two different L2 segments joined by a router namespace:
    a (192.168.77.1) -- (.254) router (192.168.78.254) -- (192.168.78.2) b."""
    router = lab.add("router")
    veth_between(lab, a, router, "lab0", LAB_A, "192.168.77.254")
    veth_between(lab, router, b, "lab1", "192.168.78.254", ROUTED_B)
    lab.run(router, bridge.enable_forwarding)
    lab.run(a, lambda: netns.iproute().route("add", dst="192.168.78.0/24", gateway="192.168.77.254"))
    lab.run(b, lambda: netns.iproute().route("add", dst="192.168.77.0/24", gateway="192.168.78.254"))


# -- one node ---------------------------------------------------------------------------------


@needs_root
def test_two_pods_on_one_node(lab: Lab, state_dir: Path) -> None:
    node_ns = lab.add("node")
    node = make_node(lab, node_ns, "node-a", CIDR_A)
    ipam = IPAM(CIDR_A, state_dir)
    p1 = make_pod(lab, node_ns, node, ipam, "p1")
    p2 = make_pod(lab, node_ns, node, ipam, "p2")

    # Inside the pod: eth0 with its address, lo up, default route via the gateway.
    def inside() -> tuple[list[tuple[str, int]], list[str], str | None]:
        ipr = netns.iproute()
        eth0 = ipr.link_lookup(ifname="eth0")[0]
        addrs = [(a.get("address"), a["prefixlen"]) for a in ipr.get_addr(index=eth0, family=socket.AF_INET)]
        up = [str(x.get("ifname")) for x in ipr.get_links() if x["flags"] & 1]
        default = [r.get("gateway") for r in ipr.get_routes(family=socket.AF_INET) if r["dst_len"] == 0]
        return addrs, sorted(up), default[0] if default else None

    assert lab.run(p1.netns.rsplit("/", 1)[1], inside) == ([(p1.ip, 24)], ["eth0", "lo"], node.gateway)
    assert p1.mac == pod.pod_mac(p1.ip) == "0a:58:0a:f4:01:02"

    # Host side: both veths on the bridge, up, hairpin on.
    def ports() -> dict[str, int]:
        ipr = netns.iproute()
        br = ipr.link_lookup(ifname=node.bridge)[0]
        found = {}
        for link in ipr.get_links(master=br):
            info = link.get_attr("IFLA_LINKINFO")
            slave = info.get_attr("IFLA_INFO_SLAVE_DATA")
            found[str(link.get("ifname"))] = int(slave.get_attr("IFLA_BRPORT_MODE"))
        return found

    assert lab.run(node_ns, ports) == {p1.host_veth: 1, p2.host_veth: 1}

    assert ping(p1.netns, p2.ip)
    assert ping(p2.netns, p1.ip)
    assert ping(p1.netns, node.gateway)  # the bridge's address
    assert not ping(p1.netns, "10.244.1.250", timeout=0.5)  # nobody there
    assert tcp_peer(p2.netns, p2.ip, p1.netns) == p1.ip  # same node: no NAT
    assert tcp_peer(p1.netns, p1.ip, p2.netns) == p2.ip
    assert tcp_peer(node_ns and lab.path(node_ns), node.gateway, p1.netns) == p1.ip  # pod -> node


@needs_root
def test_setup_pod_timing(lab: Lab, state_dir: Path) -> None:
    """Per-pod set-up time, printed (no threshold: the machine's load varies)."""
    node_ns = lab.add("node")
    node = make_node(lab, node_ns, "node-t", CIDR_A)
    ipam = IPAM(CIDR_A, state_dir)
    pods = [lab.add(f"t{i}") for i in range(10)]
    times = []
    nets = []
    for ns in pods:
        uid = str(uuid.uuid4())
        ip = ipam.allocate(uid)
        start = time.perf_counter()
        nets.append(lab.run(node_ns, pod.setup_pod, lab.path(ns), uid, ip, 24, node.gateway, node.bridge))
        times.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    for net in nets:
        lab.run(node_ns, pod.teardown_pod, net.pod_uid)
    teardown_ms = (time.perf_counter() - start) * 1000 / len(nets)
    times.sort()
    print(
        f"\nsetup_pod over {len(times)} pods: min {times[0]:.2f} ms, median {times[len(times) // 2]:.2f} ms, "
        f"max {times[-1]:.2f} ms; teardown_pod mean {teardown_ms:.2f} ms"
    )
    assert ping(nets[0].netns, node.gateway) is False  # torn down: no eth0 any more


@needs_root
def test_teardown_leaves_nothing(lab: Lab, state_dir: Path) -> None:
    node_ns = lab.add("node")
    before = links(lab, node_ns)
    node = make_node(lab, node_ns, "node-a", CIDR_A)
    ipam = IPAM(CIDR_A, state_dir)
    p1 = make_pod(lab, node_ns, node, ipam, "p1")
    pod_ns = p1.netns.rsplit("/", 1)[1]
    assert p1.host_veth in links(lab, node_ns)
    assert "eth0" in links(lab, pod_ns)

    # Setting the same pod up again (a retried sync) starts over and still works.
    again = lab.run(node_ns, pod.setup_pod, p1.netns, p1.pod_uid, p1.ip, 24, node.gateway, node.bridge)
    assert again.host_veth == p1.host_veth
    assert ping(p1.netns, node.gateway)

    assert lab.run(node_ns, pod.teardown_pod, p1.pod_uid) is True
    assert lab.run(node_ns, pod.teardown_pod, p1.pod_uid) is False  # idempotent
    assert ipam.release(p1.pod_uid) == p1.ip
    assert links(lab, pod_ns) == ["lo"]
    assert p1.host_veth not in links(lab, node_ns)

    # A veth whose pod is gone (agent restart) is found by reconcile.
    p2 = make_pod(lab, node_ns, node, ipam, "p2")
    p3 = make_pod(lab, node_ns, node, ipam, "p3")
    assert lab.run(node_ns, pod.reconcile_pod_links, node.bridge, [p3.pod_uid]) == [p2.host_veth]
    assert ipam.reconcile([p3.pod_uid]) == {p2.ip: p2.pod_uid}
    lab.run(node_ns, pod.teardown_pod, p3.pod_uid)

    lab.run(node_ns, bridge.teardown_node, node)
    lab.run(node_ns, bridge.teardown_node, node)  # idempotent
    assert links(lab, node_ns) == before
    assert lab.run(node_ns, bridge.list_nft_table, node.nft_table) is None


@needs_root
def test_setup_pod_failure_leaves_nothing(lab: Lab) -> None:
    node_ns = lab.add("node")
    node = make_node(lab, node_ns, "node-a", CIDR_A)
    pod_ns = lab.add("p1")
    with pytest.raises(Exception):  # noqa: B017 - the gateway is not a valid address
        lab.run(node_ns, pod.setup_pod, lab.path(pod_ns), "uid-x", "10.244.1.5", 24, "not-an-ip", node.bridge)
    assert pod.host_veth_name("uid-x") not in links(lab, node_ns)
    assert links(lab, pod_ns) == ["lo"]
    with pytest.raises(RuntimeError, match="does not exist"):
        lab.run(node_ns, pod.setup_pod, lab.path(pod_ns), "uid-x", "10.244.1.5", 24, node.gateway, "kl-nosuch")


# -- NAT --------------------------------------------------------------------------------------


@needs_root
def test_masquerade_table_atomic_and_idempotent(lab: Lab) -> None:
    node_ns = lab.add("node")
    node = make_node(lab, node_ns, "node.a_1", CIDR_A)
    assert node.nft_table.startswith("kube_lite_nat_node_a_1_")
    listing = lab.run(node_ns, bridge.list_nft_table, node.nft_table)
    assert listing is not None
    assert "type nat hook postrouting priority srcnat; policy accept;" in listing
    assert f"ip saddr {CIDR_A} ip daddr != {CLUSTER_CIDR} masquerade" in listing
    assert listing.count("masquerade") == 1

    # Re-applying gives the identical table (no duplicated rules).
    again = lab.run(node_ns, bridge.setup_node, "node.a_1", CIDR_A, CLUSTER_CIDR)
    assert again == node
    assert lab.run(node_ns, bridge.list_nft_table, node.nft_table) == listing

    # The file is one transaction: if any of it fails, the old table stays exactly as it was.
    broken = bridge.render_nat_ruleset(node.nft_table, "10.244.9.0/24", CLUSTER_CIDR) + "add rule ip nosuch x drop\n"
    with pytest.raises(RuntimeError, match="nft failed"):
        lab.run(node_ns, bridge.nft, broken)
    assert lab.run(node_ns, bridge.list_nft_table, node.nft_table) == listing

    # A change (new podCIDR) replaces the rule rather than adding one.
    lab.run(node_ns, bridge.apply_masquerade, node.nft_table, "10.244.9.0/24", CLUSTER_CIDR)
    changed = lab.run(node_ns, bridge.list_nft_table, node.nft_table)
    assert changed is not None and changed.count("masquerade") == 1 and "10.244.9.0/24" in changed


# -- two nodes --------------------------------------------------------------------------------


def two_nodes(
    lab: Lab, state_dir: Path, routed: bool = False, mtu: int | None = None
) -> tuple[str, str, pod.PodNetwork, pod.PodNetwork]:
    a, b = lab.add("node-a"), lab.add("node-b")
    if routed:
        routed_lab(lab, a, b)
    else:
        lab_link(lab, a, b)
    node_a = make_node(lab, a, "node-a", CIDR_A)
    node_b = make_node(lab, b, "node-b", CIDR_B)
    pa = make_pod(lab, a, node_a, IPAM(CIDR_A, state_dir / "a"), "pa", mtu)
    pb = make_pod(lab, b, node_b, IPAM(CIDR_B, state_dir / "b"), "pb", mtu)
    assert not ping(pa.netns, pb.ip, timeout=0.5)  # no routes between the nodes yet
    return a, b, pa, pb


@needs_root
def test_host_gw_routes_between_nodes(lab: Lab, state_dir: Path) -> None:
    a, b, pa, pb = two_nodes(lab, state_dir)
    res = lab.run(a, routes.sync_host_gw_routes, [(CIDR_B, LAB_B)])
    assert res.added == [CIDR_B] and res.removed == []
    lab.run(b, routes.sync_host_gw_routes, [routes.Peer(CIDR_A, LAB_A)])

    assert ping(pa.netns, pb.ip)
    assert ping(pb.netns, pa.ip)
    assert tcp_peer(pb.netns, pb.ip, pa.netns) == pa.ip  # pod to pod across nodes: not NATed
    # Leaving the cluster CIDR (node B's lab address stands in for "outside"): masqueraded.
    assert tcp_peer(lab.path(b), LAB_B, pa.netns) == LAB_A

    # Re-sync with the same peers: nothing to do. Routes are kube-lite's own (proto 75).
    assert lab.run(a, routes.sync_host_gw_routes, [(CIDR_B, LAB_B)]).added == []

    def our_routes() -> list[tuple[str, str]]:
        rs = netns.iproute().get_routes(family=socket.AF_INET, proto=routes.RTPROT_KUBE_LITE)
        return [(f"{r.get('dst')}/{r['dst_len']}", str(r.get("gateway"))) for r in rs]

    assert lab.run(a, our_routes) == [(CIDR_B, LAB_B)]

    # Node B went away: its route goes, other routes (the kernel's) stay.
    assert lab.run(a, routes.sync_host_gw_routes, []).removed == [CIDR_B]
    assert lab.run(a, our_routes) == []
    assert not ping(pa.netns, pb.ip, timeout=0.5)
    assert ping(pa.netns, LAB_B)  # the node's own connectivity is intact


@needs_root
def test_vxlan_between_nodes(lab: Lab, state_dir: Path) -> None:
    """Nodes on different L2 segments (a router between them): host-gw cannot work, VXLAN does.
    Pods get the vxlan device's MTU so that full-size segments fit in the tunnel."""
    a, b, pa, pb = two_nodes(lab, state_dir, routed=True, mtu=1500 - routes.VXLAN_OVERHEAD)
    with pytest.raises(NetlinkError):  # node B's address is not on a link of node A
        lab.run(a, routes.sync_host_gw_routes, [(CIDR_B, ROUTED_B)])
    vx_a = lab.run(a, routes.ensure_vxlan, "kl-vx", 4242, LAB_A, CIDR_A)
    vx_b = lab.run(b, routes.ensure_vxlan, "kl-vx", 4242, ROUTED_B, CIDR_B)
    assert vx_a.vtep_ip == "10.244.1.0" and vx_a.mac == routes.vtep_mac(LAB_A) == "0e:4b:c0:a8:4d:01"
    assert lab.run(a, routes.ensure_vxlan, "kl-vx", 4242, LAB_A, CIDR_A) == vx_a  # kept as is
    lab.run(a, routes.sync_vxlan_peers, vx_a, [(CIDR_B, ROUTED_B)])
    lab.run(b, routes.sync_vxlan_peers, vx_b, [(CIDR_A, LAB_A)])

    def tx_packets() -> int:
        ipr = netns.iproute()
        return int(ipr.get_links(ipr.link_lookup(ifname="kl-vx")[0])[0].get("stats64")["tx_packets"])

    sent = lab.run(a, tx_packets)
    assert ping(pa.netns, pb.ip)
    assert tcp_peer(pb.netns, pb.ip, pa.netns) == pa.ip
    assert tcp_peer(pa.netns, pa.ip, pb.netns) == pb.ip
    assert tcp_bulk(pb.netns, pb.ip, pa.netns, 1 << 20) == 1 << 20  # full-size segments
    assert lab.run(a, tx_packets) > sent  # it went through the tunnel

    def entries() -> tuple[list[Any], list[Any], list[Any]]:
        ipr = netns.iproute()
        idx = ipr.link_lookup(ifname="kl-vx")[0]
        neigh = [(n.get("dst"), n.get("lladdr")) for n in ipr.get_neighbours(family=socket.AF_INET, ifindex=idx)]
        fdb = [(f.get("lladdr"), f.get("dst")) for f in ipr.fdb("dump", ifindex=idx) if f["ifindex"] == idx]
        rts = [(f"{r.get('dst')}/{r['dst_len']}", r.get("gateway"), r.get("oif"))
               for r in ipr.get_routes(family=socket.AF_INET, proto=routes.RTPROT_KUBE_LITE)]
        return neigh, fdb, rts

    neigh, fdb, rts = lab.run(a, entries)
    assert neigh == [("10.244.2.0", routes.vtep_mac(ROUTED_B))]
    assert fdb == [(routes.vtep_mac(ROUTED_B), ROUTED_B)]
    assert rts == [(CIDR_B, "10.244.2.0", vx_a.index)]
    # Idempotent re-sync, then the peer leaves: every entry for it goes.
    assert lab.run(a, routes.sync_vxlan_peers, vx_a, [(CIDR_B, ROUTED_B)]).added == []
    lab.run(a, routes.sync_vxlan_peers, vx_a, [])
    assert lab.run(a, entries) == ([], [], [])
    assert not ping(pa.netns, pb.ip, timeout=0.5)
    lab.run(a, routes.delete_vxlan, "kl-vx")
    lab.run(a, routes.delete_vxlan, "kl-vx")
    assert "kl-vx" not in links(lab, a)
