"""``kubectl-lite explain RESOURCE[.field.path] [--recursive]`` from the server's OpenAPI v3 documents.

The index (``/openapi/v3``) names one document per group-version; the resource's schema is the one
whose ``x-kubernetes-group-version-kind`` is its kind. Fields are walked through ``$ref``s,
single-element ``allOf`` wrappers (how a described reference is written) and array items. The page
is kubectl's plaintext layout: GROUP/KIND/VERSION, the FIELD and its type, the DESCRIPTION (the
field's own text, then its type's), and the FIELDS with their types and descriptions (or, with
``--recursive``, the whole tree of names and types).
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass, field
from typing import Any

from apimachinery.scheme import ResourceType
from kubectl_lite.context import Cli
from kubectl_lite.resources import CliError

Schema = dict[str, Any]
REF_PREFIX = "#/components/schemas/"
GVK_EXTENSION = "x-kubernetes-group-version-kind"
_PRIMITIVES = ("string", "integer", "number", "boolean")
# kubectl wraps descriptions to this many columns, indentation included.
WRAP_WIDTH = 80


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("explain", parents=parents, help="Get documentation for a resource")
    p.add_argument("path", metavar="RESOURCE[.FIELD...]")
    p.add_argument("--recursive", action="store_true", help="print every nested field (names and types only)")
    p.add_argument("--api-version", default=None, help="the group/version to explain (default: the preferred one)")
    p.set_defaults(func=run)


class FieldNotFound(CliError):
    pass


@dataclass
class Document:
    """One group-version's OpenAPI v3 document: resolves ``$ref``s and names types like kubectl."""

    schemas: dict[str, Schema] = field(default_factory=dict)

    def resolve(self, schema: Schema) -> Schema:
        """Through ``$ref`` and single-element ``allOf`` wrappers to the schema that has the shape."""
        seen = 0
        while seen < 64:
            seen += 1
            ref = schema.get("$ref")
            if isinstance(ref, str):
                schema = self.schemas.get(ref.removeprefix(REF_PREFIX), {})
                continue
            all_of = schema.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and not schema.get("properties"):
                schema = all_of[0]
                continue
            return schema
        return schema

    def type_name(self, schema: Schema) -> str:
        """``string``, ``[]Container``, ``map[string]string``, ``DeploymentStrategy`` or ``Object``."""
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and not schema.get("properties"):
            return self.type_name(all_of[0])
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self.schemas.get(ref.removeprefix(REF_PREFIX), {})
            if target.get("type") in _PRIMITIVES:
                return str(target["type"])
            if target.get("type") == "array" or (target.get("type") == "object" and not target.get("properties")
                                                  and isinstance(target.get("additionalProperties"), dict)):
                return self.type_name(target)
            return ref.rsplit(".", 1)[-1]
        kind = schema.get("type")
        if kind == "array" and isinstance(schema.get("items"), dict):
            return "[]" + self.type_name(schema["items"])
        if isinstance(schema.get("additionalProperties"), dict) and not schema.get("properties"):
            return "map[string]" + self.type_name(schema["additionalProperties"])
        if kind in _PRIMITIVES:
            return str(kind)
        return "Object"

    def descriptions(self, schema: Schema) -> list[str]:
        """A field's own description, then those of the types it refers to (kubectl prints both
        even when they are the same text)."""
        out: list[str] = []
        current: Schema | None = schema
        for _ in range(64):
            if current is None:
                break
            text = current.get("description")
            if isinstance(text, str) and text:
                out.append(text)
            nxt: Schema | None = None
            if isinstance(current.get("$ref"), str):
                nxt = self.schemas.get(current["$ref"].removeprefix(REF_PREFIX), {})
            elif isinstance(current.get("allOf"), list) and len(current["allOf"]) == 1:
                nxt = current["allOf"][0]
            elif current.get("type") == "array" and isinstance(current.get("items"), dict):
                nxt = current["items"]
            elif isinstance(current.get("additionalProperties"), dict):
                nxt = current["additionalProperties"]
            current = nxt
        return out

    def fields_of(self, schema: Schema) -> tuple[dict[str, Schema], set[str]]:
        """The properties (and required names) of an object, looking through arrays and refs."""
        target = self.resolve(schema)
        if target.get("type") == "array" and isinstance(target.get("items"), dict):
            target = self.resolve(target["items"])
        props = target.get("properties")
        return (props if isinstance(props, dict) else {}), set(target.get("required") or [])

    def type_key(self, schema: Schema) -> str | None:
        """A name for the type behind a schema, to stop --recursive at a type already on the path."""
        for _ in range(64):
            if isinstance(schema.get("$ref"), str):
                return str(schema["$ref"])
            if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
                schema = schema["allOf"][0]
            elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
                schema = schema["items"]
            else:
                return None
        return None


