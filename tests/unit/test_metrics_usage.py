"""CPU rate and working set for ``kubectl top``: the agent's summary (over cgroup files laid out as
the kernel lays them out, v1 and v2) and the API server's NodeMetrics/PodMetrics made from it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from controlplane.apiserver import metrics
from kubectl_lite.top import node_rows, pod_rows
from nodeagent.agent.podsync import LABEL_CONTAINER, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID
from nodeagent.agent.summary import Sample, SummaryCollector, cpu_rate, node_cpu_ns, node_working_set
from nodeagent.runtime.cgroups import CgroupV1, CgroupV2, Stats
from nodeagent.runtime.container import ContainerStatus

POD, CTR = "kube-lite/n1/podu1", "kube-lite/n1/podu1/main"
MIB = 1024 * 1024


def test_cpu_rate_needs_an_earlier_sample_and_never_goes_negative() -> None:
    assert cpu_rate(None, Sample(5, 10)) is None
    assert cpu_rate(Sample(0, 10), Sample(5, 10)) is None
    # half a CPU: 0.5 s of CPU time in one second
    assert cpu_rate(Sample(1_000_000_000, 0), Sample(1_500_000_000, 1_000_000_000)) == 500_000_000
    assert cpu_rate(Sample(900, 0), Sample(100, 1_000_000_000)) == 0  # counter reset


def test_node_usage_from_proc_files() -> None:
    # user nice system idle iowait irq softirq steal: busy = 100+0+50+0+0+10 ticks at 100/s
    assert node_cpu_ns("cpu  100 0 50 9999 77 0 0 10 0 0\ncpu0 1 2 3\n", 100) == 1_600_000_000
    meminfo = "MemTotal:       1000 kB\nMemFree:         200 kB\nInactive(file):  300 kB\n"
    assert node_working_set(meminfo) == 500 * 1024


class CgroupSource:
    """The runtime's side, as the native runtime answers it: stats straight from cgroup files."""

    def __init__(self, cgroups: CgroupV1 | CgroupV2) -> None:
        self.cgroups = cgroups

    def list(self) -> list[ContainerStatus]:
        labels = {LABEL_POD_NAME: "web", LABEL_POD_NAMESPACE: "ns1", LABEL_POD_UID: "u1", LABEL_CONTAINER: "main"}
        return [ContainerStatus(id="c1", name="main", state="running", sandbox_id="s1", labels=labels),
                ContainerStatus(id="c0", name="old", state="exited", sandbox_id="s1", labels=labels)]

    def stats(self, container_id: str) -> Stats:
        assert container_id == "c1"
        return self.cgroups.stats(CTR)

    def sandbox_stats(self, sandbox_id: str) -> Stats:
        return self.cgroups.stats(POD)


def _write(files: dict[Path, str]) -> None:
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _v1(root: Path, path: str, cpu_ns: int, usage: int, inactive: int) -> None:
    _write({root / "cpuacct" / path / "cpuacct.usage": f"{cpu_ns}\n",
            root / "memory" / path / "memory.usage_in_bytes": f"{usage}\n",
            root / "memory" / path / "memory.stat": f"cache 5\ntotal_inactive_file {inactive}\ntotal_rss 1\n"})


def _v2(root: Path, path: str, cpu_ns: int, usage: int, inactive: int) -> None:
    _write({root / path / "cpu.stat": f"usage_usec {cpu_ns // 1000}\nuser_usec 1\nsystem_usec 2\n",
            root / path / "memory.current": f"{usage}\n",
            root / path / "memory.stat": f"anon 1\ninactive_file {inactive}\nactive_file 3\n"})


