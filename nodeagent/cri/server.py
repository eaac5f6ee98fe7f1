"""The native runtime behind the runtime service (``runtime.proto``), served on a unix socket.

:class:`NativeRuntimeServicer` and :class:`NativeImageServicer` answer the two services with the
node's :class:`~nodeagent.runtime.container.Runtime` (blocking calls, run in threads: they talk
to the spawner and the filesystem) and :class:`~nodeagent.runtime.images.ImageService`.
:class:`RuntimeServer` serves them with grpc.aio on a unix socket (mode 0600: whoever may talk
to it may run anything as root). The node agent starts one in its own process by default
(``DATA_DIR/runtime.sock``); ``nodeagent runtime-service`` runs one alone, and an agent given
``--runtime-endpoint unix:///path`` uses that one instead.

Interactive exec (``Exec``, a bidirectional stream): the first request names the container,
command, tty and whether stdin is used; then stdin chunks, ``close_stdin`` and ``resize``
flow in while output chunks flow out, then one exit message. The process is forked by the
spawner into the container's namespaces (:class:`nodeagent.agent.execproc.NativeExec`); the client side
is :meth:`nodeagent.cri.client.RuntimeClient.exec_stream`::

    session = client.exec_stream(container_id, ["sh"], stdin=chunks, tty=True)
    async for stream, data in session:     # stream is "stdout" or "stderr"
        ...
    session.exit_code                       # set once the iteration ends
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import grpc

from nodeagent.agent.execproc import STDERR, ExecBackend, ExecProcess, NativeExec
from nodeagent.cri import convert
from nodeagent.cri import runtime_pb2 as pb
from nodeagent.cri import runtime_pb2_grpc as pbg
from nodeagent.cri.errors import guarded
from nodeagent.runtime.container import ContainerStatus, Runtime
from nodeagent.runtime.images import Credentials, ImageNotFound, ImageService, PullPolicy

log = logging.getLogger(__name__)

RUNTIME_NAME = "kube-lite"
RUNTIME_VERSION = "0.1.0"
API_VERSION = "kubelite.runtime.v1"
SOCKET_NAME = "runtime.sock"
# exec output and image lists can be large; the default 4 MiB would refuse them.
MAX_MESSAGE = 64 * 1024 * 1024
# Output that comes after the exit code is still sent, unless a child the command left behind
# keeps the streams open: then the exec ends this long after the exit.
DRAIN_AFTER_EXIT = 1.0
CHANNEL_OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]


def container_matches(st: ContainerStatus, f: pb.ContainerFilter) -> bool:
    if f.id and st.id != f.id:
        return False
    if f.sandbox_id and st.sandbox_id != f.sandbox_id:
        return False
    if f.HasField("state") and convert.STATES[st.state] != f.state:
        return False
    return convert.labels_match(st.labels, dict(f.label_selector))


class NativeRuntimeServicer(pbg.RuntimeServiceServicer):
    """RuntimeService on the node's native runtime."""

    def __init__(self, runtime: Runtime, exec_backend: ExecBackend | None = None) -> None:
        self.runtime = runtime
        self.exec_backend: ExecBackend = exec_backend or NativeExec(runtime)

    async def Version(self, request: pb.VersionRequest, context: Any) -> pb.VersionResponse:
        return pb.VersionResponse(runtime_name=RUNTIME_NAME, runtime_version=RUNTIME_VERSION, api_version=API_VERSION)

    # -- sandboxes

    async def RunPodSandbox(self, request: pb.RunPodSandboxRequest, context: Any) -> pb.RunPodSandboxResponse:
        c = request.config
        sandbox = await asyncio.to_thread(
            self.runtime.create_sandbox, c.pod_uid, c.hostname, sandbox_id=request.sandbox_id or None,
            ips=tuple(c.ips), host_aliases=tuple((a.ip, tuple(a.hostnames)) for a in c.host_aliases),
            dns=(tuple(c.dns.servers), tuple(c.dns.searches), tuple(c.dns.options)),
            resources=convert.resources_from_pb(c.resources, c.HasField("resources")), labels=dict(c.labels),
            host_network=c.host_network,
        )
        return pb.RunPodSandboxResponse(sandbox=convert.sandbox_to_pb(sandbox))

    async def StopPodSandbox(self, request: pb.StopPodSandboxRequest, context: Any) -> pb.StopPodSandboxResponse:
        await asyncio.to_thread(self.runtime.stop_sandbox, request.sandbox_id, request.timeout)
        return pb.StopPodSandboxResponse()

    async def RemovePodSandbox(self, request: pb.RemovePodSandboxRequest, context: Any) -> pb.RemovePodSandboxResponse:
        await asyncio.to_thread(self.runtime.remove_sandbox, request.sandbox_id)
        return pb.RemovePodSandboxResponse()

    async def PodSandboxStatus(self, request: pb.PodSandboxStatusRequest, context: Any) -> pb.PodSandboxStatusResponse:
        sandbox = await asyncio.to_thread(self.runtime.get_sandbox, request.sandbox_id)
        return pb.PodSandboxStatusResponse(sandbox=convert.sandbox_to_pb(sandbox))

    async def ListPodSandbox(self, request: pb.ListPodSandboxRequest, context: Any) -> pb.ListPodSandboxResponse:
        f = request.filter
        selector = dict(f.label_selector)
        items = [convert.sandbox_to_pb(s) for s in await asyncio.to_thread(self.runtime.list_sandboxes)
                 if (not f.id or s.id == f.id) and convert.labels_match(s.labels, selector)]
        return pb.ListPodSandboxResponse(items=items)

    async def PodSandboxStats(self, request: pb.PodSandboxStatsRequest, context: Any) -> pb.StatsResponse:
        stats = await asyncio.to_thread(self.runtime.sandbox_stats, request.sandbox_id)
        return pb.StatsResponse(stats=convert.stats_to_pb(stats))

    # -- containers

    async def CreateContainer(self, request: pb.CreateContainerRequest, context: Any) -> pb.CreateContainerResponse:
        spec = convert.spec_from_pb(request.config)
        if not spec.layers:
            raise ValueError("config.layers: the image's layer directories are required")
        handle = await asyncio.to_thread(self.runtime.create_container, spec, request.container_id or None)
        return pb.CreateContainerResponse(container_id=handle.id)

    async def StartContainer(self, request: pb.StartContainerRequest, context: Any) -> pb.StartContainerResponse:
        return pb.StartContainerResponse(pid=await asyncio.to_thread(self.runtime.start, request.container_id))

    def _status(self, st: ContainerStatus) -> pb.ContainerStatus:
        return convert.status_to_pb(st, str(self.runtime.log_path(st.id)))

    async def StopContainer(self, request: pb.StopContainerRequest, context: Any) -> pb.ContainerStatusResponse:
        st = await asyncio.to_thread(self.runtime.stop, request.container_id, request.timeout)
        return pb.ContainerStatusResponse(status=self._status(st))

    async def RemoveContainer(self, request: pb.RemoveContainerRequest, context: Any) -> pb.RemoveContainerResponse:
        await asyncio.to_thread(self.runtime.remove, request.container_id)
        return pb.RemoveContainerResponse()

    async def ContainerStatus(self, request: pb.ContainerStatusRequest, context: Any) -> pb.ContainerStatusResponse:
        st = await asyncio.to_thread(self.runtime.status, request.container_id)
        return pb.ContainerStatusResponse(status=self._status(st))

    async def ListContainers(self, request: pb.ListContainersRequest, context: Any) -> pb.ListContainersResponse:
        f = request.filter
        if f.id:  # one container: no need to read them all
            try:
                found = [await asyncio.to_thread(self.runtime.status, f.id)]
            except KeyError:
                found = []
        else:
            found = await asyncio.to_thread(self.runtime.list, dict(f.label_selector))
        return pb.ListContainersResponse(items=[self._status(st) for st in found if container_matches(st, f)])

    async def UpdateContainerResources(
        self, request: pb.UpdateContainerResourcesRequest, context: Any
    ) -> pb.UpdateContainerResourcesResponse:
        resources = convert.resources_from_pb(request.resources)
        assert resources is not None
        await asyncio.to_thread(self.runtime.update_resources, request.container_id, resources)
        return pb.UpdateContainerResourcesResponse()

    async def ContainerStats(self, request: pb.ContainerStatsRequest, context: Any) -> pb.StatsResponse:
        stats = await asyncio.to_thread(self.runtime.stats, request.container_id)
        return pb.StatsResponse(stats=convert.stats_to_pb(stats))

    # -- exec

    async def ExecSync(self, request: pb.ExecSyncRequest, context: Any) -> pb.ExecSyncResponse:
        code, out, err = await asyncio.to_thread(
            self.runtime.exec_sync, request.container_id, list(request.cmd), request.timeout or None)
        return pb.ExecSyncResponse(exit_code=code, stdout=out, stderr=err)

    async def Exec(self, requests: AsyncIterator[pb.ExecRequest], context: Any) -> AsyncIterator[pb.ExecResponse]:
        s = await exec_start(requests)
        proc = await self.exec_backend.start(s.container_id, list(s.cmd), stdin=s.stdin, tty=s.tty)
        feeder = asyncio.create_task(feed_exec(proc, requests))
        try:
            yield pb.ExecResponse(started=pb.ExecStarted())
            async for channel, data in exec_output(proc):
                yield pb.ExecResponse(output=pb.ExecOutput(stream=pb.STDERR if channel == STDERR else pb.STDOUT, data=data))
            yield pb.ExecResponse(exit=pb.ExecExit(exit_code=await proc.wait()))
        finally:
            feeder.cancel()
            proc.kill()
            proc.close()


