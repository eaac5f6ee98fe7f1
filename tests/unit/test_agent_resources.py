"""A pod's resources as cgroup settings (``nodeagent.agent.resources``): the kubelet's arithmetic."""

from __future__ import annotations

from typing import Any

from apimachinery.api.core_v1 import Pod
from nodeagent.agent.resources import container_resources, pod_resources
from nodeagent.runtime.cgroups import Resources


def pod(containers: list[dict[str, Any]], inits: list[dict[str, Any]] | None = None) -> Pod:
    def c(i: int, res: dict[str, Any]) -> dict[str, Any]:
        return {"name": f"c{i}", "image": "busybox", "resources": res}

    return Pod.model_validate({"metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "containers": [c(i, r) for i, r in enumerate(containers)],
        "initContainers": [c(100 + i, r) for i, r in enumerate(inits or [])]}})


def test_container_requests_and_limits() -> None:
    p = pod([{"requests": {"cpu": "250m", "memory": "16Mi"}, "limits": {"cpu": "1.5", "memory": "64Mi"}}, {}])
    assert container_resources(p.spec.containers[0]) == Resources(
        cpu_request_millis=250, cpu_limit_millis=1500, memory_limit_bytes=64 << 20)
    assert container_resources(p.spec.containers[1]) == Resources()


def test_pod_sums_requests_and_limits_only_when_all_are_limited() -> None:
    both = pod([{"requests": {"cpu": "100m"}, "limits": {"cpu": "200m", "memory": "32Mi"}},
                {"requests": {"cpu": "300m"}, "limits": {"cpu": "400m", "memory": "16Mi"}}])
    assert pod_resources(both, pids_limit=50) == Resources(
        cpu_request_millis=400, cpu_limit_millis=600, memory_limit_bytes=48 << 20, pids_limit=50)
    one_unlimited = pod([{"requests": {"cpu": "100m"}, "limits": {"cpu": "200m", "memory": "32Mi"}}, {}])
    assert pod_resources(one_unlimited) == Resources(cpu_request_millis=100)
    assert pod_resources(pod([{}])) == Resources()


def test_init_containers_count_by_their_largest() -> None:
    p = pod([{"requests": {"cpu": "100m"}, "limits": {"cpu": "100m", "memory": "10Mi"}}],
            inits=[{"requests": {"cpu": "500m"}, "limits": {"cpu": "500m", "memory": "5Mi"}}])
    assert pod_resources(p) == Resources(cpu_request_millis=500, cpu_limit_millis=500, memory_limit_bytes=10 << 20)
    unlimited_init = pod([{"limits": {"cpu": "100m", "memory": "10Mi"}}], inits=[{}])
    assert pod_resources(unlimited_init).memory_limit_bytes is None
