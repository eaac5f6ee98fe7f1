"""Pod status as a kubelet reports it, written through the status subresource.

The runtime says what runs (:class:`ContainerRun`: ids, image, start time); ``running_status``
turns that into the status Kubernetes shows for a started pod: phase Running, the four
conditions True, pod and host IPs, one ready containerStatus per container. The writer sends it
as a merge patch of ``status`` (lists are replaced whole, which is what the owner of the status
wants), so it never conflicts with a scheduler or another status writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apimachinery.api.core_v1 import Pod
from apimachinery.client import ApiClient
from apimachinery.meta import now

READY_CONDITIONS = ("PodScheduled", "Initialized", "ContainersReady", "Ready")


@dataclass(frozen=True)
class ContainerRun:
    """One running container, as the runtime reports it."""

    name: str
    image: str
    image_id: str
    container_id: str
    started_at: str


def _transition_times(pod: Pod) -> dict[str, str]:
    return {c.type: c.last_transition_time for c in pod.status.conditions or [] if c.status == "True" and c.last_transition_time}


def running_status(pod: Pod, *, host_ip: str, pod_ip: str, containers: list[ContainerRun], start_time: str) -> dict[str, Any]:
    ts = now()
    kept = _transition_times(pod)
    conditions = [
        {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": kept.get(t, ts)}
        for t in READY_CONDITIONS
    ]
    statuses = [
        {
            "name": c.name,
            "state": {"running": {"startedAt": c.started_at}},
            "lastState": {},
            "ready": True,
            "restartCount": 0,
            "image": c.image,
            "imageID": c.image_id,
            "containerID": c.container_id,
            "started": True,
        }
        for c in containers
    ]
    # Init containers ran to completion before the app containers started; sidecars (restartPolicy
    # Always) keep running beside them.
    init_statuses = []
    for c in pod.spec.init_containers or []:
        sidecar = c.restart_policy == "Always"
        state = {"running": {"startedAt": start_time}} if sidecar else {
            "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": start_time, "finishedAt": start_time}}
        init_statuses.append({
            "name": c.name, "state": state, "lastState": {}, "ready": True, "restartCount": 0,
            "image": c.image or "", "imageID": "", "started": sidecar,
        })
    status: dict[str, Any] = {
        "phase": "Running",
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start_time,
        "containerStatuses": statuses,
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    return status


def is_running_as(pod: Pod, pod_ip: str, containers: list[ContainerRun]) -> bool:
    """The stored status already says what ``running_status`` would (nothing to write)."""
    st = pod.status
    if st.phase != "Running" or st.pod_ip != pod_ip:
        return False
    ready = {c.type for c in st.conditions or [] if c.status == "True"}
    if not set(READY_CONDITIONS) <= ready:
        return False
    have = {(c.name, c.container_id, c.ready) for c in st.container_statuses or []}
    return have == {(c.name, c.container_id, True) for c in containers}


class PodStatusWriter:
    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.rt = client.scheme.for_model(Pod)
        self.writes = 0

    async def write(self, pod: Pod, status: dict[str, Any]) -> dict[str, Any]:
        result = await self.client.patch(
            self.rt, pod.metadata.name or "", {"status": status}, namespace=pod.metadata.namespace,
            subresource="status",
        )
        self.writes += 1
        return result
