"""The native runtime's API: create, start, stop, inspect, exec into and remove containers.

:class:`Runtime` is what the node agent (through its CRI-shaped service) calls. It never forks:
it prepares directories and cgroups, writes the container's config, and asks the node's spawner
(:mod:`nodeagent.runtime.spawner`) to fork, wait, signal and exec. Every call is blocking and
safe from any thread (one spawner connection per call); an asyncio caller wraps them in
``asyncio.to_thread``.

State lives on disk under ``<data_dir>/containers/<id>/`` (see :mod:`nodeagent.runtime.rootfs`),
so a restarted agent builds a new :class:`Runtime` on the same data dir and finds everything:
the spawner (still running, it is in its own session) keeps its children, and :meth:`list`
reads each container's config, pid + start time and exit record. Nothing is started twice: the
spawner refuses to ``run`` a container whose ``pid.json`` exists.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from nodeagent import pathsafe
from nodeagent.runtime import cgroups as cg
from nodeagent.runtime import linux, rootfs, spawner
from nodeagent.runtime import sandbox as sb
from nodeagent.runtime.cgroups import Cgroups, Resources, Stats
from nodeagent.runtime.spawner import ExitStream, SpawnerClient, SpawnerError, read_json


class ContainerNotFound(KeyError):
    pass


class ContainerStateError(RuntimeError):
    """The operation does not fit the container's state (e.g. start twice)."""


@dataclass(frozen=True)
class Mount:
    """A volume: host path ``source`` at ``target`` in the container."""

    source: str
    target: str
    readonly: bool = False


@dataclass
class ContainerSpec:
    """Everything needed to create a container (the image already resolved to layer dirs)."""

    name: str
    layers: list[str]  # image layer directories, lowest first (ImageInfo.layer_dirs)
    args: list[str]  # the process: resolve_command(image entrypoint/cmd, pod command/args)
    env: list[str] = field(default_factory=list)  # "NAME=value", image env then pod env
    working_dir: str = "/"
    user: str | None = None  # "uid", "uid:gid" or names (resolved in the container's /etc/passwd)
    supplemental_groups: list[int] = field(default_factory=list)
    sandbox_id: str | None = None  # join this pod sandbox's net/ipc/uts namespaces
    hostname: str | None = None  # only without a sandbox (the sandbox names the pod)
    mounts: list[Mount] = field(default_factory=list)
    resources: Resources | None = None
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    no_new_privs: bool = True  # = not allowPrivilegeEscalation
    read_only_rootfs: bool = False
    stop_signal: int = signal.SIGTERM  # the image's STOPSIGNAL, if it names one
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.layers = [str(p) for p in self.layers]  # ImageInfo.layer_dirs holds Paths

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerSpec:
        data = dict(data)
        data["mounts"] = [Mount(**m) for m in data.get("mounts", [])]
        if data.get("resources") is not None:
            data["resources"] = Resources(**data["resources"])
        return cls(**data)


@dataclass(frozen=True)
class ContainerStatus:
    id: str
    name: str
    state: str  # "created", "running" or "exited"
    pid: int | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None  # Completed, Error, OOMKilled, StartError, Unknown
    message: str | None = None
    oom_killed: bool = False
    sandbox_id: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


def resolve_command(
    entrypoint: Sequence[str] | None, cmd: Sequence[str] | None, command: Sequence[str] | None, args: Sequence[str] | None
) -> list[str]:
    """Kubernetes' rule: ``command`` replaces the image ENTRYPOINT (and drops its CMD), ``args``
    replaces CMD."""
    if command:
        return [*command, *(args or [])]
    return [*(entrypoint or []), *(args if args else cmd or [])]


class _ImageConfig(Protocol):
    entrypoint: list[str]
    cmd: list[str]
    env: list[str]
    working_dir: str
    user: str
    stop_signal: str


class _Image(Protocol):
    layer_dirs: list[Path]
    config: _ImageConfig


def signal_number(name: str) -> int:
    """An image's STOPSIGNAL (``SIGQUIT``, ``QUIT`` or ``3``) as a number; SIGTERM if unset."""
    if not name:
        return int(signal.SIGTERM)
    if name.isdigit():
        return int(name)
    upper = name.upper()
    return int(signal.Signals[upper if upper.startswith("SIG") else f"SIG{upper}"])


