"""The garbage collector in a control plane that runs only it (so no ReplicaSet or Deployment
controller touches the Deployment -> ReplicaSet -> Pod chains these tests build by hand)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api.apps_v1 import Deployment, ReplicaSet
from apimachinery.api.core_v1 import ConfigMap, Namespace, Pod, Secret
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.errors import ApiError
from apimachinery.scheme import ResourceType, default_scheme
from tests.fixtures.apiserver import ControlPlaneProcess, running_control_plane
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.integration

S = default_scheme()
DEPLOY, RS, POD = S.for_model(Deployment), S.for_model(ReplicaSet), S.for_model(Pod)
CM, SECRET, NS = S.for_model(ConfigMap), S.for_model(Secret), S.for_model(Namespace)
HOLD = "example.com/hold"

@pytest.fixture(scope="module")
def cp() -> Iterator[ControlPlaneProcess]:
    # Only the garbage collector: no other controller touches the chains built by hand.
    with running_control_plane("--controllers", "garbagecollector", "--leader-elect", "false",
                               prefix="kl-gc-") as proc:
        yield proc


@pytest_asyncio.fixture(loop_scope="session")
async def client(cp: ControlPlaneProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(cp.kubeconfig)) as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def ns(client: ApiClient) -> AsyncIterator[str]:
    name = f"gc-{uuid.uuid4().hex[:8]}"
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name


def ref(owner: dict[str, Any], *, block: bool = False) -> dict[str, Any]:
    r = {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
         "uid": owner["metadata"]["uid"], "controller": True}
    if block:
        r["blockOwnerDeletion"] = True
    return r


TEMPLATE = {"metadata": {"labels": {"app": "gc"}}, "spec": {"containers": [{"name": "app", "image": "busybox"}]}}


async def build_chain(client: ApiClient, ns: str, *, block: bool = False) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """Deployment -> ReplicaSet -> 2 Pods, linked by controller ownerReferences."""
    sfx = uuid.uuid4().hex[:5]
    spec = {"replicas": 2, "selector": {"matchLabels": {"app": "gc"}}, "template": TEMPLATE}
    d = await client.create(DEPLOY, {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "metadata": {"name": f"d-{sfx}"}, "spec": spec}, ns)
    rs = await client.create(RS, {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                  "metadata": {"name": f"rs-{sfx}", "ownerReferences": [ref(d, block=block)]},
                                  "spec": spec}, ns)
    pods = [
        await client.create(POD, {"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": f"p{i}-{sfx}", "labels": {"app": "gc"},
                                               "ownerReferences": [ref(rs, block=block)]},
                                  "spec": TEMPLATE["spec"]}, ns)
        for i in range(2)
    ]
    return d, rs, pods


async def exists(client: ApiClient, rt: ResourceType, name: str, ns: str | None) -> dict[str, Any] | None:
    try:
        return await client.get(rt, name, ns)
    except ApiError as e:
        if e.code == 404:
            return None
        raise


async def absent(client: ApiClient, rt: ResourceType, name: str, ns: str | None) -> bool:
    return await exists(client, rt, name, ns) is None


async def test_background_deletion_cascades(client: ApiClient, ns: str) -> None:
    d, rs, pods = await build_chain(client, ns)
    await client.delete(DEPLOY, d["metadata"]["name"], ns, propagation_policy="Background")
    await eventually(lambda: absent(client, RS, rs["metadata"]["name"], ns))
    for p in pods:
        await eventually(lambda p=p: absent(client, POD, p["metadata"]["name"], ns))


async def test_foreground_deletion_waits_for_blocking_dependents(client: ApiClient, ns: str) -> None:
    d, rs, pods = await build_chain(client, ns, block=True)
    held, free = pods
    # A finalizer of someone else keeps one pod around (terminating) until we release it.
    await client.patch(POD, held["metadata"]["name"], {"metadata": {"finalizers": [HOLD]}}, namespace=ns)
    await client.delete(DEPLOY, d["metadata"]["name"], ns, propagation_policy="Foreground")

    async def held_terminating() -> bool:
        pod = await exists(client, POD, held["metadata"]["name"], ns)
        return bool(pod and pod["metadata"].get("deletionTimestamp"))

    await eventually(held_terminating)
    await eventually(lambda: absent(client, POD, free["metadata"]["name"], ns))
    # The ReplicaSet has dependents and was waited upon: deleted in the foreground itself, and
    # both it and the Deployment wait for the held pod.
    got_rs = await client.get(RS, rs["metadata"]["name"], ns)
    got_d = await client.get(DEPLOY, d["metadata"]["name"], ns)
    for obj in (got_rs, got_d):
        assert obj["metadata"]["deletionTimestamp"]
        assert obj["metadata"]["finalizers"] == ["foregroundDeletion"]
    held_now = await client.get(POD, held["metadata"]["name"], ns)
    assert held_now["metadata"]["finalizers"] == [HOLD]  # never touches finalizers it does not own

    await client.patch(POD, held["metadata"]["name"], {"metadata": {"finalizers": None}}, namespace=ns)
    await eventually(lambda: absent(client, POD, held["metadata"]["name"], ns))
    await eventually(lambda: absent(client, RS, rs["metadata"]["name"], ns))
    await eventually(lambda: absent(client, DEPLOY, d["metadata"]["name"], ns))


async def test_orphan_deletion_keeps_dependents_and_other_finalizers(client: ApiClient, ns: str) -> None:
    d, rs, pods = await build_chain(client, ns)
    rs_name = rs["metadata"]["name"]
    await client.patch(RS, rs_name, {"metadata": {"finalizers": [HOLD]}}, namespace=ns)
    await client.delete(RS, rs_name, ns, propagation_policy="Orphan")

    async def orphaned() -> bool:
        for p in pods:
            got = await client.get(POD, p["metadata"]["name"], ns)
            if got["metadata"].get("ownerReferences"):
                return False
        got_rs = await client.get(RS, rs_name, ns)
        return got_rs["metadata"].get("finalizers") == [HOLD]

    await eventually(orphaned)
    for p in pods:
        got = await client.get(POD, p["metadata"]["name"], ns)
        assert "deletionTimestamp" not in got["metadata"]
    # Our finalizer gone, the other one kept: the ReplicaSet waits for its owner of HOLD.
    await client.patch(RS, rs_name, {"metadata": {"finalizers": None}}, namespace=ns)
    await eventually(lambda: absent(client, RS, rs_name, ns))
    # The Deployment is untouched, and the orphaned pods stay.
    assert await exists(client, DEPLOY, d["metadata"]["name"], ns)
    for p in pods:
        assert await exists(client, POD, p["metadata"]["name"], ns)


async def test_dependent_with_remaining_owner_only_loses_the_dangling_reference(client: ApiClient, ns: str) -> None:
    sfx = uuid.uuid4().hex[:5]
    a = await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"a-{sfx}"}}, ns)
    b = await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"b-{sfx}"}}, ns)
    refs = [{**ref(a), "controller": False}, {**ref(b), "controller": False}]
    s = await client.create(SECRET, {"apiVersion": "v1", "kind": "Secret",
                                     "metadata": {"name": f"s-{sfx}", "ownerReferences": refs}}, ns)
    await client.delete(CM, a["metadata"]["name"], ns)

    async def one_owner_left() -> bool:
        got = await client.get(SECRET, s["metadata"]["name"], ns)
        return [r["uid"] for r in got["metadata"].get("ownerReferences") or []] == [b["metadata"]["uid"]]

    await eventually(one_owner_left)
    await client.delete(CM, b["metadata"]["name"], ns)
    await eventually(lambda: absent(client, SECRET, s["metadata"]["name"], ns))


async def test_owner_that_never_existed_or_was_replaced_is_dangling(client: ApiClient, ns: str) -> None:
    sfx = uuid.uuid4().hex[:5]
    owner = await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"o-{sfx}"}}, ns)
    ghost = {**ref(owner), "uid": str(uuid.uuid4())}  # right name, wrong uid: another object
    live = await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": f"live-{sfx}", "ownerReferences": [ref(owner)]}}, ns)
    dead = await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": f"dead-{sfx}", "ownerReferences": [ghost]}}, ns)
    await eventually(lambda: absent(client, CM, dead["metadata"]["name"], ns))
    # The dependent of the real owner is left alone.
    got = await client.get(CM, live["metadata"]["name"], ns)
    assert got["metadata"]["ownerReferences"] == [ref(owner)]
    assert "deletionTimestamp" not in got["metadata"]
