"""Kubeconfig files: find them like kubectl does, turn one context into a :class:`ClientConfig`,
and write the minimal admin kubeconfig the control plane hands out.

Lookup order (kubectl's): an explicit path, else every file named in ``$KUBECONFIG``
(colon-separated; missing files are skipped; for each cluster/user/context name and for
``current-context`` the *first* file that sets it wins), else ``~/.kube/config``.
Relative file references (``certificate-authority``, ``tokenFile``, ``client-certificate``)
resolve against the directory of the kubeconfig file that names them, as in kubectl.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class KubeconfigError(Exception):
    """A kubeconfig that cannot be found, parsed or used; the message is meant for users."""


@dataclass
class ClientConfig:
    """Everything an API client needs to reach and authenticate to one API server."""

    server: str
    ca_data: bytes | None = None
    token: str | None = None
    namespace: str = "default"
    insecure: bool = False
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None


@dataclass
class _Entry:
    """One named cluster/user/context together with the file that defined it."""

    body: dict[str, Any]
    origin: Path


def _default_paths() -> list[Path]:
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"error loading config file \"{path}\": {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeconfigError(f"error loading config file \"{path}\": not a kubeconfig (expected a mapping)")
    return data


def _named(data: dict[str, Any], section: str, inner: str, path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in data.get(section) or []:
        if not isinstance(item, dict) or not item.get("name"):
            raise KubeconfigError(f"error loading config file \"{path}\": every entry of {section} needs a name")
        body = item.get(inner) or {}
        if not isinstance(body, dict):
            raise KubeconfigError(f"error loading config file \"{path}\": {section}[{item['name']}].{inner} must be a mapping")
        out[str(item["name"])] = body
    return out


def _file_bytes(entry: _Entry, data_key: str, file_key: str) -> bytes | None:
    """``<x>-data`` (base64) wins over ``<x>`` (a file path), as in kubectl."""
    raw = entry.body.get(data_key)
    if raw:
        try:
            return base64.b64decode(str(raw), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KubeconfigError(f"{data_key} is not valid base64 in {entry.origin}") from exc
    ref = entry.body.get(file_key)
    return _read_ref(entry, file_key, str(ref)) if ref else None


def _read_ref(entry: _Entry, what: str, ref: str) -> bytes:
    p = Path(ref).expanduser()
    if not p.is_absolute():
        p = entry.origin.parent / p
    try:
        return p.read_bytes()
    except OSError as exc:
        raise KubeconfigError(f"unable to read {what} {p}: {exc.strerror or exc}") from exc


def kubeconfig_files(path: str | Path | None = None) -> list[Path]:
    """The files a kubeconfig is read from, in precedence order (see the module docstring)."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.exists():
            raise KubeconfigError(f"stat {p}: no such file or directory")
        return [p]
    files = [p for p in _default_paths() if p.exists()]
    if not files:
        where = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        raise KubeconfigError(f"no kubeconfig found (looked at {where}); pass --kubeconfig or set KUBECONFIG")
    return files


@dataclass
class _Merged:
    clusters: dict[str, _Entry]
    users: dict[str, _Entry]
    contexts: dict[str, _Entry]
    current: str


def _merge(files: list[Path]) -> _Merged:
    merged = _Merged({}, {}, {}, "")
    for f in files:
        data = _read(f)
        for name, body in _named(data, "clusters", "cluster", f).items():
            merged.clusters.setdefault(name, _Entry(body, f))
        for name, body in _named(data, "users", "user", f).items():
            merged.users.setdefault(name, _Entry(body, f))
        for name, body in _named(data, "contexts", "context", f).items():
            merged.contexts.setdefault(name, _Entry(body, f))
        if not merged.current and data.get("current-context"):
            merged.current = str(data["current-context"])
    return merged


def merged_kubeconfig(path: str | Path | None = None) -> dict[str, Any]:
    """The kubeconfig as kubectl sees it after merging every file (``kubectl config view``)."""
    m = _merge(kubeconfig_files(path))
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": e.body} for n, e in m.clusters.items()],
        "users": [{"name": n, "user": e.body} for n, e in m.users.items()],
        "contexts": [{"name": n, "context": e.body} for n, e in m.contexts.items()],
        "current-context": m.current,
        "preferences": {},
    }


