"""The native node agent against a real control plane: pods bound to its node become real
containers (busybox:latest, built by the agent from the host's busybox-static).

One agent (a subprocess, as users run it, in its own session) serves the module on a node with
a unique name; each test uses its own pod names in a namespace made for this module. Containers
report what they see into a hostPath directory the test reads. Afterwards the agent is stopped,
whatever it left is purged, and the test checks that nothing is left (mounts, cgroups).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api.coordination_v1 import Lease
from apimachinery.api.core_v1 import ConfigMap, Namespace, Node, Pod, Secret
from apimachinery.client import ApiClient
from apimachinery.errors import ApiError
from controlplane.credentials import write_node_kubeconfig
from nodeagent.runtime import rootfs
from nodeagent.runtime.cgroups import detect
from tests.e2e.conftest import node_client, node_ready, running_agent
from tests.fixtures.apiserver import ControlPlaneProcess
from tests.fixtures.wait import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the native runtime uses namespaces, mounts and cgroups"),
]

WAIT = 40.0


class Agent:
    """The ``nodeagent --runtime native`` process of the module's node."""

    def __init__(self, cp: ControlPlaneProcess, tmp: Path) -> None:
        self.cp = cp
        self.tmp = tmp
        self.node = f"e2e-{uuid.uuid4().hex[:8]}"
        self.data_dir = tmp / "agent"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def kubeconfig(self) -> Path:
        """The node's own credential (CN=system:node:<node>): the agent works under node restriction."""
        return write_node_kubeconfig(self.cp.data_dir, self.node)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "nodeagent.main", "--kubeconfig", str(self.kubeconfig()),
                "--node-name", self.node, "--node-ip", "127.0.0.1", "--data-dir", str(self.data_dir),
                "--runtime", "native", "--busybox-image", "--backoff-base", "1", "--backoff-max", "4",
                # This agent runs in the host's own namespace: no bridge, nft tables or DNS here.
                "--network-mode", "none", *self.timings()]

    @staticmethod
    def timings() -> list[str]:
        return ["--lease-interval", "2", "--status-interval", "10", "--relist-interval", "0.3", "-v"]

    def start(self) -> None:
        self.starts += 1
        with open(self.tmp / f"agent-{self.starts}.log", "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def log_tail(self) -> str:
        path = self.tmp / f"agent-{self.starts}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-60:]) if path.exists() else ""


@pytest.fixture(scope="module")
def agent(apiserver: ControlPlaneProcess) -> Iterator[Agent]:
    with running_agent(lambda tmp: Agent(apiserver, tmp), "kl-e2e-agent-") as a:
        yield a


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(apiserver: ControlPlaneProcess, agent: Agent) -> AsyncIterator[ApiClient]:
    async with node_client(apiserver, agent, node_ready, "the agent registers its node", WAIT) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def ns(client: ApiClient) -> AsyncIterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    await client.create(client.resource(Namespace), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    try:
        await client.delete(client.resource(Namespace), name)
    except ApiError:
        pass


@pytest.fixture
def host_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="kl-e2e-out-"))
    os.chmod(d, 0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def pod_manifest(name: str, node: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": containers, **spec},
    }


def busybox(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox:latest", "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", script], **extra}


def out_volume(path: Path) -> dict[str, Any]:
    return {"name": "out", "hostPath": {"path": str(path), "type": "Directory"}}


OUT_MOUNT = {"name": "out", "mountPath": "/out"}


async def get_pod(client: ApiClient, ns: str, name: str) -> dict[str, Any]:
    return await client.get(client.resource(Pod), name, ns)


def status_of(pod: dict[str, Any], container: str) -> dict[str, Any]:
    for st in pod["status"].get("containerStatuses") or []:
        if st["name"] == container:
            return st
    raise AssertionError(f"no status for container {container}: {pod['status']}")


def condition(pod: dict[str, Any], ctype: str) -> str | None:
    for c in pod["status"].get("conditions") or []:
        if c["type"] == ctype:
            return str(c["status"])
    return None


async def wait_ready(client: ApiClient, ns: str, name: str, agent: Agent) -> dict[str, Any]:
    async def ready() -> dict[str, Any] | None:
        pod = await get_pod(client, ns, name)
        return pod if pod["status"].get("phase") == "Running" and condition(pod, "Ready") == "True" else None

    try:
        return await eventually(ready, f"pod {name} Running and Ready", WAIT)
    except AssertionError as e:
        raise AssertionError(f"{e}\nagent log:\n{agent.log_tail()}") from None


async def wait_gone(client: ApiClient, ns: str, name: str) -> None:
    async def gone() -> bool:
        try:
            await get_pod(client, ns, name)
        except ApiError as e:
            return e.code == 404
        return False

    await eventually(gone, f"pod {name} deleted", WAIT)


def pod_cgroup(agent: Agent, uid: str) -> str:
    return f"kube-lite/{agent.node}/pod{uid}"


async def test_node_reports_host_capacity_and_renews_its_lease(client: ApiClient, agent: Agent) -> None:
    node = await client.get(client.resource(Node), agent.node)
    mem_kib = next(int(line.split()[1]) for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal:"))
    assert node["status"]["capacity"]["cpu"] == str(len(os.sched_getaffinity(0)))
    assert node["status"]["capacity"]["memory"] == f"{mem_kib}Ki"
    assert node["status"]["capacity"]["pods"] == "110"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == "kube-lite://0.1.0"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    first = (await client.get(client.resource(Lease), agent.node, "kube-node-lease"))["spec"]["renewTime"]

    async def renewed() -> bool:
        lease = await client.get(client.resource(Lease), agent.node, "kube-node-lease")
        return bool(lease["spec"]["renewTime"] != first)

    await eventually(renewed, "the lease is renewed", WAIT)


async def test_pod_runs_with_env_volumes_and_is_stopped_gracefully(
    client: ApiClient, agent: Agent, ns: str, host_dir: Path
) -> None:
    await client.create(client.resource(ConfigMap), {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
        "data": {"greeting": "hello from a configmap", "other": "x"}}, ns)
    await client.create(client.resource(Secret), {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
        "stringData": {"password": "s3cret"}}, ns)
    script = (
        "echo $$ > /out/pid; hostname > /out/hostname; "
        'echo "$PLAIN|$FROM_CM|$FROM_SECRET|$MY_NAME|$MY_NS|$MY_NODE|$HOST_IP|$EXPANDED|$other" > /out/env; '
        "cat /cfg/greeting > /out/cfg; cat /sec/password > /out/sec; cat /info/labels > /out/labels; "
        "if touch /cfg/new 2>/dev/null; then echo rw > /out/cfg-mode; else echo ro > /out/cfg-mode; fi; "
        "echo scratch > /scratch/file && cat /scratch/file > /out/scratch; "
        "trap 'echo TERM >> /out/events; exit 0' TERM; "
        "while true; do sleep 0.1; done"
    )
    container = busybox("main", script, env=[
        {"name": "PLAIN", "value": "plain"},
        {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
        {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "EXPANDED", "value": "$(PLAIN)-x"},
    ], envFrom=[{"configMapRef": {"name": "cfg"}}], lifecycle={
        "preStop": {"exec": {"command": ["sh", "-c", "echo preStop >> /out/events"]}},
    }, volumeMounts=[
        OUT_MOUNT, {"name": "cfg", "mountPath": "/cfg"}, {"name": "sec", "mountPath": "/sec"},
        {"name": "info", "mountPath": "/info"}, {"name": "scratch", "mountPath": "/scratch"},
    ])
    name = f"web-{uuid.uuid4().hex[:6]}"
    manifest = pod_manifest(name, agent.node, [container], terminationGracePeriodSeconds=10, volumes=[
        out_volume(host_dir),
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "scratch", "emptyDir": {"medium": "Memory"}},
    ])
    await client.create(client.resource(Pod), manifest, ns)
    pod = await wait_ready(client, ns, name, agent)
    uid = pod["metadata"]["uid"]

    st = status_of(pod, "main")
    assert st["ready"] is True and st["started"] is True and st["restartCount"] == 0
    assert "running" in st["state"] and st["state"]["running"]["startedAt"]
    assert st["containerID"].startswith("kube-lite://") and len(st["containerID"]) > len("kube-lite://")
    assert st["image"] == "busybox:latest" and st["imageID"]
    status = pod["status"]
    assert status["hostIP"] == "127.0.0.1" and "podIP" not in status and status["startTime"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}

    await eventually(lambda: _exists(host_dir / "scratch"), "the container wrote its observations")
    assert (host_dir / "pid").read_text().strip() == "1"
    assert (host_dir / "hostname").read_text().strip() == name
    assert (host_dir / "env").read_text().strip() == (
        f"plain|hello from a configmap|s3cret|{name}|{ns}|{agent.node}|127.0.0.1|plain-x|x")
    assert (host_dir / "cfg").read_text() == "hello from a configmap"
    assert (host_dir / "sec").read_text() == "s3cret"
    assert (host_dir / "labels").read_text() == f'app="{name}"'
    assert (host_dir / "cfg-mode").read_text().strip() == "ro"
    assert (host_dir / "scratch").read_text().strip() == "scratch"

    cgroups = detect()
    pids = cgroups.pids(pod_cgroup(agent, uid))
    assert pids, "the pod's processes are in its cgroup"
    await client.delete(client.resource(Pod), name, ns)
    await wait_gone(client, ns, name)
    # The preStop hook ran first, then the stop signal reached the container's trap.
    assert (host_dir / "events").read_text().split() == ["preStop", "TERM"]
    assert not cgroups.exists(pod_cgroup(agent, uid))
    assert not [p for p in pids if _alive(p)]
    assert rootfs.mounts_under(agent.data_dir) == []
    assert not (agent.data_dir / "pods" / uid).exists()


def _read(path: str) -> str:
    return Path(path).read_text()


def _nonempty(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


async def _exists(path: Path) -> bool:
    return _nonempty(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_crashing_container_backs_off(client: ApiClient, agent: Agent, ns: str) -> None:
    name = f"crash-{uuid.uuid4().hex[:6]}"
    await client.create(client.resource(Pod), pod_manifest(name, agent.node, [busybox("c", "exit 1")]), ns)
    seen_backoff: list[dict[str, Any]] = []  # pod snapshots taken while the container backed off

    async def restarted_twice() -> bool:
        pod = await get_pod(client, ns, name)
        st = status_of(pod, "c")
        if (st["state"].get("waiting") or {}).get("reason") == "CrashLoopBackOff":
            seen_backoff.append(pod)
        return st["restartCount"] >= 2 and bool(seen_backoff)

    await eventually(restarted_twice, "restartCount grows, with CrashLoopBackOff in between", WAIT, interval=0.05)
    # Judged on a snapshot from the back-off itself: between back-offs the container does run
    # for a moment, and then (no readiness probe) it is Ready, as in Kubernetes.
    pod = seen_backoff[-1]
    st = status_of(pod, "c")
    assert st["lastState"]["terminated"]["exitCode"] == 1
    assert st["lastState"]["terminated"]["reason"] == "Error"
    assert st["ready"] is False
    assert st["state"]["waiting"]["message"].startswith("back-off ")
    assert (pod["status"]["phase"], condition(pod, "Ready")) == ("Running", "False"), pod["status"]
    await client.delete(client.resource(Pod), name, ns)
    await wait_gone(client, ns, name)


async def test_readiness_probe_gates_ready(client: ApiClient, agent: Agent, ns: str, host_dir: Path) -> None:
    name = f"ready-{uuid.uuid4().hex[:6]}"
    probe = {"exec": {"command": ["test", "-e", "/out/ready"]}, "periodSeconds": 1, "failureThreshold": 1}
    c = busybox("app", "exec sleep 3600", readinessProbe=probe, volumeMounts=[OUT_MOUNT])
    await client.create(client.resource(Pod), pod_manifest(
        name, agent.node, [c], terminationGracePeriodSeconds=0, volumes=[out_volume(host_dir)]), ns)

    async def running_unready() -> bool:
        pod = await get_pod(client, ns, name)
        return pod["status"].get("phase") == "Running" and condition(pod, "Ready") == "False"

    await eventually(running_unready, "running but not ready", WAIT)
    (host_dir / "ready").touch()
    pod = await wait_ready(client, ns, name, agent)
    assert status_of(pod, "app")["ready"] is True
    (host_dir / "ready").unlink()

    async def unready_again() -> bool:
        pod = await get_pod(client, ns, name)
        return condition(pod, "Ready") == "False" and status_of(pod, "app")["ready"] is False

    await eventually(unready_again, "readiness failure clears Ready", WAIT)
    assert status_of(await get_pod(client, ns, name), "app")["restartCount"] == 0
    await client.delete(client.resource(Pod), name, ns)
    await wait_gone(client, ns, name)


async def test_liveness_failure_restarts_container(client: ApiClient, agent: Agent, ns: str, host_dir: Path) -> None:
    name = f"live-{uuid.uuid4().hex[:6]}"
    (host_dir / "alive").touch()
    probe = {"exec": {"command": ["test", "-e", "/out/alive"]}, "periodSeconds": 1, "failureThreshold": 1}
    c = busybox("app", "echo start >> /out/starts; exec sleep 3600", livenessProbe=probe, volumeMounts=[OUT_MOUNT])
    await client.create(client.resource(Pod), pod_manifest(
        name, agent.node, [c], terminationGracePeriodSeconds=1, volumes=[out_volume(host_dir)]), ns)
    pod = await wait_ready(client, ns, name, agent)
    first = status_of(pod, "app")["containerID"]
    (host_dir / "alive").unlink()

    async def restarted() -> dict[str, Any] | None:
        st = status_of(await get_pod(client, ns, name), "app")
        if st["restartCount"] >= 1 and "running" in st["state"]:
            (host_dir / "alive").touch()
            return st
        return None

    st = await eventually(restarted, "liveness failure restarts the container", WAIT)
    assert st["containerID"] != first
    assert st["lastState"]["terminated"]["containerID"] == first
    assert (host_dir / "starts").read_text().count("start") >= 2
    await client.delete(client.resource(Pod), name, ns)
    await wait_gone(client, ns, name)


async def test_failing_startup_probe_restarts_and_holds_back_readiness(client: ApiClient, agent: Agent, ns: str) -> None:
    name = f"startup-{uuid.uuid4().hex[:6]}"
    c = busybox("app", "exec sleep 3600",
                startupProbe={"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2},
                readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1})
    await client.create(client.resource(Pod), pod_manifest(name, agent.node, [c], terminationGracePeriodSeconds=0), ns)

    async def restarted() -> dict[str, Any] | None:
        st = status_of(await get_pod(client, ns, name), "app")
        return st if st["restartCount"] >= 1 else None

    st = await eventually(restarted, "a failed startup probe restarts the container", WAIT)
    assert st["started"] is False and st["ready"] is False
    assert condition(await get_pod(client, ns, name), "Ready") == "False"
    await client.delete(client.resource(Pod), name, ns)
    await wait_gone(client, ns, name)


async def test_waiting_reasons_for_missing_image_and_config(client: ApiClient, agent: Agent, ns: str) -> None:
    no_image, no_config = f"noimg-{uuid.uuid4().hex[:6]}", f"nocfg-{uuid.uuid4().hex[:6]}"
    no_pull = f"nopull-{uuid.uuid4().hex[:6]}"
    missing = "example.invalid/missing:1.0"
    await client.create(client.resource(Pod), pod_manifest(no_image, agent.node, [
        {"name": "app", "image": missing, "imagePullPolicy": "Never"}]), ns)
    # A registry on a loopback port nobody listens on: every pull fails at once.
    await client.create(client.resource(Pod), pod_manifest(no_pull, agent.node, [
        {"name": "app", "image": "127.0.0.1:9/missing:1.0", "imagePullPolicy": "IfNotPresent"}]), ns)
    cm_name = f"late-{uuid.uuid4().hex[:6]}"
    env = [{"name": "LATE", "valueFrom": {"configMapKeyRef": {"name": cm_name, "key": "k"}}}]
    await client.create(client.resource(Pod), pod_manifest(no_config, agent.node, [
        busybox("app", "exec sleep 3600", env=env)], terminationGracePeriodSeconds=0), ns)

    async def waiting(name: str, reason: str) -> dict[str, Any] | None:
        st = status_of(await get_pod(client, ns, name), "app")
        w = st["state"].get("waiting") or {}
        return w if w.get("reason") == reason else None

    w = await eventually(lambda: waiting(no_image, "ErrImageNeverPull"), "a missing image with pull policy Never", WAIT)
    assert w["message"] == f'Container image "{missing}" is not present with pull policy of Never'
    w = await eventually(lambda: waiting(no_pull, "ImagePullBackOff"), "failing pulls back off", WAIT)
    assert w["message"].startswith('Back-off pulling image "127.0.0.1:9/missing:1.0"')
    w = await eventually(lambda: waiting(no_config, "CreateContainerConfigError"), "a missing ConfigMap", WAIT)
    assert w["message"] == f'configmap "{cm_name}" not found'
    assert (await get_pod(client, ns, no_config))["status"]["phase"] == "Pending"
    # Level-triggered: once the ConfigMap exists the container starts.
    await client.create(client.resource(ConfigMap), {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm_name}, "data": {"k": "v"}}, ns)
    await wait_ready(client, ns, no_config, agent)
    for name in (no_image, no_config, no_pull):
        await client.delete(client.resource(Pod), name, ns)
    for name in (no_image, no_config, no_pull):
        await wait_gone(client, ns, name)


async def test_init_containers_and_restart_policy_never(client: ApiClient, agent: Agent, ns: str) -> None:
    ok, bad = f"done-{uuid.uuid4().hex[:6]}", f"fail-{uuid.uuid4().hex[:6]}"
    work = {"name": "work", "mountPath": "/work"}
    inits = [busybox("first", "echo one > /work/log", volumeMounts=[work]),
             busybox("second", "echo two >> /work/log", volumeMounts=[work])]
    await client.create(client.resource(Pod), pod_manifest(
        ok, agent.node, [busybox("main", "test \"$(cat /work/log)\" = \"$(printf 'one\\ntwo')\"", volumeMounts=[work])],
        initContainers=inits, restartPolicy="Never", volumes=[{"name": "work", "emptyDir": {}}]), ns)
    await client.create(client.resource(Pod), pod_manifest(
        bad, agent.node, [busybox("main", "exit 3")], restartPolicy="Never"), ns)

    async def finished(name: str, phase: str) -> dict[str, Any] | None:
        pod = await get_pod(client, ns, name)
        return pod if pod["status"].get("phase") == phase else None

    pod = await eventually(lambda: finished(ok, "Succeeded"), "init containers in order, then main exits 0", WAIT)
    inits_st = pod["status"]["initContainerStatuses"]
    assert [s["name"] for s in inits_st] == ["first", "second"]
    for s in inits_st:
        assert s["state"]["terminated"]["exitCode"] == 0 and s["state"]["terminated"]["reason"] == "Completed"
    main = status_of(pod, "main")["state"]["terminated"]
    assert main["exitCode"] == 0 and main["reason"] == "Completed"
    assert condition(pod, "Ready") == "False" and condition(pod, "Initialized") == "True"

    pod = await eventually(lambda: finished(bad, "Failed"), "a failed container with restartPolicy Never", WAIT)
    st = status_of(pod, "main")
    assert st["state"]["terminated"]["exitCode"] == 3 and st["state"]["terminated"]["reason"] == "Error"
    assert st["restartCount"] == 0
    for name in (ok, bad):
        await client.delete(client.resource(Pod), name, ns)
    for name in (ok, bad):
        await wait_gone(client, ns, name)


async def test_http_and_tcp_probes_run_in_the_pod_network(client: ApiClient, agent: Agent, ns: str) -> None:
    name = f"http-{uuid.uuid4().hex[:6]}"
    c = busybox(
        "web", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www",
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={"httpGet": {"path": "/index.html", "port": "http"}, "periodSeconds": 1},
        livenessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    )
    await client.create(client.resource(Pod), pod_manifest(name, agent.node, [c], terminationGracePeriodSeconds=0), ns)
    pod = await wait_ready(client, ns, name, agent)
    assert status_of(pod, "web")["restartCount"] == 0
    # Nothing listens on the node's own port 8080 for this pod: the probes went into its namespace.
    await asyncio.sleep(2.5)  # a few liveness periods
    assert status_of(await get_pod(client, ns, name), "web")["restartCount"] == 0
    await client.delete(client.resource(Pod), name, ns)
    await wait_gone(client, ns, name)


async def test_agent_restart_adopts_running_containers(
    client: ApiClient, agent: Agent, ns: str, host_dir: Path
) -> None:
    name = f"adopt-{uuid.uuid4().hex[:6]}"
    c = busybox("app", "echo start >> /out/starts; exec sleep 3600", volumeMounts=[OUT_MOUNT])
    await client.create(client.resource(Pod), pod_manifest(
        name, agent.node, [c], terminationGracePeriodSeconds=0, volumes=[out_volume(host_dir)]), ns)
    before = status_of(await wait_ready(client, ns, name, agent), "app")
    orphan = f"orphan-{uuid.uuid4().hex[:6]}"
    await client.create(client.resource(Pod), pod_manifest(
        orphan, agent.node, [busybox("app", "exec sleep 3600")], terminationGracePeriodSeconds=0), ns)
    orphan_uid = (await wait_ready(client, ns, orphan, agent))["metadata"]["uid"]
    cgroups = detect()
    orphan_pids = cgroups.pids(pod_cgroup(agent, orphan_uid))
    assert orphan_pids

    agent.kill9()
    # Force-deleted while the agent is down: the API forgets it at once, the node must not.
    await client.delete(client.resource(Pod), orphan, ns, grace_period_seconds=0)
    await wait_gone(client, ns, orphan)
    agent.start()
    # A pod created after the restart runs: the new agent is syncing.
    probe_name = f"after-{uuid.uuid4().hex[:6]}"
    await client.create(client.resource(Pod), pod_manifest(
        probe_name, agent.node, [busybox("app", "exec sleep 3600")], terminationGracePeriodSeconds=0), ns)
    await wait_ready(client, ns, probe_name, agent)
    await asyncio.sleep(1.0)  # a few relists and syncs of the adopted pod

    after = status_of(await wait_ready(client, ns, name, agent), "app")
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == before["restartCount"] == 0
    assert after["state"]["running"]["startedAt"] == before["state"]["running"]["startedAt"]
    assert (host_dir / "starts").read_text() == "start\n", "the container was not started twice"

    async def orphan_removed() -> bool:
        return not cgroups.exists(pod_cgroup(agent, orphan_uid)) and not [p for p in orphan_pids if _alive(p)]

    await eventually(orphan_removed, "the restarted agent removes the containers of a pod deleted meanwhile", WAIT)
    for pod_name in (name, probe_name):
        await client.delete(client.resource(Pod), pod_name, ns)
    for pod_name in (name, probe_name):
        await wait_gone(client, ns, pod_name)
