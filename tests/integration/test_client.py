"""The client library against a real control plane: CRUD, errors as Status, optimistic
concurrency, watch resume, informers and retry_on_conflict."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api import ConfigMap
from apimachinery.client import (
    INITIAL_EVENTS_END,
    ApiClient,
    ApiConnectionError,
    ClientConfig,
    Informer,
    load_kubeconfig,
    retry_on_conflict,
    strip_managed_fields,
    watch,
    watch_forever,
)
from apimachinery.errors import ApiError
from apimachinery.meta import ObjectMeta
from apimachinery.scheme import default_scheme
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def apiserver(bare_apiserver: Any) -> Any:
    """These tests are about the client and the API server: no controller touches their objects."""
    return bare_apiserver

CM = default_scheme().for_model(ConfigMap)


@pytest_asyncio.fixture(loop_scope="session")
async def client(apiserver: Any) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as c:
        yield c


def _cm(name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data or {}}


async def test_crud_round_trip(client: ApiClient, namespace: str) -> None:
    created = await client.create(CM, _cm("one", {"k": "v"}, {"app": "x"}), namespace)
    assert created["metadata"]["uid"]
    assert created["metadata"]["namespace"] == namespace
    got = await client.get(CM, "one", namespace)
    assert got["data"] == {"k": "v"}
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    await client.create(CM, _cm("two", labels={"app": "y"}), namespace)
    listed = await client.list(CM, namespace, label_selector="app=x")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["one"]
    assert listed["metadata"]["resourceVersion"]

    got["data"]["k"] = "v2"
    replaced = await client.replace(CM, got, namespace)
    assert replaced["data"] == {"k": "v2"}
    assert int(replaced["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])

    patched = await client.patch(CM, "one", {"data": {"extra": "1"}}, namespace=namespace)
    assert patched["data"] == {"k": "v2", "extra": "1"}
    patched = await client.patch(
        CM, "one", [{"op": "remove", "path": "/data/extra"}], patch_type="json", namespace=namespace
    )
    assert patched["data"] == {"k": "v2"}

    await client.delete(CM, "one", namespace)
    with pytest.raises(ApiError) as info:
        await client.get(CM, "one", namespace)
    assert info.value.code == 404
    assert info.value.reason == "NotFound"
    assert info.value.message == 'configmaps "one" not found'


async def test_list_pages_follow_continue(client: ApiClient, namespace: str) -> None:
    for i in range(5):
        await client.create(CM, _cm(f"p{i}"), namespace)
    page = await client.list(CM, namespace, limit=2)
    assert len(page["items"]) == 2
    assert page["metadata"].get("continue")
    items, rv = await client.list_all(CM, namespace, page_size=2)
    assert sorted(i["metadata"]["name"] for i in items) == [f"p{i}" for i in range(5)]
    assert all(i["kind"] == "ConfigMap" for i in items)
    assert rv


async def test_stale_update_is_a_409_conflict_and_create_twice_already_exists(client: ApiClient, namespace: str) -> None:
    first = await client.create(CM, _cm("c"), namespace)
    fresh = dict(first, data={"a": "1"})
    await client.replace(CM, fresh, namespace)
    stale = dict(first, data={"a": "2"})
    with pytest.raises(ApiError) as info:
        await client.replace(CM, stale, namespace)
    assert (info.value.code, info.value.reason) == (409, "Conflict")
    assert "the object has been modified" in info.value.message
    with pytest.raises(ApiError) as info:
        await client.create(CM, _cm("c"), namespace)
    assert (info.value.code, info.value.reason) == (409, "AlreadyExists")


async def test_dry_run_create_stores_nothing(client: ApiClient, namespace: str) -> None:
    out = await client.create(CM, _cm("dry"), namespace, dry_run=True)
    assert out["metadata"]["name"] == "dry"
    with pytest.raises(ApiError) as info:
        await client.get(CM, "dry", namespace)
    assert info.value.code == 404


async def test_typed_layer(client: ApiClient, namespace: str) -> None:
    cms = client.typed(ConfigMap)
    made = await cms.create(ConfigMap(metadata=ObjectMeta(name="typed", namespace=namespace), data={"x": "1"}))
    assert isinstance(made, ConfigMap)
    assert made.metadata.uid
    copy = made.copy_deep()
    copy.data = {"x": "2"}
    updated = await client.update_object(copy)
    assert updated.data == {"x": "2"}
    assert made.data == {"x": "1"}
    listed = await cms.list(namespace)
    assert [c.metadata.name for c in listed.items] == ["typed"]
    assert listed.resource_version
    with pytest.raises(ApiError) as info:
        await client.update_object(made)  # stale resourceVersion
    assert info.value.code == 409
    await cms.delete("typed", namespace)
    with pytest.raises(ApiError):
        await cms.get("typed", namespace)


async def test_table_has_kubernetes_columns(client: ApiClient, namespace: str) -> None:
    await client.create(CM, _cm("t", {"a": "1", "b": "2"}), namespace)
    table = await client.table(CM, namespace)
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[0] == "Name"
    assert [r["cells"][0] for r in table["rows"]] == ["t"]


async def test_watch_resumes_from_a_resource_version(client: ApiClient, namespace: str) -> None:
    a = await client.create(CM, _cm("a"), namespace)
    start_rv = a["metadata"]["resourceVersion"]
    await client.create(CM, _cm("b"), namespace)
    await client.patch(CM, "a", {"data": {"x": "1"}}, namespace=namespace)
    await client.delete(CM, "b", namespace)

    seen: list[tuple[str, str]] = []

    async def collect() -> None:
        async for ev in watch(client, CM, namespace, resource_version=start_rv, timeout_seconds=30):
            if ev.type == "BOOKMARK":
                continue
            seen.append((ev.type, ev.object["metadata"]["name"]))
            if len(seen) == 3:
                return

    await asyncio.wait_for(collect(), 30)
    assert seen == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]


async def test_watch_forever_lists_marks_sync_then_streams(client: ApiClient, namespace: str) -> None:
    await client.create(CM, _cm("pre"), namespace)
    events: list[tuple[str, str]] = []
    synced = asyncio.Event()
    got_new = asyncio.Event()

    async def consume() -> None:
        async for ev in watch_forever(client, CM, namespace):
            md = ev.object.get("metadata") or {}
            if ev.type == "BOOKMARK":
                assert (md.get("annotations") or {}).get(INITIAL_EVENTS_END) == "true"
                synced.set()
                continue
            events.append((ev.type, md.get("name", "")))
            if md.get("name") == "post":
                got_new.set()

    task = asyncio.create_task(consume())
    try:
        await asyncio.wait_for(synced.wait(), 30)
        assert events == [("ADDED", "pre")]
        await client.create(CM, _cm("post"), namespace)
        await asyncio.wait_for(got_new.wait(), 30)
        assert events == [("ADDED", "pre"), ("ADDED", "post")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_informer_syncs_indexes_and_reports_events(client: ApiClient, namespace: str) -> None:
    await client.create(CM, _cm("before", labels={"tier": "web"}), namespace)
    inf: Informer[ConfigMap] = Informer(client, ConfigMap, namespace=namespace)
    inf.add_index("tier", lambda cm: [cm.metadata.labels["tier"]] if cm.metadata.labels and "tier" in cm.metadata.labels else [])
    keys: asyncio.Queue[str] = asyncio.Queue()
    inf.on_event(keys.put_nowait)
    log: list[str] = []
    inf.add_handler(
        on_add=lambda o: log.append(f"add {o.metadata.name}"),
        on_update=lambda old, new: log.append(f"update {new.metadata.name} {old.data}->{new.data}"),
        on_delete=lambda o: log.append(f"delete {o.metadata.name}"),
    )
    inf.start()
    try:
        await asyncio.wait_for(inf.wait_synced(), 30)
        assert inf.has_synced
        assert await keys.get() == f"{namespace}/before"
        cached = inf.get(f"{namespace}/before")
        assert cached is not None and cached.metadata.name == "before"
        assert [c.metadata.name for c in inf.by_index("tier", "web")] == ["before"]

        await client.create(CM, _cm("after", labels={"tier": "db"}), namespace)
        assert await asyncio.wait_for(keys.get(), 30) == f"{namespace}/after"
        assert [c.metadata.name for c in inf.by_index("tier", "db")] == ["after"]

        await client.patch(CM, "after", {"metadata": {"labels": {"tier": "web"}}, "data": {"v": "1"}}, namespace=namespace)
        assert await asyncio.wait_for(keys.get(), 30) == f"{namespace}/after"
        assert inf.by_index("tier", "db") == []
        assert sorted(c.metadata.name or "" for c in inf.by_index("tier", "web")) == ["after", "before"]

        await client.delete(CM, "before", namespace)
        assert await asyncio.wait_for(keys.get(), 30) == f"{namespace}/before"
        assert inf.get(f"{namespace}/before") is None
        assert [c.metadata.name for c in inf.list()] == ["after"]
        assert log == ["add before", "add after", "update after {}->{'v': '1'}", "delete before"]
    finally:
        await inf.stop()


async def test_retry_on_conflict_rereads_and_succeeds(client: ApiClient, namespace: str) -> None:
    await client.create(CM, _cm("counter", {"n": "0"}), namespace)
    attempts = 0

    async def increment() -> dict[str, Any]:
        nonlocal attempts
        attempts += 1
        current = await client.get(CM, "counter", namespace)
        if attempts == 1:
            # Someone else writes between our read and our write: our PUT must conflict.
            await client.patch(CM, "counter", {"data": {"other": "x"}}, namespace=namespace)
        current["data"]["n"] = str(int(current["data"]["n"]) + 1)
        return await client.replace(CM, current, namespace)

    result = await retry_on_conflict(increment)
    assert attempts == 2
    assert result["data"] == {"n": "1", "other": "x"}

    async def always_conflicts() -> None:
        raise ApiError.make(409, "Conflict", "nope")

    with pytest.raises(ApiError):
        await retry_on_conflict(always_conflicts, attempts=3)


async def test_unauthenticated_and_unreachable(apiserver: Any) -> None:
    good = load_kubeconfig(apiserver.kubeconfig)
    bad = ClientConfig(server=good.server, ca_data=good.ca_data, token="wrong-" + uuid.uuid4().hex)
    async with ApiClient(bad) as c:
        with pytest.raises(ApiError) as info:
            await c.list(CM, "default")
        assert info.value.code == 401

    from tests.fixtures.apiserver import free_port

    nowhere = ClientConfig(server=f"https://127.0.0.1:{free_port()}", ca_data=good.ca_data, token="x")
    async with ApiClient(nowhere) as c:
        with pytest.raises(ApiConnectionError) as conn:
            await c.list(CM, "default")
        assert conn.value.refused
        assert conn.value.host_port.startswith("127.0.0.1:")


async def test_informer_transform_strips_managed_fields_before_caching(client: ApiClient, namespace: str) -> None:
    await client.create(CM, _cm("t"), namespace)
    stored = await client.get(CM, "t", namespace)
    assert stored["metadata"].get("managedFields"), "the server records managedFields"
    inf: Informer[ConfigMap] = Informer(client, ConfigMap, namespace=namespace, transform=strip_managed_fields)
    plain: Informer[ConfigMap] = Informer(client, ConfigMap, namespace=namespace)
    inf.start()
    plain.start()
    try:
        await asyncio.wait_for(asyncio.gather(inf.wait_synced(), plain.wait_synced()), 30)
        await client.patch(CM, "t", {"data": {"v": "2"}}, namespace=namespace)

        async def patched() -> ConfigMap | None:
            cached = inf.get(f"{namespace}/t")
            return cached if cached is not None and (cached.data or {}).get("v") == "2" else None

        cached = await eventually(patched, "the informer sees the patch")
        assert cached.metadata.managed_fields is None
        other = plain.get(f"{namespace}/t")
        assert other is not None and other.metadata.managed_fields
    finally:
        await inf.stop()
        await plain.stop()


async def test_informer_resync_redelivers_every_object(client: ApiClient, namespace: str) -> None:
    await client.create(CM, _cm("r"), namespace)
    inf: Informer[ConfigMap] = Informer(client, ConfigMap, namespace=namespace, resync_period=0.05)
    resynced: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
    inf.add_handler(on_update=lambda old, new: resynced.put_nowait((new.metadata.name or "", old is new)))
    inf.start()
    try:
        await asyncio.wait_for(inf.wait_synced(), 30)
        # No write happened: an update callback can only come from the resync, with old is new.
        assert await asyncio.wait_for(resynced.get(), 30) == ("r", True)
    finally:
        await inf.stop()


async def test_restarted_informer_drops_objects_deleted_while_stopped(client: ApiClient, namespace: str) -> None:
    await client.create(CM, _cm("stays"), namespace)
    await client.create(CM, _cm("goes"), namespace)
    inf: Informer[ConfigMap] = Informer(client, ConfigMap, namespace=namespace)
    deleted: asyncio.Queue[str] = asyncio.Queue()
    inf.add_handler(on_delete=lambda o: deleted.put_nowait(o.metadata.name or ""))
    inf.start()
    try:
        await asyncio.wait_for(inf.wait_synced(), 30)
        assert inf.get(f"{namespace}/goes") is not None
        await inf.stop()
        await client.delete(CM, "goes", namespace)
        inf.start()
        assert await asyncio.wait_for(deleted.get(), 30) == "goes"
        assert inf.get(f"{namespace}/goes") is None and inf.get(f"{namespace}/stays") is not None
    finally:
        await inf.stop()


def test_relist_events_bring_a_consumer_up_to_date() -> None:
    """After a 410 the relist must yield exactly the changes the consumer missed, deletions included."""
    from apimachinery.client.watch import relist_events

    def obj(name: str, rv: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}

    known = {"ns/same": obj("same", "1"), "ns/changed": obj("changed", "2"), "ns/gone": obj("gone", "3")}
    events = relist_events(known, [obj("same", "1"), obj("changed", "7"), obj("new", "8")])
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "changed"), ("ADDED", "new"), ("DELETED", "gone"),
    ]
    assert sorted(known) == ["ns/changed", "ns/new", "ns/same"]
    assert relist_events(known, [obj("same", "1"), obj("changed", "7"), obj("new", "8")]) == []


def test_error_bodies_that_are_not_status() -> None:
    from apimachinery.client.rest import error_from_response

    err = error_from_response(502, "<html>bad gateway</html>")
    assert (err.code, err.reason) == (502, "Unknown")
    assert err.message == 'an error on the server ("<html>bad gateway</html>") has prevented the request from succeeding'
    err = error_from_response(404, "")
    assert (err.code, err.reason, err.message) == (404, "NotFound", "the server could not find the requested resource")
    status = '{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Conflict","message":"m","code":409}'
    err = error_from_response(409, status)
    assert (err.code, err.reason, err.message) == (409, "Conflict", "m")


# Every namespace holds this ConfigMap (the control plane publishes its CA in each, as
# Kubernetes does); the tests below watch their own ConfigMaps next to it.
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"


def _ours(keys: list[str]) -> list[str]:
    return sorted(k for k in keys if not k.endswith("/" + ROOT_CA_CONFIGMAP))


async def test_informer_survives_an_api_server_restart(tmp_path: Path) -> None:
    """Killed and restarted under a running informer: it reconnects and converges, including a
    deletion that happened while it was disconnected."""
    from tests.fixtures.apiserver import ControlPlaneProcess

    cp = ControlPlaneProcess(tmp_path / "cp")
    try:
        cp.start()
        changed: asyncio.Queue[str] = asyncio.Queue()
        async with ApiClient(load_kubeconfig(cp.kubeconfig)) as c:
            await c.create(CM, _cm("a"), "default")
            inf: Informer[ConfigMap] = Informer(c, ConfigMap, namespace="default")
            inf.on_event(changed.put_nowait)
            inf.start()
            try:
                await asyncio.wait_for(inf.wait_synced(), 30)
                assert _ours(inf.keys()) == ["default/a"]
                cp.kill9()
                cp.start()
                # The client's pooled connections died with the server; a GET still succeeds.
                assert (await c.get(CM, "a", "default"))["metadata"]["name"] == "a"
                async with ApiClient(load_kubeconfig(cp.kubeconfig)) as fresh:
                    await fresh.create(CM, _cm("b"), "default")
                    await fresh.delete(CM, "a", "default")
                while _ours(inf.keys()) != ["default/b"]:
                    await asyncio.wait_for(changed.get(), 120)
            finally:
                await inf.stop()
    finally:
        cp.stop()


async def test_subresources_status_scale_binding(client: ApiClient, namespace: str) -> None:
    scheme = default_scheme()
    deploy = scheme.resolve("deployments")
    pods = scheme.resolve("pods")
    assert deploy is not None and pods is not None
    d = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        },
    }
    created = await client.create(deploy, d, namespace)
    created["status"] = {"replicas": 7, "observedGeneration": 1}
    created["spec"]["replicas"] = 5  # ignored by the status subresource
    after = await client.replace_status(deploy, created, namespace)
    assert after["status"]["replicas"] == 7
    assert after["spec"]["replicas"] == 1

    scale = await client.get(deploy, "d", namespace, subresource="scale")
    assert (scale["kind"], scale["spec"]["replicas"]) == ("Scale", 1)
    await client.patch(deploy, "d", {"spec": {"replicas": 3}}, namespace=namespace, subresource="scale")
    assert (await client.get(deploy, "d", namespace))["spec"]["replicas"] == 3

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await client.create(pods, pod, namespace)
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}}
    await client.create(pods, binding, namespace, subresource="binding")
    assert (await client.get(pods, "p", namespace))["spec"]["nodeName"] == "node-1"


async def test_field_validation_and_server_warnings(apiserver: Any, namespace: str) -> None:
    from apimachinery.client.rest import parse_warning

    assert parse_warning('299 - "unknown field \\"spec.x\\""') == 'unknown field "spec.x"'
    assert parse_warning("garbage") is None

    warnings: list[str] = []
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig), on_warning=warnings.append) as c:
        body = {**_cm("uf"), "bogus": 1}
        with pytest.raises(ApiError) as info:
            await c.create(CM, body, namespace, field_validation="Strict")
        assert info.value.code == 400 and info.value.message.endswith('strict decoding error: unknown field "bogus"')
        created = await c.create(CM, body, namespace, field_validation="Warn")
        assert "bogus" not in created
        assert warnings == ['unknown field "bogus"']


async def test_watch_forever_relists_after_410_expired(tmp_path: Path) -> None:
    """A resourceVersion etcd has compacted away gets 410 Expired; watch_forever then relists."""
    from tests.fixtures.apiserver import ControlPlaneProcess

    cp = ControlPlaneProcess(tmp_path / "cp", extra_args=["--compaction-interval", "0.2"])
    try:
        cp.start()
        async with ApiClient(load_kubeconfig(cp.kubeconfig)) as c:
            old_rv = (await c.create(CM, _cm("a"), "default"))["metadata"]["resourceVersion"]
            await c.create(CM, _cm("b"), "default")
            await c.delete(CM, "a", "default")
        # A restart empties the watch cache, so old_rv can only be served from etcd's history.
        cp.stop()
        cp.start()
        async with ApiClient(load_kubeconfig(cp.kubeconfig)) as c:
            expired = False
            for i in range(600):  # until the compactor has passed old_rv (it runs every 0.2 s)
                await c.patch(CM, "b", {"data": {"i": str(i)}}, namespace="default")
                async for ev in watch(c, CM, "default", resource_version=old_rv, timeout_seconds=1):
                    expired = ev.type == "ERROR" and ev.object.get("code") == 410
                    break
                if expired:
                    break
                await asyncio.sleep(0.05)
            assert expired, "the server never reported 410 Expired for a compacted resourceVersion"

            events: list[tuple[str, str]] = []
            async for ev in watch_forever(c, CM, "default", resource_version=old_rv):
                md = ev.object.get("metadata") or {}
                if ev.type == "BOOKMARK":
                    assert (md.get("annotations") or {}).get(INITIAL_EVENTS_END) == "true"
                    break
                if md.get("name") != ROOT_CA_CONFIGMAP:
                    events.append((ev.type, md.get("name", "")))
            # The relist shows the present (b), not the history the consumer can no longer get.
            assert events == [("ADDED", "b")]
    finally:
        cp.stop()
