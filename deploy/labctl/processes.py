"""The lab's processes: the control plane on the host and one node agent per node namespace.

Every process is started in its own session and recorded with its start time; stopping one
only ever signals a pid whose start time still matches, plus members of that session (the
control plane's embedded etcd). The kernel does not reuse a pid while it still names a live
session, so session members are ours even after their leader died.

A node agent enters only its node's *network* namespace (``nsenter --net``), not a mount
namespace as ``ip netns exec`` would: ``ip netns exec`` remounts /sys (hiding the cgroup
hierarchies the agent needs) and keeps the agent's mounts out of the host's view, so a
restarted agent could not adopt the sandboxes and containers of the previous one. A private UTS
namespace (``unshare --uts``) gives the node its own hostname.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from deploy.labctl import credentials
from deploy.labctl.lab import Lab, LabError, LabState, NodeState, Proc, proc_of, proc_start_time
from deploy.labctl.netns import netns_path

Progress = Callable[[str], None]

# The checkout labctl itself runs from: the lab's processes (and the spawners the agents start
# with cwd "/") import kube-lite from here too, installed or not, whatever the caller's cwd.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SOURCE_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _spawn(argv: list[str], log: Path) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, env=child_env())
    time.sleep(0.05)
    if p.poll() is not None:
        raise LabError(f"{argv[0]} exited at once with {p.returncode}; see {log}")
    return proc_of(p.pid)


def _session_members(sid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:  # field 6: session id
            pids.append(int(d.name))
    return pids


def _signal_session(proc: Proc, sig: int) -> None:
    for pid in _session_members(proc.pid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_process(proc: Proc | None, timeout: float = 15.0, *, hard: bool = False) -> None:
    """End a process we started and the rest of its session: SIGTERM (or SIGKILL with ``hard``),
    then SIGKILL whatever is still there after ``timeout``."""
    stop_processes([proc], timeout, hard=hard)


def stop_processes(procs: list[Proc | None], timeout: float = 15.0, *, hard: bool = False) -> None:
    """:func:`stop_process` for several at once: all are signalled, then all are waited for, so
    a lab's nodes stop in the time of the slowest, not the sum."""
    ours = []
    for proc in procs:
        if proc is None:
            continue
        current = proc_start_time(proc.pid)
        if current is not None and current != proc.start_time:
            continue  # the pid now belongs to someone else; our process (and its session) is gone
        ours.append(proc)
        _signal_session(proc, signal.SIGKILL if hard else signal.SIGTERM)

    def wait(limit: float) -> list[Proc]:
        deadline = time.monotonic() + limit
        while True:
            left = [p for p in ours if _session_members(p.pid)]
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.05)

    for proc in wait(timeout):
        _signal_session(proc, signal.SIGKILL)
    wait(5)


def kill_agent_only(proc: Proc | None) -> bool:
    """kill -9 just the agent (a crash): its spawner, in its own session, keeps the containers."""
    if proc is None or not proc.alive():
        return False
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


# ------------------------------------------------------------------ control plane


def start_controlplane(lab: Lab, state: LabState) -> Proc:
    argv = [sys.executable, "-m", "controlplane.main", "--data-dir", str(lab.cp_dir),
            "--bind-address", state.bridge_ip, "--advertise-address", state.bridge_ip, "--port", str(state.port),
            "--node-monitor-grace-period", str(state.node_monitor_grace_period),
            "--default-toleration-seconds", str(state.default_toleration_seconds),
            # One control plane per lab: no Lease to wait out when it is restarted.
            "--leader-elect", "false"]
    return _spawn(argv, lab.log_dir / "controlplane.log")


def wait_controlplane(lab: Lab, state: LabState, timeout: float = 60.0) -> None:
    url = f"https://{state.bridge_ip}:{state.port}/readyz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state.controlplane is None or not state.controlplane.alive():
            raise LabError(f"the control plane exited; see {lab.log_dir / 'controlplane.log'}")
        ca = lab.cp_dir / "pki" / "ca.crt"
        if lab.kubeconfig.exists() and ca.exists():
            try:
                ctx = ssl.create_default_context(cafile=str(ca))
                with urllib.request.urlopen(url, context=ctx, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError, ssl.SSLError):
                pass
        time.sleep(0.1)
    raise LabError(f"the control plane is not ready after {timeout:.0f}s; see {lab.log_dir / 'controlplane.log'}")


