"""Render Services and EndpointSlices into one nftables ruleset (pure: no I/O).

The shape follows kube-proxy's nftables mode, scaled down to what kube-lite supports:

* ``service-ips`` maps ``daddr . l4proto . dport`` of every ClusterIP (plus externalIPs and load
  balancer ingress IPs) to a per-service-port chain; ``service-nodeports`` maps ``l4proto . dport``
  of NodePorts to an "external" chain, only for packets addressed to one of the node's IPs.
* A service chain picks an endpoint with ``numgen random mod N`` and a verdict map to one chain
  per endpoint, which DNATs. With ``sessionAffinity: ClientIP`` every endpoint also owns a set of
  client addresses with a timeout: the endpoint chain refreshes it (``update``) and the service
  chain sends a known client back to the same endpoint before the random pick.
* Endpoints are the *ready* ones; when a service port has none, the endpoints that are
  terminating but still serving take their place (Kubernetes' ProxyTerminatingEndpoints), so a
  rollout that briefly leaves only draining pods does not refuse connections.
* Services without any such endpoints are not DNATed but rejected in filter chains (TCP reset for
  TCP, ICMP port-unreachable otherwise) so clients get "connection refused" at once instead of a
  timeout.
* Masquerade: packets are marked (``0x4000``) and masqueraded in postrouting when they come in
  through a NodePort / external IP (the reply must come back through this node), when a pod
  reaches itself through its Service (hairpin: otherwise the pod would answer itself directly),
  and, when ``cluster_cidr`` is given, when ClusterIP traffic comes from outside the pod network.

Output is deterministic: every collection is sorted, names derive from a hash of the service
port's identity, so identical inputs give byte-identical text (the applier relies on that to
skip unchanged syncs).

Besides the text, :class:`Ruleset` lists the chains, sets and maps it declares and the
(virtual IP, protocol, endpoint) triples it routes to, so the applier can remove stale objects
incrementally and flush conntrack entries of endpoints that went away, and the endpoints that
are terminating but still serving (``draining``): their flows are left alone until they stop
serving, so requests in flight on a pod that is shutting down gracefully complete.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apimachinery.api.core_v1 import Service
from apimachinery.api.discovery_v1 import EndpointSlice

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MASQUERADE_MARK = 0x4000
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds; Kubernetes' default for ClientIP affinity
TABLE_PREFIX = "kube_lite_proxy_"

ServiceLike = Service | Mapping[str, Any]
SliceLike = EndpointSlice | Mapping[str, Any]


def coerce_service(obj: ServiceLike) -> Service:
    return obj if isinstance(obj, Service) else Service.model_validate(dict(obj))


def coerce_slice(obj: SliceLike) -> EndpointSlice:
    return obj if isinstance(obj, EndpointSlice) else EndpointSlice.model_validate(dict(obj))


def is_ipv4(value: str | None) -> bool:
    if not value:
        return False
    try:
        return isinstance(ipaddress.ip_address(value), ipaddress.IPv4Address)
    except ValueError:
        return False


def table_name(suffix: str) -> str:
    """``kube_lite_proxy_<suffix>``: every table this package writes carries the prefix."""
    return TABLE_PREFIX + suffix


@dataclass(frozen=True, order=True)
class EndpointAddr:
    """One ready backend of a service port."""

    ip: str
    port: int

    def sort_key(self) -> tuple[int, int]:
        return (int(ipaddress.IPv4Address(self.ip)), self.port)


@dataclass(frozen=True)
class ServicePortInfo:
    """One (service, port) the proxy routes: everything the renderer needs, already resolved."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # lower case: tcp, udp, sctp
    port: int
    cluster_ips: tuple[str, ...]
    external_ips: tuple[str, ...]  # externalIPs and load balancer ingress IPs
    node_port: int | None
    affinity_timeout: int | None  # seconds when sessionAffinity is ClientIP
    endpoints: tuple[EndpointAddr, ...]  # ready endpoints (else the draining ones), sorted
    draining: tuple[EndpointAddr, ...] = ()  # terminating but still serving, sorted

    @property
    def id(self) -> str:
        """``ns/name/proto/port-name`` like kube-proxy's ServicePortName (``p<port>`` if unnamed)."""
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name or f'p{self.port}'}"

    @property
    def vips(self) -> tuple[str, ...]:
        return self.cluster_ips + self.external_ips


