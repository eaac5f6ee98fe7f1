"""Applying layer tars: contents and metadata, whiteouts, and every way out of the layer refused.

Layers are built here with tarfile. Escape attempts run against a destination that sits next to
an ``outside`` directory holding a victim file; each must raise UnsafeLayerError naming the
entry and leave ``outside`` exactly as it was. Ownership, device nodes, overlay whiteouts and
trusted xattrs need root (CI runs as root); those tests skip otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nodeagent.runtime.images.unpack import LayerError, UnsafeLayerError, unpack_layer

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod, trusted xattrs)")


@dataclass
class E:
    """One tar entry: kind is file, dir, sym, link, fifo, chr or blk."""

    kind: str
    name: str
    data: bytes = b""
    target: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    dev: tuple[int, int] = (0, 0)


_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE,
          "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}


def layer(*entries: E, gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            ti = tarfile.TarInfo(e.name)
            ti.type = _TYPES[e.kind]
            ti.mode, ti.uid, ti.gid, ti.mtime = e.mode, e.uid, e.gid, e.mtime
            ti.linkname = e.target
            ti.devmajor, ti.devminor = e.dev
            if e.kind == "file":
                ti.size = len(e.data)
                tar.addfile(ti, io.BytesIO(e.data))
            else:
                tar.addfile(ti)
    raw = buf.getvalue()
    return gzip.compress(raw) if gz else raw


def apply(data: bytes, dest: Path, whiteouts: str = "apply") -> tuple[str, list[str]]:
    result = unpack_layer(io.BytesIO(data), dest, whiteouts=whiteouts)  # type: ignore[arg-type]
    return result.diff_id, result.skipped


def snapshot(path: Path) -> dict[str, tuple[int, bytes | str]]:
    out: dict[str, tuple[int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            content: bytes | str = ""
            if stat.S_ISREG(st.st_mode):
                content = p.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(p)
            out[str(p.relative_to(path))] = (st.st_mode, content)
    return out


@pytest.fixture
def base() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="kube-lite-unpack-"))
    try:
        (d / "dest").mkdir()
        (d / "outside").mkdir()
        (d / "outside" / "victim").write_bytes(b"precious")
        (d / "outside" / "sub").mkdir()
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def dest(base: Path) -> Path:
    return base / "dest"


# -- contents and metadata -----------------------------------------------------------------------


def test_contents_modes_links_and_diff_id(dest: Path) -> None:
    data = layer(
        E("dir", "etc", mode=0o755),
        E("file", "etc/hosts", b"127.0.0.1 localhost\n", mode=0o640),
        E("file", "usr/bin/tool", b"#!/bin/sh\n", mode=0o4755),  # parents missing from the tar
        E("sym", "usr/bin/alias", target="tool"),
        E("sym", "abs", target="/etc/hosts"),  # creating a symlink to anywhere is fine; writing through it is not
        E("link", "usr/bin/hard", target="usr/bin/tool"),
        E("dir", "ro", mode=0o555),
        E("file", "ro/inside", b"x", mode=0o444),
        E("fifo", "run/pipe", mode=0o600),
        E("file", "./dot/prefixed", b"d"),
    )
    diff_id, skipped = apply(data, dest)
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert skipped == []
    assert (dest / "etc/hosts").read_bytes() == b"127.0.0.1 localhost\n"
    assert stat.S_IMODE(os.lstat(dest / "etc/hosts").st_mode) == 0o640
    assert stat.S_IMODE(os.lstat(dest / "usr/bin/tool").st_mode) == 0o4755
    assert os.readlink(dest / "usr/bin/alias") == "tool"
    assert os.readlink(dest / "abs") == "/etc/hosts"
    assert os.lstat(dest / "usr/bin/hard").st_ino == os.lstat(dest / "usr/bin/tool").st_ino
    assert stat.S_IMODE(os.lstat(dest / "ro").st_mode) == 0o555
    assert (dest / "ro/inside").read_bytes() == b"x"
    assert stat.S_ISFIFO(os.lstat(dest / "run/pipe").st_mode)
    assert (dest / "dot/prefixed").read_bytes() == b"d"
    assert os.lstat(dest / "etc/hosts").st_mtime == 1_600_000_000
    assert os.lstat(dest / "etc").st_mtime == 1_600_000_000  # set after its children were written


def test_gzip_layer_has_the_diff_id_of_its_tar(base: Path) -> None:
    entries = (E("file", "a", b"hello"),)
    plain_dir, gz_dir = base / "p", base / "g"
    plain_dir.mkdir()
    gz_dir.mkdir()
    assert apply(layer(*entries), plain_dir)[0] == apply(layer(*entries, gz=True), gz_dir)[0]
    assert (gz_dir / "a").read_bytes() == b"hello"


@root_only
def test_ownership_and_device_nodes(dest: Path) -> None:
    apply(layer(
        E("dir", "home/u", mode=0o750, uid=1000, gid=1001),
        E("file", "home/u/f", b"x", mode=0o2755, uid=1000, gid=1001),
        E("sym", "home/u/l", target="f", uid=1000, gid=1001),
        E("chr", "dev/null", mode=0o666, dev=(1, 3)),
        E("blk", "dev/loop9", mode=0o660, dev=(7, 9)),
    ), dest)
    st = os.lstat(dest / "home/u/f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o2755)  # setgid survives chown
    assert (os.lstat(dest / "home/u").st_uid, os.lstat(dest / "home/u/l").st_uid) == (1000, 1000)
    null = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_ISBLK(os.lstat(dest / "dev/loop9").st_mode)


def test_later_entries_replace_earlier_ones(base: Path, dest: Path) -> None:
    apply(layer(
        E("file", "x", b"old"),
        E("sym", "y", target="../outside/victim"),
        E("dir", "z"),
        E("file", "z/child", b"c"),
    ), dest)
    apply(layer(
        E("dir", "x"),
        E("file", "y", b"new"),  # replaces the symlink itself, never writes through it
        E("file", "z", b"now a file"),
    ), dest)
    assert (dest / "x").is_dir()
    assert not (dest / "y").is_symlink() and (dest / "y").read_bytes() == b"new"
    assert (dest / "z").read_bytes() == b"now a file"
    assert (base / "outside/victim").read_bytes() == b"precious"


def test_symlinked_parent_inside_the_layer_is_followed(dest: Path) -> None:
    apply(layer(E("dir", "usr/lib"), E("sym", "lib", target="usr/lib"), E("file", "lib/libc.so", b"elf")), dest)
    assert (dest / "usr/lib/libc.so").read_bytes() == b"elf"
    assert os.readlink(dest / "lib") == "usr/lib"


# -- whiteouts -----------------------------------------------------------------------------------


def test_apply_whiteouts_and_opaque_dirs(dest: Path) -> None:
    apply(layer(
        E("file", "etc/keep", b"k"),
        E("file", "etc/gone", b"g"),
        E("dir", "var/cache"),
        E("file", "var/cache/a", b"a"),
        E("dir", "var/cache/sub"),
        E("file", "var/cache/sub/b", b"b"),
        E("dir", "data"),
        E("file", "data/old", b"o"),
    ), dest)
    apply(layer(
        E("file", "etc/.wh.gone"),
        E("file", "etc/.wh.never-existed"),
        E("file", "var/cache/new-before", b"n"),  # same layer: survives the opaque marker after it
        E("file", "var/cache/.wh..wh..opq"),
        E("file", "var/cache/new-after", b"n"),
        E("file", "data/.wh..wh..opq"),  # opaque with nothing new: the directory stays, empty
    ), dest)
    assert sorted(os.listdir(dest / "etc")) == ["keep"]
    assert sorted(os.listdir(dest / "var/cache")) == ["new-after", "new-before"]
    assert (dest / "data").is_dir() and os.listdir(dest / "data") == []


@root_only
def test_overlay_whiteouts(dest: Path) -> None:
    apply(layer(
        E("file", "etc/.wh.passwd"),
        E("dir", "var/cache"),
        E("file", "var/cache/.wh..wh..opq"),
        E("file", "var/cache/fresh", b"f"),
    ), dest, whiteouts="overlay")
    wh = os.lstat(dest / "etc/passwd")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == os.makedev(0, 0)
    assert os.getxattr(dest / "var/cache", "trusted.overlay.opaque") == b"y"
    assert (dest / "var/cache/fresh").read_bytes() == b"f"
    assert not (dest / "var/cache/.wh..wh..opq").exists()


# -- refusals ------------------------------------------------------------------------------------


ESCAPES: list[tuple[str, list[E], str, str]] = [
    ("absolute path", [E("file", "/etc/evil", b"x")], "/etc/evil", "absolute path"),
    ("dotdot", [E("file", "../outside/new", b"x")], "../outside/new", "'..' component"),
    ("inner dotdot", [E("file", "a/../../outside/new", b"x")], "a/../../outside/new", "'..' component"),
    ("dotdot dir", [E("dir", "a/../..")], "a/../..", "'..' component"),
    ("absolute symlink parent",
     [E("sym", "evil", target="{outside}"), E("file", "evil/new", b"x")], "evil/new", "absolute path"),
    ("relative symlink parent",
     [E("sym", "evil", target="../outside"), E("file", "evil/victim", b"pwned")], "evil/victim", "outside the layer"),
    ("symlink chain",
     [E("dir", "d"), E("sym", "d/a", target="b"), E("sym", "d/b", target="../../outside"), E("file", "d/a/sub/new", b"x")],
     "d/a/sub/new", "outside the layer"),
    ("symlink loop", [E("sym", "l1", target="l2"), E("sym", "l2", target="l1"), E("file", "l1/x", b"x")],
     "l1/x", "too many levels"),
    ("whiteout through symlink",
     [E("sym", "evil", target="../outside"), E("file", "evil/.wh.victim")], "evil/.wh.victim", "outside the layer"),
    ("opaque through symlink",
     [E("sym", "evil", target="../outside"), E("file", "evil/.wh..wh..opq")], "evil/.wh..wh..opq", "outside the layer"),
    ("directory through symlink",
     [E("sym", "evil", target="../outside"), E("dir", "evil/sub/deeper")], "evil/sub/deeper", "outside the layer"),
    ("hard link absolute", [E("link", "h", target="{outside}/victim")], "h", "absolute hard link target"),
    ("hard link dotdot", [E("link", "h", target="../outside/victim")], "h", "'..' component"),
    ("hard link missing", [E("link", "h", target="nowhere")], "h", "does not exist"),
    ("hard link through symlink",
     [E("sym", "evil", target="../outside"), E("link", "h", target="evil/victim")], "h", "outside the layer"),
    ("hard link to directory", [E("dir", "d"), E("link", "h", target="d")], "h", "is a directory"),
    ("file as parent", [E("file", "f", b"x"), E("file", "f/child", b"y")], "f/child", "not a directory"),
    ("malformed whiteout", [E("file", "a/.wh..")], "a/.wh..", "malformed whiteout"),
]


@pytest.mark.parametrize(("entries", "entry", "reason"), [e[1:] for e in ESCAPES], ids=[e[0] for e in ESCAPES])
@pytest.mark.parametrize("whiteouts", ["apply", "overlay"])
def test_escapes_are_refused(base: Path, dest: Path, entries: list[E], entry: str, reason: str, whiteouts: str) -> None:
    outside = str(base / "outside")
    entries = [E(e.kind, e.name, e.data, e.target.replace("{outside}", outside), e.mode) for e in entries]
    before = snapshot(base / "outside")
    with pytest.raises(UnsafeLayerError) as info:
        apply(layer(*entries), dest, whiteouts=whiteouts)
    assert info.value.entry == entry
    assert repr(entry) in str(info.value)
    assert reason in str(info.value)
    assert snapshot(base / "outside") == before
    assert not (base / "etc").exists() and not (base / "new").exists()


def test_refusal_stops_at_the_bad_entry(base: Path, dest: Path) -> None:
    with pytest.raises(UnsafeLayerError):
        apply(layer(E("file", "first", b"1"), E("file", "../bad", b"x"), E("file", "third", b"3")), dest)
    assert (dest / "first").exists() and not (dest / "third").exists()
    assert not (base / "bad").exists()


def test_hard_link_to_symlink_links_the_symlink_itself(base: Path, dest: Path) -> None:
    apply(layer(E("sym", "s", target="../outside/victim"), E("link", "h", target="s")), dest)
    assert os.readlink(dest / "h") == "../outside/victim"
    assert (base / "outside/victim").stat().st_nlink == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x28\xb5\x2f\xfd" + b"\0" * 100, "zstd"),
        (gzip.compress(b"not a tar at all" * 100)[:-20], "cannot apply layer"),
        (layer(E("file", "big", b"x" * 5000))[:1500], "cannot apply layer"),
    ],
    ids=["zstd", "truncated-gzip", "truncated-tar"],
)
def test_broken_layers(dest: Path, data: bytes, message: str) -> None:
    with pytest.raises(LayerError, match=message):
        apply(data, dest)


@root_only
def test_overlay_layers_mount_as_the_image_spec_says(base: Path) -> None:
    """Layers unpacked in overlay format, stacked by the kernel's overlayfs, show the merged image."""
    lower, upper, merged = base / "l1", base / "l2", base / "merged"
    for d in (lower, upper, merged):
        d.mkdir()
    apply(layer(
        E("file", "etc/a", b"a"), E("file", "etc/b", b"b"),
        E("file", "var/cache/old", b"o"), E("file", "var/cache/sub/older", b"o"),
    ), lower, whiteouts="overlay")
    apply(layer(
        E("file", "etc/.wh.a"),
        E("file", "var/cache/.wh..wh..opq"), E("file", "var/cache/new", b"n"),
    ), upper, whiteouts="overlay")
    # Read-only overlay of two lower layers; lowerdir lists the topmost first.
    mount = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={upper}:{lower}", str(merged)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"overlayfs not available here: {mount.stderr.strip()}")
    try:
        assert sorted(os.listdir(merged / "etc")) == ["b"]
        assert sorted(os.listdir(merged / "var/cache")) == ["new"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)


@root_only
def test_layers_cannot_plant_overlay_xattrs(dest: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        ti = tarfile.TarInfo("d")
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        ti.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/etc", "SCHILY.xattr.user.note": "kept"}
        tar.addfile(ti)
    _, skipped = apply(buf.getvalue(), dest, whiteouts="overlay")
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "d")
    assert skipped[0] == "d (xattr trusted.overlay.redirect)"
    if "user.note" in os.listxattr(dest / "d"):  # where the filesystem takes user xattrs at all
        assert os.getxattr(dest / "d", "user.note") == b"kept"
