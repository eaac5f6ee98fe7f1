"""The agent's HTTPS API (the kubelet's port, 10250): container logs and exec, for the API server only.

Endpoints (paths as the kubelet's):

* ``GET /containerLogs/{namespace}/{pod}/{container}`` with ``follow``, ``previous``,
  ``tailLines``, ``sinceSeconds``, ``sinceTime``, ``timestamps``, ``limitBytes``: the log as
  text, chunked; with ``follow`` it stays open until the container has exited and its log is
  complete. Logs are the runtime's rotated CRI-format files (:mod:`nodeagent.runtime.logs`);
  this server also runs their pumps. ``previous`` is the run before the newest one.
* ``GET /exec/{namespace}/{pod}/{container}?command=...&stdin&stdout&stderr&tty``: a WebSocket
  with the channel protocol ``v5.channel.k8s.io`` (or ``v4``): binary frames prefixed by a
  channel byte, 0 stdin, 1 stdout, 2 stderr, 3 the final Status (success, or
  ``NonZeroExitCode`` with the code as a cause), 4 terminal size (``{"Width":..,"Height":..}``);
  v5 adds 255 (``[255, 0]``: stdin is closed). The command runs through an
  :class:`~nodeagent.agent.execproc.ExecBackend`.
* ``GET /stats/summary``: CPU and memory usage of the node, its pods and their containers
  (:mod:`.summary`), which the API server's metrics.k8s.io reads.

Authentication both ways (see :mod:`apimachinery.agentapi`):

* The agent serves with a self-signed certificate made at first start and kept in
  ``<data dir>/pki`` (:mod:`.servingcert`); it publishes the certificate's SHA-256 on its Node
  (annotation ``kube-lite.dev/agent-serving-cert-sha256``) and the port it listens on in
  ``status.daemonEndpoints.kubeletEndpoint.Port``. The API server pins the handshake to that
  fingerprint, so a process that is not this node's agent (it lacks the key) cannot stand in
  for it even on the node's address and port; since only the node may write its Node (node
  restriction), nobody else can publish a different fingerprint.
* The TLS handshake requires a client certificate chained to the cluster CA (the one in the
  agent's kubeconfig); a request without one never gets a TLS session. A request whose
  certificate does not name :data:`~apimachinery.agentapi.APISERVER_CLIENT_CN` gets 403: the
  CA signs other clients (nodes, users) too, and none of them may reach containers this way.

The listener binds the node's IP. If the configured port is taken (two test agents on one
loopback address), the agent logs a warning and listens on a free port instead; the Node names
the port it really uses, which is what the API server dials.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from apimachinery import errors
from apimachinery.agentapi import (
    APISERVER_CLIENT_CN,
    CLOSE,
    DEFAULT_AGENT_PORT,
    ERROR,
    EXEC_PROTOCOLS,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
)
from nodeagent.agent.execproc import ExecBackend, ExecProcess
from nodeagent.agent.podsync import (
    LABEL_CONTAINER,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    LABEL_RESTARTS,
)
from nodeagent.agent.servingcert import ensure_serving_cert
from nodeagent.agent.summary import SummaryCollector
from nodeagent.runtime.container import ContainerStatus
from nodeagent.runtime.logs import LogOptions, LogPumps, RotationPolicy, parse_timestamp, read_logs

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: After the command exits, how long its output may still drain (a background process can keep
#: the pipes open forever; the kubelet's streams end with the command too).
OUTPUT_DRAIN_SECONDS = 2.0


class ContainerSource(Protocol):
    """What the server needs from the runtime: the node's containers and their directories."""

    def list(self) -> list[ContainerStatus]: ...

    def container_dir(self, container_id: str) -> Path: ...


@dataclass
class AgentServerConfig:
    node_name: str
    node_ip: str
    pki_dir: Path
    ca_pem: bytes  # the cluster CA (from the agent's kubeconfig): who may call
    port: int = DEFAULT_AGENT_PORT  # 0: any free port
    log_policy: RotationPolicy = field(default_factory=RotationPolicy)
    pump_interval: float = 0.2


def _flag(q: Any, name: str) -> bool:
    return str(q.get(name, "")).lower() in ("true", "1", "yes")


def _int(q: Any, name: str, minimum: int) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{raw}" is not an integer') from None
    if value < minimum:
        raise errors.bad_request(f"{name}: Invalid value: {value}: must be greater than or equal to {minimum}")
    return value


