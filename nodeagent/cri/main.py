"""``nodeagent runtime-service``: the native runtime service alone, in the foreground.

    nodeagent runtime-service --data-dir /var/lib/kube-lite/n1 --node-name n1 [--busybox-image]
    nodeagent --runtime-endpoint unix:///var/lib/kube-lite/n1/runtime.sock --data-dir /var/lib/kube-lite/n1 ...

It keeps the same layout under the data dir as an agent serving its runtime in-process
(``runtime/``, ``images/``, ``runtime.sock``), so either can take over from the other; the
containers live on when it stops (they are the spawner's).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from nodeagent.cri.server import SOCKET_NAME, ensure_busybox, native_server, parse_endpoint, runtime_dirs
from nodeagent.runtime.container import Runtime
from nodeagent.runtime.images import ImageError, ImageService


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="nodeagent runtime-service", description="kube-lite runtime service (native)")
    p.add_argument("--data-dir", required=True, type=Path, help="the node's state directory")
    p.add_argument("--node-name", required=True, help="node name (names the node's cgroup)")
    p.add_argument("--listen", default=None, help="unix:///path to serve on (default DATA_DIR/runtime.sock)")
    p.add_argument("--busybox-image", action="store_true",
                   help="build busybox:latest from the host's busybox-static at start if missing")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    runtime_dir, images_dir = runtime_dirs(args.data_dir)
    socket_path: Path = args.socket
    runtime = await asyncio.to_thread(Runtime, runtime_dir, args.node_name)
    images = ImageService(images_dir)
    server = native_server(socket_path, runtime, images)
    try:
        if args.busybox_image:
            await ensure_busybox(images)
        await server.start()
        print(f"nodeagent runtime-service: serving unix://{socket_path}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await server.stop()
        await images.close()
        runtime.close()  # the spawner and the containers live on
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("grpc").setLevel(logging.INFO)  # its debug log says a line per runtime call
    if os.geteuid() != 0:
        print("nodeagent runtime-service: the native runtime needs root (namespaces, mounts, cgroups)", file=sys.stderr)
        return 1
    try:
        args.socket = parse_endpoint(args.listen) if args.listen else args.data_dir / SOCKET_NAME
    except ValueError as e:
        print(f"nodeagent runtime-service: {e}", file=sys.stderr)
        return 2
    args.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, ImageError) as e:
        print(f"nodeagent runtime-service: {e}", file=sys.stderr)
        return 1
