"""Endpoints that are terminating but still serving, against real nftables and conntrack.

A pod in its graceful shutdown (preStop, SIGTERM handling) is ``ready: false, serving: true,
terminating: true`` in its EndpointSlice. New connections must stop going there, but the
connections it is still answering must not be cut: their conntrack entries are kept until the
endpoint stops serving or leaves the slice, and only then flushed. And when a service has
nothing but such endpoints, they still get traffic instead of a refusal.

Same topology as :mod:`.test_proxy_nft` (its ``topo`` fixture: a node namespace with two
backends and a client, all removed at the end).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from nodeagent.proxy.apply import NftApplier
from nodeagent.proxy.rules import Ruleset, render
from tests.integration.test_proxy_nft import (  # noqa: F401  (topo is a fixture)
    BACKEND_PORT,
    BACKENDS,
    HOLD,
    Topology,
    connect,
    service,
    sh,
    topo,
)

pytestmark = pytest.mark.skipif(shutil.which("conntrack") is None, reason="the conntrack tool shows the flows")

VIP = "10.96.0.30"


def drain_slice(ready: Sequence[str], draining: Sequence[str] = (), gone_serving: Sequence[str] = ()) -> dict[str, Any]:
    def ep(name: str, ready: bool, serving: bool, terminating: bool) -> dict[str, Any]:
        return {"addresses": [BACKENDS[name]],
                "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}

    eps = [ep(n, True, True, False) for n in ready]
    eps += [ep(n, False, True, True) for n in draining]
    eps += [ep(n, False, False, True) for n in gone_serving]
    return {
        "metadata": {"name": "drain-x", "namespace": "default", "labels": {"kubernetes.io/service-name": "drain"}},
        "addressType": "IPv4", "endpoints": eps,
        "ports": [{"name": "http", "port": BACKEND_PORT, "protocol": "TCP"}],
    }


def flows_to(t: Topology, backend: str) -> str:
    return sh("ip", "netns", "exec", t.node, "conntrack", "-L", "-p", "tcp", "--orig-dst", VIP,
              "--reply-src", BACKENDS[backend], check=False).stdout


async def hold_on(t: Topology, backend: str) -> asyncio.subprocess.Process:
    """An open connection through the VIP that landed on ``backend`` (others are closed)."""
    for _ in range(50):
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", t.node, sys.executable, "-c", HOLD, VIP, "80",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        if (await proc.stdout.readline()).decode().strip() == backend:
            return proc
        proc.kill()
        await proc.wait()
    raise AssertionError(f"no connection landed on {backend}")


async def test_draining_endpoint_keeps_its_flows_until_it_stops_serving(topo: Topology) -> None:  # noqa: F811
    applier = NftApplier(netns=topo.node)
    svcs = [service("drain", VIP)]

    def rs(slice_: dict[str, Any]) -> Ruleset:
        return render(svcs, [slice_], table=topo.table)

    held: asyncio.subprocess.Process | None = None
    try:
        await applier.apply(rs(drain_slice(["be1", "be2"])))
        held = await hold_on(topo, "be2")
        assert BACKENDS["be2"] in flows_to(topo, "be2")

        # be2 starts its graceful shutdown: no new connections, its open one is kept.
        await applier.apply(rs(drain_slice(["be1"], draining=["be2"])))
        assert set(await connect(topo.node, VIP, 80, 20)) == {"be1"}
        assert BACKENDS["be2"] in flows_to(topo, "be2")
        assert (VIP, "tcp", BACKENDS["be2"], BACKEND_PORT) in applier.deferred_routes

        # It stopped serving (its process is going): now its flows are flushed.
        await applier.apply(rs(drain_slice(["be1"], gone_serving=["be2"])))
        assert BACKENDS["be2"] not in flows_to(topo, "be2")
        assert not applier.deferred_routes
        assert applier.flushed_routes == [(VIP, "tcp", BACKENDS["be2"], BACKEND_PORT)]
    finally:
        if held is not None:
            held.kill()
            await held.wait()
        await applier.delete(topo.table)


async def test_only_draining_endpoints_left_still_serve(topo: Topology) -> None:  # noqa: F811
    applier = NftApplier(netns=topo.node)
    svcs = [service("drain", VIP)]
    try:
        await applier.apply(render(svcs, [drain_slice([], draining=["be2"])], table=topo.table))
        assert set(await connect(topo.node, VIP, 80, 5)) == {"be2"}
        # Not serving any more: nothing left, so the Service refuses.
        await applier.apply(render(svcs, [drain_slice([], gone_serving=["be2"])], table=topo.table))
        assert await connect(topo.node, VIP, 80, 3) == ["refused"] * 3
    finally:
        await applier.delete(topo.table)
