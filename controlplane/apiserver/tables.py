"""Server-side Tables: the rows ``kubectl get`` prints, computed by the server.

kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints whatever columns the
server returns (upper-cased), showing the ``priority > 0`` ones only with ``-o wide``. So the
columns and the cell contents below follow what a real Kubernetes server computes for each kind:
the pod STATUS derivation, the ``3 (5m ago)`` restarts, ``<none>`` placeholders, label selectors
in their string form, and ages as ``duration.HumanDuration`` prints them. The server always
computes the wide cells; kubectl hides them.

Printers work on the wire JSON (dicts), which is what the handlers hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apimachinery.duration import human_duration
from apimachinery.meta import parse_time
from apimachinery.scheme import ResourceType
from controlplane.apiserver.discovery import media_ranges

Obj = dict[str, Any]
Cell = str | int | float | bool | None


@dataclass(frozen=True)
class Column:
    name: str
    description: str
    type: str = "string"
    format: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


def wants_table(accept_header: str) -> bool:
    """Whether the client prefers a meta.k8s.io/v1 Table to the plain object or list."""
    for mr in media_ranges(accept_header):
        if mr.media_type not in ("application/json", "application/*", "*/*"):
            continue
        params = mr.params
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") == "v1":
            return True
        if not params.get("as"):
            return False  # plain JSON is preferred over (or listed before) any Table
    return False


# ---------------------------------------------------------------------------------------------
# Durations


def _parse(timestamp: Any) -> datetime | None:
    if not timestamp or not isinstance(timestamp, str):
        return None
    try:
        t = parse_time(timestamp)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _since(timestamp: Any, now: datetime) -> str:
    """Kubernetes' translateTimestampSince: ``<unknown>`` for a missing time."""
    t = _parse(timestamp)
    if t is None:
        return "<unknown>"
    return human_duration((now - t).total_seconds())


