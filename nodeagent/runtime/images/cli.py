"""A small CLI over the image service, for humans and labs.

    python -m nodeagent.runtime.images.cli --root DIR build-busybox
    python -m nodeagent.runtime.images.cli --root DIR pull [--insecure-registry HOST] [--creds USER:PASS] REF
    python -m nodeagent.runtime.images.cli --root DIR import FILE [--name REF]
    python -m nodeagent.runtime.images.cli --root DIR export REF DIR
    python -m nodeagent.runtime.images.cli --root DIR list | inspect REF | rm REF | gc

Failures print one line (the error's message) and exit 1; never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

from .importer import ArchiveError
from .manifest import ManifestError
from .reference import familiar, parse
from .registry import Credentials
from .service import ImageError, ImageInfo, ImageService
from .store import DigestMismatch
from .unpack import LayerError

DEFAULT_ROOT = Path("/var/lib/kube-lite/images")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.1f}{unit}" if unit != "B" else f"{size}B"
        value /= 1000
    return f"{size}B"


def _print_table(infos: list[ImageInfo]) -> None:
    rows = [("IMAGE", "TAG", "IMAGE ID", "SIZE")]
    for info in infos:
        short = info.id.removeprefix("sha256:")[:13]
        refs = info.repo_tags or [f"{d.split('@')[0]}:<none>" for d in info.repo_digests[:1]] or ["<none>:<none>"]
        for ref in refs:
            name, _, tag = familiar(ref).rpartition(":") if not ref.startswith("<none>") else ("<none>", "", "<none>")
            rows.append((name, tag, short, _human(info.size)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _creds(args: argparse.Namespace) -> dict[str, Credentials]:
    if not getattr(args, "creds", None):
        return {}
    user, sep, password = args.creds.partition(":")
    if not sep:
        raise SystemExit("--creds must be USER:PASSWORD")
    return {parse(args.ref).api_host: Credentials(user, password)}


async def _run(args: argparse.Namespace) -> int:
    service = ImageService(args.root, insecure_registries=args.insecure_registry, credentials=_creds(args))
    try:
        if args.command == "build-busybox":
            _print_table([await service.build_busybox(args.name)])
        elif args.command == "pull":
            info = await service.pull(args.ref)
            print(f"Image is up to date for {info.id}")
        elif args.command == "import":
            _print_table(await service.import_archive(Path(args.file), args.name))
        elif args.command == "export":
            service.export_oci(args.ref, Path(args.dir), args.ref_name)
        elif args.command == "list":
            _print_table(service.list())
        elif args.command == "inspect":
            found = service.status(args.ref)
            if found is None:
                print(f"image {args.ref!r} not found", file=sys.stderr)
                return 1
            print(json.dumps(asdict(found), indent=2, default=str))
        elif args.command == "rm":
            service.remove(args.ref)
            print(f"Untagged: {args.ref}")
        elif args.command == "gc":
            result = service.gc()
            print(f"removed {len(result.images_removed)} images, {result.blobs_removed} blobs, {result.layers_removed} layers")
    finally:
        await service.close()
    return 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="kube-lite-images", description="kube-lite node image store")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"image store directory (default {DEFAULT_ROOT})")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="use plain http for this registry (loopback registries always may)")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build-busybox", help="build busybox:latest from the host's /bin/busybox")
    b.add_argument("--name", default="busybox:latest")
    pull = sub.add_parser("pull", help="pull an image from a registry")
    pull.add_argument("ref")
    pull.add_argument("--creds", metavar="USER:PASSWORD")
    imp = sub.add_parser("import", help="import an OCI layout (dir or tar) or a docker save tar")
    imp.add_argument("file")
    imp.add_argument("--name", help="tag the imported image as this reference")
    exp = sub.add_parser("export", help="write an image as an OCI layout directory")
    exp.add_argument("ref")
    exp.add_argument("dir")
    exp.add_argument("--ref-name", help="org.opencontainers.image.ref.name to record (e.g. busybox:latest)")
    sub.add_parser("list", help="list images")
    ins = sub.add_parser("inspect", help="show one image as JSON")
    ins.add_argument("ref")
    rm = sub.add_parser("rm", help="remove a tag, digest reference, or (by id) a whole image")
    rm.add_argument("ref")
    sub.add_parser("gc", help="delete untagged images and unreferenced blobs and layers")
    args = p.parse_args(argv)
    try:
        code = asyncio.run(_run(args))
    except (ImageError, ArchiveError, ManifestError, LayerError, DigestMismatch, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
