"""Names that could traverse paths are refused at every layer that turns a name into a path:
the API's request paths, the etcd key builder, the node agent's directories, labctl's lab names."""

from __future__ import annotations

from pathlib import Path

import pytest

from apimachinery.errors import ApiError
from apimachinery.scheme import default_scheme
from controlplane.apiserver.reqinfo import parse_path
from deploy.labctl.lab import Lab, LabError
from nodeagent import pathsafe
from nodeagent.agent.volumes import pod_dir
from nodeagent.runtime.container import Runtime

SCHEME = default_scheme()


@pytest.mark.parametrize(
    ("raw_path", "message"),
    [
        ("/api/v1/namespaces/default/configmaps/a%2Fb", "name may not contain '/'"),
        ("/api/v1/namespaces/default/configmaps/..%2F..%2Fsecrets", "name may not contain '/'"),
        ("/api/v1/namespaces/default/configmaps/%2E%2E", "name may not be '..'"),
        ("/api/v1/namespaces/default/configmaps/.", "name may not be '.'"),
        ("/api/v1/namespaces/default/configmaps/100%25", "name may not contain '%'"),
        ("/api/v1/namespaces/..%2Fkube-system/configmaps/x", "namespace may not contain '/'"),
        ("/api/v1/namespaces/%2E%2E/configmaps", "namespace may not be '..'"),
        ("/api/v1/nodes/%2E%2E/status", "name may not be '..'"),
        ("/api/v1/namespaces/default/configmaps/%ff", "not valid UTF-8"),
    ],
)
def test_api_paths_refuse_traversing_names(raw_path: str, message: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_path(SCHEME, raw_path)
    assert info.value.code == 400 and message in info.value.message


def test_encoded_names_that_are_fine_still_resolve() -> None:
    info = parse_path(SCHEME, "/api/v1/namespaces/default/configmaps/web%2D1?watch=1")
    assert (info.namespace, info.name) == ("default", "web-1")


@pytest.mark.parametrize(("namespace", "name"), [("default", "a/b"), ("default", ".."), ("..", "x"), ("a/b", "x")])
def test_storage_keys_refuse_traversing_names(namespace: str, name: str) -> None:
    rt = SCHEME.by_resource("", "v1", "configmaps")
    assert rt is not None
    with pytest.raises(ApiError) as info:
        rt.storage_key(namespace, name)
    assert info.value.code == 400
    assert rt.storage_key("default", "web-1") == "/registry/configmaps/default/web-1"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x", "a\0b"])
def test_node_paths_refuse_traversing_names(bad: str, tmp_path: Path) -> None:
    with pytest.raises(pathsafe.UnsafeName, match="not usable as a file name"):
        pod_dir(tmp_path, bad)
    with pytest.raises(OSError):  # what the pod sync loop reports for a volume it cannot set up
        pathsafe.entry(bad, "volume name")
    runtime = Runtime.__new__(Runtime)
    runtime.data_dir = tmp_path
    with pytest.raises(pathsafe.UnsafeName):
        runtime.sandbox_dir(bad)
    with pytest.raises(pathsafe.UnsafeName):
        runtime.container_dir(bad)
    assert pod_dir(tmp_path, "0b6c-uid") == tmp_path / "pods" / "0b6c-uid"


@pytest.mark.parametrize("bad", ["..", "a/b", "../etc", "", "A"])
def test_lab_names_refuse_traversal(bad: str, tmp_path: Path) -> None:
    with pytest.raises(LabError, match="invalid lab name"):
        Lab(bad, tmp_path)
