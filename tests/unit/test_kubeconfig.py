"""Kubeconfig loading (explicit path, $KUBECONFIG merge, files relative to the kubeconfig) and
writing (the reference "Kubeconfig minimum" shape, mode 0600, readable by the real kubectl)."""

from __future__ import annotations

import base64
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from apimachinery.client.kubeconfig import KubeconfigError, load_kubeconfig, write_kubeconfig

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _write(path: Path, doc: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def _config(cluster: str, server: str, ctx: str, *, current: str | None = None, ns: str | None = None) -> dict[str, object]:
    context: dict[str, str] = {"cluster": cluster, "user": f"{cluster}-user"}
    if ns:
        context["namespace"] = ns
    doc: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server}}],
        "users": [{"name": f"{cluster}-user", "user": {"token": f"tok-{cluster}"}}],
        "contexts": [{"name": ctx, "context": context}],
    }
    if current:
        doc["current-context"] = current
    return doc


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "sub" / "admin.conf", "https://127.0.0.1:6443", PEM, "secret-token")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kube-lite",
                "cluster": {
                    "server": "https://127.0.0.1:6443",
                    "certificate-authority-data": base64.b64encode(PEM).decode(),
                },
            }
        ],
        "users": [{"name": "admin", "user": {"token": "secret-token"}}],
        "contexts": [{"name": "kube-lite", "context": {"cluster": "kube-lite", "user": "admin", "namespace": "default"}}],
        "current-context": "kube-lite",
    }
    cfg = load_kubeconfig(path)
    assert cfg.server == "https://127.0.0.1:6443"
    assert cfg.ca_data == PEM
    assert cfg.token == "secret-token"
    assert cfg.namespace == "default"
    assert not cfg.insecure
    assert list(path.parent.iterdir()) == [path], "no temp file may be left behind"


def test_rewrite_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    write_kubeconfig(path, "https://a:1", PEM, "one")
    write_kubeconfig(path, "https://b:2", PEM.decode(), "two", namespace="prod")
    cfg = load_kubeconfig(path)
    assert (cfg.server, cfg.token, cfg.namespace) == ("https://b:2", "two", "prod")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="real kubectl not installed")
def test_real_kubectl_reads_the_written_file(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443", PEM, "tok")
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(path), "config", "view", "-o", "jsonpath={.contexts[0].context.user}"],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout == "admin"


def test_kubeconfig_env_merge_first_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _write(tmp_path / "a", _config("one", "https://one:1", "ctx-one", ns="alpha"))
    b = _write(tmp_path / "b", _config("two", "https://two:2", "ctx-two", current="ctx-two"))
    c = _write(tmp_path / "c", {**_config("one", "https://shadowed:9", "ctx-c"), "current-context": "ctx-one"})
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{a}:{b}:{c}")
    cfg = load_kubeconfig()
    # current-context comes from b (the first file setting it); cluster "two" from b as well.
    assert (cfg.server, cfg.token, cfg.namespace) == ("https://two:2", "tok-two", "default")
    # Contexts from every file are usable; for a duplicated cluster name the first file wins.
    cfg = load_kubeconfig(context="ctx-one")
    assert (cfg.server, cfg.namespace) == ("https://one:1", "alpha")
    cfg = load_kubeconfig(context="ctx-c")
    assert cfg.server == "https://one:1"


def test_files_resolve_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(PEM)
    (tmp_path / "pki" / "token").write_text("from-file\n")
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "https://x:6443/", "certificate-authority": "pki/ca.crt"}}],
        "users": [{"name": "u", "user": {"tokenFile": "pki/token"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    cfg = load_kubeconfig(_write(tmp_path / "config", doc))
    assert cfg.ca_data == PEM
    assert cfg.token == "from-file"
    assert cfg.server == "https://x:6443"


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    doc = _config("c", "https://x:1", "x", current="x")
    doc["clusters"] = [{"name": "c", "cluster": {"server": "https://x:1", "insecure-skip-tls-verify": True}}]
    assert load_kubeconfig(_write(tmp_path / "k", doc)).insecure


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("current-context"), "current-context is not set"),
        (lambda d: d.update({"current-context": "nope"}), 'context "nope" does not exist'),
        (lambda d: d.update({"clusters": []}), 'cluster "c" does not exist'),
        (lambda d: d.update({"users": []}), 'user "c-user" does not exist'),
        (
            lambda d: d.update(
                {"clusters": [{"name": "c", "cluster": {"server": "https://x", "insecure-skip-tls-verify": True,
                                                         "certificate-authority-data": base64.b64encode(PEM).decode()}}]}
            ),
            "insecure flag is not allowed",
        ),
        (
            lambda d: d.update({"clusters": [{"name": "c", "cluster": {"server": "https://x", "certificate-authority-data": "%%%"}}]}),
            "not valid base64",
        ),
    ],
)
def test_errors_are_clear(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = _config("c", "https://x:1", "x", current="x")
    mutate(doc)
    with pytest.raises(KubeconfigError, match=message):
        load_kubeconfig(_write(tmp_path / "k", doc))


def test_missing_and_malformed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KubeconfigError, match="no such file"):
        load_kubeconfig(tmp_path / "absent")
    (tmp_path / "bad").write_text("clusters: [unterminated\n")
    with pytest.raises(KubeconfigError, match="error loading config file"):
        load_kubeconfig(tmp_path / "bad")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(KubeconfigError, match="no kubeconfig found"):
        load_kubeconfig()
