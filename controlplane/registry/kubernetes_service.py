"""The ``default/kubernetes`` Service and its Endpoints/EndpointSlice: how pods find the API server.

Kubernetes' API server keeps these itself: the Service holds the first address of the service
range (port 443 to the server's port), and having no selector, its endpoints are written here,
pointing at the advertise address, not by the endpoints controllers. Run at every start, so a
changed port or address is corrected.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

from apimachinery import errors
from apimachinery.scheme import ResourceType
from controlplane.registry.store import Store

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NAMESPACE = "default"
NAME = "kubernetes"
SERVICE_LABELS = {"component": "apiserver", "provider": "kubernetes"}
PORT_NAME = "https"


def resource_type(store: Store, group: str, version: str, plural: str) -> ResourceType:
    rt = store.scheme.by_resource(group, version, plural)
    assert rt is not None, plural
    return rt


async def create_or_update(store: Store, rt: ResourceType, desired: Obj, fix: Callable[[Obj], Obj]) -> None:
    """Create ``desired``, or let ``fix`` bring the stored object in line (the server's own
    objects: the kubernetes Service and its endpoints, cluster-info)."""
    namespace, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
    # Look first: creating the Service again would fail on its own cluster IP (422), not 409.
    try:
        await store.get(rt, namespace, name)
    except errors.ApiError as e:
        if e.code != 404:
            raise
    else:
        await store.guaranteed_update(rt, namespace, name, fix)
        return
    try:
        await store.create(rt, namespace, desired)
    except errors.ApiError as e:
        if e.code != 409:
            raise
        await store.guaranteed_update(rt, namespace, name, fix)


async def ensure_kubernetes_service(store: Store, cluster_ip: str, address: str, port: int) -> None:
    svc_rt = resource_type(store, "", "v1", "services")
    service_port = {"name": PORT_NAME, "port": 443, "protocol": "TCP", "targetPort": port}

    def fix_service(svc: Obj) -> Obj:
        svc.setdefault("metadata", {}).setdefault("labels", {}).update(SERVICE_LABELS)
        svc.setdefault("spec", {})["ports"] = [dict(service_port)]
        if svc["spec"].get("clusterIP") != cluster_ip:
            # The range changed since it was made; Kubernetes too leaves it for an admin to fix.
            log.warning("the kubernetes Service has cluster IP %s, not %s", svc["spec"].get("clusterIP"), cluster_ip)
        return svc

    await create_or_update(store, svc_rt, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(SERVICE_LABELS)},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "ports": [dict(service_port)],
                 "sessionAffinity": "None"},
    }, fix_service)

    if ipaddress.ip_address(address).is_loopback:
        # Endpoints may not hold loopback addresses (validation refuses them, as in Kubernetes),
        # and no pod could reach the server there anyway.
        log.warning("advertise address %s is loopback: the kubernetes Service gets no endpoints", address)
        return
    ep_rt = resource_type(store, "", "v1", "endpoints")
    subsets = [{"addresses": [{"ip": address}], "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]}]

    def fix_endpoints(ep: Obj) -> Obj:
        ep["subsets"] = subsets
        return ep

    await create_or_update(store, ep_rt, {
        "apiVersion": "v1", "kind": "Endpoints",
        # Mirroring would make a second slice of what is written below.
        "metadata": {"name": NAME, "namespace": NAMESPACE,
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": subsets,
    }, fix_endpoints)

    es_rt = resource_type(store, "discovery.k8s.io", "v1", "endpointslices")
    endpoints = [{"addresses": [address], "conditions": {"ready": True}}]
    ports = [{"name": PORT_NAME, "port": port, "protocol": "TCP"}]
    address_type = "IPv6" if ":" in address else "IPv4"

    def fix_slice(es: Obj) -> Obj:
        es.update(addressType=address_type, endpoints=endpoints, ports=ports)
        return es

    await create_or_update(store, es_rt, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"kubernetes.io/service-name": NAME}},
        "addressType": address_type, "endpoints": endpoints, "ports": ports,
    }, fix_slice)
