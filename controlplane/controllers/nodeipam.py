"""Node IPAM: give every Node a pod CIDR of its own, cut from the cluster's pod network.

Each Node without ``spec.podCIDR`` gets the next free ``/node_cidr_mask_size`` block of
``cluster_cidr`` (in ``spec.podCIDR`` and ``spec.podCIDRs``), written with a compare-and-swap
update so a node that got a CIDR from elsewhere in the meantime is never given a second one.
The set of used blocks is rebuilt from the nodes' specs when the controller starts (it is a
cache of the API's state, not a state of its own) and a block returns to the pool when its
node is deleted. Like Kubernetes' range allocator, the search continues after the last block
handed out, so a freed block is not reused at once.
"""

from __future__ import annotations

import ipaddress

from apimachinery.api.core_v1 import Node
from apimachinery.controller.runtime import DONE, Controller, Result, requeue_after
from apimachinery.events import WARNING
from controlplane.controllers.context import ControllerContext

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CIDRSet:
    """The blocks of one cluster CIDR: which are used, and the next free one."""

    def __init__(self, cluster_cidr: str, mask_size: int) -> None:
        self.cluster = ipaddress.ip_network(cluster_cidr, strict=False)
        if mask_size < self.cluster.prefixlen or mask_size > self.cluster.max_prefixlen:
            raise ValueError(f"node CIDR mask size {mask_size} does not fit in cluster CIDR {cluster_cidr}")
        self.mask_size = mask_size
        self.size = 1 << (mask_size - self.cluster.prefixlen)
        self._step = 1 << (self.cluster.max_prefixlen - mask_size)
        self._used: set[int] = set()
        self._next = 0

    def block(self, index: int) -> str:
        base = int(self.cluster.network_address) + index * self._step
        return str(ipaddress.ip_network((base, self.mask_size)))

    def index_of(self, cidr: str) -> int | None:
        """The block index of ``cidr`` if it is one of our blocks."""
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if net.version != self.cluster.version or net.prefixlen != self.mask_size:
            return None
        if not net.subnet_of(self.cluster):  # type: ignore[arg-type]
            return None
        return (int(net.network_address) - int(self.cluster.network_address)) // self._step

    def occupy(self, cidr: str) -> None:
        idx = self.index_of(cidr)
        if idx is not None:
            self._used.add(idx)

    def release(self, cidr: str) -> None:
        idx = self.index_of(cidr)
        if idx is not None:
            self._used.discard(idx)

    def allocate(self) -> str | None:
        for i in range(self.size):
            idx = (self._next + i) % self.size
            if idx not in self._used:
                self._used.add(idx)
                self._next = (idx + 1) % self.size
                return self.block(idx)
        return None

    @property
    def used(self) -> int:
        return len(self._used)


class NodeIpamReconciler:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.nodes = ctx.informers.for_model(Node)
        self.api = ctx.client.typed(Node)
        self.cidrs = CIDRSet(ctx.config.cluster_cidr, ctx.config.node_cidr_mask_size)
        # node name -> the CIDR we account to it (to release it when the node goes).
        self._assigned: dict[str, str] = {}
        self._rebuilt = False

    def _rebuild(self) -> None:
        """Occupy every CIDR the nodes already have (runs once, after the cache synced)."""
        for node in self.nodes.list():
            cidr = node.spec.pod_cidr
            if cidr:
                self.cidrs.occupy(cidr)
                self._assigned[node.metadata.name or ""] = cidr
        self._rebuilt = True

    async def reconcile(self, key: str) -> Result:
        if not self._rebuilt:
            self._rebuild()
        node = self.nodes.get(key)
        if node is None:
            cidr = self._assigned.pop(key, None)
            if cidr is not None:
                self.cidrs.release(cidr)
            return DONE
        if node.spec.pod_cidr:
            if self._assigned.get(key) != node.spec.pod_cidr:
                old = self._assigned.get(key)
                if old is not None:
                    self.cidrs.release(old)
                self.cidrs.occupy(node.spec.pod_cidr)
                self._assigned[key] = node.spec.pod_cidr
            return DONE
        cidr = self.cidrs.allocate()
        if cidr is None:
            self.ctx.recorder.event(
                node, WARNING, "CIDRNotAvailable",
                f"Node {key} status is now: CIDRNotAvailable",
            )
            return requeue_after(30.0)
        new = node.copy_deep()
        new.spec.pod_cidr = cidr
        new.spec.pod_cidrs = [cidr]
        try:
            # Carries the cached resourceVersion: a 409 means the node changed (maybe it got a
            # CIDR elsewhere); we give the block back and look again at the fresh node.
            await self.api.update(new)
        except Exception:
            self.cidrs.release(cidr)
            raise
        self._assigned[key] = cidr
        return DONE


def new_controller(ctx: ControllerContext) -> Controller:
    r = NodeIpamReconciler(ctx)
    c = Controller("nodeipam", r, workers=ctx.config.workers)
    c.watch(r.nodes)
    return c
