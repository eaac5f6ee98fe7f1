"""``metrics.k8s.io/v1beta1``: NodeMetrics and PodMetrics, what ``kubectl top`` reads, served the
way metrics-server serves them but without a separate server.

Each request asks the agents concerned for their ``/stats/summary`` (:mod:`nodeagent.agent.summary`)
over the same pinned, mutually authenticated channel as logs and exec
(:class:`~controlplane.apiserver.nodeproxy.NodeProxy`). As with metrics-server, a node whose agent
cannot be reached (down, slow, or a hollow node, which publishes no agent certificate) and its
pods are left out of the answer, never turned into an error; asking for one of them by name is a
404, as for an object metrics-server has no usage of.

Authorization is the usual one on the request's attributes: ``get``/``list`` of ``nodes`` or
``pods`` in the group ``metrics.k8s.io`` (the built-in view/edit/admin roles grant it, as
Kubernetes' system:aggregated-metrics-reader does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from typing import Any

import aiohttp
from aiohttp import web

from apimachinery import errors
from apimachinery.meta import now as timestamp_now
from apimachinery.scheme import Scheme
from apimachinery.selectors.labels import SelectorError, parse_label_selector
from controlplane.apiserver.nodeproxy import AgentTarget, NodeProxy
from controlplane.registry.store import Obj, Store

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
#: How long one agent may take to answer (its first answer samples CPU twice, one second apart).
AGENT_TIMEOUT = 5.0
_VERBS = ["get", "list"]
_KINDS = {"nodes": ("NodeMetrics", False), "pods": ("PodMetrics", True)}


# ------------------------------------------------------------------------------ discovery


def api_group() -> dict[str, Any]:
    """This group's entry in ``/apis`` (and the body of ``/apis/metrics.k8s.io``)."""
    gv = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"name": GROUP, "versions": [gv], "preferredVersion": gv}


