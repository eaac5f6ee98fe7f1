"""Owner references: which controller owns an object, and mapping events to the owner's key."""

from __future__ import annotations

from collections.abc import Callable

from apimachinery.meta import KubeObject, OwnerReference


def controller_ref(obj: KubeObject) -> OwnerReference | None:
    """The ownerReference with ``controller: true``, if any (at most one is allowed)."""
    for ref in obj.metadata.owner_references or []:
        if ref.controller:
            return ref
    return None


def owner_key_mapper(owner_kind: str, owner_api_version: str | None = None) -> Callable[[KubeObject], list[str]]:
    """Map a dependent (e.g. a Pod) to the key of its controlling owner of one kind.

    Owners live in the dependent's namespace (cross-namespace ownership is not allowed), so the
    key is ``namespace/ownerName``.
    """

    def keys(obj: KubeObject) -> list[str]:
        ref = controller_ref(obj)
        if ref is None or ref.kind != owner_kind:
            return []
        if owner_api_version and ref.api_version.split("/")[0] != owner_api_version.split("/")[0]:
            return []
        ns = obj.metadata.namespace
        return [f"{ns}/{ref.name}" if ns else ref.name]

    return keys
