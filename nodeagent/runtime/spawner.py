"""The fork server: a small single-threaded process that forks every container of a node.

Why a separate process: forking the node agent (asyncio, gRPC, threads) is unsafe (a lock held
by another thread at fork time stays locked in the child forever) and slow (a big address space
to copy). This process imports only the standard library and the runtime's own small modules,
never starts a thread, and so forks in well under a millisecond; a whole container (namespaces,
overlay, /proc, /dev, pivot_root, exec) costs a few milliseconds.

It is started once per agent, in its own session, so it (and with it every container, which
are its children) survives an agent restart: the restarted agent connects to the same socket.
It reaps its children and writes each container's exit (code, signal, OOM kill) to the
container's ``exit.json``, so the record survives both of them. If the spawner itself dies, a new
one adopts running containers by pid + start time (a pidfd tells it when they exit).

Protocol: one request per connection on a unix stream socket, JSON lines. ``run`` and ``exec``
get two replies on their connection: the pid once the process reached execve (or an error),
then its exit record (``run``: the caller keeps the connection as the container's exit stream,
so waiting costs no extra request). ``exec`` requests carry the caller's stdout/stderr
descriptors as SCM_RIGHTS. A closed connection cancels: a waiter is dropped, an ``exec`` child is
SIGKILLed.

The child does the whole setup in Python before execve (see :func:`_container_child`): join or
create namespaces, mount everything (:mod:`~nodeagent.runtime.rootfs`), pivot_root, join the
cgroup (late: the setup is not the container's work), then user, capabilities, no_new_privs.

Requests (``op``): ``ping``; ``run`` (a container plan, see :func:`_container_child`); ``signal``
and ``wait`` (by container dir); ``exec``; ``sandbox`` (create a pod's namespaces); ``shutdown``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import termios
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodeagent.runtime import cgroups, linux, rootfs
from nodeagent.runtime.sandbox import bring_up_loopback, setup_sandbox_namespaces

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SOCKET_NAME = "spawner.sock"


class SpawnerError(RuntimeError):
    """The spawner refused a request (the message says why)."""


# ----------------------------------------------------------------------------- child side


def _reset_signals() -> None:
    """Undo what Python (and the server loop) did to signal dispositions; exec keeps SIG_IGN."""
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _parse_db(path: str) -> list[list[str]]:
    try:
        with open(path) as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def resolve_user(user: str | None, extra_groups: list[int]) -> tuple[int, int, list[int], str | None]:
    """(uid, gid, groups, home) for an image/pod user spec (``uid``, ``uid:gid``, ``name[:group]``).

    Runs after pivot_root, so names resolve against the container's own /etc/passwd and
    /etc/group, the way Docker does it.
    """
    spec_user, _, spec_group = (user or "0").partition(":")
    passwd = _parse_db("/etc/passwd")
    entry = next((e for e in passwd if len(e) >= 7 and (e[0] == spec_user or e[2] == spec_user)), None)
    if spec_user.isdigit():
        uid = int(spec_user)
    elif entry is not None:
        uid = int(entry[2])
    else:
        raise ValueError(f"unable to find user {spec_user}: no matching entries in passwd file")
    gid = int(entry[3]) if entry is not None else 0
    groups_db = _parse_db("/etc/group")
    if spec_group:
        if spec_group.isdigit():
            gid = int(spec_group)
        else:
            g = next((e for e in groups_db if len(e) >= 3 and e[0] == spec_group), None)
            if g is None:
                raise ValueError(f"unable to find group {spec_group}: no matching entries in group file")
            gid = int(g[2])
    groups = [gid, *extra_groups]
    if entry is not None:
        groups += [int(g[2]) for g in groups_db if len(g) >= 4 and entry[0] in g[3].split(",") and g[2].isdigit()]
    home = entry[5] if entry is not None and entry[5] else None
    return uid, gid, sorted(set(groups)), home


def _become(proc: dict[str, Any]) -> dict[str, str]:
    """Switch to the container's user, capabilities and no_new_privs; return its environment."""
    uid, gid, groups, home = resolve_user(proc.get("user"), proc.get("groups", []))
    caps = int(proc.get("capabilities", 0))
    linux.drop_bounding_set(caps)
    linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    linux.set_capabilities(caps)
    if proc.get("no_new_privs", True):
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    env = dict(e.split("=", 1) for e in proc.get("env", []) if "=" in e)
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", home or "/")
    if proc.get("hostname"):
        env.setdefault("HOSTNAME", proc["hostname"])
    return env


