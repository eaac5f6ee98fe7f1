"""API types: Kubernetes documents round-trip exactly, required fields are emitted, the scheme
resolves every spelling users type."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from apimachinery.api import (
    Binding,
    ConfigMap,
    Deployment,
    DeploymentList,
    EndpointSlice,
    Event,
    Lease,
    Namespace,
    Node,
    Pod,
    PodList,
    ReplicaSet,
    Scale,
    Secret,
    Service,
    ServiceAccount,
)
from apimachinery.api.apps_v1 import RollingUpdateDeployment
from apimachinery.api.core_v1 import (
    Container,
    ContainerPort,
    ContainerStatus,
    HTTPGetAction,
    PodCondition,
    PodSpec,
    ResourceRequirements,
    ServicePort,
)
from apimachinery.api.registry import build_scheme
from apimachinery.decode import unknown_fields
from apimachinery.meta import KubeObject, OwnerReference
from apimachinery.model import LIST_MAP_KEYS, PATCH_MERGE_KEY, PATCH_STRATEGY
from apimachinery.scheme import default_scheme

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  uid: 7f1c9a52-4b1e-4a0e-9d55-3f0e2b0c1d11
  resourceVersion: "1234"
  generation: 3
  creationTimestamp: "2024-05-01T10:00:00Z"
  labels: {app: web}
  annotations:
    deployment.kubernetes.io/revision: "2"
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
    matchExpressions:
    - {key: tier, operator: In, values: [frontend]}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1, maxSurge: 25%}
  minReadySeconds: 5
  revisionHistoryLimit: 4
  progressDeadlineSeconds: 120
  paused: false
  template:
    metadata:
      labels: {app: web, tier: frontend}
      annotations: {kubectl.kubernetes.io/restartedAt: "2024-05-01T11:00:00Z"}
    spec:
      serviceAccountName: web
      automountServiceAccountToken: false
      nodeSelector: {kubernetes.io/os: linux}
      hostAliases:
      - ip: 10.0.0.9
        hostnames: [db.local]
      dnsConfig:
        nameservers: [1.1.1.1]
        searches: [svc.local]
        options:
        - {name: ndots, value: "2"}
      securityContext:
        runAsUser: 1000
        runAsGroup: 3000
        runAsNonRoot: true
        fsGroup: 2000
        supplementalGroups: [4000]
        sysctls:
        - {name: net.ipv4.ip_local_port_range, value: "1024 65000"}
        seccompProfile: {type: RuntimeDefault}
      imagePullSecrets:
      - name: regcred
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions:
              - {key: kubernetes.io/arch, operator: In, values: [amd64, arm64]}
              matchFields:
              - {key: metadata.name, operator: NotIn, values: [node-9]}
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 10
            preference:
              matchExpressions:
              - {key: disk, operator: Exists}
        podAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: cache}}
            topologyKey: kubernetes.io/hostname
            namespaces: [default]
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              labelSelector: {matchLabels: {app: web}}
              topologyKey: topology.kubernetes.io/zone
              namespaceSelector: {}
              matchLabelKeys: [pod-template-hash]
      tolerations:
      - {key: dedicated, operator: Equal, value: web, effect: NoSchedule}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 60}
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: ScheduleAnyway
        labelSelector: {matchLabels: {app: web}}
        minDomains: 2
        nodeAffinityPolicy: Honor
        nodeTaintsPolicy: Ignore
      priorityClassName: high
      runtimeClassName: native
      enableServiceLinks: false
      preemptionPolicy: Never
      overhead: {cpu: 10m}
      readinessGates:
      - conditionType: example.com/ready
      terminationGracePeriodSeconds: 45
      activeDeadlineSeconds: 3600
      restartPolicy: Always
      dnsPolicy: ClusterFirst
      schedulerName: default-scheduler
      hostNetwork: false
      hostPID: false
      hostIPC: false
      shareProcessNamespace: true
      hostname: web
      subdomain: web-headless
      setHostnameAsFQDN: false
      initContainers:
      - name: migrate
        image: registry.local:5000/web/migrate:1.2
        command: [/bin/sh, -c]
        args: [./migrate up]
        envFrom:
        - prefix: DB_
          configMapRef: {name: db-config, optional: true}
        - secretRef: {name: db-secret}
      containers:
      - name: web
        image: nginx:1.25
        imagePullPolicy: IfNotPresent
        workingDir: /srv
        ports:
        - {name: http, containerPort: 8080, protocol: TCP}
        - {name: metrics, containerPort: 9090, hostPort: 19090, hostIP: 127.0.0.1, protocol: TCP}
        env:
        - {name: MODE, value: production}
        - name: POD_IP
          valueFrom:
            fieldRef: {apiVersion: v1, fieldPath: status.podIP}
        - name: CPU_LIMIT
          valueFrom:
            resourceFieldRef: {containerName: web, resource: limits.cpu, divisor: 1m}
        - name: LEVEL
          valueFrom:
            configMapKeyRef: {name: web-config, key: level}
        - name: TOKEN
          valueFrom:
            secretKeyRef: {name: web-secret, key: token, optional: false}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: "1", memory: 128Mi}
        volumeMounts:
        - {name: config, mountPath: /etc/web, readOnly: true}
        - {name: cache, mountPath: /var/cache/web, subPath: nginx}
        - {name: token, mountPath: /var/run/secrets/tokens}
        livenessProbe:
          httpGet:
            path: /healthz
            port: http
            scheme: HTTP
            httpHeaders:
            - {name: X-Probe, value: liveness}
          initialDelaySeconds: 3
          timeoutSeconds: 1
          periodSeconds: 10
          successThreshold: 1
          failureThreshold: 3
          terminationGracePeriodSeconds: 10
        readinessProbe:
          tcpSocket: {port: 8080}
          periodSeconds: 5
        startupProbe:
          grpc: {port: 9090, service: health}
          failureThreshold: 30
        lifecycle:
          postStart:
            exec: {command: [/bin/sh, -c, echo started]}
          preStop:
            sleep: {seconds: 5}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: FallbackToLogsOnError
        securityContext:
          capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}
          privileged: false
          runAsUser: 1000
          runAsGroup: 3000
          runAsNonRoot: true
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          procMount: Default
          seccompProfile: {type: Localhost, localhostProfile: profiles/web.json}
        stdin: false
        stdinOnce: false
        tty: false
      volumes:
      - name: config
        configMap:
          name: web-config
          defaultMode: 420
          items:
          - {key: nginx.conf, path: nginx.conf, mode: 256}
      - name: cache
        emptyDir: {medium: Memory, sizeLimit: 64Mi}
      - name: secret
        secret: {secretName: web-secret, defaultMode: 256, optional: true}
      - name: host
        hostPath: {path: /var/log, type: Directory}
      - name: info
        downwardAPI:
          items:
          - path: labels
            fieldRef: {fieldPath: metadata.labels}
          - path: cpu
            resourceFieldRef: {containerName: web, resource: requests.cpu}
      - name: token
        projected:
          defaultMode: 420
          sources:
          - serviceAccountToken: {audience: api, expirationSeconds: 3600, path: token}
          - configMap:
              name: kube-root-ca.crt
              items:
              - {key: ca.crt, path: ca.crt}
          - secret: {name: extra}
          - downwardAPI:
              items:
              - path: namespace
                fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}
      - name: data
        persistentVolumeClaim: {claimName: web-data, readOnly: false}
status:
  observedGeneration: 3
  replicas: 3
  updatedReplicas: 3
  readyReplicas: 2
  availableReplicas: 2
  unavailableReplicas: 1
  collisionCount: 1
  conditions:
  - type: Available
    status: "False"
    lastUpdateTime: "2024-05-01T10:01:00Z"
    lastTransitionTime: "2024-05-01T10:01:00Z"
    reason: MinimumReplicasUnavailable
    message: Deployment does not have minimum availability.
  - type: Progressing
    status: "True"
    lastUpdateTime: "2024-05-01T10:02:00Z"
    lastTransitionTime: "2024-05-01T10:00:00Z"
    reason: NewReplicaSetAvailable
    message: ReplicaSet "web-5d9c7b8f6d" has successfully progressed.
"""

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web-5d9c7b8f6d-x2x7k
  generateName: web-5d9c7b8f6d-
  namespace: default
  labels: {app: web, pod-template-hash: 5d9c7b8f6d}
  ownerReferences:
  - apiVersion: apps/v1
    kind: ReplicaSet
    name: web-5d9c7b8f6d
    uid: 0b8e2d1c-2f6a-4d8e-b7a1-6a9f4c1e2d3b
    controller: true
    blockOwnerDeletion: true
  finalizers: [example.com/hold]
