"""What ``GET /version`` answers.

kubectl compares the server's major/minor with its own and warns when they are more than one minor
apart. kube-lite serves the built-in kinds with the wire shapes of Kubernetes 1.36 (the release the
API types track, including fields such as ``terminatingReplicas`` and the container ``stopSignal``),
so it claims 1.36: within one minor of the kubectl 1.37 the project ships and tests with. The build
metadata after ``+`` names kube-lite and its own version, which keeps ``gitVersion`` valid semver
(client-go parses it) while showing users which server they talk to.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata

KUBERNETES_MAJOR = "1"
KUBERNETES_MINOR = "36"
# The build time of this distribution is not recorded anywhere; a fixed date keeps /version stable.
_BUILD_DATE = "2026-01-01T00:00:00Z"


def kube_lite_version() -> str:
    try:
        return metadata.version("kube-lite")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def _platform() -> str:
    """``linux/amd64`` style, as Go's GOOS/GOARCH."""
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
        platform.machine(), platform.machine().lower()
    )
    return f"{sys.platform.removesuffix('2')}/{arch}"


def version_info() -> dict[str, str]:
    """The ``version.Info`` document; every field is present, as clients require."""
    lite = kube_lite_version()
    return {
        "major": KUBERNETES_MAJOR,
        "minor": KUBERNETES_MINOR,
        "gitVersion": f"v{KUBERNETES_MAJOR}.{KUBERNETES_MINOR}.0+kube-lite-{lite}",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": _BUILD_DATE,
        # kubectl shows this but never parses it; naming the interpreter is more honest than a Go version.
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": _platform(),
    }
