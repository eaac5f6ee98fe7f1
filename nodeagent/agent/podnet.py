"""The node agent's pod network: bridge, pod IPs and veths, routes to other nodes, services, DNS.

:class:`PodNetworking` ties the libraries of :mod:`nodeagent.network`, :mod:`nodeagent.proxy`
and :mod:`nodeagent.dns` to one node agent:

* start-up waits until the node IPAM controller gave the Node a ``spec.podCIDR``, then sets up
  the bridge, gateway and masquerade (:func:`~nodeagent.network.bridge.setup_node`), and the
  VXLAN device in vxlan mode;
* per pod (not hostNetwork): an address from the node's IPAM (files under the data dir, so they
  survive the agent) *before* the sandbox exists, so the sandbox's /etc/hosts can name it and
  its resolv.conf can be written from the pod's ``dnsPolicy``; once the sandbox exists its
  namespace gets the veth (:func:`~nodeagent.network.pod.setup_pod`); on removal, veth and
  address go;
* ``hostPort``: the pod's mappings (:mod:`nodeagent.network.hostports`) join the node's NAT
  table when the pod is wired and leave it when it is unwired; they are kept under the data
  dir, so a restarted agent rewrites the table unchanged at start;
* :meth:`reconcile` (after an agent restart, even one after ``kill -9``) frees addresses and
  deletes veths of pods that no longer have a sandbox;
* a Node informer keeps a route to every other node's podCIDR (host-gw: via its InternalIP;
  vxlan: through the VXLAN device), level-triggered and coalesced like every loop here;
* the service proxy (one nftables table named after the node) and the cluster DNS, listening on
  the bridge's gateway address port 53, which every pod of the node reaches directly.

Every netlink and nft call runs on a worker thread (``asyncio.to_thread``): pyroute2 sockets are
blocking and bound to the thread that uses them (see :mod:`nodeagent.network.netns`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apimachinery.api.core_v1 import Node, Pod
from apimachinery.client import ApiClient, ApiConnectionError, Informer
from apimachinery.errors import ApiError
from nodeagent.dns import ClusterDNS, resolv_conf
from nodeagent.network import bridge, netns, pod, routes
from nodeagent.network.hostports import HostPortStore, pod_host_ports
from nodeagent.network.ipam import IPAM
from nodeagent.proxy.proxier import Proxier

log = logging.getLogger(__name__)

MODE_NONE, MODE_HOST_GW, MODE_VXLAN = "none", "host-gw", "vxlan"
NETWORK_MODES = (MODE_NONE, MODE_HOST_GW, MODE_VXLAN)
DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"
DNS_PORT = 53
VXLAN_DEVICE = "kl-vxlan"
VXLAN_VNI = 4242

#: (nameservers, searches, options), as :meth:`nodeagent.runtime.container.Runtime.create_sandbox` takes it.
DnsTuple = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


@dataclass
class NetworkConfig:
    node_name: str
    node_ip: str
    data_dir: Path
    mode: str = MODE_HOST_GW
    cluster_cidr: str = DEFAULT_CLUSTER_CIDR
    cluster_domain: str = "cluster.local"
    dns_port: int = DNS_PORT  # resolv.conf cannot name a port: anything but 53 is for tests only
    pod_cidr_poll: float = 0.5
    underlay_mtu: int = 1500

    @property
    def pod_mtu(self) -> int | None:
        """vxlan: the underlay's MTU minus the encapsulation, on the bridge and every pod, so
        pods never send what the tunnel would have to fragment. host-gw: the default."""
        return self.underlay_mtu - routes.VXLAN_OVERHEAD if self.mode == MODE_VXLAN else None


def table_suffix(node_name: str) -> str:
    """The node's proxy table suffix: characters nft does not take become ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", node_name)


