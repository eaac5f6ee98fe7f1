"""The runtime service with the native runtime, over a real unix socket: real containers from the
offline busybox image, exec (collected and streaming, with and without a terminal), images.

Needs root (skipped otherwise). Its own node name, data dir and cgroup subtree; everything it
made (containers, sandboxes, cgroups, mounts, the spawner) is removed even when it fails, then
checked gone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nodeagent.agent.execproc import STDERR, STDOUT
from nodeagent.cri.agentexec import CriExec
from nodeagent.cri.client import RuntimeClient
from nodeagent.cri.server import native_server
from nodeagent.runtime import rootfs
from nodeagent.runtime.cgroups import Resources
from nodeagent.runtime.container import (
    ContainerNotFound,
    ContainerStateError,
    Runtime,
    spec_from_image,
    stop_spawner_process,
)
from nodeagent.runtime.images import ImageNeverPull, ImageService
from nodeagent.runtime.spawner import SpawnerError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts, cgroups)")


@pytest.fixture
async def native() -> AsyncIterator[tuple[RuntimeClient, Runtime, Path]]:
    data = Path(tempfile.mkdtemp(prefix="kl-cri-"))
    runtime = await asyncio.to_thread(Runtime, data / "runtime", f"cri-{uuid.uuid4().hex[:10]}")
    images = ImageService(data / "images")
    sock = data / "runtime.sock"
    server = native_server(sock, runtime, images)
    await server.start()
    client = RuntimeClient.connect(f"unix://{sock}")
    try:
        await images.build_busybox()
        await client.wait_ready()
        yield client, runtime, sock
    finally:
        await client.close()
        await server.stop()
        await images.close()
        for c in runtime.list():
            runtime.remove(c.id)
        for s in runtime.list_sandboxes():
            runtime.remove_sandbox(s.id)
        left = [f"mount {m}" for m in rootfs.mounts_under(data)]
        runtime.close()
        stop_spawner_process(runtime.spawner_process, runtime.client)
        runtime.cgroups.remove(runtime.node_cgroup)
        node_left = runtime.cgroups.exists(runtime.node_cgroup)
        shutil.rmtree(data, ignore_errors=True)
        assert not left, left
        assert not node_left


async def _feed(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        await asyncio.sleep(0.01)  # separate chunks, as a terminal would send them
        yield p


async def _collect(session: AsyncIterator[tuple[str, bytes]]) -> dict[str, bytes]:
    out: dict[str, bytes] = {"stdout": b"", "stderr": b""}
    async for stream, data in session:
        out[stream] += data
    return out


async def test_native_runtime_service(native: tuple[RuntimeClient, Runtime, Path]) -> None:
    client, runtime, sock = native
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert (await client.version())[0] == "kube-lite"

    # images
    info = await client.pull_image("busybox:latest", "IfNotPresent")  # present: built offline
    assert info.layer_dirs and all(p.is_dir() for p in info.layer_dirs)
    assert (await client.image_status(info.id)) == info
    assert [i.id for i in await client.list_images()] == [info.id]
    with pytest.raises(ImageNeverPull) as never:
        await client.pull_image("registry.invalid/none:1", "Never")
    assert never.value.reason == "ErrImageNeverPull"

    # a sandbox and a container in it
    sandbox = await client.run_pod_sandbox("uid-a", "web-0", labels={"pod": "web-0"}, ips=["10.9.0.2"])
    other = await client.run_pod_sandbox("uid-b", "db-0", labels={"pod": "db-0"})
    assert (await client.pod_sandbox_status(sandbox.id)).hostname == "web-0"
    assert await asyncio.to_thread(os.path.exists, sandbox.ns_path("net"))
    assert [s.id for s in await client.list_pod_sandboxes(labels={"pod": "db-0"})] == [other.id]

    spec = spec_from_image("app", info, command=["sleep", "1000"], sandbox_id=sandbox.id, labels={"c": "app"},  # type: ignore[arg-type]
                           resources=Resources(memory_limit_bytes=64 << 20))
    cid = await client.create_container(spec)
    assert (await client.container_status(cid)).state == "created"
    pid = await client.start_container(cid)
    st = await client.container_status(cid)
    assert st.state == "running" and st.pid == pid and st.labels == {"c": "app"}
    assert (await client.container_log_path(cid)).startswith(str(runtime.data_dir))
    with pytest.raises(ContainerStateError):
        await client.start_container(cid)
    idle = await client.create_container(
        spec_from_image("idle", info, command=["true"], sandbox_id=other.id))  # type: ignore[arg-type]

    # list, filtered
    assert [c.id for c in await client.list_containers(state="running")] == [cid]
    assert [c.id for c in await client.list_containers(sandbox_id=other.id)] == [idle]
    assert [c.id for c in await client.list_containers(labels={"c": "app"})] == [cid]
    assert [c.id for c in await client.list_containers(container_id=idle)] == [idle]

    # exec, collected: it runs in the pod (its hostname) as the container's process would
    code, out, err = await client.exec_sync(cid, ["sh", "-c", "hostname; echo oops >&2; exit 3"], timeout=10)
    assert (code, out, err) == (3, b"web-0\n", b"oops\n")
    with pytest.raises(TimeoutError):
        await client.exec_sync(cid, ["sleep", "30"], timeout=0.5)
    with pytest.raises(ContainerStateError):
        await client.exec_sync(idle, ["true"])

    # exec, streaming: stdin goes in chunk by chunk, comes back out of cat
    session = client.exec_stream(cid, ["cat"], stdin=_feed(b"hello ", b"from ", b"stdin\n"))
    got = await _collect(session)
    assert got == {"stdout": b"hello from stdin\n", "stderr": b""} and session.exit_code == 0
    session = client.exec_stream(cid, ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert await _collect(session) == {"stdout": b"out\n", "stderr": b"err\n"} and session.exit_code == 7
    # with a terminal: one output stream, the shell sees a tty, ^D ends its input
    session = client.exec_stream(cid, ["sh", "-c", "test -t 0 && echo tty; read line; echo got $line"], tty=True,
                                 open_stdin=True)
    await session.write(b"abc\n")
    got = await _collect(session)
    assert b"tty" in got["stdout"] and b"got abc" in got["stdout"] and got["stderr"] == b""
    assert session.exit_code == 0
    with pytest.raises(ContainerStateError):
        await _collect(client.exec_stream(idle, ["true"]))
    with pytest.raises(SpawnerError):  # no such command: refused before anything runs
        await _collect(client.exec_stream(cid, ["/no/such/command"]))
    # the agent's exec endpoint, on the service
    proc = await CriExec(client).start(cid, ["sh", "-c", "cat; echo done >&2"], stdin=True, tty=False)
    await proc.write_stdin(b"via the agent")
    proc.close_stdin()
    assert await proc.read(STDOUT) == b"via the agent"
    assert await proc.read(STDERR) == b"done\n"
    assert await proc.wait() == 0
    proc.close()

    # stats and resources
    stats = await client.container_stats(cid)
    assert stats.memory_usage_bytes > 0
    assert (await client.pod_sandbox_stats(sandbox.id)).memory_usage_bytes >= stats.memory_usage_bytes
    await client.update_container_resources(cid, Resources(memory_limit_bytes=128 << 20))

    # stop, remove
    # sleep is the pid namespace's init, which ignores SIGTERM: killed once the grace period ends
    stopped = await client.stop_container(cid, 0.5)
    assert stopped.state == "exited" and stopped.signal == 9
    await client.remove_container(cid)
    with pytest.raises(ContainerNotFound):
        await client.container_status(cid)
    await client.stop_pod_sandbox(other.id, 0)
    await client.remove_pod_sandbox(other.id)  # removes its container too
    await client.remove_pod_sandbox(sandbox.id)
    assert await client.list_containers() == [] and await client.list_pod_sandboxes() == []

    await client.remove_image("busybox:latest")
    assert await client.image_status("busybox:latest") is None
