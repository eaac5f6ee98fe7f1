"""core/v1: Pod, Service, Endpoints, Node, Namespace, Event, ConfigMap, Secret, ServiceAccount, Binding.

Field names and JSON shapes follow Kubernetes exactly (see :mod:`apimachinery.model` for the
conventions). Fields Kubernetes declares without ``omitempty`` get a real default so they are
always emitted; everything else is optional and left out when unset.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field

from apimachinery.meta import Condition, KubeList, KubeObject, LabelSelector, MicroTime, ObjectMeta, Time
from apimachinery.model import KubeModel, merge_list


def _quantity(value: Any) -> Any:
    """Accept YAML numbers for quantities (``cpu: 1``, ``memory: 0.5``) and keep them as strings,
    which is how Kubernetes serializes a Quantity."""
    if isinstance(value, bool):
        return value  # let str validation reject it rather than turning True into "True"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value


# A resource quantity ("100m", "1Gi", "2"): a string on the wire.
Quantity = Annotated[str, BeforeValidator(_quantity)]

# Kubernetes' IntOrString. Pydantic's default "smart" union mode tries each member strictly first,
# so 3 stays an int and "25%" (or even "3") stays a string, as in Go's JSON decoding.
IntOrString = int | str

ResourceList = dict[str, Quantity]


# ---------------------------------------------------------------------------------------------
# References


class ObjectReference(KubeModel):
    """A reference to another object, possibly a field within it."""

    kind: str | None = Field(None, description="Kind of the referent.")
    namespace: str | None = Field(None, description="Namespace of the referent.")
    name: str | None = Field(None, description="Name of the referent.")
    uid: str | None = Field(None, description="UID of the referent.")
    api_version: str | None = Field(None, description="API version of the referent.")
    resource_version: str | None = Field(None, description="Specific resourceVersion the reference is to.")
    field_path: str | None = Field(
        None, description="A field within the referent, e.g. spec.containers{web}."
    )


class LocalObjectReference(KubeModel):
    """A reference by name to an object in the same namespace."""

    name: str | None = Field(None, description="Name of the referent.")


class TypedLocalObjectReference(KubeModel):
    """A typed reference to an object in the same namespace."""

    api_group: str | None = None
    kind: str = ""
    name: str = ""


# ---------------------------------------------------------------------------------------------
# Environment


class ObjectFieldSelector(KubeModel):
    """Selects a field of the pod, such as metadata.name or status.podIP."""

    api_version: str | None = Field(None, description="Version of the schema the field path is written in.")
    field_path: str = Field("", description="Path of the field to select.")


class ResourceFieldSelector(KubeModel):
    """Selects a container's resource request or limit."""

    container_name: str | None = Field(None, description="Container name; required for volumes.")
    resource: str = Field("", description="Resource to select, e.g. limits.cpu.")
    divisor: Quantity | None = Field(None, description="Output format of the exposed resource.")


class ConfigMapKeySelector(KubeModel):
    """Selects a key of a ConfigMap."""

    name: str | None = Field(None, description="Name of the ConfigMap.")
    key: str = Field("", description="The key to select.")
    optional: bool | None = Field(None, description="Whether the ConfigMap or key may be missing.")


class SecretKeySelector(KubeModel):
    """Selects a key of a Secret."""

    name: str | None = Field(None, description="Name of the Secret.")
    key: str = Field("", description="The key to select.")
    optional: bool | None = Field(None, description="Whether the Secret or key may be missing.")


class EnvVarSource(KubeModel):
    """Where an environment variable's value comes from."""

    field_ref: ObjectFieldSelector | None = Field(None, description="A field of the pod.")
    resource_field_ref: ResourceFieldSelector | None = Field(None, description="A container resource.")
    config_map_key_ref: ConfigMapKeySelector | None = Field(None, description="A key of a ConfigMap.")
    secret_key_ref: SecretKeySelector | None = Field(None, description="A key of a Secret.")


class EnvVar(KubeModel):
    """One environment variable of a container."""

    name: str = Field("", description="Name of the variable.")
    value: str | None = Field(None, description="Literal value; $(VAR) references are expanded.")
    value_from: EnvVarSource | None = Field(None, description="Source of the value when not literal.")


class ConfigMapEnvSource(KubeModel):
    """A ConfigMap whose keys become environment variables."""

    name: str | None = Field(None, description="Name of the ConfigMap.")
    optional: bool | None = Field(None, description="Whether the ConfigMap may be missing.")


class SecretEnvSource(KubeModel):
    """A Secret whose keys become environment variables."""

    name: str | None = Field(None, description="Name of the Secret.")
    optional: bool | None = Field(None, description="Whether the Secret may be missing.")


class EnvFromSource(KubeModel):
    """A set of environment variables taken from a ConfigMap or Secret."""

    prefix: str | None = Field(None, description="Prefix prepended to every variable name.")
    config_map_ref: ConfigMapEnvSource | None = Field(None, description="The ConfigMap to read.")
    secret_ref: SecretEnvSource | None = Field(None, description="The Secret to read.")


# ---------------------------------------------------------------------------------------------
# Container parts


class ContainerPort(KubeModel):
    """A network port a container exposes."""

    name: str | None = Field(None, description="IANA_SVC_NAME-style name services can refer to.")
    host_port: int | None = Field(None, description="Port to expose on the host.")
    container_port: int = Field(0, description="Port number on the pod's IP address.")
    protocol: str | None = Field(None, description="TCP, UDP or SCTP; defaults to TCP.")
    host_ip: str | None = Field(None, alias="hostIP", description="Host IP to bind the host port to.")


class ResourceClaim(KubeModel):
    """A reference to one of the pod's resource claims."""

    name: str = ""
    request: str | None = None


