"""ServiceAccounts against a real control plane: a ``default`` account and the root CA ConfigMap
in every namespace, the token volume admission gives pods, TokenRequest (``kubectl create
token``), and the API server accepting those tokens only while they are valid."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from apimachinery.api.core_v1 import Pod
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.decode import decode
from apimachinery.errors import ApiError
from apimachinery.meta import parse_time
from apimachinery.scheme import default_scheme
from controlplane.apiserver.satoken import TokenSigner, ensure_signing_key
from controlplane.credentials import write_node_kubeconfig
from nodeagent.agent import volumes
from nodeagent.agent.sources import ObjectSource
from tests.fixtures.apiserver import RawApi
from tests.fixtures.kubectl import Kubectl
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.integration

MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
S = default_scheme()


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def as_user(api: RawApi, token: str) -> RawApi:
    return RawApi(api.cp, api.session, token)


async def request_token(api: RawApi, ns: str, sa: str, **spec: Any) -> Any:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    return await api.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", body)


async def default_account(api: RawApi, ns: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await api.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default")
        return r.body if r.status == 200 else None

    return await eventually(check, f"the default service account of {ns}")


async def test_every_namespace_gets_a_default_account_and_the_root_ca(api: RawApi, namespace: str) -> None:
    await default_account(api, namespace)

    async def root_ca() -> dict[str, Any] | None:
        r = await api.get(f"/api/v1/namespaces/{namespace}/configmaps/kube-root-ca.crt")
        return r.body if r.status == 200 else None

    cm = await eventually(root_ca, "kube-root-ca.crt")
    assert cm["data"] == {"ca.crt": api.cp.ca_file.read_text()}
    # Deleted, the account comes back (a new one: new UID).
    old = await default_account(api, namespace)
    r = await api.delete(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
    assert r.status == 200

    async def recreated() -> bool:
        r = await api.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
        return r.status == 200 and r.body["metadata"]["uid"] != old["metadata"]["uid"]

    await eventually(recreated, "a new default service account")


async def test_pods_get_the_token_volume_unless_they_opt_out(api: RawApi, namespace: str) -> None:
    r = await api.post(f"/api/v1/namespaces/{namespace}/pods", pod("mounted"))
    assert r.status == 201, r.body
    spec = r.body["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    (vol,) = spec["volumes"]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == len("kube-api-access-") + 5
    assert vol["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}
    assert spec["containers"][0]["volumeMounts"] == [{"name": vol["name"], "readOnly": True, "mountPath": MOUNT}]

    r = await api.post(f"/api/v1/namespaces/{namespace}/pods", pod("optout", automountServiceAccountToken=False))
    assert r.status == 201 and "volumes" not in r.body["spec"]

    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "quiet"},
          "automountServiceAccountToken": False}
    assert (await api.post(f"/api/v1/namespaces/{namespace}/serviceaccounts", sa)).status == 201
    r = await api.post(f"/api/v1/namespaces/{namespace}/pods", pod("quiet", serviceAccountName="quiet"))
    assert r.status == 201 and "volumes" not in r.body["spec"]
    assert r.body["spec"]["serviceAccountName"] == "quiet"


async def test_token_request_issues_tokens_the_server_accepts(api: RawApi, namespace: str) -> None:
    sa = await default_account(api, namespace)
    r = await request_token(api, namespace, "default", expirationSeconds=900)
    assert r.status == 201, r.body
    assert r.body["kind"] == "TokenRequest" and r.body["spec"]["expirationSeconds"] == 900
    left = parse_time(r.body["status"]["expirationTimestamp"]).timestamp() - time.time()
    assert 800 < left <= 901
    token = r.body["status"]["token"]
    me = await as_user(api, token).post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert me.status == 201, me.body
    user = me.body["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:default"
    assert user["uid"] == sa["metadata"]["uid"]
    assert set(user["groups"]) >= {"system:serviceaccounts", f"system:serviceaccounts:{namespace}"}
    # Authenticated, not authorized: the refusal names the account.
    r = await as_user(api, token).get(f"/api/v1/namespaces/{namespace}/secrets")
    assert r.status == 403
    assert f'User "system:serviceaccount:{namespace}:default" cannot list resource "secrets"' in r.body["message"]


async def test_token_request_refusals(api: RawApi, namespace: str) -> None:
    await default_account(api, namespace)
    r = await request_token(api, namespace, "default", expirationSeconds=60)
    assert r.status == 422
    assert r.body["message"] == ('TokenRequest.authentication.k8s.io "default" is invalid: spec.expirationSeconds: '
                                 'Invalid value: 60: may not specify a duration less than 10 minutes')
    r = await request_token(api, namespace, "nobody")
    assert r.status == 404 and r.body["message"] == 'serviceaccounts "nobody" not found'
    r = await request_token(api, namespace, "default", boundObjectRef={"kind": "Pod", "name": "nopod"})
    assert r.status == 404 and r.body["message"] == 'pods "nopod" not found'


async def test_revoked_and_expired_tokens_are_refused(api: RawApi, namespace: str) -> None:
    await default_account(api, namespace)
    # Bound to a pod: the token dies with the pod.
    made = await api.post(f"/api/v1/namespaces/{namespace}/pods", pod("holder"))
    assert made.status == 201
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "holder", "uid": made.body["metadata"]["uid"]}
    bound = (await request_token(api, namespace, "default", boundObjectRef=ref)).body["status"]["token"]
    whoami = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    review = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    assert (await as_user(api, bound).post(review, whoami)).status == 201
    assert (await api.delete(f"/api/v1/namespaces/{namespace}/pods/holder")).status == 200

    async def refused(token: str) -> bool:
        return (await as_user(api, token).post(review, whoami)).status == 401

    await eventually(lambda: refused(bound), "the bound token refused once its pod is gone")

    # Expired: a token signed with the cluster's own key, but an hour old.
    sa = await default_account(api, namespace)
    signer = TokenSigner(ensure_signing_key(api.cp.data_dir / "pki" / "sa.key"))
    stale = signer.issue(namespace, "default", sa["metadata"]["uid"], ["https://kubernetes.default.svc.cluster.local"],
                         600, now=time.time() - 3600)
    assert await refused(stale.token)
    fresh = signer.issue(namespace, "default", sa["metadata"]["uid"], ["https://kubernetes.default.svc.cluster.local"],
                         600)
    assert not await refused(fresh.token)
    # Meant for someone else: refused.
    other = signer.issue(namespace, "default", sa["metadata"]["uid"], ["vault"], 600)
    assert await refused(other.token)
    # A tampered token (claims changed, signature kept) is refused.
    head, claims, sig = fresh.token.split(".")
    assert await refused(f"{head}.{claims[:-2]}xx.{sig}")

    # Deleting the account revokes its tokens (the controller makes a new one, with a new UID).
    assert (await api.delete(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")).status == 200
    await eventually(lambda: refused(fresh.token), "the token refused once its account is gone")


def test_kubectl_create_token_and_use_it(kubectl: Kubectl) -> None:
    ns = f"sa-{uuid.uuid4().hex[:8]}"
    kubectl.apply(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
    try:
        k = kubectl.in_namespace(ns)
        deadline = time.monotonic() + 30
        while k.run("get", "serviceaccount", "default").returncode != 0:
            assert time.monotonic() < deadline, "no default service account"
            time.sleep(0.2)
        token = k.ok("create", "token", "default", "--duration", "15m").strip()
        assert token.count(".") == 2
        who = k.ok("auth", "whoami", "--token", token)
        assert f"system:serviceaccount:{ns}:default" in who
        denied = k.fail("get", "pods", "--token", token)
        assert f'User "system:serviceaccount:{ns}:default" cannot list resource "pods"' in denied.stderr
        short = k.fail("create", "token", "default", "--duration", "1m")
        assert "may not specify a duration less than 10 minutes" in short.stderr

        # kubectl-lite prints the token alone as well.
        lite = subprocess.run(
            [sys.executable, "-m", "kubectl_lite.main", "--kubeconfig", str(kubectl.kubeconfig), "-n", ns,
             "create", "token", "default", "--duration", "20m"],
            capture_output=True, text=True, timeout=60,
        )
        assert lite.returncode == 0, lite.stderr
        assert f"system:serviceaccount:{ns}:default" in k.ok("auth", "whoami", "--token", lite.stdout.strip())
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", timeout=30)


@pytest.mark.skipif(os.geteuid() != 0, reason="the token volume is a tmpfs mount: needs root")
async def test_node_agent_volume_mounts_and_refreshes_a_bound_token(
    api: RawApi, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await default_account(api, namespace)

    async def root_ca() -> bool:
        return (await api.get(f"/api/v1/namespaces/{namespace}/configmaps/kube-root-ca.crt")).status == 200

    await eventually(root_ca, "kube-root-ca.crt")
    made = await api.post(f"/api/v1/namespaces/{namespace}/pods", pod("tokened"))
    assert made.status == 201
    typed, errs = decode(Pod, made.body)
    assert typed is not None, errs
    (vol,) = typed.spec.volumes or []
    # 80% of 3607 s is too long to wait for: refresh after 3.6 s instead.
    monkeypatch.setattr(volumes, "TOKEN_REFRESH_AT", 0.001)
    manager = volumes.VolumeManager(tmp_path, host_ip="127.0.0.1")
    whoami = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    review = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    async with ApiClient(load_kubeconfig(api.cp.kubeconfig)) as client:
        try:
            mounted = await manager.setup(typed, ObjectSource(client, namespace))
            path = mounted[vol.name].path
            assert mounted[vol.name].readonly
            assert sorted(p.name for p in path.iterdir()) == ["ca.crt", "namespace", "token"]
            assert (path / "namespace").read_text() == namespace
            assert (path / "ca.crt").read_text() == api.cp.ca_file.read_text()
            first = (path / "token").read_text()
            me = await as_user(api, first).post(review, whoami)
            assert me.status == 201 and me.body["status"]["userInfo"]["username"].endswith(f":{namespace}:default")

            async def replaced() -> str | None:
                now = (path / "token").read_text()
                return now if now != first else None

            second = await eventually(replaced, "the token file refreshed")
            assert (await as_user(api, second).post(review, whoami)).status == 201
        finally:
            await manager.stop_refreshing()
            manager.teardown(typed.metadata.uid or "")
    assert not (tmp_path / "pods" / (typed.metadata.uid or "")).exists()


async def test_nodes_only_get_tokens_bound_to_their_own_pods(api: RawApi, namespace: str) -> None:
    """NodeRestriction: a node agent's credential gets tokens for its own pods' accounts, bound to
    one of its pods; never an unbound token, nor one bound to another node's pod."""
    await default_account(api, namespace)
    node = f"tok-{uuid.uuid4().hex[:6]}"
    kubeconfig = write_node_kubeconfig(api.cp.data_dir, node)
    mine = await api.post(f"/api/v1/namespaces/{namespace}/pods", pod("mine", nodeName=node))
    theirs = await api.post(f"/api/v1/namespaces/{namespace}/pods", pod("theirs", nodeName="elsewhere"))
    assert mine.status == 201 and theirs.status == 201
    sa = S.by_resource("", "v1", "serviceaccounts")
    assert sa is not None
    try:
        async with ApiClient(load_kubeconfig(kubeconfig)) as as_node:
            async def token(**spec: Any) -> dict[str, Any]:
                body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                        "metadata": {"name": "default"}, "spec": spec}
                return await as_node.create(sa, body, namespace, subresource="token")

            async def allowed() -> dict[str, Any]:
                # The node authorizer learns about the pod from its cache: retry until it has.
                return await token(boundObjectRef={"kind": "Pod", "name": "mine", "uid": mine.body["metadata"]["uid"]})

            got = await eventually(allowed, "a token for the node's own pod")
            assert got["status"]["token"].count(".") == 2
            for spec, why in (({}, "node requested token not bound to a pod"),
                              ({"boundObjectRef": {"kind": "Pod", "name": "theirs"}},
                               "node requested token bound to a pod scheduled on a different node")):
                with pytest.raises(ApiError) as refused:
                    await token(**spec)
                assert refused.value.code == 403
                assert refused.value.message == f'serviceaccounts "default" is forbidden: {why}'
    finally:
        kubeconfig.unlink(missing_ok=True)