def _ready(conditions_ready: bool | None) -> bool:
    # EndpointConditions.ready: "nil should be interpreted as true" (discovery/v1 docs).
    return conditions_ready is None or conditions_ready


def _serving_terminating(cond_serving: bool | None, cond_terminating: bool | None) -> bool:
    return bool(cond_terminating) and (cond_serving is None or cond_serving)


def ipv4_slices_by_service(slices: Iterable[SliceLike]) -> dict[tuple[str, str], list[EndpointSlice]]:
    """IPv4 EndpointSlices grouped by the (namespace, name) of the Service they belong to."""
    by_service: dict[tuple[str, str], list[EndpointSlice]] = {}
    for raw_slice in slices:
        es = coerce_slice(raw_slice)
        if es.address_type and es.address_type != "IPv4":
            continue
        svc_name = (es.metadata.labels or {}).get(SERVICE_NAME_LABEL)
        if svc_name:
            by_service.setdefault((es.metadata.namespace or "", svc_name), []).append(es)
    return by_service


def service_ports(services: Iterable[ServiceLike], slices: Iterable[SliceLike]) -> list[ServicePortInfo]:
    """Resolve every proxied service port with its ready IPv4 endpoints, sorted by identity.

    Headless and ExternalName services are not proxied (DNS answers for them).
    """
    by_service = ipv4_slices_by_service(slices)

    out: list[ServicePortInfo] = []
    for raw_svc in services:
        svc = coerce_service(raw_svc)
        spec = svc.spec
        if (spec.type or "ClusterIP") == "ExternalName":
            continue
        cluster_ips = tuple(sorted({ip for ip in (spec.cluster_ips or [spec.cluster_ip or ""]) if is_ipv4(ip)}))
        if not cluster_ips:
            continue  # headless ("None") or not allocated yet
        external = {ip for ip in spec.external_ips or [] if is_ipv4(ip)}
        external |= {i.ip for i in svc.status.load_balancer.ingress or [] if i.ip and is_ipv4(i.ip)}
        with_node_ports = spec.type in ("NodePort", "LoadBalancer")
        affinity: int | None = None
        if spec.session_affinity == "ClientIP":
            cfg = spec.session_affinity_config
            timeout = cfg.client_ip.timeout_seconds if cfg and cfg.client_ip else None
            affinity = timeout or DEFAULT_AFFINITY_TIMEOUT
        ns, name = svc.metadata.namespace or "", svc.metadata.name or ""
        for sp in spec.ports or []:
            proto = (sp.protocol or "TCP").upper()
            eps: set[EndpointAddr] = set()
            draining: set[EndpointAddr] = set()
            for es in by_service.get((ns, name), []):
                for ep_port in es.ports or []:
                    if (ep_port.name or "") != (sp.name or "") or (ep_port.protocol or "TCP").upper() != proto:
                        continue
                    if ep_port.port is None:
                        continue
                    for ep in es.endpoints:
                        addrs = {EndpointAddr(a, ep_port.port) for a in ep.addresses if is_ipv4(a)}
                        if _ready(ep.conditions.ready):
                            eps |= addrs
                        elif _serving_terminating(ep.conditions.serving, ep.conditions.terminating):
                            draining |= addrs
            out.append(
                ServicePortInfo(
                    namespace=ns,
                    name=name,
                    port_name=sp.name or "",
                    protocol=proto.lower(),
                    port=sp.port,
                    cluster_ips=cluster_ips,
                    external_ips=tuple(sorted(external, key=lambda ip: int(ipaddress.IPv4Address(ip)))),
                    node_port=sp.node_port if with_node_ports and sp.node_port else None,
                    affinity_timeout=affinity,
                    endpoints=tuple(sorted(eps or draining, key=EndpointAddr.sort_key)),
                    draining=tuple(sorted(draining, key=EndpointAddr.sort_key)),
                )
            )
    out.sort(key=lambda p: (p.namespace, p.name, p.port_name, p.protocol, p.port))
    return out


