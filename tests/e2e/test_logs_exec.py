"""``kubectl logs`` and ``kubectl exec`` through the API server to a real native agent.

The real kubectl and kubectl-lite talk only to the API server; it proxies ``pods/log`` and
``pods/exec`` to the agent's HTTPS port, authenticating with its CA-signed client certificate
and pinning the agent's self-signed serving certificate to the fingerprint on the Node. The
agent listens on a free port (``--agent-port 0``) and publishes it, so parallel test runs
never collide. Also checked: the agent refuses callers without the API server's certificate,
and the API server refuses an "agent" whose certificate is not the pinned one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apimachinery.agentapi import SERVING_CERT_ANNOTATION
from apimachinery.api.core_v1 import Node, Pod
from apimachinery.client import ApiClient
from apimachinery.errors import ApiError
from controlplane.apiserver.certs import Pki, issue_certificate
from tests.e2e import test_node_agent as base
from tests.e2e.conftest import node_client, running_agent
from tests.e2e.test_node_agent import Agent, busybox, get_pod, pod_manifest, status_of
from tests.fixtures.apiserver import ControlPlaneProcess
from tests.fixtures.kubectl import Kubectl
from tests.fixtures.wait import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the native runtime uses namespaces, mounts and cgroups"),
]

WAIT = 40.0
TS = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ")
KUBECTL_LITE = shutil.which("kubectl-lite")


LOG_MAX_SIZE = 64 * 1024
LOG_MAX_FILES = 2


class LogsAgent(Agent):
    def command(self) -> list[str]:
        return [*super().command(), "--agent-port", "0", "--container-log-max-size", str(LOG_MAX_SIZE),
                "--container-log-max-files", str(LOG_MAX_FILES)]


@pytest.fixture(scope="module")
def agent(apiserver: ControlPlaneProcess) -> Iterator[Agent]:
    with running_agent(lambda tmp: LogsAgent(apiserver, tmp), "kl-e2e-logs-") as a:
        yield a


def serving_cert_published(node: dict[str, Any]) -> bool:
    return SERVING_CERT_ANNOTATION in (node["metadata"].get("annotations") or {})


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def client(apiserver: ControlPlaneProcess, agent: Agent) -> AsyncIterator[ApiClient]:
    what = "the agent registers its node with its serving certificate"
    async with node_client(apiserver, agent, serving_cert_published, what, WAIT) as c:
        yield c


ns = base.ns  # the base module's namespace fixture, made through this module's client


@pytest.fixture(scope="module")
def kctl(apiserver: ControlPlaneProcess, ns: str, kubectl_binary: str) -> Iterator[Kubectl]:
    cache = Path(tempfile.mkdtemp(prefix="kl-kubectl-cache-"))
    try:
        yield Kubectl(kubectl_binary, apiserver.kubeconfig, cache, ns)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def lite(kctl: Kubectl, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """kubectl-lite with the same kubeconfig and namespace as ``kctl``."""
    cmd = [KUBECTL_LITE] if KUBECTL_LITE else [sys.executable, "-c", "from kubectl_lite.main import main; main()"]
    return subprocess.run([*cmd, "--kubeconfig", str(kctl.kubeconfig), "-n", str(kctl.namespace), *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


async def start_pod(client: ApiClient, ns: str, agent: Agent, name: str, script: str, **spec: Any) -> dict[str, Any]:
    await client.create(client.resource(Pod), pod_manifest(name, agent.node, [busybox("main", script)], **spec), ns)

    async def running() -> dict[str, Any] | None:
        pod = await get_pod(client, ns, name)
        return pod if pod["status"].get("phase") == "Running" else None

    try:
        return await eventually(running, f"pod {name} running", WAIT)
    except AssertionError as e:
        raise AssertionError(f"{e}\nagent log:\n{agent.log_tail()}") from None


async def wait_output(kctl: Kubectl, name: str, want: str) -> str:
    async def has() -> str | None:
        res = await asyncio.to_thread(kctl.run, "logs", name)
        return res.stdout if res.ok and want in res.stdout else None

    return await eventually(has, f"{want!r} in the log of {name}", WAIT)


async def test_logs_tail_timestamps_and_since(client: ApiClient, agent: Agent, ns: str, kctl: Kubectl) -> None:
    await start_pod(client, ns, agent, "printer", "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; sleep 3600")
    out = await wait_output(kctl, "printer", "oops")
    assert out == "line 1\nline 2\nline 3\nline 4\nline 5\noops\n"
    assert kctl.ok("logs", "printer", "--tail=2") == "line 5\noops\n"
    assert kctl.ok("logs", "pod/printer", "-c", "main", "--tail=1", "--limit-bytes=3") == "oop"
    stamped = kctl.ok("logs", "printer", "--timestamps").encode().splitlines()
    assert len(stamped) == 6 and all(TS.match(line) for line in stamped), stamped
    written = dt.datetime.fromisoformat(stamped[0].split(b" ")[0].decode()[:26] + "+00:00")
    assert abs((dt.datetime.now(dt.UTC) - written).total_seconds()) < 3600  # a real time, not a placeholder
    assert kctl.ok("logs", "printer", "--since=1h") == out
    res = lite(kctl, "logs", "printer", "--tail", "3", "--timestamps")
    assert res.returncode == 0, res.stderr
    assert [line.split(" ", 1)[1] for line in res.stdout.splitlines()] == ["line 4", "line 5", "oops"]


async def test_logs_are_rotated_by_size(client: ApiClient, agent: Agent, ns: str, kctl: Kubectl) -> None:
    script = "i=0; while [ $i -lt 6000 ]; do echo \"line $i of the rotation test\"; i=$((i+1)); done; echo end; sleep 3600"
    await start_pod(client, ns, agent, "chatty", script)
    await wait_output(kctl, "chatty", "end\n")
    # Read again once everything is written: a read that raced a rotation may have lost the
    # file it was about to open (as with any reader of rotated logs, kubelet's too).
    out = kctl.ok("logs", "chatty").splitlines()
    assert out[-1] == "end"
    first = int(out[0].split()[1])
    assert first > 0  # the oldest lines went with the rotated files that were deleted
    assert out[:-1] == [f"line {i} of the rotation test" for i in range(first, 6000)]  # the newest, in order
    cid = status_of(await get_pod(client, ns, "chatty"), "main")["containerID"].removeprefix("kube-lite://")
    files = list((agent.data_dir / "runtime" / "containers" / cid / "logs").glob("current.log*"))
    sizes = sorted(f.stat().st_size for f in files)
    assert len(files) == LOG_MAX_FILES and sizes[-1] <= LOG_MAX_SIZE, sizes


async def test_previous_shows_the_run_before_a_restart(client: ApiClient, agent: Agent, ns: str, kctl: Kubectl) -> None:
    script = ("n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; echo run $n; "
              "[ $n -ge 2 ] && exec sleep 3600; exit 1")
    manifest = pod_manifest("restarter", agent.node, [busybox("main", script, volumeMounts=[{"name": "d", "mountPath": "/data"}])],
                            volumes=[{"name": "d", "emptyDir": {}}])
    await client.create(client.resource(Pod), manifest, ns)

    async def restarted() -> bool:
        st = status_of(await get_pod(client, ns, "restarter"), "main")
        return st.get("restartCount", 0) >= 1 and "running" in st.get("state", {})

    await eventually(restarted, "restarter restarted and running again", WAIT)
    await wait_output(kctl, "restarter", "run 2")
    assert kctl.ok("logs", "restarter") == "run 2\n"
    assert kctl.ok("logs", "restarter", "--previous") == "run 1\n"
    res = lite(kctl, "logs", "restarter", "-p")
    assert (res.returncode, res.stdout) == (0, "run 1\n"), res.stderr


async def test_previous_without_an_earlier_run_is_a_clear_error(client: ApiClient, agent: Agent, ns: str, kctl: Kubectl) -> None:
    await start_pod(client, ns, agent, "once", "echo hello; sleep 3600")
    res = kctl.fail("logs", "once", "--previous")
    assert 'previous terminated container "main" in pod "once" not found' in res.stderr


async def test_follow_receives_new_lines_and_ends_with_the_container(client: ApiClient, agent: Agent, ns: str,
                                                                     kctl: Kubectl) -> None:
    await start_pod(client, ns, agent, "ticker", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done")
    proc = kctl.popen("logs", "-f", "ticker")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")) if proc.stdout else None, daemon=True)
    reader.start()
    try:
        before = kctl.ok("logs", "ticker").splitlines(keepends=True)

        async def newer() -> bool:
            return len(lines) > len(before) + 3

        await eventually(newer, "kubectl logs -f prints lines written after it started", WAIT)
        assert lines[: len(before)] == before
        assert lines == [f"tick {i}\n" for i in range(len(lines))]  # in order, none lost or doubled
    finally:
        proc.kill()
        proc.wait()
    # A finished container ends the stream: -f returns once everything was printed.
    await client.create(client.resource(Pod), pod_manifest("brief", agent.node, [busybox("main", "echo a; sleep 1; echo b")],
                                                           restartPolicy="Never"), ns)

    async def started() -> bool:
        return (await get_pod(client, ns, "brief"))["status"].get("phase") in ("Running", "Succeeded")

    await eventually(started, "brief started", WAIT)
    assert kctl.ok("logs", "-f", "brief", timeout=WAIT) == "a\nb\n"


async def test_exec_stdout_exit_code_and_stdin(client: ApiClient, agent: Agent, ns: str, kctl: Kubectl) -> None:
    await start_pod(client, ns, agent, "shell", "sleep 3600")
    assert kctl.ok("exec", "shell", "--", "cat", "/etc/hostname") == "shell\n"
    res = kctl.run("exec", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (res.returncode, res.stdout, res.stderr.splitlines()[0]) == (3, "out\n", "err"), str(res)
    assert kctl.ok("exec", "-i", "shell", "--", "cat", stdin="hi\nthere\n") == "hi\nthere\n"
    assert kctl.ok("exec", "-i", "shell", "--", "wc", "-c", stdin="x" * 200_000).strip() == "200000"
    res = kctl.run("exec", "shell", "--", "/no/such/binary")
    assert res.returncode != 0 and "no/such/binary" in res.stderr, str(res)

    done = lite(kctl, "exec", "shell", "--", "cat", "/etc/hostname")
    assert (done.returncode, done.stdout) == (0, "shell\n"), done.stderr
    done = lite(kctl, "exec", "shell", "--", "sh", "-c", "exit 3")
    assert done.returncode == 3 and "command terminated with exit code 3" in done.stderr, done.stderr
    done = lite(kctl, "exec", "-i", "shell", "--", "cat", stdin="hi\n")
    assert (done.returncode, done.stdout) == (0, "hi\n"), done.stderr
    # An older client offering only v4.channel.k8s.io gets the same frames (without v5's close).
    frames: list[tuple[int, bytes]] = []
    params = [("command", "echo"), ("command", "v4"), ("stdout", "true"), ("stderr", "true")]
    async with client.websocket(client.resource(Pod).path(ns, "shell", "exec"), params=params,
                                protocols=("v4.channel.k8s.io",)) as ws:
        assert ws.protocol == "v4.channel.k8s.io"
        async for msg in ws:
            frames.append((msg.data[0], msg.data[1:]))
    assert frames[0] == (1, b"v4\n")
    assert frames[-1][0] == 3 and json.loads(frames[-1][1])["status"] == "Success"
    # -t: the command's stdin and stdout are a terminal, one of the container's own /dev/pts.
    done = lite(kctl, "exec", "-t", "shell", "--", "sh", "-c", "test -t 0 && test -t 1 && tty")
    assert done.returncode == 0 and re.fullmatch(r"/dev/pts/\d+", done.stdout.strip()), (done.stdout, done.stderr)


async def test_refusals_name_the_problem(client: ApiClient, agent: Agent, ns: str, kctl: Kubectl) -> None:
    pods = client.resource(Pod)
    two = pod_manifest("two", agent.node, [busybox("a", "sleep 3600"), busybox("b", "sleep 3600")])
    two["spec"]["initContainers"] = [busybox("setup", "true")]
    await client.create(pods, two, ns)
    with pytest.raises(ApiError) as e:
        await client.request("GET", pods.path(ns, "two", "log"))
    assert (e.value.code, e.value.message) == (
        400, "a container name must be specified for pod two, choose one of: [a b] or one of the init containers: [setup]")
    with pytest.raises(ApiError) as e:
        await client.request("GET", pods.path(ns, "two", "log"), params={"container": "nope"})
    assert (e.value.code, e.value.message) == (400, "container nope is not valid for pod two")
    with pytest.raises(ApiError) as e:
        await client.request("GET", pods.path(ns, "two", "log"), params={"container": "a", "tailLines": "-1"})
    assert e.value.code == 400 and "tailLines" in e.value.message
    unbound = pod_manifest("unbound", agent.node, [busybox("main", "true")])
    del unbound["spec"]["nodeName"]
    unbound["spec"]["nodeSelector"] = {"no-such-label": "x"}
    await client.create(pods, unbound, ns)
    assert not await client.request("GET", pods.path(ns, "unbound", "log"))  # no node ran it: an empty log
    res = kctl.fail("exec", "unbound", "--", "true")
    assert "pod unbound does not have a host assigned" in res.stderr
    res = kctl.fail("logs", "missing-pod")
    assert 'pods "missing-pod" not found' in res.stderr
    # The agent's own refusal (before any upgrade) reaches kubectl with its message.
    half = pod_manifest("half", agent.node, [busybox("up", "sleep 3600"), busybox("done", "true")], restartPolicy="Never")
    await client.create(pods, half, ns)

    async def one_exited() -> bool:
        pod = await get_pod(client, ns, "half")
        return pod["status"].get("phase") == "Running" and "terminated" in status_of(pod, "done").get("state", {})

    await eventually(one_exited, "container done exited, pod still running", WAIT)
    res = kctl.fail("exec", "half", "-c", "done", "--", "true")
    assert 'container "done" in pod "half" is not running' in res.stderr, str(res)


async def _node(client: ApiClient, agent: Agent) -> dict[str, Any]:
    return await client.get(client.resource(Node), agent.node)


def _agent_port(node: dict[str, Any]) -> int:
    return int(node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"])


async def test_agent_refuses_callers_without_the_apiserver_certificate(
    client: ApiClient, agent: Agent, ns: str, apiserver: ControlPlaneProcess, tmp_path: Path,
) -> None:
    await start_pod(client, ns, agent, "guarded", "echo secret; sleep 3600")
    port = _agent_port(await _node(client, agent))
    url = f"https://127.0.0.1:{port}/containerLogs/{ns}/guarded/main"
    anonymous = ssl.create_default_context()
    anonymous.check_hostname = False
    anonymous.verify_mode = ssl.CERT_NONE
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientError):
            async with s.get(url, ssl=anonymous) as resp:
                await resp.read()  # TLS 1.3: the refusal of the missing certificate arrives here
    # A certificate from the cluster CA that names someone else: authenticated, not allowed.
    pki_dir = apiserver.data_dir / "pki"
    pki = Pki(pki_dir / "ca.crt", pki_dir / "ca.key", pki_dir / "apiserver.crt", pki_dir / "apiserver.key")
    cert, key = issue_certificate(pki, "system:node:intruder", organizations=["system:nodes"], client=True)
    (tmp_path / "c.crt").write_bytes(cert)
    (tmp_path / "c.key").write_bytes(key)
    other = ssl.create_default_context()
    other.check_hostname = False
    other.verify_mode = ssl.CERT_NONE
    other.load_cert_chain(tmp_path / "c.crt", tmp_path / "c.key")
    async with aiohttp.ClientSession() as s, s.get(url, ssl=other) as resp:
        assert resp.status == 403
        assert "secret" not in await resp.text()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "impostor")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp / "i.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "i.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return tmp / "i.crt", tmp / "i.key"


async def test_apiserver_refuses_an_agent_whose_certificate_is_not_the_pinned_one(
    client: ApiClient, agent: Agent, ns: str, kctl: Kubectl, tmp_path: Path,
) -> None:
    await start_pod(client, ns, agent, "pinned", "echo real; sleep 3600")
    await wait_output(kctl, "pinned", "real")
    # An impostor listens on the node's address with a certificate of its own and would answer
    # anything; the Node is pointed at it (as if it had taken over the agent's port).
    hits: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="fake\n")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*_self_signed(tmp_path))
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx)
    await site.start()
    nodes = client.resource(Node)
    real_port = _agent_port(await _node(client, agent))
    try:
        await client.patch(nodes, agent.node, {"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}},
                           subresource="status")
        res = await asyncio.to_thread(kctl.run, "logs", "pinned")
        assert not res.ok and "certificate" in res.stderr, str(res)
        res = await asyncio.to_thread(kctl.run, "exec", "pinned", "--", "true")
        assert not res.ok, str(res)
        assert hits == []  # the handshake failed: not one request reached the impostor
    finally:
        await client.patch(nodes, agent.node, {"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": real_port}}}},
                           subresource="status")
        await runner.cleanup()
    # And with a wrong fingerprint published for the real agent, the real agent is refused too.
    node = await _node(client, agent)
    real_fp = node["metadata"]["annotations"][SERVING_CERT_ANNOTATION]
    try:
        await client.patch(nodes, agent.node, {"metadata": {"annotations": {SERVING_CERT_ANNOTATION: "00" * 32}}})
        res = await asyncio.to_thread(kctl.run, "logs", "pinned")
        assert not res.ok and "certificate" in res.stderr, str(res)
    finally:
        await client.patch(nodes, agent.node, {"metadata": {"annotations": {SERVING_CERT_ANNOTATION: real_fp}}})
    assert kctl.ok("logs", "pinned") == "real\n"  # the right pin again: served