async def load_document(cli: Cli, rt: ResourceType) -> Document:
    index = await cli.client.request("GET", "/openapi/v3")
    key = f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"
    entry = ((index or {}).get("paths") or {}).get(key)
    if not isinstance(entry, dict) or not entry.get("serverRelativeURL"):
        raise CliError(f"couldn't find resource for \"{rt.api_version}, Kind={rt.kind}\"")
    path, _, query = str(entry["serverRelativeURL"]).partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
    doc = await cli.client.request("GET", path, params=params or None)
    return Document(((doc or {}).get("components") or {}).get("schemas") or {})


def find_kind(doc: Document, rt: ResourceType) -> Schema:
    for schema in doc.schemas.values():
        for gvk in schema.get(GVK_EXTENSION) or []:
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (rt.group, rt.version, rt.kind):
                return schema
    raise CliError(f"couldn't find resource for \"{rt.api_version}, Kind={rt.kind}\"")


def _wrap(text: str, indent: int) -> list[str]:
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        wrapped = textwrap.wrap(para, WRAP_WIDTH - indent, break_long_words=False, break_on_hyphens=False)
        lines.extend(" " * indent + w for w in wrapped or [""])
    return lines


def render(doc: Document, rt: ResourceType, kind_schema: Schema, path: list[str], recursive: bool) -> str:
    """The whole page; raises FieldNotFound (after which kubectl has printed only the header)."""
    schema = kind_schema
    name = ""
    for step in path:
        props, _ = doc.fields_of(schema)
        if step not in props:
            raise FieldNotFound(f'field "{step}" does not exist')
        schema, name = props[step], step
    out = header(rt)
    if path:
        out += [f"FIELD: {name} <{doc.type_name(schema)}>", "", ""]
    out.append("DESCRIPTION:")
    texts = doc.descriptions(schema)
    for text in texts:
        out += _wrap(text, 4)
    out.append("    " if texts else "    <empty>")
    props, required = doc.fields_of(schema)
    if props:
        out.append("FIELDS:")
        if recursive:
            _tree(doc, schema, 1, out, {doc.type_key(schema) or ""})
        else:
            for key in sorted(props):
                mark = " -required-" if key in required else ""
                out.append(f"  {key}\t<{doc.type_name(props[key])}>{mark}")
                own = props[key].get("description")
                out += _wrap(own, 4) if isinstance(own, str) and own else ["    <no description>"]
                out.append("")
    out.append("")
    return "\n".join(out) + "\n"


def header(rt: ResourceType) -> list[str]:
    return ([f"GROUP:      {rt.group}"] if rt.group else []) + [f"KIND:       {rt.kind}", f"VERSION:    {rt.version}", ""]


def _tree(doc: Document, schema: Schema, depth: int, out: list[str], on_path: set[str]) -> None:
    props, required = doc.fields_of(schema)
    for key in sorted(props):
        sub = props[key]
        mark = " -required-" if key in required else ""
        out.append(f"{'  ' * depth}{key}\t<{doc.type_name(sub)}>{mark}")
        type_key = doc.type_key(sub)
        if type_key is not None and type_key in on_path:
            continue
        _tree(doc, sub, depth + 1, out, on_path | ({type_key} if type_key else set()))


async def run(cli: Cli, args: argparse.Namespace) -> None:
    resource, *path = args.path.split(".")
    rt = None
    # "deployments.apps.spec": the group may follow the resource name, as kubectl allows.
    for n in range(len(path), 0, -1):
        rt = cli.scheme.resolve(".".join([resource, *path[:n]]))
        if rt is not None:
            path = path[n:]
            break
    rt = rt or cli.scheme.resolve(resource)
    if rt is None:
        # kubectl's explain says this one without the "error: " prefix.
        cli.fail(f'the server doesn\'t have a resource type "{resource}"')
        return
    if args.api_version:
        chosen = cli.scheme.by_kind(args.api_version, rt.kind)
        if chosen is None:
            raise CliError(f"couldn't find resource for \"{args.api_version}, Kind={rt.kind}\"")
        rt = chosen
    doc = await load_document(cli, rt)
    kind_schema = find_kind(doc, rt)
    try:
        page = render(doc, rt, kind_schema, path, args.recursive)
    except FieldNotFound:
        # kubectl has printed the header by the time it finds the field missing.
        cli.print("\n".join(header(rt)))
        raise
    cli.out.write(page)
    cli.out.flush()
