"""The agent's exec endpoint over the runtime service: an
:class:`~nodeagent.agent.execproc.ExecBackend` whose processes are
:meth:`RuntimeClient.exec_stream` sessions.

With it the agent's logs/exec server (:mod:`nodeagent.agent.server`) works whichever runtime
serves the node, in this process or behind ``--runtime-endpoint``:

    AgentServer(..., CriExec(runtime_client), ...)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nodeagent.agent.execproc import STDERR, STDOUT
from nodeagent.cri.client import ExecSession, RuntimeClient


class CriExecProcess:
    """One exec session seen as an :class:`~nodeagent.agent.execproc.ExecProcess`."""

    def __init__(self, session: ExecSession, tty: bool) -> None:
        self.session = session
        # Channels only: the output comes over the service, not from a descriptor of ours.
        self.streams: dict[int, int] = {STDOUT: -1} if tty else {STDOUT: -1, STDERR: -1}
        self._queues: dict[int, asyncio.Queue[bytes]] = {ch: asyncio.Queue() for ch in self.streams}
        self._reader = asyncio.create_task(self._read_all())

    async def _read_all(self) -> int:
        try:
            async for stream, data in self.session:
                channel = STDERR if stream == "stderr" and STDERR in self._queues else STDOUT
                self._queues[channel].put_nowait(data)
        finally:
            for q in self._queues.values():
                q.put_nowait(b"")  # end of every stream
        return self.session.exit_code if self.session.exit_code is not None else 1

    async def write_stdin(self, data: bytes) -> None:
        await self.session.write(data)

    def close_stdin(self) -> None:
        self.session.close_stdin()

    def resize(self, width: int, height: int) -> None:
        self.session.resize(height, width)

    async def read(self, channel: int) -> bytes:
        data = await self._queues[channel].get()
        if not data:
            self._queues[channel].put_nowait(b"")  # stays at its end for later reads
        return data

    async def wait(self) -> int:
        return await asyncio.shield(self._reader)

    def kill(self) -> None:
        self._reader.cancel()  # closing the session cancels the call: the process is killed

    def close(self) -> None:
        self.kill()


class CriExec:
    """Start execs through the runtime service."""

    def __init__(self, client: RuntimeClient) -> None:
        self.client = client

    async def start(self, container_id: str, cmd: Sequence[str], *, stdin: bool, tty: bool) -> CriExecProcess:
        session = self.client.exec_stream(container_id, list(cmd), tty=tty, open_stdin=stdin)
        await session.wait_started()  # errors (not running, no such command) surface here
        return CriExecProcess(session, tty)

