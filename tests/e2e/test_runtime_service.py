"""A node agent on a runtime service run apart: ``nodeagent runtime-service`` serves the native
runtime on a unix socket, ``nodeagent --runtime-endpoint unix://...`` runs the node's pods
through it. Both are subprocesses, as users run them; afterwards both are stopped, whatever they
left is purged, and the test checks nothing is left.
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
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apimachinery.api.core_v1 import Namespace, Pod
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.errors import ApiError
from nodeagent.agent.agent import purge
from nodeagent.cri.client import RuntimeClient
from tests.fixtures.apiserver import ControlPlaneProcess
from tests.fixtures.wait import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the native runtime uses namespaces, mounts and cgroups"),
]

WAIT = 40.0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """``nodeagent ARGS`` in its own session, its output in ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "nodeagent.main", *args], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-40:]) if path.exists() else ""


@pytest.fixture
async def setup(apiserver: ControlPlaneProcess) -> AsyncIterator[tuple[ApiClient, RuntimeClient, str, str, Path]]:
    tmp = Path(tempfile.mkdtemp(prefix="kl-e2e-cri-"))
    node = f"e2e-cri-{uuid.uuid4().hex[:8]}"
    data = tmp / "node"
    sock = data / "runtime.sock"
    procs: list[subprocess.Popen[bytes]] = []
    ns = f"cri-{uuid.uuid4().hex[:6]}"
    try:
        procs.append(_spawn(["runtime-service", "--data-dir", str(data), "--node-name", node, "--busybox-image"],
                            tmp / "service.log"))
        await eventually(lambda: _exists(sock), "the runtime service listens", WAIT)
        procs.append(_spawn(["--kubeconfig", str(apiserver.kubeconfig), "--node-name", node, "--node-ip", "127.0.0.1",
                             "--data-dir", str(data), "--runtime", "native", "--runtime-endpoint", f"unix://{sock}",
                             "--network-mode", "none", "--relist-interval", "0.3", "--lease-interval", "2", "-v"],
                            tmp / "agent.log"))
        runtime = RuntimeClient.connect(f"unix://{sock}")
        async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as api:
            await api.create(api.resource(Namespace), {"metadata": {"name": ns}})
            try:
                yield api, runtime, node, ns, tmp
            finally:
                await runtime.close()
                try:
                    await api.delete(api.resource(Namespace), ns)
                except ApiError:
                    pass
    finally:
        for p in reversed(procs):
            _stop(p)
        left = purge(data, node) if data.exists() else []
        logs = {name: _tail(tmp / name) for name in ("service.log", "agent.log")}
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, (left, logs)


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)


async def test_agent_runs_pods_through_an_external_runtime_service(
    setup: tuple[ApiClient, RuntimeClient, str, str, Path],
) -> None:
    api, runtime, node, ns, tmp = setup
    pods = api.resource(Pod)
    manifest = {"metadata": {"name": "web"}, "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": "busybox:latest", "imagePullPolicy": "IfNotPresent",
                                   "command": ["sleep", "1000"]}]}}
    await api.create(pods, manifest, ns)

    async def running() -> dict[str, object] | None:
        pod = await api.get(pods, "web", ns)
        return pod if pod["status"].get("phase") == "Running" else None

    try:
        pod = await eventually(running, "the pod runs", WAIT)
    except AssertionError:
        raise AssertionError(f"pod not running; agent log:\n{_tail(tmp / 'agent.log')}\nservice log:\n{_tail(tmp / 'service.log')}") from None
    # The container is the runtime service's: the agent ran it through the socket.
    found = [c for c in await runtime.list_containers(labels={"io.kubernetes.pod.name": "web"}) if c.state == "running"]
    assert len(found) == 1
    assert pod["status"]["containerStatuses"][0]["containerID"] == f"kube-lite://{found[0].id}"  # type: ignore[index]
    code, out, _ = await runtime.exec_sync(found[0].id, ["hostname"], timeout=10)
    assert (code, out) == (0, b"web\n")

    await api.delete(pods, "web", ns)

    async def gone() -> bool:
        try:
            await api.get(pods, "web", ns)
            return False
        except ApiError as exc:
            return exc.code == 404

    await eventually(gone, "the agent removes the pod", WAIT)
    assert await runtime.list_containers() == [] and await runtime.list_pod_sandboxes() == []
