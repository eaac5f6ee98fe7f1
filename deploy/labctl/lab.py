"""A lab's identity, names and state file.

A lab named NAME lives in ``<state-root>/NAME`` (default ``/var/lib/kube-lite/labs/NAME``)::

    state.json               what the lab created (see :class:`LabState`), so ``down`` removes exactly that
    controlplane/            the control plane's data dir (PKI, tokens, etcd, admin.kubeconfig)
    nodes/<node>/data/       a node agent's data dir (images, containers, sandboxes, pods)
    logs/                    controlplane.log and <node>.log

Interface names are limited to 15 bytes by the kernel, which is why lab names are short:
the bridge is ``klab-NAME`` and a node's host-side veth ``kvNAME-<i>``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STATE_ROOT = Path("/var/lib/kube-lite/labs")
NAME_RE = re.compile(r"^[a-z0-9]{1,10}$")
MAX_NODES = 99


class LabError(Exception):
    """A failure worth one line to the user (never a traceback)."""


@dataclass
class Proc:
    """A process the lab started: its pid and kernel start time (``/proc/<pid>/stat`` field 22),
    so a recycled pid is never mistaken for ours."""

    pid: int
    start_time: int

    def alive(self) -> bool:
        return proc_start_time(self.pid) == self.start_time


@dataclass
class NodeState:
    name: str  # the Kubernetes node name: "<lab>-n<i>" (unique on the host: cgroups are kube-lite/<node>)
    index: int
    ip: str
    netns: str
    host_veth: str
    agent: Proc | None = None
    partitioned: bool = False


@dataclass
class LabState:
    name: str
    subnet_index: int  # the lab subnet is 172.31.<subnet_index>.0/24
    bridge: str
    port: int = 0
    controlplane: Proc | None = None
    nodes: dict[str, NodeState] = field(default_factory=dict)
    node_monitor_grace_period: float = 8.0
    default_toleration_seconds: int = 10

    @property
    def bridge_ip(self) -> str:
        return f"172.31.{self.subnet_index}.1"

    def node_ip(self, index: int) -> str:
        return f"172.31.{self.subnet_index}.{10 + index}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LabState:
        nodes = {}
        for k, n in d.get("nodes", {}).items():
            agent = Proc(**n["agent"]) if n.get("agent") else None
            nodes[k] = NodeState(**{**n, "agent": agent})
        cp = Proc(**d["controlplane"]) if d.get("controlplane") else None
        return cls(**{**d, "nodes": nodes, "controlplane": cp})


def proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses; the fields after the last ')' are fixed.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def proc_of(pid: int) -> Proc:
    start = proc_start_time(pid)
    if start is None:
        raise LabError(f"process {pid} exited right after it started")
    return Proc(pid, start)


class Lab:
    """Paths of one lab and its state file."""

    def __init__(self, name: str, state_root: Path = DEFAULT_STATE_ROOT) -> None:
        if not NAME_RE.match(name):
            raise LabError(f"invalid lab name {name!r}: use 1-10 lowercase letters or digits")
        self.name = name
        self.dir = state_root / name

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def cp_dir(self) -> Path:
        return self.dir / "controlplane"

    @property
    def kubeconfig(self) -> Path:
        return self.cp_dir / "admin.kubeconfig"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    def node_data_dir(self, node: str) -> Path:
        return self.dir / "nodes" / node / "data"

    def exists(self) -> bool:
        return self.state_file.exists()

    def load(self) -> LabState:
        try:
            return LabState.from_json(json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            raise LabError(f"no lab named {self.name} (looked in {self.dir})") from None
        except (ValueError, TypeError, KeyError) as e:
            raise LabError(f"lab {self.name}: unreadable state file {self.state_file}: {e}") from None

    def save(self, state: LabState) -> None:
        """Write atomically: a crash mid-write must not lose the record of what exists."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
        os.replace(tmp, self.state_file)

    def new_state(self, subnet_index: int) -> LabState:
        return LabState(name=self.name, subnet_index=subnet_index, bridge=f"klab-{self.name}")

    def node_state(self, state: LabState, index: int) -> NodeState:
        name = f"{self.name}-n{index}"
        return NodeState(name=name, index=index, ip=state.node_ip(index), netns=f"klab-{name}",
                         host_veth=f"kv{self.name}-{index}")

    def resolve_node(self, state: LabState, arg: str) -> NodeState:
        """A node by its full name (``lab-n1``) or short name (``n1``)."""
        for key in (arg, f"{self.name}-{arg}"):
            if key in state.nodes:
                return state.nodes[key]
        raise LabError(f"lab {self.name} has no node {arg!r} (nodes: {', '.join(state.nodes) or 'none'})")


def used_subnet_indexes(state_root: Path) -> set[int]:
    """Subnets of other labs on this host (from their state files)."""
    used = set()
    if state_root.is_dir():
        for f in state_root.glob("*/state.json"):
            try:
                used.add(int(json.loads(f.read_text())["subnet_index"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return used
