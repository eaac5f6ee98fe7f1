"""Streaming exec for the agent's exec endpoint, behind a small Protocol.

:class:`ExecBackend` starts a command in a running container and hands back an
:class:`ExecProcess`: write stdin, close it, resize the terminal, read output by stream, wait
for the exit code, kill. :class:`NativeExec` backs it with the native runtime's
:meth:`~nodeagent.runtime.container.Runtime.exec_start` (the spawner forks the command into the
container's namespaces and cgroup with our descriptors); another backend (a CRI client's
streaming exec) only has to satisfy the same two Protocols.

With ``tty`` the command gets a pseudo-terminal (its stdin, stdout and stderr are the slave
side, and it is the session's controlling terminal); the agent reads and writes the master,
so stdout and stderr come as one stream, as with Kubernetes' tty exec. The terminal comes from
the container's own devpts (``/dev/pts/N`` means something inside it, so ``tty`` works there):
its ``ptmx`` is opened through ``/proc/<pid>/root`` one component at a time without following
symlinks (the container owns those directories), and the slave with ``TIOCGPTPEER``, never by
path. If that fails the terminal is the host's (still a terminal, but unnamed inside).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import struct
import termios
from collections.abc import Sequence
from typing import Protocol

from nodeagent.runtime.container import Runtime
from nodeagent.runtime.spawner import ExitStream, SpawnerError

STDOUT, STDERR = 1, 2
_TIOCSPTLCK = 0x40045431  # unlockpt()
_TIOCGPTPEER = 0x5441  # open the slave of a master, without a path
_PTMX = os.makedev(5, 2)


class ExecProcess(Protocol):
    streams: dict[int, int]  # output channel (STDOUT/STDERR) -> readable descriptor

    async def write_stdin(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    async def read(self, channel: int) -> bytes:
        """The next output of ``channel``; b"" at its end."""
        ...

    async def wait(self) -> int:
        """The exit code (128 + signal for a signalled process)."""
        ...

    def kill(self) -> None: ...

    def close(self) -> None:
        """Release the process's descriptors (after it ended or was killed)."""
        ...


class ExecBackend(Protocol):
    async def start(self, container_id: str, cmd: Sequence[str], *, stdin: bool, tty: bool) -> ExecProcess: ...


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def read_fd(fd: int) -> bytes:
    """Read a non-blocking descriptor without blocking the loop; b"" at EOF (a pty master
    reports its slave's last close as EIO, which is EOF too)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            pass
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _wake, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)


async def write_fd(fd: int, data: bytes) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
            continue
        except BlockingIOError:
            pass
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_writer(fd, _wake, ready)
        try:
            await ready
        finally:
            loop.remove_writer(fd)


def container_pty(pid: int) -> tuple[int, int]:
    """(master, slave) of a new pseudo-terminal in the devpts of the container whose process
    is ``pid``; OSError if it has none we can safely use."""
    flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in ("dev", "pts"):
            nxt = os.open(name, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
        master = os.open("ptmx", os.O_RDWR | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        if os.fstat(master).st_rdev != _PTMX:
            raise OSError(errno.EPERM, "the container's /dev/pts/ptmx is not a pty multiplexer")
        fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, _TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, int(slave)


class _NativeProcess:
    def __init__(self, stream: ExitStream, stdin_fd: int | None, streams: dict[int, int], tty_fd: int | None) -> None:
        self._exit = stream
        self._stdin = stdin_fd
        self.streams = streams
        self._tty = tty_fd
        self._code: int | None = None
        for fd in [*streams.values(), *([stdin_fd] if stdin_fd is not None else [])]:
            os.set_blocking(fd, False)

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                await write_fd(self._stdin, data)

    def close_stdin(self) -> None:
        if self._tty is not None and self._stdin is not None:
            # A terminal has no EOF of its own: send the line discipline's EOF character.
            with contextlib.suppress(OSError):
                os.write(self._stdin, b"\x04")
            return
        if self._stdin is not None:
            os.close(self._stdin)
            self._stdin = None

    def resize(self, width: int, height: int) -> None:
        if self._tty is not None:
            fcntl.ioctl(self._tty, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def read(self, channel: int) -> bytes:
        return await read_fd(self.streams[channel])

    async def wait(self) -> int:
        if self._code is not None:
            return self._code
        loop = asyncio.get_running_loop()
        sock = self._exit.sock
        sock.setblocking(False)
        buf = self._exit.buf
        while b"\n" not in buf:
            chunk = await loop.sock_recv(sock, 65536)
            if not chunk:
                raise SpawnerError("the spawner closed the exec connection")
            buf += chunk
        msg = json.loads(buf.partition(b"\n")[0])
        if not msg.get("ok") or "exit_code" not in msg:
            raise SpawnerError(msg.get("error", "exec failed"))
        self._code = int(msg["exit_code"])
        return self._code

    def kill(self) -> None:
        # Closing the exec connection makes the spawner SIGKILL the process.
        self._exit.close()

    def close(self) -> None:
        self._exit.close()
        fds = {*self.streams.values(), *([self._stdin] if self._stdin is not None else [])}
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._stdin = None
        self.streams = {}


class NativeExec:
    """:class:`ExecBackend` on the native runtime (the spawner forks the command)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def start(self, container_id: str, cmd: Sequence[str], *, stdin: bool, tty: bool) -> _NativeProcess:
        mine: list[int] = []  # our ends, kept
        theirs: list[int] = []  # the command's ends, closed here once the spawner has them
        try:
            if tty:
                try:
                    pid = (await asyncio.to_thread(self.runtime.status, container_id)).pid
                    master, slave = container_pty(pid) if pid else os.openpty()
                except OSError:
                    master, slave = os.openpty()
                mine.append(master)
                theirs.append(slave)
                writer = os.dup(master)
                mine.append(writer)
                stdio = [slave, slave, slave]
                streams = {STDOUT: master}
                stdin_fd: int | None = writer
                tty_fd: int | None = master
            else:
                if stdin:
                    in_r, in_w = os.pipe2(os.O_CLOEXEC)
                    mine.append(in_w)
                    stdin_fd = in_w
                else:
                    in_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
                    stdin_fd = None
                theirs.append(in_r)
                out_r, out_w = os.pipe2(os.O_CLOEXEC)
                err_r, err_w = os.pipe2(os.O_CLOEXEC)
                mine += [out_r, err_r]
                theirs += [out_w, err_w]
                stdio = [in_r, out_w, err_w]
                streams = {STDOUT: out_r, STDERR: err_r}
                tty_fd = None
            _pid, stream = await asyncio.to_thread(self.runtime.exec_start, container_id, list(cmd), stdio, tty)
        except BaseException:
            for fd in mine:
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        return _NativeProcess(stream, stdin_fd, streams, tty_fd)
