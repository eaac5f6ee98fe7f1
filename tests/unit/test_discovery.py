"""Discovery documents (legacy and aggregated), content negotiation and /version."""

from __future__ import annotations

import re
from typing import Any

import pytest

from apimachinery.api.registry import build_scheme
from controlplane.apiserver.discovery import (
    AGGREGATED_CONTENT_TYPE,
    AGGREGATED_CONTENT_TYPE_V2BETA1,
    aggregated_discovery,
    aggregated_version,
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    storage_version_hash,
    wants_aggregated,
)
from controlplane.version import version_info

SCHEME = build_scheme()

KUBECTL_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)


def by_name(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in resources}


def test_version_has_every_field_and_a_close_minor() -> None:
    info = version_info()
    assert set(info) == {
        "major",
        "minor",
        "gitVersion",
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
        "platform",
    }
    assert all(isinstance(v, str) and v for v in info.values())
    assert info["major"] == "1"
    # kubectl 1.37 warns beyond one minor of skew.
    assert abs(int(info["minor"]) - 37) <= 1
    assert re.fullmatch(rf"v1\.{info['minor']}\.0\+[0-9A-Za-z.-]+", info["gitVersion"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["buildDate"])


def test_api_versions() -> None:
    assert api_versions("10.0.0.1:6443") == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}],
    }


def test_api_versions_takes_a_url_too() -> None:
    doc = api_versions("https://127.0.0.1:6443/")
    assert doc["serverAddressByClientCIDRs"][0]["serverAddress"] == "127.0.0.1:6443"


def test_group_list_has_named_groups_only() -> None:
    doc = api_group_list(SCHEME)
    assert doc["kind"] == "APIGroupList" and doc["apiVersion"] == "v1"
    groups = {g["name"]: g for g in doc["groups"]}
    assert set(groups) == {"apps", "coordination.k8s.io", "discovery.k8s.io", "certificates.k8s.io",
                           "rbac.authorization.k8s.io", "authorization.k8s.io", "authentication.k8s.io"}
    assert groups["apps"]["versions"] == [{"groupVersion": "apps/v1", "version": "v1"}]
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}


def test_single_group() -> None:
    doc = api_group(SCHEME, "coordination.k8s.io")
    assert doc is not None
    assert doc["kind"] == "APIGroup" and doc["name"] == "coordination.k8s.io"
    assert doc["preferredVersion"]["groupVersion"] == "coordination.k8s.io/v1"
    assert api_group(SCHEME, "batch") is None
    assert api_group(SCHEME, "") is None


def test_core_resource_list() -> None:
    doc = api_resource_list(SCHEME, "", "v1")
    assert doc is not None
    assert (doc["kind"], doc["groupVersion"]) == ("APIResourceList", "v1")
    res = by_name(doc["resources"])
    pods = res["pods"]
    assert pods["singularName"] == "pod" and pods["namespaced"] is True and pods["kind"] == "Pod"
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    assert set(pods["verbs"]) == {
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    }
    short = {name: r.get("shortNames") for name, r in res.items() if "/" not in name}
    assert short["services"] == ["svc"] and short["endpoints"] == ["ep"] and short["nodes"] == ["no"]
    assert short["events"] == ["ev"] and short["configmaps"] == ["cm"] and short["namespaces"] == ["ns"]
    assert res["nodes"]["namespaced"] is False and res["namespaces"]["namespaced"] is False
    assert "deletecollection" not in res["namespaces"]["verbs"]
    assert "categories" not in res["configmaps"]
    assert res["services"]["categories"] == ["all"]

    assert res["pods/status"] == {
        "name": "pods/status",
        "singularName": "",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ["get", "patch", "update"],
    }
    assert (res["pods/log"]["kind"], res["pods/log"]["verbs"]) == ("Pod", ["get"])
    assert (res["pods/exec"]["kind"], res["pods/exec"]["verbs"]) == ("PodExecOptions", ["create", "get"])
    assert (res["pods/binding"]["kind"], res["pods/binding"]["verbs"]) == ("Binding", ["create"])
    evict = res["pods/eviction"]
    assert (evict["group"], evict["version"], evict["kind"], evict["verbs"]) == (
        "policy",
        "v1",
        "Eviction",
        ["create"],
    )
    assert (res["namespaces/finalize"]["kind"], res["namespaces/finalize"]["verbs"]) == (
        "Namespace",
        ["update"],
    )
    assert res["nodes/status"]["namespaced"] is False


