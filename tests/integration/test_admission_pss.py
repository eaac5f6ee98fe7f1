"""PodSecurity admission against a real control plane: each level's denial word for word as
Kubernetes words it, privileged namespaces letting anything in, warn mode as Warning headers,
workloads warned about rather than refused, and invalid level labels refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from tests.fixtures.apiserver import RawApi, raw_api, running_control_plane
from tests.fixtures.kubectl import Kubectl

pytestmark = pytest.mark.integration

LABEL = "pod-security.kubernetes.io/"
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"

# A pod that meets the restricted level (what most of the checks below take away one by one).
RESTRICTED_SC = {
    "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod(name: str, *, spec: dict[str, Any] | None = None, sc: dict[str, Any] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if sc is not None:
        container["securityContext"] = sc
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container], **(spec or {})}}


async def _namespace(api: RawApi, labels: dict[str, str]) -> str:
    name = f"pss-{uuid.uuid4().hex[:8]}"
    r = await api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": name, "labels": labels}})
    assert r.status == 201, r.body
    return name


@pytest_asyncio.fixture(loop_scope="session")
async def levels(api: RawApi) -> AsyncIterator[dict[str, str]]:
    """One namespace per level (enforce), plus one that only warns at restricted."""
    made = {
        "privileged": await _namespace(api, {LABEL + "enforce": "privileged"}),
        "baseline": await _namespace(api, {LABEL + "enforce": "baseline"}),
        "restricted": await _namespace(api, {LABEL + "enforce": "restricted"}),
        "warn": await _namespace(api, {LABEL + "warn": "restricted", LABEL + "warn-version": "v1.30"}),
    }
    try:
        yield made
    finally:
        for ns in made.values():
            await api.delete(f"/api/v1/namespaces/{ns}")


async def _create(api: RawApi, ns: str, obj: dict[str, Any], plural: str = "pods", group: str = "") -> Any:
    base = f"/apis/{group}/namespaces/{ns}" if group else f"/api/v1/namespaces/{ns}"
    return await api.post(f"{base}/{plural}", obj)


async def test_restricted_refuses_a_plain_pod_with_every_reason(api: RawApi, levels: dict[str, str]) -> None:
    r = await _create(api, levels["restricted"], pod("plain"))
    assert r.status == 403 and r.reason == "Forbidden"
    assert r.body["message"] == (
        'pods "plain" is forbidden: violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )
    assert r.body["details"] == {"name": "plain", "kind": "pods"}
    missing = await api.get(f"/api/v1/namespaces/{levels['restricted']}/pods/plain")
    assert missing.status == 404  # nothing was stored


async def test_restricted_refuses_privileged_pods_with_the_exact_reason(api: RawApi, levels: dict[str, str]) -> None:
    r = await _create(api, levels["restricted"], pod("priv", sc={**RESTRICTED_SC, "privileged": True}))
    assert r.status == 403
    assert r.body["message"] == (
        'pods "priv" is forbidden: violates PodSecurity "restricted:latest": '
        'privileged (container "c" must not set securityContext.privileged=true)'
    )


async def test_restricted_admits_a_pod_that_meets_it(api: RawApi, levels: dict[str, str]) -> None:
    r = await _create(api, levels["restricted"], pod("good", sc=RESTRICTED_SC))
    assert r.status == 201, r.body
    # Only NET_BIND_SERVICE may come back after dropping ALL.
    caps = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "NET_ADMIN"]}
    r = await _create(api, levels["restricted"], pod("caps", sc={**RESTRICTED_SC, "capabilities": caps}))
    assert r.status == 403
    assert r.body["message"].endswith(
        'violates PodSecurity "restricted:latest": unrestricted capabilities '
        '(container "c" must not include "NET_ADMIN" in securityContext.capabilities.add)'
    ), r.body["message"]


async def test_restricted_names_runasuser_zero_and_volume_types(api: RawApi, levels: dict[str, str]) -> None:
    spec = {"securityContext": {"runAsUser": 0}, "volumes": [{"name": "host", "hostPath": {"path": "/tmp"}}]}
    r = await _create(api, levels["restricted"], pod("root", spec=spec, sc=RESTRICTED_SC))
    assert r.status == 403
    assert r.body["message"] == (
        'pods "root" is forbidden: violates PodSecurity "restricted:latest": '
        'restricted volume types (volume "host" uses restricted volume type "hostPath"), '
        'runAsUser=0 (pod must not set runAsUser=0)'
    )


async def test_baseline_refuses_host_namespaces_ports_paths_and_capabilities(api: RawApi, levels: dict[str, str]) -> None:
    spec = {"hostNetwork": True, "hostPID": True, "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}
    sc = {"capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}}
    body = pod("host", spec=spec, sc=sc)
    body["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "hostPort": 8080}]
    r = await _create(api, levels["baseline"], body)
    assert r.status == 403
    assert r.body["message"] == (
        'pods "host" is forbidden: violates PodSecurity "baseline:latest": '
        'host namespaces (hostNetwork, hostPID), '
        'hostPort (container "c" uses hostPort 8080), '
        'non-default capabilities (container "c" must not include "SYS_ADMIN" in securityContext.capabilities.add), '
        'hostPath volumes (volume "root")'
    )


async def test_baseline_refuses_privileged_sysctls_procmount_seccomp_selinux(api: RawApi, levels: dict[str, str]) -> None:
    spec = {"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"},
                                            {"name": "net.ipv4.tcp_syncookies", "value": "1"}],
                                "seccompProfile": {"type": "Unconfined"}}}
    sc = {"privileged": True, "procMount": "Unmasked", "seLinuxOptions": {"type": "spc_t"}}
    r = await _create(api, levels["baseline"], pod("many", spec=spec, sc=sc))
    assert r.status == 403
    assert r.body["message"] == (
        'pods "many" is forbidden: violates PodSecurity "baseline:latest": '
        'privileged (container "c" must not set securityContext.privileged=true), '
        'procMount (container "c" must not set securityContext.procMount to "Unmasked"), '
        'seLinuxOptions (container "c" set forbidden securityContext.seLinuxOptions: type "spc_t"), '
        'forbidden sysctls (kernel.msgmax), '
        'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")'
    )


async def test_baseline_admits_a_plain_pod(api: RawApi, levels: dict[str, str]) -> None:
    r = await _create(api, levels["baseline"], pod("plain"))
    assert r.status == 201, r.body


async def test_privileged_namespaces_admit_privileged_pods(api: RawApi, levels: dict[str, str]) -> None:
    spec = {"hostNetwork": True, "hostPID": True, "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}
    r = await _create(api, levels["privileged"], pod("priv", spec=spec, sc={"privileged": True}))
    assert r.status == 201, r.body
    assert not r.headers.getall("Warning", [])


async def test_unlabelled_namespaces_take_the_default_privileged_level(api: RawApi, namespace: str) -> None:
    r = await _create(api, namespace, pod("priv", sc={"privileged": True}))
    assert r.status == 201, r.body


async def test_warn_mode_admits_with_a_warning_header(api: RawApi, levels: dict[str, str]) -> None:
    r = await _create(api, levels["warn"], pod("warned"))
    assert r.status == 201, r.body
    warnings = r.headers.getall("Warning", [])
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith('299 - "would violate PodSecurity \\"restricted:v1.30\\": allowPrivilegeEscalation != false')
    # A pod meeting the level gets no warning.
    r = await _create(api, levels["warn"], pod("fine", sc=RESTRICTED_SC))
    assert r.status == 201 and not r.headers.getall("Warning", [])


async def test_deployments_are_warned_not_refused(api: RawApi, levels: dict[str, str]) -> None:
    ns = levels["restricted"]
    deploy = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "replicas": 0,
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox",
                                                       "securityContext": {"privileged": True}}]}}},
    }
    r = await _create(api, ns, deploy, "deployments", "apps/v1")
    assert r.status == 201, r.body
    warnings = r.headers.getall("Warning", [])
    assert any('would violate PodSecurity \\"restricted:latest\\": privileged (container \\"c\\" must not set '
               'securityContext.privileged=true)' in w for w in warnings), warnings


async def test_invalid_level_labels_are_refused(api: RawApi) -> None:
    name = f"pss-{uuid.uuid4().hex[:8]}"
    r = await api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": name, "labels": {LABEL + "enforce": "strict"}}})
    assert r.status == 422
    assert r.body["details"]["causes"][0]["field"] == "metadata.labels[pod-security.kubernetes.io/enforce]"
    assert 'Invalid value: "strict": must be one of privileged, baseline, restricted' in r.body["message"]


async def test_relabelling_a_namespace_takes_effect_for_new_pods(api: RawApi, namespace: str) -> None:
    for name in ("before", "before2"):
        r = await _create(api, namespace, pod(name, sc={"privileged": True}))
        assert r.status == 201
    assert (await _create(api, namespace, pod("hostnet", spec={"hostNetwork": True}))).status == 201
    assert (await _create(api, namespace, pod("fine"))).status == 201
    patch = {"metadata": {"labels": {LABEL + "enforce": "baseline"}}}
    r = await api.patch(f"/api/v1/namespaces/{namespace}", patch, "application/merge-patch+json")
    assert r.status == 200, r.body
    # The pods already there keep running, but the change says which ones the new level refuses.
    assert r.headers.getall("Warning", []) == [
        f'299 - "existing pods in namespace \\"{namespace}\\" violate the new PodSecurity enforce level '
        '\\"baseline:latest\\""',
        '299 - "before (and 1 other pod): privileged"',
        '299 - "hostnet: host namespaces"',
    ]
    r = await _create(api, namespace, pod("after", sc={"privileged": True}))
    assert r.status == 403
    assert 'violates PodSecurity "baseline:latest": privileged' in r.body["message"]
    # Updating a pod admitted before (metadata only) is not re-judged.
    r = await api.patch(f"/api/v1/namespaces/{namespace}/pods/before", {"metadata": {"labels": {"a": "b"}}},
                        "application/merge-patch+json")
    assert r.status == 200, r.body


def test_the_pod_security_manifest_with_the_real_kubectl(kubectl: Kubectl) -> None:
    """manifests/pod-security.yaml: its hardened pod is admitted, a privileged one refused."""
    ns = f"secure-{uuid.uuid4().hex[:8]}"
    docs = list(yaml.safe_load_all((MANIFESTS / "pod-security.yaml").read_text()))
    docs[0]["metadata"]["name"] = ns
    for doc in docs[1:]:
        doc["metadata"]["namespace"] = ns
    try:
        out = kubectl.apply(yaml.safe_dump_all(docs))
        assert f"namespace/{ns} created" in out and "pod/hardened created" in out
        bad = kubectl.in_namespace(ns).fail("run", "bad", "--image=busybox", "--privileged")
        assert bad.stderr.strip() == (
            'Error from server (Forbidden): pods "bad" is forbidden: violates PodSecurity "restricted:latest": '
            'privileged (container "bad" must not set securityContext.privileged=true), '
            'allowPrivilegeEscalation != false (container "bad" must set securityContext.allowPrivilegeEscalation=false), '
            'unrestricted capabilities (container "bad" must set securityContext.capabilities.drop=["ALL"]), '
            'runAsNonRoot != true (pod or container "bad" must set securityContext.runAsNonRoot=true), '
            'seccompProfile (pod or container "bad" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
        )
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", timeout=30)


async def test_the_cluster_default_level_is_a_flag() -> None:
    """``--pod-security-default baseline``: unlabelled namespaces refuse what baseline refuses;
    a namespace's own label still wins."""
    with running_control_plane("--pod-security-default", "baseline") as cp:
        async with raw_api(cp) as api:
            plain = await _namespace(api, {})
            r = await _create(api, plain, pod("priv", sc={"privileged": True}))
            assert r.status == 403
            assert r.body["message"] == ('pods "priv" is forbidden: violates PodSecurity "baseline:latest": '
                                         'privileged (container "c" must not set securityContext.privileged=true)')
            assert (await _create(api, plain, pod("plain"))).status == 201
            opened = await _namespace(api, {LABEL + "enforce": "privileged"})
            assert (await _create(api, opened, pod("priv", sc={"privileged": True}))).status == 201
