"""Images from files: OCI image layouts (a directory or a tar of one) and ``docker save`` tars.

:func:`open_archive` reads an archive's index and hands the service one :class:`SourceImage` per
image (its manifest bytes and names); the service installs it through its usual path, asking the
archive for each blob, and the store verifies every blob against its digest as it is copied. A
``docker save`` archive has no manifest, so one is written for it (OCI, with the layers as they
are in the archive, digests computed here); images imported that way therefore have no repo
digests, as in Docker.

:func:`export_oci_layout` writes an image from the store back out as an OCI layout, which tools
like skopeo can copy anywhere (the tests use it to push the busybox image into a registry).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from . import manifest as mf
from .manifest import Descriptor, ManifestError
from .reference import InvalidReference, parse
from .store import ImageRecord, ImageStore, digest_hex, sha256_digest

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"


class ArchiveError(ValueError):
    """The file is not an importable image archive, or is inconsistent."""


@dataclass
class SourceImage:
    manifest: bytes
    names: list[str] = field(default_factory=list)  # fully qualified references found in the archive
    bare_tag: str | None = None  # an OCI ref.name that is only a tag ("latest"): no repository known

    def tags(self, name: str | None = None) -> list[str]:
        """The repo tags to record: ``name`` if given (with the archive's tag if ``name`` has none)."""
        if name:
            ref = parse(name, default_tag=False)
            archive_tag = self.bare_tag or (parse(self.names[0]).tag if self.names else None)
            return [f"{ref.name}:{ref.tag or archive_tag or 'latest'}"]
        return self.names


class _Files:
    """Read-only access to the archive's files by relative path."""

    def open(self, rel: str) -> BinaryIO:
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def read(self, rel: str) -> bytes:
        with self.open(rel) as f:
            return f.read()

    def close(self) -> None:
        pass


def _safe_rel(rel: str) -> str:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if rel.startswith("/") or ".." in parts or not parts:
        raise ArchiveError(f"archive path {rel!r} is not a plain relative path")
    return "/".join(parts)


class _DirFiles(_Files):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, rel: str) -> Path:
        path = self.root / _safe_rel(rel)
        real, root = os.path.realpath(path), os.path.realpath(self.root)
        if os.path.commonpath([real, root]) != root:
            raise ArchiveError(f"archive path {rel!r} leads outside {self.root}")
        return path

    def open(self, rel: str) -> BinaryIO:
        try:
            return open(self._path(rel), "rb")
        except FileNotFoundError:
            raise ArchiveError(f"archive has no {rel!r}") from None

    def exists(self, rel: str) -> bool:
        return self._path(rel).is_file()


class _TarFiles(_Files):
    def __init__(self, path: Path) -> None:
        try:
            self.tar = tarfile.open(path, "r:*")
        except tarfile.TarError as e:
            raise ArchiveError(f"{path}: not a tar archive: {e}") from e
        self.members = {_norm(m.name): m for m in self.tar.getmembers()}

    def open(self, rel: str) -> BinaryIO:
        member = self.members.get(_safe_rel(rel))
        f = self.tar.extractfile(member) if member is not None else None
        if f is None:
            raise ArchiveError(f"archive has no file {rel!r}")
        return cast(BinaryIO, f)

    def exists(self, rel: str) -> bool:
        return _safe_rel(rel) in self.members

    def close(self) -> None:
        self.tar.close()


