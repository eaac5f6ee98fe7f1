"""rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

A rule grants verbs on resources (or on non-resource URLs); a binding gives a role's rules to
users, groups and service accounts, either in one namespace (RoleBinding) or everywhere
(ClusterRoleBinding). Shapes follow Kubernetes exactly.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from apimachinery.meta import KubeList, KubeObject, LabelSelector
from apimachinery.model import KubeModel

GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"


class PolicyRule(KubeModel):
    """Verbs allowed on resources or non-resource URLs."""

    verbs: list[str] = Field(default_factory=list, description="Verbs this rule allows; '*' is all.")
    api_groups: list[str] | None = Field(None, description="API groups of the resources; '' is the core group.")
    resources: list[str] | None = Field(None, description="Resources ('pods', 'pods/status', '*').")
    resource_names: list[str] | None = Field(None, description="Object names the rule is limited to.")
    non_resource_urls: list[str] | None = Field(
        None, alias="nonResourceURLs", description="Non-resource paths ('/healthz', '/apis/*')."
    )


class AggregationRule(KubeModel):
    """Kept for compatibility; kube-lite does not aggregate ClusterRoles."""

    cluster_role_selectors: list[LabelSelector] | None = None


class Subject(KubeModel):
    """Who a binding applies to."""

    kind: str = Field("", description="User, Group or ServiceAccount.")
    api_group: str | None = Field(None, description="rbac.authorization.k8s.io for users and groups.")
    name: str = Field("", description="Name of the user, group or service account.")
    namespace: str | None = Field(None, description="Namespace of a service account.")


class RoleRef(KubeModel):
    """The role a binding grants."""

    api_group: str = Field("", description="rbac.authorization.k8s.io.")
    kind: str = Field("", description="Role or ClusterRole.")
    name: str = Field("", description="Name of the role.")


class Role(KubeObject):
    """Rules in one namespace."""

    API_VERSION: ClassVar[str] = API_VERSION
    KIND: ClassVar[str] = "Role"

    rules: list[PolicyRule] | None = Field(None, description="What the role allows.")


class RoleList(KubeList[Role]):
    api_version: str | None = API_VERSION
    kind: str | None = "RoleList"


class ClusterRole(KubeObject):
    """Rules for the whole cluster (or, bound by a RoleBinding, for one namespace)."""

    API_VERSION: ClassVar[str] = API_VERSION
    KIND: ClassVar[str] = "ClusterRole"

    rules: list[PolicyRule] | None = Field(None, description="What the role allows.")
    aggregation_rule: AggregationRule | None = Field(None, description="Not evaluated by kube-lite.")


class ClusterRoleList(KubeList[ClusterRole]):
    api_version: str | None = API_VERSION
    kind: str | None = "ClusterRoleList"


class RoleBinding(KubeObject):
    """Grants a Role or ClusterRole to subjects inside one namespace."""

    API_VERSION: ClassVar[str] = API_VERSION
    KIND: ClassVar[str] = "RoleBinding"

    subjects: list[Subject] | None = Field(None, description="Who gets the role.")
    role_ref: RoleRef = Field(default_factory=RoleRef, description="The role granted.")


class RoleBindingList(KubeList[RoleBinding]):
    api_version: str | None = API_VERSION
    kind: str | None = "RoleBindingList"


class ClusterRoleBinding(KubeObject):
    """Grants a ClusterRole to subjects in every namespace."""

    API_VERSION: ClassVar[str] = API_VERSION
    KIND: ClassVar[str] = "ClusterRoleBinding"

    subjects: list[Subject] | None = Field(None, description="Who gets the role.")
    role_ref: RoleRef = Field(default_factory=RoleRef, description="The role granted.")


class ClusterRoleBindingList(KubeList[ClusterRoleBinding]):
    api_version: str | None = API_VERSION
    kind: str | None = "ClusterRoleBindingList"
