"""The on-disk image store: content-addressed blobs, unpacked layers, and an index of images.

Layout under the store root::

    blobs/sha256/<hex>     every manifest, index, config and layer blob, named by its digest
    layers/<hex>/          one unpacked layer per diff id (overlayfs whiteout format), shared by
                           every image and container that uses it; an overlay lowerdir as is
    images.json            the index: image id (config digest) -> record with tags and digests
    tmp/                   staging; everything is written here first and renamed into place
    lock                   flock(2) guarding read-modify-write of images.json (CLI and agent may share a root)

A blob is only ever visible under its digest after its bytes were hashed and matched; a layer
directory only after the whole tar was applied and its diff id matched. So a crash or a refused
download leaves at most garbage in ``tmp/``, never a wrong blob or a half layer.

Processes sharing a root (the agent and the CLI) are safe for pulls, imports and removals; a gc
only knows about the in-flight pulls of its own process, so run it from the agent (or when no
other process is pulling).

A layer directory is keyed by diff id rather than chain id because in overlay format its content
depends only on the layer's own tar, so images that share a layer anywhere in their stack share
the directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .unpack import LayerError, unpack_layer

_STALE_STAGING_SECONDS = 3600


class DigestMismatch(Exception):
    """Content does not hash to the digest it was fetched or declared under."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def digest_hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"unsupported or malformed digest {digest!r}")
    return hexpart


@dataclass
class LayerRecord:
    digest: str  # the blob as stored/distributed (maybe compressed)
    diff_id: str  # the uncompressed tar
    media_type: str
    size: int  # blob size


@dataclass
class ImageRecord:
    id: str  # config digest
    manifest_digest: str
    layers: list[LayerRecord]
    config_size: int
    manifest_size: int
    index_digest: str | None = None  # the image index / manifest list we were sent to, if any
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.config_size + sum(layer.size for layer in self.layers)

    def blobs(self) -> set[str]:
        out = {self.id, self.manifest_digest, *(layer.digest for layer in self.layers)}
        if self.index_digest:
            out.add(self.index_digest)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageRecord:
        data = dict(data)
        data["layers"] = [LayerRecord(**layer) for layer in data["layers"]]
        return cls(**data)


@dataclass
class GcResult:
    images_removed: list[str] = field(default_factory=list)
    blobs_removed: int = 0
    layers_removed: int = 0


def _force_rmtree(path: Path) -> None:
    """rmtree that also copes with read-only directories (layers keep their tar modes)."""

    def onerror(func: Any, p: str, exc: Any) -> None:
        parent = os.path.dirname(p)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
        with contextlib.suppress(FileNotFoundError):
            func(p)

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, onerror=onerror)
    else:
        os.unlink(path)


