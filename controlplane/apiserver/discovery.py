"""Discovery documents: how clients learn which groups, versions and resources the server has.

Two formats exist, and clients pick one through the Accept header:

* the legacy one (``/api`` -> APIVersions, ``/apis`` -> APIGroupList, ``/apis/<group>`` ->
  APIGroup, ``/api/v1`` and ``/apis/<group>/<version>`` -> APIResourceList), which the Python
  client's DynamicClient reads, and
* the aggregated one (``apidiscovery.k8s.io`` APIGroupDiscoveryList), which kubectl asks for first
  and which describes every resource of every group in one answer. kubectl only reads it when the
  *response* Content-Type carries the ``g``/``v``/``as`` parameters, see :func:`wants_aggregated`.

Everything here is a pure function of the scheme, so handlers can cache the results.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from apimachinery.scheme import ResourceType, Scheme

AGGREGATED_GROUP = "apidiscovery.k8s.io"
AGGREGATED_KIND = "APIGroupDiscoveryList"
AGGREGATED_VERSIONS = ("v2", "v2beta1")
AGGREGATED_CONTENT_TYPE = f"application/json;g={AGGREGATED_GROUP};v=v2;as={AGGREGATED_KIND}"
AGGREGATED_CONTENT_TYPE_V2BETA1 = f"application/json;g={AGGREGATED_GROUP};v=v2beta1;as={AGGREGATED_KIND}"

_STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    """How one subresource appears in discovery: the kind it answers with, and its verbs."""

    kind: str  # "" means the parent's kind
    verbs: tuple[str, ...]
    group: str | None = None  # None means the parent's group and version
    version: str | None = None


# The subresources the scheme can name, described as Kubernetes describes them.
SUBRESOURCES: dict[str, Subresource] = {
    "status": Subresource("", _STATUS_VERBS),
    "scale": Subresource("Scale", _STATUS_VERBS, "autoscaling", "v1"),
    "binding": Subresource("Binding", ("create",)),
    "log": Subresource("Pod", ("get",)),
    "exec": Subresource("PodExecOptions", ("create", "get")),
    "eviction": Subresource("Eviction", ("create",), "policy", "v1"),
    "finalize": Subresource("", ("update",)),
    "token": Subresource("TokenRequest", ("create",), "authentication.k8s.io", "v1"),
}


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """Kubernetes' storageVersionHash: base64 of the first 8 bytes of sha256("group/version/kind")."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _group_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _group_versions(scheme: Scheme, group: str) -> list[str]:
    """The versions served for ``group``, preferred first (registration order)."""
    return [v for g, v in scheme.group_versions() if g == group]


def _named_groups(scheme: Scheme) -> list[str]:
    seen: dict[str, None] = {}
    for g, _ in scheme.group_versions():
        if g:
            seen[g] = None
    return list(seen)


def _resources(scheme: Scheme, group: str, version: str) -> list[ResourceType]:
    return [rt for rt in scheme if rt.group == group and rt.version == version]


def _subresource(name: str) -> Subresource:
    # An unknown subresource still gets a sensible entry rather than breaking discovery.
    return SUBRESOURCES.get(name, Subresource("", ("get",)))


# ---------------------------------------------------------------------------------------------
# Legacy format


def api_versions(server_address: str) -> dict[str, Any]:
    """``GET /api``: the core group's versions, and the address clients should use.

    ``server_address`` is ``host:port``; a URL (``https://host:port``) is accepted and reduced to
    that, which is the form real servers send."""
    server_address = server_address.partition("://")[2] or server_address
    server_address = server_address.rstrip("/")
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _api_group(scheme: Scheme, group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in _group_versions(scheme, group)]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group_list(scheme: Scheme) -> dict[str, Any]:
    """``GET /apis``: every named (non-core) group with its versions."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_api_group(scheme, g) for g in _named_groups(scheme)],
    }


def api_group(scheme: Scheme, group: str) -> dict[str, Any] | None:
    """``GET /apis/<group>``, or None when the group does not exist."""
    if not group or group not in _named_groups(scheme):
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(scheme, group)}


def _api_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    entry["storageVersionHash"] = storage_version_hash(rt.group, rt.version, rt.kind)
    return entry


def _api_subresource(rt: ResourceType, name: str) -> dict[str, Any]:
    sub = _subresource(name)
    # Subresources carry an empty singularName on real servers (the field is not omitempty).
    entry: dict[str, Any] = {"name": f"{rt.plural}/{name}", "singularName": "", "namespaced": rt.namespaced}
    if sub.group is not None:
        entry["group"] = sub.group
        entry["version"] = sub.version
    entry["kind"] = sub.kind or rt.kind
    entry["verbs"] = list(sub.verbs)
    return entry


def api_resource_list(scheme: Scheme, group: str, version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` or ``GET /apis/<group>/<version>``, or None when the version does not exist."""
    rts = _resources(scheme, group, version)
    if not rts:
        return None
    resources: list[dict[str, Any]] = []
    for rt in rts:
        resources.append(_api_resource(rt))
        resources.extend(_api_subresource(rt, sub) for sub in rt.subresources)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": _group_version(group, version),
        "resources": resources,
    }


