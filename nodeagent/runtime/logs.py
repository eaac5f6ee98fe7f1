"""Container logs: timestamped CRI-format files, rotated by size, and read for ``kubectl logs``.

How a container's output reaches its log, and why this way:

* The container's stdout and stderr are one ``O_APPEND`` descriptor to its raw *spool*,
  ``containers/<id>/container.log`` (opened by the spawner's child before ``execve``). The
  container writes straight to the file: it never blocks on, and never gets ``SIGPIPE`` from, a
  log reader, and an agent restart (or a spawner restart) loses nothing.
* That descriptor cannot be moved to a new file from outside, so the spool is not what gets
  rotated. :class:`LogPump` (run by the agent for every container, :class:`LogPumps`) reads new
  complete lines from the spool, stamps each with the time it read it, and appends them in the
  CRI log format (``<RFC 3339 nano> stdout F|P <bytes>``, one record a line, as containerd
  writes them) to ``containers/<id>/logs/current.log``. The pump owns that file, so rotation is
  an honest rename: once it would exceed ``max_size``, ``current.log`` becomes
  ``current.log.<UTC time>`` and only ``max_files`` files (current included) are kept, as the
  kubelet's containerLogMaxSize/containerLogMaxFiles do.
* What the pump has consumed is freed in the spool with ``fallocate(PUNCH_HOLE)``: the spool's
  size keeps growing but it holds no blocks for what was read, so disk use stays within the
  rotation policy. A filesystem without hole punching keeps the spool whole (logged once).

Limits that follow (documented, not hidden): a line's timestamp is when the pump read it
(within one pump interval of the write, later if the agent was down); stdout and stderr share
the spool, so every record says ``stdout``; a crash between writing records and saving the
spool offset repeats those records once. A line without a newline stays in the spool until
more output completes it, it grows past :data:`MAX_LINE` (then it is written as partial ``P``
records, as containerd splits long lines) or the container exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import datetime as dt
import errno
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

SPOOL = "container.log"  # rootfs.ContainerDir.log: what the container writes to
LOG_DIR = "logs"
CURRENT = "current.log"
STATE = "pump.json"
EXIT_RECORD = "exit.json"  # written by the spawner once the container exited
DEFAULT_MAX_SIZE = 10 * 1024 * 1024  # the kubelet's containerLogMaxSize (10Mi)
DEFAULT_MAX_FILES = 5  # the kubelet's containerLogMaxFiles
MAX_LINE = 16 * 1024  # longer lines become partial records (containerd's buffer size)
_READ_CHUNK = 1024 * 1024
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_BLOCK = 4096


@dataclass(frozen=True)
class RotationPolicy:
    max_size: int = DEFAULT_MAX_SIZE
    max_files: int = DEFAULT_MAX_FILES

    def __post_init__(self) -> None:
        if self.max_size < 1 or self.max_files < 1:
            raise ValueError("container log max size and max files must be at least 1")


# ----------------------------------------------------------------------------- the CRI format


@dataclass(frozen=True)
class Record:
    ts_ns: int  # nanoseconds since the epoch
    stream: str
    partial: bool
    content: bytes  # without the record's newline


def format_timestamp(ts_ns: int) -> str:
    """RFC 3339 with nanoseconds in UTC, as the CRI log format and ``kubectl logs --timestamps``
    print it: ``2026-11-26T14:13:14.123456789Z``."""
    secs, frac = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def parse_timestamp(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time (any fraction length, ``Z`` or offset)."""
    main, frac, rest = text, "", ""
    if "." in text:
        main, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        frac, rest = tail[:digits], tail[digits:]
    else:
        for i in range(len(text) - 1, 9, -1):
            if text[i] in "Z+-":
                main, rest = text[:i], text[i:]
                break
    when = dt.datetime.fromisoformat(main + (rest or "Z"))
    if when.tzinfo is None:
        raise ValueError(f"time {text!r} has no zone")
    ns = (frac + "000000000")[:9] if frac else "0"
    return int(when.timestamp()) * 1_000_000_000 + int(ns)


def encode_record(rec: Record) -> bytes:
    tag = b"P" if rec.partial else b"F"
    return format_timestamp(rec.ts_ns).encode() + b" " + rec.stream.encode() + b" " + tag + b" " + rec.content + b"\n"


def parse_record(line: bytes) -> Record | None:
    """One CRI log line (with or without its newline); None if it is not one."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[2] not in (b"F", b"P"):
        return None
    try:
        ts = parse_timestamp(parts[0].decode())
    except ValueError:
        return None
    return Record(ts, parts[1].decode(errors="replace"), parts[2] == b"P", parts[3] if len(parts) == 4 else b"")


# ----------------------------------------------------------------------------- writing


def _punch_hole(fd: int, offset: int, length: int) -> None:
    libc = _libc()
    if libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, ctypes.c_int64(offset), ctypes.c_int64(length)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _LIBC.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return _LIBC


def _read_state(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (FileNotFoundError, ValueError):
        return {}


def _write_state(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def log_dir(container_dir: Path) -> Path:
    return container_dir / LOG_DIR


def log_files(container_dir: Path) -> list[Path]:
    """The container's CRI log files, oldest first (rotated ones, then the current one)."""
    d = log_dir(container_dir)
    try:
        rotated = sorted(p for p in d.iterdir() if p.name.startswith(CURRENT + "."))
    except FileNotFoundError:
        return []
    current = d / CURRENT
    return [*rotated, *([current] if current.exists() else [])]


