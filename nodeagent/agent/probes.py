"""Liveness, readiness and startup probes.

One :class:`ProbeWorker` per (container, probe kind) runs the probe every ``periodSeconds``
after ``initialDelaySeconds`` and turns single results into a verdict with Kubernetes'
thresholds (``successThreshold`` consecutive successes, ``failureThreshold`` consecutive
failures). It only tells the pod sync when the verdict changes; the sync acts on it (a failed
liveness or startup probe restarts the container, readiness gates Ready).

exec probes run in the container through the runtime service. tcpSocket and httpGet probes connect
from the node to the pod's IP, as a kubelet does (so a server listening on 127.0.0.1 only fails
them, as in Kubernetes). A pod without an IP of its own (pod networking off) is probed at
``127.0.0.1:<port>`` *inside its network namespace*: a short-lived thread ``setns``-es into
the sandbox's pinned net namespace, connects, and exits (a thread's namespace is its own; it
dies with the thread, so no pool thread is left in a pod's namespace). hostNetwork pods are
probed at 127.0.0.1 on the node.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from apimachinery.api.core_v1 import Container, Probe
from nodeagent.cri.client import RuntimeClient
from nodeagent.runtime import linux
from nodeagent.runtime.container import ContainerStateError

log = logging.getLogger(__name__)
T = TypeVar("T")

LIVENESS, READINESS, STARTUP = "liveness", "readiness", "startup"


def resolve_port(port: int | str, container: Container) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    for p in container.ports or []:
        if p.name == port:
            return p.container_port
    raise ValueError(f"port {port!r} is not a named port of container {container.name!r}")


async def in_netns(netns: str | None, fn: Callable[[], T], timeout: float) -> T:
    """``fn()`` in a fresh thread inside the network namespace pinned at ``netns`` (None: the
    node's own), raising TimeoutError after ``timeout`` seconds (the thread is left to finish)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)  # type: ignore[arg-type]

    def body() -> None:
        try:
            if netns is not None:
                fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    linux.setns(fd, linux.CLONE_NEWNET)
                finally:
                    os.close(fd)
            result = fn()
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=body, name="probe-netns", daemon=True).start()
    return await asyncio.wait_for(fut, timeout)


def _tcp(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def _http(host: str, port: int, path: str, headers: dict[str, str], timeout: float) -> int:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path or "/", headers={"User-Agent": "kube-probe/1.36", **headers})
        return conn.getresponse().status
    finally:
        conn.close()


async def run_probe(
    probe: Probe, container: Container, runtime: RuntimeClient, container_id: str, netns: str | None,
    pod_ip: str | None = None,
) -> tuple[bool, str]:
    """One probe attempt: (success, message). With ``pod_ip`` network probes go from the node to
    that address; without, to 127.0.0.1 in ``netns`` (None: the node's own namespace)."""
    timeout = float(probe.timeout_seconds or 1)
    where, host = (None, pod_ip) if pod_ip else (netns, "127.0.0.1")
    try:
        if probe.exec is not None:
            code, out, err = await runtime.exec_sync(container_id, list(probe.exec.command or []), timeout)
            text = (out + err).decode(errors="replace").strip()
            return code == 0, text if code == 0 else f"command exited with {code}: {text}"
        if probe.tcp_socket is not None:
            port = resolve_port(probe.tcp_socket.port, container)
            await in_netns(where, lambda: _tcp(host, port, timeout), timeout)
            return True, ""
        if probe.http_get is not None:
            hg = probe.http_get
            if (hg.scheme or "HTTP").upper() != "HTTP":
                return False, "HTTPS probes are not supported yet"
            port = resolve_port(hg.port, container)
            headers = {h.name: h.value for h in hg.http_headers or []}
            target = hg.host or host
            status = await in_netns(where if not hg.host else None,
                                    lambda: _http(target, port, hg.path or "/", headers, timeout), timeout)
            if 200 <= status < 400:
                return True, ""
            return False, f"HTTP probe failed with statuscode: {status}"
        return False, "probe has no handler this node supports"
    except TimeoutError:
        return False, f"probe timed out after {timeout:g}s"
    except ContainerStateError as exc:
        return False, str(exc)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return False, str(exc)


class ProbeWorker:
    """Runs one probe of one container until cancelled; ``result`` is the current verdict."""

    def __init__(
        self, kind: str, probe: Probe, container: Container, runtime: RuntimeClient, container_id: str, netns: str | None,
        notify: Callable[[], None], pod_ip: str | None = None,
    ) -> None:
        self.kind = kind
        self.probe = probe
        self.container = container
        self.runtime = runtime
        self.container_id = container_id
        self.netns = netns
        self.pod_ip = pod_ip
        self.notify = notify
        # Readiness starts failed, liveness starts healthy, startup starts not yet passed.
        self.result: bool = kind == LIVENESS
        self.message = ""
        self.failed = False  # liveness/startup: the container must be restarted
        self._successes = 0
        self._failures = 0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"{self.kind}-probe-{self.container_id[:12]}")

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        p = self.probe
        period = float(p.period_seconds or 10)
        success_threshold = p.success_threshold or 1
        failure_threshold = p.failure_threshold or 3
        await asyncio.sleep(float(p.initial_delay_seconds or 0))
        while True:
            ok, message = await run_probe(p, self.container, self.runtime, self.container_id, self.netns, self.pod_ip)
            if ok:
                self._successes += 1
                self._failures = 0
            else:
                self._failures += 1
                self._successes = 0
            verdict = self.result
            if ok and self._successes >= success_threshold:
                verdict = True
            elif not ok and self._failures >= failure_threshold:
                verdict = False
                self.message = message
            if self.kind != READINESS and not ok and self._failures >= failure_threshold:
                # Liveness or startup failed: the container is restarted; its successor gets a
                # new worker.
                log.info("container %s: %s probe failed: %s", self.container.name, self.kind, message)
                self.result = False
                self.failed = True
                self.notify()
                return
            if verdict != self.result:
                log.info("container %s: %s probe %s%s", self.container.name, self.kind,
                         "succeeded" if verdict else "failed", f": {message}" if message else "")
                self.result = verdict
                self.notify()
            if self.kind == STARTUP and self.result:
                return  # a passed startup probe is never run again for this container
            await asyncio.sleep(period)
