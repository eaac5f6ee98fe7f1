"""Resources, security and images through the native node agent (the rest of issue #5's
"Done when" list that ``test_node_agent`` does not cover).

Pods are created through the API and bound to one real ``nodeagent --runtime native`` (a
subprocess, as in :mod:`tests.e2e.test_node_agent`, whose fixtures and helpers this module
reuses), and what they prove is read from inside the containers (files they write into a
hostPath directory) or from the node's cgroups:

* limits.memory kills a hog: container terminated, reason OOMKilled, exit code 137;
* cpu limit -> CFS quota, cpu request -> shares (v1) / weight (v2), memory limit, and the
  node's ``--pod-max-pids`` on the pod's cgroup, which really caps forks;
* default capabilities lack CAP_SYS_ADMIN, ``drop: [ALL]`` leaves none, a read-only rootfs
  refuses writes, PID 1 is the container's process, the hostname is the pod's, mountinfo shows
  only the container's mounts, and two containers of a pod share localhost;
* an image pulled from a loopback registry (Debian's docker-registry, filled with skopeo) runs;
  an image whose layer escapes with ``..`` is refused, with a Warning event on the pod and
  nothing written outside the layer;
* image GC (thresholds 0/0 for the test): once its pod is gone the pulled image is removed
  while the layer it shares with ``busybox:latest`` (kept: a pod uses it) stays.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from apimachinery.api.core_v1 import Event, Pod
from apimachinery.client import ApiClient
from nodeagent.runtime import rootfs
from nodeagent.runtime.cgroups import detect
from nodeagent.runtime.images import manifest as mf
from nodeagent.runtime.images.busybox import build_busybox_image
from nodeagent.runtime.images.store import ImageStore
from tests.e2e import test_node_agent as base
from tests.e2e.conftest import running_agent
from tests.e2e.test_node_agent import (
    OUT_MOUNT,
    WAIT,
    Agent,
    busybox,
    get_pod,
    out_volume,
    pod_cgroup,
    pod_manifest,
    status_of,
    wait_gone,
    wait_ready,
)
from tests.fixtures.apiserver import ControlPlaneProcess
from tests.fixtures.wait import eventually
from tests.integration.test_image_registry import Img, Registry, push, sha, start_registry, stop_registry

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the native runtime uses namespaces, mounts and cgroups"),
]

# The base module's fixtures, used here with this module's agent.
client, ns, host_dir = base.client, base.ns, base.host_dir

POD_MAX_PIDS = 32
# Long enough for the keeper pod to start using busybox:latest (built at the agent's start)
# before the image GC (thresholds 0 %, every second) could take it.
GC_MIN_AGE = 15
CAP_SYS_ADMIN = 21


class ResourceAgent(Agent):
    """The module's agent: a pod pids limit, and image GC every second down to 0 %."""

    @staticmethod
    def timings() -> list[str]:
        return [*Agent.timings(), "--pod-max-pids", str(POD_MAX_PIDS), "--image-gc-high-threshold", "0",
                "--image-gc-low-threshold", "0", "--image-minimum-gc-age", str(GC_MIN_AGE), "--image-gc-period", "1"]


@pytest.fixture(scope="module")
def agent(apiserver: ControlPlaneProcess) -> Iterator[Agent]:
    with running_agent(lambda tmp: ResourceAgent(apiserver, tmp), "kl-e2e-res-") as a:
        yield a


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def keeper(client: ApiClient, agent: Agent, ns: str) -> AsyncIterator[str]:
    """A pod that uses busybox:latest all along, so the aggressive image GC keeps it."""
    name = f"keeper-{uuid.uuid4().hex[:6]}"
    await client.create(client.resource(Pod), pod_manifest(
        name, agent.node, [busybox("k", "exec sleep 3600")], terminationGracePeriodSeconds=0), ns)
    await wait_ready(client, ns, name, agent)
    yield name
    await client.delete(client.resource(Pod), name, ns)
    await wait_gone(client, ns, name)


def cgroup_file(controller: str, path: str, name: str) -> Path:
    cg = detect()
    return cg.root / path / name if cg.version == 2 else cg.root / controller / path / name


def read_cg(controller: str, path: str, name: str) -> str:
    return cgroup_file(controller, path, name).read_text().strip()


def container_cgroup(agent: Agent, uid: str, st: dict[str, Any]) -> str:
    return f"{pod_cgroup(agent, uid)}/{st['containerID'].removeprefix('kube-lite://')}"


