"""``labctl`` end to end on a 3-node lab, and the learner exercises of docs/labs.md.

One lab serves the whole module (tests run in file order and build on each other): up, a
Deployment spread over the three nodes, then each fault in turn (``fail``, ``partition``,
``stop``) with the node's pods recreated on the other two within the lab's configured timeouts,
the exercises (scale, roll, roll back, crash-loop, resource limits), a control plane restart in
the middle of a rollout, ``down --keep-state`` + ``up`` keeping every object, and finally ``down``
leaving nothing on the host (netns, links, mounts, cgroups, nft tables, processes).

labctl and kubectl-lite run as users run them (subprocesses); checks read the API directly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from apimachinery.api.apps_v1 import Deployment, ReplicaSet
from apimachinery.api.core_v1 import Pod
from apimachinery.client import ApiClient, load_kubeconfig
from nodeagent.runtime.cgroups import detect
from tests.fixtures.lab import (
    LabCli,
    leftovers,
    node_ready,
    pods_by_node,
    scheduling_failure,
    sleeper_deployment,
)
from tests.fixtures.wait import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: labs create namespaces, links, mounts and cgroups"),
]

ROOT = Path(__file__).resolve().parents[2]
APP = "sleeper"
REPLICAS = 6
# Only bounds how long a failing step takes to fail (never a performance assertion).
SLACK = 60.0


@pytest.fixture(scope="module")
def lab() -> Iterator[LabCli]:
    lab = LabCli()
    try:
        # Shorter than the lab's defaults (8 s / 10 s), to keep the three faults quick; the test
        # reads the values back from the lab's state, so it also checks the options are honoured.
        up = lab.up(3, "--node-monitor-grace-period", "6", "--default-toleration-seconds", "5")
        assert str(lab.kubeconfig) in up.stdout, up.stdout
        yield lab
    finally:
        left = lab.down()  # a no-op check when test_down already removed the lab
        assert not left, f"left behind after labctl down: {left}"


@pytest.fixture
async def api(lab: LabCli) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(lab.kubeconfig)) as c:
        yield c


def lab_timeouts(lab: LabCli) -> tuple[float, int]:
    """The node-monitor grace period and default toleration seconds labctl gave the control plane."""
    state = json.loads((lab.state_dir / lab.name / "state.json").read_text())
    return float(state["node_monitor_grace_period"]), int(state["default_toleration_seconds"])


def move_wait(lab: LabCli) -> float:
    grace, toleration = lab_timeouts(lab)
    return grace + toleration + SLACK


async def wait_ready(c: ApiClient, lab: LabCli, node: str, want: str = "True") -> None:
    async def check() -> bool:
        return await node_ready(c, node) == want

    await eventually(check, f"{node} Ready={want}", move_wait(lab), interval=0.5)


async def wait_moved_off(c: ApiClient, lab: LabCli, gone: str) -> dict[str, int]:
    """All replicas Running again, none on ``gone``."""
    async def check() -> dict[str, int] | None:
        by_node = await pods_by_node(c, f"app={APP}")
        return by_node if sum(by_node.values()) == REPLICAS and gone not in by_node else None

    try:
        return await eventually(check, f"{REPLICAS} pods Running off {gone}", move_wait(lab), interval=0.5)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{lab.logs()}") from None


async def wait_terminating_gone(c: ApiClient, lab: LabCli, node: str) -> None:
    """The evicted pods the node still held are finished once the node is back."""
    async def check() -> bool:
        pods = await c.list(c.resource(Pod), "default", label_selector=f"app={APP}")
        return all(p["spec"]["nodeName"] != node for p in pods["items"])

    await eventually(check, f"evicted pods on {node} finished", SLACK, interval=0.5)


# ------------------------------------------------------------------ up and faults


async def test_up_three_nodes(lab: LabCli, api: ApiClient) -> None:
    status = lab.run("status").stdout
    rows = [line.split() for line in status.splitlines() if line.startswith(lab.name)]
    assert [r[0] for r in rows] == [lab.node(i) for i in (1, 2, 3)], status
    assert [r[2] for r in rows] == ["True"] * 3, status
    # Each node is its own "VM": its hostname and its IP on the lab bridge.
    assert lab.run("exec", "n3", "--", "hostname").stdout.strip() == lab.node(3)
    addrs = lab.run("exec", "n2", "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
    assert "172.31." in addrs and ".12/24" in addrs, addrs
    # Idempotent: up on a complete lab starts nothing.
    again = lab.run("up")
    assert "starting control plane" not in again.stdout and "agent started" not in again.stdout, again.stdout

    await api.create(api.resource(Deployment), sleeper_deployment(APP, REPLICAS), "default")

    async def spread() -> dict[str, int] | None:
        by_node = await pods_by_node(api, f"app={APP}")
        return by_node if sum(by_node.values()) == REPLICAS and len(by_node) == 3 else None

    try:
        await eventually(spread, f"{REPLICAS} pods Running on all 3 nodes", SLACK, interval=0.5)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{lab.logs()}") from None
    # The lab's short timeouts reach the pods: admission gave them the lab's toleration seconds.
    _, toleration = lab_timeouts(lab)
    pods = await api.list(api.resource(Pod), "default", label_selector=f"app={APP}")
    tolerations = pods["items"][0]["spec"]["tolerations"]
    assert {t["key"]: t.get("tolerationSeconds") for t in tolerations} == {
        "node.kubernetes.io/not-ready": toleration, "node.kubernetes.io/unreachable": toleration}


async def test_fail_node_pods_move(lab: LabCli, api: ApiClient) -> None:
    """labs.md "Kill a node": the agent dies, the node goes Unknown, its pods move."""
    assert "agent killed" in lab.run("fail", "n1").stdout
    await wait_ready(api, lab, lab.node(1), "Unknown")
    await wait_moved_off(api, lab, lab.node(1))
    # Back up: the restarted agent reports Ready and finishes the evicted pods it still ran.
    lab.run("restart", "n1")
    assert await node_ready(api, lab.node(1)) == "True"
    await wait_terminating_gone(api, lab, lab.node(1))


async def test_partition_and_heal(lab: LabCli, api: ApiClient) -> None:
    """labs.md "Partition a node"."""
    assert "partitioned" in lab.run("partition", "n2").stdout
    assert "partitioned" in lab.run("status").stdout
    await wait_ready(api, lab, lab.node(2), "Unknown")
    await wait_moved_off(api, lab, lab.node(2))
    lab.run("heal", "n2")
    await wait_ready(api, lab, lab.node(2), "True")
    await wait_terminating_gone(api, lab, lab.node(2))


async def test_stop_node(lab: LabCli, api: ApiClient) -> None:
    """The whole n3 "VM" goes down: its containers die with it (their cgroups go)."""
    assert "containers killed" in lab.run("stop", "n3").stdout
    assert not detect().exists(f"kube-lite/{lab.node(3)}")
    await wait_ready(api, lab, lab.node(3), "Unknown")
    await wait_moved_off(api, lab, lab.node(3))
    lab.run("restart", "n3")
    assert await node_ready(api, lab.node(3)) == "True"
    await wait_terminating_gone(api, lab, lab.node(3))


# ------------------------------------------------------------------ docs/labs.md exercises


def web_pods(lab: LabCli) -> list[dict[str, Any]]:
    out = lab.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout
    return [p for p in json.loads(out)["items"] if p["metadata"].get("deletionTimestamp") is None]


async def test_exercise_scale(lab: LabCli) -> None:
    """labs.md "Scale"."""
    lab.kubectl("apply", "-f", "manifests/demo.yaml")
    lab.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
    lab.kubectl("scale", "deployment/web", "--replicas=5")
    lab.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
    pods = web_pods(lab)
    assert len(pods) == 5 and all(p["status"]["phase"] == "Running" for p in pods), pods
    assert len({p["spec"]["nodeName"] for p in pods}) > 1, "the scheduler spreads the replicas"
    table = lab.kubectl("get", "deployment", "web").stdout
    assert "5/5" in table, table


ROLL_PATCH = '{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"VERSION","value":"2"}]}]}}}}'


def web_versions(lab: LabCli) -> set[str]:
    return {next((e["value"] for e in p["spec"]["containers"][0].get("env") or [] if e["name"] == "VERSION"), "1")
            for p in web_pods(lab)}


def revisions(history: str) -> list[str]:
    """The REVISION column of ``rollout history``."""
    return [line.split()[0] for line in history.splitlines() if line.split() and line.split()[0].isdigit()]


async def test_exercise_roll_and_roll_back(lab: LabCli) -> None:
    """labs.md "Roll out a new version" and "Roll back"."""
    lab.kubectl("patch", "deployment", "web", "-p", ROLL_PATCH)
    lab.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
    assert web_versions(lab) == {"2"}
    replicasets = lab.kubectl("get", "rs", "-l", "app=web").stdout
    assert len(replicasets.strip().splitlines()) == 3, replicasets  # header + old + new
    history = lab.kubectl("rollout", "history", "deployment/web").stdout
    assert revisions(history) == ["1", "2"], history

    lab.kubectl("rollout", "undo", "deployment/web")
    lab.kubectl("rollout", "status", "deployment/web", "--timeout=120s")

    async def back() -> bool:
        return web_versions(lab) == {"1"}

    await eventually(back, "pods of revision 1 only", SLACK, interval=0.5)
    history = lab.kubectl("rollout", "history", "deployment/web").stdout
    assert revisions(history) == ["2", "3"], history


async def test_controlplane_restart_mid_rollout(lab: LabCli, api: ApiClient) -> None:
    """The rollout of a new version finishes across a control plane restart: the controllers
    pick it up from etcd where they left it."""
    lab.kubectl("patch", "deployment", "web", "-p", ROLL_PATCH.replace('"2"', '"3"'))
    d = await api.get(api.resource(Deployment), "web", "default")
    st = d.get("status") or {}
    # maxUnavailable 0 and a readiness probe: each new pod must turn Ready before an old one
    # goes, so five replicas take several probe periods.
    assert st.get("updatedReplicas", 0) < 5 or st.get("observedGeneration") != d["metadata"]["generation"], st
    lab.run("restart", "controlplane")
    lab.kubectl("rollout", "status", "deployment/web", "--timeout=120s")
    assert web_versions(lab) == {"3"}
    rss = await api.list(api.resource(ReplicaSet), "default", label_selector="app=web")
    sizes = sorted(rs["spec"]["replicas"] for rs in rss["items"])
    assert sizes[-1] == 5 and sum(sizes) == 5, sizes


async def test_exercise_crash_loop(lab: LabCli) -> None:
    """labs.md "Crash-loop"."""
    lab.kubectl("apply", "-f", "manifests/crashloop.yaml")

    async def looping() -> dict[str, Any] | None:
        pod = json.loads(lab.kubectl("get", "pod", "crashloop", "-o", "json").stdout)
        cs = (pod["status"].get("containerStatuses") or [{}])[0]
        waiting = (cs.get("state") or {}).get("waiting") or {}
        return cs if waiting.get("reason") == "CrashLoopBackOff" and cs.get("restartCount", 0) >= 1 else None

    cs = await eventually(looping, "crashloop in CrashLoopBackOff", SLACK, interval=0.5)
    assert cs["lastState"]["terminated"]["exitCode"] == 1, cs
    assert "CrashLoopBackOff" in lab.kubectl("get", "pod", "crashloop").stdout
    described = lab.kubectl("describe", "pod", "crashloop").stdout
    assert "Exit Code" in described and "Last State" in described, described
    logs = lab.kubectl("logs", "crashloop").stdout
    assert "fatal: no database configured" in logs, logs
    lab.kubectl("delete", "-f", "manifests/crashloop.yaml")


async def test_exercise_resource_limits(lab: LabCli, api: ApiClient) -> None:
    """labs.md "Resource limits": OOMKilled over the memory limit; Pending when no node fits."""
    lab.kubectl("apply", "-f", "manifests/resource-limits.yaml")

    async def oom() -> dict[str, Any] | None:
        pod = await api.get(api.resource(Pod), "memory-hog", "default")
        cs = (pod["status"].get("containerStatuses") or [{}])[0]
        return ((cs.get("state") or {}).get("terminated")) or None

    terminated = await eventually(oom, "memory-hog terminated", SLACK, interval=0.5)
    assert terminated["reason"] == "OOMKilled", terminated
    reason = lab.kubectl("get", "pod", "memory-hog", "-o",
                         "jsonpath={.status.containerStatuses[0].state.terminated.reason}").stdout
    assert reason.strip() == "OOMKilled", reason

    message = await eventually(lambda: scheduling_failure(api, "too-big"), "FailedScheduling for too-big", SLACK,
                               interval=0.5)
    assert "Insufficient cpu" in message, message
    pod = await api.get(api.resource(Pod), "too-big", "default")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    assert "Insufficient cpu" in lab.kubectl("describe", "pod", "too-big").stdout

    async def limited_running() -> bool:
        return (await api.get(api.resource(Pod), "limited", "default"))["status"].get("phase") == "Running"

    await eventually(limited_running, "limited Running", SLACK, interval=0.5)
    assert "Burstable" in lab.kubectl("describe", "pod", "limited").stdout
    lab.kubectl("delete", "-f", "manifests/resource-limits.yaml")


# ------------------------------------------------------------------ down


async def test_down_keep_state_then_up(lab: LabCli, api: ApiClient) -> None:
    before = await api.get(api.resource(Deployment), APP, "default")
    down = lab.run("down", "--keep-state")
    assert "state kept" in down.stdout, down.stdout
    assert leftovers(lab) == []  # nothing running or mounted; only the state dir remains
    assert lab.kubeconfig.exists()

    lab.run("up")
    async with ApiClient(load_kubeconfig(lab.kubeconfig)) as c:
        after = await c.get(c.resource(Deployment), APP, "default")
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        assert (await c.get(c.resource(Deployment), "web", "default"))["spec"]["replicas"] == 5

        async def all_running() -> bool:
            return sum((await pods_by_node(c, f"app={APP}")).values()) == REPLICAS

        await eventually(all_running, f"{REPLICAS} {APP} pods Running after up", SLACK, interval=0.5)


def test_down_leaves_nothing(lab: LabCli) -> None:
    down = lab.run("down")
    assert "removed" in down.stdout, down.stdout
    assert leftovers(lab, include_state=True) == []
    # Errors are one line, never a traceback.
    bad = lab.run("status", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no lab named" in bad.stderr, bad.stderr


def test_labctl_up_needs_root() -> None:
    code = (
        "import os, sys; from deploy.labctl.main import main; "
        "os.setgid(65534); os.setuid(65534); "
        "main(['up', '--name', 'nonroot', '--state-dir', sys.argv[1]])"
    )
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([sys.executable, "-c", code, d], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert r.returncode == 1, r
        assert r.stderr.startswith("labctl: needs root") and r.stderr.count("\n") == 1, r.stderr
        assert not list(Path(d).iterdir())


def test_labs_doc_names_real_tests() -> None:
    """Each exercise in docs/labs.md names the test that runs it; those tests must exist."""
    doc = (ROOT / "docs" / "labs.md").read_text()
    named = re.findall(r"`(?:tests/e2e/(test_\w+)\.py)?::(test_\w+)`", doc)
    assert len(named) >= 9, named
    module = "test_labctl"
    for file, test in named:
        module = file or module  # "::name" continues the last file named
        source = (ROOT / "tests" / "e2e" / f"{module}.py").read_text()
        assert f"def {test}(" in source, f"docs/labs.md names {module}::{test}, which does not exist"
