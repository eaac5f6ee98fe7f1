"""The authorizer chain: system:masters, then the Node authorizer, then RBAC."""

from __future__ import annotations

from apimachinery.scheme import Scheme
from controlplane.apiserver.authn import UserInfo
from controlplane.apiserver.authz.attributes import Attributes
from controlplane.apiserver.authz.decision import ALLOW, Decision, Verdict, deny
from controlplane.apiserver.authz.node import NodeAuthorizer
from controlplane.apiserver.authz.podrefs import PodRefIndex
from controlplane.apiserver.authz.rbac import RbacAuthorizer
from controlplane.apiserver.authz.rules import Rule
from controlplane.registry.watchcache import WatchCache

MASTERS_GROUP = "system:masters"


class Authorizer:
    def __init__(self, cache: WatchCache, scheme: Scheme) -> None:
        pods = scheme.by_resource("", "v1", "pods")
        assert pods is not None
        self.rbac = RbacAuthorizer(cache, scheme)
        self.node = NodeAuthorizer(PodRefIndex(cache, pods.storage_prefix()), pods.storage_prefix())

    def authorize(self, attrs: Attributes) -> Decision:
        if MASTERS_GROUP in attrs.user.groups:
            return ALLOW
        for step in (self.node, self.rbac):
            decision = step.authorize(attrs)
            if decision.verdict is not Verdict.NO_OPINION:
                return decision
        return deny("")

    def rules_for(self, user: UserInfo, namespace: str) -> list[Rule]:
        if MASTERS_GROUP in user.groups:
            return [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                    {"verbs": ["*"], "nonResourceURLs": ["*"]}]
        return self.rbac.rules_for(user, namespace)
