"""The lab network: a host bridge ``klab-NAME`` holding 172.31.<n>.1/24, and per node a network
namespace ``klab-<node>`` with a veth (``eth0`` inside, the node IP) plugged into the bridge and
a default route via the bridge address.

Only addresses the lab itself creates are used, and traffic only ever goes to them. ``ip`` is
run as a subprocess: a lab is set up once, so clarity beats the milliseconds netlink would save.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from deploy.labctl.lab import LabError, LabState, NodeState

NETNS_DIR = Path("/run/netns")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {r.stderr.strip() or 'exit ' + str(r.returncode)}")
    return r


def link_exists(name: str) -> bool:
    return ip("link", "show", "dev", name, check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def pick_subnet_index(taken: set[int]) -> int:
    """The first 172.31.<n>.0/24 that no other lab and no host address or route already uses."""
    in_use = ip("-4", "-o", "addr", "show").stdout + ip("-4", "route", "show", "table", "all").stdout
    for n in range(256):
        if n not in taken and f"172.31.{n}." not in in_use:
            return n
    raise LabError("no free lab subnet left in 172.31.0.0/16")


def ensure_bridge(state: LabState) -> None:
    if not link_exists(state.bridge):
        ip("link", "add", state.bridge, "type", "bridge")
    addrs = ip("-4", "-o", "addr", "show", "dev", state.bridge).stdout
    if f" {state.bridge_ip}/24 " not in addrs:
        ip("addr", "add", f"{state.bridge_ip}/24", "dev", state.bridge)
    ip("link", "set", state.bridge, "up")


def ensure_node_net(state: LabState, node: NodeState) -> None:
    """Namespace, veth pair and addresses for one node; each step only if it is missing, so
    ``labctl up`` on a half-built lab completes it."""
    if not netns_exists(node.netns):
        ip("netns", "add", node.netns)
    if not link_exists(node.host_veth):
        # Created with the peer directly inside the namespace: no temporary name on the host.
        ip("link", "add", node.host_veth, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
    ip("link", "set", node.host_veth, "master", state.bridge)
    ip("link", "set", node.host_veth, "down" if node.partitioned else "up")
    ns = ("-n", node.netns)
    ip(*ns, "link", "set", "lo", "up")
    if f" {node.ip}/24 " not in ip(*ns, "-4", "-o", "addr", "show", "dev", "eth0").stdout:
        ip(*ns, "addr", "add", f"{node.ip}/24", "dev", "eth0")
    ip(*ns, "link", "set", "eth0", "up")
    ip(*ns, "route", "replace", "default", "via", state.bridge_ip, "dev", "eth0")


def set_link(node: NodeState, up: bool) -> None:
    """Partition or heal: the host-side veth down/up cuts the node off the bridge (the node's own
    eth0 stays up, as a pulled cable looks from inside a VM)."""
    ip("link", "set", node.host_veth, "up" if up else "down")


def delete_node_net(node: NodeState) -> list[str]:
    """Remove the namespace (its eth0 and every nft table, route and pod interface inside it go
    with it; so does the host-side veth). Returns what is left."""
    left = []
    if netns_exists(node.netns):
        r = ip("netns", "delete", node.netns, check=False)
        if r.returncode != 0:
            left.append(f"netns {node.netns}: {r.stderr.strip()}")
    if link_exists(node.host_veth):
        r = ip("link", "delete", node.host_veth, check=False)
        # The kernel removes the peer of a veth whose namespace went asynchronously: gone by
        # now is as good as deleted.
        if r.returncode != 0 and link_exists(node.host_veth):
            left.append(f"link {node.host_veth}: {r.stderr.strip()}")
    return left


def delete_bridge(state: LabState) -> list[str]:
    if link_exists(state.bridge):
        r = ip("link", "delete", state.bridge, check=False)
        if r.returncode != 0:
            return [f"link {state.bridge}: {r.stderr.strip()}"]
    return []


def delete_host_nft_tables(lab_name: str) -> list[str]:
    """Host-side nftables tables named after the lab (``klab_NAME`` / ``klab-NAME``); the tables
    agents make inside node namespaces vanish with the namespace."""
    r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    if r.returncode != 0:
        return []
    left = []
    marks = (f"klab_{lab_name}", f"klab-{lab_name}")
    for line in r.stdout.splitlines():
        parts = line.split()  # "table <family> <name>"
        if len(parts) == 3 and parts[0] == "table" and any(m in parts[2] for m in marks):
            d = subprocess.run(["nft", "delete", "table", parts[1], parts[2]], capture_output=True, text=True)
            if d.returncode != 0:
                left.append(f"nft table {parts[1]} {parts[2]}: {d.stderr.strip()}")
    return left
