"""NodeRestriction: a node may create only the Node and the Lease named after itself.

The Node authorizer (:mod:`controlplane.apiserver.authz.node`) already confines updates by the
name in the URL; a create carries its name only in the body, which admission sees.
"""

from __future__ import annotations

from apimachinery import errors
from apimachinery.meta import KubeObject
from controlplane.registry.admission.attributes import CREATE, Attributes

NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
_OWN = {("", "nodes"): "node", ("coordination.k8s.io", "leases"): "lease"}


class NodeRestriction:
    name = "NodeRestriction"

    async def admit(self, attrs: Attributes, obj: KubeObject, old: KubeObject | None) -> None:
        user = attrs.user
        if attrs.operation != CREATE or NODES_GROUP not in user.groups or not user.name.startswith(NODE_USER_PREFIX):
            return
        what = _OWN.get((attrs.rt.group, attrs.rt.plural))
        if what is None:
            return
        node = user.name[len(NODE_USER_PREFIX):]
        name = obj.metadata.name or ""
        if name != node:
            raise errors.ApiError.make(
                403, "Forbidden",
                f'{errors.qualified_resource(attrs.rt.plural, attrs.rt.group)} "{name}" is forbidden: '
                f'node "{node}" is not allowed to modify {what} "{name}"',
            )
