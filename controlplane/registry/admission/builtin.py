"""The chain members every object meets: defaulting, DefaultTolerationSeconds, validation and
NamespaceLifecycle."""

from __future__ import annotations

from apimachinery import defaults, errors, validation
from apimachinery.api.core_v1 import Pod
from apimachinery.meta import KubeObject
from apimachinery.scheme import Scheme
from controlplane.registry import strategy
from controlplane.registry.admission.attributes import CREATE, Attributes, Lookup


class Defaulting:
    """Kubernetes' defaulting functions (run at decode time there; the first mutating member here)."""

    name = "Defaulting"

    async def admit(self, attrs: Attributes, obj: KubeObject, old: KubeObject | None) -> None:
        defaults.apply_defaults(obj)


class DefaultTolerationSeconds:
    """New pods tolerate a not-ready/unreachable node for a while before they are evicted."""

    name = "DefaultTolerationSeconds"

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    async def admit(self, attrs: Attributes, obj: KubeObject, old: KubeObject | None) -> None:
        if attrs.operation == CREATE and isinstance(obj, Pod):
            defaults.default_pod_tolerations(obj, self.seconds)


class Validation:
    """The kind's validation (Kubernetes' strategy Validate/ValidateUpdate), as one cause per field.

    A status write took everything but status from the stored (already valid) object, so only
    the status is checked, as Kubernetes' status strategies do; that keeps the most frequent
    write (agents and controllers reporting status) from re-validating a whole pod spec. Binding
    is the one write that may set spec.nodeName, which a pod update may not: it is checked as a
    whole object, not as an update.
    """

    name = "Validation"

    async def admit(self, attrs: Attributes, obj: KubeObject, old: KubeObject | None) -> None:
        rt = attrs.rt
        if old is None or attrs.subresource == "binding":
            problems = validation.validate(obj, namespaced=rt.namespaced)
        elif strategy.status_only_validation(rt, attrs.subresource):
            problems = validation.validate_status(obj)
        else:
            problems = validation.validate_update(obj, old, namespaced=rt.namespaced)
        if problems:
            raise errors.invalid(rt.kind, rt.group, attrs.name, problems)


class NamespaceLifecycle:
    """Nothing is created in a namespace that does not exist or is being deleted."""

    name = "NamespaceLifecycle"

    def __init__(self, scheme: Scheme, lookup: Lookup) -> None:
        ns_rt = scheme.by_resource("", "v1", "namespaces")
        assert ns_rt is not None
        self.ns_rt = ns_rt
        self.lookup = lookup

    async def admit(self, attrs: Attributes, obj: KubeObject, old: KubeObject | None) -> None:
        if attrs.operation != CREATE or not attrs.rt.namespaced or not attrs.namespace:
            return
        ns = await self.lookup(self.ns_rt, None, attrs.namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", attrs.namespace)
        if (ns.get("metadata") or {}).get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            raise errors.forbidden(
                f"unable to create new content in namespace {attrs.namespace} because it is being terminated"
            )
