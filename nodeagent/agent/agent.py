"""The node agent with the native runtime: register, heartbeat, and run this node's pods.

Start-up builds the runtime (which connects to, or starts, the node's spawner: containers
outlive the agent) and the image service under the data dir, optionally builds the offline
``busybox:latest`` image, and serves both as the runtime service (:mod:`nodeagent.cri`) on
``DATA_DIR/runtime.sock`` in this process (or, with ``runtime_endpoint``, uses one served
elsewhere). The pod sync talks to the runtime only through that service's client. Then it
registers the Node (capacity from the host unless given) and runs:

* Lease renewals and node condition heartbeats;
* one pod informer with ``fieldSelector=spec.nodeName=<node>`` whose events only enqueue keys;
* a relist of the runtime every ``relist_interval`` seconds (like the kubelet's PLEG): a
  container whose state changed (it exited) enqueues its pod;
* workers that run :meth:`PodSyncer.sync` for one key at a time (the queue never hands one
  key to two workers), retried with back-off when they fail;
* with a network mode (``host-gw`` or ``vxlan``), pod networking (:mod:`.podnet`): it waits for
  the Node's podCIDR, sets up the bridge, gives every pod an IP and a veth, keeps routes to the
  other nodes, and runs the service proxy and the cluster DNS of the node. Network mode
  ``none`` leaves pods with a loopback-only namespace.

At start every pod the runtime still runs something for is enqueued too, so pods deleted while
the agent was down are cleaned up, and pod IPs and veths that belong to no sandbox are freed. Stopping the agent leaves containers running (as a kubelet
does); :func:`purge` removes everything an agent left on the node (tests, labs).
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apimachinery.agentapi import DEFAULT_AGENT_PORT, SERVING_CERT_ANNOTATION
from apimachinery.api.core_v1 import Pod
from apimachinery.client import ApiClient, Informer, WorkQueue
from nodeagent import lease as leases
from nodeagent import node as nodes
from nodeagent.agent.execproc import NativeExec
from nodeagent.agent.podnet import (
    DEFAULT_CLUSTER_CIDR,
    MODE_NONE,
    VXLAN_DEVICE,
    NetworkConfig,
    PodNetworking,
    table_suffix,
)
from nodeagent.agent.podqueue import TRANSIENT, work_pods
from nodeagent.agent.podsync import (
    LABEL_IMAGE,
    LABEL_IMAGE_ID,
    LABEL_POD_UID,
    PodSyncer,
    SyncConfig,
    pod_key_of,
)
from nodeagent.agent.server import AgentServer, AgentServerConfig
from nodeagent.agent.summary import SummaryCollector
from nodeagent.agent.volumes import pod_dir
from nodeagent.cri.client import RuntimeClient
from nodeagent.cri.server import SOCKET_NAME as RUNTIME_SOCKET
from nodeagent.cri.server import RuntimeServer, ensure_busybox, native_server, runtime_dirs
from nodeagent.network import bridge, netns, routes
from nodeagent.periodic import run_until
from nodeagent.proxy.rules import table_name
from nodeagent.runtime import rootfs
from nodeagent.runtime.container import Runtime, stop_spawner_process
from nodeagent.runtime.images import ImageService
from nodeagent.runtime.images.gc import ImageGC, ImageGCPolicy
from nodeagent.runtime.logs import RotationPolicy
from nodeagent.runtime.spawner import SpawnerError

log = logging.getLogger(__name__)

RUNTIME_VERSION = "kube-lite://0.1.0"


def host_cpus() -> str:
    return str(len(os.sched_getaffinity(0)) or os.cpu_count() or 1)


def host_memory() -> str:
    """MemTotal from /proc/meminfo as a quantity (``16303480Ki``)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1])}Ki"
    raise OSError("no MemTotal in /proc/meminfo")


def host_os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip('"')
    except OSError:
        pass
    return platform.system()


@dataclass
class AgentConfig:
    node_name: str
    node_ip: str
    data_dir: Path
    cpu: str | None = None  # None: the host's
    memory: str | None = None  # None: the host's
    pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    lease_interval: float = 10.0
    status_interval: float = 60.0
    relist_interval: float = 1.0
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    busybox_image: bool = False
    workers: int = 8
    network_mode: str = MODE_NONE  # none | host-gw | vxlan
    cluster_cidr: str = DEFAULT_CLUSTER_CIDR
    cluster_domain: str = "cluster.local"
    dns_port: int = 53
    agent_port: int = DEFAULT_AGENT_PORT  # logs/exec for the API server (nodeagent.agent.server)
    log_policy: RotationPolicy = field(default_factory=RotationPolicy)
    pod_pids_limit: int | None = None  # the kubelet's --pod-max-pids (None: unlimited)
    image_gc: ImageGCPolicy = field(default_factory=ImageGCPolicy)
    image_gc_period: float = 300.0  # the kubelet's ImageGCPeriod (5 min)
    # The runtime service (unix:///path) to use; None: serve the native runtime in this process
    # on DATA_DIR/runtime.sock.
    runtime_endpoint: str | None = None

    @property
    def runtime_dir(self) -> Path:
        return runtime_dirs(self.data_dir)[0]

    @property
    def images_dir(self) -> Path:
        return runtime_dirs(self.data_dir)[1]


