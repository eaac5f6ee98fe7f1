"""The per-pod sync: one level-triggered step from what the runtime runs toward the pod's spec.

``PodSyncer.sync(key, pod)`` reads the actual state from the runtime every time (containers
and sandboxes carry the pod's uid, namespace, name, container name and restart count as
labels), so it gives the same result however often it runs and whatever woke it, and an agent
restarted after ``kill -9`` simply finds its containers again (same ids, same restart counts):

* a live pod: its IP (with pod networking, see :mod:`.podnet`), sandbox (hostname = pod name,
  /etc/hosts naming the IP, resolv.conf from the dnsPolicy), the sandbox's veth, volumes, init containers one at a time in order,
  then the app containers; an exited container is restarted as ``restartPolicy`` says, after an
  exponential back-off (``base * 2**restartCount``, capped; reason CrashLoopBackOff while it
  waits); a container whose liveness or startup probe failed is stopped and restarted likewise;
  then the pod status (phase, conditions, container statuses) is written if it changed;
* a pod with a deletionTimestamp: preStop hooks, the stop signal, SIGKILL once the grace period
  is over, removal of containers, sandbox and volumes, then the Pod is deleted with
  gracePeriodSeconds=0 (the API server then really removes it);
* a pod that is gone (or replaced by a new one of the same name): whatever ran for it is killed
  and removed, and its veth and IP go too.

Of a container's runs only the current one and the one before it are kept (for ``lastState``).
"""

from __future__ import annotations

import asyncio
import calendar
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apimachinery.api.core_v1 import Container, Pod
from apimachinery.client import ApiClient
from apimachinery.errors import ApiError
from apimachinery.events import WARNING, EventRecorder
from apimachinery.meta import now
from nodeagent.agent.env import container_env
from nodeagent.agent.probes import LIVENESS, READINESS, STARTUP, ProbeWorker
from nodeagent.agent.resources import container_resources, pod_resources
from nodeagent.agent.sources import ConfigError, ObjectSource
from nodeagent.agent.volumes import PodVolume, VolumeError, VolumeManager, container_mounts
from nodeagent.cri.client import RuntimeClient
from nodeagent.runtime import sandbox as sb
from nodeagent.runtime.container import ContainerStateError, ContainerStatus, spec_from_image
from nodeagent.runtime.images import ImageError, default_pull_policy
from nodeagent.runtime.spawner import SpawnerError
from nodeagent.status import PodStatusWriter

if TYPE_CHECKING:
    from nodeagent.agent.podnet import PodNetworking

log = logging.getLogger(__name__)

LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CONTAINER = "io.kubernetes.container.name"
LABEL_RESTARTS = "io.kubernetes.container.restartCount"
LABEL_INIT = "kube-lite.io/init"
LABEL_IMAGE = "kube-lite.io/image"
LABEL_IMAGE_ID = "kube-lite.io/image-id"

CONTAINER_ID_PREFIX = "kube-lite://"
DEFAULT_GRACE = 30
MIN_STOP_AFTER_PRESTOP = 2  # the kubelet always leaves the stop signal this much time


@dataclass
class SyncConfig:
    node_name: str
    host_ip: str
    data_dir: Path
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    pod_pids_limit: int | None = None  # the kubelet's --pod-max-pids


