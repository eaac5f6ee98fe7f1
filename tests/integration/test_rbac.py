"""RBAC against a real control plane: 401 without credentials, each built-in role allowed inside
its grants and 403 (in Kubernetes' words) outside them, namespace scoping, resourceNames,
impersonation, validation of RBAC objects and the real kubectl's ``auth can-i`` / ``whoami``."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.fixtures.apiserver import ControlPlaneProcess, RawApi, raw_api
from tests.fixtures.kubectl import Kubectl
from tests.fixtures.users import user_api, user_kubeconfig
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.integration

RBAC = "/apis/rbac.authorization.k8s.io/v1"
G = "rbac.authorization.k8s.io"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _bind(api: RawApi, namespace: str | None, role_kind: str, role: str, subjects: list[dict[str, Any]]) -> str:
    name = _unique("b")
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    path = f"{RBAC}/namespaces/{namespace}/rolebindings" if namespace else f"{RBAC}/clusterrolebindings"
    body = {"apiVersion": f"{G}/v1", "kind": kind, "metadata": {"name": name},
            "roleRef": {"apiGroup": G, "kind": role_kind, "name": role}, "subjects": subjects}
    r = await api.post(path, body)
    assert r.status == 201, r.body
    return name


def _user(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": G, "name": name}


def _configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


async def _allowed_eventually(client: RawApi, path: str) -> None:
    """Bindings reach the authorizer through the watch cache: wait for the first success."""
    async def check() -> bool:
        r = await client.get(path)
        assert r.status == 200, r.body
        return True
    await eventually(check, f"GET {path} allowed")


@pytest_asyncio.fixture(loop_scope="session")
async def other_namespace(api: RawApi) -> AsyncIterator[str]:
    name = _unique("other")
    r = await api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status == 201, r.body
    yield name
    await api.delete(f"/api/v1/namespaces/{name}")


async def test_401_without_or_with_a_wrong_credential(apiserver: ControlPlaneProcess, api: RawApi) -> None:
    r = await api.get("/api/v1/namespaces", auth=False)
    assert r.status == 401 and r.body["reason"] == "Unauthorized" and r.body["kind"] == "Status"
    r = await api.get("/apis", auth=False)
    assert r.status == 401
    r = await api.get("/api/v1/pods", auth=False, headers={"Authorization": "Bearer not-a-token"})
    assert r.status == 401
    # Health and version stay public, as Kubernetes' system:public-info-viewer keeps them.
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert (await api.get(path, auth=False)).status == 200, path


async def test_a_user_without_bindings_may_only_discover_and_ask(apiserver: ControlPlaneProcess,
                                                                 namespace: str) -> None:
    async with user_api(apiserver, "nobody") as client:
        assert (await client.get("/api")).status == 200
        assert (await client.get("/apis/apps/v1")).status == 200
        r = await client.get(f"/api/v1/namespaces/{namespace}/pods")
        assert r.status == 403 and r.body["reason"] == "Forbidden"
        assert r.body["message"] == (f'pods is forbidden: User "nobody" cannot list resource "pods" in API group "" '
                                     f'in the namespace "{namespace}"')
        assert r.body["details"] == {"kind": "pods"}
        r = await client.get("/apis/apps/v1/namespaces/x/deployments/web")
        assert r.body["message"] == ('deployments.apps "web" is forbidden: User "nobody" cannot get resource '
                                     '"deployments" in API group "apps" in the namespace "x"')
        r = await client.get("/api/v1/nodes")
        assert r.body["message"] == ('nodes is forbidden: User "nobody" cannot list resource "nodes" in API group "" '
                                     'at the cluster scope')
        r = await client.get("/metrics")
        assert r.status == 403 and r.body["message"] == 'forbidden: User "nobody" cannot get path "/metrics"'
        # Unknown resources are forbidden too: no hint of what exists.
        assert (await client.get("/api/v1/namespaces/x/nosuchthings")).status == 403


async def test_view_reads_its_namespace_only_and_writes_nothing(apiserver: ControlPlaneProcess, api: RawApi,
                                                                namespace: str, other_namespace: str) -> None:
    await _bind(api, namespace, "ClusterRole", "view", [_user("viewer")])
    assert (await api.post(f"/api/v1/namespaces/{namespace}/secrets",
                           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})).status == 201
    async with user_api(apiserver, "viewer") as client:
        await _allowed_eventually(client, f"/api/v1/namespaces/{namespace}/pods")
        assert (await client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments")).status == 200
        assert (await client.get(f"/api/v1/namespaces/{namespace}/pods", params={"watch": "1", "timeoutSeconds": "1"})
                ).status == 200
        r = await client.post(f"/api/v1/namespaces/{namespace}/configmaps", _configmap("c"))
        assert r.status == 403 and r.body["message"] == (
            f'configmaps is forbidden: User "viewer" cannot create resource "configmaps" in API group "" '
            f'in the namespace "{namespace}"')
        assert (await client.get(f"/api/v1/namespaces/{namespace}/secrets/s")).status == 403
        assert (await client.get(f"/api/v1/namespaces/{other_namespace}/pods")).status == 403
        assert (await client.get("/api/v1/pods")).status == 403  # all namespaces needs a cluster binding


async def test_edit_writes_workloads_but_not_access(apiserver: ControlPlaneProcess, api: RawApi,
                                                    namespace: str) -> None:
    await _bind(api, namespace, "ClusterRole", "edit", [_user("editor")])
    async with user_api(apiserver, "editor") as client:
        await _allowed_eventually(client, f"/api/v1/namespaces/{namespace}/secrets")
        assert (await client.post(f"/api/v1/namespaces/{namespace}/configmaps", _configmap("e"))).status == 201
        r = await client.patch(f"/api/v1/namespaces/{namespace}/configmaps/e", {"data": {"k": "w"}},
                               "application/merge-patch+json")
        assert r.status == 200
        r = await client.post(f"{RBAC}/namespaces/{namespace}/rolebindings", {
            "apiVersion": f"{G}/v1", "kind": "RoleBinding", "metadata": {"name": "x"},
            "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "admin"}, "subjects": [_user("editor")]})
        assert r.status == 403
        r = await client.post(f"/api/v1/namespaces/{namespace}/endpoints",
                              {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ep"}})
        assert r.status == 403
        assert (await client.delete(f"/api/v1/namespaces/{namespace}")).status == 403


async def test_admin_manages_access_in_its_namespace_only(apiserver: ControlPlaneProcess, api: RawApi,
                                                          namespace: str) -> None:
    await _bind(api, namespace, "ClusterRole", "admin", [_user("nsadmin")])
    async with user_api(apiserver, "nsadmin") as client:
        await _allowed_eventually(client, f"{RBAC}/namespaces/{namespace}/rolebindings")
        name = await _bind(client, namespace, "ClusterRole", "view", [_user("someone")])
        assert (await client.get(f"{RBAC}/namespaces/{namespace}/rolebindings/{name}")).status == 200
        assert (await client.get("/api/v1/nodes")).status == 403
        r = await client.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": _unique("nope")}})
        assert r.status == 403
        assert (await client.get(f"{RBAC}/clusterroles")).status == 403


async def test_scheduler_and_controller_credentials(apiserver: ControlPlaneProcess, api: RawApi,
                                                    namespace: str) -> None:
    async with user_api(apiserver, "system:kube-scheduler") as sched:
        assert (await sched.get("/api/v1/nodes")).status == 200
        assert (await sched.get("/api/v1/pods")).status == 200
        assert (await sched.get(f"/api/v1/namespaces/{namespace}/secrets")).status == 403
        assert (await sched.post(f"/api/v1/namespaces/{namespace}/configmaps", _configmap("s"))).status == 403
        r = await sched.patch("/api/v1/nodes/n1", {"metadata": {"labels": {"a": "b"}}}, "application/merge-patch+json")
        assert r.status == 403
    async with user_api(apiserver, "system:kube-controller-manager") as ctrl:
        assert (await ctrl.get("/api/v1/secrets")).status == 200
        assert (await ctrl.post(f"/api/v1/namespaces/{namespace}/configmaps", _configmap("c"))).status == 201
        r = await ctrl.post(f"/api/v1/namespaces/{namespace}/secrets",
                            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
        assert r.status == 403
        assert (await ctrl.post(f"{RBAC}/clusterrolebindings", {})).status == 403
        r = await ctrl.get("/api/v1/namespaces", headers={"Impersonate-User": "admin"})
        assert r.status == 403 and 'cannot impersonate resource "users"' in r.body["message"]


async def test_role_with_resource_names_and_group_subjects(apiserver: ControlPlaneProcess, api: RawApi,
                                                           namespace: str) -> None:
    for name in ("allowed", "other"):
        assert (await api.post(f"/api/v1/namespaces/{namespace}/configmaps", _configmap(name))).status == 201
    role = {"apiVersion": f"{G}/v1", "kind": "Role", "metadata": {"name": "one-cm"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["allowed"],
                       "verbs": ["get", "update"]}]}
    assert (await api.post(f"{RBAC}/namespaces/{namespace}/roles", role)).status == 201
    await _bind(api, namespace, "Role", "one-cm", [{"kind": "Group", "apiGroup": G, "name": "team-a"}])
    async with user_api(apiserver, "carol", ("team-a",)) as client:
        await _allowed_eventually(client, f"/api/v1/namespaces/{namespace}/configmaps/allowed")
        assert (await client.get(f"/api/v1/namespaces/{namespace}/configmaps/other")).status == 403
        assert (await client.get(f"/api/v1/namespaces/{namespace}/configmaps")).status == 403
    async with user_api(apiserver, "carol") as client:  # same name, not in the group
        assert (await client.get(f"/api/v1/namespaces/{namespace}/configmaps/allowed")).status == 403
    # Taking the binding away takes the access away.
    assert (await api.delete(f"{RBAC}/namespaces/{namespace}/roles/one-cm")).status == 200
    async with user_api(apiserver, "carol", ("team-a",)) as client:
        async def revoked() -> bool:
            return (await client.get(f"/api/v1/namespaces/{namespace}/configmaps/allowed")).status == 403
        await eventually(revoked, "access revoked")


async def test_rbac_objects_are_validated(api: RawApi, namespace: str) -> None:
    bad = {"apiVersion": f"{G}/v1", "kind": "RoleBinding", "metadata": {"name": "bad"},
           "roleRef": {"apiGroup": G, "kind": "Secret", "name": "x"},
           "subjects": [{"kind": "Robot", "name": "r"}]}
    r = await api.post(f"{RBAC}/namespaces/{namespace}/rolebindings", bad)
    assert r.status == 422 and r.body["reason"] == "Invalid"
    fields = {c["field"] for c in r.body["details"]["causes"]}
    assert fields == {"roleRef.kind", "subjects[0].kind"}
    role = {"apiVersion": f"{G}/v1", "kind": "Role", "metadata": {"name": "r"},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}, {"resources": ["pods"], "verbs": []}]}
    r = await api.post(f"{RBAC}/namespaces/{namespace}/roles", role)
    assert r.status == 422
    assert {c["field"] for c in r.body["details"]["causes"]} == {
        "rules[0].nonResourceURLs", "rules[1].verbs", "rules[1].apiGroups"}
    name = await _bind(api, namespace, "ClusterRole", "view", [_user("x")])
    path = f"{RBAC}/namespaces/{namespace}/rolebindings/{name}"
    r = await api.patch(path, {"roleRef": {"name": "edit"}}, "application/merge-patch+json")
    assert r.status == 422 and "cannot change roleRef" in r.body["message"]


async def test_impersonation_needs_the_impersonate_verb(apiserver: ControlPlaneProcess, api: RawApi,
                                                        namespace: str) -> None:
    await _bind(api, namespace, "ClusterRole", "view", [_user("dave")])
    r = await api.get(f"/api/v1/namespaces/{namespace}/pods", headers={"Impersonate-User": "dave"})
    assert r.status == 200  # the admin (system:masters) may impersonate anyone
    r = await api.get(f"/api/v1/namespaces/{namespace}/secrets", headers={"Impersonate-User": "dave"})
    assert r.status == 403 and 'User "dave"' in r.body["message"]
    r = await api.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                       {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
                       headers={"Impersonate-User": "dave", "Impersonate-Group": "g1"})
    assert r.status == 201
    assert r.body["status"]["userInfo"] == {"username": "dave", "groups": ["g1", "system:authenticated"]}
    async with user_api(apiserver, "dave") as client:
        r = await client.get(f"/api/v1/namespaces/{namespace}/pods", headers={"Impersonate-User": "admin"})
        assert r.status == 403


async def test_access_reviews(apiserver: ControlPlaneProcess, api: RawApi, namespace: str) -> None:
    await _bind(api, namespace, "ClusterRole", "edit", [_user("erin")])
    sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "spec": {"user": "erin", "resourceAttributes": {"namespace": namespace, "verb": "create",
                                                           "resource": "configmaps"}}}

    async def allowed() -> bool:
        r = await api.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", sar)
        assert r.status == 201, r.body
        return bool(r.body["status"]["allowed"])
    await eventually(allowed, "SubjectAccessReview allows erin")
    sar["spec"]["resourceAttributes"]["namespace"] = "kube-system"
    assert not await allowed()
    async with user_api(apiserver, "erin") as client:
        # Reviewing others needs its own grant; reviewing oneself is everyone's.
        assert (await client.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", sar)).status == 403
        r = await client.post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace}})
        assert r.status == 201
        assert any("configmaps" in rule.get("resources", []) and "create" in rule["verbs"]
                   for rule in r.body["status"]["resourceRules"])


@contextlib.contextmanager
def _kubectl_as(cp: ControlPlaneProcess, binary: str, user: str, groups: tuple[str, ...] = ()) -> Iterator[Kubectl]:
    tmp = Path(tempfile.mkdtemp(prefix="kl-kubectl-user-"))
    try:
        yield Kubectl(binary, user_kubeconfig(cp, tmp, user, groups), tmp / "cache")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def test_real_kubectl_auth_can_i_and_whoami(apiserver: ControlPlaneProcess, api: RawApi, kubectl: Kubectl,
                                                  kubectl_binary: str, namespace: str) -> None:
    kubectl.ok("create", "rolebinding", "frank-view", "--clusterrole=view", "--user=frank", "-n", namespace)
    out = kubectl.ok("get", "rolebinding", "frank-view", "-n", namespace)
    assert "ClusterRole/view" in out
    with _kubectl_as(apiserver, kubectl_binary, "frank", ("devs",)) as k:
        async def bound() -> bool:
            return k.run("auth", "can-i", "list", "pods", "-n", namespace).stdout.strip() == "yes"
        await eventually(bound, "kubectl auth can-i says yes")
        res = k.run("auth", "can-i", "create", "pods", "-n", namespace)
        assert res.returncode == 1 and res.stdout.strip() == "no"
        assert k.run("auth", "can-i", "list", "pods", "-n", "kube-system").stdout.strip() == "no"
        who = k.ok("auth", "whoami", "-o", "json")
        assert '"username": "frank"' in who and '"devs"' in who
        res = k.run("get", "secrets", "-n", namespace)
        assert res.returncode != 0 and (
            f'User "frank" cannot list resource "secrets" in API group "" in the namespace "{namespace}"' in res.stderr)
        listed = k.ok("auth", "can-i", "--list", "-n", namespace)
        assert "pods" in listed and "secrets" not in listed
    # --as is impersonation: the admin asks on frank's behalf.
    assert kubectl.run("auth", "can-i", "get", "pods", "-n", namespace, "--as", "frank").stdout.strip() == "yes"
    assert kubectl.run("auth", "can-i", "delete", "pods", "-n", namespace, "--as", "frank").stdout.strip() == "no"
    assert kubectl.ok("auth", "can-i", "delete", "nodes").strip() == "yes"


async def test_builtin_roles_come_back_after_a_restart_when_changed(api: RawApi) -> None:
    r = await api.get(f"{RBAC}/clusterroles/view")
    assert r.status == 200 and r.body["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
    names = {i["metadata"]["name"] for i in (await api.get(f"{RBAC}/clusterroles")).body["items"]}
    assert {"cluster-admin", "admin", "edit", "view", "system:kube-controller-manager", "system:kube-scheduler",
            "system:node", "system:discovery", "system:basic-user", "system:public-info-viewer"} <= names


def test_bootstrap_policy_is_restored_on_restart() -> None:
    """A deleted built-in binding and an edited built-in role are reconciled when the control
    plane starts again."""
    import asyncio

    from tests.fixtures.apiserver import running_control_plane

    with running_control_plane("apiserver", prefix="kl-rbac-restart-") as cp:
        async def damage() -> None:
            async with raw_api(cp) as api:
                assert (await api.delete(f"{RBAC}/clusterrolebindings/system:discovery")).status == 200
                r = await api.patch(f"{RBAC}/clusterroles/view", {"rules": []}, "application/merge-patch+json")
                assert r.status == 200
        asyncio.run(damage())
        cp.stop()
        cp.start()

        async def check() -> None:
            async with raw_api(cp) as api:
                assert (await api.get(f"{RBAC}/clusterrolebindings/system:discovery")).status == 200
                assert len((await api.get(f"{RBAC}/clusterroles/view")).body["rules"]) > 0
        asyncio.run(check())


async def test_nobody_grants_what_they_do_not_hold(apiserver: ControlPlaneProcess, api: RawApi,
                                                   namespace: str) -> None:
    await _bind(api, namespace, "ClusterRole", "admin", [_user("ivan")])
    async with user_api(apiserver, "ivan") as client:
        await _allowed_eventually(client, f"{RBAC}/namespaces/{namespace}/rolebindings")
        # Binding what one holds is fine; binding cluster-admin, or writing a Role with more, is not.
        await _bind(client, namespace, "ClusterRole", "edit", [_user("judy")])
        r = await client.post(f"{RBAC}/namespaces/{namespace}/rolebindings", {
            "apiVersion": f"{G}/v1", "kind": "RoleBinding", "metadata": {"name": "up"},
            "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "cluster-admin"}, "subjects": [_user("ivan")]})
        assert r.status == 403
        assert r.body["message"].startswith(
            f'rolebindings.{G} "up" is forbidden: user "ivan" (groups=["system:authenticated"]) is attempting to '
            "grant RBAC permissions not currently held:\n")
        role = {"apiVersion": f"{G}/v1", "kind": "Role", "metadata": {"name": "more"},
                "rules": [{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["create"]}]}
        r = await client.post(f"{RBAC}/namespaces/{namespace}/roles", role)
        assert r.status == 403 and '{APIGroups:[""], Resources:["endpoints"], Verbs:["create"]}' in r.body["message"]
        role["rules"] = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
        assert (await client.post(f"{RBAC}/namespaces/{namespace}/roles", role)).status == 201
    # The bind verb on a role lets one bind it without holding it.
    binder = {"apiVersion": f"{G}/v1", "kind": "ClusterRole", "metadata": {"name": _unique("binder")},
              "rules": [{"apiGroups": [G], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["edit"]},
                        {"apiGroups": [G], "resources": ["rolebindings"], "verbs": ["create"]}]}
    assert (await api.post(f"{RBAC}/clusterroles", binder)).status == 201
    await _bind(api, namespace, "ClusterRole", binder["metadata"]["name"], [_user("kim")])
    async with user_api(apiserver, "kim") as client:
        async def binds() -> bool:
            r = await client.post(f"{RBAC}/namespaces/{namespace}/rolebindings", {
                "apiVersion": f"{G}/v1", "kind": "RoleBinding", "metadata": {"name": _unique("k")},
                "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "edit"}, "subjects": [_user("lee")]})
            assert r.status == 201, r.body
            return True
        await eventually(binds, "kim binds edit")
        r = await client.post(f"{RBAC}/namespaces/{namespace}/rolebindings", {
            "apiVersion": f"{G}/v1", "kind": "RoleBinding", "metadata": {"name": "v"},
            "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "view"}, "subjects": [_user("lee")]})
        assert r.status == 403
    await api.delete(f"{RBAC}/clusterroles/{binder['metadata']['name']}")
