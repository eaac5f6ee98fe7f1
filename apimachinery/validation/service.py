"""Validation of Services: type, ports, cluster IPs, session affinity, and what updates may change."""

from __future__ import annotations

from apimachinery.api.core_v1 import Service, ServicePort, ServiceSpec
from apimachinery.errors import FieldError
from apimachinery.validation.fields import PROTOCOLS, validate_port_num_or_name
from apimachinery.validation.meta import validate_labels, validate_object_meta, validate_object_meta_update
from apimachinery.validation.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_valid_ip,
    is_valid_port_num,
    name_is_dns1035_label,
)

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
SESSION_AFFINITIES = ["ClientIP", "None"]
TRAFFIC_POLICIES = ["Cluster", "Local"]
IP_FAMILIES = ["IPv4", "IPv6"]
IP_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"]
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400
NONE = "None"


def cluster_ips(spec: ServiceSpec) -> list[str]:
    """The service's cluster IPs, whether the writer filled clusterIPs or only clusterIP."""
    if spec.cluster_ips:
        return list(spec.cluster_ips)
    return [spec.cluster_ip] if spec.cluster_ip else []


def is_headless(spec: ServiceSpec) -> bool:
    ips = cluster_ips(spec)
    return bool(ips) and ips[0] == NONE


def _port(port: ServicePort, path: str, require_name: bool, names: set[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if require_name and not port.name:
        errors.append(FieldError.required(f"{path}.name"))
    elif port.name:
        errors.extend(FieldError.invalid(f"{path}.name", port.name, m) for m in is_dns1123_label(port.name))
        if port.name in names:
            errors.append(FieldError.duplicate(f"{path}.name", port.name))
        names.add(port.name)
    errors.extend(FieldError.invalid(f"{path}.port", port.port, m) for m in is_valid_port_num(port.port))
    if not port.protocol:
        errors.append(FieldError.required(f"{path}.protocol"))
    elif port.protocol not in PROTOCOLS:
        errors.append(FieldError.not_supported(f"{path}.protocol", port.protocol, PROTOCOLS))
    if port.target_port is not None:
        errors.extend(validate_port_num_or_name(port.target_port, f"{path}.targetPort"))
    if port.node_port:
        errors.extend(
            FieldError.invalid(f"{path}.nodePort", port.node_port, m)
            for m in is_valid_port_num(port.node_port)
        )
    return errors


def _cluster_ips(spec: ServiceSpec) -> list[FieldError]:
    errors: list[FieldError] = []
    ips = cluster_ips(spec)
    field = "spec.clusterIPs"
    if spec.cluster_ips and spec.cluster_ip and spec.cluster_ip != spec.cluster_ips[0]:
        errors.append(FieldError.invalid(field, spec.cluster_ips, "first value must match `clusterIP`"))
    if spec.type == "ExternalName":
        if ips:
            errors.append(FieldError.forbidden(field, "may not be set for ExternalName services"))
        return errors
    if len(ips) > 2:
        errors.append(FieldError.invalid(field, ips, "may only hold up to 2 values"))
    for i, ip in enumerate(ips):
        if ip == NONE:
            if i != 0:
                errors.append(
                    FieldError.invalid(f"{field}[{i}]", ip, "'None' must be the first and only value")
                )
            continue
        errors.extend(FieldError.invalid(f"{field}[{i}]", ip, m) for m in is_valid_ip(ip))
    if ips and ips[0] == NONE and spec.type in ("NodePort", "LoadBalancer"):
        errors.append(
            FieldError.invalid(f"{field}[0]", NONE, f"may not be set to 'None' for {spec.type} services")
        )
    return errors


def validate_service(svc: Service) -> list[FieldError]:
    spec = svc.spec
    errors = validate_object_meta(svc.metadata, namespaced=True, name_rule=name_is_dns1035_label)
    if not spec.type:
        errors.append(FieldError.required("spec.type"))
    elif spec.type not in SERVICE_TYPES:
        errors.append(FieldError.not_supported("spec.type", spec.type, SERVICE_TYPES))

    if spec.type == "ExternalName":
        name = spec.external_name or ""
        if not name:
            errors.append(FieldError.required("spec.externalName"))
        else:
            errors.extend(
                FieldError.invalid("spec.externalName", name, m)
                for m in is_dns1123_subdomain(name.removesuffix("."))
            )

    ports = spec.ports or []
    if not ports and not is_headless(spec) and spec.type != "ExternalName":
        errors.append(FieldError.required("spec.ports"))
    names: set[str] = set()
    for i, port in enumerate(ports):
        errors.extend(_port(port, f"spec.ports[{i}]", len(ports) > 1, names))
    node_ports: set[tuple[str | None, int]] = set()
    for i, port in enumerate(ports):
        if not port.node_port:
            continue
        path = f"spec.ports[{i}].nodePort"
        if spec.type in ("ClusterIP", "ExternalName"):
            errors.append(FieldError.forbidden(path, f"may not be used when `type` is '{spec.type}'"))
        key = (port.protocol, port.node_port)
        if key in node_ports:
            errors.append(FieldError.duplicate(path, port.node_port))
        node_ports.add(key)

    errors.extend(_cluster_ips(spec))
    errors.extend(validate_labels(spec.selector, "spec.selector"))
    for i, ip in enumerate(spec.external_ips or []):
        errors.extend(FieldError.invalid(f"spec.externalIPs[{i}]", ip, m) for m in is_valid_ip(ip))

    if not spec.session_affinity:
        errors.append(FieldError.required("spec.sessionAffinity"))
    elif spec.session_affinity not in SESSION_AFFINITIES:
        errors.append(
            FieldError.not_supported("spec.sessionAffinity", spec.session_affinity, SESSION_AFFINITIES)
        )
    elif spec.session_affinity == "ClientIP":
        cfg = spec.session_affinity_config
        timeout = cfg.client_ip.timeout_seconds if cfg and cfg.client_ip else None
        if timeout is not None and not 0 < timeout <= MAX_CLIENT_IP_AFFINITY_SECONDS:
            errors.append(
                FieldError.invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    timeout,
                    f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}",
                )
            )
    elif spec.session_affinity_config is not None and spec.session_affinity_config.client_ip is not None:
        errors.append(
            FieldError.invalid(
                "spec.sessionAffinityConfig",
                spec.session_affinity_config.to_dict(),
                "must not be set when session affinity is None",
            )
        )

    if spec.external_traffic_policy and spec.external_traffic_policy not in TRAFFIC_POLICIES:
        errors.append(
            FieldError.not_supported(
                "spec.externalTrafficPolicy", spec.external_traffic_policy, TRAFFIC_POLICIES
            )
        )
    if spec.internal_traffic_policy and spec.internal_traffic_policy not in TRAFFIC_POLICIES:
        errors.append(
            FieldError.not_supported(
                "spec.internalTrafficPolicy", spec.internal_traffic_policy, TRAFFIC_POLICIES
            )
        )
    for i, family in enumerate(spec.ip_families or []):
        if family not in IP_FAMILIES:
            errors.append(FieldError.not_supported(f"spec.ipFamilies[{i}]", family, IP_FAMILIES))
    if spec.ip_family_policy and spec.ip_family_policy not in IP_FAMILY_POLICIES:
        errors.append(
            FieldError.not_supported("spec.ipFamilyPolicy", spec.ip_family_policy, IP_FAMILY_POLICIES)
        )
    return errors


def validate_service_update(new: Service, old: Service) -> list[FieldError]:
    """Cluster IPs may not change once allocated (except to or from an ExternalName service).

    An update that omits them does not "unset" them on a real cluster: the API server copies the
    allocated IPs over first. Here an omitted clusterIP is reported like Kubernetes reports an
    explicit unset, so the server must carry them over before validating.
    """
    errors = validate_object_meta_update(new.metadata, old.metadata)
    if new.spec.type == "ExternalName" or old.spec.type == "ExternalName":
        return errors
    if is_headless(new.spec) and is_headless(old.spec):
        return errors
    new_ips, old_ips = cluster_ips(new.spec), cluster_ips(old.spec)
    field = "spec.clusterIPs"
    if old_ips and not new_ips:
        errors.append(FieldError.invalid(f"{field}[0]", new_ips, "primary clusterIP can not be unset"))
        return errors
    for i, ip in enumerate(old_ips[: len(new_ips)]):
        if ip != new_ips[i]:
            errors.append(FieldError.invalid(f"{field}[{i}]", new_ips, "may not change once set"))
    return errors