def _exec(proc: dict[str, Any], env: dict[str, str]) -> None:
    os.chdir(proc.get("cwd") or "/")
    args = proc["args"]
    if not args:
        raise ValueError("no command specified")
    os.execvpe(args[0], args, env)


def _join_cgroup(plan: dict[str, Any]) -> None:
    _join_cgroup_fds(_open_cgroup_files(plan))


def _open_cgroup_files(plan: dict[str, Any]) -> list[int]:
    return [os.open(path, os.O_WRONLY | os.O_CLOEXEC) for path in plan.get("cgroup_join", [])]


def _join_cgroup_fds(fds: list[int]) -> None:
    for fd in fds:
        os.write(fd, b"0")
        os.close(fd)


def _container_child(plan: dict[str, Any]) -> None:
    """Runs in the forked child, already pid 1 of a new pid namespace; ends in execve."""
    os.setsid()
    # The cgroup files are opened now (host paths) but joined only after pivot_root, just
    # before exec: the setup is the runtime's work, not the container's, and must not run
    # at the container's CPU weight (2 shares for a BestEffort pod) or count against its limits.
    cgroup_fds = _open_cgroup_files(plan)
    flags = linux.CLONE_NEWNS
    for name in ("net", "ipc", "uts"):
        target = plan.get("namespaces", {}).get(name, "new")
        if target == "new":
            flags |= linux.NS_FLAGS[name]
        elif target != "host":
            fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
            linux.setns(fd, linux.NS_FLAGS[name])
            os.close(fd)
    linux.unshare(flags)
    if flags & linux.CLONE_NEWUTS and plan.get("hostname"):
        linux.sethostname(plan["hostname"])
    if flags & linux.CLONE_NEWNET:
        bring_up_loopback()
    log = os.open(plan["log_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    fs = plan["rootfs"]
    binds = [rootfs.BindMount(m["source"], m["target"], bool(m.get("readonly"))) for m in plan.get("mounts", [])]
    rootfs.build(fs["target"], fs["lower"], fs["upper"], fs["work"], binds, plan["process"].get("cwd"), plan.get("shm"))
    rootfs.pivot(fs["target"], bool(fs.get("readonly")))
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    _join_cgroup_fds(cgroup_fds)
    if plan.get("cgroupns", True):
        linux.unshare(linux.CLONE_NEWCGROUP)  # after joining: the container's cgroup is its root
    env = _become(plan["process"])
    _exec(plan["process"], env)


def _exec_child(plan: dict[str, Any], target_pid: int, stdio: list[int]) -> None:
    """Join a running container (its pid namespace is already ours for children) and exec."""
    os.setsid()
    _join_cgroup(plan)
    fds = []
    for name in ("net", "ipc", "uts", "cgroup", "mnt"):
        path = f"/proc/{target_pid}/ns/{name}"
        if os.stat(path).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
            fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), linux.NS_FLAGS[name]))
    for fd, flag in fds:  # mnt last: after it, host paths are gone
        linux.setns(fd, flag)
        os.close(fd)
    if len(stdio) == 3:  # an interactive exec (SpawnerClient.exec_start): the caller's stdin too
        stdin, out, err = stdio
    else:
        stdin, out, err = os.open("/dev/null", os.O_RDONLY), stdio[0], stdio[1] if len(stdio) > 1 else stdio[0]
    os.dup2(stdin, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    if plan.get("tty"):
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the pty becomes the session's controlling terminal
    env = _become(plan["process"])
    _exec(plan["process"], env)


def _sandbox_child(plan: dict[str, Any]) -> None:
    setup_sandbox_namespaces(Path(plan["dir"]), plan.get("hostname"), bool(plan.get("host_network")))
    os._exit(0)


def _fork_child(body: Any, *args: Any) -> tuple[int, int]:
    """Fork; the child runs ``body`` and never returns. Returns (pid, read end of error pipe).

    The error pipe is close-on-exec: EOF means the child reached execve (or exited cleanly);
    bytes mean it failed first and wrote why.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = linux.fork_single_threaded()
    if pid == 0:
        try:
            os.close(r)
            _reset_signals()
            body(*args)
        except BaseException as e:
            msg = f"{type(e).__name__}: {e}" if isinstance(e, OSError | ValueError) else traceback.format_exc()
            with contextlib.suppress(OSError):
                os.write(w, msg.encode()[:4000])
            os._exit(127)
        os._exit(0)
    os.close(w)
    return pid, r


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        data = os.read(fd, 4096)
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


# ----------------------------------------------------------------------------- server side


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic write: a reader sees the old file or the whole new one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            data: dict[str, Any] = json.load(f)
            return data
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@dataclass
class _Conn:
    sock: socket.socket
    buf: bytes = b""
    fds: list[int] = field(default_factory=list)
    exec_pid: int | None = None

    def send(self, msg: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(json.dumps(msg).encode() + b"\n")


@dataclass
class _Container:
    dir: Path
    pid: int
    cgroup: dict[str, Any] | None
    waiters: list[_Conn] = field(default_factory=list)
    pidfd: int | None = None  # set for adopted (not our child) containers


class Spawner:
    """The server loop: accept, fork, reap; never blocks for long and never starts a thread."""

    def __init__(self, listener: socket.socket, data_dir: Path) -> None:
        self.listener = listener
        self.data_dir = data_dir
        self.sel = selectors.DefaultSelector()
        self.containers: dict[int, _Container] = {}  # pid -> container
        self.by_dir: dict[str, _Container] = {}
        self.execs: dict[int, _Conn] = {}
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.running = True
        self.handled = 0
        self._drivers: dict[tuple[int, str], cgroups.Cgroups] = {}
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    # -- bookkeeping of exits

    def _driver(self, version: int, root: str) -> cgroups.Cgroups:
        key = (version, root)
        if key not in self._drivers:
            self._drivers[key] = cgroups.open_driver(version, root)
        return self._drivers[key]

    def _exit_record(self, c: _Container, status: int | None) -> dict[str, Any]:
        oom = 0
        if c.cgroup:
            with contextlib.suppress(OSError):
                oom = self._driver(c.cgroup["version"], c.cgroup["root"]).oom_kills(c.cgroup["path"])
        rec: dict[str, Any] = {"pid": c.pid, "finished_at": _now(), "oom_killed": oom > 0}
        if status is None:
            rec.update(exit_code=255, signal=None, reason="Unknown")
        elif os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            rec.update(exit_code=128 + sig, signal=sig)
        else:
            rec.update(exit_code=os.WEXITSTATUS(status), signal=None)
        if "reason" not in rec:
            rec["reason"] = "OOMKilled" if oom else ("Completed" if rec["exit_code"] == 0 else "Error")
        return rec

    def _finish(self, c: _Container, status: int | None) -> None:
        rec = self._exit_record(c, status)
        with contextlib.suppress(OSError):
            write_json(c.dir / "exit.json", rec)
        self.containers.pop(c.pid, None)
        self.by_dir.pop(str(c.dir), None)
        if c.pidfd is not None:
            self.sel.unregister(c.pidfd)
            os.close(c.pidfd)
        for w in c.waiters:
            w.send({"ok": True, "exit": rec})
            self._close(w)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.containers:
                self._finish(self.containers[pid], status)
            elif pid in self.execs:
                conn = self.execs.pop(pid)
                code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
                conn.send({"ok": True, "exit_code": code})
                self._close(conn)

    def _adopt(self, cdir: Path) -> _Container | None:
        """Take over a container another spawner started, if its process still lives."""
        info = read_json(cdir / "pid.json")
        if info is None or (cdir / "exit.json").exists():
            return None
        cfg = read_json(cdir / "config.json") or {}
        c = _Container(cdir, info["pid"], cfg.get("plan", {}).get("cgroup"))
        if linux.proc_start_time(c.pid) != info["start_time"]:
            self._finish(c, None)
            return None
        try:
            c.pidfd = os.pidfd_open(c.pid)
        except ProcessLookupError:
            self._finish(c, None)
            return None
        if linux.proc_start_time(c.pid) != info["start_time"]:  # pid reused before pidfd_open
            os.close(c.pidfd)
            c.pidfd = None
            self._finish(c, None)
            return None
        self.sel.register(c.pidfd, selectors.EVENT_READ, ("pidfd", c))
        self.containers[c.pid] = c
        self.by_dir[str(cdir)] = c
        return c

    def adopt_all(self) -> None:
        base = self.data_dir / "containers"
        if base.is_dir():
            for cdir in base.iterdir():
                self._adopt(cdir)

    # -- requests

    def _op_run(self, conn: _Conn, req: dict[str, Any]) -> Any:
        plan = req["plan"]
        cdir = Path(plan["dir"])
        if (cdir / "pid.json").exists():
            raise SpawnerError(f"container {cdir.name} was already started")
        if not (cdir / "config.json").exists():
            raise SpawnerError(f"container {cdir.name} does not exist")
        # unshare(CLONE_NEWPID) applies to our next child only; setns back right after the fork
        # so this process stays able to fork the next container into its own new namespace.
        linux.unshare(linux.CLONE_NEWPID)
        try:
            pid, errfd = _fork_child(_container_child, plan)
        finally:
            linux.setns(self.own_pidns, linux.CLONE_NEWPID)
        start_time = linux.proc_start_time(pid)
        try:
            write_json(cdir / "pid.json", {"pid": pid, "start_time": start_time, "started_at": _now()})
        except OSError:
            # Without its record nobody could find or stop it later: it must not run.
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(errfd)
            raise
        error = _read_all(errfd)
        if error:
            os.waitpid(pid, 0)
            rec = {"pid": pid, "exit_code": 128, "signal": None, "oom_killed": False,
                   "reason": "StartError", "message": error.strip(), "finished_at": _now()}
            write_json(cdir / "exit.json", rec)
            raise SpawnerError(error.strip())
        c = _Container(cdir, pid, plan.get("cgroup"))
        self.containers[pid] = c
        self.by_dir[str(cdir)] = c
        conn.send({"ok": True, "pid": pid, "start_time": start_time})
        # The caller keeps this connection as the container's exit stream (see ExitStream):
        # waiting then costs no new request.
        c.waiters.append(conn)
        return "keep"

    def _find(self, cdir: Path) -> _Container | None:
        return self.by_dir.get(str(cdir)) or self._adopt(cdir)

    def _op_signal(self, conn: _Conn, req: dict[str, Any]) -> None:
        c = self._find(Path(req["dir"]))
        sent = False
        if c is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(c.pid, int(req["signal"]))
                sent = True
        conn.send({"ok": True, "sent": sent})

    def _op_wait(self, conn: _Conn, req: dict[str, Any]) -> Any:
        cdir = Path(req["dir"])
        c = self._find(cdir)
        if c is None:
            rec = read_json(cdir / "exit.json")
            if rec is None:
                raise SpawnerError(f"container {cdir.name} was never started")
            conn.send({"ok": True, "exit": rec})
            return None
        c.waiters.append(conn)
        return "keep"

    def _op_exec(self, conn: _Conn, req: dict[str, Any]) -> Any:
        cdir = Path(req["dir"])
        c = self._find(cdir)
        if c is None:
            raise SpawnerError(f"container {cdir.name} is not running")
        plan = req["plan"]
        pidns = os.open(f"/proc/{c.pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(pidns, linux.CLONE_NEWPID)
            try:
                pid, errfd = _fork_child(_exec_child, plan, c.pid, conn.fds)
            finally:
                linux.setns(self.own_pidns, linux.CLONE_NEWPID)
        finally:
            os.close(pidns)
        for fd in conn.fds:
            os.close(fd)
        conn.fds = []
        error = _read_all(errfd)
        if error:
            os.waitpid(pid, 0)
            raise SpawnerError(error.strip())
        conn.exec_pid = pid
        self.execs[pid] = conn
        conn.send({"ok": True, "pid": pid})
        return "keep"

    def _op_sandbox(self, conn: _Conn, req: dict[str, Any]) -> None:
        pid, errfd = _fork_child(_sandbox_child, req)
        error = _read_all(errfd)
        os.waitpid(pid, 0)
        if error:
            raise SpawnerError(error.strip())
        conn.send({"ok": True})

    def _handle(self, conn: _Conn, line: bytes) -> None:
        self.handled += 1
        keep = None
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "ping":
                conn.send({"ok": True, "pid": os.getpid()})
            elif op == "shutdown":
                self.running = False
                conn.send({"ok": True})
            elif op in ("run", "signal", "wait", "exec", "sandbox"):
                keep = getattr(self, f"_op_{op}")(conn, req)
            else:
                raise SpawnerError(f"unknown op {op!r}")
        except Exception as e:
            conn.send({"ok": False, "error": str(e) or type(e).__name__})
            keep = None
        if keep is None:
            self._close(conn)

    # -- loop

    def _close(self, conn: _Conn) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn.sock)
        for fd in conn.fds:
            os.close(fd)
        conn.fds = []
        conn.sock.close()

    def _readable(self, conn: _Conn) -> None:
        try:
            data, fds, _flags, _addr = socket.recv_fds(conn.sock, 65536, 4)
        except OSError:
            data, fds = b"", []
        for fd in fds:
            os.set_inheritable(fd, False)  # only an exec child gets them, through dup2
        conn.fds.extend(fds)
        if not data:
            # The caller gave up: forget its waits, kill its exec.
            for c in self.containers.values():
                if conn in c.waiters:
                    c.waiters.remove(conn)
            if conn.exec_pid is not None and conn.exec_pid in self.execs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(conn.exec_pid, signal.SIGKILL)
                # it stays in self.execs: the reap then replies to a closed socket (ignored)
            self._close(conn)
            return
        conn.buf += data
        if b"\n" in conn.buf:
            line, _, conn.buf = conn.buf.partition(b"\n")
            self._handle(conn, line)

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "running", False))
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, ("listen", None))
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        self.adopt_all()
        self._reap()
        while self.running:
            events = self.sel.select(timeout=0)
            if not events and self.handled > 500:
                gc.collect()  # idle: the only time cyclic garbage is collected (gc is disabled)
                self.handled = 0
            if not events:
                events = self.sel.select()
            for key, _ in events:
                try:
                    self.sel.get_key(key.fileobj)
                except KeyError:
                    continue  # closed by an earlier event of this batch
                try:
                    self._event(*key.data)
                except Exception:
                    # A bug must not take the node's containers' parent down: log, go on.
                    traceback.print_exc()
                    sys.stderr.flush()

    def _event(self, kind: str, obj: Any) -> None:
        if kind == "listen":
            with contextlib.suppress(BlockingIOError):
                sock, _ = self.listener.accept()
                conn = _Conn(sock)
                self.sel.register(sock, selectors.EVENT_READ, ("conn", conn))
                # The request usually arrived with the connection: serve it now rather than
                # after another trip through select.
                if select.select([sock], [], [], 0)[0]:
                    self._readable(conn)
        elif kind == "wake":
            with contextlib.suppress(BlockingIOError):
                os.read(self.wake_r, 4096)
            self._reap()
        elif kind == "pidfd":
            self._finish(obj, None)
        else:
            self._readable(obj)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="kube-lite container fork server")
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--listen-fd", type=int, help="an already listening unix socket (inherited)")
    args = ap.parse_args(argv)
    if args.listen_fd is not None:
        os.set_inheritable(args.listen_fd, False)  # containers must never inherit it
        listener = socket.socket(fileno=args.listen_fd)
    else:
        path = args.data_dir / SOCKET_NAME
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(128)
    # Forked children inherit our heap copy-on-write; a garbage collection in a child would
    # touch (and so copy) every object. Freeze what start-up made and collect only when idle.
    gc.collect()
    gc.freeze()
    gc.disable()
    Spawner(listener, args.data_dir).serve()


# ----------------------------------------------------------------------------- client side


class ExitStream:
    """A container's ``run`` connection, kept open: the spawner writes the exit record on it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def read_message(self, timeout: float | None) -> dict[str, Any] | None:
        """The next message; None if ``timeout`` passes. SpawnerError if the spawner went away."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise SpawnerError("spawner closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        msg: dict[str, Any] = json.loads(line)
        return msg

    def read_exit(self, timeout: float | None) -> dict[str, Any] | None:
        msg = self.read_message(timeout)
        if msg is None:
            return None
        if not msg.get("ok") or "exit" not in msg:
            raise SpawnerError(msg.get("error", "unexpected message on the exit stream"))
        rec: dict[str, Any] = msg["exit"]
        return rec

    def close(self) -> None:
        self.sock.close()


class SpawnerClient:
    """Talks to a spawner; thread-safe (one connection per request), blocking calls."""

    def __init__(self, socket_path: Path, pid: int | None = None) -> None:
        self.socket_path = socket_path
        self.pid = pid

    def _connect(self, timeout: float | None) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.settimeout(timeout)
        s.connect(str(self.socket_path))
        return s

    @staticmethod
    def _send(s: socket.socket, msg: dict[str, Any], fds: list[int] | None = None) -> None:
        data = json.dumps(msg).encode() + b"\n"
        if fds:
            socket.send_fds(s, [data], fds)
        else:
            s.sendall(data)

    @staticmethod
    def _lines(s: socket.socket) -> Any:
        buf = b""
        while True:
            while b"\n" in buf:
                line, _, buf = buf.partition(b"\n")
                yield json.loads(line)
            chunk = s.recv(65536)
            if not chunk:
                raise SpawnerError("spawner closed the connection")
            buf += chunk

    def call(self, msg: dict[str, Any], timeout: float | None = 30.0) -> dict[str, Any]:
        with self._connect(timeout) as s:
            self._send(s, msg)
            reply: dict[str, Any] = next(self._lines(s))
        if not reply.get("ok"):
            raise SpawnerError(reply.get("error", "spawner error"))
        return reply

    def ping(self) -> int:
        return int(self.call({"op": "ping"}, timeout=2.0)["pid"])

    def run(self, plan: dict[str, Any]) -> tuple[int, int, ExitStream]:
        """Start a container: (host pid, start time, the stream its exit record will come on)."""
        reply, stream = self._start({"op": "run", "plan": plan}, None, "spawner error")
        return reply["pid"], reply["start_time"], stream

    def _start(self, msg: dict[str, Any], fds: list[int] | None, failed: str) -> tuple[dict[str, Any], ExitStream]:
        """Send a request that starts a process; its first reply, and the connection kept open
        as the stream its exit comes on (closed again if the start failed)."""
        s = self._connect(30.0)
        try:
            self._send(s, msg, fds)
            stream = ExitStream(s)
            reply = stream.read_message(30.0)
        except BaseException:
            s.close()
            raise
        if reply is None or not reply.get("ok"):
            s.close()
            raise SpawnerError((reply or {}).get("error", failed))
        return reply, stream

    def signal(self, container_dir: Path, sig: int) -> bool:
        return bool(self.call({"op": "signal", "dir": str(container_dir), "signal": int(sig)})["sent"])

    def wait(self, container_dir: Path, timeout: float | None = None) -> dict[str, Any] | None:
        """The exit record once the container exits; None if ``timeout`` passes first."""
        try:
            return self.call({"op": "wait", "dir": str(container_dir)}, timeout=timeout)["exit"]  # type: ignore[no-any-return]
        except TimeoutError:
            return None

    def sandbox(self, directory: Path, hostname: str | None, host_network: bool = False) -> None:
        self.call({"op": "sandbox", "dir": str(directory), "hostname": hostname, "host_network": host_network})

    def exec(self, container_dir: Path, plan: dict[str, Any], timeout: float | None) -> tuple[int | None, bytes, bytes]:
        """Run ``plan`` in the container; (exit code or None on timeout, stdout, stderr).

        stdout/stderr are pipes read here while the spawner waits for the process; on timeout
        the connection is closed, which makes the spawner SIGKILL the process.
        """
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        deadline = None if timeout is None else time.monotonic() + timeout
        s = self._connect(30.0)
        try:
            self._send(s, {"op": "exec", "dir": str(container_dir), "plan": plan}, [out_w, err_w])
            os.close(out_w)
            os.close(err_w)
            out_w = err_w = -1
            sel = selectors.DefaultSelector()
            bufs: dict[int, list[bytes]] = {out_r: [], err_r: []}
            for fd in bufs:
                sel.register(fd, selectors.EVENT_READ)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            sbuf = b""
            exit_code: int | None = None
            got_exit = False
            open_pipes = 2
            while not got_exit or open_pipes:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None, b"".join(bufs[out_r]), b"".join(bufs[err_r])
                for key, _ in sel.select(left):
                    if key.fileobj is s:
                        chunk = s.recv(65536)
                        if not chunk:
                            raise SpawnerError("spawner closed the connection")
                        sbuf += chunk
                        while b"\n" in sbuf:
                            line, _, sbuf = sbuf.partition(b"\n")
                            msg = json.loads(line)
                            if not msg.get("ok"):
                                raise SpawnerError(msg.get("error", "exec failed"))
                            if "exit_code" in msg:
                                exit_code, got_exit = msg["exit_code"], True
                                sel.unregister(s)
                    else:
                        fd = int(key.fd)
                        data = os.read(fd, 65536)
                        if data:
                            bufs[fd].append(data)
                        else:
                            sel.unregister(fd)
                            open_pipes -= 1
            return exit_code, b"".join(bufs[out_r]), b"".join(bufs[err_r])
        finally:
            s.close()
            for fd in (out_r, err_r, out_w, err_w):
                if fd >= 0:
                    os.close(fd)

    def exec_start(self, container_dir: Path, plan: dict[str, Any], stdio: list[int]) -> tuple[int, ExitStream]:
        """Start ``plan`` in the container with the caller's (stdin, stdout, stderr) descriptors
        (one pty slave three times for a terminal, with ``plan["tty"]``); returns its pid and the
        stream on which its exit code comes (``{"ok": true, "exit_code": N}``). Closing the
        stream kills the process."""
        reply, stream = self._start({"op": "exec", "dir": str(container_dir), "plan": plan}, stdio, "exec failed")
        return int(reply["pid"]), stream

    def shutdown(self) -> None:
        with contextlib.suppress(OSError, SpawnerError):
            self.call({"op": "shutdown"}, timeout=5.0)


def connect_or_start(data_dir: Path) -> tuple[SpawnerClient, subprocess.Popen[bytes] | None]:
    """The data dir's running spawner, or a new one (then also its Popen).

    The listening socket is bound here and inherited, so the first request cannot race the
    new process's start-up: connections wait in the backlog until it accepts.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    path = data_dir / SOCKET_NAME
    client = SpawnerClient(path)
    if path.exists():
        try:
            client.pid = client.ping()
            return client, None
        except (OSError, SpawnerError):
            path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(128)
    log = open(data_dir / "spawner.log", "ab")  # the child keeps its own copy
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nodeagent.runtime.spawner", "--data-dir", str(data_dir), "--listen-fd", str(listener.fileno())],
            pass_fds=[listener.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd="/",
        )
    finally:
        log.close()
        listener.close()
    client.pid = proc.pid
    return client, proc


if __name__ == "__main__":
    main()
