"""``hostPort``: a pod's container port published on its node's addresses.

A container port with ``hostPort`` becomes a DNAT rule ``<node address>:<hostPort> ->
<pod IP>:<containerPort>`` (only for ``hostIP`` when the pod names one). The rules are part of
the node's NAT table (:mod:`.bridge`), which is rewritten whole in one ``nft -f`` transaction,
so adding or removing a pod's mappings never leaves a moment without the others. They match
packets whose destination is an address of the node itself (``fib daddr type local``), from
outside (prerouting) and from the node (output); loopback is left out (DNAT from 127.0.0.1 to
a pod needs ``route_localnet``, which kube-lite does not turn on). A pod reaching its own
hostPort (hairpin) is masqueraded, or it would answer itself directly and the reply would not
match its connection.

Mappings survive the agent: each pod's are kept in ``<state_dir>/<pod uid>.json``, so a
restarted agent rewrites the table with exactly the same rules before it has synced a single
pod, and a reconcile against the live pods drops the mappings of pods removed meanwhile. The
scheduler keeps two pods from claiming one (hostIP, hostPort, protocol) on a node.
"""

from __future__ import annotations

import ipaddress
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from apimachinery.api.core_v1 import Pod

_TMP_PREFIX = ".tmp-"
_ANY = "0.0.0.0"


@dataclass(frozen=True, order=True)
class HostPort:
    """One published port of one pod."""

    protocol: str  # tcp, udp, sctp
    host_port: int
    host_ip: str  # "0.0.0.0": every address of the node
    pod_ip: str
    container_port: int

    def match(self) -> str:
        """The nft match of packets for this mapping (before DNAT)."""
        dst = "" if self.host_ip == _ANY else f"ip daddr {self.host_ip} "
        return f"{dst}meta l4proto {self.protocol} th dport {self.host_port}"


def pod_host_ports(pod: Pod, pod_ip: str) -> list[HostPort]:
    """The pod's hostPort mappings to ``pod_ip`` (none for hostNetwork pods: they bind the
    node's ports themselves). IPv6 hostIPs are not published."""
    if pod.spec.host_network:
        return []
    out: set[HostPort] = set()
    for c in [*(pod.spec.init_containers or []), *pod.spec.containers]:
        for p in c.ports or []:
            if not p.host_port:
                continue
            host_ip = p.host_ip or _ANY
            if not isinstance(ipaddress.ip_address(host_ip), ipaddress.IPv4Address):
                continue
            out.add(HostPort((p.protocol or "TCP").lower(), p.host_port, host_ip, pod_ip, p.container_port))
    return sorted(out)


def render_rules(mappings: Iterable[HostPort]) -> list[str]:
    """Chain blocks (one tab deep) for the node's NAT table; empty without mappings."""
    ordered = sorted(set(mappings))
    if not ordered:
        return []
    dnat = "".join(f"\t\t{m.match()} dnat to {m.pod_ip}:{m.container_port}\n" for m in ordered)
    hairpin = "".join(
        f"\t\tip saddr {m.pod_ip} ip daddr {m.pod_ip} meta l4proto {m.protocol} th dport {m.container_port}"
        " ct status dnat masquerade\n" for m in ordered)
    local = "fib daddr type local ip daddr != 127.0.0.0/8 jump hostports"
    return [
        f"\tchain hostports {{\n{dnat}\t}}",
        f"\tchain hostports-prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
        f"\t\t{local}\n\t}}",
        f"\tchain hostports-output {{\n\t\ttype nat hook output priority -100; policy accept;\n"
        f"\t\t{local}\n\t}}",
        f"\tchain hostports-hairpin {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        f"{hairpin}\t}}",
    ]


class HostPortStore:
    """Every pod's mappings, one JSON file per pod uid under ``state_dir``."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._by_uid: dict[str, list[HostPort]] = {}
        for path in self.dir.glob("*.json"):
            try:
                self._by_uid[path.stem] = [HostPort(**m) for m in json.loads(path.read_text())]
            except (OSError, ValueError, TypeError):
                path.unlink(missing_ok=True)  # unreadable: the pod's next sync writes it again

    def all(self) -> list[HostPort]:
        return sorted(m for ms in self._by_uid.values() for m in ms)

    def get(self, pod_uid: str) -> list[HostPort]:
        return list(self._by_uid.get(pod_uid, []))

    def put(self, pod_uid: str, mappings: list[HostPort]) -> bool:
        """Record the pod's mappings (none: forget the pod); True when something changed."""
        mappings = sorted(set(mappings))
        if self._by_uid.get(pod_uid, []) == mappings:
            return False
        path = self.dir / f"{pod_uid}.json"
        if not mappings:
            path.unlink(missing_ok=True)
            self._by_uid.pop(pod_uid, None)
            return True
        tmp = self.dir / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        tmp.write_text(json.dumps([asdict(m) for m in mappings]))
        os.replace(tmp, path)
        self._by_uid[pod_uid] = mappings
        return True

    def reconcile(self, live_pod_uids: set[str]) -> list[str]:
        """Forget pods that are not live; the uids forgotten."""
        gone = sorted(set(self._by_uid) - live_pod_uids)
        for uid in gone:
            self.put(uid, [])
        return gone