def merge_env(image_env: Sequence[str], container_env: Sequence[str]) -> list[str]:
    """The image's environment overridden, name by name, by the container's."""
    merged: dict[str, str] = {}
    for entry in [*image_env, *container_env]:
        name, _, value = entry.partition("=")
        merged[name] = value
    return [f"{k}={v}" for k, v in merged.items()]


def spec_from_image(
    name: str,
    image: _Image,
    *,
    command: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    env: Sequence[str] = (),
    working_dir: str | None = None,
    run_as_user: int | None = None,
    run_as_group: int | None = None,
    **kw: Any,
) -> ContainerSpec:
    """A :class:`ContainerSpec` from an image (``ImageInfo``) and the pod's container fields.

    Kubernetes' rules: command/args as in :func:`resolve_command`; runAsUser/runAsGroup
    override the image's USER; the pod's workingDir overrides the image's.
    """
    cfg = image.config
    user: str | None = cfg.user or None
    if run_as_user is not None or run_as_group is not None:
        image_user, _, image_group = (cfg.user or "").partition(":")
        u = str(run_as_user) if run_as_user is not None else (image_user or "0")
        g = str(run_as_group) if run_as_group is not None else image_group
        user = f"{u}:{g}" if g else u
    return ContainerSpec(
        name=name,
        layers=[str(p) for p in image.layer_dirs],
        args=resolve_command(cfg.entrypoint, cfg.cmd, command, args),
        env=merge_env(cfg.env, env),
        working_dir=working_dir or cfg.working_dir or "/",
        user=user,
        stop_signal=signal_number(cfg.stop_signal),
        **kw,
    )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ContainerHandle:
    """A created container; thin convenience over :class:`Runtime` calls by id."""

    def __init__(self, runtime: Runtime, container_id: str, name: str) -> None:
        self.runtime = runtime
        self.id = container_id
        self.name = name

    @property
    def dir(self) -> Path:
        return self.runtime.container_dir(self.id)

    def start(self) -> int:
        return self.runtime.start(self.id)

    def stop(self, timeout: float = 30.0) -> ContainerStatus:
        return self.runtime.stop(self.id, timeout)

    def status(self) -> ContainerStatus:
        return self.runtime.status(self.id)

    def wait(self, timeout: float | None = None) -> ContainerStatus | None:
        return self.runtime.wait(self.id, timeout)

    def exec_sync(self, cmd: Sequence[str], timeout: float | None = None) -> tuple[int, bytes, bytes]:
        return self.runtime.exec_sync(self.id, cmd, timeout)

    def remove(self) -> None:
        self.runtime.remove(self.id)

    def __repr__(self) -> str:
        return f"ContainerHandle({self.name!r}, {self.id[:12]})"


