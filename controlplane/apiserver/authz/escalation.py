"""RBAC escalation prevention: nobody grants permissions they do not hold themselves.

As in Kubernetes, writing a Role or ClusterRole needs every permission in it (or the
``escalate`` verb on the role), and writing a binding needs every permission of the role it
binds, in the binding's scope (or the ``bind`` verb on that role). Without this, a namespace
admin could bind ``cluster-admin`` and read every secret of the namespace, or write a Role that
grants what ``admin`` deliberately leaves out. Runs as a validating admission plugin, where the
object being written and its writer are both known.
"""

from __future__ import annotations

from typing import Any

from apimachinery import errors
from apimachinery.api.rbac_v1 import GROUP, ClusterRoleBinding, RoleBinding
from apimachinery.meta import KubeObject
from controlplane.apiserver.authn import UserInfo
from controlplane.apiserver.authz.attributes import Attributes
from controlplane.apiserver.authz.chain import Authorizer
from controlplane.apiserver.authz.rules import Rule, rule_allows
from controlplane.registry.admission.attributes import Attributes as AdmissionAttributes

_ROLE_KINDS = ("Role", "ClusterRole")
_BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")


def _atoms(user: UserInfo, namespace: str, rule: Rule) -> list[Attributes]:
    """One request per verb x group x resource x name (or verb x URL) the rule grants."""
    out: list[Attributes] = []
    for verb in rule.get("verbs") or []:
        for url in rule.get("nonResourceURLs") or []:
            out.append(Attributes(user, verb, False, path=url))
        for group in rule.get("apiGroups") or []:
            for full in rule.get("resources") or []:
                resource, _, sub = full.partition("/")
                for name in rule.get("resourceNames") or [""]:
                    out.append(Attributes(user, verb, True, api_group=group, resource=resource, subresource=sub,
                                          namespace=namespace, name=name))
    return out


def _describe(a: Attributes) -> str:
    if not a.resource_request:
        return f'{{NonResourceURLs:["{a.path}"], Verbs:["{a.verb}"]}}'
    names = f', ResourceNames:["{a.name}"]' if a.name else ""
    return f'{{APIGroups:["{a.api_group}"], Resources:["{a.full_resource}"]{names}, Verbs:["{a.verb}"]}}'


class RbacEscalation:
    name = "RBACEscalation"

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    def _uncovered(self, user: UserInfo, namespace: str, rules: list[Rule]) -> list[Attributes]:
        held = self.authorizer.rules_for(user, namespace)
        return [a for rule in rules for a in _atoms(user, namespace, rule)
                if not any(rule_allows(h, a) for h in held)]

    def _verb_allowed(self, user: UserInfo, verb: str, resource: str, namespace: str, name: str) -> bool:
        attrs = Attributes(user, verb, True, api_group=GROUP, resource=resource, namespace=namespace, name=name)
        return self.authorizer.authorize(attrs).allowed

    async def admit(self, attrs: AdmissionAttributes, obj: KubeObject, old: KubeObject | None) -> None:
        rt = attrs.rt
        if rt.group != GROUP or rt.kind not in (*_ROLE_KINDS, *_BINDING_KINDS):
            return
        user = UserInfo(attrs.user.name, attrs.user.uid, attrs.user.groups)
        namespace = attrs.namespace if rt.namespaced else ""
        if rt.kind in _ROLE_KINDS:
            rules: list[Rule] = [r.to_dict() for r in getattr(obj, "rules", None) or []]
            if old is not None and rules == [r.to_dict() for r in getattr(old, "rules", None) or []]:
                return  # metadata-only changes (labels, owner references) grant nothing new
            if self._verb_allowed(user, "escalate", rt.plural, namespace, attrs.name):
                return
        else:
            assert isinstance(obj, (RoleBinding, ClusterRoleBinding))
            if old is not None and _binding_grants(obj) == _binding_grants(old):
                return
            ref = obj.role_ref
            role_resource = "clusterroles" if ref.kind == "ClusterRole" else "roles"
            # Asked in the binding's namespace, as Kubernetes does (a RoleBinding may grant "bind").
            if self._verb_allowed(user, "bind", role_resource, namespace, ref.name):
                return
            found = self.authorizer.rbac.role_rules(ref.kind, namespace, ref.name)
            if found is None:
                # Kubernetes refuses to bind a role it cannot see: nothing to check it against.
                raise errors.ApiError.make(
                    403, "Forbidden", f'{errors.qualified_resource(rt.plural, rt.group)} "{attrs.name}" is forbidden: '
                    f'{ref.kind.lower()}s.{GROUP} "{ref.name}" not found')
            rules = found
        missing = self._uncovered(user, namespace, rules)
        if missing:
            groups = " ".join(f'"{g}"' for g in user.groups)
            shown = "\n".join(_describe(a) for a in missing[:20])
            more = f"\n... and {len(missing) - 20} more" if len(missing) > 20 else ""
            raise errors.ApiError.make(
                403, "Forbidden",
                f'{errors.qualified_resource(rt.plural, rt.group)} "{attrs.name}" is forbidden: user "{user.name}" '
                f"(groups=[{groups}]) is attempting to grant RBAC permissions not currently held:\n{shown}{more}")


def _binding_grants(obj: KubeObject) -> Any:
    return obj.to_dict().get("roleRef"), obj.to_dict().get("subjects")
