"""``kubectl-lite logs POD [-c C] [-f] [--previous] [--tail N] [--since 5m] [--timestamps]``.

The log is streamed as-is (bytes, text/plain) from ``pods/NAME/log``; with ``-f`` the server
keeps the stream open until the container ends or the user interrupts.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, BinaryIO

from kubectl_lite.context import Cli
from kubectl_lite.delete import parse_duration
from kubectl_lite.resources import CliError, resolve_type

DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("logs", parents=parents, help="Print the logs for a container in a pod")
    p.add_argument("pod", metavar="POD | pod/NAME")
    p.add_argument("-c", "--container", default=None)
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-p", "--previous", action="store_true")
    p.add_argument("--tail", type=int, default=-1)
    p.add_argument("--since", default=None, help="only newer than a relative duration like 5s, 2m, 3h")
    p.add_argument("--since-time", default=None, help="only after this RFC 3339 time")
    p.add_argument("--timestamps", action="store_true")
    p.add_argument("--limit-bytes", type=int, default=None)
    p.set_defaults(func=run)


def pod_name(cli: Cli, arg: str) -> str:
    kind, sep, name = arg.partition("/")
    if not sep:
        return arg
    rt = resolve_type(cli.scheme, kind)
    if rt.kind != "Pod":
        raise CliError(f"cannot get logs from {rt.group_resource}: name a pod (pod/NAME)")
    return name


def pick_container(pod: dict[str, Any], wanted: str | None, cli: Cli) -> str | None:
    """The container to use: the one named, else the pod's default one (kubectl's rule)."""
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    if wanted or len(names) <= 1:
        return wanted
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CONTAINER) or names[0]
    cli.warn(f'Defaulted container "{default}" out of: {", ".join(str(n) for n in names)}')
    return str(default)


def log_params(args: argparse.Namespace, container: str | None) -> dict[str, Any]:
    return {
        "container": container,
        "follow": True if args.follow else None,
        "previous": True if args.previous else None,
        "tailLines": args.tail if args.tail >= 0 else None,
        "sinceSeconds": int(parse_duration(args.since)) if args.since else None,
        "sinceTime": args.since_time,
        "timestamps": True if args.timestamps else None,
        "limitBytes": args.limit_bytes,
    }


async def run(cli: Cli, args: argparse.Namespace, out: BinaryIO | None = None) -> None:
    pods = resolve_type(cli.scheme, "pods")
    name = pod_name(cli, args.pod)
    pod = await cli.client.get(pods, name, cli.namespace)
    container = pick_container(pod, args.container, cli)
    sink = out or sys.stdout.buffer
    path = pods.path(cli.namespace, name, "log")
    async with cli.client.open("GET", path, params=log_params(args, container), accept="*/*") as resp:
        async for chunk in resp.content.iter_any():
            sink.write(chunk)
            sink.flush()
