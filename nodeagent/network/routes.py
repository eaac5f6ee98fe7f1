"""Routes to the other nodes' pods: host-gw (same L2 segment) or VXLAN (anything routable).

host-gw: for every other node, ``<its podCIDR> via <its node IP>``. It needs the node IPs to be
directly reachable (one L2 segment), costs nothing per packet, and is what flannel calls
host-gw.

VXLAN: one ``vxlan`` device per node (VNI, UDP 4789, learning off) whose address is its own
podCIDR's network address as a /32 (the node's "VTEP address", as flannel does). For every
other node, three static entries, so nothing is learned or flooded:

* route ``<podCIDR> via <its VTEP address> dev <vxlan> onlink``;
* neighbour ``<its VTEP address> lladdr <its VTEP MAC>`` on the vxlan device;
* FDB ``<its VTEP MAC> dst <its node IP>``: frames for that MAC go in UDP to that node.

A VTEP's MAC is derived from its node IP (:func:`vtep_mac`), so every node can compute every
other node's MAC from the (podCIDR, node IP) pairs in the Node objects alone; no annotation
has to be published.

Reconciliation is by ownership: every route kube-lite adds carries its own route protocol
number (:data:`RTPROT_KUBE_LITE`), so a sync deletes exactly the kube-lite routes that are no
longer wanted (a node went away) and never touches anyone else's. Neighbour and FDB entries
are reconciled on the vxlan device, which kube-lite owns outright.

Everything acts on the calling thread's network namespace (see :mod:`.netns`).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import ndmsg

from nodeagent.network import netns

#: Route protocol marking kube-lite's routes (``ip route show proto 75``); unassigned in
#: /etc/iproute2/rt_protos.
RTPROT_KUBE_LITE = 75
MAIN_TABLE = 254
VXLAN_PORT = 4789
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
RTNH_F_ONLINK = 4


@dataclass(frozen=True)
class Peer:
    """Another node, as its Node object describes it."""

    pod_cidr: str
    node_ip: str

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.pod_cidr, strict=False)


@dataclass
class SyncResult:
    """What a sync changed (for logs and tests)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _peers(peers: Iterable[Peer | tuple[str, str]]) -> list[Peer]:
    return [p if isinstance(p, Peer) else Peer(*p) for p in peers]


def vtep_ip(pod_cidr: str) -> str:
    """A node's VTEP address: its podCIDR's network address (unused by pods and the bridge)."""
    return str(ipaddress.IPv4Network(pod_cidr, strict=False).network_address)


def vtep_mac(node_ip: str) -> str:
    """``0e:4b:`` + the node IP's four bytes: locally administered, unicast, unique per node."""
    raw = ipaddress.IPv4Address(node_ip).packed
    return ":".join(f"{b:02x}" for b in b"\x0e\x4b" + raw)


def _route_key(route: Any) -> str:
    """``dst/len`` of a pyroute2 route message."""
    return f"{route.get('dst')}/{route['dst_len']}"


def _sync_route_table(wanted: dict[str, dict[str, object]]) -> SyncResult:
    """Make kube-lite's routes in the main table exactly ``wanted`` ({dst/len: route attrs})."""
    ipr = netns.iproute()
    result = SyncResult()
    have: dict[str, dict[str, object]] = {}
    for route in ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE, proto=RTPROT_KUBE_LITE):
        have[_route_key(route)] = {
            "gateway": route.get("gateway"),
            "oif": route.get("oif"),
            "onlink": bool(route["flags"] & RTNH_F_ONLINK),
        }
    for dst, attrs in wanted.items():
        want = {"gateway": attrs["gateway"], "oif": attrs.get("oif", have.get(dst, {}).get("oif")),
                "onlink": bool(attrs.get("onlink"))}
        if have.get(dst) == want:
            continue
        kwargs: dict[str, object] = {"dst": dst, "gateway": attrs["gateway"], "proto": RTPROT_KUBE_LITE,
                                     "table": MAIN_TABLE}
        if "oif" in attrs:
            kwargs["oif"] = attrs["oif"]
        if attrs.get("onlink"):
            kwargs["flags"] = RTNH_F_ONLINK
        ipr.route("replace", **kwargs)
        result.added.append(dst)
    for dst in have.keys() - wanted.keys():
        try:
            ipr.route("del", dst=dst, table=MAIN_TABLE, proto=RTPROT_KUBE_LITE)
        except NetlinkError as exc:
            if exc.code != errno.ESRCH:
                raise
        result.removed.append(dst)
    return result