spec:
  nodeName: node-1
  containers:
  - name: app
    image: busybox:1.36
    command: [sleep, "3600"]
    stdin: true
    tty: true
  ephemeralContainers:
  - name: debugger
    image: busybox
    targetContainerName: app
  restartPolicy: Always
  priority: 0
status:
  phase: Running
  conditions:
  - {type: PodScheduled, status: "True", lastProbeTime: null, lastTransitionTime: "2024-05-01T10:00:00Z"}
  - {type: Ready, status: "False", reason: ContainersNotReady, message: "containers with unready status: [app]"}
  hostIP: 10.0.0.11
  hostIPs:
  - {ip: 10.0.0.11}
  podIP: 10.244.1.7
  podIPs:
  - {ip: 10.244.1.7}
  - {ip: fd00::7}
  startTime: "2024-05-01T10:00:00Z"
  qosClass: BestEffort
  nominatedNodeName: node-2
  message: ""
  reason: ""
  initContainerStatuses:
  - name: init
    ready: true
    restartCount: 0
    image: docker.io/library/busybox:1.36
    imageID: docker.io/library/busybox@sha256:0123abcd
    containerID: containerd://aaaa
    started: false
    state:
      terminated:
        exitCode: 0
        reason: Completed
        startedAt: "2024-05-01T10:00:01Z"
        finishedAt: "2024-05-01T10:00:02Z"
        containerID: containerd://aaaa
  containerStatuses:
  - name: app
    ready: false
    restartCount: 2
    image: docker.io/library/busybox:1.36
    imageID: ""
    started: true
    state:
      running: {startedAt: "2024-05-01T10:00:05Z"}
    lastState:
      terminated:
        exitCode: 137
        signal: 9
        reason: OOMKilled
        message: out of memory
        startedAt: "2024-05-01T10:00:03Z"
        finishedAt: "2024-05-01T10:00:04Z"
  - name: sidecar
    ready: false
    restartCount: 0
    image: busybox
    imageID: ""
    state:
      waiting: {reason: ContainerCreating}
