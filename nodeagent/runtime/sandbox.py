"""Pod sandboxes: the network, IPC and UTS namespaces a pod's containers share, with no process.

Kubernetes runtimes keep a "pause" container alive only to hold these namespaces open. A
namespace also stays alive while a file is bind-mounted on its /proc/<pid>/ns/* entry (what
``ip netns add`` does), so a sandbox here is a directory::

    sandboxes/<id>/ns/net, ns/ipc, ns/uts   bind mounts of the namespaces (kept open by the mounts)
    sandboxes/<id>/etc/                     hosts, hostname, resolv.conf shared by the containers
    sandboxes/<id>/shm/                     the pod's /dev/shm (a tmpfs mount)
    sandboxes/<id>/config.json

Creating one forks a short-lived child from the spawner that unshares the three namespaces,
sets the pod's hostname, brings loopback up (an ioctl in the new namespace: no ``ip``
subprocess) and bind-mounts its namespace files, then exits. Containers of the pod join with
setns on those files. Removing the sandbox unmounts them; the kernel frees a namespace when its
last user goes. The pod's cgroup (``kube-lite/<node>/pod<uid>``) is created and removed with it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nodeagent.runtime import linux, rootfs

if TYPE_CHECKING:
    from nodeagent.runtime.cgroups import Cgroups, Resources
    from nodeagent.runtime.spawner import SpawnerClient

SHARED_NAMESPACES = ("net", "ipc", "uts")
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def valid_hostname(name: str) -> str:
    """What the kubelet does with a long pod name: at most 63 characters, no trailing - or ."""
    return name[:63].rstrip("-.") or "localhost"


def bring_up_loopback() -> None:
    """``ip link set lo up`` in the caller's network namespace, with two ioctls."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | _IFF_UP))


def setup_sandbox_namespaces(directory: Path, hostname: str | None, host_network: bool = False) -> None:
    """Runs in a child forked by the spawner (host mount namespace): make and pin the namespaces.

    A hostNetwork pod keeps the node's network and UTS namespaces (and so its hostname).
    """
    names = ("ipc",) if host_network else SHARED_NAMESPACES
    linux.unshare(sum(linux.NS_FLAGS[n] for n in names))
    if not host_network:
        if hostname:
            linux.sethostname(hostname)
        bring_up_loopback()
    for name in names:
        linux.mount(f"/proc/self/ns/{name}", str(directory / "ns" / name), None, linux.MS_BIND)
    linux.mount("shm", str(directory / "shm"), "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC, "mode=1777,size=65536k")


@dataclass
class Sandbox:
    """One pod's sandbox as stored in its config.json."""

    id: str
    dir: Path
    hostname: str
    cgroup_path: str
    pod_uid: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    host_network: bool = False

    @property
    def shm(self) -> Path:
        """The pod's /dev/shm (a tmpfs), shared by its containers like its IPC namespace."""
        return self.dir / "shm"

    def ns_path(self, name: str) -> str:
        """The file a container setns-es into, or "host" for a namespace shared with the node."""
        if self.host_network and name in ("net", "uts"):
            return "host"
        return str(self.dir / "ns" / name)

    @property
    def etc(self) -> Path:
        return self.dir / "etc"

    def save(self) -> None:
        data = asdict(self)
        data["dir"] = str(self.dir)
        (self.dir / "config.json").write_text(json.dumps(data))

    @classmethod
    def load(cls, directory: Path) -> Sandbox:
        data = json.loads((directory / "config.json").read_text())
        data["dir"] = Path(data["dir"])
        return cls(**data)


def create_sandbox(
    client: SpawnerClient,
    cgroups: Cgroups,
    directory: Path,
    sandbox_id: str,
    hostname: str,
    cgroup_path: str,
    *,
    pod_uid: str = "",
    ips: tuple[str, ...] = (),
    host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = (),
    dns: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ()),
    resources: Resources | None = None,
    labels: dict[str, str] | None = None,
    host_network: bool = False,
) -> Sandbox:
    """Create (or return the existing) sandbox in ``directory``; undone completely on failure."""
    if (directory / "config.json").exists():
        return Sandbox.load(directory)
    if host_network:
        hostname = os.uname().nodename
    sb = Sandbox(sandbox_id, directory, hostname, cgroup_path, pod_uid, dict(labels or {}), host_network)
    try:
        (directory / "ns").mkdir(parents=True)
        (directory / "shm").mkdir()
        for name in SHARED_NAMESPACES:
            (directory / "ns" / name).touch()
        rootfs.write_etc(sb.etc, hostname, rootfs.hosts_file(hostname, ips, host_aliases), rootfs.resolv_conf(*dns))
        cgroups.create(cgroup_path, resources)
        client.sandbox(directory, hostname, host_network)
        sb.save()
    except BaseException:
        remove_sandbox(cgroups, directory, cgroup_path)
        raise
    return sb


def remove_sandbox(cgroups: Cgroups, directory: Path, cgroup_path: str) -> None:
    """Kill what is left in the pod's cgroup, unpin the namespaces, delete the directory."""
    cgroups.remove(cgroup_path)
    rootfs.teardown(directory)