def pump_finished(container_dir: Path) -> bool:
    """Whether the container exited and its whole spool is in its log."""
    return bool(_read_state(log_dir(container_dir) / STATE).get("done"))


class LogPump:
    """Moves one container's spool into its rotated CRI log (see the module docstring)."""

    def __init__(self, container_dir: Path, policy: RotationPolicy, clock: Any = time.time_ns) -> None:
        self.dir = container_dir
        self.policy = policy
        self.clock = clock
        self.logs = log_dir(container_dir)
        self.state_path = self.logs / STATE
        self.state = _read_state(self.state_path)

    @property
    def done(self) -> bool:
        return bool(self.state.get("done"))

    def pump(self) -> int:
        """Move what the spool holds now; returns the bytes consumed. Marks the log done once the
        container has exited and everything was moved."""
        if self.done:
            return 0
        exited = (self.dir / EXIT_RECORD).exists()  # checked first: the spool is complete after it
        try:
            fd = os.open(self.dir / SPOOL, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            if exited:
                self._save(done=True)
            return 0
        moved = 0
        try:
            offset = int(self.state.get("offset", 0))
            while True:
                data = os.pread(fd, _READ_CHUNK, offset)
                if not data:
                    break
                final = exited and len(data) < _READ_CHUNK
                used = self._write(data, final)
                if used == 0:
                    break
                offset += used
                moved += used
                self._save(offset=offset)
                if used < len(data):
                    break
            self._punch(fd, offset)
        finally:
            os.close(fd)
        if exited and os.path.getsize(self.dir / SPOOL) <= int(self.state.get("offset", 0)):
            self._save(done=True)
        return moved

    def _records(self, data: bytes, final: bool) -> tuple[list[bytes], int]:
        """CRI records for the complete lines of ``data`` (and its rest if ``final``); how much of
        ``data`` they cover."""
        now = int(self.clock())
        out: list[bytes] = []
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos, pos + MAX_LINE + 1)
            if nl >= 0:
                out.append(encode_record(Record(now, "stdout", False, data[pos:nl])))
                pos = nl + 1
            elif len(data) - pos > MAX_LINE:
                out.append(encode_record(Record(now, "stdout", True, data[pos:pos + MAX_LINE])))
                pos += MAX_LINE
            elif final:
                out.append(encode_record(Record(now, "stdout", True, data[pos:])))
                pos = len(data)
            else:
                break
        return out, pos

    def _write(self, data: bytes, final: bool) -> int:
        records, used = self._records(data, final)
        if not records:
            return used
        self.logs.mkdir(exist_ok=True)
        current = self.logs / CURRENT
        size = current.stat().st_size if current.exists() else 0
        f = open(current, "ab")
        try:
            for rec in records:
                if size and size + len(rec) > self.policy.max_size:
                    f.close()
                    self._rotate(current)
                    f = open(current, "ab")
                    size = 0
                f.write(rec)
                size += len(rec)
        finally:
            f.close()
        return used

    def _rotate(self, current: Path) -> None:
        now = self.clock()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now // 1_000_000_000)) + f".{now % 1_000_000_000:09d}"
        os.replace(current, current.with_name(f"{CURRENT}.{stamp}"))
        rotated = [p for p in log_files(self.dir) if p.name != CURRENT]
        for old in rotated[: max(0, len(rotated) - (self.policy.max_files - 1))]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()

    def _punch(self, fd: int, offset: int) -> None:
        if self.state.get("no_punch"):
            return
        start = int(self.state.get("punched", 0))
        end = offset - offset % _BLOCK
        if end <= start:
            return
        try:
            _punch_hole(fd, start, end - start)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            log.warning("%s: the filesystem cannot punch holes; the spool keeps its blocks", self.dir / SPOOL)
            self._save(no_punch=True)
            return
        self._save(punched=end)

    def _save(self, **changes: Any) -> None:
        self.state.update(changes)
        self.logs.mkdir(exist_ok=True)
        _write_state(self.state_path, self.state)


class LogPumps:
    """Runs a :class:`LogPump` for every container under ``containers_dir``, every ``interval``."""

    def __init__(self, containers_dir: Path, policy: RotationPolicy, interval: float = 0.2) -> None:
        self.containers_dir = containers_dir
        self.policy = policy
        self.interval = interval
        self._pumps: dict[str, LogPump] = {}

    def pump_all(self) -> None:
        try:
            names = {d.name for d in self.containers_dir.iterdir()}
        except FileNotFoundError:
            names = set()
        for gone in set(self._pumps) - names:
            del self._pumps[gone]
        for name in names:
            pump = self._pumps.get(name)
            if pump is None:
                pump = self._pumps[name] = LogPump(self.containers_dir / name, self.policy)
            if pump.done:
                continue
            try:
                pump.pump()
            except FileNotFoundError:
                self._pumps.pop(name, None)  # the container was removed under us
            except OSError as e:
                log.warning("container %s: log pump failed: %s", name[:12], e)

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.pump_all)
            await asyncio.sleep(self.interval)


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since_ns: int | None = None
    timestamps: bool = False
    limit_bytes: int | None = None


