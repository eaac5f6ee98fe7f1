"""Pod networking for the node agent: IPAM, the node bridge and NAT, pod veths, inter-node routes.

The pod sync calls, per node (at start, idempotent)::

    node = bridge.setup_node(node_name, pod_cidr, cluster_cidr)
    ipam = IPAM(pod_cidr, state_dir)
    ipam.reconcile(live_pod_uids); pod.reconcile_pod_links(node.bridge, live_pod_uids)

per pod, after the sandbox exists (from a worker thread: the calls block for a few ms)::

    ip = ipam.allocate(pod_uid)
    net = pod.setup_pod(sandbox.ns_path("net"), pod_uid, ip, node.prefix_len, node.gateway, node.bridge)
    ...
    pod.teardown_pod(pod_uid); ipam.release(pod_uid)

and, when Nodes come and go, ``routes.sync_host_gw_routes(peers)`` or (VXLAN)
``routes.sync_vxlan_peers(routes.ensure_vxlan(...), peers)``.
"""

from nodeagent.network.bridge import NodeNetwork, setup_node, teardown_node
from nodeagent.network.ipam import IPAM, IPAMExhausted
from nodeagent.network.pod import PodNetwork, reconcile_pod_links, setup_pod, teardown_pod
from nodeagent.network.routes import Peer, ensure_vxlan, sync_host_gw_routes, sync_vxlan_peers

__all__ = [
    "IPAM",
    "IPAMExhausted",
    "NodeNetwork",
    "Peer",
    "PodNetwork",
    "ensure_vxlan",
    "reconcile_pod_links",
    "setup_node",
    "setup_pod",
    "sync_host_gw_routes",
    "sync_vxlan_peers",
    "teardown_node",
    "teardown_pod",
]
