"""Cluster DNS names -> records, built from Services and EndpointSlices (pure: no I/O).

What the index answers (Kubernetes' DNS specification for Services, IPv4 only):

* ``<svc>.<ns>.svc.<domain>`` A: the ClusterIP(s); for a headless Service one A per ready
  endpoint address (all not-ready ones too when ``publishNotReadyAddresses``, which the
  EndpointSlice controller already reflects in ``ready``).
* ``<host>.<svc>.<ns>.svc.<domain>`` A for each headless endpoint: ``host`` is the endpoint's
  ``hostname`` or its address with dashes (``10-1-0-2``).
* ``_<port>._<proto>.<svc>.<ns>.svc.<domain>`` SRV for each *named* port: for a ClusterIP Service
  one record pointing at the service name, for a headless Service one per endpoint.
* ``<svc>.<ns>.svc.<domain>`` CNAME for ExternalName Services.
* ``<a-b-c-d>.<ns>.pod.<domain>`` A ``a.b.c.d`` (the pod records every cluster DNS serves).

Names inside the zone that hold no record of the asked type but exist (``<ns>.svc.<domain>``, a
Service asked for AAAA) answer NOERROR with no data; other names in the zone are NXDOMAIN.

:func:`resolv_conf` renders the resolv.conf a pod gets for its ``dnsPolicy``: the search-path
expansion itself is the client resolver's job.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from apimachinery.api.core_v1 import PodDNSConfig
from nodeagent.proxy.rules import (
    ServiceLike,
    SliceLike,
    coerce_service,
    ipv4_slices_by_service,
    is_ipv4,
)

DEFAULT_CLUSTER_DOMAIN = "cluster.local"
SOA_TTL = 30  # seconds; also the negative-caching TTL (SOA minimum)
RECORD_TTL = 30


@dataclass(frozen=True, order=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str


@dataclass
class NameRecords:
    """Everything held at one name."""

    a: list[str] = field(default_factory=list)
    srv: list[SrvRecord] = field(default_factory=list)
    cname: str | None = None


@dataclass(frozen=True)
class Answer:
    """What a lookup found: ``rcode`` 0 (NOERROR), 3 (NXDOMAIN) or 5 (REFUSED)."""

    rcode: int
    a: tuple[str, ...] = ()
    srv: tuple[SrvRecord, ...] = ()
    cname: str | None = None
    authoritative: bool = True


NOERROR, NXDOMAIN, REFUSED = 0, 3, 5


def normalize(name: str) -> str:
    return name.lower().rstrip(".")


def _dashed(ip: str) -> str:
    return ip.replace(".", "-")


class RecordIndex:
    """An immutable name -> records index for one cluster domain."""

    def __init__(self, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> None:
        self.zone = normalize(cluster_domain)
        self.names: dict[str, NameRecords] = {}
        self._existing: set[str] = {self.zone, f"svc.{self.zone}", f"pod.{self.zone}"}

    def _at(self, name: str) -> NameRecords:
        name = normalize(name)
        # Every ancestor inside the zone exists (an empty non-terminal answers NOERROR/NODATA).
        labels = name.split(".")
        for i in range(len(labels)):
            self._existing.add(".".join(labels[i:]))
        return self.names.setdefault(name, NameRecords())

    def in_zone(self, name: str) -> bool:
        name = normalize(name)
        return name == self.zone or name.endswith("." + self.zone)

    def lookup(self, name: str) -> Answer:
        """All records at ``name`` (the server picks by query type)."""
        name = normalize(name)
        if not self.in_zone(name):
            return Answer(REFUSED, authoritative=False)
        rec = self.names.get(name)
        if rec is not None:
            return Answer(NOERROR, tuple(rec.a), tuple(rec.srv), rec.cname)
        pod_ip = self._pod_ip(name)
        if pod_ip is not None:
            return Answer(NOERROR, (pod_ip,))
        return Answer(NOERROR if name in self._existing else NXDOMAIN)

    def _pod_ip(self, name: str) -> str | None:
        suffix = f".pod.{self.zone}"
        if not name.endswith(suffix):
            return None
        parts = name[: -len(suffix)].split(".")
        if len(parts) != 2:
            return None
        candidate = parts[0].replace("-", ".")
        return candidate if is_ipv4(candidate) else None


def build_index(
    services: Iterable[ServiceLike],
    slices: Iterable[SliceLike],
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
) -> RecordIndex:
    """The index for these objects; records are sorted so equal inputs give equal answers."""
    index = RecordIndex(cluster_domain)
    by_service = ipv4_slices_by_service(slices)

    for raw_svc in services:
        svc = coerce_service(raw_svc)
        ns, name = svc.metadata.namespace or "", svc.metadata.name or ""
        base = f"{name}.{ns}.svc.{index.zone}"
        spec = svc.spec
        index._existing.add(f"{ns}.svc.{index.zone}")
        if spec.type == "ExternalName":
            if spec.external_name:
                index._at(base).cname = normalize(spec.external_name)
            continue
        cluster_ips = sorted(ip for ip in (spec.cluster_ips or [spec.cluster_ip or ""]) if is_ipv4(ip))
        headless = spec.cluster_ip == "None"
        if not headless and not cluster_ips:
            continue  # no address allocated: nothing to answer yet
        at = index._at(base)
        if not headless:
            at.a = cluster_ips
            for sp in spec.ports or []:
                if sp.name:
                    proto = (sp.protocol or "TCP").lower()
                    srv = SrvRecord(0, 100, sp.port, base)
                    index._at(f"_{sp.name}._{proto}.{base}").srv.append(srv)
            continue

        # Headless: records come from the ready endpoints.
        hosts: dict[str, str] = {}  # ip -> host label
        ports: dict[tuple[str, str], set[int]] = {}  # (port name, proto) -> endpoint ports
        for es in by_service.get((ns, name), []):
            ready = [
                ep for ep in es.endpoints if ep.conditions.ready is None or ep.conditions.ready
            ]
            for ep in ready:
                for addr in ep.addresses:
                    if is_ipv4(addr):
                        hosts.setdefault(addr, ep.hostname or _dashed(addr))
            if ready:
                for p in es.ports or []:
                    if p.name and p.port is not None:
                        ports.setdefault((p.name, (p.protocol or "TCP").lower()), set()).add(p.port)
        ips = sorted(hosts, key=lambda ip: int(ipaddress.IPv4Address(ip)))
        at.a = ips
        for ip in ips:
            index._at(f"{hosts[ip]}.{base}").a.append(ip)
        for (port_name, proto), numbers in sorted(ports.items()):
            srv_name = f"_{port_name}._{proto}.{base}"
            for number in sorted(numbers):
                for ip in ips:
                    index._at(srv_name).srv.append(SrvRecord(0, 100, number, f"{hosts[ip]}.{base}"))
    for rec in index.names.values():
        rec.a = sorted(set(rec.a), key=lambda ip: int(ipaddress.IPv4Address(ip)))
        rec.srv = sorted(set(rec.srv))
    return index


def resolv_conf(
    namespace: str,
    dns_ip: str,
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
    policy: str | None = "ClusterFirst",
    *,
    host_network: bool = False,
    dns_config: PodDNSConfig | Mapping[str, Any] | None = None,
    host_resolv_conf: str | None = None,
) -> str:
    """A pod's /etc/resolv.conf for its ``dnsPolicy`` (``None``/empty means ClusterFirst).

    ClusterFirst: the cluster DNS with the namespace's search path and ``ndots:5``; a hostNetwork
    pod with ClusterFirst gets the node's (Kubernetes' rule), ClusterFirstWithHostNet always gets
    the cluster's. Default: the node's resolv.conf (``host_resolv_conf`` text, else the file).
    None: only what ``dnsConfig`` says. ``dnsConfig`` is merged into every policy.
    """
    policy = policy or "ClusterFirst"
    if policy == "ClusterFirst" and host_network:
        policy = "Default"
    nameservers: list[str] = []
    searches: list[str] = []
    options: dict[str, str | None] = {}
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet"):
        domain = normalize(cluster_domain)
        nameservers = [dns_ip]
        searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]
        options = {"ndots": "5"}
    elif policy == "Default":
        if host_resolv_conf is None:
            try:
                with open("/etc/resolv.conf", encoding="utf-8") as f:
                    host_resolv_conf = f.read()
            except OSError:
                host_resolv_conf = ""
        for line in host_resolv_conf.splitlines():
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "nameserver" and len(words) > 1:
                nameservers.append(words[1])
            elif words[0] in ("search", "domain"):
                searches = words[1:]
            elif words[0] == "options":
                for opt in words[1:]:
                    key, _, value = opt.partition(":")
                    options[key] = value or None
    elif policy != "None":
        raise ValueError(f"unknown dnsPolicy {policy!r}")

    if dns_config is not None:
        cfg = dns_config if isinstance(dns_config, PodDNSConfig) else PodDNSConfig.model_validate(dict(dns_config))
        nameservers += [n for n in cfg.nameservers or [] if n not in nameservers]
        searches += [s for s in cfg.searches or [] if s not in searches]
        for o in cfg.options or []:
            if o.name:
                options[o.name] = o.value
    # glibc reads at most 3 nameservers and 6 search domains (Kubernetes enforces the same limits).
    lines = [f"nameserver {n}" for n in nameservers[:3]]
    if searches:
        lines.append("search " + " ".join(searches[:6]))
    if options:
        lines.append("options " + " ".join(k if v is None else f"{k}:{v}" for k, v in options.items()))
    return "\n".join(lines) + "\n"
