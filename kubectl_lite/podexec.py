"""``kubectl-lite exec [-i] [-t] [-c C] POD -- COMMAND [ARGS...]`` over Kubernetes' WebSocket
channel protocol (``v5.channel.k8s.io``, falling back to ``v4.channel.k8s.io``).

Every binary frame starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the final Status,
4 terminal resize; v5 adds ``[255, 0]`` from the client to close stdin. The Status on channel 3
decides the exit code: success 0, ``NonZeroExitCode`` the command's code (with kubectl's
``command terminated with exit code N``), anything else an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import threading
from typing import Any

import aiohttp

from apimachinery.agentapi import CLOSE, ERROR, EXEC_PROTOCOLS, RESIZE, STDERR, STDIN, STDOUT
from apimachinery.errors import ApiError
from kubectl_lite.context import Cli
from kubectl_lite.logs import pick_container, pod_name
from kubectl_lite.resources import CliError, resolve_type

PROTOCOLS = EXEC_PROTOCOLS


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("exec", parents=parents, help="Execute a command in a container")
    p.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the container")
    p.add_argument("-t", "--tty", action="store_true", help="stdin is a TTY")
    p.add_argument("-c", "--container", default=None)
    p.add_argument("pod", metavar="POD | pod/NAME")
    p.add_argument("command", nargs="*", metavar="-- COMMAND [args...]")
    p.set_defaults(func=run)


def exec_params(command: list[str], container: str | None, *, stdin: bool, tty: bool) -> list[tuple[str, str]]:
    params = [("command", c) for c in command]
    if container:
        params.append(("container", container))
    params += [
        ("stdin", "true" if stdin else "false"),
        ("stdout", "true"),
        ("stderr", "false" if tty else "true"),
        ("tty", "true" if tty else "false"),
    ]
    return params


def exit_code_of(status: dict[str, Any]) -> tuple[int, str]:
    """The exit code and the message to print for the Status sent on channel 3."""
    if status.get("status") == "Success":
        return 0, ""
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    code = int(cause.get("message", "1"))
                except ValueError:
                    code = 1
                return code, f"command terminated with exit code {code}"
    return 1, f"error: {status.get('message') or 'exec failed'}"


async def run(cli: Cli, args: argparse.Namespace) -> None:
    command = list(getattr(args, "after_dashes", None) or args.command)
    if not command:
        raise CliError("you must specify at least one command for the container")
    pods = resolve_type(cli.scheme, "pods")
    name = pod_name(cli, args.pod)
    pod = await cli.client.get(pods, name, cli.namespace)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise CliError(f"cannot exec into a container in a completed pod; current phase is {phase}")
    container = pick_container(pod, args.container, cli)
    params = exec_params(command, container, stdin=args.stdin, tty=args.tty)
    raw_mode = None
    if args.tty and args.stdin and sys.stdin.isatty():
        import termios
        import tty

        raw_mode = termios.tcgetattr(sys.stdin.fileno())
        tty.setraw(sys.stdin.fileno())
    try:
        async with cli.client.websocket(pods.path(cli.namespace, name, "exec"), params=params, protocols=PROTOCOLS) as ws:
            code, message = await _session(ws, args)
    finally:
        if raw_mode is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, raw_mode)
    if message:
        cli.warn(message)
    cli.exit_code = code


async def _session(ws: aiohttp.ClientWebSocketResponse, args: argparse.Namespace) -> tuple[int, str]:
    v5 = ws.protocol == PROTOCOLS[0]
    pump: asyncio.Task[None] | None = None
    if args.tty:
        size = shutil.get_terminal_size()
        await ws.send_bytes(bytes([RESIZE]) + json.dumps({"Width": size.columns, "Height": size.lines}).encode())
    if args.stdin:
        pump = asyncio.create_task(_pump_stdin(ws, v5))
    result: tuple[int, str] | None = None
    try:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                continue
            channel, payload = msg.data[0], msg.data[1:]
            if channel == STDOUT:
                sys.stdout.buffer.write(payload)
                sys.stdout.buffer.flush()
            elif channel == STDERR:
                sys.stderr.buffer.write(payload)
                sys.stderr.buffer.flush()
            elif channel == ERROR:
                try:
                    status = json.loads(payload)
                except ValueError:
                    status = {"status": "Failure", "message": payload.decode(errors="replace")}
                result = exit_code_of(status)
    finally:
        if pump is not None:
            pump.cancel()
    if result is None:
        # The stream ended without a Status: the connection dropped under the command.
        raise ApiError.make(500, "InternalError", "error: the exec stream ended without an exit status")
    return result


async def _pump_stdin(ws: aiohttp.ClientWebSocketResponse, v5: bool) -> None:
    """Forward stdin. Reads happen on a daemon thread: a blocking read of a terminal must not keep
    the process alive after the command has ended."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    fd = sys.stdin.fileno()

    def reader() -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            loop.call_soon_threadsafe(chunks.put_nowait, data)
            if not data:
                return

    threading.Thread(target=reader, name="exec-stdin", daemon=True).start()
    while True:
        data = await chunks.get()
        if not data:
            break
        await ws.send_bytes(bytes([STDIN]) + data)
    if v5:
        await ws.send_bytes(bytes([CLOSE, STDIN]))
