"""Pod startup latency and node agent memory on one native node.

A control plane (``controlplane``, subprocess, embedded etcd) and one ``nodeagent --runtime
native`` (subprocess, as users run it; ``busybox:latest`` built offline before the clock starts,
so the image is present) run on this machine. Pods are bound directly through ``spec.nodeName``
(no scheduler in the path: this measures the agent, not scheduling), created at a steady rate
(default 100 pods at 5 pods/s), each one busybox ``sleep`` container. A watcher on the
namespace records when each pod is first seen with phase Running and Ready=True; the latency of
a pod is that moment minus the moment just before its create request was sent (both clocks are
this process's).

Memory: VmRSS (from /proc/PID/status) of the agent process and, separately, of its spawner
(the small single-threaded fork server that is the parent of every container) with 0 pods
and with all pods running. Containers' own memory is not counted.

The agent runs with ``--network-mode none`` (the node is the host itself here, so pods get a
loopback-only network namespace and no bridge is made on the host), and, as the runtime
benchmark recommends, with its data dir on a tmpfs mounted for the run (``--no-tmpfs``: a plain
directory on disk).

Run as root:

    python3 bench/podstart.py [--pods 100] [--rate 5]

Prints a readable report, then as its last line one JSON object with every figure. Goals:
p50 <= 100 ms, p99 <= 300 ms; agent RSS <= 60 MB + < 1 MB per pod.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apimachinery.api.core_v1 import Namespace, Node, Pod  # noqa: E402
from apimachinery.client import ApiClient, load_kubeconfig  # noqa: E402
from bench.scheduler import NAMESPACE, PodWatch, Procs, cpu_seconds, pct  # noqa: E402
from nodeagent.agent.agent import purge  # noqa: E402
from tests.fixtures.apiserver import running_control_plane  # noqa: E402

GOAL_P50_MS = 100.0
GOAL_P99_MS = 300.0
GOAL_RSS_BASE_MB = 60.0
GOAL_RSS_PER_POD_MB = 1.0


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MB (MiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def spawner_pid(data_dir: Path) -> int:
    """The spawner serving ``data_dir`` (its command line names the runtime dir)."""
    want = str(data_dir / "runtime")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"nodeagent.runtime.spawner" in argv and want.encode() in argv:
            return int(entry.name)
    raise RuntimeError(f"no spawner for {want}")


STARTED_RE = re.compile(r"^(\S+ \S+) INFO nodeagent\.agent\.podsync: pod (\S+)/(\S+): started container ")


def started_times(agent_log: Path, namespace: str) -> dict[str, float]:
    """When the agent logged each pod's container as started (its log's local-time stamps)."""
    out: dict[str, float] = {}
    for line in agent_log.read_text(errors="replace").splitlines():
        m = STARTED_RE.match(line)
        if m and m.group(2) == namespace:
            out.setdefault(m.group(3), datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return out


def unmount(path: Path) -> None:
    """Unmount our tmpfs; a container's last process may still be exiting: retry, then detach."""
    for _ in range(50):
        if subprocess.run(["umount", str(path)], stderr=subprocess.DEVNULL).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", str(path)], check=False)


def pod_body(name: str, node: str, sa_token: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "podstart"}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": sa_token,
                 "containers": [{
            "name": "app", "image": "busybox:latest", "imagePullPolicy": "IfNotPresent",
            "command": ["sleep", "3600"]}]},
    }


async def wait_node_ready(client: ApiClient, node: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            obj = await client.get(client.resource(Node), node)
            if any(c["type"] == "Ready" and c["status"] == "True" for c in obj["status"].get("conditions") or []):
                return
        except Exception:  # not registered yet
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"node {node} not Ready after {timeout}s")


