"""The built-in kinds as REST resources: one table for routing, discovery, clients and CLIs.

Binding (core/v1) and Scale (autoscaling/v1) are models only: the API server serves them as the
``pods/binding`` and ``*/scale`` subresources, never as stored resources.
"""

from __future__ import annotations

from apimachinery.api import apps_v1, certificates_v1, coordination_v1, core_v1, discovery_v1
from apimachinery.api.security_registry import register_security_types
from apimachinery.scheme import ResourceType, Scheme

# Kubernetes offers no deletecollection on namespaces (nodes do have it); discovery mirrors that.
_NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


def build_scheme() -> Scheme:
    """A scheme holding every built-in kind."""
    s = Scheme()
    core = ("", "v1")
    s.register(
        ResourceType(
            *core,
            "Pod",
            "pods",
            "pod",
            True,
            core_v1.Pod,
            core_v1.PodList,
            short_names=("po",),
            categories=("all",),
            subresources=("status", "binding", "log", "exec", "eviction"),
        )
    )
    s.register(
        ResourceType(
            *core,
            "Service",
            "services",
            "service",
            True,
            core_v1.Service,
            core_v1.ServiceList,
            short_names=("svc",),
            categories=("all",),
            subresources=("status",),
        )
    )
    s.register(
        ResourceType(
            *core,
            "Endpoints",
            "endpoints",
            "endpoints",
            True,
            core_v1.Endpoints,
            core_v1.EndpointsList,
            short_names=("ep",),
            has_status=False,
        )
    )
    s.register(
        ResourceType(
            *core,
            "Node",
            "nodes",
            "node",
            False,
            core_v1.Node,
            core_v1.NodeList,
            short_names=("no",),
            subresources=("status",),
        )
    )
    s.register(
        ResourceType(
            *core,
            "Namespace",
            "namespaces",
            "namespace",
            False,
            core_v1.Namespace,
            core_v1.NamespaceList,
            short_names=("ns",),
            subresources=("status", "finalize"),
            verbs=_NAMESPACE_VERBS,
        )
    )
    s.register(
        ResourceType(
            *core,
            "Event",
            "events",
            "event",
            True,
            core_v1.Event,
            core_v1.EventList,
            short_names=("ev",),
            has_status=False,
        )
    )
    s.register(
        ResourceType(
            *core,
            "ConfigMap",
            "configmaps",
            "configmap",
            True,
            core_v1.ConfigMap,
            core_v1.ConfigMapList,
            short_names=("cm",),
            has_status=False,
        )
    )
    s.register(
        ResourceType(
            *core,
            "Secret",
            "secrets",
            "secret",
            True,
            core_v1.Secret,
            core_v1.SecretList,
            has_status=False,
        )
    )
    s.register(
        ResourceType(
            *core,
            "ServiceAccount",
            "serviceaccounts",
            "serviceaccount",
            True,
            core_v1.ServiceAccount,
            core_v1.ServiceAccountList,
            short_names=("sa",),
            subresources=("token",),
            has_status=False,
        )
    )
    s.register(
        ResourceType(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            "deployment",
            True,
            apps_v1.Deployment,
            apps_v1.DeploymentList,
            short_names=("deploy",),
            categories=("all",),
            subresources=("status", "scale"),
        )
    )
    s.register(
        ResourceType(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            "replicaset",
            True,
            apps_v1.ReplicaSet,
            apps_v1.ReplicaSetList,
            short_names=("rs",),
            categories=("all",),
            subresources=("status", "scale"),
        )
    )
    s.register(
        ResourceType(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            "lease",
            True,
            coordination_v1.Lease,
            coordination_v1.LeaseList,
            has_status=False,
        )
    )
    s.register(
        ResourceType(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            "endpointslice",
            True,
            discovery_v1.EndpointSlice,
            discovery_v1.EndpointSliceList,
            has_status=False,
        )
    )
    s.register(
        ResourceType(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
            "certificatesigningrequest",
            False,
            certificates_v1.CertificateSigningRequest,
            certificates_v1.CertificateSigningRequestList,
            short_names=("csr",),
            subresources=("status", "approval"),
        )
    )
    register_security_types(s)
    return s
