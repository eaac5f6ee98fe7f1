"""The runtime service with the fake runtime, served on a real unix socket (no root needed),
and the same client calling the fake in-process (as hollow nodes do)."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nodeagent.cri.client import RuntimeClient
from nodeagent.cri.fake import FakeRuntime
from nodeagent.cri.server import RuntimeServer
from nodeagent.runtime.cgroups import Resources
from nodeagent.runtime.container import ContainerNotFound, ContainerSpec, ContainerStateError
from nodeagent.runtime.images import ImageNeverPull, InvalidImageName


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[FakeRuntime, RuntimeClient, Path]]:
    fake = FakeRuntime()
    sock = tmp_path / "runtime.sock"
    server = RuntimeServer(sock, fake.runtime, fake.images)
    await server.start()
    client = RuntimeClient.connect(f"unix://{sock}")
    try:
        await client.wait_ready()
        yield fake, client, sock
    finally:
        await client.close()
        await server.stop()


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def exercise(client: RuntimeClient) -> None:
    """The same sequence over the socket and in-process; every answer comes from the fake."""
    name, version, api = await client.version()
    assert (name, api) == ("fake", "kubelite.runtime.v1") and version.startswith("fake://")

    image = await client.pull_image("busybox:latest", "IfNotPresent")
    assert image.id.startswith("sha256:") and image.repo_tags == ["busybox:latest"]
    assert (await client.image_status("busybox:latest")) == image
    assert await client.image_status("nginx:1") is None
    with pytest.raises(ImageNeverPull) as never:
        await client.pull_image("nginx:1", "Never")
    assert never.value.reason == "ErrImageNeverPull" and "nginx:1" in str(never.value)
    with pytest.raises(InvalidImageName):
        await client.pull_image("Bad:Name", "IfNotPresent")

    sandbox = await client.run_pod_sandbox("uid-1", "web-0", labels={"app": "web"}, ips=["10.1.0.5"],
                                           dns=(("10.96.0.10",), ("default.svc.cluster.local",), ("ndots:5",)))
    assert sandbox.pod_uid == "uid-1" and sandbox.hostname == "web-0" and sandbox.labels == {"app": "web"}
    other = await client.run_pod_sandbox("uid-2", "db-0", labels={"app": "db"})
    assert (await client.pod_sandbox_status(sandbox.id)).id == sandbox.id
    assert [s.id for s in await client.list_pod_sandboxes(labels={"app": "db"})] == [other.id]
    assert {s.id for s in await client.list_pod_sandboxes()} == {sandbox.id, other.id}

    spec = ContainerSpec(name="app", layers=[], args=["sleep", "1000"], sandbox_id=sandbox.id,
                         labels={"container": "app"}, resources=Resources(memory_limit_bytes=64 << 20))
    cid = await client.create_container(spec)
    st = await client.container_status(cid)
    assert (st.state, st.name, st.sandbox_id, st.labels) == ("created", "app", sandbox.id, {"container": "app"})
    await client.start_container(cid)
    with pytest.raises(ContainerStateError):
        await client.start_container(cid)
    st = await client.container_status(cid)
    assert st.state == "running" and st.started_at
    assert await client.container_log_path(cid)
    side = await client.create_container(ContainerSpec(name="side", layers=[], args=["x"], sandbox_id=other.id))

    running = await client.list_containers(state="running")
    assert [c.id for c in running] == [cid]
    assert [c.id for c in await client.list_containers(sandbox_id=other.id)] == [side]
    assert [c.id for c in await client.list_containers(labels={"container": "app"})] == [cid]
    assert [c.id for c in await client.list_containers(container_id=cid)] == [cid]
    assert await client.list_containers(container_id="nope") == []

    assert await client.exec_sync(cid, ["echo", "hi", "there"]) == (0, b"hi there\n", b"")
    assert (await client.exec_sync(cid, ["false"]))[0] == 1
    session = client.exec_stream(cid, ["cat"], stdin=_chunks(b"one ", b"two"))
    got = [(stream, data) async for stream, data in session]
    assert b"".join(d for s, d in got if s == "stdout") == b"one two" and session.exit_code == 0
    session = client.exec_stream(cid, ["nosuch"])
    got = [(stream, data) async for stream, data in session]
    assert got == [("stderr", b"nosuch: not found\n")] and session.exit_code == 127
    with pytest.raises(ContainerStateError):
        await client.exec_sync(side, ["true"])  # created, never started
    with pytest.raises(ContainerStateError):
        async for _ in client.exec_stream(side, ["true"]):
            pass

    await client.update_container_resources(cid, Resources(cpu_limit_millis=500))
    assert (await client.container_stats(cid)).cpu_usage_ns == 0
    assert (await client.pod_sandbox_stats(sandbox.id)).memory_usage_bytes == 0

    stopped = await client.stop_container(cid, 5)
    assert stopped.state == "exited" and stopped.exit_code == 0 and stopped.finished_at
    with pytest.raises(ContainerNotFound) as missing:
        await client.container_status("nope")
    assert "nope" in str(missing.value)

    await client.remove_container(cid)
    assert [c.id for c in await client.list_containers()] == [side]
    await client.stop_pod_sandbox(other.id, 0)
    await client.remove_pod_sandbox(other.id)
    assert await client.list_containers() == []
    await client.remove_pod_sandbox(sandbox.id)
    assert await client.list_pod_sandboxes() == []
    with pytest.raises(KeyError):
        await client.pod_sandbox_status(sandbox.id)

    assert [i.id for i in await client.list_images()] == [image.id]
    await client.remove_image("busybox:latest")
    await client.remove_image("busybox:latest")  # removing what is gone is no error
    assert await client.list_images() == []
    assert await client.image_fs_info() == (0, 0)


async def test_fake_over_a_unix_socket(served: tuple[FakeRuntime, RuntimeClient, Path]) -> None:
    fake, client, sock = served
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    await exercise(client)
    assert len(fake) == 0


async def test_fake_in_process() -> None:
    fake = FakeRuntime()
    await exercise(fake.client())
    assert len(fake) == 0


async def test_agent_exec_backend_over_the_service(served: tuple[FakeRuntime, RuntimeClient, Path]) -> None:
    """The agent's exec endpoint can run on the service: CriExec is its ExecBackend."""
    from nodeagent.agent.execproc import STDERR, STDOUT
    from nodeagent.cri.agentexec import CriExec

    _, client, _ = served
    s = await client.run_pod_sandbox("uid-x", "x")
    cid = await client.create_container(ContainerSpec(name="c", layers=[], args=["x"], sandbox_id=s.id))
    await client.start_container(cid)
    backend = CriExec(client)
    proc = await backend.start(cid, ["cat"], stdin=True, tty=False)
    assert set(proc.streams) == {STDOUT, STDERR}
    await proc.write_stdin(b"ping")
    proc.close_stdin()
    assert await proc.read(STDOUT) == b"ping"
    assert await proc.read(STDOUT) == b"" and await proc.read(STDERR) == b""
    assert await proc.wait() == 0
    proc.close()
    proc = await backend.start(cid, ["nosuch"], stdin=False, tty=True)
    assert set(proc.streams) == {STDOUT}
    assert await proc.read(STDOUT) == b"nosuch: not found\n"
    assert await proc.wait() == 127
    await client.stop_container(cid, 0)
    with pytest.raises(ContainerStateError):
        await backend.start(cid, ["true"], stdin=False, tty=False)


async def test_pod_uids_are_tracked() -> None:
    fake = FakeRuntime()
    client = fake.client()
    s = await client.run_pod_sandbox("uid-9", "p", sandbox_id="fixed")
    assert s.id == "fixed" and fake.is_running("uid-9")
    assert (await client.run_pod_sandbox("uid-9", "p", sandbox_id="fixed")).id == "fixed"  # idempotent
    await client.remove_pod_sandbox("fixed")
    assert not fake.is_running("uid-9")


async def test_unreachable_service_is_an_os_error(tmp_path: Path) -> None:
    client = RuntimeClient.connect(f"unix://{tmp_path}/absent.sock")
    try:
        with pytest.raises(OSError):
            await client.version()
    finally:
        await client.close()


def test_endpoints() -> None:
    from nodeagent.cri.server import parse_endpoint

    assert parse_endpoint("unix:///run/x.sock") == Path("/run/x.sock")
    assert parse_endpoint("/run/x.sock") == Path("/run/x.sock")
    for bad in ("tcp://127.0.0.1:1", "unix://relative.sock"):
        with pytest.raises(ValueError):
            parse_endpoint(bad)
