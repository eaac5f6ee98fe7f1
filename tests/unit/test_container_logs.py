"""Container logs without root: the spool pump, CRI records, rotation by size, and reading them
back the way ``kubectl logs`` asks (tail, since, timestamps, limitBytes, follow)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from nodeagent.runtime.logs import (
    CURRENT,
    MAX_LINE,
    SPOOL,
    LogOptions,
    LogPump,
    Record,
    RotationPolicy,
    encode_record,
    format_timestamp,
    log_files,
    parse_record,
    parse_timestamp,
    pump_finished,
    read_logs,
)


class Clock:
    def __init__(self, start_ns: int = 1_790_000_000 * 10**9) -> None:
        self.now = start_ns

    def __call__(self) -> int:
        return self.now


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def write_spool(container: Path, data: bytes) -> None:
    append(container / SPOOL, data)


async def collect(container: Path, opts: LogOptions) -> bytes:
    return b"".join([chunk async for chunk in read_logs(container, opts, poll=0.01)])


def read(container: Path, **kw: object) -> bytes:
    return asyncio.run(collect(container, LogOptions(**kw)))  # type: ignore[arg-type]


def test_timestamps_round_trip() -> None:
    ns = 1_790_000_000_123_456_789
    text = format_timestamp(ns)
    assert text.endswith(".123456789Z")
    assert parse_timestamp(text) == ns
    assert parse_timestamp("2026-01-02T03:04:05Z") == parse_timestamp("2026-01-02T03:04:05.000Z")
    assert parse_timestamp("2026-01-02T05:04:05+02:00") == parse_timestamp("2026-01-02T03:04:05Z")


def test_pump_moves_complete_lines_and_keeps_a_partial_one(tmp_path: Path) -> None:
    clock = Clock()
    pump = LogPump(tmp_path, RotationPolicy(), clock)
    write_spool(tmp_path, b"one\ntwo\nthr")
    pump.pump()
    records = [parse_record(line) for line in (tmp_path / "logs" / CURRENT).read_bytes().splitlines()]
    assert [(r.content, r.partial, r.stream) for r in records if r] == [(b"one", False, "stdout"), (b"two", False, "stdout")]
    write_spool(tmp_path, b"ee\n")
    pump.pump()
    assert read(tmp_path) == b"one\ntwo\nthree\n"
    assert not pump_finished(tmp_path)


def test_output_without_newline_is_written_once_the_container_exits(tmp_path: Path) -> None:
    pump = LogPump(tmp_path, RotationPolicy())
    write_spool(tmp_path, b"a\nno newline")
    pump.pump()
    assert read(tmp_path) == b"a\n"
    (tmp_path / "exit.json").write_text("{}")
    pump.pump()
    assert read(tmp_path) == b"a\nno newline"
    assert pump_finished(tmp_path)


def test_long_lines_become_partial_records(tmp_path: Path) -> None:
    pump = LogPump(tmp_path, RotationPolicy())
    line = b"x" * (MAX_LINE * 2 + 10)
    write_spool(tmp_path, line + b"\n")
    pump.pump()
    records = [parse_record(raw) for raw in (tmp_path / "logs" / CURRENT).read_bytes().splitlines()]
    assert [r.partial for r in records if r] == [True, True, False]
    assert read(tmp_path) == line + b"\n"
    assert read(tmp_path, tail_lines=1) == line + b"\n"


def test_rotation_keeps_max_files_and_the_newest_lines(tmp_path: Path) -> None:
    clock = Clock()
    policy = RotationPolicy(max_size=400, max_files=3)
    pump = LogPump(tmp_path, policy, clock)
    for i in range(100):
        clock.now += 1_000_000
        write_spool(tmp_path, f"line {i:03d}\n".encode())
        pump.pump()
    files = log_files(tmp_path)
    assert len(files) == 3, files
    assert files[-1].name == CURRENT
    assert all(f.stat().st_size <= policy.max_size for f in files)
    text = read(tmp_path).decode().splitlines()
    assert text[-1] == "line 099"
    assert text == [f"line {i:03d}" for i in range(100 - len(text), 100)]  # contiguous, newest kept
    assert len(text) < 100  # the oldest went with the deleted files


def test_pumped_spool_gives_its_blocks_back(tmp_path: Path) -> None:
    pump = LogPump(tmp_path, RotationPolicy(max_size=64 * 1024, max_files=2))
    chunk = (b"y" * 1023 + b"\n") * 1024  # 1 MiB
    for _ in range(4):
        write_spool(tmp_path, chunk)
        pump.pump()
    st = os.stat(tmp_path / SPOOL)
    assert st.st_size == 4 * len(chunk)  # the container's O_APPEND offset is untouched
    assert st.st_blocks * 512 < len(chunk)  # but what was read holds no disk blocks
    assert sum(f.stat().st_size for f in log_files(tmp_path)) <= 2 * 64 * 1024


def test_tail_since_timestamps_and_limit(tmp_path: Path) -> None:
    clock = Clock()
    pump = LogPump(tmp_path, RotationPolicy(max_size=100, max_files=10), clock)
    stamps = []
    for i in range(6):
        clock.now += 10 * 10**9
        stamps.append(clock.now)
        write_spool(tmp_path, f"l{i}\n".encode())
        pump.pump()
    assert read(tmp_path, tail_lines=2) == b"l4\nl5\n"
    assert read(tmp_path, tail_lines=0) == b""
    assert read(tmp_path, tail_lines=50) == b"".join(f"l{i}\n".encode() for i in range(6))
    assert read(tmp_path, since_ns=stamps[3]) == b"l3\nl4\nl5\n"
    assert read(tmp_path, tail_lines=1, timestamps=True) == format_timestamp(stamps[5]).encode() + b" l5\n"
    assert read(tmp_path, limit_bytes=5) == b"l0\nl1"


def test_rotation_policy_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RotationPolicy(max_size=0)


def test_follow_sees_new_lines_across_a_rotation_and_ends_with_the_container(tmp_path: Path) -> None:
    pump = LogPump(tmp_path, RotationPolicy(max_size=200, max_files=5))
    write_spool(tmp_path, b"first\n")
    pump.pump()

    async def scenario() -> bytes:
        out: list[bytes] = []

        async def follow() -> None:
            async for chunk in read_logs(tmp_path, LogOptions(follow=True), poll=0.01):
                out.append(chunk)

        task = asyncio.create_task(follow())
        for i in range(20):  # enough to rotate several times while the reader follows
            await asyncio.sleep(0.01)
            write_spool(tmp_path, f"more {i:02d}\n".encode())
            pump.pump()
        (tmp_path / "exit.json").write_text("{}")
        pump.pump()
        await asyncio.wait_for(task, 30)
        return b"".join(out)

    got = asyncio.run(scenario())
    assert len(log_files(tmp_path)) > 1  # it did rotate under the reader
    assert got == b"first\n" + b"".join(f"more {i:02d}\n".encode() for i in range(20))


def test_a_record_still_being_written_is_neither_cut_nor_lost(tmp_path: Path) -> None:
    pump = LogPump(tmp_path, RotationPolicy())
    write_spool(tmp_path, b"a\n")
    pump.pump()
    current = tmp_path / "logs" / CURRENT
    record = encode_record(Record(time.time_ns(), "stdout", False, b"bbbb"))
    append(current, record[:10])  # the pump is half-way through writing it
    assert read(tmp_path) == b"a\n"

    async def scenario() -> bytes:
        out: list[bytes] = []

        async def follow() -> None:
            async for chunk in read_logs(tmp_path, LogOptions(follow=True), poll=0.01):
                out.append(chunk)

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.05)
        await asyncio.to_thread(append, current, record[10:])
        (tmp_path / "exit.json").write_text("{}")
        pump.pump()
        await asyncio.wait_for(task, 30)
        return b"".join(out)

    assert asyncio.run(scenario()) == b"a\nbbbb\n"
