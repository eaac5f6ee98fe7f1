"""Image references, parsed and normalized the way Docker and containerd do it.

``busybox``, ``busybox:1.36``, ``library/busybox`` and ``docker.io/library/busybox:latest`` all
name the same image; the store keys everything by the fully qualified form
(``docker.io/library/busybox:latest``), which is also what the CRI reports as repoTags, and users
see the familiar form (``busybox:latest``) in the CLI. A reference may carry a tag, a digest, or
both (``name:tag@sha256:...``: the digest wins when pulling, as in containerd).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
DEFAULT_TAG = "latest"
# Docker Hub's registry API does not live at docker.io itself.
DOCKER_HUB_API_HOST = "registry-1.docker.io"
_LEGACY_DOMAINS = {"index.docker.io": DEFAULT_DOMAIN}

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_ANY_DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}$")
_HEX64_RE = re.compile(r"^[a-f0-9]{64}$")
_NAME_TOTAL_LIMIT = 255


class InvalidReference(ValueError):
    """The string is not a valid image reference (the kubelet's ``InvalidImageName``)."""


@dataclass(frozen=True)
class Reference:
    """A normalized reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository name, fully qualified: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository name as people write it: ``busybox``, ``myorg/app``, ``host:5000/app``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        return self.path.removeprefix("library/") if self.path.count("/") == 1 else self.path

    @property
    def api_host(self) -> str:
        """The host:port that serves this repository's distribution API."""
        return DOCKER_HUB_API_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def pull_reference(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest if known, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def tagged(self) -> str | None:
        """``name:tag`` (a repoTag), or None when the reference carries no tag."""
        return f"{self.name}:{self.tag}" if self.tag else None

    def with_digest(self, digest: str) -> str:
        """``name@digest`` (a repoDigest)."""
        return f"{self.name}@{digest}"

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def familiar(canonical: str) -> str:
    """``docker.io/library/busybox:latest`` -> ``busybox:latest`` (for humans; any valid reference)."""
    ref = parse(canonical, default_tag=False)
    s = ref.familiar_name
    if ref.tag:
        s += f":{ref.tag}"
    if ref.digest:
        s += f"@{ref.digest}"
    return s


def is_digest(value: str) -> bool:
    return bool(_DIGEST_RE.match(value))


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalize ``text``; without tag or digest the tag is ``latest`` (if ``default_tag``).

    Raises :class:`InvalidReference` with a message naming what is wrong.
    """
    if not text or text != text.strip():
        raise InvalidReference(f"invalid reference format: {text!r}")
    remainder, digest = text, None
    if "@" in text:
        remainder, digest = text.split("@", 1)
        if not _ANY_DIGEST_RE.match(digest):
            raise InvalidReference(f"invalid reference format: invalid digest {digest!r}")
        if not _DIGEST_RE.match(digest):
            raise InvalidReference(f"unsupported digest algorithm or format in {text!r} (only sha256 is supported)")
    tag = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid reference format: invalid tag {tag!r}")
    if not remainder:
        raise InvalidReference(f"invalid reference format: {text!r}")
    if _HEX64_RE.match(remainder) and tag is None and digest is None:
        raise InvalidReference(
            f"invalid repository name ({remainder}), cannot specify 64-byte hexadecimal strings"
        )
    first, sep, rest = remainder.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        domain, path = first, rest
        if not _DOMAIN_RE.match(domain):
            raise InvalidReference(f"invalid reference format: invalid registry host {domain!r}")
    else:
        domain, path = DEFAULT_DOMAIN, remainder
    domain = _LEGACY_DOMAINS.get(domain, domain)
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    if not _PATH_RE.match(path):
        if path.lower() != path:
            raise InvalidReference(f"invalid reference format: repository name must be lowercase: {text!r}")
        raise InvalidReference(f"invalid reference format: {text!r}")
    if len(domain) + 1 + len(path) > _NAME_TOTAL_LIMIT:
        raise InvalidReference(f"repository name must not be more than {_NAME_TOTAL_LIMIT} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest)
