"""``labctl`` end to end: a 2-node lab (network namespaces, real native agents, a control plane on
the lab bridge), a Deployment spread over both nodes, a node failure whose pods move to the
other node within the lab's timeouts, a partition healed, and ``down`` leaving nothing behind.

labctl runs as users run it (a subprocess); the test talks to the lab's API server through the
kubeconfig labctl prints. The lab has a unique name and a temporary state dir; ``labctl down``
runs in a finally, followed by a check that no namespace, link, mount, cgroup, nft table or
process of the lab is left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apimachinery.api.apps_v1 import Deployment
from apimachinery.api.core_v1 import Node, Pod
from apimachinery.client import ApiClient, load_kubeconfig
from nodeagent.runtime.cgroups import detect
from tests.fixtures.wait import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: labs create namespaces, links, mounts and cgroups"),
]

# Bounds on how long a failing step takes to fail; the lab runs with an 8 s node-monitor grace
# period and 10 s default tolerations, so a failed node's pods move in about 20 s.
WAIT = 60.0


class LabCli:
    def __init__(self) -> None:
        self.name = "t" + uuid.uuid4().hex[:8]
        self.state_dir = Path(tempfile.mkdtemp(prefix="kl-e2e-lab-"))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "deploy.labctl.main", *args]
        # Options go before a "--" (exec's command follows it).
        cut = argv.index("--") if "--" in argv else len(argv)
        argv[cut:cut] = ["--name", self.name, "--state-dir", str(self.state_dir)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=180)
        if check and r.returncode != 0:
            raise AssertionError(f"labctl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}\n{self.logs()}")
        return r

    def node(self, i: int) -> str:
        return f"{self.name}-n{i}"

    def logs(self) -> str:
        out = []
        for log in sorted((self.state_dir / self.name / "logs").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-25:]
            out.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(out)


def leftovers(lab: LabCli) -> list[str]:
    """Everything of the lab still on the host."""
    left = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left += [f"netns {line.split()[0]}" for line in netns.splitlines() if f"klab-{lab.name}" in line]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
             if f"klab-{lab.name}" in line or f"kv{lab.name}-" in line]
    mounts = Path("/proc/self/mountinfo").read_text()
    left += [f"mount {line.split()[4]}" for line in mounts.splitlines()
             if str(lab.state_dir) in line or f"klab-{lab.name}" in line]
    cgroups = detect()
    left += [f"cgroup kube-lite/{lab.node(i)}" for i in (1, 2) if cgroups.exists(f"kube-lite/{lab.node(i)}")]
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(lab.state_dir) in cmdline:
                left.append(f"process {d.name}: {cmdline[:120]}")
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    left += [f"nft {line}" for line in tables.splitlines() if lab.name in line]
    return left


@pytest.fixture
def lab() -> Iterator[LabCli]:
    lab = LabCli()
    try:
        yield lab
    finally:
        down = lab.run("down", check=False)
        left = leftovers(lab)
        shutil.rmtree(lab.state_dir, ignore_errors=True)
        assert down.returncode == 0 or not (lab.state_dir / lab.name).exists(), down.stderr
        assert not left, f"left behind after labctl down: {left}\n{down.stdout}{down.stderr}"
        assert down.returncode == 0, down.stdout + down.stderr


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "sleep", "image": "busybox:latest", "imagePullPolicy": "IfNotPresent",
                        "command": ["sleep", "3600"],
                        # Requests make the scheduler's least-allocated scoring spread the pods.
                        "resources": {"requests": {"cpu": "100m", "memory": "16Mi"}},
                    }],
                },
            },
        },
    }


async def running_by_node(c: ApiClient, app: str) -> dict[str, int]:
    pods = await c.list(c.resource(Pod), "default", label_selector=f"app={app}")
    out: dict[str, int] = {}
    for p in pods["items"]:
        if p["metadata"].get("deletionTimestamp") is None and p["status"].get("phase") == "Running":
            out[p["spec"]["nodeName"]] = out.get(p["spec"]["nodeName"], 0) + 1
    return out


async def node_ready(c: ApiClient, name: str) -> str:
    node = await c.get(c.resource(Node), name)
    return next((x["status"] for x in node["status"].get("conditions") or [] if x["type"] == "Ready"), "?")


async def test_lab_up_fail_partition_stop_down(lab: LabCli) -> None:
    up = lab.run("up", "--nodes", "2")
    kubeconfig = lab.run("kubeconfig").stdout.strip()
    assert kubeconfig and kubeconfig in up.stdout
    for line in ("control plane ready", f"node {lab.node(1)} Ready", f"node {lab.node(2)} Ready"):
        assert line in up.stdout, up.stdout

    status = lab.run("status").stdout
    assert [line.split()[2] for line in status.splitlines() if line.startswith(lab.name)] == ["True", "True"], status
    # Each node is its own "VM": its hostname and its IP on the lab bridge.
    assert lab.run("exec", "n1", "--", "hostname").stdout.strip() == lab.node(1)
    addrs = lab.run("exec", "n2", "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
    assert "172.31." in addrs and ".12/24" in addrs, addrs
    # Idempotent: up on a complete lab changes nothing.
    again = lab.run("up")
    assert "starting control plane" not in again.stdout and "agent started" not in again.stdout, again.stdout

    app = "sleeper"
    async with ApiClient(load_kubeconfig(Path(kubeconfig))) as c:
        await c.create(c.resource(Deployment), deployment(app, 4), "default")

        async def spread() -> dict[str, int] | None:
            by_node = await running_by_node(c, app)
            return by_node if sum(by_node.values()) == 4 and len(by_node) == 2 else None

        try:
            await eventually(spread, "4 pods Running on both nodes", WAIT, interval=0.5)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{lab.logs()}") from None

        # The agent of n1 crashes: n1 goes Unknown, its pods are evicted and replaced on n2.
        assert "agent killed" in lab.run("fail", "n1").stdout
        await eventually(lambda: _is(node_ready(c, lab.node(1)), "Unknown"), "n1 Ready=Unknown", WAIT, interval=0.5)

        async def moved() -> bool:
            return await running_by_node(c, app) == {lab.node(2): 4}

        await eventually(moved, "all 4 pods Running on n2", WAIT, interval=0.5)

        # Back up: the restarted agent reports Ready and finishes the evicted pods it still ran.
        lab.run("restart", "n1")
        assert await node_ready(c, lab.node(1)) == "True"

        async def evicted_gone() -> bool:
            pods = await c.list(c.resource(Pod), "default", label_selector=f"app={app}")
            return all(p["spec"]["nodeName"] == lab.node(2) for p in pods["items"])

        await eventually(evicted_gone, "evicted pods on n1 finished", WAIT, interval=0.5)

        # A partition: n2 cannot reach the control plane and goes Unknown; healed, it is Ready again.
        lab.run("partition", "n2")
        await eventually(lambda: _is(node_ready(c, lab.node(2)), "Unknown"), "n2 Ready=Unknown", WAIT, interval=0.5)
        lab.run("heal", "n2")
        await eventually(lambda: _is(node_ready(c, lab.node(2)), "True"), "n2 Ready again", WAIT, interval=0.5)

        # The whole n2 "VM" goes down: its containers die with it (their cgroups go), and its
        # pods are replaced on n1.
        assert "containers killed" in lab.run("stop", "n2").stdout
        assert not detect().exists(f"kube-lite/{lab.node(2)}")

        async def moved_back() -> bool:
            return await running_by_node(c, app) == {lab.node(1): 4}

        await eventually(moved_back, "all 4 pods Running on n1", WAIT, interval=0.5)

        # A control plane restart keeps every object (etcd in the lab's state dir).
        lab.run("restart", "controlplane")
        assert await running_by_node(c, app) == {lab.node(1): 4}

    # Errors are one line, never a traceback.
    bad = lab.run("fail", "n9", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no node 'n9'" in bad.stderr, bad.stderr


async def _is(value: Any, expected: str) -> bool:
    return bool(await value == expected)


def test_labctl_up_needs_root() -> None:
    code = (
        "import os, sys; from deploy.labctl.main import main; "
        "os.setgid(65534); os.setuid(65534); "
        "main(['up', '--name', 'nonroot', '--state-dir', sys.argv[1]])"
    )
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([sys.executable, "-c", code, d], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r
        assert r.stderr.startswith("labctl: needs root") and r.stderr.count("\n") == 1, r.stderr
        assert not list(Path(d).iterdir())
