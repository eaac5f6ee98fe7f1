"""The Node authorizer and node restriction: a node's credential reaches only its own things.

A node (user ``system:node:<name>`` in group ``system:nodes``) may write its own Node and its
Lease in ``kube-node-lease``, the status of pods bound to it (and delete them once stopped), and
read the Secrets, ConfigMaps and claims those pods use, nothing else of that kind. Everything
else a node needs (reading pods, services, endpoint slices, nodes; writing events) is granted by
the ``system:node`` ClusterRole through RBAC, so this authorizer has no opinion on it.
The name in the body of a create, which the URL does not carry, is checked by the
NodeRestriction admission plugin (:mod:`controlplane.registry.admission.noderestriction`).
"""

from __future__ import annotations

from controlplane.apiserver.authn import UserInfo
from controlplane.apiserver.authz.attributes import Attributes
from controlplane.apiserver.authz.decision import ALLOW, NO_OPINION, Decision, deny
from controlplane.apiserver.authz.podrefs import PodRefIndex

NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
NODE_LEASE_NAMESPACE = "kube-node-lease"

# Things pods use that a node may read only for its own pods.
_POD_DEPENDENCIES = ("secrets", "configmaps", "persistentvolumeclaims", "serviceaccounts")
_WRITE_VERBS = ("create", "update", "patch", "delete")


def node_name(user: UserInfo) -> str | None:
    """The node a user is, or None when it is not a node credential."""
    return node_of(user.name, user.groups)


def node_of(name: str, groups: tuple[str, ...]) -> str | None:
    if NODES_GROUP in groups and name.startswith(NODE_USER_PREFIX):
        return name[len(NODE_USER_PREFIX):] or None
    return None


class NodeAuthorizer:
    def __init__(self, pods: PodRefIndex, pods_prefix: str) -> None:
        self.pods = pods
        self.pods_prefix = pods_prefix

    def authorize(self, attrs: Attributes) -> Decision:
        node = node_name(attrs.user)
        if node is None or not attrs.resource_request:
            return NO_OPINION
        if attrs.api_group == "":
            if attrs.resource in _POD_DEPENDENCIES:
                return self._dependency(node, attrs)
            if attrs.resource == "pods":
                return self._pod(node, attrs)
            if attrs.resource == "nodes":
                return self._own(node, attrs, "node")
        elif attrs.api_group == "coordination.k8s.io" and attrs.resource == "leases":
            if attrs.namespace != NODE_LEASE_NAMESPACE:
                return deny(f"node '{node}' can only access leases in the {NODE_LEASE_NAMESPACE} namespace")
            return self._own(node, attrs, "lease", reads=True)
        return NO_OPINION

    def _dependency(self, node: str, attrs: Attributes) -> Decision:
        token_request = attrs.resource == "serviceaccounts" and attrs.subresource == "token" and attrs.verb == "create"
        if not token_request and (attrs.verb != "get" or not attrs.name or attrs.subresource):
            return deny("can only get individual resources of this type")
        if self.pods.node_uses(node, (attrs.resource, attrs.namespace, attrs.name)):
            return ALLOW
        return deny(f"no relationship found between node '{node}' and this object")

    def _pod(self, node: str, attrs: Attributes) -> Decision:
        if attrs.subresource == "" and attrs.verb in ("get", "list", "watch"):
            return NO_OPINION
        status_write = attrs.subresource == "status" and attrs.verb in ("get", "update", "patch")
        if not (status_write or (attrs.subresource == "" and attrs.verb == "delete")):
            return deny(f"node '{node}' can only update the status of and delete pods bound to it")
        bound = self.pods.node_of(f"{self.pods_prefix}{attrs.namespace}/{attrs.name}")
        if bound == node:
            return ALLOW
        return deny(f"node '{node}' can only update the status of and delete pods bound to it")

    def _own(self, node: str, attrs: Attributes, what: str, *, reads: bool = False) -> Decision:
        if attrs.verb not in _WRITE_VERBS and not reads:
            return NO_OPINION
        # A create names its object in the body: check_node_create looks at it.
        if attrs.name == node or (attrs.verb == "create" and not attrs.name):
            return ALLOW
        return deny(f"node '{node}' can only access its own {what}")