# ---------------------------------------------------------------------------------------------
# Aggregated format


def _response_kind(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def _discovery_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": _response_kind(rt.group, rt.version, rt.kind),
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = []
    for name in rt.subresources:
        sub = _subresource(name)
        group = rt.group if sub.group is None else sub.group
        version = rt.version if sub.version is None else str(sub.version)
        subs.append(
            {
                "subresource": name,
                "responseKind": _response_kind(group, version, sub.kind or rt.kind),
                "verbs": list(sub.verbs),
            }
        )
    if subs:
        entry["subresources"] = subs
    return entry


def _discovery_group(scheme: Scheme, group: str) -> dict[str, Any]:
    # Go's ObjectMeta serializes a zero creationTimestamp as null; real servers send exactly that.
    metadata: dict[str, Any] = (
        {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None}
    )
    versions = [
        {
            "version": v,
            "resources": [_discovery_resource(rt) for rt in _resources(scheme, group, v)],
            "freshness": "Current",
        }
        for v in _group_versions(scheme, group)
    ]
    return {"metadata": metadata, "versions": versions}


def aggregated_discovery(scheme: Scheme, core: bool, version: str = "v2") -> dict[str, Any]:
    """The APIGroupDiscoveryList for ``/api`` (``core=True``: one item, the unnamed core group) or
    ``/apis`` (every named group). ``version`` is the apidiscovery version negotiated by
    :func:`wants_aggregated` (``v2`` or ``v2beta1``, which share this shape)."""
    if version not in AGGREGATED_VERSIONS:
        raise ValueError(f"unsupported aggregated discovery version {version!r}")
    groups = [""] if core else _named_groups(scheme)
    return {
        "kind": AGGREGATED_KIND,
        "apiVersion": f"{AGGREGATED_GROUP}/{version}",
        "metadata": {},
        "items": [_discovery_group(scheme, g) for g in groups],
    }


# ---------------------------------------------------------------------------------------------
# Content negotiation


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header: ``type/subtype;param=value;...;q=0.9``."""

    media_type: str
    params: dict[str, str]
    quality: float


def media_ranges(accept_header: str) -> list[MediaRange]:
    """Parse an Accept header, best first (by q, then by the client's order)."""
    ranges: list[tuple[float, int, MediaRange]] = []
    for index, part in enumerate(accept_header.split(",")):
        media_type, *raw_params = (p.strip() for p in part.split(";"))
        if not media_type:
            continue
        params: dict[str, str] = {}
        for raw in raw_params:
            key, _, value = raw.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0:
            ranges.append((-quality, index, MediaRange(media_type.lower(), params, quality)))
    return [r for _, _, r in sorted(ranges, key=lambda t: (t[0], t[1]))]


def _serves_json(media_type: str) -> bool:
    return media_type in ("application/json", "application/*", "*/*")


def wants_aggregated(accept_header: str) -> str | None:
    """The Content-Type to answer ``/api`` or ``/apis`` with when the client prefers the aggregated
    format (pass its version to :func:`aggregated_discovery`), or None for the legacy format.

    The client's preferences are honoured in order: a plain ``application/json`` listed before the
    aggregated type means legacy. Protobuf ranges are skipped (only JSON is served)."""
    for mr in media_ranges(accept_header):
        if not _serves_json(mr.media_type):
            continue
        if not mr.params.get("as") and not mr.params.get("g"):
            return None
        if (
            mr.params.get("g") == AGGREGATED_GROUP
            and mr.params.get("as") == AGGREGATED_KIND
            and mr.params.get("v") in AGGREGATED_VERSIONS
        ):
            return f"application/json;g={AGGREGATED_GROUP};v={mr.params['v']};as={AGGREGATED_KIND}"
    return None


def aggregated_version(content_type: str) -> str:
    """The apidiscovery version named by a Content-Type from :func:`wants_aggregated`."""
    for part in content_type.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "v":
            return value
    return "v2"
