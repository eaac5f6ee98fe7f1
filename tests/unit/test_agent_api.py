"""The logs/exec path without root: request checks with Kubernetes' wording, the exec Status,
the agent's serving certificate, and the API server's pinned TLS handshake."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest
from multidict import MultiDict

from apimachinery.agentapi import cert_fingerprint, pinned_client_context
from apimachinery.errors import ApiError
from controlplane.apiserver.certs import ensure_agent_client_cert, ensure_pki, issue_certificate
from controlplane.apiserver.nodeproxy import pick_container, validate_log_query
from nodeagent.agent.execproc import ExecProcess
from nodeagent.agent.server import AgentServer, AgentServerConfig, exec_status, log_options
from nodeagent.agent.servingcert import ensure_serving_cert
from nodeagent.runtime.container import ContainerStatus


def pod(*containers: str, inits: tuple[str, ...] = ()) -> dict[str, object]:
    return {"metadata": {"name": "web"}, "spec": {"containers": [{"name": c} for c in containers],
                                                   "initContainers": [{"name": c} for c in inits]}}


def refusal(fn: object, *args: object) -> str:
    with pytest.raises(ApiError) as e:
        fn(*args)  # type: ignore[operator]
    assert e.value.code == 400
    return e.value.message


def test_the_container_is_picked_or_refused_as_kubernetes_does() -> None:
    assert pick_container(pod("app"), None) == "app"
    assert pick_container(pod("app", "side", inits=("init",)), "init") == "init"
    assert refusal(pick_container, pod("app", "side"), None) == (
        "a container name must be specified for pod web, choose one of: [app side]")
    assert refusal(pick_container, pod("app", "side", inits=("init",)), "") == (
        "a container name must be specified for pod web, choose one of: [app side] or one of the init containers: [init]")
    assert refusal(pick_container, pod("app"), "nope") == "container nope is not valid for pod web"


def test_log_query_checks() -> None:
    validate_log_query(MultiDict(tailLines="0", limitBytes="1", sinceSeconds="5", follow="true"))
    assert refusal(validate_log_query, MultiDict(tailLines="-1")) == (
        "tailLines: Invalid value: -1: must be greater than or equal to 0")
    assert refusal(validate_log_query, MultiDict(limitBytes="0")) == "limitBytes: Invalid value: 0: must be greater than 0"
    assert "at most one of `sinceTime` or `sinceSeconds`" in refusal(
        validate_log_query, MultiDict(sinceSeconds="3", sinceTime="2026-01-01T00:00:00Z"))
    assert "not an integer" in refusal(validate_log_query, MultiDict(tailLines="ten"))
    assert "ParseBool" in refusal(validate_log_query, MultiDict(follow="maybe"))


def test_agent_log_options() -> None:
    opts = log_options(MultiDict(sinceSeconds="10", tailLines="3", timestamps="true", follow="1"), now_ns=100 * 10**9)
    assert (opts.since_ns, opts.tail_lines, opts.timestamps, opts.follow, opts.limit_bytes) == (90 * 10**9, 3, True, True, None)
    assert log_options(MultiDict(sinceTime="1970-01-01T00:01:40Z")).since_ns == 100 * 10**9
    assert "RFC 3339" in refusal(log_options, MultiDict(sinceTime="yesterday"))


def test_exec_status_carries_the_exit_code() -> None:
    assert exec_status(0, ["true"]) == {"metadata": {}, "status": "Success"}
    st = exec_status(3, ["sh", "-c", "exit 3"])
    assert (st["status"], st["reason"], st["details"]["causes"]) == (
        "Failure", "NonZeroExitCode", [{"reason": "ExitCode", "message": "3"}])


def test_serving_cert_is_kept_across_restarts_and_renewed_for_a_new_ip(tmp_path: Path) -> None:
    _cert, key, fp = ensure_serving_cert(tmp_path, "n1", "10.0.0.5")
    assert (key.stat().st_mode & 0o777) == 0o600
    assert ensure_serving_cert(tmp_path, "n1", "10.0.0.5")[2] == fp
    assert ensure_serving_cert(tmp_path, "n1", "10.0.0.6")[2] != fp


async def _handshake(server_dir: Path, client_dir: Path, fingerprint: str) -> bytes:
    cert, key, _ = ensure_serving_cert(server_dir, "n1", "127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    ccert, ckey, _ = ensure_serving_cert(client_dir, "client", "127.0.0.1")  # any key pair will do here
    got: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            got.append(await reader.read(100))
        except (ssl.SSLError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        _reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=pinned_client_context(fingerprint, ccert, ckey), server_hostname="n1")
        writer.write(b"hello")
        await writer.drain()
        writer.close()
        await asyncio.sleep(0.1)
    finally:
        server.close()
        await server.wait_closed()
    return b"".join(got)


def test_pinned_context_accepts_only_the_published_certificate(tmp_path: Path) -> None:
    _, _, fp = ensure_serving_cert(tmp_path / "s", "n1", "127.0.0.1")
    assert asyncio.run(_handshake(tmp_path / "s", tmp_path / "c", fp)) == b"hello"
    with pytest.raises(ssl.SSLCertVerificationError, match="not the one its Node publishes"):
        asyncio.run(_handshake(tmp_path / "s", tmp_path / "c", "ab" * 32))
    assert cert_fingerprint(b"x") == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"


class _NoContainers:
    def list(self) -> list[ContainerStatus]:
        return []

    def container_dir(self, container_id: str) -> Path:
        raise KeyError(container_id)


class _NoExec:
    async def start(self, container_id: str, cmd: Sequence[str], *, stdin: bool, tty: bool) -> ExecProcess:
        raise AssertionError("no exec expected")


async def _agent_calls(tmp: Path) -> tuple[int, int, str, int, str]:
    """(configured port, port used, answer to the API server, status for another CA client,
    error for a caller without a certificate)."""
    pki = ensure_pki(tmp / "cp", ["127.0.0.1"])
    apiserver_cert = ensure_agent_client_cert(pki)
    node_cert, node_key = issue_certificate(pki, "system:node:n1", organizations=["system:nodes"], client=True)
    (tmp / "node.crt").write_bytes(node_cert)
    (tmp / "node.key").write_bytes(node_key)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        server = AgentServer(_NoContainers(), _NoExec(), AgentServerConfig(
            "n1", "127.0.0.1", tmp / "agent", pki.ca_pem(), busy), tmp / "containers")
        await server.start()
    try:
        url = f"https://127.0.0.1:{server.port}/containerLogs/default/web/app"
        async with aiohttp.ClientSession() as s:
            ctx = pinned_client_context(server.fingerprint, *apiserver_cert)
            async with s.get(url, ssl=ctx) as resp:
                answer = (await resp.json())["message"]
            other = pinned_client_context(server.fingerprint, tmp / "node.crt", tmp / "node.key")
            async with s.get(url, ssl=other) as resp:
                other_status = resp.status
            anonymous = ssl.create_default_context()
            anonymous.check_hostname = False
            anonymous.verify_mode = ssl.CERT_NONE
            try:
                async with s.get(url, ssl=anonymous) as resp:
                    refused = f"answered {resp.status}"
            except aiohttp.ClientError as e:
                refused = type(e).__name__
    finally:
        await server.stop()
    return busy, server.port, answer, other_status, refused


def test_agent_serves_only_the_apiserver_and_falls_back_to_a_free_port(tmp_path: Path) -> None:
    busy, port, answer, other_status, refused = asyncio.run(_agent_calls(tmp_path))
    assert port != busy  # the configured port was taken: another one, which the Node would name
    assert answer == 'container "app" in pod "web" is waiting to start: ContainerCreating'
    assert other_status == 403  # a certificate from the cluster CA, but not the API server's
    assert not refused.startswith("answered"), refused  # no certificate: no TLS session at all
