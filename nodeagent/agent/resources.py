"""A pod's resources as cgroup settings, the way the kubelet sets them.

* a container's cgroup: cpu shares/weight from its cpu request, CFS quota from its cpu limit,
  a hard memory limit from its memory limit (the API server already defaulted a missing request
  to the limit);
* the pod's cgroup (the sandbox's, parent of its containers'): shares from the sum of the
  requests, and quota and memory limit from the sums of the limits, but only when every
  container has one (one unlimited container leaves the pod unlimited), plus the node's pod
  pids limit (the kubelet's ``--pod-max-pids``). Init containers run one at a time before the
  others, so for each resource the pod needs the larger of the biggest init container and the sum
  of the app containers (Kubernetes' effective pod request).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from apimachinery.api.core_v1 import Container, Pod
from apimachinery.quantity import milli_value, value
from nodeagent.runtime.cgroups import Resources


def _amount(resources: Mapping[str, object] | None, name: str, milli: bool) -> int | None:
    q = (resources or {}).get(name)
    if q is None:
        return None
    return milli_value(str(q)) if milli else value(str(q))


def container_resources(c: Container) -> Resources:
    r = c.resources
    requests = r.requests if r is not None else None
    limits = r.limits if r is not None else None
    return Resources(
        cpu_request_millis=_amount(requests, "cpu", True),
        cpu_limit_millis=_amount(limits, "cpu", True),
        memory_limit_bytes=_amount(limits, "memory", False),
    )


def _total(values: Iterable[int | None], *, all_required: bool) -> int | None:
    vals = list(values)
    if all_required and (not vals or any(v is None for v in vals)):
        return None
    known = [v for v in vals if v is not None]
    return sum(known) if known else None


def _effective(app: int | None, inits: list[int | None], *, all_required: bool) -> int | None:
    if all_required and (app is None or any(v is None for v in inits)):
        return None
    return max([v for v in [app, *inits] if v is not None], default=None)


def pod_resources(pod: Pod, pids_limit: int | None = None) -> Resources:
    apps = [container_resources(c) for c in pod.spec.containers]
    inits = [container_resources(c) for c in pod.spec.init_containers or []]
    return Resources(
        cpu_request_millis=_effective(_total((a.cpu_request_millis for a in apps), all_required=False),
                                      [i.cpu_request_millis for i in inits], all_required=False),
        cpu_limit_millis=_effective(_total((a.cpu_limit_millis for a in apps), all_required=True),
                                    [i.cpu_limit_millis for i in inits], all_required=True),
        memory_limit_bytes=_effective(_total((a.memory_limit_bytes for a in apps), all_required=True),
                                      [i.memory_limit_bytes for i in inits], all_required=True),
        pids_limit=pids_limit,
    )
