"""Apply one image layer (a tar, plain or compressed) to a directory, refusing anything unsafe.

A layer is an untrusted archive. Each entry's path is checked before anything is written:
absolute paths and ``..`` components are refused, every parent directory is resolved component by
component inside the destination (a symlink laid down by an earlier entry is followed only if its
target stays inside; absolute or escaping targets are refused, never followed), hard links must
point at an existing non-directory inside the destination, and the final component is never
followed (files are created with ``O_EXCL|O_NOFOLLOW`` after removing what was there). A refusal
raises :class:`UnsafeLayerError` naming the entry; the caller throws the half-written directory
away (the store unpacks into a private temporary directory and renames it into place only on
success).

Whiteouts (OCI image spec, "Representing Changes") come in two flavours, chosen by ``whiteouts``:

- ``"overlay"``: the directory is one overlayfs lower layer. ``.wh.NAME`` becomes a 0/0 character
  device ``NAME`` and ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` on its directory, which is
  how overlayfs itself records deletions. Needs root (mknod, trusted xattrs).
- ``"apply"``: the directory is a flattened root filesystem (earlier layers already applied).
  ``.wh.NAME`` deletes ``NAME``; ``.wh..wh..opq`` deletes every child of its directory that this
  layer did not itself create.

While reading, the uncompressed stream is hashed: the result's ``diff_id`` is what the image
config's ``rootfs.diff_ids`` must list, so a caller can verify the layer it just applied.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import io
import logging
import lzma
import os
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Literal, cast

log = logging.getLogger(__name__)

WhiteoutMode = Literal["overlay", "apply"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
OVERLAY_XATTR_PREFIX = "trusted.overlay."
_MAX_SYMLINK_HOPS = 40
_CHUNK = 1 << 20


class LayerError(Exception):
    """The layer cannot be applied (bad archive, unsupported compression, failed operation)."""


class UnsafeLayerError(LayerError):
    """An entry would write outside the layer, or is otherwise refused; ``entry`` names it."""

    def __init__(self, entry: str, reason: str) -> None:
        super().__init__(f"layer entry {entry!r} refused: {reason}")
        self.entry = entry
        self.reason = reason


@dataclass
class UnpackResult:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar stream
    size: int  # bytes of uncompressed tar
    skipped: list[str] = field(default_factory=list)  # entries not representable here (e.g. devices without CAP_MKNOD)


class _HashingReader(io.RawIOBase):
    """Reads through ``raw`` and hashes every byte handed out."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buf))
        n = len(data)
        buf[:n] = data
        self.hash.update(data)
        self.size += n
        return n


