"""The rendered nftables ruleset and the applier's transactions (no kernel involved)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from apimachinery.api.core_v1 import Service
from apimachinery.api.discovery_v1 import EndpointSlice
from nodeagent.proxy.apply import conntrack_commands, full_transaction, incremental_transaction
from nodeagent.proxy.proxier import LatencyStats
from nodeagent.proxy.rules import render, service_ports

T = "kube_lite_proxy_u"


def svc(name: str, ip: str, ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": ports, **spec}}


def eps(name: str, ips: list[str], port: int = 8080, *, port_name: str = "http",
        ready: bool | None = True, proto: str = "TCP") -> dict[str, Any]:
    cond = {} if ready is None else {"ready": ready}
    return {
        "metadata": {"name": f"{name}-{port}", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": cond} for ip in ips],
        "ports": [{"name": port_name, "port": port, "protocol": proto}],
    }


HTTP = [{"name": "http", "port": 80, "protocol": "TCP"}]


def chain(text: str, prefix: str) -> list[str]:
    """The rules of the one chain whose name starts with ``prefix``."""
    found = re.findall(rf"\tchain ({re.escape(prefix)}\S*) {{\n(.*?)\t}}", text, re.S)
    assert len(found) == 1, (prefix, [f[0] for f in found])
    return [line.strip() for line in found[0][1].splitlines()]


def elements(text: str, name: str) -> list[str]:
    m = re.search(rf"add element ip {T} {name} {{\n(.*?)\n}}", text, re.S)
    return [] if m is None else [e.strip().rstrip(",") for e in m.group(1).splitlines()]


def test_cluster_ip_load_balances_over_ready_endpoints() -> None:
    rs = render([svc("web", "10.96.0.10", HTTP)],
                [eps("web", ["10.1.0.3", "10.1.0.2"]), eps("web", ["10.1.0.9"], ready=False)], table=T)
    (element,) = elements(rs.text, "service-ips")
    assert element.startswith("10.96.0.10 . tcp . 80 : goto svc-") and element.endswith("-default/web/tcp/http")
    rules = chain(rs.text, "svc-")
    assert len(rules) == 1 and rules[0].startswith("numgen random mod 2 vmap { 0 : goto ep-")
    # Endpoints in address order, the not-ready one left out.
    assert rules[0].index("10.1.0.2/8080") < rules[0].index("10.1.0.3/8080")
    assert "10.1.0.9" not in rs.text
    dnats = [r.strip() for r in rs.text.splitlines() if "dnat to" in r]
    assert sorted(dnats) == ["meta l4proto tcp dnat to 10.1.0.2:8080", "meta l4proto tcp dnat to 10.1.0.3:8080"]
    # Hairpin: an endpoint reaching its own service is masqueraded.
    assert "ip saddr 10.1.0.2 jump mark-for-masquerade" in rs.text
    assert rs.routes == {("10.96.0.10", "tcp", "10.1.0.2", 8080), ("10.96.0.10", "tcp", "10.1.0.3", 8080)}
    assert elements(rs.text, "no-endpoint-services") == []


def test_unset_ready_counts_as_ready_and_ports_match_by_name_and_protocol() -> None:
    ports = [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]
    sps = service_ports(
        [svc("dns", "10.96.0.10", ports)],
        [eps("dns", ["10.1.0.5"], 5353, port_name="dns", proto="UDP", ready=None),
         eps("dns", ["10.1.0.6"], 5354, port_name="dns-tcp")],
    )
    assert [(p.protocol, p.port, [(e.ip, e.port) for e in p.endpoints]) for p in sps] == [
        ("udp", 53, [("10.1.0.5", 5353)]),
        ("tcp", 53, [("10.1.0.6", 5354)]),
    ]


def test_no_endpoints_rejected() -> None:
    rs = render([svc("empty", "10.96.0.11", [{**HTTP[0], "nodePort": 30001}], type="NodePort",
                     externalIPs=["192.0.2.7"])],
                [eps("empty", ["10.1.0.2"], ready=False)], table=T, node_ips=["192.168.0.5"])
    assert elements(rs.text, "no-endpoint-services") == [
        "10.96.0.11 . tcp . 80 : goto reject-chain",
        "192.0.2.7 . tcp . 80 : goto reject-chain",
    ]
    assert elements(rs.text, "no-endpoint-nodeports") == ["tcp . 30001 : goto reject-chain"]
    assert elements(rs.text, "service-ips") == [] and "svc-" not in rs.text
    assert chain(rs.text, "reject-chain") == [
        "meta l4proto tcp reject with tcp reset",
        "reject with icmp type port-unreachable",
    ]
    assert "ct state new jump reject-no-endpoints" in chain(rs.text, "filter-output")


def test_node_port_external_ips_and_masquerade() -> None:
    lb = svc("lb", "10.96.0.12", [{**HTTP[0], "nodePort": 30080}], type="LoadBalancer")
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}
    plain = svc("plain", "10.96.0.13", [{**HTTP[0], "nodePort": 30081}])  # ClusterIP: nodePort ignored
    rs = render([lb, plain], [eps("lb", ["10.1.0.2"]), eps("plain", ["10.1.0.3"])], table=T,
                node_ips=["192.168.0.5", "10.0.0.1", "bogus"], cluster_cidr="10.1.0.0/16")
    assert elements(rs.text, "node-ips") == ["10.0.0.1", "192.168.0.5"]
    (np,) = elements(rs.text, "service-nodeports")
    assert np.startswith("tcp . 30080 : goto ext-")
    assert chain(rs.text, "ext-")[0] == "jump mark-for-masquerade"
    assert any(e.startswith("192.0.2.10 . tcp . 80 : goto ext-") for e in elements(rs.text, "service-ips"))
    # Traffic from outside the pod network to a ClusterIP is masqueraded.
    assert "ip daddr 10.96.0.13 tcp dport 80 ip saddr != 10.1.0.0/16 jump mark-for-masquerade" in rs.text
    assert chain(rs.text, "masquerading") == [
        "meta mark & 0x4000 == 0 return", "meta mark set meta mark ^ 0x4000", "masquerade fully-random",
    ]
    assert ("nodeport", "tcp", "10.1.0.2", 8080) in rs.routes


def test_session_affinity_sets() -> None:
    rs = render([svc("s", "10.96.0.14", HTTP, sessionAffinity="ClientIP",
                     sessionAffinityConfig={"clientIP": {"timeoutSeconds": 77}})],
                [eps("s", ["10.1.0.2", "10.1.0.3"])], table=T)
    aff = sorted(n for n in rs.sets if n.startswith("aff-"))
    assert len(aff) == 2
    assert rs.text.count("timeout 77s") == 2 and "flags dynamic,timeout" in rs.text
    rules = chain(rs.text, "svc-")
    # Known clients go back to their endpoint before the random pick.
    assert sorted(r.split(" goto ")[0] for r in rules[:2]) == [f"ip saddr @{a}" for a in aff]
    assert rules[2].startswith("numgen random mod 2")
    assert sum(f"update @{a} {{ ip saddr }}" in rs.text for a in aff) == 2
    # Default timeout is Kubernetes' 10800 s; a changed timeout makes new set names.
    rs2 = render([svc("s", "10.96.0.14", HTTP, sessionAffinity="ClientIP")], [eps("s", ["10.1.0.2"])], table=T)
    assert "timeout 10800s" in rs2.text and not set(aff) & set(rs2.sets)


def test_headless_external_name_and_unallocated_are_not_proxied() -> None:
    rs = render([svc("h", "None", HTTP), {"metadata": {"name": "x", "namespace": "default"},
                                          "spec": {"type": "ExternalName", "externalName": "a.b"}},
                 svc("pending", "", HTTP)],
                [eps("h", ["10.1.0.2"])], table=T)
    assert "10.1.0.2" not in rs.text and "svc-" not in rs.text


def test_deterministic_and_typed_inputs_equal_dicts() -> None:
    services = [svc("b", "10.96.0.2", HTTP), svc("a", "10.96.0.1", HTTP, type="NodePort")]
    slices = [eps("a", ["10.1.0.3", "10.1.0.2"]), eps("b", ["10.1.0.4"])]
    one = render(services, slices, table=T, node_ips=["10.0.0.1"])
    two = render(list(reversed(services)), list(reversed(slices)), table=T, node_ips=["10.0.0.1"])
    typed = render([Service.model_validate(s) for s in services],
                   [EndpointSlice.model_validate(e) for e in slices], table=T, node_ips=["10.0.0.1"])
    assert one.text == two.text == typed.text
    assert one.text.startswith(f"table ip {T} {{\n")
    with pytest.raises(ValueError):
        render([], [], table="filter")


def test_incremental_transaction_removes_stale_objects_only() -> None:
    old = render([svc("a", "10.96.0.1", HTTP, sessionAffinity="ClientIP"), svc("b", "10.96.0.2", HTTP)],
                 [eps("a", ["10.1.0.2"]), eps("b", ["10.1.0.3"])], table=T)
    new = render([svc("a", "10.96.0.1", HTTP, sessionAffinity="ClientIP")], [eps("a", ["10.1.0.2"])], table=T)
    tx = incremental_transaction(old, new)
    head = tx[: tx.index(new.text)]
    stale = sorted(old.chains - new.chains)
    assert stale and all(f"delete chain ip {T} {c}" in head for c in stale)
    assert f"flush table ip {T}" in head and f"flush map ip {T} service-ips" in head
    # The affinity set that stays is neither deleted nor flushed (its clients are kept).
    (aff,) = [n for n in new.sets if n.startswith("aff-")]
    assert aff not in head.replace(new.set_declarations, "")
    # Order: flush rules, then maps, then delete sets, then chains.
    assert head.index("flush table") < head.index("flush map") < head.index("delete chain")
    assert tx.endswith(new.text)
    assert full_transaction(new).startswith(f"add table ip {T}\ndelete table ip {T}\n")


def test_conntrack_commands() -> None:
    cmds = conntrack_commands([("nodeport", "udp", "10.1.0.2", 53), ("10.96.0.10", "tcp", "10.1.0.2", 80)])
    assert cmds == [
        ["conntrack", "-D", "-p", "tcp", "--orig-dst", "10.96.0.10", "--reply-src", "10.1.0.2",
         "--reply-port-src", "80"],
        ["conntrack", "-D", "-p", "udp", "--reply-src", "10.1.0.2", "--reply-port-src", "53"],
    ]


def test_latency_percentiles() -> None:
    stats = LatencyStats()
    assert stats.p50 is None
    for ms in range(1, 101):
        stats.add(ms / 1000)
    assert stats.p50 == 0.050 and stats.p99 == 0.099 and stats.percentile(100) == 0.100
