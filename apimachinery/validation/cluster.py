"""Validation of the small kinds: Namespace, Node, Event, Lease and ServiceAccount."""

from __future__ import annotations

from apimachinery.api.coordination_v1 import Lease
from apimachinery.api.core_v1 import Event, Namespace, Node, ServiceAccount
from apimachinery.errors import FieldError
from apimachinery.validation.meta import (
    validate_finalizer_name,
    validate_label_name,
    validate_object_meta,
    validate_object_meta_update,
)
from apimachinery.validation.names import (
    is_qualified_name,
    is_valid_cidr,
    is_valid_label_value,
    name_is_dns_label,
    name_is_dns_subdomain,
)
from apimachinery.validation.scheduling import TAINT_EFFECTS

EVENT_TYPES = ["Normal", "Warning"]
# Limits on events reported by the events API style (eventTime set).
REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024


def validate_namespace(ns: Namespace) -> list[FieldError]:
    errors = validate_object_meta(ns.metadata, namespaced=False, name_rule=name_is_dns_label)
    for name in ns.spec.finalizers or []:
        errors.extend(validate_finalizer_name(name, "spec.finalizers"))
    return errors


# ---------------------------------------------------------------------------------------------
# Node


def validate_node(node: Node) -> list[FieldError]:
    errors = validate_object_meta(node.metadata, namespaced=False, name_rule=name_is_dns_subdomain)
    spec = node.spec
    seen: dict[str, set[str]] = {}
    for i, taint in enumerate(spec.taints or []):
        path = f"spec.taints[{i}]"
        errors.extend(validate_label_name(taint.key, f"{path}.key"))
        msgs = is_valid_label_value(taint.value or "")
        if msgs:
            errors.append(FieldError.invalid(f"{path}.value", taint.value or "", ";".join(msgs)))
        if not taint.effect:
            errors.append(FieldError.required(f"{path}.effect"))
        elif taint.effect not in TAINT_EFFECTS:
            errors.append(FieldError.not_supported(f"{path}.effect", taint.effect, TAINT_EFFECTS))
        keys = seen.setdefault(taint.effect, set())
        if taint.key in keys:
            errors.append(
                FieldError(
                    "FieldValueDuplicate",
                    path,
                    "taints must be unique by key and effect pair",
                    taint.to_dict(),
                )
            )
        keys.add(taint.key)
    if spec.pod_cidr:
        errors.extend(
            FieldError.invalid("spec.podCIDR", spec.pod_cidr, m) for m in is_valid_cidr(spec.pod_cidr)
        )
    for i, cidr in enumerate(spec.pod_cidrs or []):
        errors.extend(FieldError.invalid(f"spec.podCIDRs[{i}]", cidr, m) for m in is_valid_cidr(cidr))
    if spec.pod_cidr and spec.pod_cidrs and spec.pod_cidrs[0] != spec.pod_cidr:
        errors.append(FieldError.invalid("spec.podCIDRs", spec.pod_cidrs, "first value must match `podCIDR`"))
    return errors


def validate_node_update(new: Node, old: Node) -> list[FieldError]:
    """podCIDR(s) and providerID may be set once (by the node agent or IPAM), never changed."""
    errors = validate_object_meta_update(new.metadata, old.metadata)
    if old.spec.pod_cidrs and (new.spec.pod_cidrs or []) != old.spec.pod_cidrs:
        errors.append(
            FieldError.forbidden(
                "spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'
            )
        )
    elif old.spec.pod_cidr and new.spec.pod_cidr != old.spec.pod_cidr:
        errors.append(
            FieldError.forbidden(
                "spec.podCIDR", 'node updates may not change podCIDR except from "" to valid'
            )
        )
    if old.spec.provider_id and new.spec.provider_id != old.spec.provider_id:
        errors.append(
            FieldError.forbidden(
                "spec.providerID", 'node updates may not change providerID except from "" to valid'
            )
        )
    return errors


# ---------------------------------------------------------------------------------------------
# Event


def validate_event(ev: Event) -> list[FieldError]:
    """core/v1 Events: the involved object is named, and in the event's namespace when namespaced.

    Old-style events (no eventTime) may also sit in "default" for cluster-scoped objects;
    events API style ones (eventTime set) must say who reported what.
    """
    errors = validate_object_meta(ev.metadata, namespaced=True, name_rule=name_is_dns_subdomain)
    involved = ev.involved_object
    if not (involved.kind or involved.name or involved.uid):
        errors.append(FieldError.required("involvedObject"))
    namespace = ev.metadata.namespace or ""
    involved_ns = involved.namespace or ""
    mismatch = "does not match event.namespace"
    if not ev.event_time:
        if involved_ns and namespace != involved_ns:
            errors.append(FieldError.invalid("involvedObject.namespace", involved_ns, mismatch))
        if not involved_ns and namespace not in ("", "default"):
            errors.append(FieldError.invalid("involvedObject.namespace", involved_ns, mismatch))
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            errors.append(FieldError.invalid("involvedObject.namespace", involved_ns, mismatch))
        if not ev.reporting_component:
            errors.append(FieldError.required("reportingComponent"))
        else:
            errors.extend(
                FieldError.invalid("reportingComponent", ev.reporting_component, m)
                for m in is_qualified_name(ev.reporting_component)
            )
        for field, value, limit in (
            ("reportingInstance", ev.reporting_instance, REPORTING_INSTANCE_LIMIT),
            ("action", ev.action or "", ACTION_LIMIT),
            ("reason", ev.reason or "", REASON_LIMIT),
        ):
            if not value:
                errors.append(FieldError.required(field))
            elif len(value) > limit:
                errors.append(FieldError.invalid(field, "", f"can have at most {limit} characters"))
        if len(ev.message or "") > NOTE_LIMIT:
            errors.append(FieldError.invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
        if not ev.type:
            errors.append(FieldError.required("type"))
    if ev.type and ev.type not in EVENT_TYPES:
        errors.append(FieldError.invalid("type", "", f"has invalid value: {ev.type}"))
    if ev.count is not None and ev.count < 0:
        errors.append(FieldError.invalid("count", ev.count, "must be greater than or equal to 0"))
    return errors


# ---------------------------------------------------------------------------------------------
# Lease, ServiceAccount


def validate_lease(lease: Lease) -> list[FieldError]:
    errors = validate_object_meta(lease.metadata, namespaced=True, name_rule=name_is_dns_subdomain)
    spec = lease.spec
    if spec.lease_duration_seconds is not None and spec.lease_duration_seconds <= 0:
        errors.append(
            FieldError.invalid(
                "spec.leaseDurationSeconds", spec.lease_duration_seconds, "must be greater than 0"
            )
        )
    if spec.lease_transitions is not None and spec.lease_transitions < 0:
        errors.append(
            FieldError.invalid(
                "spec.leaseTransitions", spec.lease_transitions, "must be greater than or equal to 0"
            )
        )
    return errors


def validate_service_account(sa: ServiceAccount) -> list[FieldError]:
    return validate_object_meta(sa.metadata, namespaced=True, name_rule=name_is_dns_subdomain)