def _decompressed(src: BinaryIO) -> IO[bytes]:
    """Wrap ``src`` in the right decompressor, chosen by magic bytes (layer media types lie sometimes)."""
    buffered = src if isinstance(src, io.BufferedReader) else io.BufferedReader(cast("io.RawIOBase", src))
    head = buffered.peek(6)[:6]
    if head[:2] == b"\x1f\x8b":
        return cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
    if head[:4] == b"\x28\xb5\x2f\xfd":
        raise LayerError("zstd-compressed layers are not supported")
    if head[:3] == b"BZh":
        return bz2.BZ2File(buffered)
    if head[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(buffered)
    return buffered


def _clean_parts(name: str, entry: str, what: str = "path") -> list[str]:
    if name.startswith("/"):
        raise UnsafeLayerError(entry, f"absolute {what} {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayerError(entry, f"{what} {name!r} has a '..' component")
    return parts


def _remove(path: Path) -> None:
    """Remove whatever is at ``path`` without following a symlink there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


class _Applier:
    def __init__(self, dest: Path, whiteouts: WhiteoutMode) -> None:
        self.root = dest
        self.whiteouts = whiteouts
        self.is_root = os.geteuid() == 0
        self.created: set[tuple[str, ...]] = set()
        self.dirs: list[tuple[Path, tarfile.TarInfo]] = []
        self.skipped: list[str] = []

    # -- path resolution -------------------------------------------------------------------------

    def resolve_dir(self, parts: list[str], entry: str, *, create: bool) -> list[str]:
        """Resolve ``parts`` (a directory) to components under the root, following only safe symlinks.

        Missing directories are created when ``create`` (a tar may omit parent entries).
        """
        resolved: list[str] = []
        todo = list(parts)
        hops = 0
        while todo:
            comp = todo.pop(0)
            if comp == "..":
                if not resolved:
                    raise UnsafeLayerError(entry, "a symlink in its path leads outside the layer")
                resolved.pop()
                continue
            here = self.root.joinpath(*resolved, comp)
            shown = "/".join([*resolved, comp])
            try:
                st = os.lstat(here)
            except FileNotFoundError:
                if not create:
                    raise UnsafeLayerError(entry, f"{shown!r} does not exist") from None
                os.mkdir(here, 0o755)
                self.created.add((*resolved, comp))
                resolved.append(comp)
                continue
            if stat.S_ISDIR(st.st_mode):
                resolved.append(comp)
            elif stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > _MAX_SYMLINK_HOPS:
                    raise UnsafeLayerError(entry, "too many levels of symbolic links in its path")
                target = os.readlink(here)
                if target.startswith("/"):
                    raise UnsafeLayerError(
                        entry,
                        f"{shown!r} is a symlink to the absolute path {target!r}; following it would write outside the layer",
                    )
                todo = [p for p in target.split("/") if p not in ("", ".")] + todo
            else:
                raise UnsafeLayerError(entry, f"{shown!r} is not a directory")
        return resolved

    # -- entries ---------------------------------------------------------------------------------

    def apply(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        entry = member.name
        parts = _clean_parts(member.name, entry)
        if not parts:
            if member.isdir():
                return  # the layer root itself ("./"); its metadata is not the image's business
            raise UnsafeLayerError(entry, "empty path")
        base = parts[-1]
        parent_parts = self.resolve_dir(parts[:-1], entry, create=True)
        parent = self.root.joinpath(*parent_parts)
        if base == OPAQUE_MARKER:
            self.opaque(parent, parent_parts, entry)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # AUFS bookkeeping (.wh..wh.plnk etc.), meaningless here
        if base.startswith(WHITEOUT_PREFIX):
            name = base[len(WHITEOUT_PREFIX) :]
            if name in ("", ".", ".."):
                raise UnsafeLayerError(entry, "malformed whiteout")
            self.whiteout(parent / name, entry)
            return
        path = parent / base
        key = (*parent_parts, base)
        self.created.add(key)
        try:
            existing = os.lstat(path)
        except FileNotFoundError:
            existing = None
        if member.isdir():
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                _remove(path)
                existing = None
            if existing is None:
                os.mkdir(path, 0o700)
            self.chown(path, member)
            self.xattrs(path, member)
            self.dirs.append((path, member))
            return
        if existing is not None:
            _remove(path)
        if member.isreg():
            src = tf.extractfile(member)
            if src is None:
                raise LayerError(f"layer entry {entry!r}: cannot read file data")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
        elif member.issym():
            os.symlink(member.linkname, path)
        elif member.islnk():
            self.hardlink(path, member)
            return  # a hard link shares its target's inode and metadata
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            try:
                os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
            except PermissionError:
                log.debug("skipping device node %s: not permitted", entry)
                self.skipped.append(entry)
                self.created.discard(key)
                return
        elif member.isfifo():
            os.mkfifo(path, 0o600)
        else:
            raise LayerError(f"layer entry {entry!r}: unsupported tar entry type {member.type!r}")
        self.chown(path, member)
        self.xattrs(path, member)
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def hardlink(self, path: Path, member: tarfile.TarInfo) -> None:
        entry = member.name
        parts = _clean_parts(member.linkname, entry, "hard link target")
        if not parts:
            raise UnsafeLayerError(entry, "hard link to the layer root")
        target_dir = self.resolve_dir(parts[:-1], entry, create=False)
        target = self.root.joinpath(*target_dir, parts[-1])
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            raise UnsafeLayerError(entry, f"hard link target {member.linkname!r} does not exist") from None
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeLayerError(entry, f"hard link target {member.linkname!r} is a directory")
        os.link(target, path, follow_symlinks=False)

    def whiteout(self, path: Path, entry: str) -> None:
        if self.whiteouts == "apply":
            _remove(path)
            return
        _remove(path)
        try:
            os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        except PermissionError as e:
            raise LayerError(f"layer entry {entry!r}: an overlay whiteout needs CAP_MKNOD: {e}") from e

    def opaque(self, parent: Path, parent_parts: list[str], entry: str) -> None:
        if self.whiteouts == "overlay":
            try:
                os.setxattr(parent, OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
            except OSError as e:
                raise LayerError(f"layer entry {entry!r}: cannot mark {parent} opaque: {e}") from e
            return
        for child in os.listdir(parent):
            if (*parent_parts, child) not in self.created:
                _remove(parent / child)

    # -- metadata --------------------------------------------------------------------------------

    def chown(self, path: Path, member: tarfile.TarInfo) -> None:
        if self.is_root:
            os.chown(path, member.uid, member.gid, follow_symlinks=False)

    def xattrs(self, path: Path, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr.") :]
            if name.startswith(OVERLAY_XATTR_PREFIX):
                # overlayfs reads its own xattrs (opaque, redirect, origin, metacopy) from lower
                # layers; a layer must not be able to plant them, only whiteouts may (above).
                self.skipped.append(f"{member.name} (xattr {name})")
                continue
            try:
                os.setxattr(path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EACCES):
                    raise
                self.skipped.append(f"{member.name} (xattr {name})")

    def finish(self) -> None:
        # Directory modes and times last: writing children would change mtimes, and a read-only
        # directory must still accept the entries that follow it.
        for path, member in reversed(self.dirs):
            os.chmod(path, member.mode & 0o7777)
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)


def unpack_layer(src: BinaryIO, dest: Path, *, whiteouts: WhiteoutMode = "apply") -> UnpackResult:
    """Apply the layer read from ``src`` to the existing directory ``dest``.

    Raises :class:`UnsafeLayerError` for a refused entry and :class:`LayerError` for anything
    else that stops the layer from being applied; ``dest`` may then hold part of the layer.
    """
    if not dest.is_dir():
        raise LayerError(f"destination {dest} is not a directory")
    hashing = _HashingReader(_decompressed(src))
    applier = _Applier(Path(os.path.realpath(dest)), whiteouts)
    reader = io.BufferedReader(hashing, _CHUNK)
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tf:
            for member in tf:
                applier.apply(tf, member)
        # The end-of-archive padding after the last entry belongs to the stream the diff id hashes.
        while reader.read(_CHUNK):
            pass
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, lzma.LZMAError, zlib.error, OSError) as e:
        raise LayerError(f"cannot apply layer: {e}") from e
    applier.finish()
    return UnpackResult(diff_id=f"sha256:{hashing.hash.hexdigest()}", size=hashing.size, skipped=applier.skipped)


def unpack_layer_file(path: Path, dest: Path, *, whiteouts: WhiteoutMode = "apply") -> UnpackResult:
    with open(path, "rb") as f:
        return unpack_layer(f, dest, whiteouts=whiteouts)
