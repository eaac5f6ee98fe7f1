"""A control plane killed with SIGKILL loses nothing it acknowledged, and comes back on the same
data dir (embedded etcd included) with the same CA, token and objects."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import aiohttp
import pytest

from tests.fixtures.apiserver import ControlPlaneProcess, RawApi

pytestmark = pytest.mark.integration


async def test_kill9_loses_nothing_acknowledged() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kl-restart-"))
    cp = ControlPlaneProcess(tmp)
    try:
        cp.start()
        ca_before = cp.ca_file.read_bytes()
        token_before = cp.token
        acknowledged: list[str] = []
        connector = aiohttp.TCPConnector(ssl=cp.ssl_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            api = RawApi(cp, session, cp.token)

            async def writer(i: int) -> None:
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}, "data": {"i": str(i)}}
                try:
                    r = await api.post("/api/v1/namespaces/default/configmaps", body)
                except aiohttp.ClientError:
                    return
                if r.status == 201:
                    acknowledged.append(f"cm-{i}")

            enough = asyncio.Event()

            async def writer_then_signal(i: int) -> None:
                await writer(i)
                if len(acknowledged) >= 50:
                    enough.set()

            tasks = [asyncio.create_task(writer_then_signal(i)) for i in range(200)]
            # Kill while writes are in flight.
            await asyncio.wait_for(enough.wait(), 60)
            cp.kill9()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert len(acknowledged) >= 50

        # The embedded etcd must not outlive its control plane (or it would hold the data dir).
        cp.start()
        assert cp.ca_file.read_bytes() == ca_before and cp.token == token_before
        connector = aiohttp.TCPConnector(ssl=cp.ssl_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            api = RawApi(cp, session, cp.token)
            listed = await api.get("/api/v1/namespaces/default/configmaps")
            names = {i["metadata"]["name"] for i in listed.body["items"]}
            missing = set(acknowledged) - names
            assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
            for name in acknowledged[:5]:
                got = await api.get(f"/api/v1/namespaces/default/configmaps/{name}")
                assert got.status == 200 and got.body["data"]["i"] == name.split("-")[1]
    finally:
        cp.stop()
        shutil.rmtree(tmp, ignore_errors=True)