# ---------------------------------------------------------------------------------------------
# Small formatting helpers shared by several kinds


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def format_labels(labels: dict[str, str] | None) -> str:
    """A label map as ``a=1,b=2`` (sorted), ``<none>`` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def format_label_selector(selector: dict[str, Any] | None) -> str:
    """A metav1.LabelSelector in its string form (``app=web,tier in (a,b),!canary``); ``<none>``
    when it selects nothing or everything. Requirements are sorted by key, values within one."""
    if not selector:
        return "<none>"
    reqs: list[tuple[str, str]] = [(k, f"{k}={v}") for k, v in _dict(selector.get("matchLabels")).items()]
    for expr in _list(selector.get("matchExpressions")):
        key, op = str(expr.get("key", "")), str(expr.get("operator", ""))
        values = ",".join(sorted(str(v) for v in _list(expr.get("values"))))
        text = {
            "In": f"{key} in ({values})",
            "NotIn": f"{key} notin ({values})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(op)
        if text is None:
            return "<error>"
        reqs.append((key, text))
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs) or "<none>"


def _template_containers(obj: Obj) -> tuple[str, str]:
    containers = _list(_get(obj, "spec", "template", "spec", "containers"))
    names = ",".join(str(c.get("name", "")) for c in containers)
    images = ",".join(str(c.get("image", "")) for c in containers)
    return names, images


def _with_more(items: list[str], count: int, limit: int, empty: str) -> str:
    text = ",".join(items)
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or empty


def _join_host_port(host: str, port: Any) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------------------------------------
# Column descriptions shared by every kind

_NAME = Column(
    "Name",
    "Name must be unique within a namespace (or the cluster, for cluster-scoped objects).",
    format="name",
)
_AGE = Column("Age", "How long ago the server created the object (metadata.creationTimestamp).")


def _age(obj: Obj, now: datetime) -> str:
    return _since(_get(obj, "metadata", "creationTimestamp"), now)


def _name(obj: Obj) -> str:
    return str(_get(obj, "metadata", "name") or "")


# ---------------------------------------------------------------------------------------------
# Pods


def _restartable_init(container: Obj | None) -> bool:
    """A sidecar: an init container with restartPolicy Always keeps running next to the app."""
    return bool(container) and _get(container, "restartPolicy") == "Always"


def _condition_true(status: Obj, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in _list(status.get("conditions")))


def _later(current: datetime | None, candidate: Any) -> datetime | None:
    t = _parse(candidate)
    if t is None:
        return current
    return t if current is None or t > current else current


def pod_status_summary(pod: Obj) -> tuple[int, int, str, int, datetime | None]:
    """The READY counts, STATUS, restart count and last restart time kubectl shows for a pod:
    (ready, total, reason, restarts, last_restart)."""
    spec, status = _dict(pod.get("spec")), _dict(pod.get("status"))
    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or phase)
    for cond in _list(status.get("conditions")):
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = {str(c.get("name")): c for c in _list(spec.get("initContainers"))}
    total = len(_list(spec.get("containers"))) + sum(1 for c in init_specs.values() if _restartable_init(c))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    init_statuses = _list(status.get("initContainerStatuses"))
    initializing = False
    for i, cs in enumerate(init_statuses):
        count = int(cs.get("restartCount") or 0)
        finished = _get(cs, "lastState", "terminated", "finishedAt")
        restarts += count
        last_restart = _later(last_restart, finished)
        sidecar = _restartable_init(init_specs.get(str(cs.get("name"))))
        if sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        terminated = _get(cs, "state", "terminated")
        waiting = _get(cs, "state", "waiting")
        if isinstance(terminated, dict) and int(terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started") is True:
            if cs.get("ready"):
                ready += 1
            continue
        if isinstance(terminated, dict):
            if terminated.get("reason"):
                reason = f"Init:{terminated['reason']}"
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        elif (
            isinstance(waiting, dict) and waiting.get("reason") and waiting.get("reason") != "PodInitializing"
        ):
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(_list(status.get("containerStatuses"))):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, _get(cs, "lastState", "terminated", "finishedAt"))
            waiting = _get(cs, "state", "waiting")
            terminated = _get(cs, "state", "terminated")
            if isinstance(waiting, dict) and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif isinstance(terminated, dict) and terminated.get("reason"):
                reason = str(terminated["reason"])
            elif isinstance(terminated, dict):
                signal = terminated.get("signal")
                reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
            elif cs.get("ready") and isinstance(_get(cs, "state", "running"), dict):
                has_running = True
                ready += 1
        # A pod whose last container completed but another still runs is not "Completed".
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"

    if _get(pod, "metadata", "deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return ready, total, reason, restarts, last_restart


def _pod_row(pod: Obj, now: datetime) -> list[Cell]:
    ready, total, reason, restarts, last_restart = pod_status_summary(pod)
    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"
    spec, status = _dict(pod.get("spec")), _dict(pod.get("status"))
    pod_ips = _list(status.get("podIPs"))
    pod_ip = str(pod_ips[0].get("ip") or "") if pod_ips else str(status.get("podIP") or "")
    gates = _list(spec.get("readinessGates"))
    gates_text = "<none>"
    if gates:
        conditions = {c.get("type"): c.get("status") for c in _list(status.get("conditions"))}
        true_count = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
        gates_text = f"{true_count}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_text,
        _age(pod, now),
        pod_ip or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_text,
    ]


def _pod_conditions(pod: Obj) -> list[dict[str, str]] | None:
    """Row conditions that let clients tell finished pods apart (kubectl can hide them)."""
    phase = _get(pod, "status", "phase")
    if phase == "Succeeded":
        return [
            {
                "type": "Completed",
                "status": "True",
                "reason": "Succeeded",
                "message": "The pod has completed successfully.",
            }
        ]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


_POD_COLUMNS = (
    _NAME,
    Column("Ready", "Ready containers out of all containers of the pod."),
    Column("Status", "The aggregate status of the pod's containers."),
    Column("Restarts", "Container restarts, and how long ago the last one happened."),
    _AGE,
    Column("IP", "The pod's IP address.", priority=1),
    Column("Node", "The node the pod is bound to.", priority=1),
    Column("Nominated Node", "The node the scheduler nominated while preempting other pods.", priority=1),
    Column("Readiness Gates", "Readiness gates that are true, out of all of them.", priority=1),
)


# ---------------------------------------------------------------------------------------------
# Workloads


def _deployment_row(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    names, images = _template_containers(obj)
    return [
        _name(obj),
        f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}",
        int(status.get("updatedReplicas") or 0),
        int(status.get("availableReplicas") or 0),
        _age(obj, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


_WORKLOAD_WIDE = (
    Column("Containers", "Names of the containers in the pod template.", priority=1),
    Column("Images", "Images of the containers in the pod template.", priority=1),
    Column("Selector", "Label selector of the pods it manages.", priority=1),
)

_DEPLOYMENT_COLUMNS = (
    _NAME,
    Column("Ready", "Ready pods out of the desired count."),
    Column("Up-to-date", "Pods that run the current pod template."),
    Column("Available", "Pods ready for at least minReadySeconds."),
    _AGE,
    *_WORKLOAD_WIDE,
)


def _replicaset_row(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    names, images = _template_containers(obj)
    return [
        _name(obj),
        int(spec.get("replicas") or 0),
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        _age(obj, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


_REPLICASET_COLUMNS = (
    _NAME,
    Column("Desired", "Number of pods wanted.", type="integer"),
    Column("Current", "Number of pods that exist.", type="integer"),
    Column("Ready", "Number of pods that are ready.", type="integer"),
    _AGE,
    *_WORKLOAD_WIDE,
)


# ---------------------------------------------------------------------------------------------
# Services and endpoints


def _service_external_ip(obj: Obj) -> str:
    spec = _dict(obj.get("spec"))
    external = [str(ip) for ip in _list(spec.get("externalIPs"))]
    svc_type = spec.get("type") or "ClusterIP"
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if svc_type == "LoadBalancer":
        ingress = _list(_get(obj, "status", "loadBalancer", "ingress"))
        lb = [
            str(i.get("ip") or i.get("hostname") or "") for i in ingress if i.get("ip") or i.get("hostname")
        ]
        return ",".join(lb + external) or "<pending>"
    if svc_type == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def _service_ports(ports: list[Any]) -> str:
    pieces = []
    for p in ports:
        proto = p.get("protocol") or "TCP"
        node_port = p.get("nodePort")
        pieces.append(f"{p.get('port')}:{node_port}/{proto}" if node_port else f"{p.get('port')}/{proto}")
    return ",".join(pieces) or "<none>"


def _service_row(obj: Obj, now: datetime) -> list[Cell]:
    spec = _dict(obj.get("spec"))
    cluster_ips = _list(spec.get("clusterIPs"))
    cluster_ip = str(cluster_ips[0]) if cluster_ips else str(spec.get("clusterIP") or "<none>")
    return [
        _name(obj),
        str(spec.get("type") or "ClusterIP"),
        cluster_ip,
        _service_external_ip(obj),
        _service_ports(_list(spec.get("ports"))),
        _age(obj, now),
        format_labels(spec.get("selector")),
    ]


_SERVICE_COLUMNS = (
    _NAME,
    Column("Type", "How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName."),
    Column("Cluster-IP", "The virtual IP of the service."),
    Column("External-IP", "Addresses outside the cluster that reach the service."),
    Column("Port(s)", "Ports the service exposes (port[:nodePort]/protocol)."),
    _AGE,
    Column("Selector", "Labels of the pods behind the service.", priority=1),
)

_MAX_ENDPOINTS = 3


def _endpoints_text(obj: Obj) -> str:
    subsets = _list(obj.get("subsets"))
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    for ss in subsets:
        addresses = _list(ss.get("addresses"))
        ports = _list(ss.get("ports"))
        targets = (
            [str(a.get("ip", "")) for a in addresses]
            if not ports
            else [_join_host_port(str(a.get("ip", "")), p.get("port")) for p in ports for a in addresses]
        )
        count += len(targets)
        shown.extend(targets[: max(0, _MAX_ENDPOINTS - len(shown))])
    return _with_more(shown, count, _MAX_ENDPOINTS, "<none>")


def _endpoints_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), _endpoints_text(obj), _age(obj, now)]


_ENDPOINTS_COLUMNS = (_NAME, Column("Endpoints", "Ready addresses and ports behind the service."), _AGE)


def _endpointslice_row(obj: Obj, now: datetime) -> list[Cell]:
    ports = []
    for p in _list(obj.get("ports")):
        port = p.get("port")
        ports.append(str(port) if port is not None else str(p.get("name") or "*"))
    addresses = [str(a) for e in _list(obj.get("endpoints")) for a in _list(e.get("addresses"))]
    return [
        _name(obj),
        str(obj.get("addressType") or ""),
        _with_more(ports[:_MAX_ENDPOINTS], len(ports), _MAX_ENDPOINTS, "<unset>"),
        _with_more(addresses[:_MAX_ENDPOINTS], len(addresses), _MAX_ENDPOINTS, "<unset>"),
        _age(obj, now),
    ]


_ENDPOINTSLICE_COLUMNS = (
    _NAME,
    Column("AddressType", "The type of the addresses: IPv4, IPv6 or FQDN."),
    Column("Ports", "Ports of the endpoints in the slice."),
    Column("Endpoints", "Addresses of the endpoints in the slice."),
    _AGE,
)


# ---------------------------------------------------------------------------------------------
# Cluster objects


def _node_roles(labels: dict[str, str]) -> str:
    roles: set[str] = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key.removeprefix("node-role.kubernetes.io/")
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(status: Obj, kind: str) -> str:
    for addr in _list(status.get("addresses")):
        if addr.get("type") == kind:
            return str(addr.get("address") or "<none>")
    return "<none>"


def _node_row(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _dict(obj.get("spec")), _dict(obj.get("status"))
    info = _dict(status.get("nodeInfo"))
    states = []
    for cond in _list(status.get("conditions")):
        if cond.get("type") == "Ready":
            states = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if not states:
        states = ["Unknown"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    return [
        _name(obj),
        ",".join(states),
        _node_roles(_dict(_get(obj, "metadata", "labels"))),
        _age(obj, now),
        str(info.get("kubeletVersion") or ""),
        _node_address(status, "InternalIP"),
        _node_address(status, "ExternalIP"),
        str(info.get("osImage") or "<unknown>"),
        str(info.get("kernelVersion") or "<unknown>"),
        str(info.get("containerRuntimeVersion") or "<unknown>"),
    ]


_NODE_COLUMNS = (
    _NAME,
    Column("Status", "Whether the node is ready, and whether it accepts new pods."),
    Column("Roles", "Roles of the node, from its node-role.kubernetes.io/ labels."),
    _AGE,
    Column("Version", "Kubelet version the node reports."),
    Column("Internal-IP", "The node's first InternalIP address.", priority=1),
    Column("External-IP", "The node's first ExternalIP address.", priority=1),
    Column("OS-Image", "Operating system image the node reports.", priority=1),
    Column("Kernel-Version", "Kernel version the node reports.", priority=1),
    Column("Container-Runtime", "Container runtime and version the node reports.", priority=1),
)


def _namespace_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), str(_get(obj, "status", "phase") or ""), _age(obj, now)]


_NAMESPACE_COLUMNS = (_NAME, Column("Status", "The phase of the namespace: Active or Terminating."), _AGE)


def _event_row(obj: Obj, now: datetime) -> list[Cell]:
    first = _since(obj.get("firstTimestamp"), now)
    if not obj.get("firstTimestamp"):
        first = _since(obj.get("eventTime"), now)
    last = _since(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    count = obj.get("count") or 0
    series = obj.get("series")
    if isinstance(series, dict):
        last = _since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif not count:
        count = 1  # singleton events of the newer API carry no count
    involved = _dict(obj.get("involvedObject"))
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = _dict(obj.get("source"))
    component = source.get("component") or obj.get("reportingComponent") or ""
    instance = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last,
        str(obj.get("type") or ""),
        str(obj.get("reason") or ""),
        target,
        str(involved.get("fieldPath") or ""),
        f"{component}, {instance}" if instance else str(component),
        str(obj.get("message") or "").strip(),
        first,
        int(count),
        _name(obj),
    ]


_EVENT_COLUMNS = (
    Column("Last Seen", "When the event was last observed."),
    Column("Type", "Normal or Warning."),
    Column("Reason", "Why the event happened, in CamelCase."),
    Column("Object", "The object the event is about."),
    Column("Subobject", "The part of the object the event is about, e.g. one container.", priority=1),
    Column("Source", "The component (and host) that reported the event.", priority=1),
    Column("Message", "What happened, for humans."),
    Column("First Seen", "When the event was first observed.", priority=1),
    Column("Count", "How many times the event has occurred.", priority=1),
    Column("Name", _NAME.description, format="name", priority=1),
)


# ---------------------------------------------------------------------------------------------
# Configuration and identity


def _configmap_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(_dict(obj.get("data"))) + len(_dict(obj.get("binaryData"))), _age(obj, now)]


def _secret_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), str(obj.get("type") or ""), len(_dict(obj.get("data"))), _age(obj, now)]


def _serviceaccount_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), len(_list(obj.get("secrets"))), _age(obj, now)]


def _lease_row(obj: Obj, now: datetime) -> list[Cell]:
    return [_name(obj), str(_get(obj, "spec", "holderIdentity") or ""), _age(obj, now)]


_CONFIGMAP_COLUMNS = (_NAME, Column("Data", "Number of keys in data and binaryData."), _AGE)
_SECRET_COLUMNS = (
    _NAME,
    Column("Type", "The type of the secret, e.g. Opaque or kubernetes.io/tls."),
    Column("Data", "Number of keys in data."),
    _AGE,
)
_SERVICEACCOUNT_COLUMNS = (_NAME, Column("Secrets", "Number of secrets the service account refers to."), _AGE)
_LEASE_COLUMNS = (_NAME, Column("Holder", "Identity of the current holder of the lease."), _AGE)


def _csr_row(obj: Obj, now: datetime) -> list[Cell]:
    seconds = _get(obj, "spec", "expirationSeconds")
    conditions = [str(c.get("type")) for c in _get(obj, "status", "conditions") or []
                  if isinstance(c, dict) and c.get("status") == "True"]
    if _get(obj, "status", "certificate"):
        conditions.append("Issued")
    return [
        _name(obj), _age(obj, now), str(_get(obj, "spec", "signerName") or ""),
        str(_get(obj, "spec", "username") or ""),
        human_duration(float(seconds)) if isinstance(seconds, int) else "<none>",
        ",".join(conditions) or "Pending",
    ]


_CSR_COLUMNS = (
    _NAME, _AGE,
    Column("SignerName", "The signer the request is for."),
    Column("Requestor", "The user who made the request."),
    Column("RequestedDuration", "The validity the request asked for."),
    Column("Condition", "Approval and issue state."),
)


def _binding_row(obj: Obj, now: datetime) -> list[Cell]:
    ref = _dict(obj.get("roleRef"))
    return [_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", _age(obj, now)]


_BINDING_COLUMNS = (_NAME, Column("Role", "The role the binding grants."), _AGE)


# ---------------------------------------------------------------------------------------------
# Unknown kinds


def _default_row(obj: Obj, now: datetime) -> list[Cell]:
    created = _parse(_get(obj, "metadata", "creationTimestamp"))
    return [_name(obj), created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created else None]


_DEFAULT_COLUMNS = (_NAME, Column("Created At", "When the server created the object.", type="date"))


Printer = Callable[[Obj, datetime], list[Cell]]

PRINTERS: dict[tuple[str, str], tuple[tuple[Column, ...], Printer]] = {
    ("", "Pod"): (_POD_COLUMNS, _pod_row),
    ("apps", "Deployment"): (_DEPLOYMENT_COLUMNS, _deployment_row),
    ("apps", "ReplicaSet"): (_REPLICASET_COLUMNS, _replicaset_row),
    ("", "Service"): (_SERVICE_COLUMNS, _service_row),
    ("", "Endpoints"): (_ENDPOINTS_COLUMNS, _endpoints_row),
    ("discovery.k8s.io", "EndpointSlice"): (_ENDPOINTSLICE_COLUMNS, _endpointslice_row),
    ("", "Node"): (_NODE_COLUMNS, _node_row),
    ("", "Namespace"): (_NAMESPACE_COLUMNS, _namespace_row),
    ("", "Event"): (_EVENT_COLUMNS, _event_row),
    ("", "ConfigMap"): (_CONFIGMAP_COLUMNS, _configmap_row),
    ("", "Secret"): (_SECRET_COLUMNS, _secret_row),
    ("", "ServiceAccount"): (_SERVICEACCOUNT_COLUMNS, _serviceaccount_row),
    ("coordination.k8s.io", "Lease"): (_LEASE_COLUMNS, _lease_row),
    ("certificates.k8s.io", "CertificateSigningRequest"): (_CSR_COLUMNS, _csr_row),
    ("rbac.authorization.k8s.io", "RoleBinding"): (_BINDING_COLUMNS, _binding_row),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (_BINDING_COLUMNS, _binding_row),
}


def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def build_table(
    rt: ResourceType,
    objects: list[Obj],
    *,
    include_object: str = "Metadata",
    list_meta: dict[str, Any] | None = None,
    now: datetime | None = None,
    include_columns: bool = True,
) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of ``objects`` (wire dicts of kind ``rt``).

    ``include_object`` is the ``includeObject`` query parameter: ``Metadata`` (the default; rows
    carry PartialObjectMetadata), ``Object`` (the full object) or ``None``. ``list_meta`` becomes
    the Table's metadata (resourceVersion, continue). ``include_columns=False`` leaves the column
    definitions out, for watch events after the first one.
    """
    if include_object not in ("Metadata", "Object", "None"):
        raise ValueError(f"includeObject must be None, Metadata or Object, not {include_object!r}")
    when = now or datetime.now(UTC)
    columns, printer = PRINTERS.get((rt.group, rt.kind), (_DEFAULT_COLUMNS, _default_row))
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer(obj, when)}
        if rt.kind == "Pod":
            conditions = _pod_conditions(obj)
            if conditions:
                row["conditions"] = conditions
        row_object = _row_object(obj, include_object)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta or {}),
    }
    table["columnDefinitions"] = [c.definition() for c in columns] if include_columns else None
    table["rows"] = rows
    return table