"""

SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - {name: http, protocol: TCP, appProtocol: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: https, protocol: TCP, port: 443, targetPort: 8443, nodePort: 30443}
  clusterIP: 10.96.0.20
  clusterIPs: [10.96.0.20, fd00:10:96::20]
  externalIPs: [192.0.2.10]
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP: {timeoutSeconds: 600}
  loadBalancerIP: 192.0.2.1
  loadBalancerSourceRanges: [192.0.2.0/24]
  externalTrafficPolicy: Local
  internalTrafficPolicy: Cluster
  healthCheckNodePort: 31000
  publishNotReadyAddresses: true
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: PreferDualStack
  allocateLoadBalancerNodePorts: true
status:
  loadBalancer:
    ingress:
    - ip: 192.0.2.1
      ipMode: VIP
      ports:
      - {port: 80, protocol: TCP}
"""

NODE = """
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {kubernetes.io/hostname: node-1, kubernetes.io/os: linux}
spec:
  podCIDR: 10.244.1.0/24
  podCIDRs: [10.244.1.0/24, fd00:244:1::/64]
  providerID: kube-lite://node-1
  unschedulable: true
  taints:
  - {key: node.kubernetes.io/unschedulable, effect: NoSchedule, timeAdded: "2024-05-01T10:00:00Z"}
  - {key: dedicated, value: web, effect: NoExecute}
status:
  capacity: {cpu: "4", memory: 8148960Ki, pods: "110", ephemeral-storage: 61255492Ki}
  allocatable: {cpu: 3800m, memory: 7944160Ki, pods: "110"}
  phase: Running
  conditions:
  - type: Ready
    status: "True"
    lastHeartbeatTime: "2024-05-01T10:05:00Z"
    lastTransitionTime: "2024-05-01T10:00:00Z"
    reason: KubeletReady
    message: kubelet is posting ready status
  - {type: MemoryPressure, status: "False", reason: KubeletHasSufficientMemory}
  addresses:
  - {type: InternalIP, address: 10.0.0.11}
  - {type: Hostname, address: node-1}
  daemonEndpoints:
    kubeletEndpoint: {Port: 10250}
  nodeInfo:
    machineID: 5c2e
    systemUUID: 5c2e-uuid
    bootID: b00t
    kernelVersion: 6.1.0-18-amd64
    osImage: Debian GNU/Linux 12 (bookworm)
    containerRuntimeVersion: kube-lite://0.1.0
    kubeletVersion: v1.30.0-kube-lite
    kubeProxyVersion: ""
    operatingSystem: linux
    architecture: amd64
  images:
  - names: [docker.io/library/busybox@sha256:0123abcd, docker.io/library/busybox:1.36]
    sizeBytes: 4261550
  volumesInUse: [kubernetes.io/csi/x]
"""

