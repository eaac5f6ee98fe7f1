"""The Deployment controller against a real control plane (with its ReplicaSet controller), pods
run by the fake kubelet; rollout invariants are checked at every event of a pod watch stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api.apps_v1 import Deployment, ReplicaSet
from apimachinery.api.core_v1 import Node, PodTemplateSpec
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.errors import ApiError
from controlplane.controllers import deployment_util as du
from tests.fixtures.apiserver import ControlPlaneProcess
from tests.fixtures.fake_kubelet import (
    SCHEDULER_NAME,
    FakeKubelet,
    PodState,
    PodWatch,
    eventually,
    pod_is_ready,
    pod_is_terminating,
)
from tests.fixtures.kubectl import Kubectl

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def client(apiserver: ControlPlaneProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as c:
        yield c


def deploy_body(name: str, replicas: int, *, version: str = "v1", strategy: dict[str, Any] | None = None,
                progress_deadline: int | None = None, history: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "strategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": name, "version": version}},
            "spec": {"schedulerName": SCHEDULER_NAME,
                     "containers": [{"name": "c", "image": f"busybox:{version}"}]},
        },
    }
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    if history is not None:
        spec["revisionHistoryLimit"] = history
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


async def set_version(client: ApiClient, ns: str, name: str, version: str) -> None:
    await client.patch(client.resource(Deployment), name, {"spec": {"template": {
        "metadata": {"labels": {"version": version}},
        "spec": {"containers": [{"name": "c", "image": f"busybox:{version}"}]}}}},
        patch_type="strategic", namespace=ns)


async def get_deploy(client: ApiClient, ns: str, name: str) -> dict[str, Any]:
    return await client.get(client.resource(Deployment), name, ns)


async def replicasets(client: ApiClient, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.list(client.resource(ReplicaSet), ns))["items"]
    return items


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return None


def rolled_out(d: dict[str, Any]) -> bool:
    """What `kubectl rollout status` waits for."""
    st = d.get("status") or {}
    want = d["spec"]["replicas"]
    return (d["metadata"]["generation"] <= st.get("observedGeneration", 0)
            and st.get("updatedReplicas", 0) == want and st.get("replicas", 0) == want
            and st.get("availableReplicas", 0) >= st.get("updatedReplicas", 0))


async def wait_rolled_out(client: ApiClient, ns: str, name: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        d = await get_deploy(client, ns, name)
        return d if rolled_out(d) else None

    result: dict[str, Any] = await eventually(probe)
    return result


def version_of(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"].get("version"))


# ---------------------------------------------------------------------------------------------
# Pure arithmetic (Kubernetes' rounding rules)


def test_fenceposts_round_surge_up_and_unavailable_down() -> None:
    assert du.scaled_value("25%", 10, True) == 3 and du.scaled_value("25%", 10, False) == 2
    assert du.scaled_value(4, 10, True) == 4 and du.scaled_value("0%", 3, True) == 0
    d = Deployment.model_validate(deploy_body("x", 3, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}}))
    # Both would be 0: unavailability becomes 1 so the rollout can move at all.
    assert du.resolve_fenceposts(d) == (0, 1)


def test_template_hash_is_stable_safe_and_breaks_collisions() -> None:
    t = PodTemplateSpec.model_validate(deploy_body("x", 1)["spec"]["template"])
    h = du.compute_hash(t)
    assert h == du.compute_hash(t.copy_deep())
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert du.compute_hash(t, 1) != h and du.compute_hash(t, 1) != du.compute_hash(t, 2)
    other = PodTemplateSpec.model_validate(deploy_body("x", 1, version="v2")["spec"]["template"])
    assert du.compute_hash(other) != h
    assert du.equal_ignore_hash(du.template_with_hash(t, h), t)


# ---------------------------------------------------------------------------------------------
# Rollouts


async def test_rolling_update_stays_within_surge_and_unavailability(client: ApiClient, namespace: str) -> None:
    replicas = 10
    # 25% of 10: surge rounds up to 3, unavailability rounds down to 2.
    most, least = replicas + 3, replicas - 2
    seen_total = [0]

    def bounds(pods: PodState) -> str | None:
        live = [p for p in pods.values() if not pod_is_terminating(p)]
        ready = [p for p in live if pod_is_ready(p)]
        seen_total[0] = max(seen_total[0], len(live))
        if len(live) > most:
            return f"{len(live)} pods > {most}"
        if len(ready) < least:
            return f"only {len(ready)} available < {least}"
        return None

    async with FakeKubelet(client, namespace):
        await client.create(client.resource(Deployment), deploy_body("web", replicas), namespace)
        first = await wait_rolled_out(client, namespace, "web")
        assert first["metadata"]["annotations"][du.REVISION] == "1"
        async with PodWatch(client, namespace) as watch:
            await watch.wait_for(lambda pods: len(pods) == replicas and all(map(pod_is_ready, pods.values())))
            watch.checks.append(bounds)
            await set_version(client, namespace, "web", "v2")
            await watch.wait_for(lambda pods: len(pods) == replicas
                                 and all(version_of(p) == "v2" and pod_is_ready(p) for p in pods.values()))
            d = await wait_rolled_out(client, namespace, "web")
            assert watch.violations == []
            assert seen_total[0] > replicas  # it did surge
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (10, 10, 10, 10)
    assert st.get("unavailableReplicas", 0) == 0 and st["observedGeneration"] == d["metadata"]["generation"]
    assert d["metadata"]["annotations"][du.REVISION] == "2"
    progressing, available = condition(d, "Progressing"), condition(d, "Available")
    assert progressing and progressing["status"] == "True" and progressing["reason"] == "NewReplicaSetAvailable"
    assert available and available["status"] == "True" and available["reason"] == "MinimumReplicasAvailable"

    rss = {rs["metadata"]["annotations"][du.REVISION]: rs for rs in await replicasets(client, namespace)}
    assert set(rss) == {"1", "2"}
    for rs in rss.values():
        h = rs["metadata"]["labels"][du.POD_TEMPLATE_HASH]
        assert rs["metadata"]["name"] == f"web-{h}"
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", du.POD_TEMPLATE_HASH: h}
        assert rs["spec"]["template"]["metadata"]["labels"][du.POD_TEMPLATE_HASH] == h
        (ref,) = rs["metadata"]["ownerReferences"]
        assert ref["kind"] == "Deployment" and ref["uid"] == d["metadata"]["uid"] and ref["controller"] is True
        assert rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "10"
        assert rs["metadata"]["annotations"][du.MAX_REPLICAS] == "13"
    assert rss["1"]["spec"]["replicas"] == 0 and rss["2"]["spec"]["replicas"] == 10


async def test_recreate_never_runs_old_and_new_pods_together(client: ApiClient, namespace: str) -> None:
    def exclusive(pods: PodState) -> str | None:
        versions = {version_of(p) for p in pods.values()}
        return f"pods of {sorted(versions)} exist together" if len(versions) > 1 else None

    async with FakeKubelet(client, namespace), PodWatch(client, namespace, [exclusive]) as watch:
        await client.create(client.resource(Deployment), deploy_body("rec", 4, strategy={"type": "Recreate"}),
                            namespace)
        await wait_rolled_out(client, namespace, "rec")
        await set_version(client, namespace, "rec", "v2")
        await watch.wait_for(lambda pods: len(pods) == 4 and all(version_of(p) == "v2" for p in pods.values()))
        await wait_rolled_out(client, namespace, "rec")
        assert watch.violations == []


async def test_rollback_makes_the_old_replicaset_the_newest_revision(client: ApiClient, namespace: str) -> None:
    async with FakeKubelet(client, namespace):
        await client.create(client.resource(Deployment), deploy_body("rb", 3), namespace)
        await wait_rolled_out(client, namespace, "rb")
        (v1,) = await replicasets(client, namespace)
        await set_version(client, namespace, "rb", "v2")
        await wait_rolled_out(client, namespace, "rb")
        await set_version(client, namespace, "rb", "v1")  # the template of revision 1 again
        d = await wait_rolled_out(client, namespace, "rb")
        assert d["metadata"]["annotations"][du.REVISION] == "3"
        rss = {rs["metadata"]["name"]: rs for rs in await replicasets(client, namespace)}
        assert len(rss) == 2  # no third ReplicaSet: the first one came back
        back = rss[v1["metadata"]["name"]]
        assert back["metadata"]["uid"] == v1["metadata"]["uid"]
        assert back["metadata"]["annotations"][du.REVISION] == "3"
        assert back["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
        assert back["spec"]["replicas"] == 3
        (v2,) = [rs for name, rs in rss.items() if name != v1["metadata"]["name"]]
        assert v2["metadata"]["annotations"][du.REVISION] == "2" and v2["spec"]["replicas"] == 0


async def test_paused_deployment_does_not_roll_but_scales(client: ApiClient, namespace: str) -> None:
    async with FakeKubelet(client, namespace):
        await client.create(client.resource(Deployment), deploy_body("pz", 3), namespace)
        await wait_rolled_out(client, namespace, "pz")
        await client.patch(client.resource(Deployment), "pz", {"spec": {"paused": True}}, namespace=namespace)
        await set_version(client, namespace, "pz", "v2")
        await client.patch(client.resource(Deployment), "pz", {"spec": {"replicas": 5}}, namespace=namespace)

        async def observed() -> dict[str, Any] | None:
            d = await get_deploy(client, namespace, "pz")
            ok = d["status"].get("observedGeneration") == d["metadata"]["generation"] and \
                d["status"].get("replicas") == 5
            return d if ok else None

        d = await eventually(observed)
        progressing = condition(d, "Progressing")
        assert progressing and progressing["status"] == "Unknown" and progressing["reason"] == "DeploymentPaused"
        (rs,) = await replicasets(client, namespace)  # no new ReplicaSet while paused
        assert rs["spec"]["replicas"] == 5 and rs["spec"]["template"]["metadata"]["labels"]["version"] == "v1"
        assert d["status"].get("updatedReplicas", 0) == 0

        await client.patch(client.resource(Deployment), "pz", {"spec": {"paused": False}}, namespace=namespace)
        d = await wait_rolled_out(client, namespace, "pz")
        assert {rs["spec"]["template"]["metadata"]["labels"]["version"]: rs["spec"]["replicas"]
                for rs in await replicasets(client, namespace)} == {"v1": 0, "v2": 5}


async def test_resizing_mid_rollout_scales_replicasets_proportionally(client: ApiClient, namespace: str) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 0}}
    # v2 pods never become Ready, so the rollout stops at 10 old + 3 new.
    async with FakeKubelet(client, namespace, ready=lambda pod: (pod.metadata.labels or {}).get("version") != "v2"):
        await client.create(client.resource(Deployment), deploy_body("prop", 10, strategy=strategy), namespace)
        await wait_rolled_out(client, namespace, "prop")
        await set_version(client, namespace, "prop", "v2")

        async def sizes() -> dict[str, int]:
            return {rs["spec"]["template"]["metadata"]["labels"]["version"]: rs["spec"]["replicas"]
                    for rs in await replicasets(client, namespace)}

        await eventually(lambda: _equals(sizes(), {"v1": 10, "v2": 3}))
        await client.patch(client.resource(Deployment), "prop", {"spec": {"replicas": 20}}, namespace=namespace)
        # 23 allowed (20 + surge 3), 10 more to share 10:3 -> v1 10*23/13 = 17.7 -> 18, v2 gets the rest.
        await eventually(lambda: _equals(sizes(), {"v1": 18, "v2": 5}))
        for rs in await replicasets(client, namespace):
            assert rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "20"
            assert rs["metadata"]["annotations"][du.MAX_REPLICAS] == "23"


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_progress_deadline_exceeded_when_pods_never_get_ready(
        client: ApiClient, namespace: str, kubectl: Kubectl) -> None:
    async with FakeKubelet(client, namespace, ready=lambda pod: False):
        await client.create(client.resource(Deployment), deploy_body("stuck", 2, progress_deadline=2), namespace)

        async def timed_out() -> dict[str, Any] | None:
            d = await get_deploy(client, namespace, "stuck")
            c = condition(d, "Progressing")
            return d if c and c["reason"] == "ProgressDeadlineExceeded" else None

        d = await eventually(timed_out)
        progressing = condition(d, "Progressing")
        assert progressing and progressing["status"] == "False"
        assert progressing["message"].endswith("has timed out progressing.")
        available = condition(d, "Available")
        assert available and available["status"] == "False" and available["reason"] == "MinimumReplicasUnavailable"
        result = await asyncio.to_thread(kubectl.in_namespace(namespace).fail, "rollout", "status", "deployment/stuck",
                                         "--timeout=30s")
        assert 'deployment "stuck" exceeded its progress deadline' in result.stderr


async def test_kubectl_rollout_restart_undo_and_status(client: ApiClient, namespace: str, kubectl: Kubectl) -> None:
    k = kubectl.in_namespace(namespace)
    async with FakeKubelet(client, namespace):
        await client.create(client.resource(Deployment), deploy_body("kc", 2, history=1), namespace)
        out = await asyncio.to_thread(k.ok, "rollout", "status", "deployment/kc", "--timeout=60s")
        assert 'deployment "kc" successfully rolled out' in out
        await asyncio.to_thread(k.ok, "rollout", "restart", "deployment/kc")
        out = await asyncio.to_thread(k.ok, "rollout", "status", "deployment/kc", "--timeout=60s")
        assert "successfully rolled out" in out
        d = await wait_rolled_out(client, namespace, "kc")
        assert d["metadata"]["annotations"][du.REVISION] == "2"
        assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]

        await asyncio.to_thread(k.ok, "rollout", "undo", "deployment/kc")
        await asyncio.to_thread(k.ok, "rollout", "status", "deployment/kc", "--timeout=60s")
        d = await wait_rolled_out(client, namespace, "kc")
        assert d["metadata"]["annotations"][du.REVISION] == "3"
        assert "kubectl.kubernetes.io/restartedAt" not in (d["spec"]["template"]["metadata"].get("annotations") or {})

        # revisionHistoryLimit 1: of the two old ReplicaSets only the newest stays.
        async def history() -> list[str] | None:
            revs = sorted(rs["metadata"]["annotations"][du.REVISION] for rs in await replicasets(client, namespace))
            return revs if revs == ["2", "3"] else None

        await eventually(history)
        listing = await asyncio.to_thread(k.ok, "rollout", "history", "deployment/kc")
        assert "2" in listing and "3" in listing


async def test_recreated_deployment_adopts_its_orphaned_replicaset(client: ApiClient, namespace: str) -> None:
    deploy_rt = client.resource(Deployment)
    async with FakeKubelet(client, namespace), PodWatch(client, namespace) as watch:
        await client.create(deploy_rt, deploy_body("adopt", 3), namespace)
        await wait_rolled_out(client, namespace, "adopt")
        (rs,) = await replicasets(client, namespace)
        pods_before = set(watch.pods)
        await client.delete(deploy_rt, "adopt", namespace, propagation_policy="Orphan")

        async def orphaned() -> bool:
            (left,) = await replicasets(client, namespace)
            return not left["metadata"].get("ownerReferences")

        await eventually(orphaned)

        async def deployment_gone() -> bool:
            try:
                await client.get(deploy_rt, "adopt", namespace)
            except ApiError as e:
                return e.code == 404
            return False

        await eventually(deployment_gone)
        created = await client.create(deploy_rt, deploy_body("adopt", 3), namespace)
        d = await wait_rolled_out(client, namespace, "adopt")
        (again,) = await replicasets(client, namespace)
        assert again["metadata"]["uid"] == rs["metadata"]["uid"]
        (ref,) = again["metadata"]["ownerReferences"]
        assert ref["uid"] == created["metadata"]["uid"] and ref["controller"] is True
        assert d["metadata"]["annotations"][du.REVISION] == "1"
        assert set(watch.pods) == pods_before  # the same pods: nothing was recreated


async def test_rolls_out_on_hollow_nodes_through_the_real_scheduler(client: ApiClient, namespace: str) -> None:
    """End to end with the rest of the system: the control plane's scheduler binds the pods,
    hollow nodes run them (and take a moment to stop them), and the invariants still hold."""
    from nodeagent.hollow import HollowNodes, hollow_configs

    prefix = f"hd-{uuid.uuid4().hex[:6]}"
    configs = hollow_configs(prefix, 3, node_ip="10.161.7.1")
    taint = {"key": "test.kube-lite.io/private", "value": prefix, "effect": "NoSchedule"}
    for c in configs:
        c.taints = [taint]  # other tests' pods stay off these nodes
    agent = HollowNodes(client, configs, lease_interval=2, status_interval=300, stop_delay=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    body = deploy_body("e2e", 6)
    pod_spec = body["spec"]["template"]["spec"]
    del pod_spec["schedulerName"]
    pod_spec["tolerations"] = [{"key": taint["key"], "operator": "Equal", "value": prefix, "effect": "NoSchedule"}]
    pod_spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [c.name for c in configs]}]}]}}}

    def bounds(pods: PodState) -> str | None:
        live = [p for p in pods.values() if not pod_is_terminating(p)]
        ready = [p for p in live if pod_is_ready(p)]
        # 25% of 6: surge 2 (rounded up), unavailable 1 (rounded down).
        if len(live) > 8 or len(ready) < 5:
            return f"{len(live)} live, {len(ready)} ready"
        return None

    try:
        await asyncio.wait_for(agent.registered.wait(), 60)
        await client.create(client.resource(Deployment), body, namespace)
        await wait_rolled_out(client, namespace, "e2e")
        async with PodWatch(client, namespace) as watch:
            await watch.wait_for(lambda pods: len(pods) == 6 and all(map(pod_is_ready, pods.values())))
            watch.checks.append(bounds)
            await set_version(client, namespace, "e2e", "v2")
            await watch.wait_for(lambda pods: len(pods) == 6
                                 and all(version_of(p) == "v2" and pod_is_ready(p) for p in pods.values()))
            await wait_rolled_out(client, namespace, "e2e")
            assert watch.violations == []
            assert {p["spec"]["nodeName"] for p in watch.pods.values()} <= {c.name for c in configs}
            assert all(p["status"]["phase"] == "Running" for p in watch.pods.values())
    finally:
        await client.delete(client.resource(Deployment), "e2e", namespace)
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        for c in configs:
            try:
                await client.delete(client.resource(Node), c.name)
            except ApiError:
                pass