class ResourceRequirements(KubeModel):
    """Compute resources a container needs (requests) and may use at most (limits)."""

    limits: ResourceList | None = Field(None, description="Maximum amount of each resource allowed.")
    requests: ResourceList | None = Field(None, description="Minimum amount of each resource required.")
    claims: list[ResourceClaim] | None = Field(None, description="Dynamic resource claims used.")


class ContainerResizePolicy(KubeModel):
    """How a container reacts to an in-place resize of one resource."""

    resource_name: str = ""
    restart_policy: str = ""


class VolumeMount(KubeModel):
    """Where a volume is mounted inside a container."""

    name: str = Field("", description="Name of the pod volume to mount.")
    read_only: bool | None = Field(None, description="Mount read-only when true.")
    recursive_read_only: str | None = Field(None, description="Whether read-only applies to submounts.")
    mount_path: str = Field("", description="Path inside the container.")
    sub_path: str | None = Field(None, description="Path within the volume to mount instead of its root.")
    mount_propagation: str | None = Field(
        None, description="How mounts propagate between host and container."
    )
    sub_path_expr: str | None = Field(None, description="Like subPath, with $(VAR) expansion.")


class VolumeDevice(KubeModel):
    """A raw block device mapped into a container."""

    name: str = Field("", description="Name of the persistentVolumeClaim volume.")
    device_path: str = Field("", description="Path inside the container.")


class ExecAction(KubeModel):
    """Run a command inside the container."""

    command: list[str] | None = Field(None, description="Command line to run; exit 0 means success.")


class HTTPHeader(KubeModel):
    """A header sent with an HTTP probe."""

    name: str = ""
    value: str = ""


class HTTPGetAction(KubeModel):
    """Perform an HTTP GET against the container."""

    path: str | None = Field(None, description="Path to request.")
    port: IntOrString = Field(0, description="Port number or name to connect to.")
    host: str | None = Field(None, description="Host to connect to; defaults to the pod IP.")
    scheme: str | None = Field(None, description="HTTP or HTTPS; defaults to HTTP.")
    http_headers: list[HTTPHeader] | None = Field(None, description="Custom request headers.")


class TCPSocketAction(KubeModel):
    """Open a TCP connection to the container."""

    port: IntOrString = Field(0, description="Port number or name to connect to.")
    host: str | None = Field(None, description="Host to connect to; defaults to the pod IP.")


class GRPCAction(KubeModel):
    """Call the gRPC health checking service of the container."""

    port: int = Field(0, description="Port number of the gRPC service.")
    service: str | None = Field(None, description="Service name sent in the HealthCheckRequest.")


class SleepAction(KubeModel):
    """Sleep for a while (a lifecycle hook)."""

    seconds: int = Field(0, description="Seconds to sleep.")


class Probe(KubeModel):
    """A periodic health check of a container."""

    exec: ExecAction | None = Field(None, description="Run a command.")
    http_get: HTTPGetAction | None = Field(None, description="Send an HTTP GET.")
    tcp_socket: TCPSocketAction | None = Field(None, description="Open a TCP connection.")
    grpc: GRPCAction | None = Field(None, description="Call the gRPC health service.")
    initial_delay_seconds: int | None = Field(None, description="Seconds after start before the first probe.")
    timeout_seconds: int | None = Field(None, description="Seconds after which a probe times out.")
    period_seconds: int | None = Field(None, description="Seconds between probes.")
    success_threshold: int | None = Field(None, description="Consecutive successes to count as healthy.")
    failure_threshold: int | None = Field(None, description="Consecutive failures to count as unhealthy.")
    termination_grace_period_seconds: int | None = Field(
        None, description="Grace period when a liveness failure kills the container."
    )


class LifecycleHandler(KubeModel):
    """An action run at a container lifecycle event."""

    exec: ExecAction | None = Field(None, description="Run a command.")
    http_get: HTTPGetAction | None = Field(None, description="Send an HTTP GET.")
    tcp_socket: TCPSocketAction | None = Field(None, description="Deprecated; kept for compatibility.")
    sleep: SleepAction | None = Field(None, description="Sleep for a while.")


class Lifecycle(KubeModel):
    """Hooks run after a container starts and before it stops."""

    post_start: LifecycleHandler | None = Field(None, description="Run right after the container starts.")
    pre_stop: LifecycleHandler | None = Field(None, description="Run before the container is stopped.")
    stop_signal: str | None = Field(None, description="Signal used to stop the container.")


class Capabilities(KubeModel):
    """Linux capabilities to add to or drop from a container."""

    add: list[str] | None = Field(None, description="Capabilities to add.")
    drop: list[str] | None = Field(None, description="Capabilities to drop.")


class SELinuxOptions(KubeModel):
    """SELinux labels applied to a container."""

    user: str | None = None
    role: str | None = None
    type: str | None = None
    level: str | None = None


class WindowsSecurityContextOptions(KubeModel):
    """Windows-specific security options."""

    gmsa_credential_spec_name: str | None = None
    gmsa_credential_spec: str | None = None
    run_as_user_name: str | None = None
    host_process: bool | None = None


class SeccompProfile(KubeModel):
    """The seccomp profile applied to a container."""

    type: str = Field("", description="RuntimeDefault, Unconfined or Localhost.")
    localhost_profile: str | None = Field(None, description="Profile file for the Localhost type.")


class AppArmorProfile(KubeModel):
    """The AppArmor profile applied to a container."""

    type: str = Field("", description="RuntimeDefault, Unconfined or Localhost.")
    localhost_profile: str | None = Field(None, description="Profile name for the Localhost type.")