def dns_tuple(text: str) -> DnsTuple:
    """Split resolv.conf text (as :func:`nodeagent.dns.resolv_conf` renders it) into the
    runtime's (nameservers, searches, options)."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            nameservers.append(words[1])
        elif words[0] == "search":
            searches = words[1:]
        elif words[0] == "options":
            options = words[1:]
    return tuple(nameservers), tuple(searches), tuple(options)


def _node_ip(node: Node) -> str | None:
    for a in node.status.addresses or [] if node.status else []:
        if a.type == "InternalIP" and a.address:
            return a.address
    return None


def enable_bridge_netfilter() -> None:
    """Bridged frames through the ip family's hooks (per network namespace). A pod reaching a
    ClusterIP backed by a pod on the same bridge gets its reply bridged straight back; only
    then does the reply meet conntrack and get its source translated back to the ClusterIP."""
    path = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    if path.exists() and path.read_text().strip() != "1":
        path.write_text("1\n")


class PodNetworking:
    """One node's pod network, services and DNS (see the module docstring)."""

    def __init__(self, client: ApiClient, config: NetworkConfig) -> None:
        self.client = client
        self.config = config
        self.node: bridge.NodeNetwork | None = None
        self.ipam: IPAM | None = None
        self.host_ports: HostPortStore | None = None
        self._nat_lock = asyncio.Lock()  # one NAT table rewrite at a time, from the latest state
        self.vxlan: routes.VxlanDevice | None = None
        self.nodes: Informer[Node] = Informer(client, Node)
        self.proxier: Proxier | None = None
        self.dns: ClusterDNS | None = None
        self.ready = asyncio.Event()
        self._wired: set[str] = set()  # pod uids whose veth this process created or found
        self._routes_dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.nodes.on_event(lambda _k: self._routes_dirty.set())

    # -- start / stop -----------------------------------------------------------------------

    async def wait_pod_cidr(self) -> str:
        """The Node's ``spec.podCIDR``, once the node IPAM controller has written it."""
        rt = self.client.resource(Node)
        while True:
            try:
                node = await self.client.get(rt, self.config.node_name)
                cidr = (node.get("spec") or {}).get("podCIDR")
                if cidr:
                    return str(cidr)
            except (ApiError, ApiConnectionError) as exc:
                log.debug("waiting for the podCIDR: %s", exc)
            await asyncio.sleep(self.config.pod_cidr_poll)

    async def start(self) -> None:
        c = self.config
        cidr = await self.wait_pod_cidr()
        self.host_ports = await asyncio.to_thread(HostPortStore, c.data_dir / "hostports")
        self.node = await asyncio.to_thread(bridge.setup_node, c.node_name, cidr, c.cluster_cidr, mtu=c.pod_mtu,
                                            host_ports=self.host_ports.all())
        await asyncio.to_thread(enable_bridge_netfilter)
        if c.mode == MODE_VXLAN:
            self.vxlan = await asyncio.to_thread(routes.ensure_vxlan, VXLAN_DEVICE, VXLAN_VNI, c.node_ip, cidr,
                                                 underlay_mtu=c.underlay_mtu)
        self.ipam = await asyncio.to_thread(IPAM, cidr, c.data_dir / "ipam")
        log.info("pod network %s on %s (gateway %s, %s)", cidr, self.node.bridge, self.node.gateway, c.mode)
        self.nodes.start()
        self._task = asyncio.create_task(self._sync_routes_loop(), name="node-routes")
        self.proxier = Proxier(self.client, table_suffix=table_suffix(c.node_name), node_ips=[c.node_ip],
                               cluster_cidr=c.cluster_cidr)
        self.proxier.start()
        self.dns = ClusterDNS(self.client, host=self.node.gateway, port=c.dns_port, cluster_domain=c.cluster_domain)
        await self.dns.start()
        self.ready.set()

    async def stop(self) -> None:
        """Stop the loops. Bridge, routes, rules and pods' veths stay: pods keep running (and
        keep their network) while the agent is away, as with a kubelet."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.nodes.stop()
        if self.proxier is not None:
            await self.proxier.stop()
        if self.dns is not None:
            await self.dns.stop()
        await asyncio.to_thread(netns.close_thread_iproutes)

    # -- routes to other nodes ----------------------------------------------------------------

    def peers(self) -> list[routes.Peer]:
        out = []
        for n in self.nodes.list():
            if n.metadata.name == self.config.node_name or n.spec is None or not n.spec.pod_cidr:
                continue
            ip = _node_ip(n)
            if ip:
                out.append(routes.Peer(n.spec.pod_cidr, ip))
        return sorted(out, key=lambda p: p.pod_cidr)

    async def sync_routes(self) -> routes.SyncResult:
        peers = self.peers()
        if self.vxlan is not None:
            return await asyncio.to_thread(routes.sync_vxlan_peers, self.vxlan, peers)
        return await asyncio.to_thread(routes.sync_host_gw_routes, peers)

    async def _sync_routes_loop(self) -> None:
        await self.nodes.wait_synced()
        while True:
            self._routes_dirty.clear()
            try:
                result = await self.sync_routes()
                if result.added or result.removed:
                    log.info("routes to other nodes: added %s, removed %s", result.added, result.removed)
            except Exception as exc:
                log.warning("syncing routes to other nodes failed: %s", exc)
                await asyncio.sleep(2.0)
                self._routes_dirty.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._routes_dirty.wait(), 60.0)  # periodic repair too
            await asyncio.sleep(0.05)  # coalesce a burst of Node updates (heartbeats)

    # -- pods ---------------------------------------------------------------------------------

    def _require(self) -> tuple[bridge.NodeNetwork, IPAM]:
        if self.node is None or self.ipam is None:
            raise RuntimeError("pod networking is not started")
        return self.node, self.ipam

    async def allocate(self, pod_uid: str) -> str:
        """The pod's IP (the one it holds already, or a new one)."""
        _, ipam = self._require()
        return await asyncio.to_thread(ipam.allocate, pod_uid)

    def resolv_conf(self, p: Pod) -> DnsTuple:
        """The pod's resolv.conf for its dnsPolicy; ClusterFirst names this node's DNS."""
        node, _ = self._require()
        spec = p.spec
        text = resolv_conf(
            p.metadata.namespace or "default", node.gateway, self.config.cluster_domain, spec.dns_policy,
            host_network=bool(spec.host_network), dns_config=spec.dns_config,
        )
        return dns_tuple(text)

    async def _apply_nat(self) -> None:
        node, _ = self._require()
        assert self.host_ports is not None
        async with self._nat_lock:
            await asyncio.to_thread(bridge.apply_nat, node, self.host_ports.all())

    async def _set_host_ports(self, pod_uid: str, p: Pod | None, ip: str) -> None:
        """Publish (or, without ``p``, withdraw) the pod's hostPorts; rewrites the NAT table
        only when they changed."""
        assert self.host_ports is not None
        mappings = pod_host_ports(p, ip) if p is not None else []
        if await asyncio.to_thread(self.host_ports.put, pod_uid, mappings):
            await self._apply_nat()
            if mappings:
                log.info("pod uid %s: host ports %s", pod_uid,
                         ", ".join(f"{m.host_port}/{m.protocol}->{m.container_port}" for m in mappings))

    async def wire(self, pod_uid: str, netns_path: str, ip: str, p: Pod | None = None) -> None:
        """Give the sandbox's namespace its veth and address (once; idempotent across restarts:
        a veth that already exists for the pod is kept, not rebuilt), and publish the pod's
        hostPorts when ``p`` is given."""
        node, _ = self._require()
        if pod_uid in self._wired:
            return
        host_veth = pod.host_veth_name(pod_uid)

        def exists() -> bool:
            return bool(netns.iproute().link_lookup(ifname=host_veth))

        if not await asyncio.to_thread(exists):
            await asyncio.to_thread(pod.setup_pod, netns_path, pod_uid, ip, node.prefix_len, node.gateway,
                                    node.bridge, mtu=self.config.pod_mtu)
            log.info("pod uid %s: %s on %s", pod_uid, ip, host_veth)
        if p is not None:
            await self._set_host_ports(pod_uid, p, ip)
        self._wired.add(pod_uid)

    async def unwire(self, pod_uid: str) -> None:
        """Delete the pod's veth and free its address. Idempotent."""
        self._wired.discard(pod_uid)
        if self.host_ports is not None:
            await self._set_host_ports(pod_uid, None, "")
        await asyncio.to_thread(pod.teardown_pod, pod_uid)
        if self.ipam is not None:
            await asyncio.to_thread(self.ipam.release, pod_uid)

    async def reconcile(self, live_pod_uids: set[str]) -> dict[str, Any]:
        """Free addresses and delete veths of pods without a sandbox (removed while the agent
        was down, or a crash between allocation and sandbox creation)."""
        node, ipam = self._require()
        freed = await asyncio.to_thread(ipam.reconcile, live_pod_uids)
        links = await asyncio.to_thread(pod.reconcile_pod_links, node.bridge, live_pod_uids)
        unpublished: list[str] = []
        if self.host_ports is not None:
            unpublished = await asyncio.to_thread(self.host_ports.reconcile, live_pod_uids)
            if unpublished:
                await self._apply_nat()
        if freed or links or unpublished:
            log.info("network reconcile: freed %s, removed veths %s, host ports of %s withdrawn",
                     sorted(freed), links, unpublished)
        return {"freed": freed, "links": links, "host_ports": unpublished}

