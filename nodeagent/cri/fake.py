"""A fake runtime behind the runtime service: everything in memory, no root, no processes.

:class:`FakeRuntime` holds one :class:`FakeRuntimeServicer` and one :class:`FakeImageServicer`,
the same service interface the native runtime serves. Hollow nodes call it in-process through
:meth:`FakeRuntime.client` (a :class:`~nodeagent.cri.client.RuntimeClient` without a socket);
:class:`~nodeagent.cri.server.RuntimeServer` can serve it on a unix socket like the native one.

What it pretends: sandboxes and containers are records (a started container runs until it is
stopped, which ends it with exit code 0); images "pull" instantly with a digest made from their
name; stats are zero. Exec knows a few commands, enough to exercise the exec paths: ``cat``
(echoes stdin), ``echo ARGS``, ``true``, ``false``; anything else exits 127.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from nodeagent.cri import convert
from nodeagent.cri import runtime_pb2 as pb
from nodeagent.cri import runtime_pb2_grpc as pbg
from nodeagent.cri.client import RuntimeClient
from nodeagent.cri.server import API_VERSION, exec_start, feed_exec
from nodeagent.runtime.container import ContainerNotFound, ContainerStateError
from nodeagent.runtime.images import ImageNeverPull, InvalidImageName, PullPolicy

VERSION = "fake://0.1.0"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _fake_exec(cmd: list[str], stdin: bytes) -> tuple[int, bytes, bytes]:
    name = cmd[0].rsplit("/", 1)[-1]
    if name == "cat":
        return 0, stdin, b""
    if name == "echo":
        return 0, (" ".join(cmd[1:]) + "\n").encode(), b""
    if name in ("true", "false"):
        return int(name == "false"), b"", b""
    return 127, b"", f"{cmd[0]}: not found\n".encode()


class _FakeExec:
    """The input side of a fake interactive exec: stdin is collected until it is closed."""

    def __init__(self) -> None:
        self.stdin = bytearray()
        self.closed = asyncio.Event()

    async def write_stdin(self, data: bytes) -> None:
        self.stdin += data

    def close_stdin(self) -> None:
        self.closed.set()

    def resize(self, width: int, height: int) -> None:
        pass


class FakeRuntimeServicer(pbg.RuntimeServiceServicer):
    def __init__(self) -> None:
        self.sandboxes: dict[str, pb.PodSandbox] = {}
        self.containers: dict[str, pb.ContainerStatus] = {}
        self.configs: dict[str, pb.ContainerConfig] = {}
        self.by_sandbox: dict[str, set[str]] = {}  # sandbox id -> its containers' ids
        self.by_pod: dict[str, set[str]] = {}  # pod uid -> its sandboxes' ids

    def _container(self, cid: str) -> pb.ContainerStatus:
        st = self.containers.get(cid)
        if st is None:
            raise ContainerNotFound(f"container {cid} not found")
        return st

    def _sandbox(self, sid: str) -> pb.PodSandbox:
        s = self.sandboxes.get(sid)
        if s is None:
            raise KeyError(f"sandbox {sid} not found")
        return s

    async def Version(self, request: pb.VersionRequest, context: Any) -> pb.VersionResponse:
        return pb.VersionResponse(runtime_name="fake", runtime_version=VERSION, api_version=API_VERSION)

    # -- sandboxes

    async def RunPodSandbox(self, request: pb.RunPodSandboxRequest, context: Any) -> pb.RunPodSandboxResponse:
        sid = request.sandbox_id or secrets.token_hex(32)
        s = self.sandboxes.get(sid)
        if s is None:
            c = request.config
            s = pb.PodSandbox(id=sid, pod_uid=c.pod_uid, hostname=c.hostname, labels=c.labels,
                              host_network=c.host_network, netns_path="host" if c.host_network else f"fake://netns/{sid}")
            self.sandboxes[sid] = s
            self.by_sandbox[sid] = set()
            self.by_pod.setdefault(c.pod_uid, set()).add(sid)
        return pb.RunPodSandboxResponse(sandbox=s)

    async def StopPodSandbox(self, request: pb.StopPodSandboxRequest, context: Any) -> pb.StopPodSandboxResponse:
        for cid in self.by_sandbox.get(request.sandbox_id, ()):
            self._stop(self.containers[cid])
        return pb.StopPodSandboxResponse()

    async def RemovePodSandbox(self, request: pb.RemovePodSandboxRequest, context: Any) -> pb.RemovePodSandboxResponse:
        s = self.sandboxes.pop(request.sandbox_id, None)
        if s is not None:
            for cid in self.by_sandbox.pop(s.id, set()):
                self.containers.pop(cid, None)
                self.configs.pop(cid, None)
            pod = self.by_pod.get(s.pod_uid)
            if pod is not None:
                pod.discard(s.id)
                if not pod:
                    del self.by_pod[s.pod_uid]
        return pb.RemovePodSandboxResponse()

    async def PodSandboxStatus(self, request: pb.PodSandboxStatusRequest, context: Any) -> pb.PodSandboxStatusResponse:
        return pb.PodSandboxStatusResponse(sandbox=self._sandbox(request.sandbox_id))

    async def ListPodSandbox(self, request: pb.ListPodSandboxRequest, context: Any) -> pb.ListPodSandboxResponse:
        f = request.filter
        selector = dict(f.label_selector)
        found = [self.sandboxes[f.id]] if f.id in self.sandboxes else [] if f.id else list(self.sandboxes.values())
        return pb.ListPodSandboxResponse(items=[s for s in found if convert.labels_match(dict(s.labels), selector)])

    async def PodSandboxStats(self, request: pb.PodSandboxStatsRequest, context: Any) -> pb.StatsResponse:
        self._sandbox(request.sandbox_id)
        return pb.StatsResponse(stats=pb.Stats(timestamp_ns=time.time_ns()))

    # -- containers

    async def CreateContainer(self, request: pb.CreateContainerRequest, context: Any) -> pb.CreateContainerResponse:
        c = request.config
        cid = request.container_id or secrets.token_hex(32)
        if cid in self.containers:
            return pb.CreateContainerResponse(container_id=cid)
        if c.sandbox_id:
            self._sandbox(c.sandbox_id)
        st = pb.ContainerStatus(id=cid, name=c.name, state=pb.CONTAINER_CREATED, created_at=_now(), labels=c.labels,
                                log_path=f"fake://logs/{cid}")
        if c.sandbox_id:
            st.sandbox_id = c.sandbox_id
            self.by_sandbox[c.sandbox_id].add(cid)
        self.containers[cid] = st
        self.configs[cid] = c
        return pb.CreateContainerResponse(container_id=cid)

    async def StartContainer(self, request: pb.StartContainerRequest, context: Any) -> pb.StartContainerResponse:
        st = self._container(request.container_id)
        if st.state != pb.CONTAINER_CREATED:
            raise ContainerStateError(f"container {st.id} already started")
        st.state = pb.CONTAINER_RUNNING
        st.started_at = _now()
        st.pid = 0
        return pb.StartContainerResponse(pid=0)

    @staticmethod
    def _stop(st: pb.ContainerStatus) -> None:
        if st.state == pb.CONTAINER_RUNNING:
            st.state = pb.CONTAINER_EXITED
            st.finished_at = _now()
            st.exit_code = 0
            st.reason = "Completed"

    async def StopContainer(self, request: pb.StopContainerRequest, context: Any) -> pb.ContainerStatusResponse:
        st = self._container(request.container_id)
        self._stop(st)
        return pb.ContainerStatusResponse(status=st)

    async def RemoveContainer(self, request: pb.RemoveContainerRequest, context: Any) -> pb.RemoveContainerResponse:
        st = self.containers.pop(request.container_id, None)
        self.configs.pop(request.container_id, None)
        if st is not None and st.HasField("sandbox_id"):
            self.by_sandbox.get(st.sandbox_id, set()).discard(st.id)
        return pb.RemoveContainerResponse()

    async def ContainerStatus(self, request: pb.ContainerStatusRequest, context: Any) -> pb.ContainerStatusResponse:
        return pb.ContainerStatusResponse(status=self._container(request.container_id))

    async def ListContainers(self, request: pb.ListContainersRequest, context: Any) -> pb.ListContainersResponse:
        f = request.filter
        if f.id:
            ids: Any = [f.id] if f.id in self.containers else []
        elif f.sandbox_id:
            ids = self.by_sandbox.get(f.sandbox_id, ())
        else:
            ids = self.containers
        selector = dict(f.label_selector)
        items = [st for st in (self.containers[i] for i in ids)
                 if (not f.HasField("state") or st.state == f.state) and convert.labels_match(dict(st.labels), selector)]
        return pb.ListContainersResponse(items=items)

    async def UpdateContainerResources(
        self, request: pb.UpdateContainerResourcesRequest, context: Any
    ) -> pb.UpdateContainerResourcesResponse:
        self._container(request.container_id)
        self.configs[request.container_id].resources.CopyFrom(request.resources)
        return pb.UpdateContainerResourcesResponse()

    async def ContainerStats(self, request: pb.ContainerStatsRequest, context: Any) -> pb.StatsResponse:
        self._container(request.container_id)
        return pb.StatsResponse(stats=pb.Stats(timestamp_ns=time.time_ns()))

    # -- exec

    def _running(self, cid: str) -> None:
        if self._container(cid).state != pb.CONTAINER_RUNNING:
            raise ContainerStateError(f"container {cid} is not running")

    async def ExecSync(self, request: pb.ExecSyncRequest, context: Any) -> pb.ExecSyncResponse:
        self._running(request.container_id)
        if not request.cmd:
            raise ValueError("exec: cmd: a command is required")
        code, out, err = _fake_exec(list(request.cmd), b"")
        return pb.ExecSyncResponse(exit_code=code, stdout=out, stderr=err)

    async def Exec(self, requests: AsyncIterator[pb.ExecRequest], context: Any) -> AsyncIterator[pb.ExecResponse]:
        s = await exec_start(requests)
        self._running(s.container_id)
        proc = _FakeExec()
        yield pb.ExecResponse(started=pb.ExecStarted())
        if s.stdin:
            feeder = asyncio.create_task(feed_exec(proc, requests))
            try:
                await proc.closed.wait()
            finally:
                feeder.cancel()
        code, out, err = _fake_exec(list(s.cmd), bytes(proc.stdin))
        if out:
            yield pb.ExecResponse(output=pb.ExecOutput(stream=pb.STDOUT, data=out))
        if err:
            yield pb.ExecResponse(output=pb.ExecOutput(stream=pb.STDOUT if s.tty else pb.STDERR, data=err))
        yield pb.ExecResponse(exit=pb.ExecExit(exit_code=code))


class FakeImageServicer(pbg.ImageServiceServicer):
    def __init__(self) -> None:
        self.images: dict[str, pb.Image] = {}  # by reference as pulled

    def _lookup(self, ref: str) -> pb.Image | None:
        found = self.images.get(ref)
        if found is None:
            found = next((i for i in self.images.values() if i.id == ref or ref in i.repo_digests), None)
        return found

    async def PullImage(self, request: pb.PullImageRequest, context: Any) -> pb.PullImageResponse:
        ref = request.image
        if not ref or ref != ref.strip() or any(ch.isupper() for ch in ref.partition(":")[0].partition("@")[0]):
            raise InvalidImageName(f'Failed to apply default image tag "{ref}": invalid reference format')
        policy = PullPolicy(request.pull_policy or PullPolicy.ALWAYS)
        image = self._lookup(ref)
        if image is None or policy is PullPolicy.ALWAYS:
            if image is None and policy is PullPolicy.NEVER:
                raise ImageNeverPull(f'Container image "{ref}" is not present with pull policy of Never')
            digest = hashlib.sha256(ref.encode()).hexdigest()
            image = pb.Image(id=f"sha256:{digest}", repo_tags=[ref], repo_digests=[f"{ref}@sha256:{digest}"],
                             size=0, manifest_digest=f"sha256:{digest}")
            self.images[ref] = image
        return pb.PullImageResponse(image=image)

    async def ImageStatus(self, request: pb.ImageStatusRequest, context: Any) -> pb.ImageStatusResponse:
        return pb.ImageStatusResponse(image=self._lookup(request.image))

    async def ListImages(self, request: pb.ListImagesRequest, context: Any) -> pb.ListImagesResponse:
        images: list[pb.Image] = sorted(self.images.values(), key=lambda i: i.id)
        return pb.ListImagesResponse(images=images)

    async def RemoveImage(self, request: pb.RemoveImageRequest, context: Any) -> pb.RemoveImageResponse:
        image = self._lookup(request.image)
        if image is not None:  # removing what is not there is done (as in the CRI)
            self.images = {ref: i for ref, i in self.images.items() if i.id != image.id}
        return pb.RemoveImageResponse()

    async def ImageFsInfo(self, request: pb.ImageFsInfoRequest, context: Any) -> pb.ImageFsInfoResponse:
        return pb.ImageFsInfoResponse(used_bytes=0, inodes_used=0)


class FakeRuntime:
    """The fake runtime's two servicers, with a client and a few questions for tests."""

    version = VERSION

    def __init__(self) -> None:
        self.runtime = FakeRuntimeServicer()
        self.images = FakeImageServicer()

    def client(self) -> RuntimeClient:
        return RuntimeClient.local(self.runtime, self.images)

    def is_running(self, pod_uid: str) -> bool:
        """Whether anything (a sandbox) exists for the pod."""
        return bool(self.runtime.by_pod.get(pod_uid))

    def __len__(self) -> int:
        """Pods with a sandbox."""
        return len(self.runtime.by_pod)
