"""How fast a lab comes up, and how fast it runs a 100-replica Deployment.

1. ``labctl up --nodes 3`` run as users run it (a subprocess), timed from launch until it
   returns (it returns only once every node is Ready). Its progress lines are timestamped as
   they arrive, which splits the time into: control plane started and answering /readyz (PKI,
   embedded etcd, API server, controllers), node agents launched, and agents registered and
   Ready (Python start-up, busybox image build, pod network, first heartbeat).
2. A Deployment of 100 busybox ``sleep`` replicas is created through the API; the bench polls
   the pods and reports when all 100 existed (ReplicaSet controller), were scheduled, Running,
   and Ready (each pod's Ready condition), and when the Deployment's ``status.readyReplicas``
   said 100.
3. ``labctl down`` is timed too.

Goals (issue 7): up <= 10 s, 100 replicas Ready <= 5 s. Run as root:

    python3 bench/lab.py [--nodes 3] [--replicas 100] [--keep]

Prints a readable report; the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apimachinery.api.apps_v1 import Deployment  # noqa: E402
from apimachinery.api.core_v1 import Pod  # noqa: E402
from apimachinery.client import ApiClient, load_kubeconfig  # noqa: E402

GOAL_UP_S = 10.0
GOAL_READY_S = 5.0


def labctl(name: str, state_dir: Path, *args: str) -> list[tuple[float, str]]:
    """Run labctl; returns its output lines, each with the seconds since launch it arrived at."""
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "deploy.labctl.main", *args, "--name", name, "--state-dir", str(state_dir)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    assert p.stdout is not None
    lines = [(time.monotonic() - t0, line.rstrip()) for line in p.stdout]
    p.wait()
    lines.append((time.monotonic() - t0, f"(exit {p.returncode})"))
    if p.returncode != 0:
        raise SystemExit("lab bench: labctl " + " ".join(args) + " failed:\n" + "\n".join(t for _, t in lines))
    return lines


def first(lines: list[tuple[float, str]], text: str) -> float | None:
    return next((t for t, line in lines if text in line), None)


def last(lines: list[tuple[float, str]], text: str) -> float | None:
    found = [t for t, line in lines if text in line]
    return found[-1] if found else None


def deployment(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "sleep", "image": "busybox:latest", "imagePullPolicy": "Never",
                                    "command": ["sleep", "3600"]}],
                },
            },
        },
    }


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


async def run_deployment(kubeconfig: Path, replicas: int, timeout: float) -> dict[str, Any]:
    marks: dict[str, float | None] = {"created": None, "scheduled": None, "running": None, "ready": None,
                                      "status_ready": None}
    async with ApiClient(load_kubeconfig(kubeconfig)) as c:
        t0 = time.monotonic()
        await c.create(c.resource(Deployment), deployment(replicas), "default")
        while time.monotonic() - t0 < timeout and None in marks.values():
            pods = (await c.list(c.resource(Pod), "default", label_selector="app=bench"))["items"]
            now = time.monotonic() - t0
            counts = {
                "created": len(pods),
                "scheduled": sum(1 for p in pods if p["spec"].get("nodeName")),
                "running": sum(1 for p in pods if p["status"].get("phase") == "Running"),
                "ready": sum(1 for p in pods if is_ready(p)),
            }
            for k, n in counts.items():
                if marks[k] is None and n >= replicas:
                    marks[k] = now
            if marks["status_ready"] is None:
                d = await c.get(c.resource(Deployment), "bench", "default")
                if (d.get("status") or {}).get("readyReplicas") == replicas:
                    marks["status_ready"] = time.monotonic() - t0
            await asyncio.sleep(0.05)
        by_node: dict[str, int] = {}
        for p in pods:
            node = p["spec"].get("nodeName") or "(none)"
            by_node[node] = by_node.get(node, 0) + 1
    return {"marks": marks, "by_node": by_node, "counts": counts}


def fmt(v: float | None) -> str:
    return f"{v:6.2f} s" if v is not None else "  (not reached)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--replicas", type=int, default=100)
    p.add_argument("--timeout", type=float, default=120.0, help="give up on the Deployment after this long")
    p.add_argument("--keep", action="store_true", help="leave the lab up (labctl down --name ... removes it)")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("lab bench: needs root (labs create namespaces, links, mounts and cgroups)")
    name = "b" + uuid.uuid4().hex[:8]
    state_dir = Path(tempfile.mkdtemp(prefix="kl-bench-lab-"))
    up: list[tuple[float, str]] = []
    result: dict[str, Any] = {}
    down_s = None
    try:
        up = labctl(name, state_dir, "up", "--nodes", str(args.nodes))
        kubeconfig = state_dir / name / "controlplane" / "admin.kubeconfig"
        result = asyncio.run(run_deployment(kubeconfig, args.replicas, args.timeout))
    finally:
        if not args.keep:
            t0 = time.monotonic()
            try:
                labctl(name, state_dir, "down")
            finally:
                down_s = time.monotonic() - t0
                shutil.rmtree(state_dir, ignore_errors=True)
        else:
            print(f"lab kept: labctl down --name {name} --state-dir {state_dir}")

    up_s = up[-1][0]
    cp_ready = first(up, "control plane ready")
    agents_started = last(up, "agent started")
    marks = result["marks"]
    print(f"labctl up --nodes {args.nodes} (as a subprocess, until it returned with every node Ready)")
    print(f"  control plane answering /readyz      {fmt(cp_ready)}")
    print(f"  all node agents launched             {fmt(agents_started)}")
    print(f"  every node Ready (labctl returned)   {fmt(up_s)}   goal <= {GOAL_UP_S:.0f} s")
    print(f"Deployment of {args.replicas} replicas on {args.nodes} nodes (from the create request)")
    print(f"  all pods created (ReplicaSet ctrl)   {fmt(marks['created'])}")
    print(f"  all pods scheduled                   {fmt(marks['scheduled'])}")
    print(f"  all pods Running                     {fmt(marks['running'])}")
    print(f"  all pods Ready                       {fmt(marks['ready'])}   goal <= {GOAL_READY_S:.0f} s")
    print(f"  Deployment status.readyReplicas      {fmt(marks['status_ready'])}")
    print(f"  pods per node: {', '.join(f'{k} {v}' for k, v in sorted(result['by_node'].items()))}")
    if down_s is not None:
        print(f"labctl down                            {fmt(down_s)}")
    figures = {
        "nodes": args.nodes, "replicas": args.replicas,
        "up_s": round(up_s, 3),
        "up_controlplane_ready_s": round(cp_ready, 3) if cp_ready is not None else None,
        "up_agents_started_s": round(agents_started, 3) if agents_started is not None else None,
        "pods_created_s": marks["created"] and round(marks["created"], 3),
        "pods_scheduled_s": marks["scheduled"] and round(marks["scheduled"], 3),
        "pods_running_s": marks["running"] and round(marks["running"], 3),
        "pods_ready_s": marks["ready"] and round(marks["ready"], 3),
        "deployment_ready_s": marks["status_ready"] and round(marks["status_ready"], 3),
        "down_s": round(down_s, 3) if down_s is not None else None,
        "goal_up_s": GOAL_UP_S, "goal_ready_s": GOAL_READY_S,
        "up_ratio_to_goal": round(up_s / GOAL_UP_S, 3),
        "ready_ratio_to_goal": round(marks["ready"] / GOAL_READY_S, 3) if marks["ready"] else None,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
