"""WATCH: ordering, resume from a resourceVersion, initial state, watch-list bookmarks, selectors,
410 Expired after compaction."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from controlplane.storage.etcd import EtcdStore
from tests.fixtures.apiserver import ControlPlaneProcess, RawApi, running_control_plane

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def api(api_bare: RawApi) -> RawApi:
    """These tests are about the API server alone: no controller may touch their objects."""
    return api_bare


class Stream:
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.resp.content.readline(), timeout)
        assert line, "watch stream ended"
        return json.loads(line)

    async def events(self, n: int, *, skip_bookmarks: bool = True) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while len(out) < n:
            ev = await self.next()
            if skip_bookmarks and ev["type"] == "BOOKMARK":
                continue
            out.append(ev)
        return out


@asynccontextmanager
async def watching(api: RawApi, path: str, **params: str) -> AsyncIterator[Stream]:
    headers = {"Authorization": f"Bearer {api.token}"}
    async with api.session.get(api.cp.url + path, params={"watch": "true", **params}, headers=headers) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("application/json")
        yield Stream(r)


def cm(name: str, v: str = "1", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": {"v": v}}


async def test_watch_from_resource_version_replays_in_order(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    first = (await api.post(path, cm("w0"))).body
    start_rv = first["metadata"]["resourceVersion"]
    await api.put(f"{path}/w0", {**first, "data": {"v": "2"}})
    await api.post(path, cm("w1"))
    await api.delete(f"{path}/w0")
    async with watching(api, path, resourceVersion=start_rv) as w:
        evs = await w.events(3)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [
            ("MODIFIED", "w0"), ("ADDED", "w1"), ("DELETED", "w0")]
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
        assert rvs == sorted(rvs) and rvs[0] > int(start_rv)
        # ...then live events keep coming on the same stream.
        await api.post(path, cm("w2"))
        live = await w.events(1)
        assert live[0]["type"] == "ADDED" and live[0]["object"]["metadata"]["name"] == "w2"


async def test_watch_without_rv_sends_current_state_first(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await api.post(path, cm("s0"))
    await api.post(path, cm("s1"))
    async with watching(api, path) as w:
        evs = await w.events(2)
        assert sorted(e["object"]["metadata"]["name"] for e in evs) == ["s0", "s1"]
        assert {e["type"] for e in evs} == {"ADDED"}


async def test_watch_list_ends_initial_events_with_bookmark(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await api.post(path, cm("l0"))
    async with watching(api, path, sendInitialEvents="true", resourceVersionMatch="NotOlderThan",
                        allowWatchBookmarks="true") as w:
        ev = await w.next()
        assert ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "l0"
        bm = await w.next()
        assert bm["type"] == "BOOKMARK"
        assert bm["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert int(bm["object"]["metadata"]["resourceVersion"]) >= int(ev["object"]["metadata"]["resourceVersion"])
    bad = await api.get(path, params={"watch": "1", "sendInitialEvents": "true"})
    assert bad.status == 422


async def test_watch_label_selector_reports_leaving_as_deleted(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    obj = (await api.post(path, cm("sel", labels={"app": "a"}))).body
    rv = obj["metadata"]["resourceVersion"]
    await api.post(path, cm("other", labels={"app": "b"}))
    relabeled = {**obj, "metadata": {**obj["metadata"], "labels": {"app": "b"}}}
    await api.put(f"{path}/sel", relabeled)
    async with watching(api, path, resourceVersion=rv, labelSelector="app=a") as w:
        evs = await w.events(1)
        assert evs[0]["type"] == "DELETED" and evs[0]["object"]["metadata"]["name"] == "sel"


async def test_watch_single_object_by_name(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    a = (await api.post(path, cm("one"))).body
    await api.post(path, cm("two"))
    async with watching(api, f"{path}/one", resourceVersion=a["metadata"]["resourceVersion"]) as w:
        await api.put(f"{path}/two", {**cm("two"), "data": {"v": "x"}})
        await api.put(f"{path}/one", {**cm("one"), "data": {"v": "y"}})
        ev = (await w.events(1))[0]
        assert ev["object"]["metadata"]["name"] == "one" and ev["object"]["data"] == {"v": "y"}


async def test_watch_timeout_ends_stream(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    headers = {"Authorization": f"Bearer {api.token}"}
    async with api.session.get(api.cp.url + path, params={"watch": "1", "timeoutSeconds": "1",
                                                          "resourceVersion": "1"}, headers=headers) as r:
        body = await asyncio.wait_for(r.read(), 10)
        assert r.status == 200 and isinstance(body, bytes)


async def test_python_style_bool_and_legacy_watch_path(api: RawApi, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await api.post(path, cm("b0"))
    headers = {"Authorization": f"Bearer {api.token}"}
    async with api.session.get(api.cp.url + f"/api/v1/watch/namespaces/{namespace}/configmaps",
                               params={"timeoutSeconds": "1"}, headers=headers) as r:
        first = json.loads(await asyncio.wait_for(r.content.readline(), 10))
        assert first["type"] == "ADDED"
    r2 = await api.get(path, params={"watch": "True", "timeoutSeconds": "1"})
    assert r2.status == 200
    bad = await api.get(path, params={"watch": "yes"})
    assert bad.status == 400


@pytest.fixture(scope="module")
def compacting_cp(etcd_server: Any) -> Any:
    """A second control plane on the shared test etcd, so the test can compact that etcd."""
    with running_control_plane("--etcd-servers", etcd_server.client_url, prefix="kl-compact-") as cp:
        yield cp


async def test_watch_and_list_410_after_compaction(compacting_cp: ControlPlaneProcess, etcd_server: Any) -> None:
    connector = aiohttp.TCPConnector(ssl=compacting_cp.ssl_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        api = RawApi(compacting_cp, session, compacting_cp.token)
        ns = "compact-test"
        await api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        path = f"/api/v1/namespaces/{ns}/configmaps"
        first = (await api.post(path, cm("c0"))).body
        old_rv = int(first["metadata"]["resourceVersion"])
        for i in range(5):
            await api.post(path, cm(f"c{i + 1}"))
        page = (await api.get(path, params={"limit": "2"})).body
        # Compacting at R keeps R readable: write once more so the page's revision is compacted.
        await api.post(path, cm("after-page"))
        # Push the watch cache's window past old_rv is not needed: compaction alone makes the
        # revision unservable from etcd; a watch older than the cache window goes to etcd.
        store = await EtcdStore.connect([etcd_server.client_url])
        try:
            await store.compact(await store.current_revision())
        finally:
            await store.close()
        cont = await api.get(path, params={"limit": "2", "continue": page["metadata"]["continue"]})
        assert cont.status == 410 and cont.reason == "Expired"
        exact = await api.get(path, params={"resourceVersion": str(old_rv), "resourceVersionMatch": "Exact"})
        assert exact.status == 410
        # A watch from before the cache window falls back to etcd, which has compacted it.
        headers = {"Authorization": f"Bearer {api.token}"}
        async with session.get(api.cp.url + path, params={"watch": "1", "resourceVersion": "1"},
                               headers=headers) as r:
            ev = json.loads(await asyncio.wait_for(r.content.readline(), 10))
            assert ev["type"] == "ERROR" and ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"