class SecurityContext(KubeModel):
    """Security settings of one container."""

    capabilities: Capabilities | None = Field(None, description="Capabilities to add or drop.")
    privileged: bool | None = Field(None, description="Run as privileged (like root on the host).")
    se_linux_options: SELinuxOptions | None = Field(None, description="SELinux context to apply.")
    windows_options: WindowsSecurityContextOptions | None = Field(None, description="Windows options.")
    run_as_user: int | None = Field(None, description="UID the process runs as.")
    run_as_group: int | None = Field(None, description="GID the process runs as.")
    run_as_non_root: bool | None = Field(None, description="Refuse to start if the image runs as root.")
    read_only_root_filesystem: bool | None = Field(None, description="Mount the root filesystem read-only.")
    allow_privilege_escalation: bool | None = Field(
        None, description="Whether a process can gain more privileges than its parent."
    )
    proc_mount: str | None = Field(None, description="Default or Unmasked /proc.")
    seccomp_profile: SeccompProfile | None = Field(None, description="Seccomp profile to apply.")
    app_armor_profile: AppArmorProfile | None = Field(None, description="AppArmor profile to apply.")


class Container(KubeModel):
    """One container of a pod."""

    name: str = Field("", description="Name of the container, unique within the pod.")
    image: str | None = Field(None, description="Container image reference.")
    command: list[str] | None = Field(None, description="Entrypoint array; replaces the image's ENTRYPOINT.")
    args: list[str] | None = Field(None, description="Arguments to the entrypoint; replace the image's CMD.")
    working_dir: str | None = Field(None, description="Working directory of the process.")
    ports: list[ContainerPort] | None = merge_list(
        "containerPort", description="Ports the container exposes (informational)."
    )
    env_from: list[EnvFromSource] | None = Field(
        None, description="ConfigMaps and Secrets whose keys become environment variables."
    )
    env: list[EnvVar] | None = merge_list("name", description="Environment variables to set.")
    resources: ResourceRequirements | None = Field(None, description="Compute resource requests and limits.")
    resize_policy: list[ContainerResizePolicy] | None = Field(
        None, description="How the container reacts to in-place resource resizes."
    )
    restart_policy: str | None = Field(
        None, description="Always makes an init container a sidecar that keeps running."
    )
    volume_mounts: list[VolumeMount] | None = merge_list(
        "mountPath", description="Pod volumes mounted into the container."
    )
    volume_devices: list[VolumeDevice] | None = merge_list(
        "devicePath", description="Block devices mapped into the container."
    )
    liveness_probe: Probe | None = Field(None, description="Restarts the container when it fails.")
    readiness_probe: Probe | None = Field(None, description="Removes the pod from endpoints when it fails.")
    startup_probe: Probe | None = Field(
        None, description="Holds other probes until the container has started."
    )
    lifecycle: Lifecycle | None = Field(None, description="Hooks run after start and before stop.")
    termination_message_path: str | None = Field(
        None, description="File whose content becomes the termination message."
    )
    termination_message_policy: str | None = Field(
        None, description="File, or FallbackToLogsOnError to use the log tail when the file is empty."
    )
    image_pull_policy: str | None = Field(None, description="Always, Never or IfNotPresent.")
    security_context: SecurityContext | None = Field(None, description="Security settings of the container.")
    stdin: bool | None = Field(None, description="Keep a stdin buffer open for the container.")
    stdin_once: bool | None = Field(None, description="Close stdin after the first attach disconnects.")
    tty: bool | None = Field(None, description="Allocate a TTY for the container.")


class EphemeralContainer(Container):
    """A temporary debugging container added to a running pod."""

    target_container_name: str | None = Field(
        None, description="Container whose namespaces the ephemeral container joins."
    )


# ---------------------------------------------------------------------------------------------
# Volumes


class KeyToPath(KubeModel):
    """Maps a key of a ConfigMap or Secret to a file path in a volume."""

    key: str = ""
    path: str = ""
    mode: int | None = None


class HostPathVolumeSource(KubeModel):
    """A file or directory on the host."""

    path: str = Field("", description="Path on the host.")
    type: str | None = Field(None, description="Check to run before mounting, e.g. Directory or File.")


class EmptyDirVolumeSource(KubeModel):
    """A scratch directory that lives as long as the pod."""

    medium: str | None = Field(None, description="Storage medium: empty for disk or Memory for tmpfs.")
    size_limit: Quantity | None = Field(None, description="Maximum size of the directory.")


class SecretVolumeSource(KubeModel):
    """The keys of a Secret, as files."""

    secret_name: str | None = Field(None, description="Name of the Secret.")
    items: list[KeyToPath] | None = Field(None, description="Which keys to project, and where.")
    default_mode: int | None = Field(None, description="Permission bits of the files.")
    optional: bool | None = Field(None, description="Whether the Secret may be missing.")


class ConfigMapVolumeSource(KubeModel):
    """The keys of a ConfigMap, as files."""

    name: str | None = Field(None, description="Name of the ConfigMap.")
    items: list[KeyToPath] | None = Field(None, description="Which keys to project, and where.")
    default_mode: int | None = Field(None, description="Permission bits of the files.")
    optional: bool | None = Field(None, description="Whether the ConfigMap may be missing.")


class PersistentVolumeClaimVolumeSource(KubeModel):
    """A PersistentVolumeClaim in the pod's namespace."""

    claim_name: str = Field("", description="Name of the claim.")
    read_only: bool | None = Field(None, description="Mount read-only.")


class DownwardAPIVolumeFile(KubeModel):
    """One file with pod information."""

    path: str = ""
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    mode: int | None = None


class DownwardAPIVolumeSource(KubeModel):
    """Pod information (labels, annotations, resources) as files."""

    items: list[DownwardAPIVolumeFile] | None = Field(None, description="The files to write.")
    default_mode: int | None = Field(None, description="Permission bits of the files.")


class SecretProjection(KubeModel):
    """A Secret's keys inside a projected volume."""

    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class ConfigMapProjection(KubeModel):
    """A ConfigMap's keys inside a projected volume."""

    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class DownwardAPIProjection(KubeModel):
    """Pod information inside a projected volume."""

    items: list[DownwardAPIVolumeFile] | None = None


