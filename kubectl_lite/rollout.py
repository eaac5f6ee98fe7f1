"""``kubectl-lite rollout status|restart|history|undo|pause|resume`` for Deployments, with kubectl's
messages (history, undo, pause and resume live in :mod:`kubectl_lite.history`)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from apimachinery.client.watch import watch
from apimachinery.errors import ApiError
from apimachinery.scheme import ResourceType
from kubectl_lite import history
from kubectl_lite.context import Cli
from kubectl_lite.delete import parse_duration
from kubectl_lite.errors import format_api_error
from kubectl_lite.printers import resource_name
from kubectl_lite.resources import CliError, parse_targets

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("rollout", parents=parents, help="Manage the rollout of a deployment")
    p.add_argument("action", choices=["status", "restart", "history", "undo", "pause", "resume"])
    p.add_argument("targets", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("--timeout", default="0", help="status: give up after this long (0: never)")
    p.add_argument("-w", "--watch", default="true", choices=["true", "false"], help="status: keep watching")
    p.add_argument("--revision", type=int, default=0, help="history: show this revision's pod template")
    p.add_argument("--to-revision", type=int, default=0, help="undo: roll back to this revision (0: the previous)")
    p.add_argument("--dry-run", choices=["none", "server"], default="none", help="undo: only ask the server")
    p.set_defaults(func=run)


class RolloutFailed(Exception):
    pass


def deployment_status(d: dict[str, Any]) -> tuple[str, bool]:
    """kubectl's rollout status message for a Deployment and whether the rollout is done.

    Raises RolloutFailed when the Progressing condition says the deadline was exceeded."""
    name = (d.get("metadata") or {}).get("name", "")
    spec = d.get("spec") or {}
    status = d.get("status") or {}
    generation = int((d.get("metadata") or {}).get("generation") or 0)
    if generation > int(status.get("observedGeneration") or 0):
        return "Waiting for deployment spec update to be observed...", False
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            raise RolloutFailed(f'deployment "{name}" exceeded its progress deadline')
    replicas = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < replicas:
        return f"{waiting}{updated} out of {replicas} new replicas have been updated...", False
    if total > updated:
        return f"{waiting}{total - updated} old replicas are pending termination...", False
    if available < updated:
        return f"{waiting}{available} of {updated} updated replicas are available...", False
    return f'deployment "{name}" successfully rolled out', True


async def run(cli: Cli, args: argparse.Namespace) -> None:
    for rt, names in parse_targets(cli.scheme, args.targets):
        if rt.kind != "Deployment":
            raise CliError(f"no {args.action} implemented for {rt.group_resource}")
        if not names:
            raise CliError("resource(s) were provided, but no name was specified")
        for name in names:
            if args.action == "restart":
                await _restart(cli, rt, name)
            elif args.action == "history":
                await history.history(cli, rt, name, args.revision)
            elif args.action == "undo":
                await history.undo(cli, rt, name, args.to_revision, args.dry_run == "server")
            elif args.action in ("pause", "resume"):
                await history.set_paused(cli, rt, name, args.action == "pause")
            else:
                timeout = parse_duration(args.timeout)
                try:
                    await asyncio.wait_for(_status(cli, rt, name, args.watch == "true"), timeout or None)
                except TimeoutError:
                    raise CliError("timed out waiting for the condition") from None


async def _restart(cli: Cli, rt: ResourceType, name: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    try:
        await cli.client.patch(rt, name, patch, patch_type="strategic", namespace=cli.ns_for(rt))
    except ApiError as exc:
        cli.fail(format_api_error(exc))
        return
    cli.print(f"{resource_name(rt)}/{name} restarted")


async def _status(cli: Cli, rt: ResourceType, name: str, keep_watching: bool) -> None:
    ns = cli.ns_for(rt)
    last = ""
    while True:
        current = await cli.client.get(rt, name, ns)
        try:
            message, done = deployment_status(current)
        except RolloutFailed as exc:
            raise CliError(str(exc)) from None
        if message != last:
            cli.print(message)
            last = message
        if done or not keep_watching:
            return
        rv = str(current["metadata"].get("resourceVersion") or "")
        async for ev in watch(cli.client, rt, ns, resource_version=rv, field_selector=f"metadata.name={name}",
                              timeout_seconds=300):
            if ev.type == "DELETED":
                raise CliError(f'deployment "{name}" was deleted')
            if ev.type != "MODIFIED" and ev.type != "ADDED":
                if ev.type == "ERROR":
                    break
                continue
            try:
                message, done = deployment_status(ev.object)
            except RolloutFailed as exc:
                raise CliError(str(exc)) from None
            if message != last:
                cli.print(message)
                last = message
            if done:
                return
