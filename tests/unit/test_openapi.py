"""OpenAPI v3 documents: valid references, Kubernetes names and extensions, and what kubectl reads
from them (fieldValidation support, strategic-merge patch metadata, explain descriptions)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from apimachinery.api.registry import build_scheme
from apimachinery.scheme import default_scheme
from controlplane.apiserver.openapi import (
    PATCH_CONTENT_TYPES,
    definition_name,
    openapi_v3_document,
    openapi_v3_document_bytes,
    openapi_v3_index,
)

SCHEME = default_scheme()
GROUP_VERSIONS = SCHEME.group_versions()


def doc_for(group: str, version: str) -> dict[str, Any]:
    doc = openapi_v3_document(SCHEME, group, version)
    assert doc is not None
    return doc


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow allOf[0] and $ref the way kubectl's patch-meta lookup does."""
    if schema.get("allOf"):
        schema = schema["allOf"][0]
    ref = schema.get("$ref")
    if ref:
        schema = doc["components"]["schemas"][ref.removeprefix("#/components/schemas/")]
    return schema


def field(doc: dict[str, Any], name: str, *path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the property schema, its resolved type) at ``path`` under the definition ``name``;
    arrays step into their items."""
    schema = doc["components"]["schemas"][name]
    prop: dict[str, Any] = schema
    for key in path:
        prop = schema["properties"][key]
        schema = resolve(doc, prop["items"] if prop.get("type") == "array" else prop)
    return prop, schema


def kind_schema(doc: dict[str, Any], group: str, version: str, kind: str) -> dict[str, Any]:
    """The definition carrying this GVK, found the way kubectl explain finds it."""
    want = {"group": group, "version": version, "kind": kind}
    found = [
        s
        for s in doc["components"]["schemas"].values()
        if want in s.get("x-kubernetes-group-version-kind", [])
    ]
    assert len(found) == 1, f"{kind}: {len(found)} definitions"
    return found[0]


@pytest.mark.parametrize(("group", "version"), GROUP_VERSIONS)
def test_document_is_openapi_3_and_every_ref_resolves(group: str, version: str) -> None:
    doc = doc_for(group, version)
    assert doc["openapi"].startswith("3.0")
    assert doc["info"]["title"] == "Kubernetes"
    schemas = doc["components"]["schemas"]
    refs = [n["$ref"] for n in walk(doc) if isinstance(n.get("$ref"), str)]
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    for node in walk(doc):
        # OpenAPI 3.0 has no JSON-Schema null type, and a $ref must stand alone.
        assert node.get("type") != "null"
        assert "anyOf" not in node and "$defs" not in node
        if "$ref" in node:
            assert set(node) == {"$ref"}, node
    json.dumps(doc)  # serializable as is


def test_definitions_use_kubernetes_names() -> None:
    doc = doc_for("apps", "v1")
    names = set(doc["components"]["schemas"])
    for name in (
        "io.k8s.api.apps.v1.Deployment",
        "io.k8s.api.apps.v1.DeploymentList",
        "io.k8s.api.apps.v1.DeploymentSpec",
        "io.k8s.api.core.v1.PodTemplateSpec",
        "io.k8s.api.core.v1.Container",
        "io.k8s.api.autoscaling.v1.Scale",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
    ):
        assert name in names, name
    from apimachinery.api.discovery_v1 import EndpointPort as SlicePort

    assert definition_name(SlicePort) == "io.k8s.api.discovery.v1.EndpointPort"


@pytest.mark.parametrize("rt", list(SCHEME), ids=lambda rt: rt.group_resource)
def test_every_kind_and_list_carries_its_gvk(rt: Any) -> None:
    doc = doc_for(rt.group, rt.version)
    obj = kind_schema(doc, rt.group, rt.version, rt.kind)
    assert obj["type"] == "object"
    assert {"apiVersion", "kind", "metadata"} <= set(obj["properties"])
    lst = kind_schema(doc, rt.group, rt.version, rt.list_kind)
    items = lst["properties"]["items"]
    assert items["type"] == "array"
    assert resolve(doc, items["items"]) is obj


def patch_ops(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        if "patch" in item:
            yield path, item["patch"]


@pytest.mark.parametrize("rt", [rt for rt in SCHEME if "patch" in rt.verbs], ids=lambda rt: rt.group_resource)
def test_kubectl_sees_field_validation_support(rt: Any) -> None:
    """What kubectl's query-param verifier does: the first PATCH operation tagged with the kind's
    GVK must list fieldValidation among its own query parameters."""
    doc = doc_for(rt.group, rt.version)
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    matching = [op for _, op in patch_ops(doc) if op.get("x-kubernetes-group-version-kind") == gvk]
    assert matching, f"no PATCH operation for {gvk}"
    for op in matching:
        params = {(p["name"], p["in"]) for p in op["parameters"]}
        assert ("fieldValidation", "query") in params
        assert ("fieldManager", "query") in params and ("dryRun", "query") in params
        assert sorted(op["requestBody"]["content"]) == sorted(PATCH_CONTENT_TYPES)
        assert op["x-kubernetes-action"] == "patch"


def test_paths_and_operations_for_a_namespaced_kind() -> None:
    doc = doc_for("apps", "v1")
    paths = doc["paths"]
    base = "/apis/apps/v1/namespaces/{namespace}/deployments"
    assert set(paths[base]) >= {"get", "post", "delete", "parameters"}
    assert set(paths[f"{base}/{{name}}"]) >= {"get", "put", "patch", "delete"}
    assert set(paths[f"{base}/{{name}}/status"]) >= {"get", "put", "patch"}
    scale = paths[f"{base}/{{name}}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
    }
    assert paths["/apis/apps/v1/deployments"]["get"]["x-kubernetes-action"] == "list"
    op_ids = [op["operationId"] for item in paths.values() for k, op in item.items() if k != "parameters"]
    assert len(op_ids) == len(set(op_ids))
    assert "patchAppsV1NamespacedDeployment" in op_ids
    assert "listAppsV1DeploymentForAllNamespaces" in op_ids
    post = paths[base]["post"]
    assert {p["name"] for p in post["parameters"]} >= {"fieldValidation", "dryRun", "fieldManager"}
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    }
    names = {p["name"] for p in paths[f"{base}/{{name}}"]["parameters"]}
    assert names == {"name", "namespace", "pretty"}


def test_cluster_scoped_and_core_paths() -> None:
    paths = doc_for("", "v1")["paths"]
    assert "/api/v1/nodes/{name}" in paths and "/api/v1/namespaces/{name}" in paths
    assert "/api/v1/namespaces/{name}/finalize" in paths
    assert "delete" not in paths["/api/v1/namespaces"]  # namespaces have no deletecollection
    assert "/api/v1/pods" in paths and "/api/v1/nodes" in paths
    assert "/api/v1/namespaces/{namespace}/pods/{name}/log" in paths
    binding = paths["/api/v1/namespaces/{namespace}/pods/{name}/binding"]["post"]
    assert binding["x-kubernetes-group-version-kind"]["kind"] == "Binding"


def test_patch_strategies_reach_kubectl_lookups() -> None:
    """kubectl computes apply patches by following properties, allOf[0], $ref and items."""
    doc = doc_for("apps", "v1")
    dep = "io.k8s.api.apps.v1.Deployment"
    prop, _ = field(doc, dep, "spec", "template", "spec", "containers")
    assert prop["x-kubernetes-patch-merge-key"] == "name"
    assert prop["x-kubernetes-patch-strategy"] == "merge"
    assert prop["x-kubernetes-list-type"] == "map" and prop["x-kubernetes-list-map-keys"] == ["name"]
    prop, _ = field(doc, dep, "spec", "template", "spec", "containers", "ports")
    assert prop["x-kubernetes-patch-merge-key"] == "containerPort"
    prop, _ = field(doc, dep, "spec", "template", "spec", "volumes")
    assert prop["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    prop, strategy = field(doc, dep, "spec", "strategy")
    assert prop["x-kubernetes-patch-strategy"] == "retainKeys"
    assert set(strategy["properties"]) == {"type", "rollingUpdate"}
    prop, _ = field(doc, dep, "metadata", "finalizers")
    assert prop["x-kubernetes-list-type"] == "set"


def test_field_docs_and_types_for_explain() -> None:
    doc = doc_for("apps", "v1")
    dep = kind_schema(doc, "apps", "v1", "Deployment")
    assert dep["description"] == "Declarative updates for pods through ReplicaSets."
    prop, strategy = field(doc, "io.k8s.api.apps.v1.Deployment", "spec", "strategy")
    assert prop["description"] == "How new pods replace old ones."
    assert strategy["description"] == "How a Deployment replaces old pods with new ones."
    surge, _ = field(doc, "io.k8s.api.apps.v1.Deployment", "spec", "strategy", "rollingUpdate", "maxSurge")
    assert surge["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}
    ]
    spec = doc["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]
    assert spec["replicas"]["type"] == "integer" and spec["paused"]["type"] == "boolean"
    res = doc["components"]["schemas"]["io.k8s.api.core.v1.ResourceRequirements"]["properties"]
    assert res["limits"]["additionalProperties"] == {
        "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"
    }
    labels = doc["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"][
        "labels"
    ]
    assert labels == {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "Key/value pairs used to select objects.",
    }


def test_wire_names_are_the_json_aliases() -> None:
    core = doc_for("", "v1")["components"]["schemas"]
    pod_spec = core["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert {"hostPID", "hostIPC", "setHostnameAsFQDN", "initContainers", "nodeName"} <= set(pod_spec)
    assert "host_pid" not in pod_spec
    assert set(core["io.k8s.api.core.v1.DaemonEndpoint"]["properties"]) == {"Port"}
    assert "podIP" in core["io.k8s.api.core.v1.PodStatus"]["properties"]


def test_index_points_at_every_group_version_with_a_content_hash() -> None:
    index = openapi_v3_index(SCHEME)
    assert set(index["paths"]) == {
        "api/v1",
        "apis/apps/v1",
        "apis/coordination.k8s.io/v1",
        "apis/discovery.k8s.io/v1",
        "apis/certificates.k8s.io/v1",
        "apis/rbac.authorization.k8s.io/v1",
        "apis/authorization.k8s.io/v1",
        "apis/authentication.k8s.io/v1",
    }
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    path, _, digest = url.partition("?hash=")
    assert path == "/openapi/v3/apis/apps/v1"
    assert len(digest) == 128 and digest == digest.upper()
    hashes = {entry["serverRelativeURL"].partition("?hash=")[2] for entry in index["paths"].values()}
    assert len(hashes) == len(index["paths"])
    # A fresh scheme with the same kinds builds identical documents, so URLs stay stable across restarts.
    assert openapi_v3_index(build_scheme()) == index


def test_documents_are_cached_and_unknown_versions_are_none() -> None:
    assert openapi_v3_document(SCHEME, "apps", "v1") is openapi_v3_document(SCHEME, "apps", "v1")
    body = openapi_v3_document_bytes(SCHEME, "apps", "v1")
    assert body is not None and json.loads(body) == openapi_v3_document(SCHEME, "apps", "v1")
    assert openapi_v3_document(SCHEME, "apps", "v2") is None
    assert openapi_v3_document(SCHEME, "batch", "v1") is None
    assert openapi_v3_document_bytes(SCHEME, "batch", "v1") is None
