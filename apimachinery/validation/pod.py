"""Validation of pod specs (in Pods and in pod templates) and of pod updates.

Mirrors Kubernetes' ValidatePodSpec / ValidatePodUpdate: every problem is reported with its
path (``spec.containers[0].ports[1].containerPort``) and Kubernetes' wording. The pod spec rules
run for Pods and for the templates of ReplicaSets and Deployments alike; ``is_pod`` switches on
the few checks Kubernetes applies to Pods only.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from apimachinery.api.core_v1 import Pod, PodSpec, PodTemplateSpec, Toleration
from apimachinery.errors import FieldError
from apimachinery.validation.containers import validate_containers
from apimachinery.validation.fields import dns_label, dns_subdomain, enum_value
from apimachinery.validation.meta import (
    nonnegative,
    validate_annotations,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from apimachinery.validation.names import (
    inclusive_range_error,
    is_qualified_name,
    is_valid_ip,
    name_is_dns_subdomain,
)
from apimachinery.validation.resources import validate_resource_list
from apimachinery.validation.scheduling import (
    validate_affinity,
    validate_tolerations,
    validate_topology_spread,
)
from apimachinery.validation.volumes import validate_volumes

MAX_INT32 = 2**31 - 1
RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]


# ---------------------------------------------------------------------------------------------
# Pod spec


def validate_pod_spec(spec: PodSpec, field: str, *, is_pod: bool = True) -> list[FieldError]:
    """Everything wrong with a pod spec, at ``field`` (``spec`` or ``spec.template.spec``)."""
    volumes, errors = validate_volumes(spec.volumes, f"{field}.volumes")
    names: set[str] = set()
    if not spec.containers:
        errors.append(FieldError.required(f"{field}.containers"))
    errors.extend(
        validate_containers(
            spec.init_containers or [],
            f"{field}.initContainers",
            names,
            volumes,
            spec,
            init=True,
            is_pod=is_pod,
        )
    )
    errors.extend(
        validate_containers(
            spec.containers, f"{field}.containers", names, volumes, spec, init=False, is_pod=is_pod
        )
    )
    for i, ec in enumerate(spec.ephemeral_containers or []):
        path = f"{field}.ephemeralContainers[{i}]"
        if not ec.name:
            errors.append(FieldError.required(f"{path}.name"))
        elif ec.name in names:
            errors.append(FieldError.duplicate(f"{path}.name", ec.name))
        else:
            errors.extend(dns_label(ec.name, f"{path}.name"))
            names.add(ec.name)
    errors.extend(enum_value(spec.restart_policy, f"{field}.restartPolicy", RESTART_POLICIES))
    errors.extend(enum_value(spec.dns_policy, f"{field}.dnsPolicy", DNS_POLICIES))
    if spec.dns_policy == "None" and spec.dns_config is None:
        errors.append(
            FieldError.required(f"{field}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")
        )
    if spec.dns_config is not None:
        for i, ns in enumerate(spec.dns_config.nameservers or []):
            errors.extend(
                FieldError.invalid(f"{field}.dnsConfig.nameservers[{i}]", ns, m) for m in is_valid_ip(ns)
            )
    errors.extend(validate_labels(spec.node_selector, f"{field}.nodeSelector"))
    if spec.service_account_name:
        errors.extend(dns_subdomain(spec.service_account_name, f"{field}.serviceAccountName"))
    if spec.node_name:
        errors.extend(dns_subdomain(spec.node_name, f"{field}.nodeName"))
    if spec.hostname:
        errors.extend(dns_label(spec.hostname, f"{field}.hostname"))
    if spec.subdomain:
        errors.extend(dns_label(spec.subdomain, f"{field}.subdomain"))
    errors.extend(validate_tolerations(spec.tolerations, f"{field}.tolerations"))
    errors.extend(validate_affinity(spec.affinity, f"{field}.affinity"))
    errors.extend(
        validate_topology_spread(spec.topology_spread_constraints, f"{field}.topologySpreadConstraints")
    )
    errors.extend(
        nonnegative(spec.termination_grace_period_seconds, f"{field}.terminationGracePeriodSeconds")
    )
    ads = spec.active_deadline_seconds
    if ads is not None and not 1 <= ads <= MAX_INT32:
        errors.append(
            FieldError.invalid(f"{field}.activeDeadlineSeconds", ads, inclusive_range_error(1, MAX_INT32))
        )
    for i, alias in enumerate(spec.host_aliases or []):
        path = f"{field}.hostAliases[{i}]"
        errors.extend(FieldError.invalid(f"{path}.ip", alias.ip, m) for m in is_valid_ip(alias.ip))
        for j, hostname in enumerate(alias.hostnames or []):
            errors.extend(dns_subdomain(hostname, f"{path}.hostnames[{j}]"))
    for i, ref in enumerate(spec.image_pull_secrets or []):
        if not ref.name:
            errors.append(FieldError.required(f"{field}.imagePullSecrets[{i}].name"))
    for i, gate in enumerate(spec.scheduling_gates or []):
        errors.extend(
            FieldError.invalid(f"{field}.schedulingGates[{i}].name", gate.name, m)
            for m in is_qualified_name(gate.name)
        )
    if spec.preemption_policy is not None:
        errors.extend(
            enum_value(spec.preemption_policy, f"{field}.preemptionPolicy", ["Never", "PreemptLowerPriority"])
        )
    if spec.overhead:
        _, overhead_errors = validate_resource_list(spec.overhead, f"{field}.overhead")
        errors.extend(overhead_errors)
    return errors


def validate_pod_template(template: PodTemplateSpec | None, field: str) -> list[FieldError]:
    """A pod template: its labels and annotations, and its spec (not a Pod's own metadata rules)."""
    if template is None:
        return [FieldError.required(field)]
    errors = validate_labels(template.metadata.labels, f"{field}.metadata.labels")
    errors.extend(validate_annotations(template.metadata.annotations, f"{field}.metadata.annotations"))
    errors.extend(validate_pod_spec(template.spec, f"{field}.spec", is_pod=False))
    return errors


def validate_pod(pod: Pod) -> list[FieldError]:
    errors = validate_object_meta(pod.metadata, namespaced=True, name_rule=name_is_dns_subdomain)
    errors.extend(validate_pod_spec(pod.spec, "spec", is_pod=True))
    return errors


# ---------------------------------------------------------------------------------------------
# Pod updates


UPDATE_FORBIDDEN_MSG = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _only_added_tolerations(new: list[Toleration] | None, old: list[Toleration] | None) -> list[FieldError]:
    """Existing tolerations may only change their tolerationSeconds; new ones may be added."""
    new_dicts = [t.to_dict() for t in new or []]
    for t in old or []:
        want = t.to_dict()
        want.pop("tolerationSeconds", None)
        if not any({k: v for k, v in n.items() if k != "tolerationSeconds"} == want for n in new_dicts):
            return [
                FieldError.forbidden(
                    "spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"
                )
            ]
    return []


def _spec_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    """A readable diff of two pod specs (Kubernetes appends one to the message, too)."""
    a = json.dumps(old, indent=1, sort_keys=True).splitlines()
    b = json.dumps(new, indent=1, sort_keys=True).splitlines()
    return "\n".join(list(difflib.unified_diff(a, b, lineterm="", n=2))[2:])


def validate_pod_update(new: Pod, old: Pod) -> list[FieldError]:
    """Kubernetes' rule: a running pod's spec is fixed but for a few fields.

    Allowed: container and init container images, activeDeadlineSeconds (set, or lowered),
    additions to tolerations, terminationGracePeriodSeconds (only negative -> 1), removing
    scheduling gates, and setting spec.nodeName once (which is how kube-lite binds a pod).
    """
    errors = validate_object_meta_update(new.metadata, old.metadata)
    ns, os_ = new.spec, old.spec
    if len(ns.containers) != len(os_.containers):
        errors.append(FieldError.forbidden("spec.containers", "pod updates may not add or remove containers"))
        return errors
    if len(ns.init_containers or []) != len(os_.init_containers or []):
        errors.append(
            FieldError.forbidden("spec.initContainers", "pod updates may not add or remove containers")
        )
        return errors

    ads = ns.active_deadline_seconds
    if ads is not None:
        if not 0 <= ads <= MAX_INT32:
            errors.append(
                FieldError.invalid("spec.activeDeadlineSeconds", ads, inclusive_range_error(0, MAX_INT32))
            )
            return errors
        if os_.active_deadline_seconds is not None and os_.active_deadline_seconds < ads:
            errors.append(
                FieldError.invalid(
                    "spec.activeDeadlineSeconds", ads, "must be less than or equal to previous value"
                )
            )
            return errors
    elif os_.active_deadline_seconds is not None:
        errors.append(
            FieldError.invalid(
                "spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"
            )
        )

    if os_.node_name and ns.node_name != os_.node_name:
        errors.append(FieldError.invalid("spec.nodeName", ns.node_name or "", "field is immutable"))

    old_gates = {g.name for g in os_.scheduling_gates or []}
    for g in ns.scheduling_gates or []:
        if g.name not in old_gates:
            errors.append(
                FieldError.forbidden(
                    "spec.schedulingGates",
                    f"only deletion is allowed, but found new scheduling gate '{g.name}'",
                )
            )
            break

    errors.extend(_only_added_tolerations(ns.tolerations, os_.tolerations))

    if ns == os_:
        # The common case (status writes, metadata edits): nothing in the spec changed.
        return errors
    # Compare everything else: take the allowed fields from the old spec, then require equality.
    munged = ns.model_copy(deep=True)
    for c, oc in zip(munged.containers, os_.containers, strict=True):
        c.image = oc.image
    for c, oc in zip(munged.init_containers or [], os_.init_containers or [], strict=True):
        c.image = oc.image
    munged.active_deadline_seconds = os_.active_deadline_seconds
    munged.tolerations = os_.tolerations
    munged.scheduling_gates = os_.scheduling_gates
    munged.node_name = os_.node_name  # checked above: it may be set once, never changed
    old_grace, new_grace = os_.termination_grace_period_seconds, ns.termination_grace_period_seconds
    if old_grace is not None and old_grace < 0 and new_grace == 1:
        munged.termination_grace_period_seconds = old_grace
    old_dict, new_dict = os_.to_dict(), munged.to_dict()
    if old_dict != new_dict:
        errors.append(
            FieldError.forbidden("spec", UPDATE_FORBIDDEN_MSG + "\n" + _spec_diff(old_dict, new_dict))
        )
    return errors