def _records_of(f: BinaryIO) -> Iterator[Record]:
    """The records from ``f``'s position on; stops before a line the pump is still writing
    (no newline yet), leaving ``f`` at its start."""
    while True:
        pos = f.tell()
        line = f.readline()
        if not line.endswith(b"\n"):
            f.seek(pos)
            return
        rec = parse_record(line)
        if rec is not None:
            yield rec


def _file_records(path: Path) -> Iterator[Record]:
    try:
        with open(path, "rb") as f:
            yield from _records_of(f)
    except FileNotFoundError:
        return


def _line_ends(path: Path) -> int:
    return sum(1 for rec in _file_records(path) if not rec.partial)


class _Formatter:
    """Records to output bytes: partial records joined into lines, timestamps, byte limit."""

    def __init__(self, opts: LogOptions) -> None:
        self.opts = opts
        self.left = opts.limit_bytes
        self.mid_line = False

    @property
    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0

    def render(self, rec: Record) -> bytes:
        prefix = format_timestamp(rec.ts_ns).encode() + b" " if self.opts.timestamps and not self.mid_line else b""
        out = prefix + rec.content + (b"" if rec.partial else b"\n")
        self.mid_line = rec.partial
        if self.left is not None:
            out = out[: self.left]
            self.left -= len(out)
        return out


def _history(files: list[Path], opts: LogOptions) -> tuple[list[Record], BinaryIO | None]:
    """The records to print before following (``since`` applied, then the last ``tail`` lines),
    and the current file open right after them: following goes on from exactly there."""
    if opts.tail_lines is not None:
        start, count = len(files), 0
        while start > 0 and count <= opts.tail_lines:
            start -= 1
            count += _line_ends(files[start])
        files = files[start:]
    current: BinaryIO | None = None
    lines: list[list[Record]] = [[]]
    for path in files:
        if path.name == CURRENT:
            try:
                current = open(path, "rb")
            except FileNotFoundError:
                continue  # rotated away meanwhile: the follower reads the new one from its start
            records = _records_of(current)
        else:
            records = _file_records(path)
        for rec in records:
            if opts.since_ns is not None and rec.ts_ns < opts.since_ns and not lines[-1]:
                continue
            lines[-1].append(rec)
            if not rec.partial:
                lines.append([])
    if not lines[-1]:
        lines.pop()
    if opts.tail_lines is not None:
        lines = lines[len(lines) - opts.tail_lines:] if opts.tail_lines else []
    return [rec for line in lines for rec in line], current


async def read_logs(container_dir: Path, opts: LogOptions, poll: float = 0.1) -> AsyncIterator[bytes]:
    """The container's log as ``kubectl logs`` prints it; with ``follow`` new lines as they come,
    until the container has exited and its log is complete (or the container is removed)."""
    fmt = _Formatter(opts)
    files = await asyncio.to_thread(log_files, container_dir)
    history, current = await asyncio.to_thread(_history, files, opts)
    follower = _Follower(container_dir, current)
    try:
        for rec in history:
            yield fmt.render(rec)
            if fmt.exhausted:
                return
        if not opts.follow:
            return
        while True:
            records, finished = await asyncio.to_thread(follower.step)
            for rec in records:
                if opts.since_ns is not None and rec.ts_ns < opts.since_ns:
                    continue
                yield fmt.render(rec)
                if fmt.exhausted:
                    return
            if finished:
                return
            if not records:
                await asyncio.sleep(poll)
    finally:
        follower.close()


class _Follower:
    """Reads records appended to the current log file after a point, across rotations."""

    def __init__(self, container_dir: Path, current: BinaryIO | None) -> None:
        self.dir = container_dir
        self.current = log_dir(container_dir) / CURRENT
        self.f = current  # positioned where the history ended (at a record's start)
        self.buf = b""

    def step(self) -> tuple[list[Record], bool]:
        """(new records, whether the log is complete and all read)."""
        if self.f is None:
            try:
                self.f = open(self.current, "rb")  # a new current file: read it from its start
            except FileNotFoundError:
                self.f = None
        chunk = self.f.read(65536) if self.f is not None else b""
        if chunk:
            self.buf += chunk
            *lines, self.buf = self.buf.split(b"\n")
            return [rec for rec in map(parse_record, lines) if rec is not None], False
        if self.f is not None and self._rotated_away(self.f):
            self.f.close()
            self.f = None  # drained the renamed file: go on with the new current one
            return [], False
        if not self.dir.exists():
            return [], True
        grew = self.current.exists() if self.f is None else os.fstat(self.f.fileno()).st_size > self.f.tell()
        return [], pump_finished(self.dir) and not grew

    def _rotated_away(self, f: BinaryIO) -> bool:
        try:
            return os.stat(self.current).st_ino != os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            return False

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
