"""``kubectl-lite delete``: by type and names, by file, or by label selector; waits like kubectl."""

from __future__ import annotations

import argparse
import asyncio

from apimachinery import duration
from apimachinery.errors import ApiError
from apimachinery.scheme import ResourceType
from kubectl_lite.context import Cli
from kubectl_lite.errors import format_api_error
from kubectl_lite.resources import CliError, parse_targets, read_manifests, rt_for_object


def parse_duration(text: str) -> float:
    """Go-style durations as kubectl takes them: ``30s``, ``1m30s``, ``2h``, or bare seconds."""
    try:
        return duration.parse_duration(text)
    except ValueError as e:
        raise CliError(str(e)) from None


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("delete", parents=parents, help="Delete resources by file names, stdin, resources and names, or by label selector")
    p.add_argument("targets", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    p.add_argument("-f", "--filename", action="append", default=[])
    p.add_argument("-R", "--recursive", action="store_true")
    p.add_argument("-l", "--selector", default=None)
    p.add_argument("--all", action="store_true", help="delete every object of the type in the namespace")
    p.add_argument("--wait", default="true", choices=["true", "false"], help="wait for the objects to be gone")
    p.add_argument("--timeout", default="0", help="how long to wait (0: a week, like kubectl)")
    p.add_argument("--grace-period", type=int, default=None)
    p.add_argument("--now", action="store_true", help="grace period of 1 second")
    p.add_argument("--force", action="store_true", help="with --grace-period=0: remove at once")
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument("--cascade", default="background", choices=["background", "foreground", "orphan"])
    p.set_defaults(func=run)


async def run(cli: Cli, args: argparse.Namespace) -> None:
    targets: list[tuple[ResourceType, str, str | None]] = []
    if args.filename:
        if args.targets:
            raise CliError("cannot specify both resource arguments and -f")
        for m in read_manifests(args.filename, recursive=args.recursive, verb="delete"):
            rt = rt_for_object(cli.scheme, m.obj, m.source)
            md = m.obj.get("metadata") or {}
            ns = str(md.get("namespace") or cli.namespace) if rt.namespaced else None
            targets.append((rt, str(md.get("name")), ns))
    else:
        groups = parse_targets(cli.scheme, args.targets)
        for rt, names in groups:
            ns = cli.ns_for(rt)
            if names:
                if args.selector or args.all:
                    raise CliError("name cannot be provided when a selector is specified")
                targets.extend((rt, n, ns) for n in names)
                continue
            if not args.selector and not args.all:
                raise CliError("resource(s) were provided, but no name was specified")
            items, _ = await cli.client.list_all(rt, ns, label_selector=args.selector)
            targets.extend((rt, str(i["metadata"]["name"]), ns) for i in items)
        if not targets:
            cli.warn("No resources found" if not any(rt.namespaced for rt, _ in groups)
                     else f"No resources found in {cli.namespace} namespace.")
            return

    grace = args.grace_period
    if args.now:
        grace = 1
    if args.force and grace is None:
        grace = 0
    policy = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan"}[args.cascade]
    deleted: list[tuple[ResourceType, str, str | None, str]] = []
    for rt, name, ns in targets:
        try:
            answer = await cli.client.delete(rt, name, ns, propagation_policy=policy, grace_period_seconds=grace)
        except ApiError as exc:
            if exc.code == 404 and args.ignore_not_found:
                continue
            cli.fail(format_api_error(exc))
            continue
        uid = str(((answer or {}).get("metadata") or {}).get("uid") or "") if answer.get("kind") != "Status" else ""
        # kubectl 1.33+ names the namespace: `pod "x" deleted from default namespace`.
        where = f" from {ns} namespace" if ns else ""
        cli.print(f'{_qualified(rt)} "{name}" deleted{where}')
        deleted.append((rt, name, ns, uid))

    if args.wait == "true" and deleted:
        timeout = parse_duration(args.timeout) or 7 * 24 * 3600.0
        await asyncio.wait_for(asyncio.gather(*(_wait_gone(cli, *d) for d in deleted)), timeout)


def _qualified(rt: ResourceType) -> str:
    kind = rt.kind.lower()
    return f"{kind}.{rt.group}" if rt.group else kind


async def _wait_gone(cli: Cli, rt: ResourceType, name: str, ns: str | None, uid: str) -> None:
    """Poll until the object is gone (or replaced by a new one with another uid), as kubectl does."""
    delay = 0.05
    while True:
        try:
            obj = await cli.client.get(rt, name, ns)
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        if uid and (obj.get("metadata") or {}).get("uid") != uid:
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
