"""``kubectl-lite apply``: client-side apply exactly as kubectl does it, plus ``--server-side``.

Client-side: GET the object; on 404 POST it carrying the
``kubectl.kubernetes.io/last-applied-configuration`` annotation (the applied object as JSON);
otherwise PATCH with a three-way patch computed from the last applied configuration (original),
the new file (modified) and the live object (current). An empty patch means "unchanged".
A 409 Conflict while patching is retried from a fresh GET, up to 5 times, as kubectl does.
The three-way strategic merge patch comes from :mod:`apimachinery.patch`.
"""

from __future__ import annotations

import argparse
import copy
import json
from typing import Any

from apimachinery.errors import ApiError
from apimachinery.patch import create_three_way_merge_patch
from apimachinery.scheme import ResourceType
from kubectl_lite.context import Cli
from kubectl_lite.errors import format_api_error, with_context
from kubectl_lite.printers import resource_name
from kubectl_lite.resources import (
    VALIDATE_CHOICES,
    CliError,
    Manifest,
    field_validation,
    read_manifests,
    rt_for_object,
)

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
FIELD_MANAGER = "kubectl-client-side-apply"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apply", parents=parents, help="Apply a configuration to a resource by file name or stdin")
    p.add_argument("-f", "--filename", action="append", default=[], required=True, help="file, directory or - for stdin")
    p.add_argument("-R", "--recursive", action="store_true", help="process directories recursively")
    p.add_argument("--dry-run", choices=["none", "server"], default="none", help="server: validate without storing")
    p.add_argument("--server-side", action="store_true", help="use server-side apply")
    p.add_argument("--force-conflicts", action="store_true", help="server-side apply: take ownership of conflicting fields")
    p.add_argument("--field-manager", default=None, help="name of the manager (server-side apply)")
    p.add_argument("--validate", default="strict", choices=VALIDATE_CHOICES,
                   help="unknown fields: strict (refuse), warn, ignore")
    p.set_defaults(func=run)


def last_applied_value(obj: dict[str, Any]) -> str:
    """The annotation's value: the object as applied, without the annotation itself."""
    clean = copy.deepcopy(obj)
    md = clean.setdefault("metadata", {})
    annotations = md.get("annotations") or {}
    annotations.pop(LAST_APPLIED, None)
    # kubectl keeps an empty map here, so its annotation and ours are byte-identical.
    md["annotations"] = annotations
    return json.dumps(clean, sort_keys=True, separators=(",", ":")) + "\n"


def with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    value = last_applied_value(obj)
    out = copy.deepcopy(obj)
    md = out.setdefault("metadata", {})
    md["annotations"] = {**(md.get("annotations") or {}), LAST_APPLIED: value}
    return out


async def run(cli: Cli, args: argparse.Namespace) -> None:
    manifests = read_manifests(args.filename, recursive=args.recursive)
    dry = args.dry_run == "server"
    suffix = " (server dry run)" if dry else ""
    for m in manifests:
        try:
            rt = rt_for_object(cli.scheme, m.obj, m.source)
            ns = _namespace(cli, rt, m)
            if args.server_side:
                verb = await _server_side(cli, rt, m, ns, args, dry)
            else:
                verb = await _client_side(cli, rt, m, ns, dry, field_validation(args.validate))
            cli.print(f"{resource_name(rt)}/{m.obj['metadata']['name']} {verb}{suffix}")
        except ApiError as exc:
            cli.fail(format_api_error(exc))
        except CliError as exc:
            cli.fail(f"error: {exc}")


def _namespace(cli: Cli, rt: ResourceType, m: Manifest) -> str | None:
    md = m.obj.setdefault("metadata", {})
    if not md.get("name"):
        raise CliError(f"error when retrieving current configuration of {m.source}: resource name may not be empty")
    if not rt.namespaced:
        return None
    in_file = md.get("namespace")
    if in_file and cli.namespace_explicit and in_file != cli.namespace:
        raise CliError(
            f'the namespace from the provided object "{in_file}" does not match the namespace "{cli.namespace}". '
            "You must pass '--namespace=" + str(in_file) + "' to perform this operation."
        )
    ns = str(in_file or cli.namespace)
    md["namespace"] = ns
    return ns


async def _client_side(cli: Cli, rt: ResourceType, m: Manifest, ns: str | None, dry: bool, validation: str) -> str:
    name = str(m.obj["metadata"]["name"])
    modified = with_last_applied(m.obj)
    for _attempt in range(5):
        try:
            current = await cli.client.get(rt, name, ns)
        except ApiError as exc:
            if exc.code != 404:
                raise
            try:
                await cli.client.create(
                    rt, modified, ns, dry_run=dry, field_manager=FIELD_MANAGER, field_validation=validation
                )
            except ApiError as create_exc:
                raise with_context(create_exc, f'error when creating "{m.source}"') from create_exc
            return "created"
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        raw_original = annotations.get(LAST_APPLIED)
        if raw_original is None:
            cli.warn(
                f"Warning: resource {rt.group_resource}/{name} is missing the {LAST_APPLIED} annotation which is "
                "required by kubectl-lite apply. kubectl-lite apply should only be used on resources created "
                "declaratively by either kubectl-lite create --save-config or kubectl-lite apply. The missing "
                "annotation will be patched automatically."
            )
        try:
            original = json.loads(raw_original) if raw_original else None
        except ValueError:
            original = None
        patch = create_three_way_merge_patch(original, modified, current, rt.model)
        if not patch:
            return "unchanged"
        try:
            await cli.client.patch(
                rt, name, patch, patch_type="strategic", namespace=ns, dry_run=dry, field_manager=FIELD_MANAGER,
                field_validation=validation,
            )
        except ApiError as exc:
            if exc.code == 409 and exc.reason == "Conflict":
                continue
            raise
        return "configured"
    raise CliError(f"apply of {rt.group_resource}/{name} kept conflicting with other writers; try again")


async def _server_side(cli: Cli, rt: ResourceType, m: Manifest, ns: str | None, args: argparse.Namespace, dry: bool) -> str:
    name = str(m.obj["metadata"]["name"])
    await cli.client.patch(
        rt, name, m.obj, patch_type="apply", namespace=ns, dry_run=dry,
        field_manager=args.field_manager or "kubectl", force=True if args.force_conflicts else None,
        field_validation=field_validation(args.validate),
    )
    return "serverside-applied"