def test_apps_resource_list() -> None:
    doc = api_resource_list(SCHEME, "apps", "v1")
    assert doc is not None and doc["groupVersion"] == "apps/v1"
    res = by_name(doc["resources"])
    assert res["deployments"]["shortNames"] == ["deploy"] and res["replicasets"]["shortNames"] == ["rs"]
    assert res["deployments/scale"] == {
        "name": "deployments/scale",
        "singularName": "",
        "namespaced": True,
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    }
    assert res["replicasets/status"]["kind"] == "ReplicaSet"
    assert res["deployments"]["storageVersionHash"] == storage_version_hash("apps", "v1", "Deployment")
    assert api_resource_list(SCHEME, "apps", "v2") is None
    assert api_resource_list(SCHEME, "batch", "v1") is None


def test_storage_version_hash_matches_kubernetes() -> None:
    # Values a real cluster reports for these kinds (the hash depends only on group/version/kind).
    assert storage_version_hash("", "v1", "Pod") == "xPOwRZ+Yhw8="
    assert storage_version_hash("apps", "v1", "Deployment") == "8aSe+NMegvE="


def test_aggregated_core() -> None:
    doc = aggregated_discovery(SCHEME, core=True)
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupDiscoveryList", "apidiscovery.k8s.io/v2")
    (item,) = doc["items"]
    assert "name" not in item["metadata"]
    (v1,) = item["versions"]
    assert v1["version"] == "v1" and v1["freshness"] == "Current"
    res = {r["resource"]: r for r in v1["resources"]}
    pods = res["pods"]
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["scope"] == "Namespaced" and pods["singularResource"] == "pod"
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert set(subs) == {"status", "binding", "log", "exec", "eviction"}
    assert subs["eviction"]["responseKind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
    assert subs["exec"]["responseKind"]["kind"] == "PodExecOptions"
    assert res["nodes"]["scope"] == "Cluster" and res["namespaces"]["scope"] == "Cluster"
    assert "subresources" not in res["configmaps"]


def test_aggregated_named_groups() -> None:
    doc = aggregated_discovery(SCHEME, core=False, version="v2beta1")
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    items = {i["metadata"]["name"]: i for i in doc["items"]}
    assert set(items) == {"apps", "coordination.k8s.io", "discovery.k8s.io", "certificates.k8s.io",
                          "rbac.authorization.k8s.io", "authorization.k8s.io", "authentication.k8s.io"}
    deploy = next(r for r in items["apps"]["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["shortNames"] == ["deploy"]
    scale = next(s for s in deploy["subresources"] if s["subresource"] == "scale")
    assert scale == {
        "subresource": "scale",
        "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
        "verbs": ["get", "patch", "update"],
    }
    # every resource and subresource names its response kind (clients reject entries without one)
    for item in doc["items"]:
        for version in item["versions"]:
            for r in version["resources"]:
                assert r["responseKind"]["kind"] and r["responseKind"]["version"]
                for s in r.get("subresources", []):
                    assert s["responseKind"]["kind"]
    with pytest.raises(ValueError):
        aggregated_discovery(SCHEME, core=False, version="v1")


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (KUBECTL_ACCEPT, AGGREGATED_CONTENT_TYPE),
        (
            "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json",
            AGGREGATED_CONTENT_TYPE_V2BETA1,
        ),
        ("application/json", None),
        ("application/json, */*", None),
        ("", None),
        ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0.5,application/json", None),
        (
            "application/json;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            AGGREGATED_CONTENT_TYPE,
        ),
        ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json", None),
    ],
)
def test_wants_aggregated(accept: str, expected: str | None) -> None:
    assert wants_aggregated(accept) == expected


def test_aggregated_version_from_content_type() -> None:
    assert aggregated_version(AGGREGATED_CONTENT_TYPE) == "v2"
    assert aggregated_version(AGGREGATED_CONTENT_TYPE_V2BETA1) == "v2beta1"
    assert AGGREGATED_CONTENT_TYPE == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
