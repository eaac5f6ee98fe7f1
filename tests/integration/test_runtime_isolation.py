"""The native runtime for real: namespaces, overlayfs, cgroups, capabilities, exec, cleanup.

Needs root (skipped otherwise). Every test uses its own node name (so its own cgroup subtree
``kube-lite/<node>``) and data dir, and the fixture removes what the test made — containers,
sandboxes, cgroups, mounts, the spawner it started — even when the test fails, then checks
that nothing is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nodeagent.runtime import linux, rootfs
from nodeagent.runtime.cgroups import CgroupV1, Resources
from nodeagent.runtime.container import (
    ContainerHandle,
    ContainerSpec,
    ContainerStateError,
    Mount,
    Runtime,
    stop_spawner_process,
)
from nodeagent.runtime.spawner import SpawnerError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts, cgroups)")

HOST_HOSTNAME = os.uname().nodename


@pytest.fixture(scope="module")
def layer() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="kl-rt-layer-"))
    try:
        yield rootfs.busybox_rootfs(d / "layer")
    finally:
        shutil.rmtree(d)


def _leftovers(rt: Runtime) -> list[str]:
    found = [f"mount {m}" for m in rootfs.mounts_under(rt.data_dir)]
    found += [f"cgroup pid {p}" for p in rt.cgroups.pids(rt.node_cgroup)]
    found += [f"dir {d}" for d in (rt.data_dir / "containers").iterdir()]
    found += [f"dir {d}" for d in (rt.data_dir / "sandboxes").iterdir()]
    return found


@pytest.fixture
def rt() -> Iterator[Runtime]:
    data = Path(tempfile.mkdtemp(prefix="kl-rt-data-"))
    runtime = Runtime(data, f"test-{uuid.uuid4().hex[:10]}")
    runtimes = [runtime]
    runtime.extra = runtimes  # type: ignore[attr-defined]  # tests that restart add theirs here
    try:
        yield runtime
    finally:
        last = runtimes[-1]
        for c in last.list():
            last.remove(c.id)
        for s in last.list_sandboxes():
            last.remove_sandbox(s.id)
        left = _leftovers(last)
        for r in runtimes:
            if r.spawner_process is not None:
                stop_spawner_process(r.spawner_process, r.client)
        last.cgroups.remove(last.node_cgroup)
        node_gone = not last.cgroups.exists(last.node_cgroup)
        shutil.rmtree(data, ignore_errors=True)
        assert not left, left
        assert node_gone


def run(rt: Runtime, layer: Path, args: list[str], **kw: object) -> ContainerHandle:
    kw.setdefault("name", "c")
    kw.setdefault("layers", [str(layer)])
    h = rt.create_container(ContainerSpec(args=args, **kw))  # type: ignore[arg-type]
    h.start()
    return h


def run_to_end(rt: Runtime, layer: Path, script: str, **kw: object) -> tuple[int | None, str]:
    h = run(rt, layer, ["sh", "-c", script], **kw)
    st = h.wait(60)
    assert st is not None
    return st.exit_code, rt.log_path(h.id).read_text()


def wait_for_log(rt: Runtime, h: ContainerHandle, text: str) -> None:
    for _ in range(2000):
        if text in rt.log_path(h.id).read_text():
            return
        time.sleep(0.005)
    raise AssertionError(f"{text!r} never appeared in {rt.log_path(h.id).read_text()!r}")


def host_ns(name: str) -> str:
    return os.readlink(f"/proc/self/ns/{name}")


# ---------------------------------------------------------------------------- isolation


def test_pid1_hostname_and_only_own_mounts(rt: Runtime, layer: Path) -> None:
    code, out = run_to_end(
        rt, layer,
        "echo pid=$$; echo host=$(hostname); echo procs $(cd /proc && ls -d [0-9]*); cat /proc/self/mountinfo",
        name="iso", hostname="iso-host",
    )
    assert code == 0, out
    lines = out.splitlines()
    assert "pid=1" in lines
    assert "host=iso-host" in lines
    procs = [int(p) for p in next(line for line in lines if line.startswith("procs ")).split()[1:]]
    assert 1 in procs and max(procs) < 10, procs  # only the shell and its children: a fresh pid space
    points = {line.split()[4] for line in lines if line[:1].isdigit() and " - " in line}
    assert "/" in points
    allowed = ("/", "/proc", "/dev", "/sys", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
    assert all(p in allowed or p.startswith(("/proc/", "/dev/", "/sys/")) for p in points), points
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"} <= points
    assert os.uname().nodename == HOST_HOSTNAME
    fds = run(rt, layer, ["ls", "/proc/self/fd"], name="fds")
    assert fds.wait(60) is not None
    assert rt.log_path(fds.id).read_text().split() == ["0", "1", "2", "3"]  # 3 is ls's own: nothing leaks in


def test_proc_masks_and_readonly_paths(rt: Runtime, layer: Path) -> None:
    code, out = run_to_end(
        rt, layer,
        "cat /proc/keys | wc -c; echo masked-dirs $(ls -A /proc/acpi) $(ls -A /sys/firmware) end; "
        "touch /sys/firmware/x 2>/dev/null && echo firmware-writable; echo 1 > /proc/sys/kernel/domainname && echo sys-writable; "
        "touch /sys/x 2>/dev/null && echo sysfs-writable; ls /dev; echo done",
    )
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "0"  # /proc/keys is /dev/null
    assert "masked-dirs end" in lines and "firmware-writable" not in lines  # empty read-only tmpfs
    assert "sys-writable" not in out and "sysfs-writable" not in out
    assert "Read-only file system" in out
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx", "fd"):
        assert dev in lines, out
    assert "done" in lines


def test_sandbox_containers_share_localhost_and_ipc(rt: Runtime, layer: Path) -> None:
    sb = rt.create_sandbox(uuid.uuid4().hex, "web-pod", ips=("10.1.2.3",))
    server = run(
        rt, layer,
        ["sh", "-c", "mkdir -p /www && echo hello-from-a > /www/index.html && echo $(readlink /proc/self/ns/ipc) > /dev/shm/a-ipc"
                     " && echo ready && exec httpd -f -p 127.0.0.1:8080 -h /www"],
        name="server", sandbox_id=sb.id,
    )
    client = run(rt, layer, ["sleep", "3600"], name="client", sandbox_id=sb.id)
    alone = run(rt, layer, ["sleep", "3600"], name="alone")
    wait_for_log(rt, server, "ready")
    body = b""
    for _ in range(500):
        code, body, _err = client.exec_sync(["wget", "-qO-", "http://127.0.0.1:8080/"], timeout=10)
        if code == 0:
            break
        time.sleep(0.01)
    assert body == b"hello-from-a\n"
    # A container outside the pod has its own loopback: nothing listens there.
    code, _out, _err = alone.exec_sync(["wget", "-qO-", "-T", "2", "http://127.0.0.1:8080/"], timeout=10)
    assert code != 0

    def ns(h: ContainerHandle, name: str) -> bytes:
        code, out, err = h.exec_sync(["readlink", f"/proc/self/ns/{name}"], timeout=10)
        assert code == 0, err
        return out.strip()

    for name in ("net", "ipc", "uts"):
        assert ns(server, name) == ns(client, name)
        assert ns(client, name) != ns(alone, name)
        assert ns(client, name).decode() != host_ns(name)
    assert ns(server, "pid") != ns(client, "pid")  # each container is its own pid 1
    # The pod's /dev/shm is shared with its IPC namespace.
    code, out, _err = client.exec_sync(["cat", "/dev/shm/a-ipc"], timeout=10)
    assert out.strip() == ns(client, "ipc")
    code, out, _err = client.exec_sync(["hostname"], timeout=10)
    assert out == b"web-pod\n"
    code, out, _err = client.exec_sync(["cat", "/etc/hosts"], timeout=10)
    assert b"10.1.2.3\tweb-pod" in out
    assert rt.sandbox_stats(sb.id).memory_usage_bytes > 0
    rt.stop_sandbox(sb.id, timeout=0)
    assert rt.status(server.id).state == rt.status(client.id).state == "exited"
    assert rt.status(alone.id).state == "running"
    sandbox_dir = sb.dir
    rt.remove_sandbox(sb.id)
    assert not sandbox_dir.exists()
    assert rt.status(alone.id).state == "running"
    assert not rt.cgroups.exists(sb.cgroup_path)


# ---------------------------------------------------------------------------- cgroups


def test_memory_limit_oom_is_reported(rt: Runtime, layer: Path) -> None:
    h = run(rt, layer, ["dd", "if=/dev/zero", "of=/dev/null", "bs=96M", "count=1"],
            name="hog", resources=Resources(memory_limit_bytes=32 * 1024 * 1024))
    st = h.wait(60)
    assert st is not None
    assert st.oom_killed
    assert st.reason == "OOMKilled"
    assert st.exit_code == 137 and st.signal == signal.SIGKILL
    ok = run(rt, layer, ["dd", "if=/dev/zero", "of=/dev/null", "bs=4M", "count=1"],
             name="fits", resources=Resources(memory_limit_bytes=32 * 1024 * 1024))
    st = ok.wait(60)
    assert st is not None and st.exit_code == 0 and not st.oom_killed and st.reason == "Completed"


def test_cpu_quota_shares_and_pids_limit(rt: Runtime, layer: Path) -> None:
    h = run(rt, layer, ["sleep", "3600"], resources=Resources(cpu_request_millis=100, cpu_limit_millis=250, pids_limit=64))
    cg_path = rt._config(h.id)["plan"]["cgroup"]["path"]
    assert isinstance(rt.cgroups, CgroupV1)  # this host is hybrid; v2 is covered in tests/unit
    cpu = Path("/sys/fs/cgroup/cpu") / cg_path
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "25000"
    assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
    assert (cpu / "cpu.shares").read_text().strip() == "102"
    assert (Path("/sys/fs/cgroup/pids") / cg_path / "pids.max").read_text().strip() == "64"
    pid = h.status().pid
    membership = Path(f"/proc/{pid}/cgroup").read_text()
    for ctrl in ("cpu", "cpuacct", "memory", "pids"):
        assert any(line.split(":")[1] == ctrl and line.split(":")[2] == "/" + cg_path for line in membership.splitlines()), membership
    # The container sees its own cgroup as the root (cgroup namespace).
    code, out, _err = h.exec_sync(["cat", "/proc/self/cgroup"], timeout=10)
    assert code == 0 and f"/{cg_path}".encode() not in out
    stats = rt.stats(h.id)
    assert stats.memory_usage_bytes > 0 and stats.cpu_usage_ns > 0
    rt.update_resources(h.id, Resources(cpu_request_millis=100, cpu_limit_millis=500, pids_limit=64))
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"


# ---------------------------------------------------------------------------- privileges


def caps(out: str, field: str) -> int:
    return int(next(line.split()[1] for line in out.splitlines() if line.startswith(field + ":")), 16)


def test_capabilities_default_add_drop_and_no_new_privs(rt: Runtime, layer: Path) -> None:
    code, out = run_to_end(rt, layer, "cat /proc/self/status", name="default")
    assert code == 0
    assert caps(out, "CapEff") == caps(out, "CapBnd") == linux.cap_mask(linux.DEFAULT_CAPABILITIES) == 0xA80425FB
    assert caps(out, "NoNewPrivs") == 1
    code, out = run_to_end(rt, layer, "cat /proc/self/status", name="tight",
                           cap_drop=["ALL"], cap_add=["NET_BIND_SERVICE"], no_new_privs=False)
    assert caps(out, "CapEff") == caps(out, "CapBnd") == 1 << 10
    assert caps(out, "NoNewPrivs") == 0
    code, out = run_to_end(rt, layer, "grep -E 'Cap|Uid|Gid|Groups' /proc/self/status; touch /root/x", name="nobody",
                           user="65534:65534", supplemental_groups=[1234])
    assert caps(out, "CapEff") == 0 and caps(out, "CapPrm") == 0
    assert caps(out, "CapBnd") == 0xA80425FB
    assert "Uid:\t65534\t65534\t65534\t65534" in out
    assert "Groups:\t1234 65534" in out
    assert code != 0 and "Permission denied" in out
    code, out = run_to_end(rt, layer, "id -u", name="byname", user="nobody")
    assert out.strip() == "65534"


def test_read_only_rootfs(rt: Runtime, layer: Path) -> None:
    _, out = run_to_end(rt, layer, "touch /x || echo refused; echo ok > /dev/shm/y && cat /dev/shm/y", read_only_rootfs=True)
    assert "Read-only file system" in out and "refused" in out
    assert out.strip().endswith("ok")
    _, out = run_to_end(rt, layer, "touch /x && echo wrote", name="rw")
    assert "wrote" in out


def test_volumes_bind_mounted_read_only_when_asked(rt: Runtime, layer: Path, tmp_path: Path) -> None:
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "config").write_text("from-host\n")
    _, out = run_to_end(
        rt, layer, "echo written > /data/out; cat /cfg/config; echo no > /cfg/config || echo ro-refused",
        mounts=[Mount(str(rw), "/data"), Mount(str(ro), "/cfg", readonly=True)],
    )
    assert (rw / "out").read_text() == "written\n"
    assert "from-host" in out and "ro-refused" in out and "Read-only file system" in out
    assert (ro / "config").read_text() == "from-host\n"


def test_symlink_in_image_cannot_redirect_mounts_to_the_host(rt: Runtime, layer: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil"
    (evil / "etc").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    os.symlink(f"/../../../../../../..{victim}/hosts", evil / "etc" / "hosts")
    code, out = run_to_end(rt, layer, "cat /etc/hosts", layers=[str(layer), str(evil)])  # type: ignore[arg-type]
    assert code == 0 and "localhost" in out
    assert not (victim / "hosts").exists()


# ---------------------------------------------------------------------------- lifecycle


def test_stop_sends_term_then_kill_after_grace(rt: Runtime, layer: Path) -> None:
    polite = run(rt, layer, ["sh", "-c", "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.05; done"], name="polite")
    stubborn = run(rt, layer, ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.05; done"], name="stubborn")
    wait_for_log(rt, polite, "ready")
    wait_for_log(rt, stubborn, "ready")
    st = polite.stop(timeout=60)
    assert st.state == "exited" and st.exit_code == 3 and st.signal is None
    assert "got-term" in rt.log_path(polite.id).read_text()
    t0 = time.monotonic()
    st = stubborn.stop(timeout=0.5)
    assert time.monotonic() - t0 >= 0.5  # it got the whole grace period before SIGKILL
    assert st.state == "exited" and st.signal == signal.SIGKILL and st.exit_code == 137
    assert not st.oom_killed and st.reason == "Error"
    assert polite.stop(timeout=1).exit_code == 3  # stopping a stopped container is a no-op


def test_exec_sync(rt: Runtime, layer: Path) -> None:
    h = run(rt, layer, ["sleep", "3600"], name="target", hostname="exec-host", env=["FOO=bar"], working_dir="/work")
    code, out, err = h.exec_sync(["sh", "-c", "echo out $FOO $(pwd) $(hostname); echo err >&2; exit 7"], timeout=30)
    assert (code, out, err) == (7, b"out bar /work exec-host\n", b"err\n")
    code, out, _ = h.exec_sync(["cat", "/proc/1/cmdline"], timeout=30)
    assert out == b"sleep\x003600\x00"
    code, out, _ = h.exec_sync(["grep", "CapEff", "/proc/self/status"], timeout=30)
    assert out.split()[1] == b"00000000a80425fb"
    code, out, _ = h.exec_sync(["ls", "/proc/self/fd"], timeout=30)
    assert out.split() == [b"0", b"1", b"2", b"3"]  # ls's own directory fd is 3
    with pytest.raises(TimeoutError):
        h.exec_sync(["sh", "-c", "echo $$ > /tmp/slow.pid; exec sleep 3600"], timeout=0.5)
    gone = False
    for _ in range(1000):
        code, out, _ = h.exec_sync(["sh", "-c", "kill -0 $(cat /tmp/slow.pid) 2>/dev/null && echo alive || echo gone"], timeout=30)
        if out == b"gone\n":
            gone = True
            break
        time.sleep(0.005)
    assert gone, "the timed-out exec was not killed"
    with pytest.raises(SpawnerError, match="No such file"):
        h.exec_sync(["/no/such/binary"], timeout=30)


def test_start_error_is_reported_and_start_is_never_repeated(rt: Runtime, layer: Path) -> None:
    bad = rt.create_container(ContainerSpec(name="bad", layers=[str(layer)], args=["/no/such/binary"]))
    with pytest.raises(SpawnerError, match="No such file"):
        bad.start()
    st = bad.status()
    assert st.state == "exited" and st.reason == "StartError" and st.exit_code == 128
    with pytest.raises(ContainerStateError):
        bad.exec_sync(["true"], timeout=10)
    good = run(rt, layer, ["sleep", "3600"], name="good")
    pid = good.status().pid
    with pytest.raises(ContainerStateError):
        good.start()
    assert good.status().pid == pid


def test_remove_leaves_nothing_behind(rt: Runtime, layer: Path) -> None:
    sb = rt.create_sandbox(uuid.uuid4().hex, "tidy")
    h = run(rt, layer, ["sh", "-c", "sleep 3600 & sleep 3600"], name="tidy", sandbox_id=sb.id,
            resources=Resources(memory_limit_bytes=64 << 20))
    pid = h.status().pid
    cg_path = rt._config(h.id)["plan"]["cgroup"]["path"]
    assert pid is not None and linux.proc_start_time(pid) is not None
    code, _, _ = h.exec_sync(["true"], timeout=30)
    assert code == 0
    cdir = h.dir
    assert rootfs.mounts_under(rt.data_dir)  # the sandbox's namespace pins and shm
    h.remove()
    assert linux.proc_start_time(pid) is None
    assert not cdir.exists()
    assert not rt.cgroups.exists(cg_path)
    rt.remove_sandbox(sb.id)
    assert rootfs.mounts_under(rt.data_dir) == []
    assert not rt.cgroups.exists(sb.cgroup_path)
    with open("/proc/self/mountinfo") as f:
        assert rt.data_dir.name not in f.read()


def test_restarted_agent_adopts_running_containers(rt: Runtime, layer: Path) -> None:
    h = run(rt, layer, ["sleep", "3600"], name="survivor")
    pid = h.status().pid
    # An agent restart: a new Runtime on the same data dir finds the same spawner.
    again = Runtime(rt.data_dir, rt.node_cgroup.rsplit("/", 1)[1])
    assert again.spawner_process is None and again.client.pid == rt.client.pid
    [st] = again.list()
    assert (st.id, st.state, st.pid) == (h.id, "running", pid)
    with pytest.raises(ContainerStateError):
        again.start(h.id)
    # The spawner itself dies (SIGKILL: it leaves its socket behind) and a new one adopts the
    # container by pid + start time.
    assert rt.spawner_process is not None
    os.kill(rt.spawner_process.pid, signal.SIGKILL)
    rt.spawner_process.wait()
    assert (rt.data_dir / "spawner.sock").exists()
    third = Runtime(rt.data_dir, rt.node_cgroup.rsplit("/", 1)[1])
    rt.extra.append(third)  # type: ignore[attr-defined]
    assert third.spawner_process is not None
    [st] = third.list()
    assert (st.state, st.pid) == ("running", pid)
    _, out, _ = third.exec_sync(h.id, ["cat", "/proc/1/cmdline"], timeout=30)
    assert out == b"sleep\x003600\x00"
    st = third.stop(h.id, timeout=0)
    assert st.state == "exited"
    assert linux.proc_start_time(pid) is None


def test_device_nodes_made_inside_are_unusable(rt: Runtime, layer: Path) -> None:
    _, out = run_to_end(
        rt, layer,
        "mknod /tmp/mem c 1 1 && echo made; head -c1 /tmp/mem >/dev/null 2>&1 || echo rootfs-refused; "
        "mknod /dev/kmsg2 c 1 11; head -c1 /dev/kmsg2 >/dev/null 2>&1 || echo dev-refused; "
        "echo hi > /dev/null && head -c4 /dev/zero | wc -c",
    )
    lines = out.splitlines()
    assert "made" in lines  # CAP_MKNOD is in the default set, as in Docker...
    assert "rootfs-refused" in lines and "dev-refused" in lines  # ...but the node gives no access
    assert lines[-1] == "4"  # the container's own devices work


def test_host_network_sandbox_keeps_node_network_and_hostname(rt: Runtime, layer: Path) -> None:
    sb = rt.create_sandbox(uuid.uuid4().hex, "ignored", host_network=True)
    h = run(rt, layer, ["sleep", "3600"], name="hostnet", sandbox_id=sb.id)
    _, out, _ = h.exec_sync(["sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; hostname"], timeout=30)
    net, ipc, hostname = out.decode().split()
    assert net == host_ns("net") and ipc != host_ns("ipc")
    assert hostname == HOST_HOSTNAME
