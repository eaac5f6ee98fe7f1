"""``kubectl-lite top pods|nodes``: CPU and memory usage from the Metrics API (metrics.k8s.io),
printed as kubectl prints it (CPU in millicores rounded up, memory in whole Mi)."""

from __future__ import annotations

import argparse
from typing import Any

from apimachinery.quantity import milli_value, value
from kubectl_lite.context import Cli
from kubectl_lite.printers import render_table
from kubectl_lite.resources import CliError

METRICS_GROUP = "metrics.k8s.io"
METRICS_PATH = "/apis/metrics.k8s.io/v1beta1"
MI = 1024 * 1024


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("top", parents=parents, help="Display resource (CPU/memory) usage")
    p.add_argument("kind", choices=["pod", "pods", "po", "node", "nodes", "no"], metavar="pods|nodes")
    p.add_argument("name", nargs="?")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-l", "--selector", default=None)
    p.add_argument("--containers", action="store_true", help="show each container of the pods")
    p.add_argument("--no-headers", action="store_true")
    p.set_defaults(func=run)


def cpu_text(quantity: str) -> str:
    return f"{milli_value(quantity)}m"


def memory_text(quantity: str) -> str:
    return f"{value(quantity) // MI}Mi"


def _percent(used: int, total: int) -> str:
    return f"{used * 100 // total}%" if total > 0 else "<unknown>"


def pod_rows(items: list[dict[str, Any]], all_namespaces: bool, containers: bool) -> tuple[list[str], list[list[str]]]:
    headers = (["NAMESPACE"] if all_namespaces else []) + ["POD" if containers else "NAME"]
    headers += (["NAME"] if containers else []) + ["CPU(cores)", "MEMORY(bytes)"]
    rows = []
    for m in sorted(items, key=lambda m: (m["metadata"].get("namespace", ""), m["metadata"]["name"])):
        lead = ([m["metadata"].get("namespace", "")] if all_namespaces else []) + [m["metadata"]["name"]]
        usages = [(c.get("name", ""), c.get("usage") or {}) for c in m.get("containers") or []]
        if containers:
            rows += [[*lead, name, cpu_text(u.get("cpu", "0")), memory_text(u.get("memory", "0"))] for name, u in usages]
        else:
            cpu = sum(milli_value(u.get("cpu", "0")) for _, u in usages)
            mem = sum(value(u.get("memory", "0")) for _, u in usages)
            rows.append([*lead, f"{cpu}m", f"{mem // MI}Mi"])
    return headers, rows


def node_rows(items: list[dict[str, Any]], nodes: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """One row per node; a node without metrics (its agent unreachable) shows ``<unknown>``, as
    kubectl shows it."""
    usage_of = {m["metadata"]["name"]: m.get("usage") or {} for m in items}
    rows = []
    for name in sorted(set(nodes) | set(usage_of)):
        if name not in usage_of:
            rows.append([name, *["<unknown>"] * 4])
            continue
        usage = usage_of[name]
        cpu, mem = milli_value(usage.get("cpu", "0")), value(usage.get("memory", "0"))
        alloc = ((nodes.get(name) or {}).get("status") or {}).get("allocatable") or {}
        rows.append([name, f"{cpu}m", _percent(cpu, milli_value(alloc.get("cpu", "0"))),
                     f"{mem // MI}Mi", _percent(mem, value(alloc.get("memory", "0")))])
    return ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"], rows


async def _available(cli: Cli) -> None:
    # Ask discovery, as kubectl does: a server without the group gets kubectl's message.
    groups = await cli.client.request("GET", "/apis")
    if METRICS_GROUP not in {g.get("name") for g in (groups or {}).get("groups") or []}:
        raise CliError("Metrics API not available")


async def run(cli: Cli, args: argparse.Namespace) -> None:
    await _available(cli)
    params = {"labelSelector": args.selector} if args.selector else None
    if args.kind in ("node", "nodes", "no"):
        path = f"{METRICS_PATH}/nodes"
        doc = await cli.client.request("GET", f"{path}/{args.name}" if args.name else path, params=params)
        items = [doc] if args.name else list(doc.get("items") or [])
        if not items:
            raise CliError("metrics not available yet")
        if args.name:
            found = [await cli.client.request("GET", f"/api/v1/nodes/{args.name}")]
        else:
            found = list((await cli.client.request("GET", "/api/v1/nodes", params=params)).get("items") or [])
        nodes = {n["metadata"]["name"]: n for n in found}
        headers, rows = node_rows(items, nodes)
    else:
        all_ns = args.all_namespaces and not args.name
        path = f"{METRICS_PATH}/pods" if all_ns else f"{METRICS_PATH}/namespaces/{cli.namespace}/pods"
        doc = await cli.client.request("GET", f"{path}/{args.name}" if args.name else path, params=params)
        items = [doc] if args.name else list(doc.get("items") or [])
        if not items:
            cli.warn("No resources found" if all_ns else f"No resources found in {cli.namespace} namespace.")
            return
        headers, rows = pod_rows(items, all_ns, args.containers)
    cli.print(render_table(headers, rows, header=not args.no_headers).rstrip("\n"))
