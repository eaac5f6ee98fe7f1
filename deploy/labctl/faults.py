"""Fault injection, for watching the control plane reconcile:

- ``fail``: the agent crashes (kill -9); its containers keep running, as when a kubelet dies.
  The node stops heartbeating, turns Unknown after the grace period, and its pods are evicted
  after their tolerationSeconds and replaced elsewhere.
- ``stop``: the whole "VM" goes down: the agent dies and so do all the node's containers.
- ``partition`` / ``heal``: the node's cable is pulled / plugged back (host-side veth down/up);
  everything on the node keeps running but cannot reach the control plane.
"""

from __future__ import annotations

from deploy.labctl import netns, processes
from deploy.labctl.lab import Lab, LabError, LabState, NodeState


def fail(lab: Lab, state: LabState, node: NodeState) -> str:
    if not processes.kill_agent_only(node.agent):
        raise LabError(f"the agent of {node.name} is not running")
    node.agent = None
    lab.save(state)
    return f"{node.name}: agent killed (containers keep running)"


def stop(lab: Lab, state: LabState, node: NodeState) -> str:
    processes.kill_agent_only(node.agent)
    node.agent = None
    lab.save(state)
    left = processes.purge_node(lab, node)
    if left:
        raise LabError(f"{node.name}: agent killed but some containers remain: {'; '.join(left)}")
    return f"{node.name}: down (agent and containers killed)"


def partition(lab: Lab, state: LabState, node: NodeState, *, cut: bool) -> str:
    netns.set_link(node, up=not cut)
    node.partitioned = cut
    lab.save(state)
    return f"{node.name}: {'partitioned (link down)' if cut else 'healed (link up)'}"
