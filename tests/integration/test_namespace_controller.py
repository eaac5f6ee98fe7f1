"""The Namespace controller: deleting a Namespace empties it, then removes it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api.apps_v1 import ReplicaSet
from apimachinery.api.coordination_v1 import Lease
from apimachinery.api.core_v1 import ConfigMap, Endpoints, Namespace, Pod, Secret, Service
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.errors import ApiError
from apimachinery.scheme import default_scheme
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.integration

S = default_scheme()
NS, CM, SECRET, POD = S.for_model(Namespace), S.for_model(ConfigMap), S.for_model(Secret), S.for_model(Pod)
SVC, EP, LEASE, RS = S.for_model(Service), S.for_model(Endpoints), S.for_model(Lease), S.for_model(ReplicaSet)
HOLD = "example.com/hold"

@pytest_asyncio.fixture(loop_scope="session")
async def client(apiserver: Any) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(apiserver.kubeconfig)) as c:
        yield c


async def test_deleting_a_namespace_deletes_its_content_then_itself(client: ApiClient) -> None:
    ns = f"nsc-{uuid.uuid4().hex[:8]}"
    await client.create(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"}}, ns)
    # Content with someone else's finalizer: the namespace must wait for it.
    await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "held", "finalizers": [HOLD]}}, ns)
    await client.create(SECRET, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                                 "stringData": {"k": "v"}}, ns)
    await client.create(SVC, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                              "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}, ns)
    await client.create(POD, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "web"}},
                              "spec": {"terminationGracePeriodSeconds": 0,
                                       "containers": [{"name": "app", "image": "busybox"}]}}, ns)
    await client.create(LEASE, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
                                "spec": {"holderIdentity": "x"}}, ns)
    # The Endpoints controller has made the Service's Endpoints: content the test did not write.
    await eventually(lambda: client.get(EP, "web", ns))

    await client.delete(NS, ns)
    got = await client.get(NS, ns)
    assert got["status"]["phase"] == "Terminating"
    assert got["spec"]["finalizers"] == ["kubernetes"]

    async def waiting_for_held() -> dict[str, Any] | None:
        n = await client.get(NS, ns)
        conds = {c["type"]: c for c in n["status"].get("conditions") or []}
        remaining = conds.get("NamespaceFinalizersRemaining")
        return n if remaining and remaining["status"] == "True" else None

    n = await eventually(waiting_for_held)
    conds = {c["type"]: c for c in n["status"]["conditions"]}
    assert conds["NamespaceFinalizersRemaining"]["message"] == (
        f"Some content in the namespace has finalizers remaining: {HOLD} in 1 resource instances"
    )
    assert conds["NamespaceContentRemaining"]["status"] == "True"
    assert conds["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps has 1 resource instances"
    )
    assert conds["NamespaceDeletionContentFailure"]["status"] == "False"

    # Everything else is gone already; only the held ConfigMap (terminating) is left.
    for rt in (SECRET, SVC, POD, LEASE, EP):
        listed = await client.list(rt, ns)
        assert listed["items"] == [], rt.plural
    [held] = (await client.list(CM, ns))["items"]
    assert held["metadata"]["name"] == "held" and held["metadata"]["deletionTimestamp"]

    # Creating new content is refused while it terminates.
    with pytest.raises(ApiError) as refused:
        await client.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}, ns)
    assert refused.value.code == 403

    await client.patch(CM, "held", {"metadata": {"finalizers": None}}, namespace=ns)

    async def namespace_gone() -> bool:
        try:
            await client.get(NS, ns)
        except ApiError as e:
            return e.code == 404
        return False

    await eventually(namespace_gone)
