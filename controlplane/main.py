"""``controlplane``: run the API server, controllers and scheduler (together or one at a time)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from apimachinery.client.rest import ApiClient
from controlplane.components import ComponentOptions, in_process_components, run_standalone
from controlplane.controllers.context import ControllerConfig
from controlplane.registry.portallocator import parse_port_range
from controlplane.server import ControlPlane, Options

log = logging.getLogger("controlplane")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="controlplane", description="kube-lite control plane")
    p.add_argument("component", nargs="?", default="all", choices=["all", "apiserver", "controllers", "scheduler"],
                   help="what to run (default: API server, controllers and scheduler in one process)")
    p.add_argument("--data-dir", type=Path, help="state directory (PKI, tokens, embedded etcd); apiserver/all")
    p.add_argument("--kubeconfig", default=None, help="API server credentials for controllers/scheduler run alone")
    p.add_argument("--bind-address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=6443, help="HTTPS port (default 6443)")
    p.add_argument("--advertise-address", default=None,
                   help="address clients use to reach this server (default: the bind address)")
    p.add_argument("--etcd-servers", default=None,
                   help="comma-separated etcd client URLs; without it an embedded etcd is started")
    p.add_argument("--tls-san", action="append", default=[], help="extra name or IP for the serving certificate")
    p.add_argument("--compaction-interval", type=float, default=300.0, help="seconds between etcd compactions")
    p.add_argument("--leader-elect", default="true", choices=["true", "false"],
                   help="take a Lease before acting, so only one copy of a component acts (default true)")
    p.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=float, default=2.0)
    p.add_argument("--leader-elect-identity", default=None, help="this candidate's name (default: hostname_uuid)")
    p.add_argument("--controllers", default="*", help="comma-separated controllers to run ('*' = all, '-name' = not)")
    p.add_argument("--node-monitor-grace-period", type=float, default=40.0,
                   help="seconds without a heartbeat before a node is Ready=Unknown")
    p.add_argument("--default-toleration-seconds", type=int, default=300,
                   help="seconds pods stay on a not-ready/unreachable node when their toleration sets none")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16", help="pod network; each node gets a slice")
    p.add_argument("--node-cidr-mask-size", type=int, default=24)
    p.add_argument("--service-cidr", default="10.96.0.0/12",
                   help="IPv4 range Service cluster IPs are allocated from (default 10.96.0.0/12)")
    p.add_argument("--service-node-port-range", default="30000-32767",
                   help="port range NodePort/LoadBalancer Services get node ports from (default 30000-32767)")
    p.add_argument("--cluster-signing-cert-file", default=None,
                   help="CA certificate the CSR signer issues with (default: DATA_DIR/pki/ca.crt)")
    p.add_argument("--cluster-signing-key-file", default=None,
                   help="CA key the CSR signer issues with (default: DATA_DIR/pki/ca.key)")
    p.add_argument("--cluster-signing-duration", type=float, default=365 * 24 * 3600.0,
                   help="longest validity, in seconds, of certificates the CSR signer issues (default one year)")
    p.add_argument("--pod-security-default", choices=("privileged", "baseline", "restricted"), default="privileged",
                   help="Pod Security Standards level of namespaces without pod-security.kubernetes.io labels")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = p.parse_args(argv)
    if args.component in ("all", "apiserver") and args.data_dir is None:
        p.error("--data-dir is required for the API server")

    try:
        net = ipaddress.IPv4Network(args.service_cidr, strict=False)
    except ValueError as e:
        p.error(f"--service-cidr: {e}")
    if net.num_addresses < 4:
        p.error(f"--service-cidr: {args.service_cidr} is too small")
    try:
        parse_port_range(args.service_node_port_range)
    except ValueError:
        p.error(f"--service-node-port-range: invalid port range {args.service_node_port_range!r}")
    return args


def component_options(args: argparse.Namespace) -> ComponentOptions:
    return ComponentOptions(
        kubeconfig=args.kubeconfig,
        leader_elect=args.leader_elect == "true",
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
        **({"identity": args.leader_elect_identity} if args.leader_elect_identity else {}),
        controllers=ControllerConfig(
            node_monitor_grace_period=args.node_monitor_grace_period,
            default_toleration_seconds=args.default_toleration_seconds,
            cluster_cidr=args.cluster_cidr,
            node_cidr_mask_size=args.node_cidr_mask_size,
            enabled=[c.strip() for c in args.controllers.split(",") if c.strip()],
            cluster_signing_cert_file=args.cluster_signing_cert_file or _in_data_dir(args, "pki/ca.crt"),
            cluster_signing_key_file=args.cluster_signing_key_file or _in_data_dir(args, "pki/ca.key"),
            cluster_signing_duration=args.cluster_signing_duration,
        ),
    )


def _in_data_dir(args: argparse.Namespace, rel: str) -> str | None:
    return str(args.data_dir / rel) if args.data_dir is not None else None


async def _keep_running(name: str, start: Callable[[], Coroutine[Any, Any, None]], stop: asyncio.Event) -> None:
    """In the all-in-one process a component that fails (e.g. lost its Lease) rejoins the
    election after a pause instead of taking the API server down with it."""
    while not stop.is_set():
        try:
            await start()
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.error("%s stopped: %s; restarting in 2s", name, e)
            await asyncio.sleep(2)


async def run(opts: Options, component: str, copts: ComponentOptions) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if component in ("controllers", "scheduler"):
        work = asyncio.create_task(run_standalone(component, copts))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait([work, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        work.cancel()
        try:
            await work
        except asyncio.CancelledError:
            return 0
        return 0
    cp = ControlPlane(opts)
    tasks: list[asyncio.Task[None]] = []
    clients: list[ApiClient] = []
    try:
        await cp.start()
        if component == "all":
            # Each component connects with its own credentials, never the admin's.
            for name, kubeconfig in (("controller-manager", "controllers.kubeconfig"),
                                     ("scheduler", "scheduler.kubeconfig")):
                client = ApiClient.from_kubeconfig(cp.component_kubeconfigs[kubeconfig])
                clients.append(client)
                start = in_process_components(client, copts)[name]
                tasks.append(asyncio.create_task(_keep_running(name, start, stop), name=name))
        print(f"kube-lite control plane ready at {cp.url}; kubeconfig: {cp.kubeconfig_path}", flush=True)
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(cp.failed.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        return 1 if cp.failed.is_set() else 0
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for client in clients:
            await client.close()
        await cp.stop()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["node-credentials"], ["certs"]):
        from controlplane import credentials

        sys.exit(credentials.main(argv))
    if argv[:1] == ["token"]:
        from controlplane import tokencmd

        sys.exit(tokencmd.main(argv[1:]))
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    opts = Options(
        data_dir=args.data_dir or Path("."),
        bind_address=args.bind_address,
        port=args.port,
        advertise_address=args.advertise_address,
        etcd_servers=[s.strip() for s in args.etcd_servers.split(",") if s.strip()] if args.etcd_servers else None,
        tls_sans=args.tls_san,
        compaction_interval=args.compaction_interval,
        default_toleration_seconds=args.default_toleration_seconds,
        service_cidr=args.service_cidr,
        service_node_port_range=args.service_node_port_range,
        pod_security_default=args.pod_security_default,
    )
    try:
        code = asyncio.run(run(opts, args.component, component_options(args)))
    except KeyboardInterrupt:
        code = 130
    except Exception as e:  # one readable line, never a traceback
        logging.getLogger("controlplane").debug("fatal", exc_info=True)
        print(f"controlplane: {type(e).__name__}: {e}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
