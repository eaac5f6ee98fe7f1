"""OCI / Docker v2 manifests, indexes and image configs: media types, parsing, platform choice.

Only what the runtime needs is parsed; unknown fields are ignored, as the specs require. Docker
schema 1 manifests are refused (registries have not served them by default since 2019).
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws")

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
# The Accept header for manifest requests, most preferred first.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MAX_MANIFEST_BYTES = 4 << 20  # what distribution itself accepts


class ManifestError(ValueError):
    """A manifest, index or config is malformed or of an unsupported kind."""


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")


_ARCH = {"x86_64": ("amd64", None), "amd64": ("amd64", None), "aarch64": ("arm64", None), "arm64": ("arm64", None),
         "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "i686": ("386", None), "i386": ("386", None),
         "ppc64le": ("ppc64le", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None)}


def host_platform() -> Platform:
    arch, variant = _ARCH.get(platform.machine(), (platform.machine(), None))
    return Platform("linux", arch, variant)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: Any, what: str) -> Descriptor:
        if not isinstance(d, dict) or not isinstance(d.get("digest"), str) or not isinstance(d.get("size"), int):
            raise ManifestError(f"{what}: descriptor needs a digest and a size")
        p = d.get("platform")
        plat = None
        if isinstance(p, dict):
            plat = Platform(str(p.get("os", "")), str(p.get("architecture", "")), p.get("variant"))
        annotations = d.get("annotations") or {}
        return cls(str(d.get("mediaType", "")), d["digest"], d["size"], plat, dict(annotations))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: list[Descriptor]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: list[Descriptor]


def parse(data: bytes, content_type: str | None = None) -> Manifest | Index:
    """Parse a manifest or an index; the document's own mediaType wins over the HTTP header."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ManifestError(f"manifest is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ManifestError("manifest is not a JSON object")
    media_type = doc.get("mediaType") or (content_type or "").split(";")[0].strip()
    if not media_type:
        # OCI allows mediaType to be omitted; the shape tells which document it is.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ManifestError("Docker image manifest schema 1 is not supported")
    if media_type in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError("image index has no manifests list")
        return Index(media_type, [Descriptor.from_json(m, "index entry") for m in entries])
    if media_type in MANIFEST_TYPES:
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ManifestError("image manifest has no layers list")
        return Manifest(media_type, Descriptor.from_json(doc.get("config"), "config"),
                        [Descriptor.from_json(layer, "layer") for layer in layers])
    raise ManifestError(f"unsupported manifest media type {media_type!r}")


def select_platform(index: Index, want: Platform) -> Descriptor:
    """The index entry for ``want`` (a missing variant matches any; attestations never match)."""
    candidates = [m for m in index.manifests
                  if m.platform and m.platform.os == want.os and m.platform.architecture == want.architecture
                  and m.media_type in (*MANIFEST_TYPES, "")]
    exact = [m for m in candidates if want.variant is None or m.platform is None or m.platform.variant in (None, want.variant)]
    if exact:
        return exact[0]
    available = ", ".join(sorted({str(m.platform) for m in index.manifests if m.platform})) or "none"
    raise ManifestError(f"no manifest for platform {want} in the image index (available: {available})")


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config a container runtime uses (OCI image spec ``config``)."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)  # "KEY=value"
    working_dir: str = ""
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    exposed_ports: list[str] = field(default_factory=list)  # "80/tcp"
    architecture: str = ""
    os: str = ""


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def parse_config(data: bytes) -> tuple[ImageConfig, list[str]]:
    """(runtime config, rootfs diff ids) from an image config blob."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ManifestError(f"image config is not JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ManifestError("image config is not a JSON object")
    rootfs = doc.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ManifestError("image config has no rootfs.diff_ids")
    c = doc.get("config") or {}
    if not isinstance(c, dict):
        c = {}
    labels = c.get("Labels") or {}
    config = ImageConfig(
        entrypoint=_strings(c.get("Entrypoint")),
        cmd=_strings(c.get("Cmd")),
        env=_strings(c.get("Env")),
        working_dir=str(c.get("WorkingDir") or ""),
        user=str(c.get("User") or ""),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        stop_signal=str(c.get("StopSignal") or ""),
        exposed_ports=sorted(c.get("ExposedPorts") or {}) if isinstance(c.get("ExposedPorts"), dict) else [],
        architecture=str(doc.get("architecture") or ""),
        os=str(doc.get("os") or ""),
    )
    return config, list(diff_ids)