class Runtime:
    """One node's native runtime, rooted at ``data_dir`` (owned by root, mode 0700)."""

    def __init__(
        self,
        data_dir: str | Path,
        node_name: str,
        *,
        cgroups: Cgroups | None = None,
        cgroup_parent: str = "kube-lite",
        cgroup_root: str | Path = "/sys/fs/cgroup",
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.cgroups: Cgroups = cgroups or cg.detect(cgroup_root)
        self.cgroup_root = str(self.cgroups.root)
        self.node_cgroup = f"{cgroup_parent}/{node_name}"
        self.client: SpawnerClient
        self.spawner_process: subprocess.Popen[bytes] | None
        self.client, self.spawner_process = spawner.connect_or_start(self.data_dir)
        (self.data_dir / "containers").mkdir(exist_ok=True)
        (self.data_dir / "sandboxes").mkdir(exist_ok=True)
        self.cgroups.create(self.node_cgroup)
        self.cgroups.restrict_devices(self.node_cgroup)  # inherited by every pod and container
        self._lock = threading.Lock()
        self._exit_streams: dict[str, ExitStream] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        # What never changes once written, so listings (the agent lists often) read it once:
        # sandbox configs, a container's pid.json, and the status of an exited container.
        self._sandboxes: dict[str, sb.Sandbox] = {}
        self._started: dict[str, dict[str, Any]] = {}
        self._exited: dict[str, ContainerStatus] = {}

    def close(self, stop_spawner: bool = False) -> None:
        """Forget the spawner; with ``stop_spawner`` also end it (running containers live on)."""
        with self._lock:
            streams, self._exit_streams = list(self._exit_streams.values()), {}
        for stream in streams:
            stream.close()
        if stop_spawner:
            self.client.shutdown()
            if self.spawner_process is not None:
                self.spawner_process.wait(10)

    # ------------------------------------------------------------------ sandboxes

    def sandbox_dir(self, sandbox_id: str) -> Path:
        return self.data_dir / "sandboxes" / pathsafe.entry(sandbox_id, "sandbox id")

    def create_sandbox(
        self,
        pod_uid: str,
        hostname: str,
        *,
        sandbox_id: str | None = None,
        ips: tuple[str, ...] = (),
        host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = (),
        dns: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ()),
        resources: Resources | None = None,
        labels: dict[str, str] | None = None,
        host_network: bool = False,
    ) -> sb.Sandbox:
        """A pod's shared namespaces + cgroup ``<node>/pod<uid>``; idempotent per sandbox id.

        ``ips`` are the pod's IPs for /etc/hosts; ``dns`` is (nameservers, searches, options)
        for resolv.conf (empty: the node's own). With ``host_network`` the pod keeps the node's
        network and UTS namespaces (hostname = the node's).
        """
        sid = sandbox_id or secrets.token_hex(32)
        return sb.create_sandbox(
            self.client, self.cgroups, self.sandbox_dir(sid), sid, sb.valid_hostname(hostname), f"{self.node_cgroup}/pod{pod_uid}",
            pod_uid=pod_uid, ips=ips, host_aliases=host_aliases, dns=dns, resources=resources, labels=labels,
            host_network=host_network,
        )

    def get_sandbox(self, sandbox_id: str) -> sb.Sandbox:
        d = self.sandbox_dir(sandbox_id)
        try:
            return self._load_sandbox(d)
        except FileNotFoundError:
            raise KeyError(f"sandbox {sandbox_id} not found") from None

    def _load_sandbox(self, d: Path) -> sb.Sandbox:
        cached = self._sandboxes.get(d.name)
        if cached is not None and d.is_dir():  # another Runtime on this data dir may have removed it
            return cached
        self._sandboxes.pop(d.name, None)
        sandbox = sb.Sandbox.load(d)
        self._sandboxes[d.name] = sandbox
        return sandbox

    def list_sandboxes(self, labels: Mapping[str, str] | None = None) -> list[sb.Sandbox]:
        """Every sandbox, or those whose labels include ``labels``."""
        if labels:
            return [s for s in self.list_sandboxes() if all(s.labels.get(k) == v for k, v in labels.items())]
        out = []
        names = set()
        for d in sorted((self.data_dir / "sandboxes").iterdir()):
            names.add(d.name)
            cached = self._sandboxes.get(d.name)
            if cached is not None:  # listed just now: the directory exists
                out.append(cached)
                continue
            try:
                out.append(self._load_sandbox(d))
            except (FileNotFoundError, json.JSONDecodeError):
                continue
        for gone in self._sandboxes.keys() - names:
            self._sandboxes.pop(gone, None)
        return out

    def stop_sandbox(self, sandbox_id: str, timeout: float = 30.0) -> None:
        """Stop every container of the sandbox (each gets ``timeout`` after its stop signal)."""
        for c in self.list():
            if c.sandbox_id == sandbox_id and c.state == "running":
                self.stop(c.id, timeout)

    def sandbox_stats(self, sandbox_id: str) -> Stats:
        """The pod's usage (its cgroup holds all its containers), for ``kubectl top pod``."""
        return self.cgroups.stats(self.get_sandbox(sandbox_id).cgroup_path)

    def remove_sandbox(self, sandbox_id: str) -> None:
        """Remove the sandbox's containers (SIGKILL: stop them first for a graceful end), kill
        leftovers in its cgroup, unpin its namespaces, delete its directory."""
        d = self.sandbox_dir(sandbox_id)
        if not d.exists():
            return
        for c in self.list():
            if c.sandbox_id == sandbox_id:
                self.remove(c.id)
        try:
            cgroup_path = sb.Sandbox.load(d).cgroup_path
        except FileNotFoundError:
            cgroup_path = None
        if cgroup_path:
            self.cgroups.remove(cgroup_path)
        rootfs.teardown(d)
        self._sandboxes.pop(d.name, None)

    # ------------------------------------------------------------------ containers

    def container_dir(self, container_id: str) -> Path:
        return self.data_dir / "containers" / pathsafe.entry(container_id, "container id")

    def _config(self, container_id: str) -> dict[str, Any]:
        """The container's config.json (never changes after create; cached, read-only)."""
        d = self.container_dir(container_id)
        cfg = self._configs.get(container_id)
        if cfg is not None and d.is_dir():  # another Runtime on this data dir may have removed it
            return cfg
        cfg = read_json(d / "config.json")
        if cfg is None:
            self._configs.pop(container_id, None)
            raise ContainerNotFound(container_id)
        self._configs[container_id] = cfg
        return cfg

    def create_container(self, spec: ContainerSpec, container_id: str | None = None) -> ContainerHandle:
        """Directories, generated /etc files, cgroup and config; nothing runs yet."""
        cid = container_id or secrets.token_hex(32)
        cdir = rootfs.ContainerDir(self.container_dir(cid))
        if cdir.config.exists():
            return ContainerHandle(self, cid, self._config(cid)["spec"]["name"])
        if spec.sandbox_id:
            sandbox = self.get_sandbox(spec.sandbox_id)
            cgroup_path = f"{sandbox.cgroup_path}/{cid}"
            etc = sandbox.etc
            namespaces = {name: sandbox.ns_path(name) for name in sb.SHARED_NAMESPACES}
            hostname = sandbox.hostname
            shm: str | None = str(sandbox.shm)
        else:
            cgroup_path = f"{self.node_cgroup}/{cid}"
            etc = cdir.etc
            namespaces = {name: "new" for name in sb.SHARED_NAMESPACES}
            hostname = sb.valid_hostname(spec.hostname or spec.name)
            shm = None
        try:
            cdir.prepare()
            if not spec.sandbox_id:
                rootfs.write_etc(etc, hostname, rootfs.hosts_file(hostname), rootfs.resolv_conf())
            self.cgroups.create(cgroup_path, spec.resources or Resources())
            process = {
                "args": list(spec.args),
                "env": list(spec.env),
                "cwd": spec.working_dir or "/",
                "user": spec.user,
                "groups": list(spec.supplemental_groups),
                "capabilities": linux.effective_capabilities(spec.cap_add, spec.cap_drop),
                "no_new_privs": spec.no_new_privs,
                "hostname": hostname,
            }
            mounts = [
                # Writable even with a read-only root filesystem, as in Kubernetes.
                {"source": str(etc / name), "target": f"/etc/{name}", "readonly": False}
                for name in ("hosts", "hostname", "resolv.conf")
            ] + [asdict(m) for m in spec.mounts]
            plan = {
                "dir": str(cdir.path),
                "rootfs": {
                    "target": str(cdir.rootfs),
                    "lower": [str(p) for p in spec.layers],
                    "upper": str(cdir.upper),
                    "work": str(cdir.work),
                    "readonly": spec.read_only_rootfs,
                },
                "mounts": mounts,
                "namespaces": namespaces,
                "hostname": hostname,
                "shm": shm,
                "cgroup": {"version": self.cgroups.version, "root": self.cgroup_root, "path": cgroup_path},
                "cgroup_join": self.cgroups.join_files(cgroup_path),
                "log_path": str(cdir.log),
                "process": process,
            }
            cfg = {"id": cid, "created_at": _now(), "spec": spec.to_json(), "plan": plan}
            spawner.write_json(cdir.config, cfg)
            self._configs[cid] = cfg
        except BaseException:
            self._discard(cid, cgroup_path)
            raise
        return ContainerHandle(self, cid, spec.name)

    def handle(self, container_id: str) -> ContainerHandle:
        return ContainerHandle(self, container_id, self._config(container_id)["spec"]["name"])

    def start(self, container_id: str) -> int:
        """Fork and exec the container's process; returns its host pid. Refuses a second start."""
        plan = self._config(container_id)["plan"]
        try:
            pid, _start_time, stream = self.client.run(plan)
        except SpawnerError as e:
            if "already started" in str(e):
                raise ContainerStateError(str(e)) from None
            raise
        with self._lock:
            self._exit_streams[container_id] = stream
        return pid

    def _wait_exit(self, container_id: str, timeout: float | None) -> bool:
        """Whether the container exited within ``timeout`` (its exit record is then on disk).

        Reads the exit stream kept from ``start`` when this Runtime started it; otherwise (or
        if that spawner went away) asks the spawner.
        """
        with self._lock:
            stream = self._exit_streams.pop(container_id, None)
        if stream is not None:
            try:
                rec = stream.read_exit(timeout)
            except (SpawnerError, OSError, ValueError):
                rec = None
                stream.close()
                stream = None
            else:
                if rec is None:  # timed out: keep it for the next wait
                    with self._lock:
                        self._exit_streams[container_id] = stream
                    return False
                stream.close()
                return True
        return self.client.wait(self.container_dir(container_id), timeout) is not None

    def _drop_stream(self, container_id: str) -> None:
        with self._lock:
            stream = self._exit_streams.pop(container_id, None)
        if stream is not None:
            stream.close()

    def status(self, container_id: str) -> ContainerStatus:
        cfg = self._config(container_id)
        d = self.container_dir(container_id)
        base: dict[str, Any] = {
            "id": container_id,
            "name": cfg["spec"]["name"],
            "created_at": cfg.get("created_at"),
            "sandbox_id": cfg["spec"].get("sandbox_id"),
            "labels": cfg["spec"].get("labels", {}),
        }
        done = self._exited.get(container_id)
        if done is not None:
            return done
        ran = self._started.get(container_id) or read_json(d / "pid.json")
        if ran is None:
            return ContainerStatus(state="created", **base)
        self._started[container_id] = ran
        base.update(pid=ran["pid"], started_at=ran.get("started_at"))
        ex = read_json(d / "exit.json")
        if ex is None and linux.proc_start_time(ran["pid"]) != ran["start_time"]:
            # Dead but not yet recorded: the spawner is reaping it (or adopts it now).
            ex = self.client.wait(d, timeout=5.0)
        if ex is None:
            return ContainerStatus(state="running", **base)
        done = self._exited[container_id] = ContainerStatus(
            state="exited",
            finished_at=ex.get("finished_at"),
            exit_code=ex.get("exit_code"),
            signal=ex.get("signal"),
            reason=ex.get("reason"),
            message=ex.get("message"),
            oom_killed=bool(ex.get("oom_killed")),
            **base,
        )
        return done

    def wait(self, container_id: str, timeout: float | None = None) -> ContainerStatus | None:
        """Block until the container exits (its status) or ``timeout`` passes (None)."""
        d = self.container_dir(container_id)
        if not (d / "pid.json").exists():
            raise ContainerStateError(f"container {container_id} was never started")
        if not self._wait_exit(container_id, timeout):
            return None
        return self.status(container_id)

    def stop(self, container_id: str, timeout: float = 30.0) -> ContainerStatus:
        """SIGTERM (or the image's stop signal), then SIGKILL once ``timeout`` seconds pass (the
        pod's grace period)."""
        st = self.status(container_id)
        if st.state != "running":
            return st
        d = self.container_dir(container_id)
        stop_signal = int(self._config(container_id)["spec"].get("stop_signal", signal.SIGTERM))
        if timeout > 0 and self.client.signal(d, stop_signal) and self._wait_exit(container_id, timeout):
            return self.status(container_id)
        self.client.signal(d, signal.SIGKILL)
        self._wait_exit(container_id, 30.0)
        return self.status(container_id)

    def exec_sync(self, container_id: str, cmd: Sequence[str], timeout: float | None = None) -> tuple[int, bytes, bytes]:
        """Run ``cmd`` inside the running container (its namespaces, cgroup, user, capabilities).

        Raises TimeoutError when ``timeout`` passes (the process is killed), ContainerStateError
        when the container does not run, SpawnerError when the command cannot be started.
        """
        try:
            code, out, err = self.client.exec(self.container_dir(container_id), self._exec_plan(container_id, cmd), timeout)
        except SpawnerError as e:
            if "is not running" in str(e):
                raise ContainerStateError(str(e)) from None
            raise
        if code is None:
            raise TimeoutError(f"command {list(cmd)} timed out after {timeout}s")
        return code, out, err

    def _exec_plan(self, container_id: str, cmd: Sequence[str], tty: bool = False) -> dict[str, Any]:
        """The spawner's exec request: the container's process settings with ``cmd``."""
        plan = self._config(container_id)["plan"]
        proc = dict(plan["process"], args=list(cmd))
        if tty:
            proc["env"] = merge_env(proc["env"], ["TERM=xterm"])  # what Kubernetes runtimes give a tty
        return {"process": proc, "cgroup_join": plan["cgroup_join"], "tty": tty}

    def exec_start(self, container_id: str, cmd: Sequence[str], stdio: list[int], tty: bool = False) -> tuple[int, ExitStream]:
        """Start ``cmd`` in the running container on the caller's (stdin, stdout, stderr)
        descriptors (with ``tty``: one pty slave three times); returns its pid and the stream its
        exit code comes on (closing it kills the process). For interactive exec; see
        :class:`nodeagent.agent.execproc.NativeExec`."""
        try:
            return self.client.exec_start(self.container_dir(container_id), self._exec_plan(container_id, cmd, tty), stdio)
        except SpawnerError as e:
            if "is not running" in str(e):
                raise ContainerStateError(str(e)) from None
            raise

    def update_resources(self, container_id: str, resources: Resources) -> None:
        """New limits for a created or running container (CRI UpdateContainerResources)."""
        self.cgroups.set_resources(self._config(container_id)["plan"]["cgroup"]["path"], resources)

    def stats(self, container_id: str) -> Stats:
        return self.cgroups.stats(self._config(container_id)["plan"]["cgroup"]["path"])

    def log_path(self, container_id: str) -> Path:
        return rootfs.ContainerDir(self.container_dir(container_id)).log

    def list(self, labels: Mapping[str, str] | None = None) -> list[ContainerStatus]:
        """Every container, or those whose labels include ``labels`` (chosen from the cached
        configs before any state is read: a pod's sync lists only its own containers)."""
        out = []
        for d in sorted((self.data_dir / "containers").iterdir()):
            try:
                if labels:
                    own = self._config(d.name)["spec"].get("labels", {})
                    if any(own.get(k) != v for k, v in labels.items()):
                        continue
                out.append(self.status(d.name))
            except ContainerNotFound:
                continue
        return out

    def remove(self, container_id: str) -> None:
        """Kill it if it still runs, then remove its cgroup and directory (nothing stays mounted)."""
        d = self.container_dir(container_id)
        try:
            cfg = self._config(container_id)
        except ContainerNotFound:
            if d.exists():
                rootfs.teardown(d)
            return
        if (d / "pid.json").exists() and not (d / "exit.json").exists():
            self.stop(container_id, timeout=0)
        self._discard(container_id, cfg["plan"]["cgroup"]["path"])

    def _discard(self, container_id: str, cgroup_path: str) -> None:
        self._drop_stream(container_id)
        self._configs.pop(container_id, None)
        self._started.pop(container_id, None)
        self._exited.pop(container_id, None)
        self.cgroups.remove(cgroup_path)
        rootfs.teardown(self.container_dir(container_id))


def stop_spawner_process(proc: subprocess.Popen[bytes] | None, client: SpawnerClient) -> None:
    """End a spawner this process started (used by tests and benchmarks)."""
    if proc is not None and proc.poll() is not None:
        return  # already gone (its socket may be another spawner's by now)
    client.shutdown()
    if proc is not None:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
