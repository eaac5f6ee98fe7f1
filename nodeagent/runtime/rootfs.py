"""A container's root filesystem: directory layout, overlay mount, /dev, /proc, /sys, pivot_root.

The overlay and every other mount of a container are made *inside the container's own mount
namespace* by the forked child (:func:`build` then :func:`pivot`). The host never sees them, and
when the container's last process exits the kernel drops them with the namespace: a crashed
agent or spawner cannot leak a mount. :func:`teardown` still sweeps the host's mount table under
the container's directory before deleting it, so a stray mount made by hand cannot make
``rmtree`` descend into someone else's files.

Layout of one container under the agent's data dir::

    containers/<id>/config.json   the container as created (written by the agent)
    containers/<id>/pid.json      pid + start time (written by the spawner at start)
    containers/<id>/exit.json     exit code, signal, OOM (written by the spawner at reap)
    containers/<id>/upper/        overlay upper dir (the container's writes)
    containers/<id>/work/         overlay work dir
    containers/<id>/rootfs/       mount point of the overlay (inside the container only)
    containers/<id>/etc/          generated hosts, hostname, resolv.conf (no sandbox)
    containers/<id>/container.log stdout and stderr
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nodeagent.runtime import linux
from nodeagent.runtime.linux import (
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_REMOUNT,
    MS_STRICTATIME,
)

#: Files under /proc a container must not read (Docker's and the CRI's default masked paths).
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
#: ... and paths it may read but not write.
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

#: The device nodes every container gets (the host's, bind-mounted).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_SYMLINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)


@dataclass(frozen=True)
class ContainerDir:
    """Paths of one container's directory (see the module docstring)."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def pid_file(self) -> Path:
        return self.path / "pid.json"

    @property
    def exit_file(self) -> Path:
        return self.path / "exit.json"

    @property
    def upper(self) -> Path:
        return self.path / "upper"

    @property
    def work(self) -> Path:
        return self.path / "work"

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    @property
    def etc(self) -> Path:
        return self.path / "etc"

    @property
    def log(self) -> Path:
        return self.path / "container.log"

    def prepare(self) -> None:
        for d in (self.upper, self.work, self.rootfs, self.etc):
            d.mkdir(parents=True, exist_ok=True)


def hosts_file(hostname: str, ips: Sequence[str] = (), aliases: Iterable[tuple[str, Sequence[str]]] = ()) -> str:
    """An /etc/hosts like the kubelet's: localhost lines, the pod's own name, hostAliases."""
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    lines += [f"{ip}\t{hostname}" for ip in ips]
    for ip, names in aliases:
        lines.append(f"\n# Entries added by HostAliases.\n{ip}\t" + "\t".join(names))
    return "\n".join(lines) + "\n"


