"""Per-component credentials: client certificates signed by the cluster CA, in kubeconfigs.

Nothing but the admin uses the admin token. The controllers and the scheduler get their own
certificates (``CN=system:kube-controller-manager`` / ``CN=system:kube-scheduler``, which the
built-in RBAC bindings name), and each node gets ``CN=system:node:<name>, O=system:nodes``,
which the Node authorizer confines to that node's own objects.

    controlplane node-credentials --data-dir DIR --node NAME     -> DIR/nodes/NAME.kubeconfig
    controlplane certs issue --data-dir DIR --user NAME [--group G ...] --out OUTDIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from apimachinery.client.kubeconfig import KubeconfigError, load_kubeconfig, write_kubeconfig
from apimachinery.pki import write_private
from apimachinery.validation.names import path_segment_name_errors
from controlplane.apiserver.authz.bootstrap import CONTROLLER_MANAGER_USER, SCHEDULER_USER
from controlplane.apiserver.authz.node import NODE_USER_PREFIX, NODES_GROUP
from controlplane.apiserver.certs import Pki, issue_certificate

# kubeconfig file (in the data dir) -> the user it authenticates as
COMPONENT_KUBECONFIGS = {"controllers.kubeconfig": CONTROLLER_MANAGER_USER, "scheduler.kubeconfig": SCHEDULER_USER}


def pki_of(data_dir: Path) -> Pki:
    pki_dir = data_dir / "pki"
    pki = Pki(pki_dir / "ca.crt", pki_dir / "ca.key", pki_dir / "apiserver.crt", pki_dir / "apiserver.key")
    if not (pki.ca_cert.exists() and pki.ca_key.exists()):
        raise FileNotFoundError(f"no cluster CA in {pki_dir} (start the control plane with --data-dir {data_dir} once)")
    return pki


def write_user_kubeconfig(pki: Pki, path: Path, server: str, user: str, groups: list[str] | None = None) -> Path:
    """A kubeconfig whose user is a fresh client certificate ``CN=user, O=groups``."""
    cert, key = issue_certificate(pki, user, organizations=groups or [], client=True)
    return write_kubeconfig(path, server, pki.ca_pem(), None, user=user, client_cert=cert, client_key=key)


def ensure_component_kubeconfigs(data_dir: Path, pki: Pki, server: str) -> dict[str, Path]:
    """controllers.kubeconfig and scheduler.kubeconfig, issued once (re-issued if missing or
    pointing at another server)."""
    out: dict[str, Path] = {}
    for filename, user in COMPONENT_KUBECONFIGS.items():
        path = data_dir / filename
        if not _usable(path, server):
            write_user_kubeconfig(pki, path, server, user)
        out[filename] = path
    return out


def _usable(path: Path, server: str) -> bool:
    try:
        return path.exists() and load_kubeconfig(path).server == server
    except KubeconfigError:
        return False


def write_node_kubeconfig(data_dir: Path, node: str, server: str | None = None) -> Path:
    """``DATA/nodes/<node>.kubeconfig`` with the node's own client certificate."""
    problems = path_segment_name_errors(node)
    if not node or problems:
        raise ValueError(f"invalid node name {node!r}: {problems[0] if problems else 'empty'}")
    pki = pki_of(data_dir)
    server = server or _admin_server(data_dir)
    return write_user_kubeconfig(pki, data_dir / "nodes" / f"{node}.kubeconfig", server,
                                 f"{NODE_USER_PREFIX}{node}", [NODES_GROUP])


def _admin_server(data_dir: Path) -> str:
    try:
        return load_kubeconfig(data_dir / "admin.kubeconfig").server
    except KubeconfigError as e:
        raise FileNotFoundError(f"cannot tell the server's address: {e} (pass --server)") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="controlplane", description="issue credentials signed by the cluster CA")
    sub = p.add_subparsers(dest="command", required=True)
    n = sub.add_parser("node-credentials", help="write DATA_DIR/nodes/NODE.kubeconfig for one node agent")
    n.add_argument("--data-dir", type=Path, required=True)
    n.add_argument("--node", required=True, help="the node's name (its Node object)")
    n.add_argument("--server", default=None, help="API server URL (default: the admin kubeconfig's)")
    c = sub.add_parser("certs", help="client certificates")
    c.add_argument("action", choices=["issue"])
    c.add_argument("--data-dir", type=Path, required=True)
    c.add_argument("--user", required=True, help="the user name (certificate CN)")
    c.add_argument("--group", action="append", default=[], help="a group (certificate O); repeatable")
    c.add_argument("--out", type=Path, required=True, help="directory for USER.crt, USER.key, USER.kubeconfig")
    c.add_argument("--server", default=None, help="API server URL (default: the admin kubeconfig's)")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "node-credentials":
            print(write_node_kubeconfig(args.data_dir, args.node, args.server))
            return 0
        pki = pki_of(args.data_dir)
        server = args.server or _admin_server(args.data_dir)
        cert, key = issue_certificate(pki, args.user, organizations=args.group, client=True)
        args.out.mkdir(parents=True, exist_ok=True)
        safe = args.user.replace(":", "_").replace("/", "_")
        (args.out / f"{safe}.crt").write_bytes(cert)
        write_private(args.out / f"{safe}.key", key)
        path = write_kubeconfig(args.out / f"{safe}.kubeconfig", server, pki.ca_pem(), None, user=args.user,
                                client_cert=cert, client_key=key)
        print(path)
        return 0
    except (OSError, ValueError) as e:
        print(f"controlplane: {e}", file=sys.stderr)
        return 1