async def delete_all(client: ApiClient, agent: Agent, ns: str, *names: str) -> None:
    """Delete the pods; then nothing of theirs is left on the node: cgroups, directories, mounts."""
    pods = [await get_pod(client, ns, name) for name in names]
    uids = [p["metadata"]["uid"] for p in pods]
    cids = [st["containerID"].removeprefix("kube-lite://") for p in pods
            for st in [*(p["status"].get("containerStatuses") or []), *(p["status"].get("initContainerStatuses") or [])]
            if st.get("containerID")]
    for name in names:
        await client.delete(client.resource(Pod), name, ns)
    for name in names:
        await wait_gone(client, ns, name)
    cgroups = detect()

    async def left() -> list[str]:
        found = [f"cgroup of {u}" for u in uids if cgroups.exists(pod_cgroup(agent, u))]
        found += [f"dir of {u}" for u in uids if (agent.data_dir / "pods" / u).exists()]
        found += [f"container {c}" for c in cids if (agent.data_dir / "runtime" / "containers" / c).exists()]
        return found + [m for m in rootfs.mounts_under(agent.data_dir) if any(x in m for x in [*uids, *cids])]

    async def nothing_left() -> bool:
        return not await left()

    try:
        await eventually(nothing_left, "the node removed everything of the deleted pods", WAIT)
    except AssertionError:
        raise AssertionError(f"left behind: {await left()}") from None


async def test_memory_hog_is_oom_killed(client: ApiClient, agent: Agent, ns: str, keeper: str) -> None:
    name = f"hog-{uuid.uuid4().hex[:6]}"
    # The shell itself (PID 1) holds 200 MB in a variable: the kernel kills it at 32 MiB.
    hog = busybox("hog", "x=$(yes | head -c 200000000); echo survived",
                  resources={"limits": {"memory": "32Mi"}})
    await client.create(client.resource(Pod), pod_manifest(name, agent.node, [hog], restartPolicy="Never"), ns)

    async def terminated() -> dict[str, Any] | None:
        st = status_of(await get_pod(client, ns, name), "hog")
        return st["state"].get("terminated")

    t = await eventually(terminated, "the hog is killed", WAIT)
    assert t["reason"] == "OOMKilled", t
    assert t["exitCode"] == 137
    assert (await get_pod(client, ns, name))["status"]["phase"] == "Failed"
    await delete_all(client, agent, ns, name)


