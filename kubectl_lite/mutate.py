"""Imperative writes: ``create -f`` (and ``create KIND NAME``, ``create token``), ``replace -f``,
``patch``, ``scale``, ``label``, ``annotate``."""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml

from apimachinery.errors import ApiError
from apimachinery.scheme import ResourceType
from kubectl_lite import createtoken, generators
from kubectl_lite.apply import with_last_applied
from kubectl_lite.context import Cli
from kubectl_lite.errors import format_api_error, with_context
from kubectl_lite.printers import resource_name, to_json, to_yaml
from kubectl_lite.resources import (
    VALIDATE_CHOICES,
    CliError,
    field_validation,
    parse_targets,
    read_manifests,
    rt_for_object,
)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    for verb, help_text in (("create", "Create a resource from a file or from stdin"),
                            ("replace", "Replace a resource by file name or stdin")):
        p = sub.add_parser(verb, parents=parents, help=help_text)
        p.add_argument("-f", "--filename", action="append", default=[], required=verb == "replace")
        if verb == "create":
            p.add_argument("words", nargs="*", metavar="KIND [SUBTYPE] NAME",
                           help="namespace|deployment|configmap|secret generic|tls|docker-registry|service "
                                "clusterip|nodeport|loadbalancer|externalname|serviceaccount|role|clusterrole|"
                                "rolebinding|clusterrolebinding|token NAME")
            createtoken.add_arguments(p)
            generators.add_arguments(p)
        p.add_argument("-R", "--recursive", action="store_true")
        p.add_argument("--dry-run", choices=["none", "server", "client"], default="none",
                       help="client: print what would be sent; server: the server checks it and stores nothing")
        p.add_argument("-o", "--output", choices=["yaml", "json", "name"], default=None)
        p.add_argument("--validate", default="strict", choices=VALIDATE_CHOICES,
                       help="unknown fields: strict (refuse), warn, ignore")
        p.add_argument("--save-config", action="store_true",
                       help="store the last-applied-configuration annotation, so apply works later")
        p.set_defaults(func=run_create if verb == "create" else run_replace)

    p = sub.add_parser("patch", parents=parents, help="Update fields of a resource")
    p.add_argument("targets", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("-p", "--patch", required=True, help="the patch (JSON or YAML)")
    p.add_argument("--type", default="strategic", choices=["strategic", "merge", "json"])
    p.add_argument("--subresource", default=None, choices=["status", "scale"])
    p.set_defaults(func=run_patch)

    p = sub.add_parser("scale", parents=parents, help="Set a new size for a deployment or replica set")
    p.add_argument("targets", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("--replicas", type=int, required=True)
    p.set_defaults(func=run_scale)

    for verb in ("label", "annotate"):
        p = sub.add_parser(verb, parents=parents, help="Update the labels on a resource" if verb == "label" else "Update the annotations on a resource")
        p.add_argument("args", nargs="+", metavar="TYPE NAME KEY=VAL ... KEY-")
        p.add_argument("--overwrite", action="store_true")
        p.set_defaults(func=run_label, field="labels" if verb == "label" else "annotations", verb=verb)


def _single_targets(cli: Cli, args: list[str]) -> list[tuple[ResourceType, str]]:
    out: list[tuple[ResourceType, str]] = []
    for rt, names in parse_targets(cli.scheme, args):
        if not names:
            raise CliError("resource(s) were provided, but no name was specified")
        out.extend((rt, n) for n in names)
    return out


async def run_create(cli: Cli, args: argparse.Namespace) -> None:
    words = list(args.words)
    if words and args.filename:
        raise CliError("create takes either -f or KIND NAME, not both")
    if words and words[0] == "token":
        await createtoken.run(cli, args, words[1:])
        return
    if words:
        make = generators.GENERATORS.get(words[0])
        if make is None:
            raise CliError(f'unknown kind "{words[0]}" to create: use -f FILE, or one of '
                           "namespace, deployment, configmap, secret, service, serviceaccount, role, clusterrole, "
                           "rolebinding, clusterrolebinding, token")
        obj = make(words[1:], args)
        rt = rt_for_object(cli.scheme, obj, "the command line")
        if rt.namespaced and cli.namespace_explicit:
            obj["metadata"]["namespace"] = cli.namespace  # as kubectl does when -n is given
        try:
            await _create_one(cli, args, rt, obj)
        except ApiError as exc:
            if obj["kind"] == "Namespace":
                raise  # kubectl prints the server's error as it is for this one
            what = f"{obj['spec']['type']} service" if obj["kind"] == "Service" else obj["kind"].lower()
            raise CliError(f"failed to create {what}: {exc.message}") from exc
        return
    if not args.filename:
        raise CliError("must specify -f, or KIND NAME (e.g. create deployment NAME --image=IMAGE)")
    await _each_manifest(cli, args, "created", "creating")


async def _create_one(cli: Cli, args: argparse.Namespace, rt: ResourceType, obj: dict[str, Any]) -> None:
    """Create ``obj`` (or not, with --dry-run=client) and report it as kubectl does."""
    ns = cli.namespace if rt.namespaced else None
    body = with_last_applied(obj) if args.save_config else obj
    shown = body
    if args.dry_run != "client":
        shown = await cli.client.create(rt, body, ns, dry_run=args.dry_run == "server",
                                        field_validation=field_validation(args.validate))
    _report(cli, args, rt, shown, "created")


def _report(cli: Cli, args: argparse.Namespace, rt: ResourceType, obj: dict[str, Any], done: str) -> None:
    name = f"{resource_name(rt)}/{(obj.get('metadata') or {}).get('name')}"
    if args.output == "json":
        cli.print(to_json(obj))
    elif args.output == "yaml":
        cli.print(to_yaml(obj).rstrip("\n"))
    elif args.output == "name":
        cli.print(name)
    else:
        suffix = {"server": " (server dry run)", "client": " (dry run)"}.get(args.dry_run, "")
        cli.print(f"{name} {done}{suffix}")


async def run_replace(cli: Cli, args: argparse.Namespace) -> None:
    await _each_manifest(cli, args, "replaced", "replacing")


async def _each_manifest(cli: Cli, args: argparse.Namespace, done: str, doing: str) -> None:
    dry = args.dry_run == "server"
    client_only = args.dry_run == "client"
    for m in read_manifests(args.filename, recursive=args.recursive, verb="create" if done == "created" else "replace"):
        try:
            rt = rt_for_object(cli.scheme, m.obj, m.source)
            md = m.obj.setdefault("metadata", {})
            ns = None
            if rt.namespaced:
                ns = str(md.get("namespace") or cli.namespace)
                md["namespace"] = ns
            try:
                body = with_last_applied(m.obj) if args.save_config else m.obj
                answer: dict[str, Any] = body
                if client_only:
                    pass
                elif done == "created":
                    answer = await cli.client.create(rt, body, ns, dry_run=dry,
                                                     field_validation=field_validation(args.validate))
                else:
                    if not md.get("resourceVersion"):
                        # kubectl replace overwrites whatever is there: take the live version.
                        live = await cli.client.get(rt, str(md.get("name")), ns)
                        md["resourceVersion"] = live["metadata"]["resourceVersion"]
                    body["metadata"]["resourceVersion"] = md["resourceVersion"]
                    answer = await cli.client.replace(
                        rt, body, ns, dry_run=dry, field_validation=field_validation(args.validate)
                    )
            except ApiError as exc:
                raise with_context(exc, f'error when {doing} "{m.source}"') from exc
            _report(cli, args, rt, answer, done)
        except ApiError as exc:
            cli.fail(format_api_error(exc))
        except CliError as exc:
            cli.fail(f"error: {exc}")


def _parse_patch(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"unable to parse {text!r}: {exc}".replace("\n", " ")) from exc


async def run_patch(cli: Cli, args: argparse.Namespace) -> None:
    patch = _parse_patch(args.patch)
    for rt, name in _single_targets(cli, args.targets):
        ns = cli.ns_for(rt)
        try:
            before = await cli.client.get(rt, name, ns, subresource=args.subresource)
            after = await cli.client.patch(
                rt, name, patch, patch_type=args.type, namespace=ns, subresource=args.subresource
            )
        except ApiError as exc:
            cli.fail(format_api_error(exc))
            continue
        same = _comparable(before, args.subresource) == _comparable(after, args.subresource)
        cli.print(f"{resource_name(rt)}/{name} patched{' (no change)' if same else ''}")


def _comparable(obj: dict[str, Any], subresource: str | None) -> dict[str, Any]:
    """What "(no change)" compares: the object minus bookkeeping that moves on every write, and
    minus status (a controller may update it meanwhile) unless status is what was patched."""
    out = dict(obj)
    md = dict(out.get("metadata") or {})
    for key in ("resourceVersion", "managedFields", "generation"):
        md.pop(key, None)
    out["metadata"] = md
    if subresource != "status":
        out.pop("status", None)
    return out


async def run_scale(cli: Cli, args: argparse.Namespace) -> None:
    if args.replicas < 0:
        raise CliError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    for rt, name in _single_targets(cli, args.targets):
        if "scale" not in rt.subresources:
            raise CliError(f'cannot scale {rt.group_resource}: the server does not offer a scale subresource for it')
        try:
            await cli.client.patch(
                rt, name, {"spec": {"replicas": args.replicas}}, namespace=cli.ns_for(rt), subresource="scale"
            )
        except ApiError as exc:
            cli.fail(format_api_error(exc))
            continue
        cli.print(f"{resource_name(rt)}/{name} scaled")


def split_label_args(args: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """``TYPE NAME a=b c-`` -> targets, values to set, keys to remove."""
    targets: list[str] = []
    sets: dict[str, str] = {}
    removes: list[str] = []
    for a in args:
        if "=" in a:
            k, _, v = a.partition("=")
            sets[k] = v
        elif a.endswith("-"):
            # Like kubectl: object names never end in "-", so such an argument is a removal.
            removes.append(a[:-1])
        else:
            targets.append(a)
    if not sets and not removes:
        raise CliError("at least one label update is required")
    return targets, sets, removes


async def run_label(cli: Cli, args: argparse.Namespace) -> None:
    field: str = args.field
    targets, sets, removes = split_label_args(args.args)
    for rt, name in _single_targets(cli, targets):
        ns = cli.ns_for(rt)
        try:
            current = await cli.client.get(rt, name, ns)
            have: dict[str, str] = (current.get("metadata") or {}).get(field) or {}
            if not args.overwrite:
                for k, v in sets.items():
                    if k in have and have[k] != v:
                        raise CliError(f"'{k}' already has a value ({have[k]}), and --overwrite is false")
            change: dict[str, Any] = {k: v for k, v in sets.items() if have.get(k) != v}
            change.update({k: None for k in removes if k in have})
            past = "labeled" if args.verb == "label" else "annotated"
            if not change:
                cli.print(f"{resource_name(rt)}/{name} not {past}" if args.verb == "label" else f"{resource_name(rt)}/{name} {past}")
                continue
            patch = {"metadata": {field: change, "resourceVersion": current["metadata"]["resourceVersion"]}}
            await cli.client.patch(rt, name, patch, patch_type="merge", namespace=ns)
        except ApiError as exc:
            cli.fail(format_api_error(exc))
            continue
        if args.verb == "label" and not sets and removes:
            past = "unlabeled"
        cli.print(f"{resource_name(rt)}/{name} {past}")
