"""The official Kubernetes Python client (``kubernetes``) against a real kube-lite control plane.

The client deserializes every answer into its generated models and raises (ValueError, or a
pydantic ValidationError, which is one) when a field the Kubernetes types require is missing or
null. So every read here also checks that the server emits what Kubernetes would: container status
image/imageID/restartCount, ReplicaSet and Scale status.replicas, all ten nodeInfo fields, Event
involvedObject, and so on. Some objects are written with the DynamicClient on purpose: it sends
bodies as they are, where the typed API would refuse a partial one before the server sees it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

from tests.fixtures.apiserver import ControlPlaneProcess

pytestmark = pytest.mark.integration


def _api_client(cp: ControlPlaneProcess) -> client.ApiClient:
    """A fresh Configuration and ApiClient from a control plane's kubeconfig."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cp.kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


@pytest.fixture(scope="module")
def api_client(bare_apiserver: ControlPlaneProcess) -> Iterator[client.ApiClient]:
    """The typed client for an API-server-only control plane: the tests write status themselves
    and no controller races them."""
    api = _api_client(bare_apiserver)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def cluster_client(apiserver: ControlPlaneProcess) -> Iterator[client.ApiClient]:
    """The typed client for the full control plane (controllers and scheduler running)."""
    api = _api_client(apiserver)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="module")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="module")
def dyn(api_client: client.ApiClient) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(api_client)


@pytest.fixture
def ns(core: client.CoreV1Api) -> Iterator[str]:
    name = f"py-{uuid.uuid4().hex[:10]}"
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert created.status.phase == "Active"
    try:
        yield name
    finally:
        core.delete_namespace(name)


def status_of(e: ApiException) -> dict[str, Any]:
    body = json.loads(e.body)
    assert body["kind"] == "Status" and body["code"] == e.status
    return dict(body)


def deployment(name: str, image: str = "nginx:1.25", replicas: int = 2) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[
                    client.V1Container(name="web", image=image,
                                       ports=[client.V1ContainerPort(container_port=80)]),
                    client.V1Container(name="sidecar", image="busybox:1.36"),
                ]),
            ),
        ),
    )


# ---------------------------------------------------------------------------------------------
# CoreV1Api


