"""The Node object an agent registers, and its Ready heartbeat.

``NodeConfig`` says what the machine is (name, addresses, capacity, labels, system facts);
``node_object`` renders the Node a kubelet would post; ``register`` creates it, or adopts an
existing one (a restarted agent) by refreshing its labels and status. ``heartbeat`` rewrites the
node conditions with a new lastHeartbeatTime (transition times stay as they were).
"""

from __future__ import annotations

import platform
import uuid
from dataclasses import dataclass, field
from typing import Any

from apimachinery.api.core_v1 import Node
from apimachinery.client import ApiClient
from apimachinery.errors import ApiError
from apimachinery.meta import now

HOSTNAME_LABEL = "kubernetes.io/hostname"
KUBELET_PORT = 10250

# The pressure conditions a kubelet always reports, with their "all is well" reason and message.
_HEALTHY = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


@dataclass
class NodeConfig:
    name: str
    internal_ip: str
    pod_cidr: str | None = None
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)  # e.g. the agent's serving cert fingerprint
    agent_port: int = KUBELET_PORT  # where the agent serves logs/exec (daemonEndpoints)
    taints: list[dict[str, Any]] = field(default_factory=list)
    runtime_version: str = "fake://0.1.0"
    agent_version: str = "v1.36.0"
    os_image: str = "kube-lite hollow node"
    boot_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def all_labels(self) -> dict[str, str]:
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
        }
        labels.update(self.labels)
        return labels

    def metadata(self) -> dict[str, Any]:
        """The Node's labels and (if any) annotations, for its creation and for re-registration."""
        return {"labels": self.all_labels(), **({"annotations": dict(self.annotations)} if self.annotations else {})}


def node_conditions(ready: bool = True, *, since: str | None = None, previous: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Ready plus the three pressure conditions, heartbeat now; a condition whose status did not
    change keeps its lastTransitionTime from ``previous``."""
    ts = now()
    old = {c.get("type"): c for c in previous or []}

    def cond(ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
        prior = old.get(ctype)
        transition = prior.get("lastTransitionTime") if prior and prior.get("status") == status else None
        return {"type": ctype, "status": status, "lastHeartbeatTime": ts,
                "lastTransitionTime": transition or since or ts, "reason": reason, "message": message}

    out = [cond(t, "False", r, m) for t, r, m in _HEALTHY]
    if ready:
        out.append(cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"))
    else:
        out.append(cond("Ready", "False", "KubeletNotReady", "container runtime is down"))
    return out


def node_status(cfg: NodeConfig, previous: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    resources = {"cpu": cfg.cpu, "memory": cfg.memory, "pods": str(cfg.pods), "ephemeral-storage": "100Gi"}
    machine = uuid.uuid5(uuid.NAMESPACE_DNS, f"{cfg.name}.kube-lite")
    return {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": node_conditions(previous=previous),
        "addresses": [{"type": "InternalIP", "address": cfg.internal_ip}, {"type": "Hostname", "address": cfg.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": cfg.agent_port}},
        "nodeInfo": {
            "machineID": machine.hex,
            "systemUUID": str(machine),
            "bootID": cfg.boot_id,
            "kernelVersion": platform.release(),
            "osImage": cfg.os_image,
            "containerRuntimeVersion": cfg.runtime_version,
            "kubeletVersion": cfg.agent_version,
            "kubeProxyVersion": cfg.agent_version,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def node_object(cfg: NodeConfig) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if cfg.pod_cidr:
        spec["podCIDR"] = cfg.pod_cidr
        spec["podCIDRs"] = [cfg.pod_cidr]
    if cfg.taints:
        spec["taints"] = cfg.taints
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": cfg.name, **cfg.metadata()},
        "spec": spec,
        "status": node_status(cfg),
    }


async def register(client: ApiClient, cfg: NodeConfig) -> dict[str, Any]:
    """Create the Node, or take over an existing one; returns the stored Node."""
    rt = client.scheme.for_model(Node)
    try:
        return await client.create(rt, node_object(cfg))
    except ApiError as exc:
        if exc.code != 409:
            raise
    existing = await client.get(rt, cfg.name)
    await client.patch(rt, cfg.name, {"metadata": cfg.metadata()})
    prev = (existing.get("status") or {}).get("conditions")
    return await client.patch(rt, cfg.name, {"status": node_status(cfg, prev)}, subresource="status")


async def heartbeat(client: ApiClient, name: str, previous: list[dict[str, Any]] | None, ready: bool = True) -> list[dict[str, Any]]:
    """Post fresh node conditions (strategic merge by type); returns what was written."""
    conditions = node_conditions(ready, previous=previous)
    await client.patch(client.scheme.for_model(Node), name, {"status": {"conditions": conditions}},
                       patch_type="strategic", subresource="status")
    return conditions
