"""Node heartbeats through coordination.k8s.io/v1 Leases in ``kube-node-lease``.

Each node owns the Lease named after it: holderIdentity is the node name, leaseDurationSeconds
40, and renewTime (a MicroTime) moves every ``interval`` seconds. A node controller judges a node's
liveness by it. Leases are written with PUT against the version this agent last wrote, so a
conflict means someone else touched it: re-read and renew again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from apimachinery.api.coordination_v1 import Lease
from apimachinery.client import ApiClient
from apimachinery.errors import ApiError
from apimachinery.meta import now_micro
from nodeagent.periodic import spread_forever

NODE_LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40


def lease_for(node_name: str, node_uid: str | None = None, *, duration: int = LEASE_DURATION_SECONDS) -> dict[str, Any]:
    ts = now_micro()
    md: dict[str, Any] = {"name": node_name, "namespace": NODE_LEASE_NAMESPACE}
    if node_uid:
        # Owned by the Node, so deleting the node garbage-collects its lease.
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md,
        "spec": {"holderIdentity": node_name, "leaseDurationSeconds": duration, "renewTime": ts},
    }


class LeaseRenewer:
    """Keeps the leases of a set of nodes fresh."""

    def __init__(
        self, client: ApiClient, node_uids: dict[str, str | None], *, interval: float = 10.0,
        duration: int = LEASE_DURATION_SECONDS, concurrency: int = 16,
    ) -> None:
        self.client = client
        self.node_uids = node_uids
        self.interval = interval
        self.duration = duration
        self.concurrency = concurrency
        self.rt = client.scheme.for_model(Lease)
        self._current: dict[str, dict[str, Any]] = {}
        self.renewals = 0

    async def ensure_namespace(self) -> None:
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NODE_LEASE_NAMESPACE}}
        try:
            await self.client.request("POST", "/api/v1/namespaces", body=ns)
        except ApiError as exc:
            # 403: a node credential may not create namespaces; the control plane makes this one.
            if exc.code not in (403, 409):
                raise

    async def renew(self, node_name: str) -> None:
        """Renew (or create) one node's lease now."""
        lease = self._current.get(node_name)
        for _ in range(3):
            if lease is None:
                try:
                    lease = await self.client.create(
                        self.rt, lease_for(node_name, self.node_uids.get(node_name), duration=self.duration))
                    break
                except ApiError as exc:
                    if exc.code != 409:
                        raise
                    lease = await self.client.get(self.rt, node_name, NODE_LEASE_NAMESPACE)
            spec = lease.setdefault("spec", {})
            spec["holderIdentity"] = node_name
            spec["leaseDurationSeconds"] = self.duration
            spec["renewTime"] = now_micro()
            try:
                lease = await self.client.replace(self.rt, lease, NODE_LEASE_NAMESPACE)
                break
            except ApiError as exc:
                if exc.code == 404:
                    lease = None
                elif exc.code == 409:
                    lease = await self.client.get(self.rt, node_name, NODE_LEASE_NAMESPACE)
                else:
                    raise
        if lease is not None:
            self._current[node_name] = lease
            self.renewals += 1

    async def run(self, names: Sequence[str] | None = None) -> None:
        await self.ensure_namespace()
        await spread_forever(list(names or self.node_uids), self.interval, self.renew,
                             concurrency=self.concurrency, what="lease renewal")

    async def renew_all(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)

        async def one(name: str) -> None:
            async with slots:
                await self.renew(name)

        await asyncio.gather(*(one(n) for n in self.node_uids))
