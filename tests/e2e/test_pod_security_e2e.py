"""Pod isolation and service-account credentials on a real node (root): a pod sees none of the
host's PID, mount or network namespaces, runs without CAP_SYS_ADMIN, and finds its projected
service-account token (which the API server accepts as that account), CA and namespace at
/var/run/secrets/kubernetes.io/serviceaccount. The node agent and its fixtures are the ones of
tests/e2e/test_node_agent.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from apimachinery.api.core_v1 import Pod
from apimachinery.client import ApiClient
from tests.e2e.test_node_agent import (  # noqa: F401  (fixtures are used by name)
    OUT_MOUNT,
    WAIT,
    Agent,
    agent,
    busybox,
    client,
    host_dir,
    ns,
    out_volume,
    pod_manifest,
    wait_ready,
)
from tests.fixtures.apiserver import ControlPlaneProcess, raw_api
from tests.fixtures.wait import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the native runtime uses namespaces, mounts and cgroups"),
]

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
CAP_SYS_ADMIN = 21


async def test_pod_is_isolated_and_reads_its_service_account_token(
    client: ApiClient, agent: Agent, ns: str, host_dir: Path, apiserver: ControlPlaneProcess,  # noqa: F811
) -> None:
    script = (
        "for n in pid mnt net; do readlink /proc/self/ns/$n > /out/ns-$n; done; "
        "grep '^CapEff:' /proc/self/status | cut -f2 > /out/capeff; "
        f"cat {SA_DIR}/token > /out/token; cat {SA_DIR}/namespace > /out/namespace; "
        f"cat {SA_DIR}/ca.crt > /out/ca.crt; "
        f"if touch {SA_DIR}/x 2>/dev/null; then echo rw > /out/sa-mode; else echo ro > /out/sa-mode; fi; "
        "echo done > /out/done; while true; do sleep 1; done"
    )
    manifest = pod_manifest("isolated", agent.node, [busybox("main", script, volumeMounts=[OUT_MOUNT])],
                            volumes=[out_volume(host_dir)], terminationGracePeriodSeconds=1)
    created = await client.create(client.resource(Pod), manifest, ns)
    assert any(v["name"].startswith("kube-api-access-") for v in created["spec"]["volumes"])
    await wait_ready(client, ns, "isolated", agent)

    async def done() -> bool:
        return (host_dir / "done").exists()

    await eventually(done, "the pod reported what it sees", WAIT)
    for kind in ("pid", "mnt", "net"):
        inside = (host_dir / f"ns-{kind}").read_text().strip()
        assert inside.startswith(f"{kind}:[")
        assert inside != os.readlink(f"/proc/self/ns/{kind}"), f"the pod shares the host's {kind} namespace"
    cap_eff = int((host_dir / "capeff").read_text().strip(), 16)
    assert not cap_eff & (1 << CAP_SYS_ADMIN), f"CapEff {cap_eff:#x} includes CAP_SYS_ADMIN"

    assert (host_dir / "namespace").read_text() == ns
    assert (host_dir / "ca.crt").read_text() == apiserver.ca_file.read_text()
    assert (host_dir / "sa-mode").read_text().strip() == "ro"
    token = (host_dir / "token").read_text().strip()
    async with raw_api(apiserver) as admin:
        api = type(admin)(admin.cp, admin.session, token)
        me = await api.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        assert me.status == 201, me.body
        assert me.body["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:default"
        # The token is bound to the pod: deleting the pod revokes it.
        await client.delete(client.resource(Pod), "isolated", ns)

        async def revoked() -> bool:
            r = await api.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                               {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
            return r.status == 401

        await eventually(revoked, "the pod's token refused once the pod is gone", WAIT)
