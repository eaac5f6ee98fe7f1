"""The built-in roles and bindings, reconciled on every control plane start.

Kubernetes' default roles trimmed to the resources kube-lite serves: cluster-admin, admin, edit,
view (user-facing), system:kube-controller-manager, system:kube-scheduler, system:node (the
components), and the roles every authenticated user has (discovery, self reviews, health).
Missing objects are created; an existing one is brought back to these rules unless an operator
opted out with the annotation ``rbac.authorization.kubernetes.io/autoupdate: "false"``.
"""

from __future__ import annotations

import logging
from typing import Any

from apimachinery import errors
from apimachinery.scheme import Scheme
from controlplane.registry.store import Store

log = logging.getLogger(__name__)

GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SCHEDULER_USER = "system:kube-scheduler"

Rule = dict[str, Any]
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]


def rule(verbs: list[str], groups: list[str], resources: list[str], names: list[str] | None = None) -> Rule:
    r: Rule = {"verbs": verbs, "apiGroups": groups, "resources": resources}
    if names:
        r["resourceNames"] = names
    return r


def urls(verbs: list[str], paths: list[str]) -> Rule:
    return {"verbs": verbs, "nonResourceURLs": paths}


# What "view" may read: everything namespaced that is not a secret or a role.
_VIEW_CORE = ["pods", "pods/log", "pods/status", "services", "services/status", "endpoints", "configmaps",
              "serviceaccounts", "events", "namespaces/status", "persistentvolumeclaims"]
_VIEW_APPS = ["deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
              "replicasets/status"]
_VIEW = [
    rule(READ, [""], [*_VIEW_CORE, "namespaces"]),
    rule(READ, ["apps"], _VIEW_APPS),
    rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
    rule(READ, ["events.k8s.io"], ["events"]),
    # Kubernetes aggregates system:aggregated-metrics-reader into view, edit and admin.
    rule(READ, ["metrics.k8s.io"], ["pods", "nodes"]),
]
# "edit" also writes workloads, config and secrets (but, as in Kubernetes since 1.22, not
# endpoints, which could point a Service anywhere) and reads secrets.
_EDIT = [*_VIEW, rule(WRITE, [""], ["pods", "services", "configmaps", "secrets", "serviceaccounts", "persistentvolumeclaims"]), rule(["create"], [""], ["pods/eviction", "pods/exec", "pods/attach", "pods/portforward", "serviceaccounts/token"]), rule(["get"], [""], ["pods/exec", "pods/attach", "pods/portforward"]), rule(READ, [""], ["secrets"]), rule(WRITE, ["apps"], ["deployments", "deployments/scale", "replicasets", "replicasets/scale"]), rule(["impersonate"], [""], ["serviceaccounts"])]
# "admin" also manages access inside its namespace.
_ADMIN = [*_EDIT, rule(READ + WRITE, [GROUP], ["roles", "rolebindings"]), rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"])]
_CONTROLLERS = [
    # The garbage collector and the namespace controller act on every kind there is.
    rule([*READ, "delete", "deletecollection", "patch", "update"], ["*"], ["*"]),
    rule(["create"], [""], ["pods", "pods/binding", "pods/eviction", "endpoints", "events", "nodes", "namespaces",
                            "configmaps", "serviceaccounts", "services"]),
    rule(["create"], ["apps"], ["deployments", "replicasets"]),
    rule(["create"], ["discovery.k8s.io"], ["endpointslices"]),
    rule(["create"], ["coordination.k8s.io"], ["leases"]),
    rule(["create"], ["events.k8s.io"], ["events"]),
    rule(["create"], ["certificates.k8s.io"], ["certificatesigningrequests"]),
    rule(["approve", "sign"], ["certificates.k8s.io"], ["signers"]),
    rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
]
_SCHEDULER = [
    rule(READ, [""], ["pods", "nodes", "namespaces", "services", "endpoints", "persistentvolumeclaims"]),
    rule(READ, ["apps"], ["replicasets", "deployments"]),
    rule(["create"], [""], ["pods/binding", "bindings"]),
    rule(["patch", "update"], [""], ["pods/status"]),
    rule(["delete"], [""], ["pods"]),
    rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
    rule(["create"], ["coordination.k8s.io"], ["leases"]),
    rule(["get", "update"], ["coordination.k8s.io"], ["leases"], ["kube-scheduler"]),
]
# What every node may do; its own Node, Lease, pods and what they use come from the Node authorizer.
_NODE = [
    rule(READ, [""], ["pods", "services", "endpoints", "nodes", "namespaces"]),
    rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
    rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
    rule(["create", "get", "list", "watch"], ["certificates.k8s.io"], ["certificatesigningrequests"]),
    rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
]
_DISCOVERY = [urls(["get"], ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/",
                             "/healthz", "/livez", "/readyz"])]
