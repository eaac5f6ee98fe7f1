"""The image service: what the kubelet side asks for (pull, status, list, remove, ensure).

Every way an image arrives (registry pull, archive import, the built-in busybox) goes through one
install path: fetch the config and layer blobs into the store (each verified against its
digest), unpack each layer once into its shared directory (its diff id verified against the
config's ``rootfs.diff_ids``), store the manifest, and only then record the image and its
references in the index. A failure anywhere leaves the index as it was.

References are stored fully qualified (``docker.io/library/busybox:latest``, as the CRI reports
them); lookups accept anything :func:`reference.parse` accepts, plus image ids (``sha256:<hex>``,
the bare hex, or an unambiguous prefix of at least 12 hex digits, as Docker allows).
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from . import manifest as mf
from .manifest import Descriptor, ImageConfig, ManifestError
from .reference import InvalidReference, Reference, parse
from .registry import Credentials, RegistryClient, RegistryError
from .store import DigestMismatch, GcResult, ImageRecord, ImageStore, LayerRecord
from .unpack import LayerError

_ID_PREFIX_RE = re.compile(r"^(?:sha256:)?([a-f0-9]{12,64})$")


class PullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


def default_pull_policy(image: str) -> PullPolicy:
    """Kubernetes' default: Always for ``:latest`` or untagged (undigested) images, else IfNotPresent."""
    ref = parse(image, default_tag=False)
    if ref.digest is None and ref.tag in (None, "latest"):
        return PullPolicy.ALWAYS
    return PullPolicy.IF_NOT_PRESENT


class ImageError(Exception):
    """Base of image failures; ``reason`` is the kubelet's waiting reason for the container."""

    reason = "ErrImagePull"


class InvalidImageName(ImageError):
    reason = "InvalidImageName"


class ImageNeverPull(ImageError):
    reason = "ErrImageNeverPull"


class PullError(ImageError):
    reason = "ErrImagePull"


class ImageNotFound(ImageError, LookupError):
    reason = "ImageNotFound"


@dataclass(frozen=True)
class ImageInfo:
    """An image present on this node, ready to run."""

    id: str  # the config digest, "sha256:<hex>"
    repo_tags: list[str]  # fully qualified, e.g. "docker.io/library/busybox:latest"
    repo_digests: list[str]  # "docker.io/library/busybox@sha256:<manifest or index digest>"
    size: int  # bytes of config plus layer blobs, as distributed
    config: ImageConfig  # entrypoint, cmd, env, working_dir, user, ...
    layer_dirs: list[Path]  # unpacked layers, lowest first (overlayfs lists lowerdir highest first)
    manifest_digest: str
    diff_ids: list[str]


