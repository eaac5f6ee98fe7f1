"""Image reference parsing and normalization (Docker/containerd rules)."""

from __future__ import annotations

import pytest

from nodeagent.runtime.images.reference import InvalidReference, familiar, parse
from nodeagent.runtime.images.service import PullPolicy, default_pull_policy

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest"),
        ("myorg/app:v1", "docker.io/myorg/app:v1"),
        ("myorg/team/app", "docker.io/myorg/team/app:latest"),
        ("quay.io/coreos/etcd:v3.5.0", "quay.io/coreos/etcd:v3.5.0"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app:dev", "localhost:5000/app:dev"),
        ("127.0.0.1:5000/app@" + D, "127.0.0.1:5000/app@" + D),
        ("127.0.0.1:5000/app:1@" + D, "127.0.0.1:5000/app:1@" + D),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        ("[::1]:5000/app:x", "[::1]:5000/app:x"),
        ("a.b/c_d__e-f--g.h", "a.b/c_d__e-f--g.h:latest"),
        ("Example.com/app", "Example.com/app:latest"),  # uppercase first component can only be a host
    ],
)
def test_normalize(text: str, canonical: str) -> None:
    assert str(parse(text)) == canonical


def test_parts() -> None:
    ref = parse("127.0.0.1:5000/team/app:1@" + D)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("127.0.0.1:5000", "team/app", "1", D)
    assert ref.pull_reference == D  # the digest wins over the tag
    assert ref.api_host == "127.0.0.1:5000"
    assert parse("busybox").api_host == "registry-1.docker.io"
    assert parse("busybox").tagged() == "docker.io/library/busybox:latest"
    assert parse("busybox@" + D).tagged() is None
    assert parse("busybox@" + D).with_digest(D) == "docker.io/library/busybox@" + D
    assert parse("busybox", default_tag=False).tag is None


@pytest.mark.parametrize(
    ("canonical", "short"),
    [
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/myorg/app:v1", "myorg/app:v1"),
        ("docker.io/library/a/b:1", "library/a/b:1"),
        ("127.0.0.1:5000/app@" + D, "127.0.0.1:5000/app@" + D),
    ],
)
def test_familiar(canonical: str, short: str) -> None:
    assert familiar(canonical) == short


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid reference format"),
        ("Busybox", "must be lowercase"),
        ("busybox:", "invalid tag"),
        ("busybox:-x", "invalid tag"),
        ("busybox:" + "x" * 129, "invalid tag"),
        ("busybox@sha256:1234", "invalid digest"),
        ("busybox@sha512:" + "a" * 128, "only sha256"),
        ("busybox@sha256:" + "A" * 64, "only sha256"),
        ("-busybox", "invalid reference format"),
        ("busy//box", "invalid reference format"),
        ("busybox/", "invalid reference format"),
        (" busybox", "invalid reference format"),
        ("host:port/app", "invalid registry host"),
        ("a" * 64, "64-byte hexadecimal"),
        ("example.com/" + "a" * 250, "more than 255"),
        (":tag", "invalid reference format"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message):
        parse(text)


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("busybox", PullPolicy.ALWAYS),
        ("busybox:latest", PullPolicy.ALWAYS),
        ("busybox:1.36", PullPolicy.IF_NOT_PRESENT),
        ("busybox@" + D, PullPolicy.IF_NOT_PRESENT),
        ("busybox:latest@" + D, PullPolicy.IF_NOT_PRESENT),
    ],
)
def test_default_pull_policy(image: str, policy: PullPolicy) -> None:
    assert default_pull_policy(image) is policy
