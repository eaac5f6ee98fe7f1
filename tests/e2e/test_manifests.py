"""Every example in manifests/ applied to a 2-node lab with kubectl-lite, and the feature it shows
checked to have taken effect (not just accepted), then deleted.

One lab serves the module. resource-limits.yaml, crashloop.yaml and demo.yaml are exercised by
tests/e2e/test_labctl.py; web.yaml and config-and-pod.yaml (images from a registry) by
tests/integration/test_kubectl_real.py; :func:`test_every_manifest_is_applied_by_a_test` keeps
that list honest.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from apimachinery.api.apps_v1 import Deployment
from apimachinery.api.core_v1 import Endpoints, Node, Pod, Service
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.client.watch import watch
from tests.fixtures.lab import LabCli, running_lab, scheduling_failure
from tests.fixtures.wait import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: labs create namespaces, links, mounts and cgroups"),
]

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
WAIT = 90.0  # only bounds how long a failing step takes to fail


@pytest.fixture(scope="module")
def lab() -> Iterator[LabCli]:
    with running_lab(2, prefix="m") as lab:
        yield lab


@pytest.fixture
async def api(lab: LabCli) -> AsyncIterator[ApiClient]:
    async with ApiClient(load_kubeconfig(lab.kubeconfig)) as c:
        yield c


async def get_pod(c: ApiClient, name: str) -> dict[str, Any]:
    return await c.get(c.resource(Pod), name, "default")


async def wait_phase(c: ApiClient, name: str, phase: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        pod = await get_pod(c, name)
        return pod if pod["status"].get("phase") == phase else None

    return await eventually(check, f"pod {name} {phase}", WAIT, interval=0.3)


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(x["type"] == "Ready" and x["status"] == "True" for x in pod["status"].get("conditions") or [])


async def pods(c: ApiClient, selector: str) -> list[dict[str, Any]]:
    items = (await c.list(c.resource(Pod), "default", label_selector=selector))["items"]
    return [p for p in items if p["metadata"].get("deletionTimestamp") is None]


def manifest(name: str) -> str:
    return f"manifests/{name}"


@contextmanager
def applied(lab: LabCli, name: str) -> Iterator[None]:
    """The manifest applied for the duration of the block, deleted after it (also on failure)."""
    lab.kubectl("apply", "-f", manifest(name))
    try:
        yield
    finally:
        lab.kubectl("delete", "-f", manifest(name), check=False)


# ------------------------------------------------------------------ pods


async def test_probes(lab: LabCli, api: ApiClient) -> None:
    with applied(lab, "probes.yaml"):
        # The liveness probe fails once /tmp/alive is gone: the container is restarted (once),
        # and the restarted one passes its startup and readiness probes again.
        async def restarted_and_ready() -> dict[str, Any] | None:
            pod = await get_pod(api, "probed")
            cs = (pod["status"].get("containerStatuses") or [{}])[0]
            ok = cs.get("restartCount") == 1 and cs.get("ready") and cs.get("started") and pod_ready(pod)
            return cs if ok else None

        cs = await eventually(restarted_and_ready, "probed restarted by liveness and Ready again", WAIT, interval=0.3)
        assert cs["lastState"]["terminated"]["exitCode"] != 0, cs  # killed, not exited by itself


async def test_config_and_secret_volumes_and_env(lab: LabCli, api: ApiClient) -> None:
    with applied(lab, "config-volumes-env.yaml"):
        await wait_phase(api, "config-demo", "Succeeded")
        logs = lab.kubectl("logs", "config-demo").stdout
        assert "LOG_LEVEL=debug DB_USER=admin" in logs, logs  # envFrom configMap, secretKeyRef
        assert "workers = 4" in logs, logs  # configMap volume item
        assert "password-file=s3cr3t-Passw0rd" in logs, logs  # secret volume, decoded


async def test_init_containers(lab: LabCli, api: ApiClient) -> None:
    with applied(lab, "init-containers.yaml"):
        pod = await wait_phase(api, "init-demo", "Running")
        inits = pod["status"]["initContainerStatuses"]
        assert [s["name"] for s in inits] == ["fetch", "check"]
        done = [s["state"]["terminated"] for s in inits]
        assert [(d["reason"], d["exitCode"]) for d in done] == [("Completed", 0)] * 2, done
        assert done[0]["finishedAt"] <= done[1]["startedAt"], done  # one after the other

        async def served() -> str | None:
            out = lab.kubectl("logs", "init-demo").stdout
            return out if "checked by init container check" in out else None

        out = await eventually(served, "app shows what the init containers wrote", WAIT, interval=0.3)
        assert "content prepared by init container fetch" in out


async def test_multi_container_pod(lab: LabCli, api: ApiClient) -> None:
    with applied(lab, "multi-container.yaml"):
        pod = await wait_phase(api, "multi", "Running")
        assert sorted(s["name"] for s in pod["status"]["containerStatuses"]) == ["server", "sidecar"]

        # The sidecar's page, written to the shared volume, comes back from the server container
        # over 127.0.0.1: one network namespace and one volume for both.
        async def fetched() -> bool:
            return "written-by-sidecar" in lab.kubectl("logs", "multi", "-c", "sidecar").stdout

        await eventually(fetched, "sidecar fetched its page from the server over localhost", WAIT, interval=0.5)


# ------------------------------------------------------------------ deployments

VERSION_2 = '{"spec":{"template":{"metadata":{"labels":{"version":"2"}}}}}'  # a template change: a rollout


async def test_rolling_update_keeps_replicas_available(lab: LabCli, api: ApiClient) -> None:
    with applied(lab, "rolling-update.yaml"):
        lab.kubectl("rollout", "status", "deployment/rolling", "--timeout=120s")
        lab.kubectl("patch", "deployment", "rolling", "-p", VERSION_2)
        fewest_ready, most_pods = 3, 0
        async with asyncio.timeout(WAIT):  # bounds a rollout that never finishes
            while True:
                current = await pods(api, "app=rolling")
                fewest_ready = min(fewest_ready, sum(1 for p in current if pod_ready(p)))
                most_pods = max(most_pods, len(current))
                d = await api.get(api.resource(Deployment), "rolling", "default")
                st = d.get("status") or {}
                if (st.get("observedGeneration") == d["metadata"]["generation"] and st.get("updatedReplicas") == 3
                        and st.get("availableReplicas") == 3 and st.get("replicas") == 3):
                    break
                await asyncio.sleep(0.1)
        # maxUnavailable 0: never fewer than 3 Ready; maxSurge 1: never more than 4 pods.
        assert fewest_ready >= 3 and most_pods <= 4, (fewest_ready, most_pods)
        assert {p["metadata"]["labels"]["version"] for p in await pods(api, "app=rolling")} == {"2"}


async def test_recreate_stops_old_pods_first(lab: LabCli, api: ApiClient) -> None:
    with applied(lab, "recreate.yaml"):
        lab.kubectl("rollout", "status", "deployment/recreate", "--timeout=120s")
        listing = await api.list(api.resource(Pod), "default", label_selector="app=recreate")
        old = {p["metadata"]["name"] for p in listing["items"]}
        assert len(old) == 2
        gone: set[str] = set()
        created_while_old_ran: list[str] = []
        running_new: set[str] = set()
        lab.kubectl("patch", "deployment", "recreate", "-p", VERSION_2)
        async with asyncio.timeout(WAIT):
            async for ev in watch(api, api.resource(Pod), "default", resource_version=listing["metadata"]["resourceVersion"],
                                  label_selector="app=recreate"):
                meta = ev.object.get("metadata") or {}
                name = meta.get("name", "")
                if name in old:
                    if ev.type == "DELETED" or meta.get("deletionTimestamp"):
                        gone.add(name)
                elif ev.type == "ADDED" and gone != old:
                    created_while_old_ran.append(name)
                elif ev.type != "DELETED" and (ev.object.get("status") or {}).get("phase") == "Running":
                    running_new.add(name)
                if len(running_new) == 2:
                    break
        assert not created_while_old_ran, f"new pods {created_while_old_ran} created before the old ones were stopped"


# ------------------------------------------------------------------ scheduling


async def test_node_selector_taints_and_tolerations(lab: LabCli, api: ApiClient) -> None:
    n1, n2 = lab.node(1), lab.node(2)
    lab.kubectl("label", "node", n2, "disktype=ssd")
    lab.kubectl("label", "node", n1, "dedicated=gpu")
    lab.kubectl("patch", "node", n1, "-p", '{"spec":{"taints":[{"key":"dedicated","value":"gpu","effect":"NoSchedule"}]}}')
    try:
        with applied(lab, "scheduling.yaml"):
            assert (await wait_phase(api, "on-ssd", "Running"))["spec"]["nodeName"] == n2
            assert (await wait_phase(api, "gpu-user", "Running"))["spec"]["nodeName"] == n1

            message = await eventually(lambda: scheduling_failure(api, "gpu-intruder"), "FailedScheduling for gpu-intruder",
                                       WAIT, interval=0.3)
            assert "untolerated taint" in message, message
            intruder = await get_pod(api, "gpu-intruder")
            assert intruder["status"]["phase"] == "Pending" and not intruder["spec"].get("nodeName")
    finally:
        # The lab is shared with the rest of the module: no taint or label stays behind.
        await api.patch(api.resource(Node), n1, {"spec": {"taints": None},
                                                  "metadata": {"labels": {"dedicated": None}}})
        lab.kubectl("label", "node", n2, "disktype-")


# ------------------------------------------------------------------ services


def http_get(lab: LabCli, node: str, host: str, port: int) -> str:
    """One HTTP request sent from inside a lab node (busybox nc, as in the quickstart)."""
    r = lab.run("exec", node, "--", "sh", "-c",
                f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {host} {port} | tail -1", check=False)
    return r.stdout.strip()


async def test_services_of_every_type(lab: LabCli, api: ApiClient) -> None:
    with applied(lab, "services.yaml"):
        lab.kubectl("rollout", "status", "deployment/echo", "--timeout=120s")
        pod_ips = {p["status"]["podIP"] for p in await pods(api, "app=echo")}
        svc = {name: await api.get(api.resource(Service), name, "default")
               for name in ("echo", "echo-nodeport", "echo-lb", "echo-headless", "upstream")}
        n2_ip = (await api.get(api.resource(Node), lab.node(2)))["status"]["addresses"]
        n2_ip = next(a["address"] for a in n2_ip if a["type"] == "InternalIP")

        async def answers(host: str, port: int) -> str | None:
            out = http_get(lab, lab.node(1), host, port)
            return out if out.startswith("echo from") else None

        # ClusterIP: the virtual IP answers from a node.
        cluster_ip = svc["echo"]["spec"]["clusterIP"]
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", cluster_ip), cluster_ip
        await eventually(lambda: answers(cluster_ip, 80), f"ClusterIP {cluster_ip}:80 answers", WAIT, interval=0.5)
        # NodePort and LoadBalancer: a port on every node's own IP (here n2's, asked from n1).
        for name in ("echo-nodeport", "echo-lb"):
            node_port = svc[name]["spec"]["ports"][0]["nodePort"]
            assert 30000 <= node_port <= 32767, svc[name]["spec"]
            await eventually(lambda p=node_port: answers(n2_ip, p), f"{name} on {n2_ip}:{node_port}", WAIT, interval=0.5)
        assert not (svc["echo-lb"].get("status") or {}).get("loadBalancer", {}).get("ingress")
        # Headless: no virtual IP, the endpoints are the pods themselves.
        assert svc["echo-headless"]["spec"]["clusterIP"] == "None"

        async def headless_endpoints() -> set[str] | None:
            ep = await api.get(api.resource(Endpoints), "echo-headless", "default")
            ips = {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}
            return ips if ips == pod_ips else None

        await eventually(headless_endpoints, "headless endpoints are the pod IPs", WAIT, interval=0.3)
        # ExternalName: only a DNS name, no IP.
        assert svc["upstream"]["spec"]["externalName"] == "example.internal"
        assert not svc["upstream"]["spec"].get("clusterIP")

        # What a pod's DNS lookups answer: the ClusterIP, the pod IPs for the headless
        # Service, a CNAME for the ExternalName one.
        lab.kubectl("apply", "-f", "-", stdin=DNS_LOOKUP_POD)
        try:
            await wait_phase(api, "dns-lookup", "Succeeded")
            answers_by_name = lab.kubectl("logs", "dns-lookup").stdout.split("==")
            found = {part.split()[0]: part for part in answers_by_name if part.strip()}
            assert cluster_ip in found["echo"], found
            assert set(re.findall(r"Address: (\S+)", found["echo-headless"])) == pod_ips, found
            assert "canonical name = example.internal" in found["upstream"], found
        finally:
            lab.kubectl("delete", "pod", "dns-lookup", "--ignore-not-found", check=False)


DNS_LOOKUP_POD = """
apiVersion: v1
kind: Pod
metadata: {name: dns-lookup}
spec:
  restartPolicy: Never
  containers:
  - name: lookup
    image: busybox:latest
    imagePullPolicy: Never
    command: ["sh", "-c", "for n in echo echo-headless upstream; do echo ==$n; nslookup $n.default.svc.cluster.local; done"]
"""


# ------------------------------------------------------------------ the list is complete


def test_every_manifest_is_applied_by_a_test() -> None:
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    missing = [m.name for m in sorted(MANIFESTS.glob("*.yaml")) if m.name not in tests]
    assert not missing, f"manifests no test applies: {missing}"
    # And each one parses as Kubernetes objects with a kind.
    for m in MANIFESTS.glob("*.yaml"):
        docs = [d for d in yaml.safe_load_all(m.read_text()) if d]
        assert docs and all(d.get("kind") and d.get("apiVersion") for d in docs), m.name
