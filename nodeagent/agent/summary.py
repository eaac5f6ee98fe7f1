"""``GET /stats/summary``: the node's and its pods' CPU and memory usage, as the kubelet's
Summary API reports it (the subset metrics-server reads).

The kernel only counts cumulative CPU time per cgroup, so a CPU *rate* needs two samples: the
collector keeps the last sample of every cgroup and reports the usage between it and the new
one. A cgroup without a recent sample (the first call, a new pod) is sampled twice,
:data:`FIRST_WINDOW` apart, before answering. Memory is the working set (usage minus inactive file
cache), which :mod:`nodeagent.runtime.cgroups` already computes for v1 and v2.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from apimachinery.meta import now as timestamp_now
from nodeagent.agent.podsync import LABEL_CONTAINER, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID
from nodeagent.runtime.cgroups import Stats, working_set
from nodeagent.runtime.container import ContainerStatus

#: How long apart the two samples are when a cgroup has no earlier one.
FIRST_WINDOW = 1.0
#: An earlier sample older than this is not used (the rate would average over too long a time).
MAX_WINDOW = 60.0
NODE_KEY = "node"


class StatsSource(Protocol):
    """What the collector needs of the runtime (the native runtime has all of it)."""

    def list(self) -> list[ContainerStatus]: ...

    def stats(self, container_id: str) -> Stats: ...

    def sandbox_stats(self, sandbox_id: str) -> Stats: ...


@dataclass(frozen=True)
class Sample:
    cpu_ns: int  # cumulative CPU time
    at_ns: int  # monotonic clock when read


def cpu_rate(prev: Sample | None, cur: Sample) -> int | None:
    """Nanocores (CPU-nanoseconds per second) between two samples; None without a usable earlier
    one. A counter that went backwards (the cgroup was made anew) counts as no usage."""
    if prev is None or cur.at_ns <= prev.at_ns:
        return None
    return max(0, cur.cpu_ns - prev.cpu_ns) * 1_000_000_000 // (cur.at_ns - prev.at_ns)


_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (idle and iowait are not busy)


def node_cpu_ns(proc_stat: str, ticks_per_second: int) -> int:
    """Cumulative busy CPU time of the whole machine, from /proc/stat's first line."""
    first = proc_stat.splitlines()[0].split()
    values = [int(v) for v in first[1:]]
    return sum(values[i] for i in _BUSY_FIELDS if i < len(values)) * 1_000_000_000 // ticks_per_second


def node_working_set(meminfo: str) -> int:
    """Machine memory in use minus inactive file cache (what the kubelet reports for the node's
    root cgroup)."""
    kb = {}
    for line in meminfo.splitlines():
        key, _, rest = line.partition(":")
        with contextlib.suppress(ValueError, IndexError):
            kb[key] = int(rest.split()[0]) * 1024
    used = kb.get("MemTotal", 0) - kb.get("MemFree", 0)
    return working_set(used, kb.get("Inactive(file)", 0))


def _read_node() -> tuple[int, int]:
    with open("/proc/stat") as f:
        cpu = node_cpu_ns(f.read(), os.sysconf("SC_CLK_TCK"))
    with open("/proc/meminfo") as f:
        mem = node_working_set(f.read())
    return cpu, mem


@dataclass
class _Reading:
    """One pass over the node: cumulative CPU and working set per key."""

    cpu: dict[str, Sample] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)  # sandbox id -> podRef and container names


class SummaryCollector:
    def __init__(self, runtime: StatsSource, node_name: str,
                 read_node: Callable[[], tuple[int, int]] = _read_node,
                 clock: Callable[[], int] = time.monotonic_ns, first_window: float = FIRST_WINDOW) -> None:
        self.runtime = runtime
        self.node_name = node_name
        self.read_node = read_node
        self.clock = clock  # monotonic nanoseconds; tests pass their own
        self.first_window = first_window
        self._last: dict[str, Sample] = {}
        self._lock = asyncio.Lock()

    def _read(self) -> _Reading:
        r = _Reading()
        cpu, mem = self.read_node()
        r.cpu[NODE_KEY], r.memory[NODE_KEY] = Sample(cpu, self.clock()), mem
        for c in self.runtime.list():
            sandbox = c.sandbox_id
            if c.state != "running" or not sandbox or LABEL_POD_NAME not in c.labels:
                continue
            try:
                stats = self.runtime.stats(c.id)
                if sandbox not in r.pods:
                    pod_stats = self.runtime.sandbox_stats(sandbox)
                    r.cpu[sandbox] = Sample(pod_stats.cpu_usage_ns, self.clock())
                    r.memory[sandbox] = pod_stats.memory_working_set_bytes
                    r.pods[sandbox] = {"ref": {"name": c.labels[LABEL_POD_NAME],
                                               "namespace": c.labels.get(LABEL_POD_NAMESPACE, ""),
                                               "uid": c.labels.get(LABEL_POD_UID, "")}, "containers": []}
            except (OSError, LookupError, ValueError):
                continue  # it went away while we looked: it has no usage to show
            r.cpu[c.id], r.memory[c.id] = Sample(stats.cpu_usage_ns, self.clock()), stats.memory_working_set_bytes
            r.pods[sandbox]["containers"].append((c.labels.get(LABEL_CONTAINER, c.name), c.id))
        return r

    def _usable(self, key: str, now_ns: int) -> bool:
        prev = self._last.get(key)
        return prev is not None and now_ns - prev.at_ns <= MAX_WINDOW * 1e9

    async def summary(self) -> dict[str, Any]:
        async with self._lock:  # two callers at once would each see a tiny window
            reading = await asyncio.to_thread(self._read)
            now = self.clock()
            if not all(self._usable(k, now) for k in reading.cpu):
                self._last.update(reading.cpu)
                await asyncio.sleep(self.first_window)
                reading = await asyncio.to_thread(self._read)
            doc = self._document(reading)
            self._last = dict(reading.cpu)  # also forgets cgroups that are gone
            return doc

    def _usage(self, key: str, r: _Reading, stamp: str) -> tuple[dict[str, Any], dict[str, Any]]:
        cur = r.cpu[key]
        cpu: dict[str, Any] = {"time": stamp, "usageCoreNanoSeconds": cur.cpu_ns}
        rate = cpu_rate(self._last.get(key), cur)
        if rate is not None:
            cpu["usageNanoCores"] = rate
            cpu["windowNanoSeconds"] = cur.at_ns - self._last[key].at_ns
        return cpu, {"time": stamp, "workingSetBytes": r.memory[key]}

    def _document(self, r: _Reading) -> dict[str, Any]:
        stamp = timestamp_now()
        node_cpu, node_mem = self._usage(NODE_KEY, r, stamp)
        pods = []
        for sandbox, pod in r.pods.items():
            cpu, mem = self._usage(sandbox, r, stamp)
            containers = []
            for name, cid in pod["containers"]:
                ccpu, cmem = self._usage(cid, r, stamp)
                containers.append({"name": name, "cpu": ccpu, "memory": cmem})
            pods.append({"podRef": pod["ref"], "cpu": cpu, "memory": mem, "containers": containers})
        return {"node": {"nodeName": self.node_name, "cpu": node_cpu, "memory": node_mem}, "pods": pods}
