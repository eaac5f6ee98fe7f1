"""The REST verbs against a real control plane and etcd: create, get, list, update, patch, delete,
subresources, server-owned metadata, optimistic concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_asyncio

from tests.fixtures.apiserver import RawApi

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def api(api_bare: RawApi) -> RawApi:
    """These tests are about the API server alone: no controller may touch their objects."""
    return api_bare


def deployment(name: str, replicas: int = 2, image: str = "busybox:1.36") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    }


def pod(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "c", "image": "busybox:latest", "command": ["sleep", "3600"]}]},
    }


def cm(name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": data or {"k": "v"}}


async def test_create_get_fills_server_metadata_and_defaults(api: RawApi, namespace: str) -> None:
    r = await api.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment("web"))
    assert r.status == 201, r.body
    md = r.body["metadata"]
    assert md["namespace"] == namespace and md["uid"] and md["generation"] == 1
    assert md["creationTimestamp"].endswith("Z") and int(md["resourceVersion"]) > 0
    spec = r.body["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    tpl = spec["template"]["spec"]
    assert tpl["restartPolicy"] == "Always" and tpl["dnsPolicy"] == "ClusterFirst"
    assert tpl["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert tpl["containers"][0]["ports"][0]["protocol"] == "TCP"

    got = await api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
    assert got.status == 200 and got.body == r.body
    assert got.headers["Content-Type"].startswith("application/json")


async def test_create_twice_is_already_exists(api: RawApi, namespace: str) -> None:
    assert (await api.post(f"/api/v1/namespaces/{namespace}/configmaps", cm("a"))).status == 201
    r = await api.post(f"/api/v1/namespaces/{namespace}/configmaps", cm("a"))
    assert r.status == 409 and r.reason == "AlreadyExists"
    assert r.body["message"] == 'configmaps "a" already exists'
    assert r.body["details"] == {"name": "a", "kind": "configmaps"}


async def test_generate_name(api: RawApi, namespace: str) -> None:
    body = cm("")
    body["metadata"] = {"generateName": "gen-"}
    r = await api.post(f"/api/v1/namespaces/{namespace}/configmaps", body)
    assert r.status == 201
    name = r.body["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == len("gen-") + 5


async def test_namespace_must_exist(api: RawApi) -> None:
    r = await api.post("/api/v1/namespaces/does-not-exist-x/configmaps", cm("a"))
    assert r.status == 404 and r.body["message"] == 'namespaces "does-not-exist-x" not found'


async def test_namespace_mismatch(api: RawApi, namespace: str) -> None:
    body = cm("a")
    body["metadata"]["namespace"] = "other"
    r = await api.post(f"/api/v1/namespaces/{namespace}/configmaps", body)
    assert r.status == 400 and "does not match the namespace" in r.body["message"]


async def test_update_conflict_two_writers(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = (await api.post(path, cm("race"))).body
    a = {**created, "data": {"k": "from-a"}}
    b = {**created, "data": {"k": "from-b"}}
    ra, rb = await asyncio.gather(api.put(f"{path}/race", a), api.put(f"{path}/race", b))
    assert sorted([ra.status, rb.status]) == [200, 409]
    loser = ra if ra.status == 409 else rb
    winner = ra if ra.status == 200 else rb
    assert loser.reason == "Conflict"
    assert "the object has been modified" in loser.body["message"]
    now = (await api.get(f"{path}/race")).body
    assert now["data"] == winner.body["data"]


async def test_update_without_resource_version_is_unconditional(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = (await api.post(path, cm("u"))).body
    body = {**created, "metadata": {**created["metadata"]}, "data": {"k": "2"}}
    del body["metadata"]["resourceVersion"]
    r = await api.put(f"{path}/u", body)
    assert r.status == 200 and r.body["data"] == {"k": "2"}
    assert int(r.body["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert r.body["metadata"]["uid"] == created["metadata"]["uid"]


async def test_noop_update_does_not_write(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = (await api.post(path, cm("same"))).body
    r = await api.put(f"{path}/same", created)
    assert r.status == 200 and r.body["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_generation_moves_only_on_spec_change(api: RawApi, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    d = (await api.post(base, deployment("gen"))).body
    assert d["metadata"]["generation"] == 1
    r = await api.patch(f"{base}/gen", {"metadata": {"labels": {"x": "y"}}}, "application/merge-patch+json")
    assert r.status == 200 and r.body["metadata"]["generation"] == 1
    r = await api.patch(f"{base}/gen", {"spec": {"replicas": 5}}, "application/merge-patch+json")
    assert r.body["metadata"]["generation"] == 2
    # A status write never moves generation, and a main-resource write never changes status.
    status = {**r.body, "status": {"observedGeneration": 2, "replicas": 5}}
    s = await api.put(f"{base}/gen/status", status)
    assert s.status == 200, s.body
    assert s.body["status"]["observedGeneration"] == 2 and s.body["metadata"]["generation"] == 2
    sneaky = {**s.body, "status": {"replicas": 99}}
    m = await api.put(f"{base}/gen", sneaky)
    assert m.status == 200 and m.body["status"]["replicas"] == 5
    # ...and a status write never changes spec.
    s2 = await api.put(f"{base}/gen/status", {**m.body, "spec": {**m.body["spec"], "replicas": 1}})
    assert s2.body["spec"]["replicas"] == 5


async def test_patch_types(api: RawApi, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    await api.post(base, deployment("p"))
    # strategic merge: containers merge by name, env merges by name
    smp = {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "env": [{"name": "A", "value": "1"}]},
        {"name": "sidecar", "image": "busybox:1.36"},
    ]}}}}
    r = await api.patch(f"{base}/p", smp, "application/strategic-merge-patch+json")
    assert r.status == 200, r.body
    containers = r.body["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", "sidecar"]
    assert containers[0]["image"] == "busybox:1.36" and containers[0]["env"] == [{"name": "A", "value": "1"}]
    # JSON merge patch replaces lists
    r = await api.patch(f"{base}/p", {"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "busybox:1.37"}]}}}}, "application/merge-patch+json")
    assert [c["name"] for c in r.body["spec"]["template"]["spec"]["containers"]] == ["only"]
    # JSON patch, including a failing test op that changes nothing
    r = await api.patch(f"{base}/p", [{"op": "replace", "path": "/spec/replicas", "value": 4}],
                        "application/json-patch+json")
    assert r.body["spec"]["replicas"] == 4
    bad = await api.patch(f"{base}/p", [{"op": "test", "path": "/spec/replicas", "value": 9},
                                        {"op": "replace", "path": "/spec/replicas", "value": 7}],
                          "application/json-patch+json")
    assert bad.status == 422
    assert (await api.get(f"{base}/p")).body["spec"]["replicas"] == 4
    # rollout-restart style patch on the template's annotations
    r = await api.patch(f"{base}/p", {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}}, "application/strategic-merge-patch+json")
    assert r.body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    # A patch carrying a stale resourceVersion is a precondition that fails
    stale = await api.patch(f"{base}/p", {"metadata": {"resourceVersion": "1"}, "spec": {"replicas": 1}},
                            "application/merge-patch+json")
    assert stale.status == 409 and stale.reason == "Conflict"


async def test_server_side_apply_creates_then_merges(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/ssa"
    body = cm("ssa", {"a": "1"})
    r = await api.patch(path, body, "application/apply-patch+yaml", params={"fieldManager": "test"})
    assert r.status == 201, r.body
    # Another manager's apply merges with what "test" owns...
    r = await api.patch(path, cm("ssa", {"b": "2"}), "application/apply-patch+yaml",
                        params={"fieldManager": "other"})
    assert r.status == 200 and r.body["data"] == {"a": "1", "b": "2"}
    # ...while a manager that stops applying a field it owns removes it.
    r = await api.patch(path, cm("ssa", {"c": "3"}), "application/apply-patch+yaml",
                        params={"fieldManager": "test"})
    assert r.status == 200 and r.body["data"] == {"b": "2", "c": "3"}
    missing = await api.patch(path, body, "application/apply-patch+yaml")
    assert missing.status == 400 and "fieldManager" in missing.body["message"]


async def test_dry_run_stores_nothing(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    r = await api.post(path, cm("dry"), params={"dryRun": "All"})
    assert r.status == 201 and r.body["metadata"]["uid"]
    assert (await api.get(f"{path}/dry")).status == 404
    created = (await api.post(path, cm("dry2"))).body
    r = await api.put(f"{path}/dry2", {**created, "data": {"k": "changed"}}, params={"dryRun": "All"})
    assert r.status == 200 and r.body["data"] == {"k": "changed"}
    assert (await api.get(f"{path}/dry2")).body["data"] == {"k": "v"}
    r = await api.delete(f"{path}/dry2", params={"dryRun": "All"})
    assert r.status == 200
    assert (await api.get(f"{path}/dry2")).status == 200
    bad = await api.post(path, cm("dry3"), params={"dryRun": "Yes"})
    assert bad.status == 400


async def test_list_selectors_and_all_namespaces(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i, (tier, env) in enumerate([("web", "prod"), ("web", "dev"), ("db", "prod"), ("cache", None)]):
        labels = {"tier": tier, **({"env": env} if env else {})}
        assert (await api.post(path, cm(f"c{i}", labels=labels))).status == 201

    async def names(sel: str = "", field: str = "", p: str = path) -> list[str]:
        params = {}
        if sel:
            params["labelSelector"] = sel
        if field:
            params["fieldSelector"] = field
        r = await api.get(p, params=params)
        assert r.status == 200, r.body
        assert r.body["kind"] == "ConfigMapList" and r.body["apiVersion"] == "v1"
        assert int(r.body["metadata"]["resourceVersion"]) > 0
        return sorted(i["metadata"]["name"] for i in r.body["items"] if i["metadata"]["namespace"] == namespace)

    assert await names() == ["c0", "c1", "c2", "c3"]
    assert await names("tier=web") == ["c0", "c1"]
    assert await names("tier==web,env!=dev") == ["c0"]
    assert await names("tier in (db,cache)") == ["c2", "c3"]
    assert await names("tier notin (web)") == ["c2", "c3"]
    assert await names("env") == ["c0", "c1", "c2"]
    assert await names("!env") == ["c3"]
    assert await names(field="metadata.name=c2") == ["c2"]
    assert await names(field="metadata.name!=c2") == ["c0", "c1", "c3"]
    assert await names("tier=web", p="/api/v1/configmaps") == ["c0", "c1"]
    assert await names(field=f"metadata.namespace={namespace}", p="/api/v1/configmaps") == ["c0", "c1", "c2", "c3"]
    bad = await api.get(path, params={"labelSelector": "tier in (web"})
    assert bad.status == 400 and bad.reason == "BadRequest"
    bad = await api.get(path, params={"fieldSelector": "spec.nope=1"})
    assert bad.status == 400 and "field label not supported" in bad.body["message"]


async def test_pod_field_selectors(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    await api.post(path, pod("a"))
    await api.post(path, pod("b"))
    r = await api.post(f"{path}/a/binding", {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "a"},
                                             "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}})
    assert r.status == 201, r.body
    bound = await api.get(path, params={"fieldSelector": "spec.nodeName=node-1"})
    assert [p["metadata"]["name"] for p in bound.body["items"]] == ["a"]
    pending = await api.get(path, params={"fieldSelector": "status.phase=Pending,spec.nodeName="})
    assert [p["metadata"]["name"] for p in pending.body["items"]] == ["b"]


async def test_paging_is_consistent(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(7):
        await api.post(path, cm(f"page-{i}"))
    seen: list[str] = []
    r = await api.get(path, params={"limit": "3"})
    assert len(r.body["items"]) == 3 and r.body["metadata"]["remainingItemCount"] == 4
    rv = r.body["metadata"]["resourceVersion"]
    seen += [i["metadata"]["name"] for i in r.body["items"]]
    # Written after the first page: must not appear in later pages of the same list.
    await api.post(path, cm("page-late"))
    token = r.body["metadata"]["continue"]
    while token:
        r = await api.get(path, params={"limit": "3", "continue": token})
        assert r.status == 200 and r.body["metadata"]["resourceVersion"] == rv
        seen += [i["metadata"]["name"] for i in r.body["items"]]
        token = r.body["metadata"].get("continue")
    assert seen == [f"page-{i}" for i in range(7)]
    bad = await api.get(path, params={"limit": "3", "continue": "not-a-token"})
    assert bad.status == 400


async def test_scale_subresource(api: RawApi, namespace: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    await api.post(base, deployment("sc", replicas=2))
    s = await api.get(f"{base}/sc/scale")
    assert s.status == 200
    assert s.body["kind"] == "Scale" and s.body["apiVersion"] == "autoscaling/v1"
    assert s.body["spec"] == {"replicas": 2} and s.body["status"] == {"replicas": 0, "selector": "app=sc"}
    r = await api.patch(f"{base}/sc/scale", {"spec": {"replicas": 5}}, "application/merge-patch+json")
    assert r.status == 200 and r.body["spec"]["replicas"] == 5
    d = (await api.get(f"{base}/sc")).body
    assert d["spec"]["replicas"] == 5 and d["metadata"]["generation"] == 2
    put = await api.put(f"{base}/sc/scale", {**r.body, "spec": {"replicas": 1}})
    assert put.status == 200 and put.body["spec"]["replicas"] == 1
    neg = await api.patch(f"{base}/sc/scale", {"spec": {"replicas": -1}}, "application/merge-patch+json")
    assert neg.status == 422 and neg.body["details"]["causes"][0]["field"] == "spec.replicas"
    stale = await api.put(f"{base}/sc/scale", {**r.body, "spec": {"replicas": 3}})
    assert stale.status == 409


async def test_binding(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    await api.post(path, pod("bind-me"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bind-me"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    r = await api.post(f"{path}/bind-me/binding", binding)
    assert r.status == 201 and r.body["status"] == "Success"
    p = (await api.get(f"{path}/bind-me")).body
    assert p["spec"]["nodeName"] == "n1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in p["status"]["conditions"])
    again = await api.post(f"{path}/bind-me/binding", {**binding, "target": {"kind": "Node", "name": "n2"}})
    assert again.status == 409 and "already assigned" in again.body["message"]


async def test_pod_spec_is_immutable_except_image(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    p = (await api.post(path, pod("imm"))).body
    p["spec"]["containers"][0]["image"] = "busybox:1.37"
    r = await api.put(f"{path}/imm", p)
    assert r.status == 200 and r.body["spec"]["containers"][0]["image"] == "busybox:1.37"
    r.body["spec"]["containers"][0]["command"] = ["true"]
    bad = await api.put(f"{path}/imm", r.body)
    assert bad.status == 422 and bad.reason == "Invalid"
    assert bad.body["details"]["causes"][0]["field"] == "spec"


async def test_delete_and_graceful_pod_deletion(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await api.post(path, cm("gone"))
    r = await api.delete(f"{path}/gone", {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
    assert r.status == 200 and r.body["metadata"]["name"] == "gone"
    assert (await api.get(f"{path}/gone")).status == 404
    assert (await api.delete(f"{path}/gone")).status == 404
    # A pod bound to a node is deleted gracefully: it stays with a deletionTimestamp until its
    # node agent confirms with grace period 0.
    pods = f"/api/v1/namespaces/{namespace}/pods"
    await api.post(pods, pod("g"))
    await api.post(f"{pods}/g/binding", {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "g"},
                                          "target": {"kind": "Node", "name": "n1"}})
    r = await api.delete(f"{pods}/g")
    assert r.status == 202 and r.body["metadata"]["deletionTimestamp"]
    assert r.body["metadata"]["deletionGracePeriodSeconds"] == 30
    assert (await api.get(f"{pods}/g")).status == 200
    r = await api.delete(f"{pods}/g", {"gracePeriodSeconds": 0})
    assert r.status == 200
    assert (await api.get(f"{pods}/g")).status == 404


async def test_delete_preconditions(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    created = (await api.post(path, cm("pre"))).body
    r = await api.delete(f"{path}/pre", {"preconditions": {"uid": "nope"}})
    assert r.status == 409 and "Precondition failed: UID in precondition" in r.body["message"]
    r = await api.delete(f"{path}/pre", {"preconditions": {"resourceVersion": "1"}})
    assert r.status == 409
    r = await api.delete(f"{path}/pre", {"preconditions": {"uid": created["metadata"]["uid"]}})
    assert r.status == 200


async def test_finalizers_hold_deletion(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    body = cm("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    await api.post(path, body)
    r = await api.delete(f"{path}/fin")
    assert r.status == 202 and r.body["metadata"]["deletionTimestamp"]
    held = (await api.get(f"{path}/fin")).body
    adding = {**held, "metadata": {**held["metadata"], "finalizers": ["example.com/hold", "x.io/more"]}}
    refused = await api.put(f"{path}/fin", adding)
    assert refused.status == 422
    r = await api.patch(f"{path}/fin", {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    assert r.status == 200
    assert (await api.get(f"{path}/fin")).status == 404


async def test_foreground_and_orphan_add_finalizers(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await api.post(path, cm("fg"))
    r = await api.delete(f"{path}/fg", {"propagationPolicy": "Foreground"})
    assert r.status == 202 and r.body["metadata"]["finalizers"] == ["foregroundDeletion"]
    await api.post(path, cm("orph"))
    r = await api.delete(f"{path}/orph", {"propagationPolicy": "Orphan"})
    assert r.status == 202 and r.body["metadata"]["finalizers"] == ["orphan"]
    bad = await api.delete(f"{path}/orph", {"propagationPolicy": "Sideways"})
    assert bad.status == 422


async def test_delete_collection(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(3):
        await api.post(path, cm(f"dc{i}", labels={"grp": "x" if i < 2 else "y"}))
    r = await api.delete(path, params={"labelSelector": "grp=x"})
    assert r.status == 200 and sorted(i["metadata"]["name"] for i in r.body["items"]) == ["dc0", "dc1"]
    left = (await api.get(path)).body["items"]
    assert [i["metadata"]["name"] for i in left] == ["dc2"]


async def test_terminating_namespace_refuses_new_content(api: RawApi) -> None:
    name = "term-" + str(abs(hash(asyncio.get_running_loop())) % 10**8)
    assert (await api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": name}})).status == 201
    r = await api.delete(f"/api/v1/namespaces/{name}")
    assert r.status == 202 and r.body["status"]["phase"] == "Terminating"
    refused = await api.post(f"/api/v1/namespaces/{name}/configmaps", cm("late"))
    assert refused.status == 403 and "being terminated" in refused.body["message"]


async def test_cluster_scoped_nodes_and_status(api: RawApi) -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "crud-node-1", "labels": {"role": "w"}},
            "status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"}}}
    r = await api.post("/api/v1/nodes", node)
    assert r.status == 201, r.body
    assert "namespace" not in r.body["metadata"]
    assert r.body["status"]["capacity"]["cpu"] == "2"  # a node reports its own status on create
    got = await api.get("/api/v1/nodes/crud-node-1")
    assert got.status == 200
    assert (await api.delete("/api/v1/nodes/crud-node-1")).status == 200


async def test_secret_string_data_is_folded_into_data(api: RawApi, namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "eA==", "b": "eA=="}, "stringData": {"b": "hello"}}
    r = await api.post(f"/api/v1/namespaces/{namespace}/secrets", body)
    assert r.status == 201, r.body
    assert r.body["data"] == {"a": "eA==", "b": "aGVsbG8="} and "stringData" not in r.body
    assert r.body["type"] == "Opaque"


async def test_status_write_checks_conditions(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    p = (await api.post(path, pod("st"))).body
    good = {**p, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    r = await api.put(f"{path}/st/status", good)
    assert r.status == 200 and r.body["status"]["phase"] == "Running"
    bad = {**r.body, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "Maybe"}, {"status": "True"}]}}
    r2 = await api.put(f"{path}/st/status", bad)
    assert r2.status == 422
    assert {c["field"] for c in r2.body["details"]["causes"]} == {"status.conditions[0].status", "status.conditions[1].type"}
    assert (await api.get(f"{path}/st")).body["status"]["conditions"] == [{"type": "Ready", "status": "True"}]
