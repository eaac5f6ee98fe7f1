"""Between the runtime service's protobuf messages and the runtime's own Python types.

Both sides of the service use these: the servers turn a request into a
:class:`~nodeagent.runtime.container.ContainerSpec` (and their answers into messages), the client
turns the answers back into :class:`~nodeagent.runtime.container.ContainerStatus`,
:class:`~nodeagent.runtime.sandbox.Sandbox` and :class:`~nodeagent.runtime.images.ImageInfo`, so
the agent's logic reads the same types whatever runtime serves it.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from nodeagent.cri import runtime_pb2 as pb
from nodeagent.runtime import sandbox as sb
from nodeagent.runtime.cgroups import Resources, Stats
from nodeagent.runtime.container import ContainerSpec, ContainerStatus, Mount
from nodeagent.runtime.images import ImageConfig, ImageInfo

STATES = {"created": pb.CONTAINER_CREATED, "running": pb.CONTAINER_RUNNING, "exited": pb.CONTAINER_EXITED}
STATE_NAMES = {v: k for k, v in STATES.items()}

_RESOURCE_FIELDS = ("cpu_request_millis", "cpu_limit_millis", "memory_limit_bytes", "pids_limit")


# ------------------------------------------------------------------ resources and stats


def resources_to_pb(r: Resources | None) -> pb.Resources | None:
    if r is None:
        return None
    return pb.Resources(**{f: getattr(r, f) for f in _RESOURCE_FIELDS if getattr(r, f) is not None})


def resources_from_pb(msg: pb.Resources, present: bool = True) -> Resources | None:
    if not present:
        return None
    return Resources(**{f: getattr(msg, f) if msg.HasField(f) else None for f in _RESOURCE_FIELDS})


def stats_to_pb(s: Stats) -> pb.Stats:
    return pb.Stats(cpu_usage_ns=s.cpu_usage_ns, memory_working_set_bytes=s.memory_working_set_bytes,
                    memory_usage_bytes=s.memory_usage_bytes, oom_kills=s.oom_kills, timestamp_ns=time.time_ns())


def stats_from_pb(msg: pb.Stats) -> Stats:
    return Stats(cpu_usage_ns=msg.cpu_usage_ns, memory_working_set_bytes=msg.memory_working_set_bytes,
                 memory_usage_bytes=msg.memory_usage_bytes, oom_kills=msg.oom_kills)


# ------------------------------------------------------------------ sandboxes


def sandbox_to_pb(s: sb.Sandbox) -> pb.PodSandbox:
    return pb.PodSandbox(id=s.id, pod_uid=s.pod_uid, hostname=s.hostname, labels=s.labels, host_network=s.host_network,
                         cgroup_path=s.cgroup_path, dir=str(s.dir), netns_path=s.ns_path("net"))


def sandbox_from_pb(msg: pb.PodSandbox) -> sb.Sandbox:
    return sb.Sandbox(id=msg.id, dir=Path(msg.dir), hostname=msg.hostname, cgroup_path=msg.cgroup_path,
                      pod_uid=msg.pod_uid, labels=dict(msg.labels), host_network=msg.host_network)


def labels_match(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ------------------------------------------------------------------ containers


def spec_to_pb(spec: ContainerSpec) -> pb.ContainerConfig:
    msg = pb.ContainerConfig(
        name=spec.name, layers=spec.layers, args=spec.args, env=spec.env, working_dir=spec.working_dir,
        supplemental_groups=spec.supplemental_groups, sandbox_id=spec.sandbox_id or "", hostname=spec.hostname or "",
        mounts=[pb.Mount(source=m.source, target=m.target, readonly=m.readonly) for m in spec.mounts],
        cap_add=spec.cap_add, cap_drop=spec.cap_drop, no_new_privs=spec.no_new_privs,
        read_only_rootfs=spec.read_only_rootfs, stop_signal=int(spec.stop_signal), labels=spec.labels,
    )
    if spec.user is not None:
        msg.user = spec.user
    res = resources_to_pb(spec.resources)
    if res is not None:
        msg.resources.CopyFrom(res)
    return msg


def spec_from_pb(msg: pb.ContainerConfig) -> ContainerSpec:
    return ContainerSpec(
        name=msg.name, layers=list(msg.layers), args=list(msg.args), env=list(msg.env),
        working_dir=msg.working_dir or "/", user=msg.user if msg.HasField("user") else None,
        supplemental_groups=list(msg.supplemental_groups), sandbox_id=msg.sandbox_id or None,
        hostname=msg.hostname or None, mounts=[Mount(m.source, m.target, m.readonly) for m in msg.mounts],
        resources=resources_from_pb(msg.resources, msg.HasField("resources")),
        cap_add=list(msg.cap_add), cap_drop=list(msg.cap_drop), no_new_privs=msg.no_new_privs,
        read_only_rootfs=msg.read_only_rootfs, stop_signal=msg.stop_signal or int(signal.SIGTERM),
        labels=dict(msg.labels),
    )


_OPTIONAL_STATUS = ("pid", "created_at", "started_at", "finished_at", "exit_code", "signal", "reason", "message",
                    "sandbox_id")


def status_to_pb(st: ContainerStatus, log_path: str = "") -> pb.ContainerStatus:
    msg = pb.ContainerStatus(id=st.id, name=st.name, state=STATES[st.state], oom_killed=st.oom_killed,
                             labels=st.labels, log_path=log_path)
    for f in _OPTIONAL_STATUS:
        value = getattr(st, f)
        if value is not None:
            setattr(msg, f, value)
    return msg


def status_from_pb(msg: pb.ContainerStatus) -> ContainerStatus:
    optional = {f: getattr(msg, f) if msg.HasField(f) else None for f in _OPTIONAL_STATUS}
    return ContainerStatus(id=msg.id, name=msg.name, state=STATE_NAMES[msg.state], oom_killed=msg.oom_killed,
                           labels=dict(msg.labels), **optional)


# ------------------------------------------------------------------ images


def image_to_pb(info: ImageInfo) -> pb.Image:
    c = info.config
    config = pb.ImageConfig(entrypoint=c.entrypoint, cmd=c.cmd, env=c.env, working_dir=c.working_dir, user=c.user,
                            labels=c.labels, stop_signal=c.stop_signal, exposed_ports=c.exposed_ports,
                            architecture=c.architecture, os=c.os)
    return pb.Image(id=info.id, repo_tags=info.repo_tags, repo_digests=info.repo_digests, size=info.size,
                    config=config, layer_dirs=[str(p) for p in info.layer_dirs],
                    manifest_digest=info.manifest_digest, diff_ids=info.diff_ids)


def image_from_pb(msg: pb.Image) -> ImageInfo:
    c = msg.config
    config = ImageConfig(entrypoint=list(c.entrypoint), cmd=list(c.cmd), env=list(c.env), working_dir=c.working_dir,
                         user=c.user, labels=dict(c.labels), stop_signal=c.stop_signal,
                         exposed_ports=list(c.exposed_ports), architecture=c.architecture, os=c.os)
    return ImageInfo(id=msg.id, repo_tags=list(msg.repo_tags), repo_digests=list(msg.repo_digests), size=msg.size,
                     config=config, layer_dirs=[Path(p) for p in msg.layer_dirs],
                     manifest_digest=msg.manifest_digest, diff_ids=list(msg.diff_ids))
