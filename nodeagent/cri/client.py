"""The node agent's side of the runtime service: :class:`RuntimeClient`.

One client holds one channel (a unix socket, opened once: a call costs a round trip on it, no
connection set-up) and speaks both services of ``runtime.proto``. Its methods take and return
the runtime's own types (:class:`ContainerSpec`, :class:`ContainerStatus`, :class:`Sandbox`,
:class:`ImageInfo`, :class:`Resources`, :class:`Stats`), and raise the runtime's own exceptions
(see :mod:`nodeagent.cri.errors`), so the pod sync reads the same whichever runtime serves it.

    client = RuntimeClient.connect("unix:///var/lib/kube-lite/n1/runtime.sock")
    sandbox = await client.run_pod_sandbox(uid, "web-0", labels={...})
    cid = await client.create_container(spec)
    await client.start_container(cid)

:meth:`RuntimeClient.local` gives the same client over servicers in this process, with no
socket and no serialisation (hollow nodes: a thousand of them cannot each run a server).

Interactive exec::

    session = client.exec_stream(cid, ["cat"], stdin=chunks(), tty=False)  # chunks: AsyncIterator[bytes]
    async for stream, data in session:     # ("stdout" | "stderr", bytes) as the process writes
        ...
    print(session.exit_code)               # set once the iteration ends

Besides (or instead of) an iterator given as ``stdin``, input can be pushed with
``await session.write(b"...")``, ``session.close_stdin()`` and ``session.resize(rows, cols)``;
``await session.aclose()`` ends the exec early (the process is killed). Errors before the process
runs (no such container, not running) are raised by the first iteration step.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc

from nodeagent.cri import convert
from nodeagent.cri import runtime_pb2 as pb
from nodeagent.cri import runtime_pb2_grpc as pbg
from nodeagent.cri.errors import RuntimeUnavailable, from_rpc_error
from nodeagent.cri.server import CHANNEL_OPTIONS, parse_endpoint
from nodeagent.runtime import sandbox as sb
from nodeagent.runtime.cgroups import Resources, Stats
from nodeagent.runtime.container import ContainerSpec, ContainerStatus
from nodeagent.runtime.images import Credentials, ImageInfo, PullPolicy

T = TypeVar("T")

Dns = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


class _LocalStub:
    """A servicer called directly, shaped like a generated stub (``stub.Method(request)``)."""

    def __init__(self, servicer: object) -> None:
        self._servicer = servicer

    def __getattr__(self, name: str) -> Callable[[Any], Any]:
        fn = getattr(self._servicer, name)
        if inspect.isasyncgenfunction(fn):
            method: Callable[[Any], Any] = lambda requests: fn(requests, None)  # noqa: E731
        else:
            method = lambda request: fn(request, None)  # noqa: E731
        setattr(self, name, method)  # found once: later calls skip __getattr__
        return method


async def _call(call: Awaitable[T]) -> T:
    try:
        return await call
    except grpc.aio.AioRpcError as err:
        raise from_rpc_error(err) from None


class ExecSession:
    """One interactive exec; iterate it for output, then read ``exit_code``."""

    def __init__(self, rt: Any, start: pb.ExecStart, stdin: AsyncIterator[bytes] | None) -> None:
        self.exit_code: int | None = None
        self._requests: asyncio.Queue[pb.ExecRequest | None] = asyncio.Queue()
        self._requests.put_nowait(pb.ExecRequest(start=start))
        self._pump = asyncio.create_task(self._pump_stdin(stdin)) if stdin is not None else None
        self._call = rt.Exec(self._request_iter())
        self._replies: AsyncIterator[pb.ExecResponse] = aiter(self._call)
        self._started = False
        self._closed = False

    async def _request_iter(self) -> AsyncIterator[pb.ExecRequest]:
        while True:
            req = await self._requests.get()
            if req is None:
                return
            yield req

    async def _pump_stdin(self, stdin: AsyncIterator[bytes]) -> None:
        async for chunk in stdin:
            await self.write(chunk)
        self.close_stdin()

    async def write(self, data: bytes) -> None:
        if data:
            self._requests.put_nowait(pb.ExecRequest(stdin=data))

    def close_stdin(self) -> None:
        self._requests.put_nowait(pb.ExecRequest(close_stdin=True))

    def resize(self, rows: int, cols: int) -> None:
        self._requests.put_nowait(pb.ExecRequest(resize=pb.TerminalSize(rows=rows, cols=cols)))

    async def _next(self) -> pb.ExecResponse | None:
        try:
            return await anext(self._replies)
        except StopAsyncIteration:
            return None
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None

    async def wait_started(self) -> None:
        """Return once the process runs; raise what stopped it from starting (no such container,
        not running, no such command...)."""
        if self._started:
            return
        try:
            first = await self._next()
        except BaseException:
            await self.aclose()
            raise
        if first is None or first.WhichOneof("msg") != "started":
            await self.aclose()
            raise RuntimeUnavailable("runtime service: exec ended before it started")
        self._started = True

    async def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]:
        try:
            await self.wait_started()
            while (reply := await self._next()) is not None:
                kind = reply.WhichOneof("msg")
                if kind == "output":
                    yield ("stderr" if reply.output.stream == pb.STDERR else "stdout"), reply.output.data
                elif kind == "exit":
                    self.exit_code = reply.exit.exit_code
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """End the exec (a process still running is killed)."""
        if self._closed:
            return
        self._closed = True
        self._requests.put_nowait(None)
        if self._pump is not None:
            self._pump.cancel()
        if self.exit_code is None:
            cancel = getattr(self._call, "cancel", None)
            if cancel is not None:
                cancel()  # gRPC: the server sees the cancellation and kills the process
            else:
                with contextlib.suppress(Exception):
                    await self._call.aclose()  # in-process: the servicer's finally kills it


class RuntimeClient:
    """Async client of the runtime service (both RuntimeService and ImageService)."""

    def __init__(self, runtime_stub: Any, image_stub: Any, channel: grpc.aio.Channel | None = None) -> None:
        self._rt = runtime_stub
        self._img = image_stub
        self.channel = channel

    @classmethod
    def connect(cls, endpoint: str) -> RuntimeClient:
        """A client of the service at ``unix:///path`` (the connection is made on first use)."""
        path = parse_endpoint(endpoint)
        channel = grpc.aio.insecure_channel(f"unix://{path}", options=CHANNEL_OPTIONS)
        return cls(pbg.RuntimeServiceStub(channel), pbg.ImageServiceStub(channel), channel)

    @classmethod
    def local(cls, runtime: pbg.RuntimeServiceServicer, images: pbg.ImageServiceServicer) -> RuntimeClient:
        """A client calling these servicers in this process (no socket)."""
        return cls(_LocalStub(runtime), _LocalStub(images))

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the service answers (a freshly started server, an external one)."""
        if self.channel is not None:
            await asyncio.wait_for(self.channel.channel_ready(), timeout)
        await self.version()

    # ------------------------------------------------------------------ version

    async def version(self) -> tuple[str, str, str]:
        """(runtime name, runtime version, API version)."""
        v = await _call(self._rt.Version(pb.VersionRequest()))
        return v.runtime_name, v.runtime_version, v.api_version

    # ------------------------------------------------------------------ sandboxes

    async def run_pod_sandbox(
        self, pod_uid: str, hostname: str, *, sandbox_id: str | None = None, ips: Sequence[str] = (),
        host_aliases: Sequence[tuple[str, Sequence[str]]] = (), dns: Dns = ((), (), ()),
        resources: Resources | None = None, labels: dict[str, str] | None = None, host_network: bool = False,
    ) -> sb.Sandbox:
        config = pb.PodSandboxConfig(
            pod_uid=pod_uid, hostname=hostname, ips=ips,
            host_aliases=[pb.HostAlias(ip=ip, hostnames=names) for ip, names in host_aliases],
            dns=pb.DnsConfig(servers=dns[0], searches=dns[1], options=dns[2]), resources=convert.resources_to_pb(resources),
            labels=labels or {}, host_network=host_network,
        )
        reply = await _call(self._rt.RunPodSandbox(pb.RunPodSandboxRequest(config=config, sandbox_id=sandbox_id or "")))
        return convert.sandbox_from_pb(reply.sandbox)

    async def stop_pod_sandbox(self, sandbox_id: str, timeout: float = 30.0) -> None:
        await _call(self._rt.StopPodSandbox(pb.StopPodSandboxRequest(sandbox_id=sandbox_id, timeout=timeout)))

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await _call(self._rt.RemovePodSandbox(pb.RemovePodSandboxRequest(sandbox_id=sandbox_id)))

    async def pod_sandbox_status(self, sandbox_id: str) -> sb.Sandbox:
        reply = await _call(self._rt.PodSandboxStatus(pb.PodSandboxStatusRequest(sandbox_id=sandbox_id)))
        return convert.sandbox_from_pb(reply.sandbox)

    async def list_pod_sandboxes(self, *, sandbox_id: str = "", labels: dict[str, str] | None = None) -> list[sb.Sandbox]:
        f = pb.PodSandboxFilter(id=sandbox_id, label_selector=labels or {})
        reply = await _call(self._rt.ListPodSandbox(pb.ListPodSandboxRequest(filter=f)))
        return [convert.sandbox_from_pb(s) for s in reply.items]

    async def pod_sandbox_stats(self, sandbox_id: str) -> Stats:
        reply = await _call(self._rt.PodSandboxStats(pb.PodSandboxStatsRequest(sandbox_id=sandbox_id)))
        return convert.stats_from_pb(reply.stats)

    # ------------------------------------------------------------------ containers

    async def create_container(self, spec: ContainerSpec, container_id: str | None = None) -> str:
        req = pb.CreateContainerRequest(config=convert.spec_to_pb(spec), container_id=container_id or "")
        return str((await _call(self._rt.CreateContainer(req))).container_id)

    async def start_container(self, container_id: str) -> int:
        return int((await _call(self._rt.StartContainer(pb.StartContainerRequest(container_id=container_id)))).pid)

    async def stop_container(self, container_id: str, timeout: float = 30.0) -> ContainerStatus:
        req = pb.StopContainerRequest(container_id=container_id, timeout=timeout)
        return convert.status_from_pb((await _call(self._rt.StopContainer(req))).status)

    async def remove_container(self, container_id: str) -> None:
        await _call(self._rt.RemoveContainer(pb.RemoveContainerRequest(container_id=container_id)))

    async def _status_msg(self, container_id: str) -> pb.ContainerStatus:
        reply = await _call(self._rt.ContainerStatus(pb.ContainerStatusRequest(container_id=container_id)))
        return reply.status

    async def container_status(self, container_id: str) -> ContainerStatus:
        return convert.status_from_pb(await self._status_msg(container_id))

    async def container_log_path(self, container_id: str) -> str:
        """Where the runtime writes the container's output (a path on the runtime's node)."""
        return str((await self._status_msg(container_id)).log_path)

    async def list_containers(
        self, *, container_id: str = "", sandbox_id: str = "", state: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> list[ContainerStatus]:
        f = pb.ContainerFilter(id=container_id, sandbox_id=sandbox_id, label_selector=labels or {})
        if state is not None:
            f.state = convert.STATES[state]
        reply = await _call(self._rt.ListContainers(pb.ListContainersRequest(filter=f)))
        return [convert.status_from_pb(s) for s in reply.items]

    async def update_container_resources(self, container_id: str, resources: Resources) -> None:
        req = pb.UpdateContainerResourcesRequest(container_id=container_id, resources=convert.resources_to_pb(resources))
        await _call(self._rt.UpdateContainerResources(req))

    async def container_stats(self, container_id: str) -> Stats:
        reply = await _call(self._rt.ContainerStats(pb.ContainerStatsRequest(container_id=container_id)))
        return convert.stats_from_pb(reply.stats)

    # ------------------------------------------------------------------ exec

    async def exec_sync(self, container_id: str, cmd: Sequence[str], timeout: float | None = None) -> tuple[int, bytes, bytes]:
        """(exit code, stdout, stderr). TimeoutError once ``timeout`` passes (the process is
        killed); ContainerStateError when the container does not run."""
        req = pb.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout or 0.0)
        reply = await _call(self._rt.ExecSync(req))
        return reply.exit_code, reply.stdout, reply.stderr

    def exec_stream(
        self, container_id: str, cmd: Sequence[str], stdin: AsyncIterator[bytes] | None = None, tty: bool = False,
        *, open_stdin: bool | None = None,
    ) -> ExecSession:
        """An interactive exec (see the module docstring). The process gets a stdin when
        ``stdin`` is given or ``open_stdin`` (then fed with :meth:`ExecSession.write`)."""
        want_stdin = stdin is not None if open_stdin is None else open_stdin
        start = pb.ExecStart(container_id=container_id, cmd=cmd, tty=tty, stdin=want_stdin)
        return ExecSession(self._rt, start, stdin)

    # ------------------------------------------------------------------ images

    async def pull_image(
        self, image: str, policy: PullPolicy | str = PullPolicy.ALWAYS, credentials: Credentials | None = None
    ) -> ImageInfo:
        """The image, present as the pull policy says (ImageError with the kubelet's reason if not)."""
        req = pb.PullImageRequest(image=image, pull_policy=str(policy))
        if credentials is not None:
            req.auth.CopyFrom(pb.AuthConfig(username=credentials.username, password=credentials.password))
        return convert.image_from_pb((await _call(self._img.PullImage(req))).image)

    async def image_status(self, image: str) -> ImageInfo | None:
        reply = await _call(self._img.ImageStatus(pb.ImageStatusRequest(image=image)))
        return convert.image_from_pb(reply.image) if reply.HasField("image") else None

    async def list_images(self) -> list[ImageInfo]:
        return [convert.image_from_pb(i) for i in (await _call(self._img.ListImages(pb.ListImagesRequest()))).images]

    async def remove_image(self, image: str) -> None:
        await _call(self._img.RemoveImage(pb.RemoveImageRequest(image=image)))

    async def image_fs_info(self) -> tuple[int, int]:
        """(bytes, inodes) the image store uses."""
        reply = await _call(self._img.ImageFsInfo(pb.ImageFsInfoRequest()))
        return reply.used_bytes, reply.inodes_used