EVENT = """
apiVersion: v1
kind: Event
metadata:
  name: web-5d9c7b8f6d-x2x7k.17c9a2b3c4d5e6f7
  namespace: default
involvedObject:
  kind: Pod
  namespace: default
  name: web-5d9c7b8f6d-x2x7k
  uid: 3c1f
  apiVersion: v1
  resourceVersion: "4321"
  fieldPath: spec.containers{app}
reason: Pulled
message: Successfully pulled image "busybox:1.36"
source: {component: kubelet, host: node-1}
firstTimestamp: "2024-05-01T10:00:03Z"
lastTimestamp: "2024-05-01T10:00:09Z"
count: 3
type: Normal
eventTime: "2024-05-01T10:00:03.123456Z"
series: {count: 2, lastObservedTime: "2024-05-01T10:00:09.000001Z"}
action: Pulling
related: {kind: Node, name: node-1}
reportingComponent: kubelet
reportingInstance: node-1
"""

ENDPOINT_SLICE = """
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: default
  labels: {kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io}
addressType: IPv4
endpoints:
- addresses: [10.244.1.7]
  conditions: {ready: true, serving: true, terminating: false}
  hostname: web-0
  nodeName: node-1
  zone: zone-a
  targetRef: {kind: Pod, namespace: default, name: web-0, uid: 3c1f}
- addresses: [10.244.2.9]
  conditions: {ready: false, serving: true, terminating: true}
ports:
- {name: http, protocol: TCP, port: 8080, appProtocol: http}
"""

DOCS: dict[str, tuple[type[KubeObject], str]] = {
    "deployment": (Deployment, DEPLOYMENT),
    "pod": (Pod, POD),
    "service": (Service, SERVICE),
    "node": (Node, NODE),
    "event": (Event, EVENT),
    "endpointslice": (EndpointSlice, ENDPOINT_SLICE),
}


