"""PodSecurity admission: the Pod Security Standards level of each namespace, from its labels.

``pod-security.kubernetes.io/enforce`` (with ``enforce-version``) refuses pods that violate the
level; ``warn`` (with ``warn-version``) lets them in with a ``Warning`` header; ``audit`` is
accepted and ignored (there is no audit log). A namespace without labels gets the cluster
default (``--pod-security-default``; Kubernetes' default is privileged, which checks nothing).
Workloads with a pod template (Deployments, ReplicaSets) are only warned about, against both the
enforce and the warn level, as Kubernetes does: their pods are refused when they are created.
Changing a namespace's enforce level warns about the pods already there that violate the new one
(they keep running: the level applies to new pods).
"""

from __future__ import annotations

import re

from apimachinery import errors
from apimachinery.api.apps_v1 import Deployment, ReplicaSet
from apimachinery.api.core_v1 import Namespace, Pod, PodSpec
from apimachinery.decode import decode
from apimachinery.errors import FieldError
from apimachinery.meta import KubeObject, StatusDetails
from apimachinery.scheme import Scheme
from controlplane.registry.admission.attributes import CREATE, UPDATE, Attributes, ListLookup, Lookup
from controlplane.registry.admission.podsecurity_checks import LEVELS, PRIVILEGED, describe, violations

PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
_VERSION = re.compile(r"^(latest|v1\.(0|[1-9][0-9]*))$")


def _policy(labels: dict[str, str], mode: str, default: str) -> tuple[str, str]:
    """(level, version) of one mode; an invalid level counts as restricted, as in Kubernetes."""
    level = labels.get(PREFIX + mode, default)
    version = labels.get(f"{PREFIX}{mode}-version", "latest")
    if level not in LEVELS:
        level = "restricted"
    if not _VERSION.match(version):
        version = "latest"
    return level, version


def validate_namespace_labels(ns: Namespace) -> list[FieldError]:
    labels = ns.metadata.labels or {}
    problems: list[FieldError] = []
    for mode in MODES:
        key = PREFIX + mode
        if key in labels and labels[key] not in LEVELS:
            problems.append(FieldError.invalid(
                f"metadata.labels[{key}]", labels[key], "must be one of privileged, baseline, restricted"))
        vkey = f"{key}-version"
        if vkey in labels and not _VERSION.match(labels[vkey]):
            problems.append(FieldError.invalid(
                f"metadata.labels[{vkey}]", labels[vkey], 'must be "latest" or "v1.x"'))
    return problems


def _template_spec(obj: KubeObject) -> PodSpec | None:
    if isinstance(obj, (Deployment, ReplicaSet)):
        return obj.spec.template.spec if obj.spec.template is not None else None
    return None


class PodSecurity:
    name = "PodSecurity"

    def __init__(self, scheme: Scheme, lookup: Lookup, default_level: str = PRIVILEGED,
                 list_lookup: ListLookup | None = None) -> None:
        ns_rt, pod_rt = scheme.by_resource("", "v1", "namespaces"), scheme.by_resource("", "v1", "pods")
        assert ns_rt is not None and pod_rt is not None
        self.ns_rt, self.pod_rt = ns_rt, pod_rt
        self.lookup = lookup
        self.list_lookup = list_lookup
        self.default_level = default_level

    async def admit(self, attrs: Attributes, obj: KubeObject, old: KubeObject | None) -> None:
        if isinstance(obj, Namespace):
            problems = validate_namespace_labels(obj)
            if problems:
                raise errors.invalid("Namespace", "", attrs.name, problems)
            if attrs.operation == UPDATE and isinstance(old, Namespace) and not attrs.subresource:
                self._warn_existing_pods(attrs, obj, old)
            return
        if attrs.subresource:
            return  # status, binding, scale and the like never change what a pod may do
        if isinstance(obj, Pod):
            spec: PodSpec | None = obj.spec
            if attrs.operation != CREATE and old is not None and isinstance(old, Pod) and old.spec == obj.spec:
                return  # metadata-only updates (labels, finalizers) are not re-judged
        else:
            spec = _template_spec(obj)
            old_spec = _template_spec(old) if old is not None else None
            if spec is None or (old_spec is not None and old_spec == spec):
                return
        if spec is None:
            return
        labels = await self._namespace_labels(attrs.namespace)
        enforce = _policy(labels, "enforce", self.default_level)
        warn = _policy(labels, "warn", self.default_level)
        if isinstance(obj, Pod):
            found = violations(enforce[0], spec)
            if found:
                raise errors.ApiError.make(
                    403, "Forbidden",
                    f'pods "{attrs.name}" is forbidden: violates PodSecurity "{enforce[0]}:{enforce[1]}": {describe(found)}',
                    details=StatusDetails(name=attrs.name or None, kind="pods"),
                )
            # Checks do not differ by version: a level the pod just met cannot warn.
            policies = [] if warn[0] == enforce[0] else [warn]
        else:
            policies = [enforce] if enforce == warn else [enforce, warn]
        for level, version in policies:
            found = violations(level, spec)
            if found:
                attrs.warn(f'would violate PodSecurity "{level}:{version}": {describe(found)}')

    def _warn_existing_pods(self, attrs: Attributes, new: Namespace, old: Namespace) -> None:
        """A new enforce level: name the pods already in the namespace that violate it, grouped
        by their reasons, in Kubernetes' words."""
        level, version = _policy(new.metadata.labels or {}, "enforce", self.default_level)
        if self.list_lookup is None or level == PRIVILEGED or \
                (level, version) == _policy(old.metadata.labels or {}, "enforce", self.default_level):
            return
        # reasons -> (alphabetically first pod name, how many pods)
        grouped: dict[str, tuple[str, int]] = {}
        for item in self.list_lookup(self.pod_rt, attrs.name):
            if (item.get("metadata") or {}).get("deletionTimestamp"):
                continue
            spec, _ = decode(PodSpec, item.get("spec") or {})
            found = violations(level, spec) if spec is not None else []
            if not found:
                continue
            reasons = ", ".join(reason for reason, _ in found)
            name = str(item["metadata"].get("name") or "")
            first, count = grouped.get(reasons, (name, 0))
            grouped[reasons] = (min(first, name), count + 1)
        if not grouped:
            return
        attrs.warn(f'existing pods in namespace "{attrs.name}" violate the new PodSecurity enforce level "{level}:{version}"')
        lines = []
        for reasons, (first, count) in grouped.items():
            others = "" if count == 1 else " (and 1 other pod)" if count == 2 else f" (and {count - 1} other pods)"
            lines.append(f"{first}{others}: {reasons}")
        for line in sorted(lines):
            attrs.warn(line)

    async def _namespace_labels(self, namespace: str) -> dict[str, str]:
        ns = await self.lookup(self.ns_rt, None, namespace) if namespace else None
        labels = ((ns or {}).get("metadata") or {}).get("labels") or {}
        return {str(k): str(v) for k, v in labels.items()}
