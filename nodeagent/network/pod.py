"""A pod's network: a veth pair from the node's bridge into the pod sandbox's namespace.

The host end (``veth<hash of the pod uid>``) is created already attached to the bridge and up;
its peer is created *directly inside* the sandbox's namespace (the veth's peer carries the
namespace's fd) under its final name, so there is no move-and-rename step. Addresses and
routes do not survive a namespace move anyway, so the inside is then configured by a
short-lived thread that ``setns``-es into the sandbox (see :mod:`.netns`): eth0's address, eth0
and loopback up, default route via the bridge's gateway. No process is started per pod; the
whole set-up is a handful of netlink messages.

The host end's name is derived from the pod uid alone, so teardown needs nothing but the uid
and works after an agent restart; deleting either end of a veth pair deletes both.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from nodeagent.network import netns

HOST_VETH_PREFIX = "veth"
POD_IFNAME = "eth0"


def host_veth_name(pod_uid: str) -> str:
    """``veth`` + 11 hex digits of the uid's hash: fits IFNAMSIZ, stable across restarts."""
    return HOST_VETH_PREFIX + hashlib.sha256(pod_uid.encode()).hexdigest()[:11]


@dataclass(frozen=True)
class PodNetwork:
    pod_uid: str
    netns: str
    ip: str
    prefix_len: int
    gateway: str
    bridge: str
    host_veth: str
    ifname: str
    mac: str


def _ignore(codes: Iterable[int], fn: Callable[..., object], *args: object, **kwargs: object) -> None:
    try:
        fn(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code not in tuple(codes):
            raise


def pod_mac(ip: str) -> str:
    """``0a:58:`` + the IPv4 address (as kubenet and OVN-Kubernetes do): locally administered,
    unique on the node, and the same MAC whenever the address is reused, so stale ARP entries
    for a recycled pod IP are still right."""
    return "0a:58:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def _configure_inside(ifname: str, ip: str, prefix_len: int, gateway: str) -> None:
    """Runs on a thread inside the pod's namespace: address, links up, default route."""
    with netns.fresh_iproute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise RuntimeError(f"{ifname} did not appear in the pod's network namespace")
        index = int(found[0])
        _ignore((errno.EEXIST,), ipr.addr, "add", index=index, address=ip, prefixlen=prefix_len)
        ipr.link("set", index=index, state="up")
        ipr.link("set", index=1, state="up")  # lo is always index 1 in a namespace
        ipr.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=index)


def _delete_link(ipr: IPRoute, name: str) -> bool:
    found = ipr.link_lookup(ifname=name)
    if not found:
        return False
    _ignore((errno.ENODEV,), ipr.link, "del", index=int(found[0]))
    return True


def setup_pod(
    sandbox_netns_path: str,
    pod_uid: str,
    ip: str,
    prefix_len: int,
    gateway: str,
    bridge: str,
    *,
    mtu: int | None = None,
    ifname: str = POD_IFNAME,
) -> PodNetwork:
    """Wire the sandbox at ``sandbox_netns_path`` to ``bridge`` with address ``ip``/``prefix_len``.

    Runs in the calling thread's namespace (the node's); blocking, a few ms: call it from a
    worker thread (``asyncio.to_thread``), not from the event loop's thread. Re-running it for
    the same pod starts over from a fresh veth pair, so a half-done earlier attempt is no
    obstacle. On failure, what it made is removed.
    """
    ipr = netns.iproute()
    found = ipr.link_lookup(ifname=bridge)
    if not found:
        raise RuntimeError(f"bridge {bridge} does not exist (node network not set up)")
    host = host_veth_name(pod_uid)
    mac = pod_mac(ip)
    peer: dict[str, object] = {"ifname": ifname, "address": mac}
    attrs: dict[str, object] = {"ifname": host, "kind": "veth", "master": int(found[0]), "state": "up"}
    if mtu is not None:
        peer["mtu"] = attrs["mtu"] = mtu
    fd = os.open(sandbox_netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        attrs["peer"] = {**peer, "net_ns_fd": fd}
        try:
            ipr.link("add", **attrs)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise
            # An earlier, unfinished attempt: start over (its peer goes with it).
            _delete_link(ipr, host)
            ipr.link("add", **attrs)
    finally:
        os.close(fd)
    try:
        ipr.brport("set", ifname=host, mode=1)  # hairpin: see bridge.set_hairpin
        netns.run_in_netns(sandbox_netns_path, _configure_inside, ifname, ip, prefix_len, gateway)
    except BaseException:
        _delete_link(ipr, host)
        raise
    return PodNetwork(pod_uid, sandbox_netns_path, ip, prefix_len, gateway, bridge, host, ifname, mac)


def teardown_pod(pod_uid: str) -> bool:
    """Remove the pod's veth pair (in the calling thread's namespace). Idempotent; True if there
    was one. The sandbox's namespace itself belongs to the runtime. The pod's IP is released by
    the caller (:meth:`..ipam.IPAM.release`)."""
    return _delete_link(netns.iproute(), host_veth_name(pod_uid))


def reconcile_pod_links(bridge: str, live_pod_uids: Iterable[str]) -> list[str]:
    """Delete veths on ``bridge`` that belong to no live pod (e.g. their sandbox was removed
    while the agent was down but the namespace is still held); returns their names."""
    ipr = netns.iproute()
    found = ipr.link_lookup(ifname=bridge)
    if not found:
        return []
    wanted = {host_veth_name(uid) for uid in live_pod_uids}
    removed = []
    for link in ipr.get_links(master=int(found[0])):
        name = str(link.get("ifname"))
        if name.startswith(HOST_VETH_PREFIX) and name not in wanted:
            if _delete_link(ipr, name):
                removed.append(name)
    return removed

