"""``pods/log`` and ``pods/exec``: the API server checks the request, then proxies it to the
pod's node agent over a channel authenticated both ways.

The API server dials the Node's InternalIP at ``status.daemonEndpoints.kubeletEndpoint.Port``,
presents its ``kube-apiserver-kubelet-client`` certificate (signed by the cluster CA: the only
identity the agent accepts) and accepts only the server certificate whose SHA-256 the Node
publishes in ``kube-lite.dev/agent-serving-cert-sha256`` (pinned in the handshake itself,
:func:`apimachinery.agentapi.pinned_client_context`). A Node without that annotation, or a peer
with another certificate, gets no request at all. See :mod:`nodeagent.agent.server` for the
agent's side.

Logs stream through as they come (``follow`` keeps both connections open). Exec is a WebSocket
on both legs with the same subprotocol (``v5.channel.k8s.io`` or ``v4``): the agent's leg is
opened first, so a refusal (container not running, ...) reaches the client as an ordinary
Status response; then frames are copied both ways until either side closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from apimachinery import errors
from apimachinery.agentapi import EXEC_PROTOCOLS, SERVING_CERT_ANNOTATION, pinned_client_context
from apimachinery.scheme import Scheme
from controlplane.apiserver.reqinfo import RequestInfo, parse_bool
from controlplane.registry.store import Obj, Store

_LOG_PARAMS = ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes")
_EXEC_FLAGS = ("stdin", "stdout", "stderr", "tty")


@dataclass(frozen=True)
class AgentTarget:
    node: str
    host: str
    port: int
    fingerprint: str

    def url(self, path: str, scheme: str = "https") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"


def _names(containers: list[dict[str, Any]]) -> list[str]:
    return [str(c.get("name")) for c in containers]


def pick_container(pod: Obj, wanted: str | None) -> str:
    """The container a log/exec request means, with Kubernetes' refusals."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    containers = _names(spec.get("containers") or [])
    inits = _names(spec.get("initContainers") or [])
    if not wanted:
        if len(containers) == 1:
            return containers[0]
        if not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if inits:
            message += f" or one of the init containers: [{' '.join(inits)}]"
        raise errors.bad_request(message)
    if wanted not in containers and wanted not in inits:
        raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
    return wanted


def validate_log_query(q: Any) -> None:
    """Kubernetes' PodLogOptions checks (one BadRequest naming the field)."""
    problems = []

    def number(key: str) -> int | None:
        raw = q.get(key)
        if raw in (None, ""):
            return None
        try:
            return int(raw)
        except ValueError:
            raise errors.bad_request(f'invalid value for {key}: "{raw}" is not an integer') from None

    tail, limit, since = number("tailLines"), number("limitBytes"), number("sinceSeconds")
    if tail is not None and tail < 0:
        problems.append(f"tailLines: Invalid value: {tail}: must be greater than or equal to 0")
    if limit is not None and limit < 1:
        problems.append(f"limitBytes: Invalid value: {limit}: must be greater than 0")
    if since is not None and since < 1:
        problems.append(f"sinceSeconds: Invalid value: {since}: must be greater than 0")
    if since is not None and q.get("sinceTime"):
        problems.append("at most one of `sinceTime` or `sinceSeconds` may be specified")
    for key in ("follow", "previous", "timestamps"):
        parse_bool(q.get(key), key)
    if problems:
        raise errors.bad_request(problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]")


async def _agent_error(resp: aiohttp.ClientResponse, target: AgentTarget) -> errors.ApiError:
    """The agent's refusal as the client should see it (its Status when it sent one)."""
    text = await resp.text(errors="replace")
    with contextlib.suppress(ValueError, TypeError):
        status = json.loads(text)
        if isinstance(status, dict) and status.get("kind") == "Status":
            return errors.ApiError.from_status(status, resp.status)
    return errors.ApiError.make(resp.status if resp.status >= 400 else 500, "InternalError",
                                f'the node agent of "{target.node}" answered {resp.status}: {text[:200]}')


