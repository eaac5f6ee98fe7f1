"""The Endpoints controller: one ``Endpoints`` object per Service with a selector, same name.

Each pod the selector picks that has an IP is an address: under ``addresses`` when it is Ready
(or the Service publishes not-ready addresses), under ``notReadyAddresses`` otherwise.
Terminating pods are left out unless the Service publishes not-ready addresses. A Service
port whose ``targetPort`` names a container port is resolved per pod, so pods that disagree on
the number end up in different subsets, and a pod without that port is left out of that port.
Addresses with the same port set share a subset (Kubernetes' ``RepackSubsets``).

Services without a selector are left alone (their Endpoints are the user's). When a Service is
deleted its Endpoints go too.

The pod-selection helpers here are shared with :mod:`controlplane.controllers.endpointslice`,
which derives EndpointSlices from the same inputs.
"""

from __future__ import annotations

from collections.abc import Iterable

from apimachinery.api.core_v1 import (
    EndpointAddress,
    EndpointPort,
    Endpoints,
    EndpointSubset,
    ObjectReference,
    Pod,
    Service,
    ServicePort,
)
from apimachinery.client.informer import NAMESPACE_INDEX, Informer
from apimachinery.controller.runtime import DONE, Controller, Result
from apimachinery.errors import ApiError
from apimachinery.meta import ObjectMeta
from apimachinery.selectors.labels import selector_from_set
from controlplane.controllers.context import ControllerContext

# Kubernetes marks the Endpoints (and slices) of headless services with this label.
HEADLESS_LABEL = "service.kubernetes.io/headless"


# ---------------------------------------------------------------------------------------------
# Helpers shared with the EndpointSlice controller


def split_key(key: str) -> tuple[str, str]:
    ns, _, name = key.partition("/")
    return ns, name


def is_pod_ready(pod: Pod) -> bool:
    """Kubernetes' IsPodReady: the pod's Ready condition is True."""
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def pod_ip(pod: Pod) -> str:
    if pod.status.pod_ip:
        return pod.status.pod_ip
    ips = pod.status.pod_ips or []
    return ips[0].ip if ips else ""


def should_pod_be_in_endpoints(pod: Pod, include_terminating: bool) -> bool:
    """Kubernetes' ShouldPodBeInEndpoints: an IP, not terminating (unless asked), and not a pod
    that has finished for good (its restart policy will not bring it back)."""
    if not pod_ip(pod):
        return False
    if not include_terminating and pod.metadata.deletion_timestamp:
        return False
    policy = pod.spec.restart_policy or "Always"
    phase = pod.status.phase
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def is_headless(svc: Service) -> bool:
    return svc.spec.cluster_ip == "None"


def service_pods(pods: Informer[Pod], svc: Service) -> list[Pod]:
    """The pods of the Service's namespace its (non-empty) selector matches."""
    if not svc.spec.selector:
        return []
    sel = selector_from_set(svc.spec.selector)
    return [p for p in pods.by_index(NAMESPACE_INDEX, svc.metadata.namespace or "") if sel.matches(p.metadata.labels)]


def services_for_pod(services: Informer[Service], pod: Pod) -> list[str]:
    """Keys of the Services in the pod's namespace whose selector matches it."""
    keys = []
    for svc in services.by_index(NAMESPACE_INDEX, pod.metadata.namespace or ""):
        if svc.spec.selector and selector_from_set(svc.spec.selector).matches(pod.metadata.labels):
            keys.append(svc.key)
    return keys


def resolve_target_port(pod: Pod, port: ServicePort) -> int | None:
    """Kubernetes' FindPort: a number is used as is; a name is looked up among the pod's
    container ports with the same protocol (None when the pod has no such port)."""
    target = port.target_port
    if target is None or target == "" or target == 0:
        return port.port
    if isinstance(target, int):
        return target
    if target.isdigit():
        return int(target)
    protocol = port.protocol or "TCP"
    for c in pod.spec.containers:
        for cp in c.ports or []:
            if cp.name == target and (cp.protocol or "TCP") == protocol:
                return cp.container_port
    return None


def pod_reference(pod: Pod) -> ObjectReference:
    return ObjectReference(
        kind="Pod", namespace=pod.metadata.namespace, name=pod.metadata.name, uid=pod.metadata.uid
    )