async def measure(kubeconfig: Path, node: str, data_dir: Path, agent_pid: int, agent_log: Path, pods: int,
                  rate: float, settle: float, sa_token: bool) -> dict[str, Any]:
    async with ApiClient(load_kubeconfig(kubeconfig)) as client:
        await wait_node_ready(client, node, 120)
        ns = NAMESPACE  # the watch's (a fresh control plane: nothing else is in it)
        await client.create(client.resource(Namespace), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        spawner = spawner_pid(data_dir)
        await asyncio.sleep(settle)
        idle = {"agent_rss_mb": rss_mb(agent_pid), "spawner_rss_mb": rss_mb(spawner)}
        print(f"0 pods: agent RSS {idle['agent_rss_mb']:.1f} MB, spawner RSS {idle['spawner_rss_mb']:.1f} MB")

        watch = PodWatch(client)  # first seen Running with Ready=True, by pod name
        watch.start()
        await asyncio.sleep(1.0)  # its list is done and the watch open
        names = [f"p-{i:03d}" for i in range(pods)]
        sent_at: dict[str, float] = {}
        cpu0 = cpu_seconds(agent_pid), cpu_seconds(spawner)
        start = time.monotonic()

        async def create(i: int, name: str) -> None:
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            sent_at[name] = time.time()
            await client.create(client.resource(Pod), pod_body(name, node, sa_token), ns)

        await asyncio.gather(*(create(i, n) for i, n in enumerate(names)))
        created_in = time.monotonic() - start
        all_running = await watch.wait_for(set(names), watch.running_at, 120)
        cpu1 = cpu_seconds(agent_pid), cpu_seconds(spawner)
        await watch.stop()
        if not all_running:
            missing = sorted(set(names) - watch.running_at.keys())
            raise RuntimeError(f"{len(missing)} pods not Running after 120 s, e.g. {missing[:5]}")
        lat = [(watch.running_at[n] - sent_at[n]) * 1000 for n in names]
        # Where the time goes: until the agent started the container, and from then until a
        # watcher saw the status it wrote.
        started = started_times(agent_log, ns)
        to_start = [(started[n] - sent_at[n]) * 1000 for n in names if n in started]
        to_seen = [(watch.running_at[n] - started[n]) * 1000 for n in names if n in started]
        await asyncio.sleep(settle)
        full = {"agent_rss_mb": rss_mb(agent_pid), "spawner_rss_mb": rss_mb(spawner)}
        print(f"{pods} pods: agent RSS {full['agent_rss_mb']:.1f} MB, spawner RSS {full['spawner_rss_mb']:.1f} MB")

        t_del = time.monotonic()
        await client.delete(client.resource(Namespace), ns)
        # Until the API has no pod left and the agent removed what ran for them.
        runtime = data_dir / "runtime"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            left = (await client.list(client.resource(Pod), ns)).get("items") or []
            if not left and not any(any((runtime / d).iterdir()) for d in ("containers", "sandboxes")):
                break
            await asyncio.sleep(0.2)
        deleted_in = time.monotonic() - t_del
    return {
        "pods": pods, "rate_per_s": rate, "create_seconds": round(created_in, 2),
        "p50_ms": round(pct(lat, 50), 1), "p90_ms": round(pct(lat, 90), 1), "p99_ms": round(pct(lat, 99), 1),
        "max_ms": round(max(lat), 1), "min_ms": round(min(lat), 1),
        "to_started_p50_ms": round(pct(to_start, 50), 1), "to_started_p99_ms": round(pct(to_start, 99), 1),
        "started_to_seen_p50_ms": round(pct(to_seen, 50), 1), "started_to_seen_p99_ms": round(pct(to_seen, 99), 1),
        "agent_cpu_s": round(cpu1[0] - cpu0[0], 2), "spawner_cpu_s": round(cpu1[1] - cpu0[1], 2),
        "rss_idle": idle, "rss_full": full, "delete_all_seconds": round(deleted_in, 1), "sa_token": sa_token,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pods", type=int, default=100)
    p.add_argument("--rate", type=float, default=5.0, help="pods created per second")
    p.add_argument("--settle", type=float, default=3.0, help="seconds to wait before reading RSS")
    p.add_argument("--no-tmpfs", action="store_true", help="keep the agent's data dir on disk")
    p.add_argument("--relist-interval", default="1", help="the agent's --relist-interval")
    p.add_argument("--no-sa-token", action="store_true",
                   help="pods with automountServiceAccountToken: false (no TokenRequest, no projected volume)")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("podstart.py: needs root (the native runtime uses namespaces, mounts and cgroups)")

    # The agent and its spawner (started with cwd /) import this checkout, installed or not.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    work = Path(tempfile.mkdtemp(prefix="kl-podstart-"))
    data_dir = work / "agent"
    data_dir.mkdir()
    tmpfs = not args.no_tmpfs
    if tmpfs:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700", "kl-podstart", str(data_dir)], check=True)
    node = f"podstart-{uuid.uuid4().hex[:6]}"
    procs = Procs(work)
    result: dict[str, Any] = {}
    try:
        with running_control_plane(prefix="kl-podstart-cp-") as cp:
            agent = procs.start("nodeagent", [
                sys.executable, "-m", "nodeagent.main", "--kubeconfig", str(cp.kubeconfig), "--node-name", node,
                "--node-ip", "127.0.0.1", "--data-dir", str(data_dir), "--runtime", "native", "--busybox-image",
                "--network-mode", "none", "--relist-interval", args.relist_interval,
            ])
            try:
                result = asyncio.run(measure(cp.kubeconfig, node, data_dir, agent.pid, work / "nodeagent.log",
                                             args.pods, args.rate, args.settle, not args.no_sa_token))
            except BaseException:
                print(procs.tail("nodeagent", 30), file=sys.stderr)
                raise
            finally:
                procs.stop_all()
    finally:
        left = [x for x in purge(data_dir, node) if x != f"mount {data_dir}"]  # our own tmpfs
        if left:
            print(f"left behind: {left}", file=sys.stderr)
        if tmpfs:
            unmount(data_dir)
        shutil.rmtree(work, ignore_errors=True)

    n = result["pods"]
    idle, full = result["rss_idle"], result["rss_full"]
    rss_goal = GOAL_RSS_BASE_MB + GOAL_RSS_PER_POD_MB * n
    per_pod = (full["agent_rss_mb"] - idle["agent_rss_mb"]) / n
    ok_lat = result["p50_ms"] <= GOAL_P50_MS and result["p99_ms"] <= GOAL_P99_MS
    ok_base = idle["agent_rss_mb"] <= GOAL_RSS_BASE_MB
    ok_per_pod = per_pod < GOAL_RSS_PER_POD_MB
    print()
    print(f"pod startup, create -> Running+Ready seen by a watcher; {n} pods at {result['rate_per_s']:g}/s, "
          f"bound by spec.nodeName, one native node (data dir on {'tmpfs' if tmpfs else 'disk'}, network none)")
    print(f"  p50 {result['p50_ms']:.1f} ms   p90 {result['p90_ms']:.1f} ms   p99 {result['p99_ms']:.1f} ms   "
          f"max {result['max_ms']:.1f} ms   (goal p50 <= {GOAL_P50_MS:g} ms, p99 <= {GOAL_P99_MS:g} ms: "
          f"{'met' if ok_lat else 'MISSED'})")
    print(f"  create -> container started (agent log): p50 {result['to_started_p50_ms']:.1f} ms, p99 "
          f"{result['to_started_p99_ms']:.1f} ms; started -> Running seen: p50 {result['started_to_seen_p50_ms']:.1f} ms, "
          f"p99 {result['started_to_seen_p99_ms']:.1f} ms")
    print(f"  CPU during the run: agent {result['agent_cpu_s']:.2f} s, spawner {result['spawner_cpu_s']:.2f} s")
    print("memory (VmRSS):")
    print(f"  agent    {idle['agent_rss_mb']:.1f} MB with 0 pods (goal <= {GOAL_RSS_BASE_MB:g} MB: "
          f"{'met' if ok_base else 'MISSED'}), {full['agent_rss_mb']:.1f} MB with {n} pods: {per_pod * 1024:.0f} KB "
          f"per pod (goal < 1 MB: {'met' if ok_per_pod else 'MISSED'}; "
          f"with {n} pods <= {rss_goal:g} MB: {'met' if full['agent_rss_mb'] <= rss_goal else 'MISSED'})")
    print(f"  spawner  {idle['spawner_rss_mb']:.1f} MB with 0 pods, {full['spawner_rss_mb']:.1f} MB with {n}")
    print(f"deleting all {n} pods (until the agent removed their containers) took {result['delete_all_seconds']:.1f} s")
    figures = {k: v for k, v in result.items() if not k.startswith("rss_")}
    figures.update({
        "agent_rss_idle_mb": round(idle["agent_rss_mb"], 1), "agent_rss_full_mb": round(full["agent_rss_mb"], 1),
        "spawner_rss_idle_mb": round(idle["spawner_rss_mb"], 1),
        "spawner_rss_full_mb": round(full["spawner_rss_mb"], 1),
        "agent_rss_per_pod_kb": round(per_pod * 1024), "tmpfs": tmpfs, "latency_goal_met": ok_lat,
        "rss_base_goal_met": ok_base, "rss_per_pod_goal_met": ok_per_pod,
    })
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