def test_configmap_crud(core: client.CoreV1Api, ns: str) -> None:
    cm = core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="settings", labels={"app": "demo"}), data={"a": "1"}))
    assert cm.metadata.uid and cm.metadata.resource_version and cm.metadata.creation_timestamp is not None
    assert core.read_namespaced_config_map("settings", ns).data == {"a": "1"}

    listed = core.list_namespaced_config_map(ns, label_selector="app=demo")
    assert [c.metadata.name for c in listed.items] == ["settings"] and listed.metadata.resource_version
    assert core.list_namespaced_config_map(ns, label_selector="app!=demo").items == []

    # A dict body is sent as a strategic merge patch.
    patched = core.patch_namespaced_config_map("settings", ns, {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}
    # A list body is a JSON patch.
    patched = core.patch_namespaced_config_map("settings", ns, [{"op": "remove", "path": "/data/a"}])
    assert patched.data == {"b": "2"}

    patched.data = {"c": "3"}
    replaced = core.replace_namespaced_config_map("settings", ns, patched)
    assert replaced.data == {"c": "3"}
    # Replacing with the resourceVersion it had before is a conflict.
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("settings", ns, patched)
    assert err.value.status == 409 and status_of(err.value)["reason"] == "Conflict"

    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings")))
    assert err.value.status == 409 and status_of(err.value)["reason"] == "AlreadyExists"

    status = core.delete_namespaced_config_map("settings", ns)
    assert status is not None
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("settings", ns)
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'configmaps "settings" not found'


def test_pod_crud_and_status(core: client.CoreV1Api, ns: str) -> None:
    pod = core.create_namespaced_pod(ns, client.V1Pod(
        metadata=client.V1ObjectMeta(name="p1", labels={"app": "p"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36",
                                                            command=["sleep", "3600"])]),
    ))
    assert pod.status.phase == "Pending"
    assert pod.spec.containers[0].termination_message_path == "/dev/termination-log"  # defaulted

    # A node agent's status report, as the typed client sends it...
    core.patch_namespaced_pod_status("p1", ns, {"status": {
        "phase": "Running", "podIP": "10.244.0.9", "hostIP": "10.0.0.1", "startTime": "2026-01-01T00:00:00Z",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "containerStatuses": [{"name": "c", "image": "busybox:1.36", "imageID": "sha256:abc", "ready": True,
                               "restartCount": 0, "started": True,
                               "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}}],
    }})
    read = core.read_namespaced_pod("p1", ns)
    assert read.status.phase == "Running" and read.status.pod_ip == "10.244.0.9"
    cs = read.status.container_statuses[0]
    assert cs.ready is True and cs.restart_count == 0 and cs.state.running.started_at is not None
    assert read.status.conditions[0].type == "Ready"

    # ...and a minimal one: the server still emits every required field.
    core.patch_namespaced_pod_status("p1", ns, {"status": {
        "containerStatuses": [{"name": "c", "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}],
    }})
    cs = core.read_namespaced_pod_status("p1", ns).status.container_statuses[0]
    assert (cs.name, cs.image, cs.image_id, cs.restart_count, cs.ready) == ("c", "", "", 0, False)

    pods = core.list_namespaced_pod(ns, field_selector="status.phase=Running")
    assert [p.metadata.name for p in pods.items] == ["p1"]
    assert core.list_pod_for_all_namespaces(label_selector="app=p", field_selector=f"metadata.namespace={ns}").items

    patched = core.patch_namespaced_pod("p1", ns, {"metadata": {"labels": {"tier": "x"}}})
    assert patched.metadata.labels == {"app": "p", "tier": "x"}
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_pod("p1", ns, {"spec": {"containers": [{"name": "c", "command": ["true"]}]}})
    assert err.value.status == 422 and status_of(err.value)["reason"] == "Invalid"

    patched.metadata.annotations = {"note": "replaced"}
    replaced = core.replace_namespaced_pod("p1", ns, patched)
    assert replaced.metadata.annotations == {"note": "replaced"}
    deleted = core.delete_namespaced_pod("p1", ns, body=client.V1DeleteOptions(propagation_policy="Background"))
    assert deleted.metadata.name == "p1"


def test_service_crud(core: client.CoreV1Api, ns: str) -> None:
    svc = core.create_namespaced_service(ns, client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(selector={"app": "web"},
                                  ports=[client.V1ServicePort(name="http", port=80, target_port=8080)]),
    ))
    assert svc.spec.type == "ClusterIP" and svc.spec.ports[0].protocol == "TCP"
    assert svc.spec.ports[0].target_port == 8080
    assert core.read_namespaced_service("web", ns).spec.selector == {"app": "web"}
    assert [s.metadata.name for s in core.list_namespaced_service(ns).items] == ["web"]
    patched = core.patch_namespaced_service("web", ns, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
    assert [(p.port, p.target_port) for p in patched.spec.ports] == [(80, 9090)]
    patched.metadata.labels = {"team": "a"}
    assert core.replace_namespaced_service("web", ns, patched).metadata.labels == {"team": "a"}
    core.delete_namespaced_service("web", ns)
    assert core.list_namespaced_service(ns).items == []


def _full_node(name: str) -> client.V1Node:
    return client.V1Node(
        metadata=client.V1ObjectMeta(name=name, labels={"kl-test": "py"}),
        spec=client.V1NodeSpec(taints=[client.V1Taint(key="kl-test", value="py", effect="NoSchedule")]),
        status=client.V1NodeStatus(
            conditions=[client.V1NodeCondition(type="Ready", status="True", reason="KubeletReady")],
            node_info=client.V1NodeSystemInfo(
                architecture="amd64", boot_id="b", container_runtime_version="kube-lite://0.1",
                kernel_version="6.1", kube_proxy_version="", kubelet_version="v1.36.0", machine_id="m",
                operating_system="linux", os_image="Debian", system_uuid="s"),
            capacity={"cpu": "4", "memory": "8Gi", "pods": "110"},
        ),
    )


def test_node_crud(core: client.CoreV1Api, dyn: dynamic.DynamicClient) -> None:
    name = f"py-node-{uuid.uuid4().hex[:8]}"
    node = core.create_node(_full_node(name))
    try:
        assert node.status.node_info.kubelet_version == "v1.36.0"
        assert node.status.capacity["memory"] == "8Gi"
        assert core.read_node(name).spec.taints[0].effect == "NoSchedule"
        assert [n.metadata.name for n in core.list_node(label_selector="kl-test=py").items if n.metadata.name == name]
        patched = core.patch_node(name, {"metadata": {"labels": {"zone": "a"}}})
        assert patched.metadata.labels["zone"] == "a"
        patched.spec.unschedulable = True
        assert core.replace_node(name, patched).spec.unschedulable is True
        status = core.patch_node_status(name, {"status": {"addresses": [{"type": "InternalIP", "address": "10.1.2.3"}]}})
        assert status.status.addresses[0].address == "10.1.2.3"
    finally:
        core.delete_node(name)
    with pytest.raises(ApiException) as err:
        core.read_node(name)
    assert err.value.status == 404

    # A node whose agent reported only part of nodeInfo still reads back with all ten fields.
    partial = f"py-node-{uuid.uuid4().hex[:8]}"
    dyn.resources.get(api_version="v1", kind="Node").create(body={
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": partial},
        "spec": {"taints": [{"key": "kl-test", "value": "py", "effect": "NoSchedule"}]},
        "status": {"nodeInfo": {"kubeletVersion": "v1.36.0"}}})
    try:
        info = core.read_node(partial).status.node_info
        assert (info.kubelet_version, info.machine_id, info.architecture) == ("v1.36.0", "", "")
    finally:
        core.delete_node(partial)


# ---------------------------------------------------------------------------------------------
# AppsV1Api


def test_deployment_crud_scale_and_status(apps: client.AppsV1Api, ns: str) -> None:
    created = apps.create_namespaced_deployment(ns, deployment("web"))
    assert created.metadata.generation == 1 and created.spec.strategy.type == "RollingUpdate"
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 2
    assert [d.metadata.name for d in apps.list_namespaced_deployment(ns).items] == ["web"]
    assert any(d.metadata.namespace == ns for d in apps.list_deployment_for_all_namespaces().items)

    # strategic merge: containers merge by name
    patched = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.27"}]}}}})
    assert [(c.name, c.image) for c in patched.spec.template.spec.containers] == [
        ("web", "nginx:1.27"), ("sidecar", "busybox:1.36")]
    assert patched.metadata.generation == 2
    # JSON patch
    patched = apps.patch_namespaced_deployment("web", ns, [
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.28"}])
    assert patched.spec.template.spec.containers[0].image == "nginx:1.28"

    patched.spec.template.spec.containers = patched.spec.template.spec.containers[:1]
    replaced = apps.replace_namespaced_deployment("web", ns, patched)
    assert len(replaced.spec.template.spec.containers) == 1

    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.spec.replicas == 2 and scale.status.replicas == 0 and scale.status.selector == "app=web"
    scale = apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4 and scale.kind == "Scale"
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 4

    generation = apps.read_namespaced_deployment("web", ns).metadata.generation
    status = apps.patch_namespaced_deployment_status("web", ns, {"status": {
        "observedGeneration": generation, "replicas": 4, "updatedReplicas": 4,
        "readyReplicas": 4, "availableReplicas": 4,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                        "message": "ok", "lastUpdateTime": "2026-01-01T00:00:00Z",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})
    assert status.status.available_replicas == 4 and status.status.conditions[0].type == "Available"
    read = apps.read_namespaced_deployment_status("web", ns)
    assert read.status.observed_generation == read.metadata.generation
    # The status subresource does not touch spec; the main resource does not touch status.
    assert read.spec.replicas == 4
    apps.patch_namespaced_deployment("web", ns, {"status": {"replicas": 99}})
    assert apps.read_namespaced_deployment("web", ns).status.replicas == 4

    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": ""}]}}}})
    assert err.value.status == 422
    body = status_of(err.value)
    assert body["message"] == (
        'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value')
    assert body["details"]["causes"][0]["field"] == "spec.template.spec.containers[0].image"

    apps.delete_namespaced_deployment("web", ns)
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment("web", ns)
    assert err.value.status == 404


def test_replicaset_status_and_scale(apps: client.AppsV1Api, dyn: dynamic.DynamicClient, ns: str) -> None:
    labels = {"app": "rs", "pod-template-hash": "abc"}
    # Zero replicas: with a replicaset controller running, there is nothing for it to do.
    rs = apps.create_namespaced_replica_set(ns, client.V1ReplicaSet(
        metadata=client.V1ObjectMeta(name="rs", labels=labels),
        spec=client.V1ReplicaSetSpec(
            replicas=0, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=labels),
                                              spec=client.V1PodSpec(containers=[
                                                  client.V1Container(name="c", image="busybox:1.36")]))),
    ))
    assert rs.spec.replicas == 0
    # A status with only some counters set reads back with the required status.replicas.
    dyn.resources.get(api_version="apps/v1", kind="ReplicaSet").subresources["status"].patch(
        name="rs", namespace=ns, content_type="application/merge-patch+json",
        body={"status": {"readyReplicas": 0, "observedGeneration": 1}})
    status = apps.read_namespaced_replica_set_status("rs", ns).status
    assert status.replicas == 0 and status.observed_generation == 1
    scale = apps.read_namespaced_replica_set_scale("rs", ns)
    assert scale.status.replicas == 0 and scale.status.selector == "app=rs,pod-template-hash=abc"
    assert [r.metadata.name for r in apps.list_namespaced_replica_set(ns).items] == ["rs"]
    apps.delete_namespaced_replica_set("rs", ns)


# ---------------------------------------------------------------------------------------------
# other kinds: events, namespaces, endpoint slices, leases


def test_other_kinds_deserialize(api_client: client.ApiClient, core: client.CoreV1Api,
                                 dyn: dynamic.DynamicClient, ns: str) -> None:
    pod = core.create_namespaced_pod(ns, client.V1Pod(
        metadata=client.V1ObjectMeta(name="ev-target"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")])))
    core.create_namespaced_event(ns, client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="ev-target.1"),
        involved_object=client.V1ObjectReference(kind="Pod", name="ev-target", namespace=ns,
                                                 uid=pod.metadata.uid, api_version="v1"),
        reason="Pulled", message="pulled the image", type="Normal", count=1,
        source=client.V1EventSource(component="kl-test")))
    events = core.list_namespaced_event(
        ns, field_selector=f"involvedObject.name=ev-target,involvedObject.uid={pod.metadata.uid}")
    assert [(e.reason, e.involved_object.kind) for e in events.items] == [("Pulled", "Pod")]
    # A minimal event written raw still reads back (involvedObject is required).
    dyn.resources.get(api_version="v1", kind="Event").create(namespace=ns, body={
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "bare"},
        "involvedObject": {"name": "x", "namespace": ns}})
    assert core.read_namespaced_event("bare", ns).involved_object.name == "x"

    namespace = core.read_namespace(ns)
    assert namespace.status.phase == "Active" and namespace.metadata.labels["kubernetes.io/metadata.name"] == ns

    discovery = client.DiscoveryV1Api(api_client)
    discovery.create_namespaced_endpoint_slice(ns, client.V1EndpointSlice(
        metadata=client.V1ObjectMeta(name="web-1", labels={"kubernetes.io/service-name": "web"}),
        address_type="IPv4",
        endpoints=[client.V1Endpoint(addresses=["10.244.0.5"],
                                     conditions=client.V1EndpointConditions(ready=True))],
        ports=[client.DiscoveryV1EndpointPort(name="http", port=80, protocol="TCP")]))
    # An EndpointSlice with no endpoints must still carry "endpoints": [] (a required field).
    dyn.resources.get(api_version="discovery.k8s.io/v1", kind="EndpointSlice").create(namespace=ns, body={
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "empty"},
        "addressType": "IPv4"})
    slices = {s.metadata.name: s for s in discovery.list_namespaced_endpoint_slice(ns).items}
    assert slices["web-1"].endpoints[0].addresses == ["10.244.0.5"] and slices["empty"].endpoints == []

    coordination = client.CoordinationV1Api(api_client)
    coordination.create_namespaced_lease(ns, client.V1Lease(
        metadata=client.V1ObjectMeta(name="holder"),
        spec=client.V1LeaseSpec(holder_identity="me", lease_duration_seconds=15,
                                renew_time="2026-01-01T00:00:00.000000Z")))
    lease = coordination.read_namespaced_lease("holder", ns)
    assert lease.spec.holder_identity == "me" and lease.spec.renew_time is not None
    dyn.resources.get(api_version="coordination.k8s.io/v1", kind="Lease").create(
        namespace=ns, body={"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "bare"}})
    assert {le.metadata.name for le in coordination.list_namespaced_lease(ns).items} == {"holder", "bare"}


def test_objects_written_by_controllers_deserialize(cluster_client: client.ApiClient) -> None:
    """Whatever the control plane's controllers write reads back through the typed client."""
    core = client.CoreV1Api(cluster_client)
    apps = client.AppsV1Api(cluster_client)
    ns = f"py-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        apps.create_namespaced_deployment(ns, deployment("ctl", replicas=1))
        core.create_namespaced_service(ns, client.V1Service(
            metadata=client.V1ObjectMeta(name="ctl"),
            spec=client.V1ServiceSpec(selector={"app": "ctl"}, ports=[client.V1ServicePort(port=80)])))
        # Wait (through a watch, bounded by the server's timeout) for the controllers' ReplicaSet.
        for event in watch.Watch().stream(apps.list_namespaced_replica_set, ns, timeout_seconds=30):
            if event["object"].metadata.name.startswith("ctl-"):
                break
        listers = [
            core.list_namespace, core.list_node, core.list_pod_for_all_namespaces,
            core.list_event_for_all_namespaces, core.list_service_for_all_namespaces,
            core.list_endpoints_for_all_namespaces, core.list_config_map_for_all_namespaces,
            core.list_secret_for_all_namespaces, core.list_service_account_for_all_namespaces,
            apps.list_deployment_for_all_namespaces, apps.list_replica_set_for_all_namespaces,
            client.DiscoveryV1Api(cluster_client).list_endpoint_slice_for_all_namespaces,
            client.CoordinationV1Api(cluster_client).list_lease_for_all_namespaces,
        ]
        for lister in listers:
            result = lister()
            assert result.metadata.resource_version, lister.__name__
            assert isinstance(result.items, list)
        assert [rs.metadata.owner_references[0].name for rs in apps.list_namespaced_replica_set(ns).items] == ["ctl"]
        for rs in apps.list_namespaced_replica_set(ns).items:
            apps.read_namespaced_replica_set_scale(rs.metadata.name, ns)
        for dep in apps.list_namespaced_deployment(ns).items:
            apps.read_namespaced_deployment_scale(dep.metadata.name, ns)
    finally:
        core.delete_namespace(ns)


# ---------------------------------------------------------------------------------------------
# watch and the dynamic client


def test_watch_stream_with_timeout(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="before")))
    rv = core.list_namespaced_config_map(ns).metadata.resource_version

    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="w", labels={"watched": "yes"}), data={"n": "1"}))
    core.patch_namespaced_config_map("w", ns, {"data": {"n": "2"}})
    core.delete_namespaced_config_map("w", ns)

    seen: list[tuple[str, str, dict[str, str] | None]] = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=20):
        obj = event["object"]
        assert isinstance(obj, client.V1ConfigMap)
        seen.append((event["type"], obj.metadata.name, obj.data))
        if event["type"] == "DELETED":
            w.stop()
    assert seen == [("ADDED", "w", {"n": "1"}), ("MODIFIED", "w", {"n": "2"}), ("DELETED", "w", {"n": "2"})]

    # Without a resourceVersion the stream starts with the current objects; the server ends it
    # after timeoutSeconds and the generator returns.
    initial = [(e["type"], e["object"].metadata.name)
               for e in watch.Watch().stream(core.list_namespaced_config_map, ns, timeout_seconds=1)]
    assert ("ADDED", "before") in initial and all(t == "ADDED" for t, _ in initial)

    # Selectors filter the stream.
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="w2", labels={"watched": "yes"})))
    names = [e["object"].metadata.name for e in watch.Watch().stream(
        core.list_namespaced_config_map, ns, label_selector="watched=yes", timeout_seconds=1)]
    assert names == ["w2"]