def resolv_conf(nameservers: Sequence[str] = (), searches: Sequence[str] = (), options: Sequence[str] = ()) -> str:
    """resolv.conf for the container; with no nameservers, the host's own file is reused."""
    if not nameservers:
        try:
            return Path("/etc/resolv.conf").read_text()
        except OSError:
            return ""
    out = [f"nameserver {ns}" for ns in nameservers]
    if searches:
        out.append("search " + " ".join(searches))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def write_etc(directory: Path, hostname: str, hosts: str, resolv: str) -> None:
    """The three generated files bind-mounted into every container of a pod."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hostname").write_text(hostname + "\n")
    (directory / "hosts").write_text(hosts)
    (directory / "resolv.conf").write_text(resolv)


def overlay_options(lower: Sequence[str], upper: str, work: str) -> str:
    """mount data for overlayfs; the topmost layer comes first in ``lowerdir``."""
    escaped = [p.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,") for p in reversed(lower)]
    return f"lowerdir={':'.join(escaped)},upperdir={upper},workdir={work}"


def secure_join(root: str, unsafe: str) -> str:
    """``root`` + ``unsafe`` with every symlink resolved as if ``root`` were ``/``.

    An image may hold a symlink such as ``/etc/hosts -> /../../host/file``; resolving mount
    targets this way keeps them inside the container's rootfs whatever the image contains.
    """
    parts = [p for p in unsafe.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > 40:
                raise OSError(40, f"too many levels of symbolic links in {unsafe}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _make_mountpoint(path: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def bind(source: str, rootfs: str, target: str, readonly: bool = False) -> None:
    """Bind ``source`` at ``target`` inside ``rootfs`` (read-only if asked)."""
    dest = secure_join(rootfs, target)
    _make_mountpoint(dest, os.path.isdir(source))
    linux.mount(source, dest, None, MS_BIND | MS_REC)
    if readonly:
        linux.mount(None, dest, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def _mount_dev(rootfs: str, shm_source: str | None) -> None:
    dev = secure_join(rootfs, "/dev")
    os.makedirs(dev, exist_ok=True)
    # nodev: a device node the container makes here (it has CAP_MKNOD) is unusable; the few
    # it needs are the host's own nodes, bind-mounted (a bind mount keeps its source's flags).
    linux.mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NODEV | MS_STRICTATIME, "mode=755,size=65536k")
    old_umask = os.umask(0)
    try:
        for name in DEVICES:
            os.close(os.open(f"{dev}/{name}", os.O_CREAT | os.O_WRONLY, 0o666))
            linux.mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
        for name, target in DEV_SYMLINKS:
            os.symlink(target, f"{dev}/{name}")
        os.mkdir(f"{dev}/pts", 0o755)
        os.mkdir(f"{dev}/shm", 0o1777)
    finally:
        os.umask(old_umask)
    linux.mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
    if shm_source:  # the pod's shared /dev/shm (the sandbox's tmpfs), as in Kubernetes
        linux.mount(shm_source, f"{dev}/shm", None, MS_BIND)
    else:
        linux.mount("shm", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")


def _mask(rootfs: str) -> None:
    null = f"{rootfs}/dev/null"
    empty: str | None = None  # one empty read-only tmpfs, bound over every masked directory
    for path in MASKED_PATHS:
        dest = f"{rootfs}{path}"
        try:
            st = os.stat(dest)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if empty is None:
                linux.mount("tmpfs", dest, "tmpfs", MS_RDONLY, "size=0")
                empty = dest
            else:
                linux.mount(empty, dest, None, MS_BIND)
        else:
            linux.mount(null, dest, None, MS_BIND)
    for path in READONLY_PATHS:
        dest = f"{rootfs}{path}"
        if not os.path.exists(dest):
            continue
        linux.mount(dest, dest, None, MS_BIND | MS_REC)
        linux.mount(None, dest, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


@dataclass(frozen=True)
class BindMount:
    source: str
    target: str
    readonly: bool = False


def build(
    rootfs: str,
    lower: Sequence[str],
    upper: str,
    work: str,
    binds: Sequence[BindMount] = (),
    workdir: str | None = None,
    shm_source: str | None = None,
) -> None:
    """Mount the whole container filesystem at ``rootfs``; runs in the container's mount ns.

    Order matters: mounts made private first (nothing propagates back to the host), overlay,
    then /proc, /dev, /sys, masks, and the bind mounts (volumes, generated /etc files) last so
    a volume can sit anywhere, even under /dev or /sys.
    """
    linux.mount(None, "/", None, MS_REC | MS_PRIVATE)
    options = overlay_options(lower, upper, work)
    if len(options) > 4000:
        # mount(2) data is one page: use paths relative to the layers' common parent.
        base = os.path.commonpath(list(lower))
        os.chdir(base)
        options = overlay_options([os.path.relpath(p, base) for p in lower], upper, work)
    linux.mount("overlay", rootfs, "overlay", MS_NODEV, options)
    proc = secure_join(rootfs, "/proc")
    os.makedirs(proc, exist_ok=True)
    linux.mount("proc", proc, "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV)
    _mount_dev(rootfs, shm_source)
    sys_dir = secure_join(rootfs, "/sys")
    os.makedirs(sys_dir, exist_ok=True)
    linux.mount("sysfs", sys_dir, "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY)
    _mask(rootfs)
    for b in binds:
        bind(b.source, rootfs, b.target, b.readonly)
    if workdir:
        os.makedirs(secure_join(rootfs, workdir), exist_ok=True)


def pivot(rootfs: str, readonly: bool) -> None:
    """Make ``rootfs`` the root and detach the old one (pivot_root(".", ".") needs no put_old)."""
    os.chdir(rootfs)
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")
    if readonly:
        linux.mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def mounts_under(directory: Path) -> list[str]:
    """Mount points in the caller's mount namespace at or below ``directory``, deepest first."""
    prefix = str(directory.resolve())
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def teardown(directory: Path) -> None:
    """Unmount anything left under a container (or sandbox) directory, then delete it."""
    if not directory.exists():
        return
    points = mounts_under(directory)
    for point in points:
        try:
            linux.umount2(point, linux.MNT_DETACH)
        except OSError:
            pass
    if points and mounts_under(directory):
        raise OSError(f"{directory}: mounts remain, not deleting")
    shutil.rmtree(directory)


def busybox_rootfs(dest: Path, busybox: str = "/bin/busybox") -> Path:
    """A minimal image layer: a static busybox, its applet links, /etc/passwd and /etc/group.

    The offline stand-in for an image (tests and benchmarks); Debian's busybox-static provides
    the binary.
    """
    bin_dir = dest / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, bin_dir / "busybox")
    import subprocess  # only here: listing applets once per layer, never per container

    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in applets:
        if name != "busybox" and not (bin_dir / name).exists():
            (bin_dir / name).symlink_to("busybox")
    for d in ("etc", "tmp", "root", "proc", "sys", "dev"):
        (dest / d).mkdir(exist_ok=True)
    os.chmod(dest / "tmp", 0o1777)
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (dest / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return dest
