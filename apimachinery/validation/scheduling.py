"""Validation of how a pod is placed: tolerations, node and pod (anti-)affinity, topology spread.

The scheduler relies on these being well-formed (operators it knows, weights in range, keys
that are label names), so they are checked when the pod or its template is written.
"""

from __future__ import annotations

from apimachinery.api.core_v1 import (
    Affinity,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PodAffinityTerm,
    PreferredSchedulingTerm,
    Toleration,
    TopologySpreadConstraint,
    WeightedPodAffinityTerm,
)
from apimachinery.errors import FieldError
from apimachinery.validation.fields import enum_value
from apimachinery.validation.meta import validate_label_name, validate_label_selector
from apimachinery.validation.names import is_dns1123_label, is_valid_label_value

TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
TOLERATION_OPERATORS = ["Equal", "Exists"]
WHEN_UNSATISFIABLE = ["DoNotSchedule", "ScheduleAnyway"]
INCLUSION_POLICIES = ["Honor", "Ignore"]
NOT_POSITIVE_MSG = "must be greater than zero"
WEIGHT_MSG = "must be in the range 1-100"


def validate_tolerations(tolerations: list[Toleration] | None, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, t in enumerate(tolerations or []):
        path = f"{field}[{i}]"
        if t.key:
            errors.extend(validate_label_name(t.key, f"{path}.key"))
        if not t.key and t.operator != "Exists":
            errors.append(
                FieldError.invalid(
                    f"{path}.operator",
                    t.operator or "",
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        if t.toleration_seconds is not None and t.effect != "NoExecute":
            errors.append(
                FieldError.invalid(
                    f"{path}.effect",
                    t.effect or "",
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if t.operator in ("Equal", "", None):
            msgs = is_valid_label_value(t.value or "")
            if msgs:
                errors.append(FieldError.invalid(f"{path}.operator", t.value or "", ";".join(msgs)))
        elif t.operator == "Exists":
            if t.value:
                errors.append(
                    FieldError.invalid(
                        f"{path}.operator", t.to_dict(), "value must be empty when `operator` is 'Exists'"
                    )
                )
        else:
            errors.append(FieldError.not_supported(f"{path}.operator", t.operator, TOLERATION_OPERATORS))
        if t.effect:
            errors.extend(enum_value(t.effect, f"{path}.effect", TAINT_EFFECTS))
    return errors


# ---------------------------------------------------------------------------------------------
# Node affinity


def _node_selector_requirement(req: NodeSelectorRequirement, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    values = req.values or []
    if req.operator in ("In", "NotIn"):
        if not values:
            errors.append(
                FieldError.required(f"{field}.values", "must be specified when `operator` is 'In' or 'NotIn'")
            )
    elif req.operator in ("Exists", "DoesNotExist"):
        if values:
            errors.append(
                FieldError.forbidden(
                    f"{field}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
            )
    elif req.operator in ("Gt", "Lt"):
        if len(values) != 1:
            errors.append(
                FieldError.required(
                    f"{field}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"
                )
            )
    else:
        errors.append(FieldError.invalid(f"{field}.operator", req.operator, "not a valid selector operator"))
    errors.extend(validate_label_name(req.key, f"{field}.key"))
    return errors


def _node_field_requirement(req: NodeSelectorRequirement, field: str) -> list[FieldError]:
    """matchFields can only select on metadata.name, with In/NotIn and one value."""
    errors: list[FieldError] = []
    if req.operator in ("In", "NotIn"):
        if len(req.values or []) != 1:
            errors.append(
                FieldError.required(
                    f"{field}.values",
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                )
            )
    else:
        errors.append(FieldError.invalid(f"{field}.operator", req.operator, "not a valid selector operator"))
    if req.key != "metadata.name":
        errors.append(FieldError.not_supported(f"{field}.key", req.key, ["metadata.name"]))
    return errors


def _node_selector_term(term: NodeSelectorTerm, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, req in enumerate(term.match_expressions or []):
        errors.extend(_node_selector_requirement(req, f"{field}.matchExpressions[{i}]"))
    for i, req in enumerate(term.match_fields or []):
        errors.extend(_node_field_requirement(req, f"{field}.matchFields[{i}]"))
    return errors


def _required_node_selector(selector: NodeSelector, field: str) -> list[FieldError]:
    if not selector.node_selector_terms:
        return [
            FieldError.required(f"{field}.nodeSelectorTerms", "must have at least one node selector term")
        ]
    errors: list[FieldError] = []
    for i, term in enumerate(selector.node_selector_terms):
        errors.extend(_node_selector_term(term, f"{field}.nodeSelectorTerms[{i}]"))
    return errors


def _preferred_node_terms(terms: list[PreferredSchedulingTerm] | None, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, term in enumerate(terms or []):
        path = f"{field}[{i}]"
        if not 1 <= term.weight <= 100:
            errors.append(FieldError.invalid(f"{path}.weight", term.weight, WEIGHT_MSG))
        errors.extend(_node_selector_term(term.preference, f"{path}.preference"))
    return errors


# ---------------------------------------------------------------------------------------------
# Pod affinity


def _pod_affinity_term(term: PodAffinityTerm, field: str) -> list[FieldError]:
    errors = validate_label_selector(term.label_selector, f"{field}.labelSelector")
    errors.extend(validate_label_selector(term.namespace_selector, f"{field}.namespaceSelector"))
    for i, ns in enumerate(term.namespaces or []):
        errors.extend(FieldError.invalid(f"{field}.namespaces[{i}]", ns, m) for m in is_dns1123_label(ns))
    if not term.topology_key:
        errors.append(FieldError.required(f"{field}.topologyKey", "can not be empty"))
    else:
        errors.extend(validate_label_name(term.topology_key, f"{field}.topologyKey"))
    return errors


def _pod_affinity_terms(
    required: list[PodAffinityTerm] | None, preferred: list[WeightedPodAffinityTerm] | None, field: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    req_path = f"{field}.requiredDuringSchedulingIgnoredDuringExecution"
    for i, term in enumerate(required or []):
        errors.extend(_pod_affinity_term(term, f"{req_path}[{i}]"))
    pref_path = f"{field}.preferredDuringSchedulingIgnoredDuringExecution"
    for i, weighted in enumerate(preferred or []):
        path = f"{pref_path}[{i}]"
        if not 1 <= weighted.weight <= 100:
            errors.append(FieldError.invalid(f"{path}.weight", weighted.weight, WEIGHT_MSG))
        errors.extend(_pod_affinity_term(weighted.pod_affinity_term, f"{path}.podAffinityTerm"))
    return errors


def validate_affinity(affinity: Affinity | None, field: str) -> list[FieldError]:
    if affinity is None:
        return []
    errors: list[FieldError] = []
    na = affinity.node_affinity
    if na is not None:
        path = f"{field}.nodeAffinity"
        required = na.required_during_scheduling_ignored_during_execution
        if required is not None:
            errors.extend(
                _required_node_selector(required, f"{path}.requiredDuringSchedulingIgnoredDuringExecution")
            )
        errors.extend(
            _preferred_node_terms(
                na.preferred_during_scheduling_ignored_during_execution,
                f"{path}.preferredDuringSchedulingIgnoredDuringExecution",
            )
        )
    for name, rules in (
        ("podAffinity", affinity.pod_affinity),
        ("podAntiAffinity", affinity.pod_anti_affinity),
    ):
        if rules is not None:
            errors.extend(
                _pod_affinity_terms(
                    rules.required_during_scheduling_ignored_during_execution,
                    rules.preferred_during_scheduling_ignored_during_execution,
                    f"{field}.{name}",
                )
            )
    return errors


# ---------------------------------------------------------------------------------------------
# Topology spread


def validate_topology_spread(
    constraints: list[TopologySpreadConstraint] | None, field: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(constraints or []):
        path = f"{field}[{i}]"
        if c.max_skew <= 0:
            errors.append(FieldError.invalid(f"{path}.maxSkew", c.max_skew, NOT_POSITIVE_MSG))
        if not c.topology_key:
            errors.append(FieldError.required(f"{path}.topologyKey", "can not be empty"))
        else:
            errors.extend(validate_label_name(c.topology_key, f"{path}.topologyKey"))
        errors.extend(enum_value(c.when_unsatisfiable, f"{path}.whenUnsatisfiable", WHEN_UNSATISFIABLE))
        pair = (c.topology_key, c.when_unsatisfiable)
        if pair in seen:
            errors.append(FieldError.duplicate(path, f"{{{c.topology_key}, {c.when_unsatisfiable}}}"))
        seen.add(pair)
        if c.min_domains is not None:
            if c.min_domains <= 0:
                errors.append(FieldError.invalid(f"{path}.minDomains", c.min_domains, NOT_POSITIVE_MSG))
            if c.when_unsatisfiable != "DoNotSchedule":
                errors.append(
                    FieldError.invalid(
                        f"{path}.minDomains",
                        c.min_domains,
                        f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {c.when_unsatisfiable}",
                    )
                )
        if c.node_affinity_policy is not None:
            errors.extend(
                enum_value(c.node_affinity_policy, f"{path}.nodeAffinityPolicy", INCLUSION_POLICIES)
            )
        if c.node_taints_policy is not None:
            errors.extend(enum_value(c.node_taints_policy, f"{path}.nodeTaintsPolicy", INCLUSION_POLICIES))
        errors.extend(validate_label_selector(c.label_selector, f"{path}.labelSelector"))
    return errors
