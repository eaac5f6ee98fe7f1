"""Container images for the node's runtime: pull (OCI distribution), import, store, unpack.

The contract with the container execution side (rootfs/overlay, spawner)::

    from nodeagent.runtime.images import ImageService, ImageInfo, PullPolicy, ImageError

    images = ImageService(Path("/var/lib/kube-lite/images"))
    info: ImageInfo = await images.ensure("busybox:1.36", PullPolicy.IF_NOT_PRESENT)
    info.layer_dirs   # list[Path], LOWEST layer first. overlayfs wants lowerdir highest first:
                      #   lowerdir=":".join(str(d) for d in reversed(info.layer_dirs))
                      # The directories are shared and read-only by convention: never write
                      # into them, always use them as overlay lower layers (they hold overlayfs
                      # whiteouts: 0/0 char devices and trusted.overlay.opaque xattrs).
    info.config       # ImageConfig: entrypoint, cmd, env ("K=V" list), working_dir, user,
                      #   stop_signal, labels, exposed_ports
    info.id           # "sha256:..." (config digest)

    # imagePullSecrets: credentials for this pull only (never cached for other pulls)
    await images.ensure(ref, "Always", credentials=Credentials("user", "password"))
    images.status(ref) -> ImageInfo | None      # by reference, repo digest, or image id (prefix)
    images.list() -> list[ImageInfo]
    images.remove(ref)                          # a tag/digest reference; by id: the whole image
    images.gc(in_use=[*ids, *layer_dirs])       # what existing containers use stays
    images.fs_usage() -> (bytes, inodes)        # CRI ImageFsInfo

``ensure`` raises :class:`ImageError` subclasses whose ``reason`` is the kubelet's waiting reason
(``ErrImagePull``, ``ErrImageNeverPull``, ``InvalidImageName``) and whose message is what the
kubelet puts in the container status. ``status``/``list``/``remove``/``gc`` are synchronous and
cheap; ``pull``/``ensure``/``import_archive``/``build_busybox`` are coroutines. Call
``await images.close()`` on shutdown (it owns an aiohttp session).

Modules: :mod:`.reference` (parse/normalize names), :mod:`.store` (blobs, layers, index, GC),
:mod:`.unpack` (safe layer application), :mod:`.manifest` (media types, platform choice),
:mod:`.registry` (distribution API client), :mod:`.importer` (OCI layout / docker save),
:mod:`.busybox` (offline demo image), :mod:`.service` (the above, together), :mod:`.cli`.
"""

from .manifest import ImageConfig
from .reference import InvalidReference, Reference, parse
from .registry import Credentials
from .service import (
    ImageError,
    ImageInfo,
    ImageNeverPull,
    ImageNotFound,
    ImageService,
    InvalidImageName,
    PullError,
    PullPolicy,
    default_pull_policy,
)

__all__ = [
    "Credentials",
    "ImageConfig",
    "ImageError",
    "ImageInfo",
    "ImageNeverPull",
    "ImageNotFound",
    "ImageService",
    "InvalidImageName",
    "InvalidReference",
    "PullError",
    "PullPolicy",
    "Reference",
    "default_pull_policy",
    "parse",
]
