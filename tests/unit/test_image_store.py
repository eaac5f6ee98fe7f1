"""The image store and service without a registry: install, references, removal, GC, imports.

Images are made here (small gzip layers, OCI manifests) and installed through
``ImageService.install`` with a fetch that serves them from memory, the same path a registry pull
and an archive import take.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from nodeagent.runtime.images import ImageNotFound, ImageService, InvalidImageName, PullPolicy
from nodeagent.runtime.images import manifest as mf
from nodeagent.runtime.images.busybox import build_busybox_image
from nodeagent.runtime.images.importer import ArchiveError
from nodeagent.runtime.images.manifest import Descriptor
from nodeagent.runtime.images.service import ImageInfo
from nodeagent.runtime.images.store import DigestMismatch


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class Made:
    def __init__(self, layers: list[dict[str, bytes]], *, diff_ids: list[str] | None = None, cmd: str = "true") -> None:
        raws = [tar_of(files) for files in layers]
        self.layers = [gzip.compress(raw, mtime=0) for raw in raws]
        self.diff_ids = diff_ids or [sha(raw) for raw in raws]
        self.config = json.dumps({"architecture": "amd64", "os": "linux",
                                  "config": {"Entrypoint": ["/bin/" + cmd], "Cmd": ["-x"], "Env": ["A=1"],
                                             "WorkingDir": "/w", "User": "1000:1000"},
                                  "rootfs": {"type": "layers", "diff_ids": self.diff_ids}}).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
            "config": {"mediaType": mf.OCI_CONFIG, "digest": sha(self.config), "size": len(self.config)},
            "layers": [{"mediaType": mf.OCI_LAYER_GZIP, "digest": sha(b), "size": len(b)} for b in self.layers],
        }).encode()
        self.blobs = {sha(b): b for b in [self.config, *self.layers]}
        self.fetched: list[str] = []

    async def install(self, svc: ImageService, *tags: str, digests: tuple[str, ...] = ()) -> ImageInfo:
        async def fetch(desc: Descriptor) -> None:
            self.fetched.append(desc.digest)
            svc.store.write_blob(self.blobs[desc.digest], desc.digest)

        record = await svc.install(self.manifest, fetch, tags=tags, digests=digests)
        info = svc.status(record.id)
        assert info is not None
        return info


@pytest_asyncio.fixture(loop_scope="session")
async def svc() -> AsyncIterator[ImageService]:
    d = Path(tempfile.mkdtemp(prefix="kube-lite-store-"))
    service = ImageService(d)
    try:
        yield service
    finally:
        await service.close()
        shutil.rmtree(d, ignore_errors=True)


def layer_names(svc: ImageService) -> set[str]:
    return {p.name for p in svc.store.layers_dir.iterdir()}


def blob_names(svc: ImageService) -> set[str]:
    return {"sha256:" + p.name for p in svc.store.blob_dir.iterdir()}


async def test_install_records_config_and_layers_in_order(svc: ImageService) -> None:
    img = Made([{"a": b"lower"}, {"a": b"upper", "b": b"b"}])
    info = await img.install(svc, "docker.io/library/app:1")
    assert info.id == sha(img.config)
    assert info.config.entrypoint == ["/bin/true"] and info.config.cmd == ["-x"]
    assert (info.config.env, info.config.working_dir, info.config.user) == (["A=1"], "/w", "1000:1000")
    assert [(d / "a").read_bytes() for d in info.layer_dirs] == [b"lower", b"upper"]  # lowest first
    assert info.size == len(img.config) + sum(len(b) for b in img.layers)
    assert svc.status("app:1") == info == svc.status("docker.io/library/app:1")
    # Installing again fetches nothing and changes nothing.
    img.fetched.clear()
    assert await img.install(svc, "docker.io/library/app:1") == info
    assert img.fetched == []


async def test_diff_id_mismatch_leaves_nothing_behind(svc: ImageService) -> None:
    img = Made([{"a": b"x"}], diff_ids=[sha(b"something else")])
    with pytest.raises(DigestMismatch, match="uncompressed"):
        await img.install(svc, "docker.io/library/bad:1")
    assert svc.list() == []
    assert layer_names(svc) == set()
    assert list(svc.store.tmp_dir.iterdir()) == []


async def test_wrong_blob_from_fetch_is_refused(svc: ImageService) -> None:
    img = Made([{"a": b"x"}])

    async def lying_fetch(desc: Descriptor) -> None:
        svc.store.write_blob(b"not the config", desc.digest)

    with pytest.raises(DigestMismatch, match=f"expected {sha(img.config)}"):
        await svc.install(img.manifest, lying_fetch, tags=["docker.io/library/x:1"])
    assert not svc.store.has_blob(sha(img.config))
    assert svc.list() == []


async def test_tags_move_and_gc_sweeps_only_the_unreferenced(svc: ImageService) -> None:
    shared = {"shared": b"base layer"}
    old = await Made([shared, {"v": b"1"}], cmd="old").install(svc, "docker.io/library/app:latest")
    new = await Made([shared, {"v": b"2"}], cmd="new").install(svc, "docker.io/library/app:latest")
    assert svc.status("app") == new
    stale = svc.status(old.id)
    assert stale is not None and stale.repo_tags == []  # dangling, still present
    # A running container pins the dangling image, by id or by its layer directories.
    assert svc.gc(in_use=[old.id]).images_removed == []
    assert all(d.is_dir() for d in old.layer_dirs)
    result = svc.gc(in_use=old.layer_dirs)
    assert result.images_removed == [old.id] and result.layers_removed == 0
    assert all(d.is_dir() for d in old.layer_dirs)
    old = await Made([shared, {"v": b"1"}], cmd="old").install(svc)  # back, untagged
    result = svc.gc()
    assert result.images_removed == [old.id]
    assert result.layers_removed == 1 and not old.layer_dirs[1].exists()
    assert old.layer_dirs[0] == new.layer_dirs[0] and new.layer_dirs[0].is_dir()  # shared layer kept
    assert old.id not in blob_names(svc) and new.id in blob_names(svc)
    assert svc.gc().blobs_removed == 0  # nothing left to sweep


async def test_remove_references_and_ids(svc: ImageService) -> None:
    img = Made([{"f": b"x"}])
    digest_ref = f"docker.io/library/app@{sha(img.manifest)}"
    info = await img.install(svc, "docker.io/library/app:1", "docker.io/library/app:2", digests=(digest_ref,))
    svc.remove("app:1")
    assert svc.status("app:1") is None and svc.status("app:2") is not None
    svc.remove(digest_ref)
    assert svc.status(digest_ref) is None
    assert svc.status(info.id) is not None  # app:2 still refers to it
    svc.remove("app:2")
    assert svc.status(info.id) is None  # last reference gone: the record goes
    assert all(d.is_dir() for d in info.layer_dirs)  # the data waits for gc
    svc.gc()
    assert layer_names(svc) == set() and blob_names(svc) == set()

    again = await img.install(svc, "docker.io/library/app:1", "docker.io/library/other:3")
    svc.remove(again.id.removeprefix("sha256:")[:12])  # by id: every reference at once
    assert svc.list() == []
    with pytest.raises(ImageNotFound):
        svc.remove("app:1")


async def test_bad_names(svc: ImageService) -> None:
    with pytest.raises(InvalidImageName) as info:
        await svc.ensure("Not/Valid", PullPolicy.IF_NOT_PRESENT)
    assert info.value.reason == "InvalidImageName"
    with pytest.raises(InvalidImageName):
        svc.status("bad:tag:")


async def test_busybox_is_deterministic_and_idempotent(svc: ImageService) -> None:
    a, b = build_busybox_image(), build_busybox_image()
    assert (a.manifest, a.config, a.layer) == (b.manifest, b.config, b.layer)
    first = await svc.build_busybox()
    second = await svc.build_busybox()
    assert first == second and first.id == a.config_digest
    assert first.repo_tags == ["docker.io/library/busybox:latest"]
    assert len(svc.list()) == 1 and len(layer_names(svc)) == 1
    # The store holds the compressed layer blob and the unpacked binary, at least.
    used, inodes = svc.fs_usage()
    unpacked = (first.layer_dirs[0] / "bin/busybox").stat().st_size
    assert used > len(a.layer) + unpacked
    assert inodes > len(os.listdir(first.layer_dirs[0] / "bin"))
    root = first.layer_dirs[0]
    assert (root / "tmp").stat().st_mode & 0o1777 == 0o1777
    assert {"proc", "sys", "dev", "etc", "bin"} <= {p.name for p in root.iterdir()}
    assert "root:x:0:0" in (root / "etc/passwd").read_text()
    assert "nobody:x:65534:" in (root / "etc/group").read_text()


async def test_export_then_import_round_trip(svc: ImageService) -> None:
    img = Made([{"f": b"x"}, {"g": b"y"}])
    info = await img.install(svc, "docker.io/library/app:1")
    out = Path(tempfile.mkdtemp(prefix="kube-lite-export-"))
    try:
        svc.export_oci("app:1", out / "layout", ref_name="example.com/copy:5")
        other = ImageService(out / "store")
        try:
            [imported] = await other.import_archive(out / "layout")
            assert imported.id == info.id and imported.repo_tags == ["example.com/copy:5"]
            assert [(d / n).read_bytes() for d, n in zip(imported.layer_dirs, "fg", strict=True)] == [b"x", b"y"]
        finally:
            await other.close()
    finally:
        shutil.rmtree(out, ignore_errors=True)


async def test_bad_archives(svc: ImageService) -> None:
    d = Path(tempfile.mkdtemp(prefix="kube-lite-archive-"))
    try:
        (d / "empty").mkdir()
        with pytest.raises(ArchiveError, match="neither an OCI image layout"):
            await svc.import_archive(d / "empty")
        evil = d / "evil"
        evil.mkdir()
        (d / "secret.json").write_text("{}")
        (evil / "manifest.json").write_text(json.dumps([{"Config": "../secret.json", "Layers": []}]))
        with pytest.raises(ArchiveError, match="not a plain relative path"):
            await svc.import_archive(evil)
        (d / "junk.tar").write_bytes(b"junk" * 100)
        with pytest.raises(ArchiveError, match="not a tar archive"):
            await svc.import_archive(d / "junk.tar")
        assert svc.list() == []
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_cli() -> None:
    d = Path(tempfile.mkdtemp(prefix="kube-lite-cli-"))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nodeagent.runtime.images.cli", "--root", str(d), *args],
                              capture_output=True, text=True)

    try:
        built = cli("build-busybox", "--name", "demo/busybox:1")
        assert built.returncode == 0, built.stderr
        listing = cli("list")
        assert listing.stdout.splitlines()[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
        assert listing.stdout.splitlines()[1].split()[:2] == ["demo/busybox", "1"]
        inspect = json.loads(cli("inspect", "demo/busybox:1").stdout)
        assert inspect["config"]["cmd"] == ["sh"] and len(inspect["layer_dirs"]) == 1
        missing = cli("rm", "nothing:here")
        assert (missing.returncode, missing.stderr) == (1, "error: image 'nothing:here' not found\n")
        bad = cli("pull", "Bad:Name")
        assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
        assert cli("rm", "demo/busybox:1").returncode == 0
        gc = cli("gc")
        assert gc.stdout.strip() == "removed 0 images, 3 blobs, 1 layers"
        assert cli("list").stdout.splitlines()[1:] == []
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def test_gc_clears_only_stale_staging(svc: ImageService) -> None:
    stale_dir, stale_file, fresh = svc.store.tmp_dir / "layer-crashed", svc.store.tmp_dir / "blob-crashed", svc.store.tmp_dir / "blob-live"
    (stale_dir / "ro").mkdir(parents=True)
    (stale_dir / "ro" / "f").write_bytes(b"x")
    (stale_dir / "ro").chmod(0o500)
    stale_file.write_bytes(b"partial")
    fresh.write_bytes(b"being written")
    two_hours_ago = os.stat(fresh).st_mtime - 7200
    for p in (stale_dir, stale_file):
        os.utime(p, (two_hours_ago, two_hours_ago))
    svc.gc()
    assert sorted(p.name for p in svc.store.tmp_dir.iterdir()) == ["blob-live"]
