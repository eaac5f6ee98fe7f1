"""The cluster DNS name index and the pods' resolv.conf."""

from __future__ import annotations

from typing import Any

import pytest

from apimachinery.api.core_v1 import Service
from nodeagent.dns.records import NOERROR, NXDOMAIN, REFUSED, SrvRecord, build_index, resolv_conf


def svc(name: str, ns: str = "default", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def eps(svc_name: str, endpoints: list[dict[str, Any]], ports: list[dict[str, Any]], ns: str = "default") -> dict[str, Any]:
    return {
        "metadata": {"name": f"{svc_name}-abc", "namespace": ns,
                     "labels": {"kubernetes.io/service-name": svc_name}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }


WEB = svc("web", clusterIP="10.96.0.10", ports=[{"name": "http", "port": 80}, {"port": 9090}])
DB = svc("db", clusterIP="None", ports=[{"name": "pg", "port": 5432}])
DB_SLICE = eps("db", [
    {"addresses": ["10.1.0.3"], "hostname": "db-0", "conditions": {"ready": True}},
    {"addresses": ["10.1.0.2"]},
    {"addresses": ["10.1.0.9"], "conditions": {"ready": False}},
], [{"name": "pg", "port": 5432, "protocol": "TCP"}])


def test_cluster_ip_service_a_and_srv() -> None:
    idx = build_index([WEB, DB], [DB_SLICE])
    ans = idx.lookup("web.default.svc.cluster.local.")
    assert ans.rcode == NOERROR and ans.a == ("10.96.0.10",)
    # Case-insensitive, like every DNS server.
    assert idx.lookup("WEB.Default.svc.cluster.local").a == ("10.96.0.10",)
    srv = idx.lookup("_http._tcp.web.default.svc.cluster.local")
    assert srv.srv == (SrvRecord(0, 100, 80, "web.default.svc.cluster.local"),)
    # Unnamed ports get no SRV record.
    assert idx.lookup("_p9090._tcp.web.default.svc.cluster.local").rcode == NXDOMAIN


def test_headless_service_lists_ready_endpoints() -> None:
    idx = build_index([WEB, DB], [DB_SLICE])
    assert idx.lookup("db.default.svc.cluster.local").a == ("10.1.0.2", "10.1.0.3")
    assert idx.lookup("db-0.db.default.svc.cluster.local").a == ("10.1.0.3",)
    assert idx.lookup("10-1-0-2.db.default.svc.cluster.local").a == ("10.1.0.2",)
    assert idx.lookup("_pg._tcp.db.default.svc.cluster.local").srv == (
        SrvRecord(0, 100, 5432, "10-1-0-2.db.default.svc.cluster.local"),
        SrvRecord(0, 100, 5432, "db-0.db.default.svc.cluster.local"),
    )
    # Not ready: not published.
    assert idx.lookup("10-1-0-9.db.default.svc.cluster.local").rcode == NXDOMAIN


def test_nxdomain_nodata_refused_and_pods() -> None:
    idx = build_index([Service.model_validate(WEB)], [])
    assert idx.lookup("nope.default.svc.cluster.local").rcode == NXDOMAIN
    assert idx.lookup("web.other.svc.cluster.local").rcode == NXDOMAIN
    # Existing names without records (empty non-terminals) are NOERROR with no data.
    for name in ("default.svc.cluster.local", "svc.cluster.local", "cluster.local"):
        ans = idx.lookup(name)
        assert ans.rcode == NOERROR and not ans.a, name
    assert idx.lookup("example.com").rcode == REFUSED
    assert idx.lookup("10-1-0-7.default.pod.cluster.local").a == ("10.1.0.7",)
    assert idx.lookup("10-1-0.default.pod.cluster.local").rcode == NXDOMAIN


def test_other_domain_external_name_and_unallocated() -> None:
    idx = build_index(
        [svc("ext", type="ExternalName", externalName="db.example.com."), svc("pending", ports=[{"port": 1}]), WEB],
        [],
        cluster_domain="kube.test",
    )
    assert idx.lookup("ext.default.svc.kube.test").cname == "db.example.com"
    assert idx.lookup("pending.default.svc.kube.test").rcode == NXDOMAIN
    assert idx.lookup("web.default.svc.kube.test").a == ("10.96.0.10",)
    assert idx.lookup("web.default.svc.cluster.local").rcode == REFUSED


def test_identical_inputs_identical_index() -> None:
    a = build_index([WEB, DB], [DB_SLICE])
    b = build_index([DB, WEB], [DB_SLICE])
    assert a.names == b.names


def test_resolv_conf_cluster_first() -> None:
    assert resolv_conf("team-a", "10.96.0.10", "cluster.local", "ClusterFirst") == (
        "nameserver 10.96.0.10\n"
        "search team-a.svc.cluster.local svc.cluster.local cluster.local\n"
        "options ndots:5\n"
    )
    # Empty policy is ClusterFirst; dnsConfig is merged in.
    out = resolv_conf("ns", "10.96.0.10", "cluster.local", None,
                      dns_config={"searches": ["corp.test"], "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]})
    assert out.splitlines() == [
        "nameserver 10.96.0.10",
        "search ns.svc.cluster.local svc.cluster.local cluster.local corp.test",
        "options ndots:2 edns0",
    ]


def test_resolv_conf_default_and_host_network() -> None:
    host = "# generated\nnameserver 192.0.2.53\nsearch lab.test\noptions timeout:2\n"
    expected = "nameserver 192.0.2.53\nsearch lab.test\noptions timeout:2\n"
    assert resolv_conf("ns", "10.96.0.10", "cluster.local", "Default", host_resolv_conf=host) == expected
    # hostNetwork + ClusterFirst falls back to the node's; ClusterFirstWithHostNet does not.
    assert resolv_conf("ns", "10.96.0.10", policy="ClusterFirst", host_network=True, host_resolv_conf=host) == expected
    assert resolv_conf("ns", "10.96.0.10", policy="ClusterFirstWithHostNet", host_network=True).startswith(
        "nameserver 10.96.0.10\n"
    )
    assert resolv_conf("ns", "x", policy="None", dns_config={"nameservers": ["192.0.2.1"]}) == "nameserver 192.0.2.1\n"
    with pytest.raises(ValueError):
        resolv_conf("ns", "x", policy="Bogus")
