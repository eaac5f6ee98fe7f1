"""``controlplane``: run the API server (and, later, controllers and scheduler) in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from controlplane.server import ControlPlane, Options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="controlplane", description="kube-lite control plane")
    p.add_argument("component", nargs="?", default="all", choices=["all", "apiserver"],
                   help="what to run (default: everything)")
    p.add_argument("--data-dir", required=True, type=Path, help="state directory (PKI, tokens, embedded etcd)")
    p.add_argument("--bind-address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=6443, help="HTTPS port (default 6443)")
    p.add_argument("--advertise-address", default=None,
                   help="address clients use to reach this server (default: the bind address)")
    p.add_argument("--etcd-servers", default=None,
                   help="comma-separated etcd client URLs; without it an embedded etcd is started")
    p.add_argument("--tls-san", action="append", default=[], help="extra name or IP for the serving certificate")
    p.add_argument("--compaction-interval", type=float, default=300.0, help="seconds between etcd compactions")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


async def run(opts: Options) -> int:
    cp = ControlPlane(opts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await cp.start()
        print(f"kube-lite control plane ready at {cp.url}; kubeconfig: {cp.kubeconfig_path}", flush=True)
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(cp.failed.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        return 1 if cp.failed.is_set() else 0
    finally:
        await cp.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    opts = Options(
        data_dir=args.data_dir,
        bind_address=args.bind_address,
        port=args.port,
        advertise_address=args.advertise_address,
        etcd_servers=[s.strip() for s in args.etcd_servers.split(",") if s.strip()] if args.etcd_servers else None,
        tls_sans=args.tls_san,
        compaction_interval=args.compaction_interval,
    )
    try:
        code = asyncio.run(run(opts))
    except KeyboardInterrupt:
        code = 130
    except Exception as e:  # one readable line, never a traceback
        logging.getLogger("controlplane").debug("fatal", exc_info=True)
        print(f"controlplane: {type(e).__name__}: {e}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