class ServiceAccountTokenProjection(KubeModel):
    """A bound service account token inside a projected volume."""

    audience: str | None = None
    expiration_seconds: int | None = None
    path: str = ""


class ClusterTrustBundleProjection(KubeModel):
    """Certificates from ClusterTrustBundle objects inside a projected volume."""

    name: str | None = None
    signer_name: str | None = None
    label_selector: LabelSelector | None = None
    optional: bool | None = None
    path: str = ""


class VolumeProjection(KubeModel):
    """One source of a projected volume."""

    secret: SecretProjection | None = None
    downward_api: DownwardAPIProjection | None = Field(None, alias="downwardAPI")
    config_map: ConfigMapProjection | None = None
    service_account_token: ServiceAccountTokenProjection | None = None
    cluster_trust_bundle: ClusterTrustBundleProjection | None = None


class ProjectedVolumeSource(KubeModel):
    """Several sources merged into one directory."""

    sources: list[VolumeProjection] | None = Field(None, description="The sources to merge.")
    default_mode: int | None = Field(None, description="Permission bits of the files.")


class NFSVolumeSource(KubeModel):
    """An NFS export."""

    server: str = ""
    path: str = ""
    read_only: bool | None = None


class Volume(KubeModel):
    """A named volume that containers of the pod can mount; exactly one source is set."""

    name: str = Field("", description="Name of the volume, unique within the pod.")
    host_path: HostPathVolumeSource | None = Field(None, description="A path on the host.")
    empty_dir: EmptyDirVolumeSource | None = Field(None, description="A scratch directory.")
    secret: SecretVolumeSource | None = Field(None, description="The keys of a Secret.")
    nfs: NFSVolumeSource | None = Field(None, description="An NFS export.")
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = Field(
        None, description="A PersistentVolumeClaim."
    )
    downward_api: DownwardAPIVolumeSource | None = Field(
        None, alias="downwardAPI", description="Pod information as files."
    )
    config_map: ConfigMapVolumeSource | None = Field(None, description="The keys of a ConfigMap.")
    projected: ProjectedVolumeSource | None = Field(None, description="Several sources in one directory.")


# ---------------------------------------------------------------------------------------------
# Scheduling


class NodeSelectorRequirement(KubeModel):
    """A requirement on a node label or field."""

    key: str = Field("", description="Label key (or field name) the requirement applies to.")
    operator: str = Field("", description="In, NotIn, Exists, DoesNotExist, Gt or Lt.")
    values: list[str] | None = Field(None, description="Values for In, NotIn, Gt and Lt.")


class NodeSelectorTerm(KubeModel):
    """Requirements that must all hold for a node to match."""

    match_expressions: list[NodeSelectorRequirement] | None = Field(None, description="On node labels.")
    match_fields: list[NodeSelectorRequirement] | None = Field(None, description="On node fields.")


class NodeSelector(KubeModel):
    """Terms of which at least one must match."""

    node_selector_terms: list[NodeSelectorTerm] = Field(
        default_factory=list, description="ORed list of node selector terms."
    )


class PreferredSchedulingTerm(KubeModel):
    """A weighted preference for nodes matching a term."""

    weight: int = Field(0, description="Weight 1-100 added to matching nodes' scores.")
    preference: NodeSelectorTerm = Field(default_factory=NodeSelectorTerm, description="The term to prefer.")


class NodeAffinity(KubeModel):
    """Node affinity rules of a pod."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        None, description="Nodes that do not match are never chosen."
    )
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = Field(
        None, description="Nodes that match score higher."
    )


class PodAffinityTerm(KubeModel):
    """Pods (selected by labels and namespaces) that must or must not share a topology domain."""

    label_selector: LabelSelector | None = Field(None, description="Pods this term is about.")
    namespaces: list[str] | None = Field(None, description="Namespaces searched; empty means the pod's own.")
    topology_key: str = Field("", description="Node label that defines the topology domain.")
    namespace_selector: LabelSelector | None = Field(None, description="Namespaces searched, by label.")
    match_label_keys: list[str] | None = Field(None, description="Pod label keys merged into the selector.")
    mismatch_label_keys: list[str] | None = Field(
        None, description="Pod label keys merged into the selector as NotIn."
    )


class WeightedPodAffinityTerm(KubeModel):
    """A weighted pod affinity preference."""

    weight: int = Field(0, description="Weight 1-100 added to matching nodes' scores.")
    pod_affinity_term: PodAffinityTerm = Field(default_factory=PodAffinityTerm, description="The term.")


class PodAffinity(KubeModel):
    """Rules that place the pod near other pods."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = Field(
        None, description="Terms that must hold."
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = Field(
        None, description="Terms that score higher when they hold."
    )


class PodAntiAffinity(KubeModel):
    """Rules that keep the pod away from other pods."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = Field(
        None, description="Terms that must not hold."
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = Field(
        None, description="Terms that score lower when they hold."
    )


class Affinity(KubeModel):
    """Node affinity, pod affinity and pod anti-affinity rules."""

    node_affinity: NodeAffinity | None = Field(None, description="Which nodes the pod may run on.")
    pod_affinity: PodAffinity | None = Field(None, description="Pods to run near.")
    pod_anti_affinity: PodAntiAffinity | None = Field(None, description="Pods to keep away from.")


class Toleration(KubeModel):
    """Allows a pod onto nodes with a matching taint."""

    key: str | None = Field(None, description="Taint key; empty with Exists matches all taints.")
    operator: str | None = Field(None, description="Exists or Equal (the default).")
    value: str | None = Field(None, description="Taint value to match with Equal.")
    effect: str | None = Field(
        None, description="NoSchedule, PreferNoSchedule or NoExecute; empty matches all."
    )
    toleration_seconds: int | None = Field(
        None, description="How long a NoExecute taint is tolerated before eviction."
    )


class HostAlias(KubeModel):
    """An extra /etc/hosts entry."""

    ip: str = Field("", description="IP address of the entry.")
    hostnames: list[str] | None = Field(None, description="Hostnames for the IP address.")


class PodDNSConfigOption(KubeModel):
    """A resolver option."""

    name: str | None = None
    value: str | None = None


class PodDNSConfig(KubeModel):
    """DNS settings merged into the pod's resolv.conf."""

    nameservers: list[str] | None = Field(None, description="Extra name server addresses.")
    searches: list[str] | None = Field(None, description="Extra search domains.")
    options: list[PodDNSConfigOption] | None = Field(None, description="Extra resolver options.")


