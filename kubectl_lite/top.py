"""``kubectl-lite top pods|nodes``: resource usage needs the Metrics API (metrics.k8s.io), which
kube-lite does not serve yet; like kubectl without a metrics server, say so and exit 1."""

from __future__ import annotations

import argparse

from kubectl_lite.context import Cli
from kubectl_lite.resources import CliError

METRICS_GROUP = "metrics.k8s.io"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("top", parents=parents, help="Display resource (CPU/memory) usage")
    p.add_argument("kind", choices=["pod", "pods", "po", "node", "nodes", "no"], metavar="pods|nodes")
    p.add_argument("name", nargs="?")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-l", "--selector", default=None)
    p.set_defaults(func=run)


async def run(cli: Cli, args: argparse.Namespace) -> None:
    # Ask discovery, as kubectl does, so the answer stays right once a metrics server exists.
    groups = await cli.client.request("GET", "/apis")
    names = {g.get("name") for g in (groups or {}).get("groups") or []}
    if METRICS_GROUP not in names:
        raise CliError("Metrics API not available")
    raise CliError("kubectl-lite cannot show metrics yet")