def api_resource_list() -> dict[str, Any]:
    return {
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
        "resources": [{"name": plural, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": _VERBS}
                      for plural, (kind, namespaced) in _KINDS.items()],
    }


def aggregated_group() -> dict[str, Any]:
    """This group as an item of the aggregated discovery list."""
    resources = [{"resource": plural, "responseKind": {"group": GROUP, "version": VERSION, "kind": kind},
                  "scope": "Namespaced" if namespaced else "Cluster", "singularResource": "", "verbs": _VERBS}
                 for plural, (kind, namespaced) in _KINDS.items()]
    return {"metadata": {"name": GROUP, "creationTimestamp": None},
            "versions": [{"version": VERSION, "resources": resources, "freshness": "Current"}]}


# ------------------------------------------------------------------------------ formatting


def cpu_quantity(nanocores: int) -> str:
    return f"{nanocores}n"


def memory_quantity(num_bytes: int) -> str:
    return f"{num_bytes // 1024}Ki" if num_bytes % 1024 == 0 else str(num_bytes)


def window(nanoseconds: int) -> str:
    """A Go duration string, as metrics-server writes its window ("1.002s")."""
    return f"{nanoseconds / 1e9:.3f}".rstrip("0").rstrip(".") + "s"


def _usage(stats: dict[str, Any]) -> tuple[dict[str, str], int] | None:
    """(usage, window ns) of a summary entry, or None when it has no CPU rate yet."""
    cpu, memory = stats.get("cpu") or {}, stats.get("memory") or {}
    if "usageNanoCores" not in cpu or "workingSetBytes" not in memory:
        return None
    usage = {"cpu": cpu_quantity(int(cpu["usageNanoCores"])), "memory": memory_quantity(int(memory["workingSetBytes"]))}
    return usage, int(cpu.get("windowNanoSeconds") or 0)


def _metadata(obj: Obj, now: str) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {"name": meta.get("name", "")}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    out["creationTimestamp"] = now  # metrics are made when asked, as metrics-server's are
    if meta.get("labels"):
        out["labels"] = meta["labels"]
    return out


def _stamp(stats: dict[str, Any]) -> str:
    return str((stats.get("cpu") or {}).get("time") or timestamp_now())


def node_metrics(node: Obj, summary: dict[str, Any], now: str) -> dict[str, Any] | None:
    stats = summary.get("node") or {}
    usage = _usage(stats)
    if usage is None:
        return None
    return {"kind": "NodeMetrics", "apiVersion": GROUP_VERSION, "metadata": _metadata(node, now),
            "timestamp": _stamp(stats), "window": window(usage[1]), "usage": usage[0]}


def pod_metrics(pod: Obj, summary: dict[str, Any], now: str) -> dict[str, Any] | None:
    """The pod's metrics from its node's summary; None if the node reports no usage of every
    container of it (metrics-server leaves such pods out)."""
    meta = pod.get("metadata") or {}
    for entry in summary.get("pods") or []:
        ref = entry.get("podRef") or {}
        if ref.get("namespace") != meta.get("namespace") or ref.get("name") != meta.get("name"):
            continue
        if ref.get("uid") and meta.get("uid") and ref["uid"] != meta["uid"]:
            continue
        containers, windows = [], []
        for c in entry.get("containers") or []:
            usage = _usage(c)
            if usage is None:
                return None
            containers.append({"name": c.get("name", ""), "usage": usage[0]})
            windows.append(usage[1])
        if not containers:
            return None
        return {"kind": "PodMetrics", "apiVersion": GROUP_VERSION, "metadata": _metadata(pod, now),
                "timestamp": _stamp(entry), "window": window(max(windows)), "containers": containers}
    return None


# ------------------------------------------------------------------------------ serving


class MetricsApi:
    def __init__(self, store: Store, scheme: Scheme) -> None:
        self.store = store
        self.scheme = scheme

    async def _summary(self, proxy: NodeProxy | None, node: Obj) -> dict[str, Any] | None:
        """The node agent's summary, or None when it cannot be had."""
        if proxy is None:
            return None
        try:
            target: AgentTarget = proxy.node_target(node)
            timeout = aiohttp.ClientTimeout(total=AGENT_TIMEOUT)
            async with proxy.session().get(target.url("/stats/summary"), ssl=proxy.context(target.fingerprint),
                                           timeout=timeout) as resp:
                if resp.status != 200:
                    return None
                doc = json.loads(await resp.read())
                return doc if isinstance(doc, dict) else None
        except (TimeoutError, errors.ApiError, aiohttp.ClientError, ssl.SSLError, OSError, ValueError):
            return None  # metrics-server's rule: an unreachable node is left out

    async def _summaries(self, proxy: NodeProxy | None, nodes: list[Obj]) -> dict[str, dict[str, Any]]:
        answers = await asyncio.gather(*(self._summary(proxy, n) for n in nodes))
        return {(n.get("metadata") or {}).get("name", ""): a for n, a in zip(nodes, answers, strict=True) if a is not None}

    async def _list(self, plural: str, namespace: str | None, name: str | None, selector: str) -> list[Obj]:
        rt = self.scheme.by_resource("", "v1", plural)
        assert rt is not None
        if name is not None:
            with contextlib.suppress(errors.ApiError):
                return [await self.store.get(rt, namespace, name)]
            return []
        try:
            sel = parse_label_selector(selector)
        except SelectorError as e:
            raise errors.bad_request(f'unable to parse requirement: {e}') from None
        items = (await self.store.list(rt, namespace, None)).items
        return [o for o in items if sel.matches((o.get("metadata") or {}).get("labels") or {})]

    async def handle(self, request: web.Request, proxy: NodeProxy | None) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed(f"the server does not allow this method on the requested resource ({request.method})")
        parts = [p for p in request.path.split("/") if p][2:]  # after /apis/metrics.k8s.io
        if not parts:
            return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **api_group()})
        if parts[0] != VERSION:
            raise errors.ApiError.make(404, "NotFound", "the server could not find the requested resource")
        rest = parts[1:]
        if not rest:
            return web.json_response(api_resource_list())
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "pods":
            namespace, rest = rest[1], rest[2:]
        if rest[0] not in _KINDS or len(rest) > 2 or (rest[0] == "nodes" and namespace is not None):
            raise errors.ApiError.make(404, "NotFound", "the server could not find the requested resource")
        plural, name = rest[0], (rest[1] if len(rest) == 2 else None)
        selector = request.query.get("labelSelector", "")
        if plural == "nodes":
            items = await self._node_items(proxy, name, selector)
        else:
            items = await self._pod_items(proxy, namespace, name, selector)
        kind = _KINDS[plural][0]
        if name is not None:
            if not items:
                raise errors.not_found(f"{plural[:-1]}metrics", GROUP, name)
            return web.json_response(items[0])
        return web.json_response({"kind": f"{kind}List", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})

    async def _node_items(self, proxy: NodeProxy | None, name: str | None, selector: str) -> list[dict[str, Any]]:
        nodes = await self._list("nodes", None, name, selector)
        summaries = await self._summaries(proxy, nodes)
        now = timestamp_now()
        out = []
        for node in nodes:
            summary = summaries.get((node.get("metadata") or {}).get("name", ""))
            if summary is not None and (m := node_metrics(node, summary, now)) is not None:
                out.append(m)
        return out

    async def _pod_items(self, proxy: NodeProxy | None, namespace: str | None, name: str | None,
                         selector: str) -> list[dict[str, Any]]:
        pods = [p for p in await self._list("pods", namespace, name, selector)
                if (p.get("spec") or {}).get("nodeName") and (p.get("status") or {}).get("phase") == "Running"]
        wanted = {p["spec"]["nodeName"] for p in pods}
        nodes = [n for n in await self._list("nodes", None, None, "") if (n.get("metadata") or {}).get("name") in wanted]
        summaries = await self._summaries(proxy, nodes)
        now = timestamp_now()
        out = []
        for pod in pods:
            summary = summaries.get(pod["spec"]["nodeName"])
            if summary is not None and (m := pod_metrics(pod, summary, now)) is not None:
                out.append(m)
        return out