def _norm(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


class Archive:
    def __init__(self, files: _Files) -> None:
        self.files = files
        self._paths: dict[str, str] = {}  # digest -> archive path, for blobs not under blobs/

    def images(self, platform: mf.Platform) -> list[SourceImage]:
        if self.files.exists("index.json") and self.files.exists("oci-layout"):
            return self._oci_images(platform)
        if self.files.exists("manifest.json"):
            return self._docker_images()
        raise ArchiveError("neither an OCI image layout (oci-layout, index.json) nor a docker save archive (manifest.json)")

    def copy_blob(self, desc: Descriptor, store: ImageStore) -> None:
        with self.files.open(self._blob_path(desc.digest)) as f:
            store.copy_blob_from(f, desc.digest, desc.size, what=f"archive blob {desc.digest}")

    def _blob_path(self, digest: str) -> str:
        return self._paths.get(digest) or f"blobs/sha256/{digest_hex(digest)}"

    def _verified(self, desc: Descriptor) -> bytes:
        data = self.files.read(self._blob_path(desc.digest))
        if sha256_digest(data) != desc.digest:
            raise ArchiveError(f"blob {desc.digest} in the archive does not match its digest")
        return data

    def _oci_images(self, platform: mf.Platform) -> list[SourceImage]:
        try:
            index = json.loads(self.files.read("index.json"))
            entries = [Descriptor.from_json(d, "index.json entry") for d in index.get("manifests") or []]
        except (ValueError, AttributeError) as e:
            raise ArchiveError(f"index.json: {e}") from e
        out = []
        for desc in entries:
            names: list[str] = []
            bare = None
            for key in (CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION):
                value = desc.annotations.get(key)
                if not value:
                    continue
                if "/" in value or ":" in value or key == CONTAINERD_NAME_ANNOTATION:
                    with contextlib.suppress(InvalidReference):
                        tagged = parse(value).tagged()
                        if tagged and tagged not in names:
                            names.append(tagged)
                else:
                    bare = value
            out.append(SourceImage(self._resolve(desc, platform), names, bare))
        return out

    def _resolve(self, desc: Descriptor, platform: mf.Platform) -> bytes:
        for _ in range(8):
            data = self._verified(desc)
            doc = mf.parse(data, desc.media_type)
            if isinstance(doc, mf.Manifest):
                return data
            desc = mf.select_platform(doc, platform)
        raise ManifestError("image indexes nested too deeply")

    def _docker_images(self) -> list[SourceImage]:
        try:
            entries = json.loads(self.files.read("manifest.json"))
        except ValueError as e:
            raise ArchiveError(f"manifest.json: {e}") from e
        if not isinstance(entries, list):
            raise ArchiveError("manifest.json is not a list")
        out = []
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
                raise ArchiveError("manifest.json entry without a Config")
            config = self.files.read(entry["Config"])
            config_digest = sha256_digest(config)
            self._paths[config_digest] = entry["Config"]
            layers = []
            for rel in entry.get("Layers") or []:
                digest, size, gz = self._hash(rel)
                self._paths[digest] = rel
                layers.append({"mediaType": mf.OCI_LAYER_GZIP if gz else mf.OCI_LAYER, "digest": digest, "size": size})
            manifest = {
                "schemaVersion": 2,
                "mediaType": mf.OCI_MANIFEST,
                "config": {"mediaType": mf.OCI_CONFIG, "digest": config_digest, "size": len(config)},
                "layers": layers,
            }
            names = []
            for tag in entry.get("RepoTags") or []:
                with contextlib.suppress(InvalidReference):
                    names.append(parse(tag).tagged() or "")
            out.append(SourceImage(json.dumps(manifest, indent=2).encode(), [n for n in names if n]))
        return out

    def _hash(self, rel: str) -> tuple[str, int, bool]:
        h, size = hashlib.sha256(), 0
        with self.files.open(rel) as f:
            head = f.read(2)
            gz = head == b"\x1f\x8b"
            h.update(head)
            size += len(head)
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
        return f"sha256:{h.hexdigest()}", size, gz


@contextlib.contextmanager
def open_archive(path: Path) -> Iterator[Archive]:
    files: _Files = _DirFiles(path) if path.is_dir() else _TarFiles(path)
    try:
        yield Archive(files)
    finally:
        files.close()


def export_oci_layout(store: ImageStore, record: ImageRecord, dest: Path, ref_name: str | None = None) -> None:
    """Write ``record`` as an OCI image layout at ``dest`` (created if needed)."""
    manifest_bytes = store.read_blob(record.manifest_digest)
    doc = mf.parse(manifest_bytes)
    blob_dir = dest / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    for digest in (record.manifest_digest, record.id, *(layer.digest for layer in record.layers)):
        shutil.copyfile(store.blob_path(digest), blob_dir / digest_hex(digest))
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    entry = Descriptor(doc.media_type, record.manifest_digest, len(manifest_bytes),
                       annotations={REF_NAME_ANNOTATION: ref_name} if ref_name else {})
    index = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [entry.to_json()]}
    (dest / "index.json").write_text(json.dumps(index, indent=2))
