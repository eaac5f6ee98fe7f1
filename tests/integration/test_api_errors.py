"""Refusals are Kubernetes Status objects with the right code, reason and causes, and a refused
request stores nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_asyncio

from tests.fixtures.apiserver import RawApi

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def api(api_bare: RawApi) -> RawApi:
    """These tests are about the API server alone: no controller may touch their objects."""
    return api_bare


def bad_deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "y"}},
                "spec": {"containers": [
                    {"name": "web", "ports": [{"containerPort": 70000}]},
                    {"name": "web", "image": "busybox", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}},
                ]},
            },
        },
    }


async def test_401_without_or_with_wrong_token(api: RawApi, namespace: str) -> None:
    r = await api.get(f"/api/v1/namespaces/{namespace}/pods", auth=False)
    assert r.status == 401
    assert r.body["kind"] == "Status" and r.body["reason"] == "Unauthorized" and r.body["code"] == 401
    r = await api.get(f"/api/v1/namespaces/{namespace}/pods", auth=False, headers={"Authorization": "Bearer nope"})
    assert r.status == 401
    # Health and version are public, as on Kubernetes.
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert (await api.get(path, auth=False)).status == 200, path


async def test_invalid_object_has_one_cause_per_field_and_stores_nothing(api: RawApi, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    r = await api.post(path, bad_deployment("bad"))
    assert r.status == 422 and r.reason == "Invalid"
    assert r.body["message"].startswith('Deployment.apps "bad" is invalid: ')
    fields = {c["field"] for c in r.body["details"]["causes"]}
    assert "spec.replicas" in fields
    assert "spec.template.metadata.labels" in fields
    assert "spec.template.spec.containers[0].image" in fields
    assert "spec.template.spec.containers[0].ports[0].containerPort" in fields
    assert "spec.template.spec.containers[1].name" in fields
    assert "spec.template.spec.containers[1].resources.requests" in fields
    assert r.body["details"]["name"] == "bad" and r.body["details"]["group"] == "apps"
    assert r.body["details"]["kind"] == "Deployment"
    assert (await api.get(f"{path}/bad")).status == 404
    listed = await api.get(path)
    assert listed.body["items"] == []


async def test_missing_image_message_matches_kubectl(api: RawApi, namespace: str) -> None:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "w"}},
                     "template": {"metadata": {"labels": {"app": "w"}},
                                  "spec": {"containers": [{"name": "c"}]}}}}
    r = await api.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", body)
    assert r.status == 422
    assert r.body["message"] == (
        'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value')
    assert r.body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.template.spec.containers[0].image"}]


async def test_bad_name_and_type_errors(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    r = await api.post(path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})
    assert r.status == 422 and r.body["details"]["causes"][0]["field"] == "metadata.name"
    r = await api.post(f"/apis/apps/v1/namespaces/{namespace}/deployments",
                       {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "t"},
                        "spec": {"replicas": "three"}})
    assert r.status == 400 and r.reason == "BadRequest"
    assert (await api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/t")).status == 404
    r = await api.post(path, {"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert r.status == 400 and "does not match the expected API version" in r.body["message"]


async def test_unknown_fields_per_field_validation(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "uf"}, "data": {"a": "b"}, "bogus": 1}
    strict = await api.post(path, body, params={"fieldValidation": "Strict"})
    assert strict.status == 400 and strict.body["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus"')
    assert (await api.get(f"{path}/uf")).status == 404
    warn = await api.post(path, body, params={"fieldValidation": "Warn"})
    assert warn.status == 201 and "bogus" not in warn.body
    assert warn.headers.getall("Warning") == ['299 - "unknown field \\"bogus\\""']
    body["metadata"]["name"] = "uf2"
    ignore = await api.post(path, body, params={"fieldValidation": "Ignore"})
    assert ignore.status == 201 and "Warning" not in ignore.headers
    stored = (await api.get(f"{path}/uf2")).body
    assert "bogus" not in stored
    bad = await api.post(path, body, params={"fieldValidation": "Loud"})
    assert bad.status == 400


async def test_413_for_bodies_over_3mib(api: RawApi, namespace: str) -> None:
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"x": "a" * (3 * 1024 * 1024 + 10)}}
    r = await api.post(f"/api/v1/namespaces/{namespace}/configmaps", big)
    assert r.status == 413 and r.body["reason"] == "RequestEntityTooLarge"
    assert (await api.get(f"/api/v1/namespaces/{namespace}/configmaps/big")).status == 404


async def test_415_for_unknown_media_types(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    r = await api.request("POST", path, data=b"\x00\x01", content_type="application/vnd.kubernetes.protobuf")
    assert r.status == 415 and r.body["reason"] == "UnsupportedMediaType"
    await api.post(path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}})
    r = await api.request("PATCH", f"{path}/m", data=json.dumps({"data": {}}), content_type="text/plain")
    assert r.status == 415


async def test_yaml_body_accepted(api: RawApi, namespace: str) -> None:
    doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n"
    r = await api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", data=doc,
                          content_type="application/yaml")
    assert r.status == 201 and r.body["data"] == {"k": "v"}


async def test_malformed_json_is_400(api: RawApi, namespace: str) -> None:
    r = await api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", data=b"{not json",
                          content_type="application/json")
    assert r.status == 400 and r.body["kind"] == "Status"


async def test_unknown_paths_and_methods(api: RawApi) -> None:
    r = await api.get("/api/v1/widgets")
    assert r.status == 404 and r.body["reason"] == "NotFound"
    r = await api.get("/apis/apps/v1/namespaces/default/deployments/x/bogus")
    assert r.status == 404
    r = await api.request("POST", "/api/v1/namespaces/default/configmaps/x", json_body={})
    assert r.status == 405 and r.body["reason"] == "MethodNotAllowed"
    # The log of a pod that does not exist: NotFound, before any node is asked.
    r = await api.get("/api/v1/namespaces/default/pods/x/log")
    assert r.status == 404 and r.body["kind"] == "Status" and r.body["reason"] == "NotFound"


async def test_discovery_and_version(api: RawApi) -> None:
    v = (await api.get("/version")).body
    for key in ("major", "minor", "gitVersion", "gitCommit", "gitTreeState", "buildDate", "goVersion",
                "compiler", "platform"):
        assert key in v
    core = (await api.get("/api/v1")).body
    pods = next(r for r in core["resources"] if r["name"] == "pods")
    assert pods["namespaced"] and pods["kind"] == "Pod" and "po" in pods["shortNames"]
    groups = (await api.get("/apis")).body
    assert "apps" in [g["name"] for g in groups["groups"]]
    agg = await api.get("/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"})
    assert "apidiscovery.k8s.io" in agg.headers["Content-Type"] and agg.body["kind"] == "APIGroupDiscoveryList"
    idx = (await api.get("/openapi/v3")).body
    assert "apis/apps/v1" in idx["paths"]