def test_dynamic_client(dyn: dynamic.DynamicClient, ns: str) -> None:
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert deployments.namespaced and deployments.name == "deployments"
    assert "deploy" in deployments.short_names
    body = client.ApiClient().sanitize_for_serialization(deployment("dyn"))
    body.update(apiVersion="apps/v1", kind="Deployment")
    created = deployments.create(body=body, namespace=ns)
    assert created.metadata.name == "dyn" and created.spec.replicas == 2

    got = deployments.get(name="dyn", namespace=ns)
    assert got.spec.template.spec.containers[0].image == "nginx:1.25"
    listed = deployments.get(namespace=ns)
    assert listed.kind == "DeploymentList" and [i.metadata.name for i in listed.items] == ["dyn"]

    patched = deployments.patch(name="dyn", namespace=ns, body={"spec": {"replicas": 3}},
                                content_type="application/merge-patch+json")
    assert patched.spec.replicas == 3

    # Server-side apply through the dynamic client: manager recorded, conflicts reported.
    applied_body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dyn", "namespace": ns},
                    "spec": {"replicas": 5}}
    with pytest.raises(ApiException) as err:
        deployments.server_side_apply(body=applied_body, name="dyn", namespace=ns, field_manager="py-applier")
    assert err.value.status == 409
    conflict = status_of(err.value)
    assert conflict["reason"] == "Conflict"
    assert conflict["details"]["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                              "message": f'conflict with "{_update_manager(got)}" using apps/v1'}]
    applied = deployments.server_side_apply(body=applied_body, name="dyn", namespace=ns,
                                            field_manager="py-applier", force_conflicts=True)
    assert applied.spec.replicas == 5
    managers = {(m.manager, m.operation) for m in applied.metadata.managedFields}
    assert ("py-applier", "Apply") in managers

    nodes = dyn.resources.get(api_version="v1", kind="Node")
    assert not nodes.namespaced
    scale = dyn.resources.get(api_version="apps/v1", kind="Deployment").subresources["scale"]
    assert scale.get(name="dyn", namespace=ns).spec.replicas == 5

    deployments.delete(name="dyn", namespace=ns)
    with pytest.raises(dynamic.exceptions.NotFoundError):
        deployments.get(name="dyn", namespace=ns)


def _update_manager(obj: Any) -> str:
    """The manager that created ``obj`` through the typed client (its User-Agent's product)."""
    entries = [m for m in obj.metadata.managedFields if m.operation == "Update"]
    assert entries, obj.metadata.managedFields
    return str(entries[0].manager)
