"""Node network setup: the pod bridge, its gateway address, forwarding, masquerade and hostPorts.

Each node has one Linux bridge that every pod's host-side veth is attached to; the first
address of the node's podCIDR sits on it and is every pod's default gateway. Traffic from pods
to anything outside the cluster CIDR is masqueraded to the node's address, from one nftables
table that kube-lite owns outright: it is rewritten whole in a single ``nft -f`` transaction
(create-if-missing, delete, re-create), so a re-apply is atomic (no moment without the rule)
and idempotent, and nothing in other tables (the distribution's firewall, iptables-nft rules)
is touched.

Everything acts on the calling thread's network namespace: the agent calls it on the host; a
lab or a test calls it from a thread inside a node's namespace (see :mod:`.netns`).
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pyroute2.netlink.exceptions import NetlinkError

from nodeagent.network import hostports, libnft, netns
from nodeagent.network.hostports import HostPort

IFNAMSIZ = 15  # usable characters of an interface name
NFT_TABLE_PREFIX = "kube_lite_nat_"
_IF_SAFE = re.compile(r"^[a-z0-9-]+$")


def _digest(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def bridge_name(node_name: str) -> str:
    """``kl-<node>`` when that fits in 15 characters, else ``kl-`` + a hash of the node name."""
    if len(node_name) <= IFNAMSIZ - 3 and _IF_SAFE.match(node_name):
        return f"kl-{node_name}"
    return f"kl-{_digest(node_name, 12)}"


def nft_table_name(node_name: str) -> str:
    """The node's NAT table: ``kube_lite_nat_<node>`` (characters nft does not take become _,
    plus a short hash when that changed or shortened the name, so two nodes never share one)."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", node_name)[:40]
    if safe != node_name:
        safe = f"{safe}_{_digest(node_name, 8)}"
    return NFT_TABLE_PREFIX + safe


def bridge_mac(name: str) -> str:
    """A fixed, locally administered MAC for the bridge. Left alone, a bridge takes the lowest
    MAC of its ports and changes it as pods come and go, which breaks pods' ARP entries for the
    gateway."""
    raw = bytes.fromhex(_digest("kube-lite-bridge/" + name, 12))
    first = (raw[0] | 0x02) & 0xFE  # locally administered, unicast
    return ":".join(f"{b:02x}" for b in bytes([first]) + raw[1:6])


@dataclass(frozen=True)
class NodeNetwork:
    """What :func:`setup_node` set up; what the pod sync needs for :func:`..pod.setup_pod`."""

    node_name: str
    pod_cidr: str
    cluster_cidr: str
    bridge: str
    gateway: str
    prefix_len: int
    nft_table: str


def render_nat_ruleset(table: str, pod_cidr: str, cluster_cidr: str, host_ports: Iterable[HostPort] = ()) -> str:
    """The whole ``nft -f`` input for the node's NAT table, as one transaction: masquerade, and
    the pods' hostPort DNAT rules (:mod:`.hostports`).

    ``table`` first creates the table if it is missing so that ``delete`` cannot fail; the
    table is then re-created with exactly the wanted rules. nft applies the file atomically.
    """
    pods = ipaddress.IPv4Network(pod_cidr, strict=False)
    cluster = ipaddress.IPv4Network(cluster_cidr, strict=False)
    chains = [
        f"\tchain postrouting {{\n"
        f"\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        f"\t\tip saddr {pods} ip daddr != {cluster} masquerade\n"
        f"\t}}",
        *hostports.render_rules(host_ports),
    ]
    body = "\n".join(chains)
    return f"table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n{body}\n}}\n"


def nft(script: str) -> str:
    """Run ``script`` as ``nft -f`` would (in the calling thread's network namespace, through
    :mod:`.libnft`); its output. Raises :class:`~.libnft.NftError` (a RuntimeError)."""
    return libnft.run(script)


def list_nft_table(table: str) -> str | None:
    """``nft list table ip <table>``, or None if there is no such table."""
    try:
        return libnft.run(f"list table ip {table}\n")
    except libnft.NftError:
        return None


def apply_masquerade(table: str, pod_cidr: str, cluster_cidr: str, host_ports: Iterable[HostPort] = ()) -> None:
    nft(render_nat_ruleset(table, pod_cidr, cluster_cidr, host_ports))


def apply_nat(node: NodeNetwork, host_ports: Iterable[HostPort] = ()) -> None:
    """Rewrite the node's NAT table (masquerade + these hostPort mappings) atomically."""
    apply_masquerade(node.nft_table, node.pod_cidr, node.cluster_cidr, host_ports)


def delete_masquerade(table: str) -> None:
    """Remove the node's NAT table (idempotent)."""
    nft(f"table ip {table}\ndelete table ip {table}\n")


def enable_forwarding() -> None:
    """net.ipv4.ip_forward=1. /proc/sys/net follows the namespace of the thread that opens it."""
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write("1\n")


def ensure_bridge(name: str, gateway: str, prefix_len: int, mtu: int | None = None) -> int:
    """Create the bridge if missing, with a fixed MAC, the gateway address, up; its index."""
    ipr = netns.iproute()
    found = ipr.link_lookup(ifname=name)
    if not found:
        attrs: dict[str, object] = {"ifname": name, "kind": "bridge", "address": bridge_mac(name)}
        if mtu is not None:
            attrs["mtu"] = mtu
        try:
            ipr.link("add", **attrs)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
        found = ipr.link_lookup(ifname=name)
    index = int(found[0])
    have = {(a.get("address"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)}
    if (gateway, prefix_len) not in have:
        try:
            ipr.addr("add", index=index, address=gateway, prefixlen=prefix_len)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
    ipr.link("set", index=index, state="up")
    return index


def set_hairpin(index: int, on: bool = True) -> None:
    """Hairpin mode on a bridge port: frames may leave by the port they came in on, so a pod can
    reach itself through a Service address that is translated back to its own IP."""
    netns.iproute().brport("set", index=index, mode=1 if on else 0)


def setup_node(
    node_name: str, pod_cidr: str, cluster_cidr: str, *, mtu: int | None = None, host_ports: Iterable[HostPort] = (),
) -> NodeNetwork:
    """Bridge + gateway address, forwarding, masquerade and the ``host_ports`` the node's pods
    publish (an agent restart passes the ones it kept, so the table is rewritten unchanged).
    Idempotent: run it at every agent start."""
    network = ipaddress.IPv4Network(pod_cidr, strict=False)
    gateway = str(network.network_address + 1)
    node = NodeNetwork(
        node_name=node_name,
        pod_cidr=str(network),
        cluster_cidr=str(ipaddress.IPv4Network(cluster_cidr, strict=False)),
        bridge=bridge_name(node_name),
        gateway=gateway,
        prefix_len=network.prefixlen,
        nft_table=nft_table_name(node_name),
    )
    ensure_bridge(node.bridge, gateway, network.prefixlen, mtu)
    enable_forwarding()
    apply_nat(node, host_ports)
    return node


def teardown_node(node: NodeNetwork) -> None:
    """Remove the bridge (pods' veths are detached by it going) and the NAT table. Idempotent."""
    ipr = netns.iproute()
    for index in ipr.link_lookup(ifname=node.bridge):
        try:
            ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise
    delete_masquerade(node.nft_table)
