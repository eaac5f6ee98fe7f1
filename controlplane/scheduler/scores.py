"""Scores: of the nodes that fit, which is best? Each score is 0..100, higher is better.

* least allocated (NodeResourcesFit's default strategy): the share of CPU and memory left free
  after placing the pod, averaged; pods without requests count as 100m / 200Mi so that
  best-effort pods spread too;
* owner spreading (what SelectorSpread did for ReplicaSets): fewer pods of the same controller
  on a node scores higher, so replicas land on different nodes.

The total weighs spreading twice, like kube-scheduler's default PodTopologySpread weight.
"""

from __future__ import annotations

from controlplane.scheduler.cache import NodeInfo, PodInfo

MAX_SCORE = 100
LEAST_ALLOCATED_WEIGHT = 1
SPREAD_WEIGHT = 2


def least_allocated(pi: PodInfo, ni: NodeInfo) -> int:
    cpu = _free_share(ni.nonzero_cpu + pi.nonzero_cpu, ni.alloc_cpu)
    mem = _free_share(ni.nonzero_memory + pi.nonzero_memory, ni.alloc_memory)
    return (cpu + mem) // 2


def _free_share(requested: int, allocatable: int) -> int:
    if allocatable <= 0 or requested > allocatable:
        return 0
    return (allocatable - requested) * MAX_SCORE // allocatable


def owner_spread(pi: PodInfo, ni: NodeInfo, max_count: int) -> int:
    """``max_count``: the most pods of this owner on any candidate node (0: nothing to spread)."""
    if not pi.owner_uid or max_count <= 0:
        return MAX_SCORE
    count = ni.owner_counts.get(pi.owner_uid, 0)
    return (max_count - count) * MAX_SCORE // max_count


def total_scores(pi: PodInfo, nodes: list[NodeInfo]) -> list[int]:
    """Weighted sum per candidate node, in the order given.

    The same arithmetic as :func:`least_allocated` and :func:`owner_spread`, inlined: this runs
    for hundreds of nodes per pod and function calls are most of the cost in Python."""
    owner = pi.owner_uid
    max_count = max((ni.owner_counts.get(owner, 0) for ni in nodes), default=0) if owner else 0
    pod_cpu, pod_mem = pi.nonzero_cpu, pi.nonzero_memory
    out: list[int] = []
    for ni in nodes:
        alloc, used = ni.alloc_cpu, ni.nonzero_cpu + pod_cpu
        cpu = (alloc - used) * MAX_SCORE // alloc if 0 < alloc and used <= alloc else 0
        alloc, used = ni.alloc_memory, ni.nonzero_memory + pod_mem
        mem = (alloc - used) * MAX_SCORE // alloc if 0 < alloc and used <= alloc else 0
        if max_count > 0:
            spread = (max_count - ni.owner_counts.get(owner, 0)) * MAX_SCORE // max_count  # type: ignore[arg-type]
        else:
            spread = MAX_SCORE
        out.append(LEAST_ALLOCATED_WEIGHT * ((cpu + mem) // 2) + SPREAD_WEIGHT * spread)
    return out