@pytest.mark.parametrize("version", [1, 2])
def test_summary_rates_from_two_samples_and_working_set(tmp_path: Path, version: int) -> None:
    write = _v1 if version == 1 else _v2
    cgroups = CgroupV1(tmp_path) if version == 1 else CgroupV2(tmp_path)
    clock = [0]
    node = [(0, 0)]
    collector = SummaryCollector(CgroupSource(cgroups), "n1", read_node=lambda: node[0],
                                 clock=lambda: clock[0], first_window=0)
    write(tmp_path, POD, 1_000_000_000, 60 * MIB, 10 * MIB)
    write(tmp_path, CTR, 1_000_000_000, 50 * MIB, 8 * MIB)
    first = asyncio.run(collector.summary())
    # Nothing moved between the two samples of the first call (the clock stood still): no rate.
    assert "usageNanoCores" not in first["pods"][0]["cpu"]

    clock[0] = 2_000_000_000  # two seconds later: the pod used 1.5 CPU-seconds, its container 1
    node[0] = (4_000_000_000, 3 * MIB)
    write(tmp_path, POD, 2_500_000_000, 60 * MIB, 10 * MIB)
    write(tmp_path, CTR, 2_000_000_000, 50 * MIB, 8 * MIB)
    doc = asyncio.run(collector.summary())
    assert doc["node"]["nodeName"] == "n1"
    assert doc["node"]["cpu"]["usageNanoCores"] == 2_000_000_000
    assert doc["node"]["memory"]["workingSetBytes"] == 3 * MIB
    [pod] = doc["pods"]
    assert pod["podRef"] == {"name": "web", "namespace": "ns1", "uid": "u1"}
    assert pod["cpu"]["usageNanoCores"] == 750_000_000 and pod["cpu"]["windowNanoSeconds"] == 2_000_000_000
    assert pod["memory"]["workingSetBytes"] == 50 * MIB
    [ctr] = pod["containers"]  # the exited run is not counted
    assert ctr["name"] == "main" and ctr["cpu"]["usageNanoCores"] == 500_000_000
    assert ctr["memory"]["workingSetBytes"] == 42 * MIB


def _summary(cpu: int | None, memory: int) -> dict[str, Any]:
    c: dict[str, Any] = {"time": "2026-01-01T00:00:00Z"}
    if cpu is not None:
        c.update(usageNanoCores=cpu, windowNanoSeconds=1_500_000_000)
    return {"cpu": c, "memory": {"workingSetBytes": memory}}


def test_metrics_objects_as_metrics_server_writes_them() -> None:
    node = {"metadata": {"name": "n1", "labels": {"a": "b"}, "uid": "x"}}
    summary: dict[str, Any] = {"node": _summary(1_234_567, 2048 * 1024),
               "pods": [{"podRef": {"name": "web", "namespace": "ns1", "uid": "u1"}, **_summary(9, 9),
                         "containers": [{"name": "main", **_summary(250_000_000, 40 * MIB)}]}]}
    nm = metrics.node_metrics(node, summary, "now")
    assert nm == {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                  "metadata": {"name": "n1", "creationTimestamp": "now", "labels": {"a": "b"}},
                  "timestamp": "2026-01-01T00:00:00Z", "window": "1.5s",
                  "usage": {"cpu": "1234567n", "memory": "2048Ki"}}
    pod = {"metadata": {"name": "web", "namespace": "ns1", "uid": "u1"}}
    pm = metrics.pod_metrics(pod, summary, "now")
    assert pm is not None and pm["containers"] == [{"name": "main", "usage": {"cpu": "250000000n", "memory": "40960Ki"}}]
    assert pm["metadata"] == {"name": "web", "namespace": "ns1", "creationTimestamp": "now"}
    # Another pod of the same name (recreated) or one without a CPU rate yet: no metrics.
    assert metrics.pod_metrics({"metadata": {"name": "web", "namespace": "ns1", "uid": "u2"}}, summary, "now") is None
    summary["pods"][0]["containers"][0] = {"name": "main", **_summary(None, 1)}
    assert metrics.pod_metrics(pod, summary, "now") is None


def test_kubectl_lite_rows() -> None:
    items = [{"metadata": {"name": "web", "namespace": "ns1"},
              "containers": [{"name": "a", "usage": {"cpu": "250000001n", "memory": "40960Ki"}},
                             {"name": "b", "usage": {"cpu": "1m", "memory": "1Mi"}}]}]
    assert pod_rows(items, False, False) == (["NAME", "CPU(cores)", "MEMORY(bytes)"], [["web", "252m", "41Mi"]])
    headers, rows = pod_rows(items, True, True)
    assert headers == ["NAMESPACE", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert rows == [["ns1", "web", "a", "251m", "40Mi"], ["ns1", "web", "b", "1m", "1Mi"]]
    nodes = {"n1": {"status": {"allocatable": {"cpu": "2", "memory": "1Gi"}}}}
    node_items = [{"metadata": {"name": "n1"}, "usage": {"cpu": "500m", "memory": "256Mi"}}]
    nodes["n2"] = {}  # its agent did not answer
    assert node_rows(node_items, nodes)[1] == [["n1", "500m", "25%", "256Mi", "25%"], ["n2", *["<unknown>"] * 4]]