def _hash(*parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return base64.b32encode(digest)[:8].decode()


def service_chain(sp: ServicePortInfo) -> str:
    return f"svc-{_hash(sp.id)}-{sp.id}"


def external_chain(sp: ServicePortInfo) -> str:
    return f"ext-{_hash(sp.id)}-{sp.id}"


def endpoint_chain(sp: ServicePortInfo, ep: EndpointAddr) -> str:
    return f"ep-{_hash(sp.id, ep.ip, str(ep.port))}-{sp.id}__{ep.ip}/{ep.port}"


def affinity_set(sp: ServicePortInfo, ep: EndpointAddr) -> str:
    # The timeout is part of the name: a changed timeout makes a new set instead of a
    # redefinition, which nftables refuses for an existing set.
    return f"aff-{_hash(sp.id, ep.ip, str(ep.port), str(sp.affinity_timeout))}"


@dataclass(frozen=True)
class Ruleset:
    """The rendered table plus the facts the applier needs about it."""

    table: str
    text: str
    chains: frozenset[str]
    sets: Mapping[str, str]  # name -> "set" or "map"
    static_sets: frozenset[str]  # sets/maps whose elements this text adds (flushed on resync)
    set_declarations: str  # the set/map declarations alone, for the applier's prologue
    # (virtual ip or "nodeport", protocol, endpoint ip, endpoint port) routed by this ruleset
    routes: frozenset[tuple[str, str, str, int]] = field(default_factory=frozenset)
    # (endpoint ip, port) of endpoints terminating but still serving: flows to them are kept
    draining: frozenset[tuple[str, int]] = field(default_factory=frozenset)


# Fixed objects of the table.
_FIXED_SETS: dict[str, str] = {
    "node-ips": "type ipv4_addr",
    "service-ips": "type ipv4_addr . inet_proto . inet_service : verdict",
    "service-nodeports": "type inet_proto . inet_service : verdict",
    "no-endpoint-services": "type ipv4_addr . inet_proto . inet_service : verdict",
    "no-endpoint-nodeports": "type inet_proto . inet_service : verdict",
}


def render(
    services: Iterable[ServiceLike],
    slices: Iterable[SliceLike],
    *,
    table: str,
    node_ips: Iterable[str] = (),
    cluster_cidr: str | None = None,
) -> Ruleset:
    """The whole ``table ip <table>`` for these objects; see the module docstring."""
    if not table.startswith(TABLE_PREFIX):
        raise ValueError(f"table name must start with {TABLE_PREFIX!r}: {table!r}")
    ports = service_ports(services, slices)
    nodes = sorted({ip for ip in node_ips if is_ipv4(ip)}, key=lambda ip: int(ipaddress.IPv4Address(ip)))
    if cluster_cidr is not None:
        cluster_cidr = str(ipaddress.IPv4Network(cluster_cidr, strict=False))

    elements: dict[str, list[str]] = {name: [] for name in _FIXED_SETS}
    elements["node-ips"] = list(nodes)
    affinity_sets: dict[str, int] = {}
    chains: dict[str, list[str]] = {}
    routes: set[tuple[str, str, str, int]] = set()
    draining: set[tuple[str, int]] = set()

    chains["nat-prerouting"] = ["type nat hook prerouting priority dstnat; policy accept;", "jump services"]
    chains["nat-output"] = ["type nat hook output priority -100; policy accept;", "jump services"]
    chains["nat-postrouting"] = ["type nat hook postrouting priority srcnat; policy accept;", "jump masquerading"]
    # Filter chains run after DNAT, so only packets to services without endpoints still carry
    # a service address here. Incoming packets are refused in prerouting, before the routing
    # decision: a node without a route to the service range would otherwise answer "network
    # unreachable" instead of refusing the connection.
    chains["filter-prerouting"] = [
        "type filter hook prerouting priority dstnat + 10; policy accept;",
        "ct state new jump reject-no-endpoints",
    ]
    chains["filter-output"] = [
        "type filter hook output priority -10; policy accept;",
        "ct state new jump reject-no-endpoints",
    ]
    chains["reject-no-endpoints"] = [
        "ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        "ip daddr @node-ips meta l4proto . th dport vmap @no-endpoint-nodeports",
    ]
    chains["reject-chain"] = ["meta l4proto tcp reject with tcp reset", "reject with icmp type port-unreachable"]
    chains["services"] = [
        "ip daddr . meta l4proto . th dport vmap @service-ips",
        "ip daddr @node-ips meta l4proto . th dport vmap @service-nodeports",
    ]
    chains["mark-for-masquerade"] = [f"meta mark set meta mark | {MASQUERADE_MARK:#x}"]
    chains["masquerading"] = [
        f"meta mark & {MASQUERADE_MARK:#x} == 0 return",
        f"meta mark set meta mark ^ {MASQUERADE_MARK:#x}",
        "masquerade fully-random",
    ]

    for sp in ports:
        proto, port = sp.protocol, sp.port
        draining.update((ep.ip, ep.port) for ep in sp.draining)
        if not sp.endpoints:
            for vip in sp.vips:
                elements["no-endpoint-services"].append(f"{vip} . {proto} . {port} : goto reject-chain")
            if sp.node_port:
                elements["no-endpoint-nodeports"].append(f"{proto} . {sp.node_port} : goto reject-chain")
            continue
        svc = service_chain(sp)
        for vip in sp.cluster_ips:
            elements["service-ips"].append(f"{vip} . {proto} . {port} : goto {svc}")
        needs_external = bool(sp.external_ips or sp.node_port)
        if needs_external:
            ext = external_chain(sp)
            chains[ext] = ["jump mark-for-masquerade", f"goto {svc}"]
            for vip in sp.external_ips:
                elements["service-ips"].append(f"{vip} . {proto} . {port} : goto {ext}")
            if sp.node_port:
                elements["service-nodeports"].append(f"{proto} . {sp.node_port} : goto {ext}")

        rules: list[str] = []
        if cluster_cidr is not None:
            for vip in sp.cluster_ips:
                rules.append(
                    f"ip daddr {vip} {proto} dport {port} ip saddr != {cluster_cidr} jump mark-for-masquerade"
                )
        ep_chains = [endpoint_chain(sp, ep) for ep in sp.endpoints]
        if sp.affinity_timeout is not None:
            for ep, ep_chain in zip(sp.endpoints, ep_chains, strict=True):
                aff = affinity_set(sp, ep)
                affinity_sets[aff] = sp.affinity_timeout
                rules.append(f"ip saddr @{aff} goto {ep_chain}")
        picks = ", ".join(f"{i} : goto {c}" for i, c in enumerate(ep_chains))
        rules.append(f"numgen random mod {len(ep_chains)} vmap {{ {picks} }}")
        chains[svc] = rules

        for ep, ep_chain in zip(sp.endpoints, ep_chains, strict=True):
            ep_rules = [f"ip saddr {ep.ip} jump mark-for-masquerade"]  # hairpin
            if sp.affinity_timeout is not None:
                ep_rules.append(f"update @{affinity_set(sp, ep)} {{ ip saddr }}")
            ep_rules.append(f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}")
            chains[ep_chain] = ep_rules
            for vip in sp.vips:
                routes.add((vip, proto, ep.ip, ep.port))
            if sp.node_port:
                routes.add(("nodeport", proto, ep.ip, ep.port))

    decl_lines: list[str] = []
    sets: dict[str, str] = {}
    for name in sorted(_FIXED_SETS):
        kind = "map" if ":" in _FIXED_SETS[name] else "set"
        sets[name] = kind
        decl_lines.append(f"\t{kind} {name} {{\n\t\t{_FIXED_SETS[name]}\n\t}}")
    for name in sorted(affinity_sets):
        sets[name] = "set"
        decl_lines.append(
            f"\tset {name} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n"
            f"\t\ttimeout {affinity_sets[name]}s\n\t}}"
        )
    declarations = f"table ip {table} {{\n" + "\n".join(decl_lines) + "\n}\n"

    chain_blocks = []
    for name in sorted(chains):
        body = "".join(f"\t\t{rule}\n" for rule in chains[name])
        chain_blocks.append(f"\tchain {name} {{\n{body}\t}}")
    text = declarations + f"table ip {table} {{\n" + "\n".join(chain_blocks) + "\n}\n"
    static = set()
    for name in sorted(elements):
        items = sorted(set(elements[name]))
        if not items:
            continue
        static.add(name)
        body = ",\n".join(f"\t{item}" for item in items)
        text += f"add element ip {table} {name} {{\n{body}\n}}\n"

    return Ruleset(
        table=table,
        text=text,
        chains=frozenset(chains),
        sets=sets,
        static_sets=frozenset(static),
        set_declarations=declarations,
        routes=frozenset(routes),
        draining=frozenset(draining),
    )
