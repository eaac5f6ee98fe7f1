"""Hollow nodes: many fake nodes in one process, for scale studies without root.

Each hollow node is a real Node object with a real Lease and real heartbeats; only the runtime
is fake: :class:`~nodeagent.cri.fake.FakeRuntime`, the in-memory implementation of the runtime
service, called in-process through the same :class:`~nodeagent.cri.client.RuntimeClient` the
native agent uses (a thousand nodes could not each serve a socket). A pod "starts" as a sandbox
and one started container per container of the pod (container ids ``fake://...``), and "stops"
when its sandbox is removed. :class:`HollowNodes` is the pod sync loop for all nodes of the
process:

* one pod informer over every *bound* pod (``fieldSelector=spec.nodeName!=``), filtered by the
  process's node names: one watch scales to a thousand nodes where a watch per node would not;
* a work queue of pod keys and a few workers; ``sync(key)`` is level-triggered and idempotent:
  a bound, live pod is started and its Running/Ready status written (unless the stored status
  already says so); a pod with a deletionTimestamp is stopped, and after ``stop_delay`` deleted
  with gracePeriodSeconds=0 (what a kubelet does once the containers are gone).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any

from apimachinery.api.core_v1 import Pod
from apimachinery.client import ApiClient, Informer, WorkQueue
from apimachinery.errors import ApiError
from apimachinery.meta import now
from nodeagent import lease as leases
from nodeagent import node as nodes
from nodeagent.agent.podqueue import work_pods
from nodeagent.agent.podsync import (
    LABEL_IMAGE,
    LABEL_IMAGE_ID,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
)
from nodeagent.cri.fake import FakeRuntime
from nodeagent.periodic import run_until, spread_forever
from nodeagent.runtime.container import ContainerSpec
from nodeagent.status import ContainerRun, PodStatusWriter, is_running_as, running_status

log = logging.getLogger(__name__)


def _fake_id(name: str) -> str:
    """A stable id (sandbox, container) so that a repeated sync finds what it made."""
    return hashlib.sha256(name.encode()).hexdigest()


class IPPool:
    """Pod IPs from a node's pod CIDR (the network and gateway addresses are never handed out)."""

    def __init__(self, cidr: str) -> None:
        self.net = ipaddress.ip_network(cidr)
        self._by_uid: dict[str, str] = {}
        self._free = [str(ip) for ip in list(self.net.hosts())[1:]][::-1]

    def assign(self, uid: str) -> str:
        ip = self._by_uid.get(uid)
        if ip is None:
            if not self._free:
                raise RuntimeError(f"pod CIDR {self.net} is exhausted")
            ip = self._free.pop()
            self._by_uid[uid] = ip
        return ip

    def release(self, uid: str) -> None:
        ip = self._by_uid.pop(uid, None)
        if ip is not None:
            self._free.append(ip)


@dataclass
class HollowNode:
    config: nodes.NodeConfig
    ips: IPPool
    uid: str | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)


def hollow_configs(
    base_name: str, count: int | None, *, node_ip: str = "10.128.0.1", cpu: str = "4", memory: str = "16Gi",
    pods: int = 110, labels: dict[str, str] | None = None,
) -> list[nodes.NodeConfig]:
    """``count`` nodes NAME-0..NAME-{count-1} (or just NAME when count is None), with consecutive
    fake InternalIPs from ``node_ip`` and a /24 pod CIDR each, derived from the node's IP so
    that two processes given distinct IP ranges get distinct pod ranges too."""
    base = ipaddress.IPv4Address(node_ip)
    names = [base_name] if count is None else [f"{base_name}-{i}" for i in range(count)]
    out = []
    for i, name in enumerate(names):
        ip = base + i
        third, fourth = ip.packed[2], ip.packed[3]
        cidr = f"10.{64 + third % 64}.{fourth}.0/24"
        out.append(nodes.NodeConfig(name=name, internal_ip=str(ip), pod_cidr=cidr, cpu=cpu, memory=memory,
                                    pods=pods, labels=dict(labels or {}), runtime_version=FakeRuntime.version))
    return out


