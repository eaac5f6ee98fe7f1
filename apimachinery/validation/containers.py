"""Validation of containers: image, ports, environment, resources, probes and lifecycle hooks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apimachinery.api.core_v1 import (
    ConfigMapKeySelector,
    Container,
    ContainerPort,
    EnvFromSource,
    EnvVar,
    ExecAction,
    GRPCAction,
    HTTPGetAction,
    LifecycleHandler,
    PodSpec,
    Probe,
    SecretKeySelector,
    SleepAction,
    TCPSocketAction,
)
from apimachinery.errors import FieldError
from apimachinery.validation.fields import (
    PROTOCOLS,
    dns_label,
    dns_subdomain,
    enum_value,
    validate_port_num_or_name,
)
from apimachinery.validation.meta import nonnegative
from apimachinery.validation.names import (
    NEGATIVE_MSG,
    is_config_map_key,
    is_relaxed_env_var_name,
    is_valid_ip,
    is_valid_port_name,
    is_valid_port_num,
)
from apimachinery.validation.resources import validate_resource_requirements
from apimachinery.validation.volumes import (
    validate_field_selector,
    validate_resource_field_selector,
    validate_volume_mounts,
)

PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
TERMINATION_MESSAGE_POLICIES = ["FallbackToLogsOnError", "File"]
HTTP_SCHEMES = ["HTTP", "HTTPS"]
# Pod fields an environment variable may read through fieldRef (labels/annotations need a key).
ENV_FIELD_PATHS = sorted(
    {
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    }
)


# ---------------------------------------------------------------------------------------------
# Environment


def _key_selector(sel: ConfigMapKeySelector | SecretKeySelector, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not sel.name:
        errors.append(FieldError.required(f"{field}.name"))
    else:
        errors.extend(dns_subdomain(sel.name, f"{field}.name"))
    if not sel.key:
        errors.append(FieldError.required(f"{field}.key"))
    else:
        errors.extend(FieldError.invalid(f"{field}.key", sel.key, m) for m in is_config_map_key(sel.key))
    return errors


def _env(env: list[EnvVar] | None, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, ev in enumerate(env or []):
        path = f"{field}[{i}]"
        if not ev.name:
            errors.append(FieldError.required(f"{path}.name"))
        else:
            errors.extend(
                FieldError.invalid(f"{path}.name", ev.name, m) for m in is_relaxed_env_var_name(ev.name)
            )
        src = ev.value_from
        if src is None:
            continue
        vpath = f"{path}.valueFrom"
        sources = 0
        if src.field_ref is not None:
            sources += 1
            errors.extend(validate_field_selector(src.field_ref, f"{vpath}.fieldRef", ENV_FIELD_PATHS))
        if src.resource_field_ref is not None:
            sources += 1
            errors.extend(
                validate_resource_field_selector(
                    src.resource_field_ref, f"{vpath}.resourceFieldRef", volume=False
                )
            )
        if src.config_map_key_ref is not None:
            sources += 1
            errors.extend(_key_selector(src.config_map_key_ref, f"{vpath}.configMapKeyRef"))
        if src.secret_key_ref is not None:
            sources += 1
            errors.extend(_key_selector(src.secret_key_ref, f"{vpath}.secretKeyRef"))
        if sources == 0:
            errors.append(
                FieldError.invalid(
                    vpath,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                )
            )
        elif ev.value:
            errors.append(FieldError.invalid(vpath, "", "may not be specified when `value` is not empty"))
        elif sources > 1:
            errors.append(
                FieldError.invalid(vpath, "", "may not have more than one field specified at a time")
            )
    return errors


def _env_from(sources: list[EnvFromSource] | None, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, src in enumerate(sources or []):
        path = f"{field}[{i}]"
        if src.prefix:
            errors.extend(
                FieldError.invalid(f"{path}.prefix", src.prefix, m)
                for m in is_relaxed_env_var_name(src.prefix)
            )
        count = 0
        for name, ref in (("configMapRef", src.config_map_ref), ("secretRef", src.secret_ref)):
            if ref is None:
                continue
            count += 1
            if not ref.name:
                errors.append(FieldError.required(f"{path}.{name}.name"))
            else:
                errors.extend(dns_subdomain(ref.name, f"{path}.{name}.name"))
        if count == 0:
            errors.append(FieldError.invalid(field, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            errors.append(
                FieldError.invalid(field, "", "may not have more than one field specified at a time")
            )
    return errors


# ---------------------------------------------------------------------------------------------
# Probes and lifecycle handlers


def _exec(action: ExecAction, field: str) -> list[FieldError]:
    return [] if action.command else [FieldError.required(f"{field}.command")]


def _http_get(action: HTTPGetAction, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not action.path:
        errors.append(FieldError.required(f"{field}.path"))
    errors.extend(validate_port_num_or_name(action.port, f"{field}.port"))
    if action.scheme not in HTTP_SCHEMES:
        errors.append(FieldError.not_supported(f"{field}.scheme", action.scheme or "", HTTP_SCHEMES))
    for j, header in enumerate(action.http_headers or []):
        if not header.name:
            errors.append(FieldError.required(f"{field}.httpHeaders[{j}].name"))
    return errors


def _tcp_socket(action: TCPSocketAction, field: str) -> list[FieldError]:
    return validate_port_num_or_name(action.port, f"{field}.port")


def _grpc(action: GRPCAction, field: str) -> list[FieldError]:
    return [FieldError.invalid(f"{field}.port", action.port, m) for m in is_valid_port_num(action.port)]


def _sleep(action: SleepAction, field: str, grace: int | None) -> list[FieldError]:
    limit = grace if grace is not None else 30
    if action.seconds < 0 or action.seconds > limit:
        return [
            FieldError.invalid(
                f"{field}.seconds",
                action.seconds,
                f"must be non-negative and less than terminationGracePeriodSeconds ({limit})",
            )
        ]
    return []


def _handler(handler: Probe | LifecycleHandler, field: str, grace: int | None) -> list[FieldError]:
    """Exactly one action: exec, httpGet, tcpSocket, grpc (probes) or sleep (hooks)."""
    errors: list[FieldError] = []
    actions: list[tuple[str, Any]] = [
        ("exec", handler.exec),
        ("httpGet", handler.http_get),
        ("tcpSocket", handler.tcp_socket),
    ]
    if isinstance(handler, Probe):
        actions.append(("grpc", handler.grpc))
    else:
        actions.append(("sleep", handler.sleep))
    found = 0
    for name, action in actions:
        if action is None:
            continue
        path = f"{field}.{name}"
        if found:
            errors.append(FieldError.forbidden(path, "may not specify more than 1 handler type"))
            continue
        found += 1
        if isinstance(action, ExecAction):
            errors.extend(_exec(action, path))
        elif isinstance(action, HTTPGetAction):
            errors.extend(_http_get(action, path))
        elif isinstance(action, TCPSocketAction):
            errors.extend(_tcp_socket(action, path))
        elif isinstance(action, GRPCAction):
            errors.extend(_grpc(action, path))
        elif isinstance(action, SleepAction):
            errors.extend(_sleep(action, path, grace))
    if not found:
        errors.append(FieldError.required(field, "must specify a handler type"))
    return errors


def _probe(probe: Probe | None, field: str, grace: int | None, *, single_success: bool) -> list[FieldError]:
    if probe is None:
        return []
    errors = _handler(probe, field, grace)
    errors.extend(nonnegative(probe.initial_delay_seconds, f"{field}.initialDelaySeconds"))
    # These four are defaulted to positive values; zero would mean "never" or "always".
    for name, value in (
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ):
        if value is not None and value < 0:
            errors.append(FieldError.invalid(f"{field}.{name}", value, NEGATIVE_MSG))
        elif value == 0:
            errors.append(FieldError.invalid(f"{field}.{name}", value, "must be greater than 0"))
    if single_success and probe.success_threshold is not None and probe.success_threshold != 1:
        errors.append(FieldError.invalid(f"{field}.successThreshold", probe.success_threshold, "must be 1"))
    tgps = probe.termination_grace_period_seconds
    if tgps is not None and tgps <= 0:
        errors.append(
            FieldError.invalid(f"{field}.terminationGracePeriodSeconds", tgps, "must be greater than 0")
        )
    return errors


# ---------------------------------------------------------------------------------------------
# Containers


def _ports(ports: list[ContainerPort] | None, field: str, host_network: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports or []):
        path = f"{field}[{i}]"
        if port.name:
            msgs = is_valid_port_name(port.name)
            if msgs:
                errors.extend(FieldError.invalid(f"{path}.name", port.name, m) for m in msgs)
            elif port.name in names:
                errors.append(FieldError.duplicate(f"{path}.name", port.name))
            else:
                names.add(port.name)
        if port.container_port == 0:
            errors.append(FieldError.required(f"{path}.containerPort"))
        else:
            errors.extend(
                FieldError.invalid(f"{path}.containerPort", port.container_port, m)
                for m in is_valid_port_num(port.container_port)
            )
        if port.host_port:
            errors.extend(
                FieldError.invalid(f"{path}.hostPort", port.host_port, m)
                for m in is_valid_port_num(port.host_port)
            )
            if host_network and port.host_port != port.container_port:
                errors.append(
                    FieldError.invalid(
                        f"{path}.containerPort",
                        port.container_port,
                        "must match `hostPort` when `hostNetwork` is true",
                    )
                )
        errors.extend(enum_value(port.protocol, f"{path}.protocol", PROTOCOLS))
        if port.host_ip:
            errors.extend(
                FieldError.invalid(f"{path}.hostIP", port.host_ip, m) for m in is_valid_ip(port.host_ip)
            )
    return errors


def _container(
    c: Container, path: str, volumes: set[str], spec: PodSpec, *, init: bool, is_pod: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    grace = spec.termination_grace_period_seconds
    if not c.image:
        errors.append(FieldError.required(f"{path}.image"))
    elif is_pod and c.image != c.image.strip():
        errors.append(
            FieldError.invalid(f"{path}.image", c.image, "must not have leading or trailing whitespace")
        )
    errors.extend(enum_value(c.image_pull_policy, f"{path}.imagePullPolicy", PULL_POLICIES))
    errors.extend(
        enum_value(
            c.termination_message_policy, f"{path}.terminationMessagePolicy", TERMINATION_MESSAGE_POLICIES
        )
    )
    errors.extend(_ports(c.ports, f"{path}.ports", bool(spec.host_network)))
    errors.extend(_env(c.env, f"{path}.env"))
    errors.extend(_env_from(c.env_from, f"{path}.envFrom"))
    errors.extend(validate_volume_mounts(c.volume_mounts, volumes, f"{path}.volumeMounts"))
    errors.extend(validate_resource_requirements(c.resources, f"{path}.resources"))
    sidecar = init and c.restart_policy == "Always"
    if init:
        if c.restart_policy is not None and c.restart_policy != "Always":
            errors.append(FieldError.not_supported(f"{path}.restartPolicy", c.restart_policy, ["Always"]))
        if not sidecar:
            # A plain init container runs to completion: probes and hooks make no sense for it.
            for name, value in (
                ("lifecycle", c.lifecycle),
                ("livenessProbe", c.liveness_probe),
                ("readinessProbe", c.readiness_probe),
                ("startupProbe", c.startup_probe),
            ):
                if value is not None:
                    errors.append(
                        FieldError.forbidden(
                            f"{path}.{name}",
                            "may not be set for init containers without restartPolicy=Always",
                        )
                    )
    elif c.restart_policy is not None:
        errors.append(FieldError.forbidden(f"{path}.restartPolicy", "may not be set for non-init containers"))
    if not init or sidecar:
        errors.extend(_probe(c.liveness_probe, f"{path}.livenessProbe", grace, single_success=True))
        errors.extend(_probe(c.readiness_probe, f"{path}.readinessProbe", grace, single_success=False))
        errors.extend(_probe(c.startup_probe, f"{path}.startupProbe", grace, single_success=True))
        if c.lifecycle is not None:
            for name, hook in (("postStart", c.lifecycle.post_start), ("preStop", c.lifecycle.pre_stop)):
                if hook is not None:
                    errors.extend(_handler(hook, f"{path}.lifecycle.{name}", grace))
    return errors


def validate_containers(
    containers: Iterable[Container],
    field: str,
    names: set[str],
    volumes: set[str],
    spec: PodSpec,
    *,
    init: bool,
    is_pod: bool,
) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, c in enumerate(containers):
        path = f"{field}[{i}]"
        if not c.name:
            errors.append(FieldError.required(f"{path}.name"))
        else:
            errors.extend(dns_label(c.name, f"{path}.name"))
            if c.name in names:
                errors.append(FieldError.duplicate(f"{path}.name", c.name))
            names.add(c.name)
        errors.extend(_container(c, path, volumes, spec, init=init, is_pod=is_pod))
    return errors
