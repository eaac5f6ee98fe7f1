"""The scheme: which kinds exist, their REST resources, models, scope and subresources.

One table serves the API server (routing, discovery), the client (URL building) and the CLIs
(resolving ``deploy``, ``deployments.apps``, ``Deployment`` to one resource type).
Defaulting and validation are not stored here; they dispatch on the model type
(:mod:`apimachinery.defaults`, :mod:`apimachinery.validation`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from apimachinery import errors
from apimachinery.meta import KubeList, KubeObject
from apimachinery.validation.names import path_segment_name_errors


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    model: type[KubeObject]
    list_model: type[KubeList[Any]]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Subresources served under .../NAME/<sub>: "status", "scale", "binding", "log", "exec", "eviction".
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    # Whether spec and status are separate (status only through the status subresource, and
    # metadata.generation moves only when spec changes).
    has_status: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_resource(self) -> str:
        """``pods`` or ``deployments.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_prefix(self) -> str:
        """``/api/v1`` or ``/apis/apps/v1``."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path of a collection (namespace None = all namespaces) or one object."""
        parts = [self.api_prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    def storage_prefix(self, namespace: str | None = None) -> str:
        """``/registry/<resource>/[<namespace>/]``: where objects of this type live in etcd."""
        base = f"/registry/{self.group_resource}/"
        return f"{base}{namespace}/" if (self.namespaced and namespace) else base

    def storage_key(self, namespace: str | None, name: str) -> str:
        # Defence in depth: validation and the API paths refuse such names already, but a key
        # must never reach into another object's prefix ("a/b", "..").
        for what, value in (("namespace", namespace if self.namespaced else None), ("name", name)):
            problems = path_segment_name_errors(value) if value else []
            if problems:
                raise errors.bad_request(f"invalid {what} {value!r}: {problems[0]}")
        return f"{self.storage_prefix(namespace if self.namespaced else None)}{name}"


@dataclass
class Scheme:
    _types: list[ResourceType] = field(default_factory=list)
    _by_kind: dict[tuple[str, str], ResourceType] = field(default_factory=dict)
    _by_resource: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_model: dict[type[KubeObject], ResourceType] = field(default_factory=dict)

    def register(self, rt: ResourceType) -> None:
        self._types.append(rt)
        self._by_kind[(rt.api_version, rt.kind)] = rt
        self._by_resource[(rt.group, rt.version, rt.plural)] = rt
        self._by_model[rt.model] = rt

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self._types)

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def by_resource(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_resource.get((group, version, plural))

    def for_model(self, model: type[KubeObject]) -> ResourceType:
        return self._by_model[model]

    def group_versions(self) -> list[tuple[str, str]]:
        seen: dict[tuple[str, str], None] = {}
        for rt in self._types:
            seen[(rt.group, rt.version)] = None
        return list(seen)

    def resolve(self, name: str) -> ResourceType | None:
        """Resolve what a user types: ``po``, ``pod``, ``pods``, ``Pod``, ``deployments.apps``,
        ``deployment.v1.apps``."""
        head, _, rest = name.partition(".")
        version = ""
        group: str | None = None
        if rest:
            first, _, tail = rest.partition(".")
            if tail and first[:1] == "v" and first[1:2].isdigit():
                version, group = first, tail
            else:
                group = rest
        head_l = head.lower()
        for rt in self._types:
            if group is not None and rt.group != group:
                continue
            if version and rt.version != version:
                continue
            if head_l in (rt.plural, rt.singular, rt.kind.lower()) or head_l in rt.short_names:
                return rt
        return None

    def decode(self, data: dict[str, Any]) -> KubeObject:
        """Build the typed object for a JSON dict with apiVersion and kind."""
        rt = self.by_kind(str(data.get("apiVersion", "")), str(data.get("kind", "")))
        if rt is None:
            raise KeyError(f"no kind {data.get('kind')!r} is registered for version {data.get('apiVersion')!r}")
        return rt.model.model_validate(data)


_default: Scheme | None = None


def default_scheme() -> Scheme:
    """The scheme with every built-in kind (imported lazily so the type modules load once)."""
    global _default
    if _default is None:
        from apimachinery.api.registry import build_scheme

        _default = build_scheme()
    return _default