class ImageService:
    def __init__(
        self,
        root: Path,
        *,
        insecure_registries: Iterable[str] = (),
        credentials: Mapping[str, Credentials] | None = None,
        registry: RegistryClient | None = None,
        platform: mf.Platform | None = None,
    ) -> None:
        self.store = ImageStore(root)
        self._insecure = list(insecure_registries)
        self.registry = registry or RegistryClient(insecure_registries=self._insecure, credentials=credentials)
        self.platform = platform or mf.host_platform()
        self._configs: dict[str, ImageConfig] = {}
        self._pulls: dict[tuple[str, Credentials | None], asyncio.Task[ImageInfo]] = {}
        self._pinned: collections.Counter[str] = collections.Counter()
        self.last_ensured: dict[str, float] = {}  # image id -> when ensure() last handed it out (image GC)

    async def close(self) -> None:
        await self.registry.close()

    # -- queries ---------------------------------------------------------------------------------

    def status(self, ref: str) -> ImageInfo | None:
        """The image ``ref`` names (reference or image id), or None if it is not on this node."""
        record = self._lookup(ref)
        return self._info(record) if record else None

    def list(self) -> list[ImageInfo]:
        return [self._info(r) for r in sorted(self.store.load().values(), key=lambda r: r.id)]

    def fs_usage(self) -> tuple[int, int]:
        """(bytes, inodes) used by the image store: the CRI's ImageFsInfo, for image GC thresholds."""
        return self.store.usage()

    def _lookup(self, text: str) -> ImageRecord | None:
        m = _ID_PREFIX_RE.match(text)
        if m:
            hexpart = m.group(1)
            matches = [r for r in self.store.load().values() if r.id.removeprefix("sha256:").startswith(hexpart)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise ImageError(f"image id prefix {text!r} is ambiguous")
            if text.startswith("sha256:") or len(hexpart) == 64:
                return None
        ref = self._parse(text)
        if ref.digest:
            return self.store.find(repo_digest=ref.with_digest(ref.digest))
        return self.store.find(tag=ref.tagged())

    @staticmethod
    def _parse(text: str) -> Reference:
        try:
            return parse(text)
        except InvalidReference as e:
            raise InvalidImageName(f'Failed to apply default image tag "{text}": {e}') from e

    def _info(self, record: ImageRecord) -> ImageInfo:
        config = self._configs.get(record.id)
        if config is None:
            config, _ = mf.parse_config(self.store.read_blob(record.id))
            self._configs[record.id] = config
        return ImageInfo(
            id=record.id,
            repo_tags=list(record.repo_tags),
            repo_digests=list(record.repo_digests),
            size=record.size,
            config=config,
            layer_dirs=[self.store.layer_dir(layer.diff_id) for layer in record.layers],
            manifest_digest=record.manifest_digest,
            diff_ids=[layer.diff_id for layer in record.layers],
        )

    # -- pulling ---------------------------------------------------------------------------------

    async def ensure(
        self, ref: str, image_pull_policy: PullPolicy | str, *, credentials: Credentials | None = None
    ) -> ImageInfo:
        """Make ``ref`` present according to the container's imagePullPolicy and return it.

        ``credentials`` (from the pod's imagePullSecrets) are used for this pull only, for the
        registry ``ref`` names, instead of the service's configured ones.
        """
        policy = PullPolicy(image_pull_policy)
        self._parse(ref)
        info: ImageInfo | None = None
        if policy is not PullPolicy.ALWAYS:
            info = self.status(ref)
            if info is None and policy is PullPolicy.NEVER:
                raise ImageNeverPull(f'Container image "{ref}" is not present with pull policy of Never')
        if info is None:
            info = await self._pull_once(self._parse(ref), credentials)
        self.last_ensured[info.id] = time.time()
        return info

    async def pull(
        self, ref: str, policy: PullPolicy | str = PullPolicy.ALWAYS, *, credentials: Credentials | None = None
    ) -> ImageInfo:
        """Pull ``ref`` (by default always asking the registry, like ``crictl pull``)."""
        return await self.ensure(ref, policy, credentials=credentials)

    async def _pull_once(self, ref: Reference, credentials: Credentials | None) -> ImageInfo:
        # Many pods starting at once ask for the same image: share one pull per reference (and
        # per credentials: a pod's secret must not lend its access to another pod's pull).
        key = (str(ref), credentials)
        task = self._pulls.get(key)
        if task is None:
            task = asyncio.ensure_future(self._pull_with(ref, credentials))
            self._pulls[key] = task
            task.add_done_callback(lambda _t: self._pulls.pop(key, None))
        return await asyncio.shield(task)

    async def _pull_with(self, ref: Reference, credentials: Credentials | None) -> ImageInfo:
        if credentials is None:
            return await self._pull(ref, self.registry)
        # Its own client, so tokens obtained with these credentials are never reused by others.
        client = RegistryClient(insecure_registries=self._insecure, credentials={ref.api_host: credentials})
        try:
            return await self._pull(ref, client)
        finally:
            await client.close()

    async def _pull(self, ref: Reference, registry: RegistryClient) -> ImageInfo:
        pinned: list[str] = []
        try:
            fetched = await registry.get_manifest(ref)
            doc = mf.parse(fetched.data, fetched.media_type)
            index_digest = None
            manifest_bytes = fetched.data
            if isinstance(doc, mf.Index):
                index_digest = fetched.digest
                pinned.append(index_digest)  # a gc while we fetch the platform's manifest must keep it
                self._pinned.update(pinned)
                self.store.write_blob(fetched.data, fetched.digest, "image index")
                chosen = mf.select_platform(doc, self.platform)
                inner = await registry.get_manifest(ref, chosen.digest)
                manifest_bytes = inner.data

            async def fetch(desc: Descriptor) -> None:
                await registry.fetch_blob(ref, desc, self.store)

            tags = [ref.tagged()] if ref.tag and not ref.digest else []
            record = await self.install(
                manifest_bytes, fetch, tags=[t for t in tags if t], digests=[ref.with_digest(fetched.digest)],
                index_digest=index_digest,
            )
        except (RegistryError, DigestMismatch, ManifestError, LayerError, OSError) as e:
            raise PullError(f'failed to pull and unpack image "{ref}": {e}') from e
        finally:
            self._unpin(pinned)
        return self._info(record)

    def _unpin(self, digests: builtins.list[str]) -> None:
        self._pinned.subtract(digests)
        for digest in digests:
            if self._pinned[digest] <= 0:
                self._pinned.pop(digest, None)

    async def install(
        self,
        manifest_bytes: bytes,
        fetch: Callable[[Descriptor], Awaitable[None]],
        *,
        tags: Iterable[str] = (),
        digests: Iterable[str] = (),
        index_digest: str | None = None,
    ) -> ImageRecord:
        """Install the image ``manifest_bytes`` describes; ``fetch`` puts a missing blob into the store."""
        doc = mf.parse(manifest_bytes)
        if not isinstance(doc, mf.Manifest):
            raise ManifestError("expected an image manifest, got an image index")
        manifest_digest = self.store.write_blob(manifest_bytes, None, "manifest")
        pins = [manifest_digest, doc.config.digest, *(d.digest for d in doc.layers)]
        if index_digest:
            pins.append(index_digest)
        self._pinned.update(pins)
        try:
            for desc in doc.layers:
                if desc.media_type == mf.OCI_LAYER_ZSTD:
                    raise ManifestError(f"layer {desc.digest}: zstd-compressed layers are not supported")
            if not self.store.has_blob(doc.config.digest):
                await fetch(doc.config)
            _, diff_ids = mf.parse_config(self.store.read_blob(doc.config.digest))
            if len(diff_ids) != len(doc.layers):
                raise ManifestError(f"manifest has {len(doc.layers)} layers but the config lists {len(diff_ids)} diff ids")
            self._pinned.update(diff_ids)
            pins += diff_ids

            async def layer(desc: Descriptor, diff_id: str) -> None:
                if not self.store.has_blob(desc.digest):
                    await fetch(desc)
                if not self.store.has_layer(diff_id):
                    await asyncio.to_thread(self.store.unpack, desc.digest, diff_id)

            await asyncio.gather(*(layer(d, i) for d, i in zip(doc.layers, diff_ids, strict=True)))
            record = ImageRecord(
                id=doc.config.digest,
                manifest_digest=manifest_digest,
                layers=[LayerRecord(d.digest, i, d.media_type, d.size) for d, i in zip(doc.layers, diff_ids, strict=True)],
                config_size=doc.config.size,
                manifest_size=len(manifest_bytes),
                index_digest=index_digest,
            )
            return self.store.add_image(record, tags, digests)
        finally:
            self._unpin(pins)

    # -- removal ---------------------------------------------------------------------------------

    def remove(self, ref: str) -> None:
        """Remove a reference; by image id, remove the image with all its references.

        The image's blobs and layers go at the next :meth:`gc`. Raises :class:`ImageNotFound`.
        """
        record = self._lookup(ref)
        if record is None:
            raise ImageNotFound(f"image {ref!r} not found")
        if _ID_PREFIX_RE.match(ref) and record.id.removeprefix("sha256:").startswith(ref.removeprefix("sha256:")):
            self.store.untag(record.id, delete=True)
            return
        parsed = self._parse(ref)
        if parsed.digest:
            self.store.untag(record.id, repo_digest=parsed.with_digest(parsed.digest))
        else:
            self.store.untag(record.id, tag=parsed.tagged())

    def gc(self, in_use: Iterable[str | Path] = ()) -> GcResult:
        """Delete untagged images and every blob and layer directory no image refers to.

        ``in_use`` names what existing containers use: image ids (``ImageInfo.id``), and/or their
        layer directories (``ImageInfo.layer_dirs``) or diff ids. Passing the layer directories
        keeps a container's layers even if its image was removed while it ran.
        """
        keep = {f"sha256:{item.name}" if isinstance(item, Path) else item for item in in_use}
        return self.store.gc(keep | set(self._pinned))

    # -- other sources ---------------------------------------------------------------------------

    def export_oci(self, ref: str, dest: Path, ref_name: str | None = None) -> None:
        """Write the image ``ref`` names as an OCI image layout directory (for skopeo and friends)."""
        from .importer import export_oci_layout

        record = self._lookup(ref)
        if record is None:
            raise ImageNotFound(f"image {ref!r} not found")
        export_oci_layout(self.store, record, Path(dest), ref_name)

    async def import_archive(self, path: Path, name: str | None = None) -> builtins.list[ImageInfo]:
        """Import an OCI layout (directory or tar) or a ``docker save`` tar; see :mod:`.importer`."""
        from .importer import open_archive

        infos = []
        with open_archive(Path(path)) as source:
            for image in source.images(self.platform):
                tags = image.tags(name)

                async def fetch(desc: Descriptor) -> None:
                    await asyncio.to_thread(source.copy_blob, desc, self.store)

                record = await self.install(image.manifest, fetch, tags=tags)
                infos.append(self._info(record))
        return infos

    async def build_busybox(self, name: str = "busybox:latest", busybox: Path = Path("/bin/busybox")) -> ImageInfo:
        """Build the offline demo image from the host's static busybox; see :mod:`.busybox`."""
        from .busybox import build_busybox_image

        built = await asyncio.to_thread(build_busybox_image, busybox)
        for data, digest in ((built.config, built.config_digest), (built.layer, built.layer_digest)):
            self.store.write_blob(data, digest)

        async def fetch(desc: Descriptor) -> None:
            raise ManifestError(f"blob {desc.digest} missing from the built image")

        tag = self._parse(name).tagged()
        record = await self.install(built.manifest, fetch, tags=[tag] if tag else [])
        return self._info(record)
