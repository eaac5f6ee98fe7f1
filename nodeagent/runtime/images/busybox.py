"""A small real image built from the host's static busybox, for offline demos, labs and tests.

The image has one layer: ``/bin/busybox`` (Debian's ``busybox-static``), a symlink for each applet
at the path busybox itself reports (``busybox --list-full``: ``bin/sh``, ``usr/bin/awk``,
``sbin/ifconfig`` ...), ``/etc/passwd`` and ``/etc/group`` with root and nobody, and the empty
directories a container runtime mounts over (``/proc``, ``/sys``, ``/dev``, ``/tmp``...). The tar is
built deterministically (fixed times, owners and order, gzip without a timestamp), so the same
busybox binary always yields the same layer, config and manifest digests: building twice is a
no-op, and two nodes built from the same package agree on the image id.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from . import manifest as mf
from .store import sha256_digest

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_EPOCH = 0
_CREATED = "1970-01-01T00:00:00Z"
_DIRS = {  # path -> mode
    "bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "etc": 0o755,
    "root": 0o700, "home": 0o755, "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755,
    "tmp": 0o1777, "proc": 0o555, "sys": 0o555, "dev": 0o755,
}
_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
_GROUP = "root:x:0:\nnobody:x:65534:\n"


@dataclass(frozen=True)
class BuiltImage:
    manifest: bytes
    config: bytes
    layer: bytes  # gzip-compressed tar
    diff_id: str

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.config)

    @property
    def layer_digest(self) -> str:
        return sha256_digest(self.layer)

    @property
    def manifest_digest(self) -> str:
        return sha256_digest(self.manifest)


def applet_paths(busybox: Path) -> list[str]:
    """Where each applet lives, relative to /, as busybox reports it."""
    try:
        out = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True, text=True).stdout
        paths = [p.strip().lstrip("/") for p in out.splitlines() if p.strip()]
    except subprocess.CalledProcessError:  # built without --list-full: everything in /bin
        out = subprocess.run([str(busybox), "--list"], check=True, capture_output=True, text=True).stdout
        paths = [f"bin/{p.strip()}" for p in out.splitlines() if p.strip()]
    return sorted({p for p in paths if p != "bin/busybox" and ".." not in p.split("/")})


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = kind, mode, _EPOCH, 0, 0, "root", "root"
    return ti


def _layer_tar(busybox: Path) -> bytes:
    buf = io.BytesIO()
    applets = applet_paths(busybox)
    dirs = dict(_DIRS)
    for p in applets:
        parent = posixpath.dirname(p)
        while parent and parent not in dirs:
            dirs[parent] = 0o755
            parent = posixpath.dirname(parent)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            tar.addfile(_info(d, tarfile.DIRTYPE, dirs[d]))
        data = busybox.read_bytes()
        ti = _info("bin/busybox", tarfile.REGTYPE, 0o755)
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
        for p in applets:
            ti = _info(p, tarfile.SYMTYPE, 0o777)
            ti.linkname = posixpath.relpath("bin/busybox", posixpath.dirname(p) or ".")
            tar.addfile(ti)
        for name, text in (("etc/passwd", _PASSWD), ("etc/group", _GROUP)):
            raw = text.encode()
            ti = _info(name, tarfile.REGTYPE, 0o644)
            ti.size = len(raw)
            tar.addfile(ti, io.BytesIO(raw))
    return buf.getvalue()


def _version(busybox: Path) -> str:
    out = subprocess.run([str(busybox)], capture_output=True, text=True).stdout
    first = out.splitlines()[0] if out else "BusyBox"
    return first.strip()


def build_busybox_image(busybox: Path = Path("/bin/busybox")) -> BuiltImage:
    busybox = Path(os.path.realpath(busybox))
    tar = _layer_tar(busybox)
    diff_id = f"sha256:{hashlib.sha256(tar).hexdigest()}"
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, filename="") as f:
        f.write(tar)
    layer = gz.getvalue()
    platform = mf.host_platform()
    config_doc = {
        "architecture": platform.architecture,
        "os": "linux",
        "created": _CREATED,
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": _CREATED, "created_by": f"kube-lite build-busybox from {busybox} ({_version(busybox)})"}],
    }
    if platform.variant:
        config_doc["variant"] = platform.variant
    config = json.dumps(config_doc, sort_keys=True, separators=(",", ":")).encode()
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": mf.OCI_MANIFEST,
        "config": {"mediaType": mf.OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": mf.OCI_LAYER_GZIP, "digest": sha256_digest(layer), "size": len(layer)}],
    }
    manifest = json.dumps(manifest_doc, indent=2).encode()
    return BuiltImage(manifest=manifest, config=config, layer=layer, diff_id=diff_id)