class HollowNodes:
    """Registers the nodes, keeps their leases and heartbeats, and runs their pods (fakely)."""

    def __init__(
        self,
        client: ApiClient,
        configs: list[nodes.NodeConfig],
        *,
        lease_interval: float = 10.0,
        status_interval: float = 60.0,
        stop_delay: float = 0.2,
        workers: int = 16,
        run_pods: bool = True,
    ) -> None:
        self.client = client
        self.nodes = {c.name: HollowNode(c, IPPool(c.pod_cidr or "10.64.0.0/24")) for c in configs}
        self.lease_interval = lease_interval
        self.status_interval = status_interval
        self.stop_delay = stop_delay
        self.workers = workers
        self.run_pods = run_pods
        self.runtime = FakeRuntime()  # one for all nodes of the process: pods are keyed by uid
        self.cri = self.runtime.client()
        self.writer = PodStatusWriter(client)
        self.pods: Informer[Pod] = Informer(client, Pod, field_selector="spec.nodeName!=")
        self.queue: WorkQueue[str] = WorkQueue(name="hollow-pods")
        self.leases = leases.LeaseRenewer(client, {}, interval=lease_interval)
        self.pod_rt = client.scheme.for_model(Pod)
        # key -> (uid, node): what this agent started, so a vanished pod can be cleaned up.
        self._started: dict[str, tuple[str, str]] = {}
        self._stopping: dict[str, float] = {}  # uid -> loop time it may be deleted
        self.registered = asyncio.Event()
        self.deleted = 0

    # -- setup ---------------------------------------------------------------------------------

    async def register_all(self, concurrency: int = 32) -> None:
        slots = asyncio.Semaphore(concurrency)

        async def one(hn: HollowNode) -> None:
            async with slots:
                stored = await nodes.register(self.client, hn.config)
                hn.uid = (stored.get("metadata") or {}).get("uid")
                hn.conditions = list((stored.get("status") or {}).get("conditions") or [])

        await asyncio.gather(*(one(hn) for hn in self.nodes.values()))
        self.leases.node_uids = {name: hn.uid for name, hn in self.nodes.items()}
        await self.leases.ensure_namespace()
        self.registered.set()

    async def _heartbeat(self, name: str) -> None:
        hn = self.nodes[name]
        hn.conditions = await nodes.heartbeat(self.client, name, hn.conditions)

    # -- running -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        await self.register_all()
        names = list(self.nodes)
        background = [
            asyncio.create_task(spread_forever(names, self.lease_interval, self.leases.renew, what="lease renewal")),
            asyncio.create_task(spread_forever(names, self.status_interval, self._heartbeat, what="node heartbeat")),
        ]
        if self.run_pods:
            self.pods.add_handler(self._on_pod, lambda _old, new: self._on_pod(new), self._on_pod)
            self.pods.start()
            background += [asyncio.create_task(work_pods(self.queue, self.sync, log)) for _ in range(self.workers)]
        try:
            await run_until(stop, background)
        finally:
            self.queue.shutdown()
            await self.pods.stop()

    def _on_pod(self, pod: Pod) -> None:
        if pod.spec.node_name in self.nodes or pod.key in self._started:
            self.queue.add(pod.key)

    async def sync(self, key: str) -> None:
        pod = self.pods.get(key)
        started = self._started.get(key)
        if pod is None or (started is not None and started[0] != pod.metadata.uid):
            # Gone (or replaced by a new pod of the same name): forget what ran.
            if started is not None:
                await self._forget(key, *started)
            if pod is None:
                return
        hn = self.nodes.get(pod.spec.node_name or "")
        if hn is None:
            return
        uid = pod.metadata.uid or ""
        if pod.metadata.deletion_timestamp:
            await self._stop_and_delete(key, pod, hn)
            return
        if pod.status.phase in ("Succeeded", "Failed"):
            return
        containers = await self._run_pod(pod)
        self._started[key] = (uid, hn.config.name)
        pod_ip = hn.ips.assign(uid)
        if is_running_as(pod, pod_ip, containers):
            return
        start_time = pod.status.start_time or now()
        status = running_status(pod, host_ip=hn.config.internal_ip, pod_ip=pod_ip, containers=containers,
                                start_time=start_time)
        await self.writer.write(pod, status)

    async def _stop_and_delete(self, key: str, pod: Pod, hn: HollowNode) -> None:
        uid = pod.metadata.uid or ""
        loop = asyncio.get_running_loop()
        if self.runtime.is_running(uid) or uid not in self._stopping:
            if uid not in self._stopping:
                self._stopping[uid] = loop.time() + self.stop_delay
            await self._stop_pod(uid)
        remaining = self._stopping[uid] - loop.time()
        if remaining > 0:
            # Containers "take" stop_delay to exit; come back then rather than hold a worker.
            self.queue.add_after(key, remaining)
            return
        try:
            await self.client.delete(self.pod_rt, pod.metadata.name or "", pod.metadata.namespace,
                                     grace_period_seconds=0, preconditions={"uid": uid})
            self.deleted += 1
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise
        await self._forget(key, uid, hn.config.name)

    async def _run_pod(self, pod: Pod) -> list[ContainerRun]:
        """The pod's sandbox and started containers (idempotent: a running pod keeps its own)."""
        uid = pod.metadata.uid or ""
        sid = _fake_id(uid)
        found = {c.name: c for c in await self.cri.list_containers(sandbox_id=sid)}
        if any(c.name not in found for c in pod.spec.containers):
            await self.cri.run_pod_sandbox(uid, pod.metadata.name or "", sandbox_id=sid,
                                           labels={LABEL_POD_UID: uid, LABEL_POD_NAME: pod.metadata.name or "",
                                                   LABEL_POD_NAMESPACE: pod.metadata.namespace or ""})
            for c in pod.spec.containers:
                if c.name in found:
                    continue
                image = c.image or ""
                info = await self.cri.pull_image(image, "IfNotPresent")
                spec = ContainerSpec(name=c.name, layers=[], args=[*(c.command or []), *(c.args or [])], sandbox_id=sid,
                                     labels={LABEL_IMAGE: image, LABEL_IMAGE_ID: f"fake://{info.repo_digests[0]}"})
                cid = await self.cri.create_container(spec, _fake_id(f"{uid}/{c.name}"))
                await self.cri.start_container(cid)
            found = {c.name: c for c in await self.cri.list_containers(sandbox_id=sid)}
        return [ContainerRun(c.name, found[c.name].labels[LABEL_IMAGE], found[c.name].labels[LABEL_IMAGE_ID],
                             f"fake://{found[c.name].id}", found[c.name].started_at or "") for c in pod.spec.containers]

    async def _stop_pod(self, uid: str) -> None:
        sid = _fake_id(uid)
        await self.cri.stop_pod_sandbox(sid, 0)
        await self.cri.remove_pod_sandbox(sid)

    async def _forget(self, key: str, uid: str, node_name: str) -> None:
        await self._stop_pod(uid)
        self._stopping.pop(uid, None)
        hn = self.nodes.get(node_name)
        if hn is not None:
            hn.ips.release(uid)
        self._started.pop(key, None)
