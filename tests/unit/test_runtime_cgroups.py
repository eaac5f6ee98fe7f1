"""Runtime pieces that need no root: cgroup v2 (and v1) file writes on a fake tree, limits
arithmetic, capability sets, command/env rules, and symlink-safe path joining."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nodeagent.runtime import cgroups, linux, rootfs, sandbox
from nodeagent.runtime.cgroups import CgroupV1, CgroupV2, Resources
from nodeagent.runtime.container import merge_env, resolve_command, signal_number, spec_from_image
from nodeagent.runtime.spawner import resolve_user


def test_kubelet_cpu_arithmetic() -> None:
    assert cgroups.cpu_shares(None) == 2
    assert cgroups.cpu_shares(100) == 102
    assert cgroups.cpu_shares(1000) == 1024
    assert cgroups.cfs_quota_us(250) == 25_000
    assert cgroups.cfs_quota_us(1) == 1000  # the kernel's minimum
    assert cgroups.cpu_weight(None) == 1
    assert cgroups.cpu_weight(1000) == 39  # 1 + (1022 * 9999) // 262142
    assert cgroups.cpu_weight(262_144_000 // 1024) == 10_000


def fake_v2(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_detect_picks_v2_only_for_a_unified_root(tmp_path: Path) -> None:
    assert isinstance(cgroups.detect(fake_v2(tmp_path)), CgroupV2)
    hybrid = tmp_path / "hybrid"
    (hybrid / "unified").mkdir(parents=True)
    assert isinstance(cgroups.detect(hybrid), CgroupV1)


def test_v2_writes_limits_and_enables_controllers(tmp_path: Path) -> None:
    root = fake_v2(tmp_path)
    v2 = CgroupV2(root)
    path = "kube-lite/n1/podabc/ctr"
    v2.create(path)
    for name in ("memory.swap.max", "pids.max"):  # what the kernel shows with swap accounting and pids
        (root / path / name).write_text("max\n")
    v2.set_resources(path, Resources(cpu_request_millis=500, cpu_limit_millis=1500, memory_limit_bytes=64 << 20, pids_limit=100))
    d = root / path
    assert (d / "cpu.weight").read_text() == str(cgroups.cpu_weight(500))
    assert (d / "cpu.max").read_text() == "150000 100000"
    assert (d / "memory.max").read_text() == str(64 << 20)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "pids.max").read_text() == "100"
    # Every ancestor delegates cpu, memory and pids to its children.
    for parent in (root, root / "kube-lite", root / "kube-lite/n1", root / "kube-lite/n1/podabc"):
        assert (parent / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert v2.join_files(path) == [str(d / "cgroup.procs")]
    v2.set_resources(path, Resources())
    assert (d / "cpu.max").read_text() == "max 100000"
    assert (d / "memory.max").read_text() == "max"
    assert (d / "pids.max").read_text() == "max"


def test_v2_without_pids_controller_or_swap_accounting(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory\n")
    (root / "cgroup.subtree_control").write_text("")
    v2 = CgroupV2(root)
    v2.create("n1", Resources(memory_limit_bytes=1 << 20, pids_limit=10))
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory"
    assert (root / "n1/memory.max").read_text() == str(1 << 20)
    assert not (root / "n1/pids.max").exists() and not (root / "n1/memory.swap.max").exists()


def test_v2_stats_and_oom_from_files(tmp_path: Path) -> None:
    root = fake_v2(tmp_path)
    v2 = CgroupV2(root)
    v2.create("a")
    (root / "a/memory.current").write_text("1000000\n")
    (root / "a/memory.stat").write_text("anon 600000\ninactive_file 250000\nactive_file 10\n")
    (root / "a/cpu.stat").write_text("usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n")
    (root / "a/memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    st = v2.stats("a")
    assert (st.cpu_usage_ns, st.memory_working_set_bytes, st.memory_usage_bytes, st.oom_kills) == (1_234_000, 750_000, 1_000_000, 1)


def test_v1_writes_limits_per_controller(tmp_path: Path) -> None:
    for c in CgroupV1.CONTROLLERS:
        (tmp_path / c).mkdir()
    v1 = CgroupV1(tmp_path)
    v1.create("kube-lite/n1/c", Resources(cpu_request_millis=100, cpu_limit_millis=250, memory_limit_bytes=1 << 20))
    assert (tmp_path / "cpu/kube-lite/n1/c/cpu.shares").read_text() == "102"
    assert (tmp_path / "cpu/kube-lite/n1/c/cpu.cfs_quota_us").read_text() == "25000"
    assert (tmp_path / "memory/kube-lite/n1/c/memory.limit_in_bytes").read_text() == str(1 << 20)
    assert (tmp_path / "pids/kube-lite/n1/c/pids.max").read_text() == "max"
    assert v1.join_files("x") == [str(tmp_path / c / "x" / "tasks") for c in CgroupV1.CONTROLLERS]
    (tmp_path / "memory/kube-lite/n1/c/memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert v1.oom_kills("kube-lite/n1/c") == 2


def test_v1_comounted_cpu_cpuacct_written_once(tmp_path: Path) -> None:
    (tmp_path / "cpu,cpuacct").mkdir()
    (tmp_path / "cpu").symlink_to("cpu,cpuacct")
    (tmp_path / "cpuacct").symlink_to("cpu,cpuacct")
    (tmp_path / "memory").mkdir()
    (tmp_path / "pids").mkdir()
    assert len(CgroupV1(tmp_path).join_files("x")) == 3


def test_capability_sets() -> None:
    assert linux.effective_capabilities() == 0xA80425FB  # Docker's CapEff
    assert linux.effective_capabilities(drop=["ALL"]) == 0
    assert linux.effective_capabilities(add=["CAP_SYS_ADMIN"], drop=["KILL"]) == (0xA80425FB | 1 << 21) & ~(1 << 5)
    assert linux.effective_capabilities(add=["NET_ADMIN"], drop=["ALL"]) == 1 << 12
    with pytest.raises(ValueError, match="unknown capability"):
        linux.cap_mask(["NOT_A_CAP"])


def test_kubernetes_command_rules() -> None:
    assert resolve_command(["/ep"], ["a"], None, None) == ["/ep", "a"]
    assert resolve_command(["/ep"], ["a"], None, ["b"]) == ["/ep", "b"]
    assert resolve_command(["/ep"], ["a"], ["/cmd"], None) == ["/cmd"]
    assert resolve_command(["/ep"], ["a"], ["/cmd"], ["c"]) == ["/cmd", "c"]
    assert merge_env(["PATH=/bin", "A=1"], ["A=2", "B=3"]) == ["PATH=/bin", "A=2", "B=3"]
    assert signal_number("") == signal.SIGTERM
    assert signal_number("SIGQUIT") == signal_number("quit") == signal_number("3") == signal.SIGQUIT


@dataclass
class FakeConfig:
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=lambda: ["sh"])
    env: list[str] = field(default_factory=lambda: ["PATH=/bin"])
    working_dir: str = ""
    user: str = "nobody:nogroup"
    stop_signal: str = "SIGINT"


@dataclass
class FakeImage:
    layer_dirs: list[Path]
    config: FakeConfig


def test_spec_from_image() -> None:
    img = FakeImage([Path("/l1"), Path("/l2")], FakeConfig())
    spec = spec_from_image("c", img, args=["-c", "true"], env=["X=1"], run_as_user=1000)
    assert spec.layers == ["/l1", "/l2"]
    assert spec.args == ["-c", "true"]
    assert spec.env == ["PATH=/bin", "X=1"]
    assert spec.user == "1000:nogroup"
    assert spec.working_dir == "/"
    assert spec.stop_signal == signal.SIGINT
    assert spec_from_image("c", img).user == "nobody:nogroup"


def test_secure_join_keeps_symlinks_inside_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/../../../../outside/hosts", root / "etc" / "hosts")
    os.symlink("../../..", root / "up")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    assert rootfs.secure_join(str(root), "/etc/hosts") == f"{root}/outside/hosts"
    assert rootfs.secure_join(str(root), "up/etc") == f"{root}/etc"
    assert rootfs.secure_join(str(root), "../../a/./b") == f"{root}/a/b"
    with pytest.raises(OSError, match="too many levels"):
        rootfs.secure_join(str(root), "/loop1/x")


def test_hostnames_are_cut_like_the_kubelet_does() -> None:
    assert sandbox.valid_hostname("web-0") == "web-0"
    assert sandbox.valid_hostname("a" * 62 + "-b") == "a" * 62
    assert len(sandbox.valid_hostname("x" * 100)) == 63


def test_overlay_options_lists_top_layer_first() -> None:
    assert rootfs.overlay_options(["/l/base", "/l/top"], "/c/up", "/c/work") == "lowerdir=/l/top:/l/base,upperdir=/c/up,workdir=/c/work"
    assert rootfs.overlay_options(["/a:b,c"], "/u", "/w").startswith("lowerdir=/a\\:b\\,c,")


def test_hosts_file_like_the_kubelet() -> None:
    text = rootfs.hosts_file("web-0", ["10.0.0.5"], [("1.2.3.4", ["foo", "bar"])])
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "10.0.0.5\tweb-0\n" in text
    assert "# Entries added by HostAliases.\n1.2.3.4\tfoo\tbar\n" in text
    assert rootfs.resolv_conf(["10.96.0.10"], ["ns.svc.cluster.local"], ["ndots:5"]) == (
        "nameserver 10.96.0.10\nsearch ns.svc.cluster.local\noptions ndots:5\n"
    )


def test_resolve_user_against_container_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\napp:x:1001:\nwheel:x:10:app,other\n")
    real_open = open

    def chrooted_open(path: str, *a: object, **kw: object):  # type: ignore[no-untyped-def]
        return real_open(str(tmp_path) + path if path.startswith("/etc/") else path, *a, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", chrooted_open)
    assert resolve_user("app", []) == (1000, 1001, [10, 1001], "/home/app")
    assert resolve_user("1000:0", [5]) == (1000, 0, [0, 5, 10], "/home/app")
    assert resolve_user("4242", []) == (4242, 0, [0], None)
    assert resolve_user(None, []) == (0, 0, [0], "/root")
    with pytest.raises(ValueError, match="unable to find user ghost"):
        resolve_user("ghost", [])
