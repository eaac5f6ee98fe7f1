"""Thin ctypes wrappers over the Linux calls the runtime needs and Python's ``os`` lacks.

Every container is set up inside a forked child of the spawner, so these must be plain system
calls: starting ``unshare``/``mount``/``ip`` as subprocesses would cost milliseconds each and
defeat the point of a warm fork server. Each wrapper raises :class:`OSError` with ``errno`` set,
like the functions in :mod:`os`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterable

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

# Namespace flags (linux/sched.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

#: /proc/<pid>/ns/<name> -> the CLONE_* flag setns expects for it.
NS_FLAGS = {
    "net": CLONE_NEWNET,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "pid": CLONE_NEWPID,
    "mnt": CLONE_NEWNS,
    "cgroup": CLONE_NEWCGROUP,
}

# mount(2) flags (linux/mount.h).
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24

MNT_FORCE = 1
MNT_DETACH = 2

# prctl(2) options (linux/prctl.h).
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

#: Capability names as Kubernetes/Docker spell them (without the ``CAP_`` prefix) -> number.
CAPABILITIES: dict[str, int] = {
    name: i
    for i, name in enumerate(
        [
            "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
            "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
            "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
            "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
            "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
            "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
            "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
        ]
    )
}

#: Docker's (and so containerd's and Kubernetes') default capability set.
DEFAULT_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)


def _check(result: int, what: str) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _b(s: str | bytes | None) -> bytes | None:
    if s is None or isinstance(s, bytes):
        return s
    return os.fsencode(s)


_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {fstype or ''} {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


_SYS_PIVOT_ROOT = 155  # x86_64; glibc has no wrapper
_SYS_CAPGET = 125
_SYS_CAPSET = 126
if os.uname().machine == "aarch64":
    _SYS_PIVOT_ROOT, _SYS_CAPGET, _SYS_CAPSET = 41, 90, 91


# The GIL stays held across calls through a PyDLL: the child of a fork made this way owns it.
_pylibc = ctypes.PyDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def fork_single_threaded() -> int:
    """fork(2) without Python's after-fork work; for the spawner only.

    ``os.fork`` re-initialises the interpreter's locks and thread states and runs the at-fork
    hooks in the child; that touches about 190 pages, each a copy-on-write fault (5 us on this
    VM): 1 ms per container, a third of the child's whole set-up. None of it is needed in a
    process that has a single thread and holds no lock at fork time, when the child only sets
    up a container and then execs or exits.
    """
    return _check(_pylibc.fork(), "fork")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of ``pid`` (0 = the caller) as 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.syscall(_SYS_CAPGET, ctypes.byref(header), data), "capget")
    lo, hi = data[0], data[1]
    return (
        lo.effective | hi.effective << 32,
        lo.permitted | hi.permitted << 32,
        lo.inheritable | hi.inheritable << 32,
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(header), data), "capset")


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAPABILITIES.values())


def cap_mask(names: Iterable[str]) -> int:
    """Bit mask of capability names (``NET_ADMIN`` or ``CAP_NET_ADMIN``; ``ALL`` = every one)."""
    mask = 0
    for raw in names:
        name = raw.upper().removeprefix("CAP_")
        if name == "ALL":
            return (1 << (last_cap() + 1)) - 1
        if name not in CAPABILITIES:
            raise ValueError(f"unknown capability {raw!r}")
        mask |= 1 << CAPABILITIES[name]
    return mask


def effective_capabilities(add: Iterable[str] = (), drop: Iterable[str] = ()) -> int:
    """The capability mask Kubernetes gives a container: Docker's defaults, then add, then drop."""
    drop_list = list(drop)
    if any(d.upper().removeprefix("CAP_") == "ALL" for d in drop_list):
        base = 0
    else:
        base = cap_mask(DEFAULT_CAPABILITIES)
    return (base | cap_mask(add)) & ~cap_mask(d for d in drop_list if d.upper().removeprefix("CAP_") != "ALL")


def drop_bounding_set(keep: int) -> None:
    """Drop every capability not in ``keep`` from the bounding set (needs CAP_SETPCAP: do it as root,
    before switching to the container's user); also clears the ambient set."""
    for cap in range(last_cap() + 1):
        if not keep & (1 << cap):
            prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def set_capabilities(mask: int) -> None:
    """effective = permitted = inheritable = ``mask``.

    Called after the switch to the container user (with PR_SET_KEEPCAPS held) so a non-root
    user keeps its permitted set until exec; exec then applies the usual rules (root keeps the
    bounding set, other users keep none unless file capabilities grant them).
    """
    capset(mask, mask, mask)


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or None if gone.

    A pid alone may be reused after the process dies; pid + start time names one process.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":  # a zombie is dead for our purposes
        return None
    return int(fields[19])
