"""Which node each pod is bound to, and which Secrets, ConfigMaps and claims the pods of a node use.

The Node authorizer's graph (Kubernetes keeps a real graph; one index per node is enough here).
It is kept up to date incrementally from the watch cache's pod events, so a decision is a few
dict lookups however many pods the cluster has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from controlplane.apiserver.authz.cacheview import ChangeHook
from controlplane.registry.watchcache import CachedEvent, WatchCache

# (resource, namespace, name): something a pod needs to run.
Ref = tuple[str, str, str]


def pod_refs(pod: dict[str, Any]) -> set[Ref]:
    """The Secrets, ConfigMaps, claims and service account a pod refers to."""
    ns = str((pod.get("metadata") or {}).get("namespace") or "")
    spec = pod.get("spec") or {}
    out: set[Ref] = set()

    def add(resource: str, name: Any) -> None:
        if isinstance(name, str) and name:
            out.add((resource, ns, name))

    for vol in spec.get("volumes") or []:
        add("secrets", (vol.get("secret") or {}).get("secretName"))
        add("configmaps", (vol.get("configMap") or {}).get("name"))
        add("persistentvolumeclaims", (vol.get("persistentVolumeClaim") or {}).get("claimName"))
        for src in (vol.get("projected") or {}).get("sources") or []:
            add("secrets", (src.get("secret") or {}).get("name"))
            add("configmaps", (src.get("configMap") or {}).get("name"))
    for c in _containers(spec):
        for env in c.get("env") or []:
            source = env.get("valueFrom") or {}
            add("secrets", (source.get("secretKeyRef") or {}).get("name"))
            add("configmaps", (source.get("configMapKeyRef") or {}).get("name"))
        for env_from in c.get("envFrom") or []:
            add("secrets", (env_from.get("secretRef") or {}).get("name"))
            add("configmaps", (env_from.get("configMapRef") or {}).get("name"))
    for ref in spec.get("imagePullSecrets") or []:
        add("secrets", ref.get("name"))
    # An unset account is "default" (what admission fills in and what agents assume).
    add("serviceaccounts", spec.get("serviceAccountName") or "default")
    return out


def _containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or []


class PodRefIndex:
    def __init__(self, cache: WatchCache, pods_prefix: str) -> None:
        self._hook = ChangeHook(cache, pods_prefix, self._on_event, self._on_reset)
        self._stale = True
        # pod storage key -> (node, refs); node -> how many of its pods use each ref
        self._pods: dict[str, tuple[str, set[Ref]]] = {}
        self._uses: dict[str, Counter[Ref]] = {}

    def _on_reset(self) -> None:
        self._stale = True

    def _on_event(self, ev: CachedEvent) -> None:
        if self._stale:
            return  # rebuilt from the cache's objects on the next read anyway
        self._forget(ev.key)
        if ev.type == "PUT":
            self._add(ev.key, ev.obj)

    def _forget(self, key: str) -> None:
        old = self._pods.pop(key, None)
        if old is None:
            return
        node, refs = old
        uses = self._uses[node]
        uses.subtract(refs)
        for ref in refs:
            if uses[ref] <= 0:
                del uses[ref]
        if not uses:
            del self._uses[node]

    def _add(self, key: str, pod: dict[str, Any]) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return
        refs = pod_refs(pod)
        self._pods[key] = (node, refs)
        self._uses.setdefault(node, Counter()).update(refs)

    def _fresh(self) -> None:
        self._hook.attach()
        if not self._stale:
            return
        self._stale = False
        self._pods.clear()
        self._uses.clear()
        for key, pod in self._hook.objects().items():
            self._add(key, pod)

    def node_of(self, pod_key: str) -> str | None:
        """The node a pod (by storage key) is bound to, or None."""
        self._fresh()
        entry = self._pods.get(pod_key)
        return entry[0] if entry else None

    def node_uses(self, node: str, ref: Ref) -> bool:
        self._fresh()
        uses = self._uses.get(node)
        return bool(uses and uses[ref] > 0)
