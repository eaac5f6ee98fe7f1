"""The RBAC authorizer: Roles, ClusterRoles and their bindings, followed in the watch cache.

Objects are never read from etcd per request: the four RBAC resources are watched through
:class:`ChangeHook`, any change marks the index stale, and the next decision rebuilds it (RBAC
objects change rarely and are few, requests are many). RBAC only ever allows; what it does not
allow it leaves to the next authorizer (in practice: forbidden).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from apimachinery.scheme import Scheme
from controlplane.apiserver.authn import UserInfo
from controlplane.apiserver.authz.attributes import Attributes
from controlplane.apiserver.authz.cacheview import ChangeHook
from controlplane.apiserver.authz.decision import ALLOW, NO_OPINION, Decision
from controlplane.apiserver.authz.rules import Rule, rule_allows, subject_matches
from controlplane.registry.watchcache import CachedEvent, WatchCache

GROUP = "rbac.authorization.k8s.io"


@dataclass
class _Binding:
    subjects: list[dict[str, Any]]
    role_kind: str
    role_name: str
    namespace: str  # "" for ClusterRoleBindings


@dataclass
class _Index:
    cluster_roles: dict[str, list[Rule]] = field(default_factory=dict)
    roles: dict[tuple[str, str], list[Rule]] = field(default_factory=dict)
    cluster_bindings: list[_Binding] = field(default_factory=list)
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)


def _binding(obj: dict[str, Any]) -> _Binding:
    ref = obj.get("roleRef") or {}
    return _Binding(list(obj.get("subjects") or []), str(ref.get("kind", "")), str(ref.get("name", "")),
                    str((obj.get("metadata") or {}).get("namespace") or ""))


class RbacAuthorizer:
    def __init__(self, cache: WatchCache, scheme: Scheme) -> None:
        self._stale = True
        self._index = _Index()
        self._hooks: dict[str, ChangeHook] = {}
        for plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings"):
            rt = scheme.by_resource(GROUP, "v1", plural)
            assert rt is not None, plural
            self._hooks[plural] = ChangeHook(cache, rt.storage_prefix(), self._changed, self._reset)

    def _changed(self, ev: CachedEvent) -> None:
        self._stale = True

    def _reset(self) -> None:
        self._stale = True

    def _current(self) -> _Index:
        for hook in self._hooks.values():
            hook.attach()
        if not self._stale:
            return self._index
        self._stale = False
        idx = _Index()
        for obj in self._hooks["clusterroles"].objects().values():
            idx.cluster_roles[obj["metadata"]["name"]] = list(obj.get("rules") or [])
        for obj in self._hooks["roles"].objects().values():
            md = obj["metadata"]
            idx.roles[(md.get("namespace", ""), md["name"])] = list(obj.get("rules") or [])
        idx.cluster_bindings = [_binding(o) for o in self._hooks["clusterrolebindings"].objects().values()]
        for obj in self._hooks["rolebindings"].objects().values():
            b = _binding(obj)
            idx.bindings.setdefault(b.namespace, []).append(b)
        self._index = idx
        return idx

    def _rules(self, user: UserInfo, namespace: str) -> Iterator[Rule]:
        """Every rule granted to ``user`` at the cluster scope, then in ``namespace``."""
        idx = self._current()
        scopes = [idx.cluster_bindings, idx.bindings.get(namespace, []) if namespace else []]
        for bindings in scopes:
            for b in bindings:
                if not any(subject_matches(s, user.name, user.groups, b.namespace) for s in b.subjects):
                    continue
                if b.role_kind == "ClusterRole":
                    yield from idx.cluster_roles.get(b.role_name, [])
                elif b.role_kind == "Role" and b.namespace:
                    yield from idx.roles.get((b.namespace, b.role_name), [])

    def authorize(self, attrs: Attributes) -> Decision:
        namespace = attrs.namespace if attrs.resource_request else ""
        for rule in self._rules(attrs.user, namespace):
            if rule_allows(rule, attrs):
                return ALLOW
        return NO_OPINION

    def role_rules(self, kind: str, namespace: str, name: str) -> list[Rule] | None:
        """The rules of a Role (in ``namespace``) or ClusterRole; None when it does not exist."""
        idx = self._current()
        if kind == "ClusterRole":
            return idx.cluster_roles.get(name)
        return idx.roles.get((namespace, name)) if kind == "Role" else None

    def rules_for(self, user: UserInfo, namespace: str) -> list[Rule]:
        """What ``user`` may do in ``namespace`` (SelfSubjectRulesReview), duplicates removed."""
        out: list[Rule] = []
        for rule in self._rules(user, namespace):
            if rule not in out:
                out.append(rule)
        return out
