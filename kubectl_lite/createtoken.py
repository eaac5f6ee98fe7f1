"""``create token NAME``: a short-lived token for a service account (TokenRequest), printed alone
on stdout so it can be captured, as ``kubectl create token`` does."""

from __future__ import annotations

import argparse

from apimachinery.api.core_v1 import ServiceAccount
from apimachinery.duration import parse_duration
from kubectl_lite.context import Cli
from kubectl_lite.resources import CliError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", default=None, help="requested lifetime, e.g. 10m or 1h (default: the server's, 1h)")
    p.add_argument("--audience", action="append", default=[], help="intended audience (repeatable)")
    p.add_argument("--bound-object-kind", default=None, choices=["Pod"], help="bind the token to an object of this kind")
    p.add_argument("--bound-object-name", default=None, help="name of the object the token is bound to")
    p.add_argument("--bound-object-uid", default=None, help="UID of the object the token is bound to")


async def run(cli: Cli, args: argparse.Namespace, words: list[str]) -> None:
    """``words``: what follows ``create token`` (the service account's name)."""
    if len(words) != 1:
        raise CliError(f"exactly one NAME is required, got {len(words)}")
    name = words[0]
    spec: dict[str, object] = {"audiences": list(args.audience)}
    if args.duration is not None:
        try:
            seconds = parse_duration(args.duration)
        except ValueError as e:
            raise CliError(str(e)) from None
        if seconds <= 0 or seconds != int(seconds):
            raise CliError("--duration must be a positive number of whole seconds")
        spec["expirationSeconds"] = int(seconds)
    if args.bound_object_kind:
        if not args.bound_object_name:
            raise CliError("--bound-object-name is required if --bound-object-kind is provided")
        spec["boundObjectRef"] = {"kind": args.bound_object_kind, "apiVersion": "v1",
                                  "name": args.bound_object_name, "uid": args.bound_object_uid or ""}
    elif args.bound_object_name or args.bound_object_uid:
        raise CliError("--bound-object-name and --bound-object-uid need --bound-object-kind")
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "metadata": {"name": name}, "spec": spec}
    answer = await cli.client.create(cli.client.resource(ServiceAccount), body, cli.namespace, subresource="token")
    cli.print(str((answer.get("status") or {}).get("token") or ""))
