"""Validation of the RBAC kinds (Kubernetes' rbac validation, same paths and messages).

Role and binding names follow the path-segment rule, so ``system:node`` is a valid name.
"""

from __future__ import annotations

from apimachinery.api.rbac_v1 import (
    GROUP,
    ClusterRole,
    ClusterRoleBinding,
    PolicyRule,
    Role,
    RoleBinding,
    RoleRef,
    Subject,
)
from apimachinery.errors import FieldError
from apimachinery.validation import register
from apimachinery.validation.meta import validate_object_meta, validate_object_meta_update

SUBJECT_KINDS = ["ServiceAccount", "User", "Group"]


def _rule_errors(rule: PolicyRule, path: str, namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    if not rule.verbs:
        errs.append(FieldError.required(f"{path}.verbs", "verbs must contain at least one value"))
    if rule.non_resource_urls:
        if namespaced:
            errs.append(FieldError.invalid(f"{path}.nonResourceURLs", rule.non_resource_urls,
                                           "namespaced rules cannot apply to non-resource URLs"))
        if rule.api_groups or rule.resources:
            errs.append(FieldError.invalid(f"{path}.nonResourceURLs", rule.non_resource_urls,
                                           "rules cannot apply to both regular resources and non-resource URLs"))
        return errs
    if not rule.api_groups:
        errs.append(FieldError.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.resources:
        errs.append(FieldError.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def _rules_errors(rules: list[PolicyRule] | None, namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, rule in enumerate(rules or []):
        errs.extend(_rule_errors(rule, f"rules[{i}]", namespaced))
    return errs


def validate_role(role: Role) -> list[FieldError]:
    return validate_object_meta(role.metadata, namespaced=True) + _rules_errors(role.rules, True)


def validate_cluster_role(role: ClusterRole) -> list[FieldError]:
    return validate_object_meta(role.metadata, namespaced=False) + _rules_errors(role.rules, False)


def _role_ref_errors(ref: RoleRef, kinds: list[str]) -> list[FieldError]:
    errs: list[FieldError] = []
    if ref.api_group != GROUP:
        errs.append(FieldError.not_supported("roleRef.apiGroup", ref.api_group, [GROUP]))
    if ref.kind not in kinds:
        errs.append(FieldError.not_supported("roleRef.kind", ref.kind, kinds))
    if not ref.name:
        errs.append(FieldError.required("roleRef.name"))
    return errs


def _subject_errors(subjects: list[Subject] | None, cluster: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, s in enumerate(subjects or []):
        path = f"subjects[{i}]"
        if not s.name:
            errs.append(FieldError.required(f"{path}.name"))
        if s.kind == "ServiceAccount":
            if s.api_group:
                errs.append(FieldError.not_supported(f"{path}.apiGroup", s.api_group, [""]))
            if cluster and not s.namespace:
                errs.append(FieldError.required(f"{path}.namespace"))
        elif s.kind in ("User", "Group"):
            if s.api_group != GROUP:
                errs.append(FieldError.not_supported(f"{path}.apiGroup", s.api_group, [GROUP]))
        else:
            errs.append(FieldError.not_supported(f"{path}.kind", s.kind, SUBJECT_KINDS))
    return errs


def validate_role_binding(rb: RoleBinding) -> list[FieldError]:
    return (validate_object_meta(rb.metadata, namespaced=True)
            + _role_ref_errors(rb.role_ref, ["Role", "ClusterRole"]) + _subject_errors(rb.subjects, False))


def validate_cluster_role_binding(crb: ClusterRoleBinding) -> list[FieldError]:
    return (validate_object_meta(crb.metadata, namespaced=False)
            + _role_ref_errors(crb.role_ref, ["ClusterRole"]) + _subject_errors(crb.subjects, True))


def _binding_update(new: RoleBinding | ClusterRoleBinding, old: RoleBinding | ClusterRoleBinding) -> list[FieldError]:
    # A binding's role never changes: to grant another role, delete and recreate the binding.
    errs = validate_object_meta_update(new.metadata, old.metadata)
    if new.role_ref != old.role_ref:
        errs.append(FieldError.invalid("roleRef", new.role_ref.to_dict(), "cannot change roleRef"))
    return errs


register(Role, validate_role)
register(ClusterRole, validate_cluster_role)
register(RoleBinding, validate_role_binding, _binding_update)
register(ClusterRoleBinding, validate_cluster_role_binding, _binding_update)
