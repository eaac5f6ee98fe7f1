"""Request paths resolve to the resource, namespace, name and subresource Kubernetes would pick."""

from __future__ import annotations

import pytest

from apimachinery.errors import ApiError
from apimachinery.scheme import default_scheme
from controlplane.apiserver.reqinfo import parse_bool, parse_path


@pytest.mark.parametrize(
    ("path", "plural", "ns", "name", "sub"),
    [
        ("/api/v1/pods", "pods", None, None, None),
        ("/api/v1/namespaces/default/pods", "pods", "default", None, None),
        ("/api/v1/namespaces/default/pods/web-1", "pods", "default", "web-1", None),
        ("/api/v1/namespaces/default/pods/web-1/status", "pods", "default", "web-1", "status"),
        ("/api/v1/namespaces/default/pods/web-1/binding", "pods", "default", "web-1", "binding"),
        ("/api/v1/namespaces", "namespaces", None, None, None),
        ("/api/v1/namespaces/kube-system", "namespaces", None, "kube-system", None),
        ("/api/v1/namespaces/kube-system/status", "namespaces", None, "kube-system", "status"),
        ("/api/v1/namespaces/kube-system/finalize", "namespaces", None, "kube-system", "finalize"),
        ("/api/v1/nodes/n1/status", "nodes", None, "n1", "status"),
        ("/apis/apps/v1/deployments", "deployments", None, None, None),
        ("/apis/apps/v1/namespaces/a/deployments/web/scale", "deployments", "a", "web", "scale"),
        ("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", "leases", "kube-node-lease", "n1", None),
    ],
)
def test_paths(path: str, plural: str, ns: str | None, name: str | None, sub: str | None) -> None:
    info = parse_path(default_scheme(), path)
    assert (info.rt.plural, info.namespace, info.name, info.subresource) == (plural, ns, name, sub)


def test_legacy_watch_prefix() -> None:
    info = parse_path(default_scheme(), "/api/v1/watch/namespaces/default/pods")
    assert info.legacy_watch and info.rt.plural == "pods" and info.namespace == "default"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/widgets",
        "/apis/apps/v2/deployments",
        "/api/v1/namespaces/default/nodes",  # cluster-scoped kind under a namespace
        "/api/v1/namespaces/default/pods/x/nonsense",
        "/apis/apps/v1/namespaces/a/deployments/web/scale/extra",
        "/other/v1/pods",
    ],
)
def test_unknown_paths_are_404(path: str) -> None:
    with pytest.raises(ApiError) as e:
        parse_path(default_scheme(), path)
    assert e.value.code == 404


def test_dot_names_refused() -> None:
    with pytest.raises(ApiError) as e:
        parse_path(default_scheme(), "/api/v1/namespaces/default/pods/..")
    assert e.value.code == 400


def test_go_parse_bool() -> None:
    assert parse_bool("True", "watch") and parse_bool("1", "watch") and parse_bool("t", "watch")
    assert not parse_bool("False", "watch") and not parse_bool(None, "watch") and not parse_bool("0", "watch")
    with pytest.raises(ApiError):
        parse_bool("yes", "watch")
