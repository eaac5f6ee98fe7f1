"""Defaulting: fill the fields Kubernetes fills when an object is written.

:func:`apply_defaults` runs on every create and update, before validation, so it must be
idempotent: running it on an already-defaulted object changes nothing. It only fills fields that
are unset; it never overwrites what the user wrote.

What is (and is not) defaulted mirrors Kubernetes' SetDefaults_* functions. Two notable details:
requests copied from limits, enableServiceLinks and host-network ports are Pod-only in Kubernetes
(templates inside Deployments and ReplicaSets keep them unset), and Pod priority comes from the
Priority admission plugin there; here it is filled with the pod defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from apimachinery.api.apps_v1 import Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment
from apimachinery.api.core_v1 import (
    ClientIPConfig,
    Container,
    EmptyDirVolumeSource,
    Endpoints,
    HTTPGetAction,
    Namespace,
    ObjectFieldSelector,
    Pod,
    PodSecurityContext,
    PodSpec,
    Probe,
    ResourceRequirements,
    Secret,
    Service,
    SessionAffinityConfig,
    Toleration,
    Volume,
)
from apimachinery.api.discovery_v1 import EndpointSlice
from apimachinery.meta import KubeObject

DEFAULT_MODE = 0o644  # 420: file mode of configMap/secret/downwardAPI/projected volume files
DEFAULT_TERMINATION_GRACE_SECONDS = 30
DEFAULT_CLIENT_IP_TIMEOUT = 10800  # three hours, Kubernetes' ClientIP session affinity default
DEFAULT_TOKEN_EXPIRATION = 3600
DEFAULT_TOLERATION_SECONDS = 300
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"

K = TypeVar("K", bound=KubeObject)
_DEFAULTERS: dict[type[KubeObject], Callable[[Any], None]] = {}


def _defaulter(kind: type[K]) -> Callable[[Callable[[K], None]], Callable[[K], None]]:
    def register(fn: Callable[[K], None]) -> Callable[[K], None]:
        _DEFAULTERS[kind] = fn
        return fn

    return register


def apply_defaults(obj: KubeObject) -> None:
    """Fill Kubernetes' defaults into ``obj``, in place; kinds without defaults are left alone."""
    fn = _DEFAULTERS.get(type(obj))
    if fn is not None:
        fn(obj)


# ---------------------------------------------------------------------------------------------
# Pods and pod templates


def image_pull_policy_for(image: str | None) -> str:
    """Always for ``:latest`` or an untagged image, IfNotPresent otherwise (also for digests)."""
    ref = image or ""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]  # a ':' before the last '/' is a registry port, not a tag
    tag = last.partition(":")[2]
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_probe(probe: Probe | None) -> None:
    if probe is None:
        return
    # Kubernetes treats an explicit 0 like unset for these (its defaulting runs on zero values).
    if not probe.timeout_seconds:
        probe.timeout_seconds = 1
    if not probe.period_seconds:
        probe.period_seconds = 10
    if not probe.success_threshold:
        probe.success_threshold = 1
    if not probe.failure_threshold:
        probe.failure_threshold = 3
    _default_http_get(probe.http_get)


def _default_http_get(action: HTTPGetAction | None) -> None:
    if action is None:
        return
    if action.path is None or action.path == "":
        action.path = "/"
    if action.scheme is None or action.scheme == "":
        action.scheme = "HTTP"


def _default_field_ref(ref: ObjectFieldSelector | None) -> None:
    if ref is not None and not ref.api_version:
        ref.api_version = "v1"


def _default_container(c: Container) -> None:
    if not c.image_pull_policy:
        c.image_pull_policy = image_pull_policy_for(c.image)
    if not c.termination_message_path:
        c.termination_message_path = "/dev/termination-log"
    if not c.termination_message_policy:
        c.termination_message_policy = "File"
    if c.resources is None:
        # Go always emits the (empty) resources struct; keep the same shape.
        c.resources = ResourceRequirements()
    for port in c.ports or []:
        if not port.protocol:
            port.protocol = "TCP"
    for env in c.env or []:
        if env.value_from is not None:
            _default_field_ref(env.value_from.field_ref)
    _default_probe(c.liveness_probe)
    _default_probe(c.readiness_probe)
    _default_probe(c.startup_probe)
    if c.lifecycle is not None:
        for handler in (c.lifecycle.post_start, c.lifecycle.pre_stop):
            if handler is not None:
                _default_http_get(handler.http_get)


