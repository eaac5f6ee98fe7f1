"""Reading manifests (``-f FILE|DIR|URL-less -``) and resolving what users type on the command line.

Files: ``.yaml``, ``.yml`` and ``.json`` (directories only pick those, recursing with ``-R``); YAML
files may hold several documents; a ``kind: List`` (or ``*List``) is flattened into its items;
empty documents are skipped. Every object remembers the file it came from, for error messages.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from apimachinery import safeload
from apimachinery.scheme import ResourceType, Scheme

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class CliError(Exception):
    """A user-facing error printed as ``error: <message>`` (no server involved)."""


@dataclass
class Manifest:
    obj: dict[str, Any]
    source: str


def _parse(text: str, source: str) -> list[dict[str, Any]]:
    stripped = text.lstrip()
    docs: list[Any]
    if stripped.startswith(("{", "[")):
        try:
            parsed = safeload.loads_json(text)
            docs = parsed if isinstance(parsed, list) else [parsed]
        except safeload.DecodeError:
            docs = _yaml_docs(text, source)  # JSON-looking YAML (flow style) is still YAML
    else:
        docs = _yaml_docs(text, source)
    out: list[dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise CliError(f'error parsing {source}: expected an object, got {type(doc).__name__}')
        out.extend(_flatten(doc, source))
    return out


def _yaml_docs(text: str, source: str) -> list[Any]:
    # Limited loading: alias bombs and deep nesting are refused in one line.
    try:
        return safeload.loads_yaml_all(text)
    except safeload.DecodeError as exc:
        raise CliError(f"error parsing {source}: {exc}") from None


def _flatten(doc: dict[str, Any], source: str) -> list[dict[str, Any]]:
    kind = str(doc.get("kind") or "")
    if kind.endswith("List") and isinstance(doc.get("items"), list):
        out: list[dict[str, Any]] = []
        for item in doc["items"]:
            if isinstance(item, dict):
                out.extend(_flatten(item, source))
        return out
    if not kind or not doc.get("apiVersion"):
        missing = "kind" if not kind else "apiVersion"
        raise CliError(f"error validating data from {source}: {missing} not set")
    return [doc]


def _dir_files(root: Path, recursive: bool) -> list[Path]:
    pattern = root.rglob("*") if recursive else root.glob("*")
    return sorted(p for p in pattern if p.is_file() and p.suffix in MANIFEST_SUFFIXES)


def read_manifests(
    sources: list[str], *, recursive: bool = False, stdin: TextIO | None = None, verb: str = "apply"
) -> list[Manifest]:
    """Every object named by ``-f`` arguments, in order (files of a directory sorted by path)."""
    out: list[Manifest] = []
    for src in sources:
        if src == "-":
            text = (stdin or sys.stdin).read()
            out.extend(Manifest(o, "STDIN") for o in _parse(text, "STDIN"))
            continue
        path = Path(src)
        if not path.exists():
            raise CliError(f'the path "{src}" does not exist')
        files = _dir_files(path, recursive) if path.is_dir() else [path]
        for f in files:
            try:
                text = f.read_text()
            except OSError as exc:
                raise CliError(f"error reading {f}: {exc.strerror or exc}") from exc
            except UnicodeDecodeError as exc:
                raise CliError(f"error reading {f}: not valid UTF-8 at byte {exc.start}") from None
            out.extend(Manifest(o, str(f)) for o in _parse(text, str(f)))
    if not out:
        raise CliError(f"no objects passed to {verb}" if sources else "must specify one of -f and -k")
    return out


VALIDATE_CHOICES = ("strict", "warn", "ignore", "true", "false")


def field_validation(validate: str) -> str:
    """``--validate`` as the server's ``fieldValidation`` (kubectl: strict by default)."""
    return {"strict": "Strict", "true": "Strict", "warn": "Warn", "ignore": "Ignore", "false": "Ignore"}[validate]


def resolve_type(scheme: Scheme, name: str) -> ResourceType:
    rt = scheme.resolve(name)
    if rt is None:
        raise CliError(f'the server doesn\'t have a resource type "{name}"')
    return rt


def rt_for_object(scheme: Scheme, obj: dict[str, Any], source: str) -> ResourceType:
    rt = scheme.by_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
    if rt is None:
        md = obj.get("metadata") or {}
        raise CliError(
            f'resource mapping not found for name: "{md.get("name", "")}" namespace: "{md.get("namespace", "")}" '
            f'from "{source}": no matches for kind "{obj.get("kind")}" in version "{obj.get("apiVersion")}"\n'
            "ensure CRDs are installed first"
        )
    return rt


def parse_targets(scheme: Scheme, args: list[str]) -> list[tuple[ResourceType, list[str]]]:
    """``TYPE[,TYPE...] [NAME...]`` or ``TYPE/NAME [TYPE/NAME...]`` -> (type, names) groups.

    An empty name list means "all of that type"."""
    if not args:
        raise CliError("You must specify the type of resource to get. Use \"kubectl-lite api-resources\" for a complete list of supported resources.")
    if any("/" in a for a in args):
        groups: list[tuple[ResourceType, list[str]]] = []
        for a in args:
            kind, sep, name = a.partition("/")
            if not sep or not name or not kind:
                raise CliError(
                    "there is no need to specify a resource type as a separate argument when passing arguments "
                    "in resource/name form (e.g. 'kubectl-lite get resource/<resource_name>' instead of "
                    "'kubectl-lite get resource resource/<resource_name>'"
                )
            rt = resolve_type(scheme, kind)
            for existing, names in groups:
                if existing is rt:
                    names.append(name)
                    break
            else:
                groups.append((rt, [name]))
        return groups
    types: list[ResourceType] = []
    for t in args[0].split(","):
        if not t:
            continue
        # A category (kubectl's `get all`) stands for every type that declares it.
        members = [rt for rt in scheme if t in rt.categories] if scheme.resolve(t) is None else []
        for rt in members or [resolve_type(scheme, t)]:
            if rt not in types:
                types.append(rt)
    if not types:
        raise CliError(f'the server doesn\'t have a resource type "{args[0]}"')
    return [(rt, list(args[1:])) for rt in types]