class BlobWriter:
    """Streams a blob into ``tmp/``; :meth:`commit` verifies its digest (and size) and publishes it."""

    def __init__(self, store: ImageStore, expected_digest: str, expected_size: int | None, what: str) -> None:
        digest_hex(expected_digest)
        self._store = store
        self.expected_digest = expected_digest
        self.expected_size = expected_size
        self.what = what
        fd, name = tempfile.mkstemp(prefix="blob-", dir=store.tmp_dir)
        self._tmp = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            raise DigestMismatch(f"{self.what}: more than the declared {self.expected_size} bytes", self.expected_digest, "?")
        self._file.write(data)

    def commit(self) -> Path:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        actual = f"sha256:{self._hash.hexdigest()}"
        if actual != self.expected_digest:
            self.abort()
            raise DigestMismatch(self.what, self.expected_digest, actual)
        if self.expected_size is not None and self.size != self.expected_size:
            self.abort()
            raise DigestMismatch(f"{self.what}: size {self.size} != declared {self.expected_size}", self.expected_digest, actual)
        dest = self._store.blob_path(actual)
        os.replace(self._tmp, dest)
        return dest

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blob_dir = self.root / "blobs" / "sha256"
        self.layers_dir = self.root / "layers"
        self.tmp_dir = self.root / "tmp"
        self.index_path = self.root / "images.json"
        for d in (self.blob_dir, self.layers_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)

    # -- blobs -----------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest_hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def open_blob(self, digest: str) -> BinaryIO:
        return open(self.blob_path(digest), "rb")

    def blob_writer(self, digest: str, size: int | None = None, what: str = "blob") -> BlobWriter:
        return BlobWriter(self, digest, size, what)

    def write_blob(self, data: bytes, digest: str | None = None, what: str = "blob") -> str:
        """Store ``data``; when ``digest`` is given, refuse data that does not match it."""
        expected = digest or sha256_digest(data)
        if self.has_blob(expected) and digest is None:
            return expected
        writer = self.blob_writer(expected, len(data), what)
        try:
            writer.write(data)
        except BaseException:
            writer.abort()
            raise
        writer.commit()
        return expected

    def copy_blob_from(self, src: BinaryIO, digest: str, size: int | None = None, what: str = "blob") -> None:
        if self.has_blob(digest):
            return
        writer = self.blob_writer(digest, size, what)
        try:
            while chunk := src.read(1 << 20):
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    # -- layers ----------------------------------------------------------------------------------

    def layer_dir(self, diff_id: str) -> Path:
        return self.layers_dir / digest_hex(diff_id)

    def has_layer(self, diff_id: str) -> bool:
        return self.layer_dir(diff_id).is_dir()

    def unpack(self, blob_digest: str, diff_id: str) -> Path:
        """Unpack the stored blob into the shared layer directory for ``diff_id`` (once)."""
        dest = self.layer_dir(diff_id)
        if dest.is_dir():
            return dest
        staging = Path(tempfile.mkdtemp(prefix="layer-", dir=self.tmp_dir))
        try:
            os.chmod(staging, 0o755)
            with self.open_blob(blob_digest) as f:
                result = unpack_layer(f, staging, whiteouts="overlay")
            if result.diff_id != diff_id:
                raise DigestMismatch(f"layer {blob_digest} (uncompressed)", diff_id, result.diff_id)
            try:
                os.rename(staging, dest)
            except OSError:
                if not dest.is_dir():  # someone else won the race with the same content
                    raise
                _force_rmtree(staging)
        except BaseException:
            _force_rmtree(staging)
            raise
        return dest

    def usage(self) -> tuple[int, int]:
        """(bytes, inodes) the store occupies on disk (the CRI's ImageFsInfo); hard links count once."""
        seen: set[tuple[int, int]] = set()
        used = 0
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in [*dirnames, *filenames]:
                with contextlib.suppress(FileNotFoundError):
                    st = os.lstat(os.path.join(dirpath, name))
                    if (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        used += st.st_blocks * 512
        return used, len(seen)

    # -- index -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with open(self.root / "lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def load(self) -> dict[str, ImageRecord]:
        try:
            raw = json.loads(self.index_path.read_text())
        except FileNotFoundError:
            return {}
        return {k: ImageRecord.from_json(v) for k, v in raw.get("images", {}).items()}

    def save(self, images: dict[str, ImageRecord]) -> None:
        data = {"images": {k: asdict(v) for k, v in sorted(images.items())}}
        fd, name = tempfile.mkstemp(prefix="index-", dir=self.tmp_dir)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(name, self.index_path)

    def add_image(self, record: ImageRecord, tags: Iterable[str] = (), digests: Iterable[str] = ()) -> ImageRecord:
        """Record ``record`` and point ``tags``/``digests`` at it (a tag moves off any older image)."""
        tags, digests = list(tags), list(digests)
        with self.locked():
            images = self.load()
            for other in images.values():
                if other.id != record.id:
                    other.repo_tags = [t for t in other.repo_tags if t not in tags]
            current = images.get(record.id)
            if current is not None:
                record.repo_tags = list(current.repo_tags)
                record.repo_digests = list(current.repo_digests)
                record.index_digest = record.index_digest or current.index_digest
            record.repo_tags += [t for t in tags if t not in record.repo_tags]
            record.repo_digests += [d for d in digests if d not in record.repo_digests]
            images[record.id] = record
            self.save(images)
            return record

    def find(self, *, image_id: str | None = None, tag: str | None = None, repo_digest: str | None = None) -> ImageRecord | None:
        for record in self.load().values():
            if image_id is not None and record.id == image_id:
                return record
            if tag is not None and tag in record.repo_tags:
                return record
            if repo_digest is not None and repo_digest in record.repo_digests:
                return record
        return None

    def untag(self, image_id: str, *, tag: str | None = None, repo_digest: str | None = None, delete: bool = False) -> None:
        """Drop one reference from an image; the record goes when ``delete`` or nothing refers to it."""
        with self.locked():
            images = self.load()
            record = images.get(image_id)
            if record is None:
                return
            record.repo_tags = [t for t in record.repo_tags if t != tag]
            record.repo_digests = [d for d in record.repo_digests if d != repo_digest]
            if delete or not (record.repo_tags or record.repo_digests):
                del images[image_id]
            self.save(images)

    def gc(self, in_use: Iterable[str] = ()) -> GcResult:
        """Mark and sweep.

        Images with neither tags nor digests (a tag moved to a newer pull) are dropped unless their
        id is ``in_use``; then every blob and layer directory no remaining image refers to, and that
        is not itself named in ``in_use`` (image ids, blob digests or diff ids of running
        containers or of pulls in flight), is deleted.
        """
        keep = set(in_use)
        result = GcResult()
        with self.locked():
            images = self.load()
            for image_id, record in list(images.items()):
                if not record.repo_tags and not record.repo_digests and image_id not in keep:
                    del images[image_id]
                    result.images_removed.append(image_id)
            self.save(images)
            live_blobs = {digest_hex(d) for d in keep if d.startswith("sha256:")}
            live_layers = set(live_blobs)
            for record in images.values():
                live_blobs |= {digest_hex(d) for d in record.blobs()}
                live_layers |= {digest_hex(layer.diff_id) for layer in record.layers}
            for blob in self.blob_dir.iterdir():
                if blob.name not in live_blobs:
                    blob.unlink()
                    result.blobs_removed += 1
            # Staging left by a crashed process (a live pull touches its staging continually).
            for leftover in self.tmp_dir.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - os.lstat(leftover).st_mtime > _STALE_STAGING_SECONDS:
                        _force_rmtree(leftover)
            for layer in self.layers_dir.iterdir():
                if layer.name not in live_layers:
                    # Rename first so a crash mid-delete never leaves a half layer under a live name.
                    doomed = self.tmp_dir / f"gc-{layer.name}"
                    os.rename(layer, doomed)
                    _force_rmtree(doomed)
                    result.layers_removed += 1
        return result


__all__ = [
    "BlobWriter",
    "DigestMismatch",
    "GcResult",
    "ImageRecord",
    "ImageStore",
    "LayerError",
    "LayerRecord",
    "sha256_digest",
]