class PodReadinessGate(KubeModel):
    """An extra pod condition that must be true for the pod to be ready."""

    condition_type: str = Field("", description="Type of the pod condition.")


class TopologySpreadConstraint(KubeModel):
    """How to spread matching pods across topology domains."""

    max_skew: int = Field(0, description="Maximum allowed difference in matching pods between domains.")
    topology_key: str = Field("", description="Node label that defines the domains.")
    when_unsatisfiable: str = Field("", description="DoNotSchedule or ScheduleAnyway.")
    label_selector: LabelSelector | None = Field(None, description="Pods counted in each domain.")
    min_domains: int | None = Field(None, description="Minimum number of eligible domains.")
    node_affinity_policy: str | None = Field(None, description="Honor or Ignore the pod's node affinity.")
    node_taints_policy: str | None = Field(None, description="Honor or Ignore node taints.")
    match_label_keys: list[str] | None = Field(None, description="Pod label keys merged into the selector.")


class Sysctl(KubeModel):
    """A namespaced kernel parameter."""

    name: str = ""
    value: str = ""


class PodSecurityContext(KubeModel):
    """Security settings shared by all containers of a pod."""

    se_linux_options: SELinuxOptions | None = Field(None, description="SELinux context for all containers.")
    windows_options: WindowsSecurityContextOptions | None = Field(None, description="Windows options.")
    run_as_user: int | None = Field(None, description="UID for container processes.")
    run_as_group: int | None = Field(None, description="GID for container processes.")
    run_as_non_root: bool | None = Field(None, description="Refuse to start containers running as root.")
    supplemental_groups: list[int] | None = Field(None, description="Extra groups for container processes.")
    supplemental_groups_policy: str | None = Field(None, description="Merge or Strict.")
    fs_group: int | None = Field(None, description="Group that owns supported volumes.")
    sysctls: list[Sysctl] | None = Field(None, description="Namespaced sysctls to set.")
    fs_group_change_policy: str | None = Field(None, description="OnRootMismatch or Always.")
    seccomp_profile: SeccompProfile | None = Field(None, description="Seccomp profile for all containers.")
    app_armor_profile: AppArmorProfile | None = Field(
        None, description="AppArmor profile for all containers."
    )
    se_linux_change_policy: str | None = Field(None, description="How SELinux labels are applied to volumes.")


class PodOS(KubeModel):
    """The operating system the pod's containers need."""

    name: str = ""


class PodSchedulingGate(KubeModel):
    """A gate that holds the pod back from scheduling until removed."""

    name: str = ""


class PodSpec(KubeModel):
    """The desired state of a pod."""

    volumes: list[Volume] | None = merge_list(
        "name", strategy="merge,retainKeys", description="Volumes the containers can mount."
    )
    init_containers: list[Container] | None = merge_list(
        "name", description="Containers run to completion, in order, before the app containers."
    )
    containers: list[Container] = merge_list(
        "name", default=[], description="The application containers of the pod."
    )
    ephemeral_containers: list[EphemeralContainer] | None = merge_list(
        "name", description="Debugging containers added to the running pod."
    )
    restart_policy: str | None = Field(None, description="Always, OnFailure or Never.")
    termination_grace_period_seconds: int | None = Field(
        None, description="Seconds between SIGTERM and SIGKILL when the pod is deleted."
    )
    active_deadline_seconds: int | None = Field(
        None, description="Seconds the pod may be active before it is failed."
    )
    dns_policy: str | None = Field(
        None, description="ClusterFirst, ClusterFirstWithHostNet, Default or None."
    )
    node_selector: dict[str, str] | None = Field(None, description="Labels a node must have to run the pod.")
    service_account_name: str | None = Field(None, description="Service account the pod runs as.")
    service_account: str | None = Field(None, description="Deprecated alias of serviceAccountName.")
    automount_service_account_token: bool | None = Field(
        None, description="Whether the service account token is mounted."
    )
    node_name: str | None = Field(None, description="Node the pod is bound to; set by the scheduler.")
    host_network: bool | None = Field(None, description="Use the host's network namespace.")
    host_pid: bool | None = Field(None, alias="hostPID", description="Use the host's PID namespace.")
    host_ipc: bool | None = Field(None, alias="hostIPC", description="Use the host's IPC namespace.")
    share_process_namespace: bool | None = Field(None, description="Put all containers in one PID namespace.")
    security_context: PodSecurityContext | None = Field(
        None, description="Security settings shared by all containers."
    )
    image_pull_secrets: list[LocalObjectReference] | None = merge_list(
        "name", description="Secrets holding registry credentials."
    )
    hostname: str | None = Field(None, description="Hostname of the pod; defaults to its name.")
    subdomain: str | None = Field(
        None, description="Subdomain forming the pod's FQDN with a headless service."
    )
    affinity: Affinity | None = Field(None, description="Scheduling constraints relative to nodes and pods.")
    scheduler_name: str | None = Field(None, description="Scheduler that places the pod.")
    tolerations: list[Toleration] | None = Field(None, description="Taints the pod tolerates.")
    host_aliases: list[HostAlias] | None = merge_list("ip", description="Extra /etc/hosts entries.")
    priority_class_name: str | None = Field(None, description="Name of the pod's PriorityClass.")
    priority: int | None = Field(None, description="Priority value; resolved from the priority class.")
    dns_config: PodDNSConfig | None = Field(None, description="Extra DNS settings.")
    readiness_gates: list[PodReadinessGate] | None = Field(
        None, description="Extra conditions required for readiness."
    )
    runtime_class_name: str | None = Field(None, description="RuntimeClass used to run the pod.")
    enable_service_links: bool | None = Field(
        None, description="Inject service environment variables (docker links style)."
    )
    preemption_policy: str | None = Field(None, description="PreemptLowerPriority or Never.")
    overhead: ResourceList | None = Field(None, description="Resources used by the pod sandbox itself.")
    topology_spread_constraints: list[TopologySpreadConstraint] | None = merge_list(
        "topologyKey", description="How matching pods spread over topology domains."
    )
    set_hostname_as_fqdn: bool | None = Field(
        None, alias="setHostnameAsFQDN", description="Set the hostname to the pod's FQDN."
    )
    os: PodOS | None = Field(None, description="Operating system the containers need.")
    host_users: bool | None = Field(None, description="Use the host's user namespace.")
    scheduling_gates: list[PodSchedulingGate] | None = merge_list(
        "name", description="Gates that hold scheduling back."
    )
    resources: ResourceRequirements | None = Field(None, description="Pod-level resource requirements.")