def file_defining_context(path: str | Path | None, context: str | None) -> Path:
    """The file an edit of ``context`` (or of current-context, for None) belongs in, as kubectl
    chooses it: the file that defines it, else the first file of the lookup."""
    files = kubeconfig_files(path)
    for f in files:
        data = _read(f)
        if context is None and data.get("current-context"):
            return f
        if context is not None and context in _named(data, "contexts", "context", f):
            return f
    return files[0]


def edit_kubeconfig(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Read one kubeconfig file, apply ``change`` to it, write it back atomically (mode 0600)."""
    data = _read(path) if path.exists() else {"apiVersion": "v1", "kind": "Config"}
    change(data)
    _write_atomic(path, data)


def _write_atomic(target: Path, doc: dict[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(doc, fh, default_flow_style=False, sort_keys=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_kubeconfig(path: str | Path | None = None, context: str | None = None) -> ClientConfig:
    """Load the client configuration of ``context`` (default: the current context)."""
    m = _merge(kubeconfig_files(path))
    clusters, users, contexts, current = m.clusters, m.users, m.contexts, m.current

    ctx_name = context or current
    if not ctx_name:
        raise KubeconfigError("current-context is not set; pass --context or set current-context in the kubeconfig")
    ctx = contexts.get(ctx_name)
    if ctx is None:
        raise KubeconfigError(f'context "{ctx_name}" does not exist')
    cluster_name = str(ctx.body.get("cluster") or "")
    cluster = clusters.get(cluster_name)
    if cluster is None:
        raise KubeconfigError(f'context "{ctx_name}": cluster "{cluster_name}" does not exist')
    server = str(cluster.body.get("server") or "")
    if not server:
        raise KubeconfigError(f'cluster "{cluster_name}" has no server')
    user_name = str(ctx.body.get("user") or "")
    user = users.get(user_name) if user_name else None
    if user_name and user is None:
        raise KubeconfigError(f'context "{ctx_name}": user "{user_name}" does not exist')

    ca = _file_bytes(cluster, "certificate-authority-data", "certificate-authority")
    insecure = bool(cluster.body.get("insecure-skip-tls-verify", False))
    if ca and insecure:
        # kubectl refuses this combination too: it would silently ignore the CA.
        raise KubeconfigError(
            f'cluster "{cluster_name}": specifying a root certificates file with the insecure flag is not allowed'
        )

    token: str | None = None
    cert: bytes | None = None
    key: bytes | None = None
    if user is not None:
        if user.body.get("token"):
            token = str(user.body["token"])
        elif user.body.get("tokenFile"):
            token = _read_ref(user, "tokenFile", str(user.body["tokenFile"])).decode().strip() or None
        cert = _file_bytes(user, "client-certificate-data", "client-certificate")
        key = _file_bytes(user, "client-key-data", "client-key")
        if bool(cert) != bool(key):
            raise KubeconfigError(f'user "{user_name}": client certificate and key must be given together')

    return ClientConfig(
        server=server.rstrip("/"),
        ca_data=ca,
        token=token,
        namespace=str(ctx.body.get("namespace") or "default"),
        insecure=insecure,
        client_cert_data=cert,
        client_key_data=key,
    )


def _user_entry(token: str | None, cert: bytes | None, key: bytes | None) -> dict[str, str]:
    if cert is not None and key is not None:
        return {"client-certificate-data": base64.b64encode(cert).decode(),
                "client-key-data": base64.b64encode(key).decode()}
    if token is None:
        raise ValueError("a kubeconfig user needs a token or a client certificate and key")
    return {"token": token}


def write_kubeconfig(
    path: str | Path,
    server: str,
    ca_pem: bytes | str,
    token: str | None,
    *,
    cluster: str = "kube-lite",
    user: str = "admin",
    namespace: str = "default",
    client_cert: bytes | None = None,
    client_key: bytes | None = None,
) -> Path:
    """Write a one-context kubeconfig (mode 0600) atomically: readers never see half a file.

    The user authenticates with ``token`` or with a client certificate and key (PEM)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    pem = ca_pem.encode() if isinstance(ca_pem, str) else ca_pem
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": base64.b64encode(pem).decode()},
            }
        ],
        "users": [{"name": user, "user": _user_entry(token, client_cert, client_key)}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user, "namespace": namespace}}],
        "current-context": cluster,
    }
    _write_atomic(target, doc)
    return target