def endpoint_hostname(pod: Pod, svc: Service) -> str | None:
    """A pod's hostname is published when its subdomain names this Service (headless DNS)."""
    if pod.spec.hostname and pod.spec.subdomain == svc.metadata.name:
        return pod.spec.hostname
    return None


def endpoint_labels(svc: Service) -> dict[str, str]:
    labels = dict(svc.metadata.labels or {})
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


# ---------------------------------------------------------------------------------------------
# Endpoints


def desired_subsets(svc: Service, pods: Iterable[Pod]) -> list[EndpointSubset]:
    """The subsets for ``svc``: addresses grouped by the exact set of ports they serve."""
    publish = bool(svc.spec.publish_not_ready_addresses)
    # port set -> (ready addresses, not-ready addresses)
    groups: dict[tuple[tuple[str, int, str], ...], tuple[list[EndpointAddress], list[EndpointAddress]]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=publish):
            continue
        addr = EndpointAddress(
            ip=pod_ip(pod), hostname=endpoint_hostname(pod, svc),
            node_name=pod.spec.node_name or None, target_ref=pod_reference(pod),
        )
        ports: list[tuple[str, int, str]] = []
        if not svc.spec.ports:
            # Only a headless service without ports publishes bare addresses.
            if not is_headless(svc):
                continue
        else:
            for sp in svc.spec.ports:
                number = resolve_target_port(pod, sp)
                if number is not None:
                    ports.append((sp.name or "", number, sp.protocol or "TCP"))
            if not ports:
                continue
        key = tuple(sorted(ports))
        ready, not_ready = groups.setdefault(key, ([], []))
        (ready if publish or is_pod_ready(pod) else not_ready).append(addr)
    subsets = []
    for key in sorted(groups):
        ready, not_ready = groups[key]
        subsets.append(EndpointSubset(
            addresses=sorted(ready, key=_addr_order) or None,
            not_ready_addresses=sorted(not_ready, key=_addr_order) or None,
            ports=[EndpointPort(name=name or None, port=number, protocol=proto) for name, number, proto in key] or None,
        ))
    return subsets


def _addr_order(a: EndpointAddress) -> tuple[str, str]:
    return (a.ip, a.target_ref.name or "" if a.target_ref else "")


class EndpointsReconciler:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.services = ctx.informers.for_model(Service)
        self.pods = ctx.informers.for_model(Pod)
        self.endpoints = ctx.informers.for_model(Endpoints)
        self.api = ctx.client.typed(Endpoints)

    async def reconcile(self, key: str) -> Result:
        ns, name = split_key(key)
        svc = self.services.get(key)
        current = self.endpoints.get(key)
        if svc is None:
            if current is not None:
                try:
                    await self.api.delete(name, ns)
                except ApiError as e:
                    if e.code != 404:
                        raise
            return DONE
        if not svc.spec.selector:
            return DONE
        subsets = desired_subsets(svc, service_pods(self.pods, svc)) or None
        labels = endpoint_labels(svc) or None
        if current is None:
            ep = Endpoints(metadata=ObjectMeta(name=name, namespace=ns, labels=labels), subsets=subsets)
            # A 409 (it exists but our cache has not seen it yet) is retried quietly.
            await self.api.create(ep)
            return DONE
        if _dump(current.subsets) == _dump(subsets) and (current.metadata.labels or None) == labels:
            return DONE
        new = current.copy_deep()
        new.subsets = subsets
        new.metadata.labels = labels
        await self.api.update(new)
        return DONE


def _dump(subsets: list[EndpointSubset] | None) -> list[dict[str, object]]:
    return [s.to_dict() for s in subsets or []]


def new_controller(ctx: ControllerContext) -> Controller:
    r = EndpointsReconciler(ctx)
    c = Controller("endpoints", r, workers=ctx.config.workers)
    c.watch(r.services)
    c.watch(r.pods, map_keys=lambda pod: services_for_pod(r.services, pod))

    def endpoints_keys(ep: Endpoints) -> list[str]:
        # Only Endpoints of Services we manage: re-create ours if deleted, undo edits; never
        # touch Endpoints of selector-less Services, nor orphans nobody asked about.
        svc = r.services.get(ep.key)
        return [ep.key] if svc is not None and svc.spec.selector else []

    c.watch(r.endpoints, map_keys=endpoints_keys)
    return c