# ---------------------------------------------------------------------------------------------
# Pod status


class PodCondition(KubeModel):
    """One condition of a pod (PodScheduled, Initialized, ContainersReady, Ready)."""

    type: str = ""
    status: str = ""
    observed_generation: int | None = None
    last_probe_time: Time | None = None
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class PodIP(KubeModel):
    """One IP address of a pod."""

    ip: str = ""


class HostIP(KubeModel):
    """One IP address of the pod's host."""

    ip: str = ""


class ContainerStateWaiting(KubeModel):
    """The container is not running yet."""

    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(KubeModel):
    """The container is running."""

    started_at: Time | None = None


class ContainerStateTerminated(KubeModel):
    """The container ran and exited."""

    exit_code: int = 0
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: Time | None = None
    finished_at: Time | None = None
    container_id: str | None = Field(None, alias="containerID")


class ContainerState(KubeModel):
    """Exactly one of waiting, running or terminated."""

    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class VolumeMountStatus(KubeModel):
    """The status of one volume mount."""

    name: str = ""
    mount_path: str = ""
    read_only: bool | None = None
    recursive_read_only: str | None = None


class ContainerStatus(KubeModel):
    """The observed state of one container."""

    name: str = ""
    state: ContainerState | None = None
    last_state: ContainerState | None = None
    ready: bool = False
    restart_count: int = 0
    image: str = ""
    image_id: str = Field("", alias="imageID")
    container_id: str | None = Field(None, alias="containerID")
    started: bool | None = None
    allocated_resources: ResourceList | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: list[VolumeMountStatus] | None = None
    stop_signal: str | None = None


class PodStatus(KubeModel):
    """The observed state of a pod."""

    observed_generation: int | None = None
    phase: str | None = None
    conditions: list[PodCondition] | None = merge_list("type")
    message: str | None = None
    reason: str | None = None
    nominated_node_name: str | None = None
    host_ip: str | None = Field(None, alias="hostIP")
    host_ips: list[HostIP] | None = merge_list("ip", alias="hostIPs")
    pod_ip: str | None = Field(None, alias="podIP")
    pod_ips: list[PodIP] | None = merge_list("ip", alias="podIPs")
    start_time: Time | None = None
    init_container_statuses: list[ContainerStatus] | None = None
    container_statuses: list[ContainerStatus] | None = None
    qos_class: str | None = None
    ephemeral_container_statuses: list[ContainerStatus] | None = None
    resize: str | None = None


class Pod(KubeObject):
    """A group of containers scheduled together on one node."""

    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "Pod"

    spec: PodSpec = Field(default_factory=PodSpec, description="Desired state of the pod.")
    status: PodStatus = Field(default_factory=PodStatus, description="Observed state of the pod.")


class PodTemplateSpec(KubeModel):
    """The pods a controller creates: their metadata and spec."""

    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Metadata of the created pods.")
    spec: PodSpec = Field(default_factory=PodSpec, description="Spec of the created pods.")


class Binding(KubeObject):
    """Binds a pod to a node (posted to pods/NAME/binding by the scheduler)."""

    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "Binding"

    target: ObjectReference = Field(default_factory=ObjectReference, description="The node to bind to.")


# ---------------------------------------------------------------------------------------------
# Service


class ServicePort(KubeModel):
    """One port a service exposes."""

    name: str | None = Field(None, description="Name of the port; required when there are several.")
    protocol: str | None = Field(None, description="TCP, UDP or SCTP; defaults to TCP.")
    app_protocol: str | None = Field(None, description="Application protocol hint, e.g. http.")
    port: int = Field(0, description="Port the service listens on.")
    target_port: IntOrString | None = Field(
        None, description="Port number or named container port the traffic goes to."
    )
    node_port: int | None = Field(None, description="Port opened on every node for NodePort/LoadBalancer.")


class ClientIPConfig(KubeModel):
    """Settings of ClientIP session affinity."""

    timeout_seconds: int | None = Field(None, description="How long a client sticks to one endpoint.")


class SessionAffinityConfig(KubeModel):
    """Session affinity settings."""

    client_ip: ClientIPConfig | None = Field(
        None, alias="clientIP", description="ClientIP affinity settings."
    )


