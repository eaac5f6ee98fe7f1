"""Container start-to-gone latency: kube-lite's native runtime against ``runc run``.

One container = create + start + wait for exit + delete, running busybox ``/bin/true``:

* ours: ``Runtime.create_container`` (dirs, cgroups v1/v2 with a memory limit, config) ->
  ``start`` (the spawner forks: pid/mnt/uts/ipc/net/cgroup namespaces, overlayfs over the
  layer, /proc /dev /sys with masks, pivot_root, capabilities, no_new_privs, exec) -> ``wait`` ->
  ``remove`` (cgroups rmdir'ed, container dir deleted);
* runc: ``runc run`` of a bundle whose config.json asks for the same namespaces, masks,
  read-only paths, capabilities, memory limit and mounts, over a rootfs directory with the same
  contents (runc gets a plain directory: it does no overlay mount, we do).

Both keep their per-container state on a tmpfs (runc's default state root, /run/runc, is one;
our data dir is mounted there too, so the overlay's upper/work dirs are in RAM), while the image
layer and runc's bundle rootfs are on disk. On this machine's ext4, under the fsync load of the
other processes, a container's dozen directory creations and removals alone cost several ms, so
the agent should keep its data dir on a tmpfs (e.g. /run/kube-lite/<node>) too. Both
containers get the same cgroup settings: 1024 cpu shares and a 64 MiB memory limit.

Iterations alternate between the two so both see the same machine load (2 shared cores here),
and CPU time (load-independent) is reported next to wall time.
Run as root:

    python3 bench/runtime.py [--iterations 100]

Prints a readable report, then as its last line one JSON object
``{"ours_ms": p50, "runc_ms": p50, "ratio": ours/runc, ...}``; the goal is ratio <= 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nodeagent.runtime import linux, rootfs
from nodeagent.runtime.cgroups import Resources
from nodeagent.runtime.container import ContainerSpec, Runtime, stop_spawner_process

MEMORY_LIMIT = 64 * 1024 * 1024


def runc_config(rootfs_dir: Path, cgroups_path: str) -> dict[str, Any]:
    """What ``runc spec`` generates, adjusted to match our container: net ns, memory limit."""
    caps = [f"CAP_{c}" for c in linux.DEFAULT_CAPABILITIES]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=bench"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "inheritable", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs_dir), "readonly": False},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": False, "access": "rwm"}], "memory": {"limit": MEMORY_LIMIT},
                          "cpu": {"shares": 1024}},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(rootfs.MASKED_PATHS),
            "readonlyPaths": list(rootfs.READONLY_PATHS),
        },
    }


def process_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` plus its reaped children (the spawner and its containers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def own_cpu_s(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run_ours(rt: Runtime, layer: Path) -> float:
    t0 = time.perf_counter()
    h = rt.create_container(
        ContainerSpec(name="bench", layers=[str(layer)], args=["/bin/true"],
                      # 1 CPU requested = 1024 shares, the weight runc's container gets too
                      resources=Resources(cpu_request_millis=1000, memory_limit_bytes=MEMORY_LIMIT))
    )
    h.start()
    st = h.wait(30)
    h.remove()
    elapsed = (time.perf_counter() - t0) * 1000
    if st is None or st.exit_code != 0:
        raise RuntimeError(f"our container failed: {st}")
    return elapsed


def run_runc(bundle: Path, state_root: Path) -> float:
    cid = f"klbench-{uuid.uuid4().hex[:12]}"
    t0 = time.perf_counter()
    r = subprocess.run(["runc", "--root", str(state_root), "run", "--bundle", str(bundle), cid],
                       stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        raise RuntimeError(f"runc run failed ({r.returncode}): {r.stderr.decode()}")
    return elapsed


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 2), "mean": round(statistics.fmean(values), 2),
            "min": round(min(values), 2), "max": round(max(values), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--nice", type=int, default=-10, help="priority change for the benchmark and both runtimes")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/runtime.py needs root (namespaces, mounts, cgroups)")
    if shutil.which("runc") is None:
        sys.exit("runc is not installed (Debian package runc)")

    # Both runtimes (our spawner is started from here, runc too) inherit this priority: it
    # shields the comparison from unrelated load on a shared machine without favouring either.
    os.nice(args.nice)
    work = Path(tempfile.mkdtemp(prefix="kl-bench-runtime-"))
    node = f"bench-{uuid.uuid4().hex[:8]}"
    rt: Runtime | None = None
    ours: list[float] = []
    runc: list[float] = []
    cpu = {"ours": 0.0, "runc": 0.0}
    try:
        layer = rootfs.busybox_rootfs(work / "layer")
        bundle = work / "bundle"
        bundle.mkdir()
        shutil.copytree(layer, bundle / "rootfs", symlinks=True)
        (bundle / "config.json").write_text(json.dumps(runc_config(bundle / "rootfs", f"/kube-lite-bench/{node}")))
        state_root = work / "state" / "runc"
        state = work / "state"
        state.mkdir()
        linux.mount("tmpfs", str(state), "tmpfs", 0, "mode=700")
        rt = Runtime(state / "data", node)
        for _ in range(args.warmup):
            run_ours(rt, layer)
            run_runc(bundle, state_root)
        cpu_children_before = own_cpu_s(resource.RUSAGE_CHILDREN)
        assert rt.client.pid is not None
        spawner_cpu0 = process_cpu_s(rt.client.pid)
        for _ in range(args.iterations):
            c0 = own_cpu_s(resource.RUSAGE_SELF)
            ours.append(run_ours(rt, layer))
            c1 = own_cpu_s(resource.RUSAGE_SELF)
            runc.append(run_runc(bundle, state_root))
            c2 = own_cpu_s(resource.RUSAGE_CHILDREN)
            cpu["ours"] += c1 - c0
            cpu["runc"] += c2 - cpu_children_before
            cpu_children_before = c2
        cpu["ours"] += process_cpu_s(rt.client.pid) - spawner_cpu0
    finally:
        if rt is not None:
            for c in rt.list():
                rt.remove(c.id)
            stop_spawner_process(rt.spawner_process, rt.client)
            rt.cgroups.remove(rt.node_cgroup)
            for ctrl in Path("/sys/fs/cgroup").iterdir():
                # runc's cgroup and its parent (ours, kube-lite/<node>, is gone already; the shared
                # kube-lite parent stays, as /sys/fs/cgroup/kubepods does)
                for d in (ctrl / "kube-lite-bench" / node, ctrl / "kube-lite-bench"):
                    try:
                        d.rmdir()
                    except OSError:
                        pass
        if (work / "state").is_mount():
            linux.umount2(str(work / "state"), linux.MNT_DETACH)
        shutil.rmtree(work, ignore_errors=True)

    o, r = summary(ours), summary(runc)
    ratio = round(o["p50"] / r["p50"], 3)
    print()
    print(f"container create+start+wait+delete of busybox /bin/true, {args.iterations} iterations each, interleaved")
    print(f"  kube-lite native  p50 {o['p50']:7.2f} ms  mean {o['mean']:7.2f}  min {o['min']:7.2f}  max {o['max']:7.2f}")
    print(f"  runc run          p50 {r['p50']:7.2f} ms  mean {r['mean']:7.2f}  min {r['min']:7.2f}  max {r['max']:7.2f}")
    print(f"  ratio (p50) ours/runc = {ratio}   (mean ratio {round(o['mean'] / r['mean'], 3)}; goal <= 0.5)")
    ours_cpu = round(cpu["ours"] * 1000 / args.iterations, 2)
    runc_cpu = round(cpu["runc"] * 1000 / args.iterations, 2)
    print(f"  CPU per container: ours {ours_cpu} ms (agent side + spawner + container), runc {runc_cpu} ms "
          f"(runc run + runc init + container); ratio {round(ours_cpu / runc_cpu, 3)}")
    print("  (CPU time does not depend on how busy the machine is; wall time does: both ran interleaved;")
    print(f"   state dirs on tmpfs for both, image layer on disk; load average now {os.getloadavg()[0]:.1f})")
    print(json.dumps({"ours_ms": o["p50"], "runc_ms": r["p50"], "ratio": ratio,
                      "ours_mean_ms": o["mean"], "runc_mean_ms": r["mean"],
                      "ours_cpu_ms": ours_cpu, "runc_cpu_ms": runc_cpu, "cpu_ratio": round(ours_cpu / runc_cpu, 3),
                      "iterations": args.iterations}))


if __name__ == "__main__":
    main()
