"""Control plane flags that change API behaviour, /metrics, and allocated Service fields kept
across updates."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from tests.fixtures.apiserver import ControlPlaneProcess, RawApi, raw_api, running_control_plane

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def short_tolerations_cp() -> Iterator[ControlPlaneProcess]:
    with running_control_plane("apiserver", "--default-toleration-seconds", "7", prefix="kl-flags-") as cp:
        yield cp


@pytest_asyncio.fixture(loop_scope="session")
async def flags_api(short_tolerations_cp: ControlPlaneProcess) -> AsyncIterator[RawApi]:
    async with raw_api(short_tolerations_cp) as a:
        yield a


async def test_default_toleration_seconds_flag(flags_api: RawApi) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tol"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    r = await flags_api.post("/api/v1/namespaces/default/pods", pod)
    assert r.status == 201, r.body
    tolerations = {t["key"]: t for t in r.body["spec"]["tolerations"]}
    assert tolerations["node.kubernetes.io/unreachable"]["tolerationSeconds"] == 7
    assert tolerations["node.kubernetes.io/not-ready"]["tolerationSeconds"] == 7
    # A pod's own toleration is left alone.
    pod["metadata"]["name"] = "own"
    pod["spec"]["tolerations"] = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                   "effect": "NoExecute", "tolerationSeconds": 1}]
    r = await flags_api.post("/api/v1/namespaces/default/pods", pod)
    secs = {t["key"]: t.get("tolerationSeconds") for t in r.body["spec"]["tolerations"]}
    assert secs == {"node.kubernetes.io/unreachable": 1, "node.kubernetes.io/not-ready": 7}


async def test_metrics_need_auth_and_report_controllers(api: RawApi) -> None:
    assert (await api.get("/metrics", auth=False)).status == 401
    r = await api.get("/metrics")
    assert r.status == 200 and isinstance(r.body, str)
    # The full control plane runs its controllers in-process; their reconcile metrics show here.
    assert "controller_runtime_reconcile_total" in r.body


async def test_service_update_keeps_allocated_fields(flags_api: RawApi) -> None:
    base = "/api/v1/namespaces/default/services"
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "keep"},
           "spec": {"type": "NodePort", "clusterIP": "10.96.0.50", "selector": {"app": "a"},
                    "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}}
    assert (await flags_api.post(base, svc)).status == 201
    # A manifest without the allocated values (as kubectl replace sends it) keeps them.
    replaced = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "keep"},
                "spec": {"type": "NodePort", "selector": {"app": "b"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    r = await flags_api.put(f"{base}/keep", replaced)
    assert r.status == 200, r.body
    assert r.body["spec"]["clusterIP"] == "10.96.0.50" and r.body["spec"]["ports"][0]["nodePort"] == 30080
    # Switching to ClusterIP drops the node ports.
    to_cluster_ip = {**replaced, "spec": {**replaced["spec"], "type": "ClusterIP"}}
    r = await flags_api.put(f"{base}/keep", to_cluster_ip)
    assert r.status == 200, r.body
    assert "nodePort" not in r.body["spec"]["ports"][0]