def log_options(q: Any, now_ns: int | None = None) -> LogOptions:
    since_seconds = _int(q, "sinceSeconds", 1)
    since_ns: int | None = None
    if since_seconds is not None:
        since_ns = (now_ns if now_ns is not None else time.time_ns()) - since_seconds * 1_000_000_000
    elif q.get("sinceTime"):
        try:
            since_ns = parse_timestamp(q["sinceTime"])
        except ValueError:
            raise errors.bad_request(f'invalid value for sinceTime: "{q["sinceTime"]}" is not an RFC 3339 time') from None
    return LogOptions(
        follow=_flag(q, "follow"), tail_lines=_int(q, "tailLines", 0), since_ns=since_ns,
        timestamps=_flag(q, "timestamps"), limit_bytes=_int(q, "limitBytes", 1),
    )


def exec_status(code: int, command: Sequence[str]) -> dict[str, Any]:
    """The Status the kubelet sends on the error channel when the command ended."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
        "message": f"command terminated with non-zero exit code: error executing command {list(command)}, exit code {code}",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _error_response(err: errors.ApiError) -> web.Response:
    return web.Response(body=json.dumps(err.status.to_dict()).encode(), status=err.code, content_type="application/json")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.ApiError as e:
        return _error_response(e)
    except web.HTTPNotFound:
        return _error_response(errors.ApiError.make(404, "NotFound", f"no such agent endpoint {request.path}"))


@web.middleware
async def _only_apiserver(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The TLS layer already required a CA-signed client certificate; here its name must be the
    API server's."""
    peer = request.transport.get_extra_info("peercert") if request.transport else None
    names = [v for rdn in (peer or {}).get("subject", ()) for k, v in rdn if k == "commonName"]
    if names != [APISERVER_CLIENT_CN]:
        who = names[0] if names else "anonymous"
        raise errors.forbidden(f'user "{who}" may not use the node agent\'s API (only {APISERVER_CLIENT_CN})')
    return await handler(request)