def sync_host_gw_routes(peers: Iterable[Peer | tuple[str, str]]) -> SyncResult:
    """host-gw: ``<podCIDR> via <node IP>`` for each peer; stale kube-lite routes removed.
    Pass the *other* nodes; an empty list removes every kube-lite route."""
    wanted: dict[str, dict[str, object]] = {
        str(p.network): {"gateway": p.node_ip} for p in _peers(peers)
    }
    return _sync_route_table(wanted)


# -- VXLAN ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VxlanDevice:
    name: str
    index: int
    vni: int
    local_ip: str
    vtep_ip: str
    mac: str


def ensure_vxlan(
    name: str,
    vni: int,
    local_ip: str,
    pod_cidr: str,
    *,
    port: int = VXLAN_PORT,
    underlay_mtu: int = 1500,
) -> VxlanDevice:
    """Create (or keep, if it matches) the node's vxlan device, with its VTEP MAC and address, up.

    Its MTU is the underlay's minus the encapsulation, so that inner packets are not fragmented.
    """
    ipr = netns.iproute()
    mac = vtep_mac(local_ip)
    address = vtep_ip(pod_cidr)
    found = ipr.link_lookup(ifname=name)
    if found:
        link = ipr.get_links(int(found[0]))[0]
        data = link.get_attr("IFLA_LINKINFO")
        kind = data.get_attr("IFLA_INFO_KIND") if data else None
        vx = data.get_attr("IFLA_INFO_DATA") if data else None
        matches = (
            kind == "vxlan"
            and vx is not None
            and vx.get_attr("IFLA_VXLAN_ID") == vni
            and vx.get_attr("IFLA_VXLAN_LOCAL") == local_ip
            and vx.get_attr("IFLA_VXLAN_PORT") == port
            and link.get("address") == mac
        )
        if not matches:
            ipr.link("del", index=int(found[0]))
            found = []
    if not found:
        ipr.link(
            "add",
            ifname=name,
            kind="vxlan",
            vxlan_id=vni,
            vxlan_local=local_ip,
            vxlan_port=port,
            vxlan_learning=0,
            address=mac,
            mtu=underlay_mtu - VXLAN_OVERHEAD,
        )
        found = ipr.link_lookup(ifname=name)
    index = int(found[0])
    have = {(a.get("address"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=socket.AF_INET)}
    if (address, 32) not in have:
        ipr.addr("add", index=index, address=address, prefixlen=32)
    ipr.link("set", index=index, state="up")
    return VxlanDevice(name, index, vni, local_ip, address, mac)


def sync_vxlan_peers(device: VxlanDevice, peers: Iterable[Peer | tuple[str, str]]) -> SyncResult:
    """VXLAN: route + neighbour + FDB entry per peer; stale ones removed."""
    ipr = netns.iproute()
    peer_list = _peers(peers)
    permanent = ndmsg.states["permanent"]

    # Neighbours (VTEP IP -> VTEP MAC) on the vxlan device.
    want_neigh = {vtep_ip(p.pod_cidr): vtep_mac(p.node_ip) for p in peer_list}
    for entry in ipr.get_neighbours(family=socket.AF_INET, ifindex=device.index):
        dst, lladdr = entry.get("dst"), entry.get("lladdr")
        if entry["state"] & permanent and want_neigh.get(dst) != lladdr:
            ipr.neigh("del", dst=dst, ifindex=device.index)
    for dst, lladdr in want_neigh.items():
        ipr.neigh("replace", dst=dst, lladdr=lladdr, ifindex=device.index, state=permanent)

    # FDB (VTEP MAC -> node IP) on the vxlan device.
    want_fdb = {vtep_mac(p.node_ip): p.node_ip for p in peer_list}
    have_fdb: dict[str, str | None] = {}
    for entry in ipr.fdb("dump", ifindex=device.index):
        if entry["ifindex"] != device.index:
            continue
        have_fdb[str(entry.get("lladdr"))] = entry.get("dst")
    for lladdr, dst in have_fdb.items():
        if lladdr != "00:00:00:00:00:00" and want_fdb.get(lladdr) != dst:
            ipr.fdb("del", ifindex=device.index, lladdr=lladdr, dst=dst)
    for lladdr, dst in want_fdb.items():
        if have_fdb.get(lladdr) != dst:
            ipr.fdb("append", ifindex=device.index, lladdr=lladdr, dst=dst)

    wanted: dict[str, dict[str, object]] = {
        str(p.network): {"gateway": vtep_ip(p.pod_cidr), "oif": device.index, "onlink": True}
        for p in peer_list
    }
    return _sync_route_table(wanted)


def delete_vxlan(name: str) -> None:
    """Remove the vxlan device; its routes, neighbours and FDB entries go with it. Idempotent."""
    ipr = netns.iproute()
    for index in ipr.link_lookup(ifname=name):
        try:
            ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise
