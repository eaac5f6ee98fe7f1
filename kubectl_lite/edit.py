"""``kubectl-lite edit TYPE NAME``: the object in an editor, saved back as a strategic merge patch.

The editor is ``$KUBE_EDITOR``, else ``$EDITOR``, else ``vi``; like kubectl, an editor setting
with spaces (``code --wait``) runs through the shell. What the editor saved is compared with what
it was given: no change cancels the edit; otherwise the two-way strategic merge patch between the
live object and the edited one is sent (what ``kubectl edit`` sends). kubectl reopens the editor
after a failure; kubectl-lite keeps the file, says where it is, and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

import yaml

from apimachinery.errors import ApiError
from apimachinery.patch import PatchError, two_way_merge_patch
from apimachinery.scheme import ResourceType
from kubectl_lite.context import Cli
from kubectl_lite.errors import format_api_error
from kubectl_lite.printers import resource_name, to_json, to_yaml
from kubectl_lite.resources import CliError, parse_targets

HEADER = (
    "# Please edit the object below. Lines beginning with a '#' will be ignored,\n"
    "# and an empty file will abort the edit. If an error occurs while saving this file will be\n"
    "# reopened with the relevant failures.\n"
    "#\n"
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("edit", parents=parents, help="Edit a resource on the server")
    p.add_argument("targets", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    p.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml", help="the format to edit in")
    p.set_defaults(func=run)


def editor_command(path: str, env: dict[str, str] | None = None) -> list[str]:
    """The argv that opens ``path`` in the user's editor."""
    env = dict(os.environ) if env is None else env
    editor = env.get("KUBE_EDITOR") or env.get("EDITOR") or "vi"
    if any(c.isspace() for c in editor.strip()):
        return [env.get("SHELL") or "/bin/sh", "-c", f"{editor} {shlex.quote(path)}"]
    return [editor, path]


def strip_comments(text: str) -> str:
    """The edited text without kubectl's ``#`` comment lines (YAML comments elsewhere stay)."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))


class EditFailed(CliError):
    """The edit could not be saved; the user's text stays in ``path``."""

    def __init__(self, message: str, path: Path, hint: str) -> None:
        super().__init__(message)
        self.path = path
        self.hint = hint


async def run(cli: Cli, args: argparse.Namespace) -> None:
    targets: list[tuple[ResourceType, str]] = []
    for rt, names in parse_targets(cli.scheme, args.targets):
        if not names:
            raise CliError("resource(s) were provided, but no name was specified")
        targets.extend((rt, n) for n in names)
    for rt, name in targets:
        try:
            await _edit_one(cli, rt, name, args.output)
        except ApiError as exc:
            cli.fail(format_api_error(exc))
        except EditFailed as exc:
            if exc.hint == "copy":
                cli.warn(f'A copy of your changes has been stored to "{exc.path}"')
                cli.fail(f"error: {exc}")
            else:
                cli.fail(f"error: {exc}")
                cli.warn(f"You can run `kubectl-lite replace -f {exc.path}` to try this update again.")


async def _edit_one(cli: Cli, rt: ResourceType, name: str, fmt: str) -> None:
    ns = cli.ns_for(rt)
    original = await cli.client.get(rt, name, ns)
    original.setdefault("apiVersion", rt.api_version)
    original.setdefault("kind", rt.kind)
    body = to_json(original) + "\n" if fmt == "json" else to_yaml(original)
    path = _write_temp(HEADER + body, fmt)
    keep = False
    try:
        proc = await asyncio.create_subprocess_exec(*editor_command(str(path)))
        if await proc.wait() != 0:
            keep = True
            raise EditFailed(f"there was a problem with the editor {editor_command(str(path))[0]!r}", path, "copy")
        edited_text = strip_comments(_read(path))
        if not edited_text.strip():
            cli.warn("Edit cancelled, saved file was empty.")
            return
        if edited_text == body:
            cli.warn("Edit cancelled, no changes made.")
            return
        keep = True
        edited = _parse(edited_text, path)
        md, new_md = original.get("metadata") or {}, edited.get("metadata") or {}
        if (edited.get("apiVersion"), edited.get("kind"), new_md.get("name")) != (
            original.get("apiVersion"), original.get("kind"), md.get("name")
        ):
            raise EditFailed("At least one of apiVersion, kind and name was changed", path, "copy")
        try:
            patch = two_way_merge_patch(original, edited, rt.model)
        except PatchError as exc:
            raise EditFailed(str(exc), path, "copy") from exc
        if not patch:
            keep = False
            cli.warn("Edit cancelled, no changes made.")
            return
        try:
            await cli.client.patch(
                rt, name, patch, patch_type="strategic", namespace=ns, field_validation="Strict"
            )
        except ApiError as exc:
            message = exc.status.message or str(exc)
            raise EditFailed(f'{rt.group_resource} "{name}" could not be patched: {message}', path, "replace") from exc
        keep = False
        cli.print(f"{resource_name(rt)}/{name} edited")
    finally:
        if not keep:
            _discard(path)


# The temp file's handling is synchronous: a small local file, while nothing else runs.
def _write_temp(text: str, fmt: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="kubectl-lite-edit-", suffix=f".{fmt}")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return Path(name)


def _read(path: Path) -> str:
    return path.read_text()


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        detail = str(exc).replace("\n", " ")
        raise EditFailed(f"error parsing edited object: {detail}", path, "copy") from exc
    if not isinstance(doc, dict):
        raise EditFailed("error parsing edited object: expected an object", path, "copy")
    return doc
