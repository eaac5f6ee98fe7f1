"""authorization.k8s.io/v1 and authentication.k8s.io/v1: the review objects.

They are never stored: a client creates one, the API server fills in ``status`` and returns it
(``kubectl auth can-i`` creates SelfSubjectAccessReviews and SelfSubjectRulesReviews,
``kubectl auth whoami`` a SelfSubjectReview).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from apimachinery.meta import KubeList, KubeObject
from apimachinery.model import KubeModel

AUTHZ_VERSION = "authorization.k8s.io/v1"
AUTHN_VERSION = "authentication.k8s.io/v1"


class ResourceAttributes(KubeModel):
    """A request on a resource, as the authorizer sees it."""

    namespace: str | None = None
    verb: str | None = None
    group: str | None = None
    version: str | None = None
    resource: str | None = None
    subresource: str | None = None
    name: str | None = None


class NonResourceAttributes(KubeModel):
    """A request on a path that is not a resource (``/healthz``, ``/api``)."""

    path: str | None = None
    verb: str | None = None


class SubjectAccessReviewSpec(KubeModel):
    resource_attributes: ResourceAttributes | None = None
    non_resource_attributes: NonResourceAttributes | None = None
    user: str | None = None
    groups: list[str] | None = None
    uid: str | None = None


class SelfSubjectAccessReviewSpec(KubeModel):
    resource_attributes: ResourceAttributes | None = None
    non_resource_attributes: NonResourceAttributes | None = None


class SubjectAccessReviewStatus(KubeModel):
    allowed: bool = False
    denied: bool | None = None
    reason: str | None = None
    evaluation_error: str | None = None


class SubjectAccessReview(KubeObject):
    """May this user do this? (asked by someone allowed to create SubjectAccessReviews)."""

    API_VERSION: ClassVar[str] = AUTHZ_VERSION
    KIND: ClassVar[str] = "SubjectAccessReview"

    spec: SubjectAccessReviewSpec = Field(default_factory=SubjectAccessReviewSpec)
    status: SubjectAccessReviewStatus | None = None


class SubjectAccessReviewList(KubeList[SubjectAccessReview]):
    api_version: str | None = AUTHZ_VERSION
    kind: str | None = "SubjectAccessReviewList"


class SelfSubjectAccessReview(KubeObject):
    """May I do this?"""

    API_VERSION: ClassVar[str] = AUTHZ_VERSION
    KIND: ClassVar[str] = "SelfSubjectAccessReview"

    spec: SelfSubjectAccessReviewSpec = Field(default_factory=SelfSubjectAccessReviewSpec)
    status: SubjectAccessReviewStatus | None = None


class SelfSubjectAccessReviewList(KubeList[SelfSubjectAccessReview]):
    api_version: str | None = AUTHZ_VERSION
    kind: str | None = "SelfSubjectAccessReviewList"


class SelfSubjectRulesReviewSpec(KubeModel):
    namespace: str | None = None


class ResourceRule(KubeModel):
    verbs: list[str] = Field(default_factory=list)
    api_groups: list[str] | None = None
    resources: list[str] | None = None
    resource_names: list[str] | None = None


class NonResourceRule(KubeModel):
    verbs: list[str] = Field(default_factory=list)
    non_resource_urls: list[str] | None = Field(None, alias="nonResourceURLs")


class SubjectRulesReviewStatus(KubeModel):
    resource_rules: list[ResourceRule] = Field(default_factory=list)
    non_resource_rules: list[NonResourceRule] = Field(default_factory=list)
    incomplete: bool = False
    evaluation_error: str | None = None


class SelfSubjectRulesReview(KubeObject):
    """What may I do in this namespace? (``kubectl auth can-i --list``)."""

    API_VERSION: ClassVar[str] = AUTHZ_VERSION
    KIND: ClassVar[str] = "SelfSubjectRulesReview"

    spec: SelfSubjectRulesReviewSpec = Field(default_factory=SelfSubjectRulesReviewSpec)
    status: SubjectRulesReviewStatus | None = None


class SelfSubjectRulesReviewList(KubeList[SelfSubjectRulesReview]):
    api_version: str | None = AUTHZ_VERSION
    kind: str | None = "SelfSubjectRulesReviewList"


class UserInfoModel(KubeModel):
    username: str | None = None
    uid: str | None = None
    groups: list[str] | None = None


class SelfSubjectReviewStatus(KubeModel):
    user_info: UserInfoModel = Field(default_factory=UserInfoModel)


class SelfSubjectReview(KubeObject):
    """Who am I? (``kubectl auth whoami``)."""

    API_VERSION: ClassVar[str] = AUTHN_VERSION
    KIND: ClassVar[str] = "SelfSubjectReview"

    status: SelfSubjectReviewStatus | None = None


class SelfSubjectReviewList(KubeList[SelfSubjectReview]):
    api_version: str | None = AUTHN_VERSION
    kind: str | None = "SelfSubjectReviewList"