async def test_requests_and_limits_reach_the_cgroups(
    client: ApiClient, agent: Agent, ns: str, host_dir: Path, keeper: str
) -> None:
    name = f"res-{uuid.uuid4().hex[:6]}"
    limited = busybox("limited", "exec sleep 3600", resources={
        "requests": {"cpu": "250m", "memory": "16Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}})
    # A subshell starts 100 sleeps; the pod's pids limit makes a fork fail, which ends the
    # subshell with an error status (the sleeps it did start stay).
    forker = busybox("forker", "(i=0; while [ $i -lt 100 ]; do sleep 600 & i=$((i+1)); done); "
                     "echo $? > /out/forks-status; exec sleep 3600", volumeMounts=[OUT_MOUNT])
    await client.create(client.resource(Pod), pod_manifest(
        name, agent.node, [limited, forker], terminationGracePeriodSeconds=0, volumes=[out_volume(host_dir)]), ns)
    pod = await wait_ready(client, ns, name, agent)
    uid = pod["metadata"]["uid"]
    pod_cg = pod_cgroup(agent, uid)
    lim = container_cgroup(agent, uid, status_of(pod, "limited"))
    free = container_cgroup(agent, uid, status_of(pod, "forker"))
    if detect().version == 1:
        assert read_cg("cpu", lim, "cpu.cfs_quota_us") == "50000"
        assert read_cg("cpu", lim, "cpu.cfs_period_us") == "100000"
        assert read_cg("cpu", lim, "cpu.shares") == "256"
        assert read_cg("memory", lim, "memory.limit_in_bytes") == str(64 << 20)
        assert read_cg("cpu", free, "cpu.cfs_quota_us") == "-1"
        assert read_cg("cpu", free, "cpu.shares") == "2"  # BestEffort container
        assert read_cg("cpu", pod_cg, "cpu.shares") == "256"  # the sum of the requests
        assert read_cg("cpu", pod_cg, "cpu.cfs_quota_us") == "-1"  # one container is unlimited
    else:
        assert read_cg("cpu", lim, "cpu.max") == "50000 100000"
        assert read_cg("cpu", lim, "cpu.weight") == "10"
        assert read_cg("memory", lim, "memory.max") == str(64 << 20)
        assert read_cg("cpu", free, "cpu.max") == "max 100000"
        assert read_cg("cpu", pod_cg, "cpu.max") == "max 100000"
    assert read_cg("pids", pod_cg, "pids.max") == str(POD_MAX_PIDS)

    async def forked() -> str | None:
        f = host_dir / "forks-status"
        return f.read_text().strip() if f.exists() and f.stat().st_size else None

    assert await eventually(forked, "the forker stopped", WAIT) != "0", "a fork failed"
    running = len(detect().pids(pod_cg))
    assert POD_MAX_PIDS // 2 < running <= POD_MAX_PIDS, running
    await delete_all(client, agent, ns, name)


async def test_isolation_seen_from_inside(
    client: ApiClient, agent: Agent, ns: str, host_dir: Path, keeper: str
) -> None:
    name = f"iso-{uuid.uuid4().hex[:6]}"
    web = busybox("web", "mkdir -p /tmp/www && echo hello-from-web > /tmp/www/index.html && "
                  "exec httpd -f -p 127.0.0.1:8080 -h /tmp/www")
    inspect = busybox("inspect", (
        "echo $$ > /out/pid; hostname > /out/hostname; grep CapEff /proc/self/status > /out/capeff; "
        "cat /proc/self/mountinfo > /out/mountinfo; "
        "if echo x > /rootfs-write 2>/dev/null; then echo writable; else echo refused; fi > /out/rootfs; "
        "until wget -q -O /out/web http://127.0.0.1:8080/index.html; do sleep 0.1; done; exec sleep 3600"),
        volumeMounts=[OUT_MOUNT], securityContext={"readOnlyRootFilesystem": True})
    nocaps = busybox("nocaps", "grep CapEff /proc/self/status > /out/capeff-none; exec sleep 3600",
                     volumeMounts=[OUT_MOUNT], securityContext={"capabilities": {"drop": ["ALL"]}})
    await client.create(client.resource(Pod), pod_manifest(
        name, agent.node, [web, inspect, nocaps], terminationGracePeriodSeconds=0,
        volumes=[out_volume(host_dir)]), ns)
    await wait_ready(client, ns, name, agent)

    async def done() -> bool:
        return all((host_dir / f).exists() and (host_dir / f).stat().st_size
                   for f in ("web", "capeff-none", "rootfs", "mountinfo"))

    await eventually(done, "the containers wrote what they see", WAIT)
    assert (host_dir / "web").read_text().strip() == "hello-from-web", "containers of a pod share localhost"
    assert (host_dir / "pid").read_text().strip() == "1"
    assert (host_dir / "hostname").read_text().strip() == name
    assert (host_dir / "rootfs").read_text().strip() == "refused"
    cap_eff = int((host_dir / "capeff").read_text().split()[1], 16)
    assert cap_eff and not cap_eff & (1 << CAP_SYS_ADMIN), hex(cap_eff)
    assert int((host_dir / "capeff-none").read_text().split()[1], 16) == 0

    # Mount points (field 5) are the container's own: its root, /proc, /dev, /sys and what
    # they hold, the generated /etc files and the volume. None of the node's.
    points = [line.split()[4] for line in (host_dir / "mountinfo").read_text().splitlines()]
    kernel_fs = ("/proc", "/dev", "/sys")
    others = {p for p in points if p != "/" and not any(p == k or p.startswith(k + "/") for k in kernel_fs)}
    assert others <= {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/out",
                      "/var/run/secrets/kubernetes.io/serviceaccount"}, others
    assert points.count("/") == 1
    host_points = {line.split()[4] for line in base._read("/proc/self/mountinfo").splitlines()}
    assert len(host_points) > len(set(points) - {"/out"}) or not host_points - set(points)
    assert str(host_dir) not in points and not [p for p in points if p.startswith(str(agent.data_dir))]
    await delete_all(client, agent, ns, name)


# -- images from a loopback registry ------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> Iterator[tuple[Registry, Path]]:
    if not (shutil.which("docker-registry") and shutil.which("skopeo")):
        pytest.skip("needs docker-registry and skopeo (deploy/setup.sh --test)")
    work = Path(tempfile.mkdtemp(prefix="kl-e2e-registry-"))
    reg = start_registry(work, work / "data")
    try:
        yield reg, work
    finally:
        stop_registry(reg)
        shutil.rmtree(work, ignore_errors=True)


def busybox_variant(marker: str) -> Img:
    """busybox:latest's own layer under another config: a different image sharing its layer."""
    built = build_busybox_image()
    config = json.loads(built.config)
    config["config"]["Env"] = [*config["config"].get("Env", []), f"VARIANT={marker}"]
    config_bytes = json.dumps(config).encode()
    manifest = json.loads(built.manifest)
    manifest["config"] = {"mediaType": mf.OCI_CONFIG, "digest": sha(config_bytes), "size": len(config_bytes)}
    manifest_bytes = json.dumps(manifest).encode()
    return Img(manifest_bytes, {sha(config_bytes): config_bytes, built.layer_digest: built.layer},
               sha(config_bytes), [built.layer_digest], [built.diff_id])


def traversal_image() -> Img:
    """An image whose only layer writes ``../../../escaped-<x>``: outside any directory it is unpacked in."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        ti = tarfile.TarInfo("../../../escaped-by-layer")
        data = b"pwned"
        ti.size, ti.mode = len(data), 0o644
        tar.addfile(ti, io.BytesIO(data))
    layer_raw = raw.getvalue()
    layer = gzip.compress(layer_raw, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer_raw)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
        "config": {"mediaType": mf.OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": mf.OCI_LAYER_GZIP, "digest": sha(layer), "size": len(layer)}],
    }).encode()
    return Img(manifest, {sha(config): config, sha(layer): layer}, sha(config), [sha(layer)], [sha(layer_raw)])


async def pod_events(client: ApiClient, ns: str, name: str) -> list[dict[str, Any]]:
    events = await client.list(client.resource(Event), ns)
    return [e for e in events.get("items") or [] if (e.get("involvedObject") or {}).get("name") == name]


async def test_malicious_layer_is_refused_with_an_event(
    client: ApiClient, agent: Agent, ns: str, registry: tuple[Registry, Path], keeper: str
) -> None:
    reg, work = registry
    image = f"{reg.host}/e2e/evil:1"
    push(work, traversal_image(), image)
    name = f"evil-{uuid.uuid4().hex[:6]}"
    await client.create(client.resource(Pod), pod_manifest(
        name, agent.node, [{"name": "app", "image": image}], terminationGracePeriodSeconds=0), ns)

    async def refused() -> dict[str, Any] | None:
        w = status_of(await get_pod(client, ns, name), "app")["state"].get("waiting") or {}
        return w if w.get("reason") in ("ErrImagePull", "ImagePullBackOff") else None

    waiting = await eventually(refused, "the pull is refused", WAIT)
    assert "'..'" in waiting["message"], waiting

    async def warned() -> dict[str, Any] | None:
        for e in await pod_events(client, ns, name):
            if e["type"] == "Warning" and e["reason"] == "Failed" and "'..'" in e["message"]:
                return e
        return None

    event = await eventually(warned, "a Warning event names the refused layer", WAIT)
    assert image in event["message"] and event["source"]["component"] == "kubelet"
    assert event["source"].get("host") == agent.node
    # Nothing landed outside the layer's staging directory, nothing half-made was kept.
    for d in [agent.data_dir, *agent.data_dir.parents][:5]:
        assert not (d / "escaped-by-layer").exists(), d
    store = ImageStore(agent.data_dir / "images")
    assert [p.name for p in store.layers_dir.iterdir() if p.name == traversal_image().diff_ids[0][7:]] == []
    assert store.find(tag=f"{reg.host}/e2e/evil:1") is None
    await delete_all(client, agent, ns, name)


async def test_pulled_image_runs_and_is_collected_after_its_pod(
    client: ApiClient, agent: Agent, ns: str, host_dir: Path, registry: tuple[Registry, Path],
    keeper: str,
) -> None:
    reg, work = registry
    marker = uuid.uuid4().hex[:8]
    variant = busybox_variant(marker)
    image = f"{reg.host}/e2e/busybox-variant:{marker}"
    push(work, variant, image)
    name = f"pulled-{uuid.uuid4().hex[:6]}"
    c = {"name": "app", "image": image, "imagePullPolicy": "Always",
         "command": ["sh", "-c", 'echo "$VARIANT" > /out/variant; exec sleep 3600'], "volumeMounts": [OUT_MOUNT]}
    await client.create(client.resource(Pod), pod_manifest(
        name, agent.node, [c], terminationGracePeriodSeconds=0, volumes=[out_volume(host_dir)]), ns)
    pod = await wait_ready(client, ns, name, agent)
    st = status_of(pod, "app")
    assert st["image"] == image and variant.digest in st["imageID"], st

    async def wrote() -> bool:
        f = host_dir / "variant"
        return f.exists() and f.read_text().strip() == marker

    await eventually(wrote, "the pulled image's own environment reached the process", WAIT)
    store = ImageStore(agent.data_dir / "images")
    record = store.find(image_id=variant.config_digest)
    assert record is not None
    shared_layer = store.layer_dir(variant.diff_ids[0])
    assert shared_layer.is_dir()
    await delete_all(client, agent, ns, name)

    async def collected() -> bool:  # the record goes first, then its blobs (one collection)
        return store.find(image_id=variant.config_digest) is None and not store.has_blob(variant.config_digest)

    await eventually(collected, "image GC removes the unused image", WAIT + GC_MIN_AGE)
    assert store.find(tag="docker.io/library/busybox:latest") is not None, "the image a pod uses stays"
    assert shared_layer.is_dir(), "a layer shared with a kept image stays"