def _default_volume(v: Volume) -> None:
    sources = (
        v.host_path,
        v.empty_dir,
        v.secret,
        v.nfs,
        v.persistent_volume_claim,
        v.downward_api,
        v.config_map,
        v.projected,
    )
    # A volume with no source at all is an emptyDir, unless it has a source we do not model.
    if all(s is None for s in sources) and not v.__pydantic_extra__:
        v.empty_dir = EmptyDirVolumeSource()
    if v.host_path is not None and v.host_path.type is None:
        v.host_path.type = ""
    if v.secret is not None and v.secret.default_mode is None:
        v.secret.default_mode = DEFAULT_MODE
    if v.config_map is not None and v.config_map.default_mode is None:
        v.config_map.default_mode = DEFAULT_MODE
    if v.downward_api is not None:
        if v.downward_api.default_mode is None:
            v.downward_api.default_mode = DEFAULT_MODE
        for item in v.downward_api.items or []:
            _default_field_ref(item.field_ref)
    if v.projected is not None:
        if v.projected.default_mode is None:
            v.projected.default_mode = DEFAULT_MODE
        for src in v.projected.sources or []:
            if src.service_account_token is not None and src.service_account_token.expiration_seconds is None:
                src.service_account_token.expiration_seconds = DEFAULT_TOKEN_EXPIRATION
            if src.downward_api is not None:
                for item in src.downward_api.items or []:
                    _default_field_ref(item.field_ref)


def _all_containers(spec: PodSpec) -> Iterator[Container]:
    yield from spec.init_containers or []
    yield from spec.containers
    yield from spec.ephemeral_containers or []


def default_pod_spec(spec: PodSpec) -> None:
    """The defaults every pod spec gets, in a Pod or in a template."""
    if not spec.dns_policy:
        spec.dns_policy = "ClusterFirst"
    if not spec.restart_policy:
        spec.restart_policy = "Always"
    if spec.security_context is None:
        spec.security_context = PodSecurityContext()
    if spec.termination_grace_period_seconds is None:
        spec.termination_grace_period_seconds = DEFAULT_TERMINATION_GRACE_SECONDS
    if not spec.scheduler_name:
        spec.scheduler_name = "default-scheduler"
    for v in spec.volumes or []:
        _default_volume(v)
    for c in _all_containers(spec):
        _default_container(c)


def _requests_from_limits(c: Container) -> None:
    res = c.resources
    if res is None or not res.limits:
        return
    if res.requests is None:
        res.requests = {}
    for name, value in res.limits.items():
        res.requests.setdefault(name, value)


@_defaulter(Pod)
def _default_pod(pod: Pod) -> None:
    spec = pod.spec
    default_pod_spec(spec)
    # Pod-only defaults (Kubernetes' SetDefaults_Pod): templates keep these unset.
    for c in [*(spec.init_containers or []), *spec.containers]:
        _requests_from_limits(c)
    if spec.enable_service_links is None:
        spec.enable_service_links = True
    if spec.host_network:
        # With the host's network, a container port is also the host port.
        for c in [*(spec.init_containers or []), *spec.containers]:
            for port in c.ports or []:
                if port.host_port is None:
                    port.host_port = port.container_port
    # Kubernetes' Priority admission: without a priority class (and no global default class,
    # which kube-lite does not have) a pod gets priority 0 and may preempt lower priorities.
    if spec.priority is None and not spec.priority_class_name:
        spec.priority = 0
    if spec.preemption_policy is None and not spec.priority_class_name:
        spec.preemption_policy = "PreemptLowerPriority"


def _tolerates(tolerations: list[Toleration], taint_key: str) -> bool:
    """Whether a NoExecute taint with ``taint_key`` is already tolerated (same test as Kubernetes'
    DefaultTolerationSeconds admission: an empty key or empty effect matches too)."""
    return any(
        (t.key == taint_key or not t.key) and (t.effect == "NoExecute" or not t.effect) for t in tolerations
    )


def default_pod_tolerations(pod: Pod, seconds: int = DEFAULT_TOLERATION_SECONDS) -> None:
    """Add the not-ready/unreachable NoExecute tolerations (300 s) when missing.

    This is Kubernetes' DefaultTolerationSeconds admission: it runs on pod create only, so a
    user who removes the tolerations later keeps them removed.
    """
    tolerations = pod.spec.tolerations if pod.spec.tolerations is not None else []
    added = False
    for key in (NOT_READY_TAINT, UNREACHABLE_TAINT):
        if not _tolerates(tolerations, key):
            tolerations.append(
                Toleration(
                    key=key,
                    operator="Exists",
                    effect="NoExecute",
                    toleration_seconds=seconds,
                )
            )
            added = True
    if added:
        pod.spec.tolerations = tolerations