class ServiceSpec(KubeModel):
    """The desired state of a service."""

    ports: list[ServicePort] | None = merge_list("port", description="Ports the service exposes.")
    selector: dict[str, str] | None = Field(None, description="Labels of the pods that back the service.")
    cluster_ip: str | None = Field(
        None, alias="clusterIP", description="Virtual IP of the service; None for headless."
    )
    cluster_ips: list[str] | None = Field(
        None, alias="clusterIPs", description="Virtual IPs of the service, one per IP family."
    )
    type: str | None = Field(None, description="ClusterIP, NodePort, LoadBalancer or ExternalName.")
    external_ips: list[str] | None = Field(
        None, alias="externalIPs", description="Extra IPs that also accept traffic for the service."
    )
    session_affinity: str | None = Field(None, description="ClientIP or None.")
    load_balancer_ip: str | None = Field(
        None, alias="loadBalancerIP", description="Requested load balancer IP (deprecated)."
    )
    load_balancer_source_ranges: list[str] | None = Field(
        None, description="Client CIDRs allowed through the load balancer."
    )
    external_name: str | None = Field(None, description="DNS name an ExternalName service points to.")
    external_traffic_policy: str | None = Field(
        None, description="Cluster or Local routing of traffic from outside the cluster."
    )
    health_check_node_port: int | None = Field(
        None, description="Node port for load balancer health checks with the Local policy."
    )
    publish_not_ready_addresses: bool | None = Field(
        None, description="Publish endpoints of pods that are not ready."
    )
    session_affinity_config: SessionAffinityConfig | None = Field(
        None, description="Session affinity settings."
    )
    ip_families: list[str] | None = Field(None, description="IPv4 and/or IPv6.")
    ip_family_policy: str | None = Field(
        None, description="SingleStack, PreferDualStack or RequireDualStack."
    )
    allocate_load_balancer_node_ports: bool | None = Field(
        None, description="Whether LoadBalancer services get node ports."
    )
    load_balancer_class: str | None = Field(None, description="Which load balancer implementation to use.")
    internal_traffic_policy: str | None = Field(
        None, description="Cluster or Local routing of traffic from inside the cluster."
    )
    traffic_distribution: str | None = Field(None, description="Preference for how traffic is distributed.")


class PortStatus(KubeModel):
    """The status of one load balancer port."""

    port: int = 0
    protocol: str = ""
    error: str | None = None


class LoadBalancerIngress(KubeModel):
    """One ingress point of a load balancer."""

    ip: str | None = None
    hostname: str | None = None
    ip_mode: str | None = None
    ports: list[PortStatus] | None = None


class LoadBalancerStatus(KubeModel):
    """The status of a load balancer."""

    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(KubeModel):
    """The observed state of a service."""

    # Go emits this struct even when empty: a service's status reads {"loadBalancer": {}}.
    load_balancer: LoadBalancerStatus = Field(default_factory=LoadBalancerStatus)
    conditions: list[Condition] | None = merge_list("type")


class Service(KubeObject):
    """A stable virtual IP and DNS name in front of a set of pods."""

    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "Service"

    spec: ServiceSpec = Field(default_factory=ServiceSpec, description="Desired state of the service.")
    status: ServiceStatus = Field(default_factory=ServiceStatus, description="Observed state of the service.")


# ---------------------------------------------------------------------------------------------
# Endpoints


class EndpointAddress(KubeModel):
    """One address backing a service."""

    ip: str = ""
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None


class EndpointPort(KubeModel):
    """One port of a set of endpoints."""

    name: str | None = None
    port: int = 0
    protocol: str | None = None
    app_protocol: str | None = None


class EndpointSubset(KubeModel):
    """Addresses that share the same ports."""

    addresses: list[EndpointAddress] | None = None
    not_ready_addresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class Endpoints(KubeObject):
    """The addresses backing a service (the legacy API, one object per service)."""

    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "Endpoints"

    subsets: list[EndpointSubset] | None = None


# ---------------------------------------------------------------------------------------------
# Node


class Taint(KubeModel):
    """Repels pods that do not tolerate it."""

    key: str = Field("", description="Taint key.")
    value: str | None = Field(None, description="Taint value.")
    effect: str = Field("", description="NoSchedule, PreferNoSchedule or NoExecute.")
    time_added: Time | None = Field(None, description="When a NoExecute taint was added.")


class NodeSpec(KubeModel):
    """The desired state of a node."""

    pod_cidr: str | None = Field(None, alias="podCIDR", description="Pod IP range assigned to the node.")
    pod_cidrs: list[str] | None = Field(
        None, alias="podCIDRs", description="Pod IP ranges assigned to the node, one per IP family."
    )
    provider_id: str | None = Field(None, alias="providerID", description="Cloud provider's ID for the node.")
    unschedulable: bool | None = Field(None, description="Keep new pods off the node (cordon).")
    taints: list[Taint] | None = Field(None, description="Taints that repel pods.")
    external_id: str | None = Field(None, alias="externalID", description="Deprecated external ID.")


class NodeCondition(KubeModel):
    """One condition of a node (Ready, MemoryPressure, ...)."""

    type: str = ""
    status: str = ""
    last_heartbeat_time: Time | None = None
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class NodeAddress(KubeModel):
    """One address of a node."""

    type: str = ""
    address: str = ""


class DaemonEndpoint(KubeModel):
    """A port a node daemon listens on."""

    # Kubernetes spells this one with a capital P.
    port: int = Field(0, alias="Port")


class NodeDaemonEndpoints(KubeModel):
    """Ports of the daemons on a node."""

    kubelet_endpoint: DaemonEndpoint = Field(default_factory=DaemonEndpoint)


class NodeSwapStatus(KubeModel):
    """Swap memory of a node."""

    capacity: int | None = None


