"""hostPort mappings: which ports a pod publishes, how they are kept across agent restarts, and
the node NAT table they join."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apimachinery.api.core_v1 import Pod
from nodeagent.network.bridge import render_nat_ruleset
from nodeagent.network.hostports import HostPort, HostPortStore, pod_host_ports


def pod(ports: list[dict[str, Any]], **spec: Any) -> Pod:
    return Pod.model_validate({"metadata": {"name": "p", "namespace": "d", "uid": "u1"}, "spec": {
        "containers": [{"name": "c", "image": "busybox", "ports": ports}], **spec}})


def test_only_ports_with_a_host_port_are_published() -> None:
    p = pod([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81},
             {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "172.31.0.11"}])
    assert pod_host_ports(p, "10.244.0.5") == [
        HostPort("tcp", 8080, "0.0.0.0", "10.244.0.5", 80),
        HostPort("udp", 53, "172.31.0.11", "10.244.0.5", 53),
    ]
    assert pod_host_ports(pod([{"containerPort": 80, "hostPort": 80}], hostNetwork=True), "10.244.0.5") == []


def test_store_survives_a_restart_and_forgets_pods_that_are_gone(tmp_path: Path) -> None:
    store = HostPortStore(tmp_path)
    m1 = [HostPort("tcp", 8080, "0.0.0.0", "10.244.0.5", 80)]
    m2 = [HostPort("tcp", 9090, "0.0.0.0", "10.244.0.6", 90)]
    assert store.put("u1", m1) and store.put("u2", m2)
    assert not store.put("u1", m1)  # unchanged: no rewrite needed
    again = HostPortStore(tmp_path)
    assert again.all() == sorted(m1 + m2)
    assert again.reconcile({"u2"}) == ["u1"]
    assert HostPortStore(tmp_path).all() == m2
    assert again.put("u2", []) and HostPortStore(tmp_path).all() == []


def test_nat_table_carries_dnat_and_hairpin_only_with_mappings() -> None:
    plain = render_nat_ruleset("kube_lite_nat_n", "10.244.0.0/24", "10.244.0.0/16")
    assert "hostports" not in plain and "masquerade" in plain
    text = render_nat_ruleset("kube_lite_nat_n", "10.244.0.0/24", "10.244.0.0/16",
                              [HostPort("tcp", 8080, "0.0.0.0", "10.244.0.5", 80),
                               HostPort("udp", 53, "172.31.0.11", "10.244.0.6", 53)])
    assert "meta l4proto tcp th dport 8080 dnat to 10.244.0.5:80" in text
    assert "ip daddr 172.31.0.11 meta l4proto udp th dport 53 dnat to 10.244.0.6:53" in text
    assert "ip saddr 10.244.0.5 ip daddr 10.244.0.5 meta l4proto tcp th dport 80 ct status dnat masquerade" in text
    assert text.count("fib daddr type local ip daddr != 127.0.0.0/8 jump hostports") == 2  # prerouting, output