_BASIC_USER = [
    rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
    rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
]
_PUBLIC_INFO = [urls(["get"], ["/healthz", "/livez", "/readyz", "/version", "/version/"])]
_NODE_BOOTSTRAPPER = [rule(["create", "get", "list", "watch"], ["certificates.k8s.io"], ["certificatesigningrequests"])]

CLUSTER_ROLES: dict[str, list[Rule]] = {
    "cluster-admin": [rule(["*"], ["*"], ["*"]), urls(["*"], ["*"])],
    "admin": _ADMIN,
    "edit": _EDIT,
    "view": _VIEW,
    "system:kube-controller-manager": _CONTROLLERS,
    "system:kube-scheduler": _SCHEDULER,
    "system:node": _NODE,
    "system:discovery": _DISCOVERY,
    "system:basic-user": _BASIC_USER,
    "system:public-info-viewer": _PUBLIC_INFO,
    "system:node-bootstrapper": _NODE_BOOTSTRAPPER,
}


def _user(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": GROUP, "name": name}


def _group(name: str) -> dict[str, str]:
    return {"kind": "Group", "apiGroup": GROUP, "name": name}


# binding name -> (cluster role, subjects)
CLUSTER_ROLE_BINDINGS: dict[str, tuple[str, list[dict[str, str]]]] = {
    "cluster-admin": ("cluster-admin", [_group("system:masters")]),
    "system:kube-controller-manager": ("system:kube-controller-manager", [_user(CONTROLLER_MANAGER_USER)]),
    "system:kube-scheduler": ("system:kube-scheduler", [_user(SCHEDULER_USER)]),
    "system:node": ("system:node", [_group("system:nodes")]),
    "system:discovery": ("system:discovery", [_group("system:authenticated")]),
    "system:basic-user": ("system:basic-user", [_group("system:authenticated")]),
    "system:public-info-viewer": ("system:public-info-viewer",
                                  [_group("system:authenticated"), _group("system:unauthenticated")]),
    "kube-lite:node-bootstrapper": ("system:node-bootstrapper", [_group("system:bootstrappers")]),
}


# Namespaced: (namespace, name) -> rules, and (namespace, name) -> (role, subjects). Joining
# nodes read kube-public/cluster-info before they have any credentials (see nodeagent.bootstrap);
# it holds only the server address and CA, signed per bootstrap token.
CLUSTER_INFO_READER = "kube-lite:bootstrap-signer-clusterinfo"
ROLES: dict[tuple[str, str], list[Rule]] = {
    ("kube-public", CLUSTER_INFO_READER): [rule(["get"], [""], ["configmaps"], ["cluster-info"])],
}
ROLE_BINDINGS: dict[tuple[str, str], tuple[str, list[dict[str, str]]]] = {
    ("kube-public", CLUSTER_INFO_READER): (CLUSTER_INFO_READER, [_user("system:anonymous")]),
}


def _metadata(name: str, namespace: str | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                          "annotations": {AUTOUPDATE: "true"}}
    if namespace:
        md["namespace"] = namespace
    return md


def desired_objects() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, rules in CLUSTER_ROLES.items():
        out.append({"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": _metadata(name), "rules": rules})
    for name, (role, subjects) in CLUSTER_ROLE_BINDINGS.items():
        out.append({"apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": _metadata(name),
                    "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role}, "subjects": subjects})
    for (ns, name), rules in ROLES.items():
        out.append({"apiVersion": f"{GROUP}/v1", "kind": "Role", "metadata": _metadata(name, ns), "rules": rules})
    for (ns, name), (role, subjects) in ROLE_BINDINGS.items():
        out.append({"apiVersion": f"{GROUP}/v1", "kind": "RoleBinding", "metadata": _metadata(name, ns),
                    "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": role}, "subjects": subjects})
    return out


async def ensure_bootstrap_policy(store: Store, scheme: Scheme) -> None:
    """Create the built-in roles and bindings, or restore their rules and subjects."""
    for obj in desired_objects():
        rt = scheme.by_kind(obj["apiVersion"], obj["kind"])
        assert rt is not None
        name, ns = obj["metadata"]["name"], obj["metadata"].get("namespace")
        try:
            await store.create(rt, ns, obj)
            continue
        except errors.ApiError as e:
            if e.code != 409:
                raise
        current = await store.get(rt, ns, name)
        if ((current.get("metadata") or {}).get("annotations") or {}).get(AUTOUPDATE) == "false":
            continue
        keys = ("rules",) if obj["kind"] in ("ClusterRole", "Role") else ("roleRef", "subjects")
        if all(current.get(k) == obj[k] for k in keys):
            continue
        if obj["kind"] in ("ClusterRoleBinding", "RoleBinding") and current.get("roleRef") != obj["roleRef"]:
            log.warning("built-in ClusterRoleBinding %s points at another role; leaving it alone", name)
            continue
        updated = {**current, **{k: obj[k] for k in keys}}
        await store.update(rt, ns, name, updated)
        log.info("restored built-in %s %s", obj["kind"], name)