class NodeAgent:
    def __init__(self, client: ApiClient, config: AgentConfig) -> None:
        self.client = client
        self.config = config
        self.queue: WorkQueue[str] = WorkQueue(name=f"pods-{config.node_name}")
        self.pods: Informer[Pod] = Informer(client, Pod, field_selector=f"spec.nodeName={config.node_name}")
        self.leases = leases.LeaseRenewer(client, {}, interval=config.lease_interval)
        self.registered = asyncio.Event()
        self.runtime: Runtime | None = None
        self.images: ImageService | None = None
        self.runtime_server: RuntimeServer | None = None  # serving self.runtime and self.images
        self.cri: RuntimeClient | None = None  # what the pod sync talks to
        self.image_gc: ImageGC | None = None
        self.syncer: PodSyncer | None = None
        self.server: AgentServer | None = None
        self.network: PodNetworking | None = None
        if config.network_mode != MODE_NONE:
            self.network = PodNetworking(client, NetworkConfig(
                node_name=config.node_name, node_ip=config.node_ip, data_dir=config.data_dir,
                mode=config.network_mode, cluster_cidr=config.cluster_cidr, cluster_domain=config.cluster_domain,
                dns_port=config.dns_port,
            ))
        self._conditions: list[dict[str, Any]] = []

    def node_config(self) -> nodes.NodeConfig:
        c = self.config
        return nodes.NodeConfig(
            name=c.node_name, internal_ip=c.node_ip, cpu=c.cpu or host_cpus(), memory=c.memory or host_memory(),
            pods=c.pods, labels=dict(c.labels), runtime_version=RUNTIME_VERSION, os_image=host_os_image(),
            agent_port=self.server.port if self.server is not None else c.agent_port,
            annotations={SERVING_CERT_ANNOTATION: self.server.fingerprint} if self.server is not None else {},
        )

    def enqueue(self, key: str, delay: float = 0.0) -> None:
        if delay > 0:
            self.queue.add_after(key, delay)
        else:
            self.queue.add(key)

    async def setup(self) -> None:
        c = self.config
        c.data_dir.mkdir(parents=True, exist_ok=True)
        if c.runtime_endpoint is None:
            self.runtime = await asyncio.to_thread(Runtime, c.runtime_dir, c.node_name)
            self.images = ImageService(c.images_dir)
            self.image_gc = ImageGC(self.images, c.image_gc)
            if c.busybox_image:
                await ensure_busybox(self.images)
            self.runtime_server = native_server(c.data_dir / RUNTIME_SOCKET, self.runtime, self.images)
            await self.runtime_server.start()  # for other clients (exec, tools)
            # The agent itself calls the same servicers without the socket: a round trip through
            # gRPC costs more CPU than the runtime call itself (bench/podstart.py: agent CPU
            # 3.4 s over the socket vs 2.2 s in-process for 60 pods).
            self.cri = RuntimeClient.local(self.runtime_server.runtime, self.runtime_server.images)
        else:
            self.cri = RuntimeClient.connect(c.runtime_endpoint)
        await self.cri.wait_ready()
        self.syncer = PodSyncer(
            self.client, self.cri,
            SyncConfig(node_name=c.node_name, host_ip=c.node_ip, data_dir=c.data_dir,
                       backoff_base=c.backoff_base, backoff_max=c.backoff_max, pod_pids_limit=c.pod_pids_limit),
            self.enqueue, self.network,
        )
        await self._start_server()
        stored = await nodes.register(self.client, self.node_config())
        self._conditions = list((stored.get("status") or {}).get("conditions") or [])
        self.leases.node_uids = {c.node_name: (stored.get("metadata") or {}).get("uid")}
        await self.leases.ensure_namespace()
        await self.leases.renew(c.node_name)
        self.registered.set()
        if self.network is not None:
            await self.network.start()  # waits for the node IPAM controller's podCIDR

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        await self.setup()
        assert self.syncer is not None
        self.pods.add_handler(self._on_pod, lambda _old, new: self._on_pod(new), self._on_pod)
        self.pods.start()
        # Only a synced cache tells "deleted while the agent was down" from "not listed yet".
        await self.pods.wait_synced()
        if self.network is not None:
            sandboxes = await self.cri.list_pod_sandboxes() if self.cri else []
            await self.network.reconcile({s.labels.get(LABEL_POD_UID, "") for s in sandboxes} - {""})
        for key in await self.syncer.known_pod_keys():
            self.queue.add(key)
        background = [
            asyncio.create_task(self._every(self.config.lease_interval, self._renew_lease)),
            asyncio.create_task(self._every(self.config.status_interval, self._heartbeat)),
            asyncio.create_task(self._relist()),
            asyncio.create_task(self._every(self.config.image_gc_period, self._collect_images)),
            *(asyncio.create_task(self._worker()) for _ in range(self.config.workers)),
        ]
        try:
            await run_until(stop, background)
        finally:
            if self.server is not None:
                await self.server.stop()
            self.queue.shutdown()
            await self.pods.stop()
            for workers in self.syncer.probes.values():
                for w in workers.values():
                    w.cancel()
            if self.network is not None:
                await self.network.stop()
            if self.cri is not None:
                await self.cri.close()
            if self.runtime_server is not None:
                await self.runtime_server.stop()
            if self.images is not None:
                await self.images.close()
            if self.runtime is not None:
                self.runtime.close()  # the spawner and the containers live on

    async def _start_server(self) -> None:
        """The logs/exec API; its port and certificate fingerprint go on the Node."""
        c, ca = self.config, self.client.config.ca_data
        if self.runtime is None:
            log.warning("an external runtime service (%s): no logs/exec API", c.runtime_endpoint)
            return
        if not ca:
            log.warning("the kubeconfig names no certificate authority: no logs/exec API (it could not tell the API server)")
            return
        self.server = AgentServer(self.runtime, NativeExec(self.runtime), AgentServerConfig(
            c.node_name, c.node_ip, c.data_dir / "pki", ca, c.agent_port, c.log_policy), c.runtime_dir / "containers",
            SummaryCollector(self.runtime, c.node_name))
        await self.server.start()

    def _on_pod(self, pod: Pod) -> None:
        self.queue.add(pod.key)

    async def _every(self, interval: float, fn: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s failed: %s", getattr(fn, "__name__", fn), exc)

    async def _renew_lease(self) -> None:
        await self.leases.renew(self.config.node_name)

    async def _heartbeat(self) -> None:
        self._conditions = await nodes.heartbeat(self.client, self.config.node_name, self._conditions)

    async def _collect_images(self) -> None:
        """Image GC: what any container (running or exited) was made from stays."""
        if self.image_gc is None:
            return  # an external runtime service collects its own images
        assert self.cri is not None
        in_use = {v for c in await self.cri.list_containers()
                  for v in (c.labels.get(LABEL_IMAGE_ID), c.labels.get(LABEL_IMAGE)) if v}
        await asyncio.to_thread(self.image_gc.collect, in_use)

    async def _relist(self) -> None:
        """Enqueue the pod of every container whose state changed since the last relist."""
        assert self.cri is not None
        seen: dict[str, tuple[str, str | None]] = {}
        while True:
            try:
                current = {c.id: c for c in await self.cri.list_containers()}
            except Exception as exc:  # a container removed mid-listing, a spawner restart...
                log.debug("relist failed: %s", exc)
                await asyncio.sleep(self.config.relist_interval)
                continue
            for cid, c in current.items():
                state = (c.state, c.finished_at)
                if seen.get(cid) != state:
                    key = pod_key_of(c.labels)
                    if key:
                        self.queue.add(key)
            seen = {cid: (c.state, c.finished_at) for cid, c in current.items()}
            await asyncio.sleep(self.config.relist_interval)

    async def _worker(self) -> None:
        syncer = self.syncer
        assert syncer is not None

        async def sync(key: str) -> None:
            await syncer.sync(key, self.pods.get(key))

        await work_pods(self.queue, sync, log, (*TRANSIENT, SpawnerError))


def purge_network(node_name: str) -> None:
    """Remove the node network an agent set up in the calling thread's network namespace:
    bridge (pods' veths go with it), NAT table, proxy table, VXLAN device, kube-lite routes."""
    pod_cidr = "0.0.0.0/32"  # teardown_node only needs the names
    bridge.teardown_node(bridge.NodeNetwork(
        node_name, pod_cidr, pod_cidr, bridge.bridge_name(node_name), "", 0, bridge.nft_table_name(node_name)))
    proxy_table = table_name(table_suffix(node_name))
    bridge.nft(f"table ip {proxy_table}\ndelete table ip {proxy_table}\n")
    routes.delete_vxlan(VXLAN_DEVICE)
    routes.sync_host_gw_routes([])
    netns.close_thread_iproutes()


def purge(data_dir: Path, node_name: str) -> list[str]:
    """Remove every container, sandbox, pod volume and cgroup an agent left under ``data_dir``,
    then end its spawner. Returns what could not be removed (empty when all is gone).
    The pod network is :func:`purge_network`'s (it acts on the caller's network namespace)."""
    runtime = Runtime(runtime_dirs(data_dir)[0], node_name)
    for c in runtime.list():
        runtime.remove(c.id)
    for s in runtime.list_sandboxes():
        runtime.remove_sandbox(s.id)
    pods = data_dir / "pods"
    if pods.is_dir():
        for d in pods.iterdir():
            rootfs.teardown(pod_dir(data_dir, d.name))
    runtime.close()
    stop_spawner_process(runtime.spawner_process, runtime.client)
    (data_dir / RUNTIME_SOCKET).unlink(missing_ok=True)  # left by an agent killed with -9
    runtime.cgroups.remove(runtime.node_cgroup)
    left = [f"mount {m}" for m in rootfs.mounts_under(data_dir)]
    if runtime.cgroups.exists(runtime.node_cgroup):
        left.append(f"cgroup {runtime.node_cgroup}")
    return left
