"""``kubectl-lite api-resources`` (from the scheme) and ``kubectl-lite version``."""

from __future__ import annotations

import argparse
import json
from importlib.metadata import PackageNotFoundError, version

from apimachinery.client.rest import ApiConnectionError
from apimachinery.errors import ApiError
from kubectl_lite.context import Cli
from kubectl_lite.printers import render_table


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("api-resources", parents=parents, help="Print the supported API resources")
    p.add_argument("-o", "--output", choices=["wide", "name"], default=None)
    p.add_argument("--namespaced", choices=["true", "false"], default=None)
    p.set_defaults(func=run_api_resources)
    p = sub.add_parser("version", parents=parents, help="Print the client and server version information")
    p.add_argument("--client", action="store_true", help="client version only")
    p.add_argument("-o", "--output", choices=["json", "yaml"], default=None)
    p.set_defaults(func=run_version)
    p = sub.add_parser("cluster-info", parents=parents, help="Show where the control plane runs")
    p.set_defaults(func=run_cluster_info)


def client_version() -> str:
    try:
        return "v" + version("kube-lite")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "v0.0.0-dev"


async def run_api_resources(cli: Cli, args: argparse.Namespace) -> None:
    rows = []
    for rt in sorted(cli.scheme, key=lambda r: (r.group, r.plural)):
        if args.namespaced is not None and rt.namespaced != (args.namespaced == "true"):
            continue
        if args.output == "name":
            rows.append([rt.group_resource])
            continue
        row = [rt.plural, ",".join(rt.short_names), rt.api_version, "true" if rt.namespaced else "false", rt.kind]
        if args.output == "wide":
            row += [",".join(sorted(rt.verbs)), ",".join(rt.categories)]
        rows.append(row)
    if args.output == "name":
        for r in rows:
            cli.print(r[0])
        return
    headers = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    if args.output == "wide":
        headers += ["VERBS", "CATEGORIES"]
    cli.print(render_table(headers, rows))


async def run_version(cli: Cli, args: argparse.Namespace) -> None:
    info: dict[str, object] = {"clientVersion": {"gitVersion": client_version()}}
    if not args.client:
        try:
            info["serverVersion"] = await cli.client.request("GET", "/version")
        except (ApiError, ApiConnectionError):
            if args.output:
                raise
            cli.print(f"Client Version: {client_version()}")
            raise
    if args.output == "json":
        cli.print(json.dumps(info, indent=2))
        return
    if args.output == "yaml":
        from kubectl_lite.printers import to_yaml

        cli.out.write(to_yaml(info))
        return
    cli.print(f"Client Version: {client_version()}")
    server = info.get("serverVersion")
    if isinstance(server, dict):
        cli.print(f"Server Version: {server.get('gitVersion', '')}")


async def run_cluster_info(cli: Cli, args: argparse.Namespace) -> None:
    """Checks the server answers (``/version``) before saying it runs, like kubectl."""
    await cli.client.request("GET", "/version")
    cli.print(f"Kubernetes control plane is running at {cli.client.config.server}")
    cli.print()
    cli.print("To further debug and diagnose cluster problems, use 'kubectl-lite get events -A'.")