# ------------------------------------------------------------------ node agents


def start_agent(lab: Lab, node: NodeState) -> Proc:
    data = lab.node_data_dir(node.name)
    data.mkdir(parents=True, exist_ok=True)
    os.chmod(data, 0o700)
    node_kubeconfig = credentials.agent_kubeconfig(lab, node)
    argv = ["nsenter", f"--net={netns_path(node.netns)}", "--",
            "unshare", "--uts", "--",
            "sh", "-c", 'hostname "$0" && exec "$@"', node.name,
            sys.executable, "-m", "nodeagent.main", "--kubeconfig", str(node_kubeconfig),
            "--node-name", node.name, "--node-ip", node.ip, "--data-dir", str(data),
            "--runtime", "native", "--busybox-image", "--network-mode", "host-gw",
            # Lab timings: heartbeats well inside the lab's node-monitor grace period.
            "--lease-interval", "2", "--status-interval", "10", "--relist-interval", "0.5",
            "--backoff-base", "2", "--backoff-max", "40"]
    return _spawn(argv, lab.log_dir / f"{node.name}.log")


def purge_node(lab: Lab, node: NodeState) -> list[str]:
    return purge_nodes(lab, [node])


def purge_nodes(lab: Lab, nodes: list[NodeState]) -> list[str]:
    """Kill and remove the nodes' containers, sandboxes, pod volumes and cgroups, and end their
    spawners (nodeagent's purge, run by :mod:`deploy.labctl.purge`). Returns what is left."""
    argv: list[str] = []
    for node in nodes:
        data = lab.node_data_dir(node.name)
        if data.is_dir():
            argv += [str(data), node.name, str(netns_path(node.netns))]
    if not argv:
        return []
    r = subprocess.run([sys.executable, "-m", "deploy.labctl.purge", *argv],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, env=child_env())
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or ["exit " + str(r.returncode)])[-1]
        return [f"purge: {tail}"]
    try:
        left: list[str] = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [f"purge: unexpected output {r.stdout.strip()!r}"]
    return left


# ------------------------------------------------------------------ readiness


async def _node_ready(lab: Lab, names: list[str], timeout: float, progress: Progress) -> None:
    from apimachinery.api.core_v1 import Node
    from apimachinery.client import ApiClient, ApiConnectionError, load_kubeconfig
    from apimachinery.errors import ApiError

    pending = set(names)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with ApiClient(load_kubeconfig(lab.kubeconfig)) as c:
        while pending:
            for name in sorted(pending):
                try:
                    node = await c.get(c.resource(Node), name)
                except (ApiError, ApiConnectionError):
                    continue
                conds = node.get("status", {}).get("conditions") or []
                if any(x["type"] == "Ready" and x["status"] == "True" for x in conds):
                    pending.discard(name)
                    progress(f"node {name} Ready")
            if pending and loop.time() > deadline:
                raise LabError(f"not Ready after {timeout:.0f}s: {', '.join(sorted(pending))}; "
                               f"see the logs in {lab.log_dir}")
            if pending:
                await asyncio.sleep(0.2)


def wait_nodes_ready(lab: Lab, names: list[str], progress: Progress, timeout: float = 90.0) -> None:
    asyncio.run(_node_ready(lab, names, timeout, progress))


async def _node_conditions(lab: Lab) -> dict[str, str]:
    from apimachinery.api.core_v1 import Node
    from apimachinery.client import ApiClient, load_kubeconfig

    out: dict[str, str] = {}
    async with ApiClient(load_kubeconfig(lab.kubeconfig)) as c:
        nodes = await c.list(c.resource(Node))
        for n in nodes.get("items") or []:
            for x in n.get("status", {}).get("conditions") or []:
                if x["type"] == "Ready":
                    out[n["metadata"]["name"]] = str(x["status"])
    return out


def node_conditions(lab: Lab) -> dict[str, str]:
    """Node name -> Ready condition status; empty when the API is unreachable."""
    try:
        return asyncio.run(asyncio.wait_for(_node_conditions(lab), 5))
    except Exception:
        return {}
