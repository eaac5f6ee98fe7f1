"""``controlplane token create|list|delete``: bootstrap tokens for joining nodes.

    controlplane token create --kubeconfig admin.kubeconfig [--ttl 24h] [--print-join-command]

prints a fresh token (stored as a bootstrap-token Secret, see
:mod:`controlplane.apiserver.bootstraptoken`); with ``--print-join-command`` the whole line an
agent machine runs, including the CA hash that lets it trust the server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from apimachinery import bootstraptoken as bt
from apimachinery.api.core_v1 import Secret
from apimachinery.client import ApiClient, load_kubeconfig
from apimachinery.client.kubeconfig import KubeconfigError
from apimachinery.duration import parse_duration
from apimachinery.errors import ApiError
from apimachinery.pki import ca_cert_hash


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", required=True, help="admin kubeconfig (e.g. DATA_DIR/admin.kubeconfig)")
    p = argparse.ArgumentParser(prog="controlplane token", description="manage bootstrap (join) tokens")
    sub = p.add_subparsers(dest="verb", required=True)
    c = sub.add_parser("create", help="create a join token", parents=[common])
    c.add_argument("--ttl", default="24h", help="lifetime, e.g. 30m, 24h; 0 = never expires (default 24h)")
    c.add_argument("--description", default="")
    c.add_argument("--token", default=None, help="use this token (ID.SECRET) instead of a random one")
    c.add_argument("--print-join-command", action="store_true", help="print the agent's join command line")
    sub.add_parser("list", help="list join tokens", parents=[common])
    d = sub.add_parser("delete", help="delete a join token", parents=[common])
    d.add_argument("token_id", help="the token's id (the part before the dot) or the whole token")
    return p


async def _run(args: argparse.Namespace) -> None:
    config = load_kubeconfig(args.kubeconfig)
    async with ApiClient(config) as client:
        rt = client.resource(Secret)
        if args.verb == "create":
            ttl = parse_duration(args.ttl)
            token = bt.BootstrapToken.parse(args.token or bt.generate_token())
            await client.create(rt, token.secret_manifest(ttl or None, args.description), bt.NAMESPACE)
            text = f"{token.token_id}.{token.secret}"
            if args.print_join_command:
                assert config.ca_data is not None
                print(f"deploy/install.sh agent --server {config.server} --token {text} "
                      f"--ca-cert-hash {ca_cert_hash(config.ca_data)}")
            else:
                print(text)
        elif args.verb == "list":
            items = (await client.list(rt, bt.NAMESPACE)).get("items") or []
            print(f"{'TOKEN-ID':<10} {'EXPIRES':<22} DESCRIPTION")
            for s in items:
                if s.get("type") != bt.SECRET_TYPE:
                    continue
                data = bt.secret_fields(s.get("data"))
                print(f"{data.get('token-id', ''):<10} {data.get('expiration', '<never>'):<22} {data.get('description', '')}")
        else:
            token_id = args.token_id.partition(".")[0]
            await client.delete(rt, bt.SECRET_PREFIX + token_id, bt.NAMESPACE)
            print(f"bootstrap token {token_id!r} deleted")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_run(args))
    except (ApiError, KubeconfigError, ValueError) as e:
        print(f"controlplane token: {e}", file=sys.stderr)
        return 1
    return 0
