"""The pure parts of the agent's pod networking: resolv.conf -> runtime tuple, names, MTU."""

from __future__ import annotations

from pathlib import Path

from nodeagent.agent.podnet import MODE_HOST_GW, MODE_VXLAN, NetworkConfig, dns_tuple, table_suffix
from nodeagent.dns import resolv_conf


def test_cluster_first_resolv_conf_becomes_the_runtime_tuple() -> None:
    text = resolv_conf("shop", "10.244.3.1", "cluster.local", "ClusterFirst")
    assert dns_tuple(text) == (
        ("10.244.3.1",),
        ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local"),
        ("ndots:5",),
    )


def test_default_policy_keeps_the_hosts_servers() -> None:
    host = "# generated\nnameserver 192.0.2.53\nsearch example.org\noptions edns0\n"
    text = resolv_conf("shop", "10.244.3.1", policy="Default", host_resolv_conf=host)
    assert dns_tuple(text) == (("192.0.2.53",), ("example.org",), ("edns0",))


def test_table_suffix_only_keeps_characters_nft_takes() -> None:
    assert table_suffix("node-1.lab") == "node_1_lab"


def test_vxlan_shrinks_the_pod_mtu_by_the_encapsulation() -> None:
    assert NetworkConfig("n", "192.0.2.10", Path("/x"), mode=MODE_VXLAN).pod_mtu == 1450
    assert NetworkConfig("n", "192.0.2.10", Path("/x"), mode=MODE_HOST_GW).pod_mtu is None