def _epoch(ts: str | None) -> float:
    if not ts:
        return 0.0
    return float(calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")))


def pod_key_of(labels: dict[str, str]) -> str | None:
    ns, name = labels.get(LABEL_POD_NAMESPACE), labels.get(LABEL_POD_NAME)
    return f"{ns}/{name}" if ns and name else None


class _Runs:
    """One pod's containers in the runtime, by (init?, name), newest run first."""

    def __init__(self, statuses: list[ContainerStatus]) -> None:
        self.all = statuses
        self.by: dict[tuple[bool, str], list[ContainerStatus]] = {}
        for st in statuses:
            k = (st.labels.get(LABEL_INIT) == "true", st.labels.get(LABEL_CONTAINER, st.name))
            self.by.setdefault(k, []).append(st)
        for runs in self.by.values():
            runs.sort(key=lambda s: int(s.labels.get(LABEL_RESTARTS, "0")), reverse=True)

    def runs(self, init: bool, name: str) -> list[ContainerStatus]:
        return self.by.get((init, name), [])

    def latest(self, init: bool, name: str) -> ContainerStatus | None:
        runs = self.runs(init, name)
        return runs[0] if runs else None


def restart_count(st: ContainerStatus | None) -> int:
    return int(st.labels.get(LABEL_RESTARTS, "0")) if st is not None else 0


def _exit_code(st: ContainerStatus) -> int:
    if st.exit_code is not None:
        return st.exit_code
    return 128 + st.signal if st.signal else 0


def should_restart(policy: str, st: ContainerStatus) -> bool:
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return _exit_code(st) != 0
    return False


def _terminated(st: ContainerStatus) -> dict[str, Any]:
    code = _exit_code(st)
    out: dict[str, Any] = {
        "exitCode": code,
        "reason": "OOMKilled" if st.oom_killed else (st.reason or ("Completed" if code == 0 else "Error")),
        "startedAt": st.started_at, "finishedAt": st.finished_at,
        "containerID": CONTAINER_ID_PREFIX + st.id,
    }
    if st.signal:
        out["signal"] = st.signal
    if st.message:
        out["message"] = st.message
    return out


class PodSyncer:
    def __init__(
        self, client: ApiClient, runtime: RuntimeClient, config: SyncConfig,
        enqueue: Callable[[str, float], None], network: PodNetworking | None = None,
    ) -> None:
        self.client = client
        self.runtime = runtime  # the runtime service (containers, sandboxes and images)
        self.config = config
        self.enqueue = enqueue  # (pod key, delay seconds)
        self.network = network  # None: pods get a namespace with loopback only
        self.pod_ips: dict[str, str] = {}  # uid -> the pod's IP (not for hostNetwork pods)
        self.volumes = VolumeManager(config.data_dir, host_ip=config.host_ip)
        self.writer = PodStatusWriter(client)
        self.events = EventRecorder(client, "kubelet", config.node_name)
        self.pod_rt = client.scheme.for_model(Pod)
        self.probes: dict[str, dict[tuple[str, str], ProbeWorker]] = {}  # pod uid -> (container id, kind) ->
        self.waiting: dict[tuple[str, str], tuple[str, str]] = {}  # (uid, container) -> (reason, message)
        self.written: dict[str, dict[str, Any]] = {}  # uid -> the status last written
        self.pull_failures: dict[tuple[str, str], int] = {}  # (uid, container) -> failed pulls in a row

    # ------------------------------------------------------------------ reading the runtime

    async def list_containers(self, labels: dict[str, str] | None = None) -> list[ContainerStatus]:
        """The runtime's containers (with ``labels``: those carrying them, which the runtime
        selects before it reads their state). A listing can race with another worker creating or
        removing a container (the runtime then reports it in a state it just left): retry."""
        for attempt in range(3):
            try:
                return await self.runtime.list_containers(labels=labels)
            except SpawnerError:
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05)
        raise AssertionError("unreachable")

    async def _pod_containers(self, uid: str) -> list[ContainerStatus]:
        return await self.list_containers({LABEL_POD_UID: uid})

    async def _sandboxes(self, labels: dict[str, str] | None = None) -> list[sb.Sandbox]:
        return await self.runtime.list_pod_sandboxes(labels=labels)

    async def known_pod_keys(self) -> set[str]:
        """Keys of every pod something runs for (sandboxes and containers), for start-up."""
        keys = {pod_key_of(s.labels) for s in await self._sandboxes()}
        keys |= {pod_key_of(c.labels) for c in await self.list_containers()}
        return {k for k in keys if k}

    # ------------------------------------------------------------------ the sync

    async def sync(self, key: str, pod: Pod | None) -> None:
        uid = pod.metadata.uid if pod is not None else None
        # Whatever ran for another pod of this name (deleted, or deleted and re-created) goes.
        namespace, _, name = key.partition("/")
        named = {LABEL_POD_NAMESPACE: namespace, LABEL_POD_NAME: name}
        for s in await self._sandboxes(named):
            if s.labels.get(LABEL_POD_UID) != uid:
                await self.cleanup(s.labels.get(LABEL_POD_UID, ""), kill=True)
        for c in await self.list_containers(named):
            if c.labels.get(LABEL_POD_UID) != uid:
                await self.cleanup(c.labels.get(LABEL_POD_UID, ""), kill=True)
        if pod is None or not uid:
            return
        if pod.metadata.deletion_timestamp:
            await self.terminate(pod)
            return
        if pod.status.phase in ("Succeeded", "Failed"):
            for c in await self._pod_containers(uid):
                if c.state == "running":  # a finished pod runs nothing (e.g. after a restart)
                    await self.runtime.stop_container(c.id, 0)
            return
        await self._run(pod, key, uid)

    async def _run(self, pod: Pod, key: str, uid: str) -> None:
        sandbox = await self._ensure_sandbox(pod)
        source = ObjectSource(self.client, pod.metadata.namespace or "default")
        volumes: dict[str, PodVolume] | None = None
        volume_error: tuple[str, str] | None = None
        try:
            volumes = await self.volumes.setup(pod, source)
        except (ConfigError, VolumeError, OSError) as exc:
            volume_error = ("ContainerCreating", f"MountVolume.SetUp failed: {exc}")
            self.enqueue(key, 2.0)
        runs = _Runs(await self._pod_containers(uid))
        policy = pod.spec.restart_policy or "Always"
        changed = False
        init_failed = False
        initialized = True
        for ic in pod.spec.init_containers or []:
            latest = runs.latest(True, ic.name)
            if latest is not None and latest.state == "exited" and _exit_code(latest) == 0:
                continue
            initialized = False
            if volumes is None:
                break
            if latest is None or latest.state == "created":
                changed |= await self._start(pod, ic, sandbox, volumes, source, restart_count(latest), True, latest)
            elif latest.state == "exited":
                if policy == "Never":
                    init_failed = True
                else:
                    changed |= await self._restart_after_backoff(pod, key, ic, sandbox, volumes, source, latest, True)
            break
        if initialized and volumes is not None:
            for c in pod.spec.containers:
                latest = runs.latest(False, c.name)
                if latest is None or latest.state == "created":
                    changed |= await self._start(pod, c, sandbox, volumes, source, restart_count(latest), False, latest)
                elif latest.state == "running":
                    if self._probe_failed(uid, latest.id):
                        await self._kill_for_probe(pod, c, latest)
                        changed = True
                elif should_restart(policy, latest):
                    changed |= await self._restart_after_backoff(pod, key, c, sandbox, volumes, source, latest, False)
        if changed:
            runs = _Runs(await self._pod_containers(uid))
        await self._gc_runs(runs)
        self._sync_probes(pod, key, runs, sandbox)
        status = self._status(pod, runs, policy, initialized, init_failed, volume_error)
        if self.written.get(uid) != status:
            await self.writer.write(pod, status)
            self.written[uid] = status

    async def _ensure_sandbox(self, pod: Pod) -> sb.Sandbox:
        """The pod's sandbox, created if missing, with its network wired (pod networking on).

        The IP is allocated before the sandbox is created so /etc/hosts can name it; a crash in
        between leaves an address with no sandbox, which the start-up reconcile frees."""
        uid = pod.metadata.uid or ""
        host_network = bool(pod.spec.host_network)
        net = self.network if not host_network else None
        ip = await net.allocate(uid) if net is not None else None
        found = await self._sandboxes({LABEL_POD_UID: uid})
        if found:
            sandbox = found[0]
        else:
            labels = {LABEL_POD_UID: uid, LABEL_POD_NAME: pod.metadata.name or "",
                      LABEL_POD_NAMESPACE: pod.metadata.namespace or ""}
            hostname = pod.spec.hostname or pod.metadata.name or ""
            dns = self.network.resolv_conf(pod) if self.network is not None else ((), (), ())
            sandbox = await self.runtime.run_pod_sandbox(uid, hostname, labels=labels,
                                                         ips=(ip,) if ip else (), dns=dns, host_network=host_network,
                                                         resources=pod_resources(pod, self.config.pod_pids_limit))
        if net is not None and ip is not None:
            await net.wire(uid, sandbox.ns_path("net"), ip, pod)
            self.pod_ips[uid] = ip
        return sandbox

    # ------------------------------------------------------------------ starting containers

    def _backoff(self, restarts: int) -> float:
        return float(min(self.config.backoff_base * (2 ** restarts), self.config.backoff_max))

    async def _restart_after_backoff(
        self, pod: Pod, key: str, c: Container, sandbox: sb.Sandbox, volumes: dict[str, PodVolume],
        source: ObjectSource, latest: ContainerStatus, init: bool,
    ) -> bool:
        restarts = restart_count(latest)
        delay = self._backoff(restarts)
        wait = _epoch(latest.finished_at) + delay - time.time()
        ukey = (pod.metadata.uid or "", c.name)
        if wait > 0:
            self.waiting[ukey] = ("CrashLoopBackOff", f"back-off {delay:g}s restarting failed container={c.name} "
                                  f"pod={pod.metadata.name}_{pod.metadata.namespace}({pod.metadata.uid})")
            self.enqueue(key, wait)
            return False
        return await self._start(pod, c, sandbox, volumes, source, restarts + 1, init, None)

    async def _start(
        self, pod: Pod, c: Container, sandbox: sb.Sandbox, volumes: dict[str, PodVolume], source: ObjectSource,
        restarts: int, init: bool, created: ContainerStatus | None,
    ) -> bool:
        """Create and start one run of ``c``; False (with a waiting reason) when it cannot."""
        uid = pod.metadata.uid or ""
        ukey = (uid, c.name)
        if created is not None:  # created but never started (the agent died in between)
            await self.runtime.remove_container(created.id)
        image = c.image or ""
        try:
            info = await self.runtime.pull_image(image, c.image_pull_policy or default_pull_policy(image))
        except ImageError as exc:
            failures = self.pull_failures.get(ukey, 0) + 1
            self.pull_failures[ukey] = failures
            self.events.event(pod, WARNING, "Failed", f'Failed to pull image "{image}": {exc}')
            if exc.reason == "ErrImagePull" and failures > 1:
                # The kubelet's wording once pulls keep failing and are retried with back-off.
                self.waiting[ukey] = ("ImagePullBackOff", f'Back-off pulling image "{image}": {exc}')
            else:
                self.waiting[ukey] = (exc.reason, str(exc))
            self.enqueue(f"{pod.metadata.namespace}/{pod.metadata.name}", self._backoff(failures - 1))
            return False
        self.pull_failures.pop(ukey, None)
        try:
            pod_ip = self.config.host_ip if pod.spec.host_network else self.pod_ips.get(uid)
            env = await container_env(pod, c, source, host_ip=self.config.host_ip, pod_ip=pod_ip)
            mounts = container_mounts(c, volumes)
        except ConfigError as exc:
            self.waiting[ukey] = (exc.reason, str(exc))
            self.enqueue(f"{pod.metadata.namespace}/{pod.metadata.name}", 2.0)
            return False
        sc = c.security_context
        psc = pod.spec.security_context
        labels = {
            **sandbox.labels, LABEL_CONTAINER: c.name, LABEL_RESTARTS: str(restarts),
            LABEL_INIT: "true" if init else "false", LABEL_IMAGE: image,
            LABEL_IMAGE_ID: info.repo_digests[0] if info.repo_digests else info.id,
        }
        spec = spec_from_image(
            c.name, info,  # type: ignore[arg-type]  # container._Image declares settable fields
            command=c.command, args=c.args, env=env, working_dir=c.working_dir,
            run_as_user=(sc.run_as_user if sc and sc.run_as_user is not None else psc.run_as_user if psc else None),
            run_as_group=(sc.run_as_group if sc and sc.run_as_group is not None else psc.run_as_group if psc else None),
            sandbox_id=sandbox.id, mounts=mounts, labels=labels, resources=container_resources(c),
            read_only_rootfs=bool(sc and sc.read_only_root_filesystem),
            cap_add=list(sc.capabilities.add or []) if sc and sc.capabilities else [],
            cap_drop=list(sc.capabilities.drop or []) if sc and sc.capabilities else [],
            no_new_privs=not (sc and sc.allow_privilege_escalation),
        )
        self.waiting.pop(ukey, None)
        cid = await self.runtime.create_container(spec)
        try:
            await self.runtime.start_container(cid)
        except (SpawnerError, ContainerStateError) as exc:
            # The runtime recorded a StartError exit; the next sync restarts it after a back-off.
            log.info("pod %s/%s: container %s failed to start: %s", pod.metadata.namespace, pod.metadata.name, c.name, exc)
        else:
            log.info("pod %s/%s: started container %s (%s, restart %d)", pod.metadata.namespace,
                     pod.metadata.name, c.name, cid[:12], restarts)
        return True

    async def _gc_runs(self, runs: _Runs) -> None:
        """Keep a container's current run and the one before it; remove older exited runs."""
        for history in runs.by.values():
            for old in history[2:]:
                if old.state == "exited":
                    await self.runtime.remove_container(old.id)

    # ------------------------------------------------------------------ probes

    def _probe_failed(self, uid: str, cid: str) -> bool:
        workers = self.probes.get(uid, {})
        return any(w.failed for (wcid, _), w in workers.items() if wcid == cid)

    async def _kill_for_probe(self, pod: Pod, c: Container, st: ContainerStatus) -> None:
        log.info("pod %s/%s: container %s failed its liveness or startup probe, restarting", pod.metadata.namespace,
                 pod.metadata.name, c.name)
        grace = pod.spec.termination_grace_period_seconds
        await self.runtime.stop_container(st.id, float(DEFAULT_GRACE if grace is None else grace))

    def _sync_probes(self, pod: Pod, key: str, runs: _Runs, sandbox: sb.Sandbox) -> None:
        running = {st.id: st for st in runs.all if st.state == "running" and st.labels.get(LABEL_INIT) != "true"}
        by_name = {c.name: c for c in pod.spec.containers}
        netns = sandbox.ns_path("net")
        workers = self.probes.setdefault(pod.metadata.uid or "", {})
        for (cid, kind), w in list(workers.items()):
            if cid not in running:
                w.cancel()
                del workers[(cid, kind)]
        for cid, st in running.items():
            c = by_name.get(st.labels.get(LABEL_CONTAINER, ""))
            if c is None:
                continue
            for kind, probe in ((STARTUP, c.startup_probe), (LIVENESS, c.liveness_probe), (READINESS, c.readiness_probe)):
                if probe is None or (cid, kind) in workers:
                    continue
                if kind != STARTUP and c.startup_probe is not None and not self._started(workers, cid, c):
                    continue  # liveness and readiness wait for the startup probe to pass
                w = ProbeWorker(kind, probe, c, self.runtime, cid, None if netns == "host" else netns,
                                functools.partial(self.enqueue, key, 0.0), self.pod_ips.get(pod.metadata.uid or ""))
                workers[(cid, kind)] = w
                w.start()

    @staticmethod
    def _started(workers: dict[tuple[str, str], ProbeWorker], cid: str, c: Container) -> bool:
        if c.startup_probe is None:
            return True
        w = workers.get((cid, STARTUP))
        return w is not None and w.result

    def _ready(self, workers: dict[tuple[str, str], ProbeWorker], cid: str, c: Container) -> bool:
        if not self._started(workers, cid, c):
            return False
        if c.readiness_probe is None:
            return True
        w = workers.get((cid, READINESS))
        return w is not None and w.result

    # ------------------------------------------------------------------ status

    def _container_status(self, pod: Pod, c: Container, runs: _Runs, init: bool, policy: str) -> dict[str, Any]:
        history = runs.runs(init, c.name)
        latest = history[0] if history else None
        waiting = self.waiting.get((pod.metadata.uid or "", c.name))
        out: dict[str, Any] = {"name": c.name, "state": {}, "lastState": {}, "ready": False,
                               "restartCount": restart_count(latest), "image": c.image or "", "imageID": "",
                               "started": False}
        if latest is None:
            reason = waiting or ("PodInitializing" if not init and pod.spec.init_containers else "ContainerCreating", "")
            out["state"] = {"waiting": {"reason": reason[0], **({"message": reason[1]} if reason[1] else {})}}
            return out
        out["imageID"] = latest.labels.get(LABEL_IMAGE_ID, "")
        out["containerID"] = CONTAINER_ID_PREFIX + latest.id
        previous = history[1] if len(history) > 1 else None
        if latest.state == "running":
            out["state"] = {"running": {"startedAt": latest.started_at}}
            workers = self.probes.get(pod.metadata.uid or "", {})
            out["started"] = self._started(workers, latest.id, c)
            out["ready"] = self._ready(workers, latest.id, c) if not init else False
            if previous is not None and previous.state == "exited":
                out["lastState"] = {"terminated": _terminated(previous)}
        elif latest.state == "exited":
            restarting = should_restart(policy, latest) and not (init and _exit_code(latest) == 0)
            if restarting and waiting is not None:
                out["state"] = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
                out["lastState"] = {"terminated": _terminated(latest)}
            else:
                out["state"] = {"terminated": _terminated(latest)}
                if previous is not None and previous.state == "exited":
                    out["lastState"] = {"terminated": _terminated(previous)}
            if init and _exit_code(latest) == 0:
                out["ready"] = True
        else:
            out["state"] = {"waiting": {"reason": "ContainerCreating"}}
        return out

    def _status(
        self, pod: Pod, runs: _Runs, policy: str, initialized: bool, init_failed: bool,
        volume_error: tuple[str, str] | None,
    ) -> dict[str, Any]:
        if volume_error is not None:
            for c in [*(pod.spec.init_containers or []), *pod.spec.containers]:
                if runs.latest(False, c.name) is None and runs.latest(True, c.name) is None:
                    self.waiting[(pod.metadata.uid or "", c.name)] = volume_error
        init_statuses = [self._container_status(pod, c, runs, True, policy) for c in pod.spec.init_containers or []]
        statuses = [self._container_status(pod, c, runs, False, policy) for c in pod.spec.containers]
        latests = [runs.latest(False, c.name) for c in pod.spec.containers]
        if init_failed:
            phase = "Failed"
        elif not initialized or any(st is None for st in latests):
            phase = "Pending"
        elif any(st is not None and st.state != "exited" for st in latests):
            phase = "Running"
        elif any(st is not None and should_restart(policy, st) for st in latests):
            phase = "Running"  # restarting
        elif all(st is not None and _exit_code(st) == 0 for st in latests):
            phase = "Succeeded"
        else:
            phase = "Failed"
        unready = [s["name"] for s in statuses if not s["ready"]]
        uninit = [s["name"] for s in init_statuses if not s["ready"]]
        # What this agent wrote last is fresher than the informer's copy (which may lag behind).
        last = self.written.get(pod.metadata.uid or "")
        kept: dict[str, tuple[str | None, str | None]] = (
            {c["type"]: (c["status"], c["lastTransitionTime"]) for c in last["conditions"]} if last else
            {c.type: (c.status, c.last_transition_time) for c in pod.status.conditions or []})
        ts = now()

        def cond(ctype: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
            status = "True" if ok else "False"
            prior = kept.get(ctype)
            transition = prior[1] if prior is not None and prior[0] == status else None
            out: dict[str, Any] = {"type": ctype, "status": status, "lastProbeTime": None,
                                   "lastTransitionTime": transition or ts}
            if not ok:
                out["reason"] = reason
                out["message"] = message
            return out

        done = phase in ("Succeeded", "Failed")
        not_ready_reason = "PodCompleted" if done else "ContainersNotReady"
        not_ready_msg = "" if done else f"containers with unready status: [{' '.join(unready)}]"
        conditions = [
            cond("PodScheduled", True),
            cond("Initialized", initialized, "ContainersNotInitialized",
                 f"containers with incomplete status: [{' '.join(uninit)}]"),
            cond("ContainersReady", not unready and not done, not_ready_reason, not_ready_msg),
            cond("Ready", not unready and not done, not_ready_reason, not_ready_msg),
        ]
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.config.host_ip,
            "hostIPs": [{"ip": self.config.host_ip}],
            "startTime": pod.status.start_time or self.written.get(pod.metadata.uid or "", {}).get("startTime") or ts,
            "containerStatuses": statuses,
        }
        pod_ip = self.config.host_ip if pod.spec.host_network else self.pod_ips.get(pod.metadata.uid or "")
        if pod_ip:
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}]
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        return status

    # ------------------------------------------------------------------ termination

    async def terminate(self, pod: Pod) -> None:
        """Graceful stop (preStop, stop signal, SIGKILL after the grace period), clean up, delete."""
        uid = pod.metadata.uid or ""
        grace = pod.metadata.deletion_grace_period_seconds
        if grace is None:
            grace = pod.spec.termination_grace_period_seconds
        grace = DEFAULT_GRACE if grace is None else grace
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        by_name = {c.name: c for c in [*(pod.spec.init_containers or []), *pod.spec.containers]}
        running = [c for c in await self._pod_containers(uid) if c.state == "running"]
        for w in self.probes.pop(uid, {}).values():
            w.cancel()

        async def stop_one(st: ContainerStatus) -> None:
            c = by_name.get(st.labels.get(LABEL_CONTAINER, ""))
            hook = c.lifecycle.pre_stop if c is not None and c.lifecycle is not None else None
            if hook is not None and grace > 0:
                remaining = max(deadline - loop.time(), 0.1)
                try:
                    if hook.exec is not None:
                        await self.runtime.exec_sync(st.id, list(hook.exec.command or []), remaining)
                    elif hook.sleep is not None:
                        await asyncio.sleep(min(float(hook.sleep.seconds), remaining))
                except (TimeoutError, ContainerStateError, SpawnerError) as exc:
                    log.info("pod %s/%s: preStop hook of %s failed: %s", pod.metadata.namespace,
                             pod.metadata.name, st.name, exc)
            timeout = 0.0 if grace == 0 else max(deadline - loop.time(), MIN_STOP_AFTER_PRESTOP)
            await self.runtime.stop_container(st.id, timeout)

        await asyncio.gather(*(stop_one(st) for st in running))
        await self.cleanup(uid, kill=False)
        try:
            await self.client.delete(self.pod_rt, pod.metadata.name or "", pod.metadata.namespace,
                                     grace_period_seconds=0, preconditions={"uid": uid})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    async def cleanup(self, uid: str, *, kill: bool) -> None:
        """Remove everything the pod had on the node (``kill``: its containers get SIGKILL)."""
        for w in self.probes.pop(uid, {}).values():
            w.cancel()
        for s in await self._sandboxes({LABEL_POD_UID: uid}):
            await self.runtime.remove_pod_sandbox(s.id)
        for c in await self._pod_containers(uid):
            await self.runtime.remove_container(c.id)
        await asyncio.to_thread(self.volumes.teardown, uid)
        if self.network is not None and uid:
            await self.network.unwire(uid)
        self.pod_ips.pop(uid, None)
        self.written.pop(uid, None)
        for k in [k for k in self.waiting if k[0] == uid]:
            del self.waiting[k]
        for k in [k for k in self.pull_failures if k[0] == uid]:
            del self.pull_failures[k]
        if kill:
            log.info("removed the containers of pod uid %s", uid)