@dataclass
class NodeProxy:
    client_cert: Path
    client_key: Path
    connect_timeout: float = 10.0
    _session: aiohttp.ClientSession | None = None
    _contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=None, connect=self.connect_timeout, sock_connect=self.connect_timeout)
            self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        return self._session

    async def close(self, _app: web.Application | None = None) -> None:
        if self._session is not None:
            await self._session.close()

    def context(self, fingerprint: str) -> ssl.SSLContext:
        ctx = self._contexts.get(fingerprint)
        if ctx is None:
            ctx = self._contexts[fingerprint] = pinned_client_context(fingerprint, self.client_cert, self.client_key)
        return ctx

    async def target(self, store: Store, scheme: Scheme, pod: Obj) -> AgentTarget:
        node_name = (pod.get("spec") or {}).get("nodeName")
        pod_name = (pod.get("metadata") or {}).get("name", "")
        if not node_name:
            raise errors.bad_request(f"pod {pod_name} does not have a host assigned")
        node_rt = scheme.by_resource("", "v1", "nodes")
        assert node_rt is not None
        return self.node_target(await store.get(node_rt, None, node_name))

    @staticmethod
    def node_target(node: Obj) -> AgentTarget:
        """Where and how to reach the agent of ``node`` (503 when it publishes no way)."""
        node_name = (node.get("metadata") or {}).get("name", "")
        status = node.get("status") or {}
        addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
        host = addresses.get("InternalIP") or addresses.get("Hostname")
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        fingerprint = ((node.get("metadata") or {}).get("annotations") or {}).get(SERVING_CERT_ANNOTATION)
        if not host or not port:
            raise errors.service_unavailable(f'node "{node_name}" publishes no address and port for its agent')
        if not fingerprint:
            raise errors.service_unavailable(
                f'node "{node_name}" publishes no agent serving certificate ({SERVING_CERT_ANNOTATION}); '
                "its agent cannot be reached securely")
        return AgentTarget(node_name, str(host), int(port), str(fingerprint))

    async def _refusal(self, target: AgentTarget, path: str, params: list[tuple[str, str]], ctx: ssl.SSLContext) -> errors.ApiError:
        """The agent's answer to a plain GET of an exec URL (always a refusal: no upgrade)."""
        try:
            async with self.session().get(target.url(path), params=params, ssl=ctx) as resp:
                return await _agent_error(resp, target)
        except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError, ssl.SSLError) as exc:
            return self._dial_error(target, exc)

    def _dial_error(self, target: AgentTarget, exc: Exception) -> errors.ApiError:
        return errors.internal(f'error dialing the node agent of "{target.node}" at {target.host}:{target.port}: {exc}')

    async def serve(self, request: web.Request, store: Store, scheme: Scheme, info: RequestInfo) -> web.StreamResponse:
        assert info.name is not None
        if info.subresource == "log":
            if request.method != "GET":
                raise errors.method_not_allowed(f"the server does not allow this method on the requested resource ({request.method})")
            validate_log_query(request.query)
        elif request.method not in ("GET", "POST"):
            raise errors.method_not_allowed(f"the server does not allow this method on the requested resource ({request.method})")
        pod = await store.get(info.rt, info.namespace, info.name)
        container = pick_container(pod, request.query.get("container"))
        if info.subresource == "log" and not (pod.get("spec") or {}).get("nodeName"):
            # Kubernetes: a pod no node runs yet has an empty log (exec is refused below).
            return web.Response(body=b"", content_type="text/plain")
        target = await self.target(store, scheme, pod)
        path = f"/{'containerLogs' if info.subresource == 'log' else 'exec'}/{info.namespace}/{info.name}/{container}"
        uid = (pod.get("metadata") or {}).get("uid", "")
        if info.subresource == "log":
            params = [(k, request.query[k]) for k in _LOG_PARAMS if k in request.query]
            return await self._logs(request, target, path, [*params, ("podUID", uid)])
        params = [("command", c) for c in request.query.getall("command", [])]
        params += [(k, request.query[k]) for k in _EXEC_FLAGS if k in request.query]
        return await self._exec(request, target, path, [*params, ("podUID", uid)])

    async def _logs(self, request: web.Request, target: AgentTarget, path: str, params: list[tuple[str, str]]) -> web.StreamResponse:
        try:
            async with self.session().get(target.url(path), params=params, ssl=self.context(target.fingerprint)) as upstream:
                if upstream.status != 200:
                    raise await _agent_error(upstream, target)
                resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
                resp.enable_chunked_encoding()
                await resp.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError, ssl.SSLError) as exc:
            raise self._dial_error(target, exc) from exc

    async def _exec(self, request: web.Request, target: AgentTarget, path: str, params: list[tuple[str, str]]) -> web.StreamResponse:
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        protocols = [p for p in offered if p in EXEC_PROTOCOLS]
        ctx = self.context(target.fingerprint)
        if request.headers.get("Upgrade", "").lower() != "websocket" or not protocols:
            # Not one of our WebSockets (kubectl's SPDY fallback, a plain GET): the agent still
            # says what is wrong first (container not running...), else that it needs a WebSocket.
            raise await self._refusal(target, path, params, ctx)
        try:
            upstream = await self.session().ws_connect(
                target.url(path, "wss"), params=params, protocols=protocols, ssl=ctx, autoping=True, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as exc:
            # The handshake error drops the agent's body; a plain GET (it checks the same things
            # before the upgrade) gets the same refusal with it.
            raise await self._refusal(target, path, params, ctx) from exc
        except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError, ssl.SSLError) as exc:
            raise self._dial_error(target, exc) from exc
        try:
            ws = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else [], autoping=True, max_msg_size=0)
            await ws.prepare(request)
            await _splice(ws, upstream)
            return ws
        finally:
            await upstream.close()


NODE_PROXY_KEY = web.AppKey("node-proxy", NodeProxy)


async def _splice(client: web.WebSocketResponse, agent: aiohttp.ClientWebSocketResponse) -> None:
    """Copy frames both ways until one side closes; then close the other."""

    async def copy(src: Any, dst: Any) -> None:
        async for msg in src:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await dst.send_str(msg.data)

    down = asyncio.create_task(copy(agent, client))
    up = asyncio.create_task(copy(client, agent))
    try:
        await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (down, up):
            task.cancel()
        await asyncio.gather(down, up, return_exceptions=True)
        await client.close()
        await agent.close()