class NodeSystemInfo(KubeModel):
    """Facts about a node's system; every field is always emitted."""

    machine_id: str = Field("", alias="machineID")
    system_uuid: str = Field("", alias="systemUUID")
    boot_id: str = Field("", alias="bootID")
    kernel_version: str = ""
    os_image: str = ""
    container_runtime_version: str = ""
    kubelet_version: str = ""
    kube_proxy_version: str = ""
    operating_system: str = ""
    architecture: str = ""
    swap: NodeSwapStatus | None = None


class ContainerImage(KubeModel):
    """An image present on a node."""

    names: list[str] | None = None
    size_bytes: int | None = None


class AttachedVolume(KubeModel):
    """A volume attached to a node."""

    name: str = ""
    device_path: str = ""


class NodeStatus(KubeModel):
    """The observed state of a node."""

    capacity: ResourceList | None = None
    allocatable: ResourceList | None = None
    phase: str | None = None
    conditions: list[NodeCondition] | None = merge_list("type")
    addresses: list[NodeAddress] | None = merge_list("type")
    # Go emits these two structs even when empty.
    daemon_endpoints: NodeDaemonEndpoints = Field(default_factory=NodeDaemonEndpoints)
    node_info: NodeSystemInfo = Field(default_factory=NodeSystemInfo)
    images: list[ContainerImage] | None = None
    volumes_in_use: list[str] | None = None
    volumes_attached: list[AttachedVolume] | None = None


class Node(KubeObject):
    """A machine that runs pods."""

    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "Node"

    spec: NodeSpec = Field(default_factory=NodeSpec, description="Desired state of the node.")
    status: NodeStatus = Field(default_factory=NodeStatus, description="Observed state of the node.")


# ---------------------------------------------------------------------------------------------
# Namespace


class NamespaceSpec(KubeModel):
    """The desired state of a namespace."""

    finalizers: list[str] | None = Field(None, description="Must be empty before the namespace is removed.")


class NamespaceCondition(KubeModel):
    """One condition of a namespace."""

    type: str = ""
    status: str = ""
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class NamespaceStatus(KubeModel):
    """The observed state of a namespace."""

    phase: str | None = None
    conditions: list[NamespaceCondition] | None = merge_list("type")


class Namespace(KubeObject):
    """A scope for names of namespaced objects."""

    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "Namespace"

    spec: NamespaceSpec = Field(default_factory=NamespaceSpec, description="Desired state of the namespace.")
    status: NamespaceStatus = Field(default_factory=NamespaceStatus, description="Observed state.")


# ---------------------------------------------------------------------------------------------
# Event


class EventSource(KubeModel):
    """The component that reported an event."""

    component: str | None = None
    host: str | None = None


class EventSeries(KubeModel):
    """Data about a series of repeated events."""

    count: int | None = None
    last_observed_time: MicroTime | None = None


class Event(KubeObject):
    """A report of something that happened to an object (core/v1 Event)."""

    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "Event"

    involved_object: ObjectReference = Field(default_factory=ObjectReference)
    reason: str | None = None
    message: str | None = None
    # Go emits this struct even when empty.
    source: EventSource = Field(default_factory=EventSource)
    first_timestamp: Time | None = None
    last_timestamp: Time | None = None
    count: int | None = None
    type: str | None = None
    event_time: MicroTime | None = None
    series: EventSeries | None = None
    action: str | None = None
    related: ObjectReference | None = None
    # Declared without omitempty in Kubernetes, so always emitted (possibly empty).
    reporting_component: str = ""
    reporting_instance: str = ""


# ---------------------------------------------------------------------------------------------
# ConfigMap, Secret, ServiceAccount


class ConfigMap(KubeObject):
    """Non-secret configuration data as key/value pairs."""

    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "ConfigMap"

    immutable: bool | None = None
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None  # base64 on the wire, kept as text


class Secret(KubeObject):
    """Sensitive data as key/value pairs (values base64-encoded in data)."""

    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "Secret"

    immutable: bool | None = None
    data: dict[str, str] | None = None  # base64 strings, exactly as on the wire
    string_data: dict[str, str] | None = None  # write-only convenience, merged into data on write
    type: str | None = None


class ServiceAccount(KubeObject):
    """An identity for processes that run in pods."""

    API_VERSION: ClassVar[str] = "v1"
    KIND: ClassVar[str] = "ServiceAccount"

    secrets: list[ObjectReference] | None = merge_list("name")
    image_pull_secrets: list[LocalObjectReference] | None = None
    automount_service_account_token: bool | None = None


# ---------------------------------------------------------------------------------------------
# Lists


class PodList(KubeList[Pod]):
    """A list of pods."""

    api_version: str | None = "v1"
    kind: str | None = "PodList"


class ServiceList(KubeList[Service]):
    """A list of services."""

    api_version: str | None = "v1"
    kind: str | None = "ServiceList"


class EndpointsList(KubeList[Endpoints]):
    """A list of endpoints."""

    api_version: str | None = "v1"
    kind: str | None = "EndpointsList"


class NodeList(KubeList[Node]):
    """A list of nodes."""

    api_version: str | None = "v1"
    kind: str | None = "NodeList"


class NamespaceList(KubeList[Namespace]):
    """A list of namespaces."""

    api_version: str | None = "v1"
    kind: str | None = "NamespaceList"


class EventList(KubeList[Event]):
    """A list of events."""

    api_version: str | None = "v1"
    kind: str | None = "EventList"


class ConfigMapList(KubeList[ConfigMap]):
    """A list of config maps."""

    api_version: str | None = "v1"
    kind: str | None = "ConfigMapList"


class SecretList(KubeList[Secret]):
    """A list of secrets."""

    api_version: str | None = "v1"
    kind: str | None = "SecretList"


class ServiceAccountList(KubeList[ServiceAccount]):
    """A list of service accounts."""

    api_version: str | None = "v1"
    kind: str | None = "ServiceAccountList"
