"""The EndpointSlice controller: discovery.k8s.io/v1 slices for every Service with a selector.

Endpoints are grouped by their resolved port set (a named ``targetPort`` can map to different
numbers on different pods) and each group is cut into slices of at most
:data:`MAX_ENDPOINTS_PER_SLICE`, as Kubernetes does. A slice carries the labels
``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by``, and a controller
ownerReference to its Service, so the garbage collector removes it with the Service; this
controller also deletes the slices of a Service it no longer sees, so nothing depends on the
GC being enabled.

Unlike Endpoints, slices keep terminating pods, with ``ready: false, terminating: true`` and
``serving`` telling whether the pod still passes its readiness check. A Service whose selector
matches nothing gets one empty placeholder slice, as in Kubernetes.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable

from apimachinery.api.core_v1 import Pod, Service
from apimachinery.api.discovery_v1 import Endpoint, EndpointConditions, EndpointPort, EndpointSlice
from apimachinery.client.informer import NAMESPACE_INDEX
from apimachinery.controller.runtime import DONE, Controller, Result, requeue_after
from apimachinery.errors import ApiError
from apimachinery.meta import ObjectMeta, OwnerReference
from controlplane.controllers.context import ControllerContext
from controlplane.controllers.endpoints import (
    endpoint_hostname,
    endpoint_labels,
    is_pod_ready,
    pod_ip,
    pod_reference,
    resolve_target_port,
    service_pods,
    services_for_pod,
    should_pod_be_in_endpoints,
    split_key,
)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
# How long a slice we created may stay invisible in our cache before we stop waiting for it.
CREATE_VISIBLE_TIMEOUT = 30.0

PortKey = tuple[tuple[str, int, str, str], ...]


def slice_ports(key: PortKey) -> list[EndpointPort]:
    # Kubernetes always sets the name (possibly ""), so it is always on the wire.
    return [EndpointPort(name=name, port=number, protocol=proto, app_protocol=app or None)
            for name, number, proto, app in key]


def desired_endpoints(svc: Service, pods: Iterable[Pod]) -> dict[PortKey, list[Endpoint]]:
    """Endpoints per resolved port set, each list sorted (so the result is stable)."""
    publish = bool(svc.spec.publish_not_ready_addresses)
    groups: dict[PortKey, list[Endpoint]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=True) or not _is_ipv4(pod_ip(pod)):
            # Only IPv4 slices are made (kube-lite's pod network is IPv4).
            continue
        ports: list[tuple[str, int, str, str]] = []
        skip = False
        for sp in svc.spec.ports or []:
            number = resolve_target_port(pod, sp)
            if number is None:
                # Kubernetes leaves a pod out of the slices when a port cannot be resolved for it.
                skip = True
                break
            ports.append((sp.name or "", number, sp.protocol or "TCP", sp.app_protocol or ""))
        if skip:
            continue
        serving = is_pod_ready(pod)
        terminating = pod.metadata.deletion_timestamp is not None
        ep = Endpoint(
            addresses=[pod_ip(pod)],
            conditions=EndpointConditions(
                ready=publish or (serving and not terminating), serving=serving, terminating=terminating,
            ),
            hostname=endpoint_hostname(pod, svc),
            target_ref=pod_reference(pod),
            node_name=pod.spec.node_name or None,
        )
        groups.setdefault(tuple(sorted(ports)), []).append(ep)
    for eps in groups.values():
        eps.sort(key=lambda e: (e.addresses[0], e.target_ref.name or "" if e.target_ref else ""))
    return groups


def _is_ipv4(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).version == 4
    except ValueError:
        return False


def owner_ref(svc: Service) -> OwnerReference:
    return OwnerReference(
        api_version="v1", kind="Service", name=svc.metadata.name or "", uid=svc.metadata.uid or "",
        controller=True, block_owner_deletion=True,
    )


def _is_ours(es: EndpointSlice) -> bool:
    return (es.metadata.labels or {}).get(MANAGED_BY_LABEL) == CONTROLLER_NAME


def _slice_port_key(es: EndpointSlice) -> PortKey:
    return tuple(sorted((p.name or "", p.port or 0, p.protocol or "TCP", p.app_protocol or "") for p in es.ports or []))


class EndpointSliceReconciler:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.services = ctx.informers.for_model(Service)
        self.pods = ctx.informers.for_model(Pod)
        self.slices = ctx.informers.for_model(EndpointSlice)
        self.api = ctx.client.typed(EndpointSlice)
        # service key -> {slice name: monotonic time created}: slices we created that the cache
        # has not shown yet. Reconciling before they show up would create duplicates (their
        # names are generated), so we wait for them (Kubernetes' endpointSliceTracker).
        self._created: dict[str, dict[str, float]] = {}

    def _waiting_for_creates(self, key: str, ns: str) -> bool:
        pending = self._created.get(key)
        if not pending:
            return False
        now = time.monotonic()
        for slice_name, at in list(pending.items()):
            if self.slices.get(f"{ns}/{slice_name}") is not None or now - at > CREATE_VISIBLE_TIMEOUT:
                del pending[slice_name]
        if not pending:
            del self._created[key]
            return False
        return True

    def _owned_slices(self, ns: str, name: str) -> list[EndpointSlice]:
        return [
            es for es in self.slices.by_index(NAMESPACE_INDEX, ns)
            if _is_ours(es) and (es.metadata.labels or {}).get(SERVICE_NAME_LABEL) == name
        ]

    async def _delete(self, es: EndpointSlice) -> None:
        try:
            await self.api.delete(es.metadata.name or "", es.metadata.namespace)
        except ApiError as e:
            if e.code != 404:
                raise

    async def reconcile(self, key: str) -> Result:
        ns, name = split_key(key)
        if self._waiting_for_creates(key, ns):
            return requeue_after(0.2)
        svc = self.services.get(key)
        existing = self._owned_slices(ns, name)
        if svc is None or not svc.spec.selector:
            # Service gone (or no longer selecting): its slices go. A selector-less Service's
            # slices that someone else manages are never ours to touch.
            for es in existing:
                await self._delete(es)
            return DONE
        # Slices of an earlier Service with the same name are stale.
        stale = [es for es in existing if not any(r.uid == svc.metadata.uid for r in es.metadata.owner_references or [])]
        current = [es for es in existing if es not in stale]
        for es in stale:
            await self._delete(es)

        groups = desired_endpoints(svc, service_pods(self.pods, svc))
        if not groups:
            # A placeholder: consumers can tell "no endpoints" from "not processed yet".
            groups = {(): []}
        labels = {**endpoint_labels(svc), SERVICE_NAME_LABEL: name, MANAGED_BY_LABEL: CONTROLLER_NAME}
        by_ports: dict[PortKey, list[EndpointSlice]] = {}
        for es in sorted(current, key=lambda s: s.metadata.name or ""):
            by_ports.setdefault(_slice_port_key(es), []).append(es)
        leftovers: list[EndpointSlice] = []
        for pk in list(by_ports):
            if pk not in groups:
                leftovers.extend(by_ports.pop(pk))

        for pk, eps in sorted(groups.items()):
            chunks = [eps[i:i + MAX_ENDPOINTS_PER_SLICE] for i in range(0, len(eps), MAX_ENDPOINTS_PER_SLICE)] or [[]]
            reuse = by_ports.get(pk, [])
            for i, chunk in enumerate(chunks):
                if i < len(reuse):
                    await self._update(reuse[i], svc, chunk, labels)
                elif leftovers:
                    # Recycle a slice whose ports no longer exist rather than delete + create.
                    await self._update(leftovers.pop(0), svc, chunk, labels, ports=pk)
                else:
                    created = await self.api.create(EndpointSlice(
                        metadata=ObjectMeta(
                            generate_name=f"{name}-", namespace=ns, labels=labels, owner_references=[owner_ref(svc)],
                        ),
                        address_type="IPv4", endpoints=chunk, ports=slice_ports(pk),
                    ))
                    self._created.setdefault(key, {})[created.metadata.name or ""] = time.monotonic()
            leftovers.extend(reuse[len(chunks):])
        for es in leftovers:
            await self._delete(es)
        return DONE

    async def _update(
        self, es: EndpointSlice, svc: Service, endpoints: list[Endpoint], labels: dict[str, str],
        ports: PortKey | None = None,
    ) -> None:
        new = es.copy_deep()
        new.endpoints = endpoints
        if ports is not None:
            new.ports = slice_ports(ports)
        new.metadata.labels = labels
        new.metadata.owner_references = [owner_ref(svc)]
        if new.to_dict() == es.to_dict():
            return
        await self.api.update(new)


def new_controller(ctx: ControllerContext) -> Controller:
    r = EndpointSliceReconciler(ctx)
    c = Controller("endpointslice", r, workers=ctx.config.workers)
    c.watch(r.services)
    c.watch(r.pods, map_keys=lambda pod: services_for_pod(r.services, pod))

    def slice_keys(es: EndpointSlice) -> list[str]:
        name = (es.metadata.labels or {}).get(SERVICE_NAME_LABEL)
        return [f"{es.metadata.namespace}/{name}"] if name and _is_ours(es) else []

    c.watch(r.slices, map_keys=slice_keys)
    return c