# ---------------------------------------------------------------------------------------------
# Workloads


@_defaulter(ReplicaSet)
def _default_replicaset(rs: ReplicaSet) -> None:
    if rs.spec.replicas is None:
        rs.spec.replicas = 1
    if rs.spec.template is not None:
        default_pod_spec(rs.spec.template.spec)


@_defaulter(Deployment)
def _default_deployment(d: Deployment) -> None:
    spec = d.spec
    if spec.replicas is None:
        spec.replicas = 1
    if spec.strategy is None:
        spec.strategy = DeploymentStrategy()
    if not spec.strategy.type:
        spec.strategy.type = "RollingUpdate"
    if spec.strategy.type == "RollingUpdate":
        if spec.strategy.rolling_update is None:
            spec.strategy.rolling_update = RollingUpdateDeployment()
        ru = spec.strategy.rolling_update
        if ru.max_unavailable is None:
            ru.max_unavailable = "25%"
        if ru.max_surge is None:
            ru.max_surge = "25%"
    if spec.revision_history_limit is None:
        spec.revision_history_limit = 10
    if spec.progress_deadline_seconds is None:
        spec.progress_deadline_seconds = 600
    default_pod_spec(spec.template.spec)


# ---------------------------------------------------------------------------------------------
# Services and endpoints


@_defaulter(Service)
def _default_service(svc: Service) -> None:
    spec = svc.spec
    if not spec.session_affinity:
        spec.session_affinity = "None"
    if not spec.type:
        spec.type = "ClusterIP"
    for port in spec.ports or []:
        if not port.protocol:
            port.protocol = "TCP"
        # Unset (or zero / empty) targetPort means "the same as port".
        if port.target_port is None or port.target_port == 0 or port.target_port == "":
            port.target_port = port.port
    if spec.session_affinity == "ClientIP":
        if spec.session_affinity_config is None:
            spec.session_affinity_config = SessionAffinityConfig()
        if spec.session_affinity_config.client_ip is None:
            spec.session_affinity_config.client_ip = ClientIPConfig()
        if spec.session_affinity_config.client_ip.timeout_seconds is None:
            spec.session_affinity_config.client_ip.timeout_seconds = DEFAULT_CLIENT_IP_TIMEOUT
    if spec.type in ("NodePort", "LoadBalancer") and not spec.external_traffic_policy:
        spec.external_traffic_policy = "Cluster"
    if spec.type != "ExternalName" and not spec.internal_traffic_policy:
        spec.internal_traffic_policy = "Cluster"
    if spec.type == "LoadBalancer" and spec.allocate_load_balancer_node_ports is None:
        spec.allocate_load_balancer_node_ports = True


@_defaulter(Endpoints)
def _default_endpoints(ep: Endpoints) -> None:
    for subset in ep.subsets or []:
        for port in subset.ports or []:
            if not port.protocol:
                port.protocol = "TCP"


@_defaulter(EndpointSlice)
def _default_endpointslice(es: EndpointSlice) -> None:
    for port in es.ports or []:
        if port.name is None:
            port.name = ""
        if port.protocol is None:
            port.protocol = "TCP"


# ---------------------------------------------------------------------------------------------
# Namespaces and secrets


@_defaulter(Namespace)
def _default_namespace(ns: Namespace) -> None:
    # Kubernetes adds the "kubernetes" finalizer on create and lets the namespace controller
    # remove it (through namespaces/NAME/finalize) while the namespace terminates; never put it
    # back on a namespace that is being deleted, or the namespace could never go away.
    if ns.spec.finalizers is None and ns.metadata.deletion_timestamp is None:
        ns.spec.finalizers = ["kubernetes"]
    if not ns.status.phase:
        ns.status.phase = "Active"
    # Every namespace carries its own name as a label, so selectors can pick namespaces by name.
    if ns.metadata.name:
        ns.metadata.labels = {**(ns.metadata.labels or {}), "kubernetes.io/metadata.name": ns.metadata.name}


@_defaulter(Secret)
def _default_secret(secret: Secret) -> None:
    if not secret.type:
        secret.type = "Opaque"
