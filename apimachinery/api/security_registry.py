"""Registers the RBAC kinds and the (never stored) review kinds in a scheme."""

from __future__ import annotations

from typing import Any

from apimachinery.api import authorization_v1 as authz
from apimachinery.api import rbac_v1 as rbac
from apimachinery.meta import KubeList, KubeObject
from apimachinery.scheme import ResourceType, Scheme

# Reviews are answered, not stored: create is their only verb.
_CREATE_ONLY = ("create",)

# Groups whose resources the API server answers itself instead of storing them.
REVIEW_GROUPS = ("authorization.k8s.io", "authentication.k8s.io")


def register_security_types(s: Scheme) -> None:
    rbac_kinds: tuple[tuple[str, str, bool, type[KubeObject], type[KubeList[Any]]], ...] = (
        ("Role", "roles", True, rbac.Role, rbac.RoleList),
        ("RoleBinding", "rolebindings", True, rbac.RoleBinding, rbac.RoleBindingList),
        ("ClusterRole", "clusterroles", False, rbac.ClusterRole, rbac.ClusterRoleList),
        ("ClusterRoleBinding", "clusterrolebindings", False, rbac.ClusterRoleBinding, rbac.ClusterRoleBindingList),
    )
    for kind, plural, namespaced, model, list_model in rbac_kinds:
        s.register(ResourceType(rbac.GROUP, "v1", kind, plural, kind.lower(), namespaced, model, list_model,
                                has_status=False))
    reviews: tuple[tuple[str, str, str, type[KubeObject], type[KubeList[Any]]], ...] = (
        ("authorization.k8s.io", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
         authz.SelfSubjectAccessReview, authz.SelfSubjectAccessReviewList),
        ("authorization.k8s.io", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
         authz.SelfSubjectRulesReview, authz.SelfSubjectRulesReviewList),
        ("authorization.k8s.io", "SubjectAccessReview", "subjectaccessreviews",
         authz.SubjectAccessReview, authz.SubjectAccessReviewList),
        ("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews",
         authz.SelfSubjectReview, authz.SelfSubjectReviewList),
    )
    for group, kind, plural, model, list_model in reviews:
        s.register(ResourceType(group, "v1", kind, plural, kind.lower(), False, model, list_model,
                                verbs=_CREATE_ONLY, has_status=False))
