"""The scheduling loop: take an unbound pod, find the best node, reserve it, bind in the background.

Deciding is synchronous and sequential (one pod at a time, on the event loop), which is what
makes the assumed-pod reservation race-free; binding is asynchronous with up to
``max_in_flight`` requests outstanding, so the API round trip is not on the critical path.

The search follows kube-scheduler: filters run over the nodes starting where the last search
stopped (round robin), and stop once enough feasible nodes were found (``percentageOfNodesToScore``,
adaptive by default: 50% minus 1% per 125 nodes, at least 5%, never fewer than 100 nodes); the
feasible ones are scored and the best wins, ties broken at random.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass

import aiohttp

from apimachinery.api.core_v1 import Node, Pod
from apimachinery.client import ApiClient, ApiConnectionError, Informer, strip_managed_fields
from apimachinery.errors import ApiError
from apimachinery.events import NORMAL, WARNING, EventRecorder
from apimachinery.meta import now
from controlplane.scheduler.cache import NodeInfo, PodInfo, SchedulerCache
from controlplane.scheduler.filters import failure_message, prefilter, run_filters
from controlplane.scheduler.queue import SchedulingQueue
from controlplane.scheduler.scores import total_scores

log = logging.getLogger(__name__)

DEFAULT_SCHEDULER_NAME = "default-scheduler"
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5


@dataclass
class SchedulerStats:
    scheduled: int = 0  # bind requests that succeeded
    unschedulable: int = 0  # attempts that found no node
    bind_errors: int = 0
    attempts: int = 0


def num_feasible_nodes_to_find(num_nodes: int, percentage: int | None) -> int:
    """How many feasible nodes are enough to stop searching (kube-scheduler's rule)."""
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_nodes
    pct = percentage
    if pct is None or pct <= 0:
        pct = max(50 - num_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE)
    if pct >= 100:
        return num_nodes
    return max(num_nodes * pct // 100, MIN_FEASIBLE_NODES_TO_FIND)


def _condition_text(pod: Pod) -> tuple[str | None, str | None, str | None]:
    for c in pod.status.conditions or []:
        if c.type == "PodScheduled":
            return c.status, c.reason, c.message
    return None, None, None


class Scheduler:
    """One scheduler (``name`` is the spec.schedulerName it serves).

    ``node_label_selector`` restricts the nodes it sees (tests run isolated clusters-in-a-cluster
    with it); kube-scheduler has no such option and the default is every node.
    """

    def __init__(
        self,
        client: ApiClient,
        *,
        name: str = DEFAULT_SCHEDULER_NAME,
        max_in_flight: int = 48,
        percentage_of_nodes_to_score: int | None = None,
        node_label_selector: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.max_in_flight = max_in_flight
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue()
        self.stats = SchedulerStats()
        self.pods: Informer[Pod] = Informer(client, Pod, transform=strip_managed_fields)
        self.nodes: Informer[Node] = Informer(client, Node, label_selector=node_label_selector,
                                              transform=strip_managed_fields)
        self.events = EventRecorder(client, name)
        self.pod_rt = client.scheme.for_model(Pod)
        self._random = random.Random(seed)
        self._next_start = 0
        self._in_flight: set[str] = set()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()

    # -- informer handlers (synchronous: they only update the cache and the queue) -------------

    def _responsible(self, pod: Pod) -> bool:
        return (pod.spec.scheduler_name or DEFAULT_SCHEDULER_NAME) == self.name

    def _on_pod(self, pod: Pod) -> None:
        key = pod.key
        if pod.spec.node_name:
            self.cache.add_pod(pod)
            self.queue.remove(key)
            return
        if pod.metadata.deletion_timestamp or pod.status.phase in ("Succeeded", "Failed") \
                or not self._responsible(pod) or pod.spec.scheduling_gates:
            # Gated pods wait until every schedulingGate is removed (an update brings them back).
            self.queue.remove(key)
            return
        if key in self._in_flight or self.cache.is_assumed(key):
            return
        self.queue.add(key)

    def _on_pod_update(self, old: Pod, new: Pod) -> None:
        self._on_pod(new)

    def _on_pod_delete(self, pod: Pod) -> None:
        key = pod.key
        held = self.cache.node_of(key) is not None
        self.cache.remove_pod(key)
        self.queue.remove(key)
        if held:
            self.queue.cluster_changed()

    def _on_node(self, node: Node) -> None:
        self.cache.set_node(node)
        self.queue.cluster_changed()

    def _on_node_update(self, old: Node, new: Node) -> None:
        before = self.cache.nodes.get(new.metadata.name or "")
        snapshot = _node_facts(before) if before is not None else None
        ni = self.cache.set_node(new)
        # Heartbeats change only timestamps: do not wake every unschedulable pod for them.
        if snapshot != _node_facts(ni):
            self.queue.cluster_changed()

    def _on_node_delete(self, node: Node) -> None:
        self.cache.remove_node(node.metadata.name or "")

    # -- running -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        self.pods.add_handler(self._on_pod, self._on_pod_update, self._on_pod_delete)
        self.nodes.add_handler(self._on_node, self._on_node_update, self._on_node_delete)
        # Nodes first, so bound pods land on known nodes; both must be synced before deciding,
        # or a node would look emptier than it is.
        self.nodes.start()
        self.pods.start()
        flusher = asyncio.create_task(self._flush_loop(), name="scheduler-flush")
        loop = asyncio.create_task(self._loop(), name="scheduler-loop")
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({loop, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if loop in done:
                loop.result()  # surface a crash of the loop
        finally:
            for t in (flusher, loop, stopper):
                t.cancel()
            await asyncio.gather(flusher, loop, stopper, return_exceptions=True)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.events.flush(), 5.0)
            await self.pods.stop()
            await self.nodes.stop()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.queue.flush()

    async def _loop(self) -> None:
        await self.nodes.wait_synced()
        await self.pods.wait_synced()
        self.ready.set()
        log.info("scheduler %s: synced %d nodes, %d pods", self.name, len(self.cache.nodes), len(self.pods.keys()))
        while True:
            await self._slots.acquire()
            key = await self.queue.pop()
            if not self.schedule_one(key):
                self._slots.release()
            # Let informer events and bind completions in between decisions.
            await asyncio.sleep(0)

    # -- one decision ----------------------------------------------------------------------------

    def schedule_one(self, key: str) -> bool:
        """Decide for one pod; True when a bind was started (it holds a bind slot)."""
        pod = self.pods.get(key)
        if pod is None or pod.spec.node_name or pod.metadata.deletion_timestamp or not self._responsible(pod) \
                or pod.spec.scheduling_gates:
            self.queue.remove(key)
            return False
        if key in self._in_flight or self.cache.is_assumed(key):
            return False
        self.stats.attempts += 1
        pi = PodInfo.of(pod)
        node, message = self.find_node(pi)
        if node is None:
            self.stats.unschedulable += 1
            self.queue.failed(key)
            self._spawn(self._report_unschedulable(pod, message))
            return False
        log.debug("assume %s on %s", key, node.name)
        self.cache.assume(pi, node.name)
        self._in_flight.add(key)
        self._spawn(self._bind(pi, node.name))
        return True

    def find_node(self, pi: PodInfo) -> tuple[NodeInfo | None, str]:
        """The chosen node, or None and the FitError message."""
        nodes = self.cache.node_list
        n = len(nodes)
        if n == 0:
            return None, failure_message(0, {})
        state = prefilter(pi, self.cache)
        to_find = num_feasible_nodes_to_find(n, self.percentage_of_nodes_to_score)
        feasible: list[NodeInfo] = []
        counts: dict[str, int] = {}
        start = self._next_start % n
        examined = 0
        # A pod without constraints on a node without taints only needs the resource check:
        # done inline, since this loop runs for hundreds of nodes per pod.
        simple = pi.is_simple() and not state.anti_domains and not state.existing_domains
        cpu, mem = pi.milli_cpu, pi.memory
        for ni in _rotated(nodes, start):
            examined += 1
            if simple and ni.is_simple:
                if len(ni.pods) < ni.alloc_pods and (not cpu or ni.req_cpu + cpu <= ni.alloc_cpu) \
                        and (not mem or ni.req_memory + mem <= ni.alloc_memory):
                    feasible.append(ni)
                    if len(feasible) >= to_find:
                        break
                    continue
            reasons = run_filters(pi, ni, state)
            if reasons:
                for r in reasons:
                    counts[r] = counts.get(r, 0) + 1
                continue
            feasible.append(ni)
            if len(feasible) >= to_find:
                break
        self._next_start = (start + examined) % n
        if not feasible:
            return None, failure_message(n, counts)
        if len(feasible) == 1:
            return feasible[0], ""
        scores = total_scores(pi, feasible)
        best = max(scores)
        ties = [ni for ni, s in zip(feasible, scores, strict=True) if s == best]
        return ties[0] if len(ties) == 1 else self._random.choice(ties), ""

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- API writes ------------------------------------------------------------------------------

    async def _bind(self, pi: PodInfo, node_name: str) -> None:
        key = pi.key
        binding = {
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pi.name, "namespace": pi.namespace, "uid": pi.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        }
        try:
            await self.client.create(self.pod_rt, binding, pi.namespace, subresource="binding")
        except ApiError as exc:
            self.stats.bind_errors += 1
            self.cache.forget(key)
            if exc.code == 404 or (exc.code == 409 and "being deleted" in (exc.status.message or "")):
                self.queue.remove(key)
            elif exc.code == 409 and "already assigned" in (exc.status.message or ""):
                log.info("binding %s: %s", key, exc.status.message)
                self.queue.remove(key)  # bound by someone else; the informer will count it
            else:
                log.warning("binding %s to %s failed: %s", key, node_name, exc)
                self.queue.failed(key)
                self.events.event(pi.pod, WARNING, "FailedScheduling", f"Binding rejected: {exc}")
        except (ApiConnectionError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.stats.bind_errors += 1
            self.cache.forget(key)
            log.warning("binding %s to %s failed: %s", key, node_name, exc)
            self.queue.failed(key)
        else:
            self.stats.scheduled += 1
            self.queue.succeeded(key)
            self.events.event(
                pi.pod, NORMAL, "Scheduled", f"Successfully assigned {pi.namespace}/{pi.name} to {node_name}"
            )
        finally:
            self._in_flight.discard(key)
            self._slots.release()

    async def _report_unschedulable(self, pod: Pod, message: str) -> None:
        """PodScheduled=False (through the status subresource) and a FailedScheduling event."""
        self.events.event(pod, WARNING, "FailedScheduling", message)
        status, reason, old_message = _condition_text(pod)
        if (status, reason, old_message) == ("False", "Unschedulable", message):
            return
        condition = {
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
            "lastProbeTime": None,
        }
        if status != "False":
            condition["lastTransitionTime"] = now()
        with contextlib.suppress(ApiError, ApiConnectionError, aiohttp.ClientError, TimeoutError, OSError):
            await self.client.patch(
                self.pod_rt, pod.metadata.name or "", {"status": {"conditions": [condition]}},
                patch_type="strategic", namespace=pod.metadata.namespace, subresource="status",
            )


def _rotated(nodes: list[NodeInfo], start: int) -> list[NodeInfo]:
    return nodes[start:] + nodes[:start] if start else nodes


def _node_facts(ni: NodeInfo) -> tuple[object, ...]:
    return (ni.labels, ni.taints, ni.ready, ni.unschedulable, ni.alloc_cpu, ni.alloc_memory, ni.alloc_pods)


async def run_scheduler(
    client: ApiClient, *, name: str = DEFAULT_SCHEDULER_NAME, stop: asyncio.Event | None = None
) -> None:
    """Schedule pods whose spec.schedulerName is ``name`` until ``stop`` is set (or cancelled)."""
    await Scheduler(client, name=name).run(stop)
