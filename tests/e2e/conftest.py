"""End-to-end tests: real node agents with the native runtime (root: namespaces, mounts, cgroups)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from apimachinery.api.core_v1 import Node
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.errors import ApiError
from tests.fixtures.apiserver import ControlPlaneProcess
from tests.fixtures.wait import eventually


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs root; runs real node agents and containers")


class AgentProcess(Protocol):
    """What :func:`running_agent` needs of an agent process (``test_node_agent.Agent``)."""

    node: str
    data_dir: Path

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def log_tail(self) -> str: ...


A = TypeVar("A", bound=AgentProcess)


@contextlib.contextmanager
def running_agent(make: Callable[[Path], A], prefix: str) -> Iterator[A]:
    """An agent made by ``make(tmp_dir)``, started; afterwards stopped, whatever it left purged
    (and asserted gone), its logs copied to ``$KL_E2E_KEEP_LOGS`` if set, the temp dir removed."""
    from nodeagent.agent.agent import purge  # the agent's modules only where an agent runs

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    agent = make(tmp)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()
        left = purge(agent.data_dir, agent.node) if agent.data_dir.exists() else []
        keep = os.environ.get("KL_E2E_KEEP_LOGS")  # a directory to copy the agent logs to
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            for log in tmp.glob("agent-*.log"):
                shutil.copy(log, Path(keep) / f"{prefix}{log.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, left


def node_ready(node: dict[str, Any]) -> bool:
    """The Node's Ready condition is True."""
    return any(x["type"] == "Ready" and x["status"] == "True" for x in node["status"]["conditions"])


@contextlib.asynccontextmanager
async def node_client(cp: ControlPlaneProcess, agent: AgentProcess, registered: Callable[[dict[str, Any]], bool],
                      what: str, timeout: float) -> AsyncIterator[ApiClient]:
    """An admin client of ``cp`` once the agent's Node passes ``registered`` (else the agent's log
    tail says why); the Node is deleted afterwards."""
    async with ApiClient(load_kubeconfig(cp.kubeconfig)) as c:
        async def check() -> bool:
            return registered(await c.get(c.resource(Node), agent.node))

        try:
            await eventually(check, what, timeout)
        except AssertionError:
            raise AssertionError(f"node not registered; agent log:\n{agent.log_tail()}") from None
        yield c
        with contextlib.suppress(ApiError):
            await c.delete(c.resource(Node), agent.node)
