"""Registers the validators of every built-in kind with :mod:`apimachinery.validation`.

Imported once, on first validation. Each kind's module holds its rules; this table is the only
place that says which model they belong to.
"""

from __future__ import annotations

from apimachinery.api.apps_v1 import Deployment, ReplicaSet
from apimachinery.api.certificates_v1 import CertificateSigningRequest
from apimachinery.api.coordination_v1 import Lease
from apimachinery.api.core_v1 import (
    ConfigMap,
    Endpoints,
    Event,
    Namespace,
    Node,
    Pod,
    Secret,
    Service,
    ServiceAccount,
)
from apimachinery.api.discovery_v1 import EndpointSlice
from apimachinery.validation import register
from apimachinery.validation.certificates import (
    validate_certificate_signing_request,
    validate_certificate_signing_request_update,
)
from apimachinery.validation.cluster import (
    validate_event,
    validate_lease,
    validate_namespace,
    validate_node,
    validate_node_update,
    validate_service_account,
)
from apimachinery.validation.config import (
    validate_config_map,
    validate_config_map_update,
    validate_secret,
    validate_secret_update,
)
from apimachinery.validation.endpoints import (
    validate_endpoint_slice,
    validate_endpoint_slice_update,
    validate_endpoints,
)
from apimachinery.validation.pod import validate_pod, validate_pod_update
from apimachinery.validation.service import validate_service, validate_service_update
from apimachinery.validation.workloads import (
    validate_deployment,
    validate_deployment_update,
    validate_replicaset,
    validate_replicaset_update,
)

# Kinds without an update validator get the generic metadata update rules.
register(Pod, validate_pod, validate_pod_update)
register(ReplicaSet, validate_replicaset, validate_replicaset_update)
register(Deployment, validate_deployment, validate_deployment_update)
register(Service, validate_service, validate_service_update)
register(Endpoints, validate_endpoints)
register(EndpointSlice, validate_endpoint_slice, validate_endpoint_slice_update)
register(Namespace, validate_namespace)
register(Node, validate_node, validate_node_update)
register(ConfigMap, validate_config_map, validate_config_map_update)
register(Secret, validate_secret, validate_secret_update)
register(Event, validate_event)
register(Lease, validate_lease)
register(ServiceAccount, validate_service_account)
register(CertificateSigningRequest, validate_certificate_signing_request, validate_certificate_signing_request_update)