class AgentServer:
    def __init__(self, runtime: ContainerSource, exec_backend: ExecBackend, config: AgentServerConfig,
                 containers_dir: Path, summary: SummaryCollector | None = None) -> None:
        self.runtime = runtime
        self.summary = summary
        self.exec_backend = exec_backend
        self.config = config
        self.pumps = LogPumps(containers_dir, config.log_policy, config.pump_interval)
        self.port = 0
        self.fingerprint = ""
        self._runner: web.AppRunner | None = None
        self._pump_task: asyncio.Task[None] | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_errors, _only_apiserver])
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        app.router.add_route("*", "/exec/{namespace}/{pod}/{container}", self.exec)
        app.router.add_get("/stats/summary", self.stats_summary)
        return app

    def ssl_context(self, cert: Path, key: Path) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=self.config.ca_pem.decode())
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(cert, key)
        return ctx

    async def start(self) -> None:
        c = self.config
        cert, key, self.fingerprint = await asyncio.to_thread(ensure_serving_cert, c.pki_dir, c.node_name, c.node_ip)
        ctx = self.ssl_context(cert, key)
        sock = self._listen()
        self.port = int(sock.getsockname()[1])
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, ssl_context=ctx).start()
        self._pump_task = asyncio.create_task(self.pumps.run(), name="log-pumps")
        log.info("agent API on %s:%d (serving cert sha256 %s)", c.node_ip, self.port, self.fingerprint)

    def _listen(self) -> socket.socket:
        """A socket bound to the node IP and the configured port, or a free port if that one is
        taken (see the module docstring)."""
        c = self.config
        family = socket.AF_INET6 if ":" in c.node_ip else socket.AF_INET
        for port in (c.port, 0):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((c.node_ip, port))
            except OSError as e:
                sock.close()
                if e.errno != errno.EADDRINUSE or port == 0:
                    raise
                log.warning("agent port %s:%d is in use; serving logs/exec on a free port instead", c.node_ip, port)
                continue
            sock.listen(128)
            sock.setblocking(False)
            return sock
        raise AssertionError("unreachable")

    async def stop(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        if self._runner is not None:
            await self._runner.cleanup()

    # ----------------------------------------------------------------------------- lookups

    async def _runs(self, request: web.Request) -> tuple[str, str, list[ContainerStatus]]:
        """(pod, container, runs of that container newest first) for the request's path."""
        ns, pod, name = (request.match_info[k] for k in ("namespace", "pod", "container"))
        uid = request.query.get("podUID")
        runs = [
            c for c in await asyncio.to_thread(self.runtime.list)
            if c.labels.get(LABEL_POD_NAMESPACE) == ns and c.labels.get(LABEL_POD_NAME) == pod
            and c.labels.get(LABEL_CONTAINER) == name and (not uid or c.labels.get(LABEL_POD_UID) == uid)
        ]
        runs.sort(key=lambda c: (int(c.labels.get(LABEL_RESTARTS, "0")), c.created_at or ""), reverse=True)
        return pod, name, runs

    # ----------------------------------------------------------------------------- logs

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        opts = log_options(request.query)
        pod, name, runs = await self._runs(request)
        if not runs:
            raise errors.bad_request(f'container "{name}" in pod "{pod}" is waiting to start: ContainerCreating')
        if _flag(request.query, "previous"):
            if len(runs) < 2:
                raise errors.bad_request(f'previous terminated container "{name}" in pod "{pod}" not found')
            target = runs[1]
        else:
            target = runs[0]
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        async for chunk in read_logs(self.runtime.container_dir(target.id), opts):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    # ----------------------------------------------------------------------------- stats

    async def stats_summary(self, request: web.Request) -> web.StreamResponse:
        if self.summary is None:
            raise errors.service_unavailable("this node agent's runtime reports no usage")
        return web.json_response(await self.summary.summary())

    # ----------------------------------------------------------------------------- exec

    async def exec(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        command = q.getall("command", [])
        stdin, stdout, stderr, tty = (_flag(q, k) for k in ("stdin", "stdout", "stderr", "tty"))
        if not command:
            raise errors.bad_request("you must specify at least 1 command")
        if not (stdin or stdout or stderr):
            raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        pod, name, runs = await self._runs(request)
        running = next((c for c in runs if c.state == "running"), None)
        if running is None:
            raise errors.bad_request(f'container "{name}" in pod "{pod}" is not running')
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if request.headers.get("Upgrade", "").lower() != "websocket" or not any(p in EXEC_PROTOCOLS for p in offered):
            raise errors.bad_request(
                f"exec needs a WebSocket with one of the subprotocols {', '.join(EXEC_PROTOCOLS)} (SPDY is not supported)")
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, autoping=True, max_msg_size=0)
        await ws.prepare(request)
        try:
            proc = await self.exec_backend.start(running.id, command, stdin=stdin, tty=tty)
        except Exception as e:  # whatever kept it from running (not running, no such command...) goes to the client
            status = errors.internal(f"error executing command in container: {e}").status.to_dict()
            await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
            await ws.close()
            return ws
        try:
            await bridge(ws, proc, command, want_stdout=stdout, want_stderr=stderr,
                         v5=ws.ws_protocol == EXEC_PROTOCOLS[0])
        finally:
            proc.kill()
            proc.close()
        return ws


async def bridge(ws: web.WebSocketResponse, proc: ExecProcess, command: Sequence[str], *, want_stdout: bool,
                 want_stderr: bool, v5: bool) -> None:
    """Move frames between the WebSocket and the command until it exits (then send its Status)
    or the peer goes away (then the command is killed by the caller)."""
    wanted = {STDOUT: want_stdout, STDERR: want_stderr}

    async def output(channel: int) -> None:
        while data := await proc.read(channel):
            if wanted.get(channel, False) and not ws.closed:
                await ws.send_bytes(bytes([channel]) + data)

    async def inbound() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, payload = msg.data[0], msg.data[1:]
            if channel == STDIN:
                await proc.write_stdin(payload)
            elif channel == CLOSE and v5 and payload[:1] == bytes([STDIN]):
                proc.close_stdin()
            elif channel == RESIZE:
                with contextlib.suppress(ValueError, TypeError, KeyError, OSError):
                    size = json.loads(payload)
                    proc.resize(int(size["Width"]), int(size["Height"]))

    outputs = [asyncio.create_task(output(ch)) for ch in proc.streams]
    reader = asyncio.create_task(inbound())
    waiter = asyncio.create_task(proc.wait())
    try:
        await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            return  # the client went away: the caller kills the command
        code = waiter.result()
        if outputs:
            await asyncio.wait(outputs, timeout=OUTPUT_DRAIN_SECONDS)
        if not ws.closed:
            await ws.send_bytes(bytes([ERROR]) + json.dumps(exec_status(code, command)).encode())
            await ws.close()
    finally:
        for task in [*outputs, reader, waiter]:
            task.cancel()
        await asyncio.gather(*outputs, reader, waiter, return_exceptions=True)
