"""Does a PolicyRule cover a request? (Kubernetes' RBAC rule matching, on wire-format dicts.)"""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.authz.attributes import Attributes

Rule = dict[str, Any]


def _has(values: list[str] | None, wanted: str) -> bool:
    return bool(values) and ("*" in values or wanted in values)  # type: ignore[operator]


def _resource_matches(resources: list[str] | None, attrs: Attributes) -> bool:
    if not resources:
        return False
    full = attrs.full_resource
    for r in resources:
        if r in ("*", full):
            return True
        # "*/scale" covers every resource's scale subresource; "pods/*" every pods subresource.
        if attrs.subresource and (r == f"*/{attrs.subresource}" or r == f"{attrs.resource}/*"):
            return True
    return False


def _url_matches(urls: list[str] | None, path: str) -> bool:
    for u in urls or []:
        if u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1])):
            return True
    return False


def rule_allows(rule: Rule, attrs: Attributes) -> bool:
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule.get("nonResourceURLs"), attrs.path)
    if not _has(rule.get("apiGroups"), attrs.api_group) or not _resource_matches(rule.get("resources"), attrs):
        return False
    names = rule.get("resourceNames")
    return not names or attrs.name in names


def subject_matches(subject: dict[str, Any], user_name: str, groups: tuple[str, ...], binding_namespace: str) -> bool:
    kind = subject.get("kind")
    name = subject.get("name", "")
    if kind == "User":
        return bool(name == user_name)
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return user_name == f"system:serviceaccount:{ns}:{name}"
    return False
