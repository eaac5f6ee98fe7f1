"""A managed etcd: the control plane starts its own single-member etcd when none is given.

The etcd binary (Debian's etcd-server, 3.4) runs as a child process with everything under one
directory: ``<data_dir>/data`` (etcd's data dir), ``<data_dir>/etcd.log`` and
``<data_dir>/ports.json``. It listens on loopback only. Ports are found by binding to port 0
and are remembered, so a restart on the same directory comes back at the same client URL and
clients already pointed at it reconnect by themselves. For labs and tests, several instances
can form one multi-member cluster on fixed ports (``cluster=``).

etcd fsyncs its WAL before acknowledging a write, so killing it (or us) with SIGKILL loses
nothing acknowledged. It is started with a parent-death signal: if the control plane dies
without stopping it, etcd gets SIGTERM instead of lingering and holding the data dir's locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
from pathlib import Path
from typing import BinaryIO

from controlplane.storage.errors import StorageError
from controlplane.storage.etcd import EtcdStore

log = logging.getLogger(__name__)

_HOST = "127.0.0.1"
_PORT_ATTEMPTS = 5
_STOP_GRACE = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_HOST, 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Like etcd (Go sets SO_REUSEADDR), ignore connections of a killed etcd in TIME_WAIT.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((_HOST, port))
        except OSError:
            return False
        return True


class EmbeddedEtcd:
    """One etcd child process; see the module docstring."""

    def __init__(
        self, data_dir: Path, *, binary: str = "etcd", name: str = "default",
        cluster: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        """``cluster`` (member name -> (client port, peer port), including ``name``) makes this
        one member of a multi-member cluster on fixed loopback ports; without it etcd is a
        single member on ports it picks itself."""
        self.data_dir = Path(data_dir)
        self.binary = binary
        self.name = name
        self.cluster = cluster
        self._proc: asyncio.subprocess.Process | None = None
        self._client_port = 0
        self._peer_port = 0
        if cluster is not None:
            if name not in cluster:
                raise ValueError(f"member {name!r} is not in the cluster {sorted(cluster)}")
            self._client_port, self._peer_port = cluster[name]

    @property
    def log_path(self) -> Path:
        return self.data_dir / "etcd.log"

    @property
    def client_url(self) -> str:
        if not self._client_port:
            raise RuntimeError("etcd has not been started")
        return f"http://{_HOST}:{self._client_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started); the exit status once it has exited."""
        return self._proc.returncode if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def wait(self) -> int:
        """Wait for etcd to exit (supervision: the control plane exits or restarts it)."""
        if self._proc is None:
            raise RuntimeError("etcd has not been started")
        return await self._proc.wait()

    def _pick_ports(self, reuse: bool) -> None:
        if self.cluster is not None:
            return  # the cluster's members know each other by these fixed ports
        ports_file = self.data_dir / "ports.json"
        if reuse and not self._client_port and ports_file.exists():
            saved = json.loads(ports_file.read_text())
            self._client_port, self._peer_port = int(saved["client"]), int(saved["peer"])
        if not (reuse and self._client_port and _port_free(self._client_port) and _port_free(self._peer_port)):
            self._client_port, self._peer_port = _free_port(), _free_port()
            while self._peer_port == self._client_port:
                self._peer_port = _free_port()
        ports_file.write_text(json.dumps({"client": self._client_port, "peer": self._peer_port}))

    def _open_log(self) -> BinaryIO:
        return open(self.log_path, "ab")

    def _command(self) -> list[str]:
        client, peer = self.client_url, f"http://{_HOST}:{self._peer_port}"
        members = self.cluster or {self.name: (self._client_port, self._peer_port)}
        initial_cluster = ",".join(f"{n}=http://{_HOST}:{pp}" for n, (_, pp) in sorted(members.items()))
        etcd = shutil.which(self.binary) or self.binary
        cmd = [
            etcd,
            "--name", self.name,
            "--data-dir", str(self.data_dir / "data"),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", initial_cluster,
            "--initial-cluster-state", "new",  # ignored once the data dir holds a member
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]
        setpriv = shutil.which("setpriv")
        # setpriv execs etcd, so the PID we hold is etcd's own.
        return [setpriv, "--pdeathsig", "TERM", *cmd] if setpriv else cmd

    async def start(self, timeout: float = 30) -> str:
        """Start etcd and wait until it serves requests; returns the client URL."""
        if self.running:
            raise RuntimeError(f"etcd is already running (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for attempt in range(_PORT_ATTEMPTS):
            # Keep the saved ports on the first try; after a bind race, pick new ones.
            self._pick_ports(reuse=attempt == 0)
            with self._open_log() as logf:
                env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
                self._proc = await asyncio.create_subprocess_exec(
                    *self._command(), stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                )
            log.info("started etcd (pid %d) at %s, data in %s", self._proc.pid, self.client_url, self.data_dir)
            if await self._wait_serving(deadline):
                return self.client_url
            if self.cluster is not None or not self._bind_failed():
                break
            log.warning("etcd lost a race for its ports; retrying with new ones")
        if self.running:
            await self.stop()
        raise StorageError(f"etcd did not start (exit status {self.returncode}); log tail:\n{self._log_tail()}")

    async def _wait_serving(self, deadline: float) -> bool:
        """True once etcd answers a linearizable read; False if it exited or time ran out."""
        loop = asyncio.get_running_loop()
        assert self._proc is not None
        while loop.time() < deadline:
            if self._proc.returncode is not None:
                return False
            try:
                store = await EtcdStore.connect([self.client_url], timeout=1.0)
            except StorageError:
                await asyncio.sleep(0.05)
                continue
            await store.close()
            return True
        return False

    def _bind_failed(self) -> bool:
        return self.returncode is not None and "address already in use" in self._log_tail()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if etcd has not exited within the grace period."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), _STOP_GRACE)
        except TimeoutError:
            log.warning("etcd (pid %d) ignored SIGTERM; killing it", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info("etcd (pid %d) stopped with status %s", proc.pid, proc.returncode)