async def exec_output(proc: ExecProcess) -> AsyncIterator[tuple[int, bytes]]:
    """(channel, data) as the process writes, until its streams end; once it exited, output
    still pending is sent, but a child it left behind holding the streams open is not waited
    for longer than ``DRAIN_AFTER_EXIT``."""
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()

    async def pump(channel: int) -> None:
        while data := await proc.read(channel):
            queue.put_nowait((channel, data))
        queue.put_nowait((channel, b""))

    pumps = [asyncio.create_task(pump(ch)) for ch in proc.streams]
    exited = asyncio.create_task(proc.wait())
    open_streams = len(pumps)
    try:
        while open_streams:
            get = asyncio.ensure_future(queue.get())
            draining = exited.done()
            waits: set[asyncio.Future[Any]] = {get} if draining else {get, exited}
            done, _ = await asyncio.wait(waits, timeout=DRAIN_AFTER_EXIT if draining else None,
                                         return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                if draining:
                    return  # waited long enough for the rest
                continue
            channel, data = get.result()
            if data:
                yield channel, data
            else:
                open_streams -= 1
    finally:
        for task in [*pumps, exited]:
            task.cancel()
        await asyncio.gather(*pumps, exited, return_exceptions=True)


class ExecInput(Protocol):
    """An exec's input side (the native :class:`~nodeagent.agent.execproc.ExecProcess` and the fake's)."""

    async def write_stdin(self, data: bytes) -> None: ...
    def close_stdin(self) -> None: ...
    def resize(self, width: int, height: int) -> None: ...


async def exec_start(requests: AsyncIterator[pb.ExecRequest]) -> pb.ExecStart:
    """The exec stream's first message, which must say what to start."""
    first = await anext(aiter(requests), None)
    if first is None or first.WhichOneof("msg") != "start":
        raise ValueError("exec: the first message must be start")
    if not first.start.cmd:
        raise ValueError("exec: cmd: a command is required")
    return first.start


async def feed_exec(proc: ExecInput, requests: AsyncIterator[pb.ExecRequest]) -> None:
    """Pass an exec's stdin, end-of-input and resize requests to the process."""
    async for req in requests:
        kind = req.WhichOneof("msg")
        if kind == "stdin":
            await proc.write_stdin(req.stdin)
        elif kind == "close_stdin":
            proc.close_stdin()
        elif kind == "resize":
            with contextlib.suppress(OSError):
                proc.resize(req.resize.cols, req.resize.rows)


class NativeImageServicer(pbg.ImageServiceServicer):
    """ImageService on the node's image store."""

    def __init__(self, images: ImageService) -> None:
        self.images = images

    async def PullImage(self, request: pb.PullImageRequest, context: Any) -> pb.PullImageResponse:
        creds = Credentials(request.auth.username, request.auth.password) if request.HasField("auth") else None
        info = await self.images.ensure(request.image, PullPolicy(request.pull_policy or PullPolicy.ALWAYS),
                                        credentials=creds)
        return pb.PullImageResponse(image=convert.image_to_pb(info))

    async def ImageStatus(self, request: pb.ImageStatusRequest, context: Any) -> pb.ImageStatusResponse:
        info = self.images.status(request.image)
        return pb.ImageStatusResponse(image=convert.image_to_pb(info) if info is not None else None)

    async def ListImages(self, request: pb.ListImagesRequest, context: Any) -> pb.ListImagesResponse:
        return pb.ListImagesResponse(images=[convert.image_to_pb(i) for i in self.images.list()])

    async def RemoveImage(self, request: pb.RemoveImageRequest, context: Any) -> pb.RemoveImageResponse:
        try:
            self.images.remove(request.image)
        except ImageNotFound:
            pass  # removing what is not there is done (as in the CRI)
        return pb.RemoveImageResponse()

    async def ImageFsInfo(self, request: pb.ImageFsInfoRequest, context: Any) -> pb.ImageFsInfoResponse:
        used, inodes = await asyncio.to_thread(self.images.fs_usage)
        return pb.ImageFsInfoResponse(used_bytes=used, inodes_used=inodes)


def parse_endpoint(endpoint: str) -> Path:
    """``unix:///path`` (or a plain path) -> the socket path; other schemes are refused."""
    if endpoint.startswith("unix://"):
        endpoint = endpoint.removeprefix("unix://")
    elif "://" in endpoint:
        raise ValueError(f"runtime endpoint {endpoint!r}: only unix:///path sockets are supported")
    if not endpoint.startswith("/"):
        raise ValueError(f"runtime endpoint {endpoint!r}: the socket path must be absolute")
    return Path(endpoint)


class RuntimeServer:
    """A grpc.aio server for a RuntimeService and an ImageService servicer on a unix socket."""

    def __init__(self, socket_path: Path, runtime: pbg.RuntimeServiceServicer, images: pbg.ImageServiceServicer) -> None:
        self.socket_path = socket_path
        self.runtime = runtime
        self.images = images
        self.server = grpc.aio.server(options=CHANNEL_OPTIONS)
        pbg.add_RuntimeServiceServicer_to_server(guarded(runtime), self.server)
        pbg.add_ImageServiceServicer_to_server(guarded(images), self.server)

    async def start(self) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # left by a server that died (kill -9)
        if not self.server.add_insecure_port(f"unix://{self.socket_path}"):
            raise OSError(f"cannot listen on {self.socket_path}")
        # Connecting needs write permission: with the usual umask (022) nobody but root could
        # connect even before this; changing the umask instead would race other threads.
        os.chmod(self.socket_path, 0o600)
        await self.server.start()

    async def stop(self, grace: float | None = 1.0) -> None:
        await self.server.stop(grace)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


def runtime_dirs(data_dir: Path) -> tuple[Path, Path]:
    """(runtime dir, image store) of a node's data dir: one layout for the agent's in-process
    service, ``nodeagent runtime-service`` and :func:`nodeagent.agent.agent.purge`."""
    return data_dir / "runtime", data_dir / "images"


async def ensure_busybox(images: ImageService) -> None:
    """The offline ``busybox:latest`` (built from the host's busybox-static) if it is missing."""
    if images.status("busybox:latest") is None:
        info = await images.build_busybox()
        log.info("built busybox:latest (%s)", info.id)


def native_server(socket_path: Path, runtime: Runtime, images: ImageService) -> RuntimeServer:
    return RuntimeServer(socket_path, NativeRuntimeServicer(runtime), NativeImageServicer(images))
