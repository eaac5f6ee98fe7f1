"""``deploy/install.sh server|agent`` end to end, as far as one machine allows.

A "VM" is a network namespace on a test bridge. The server is installed with ``--init none``
(no systemd here) and its unit's command line is run on the host side of the bridge; the agent
is installed inside the VM's namespace, where it joins with the printed token (TLS bootstrap),
picks its node IP from the route to the server, and its unit's command line runs there. The
node must register under its own identity, with that IP, and be Ready.
"""

from __future__ import annotations

import asyncio
import os
import random
import shlex
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apimachinery.api.core_v1 import Node
from apimachinery.client import ApiClient, load_kubeconfig
from nodeagent.agent.agent import purge
from tests.fixtures.wait import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and the native runtime"),
]

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "deploy" / "install.sh"


def sh(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{shlex.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


def exec_start(unit: Path) -> list[str]:
    line = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def in_vm(vm: Vm) -> list[str]:
    # nsenter, not `ip netns exec`: the latter remounts /sys, hiding the host's cgroup mounts
    # the agent needs (labctl enters its nodes the same way).
    return ["nsenter", f"--net=/run/netns/{vm.netns}", "--"]


@dataclass
class Vm:
    """One network-namespace machine on a test bridge (removed afterwards, also on failure)."""

    bridge: str
    netns: str
    host_ip: str
    vm_ip: str


@pytest.fixture
def vm() -> Iterator[Vm]:
    uid = uuid.uuid4().hex[:6]
    # 172.29.x.0/24: away from labctl's 172.31.x.0/24 labs; the random x keeps parallel runs apart.
    net = f"172.29.{random.randint(1, 254)}"
    v = Vm(f"kli{uid}", f"kli-vm-{uid}", f"{net}.1", f"{net}.2")
    host_if, vm_if = f"kliv{uid}", f"klip{uid}"
    try:
        sh("ip", "link", "add", v.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{v.host_ip}/24", "dev", v.bridge)
        sh("ip", "link", "set", v.bridge, "up")
        sh("ip", "netns", "add", v.netns)
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", vm_if)
        sh("ip", "link", "set", host_if, "master", v.bridge, "up")
        sh("ip", "link", "set", vm_if, "netns", v.netns)
        for cmd in (("addr", "add", f"{v.vm_ip}/24", "dev", vm_if), ("link", "set", vm_if, "up"),
                    ("link", "set", "lo", "up"), ("route", "add", "default", "via", v.host_ip)):
            sh("ip", "-n", v.netns, *cmd)
        yield v
    finally:
        sh("ip", "netns", "del", v.netns, check=False)
        sh("ip", "link", "del", host_if, check=False)
        sh("ip", "link", "del", v.bridge, check=False)


class Proc:
    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as out:
            self.p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:]) if self.log.exists() else ""


async def test_install_server_then_join_an_agent_from_another_machine(vm: Vm) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="kl-e2e-install-"))
    port = str(random.randint(20000, 29999))
    node = f"vm-{uuid.uuid4().hex[:6]}"
    procs: list[Proc] = []
    agent_data = tmp / "agent"
    try:
        server_root, server_data = tmp / "server-root", tmp / "server"
        res = sh("bash", str(INSTALL), "server", "--init", "none", "--skip-deps", "--root", str(server_root),
                 "--data-dir", str(server_data), "--advertise-address", vm.host_ip, "--bind-address", vm.host_ip,
                 "--port", port)
        assert "not started" in res.stdout
        unit = server_root / "etc/systemd/system/kube-lite-controlplane.service"
        argv = exec_start(unit)
        assert argv[argv.index("--advertise-address") + 1] == vm.host_ip
        server = Proc(argv, tmp / "server.log")
        procs.append(server)
        admin = server_data / "admin.kubeconfig"

        async def server_up() -> bool:
            return admin.exists() and sh("curl", "-fsk", f"https://{vm.host_ip}:{port}/readyz", check=False).returncode == 0

        try:
            await eventually(server_up, "the installed control plane to answer", 60, interval=0.5)
        except AssertionError:
            raise AssertionError(server.tail()) from None

        join = sh("controlplane", "token", "create", "--kubeconfig", str(admin), "--ttl", "10m",
                  "--print-join-command").stdout.strip()
        words = shlex.split(join)
        assert words[:2] == ["deploy/install.sh", "agent"], join
        assert words[words.index("--server") + 1] == f"https://{vm.host_ip}:{port}"

        # On the "other machine": the printed line, plus what a machine without systemd needs.
        agent_root = tmp / "agent-root"
        res = sh(*in_vm(vm), "bash", str(ROOT / words[0]), *words[1:], "--init", "none",
                 "--skip-deps", "--root", str(agent_root), "--data-dir", str(agent_data), "--node-name", node,
                 "--", "--network-mode", "none", "--lease-interval", "2", timeout=180)
        assert f"joining https://{vm.host_ip}:{port} as node {node} ({vm.vm_ip})" in res.stdout, res.stdout
        kubeconfig = agent_data / "kubeconfig"
        assert kubeconfig.stat().st_mode & 0o077 == 0
        config = load_kubeconfig(kubeconfig)
        assert config.token is None and config.client_cert_data is not None
        argv = exec_start(agent_root / "etc/systemd/system/kube-lite-nodeagent.service")
        assert argv[argv.index("--node-ip") + 1] == vm.vm_ip  # the route to the server chose it
        assert "KillMode=process" in (agent_root / "etc/systemd/system/kube-lite-nodeagent.service").read_text()
        agent = Proc([*in_vm(vm), "unshare", "--uts", "--", *argv], tmp / "agent.log")
        procs.append(agent)

        async with ApiClient(load_kubeconfig(admin)) as c:
            async def ready() -> dict[str, str] | None:
                n = await c.get(c.resource(Node), node)
                conds = {x["type"]: x["status"] for x in (n.get("status") or {}).get("conditions") or []}
                return n if conds.get("Ready") == "True" else None

            try:
                got = await eventually(ready, "the joined node to be Ready", 60, interval=0.5)
            except AssertionError:
                raise AssertionError(agent.tail()) from None
            addresses = {a["type"]: a["address"] for a in got["status"]["addresses"]}  # type: ignore[index]
            assert addresses["InternalIP"] == vm.vm_ip
            # Its own identity: the CSR it made was approved for system:node:<name>.
            csrs = (await c.request("GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests"))["items"]
            mine = [x for x in csrs if x["metadata"]["name"].startswith(f"node-csr-{node}-")]
            assert mine and mine[0]["spec"]["username"].startswith("system:bootstrap:")
            await c.delete(c.resource(Node), node)
    finally:
        for p in reversed(procs):
            p.stop()
        left = purge(agent_data, node) if agent_data.exists() else []
        shutil.rmtree(tmp, ignore_errors=True)
        await asyncio.sleep(0)
        assert not left, left
