"""``nodeagent``: run a node agent in the foreground.

    nodeagent --kubeconfig admin.kubeconfig --node-name hollow --data-dir /tmp/na --runtime fake --count 100

    nodeagent --kubeconfig admin.kubeconfig --node-name n1 --node-ip 10.0.0.5 --data-dir /var/lib/kube-lite/n1 \
        --runtime native --busybox-image

``--runtime fake`` runs hollow nodes (no root; pods only pretend to run); with ``--count N`` one
process registers N nodes named NAME-0..NAME-{N-1}. ``--runtime native`` (root) runs the pods
bound to the node as real containers (see :mod:`nodeagent.agent`); capacity defaults to the
host's CPUs and memory, and ``--busybox-image`` builds ``busybox:latest`` from the host's
busybox-static into the node's image store, so pods can run without a registry.

``--network-mode host-gw`` or ``vxlan`` (native) makes pods network citizens: the agent waits
for the Node's podCIDR, sets up the node's bridge (masquerading traffic that leaves
``--cluster-cidr``), gives every pod an IP and a veth, routes to the other nodes' pods (host-gw:
via their InternalIP, one L2 segment; vxlan: through a VXLAN device), and runs the service
proxy and the node's cluster DNS (on the bridge's gateway address, port 53, named in pods'
resolv.conf). ``none`` (the default) leaves pods a loopback-only network namespace.

The native agent talks to its runtime through the runtime service (:mod:`nodeagent.cri`),
which it serves itself on ``DATA_DIR/runtime.sock`` unless ``--runtime-endpoint unix:///PATH``
names one run apart: ``nodeagent runtime-service --data-dir D --node-name N``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from apimachinery.agentapi import DEFAULT_AGENT_PORT
from apimachinery.client import ApiClient, ApiConnectionError, KubeconfigError, load_kubeconfig
from apimachinery.errors import ApiError
from nodeagent.agent.agent import AgentConfig, NodeAgent
from nodeagent.agent.podnet import DEFAULT_CLUSTER_CIDR, MODE_HOST_GW, MODE_NONE, NETWORK_MODES
from nodeagent.cri.server import parse_endpoint
from nodeagent.hollow import HollowNodes, hollow_configs
from nodeagent.runtime.images import ImageError
from nodeagent.runtime.images.gc import ImageGCPolicy
from nodeagent.runtime.logs import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE, RotationPolicy


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="nodeagent", description="kube-lite node agent")
    p.add_argument("--kubeconfig", required=True, type=Path, help="kubeconfig of the control plane")
    p.add_argument("--node-name", required=True, help="node name (with --count: the prefix)")
    p.add_argument("--node-ip", default=None, help="InternalIP to report (with --count: the first one)")
    p.add_argument("--data-dir", required=True, type=Path, help="state directory")
    p.add_argument("--runtime", choices=["fake", "native"], default="native",
                   help="fake: hollow nodes without containers; native: real containers")
    p.add_argument("--count", type=int, default=None, help="run N nodes in this process (fake runtime)")
    p.add_argument("--cpu", default=None, help="CPU capacity per node (default: fake 4, native the host's)")
    p.add_argument("--memory", default=None, help="memory capacity per node (default: fake 16Gi, native the host's)")
    p.add_argument("--pods", type=int, default=110, help="pod capacity per node (default 110)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="extra node label")
    p.add_argument("--lease-interval", type=float, default=10.0, help="seconds between Lease renewals (default 10)")
    p.add_argument("--status-interval", type=float, default=60.0,
                   help="seconds between node condition heartbeats (default 60)")
    p.add_argument("--stop-delay", type=float, default=0.2,
                   help="seconds a fake pod takes to stop before it is deleted (default 0.2)")
    p.add_argument("--no-pods", action="store_true",
                   help="register and heartbeat only; leave pods alone (scheduler benchmarks)")
    p.add_argument("--busybox-image", action="store_true",
                   help="native: build busybox:latest from the host's busybox-static at start if missing")
    p.add_argument("--backoff-base", type=float, default=10.0,
                   help="native: first crash-loop back-off in seconds, doubling up to --backoff-max (default 10)")
    p.add_argument("--backoff-max", type=float, default=300.0, help="native: back-off cap in seconds (default 300)")
    p.add_argument("--relist-interval", type=float, default=1.0,
                   help="native: seconds between runtime relists that notice exited containers (default 1)")
    p.add_argument("--pod-max-pids", type=int, default=None, help="native: pids limit of each pod's cgroup (default none)")
    p.add_argument("--image-gc-high-threshold", type=int, default=85,
                   help="native: image disk usage percent at which unused images are removed (default 85; 100 never)")
    p.add_argument("--image-gc-low-threshold", type=int, default=80,
                   help="native: image disk usage percent image GC frees down to (default 80)")
    p.add_argument("--image-minimum-gc-age", type=float, default=120.0,
                   help="native: seconds an unused image stays before image GC may remove it (default 120)")
    p.add_argument("--image-gc-period", type=float, default=300.0, help="native: seconds between image GCs (default 300)")
    p.add_argument("--agent-port", type=int, default=DEFAULT_AGENT_PORT,
                   help=f"native: port of the logs/exec API on the node IP, for the API server (default {DEFAULT_AGENT_PORT}; 0 any)")
    p.add_argument("--container-log-max-size", type=int, default=DEFAULT_MAX_SIZE,
                   help=f"native: bytes at which a container's log is rotated (default {DEFAULT_MAX_SIZE})")
    p.add_argument("--container-log-max-files", type=int, default=DEFAULT_MAX_FILES,
                   help=f"native: log files kept per container, the current one included (default {DEFAULT_MAX_FILES})")
    p.add_argument("--runtime-endpoint", default=None, metavar="unix:///PATH",
                   help="native: use this runtime service (see `nodeagent runtime-service`) instead of serving "
                        "the native runtime in this process on DATA_DIR/runtime.sock")
    p.add_argument("--network-mode", choices=NETWORK_MODES, default=None,
                   help="native: pod networking: host-gw (the default), vxlan, or none (loopback-only pods)")
    p.add_argument("--cluster-cidr", default=DEFAULT_CLUSTER_CIDR,
                   help=f"native: the pod network of the whole cluster (default {DEFAULT_CLUSTER_CIDR}); "
                        "pod traffic leaving it is masqueraded")
    p.add_argument("--cluster-domain", default="cluster.local", help="native: the cluster DNS domain")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


async def run_fake(args: argparse.Namespace) -> int:
    labels = dict(item.split("=", 1) for item in args.label)
    configs = hollow_configs(args.node_name, args.count, node_ip=args.node_ip or "10.128.0.1", cpu=args.cpu or "4",
                             memory=args.memory or "16Gi", pods=args.pods, labels=labels)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with ApiClient(load_kubeconfig(args.kubeconfig)) as client:
        agent = HollowNodes(client, configs, lease_interval=args.lease_interval,
                            status_interval=args.status_interval, stop_delay=args.stop_delay,
                            run_pods=not args.no_pods)
        task = asyncio.create_task(agent.run(stop))
        registered = asyncio.create_task(agent.registered.wait())
        done, _ = await asyncio.wait({task, registered}, return_when=asyncio.FIRST_COMPLETED)
        if registered in done:
            print(f"nodeagent: {len(configs)} hollow node(s) registered ({configs[0].name}"
                  f"{' .. ' + configs[-1].name if len(configs) > 1 else ''})", flush=True)
        else:
            registered.cancel()
        await task
    return 0


async def run_native(args: argparse.Namespace) -> int:
    config = AgentConfig(
        node_name=args.node_name, node_ip=args.node_ip or "127.0.0.1", data_dir=args.data_dir, cpu=args.cpu,
        memory=args.memory, pods=args.pods, labels=dict(item.split("=", 1) for item in args.label),
        lease_interval=args.lease_interval, status_interval=args.status_interval,
        relist_interval=args.relist_interval, backoff_base=args.backoff_base, backoff_max=args.backoff_max,
        busybox_image=args.busybox_image, network_mode=args.network_mode, cluster_cidr=args.cluster_cidr,
        agent_port=args.agent_port, log_policy=RotationPolicy(args.container_log_max_size, args.container_log_max_files),
        cluster_domain=args.cluster_domain, runtime_endpoint=args.runtime_endpoint, pod_pids_limit=args.pod_max_pids, image_gc_period=args.image_gc_period,
        image_gc=ImageGCPolicy(args.image_gc_high_threshold, args.image_gc_low_threshold, args.image_minimum_gc_age),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with ApiClient(load_kubeconfig(args.kubeconfig)) as client:
        agent = NodeAgent(client, config)
        task = asyncio.create_task(agent.run(stop))
        registered = asyncio.create_task(agent.registered.wait())
        done, _ = await asyncio.wait({task, registered}, return_when=asyncio.FIRST_COMPLETED)
        if registered in done:
            print(f"nodeagent: node {config.node_name} registered (native runtime)", flush=True)
        else:
            registered.cancel()
        await task
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["join"]:
        from nodeagent import bootstrap  # the join needs none of the agent's machinery

        sys.exit(bootstrap.main(argv[1:]))
    if argv[:1] == ["runtime-service"]:
        from nodeagent.cri import main as runtime_service

        sys.exit(runtime_service.main(argv[1:]))
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("grpc").setLevel(logging.INFO)  # its debug log says a line per runtime call
    if args.network_mode is None:
        # Real nodes get pod networking by default; hollow nodes have nothing to wire.
        args.network_mode = MODE_HOST_GW if args.runtime == "native" else MODE_NONE
    if args.runtime == "native":
        if os.geteuid() != 0:
            print("nodeagent: the native runtime needs root (namespaces, mounts, cgroups)", file=sys.stderr)
            sys.exit(1)
        if args.count is not None:
            print("nodeagent: --count is for the fake runtime", file=sys.stderr)
            sys.exit(2)
    elif args.network_mode != MODE_NONE:
        print("nodeagent: --network-mode is for the native runtime", file=sys.stderr)
        sys.exit(2)
    if args.runtime_endpoint is not None:
        if args.runtime != "native":
            print("nodeagent: --runtime-endpoint is for the native runtime", file=sys.stderr)
            sys.exit(2)
        try:
            parse_endpoint(args.runtime_endpoint)
        except ValueError as e:
            print(f"nodeagent: {e}", file=sys.stderr)
            sys.exit(2)
    if args.count is not None and args.count < 1:
        print("nodeagent: --count must be at least 1", file=sys.stderr)
        sys.exit(2)
    if any("=" not in item for item in args.label):
        print("nodeagent: --label takes KEY=VALUE", file=sys.stderr)
        sys.exit(2)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        code = asyncio.run(run_native(args) if args.runtime == "native" else run_fake(args))
    except KeyboardInterrupt:
        code = 130
    except (KubeconfigError, ApiError, ApiConnectionError, OSError, ValueError, ImageError) as e:
        print(f"nodeagent: {e}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
