"""``kubectl-lite wait --for=delete|condition=C[=V]|jsonpath='{...}'=V TYPE/NAME... --timeout=30s``.

Each object is watched (list+watch on its name) until the condition holds; the first object that
does not get there before the timeout fails the command like kubectl:
``error: timed out waiting for the condition on deployments/web``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from apimachinery.client.watch import watch
from apimachinery.errors import ApiError
from apimachinery.scheme import ResourceType
from kubectl_lite import jsonpath
from kubectl_lite.context import Cli
from kubectl_lite.delete import parse_duration
from kubectl_lite.printers import resource_name
from kubectl_lite.resources import CliError, parse_targets

Check = Callable[[dict[str, Any] | None], bool]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("wait", parents=parents, help="Wait for a condition on one or many resources")
    p.add_argument("targets", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    p.add_argument("--for", dest="for_", required=True, help="delete | condition=NAME[=VALUE] | jsonpath='{EXPR}'=VALUE")
    p.add_argument("--timeout", default="30s")
    p.add_argument("-l", "--selector", default=None)
    p.set_defaults(func=run)


def parse_condition(spec: str) -> tuple[Check, str]:
    """A predicate on the object (None = gone) and the word kubectl prints when it holds."""
    if spec == "delete":
        return (lambda obj: obj is None), "deleted"
    if spec.startswith("condition="):
        name, _, value = spec[len("condition="):].partition("=")
        want = value or "True"
        if not name:
            raise CliError("condition name is required")

        def has_condition(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            for cond in (obj.get("status") or {}).get("conditions") or []:
                if str(cond.get("type", "")).lower() == name.lower():
                    return str(cond.get("status", "")).lower() == want.lower()
            return False

        return has_condition, "condition met"
    if spec.startswith("jsonpath="):
        expr, sep, value = spec[len("jsonpath="):].rpartition("=")
        if not sep or not expr:
            raise CliError("jsonpath wait format must be --for=jsonpath='{.status.readyReplicas}'=3")
        expr = expr.strip("'\"")
        steps = jsonpath.parse_path(expr[1:-1] if expr.startswith("{") and expr.endswith("}") else expr)

        def jsonpath_equals(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            return any(jsonpath.text_of(v) == value for v in jsonpath.evaluate(steps, obj))

        return jsonpath_equals, "condition met"
    raise CliError(f"unrecognized condition: {spec!r}")


async def run(cli: Cli, args: argparse.Namespace) -> None:
    check, word = parse_condition(args.for_)
    timeout = parse_duration(args.timeout)
    targets: list[tuple[ResourceType, str]] = []
    for rt, names in parse_targets(cli.scheme, args.targets):
        if names:
            targets.extend((rt, n) for n in names)
        elif args.selector:
            items, _ = await cli.client.list_all(rt, cli.ns_for(rt), label_selector=args.selector)
            targets.extend((rt, str(i["metadata"]["name"])) for i in items)
        else:
            raise CliError("resource name or a label selector is required")
    if not targets:
        raise CliError("no matching resources found")
    for rt, name in targets:
        try:
            await asyncio.wait_for(_wait_one(cli, rt, name, check), timeout if timeout > 0 else None)
        except TimeoutError:
            raise CliError(f"timed out waiting for the condition on {rt.group_resource}/{name}") from None
        cli.print(f"{resource_name(rt)}/{name} {word}")


async def _wait_one(cli: Cli, rt: ResourceType, name: str, check: Check) -> None:
    ns = cli.ns_for(rt)
    while True:
        try:
            current: dict[str, Any] | None = await cli.client.get(rt, name, ns)
        except ApiError as exc:
            if exc.code != 404:
                raise
            current = None
        if check(current):
            return
        if current is None:
            # Not there yet (and we are not waiting for deletion): wait for it to appear.
            rv = None
        else:
            rv = str(current["metadata"].get("resourceVersion") or "") or None
        async for ev in watch(
            cli.client, rt, ns, resource_version=rv, field_selector=f"metadata.name={name}", timeout_seconds=60
        ):
            if ev.type in ("BOOKMARK", "ERROR"):
                if ev.type == "ERROR":
                    break  # relist and watch again
                continue
            if check(None if ev.type == "DELETED" else ev.object):
                return
