"""``labctl``: bring up, inspect, break and tear down a multi-node kube-lite lab on one machine.

    labctl up --nodes 3 --name demo        # control plane + 3 node "VMs"; prints the kubeconfig path
    labctl status --name demo
    labctl exec n1 --name demo -- ip addr
    labctl fail n1 | stop n1 | partition n1 | heal n1 | restart n1 | restart controlplane
    labctl down --name demo [--keep-state]

Every command takes ``--name`` (default ``$KLAB_NAME`` or ``lab``) and ``--state-dir``.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

from deploy.labctl import credentials, faults, netns, processes
from deploy.labctl.lab import (
    DEFAULT_STATE_ROOT,
    MAX_NODES,
    Lab,
    LabError,
    LabState,
    NodeState,
    used_subnet_indexes,
)

CONTROLPLANE = "controlplane"
SUBNET_LOCK = "/run/kube-lite-labs.lock"


def say(msg: str) -> None:
    print(msg, flush=True)


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("needs root (network namespaces, links, mounts, cgroups); run it with sudo")


# ------------------------------------------------------------------ up / down


def _ensure_controlplane(lab: Lab, state: LabState) -> None:
    if state.controlplane is not None and state.controlplane.alive():
        say(f"control plane running (pid {state.controlplane.pid})")
    else:
        if not state.port:
            state.port = processes.free_port(state.bridge_ip)
        say(f"starting control plane on {state.bridge_ip}:{state.port}")
        state.controlplane = processes.start_controlplane(lab, state)
        lab.save(state)
    credentials.prepare()
    processes.wait_controlplane(lab, state)
    say("control plane ready")


def _ensure_agent(lab: Lab, state: LabState, node: NodeState) -> None:
    if node.agent is not None and node.agent.alive():
        return
    node.agent = processes.start_agent(lab, node)
    lab.save(state)
    say(f"node {node.name}: agent started (pid {node.agent.pid}, ip {node.ip}, netns {node.netns})")


def cmd_up(lab: Lab, args: argparse.Namespace) -> None:
    require_root()
    if lab.exists():
        state = lab.load()
        say(f"lab {lab.name} exists; bringing missing parts back")
    else:
        # Held until the bridge has its address: labs started at once (even with different state
        # dirs) then see each other's subnet on the host and never pick the same one.
        with open(SUBNET_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            taken = used_subnet_indexes(lab.dir.parent)
            state = lab.new_state(netns.pick_subnet_index(taken))
            lab.save(state)
            netns.ensure_bridge(state)
        say(f"creating lab {lab.name} on 172.31.{state.subnet_index}.0/24")
    if args.node_monitor_grace_period is not None:
        state.node_monitor_grace_period = args.node_monitor_grace_period
    if args.default_toleration_seconds is not None:
        state.default_toleration_seconds = args.default_toleration_seconds
    count = args.nodes if args.nodes is not None else (len(state.nodes) or 2)
    if not 1 <= count <= MAX_NODES:
        raise LabError(f"--nodes must be between 1 and {MAX_NODES}")
    for i in range(1, count + 1):
        n = lab.node_state(state, i)
        state.nodes.setdefault(n.name, n)
    lab.save(state)  # before creating anything: `down` must find it even if `up` fails halfway
    netns.ensure_bridge(state)
    for node in state.nodes.values():
        netns.ensure_node_net(state, node)
    _ensure_controlplane(lab, state)
    for node in state.nodes.values():
        _ensure_agent(lab, state, node)
    say(f"waiting for {len(state.nodes)} node(s) to be Ready")
    processes.wait_nodes_ready(lab, [n.name for n in state.nodes.values() if not n.partitioned], say,
                               timeout=args.timeout)
    say(f"lab {lab.name} ready; kubeconfig: {lab.kubeconfig}")


def cmd_down(lab: Lab, args: argparse.Namespace) -> None:
    require_root()
    state = lab.load()
    nodes = list(state.nodes.values())
    # Without --keep-state nothing of the lab is kept, so there is no point in a graceful stop.
    hard = not args.keep_state
    say(f"stopping the control plane and {len(nodes)} node agent(s)")
    processes.stop_processes([state.controlplane, *(n.agent for n in nodes)], hard=hard)
    state.controlplane = None
    for node in nodes:
        node.agent = None
    lab.save(state)
    say("removing the nodes' containers, sandboxes, mounts, cgroups and namespaces")
    left: list[str] = processes.purge_nodes(lab, nodes)
    for node in nodes:
        left += netns.delete_node_net(node)
        node.partitioned = False
    lab.save(state)
    left += netns.delete_bridge(state)
    left += netns.delete_host_nft_tables(lab.name)
    if left:
        raise LabError(f"lab {lab.name} partly removed; left: {'; '.join(left)}")
    if args.keep_state:
        say(f"lab {lab.name} down; state kept in {lab.dir}")
    else:
        shutil.rmtree(lab.dir)
        say(f"lab {lab.name} removed")


# ------------------------------------------------------------------ inspection


def cmd_status(lab: Lab, args: argparse.Namespace) -> None:
    require_root()
    state = lab.load()
    cp = state.controlplane
    cp_state = f"running (pid {cp.pid})" if cp is not None and cp.alive() else "not running"
    say(f"lab {lab.name}: subnet 172.31.{state.subnet_index}.0/24, bridge {state.bridge}")
    say(f"control plane: https://{state.bridge_ip}:{state.port} {cp_state}")
    say(f"kubeconfig: {lab.kubeconfig}")
    ready = processes.node_conditions(lab) if cp is not None and cp.alive() else {}
    say(f"{'NODE':<16} {'IP':<16} {'READY':<8} {'AGENT':<14} NETWORK")
    for node in state.nodes.values():
        agent = f"pid {node.agent.pid}" if node.agent is not None and node.agent.alive() else "not running"
        net = "partitioned" if node.partitioned else ("up" if netns.netns_exists(node.netns) else "missing")
        say(f"{node.name:<16} {node.ip:<16} {ready.get(node.name, '?'):<8} {agent:<14} {net}")


def cmd_kubeconfig(lab: Lab, args: argparse.Namespace) -> None:
    if not lab.kubeconfig.exists():
        raise LabError(f"lab {lab.name} has no kubeconfig yet ({lab.kubeconfig}); run labctl up")
    say(str(lab.kubeconfig))


def cmd_exec(lab: Lab, args: argparse.Namespace) -> None:
    require_root()
    state = lab.load()
    node = lab.resolve_node(state, args.node)
    cmd = list(args.cmd)
    if not cmd:
        raise LabError("labctl exec NODE -- CMD...: no command given")
    if not netns.netns_exists(node.netns):
        raise LabError(f"node {node.name} has no network namespace (run labctl up)")
    argv = ["nsenter", f"--net={netns.netns_path(node.netns)}"]
    if node.agent is not None and node.agent.alive():
        argv.append(f"--uts=/proc/{node.agent.pid}/ns/uts")  # the node's hostname too
    sys.stdout.flush()
    r = subprocess.run([*argv, "--", *cmd])
    sys.exit(r.returncode)


# ------------------------------------------------------------------ restarts and faults


def cmd_restart(lab: Lab, args: argparse.Namespace) -> None:
    require_root()
    state = lab.load()
    if args.target == CONTROLPLANE:
        say("control plane: stopping")
        processes.stop_process(state.controlplane)
        state.controlplane = None
        lab.save(state)
        _ensure_controlplane(lab, state)
        return
    node = lab.resolve_node(state, args.target)
    processes.stop_process(node.agent)
    node.agent = None
    lab.save(state)
    netns.ensure_node_net(state, node)
    _ensure_agent(lab, state, node)
    if not node.partitioned:
        processes.wait_nodes_ready(lab, [node.name], say, timeout=args.timeout)


def cmd_fault(lab: Lab, args: argparse.Namespace) -> None:
    require_root()
    state = lab.load()
    node = lab.resolve_node(state, args.node)
    if args.command == "fail":
        say(faults.fail(lab, state, node))
    elif args.command == "stop":
        say(faults.stop(lab, state, node))
    else:
        say(faults.partition(lab, state, node, cut=args.command == "partition"))


# ------------------------------------------------------------------ CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default=os.environ.get("KLAB_NAME", "lab"),
                        help="lab name: 1-10 lowercase letters/digits (default $KLAB_NAME or 'lab')")
    common.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_ROOT,
                        help=f"where labs keep their state (default {DEFAULT_STATE_ROOT})")
    p = argparse.ArgumentParser(prog="labctl", description="multi-node kube-lite labs on one machine")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", parents=[common], help="create the lab or bring its missing parts back")
    up.add_argument("--nodes", type=int, default=None, help="number of nodes (default 2, or the lab's current count)")
    up.add_argument("--node-monitor-grace-period", type=float, default=None,
                    help="seconds without heartbeat before a node is Unknown (lab default 8)")
    up.add_argument("--default-toleration-seconds", type=int, default=None,
                    help="seconds pods stay on a not-ready node (lab default 10)")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for every node to be Ready")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", parents=[common], help="remove everything the lab made")
    down.add_argument("--keep-state", action="store_true", help="keep the state dir (etcd data, images)")
    down.set_defaults(func=cmd_down)

    sub.add_parser("status", parents=[common], help="nodes, readiness, pids").set_defaults(func=cmd_status)
    sub.add_parser("kubeconfig", parents=[common], help="print the kubeconfig path").set_defaults(func=cmd_kubeconfig)

    ex = sub.add_parser("exec", parents=[common], help="run a command in a node's network namespace")
    ex.add_argument("node")
    ex.usage = "labctl exec NODE [--name NAME] -- CMD..."
    ex.set_defaults(func=cmd_exec, cmd=[])

    rs = sub.add_parser("restart", parents=[common], help="restart a node's agent or the control plane")
    rs.add_argument("target", help="NODE or 'controlplane'")
    rs.add_argument("--timeout", type=float, default=60.0)
    rs.set_defaults(func=cmd_restart)

    for name, text in (("fail", "kill -9 the node's agent (containers stay)"),
                       ("stop", "the whole node down: agent and containers killed"),
                       ("partition", "cut the node's network link"),
                       ("heal", "restore the node's network link")):
        f = sub.add_parser(name, parents=[common], help=text)
        f.add_argument("node")
        f.set_defaults(func=cmd_fault)
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first "--" is exec's command, whatever options it carries.
    cmd: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, cmd = argv[:cut], argv[cut + 1:]
    args = p.parse_args(argv)
    if args.command == "exec":
        args.cmd = cmd
    elif cmd:
        p.error(f"unexpected arguments after --: {' '.join(cmd)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        args.func(Lab(args.name, args.state_dir), args)
    except LabError as e:
        print(f"labctl: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("labctl: interrupted", file=sys.stderr)
        sys.exit(130)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        print(f"labctl: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # one line, never a traceback; the logs under the lab dir say more
        print(f"labctl: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