def _drop_nulls(value: Any) -> Any:
    """Go emits some unset struct pointers as null; our models omit them, which clients read alike."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(DOCS))
def test_documents_round_trip_exactly(name: str) -> None:
    model, text = DOCS[name]
    data = yaml.safe_load(text)
    obj = model.model_validate(data)
    # Every field of the document is a declared field (a misspelt alias would land in extras
    # and still round-trip, so this is the check that the field names are right).
    assert unknown_fields(obj) == []
    assert obj.to_dict() == _drop_nulls(data)
    # And through the scheme, by apiVersion/kind.
    assert type(default_scheme().decode(data)) is model


def test_typed_access_uses_python_names() -> None:
    d = Deployment.model_validate(yaml.safe_load(DEPLOYMENT))
    c = d.spec.template.spec.containers[0]
    assert c.ports is not None and c.ports[1].host_ip == "127.0.0.1"
    assert c.resources is not None and c.resources.limits == {"cpu": "1", "memory": "128Mi"}
    assert d.spec.template.spec.host_pid is False
    p = Pod.model_validate(yaml.safe_load(POD))
    assert p.status.pod_ip == "10.244.1.7"
    assert p.status.pod_ips is not None and [i.ip for i in p.status.pod_ips] == ["10.244.1.7", "fd00::7"]
    assert p.status.container_statuses is not None
    assert p.status.container_statuses[0].last_state is not None
    term = p.status.container_statuses[0].last_state.terminated
    assert term is not None and term.exit_code == 137
    n = Node.model_validate(yaml.safe_load(NODE))
    assert n.status.daemon_endpoints.kubelet_endpoint.port == 10250
    assert n.spec.pod_cidrs == ["10.244.1.0/24", "fd00:244:1::/64"]


def test_required_fields_are_emitted() -> None:
    cs = ContainerStatus(name="app").to_dict()
    assert cs == {"name": "app", "ready": False, "restartCount": 0, "image": "", "imageID": ""}
    assert PodCondition().to_dict() == {"type": "", "status": ""}
    assert ReplicaSet().to_dict()["status"] == {"replicas": 0}
    assert Scale().to_dict()["status"] == {"replicas": 0}
    info = Node().to_dict()["status"]["nodeInfo"]
    assert sorted(info) == sorted(
        [
            "machineID",
            "systemUUID",
            "bootID",
            "kernelVersion",
            "osImage",
            "containerRuntimeVersion",
            "kubeletVersion",
            "kubeProxyVersion",
            "operatingSystem",
            "architecture",
        ]
    )
    assert set(info.values()) == {""}
    assert Event().to_dict()["involvedObject"] == {}
    assert OwnerReference().to_dict() == {"apiVersion": "", "kind": "", "name": "", "uid": ""}
    assert PodList().to_dict()["items"] == []
    assert ContainerPort().to_dict() == {"containerPort": 0}
    assert ServicePort().to_dict() == {"port": 0}
    assert Binding().to_dict() == {"apiVersion": "v1", "kind": "Binding", "metadata": {}, "target": {}}
    # Optional fields stay out.
    assert Lease().to_dict() == {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {},
        "spec": {},
    }


def test_scale_and_lease_shapes() -> None:
    scale = Scale.model_validate(
        {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 5},
            "status": {"replicas": 3, "selector": "app=web,tier in (frontend)"},
        }
    )
    assert scale.status.selector == "app=web,tier in (frontend)"
    assert scale.to_dict()["status"] == {"replicas": 3, "selector": "app=web,tier in (frontend)"}
    lease_doc = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {
            "holderIdentity": "node-1",
            "leaseDurationSeconds": 40,
            "acquireTime": "2024-05-01T10:00:00.000000Z",
            "renewTime": "2024-05-01T10:00:10.123456Z",
            "leaseTransitions": 2,
        },
    }
    lease = Lease.model_validate(lease_doc)
    assert unknown_fields(lease) == []
    assert lease.to_dict() == lease_doc


def test_config_secret_serviceaccount_namespace_shapes() -> None:
    docs: list[tuple[type[KubeObject], dict[str, Any]]] = [
        (
            ConfigMap,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c"},
                "data": {"a": "1"},
                "binaryData": {"b": "AAE="},
                "immutable": True,
            },
        ),
        (
            Secret,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s"},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": "e30="},
                "stringData": {"x": "y"},
            },
        ),
        (
            ServiceAccount,
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "sa"},
                "secrets": [{"name": "sa-token"}],
                "imagePullSecrets": [{"name": "regcred"}],
                "automountServiceAccountToken": False,
            },
        ),
        (
            Namespace,
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "team-a"},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {
                    "phase": "Terminating",
                    "conditions": [
                        {
                            "type": "NamespaceDeletionContentFailure",
                            "status": "False",
                            "lastTransitionTime": "2024-05-01T10:00:00Z",
                            "reason": "ContentDeleted",
                            "message": "All content successfully deleted",
                        }
                    ],
                },
            },
        ),
    ]
    for model, doc in docs:
        obj = model.model_validate(doc)
        assert unknown_fields(obj) == [], model.__name__
        assert obj.to_dict() == doc, model.__name__


def test_int_or_string_keeps_its_json_type() -> None:
    ru = RollingUpdateDeployment.model_validate({"maxUnavailable": 3, "maxSurge": "25%"})
    assert ru.max_unavailable == 3 and isinstance(ru.max_unavailable, int)
    assert ru.max_surge == "25%"
    # A numeric string stays a string, as Go's IntOrString decodes it.
    sp = ServicePort.model_validate({"port": 80, "targetPort": "8080"})
    assert sp.target_port == "8080" and isinstance(sp.target_port, str)
    sp = ServicePort.model_validate({"port": 80, "targetPort": 8080})
    assert sp.target_port == 8080 and isinstance(sp.target_port, int)
    assert sp.to_dict() == {"port": 80, "targetPort": 8080}
    assert HTTPGetAction.model_validate({"port": "http"}).to_dict() == {"port": "http"}


def test_quantities_accept_numbers() -> None:
    res = ResourceRequirements.model_validate({"limits": {"cpu": 2, "memory": "1Gi"}, "requests": {"cpu": 0.5}})
    assert res.limits == {"cpu": "2", "memory": "1Gi"}
    assert res.requests == {"cpu": "0.5"}
    assert ResourceRequirements.model_validate({"limits": {"cpu": 1.0}}).limits == {"cpu": "1"}


def test_lists_serialize_with_kind() -> None:
    doc = yaml.safe_load(DEPLOYMENT)
    dl = DeploymentList(items=[Deployment.model_validate(doc)])
    out = dl.to_dict()
    assert out["apiVersion"] == "apps/v1" and out["kind"] == "DeploymentList"
    assert out["items"][0]["metadata"]["name"] == "web"
    pl = PodList.model_validate({"metadata": {"resourceVersion": "7", "continue": "abc"}, "items": [{}]})
    assert isinstance(pl.items[0], Pod)
    assert pl.to_dict()["metadata"] == {"resourceVersion": "7", "continue": "abc"}
    for rt in build_scheme():
        lst = rt.list_model().to_dict()
        assert lst["kind"] == rt.list_kind and lst["apiVersion"] == rt.api_version


def test_objects_built_in_code_carry_api_version_and_kind() -> None:
    for rt in build_scheme():
        out = rt.model().to_dict()
        assert (out["apiVersion"], out["kind"]) == (rt.api_version, rt.kind)


def _schema_extra(model: type[Any], field: str) -> dict[str, Any]:
    extra = model.model_fields[field].json_schema_extra
    assert isinstance(extra, dict)
    return extra


def test_strategic_merge_metadata() -> None:
    expected = [
        (PodSpec, "containers", "name", "merge"),
        (PodSpec, "init_containers", "name", "merge"),
        (PodSpec, "ephemeral_containers", "name", "merge"),
        (PodSpec, "volumes", "name", "merge,retainKeys"),
        (PodSpec, "image_pull_secrets", "name", "merge"),
        (PodSpec, "host_aliases", "ip", "merge"),
        (PodSpec, "topology_spread_constraints", "topologyKey", "merge"),
        (Container, "env", "name", "merge"),
        (Container, "volume_mounts", "mountPath", "merge"),
        (Container, "ports", "containerPort", "merge"),
    ]
    for model, field, key, strategy in expected:
        extra = _schema_extra(model, field)
        assert extra[PATCH_MERGE_KEY] == key, field
        assert extra[PATCH_STRATEGY] == strategy, field
        assert extra[LIST_MAP_KEYS] == [key], field
    from apimachinery.api import apps_v1, core_v1

    for status_model in (
        core_v1.PodStatus,
        core_v1.NodeStatus,
        core_v1.NamespaceStatus,
        apps_v1.DeploymentStatus,
        apps_v1.ReplicaSetStatus,
    ):
        assert _schema_extra(status_model, "conditions")[PATCH_MERGE_KEY] == "type"
    assert _schema_extra(core_v1.NodeStatus, "addresses")[PATCH_MERGE_KEY] == "type"
    assert _schema_extra(core_v1.ServiceSpec, "ports")[PATCH_MERGE_KEY] == "port"
    assert _schema_extra(apps_v1.DeploymentSpec, "strategy")[PATCH_STRATEGY] == "retainKeys"


def test_spec_fields_have_descriptions() -> None:
    from apimachinery.api import apps_v1, core_v1

    models = [
        core_v1.PodSpec,
        core_v1.Container,
        core_v1.ServiceSpec,
        core_v1.ServicePort,
        core_v1.NodeSpec,
        apps_v1.DeploymentSpec,
        apps_v1.ReplicaSetSpec,
        apps_v1.DeploymentStrategy,
        apps_v1.RollingUpdateDeployment,
    ]
    for model in models:
        assert model.__doc__, model.__name__
        missing = [name for name, info in model.model_fields.items() if not info.description]
        assert missing == [], f"{model.__name__}: {missing}"


# ---------------------------------------------------------------------------------------------
# Scheme


def test_scheme_resolves_user_spellings() -> None:
    s = build_scheme()
    for spelling in ("deploy", "deployment", "deployments", "Deployment", "deployments.apps", "deployment.v1.apps"):
        rt = s.resolve(spelling)
        assert rt is not None and rt.kind == "Deployment", spelling
    for short, kind in {
        "po": "Pod",
        "svc": "Service",
        "ep": "Endpoints",
        "no": "Node",
        "ev": "Event",
        "cm": "ConfigMap",
        "ns": "Namespace",
        "rs": "ReplicaSet",
        "sa": "ServiceAccount",
    }.items():
        rt = s.resolve(short)
        assert rt is not None and rt.kind == kind, short
    assert s.resolve("endpointslices.discovery.k8s.io") is not None
    assert s.resolve("leases") is not None
    assert s.resolve("bindings") is None and s.resolve("scale") is None


def test_scheme_lookups_and_paths() -> None:
    s = build_scheme()
    rt = s.by_kind("apps/v1", "Deployment")
    assert rt is not None and rt is s.for_model(Deployment)
    assert s.by_resource("apps", "v1", "deployments") is rt
    assert rt.path("default", "web", "scale") == "/apis/apps/v1/namespaces/default/deployments/web/scale"
    assert rt.storage_key("default", "web") == "/registry/deployments.apps/default/web"
    assert set(rt.subresources) == {"status", "scale"}
    pods = s.for_model(Pod)
    assert pods.path(None) == "/api/v1/pods"
    assert pods.storage_key("kube-system", "dns") == "/registry/pods/kube-system/dns"
    assert {"status", "binding", "log", "exec", "eviction"} <= set(pods.subresources)
    nodes = s.for_model(Node)
    assert not nodes.namespaced
    assert nodes.path("ignored", "node-1", "status") == "/api/v1/nodes/node-1/status"
    assert nodes.storage_key("ignored", "node-1") == "/registry/nodes/node-1"
    ns = s.for_model(Namespace)
    assert "finalize" in ns.subresources and "deletecollection" not in ns.verbs
    lease = s.for_model(Lease)
    assert lease.storage_key("kube-node-lease", "n1") == "/registry/leases.coordination.k8s.io/kube-node-lease/n1"
    assert ("", "v1") in s.group_versions() and ("discovery.k8s.io", "v1") in s.group_versions()


RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
REVIEW_KINDS = ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview", "SelfSubjectReview")


def test_scheme_scope_status_and_categories() -> None:
    s = build_scheme()
    without_status = {rt.kind for rt in s if not rt.has_status}
    assert without_status == {
        "ConfigMap",
        "Secret",
        "Event",
        "Endpoints",
        "Lease",
        "EndpointSlice",
        "ServiceAccount",
        *RBAC_KINDS,
        *REVIEW_KINDS,
    }
    assert {rt.kind for rt in s if "all" in rt.categories} == {"Pod", "Service", "Deployment", "ReplicaSet"}
    assert {rt.kind for rt in s if not rt.namespaced} == {
        "Node", "Namespace", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding", *REVIEW_KINDS}
    # Every stored kind is registered once, and the models know their own kind.
    kinds = [rt.kind for rt in s]
    assert len(kinds) == len(set(kinds))
    for rt in s:
        assert rt.model.KIND == rt.kind and rt.model.API_VERSION == rt.api_version
