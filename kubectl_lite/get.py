"""``kubectl-lite get``: server-side Tables rendered like kubectl, or yaml/json/name output."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from apimachinery.client.rest import TABLE_ACCEPT
from apimachinery.client.watch import watch
from apimachinery.errors import ApiError
from apimachinery.scheme import ResourceType
from kubectl_lite import jsonpath
from kubectl_lite.context import Cli
from kubectl_lite.errors import format_api_error
from kubectl_lite.printers import (
    TablePrinter,
    as_list,
    render_table,
    resource_name,
    to_json,
    to_yaml,
)
from kubectl_lite.resources import CliError, parse_targets


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("get", parents=parents, help="Display one or many resources")
    p.add_argument("targets", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    p.add_argument("-o", "--output", default=None, help="yaml|json|wide|name|jsonpath=TEMPLATE|custom-columns=SPEC")
    p.add_argument("-l", "--selector", default=None, help="label selector, e.g. app=web,tier!=db")
    p.add_argument("--field-selector", default=None)
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, watch for changes")
    p.add_argument("--show-labels", action="store_true")
    p.add_argument("--no-headers", action="store_true")
    p.add_argument("--sort-by", default=None, help="a JSONPath, e.g. '{.metadata.creationTimestamp}'")
    p.set_defaults(func=run)


def _fill_kind(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    obj.setdefault("apiVersion", rt.api_version)
    obj.setdefault("kind", rt.kind)
    return obj


OUTPUT_FORMATS = ("custom-columns", "json", "jsonpath", "name", "wide", "yaml")


def output_format(value: str | None) -> tuple[str | None, str]:
    """``-o`` split into its format and argument (``jsonpath={.x}`` -> ``("jsonpath", "{.x}")``)."""
    if value is None:
        return None, ""
    fmt, _, arg = value.partition("=")
    if fmt not in OUTPUT_FORMATS or (fmt in ("jsonpath", "custom-columns")) != bool(arg):
        raise CliError(
            f'unable to match a printer suitable for the output format "{value}", allowed formats are: '
            + ",".join(OUTPUT_FORMATS)
        )
    return fmt, arg


async def run(cli: Cli, args: argparse.Namespace) -> None:
    fmt, fmt_arg = output_format(args.output)
    groups = parse_targets(cli.scheme, args.targets)
    if args.watch and len(groups) > 1:
        raise CliError("you may only specify a single resource type")
    if fmt in ("yaml", "json", "name", "jsonpath", "custom-columns"):
        await _print_objects(cli, args, groups, fmt, fmt_arg)
        return
    prefix_names = len(groups) > 1 or any("/" in t for t in args.targets)
    printed_any = False
    for rt, names in groups:
        ns = None if args.all_namespaces else cli.ns_for(rt)
        printer = TablePrinter(
            wide=fmt == "wide",
            with_namespace=args.all_namespaces and rt.namespaced,
            show_labels=args.show_labels,
            name_prefix=resource_name(rt) if prefix_names else "",
        )
        headers: list[str] = []
        rows: list[list[str]] = []
        list_rv = ""
        if names:
            for name in names:
                try:
                    answer = await cli.client.table(rt, ns or cli.ns_for(rt), name)
                except ApiError as exc:
                    cli.fail(format_api_error(exc))
                    continue
                h, r = printer.header_and_rows(answer)
                headers, rows = h, rows + r
        else:
            answer = await cli.client.table(
                rt, ns, label_selector=args.selector, field_selector=args.field_selector,
                include_object="Object" if args.sort_by else None,
            )
            if args.sort_by and isinstance(answer.get("rows"), list):
                answer["rows"] = sort_by(args.sort_by, answer["rows"], lambda row: row.get("object") or {})
            elif args.sort_by and isinstance(answer.get("items"), list):
                answer["items"] = sort_by(args.sort_by, answer["items"], lambda obj: obj)
            headers, rows = printer.header_and_rows(answer)
            list_rv = str((answer.get("metadata") or {}).get("resourceVersion") or "")
        if rows:
            if printed_any:
                cli.print()
            cli.print(render_table(headers, rows, header=not args.no_headers))
            printed_any = True
        if args.watch:
            await _watch(cli, rt, ns, args, printer, headers, rows, names, list_rv)
    if not printed_any and not cli.failed and not args.watch:
        _no_resources(cli, args, groups)


def _no_resources(cli: Cli, args: argparse.Namespace, groups: list[tuple[ResourceType, list[str]]]) -> None:
    if args.all_namespaces or not any(rt.namespaced for rt, _ in groups):
        cli.warn("No resources found")
    else:
        cli.warn(f"No resources found in {cli.namespace} namespace.")


async def _print_objects(
    cli: Cli, args: argparse.Namespace, groups: list[tuple[ResourceType, list[str]]], fmt: str, fmt_arg: str
) -> None:
    objects: list[tuple[ResourceType, dict[str, Any]]] = []
    single = len(groups) == 1 and len(groups[0][1]) == 1
    for rt, names in groups:
        ns = None if args.all_namespaces else cli.ns_for(rt)
        if names:
            for name in names:
                try:
                    objects.append((rt, _fill_kind(rt, await cli.client.get(rt, name, ns or cli.ns_for(rt)))))
                except ApiError as exc:
                    cli.fail(format_api_error(exc))
        else:
            items, _ = await cli.client.list_all(rt, ns, label_selector=args.selector, field_selector=args.field_selector)
            objects.extend((rt, i) for i in items)
    if args.sort_by:
        ordered = sort_by(args.sort_by, [o for _, o in objects], lambda obj: obj)
        rt_of = {id(o): rt for rt, o in objects}
        objects = [(rt_of[id(o)], o) for o in ordered]
    if fmt == "custom-columns":
        if objects:
            headers, rows = custom_columns(fmt_arg, [o for _, o in objects])
            cli.print(render_table(headers, rows, header=not args.no_headers))
        elif not cli.failed:
            _no_resources(cli, args, groups)
        return
    if fmt == "name":
        for rt, obj in objects:
            cli.print(f"{resource_name(rt)}/{obj['metadata']['name']}")
        if not objects and not cli.failed:
            _no_resources(cli, args, groups)
        return
    if single:
        if not objects:
            return
        doc: Any = objects[0][1]
    else:
        doc = as_list([o for _, o in objects])
    if fmt == "jsonpath":
        try:
            text = jsonpath.execute(_strip_quotes(fmt_arg), doc)
        except jsonpath.JSONPathError as exc:
            raise CliError(f"error parsing jsonpath {fmt_arg}, {exc}") from exc
        cli.out.write(text)
        cli.out.flush()
        return
    text = to_yaml(doc) if fmt == "yaml" else to_json(doc)
    cli.out.write(text if text.endswith("\n") else text + "\n")
    cli.out.flush()


async def _watch(
    cli: Cli,
    rt: ResourceType,
    ns: str | None,
    args: argparse.Namespace,
    printer: TablePrinter,
    headers: list[str],
    rows: list[list[str]],
    names: list[str],
    list_rv: str,
) -> None:
    """Print one row per change, aligned with the table already printed."""
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r, strict=False)]
    header_printed = bool(rows) and not args.no_headers
    field_selector = args.field_selector
    if names:
        if len(names) > 1:
            raise CliError("watch is only supported on individual resources and resource collections, but 2 resources were found")
        field_selector = f"metadata.name={names[0]}"
        if not list_rv:
            try:
                current = await cli.client.get(rt, names[0], ns or cli.ns_for(rt))
                list_rv = str(current["metadata"].get("resourceVersion") or "")
            except ApiError:
                list_rv = ""
    while True:
        async for ev in watch(
            cli.client, rt, ns, resource_version=list_rv or None, label_selector=args.selector,
            field_selector=field_selector, accept=TABLE_ACCEPT,
        ):
            if ev.type == "ERROR":
                raise ApiError.from_status(ev.object)
            if ev.type == "BOOKMARK":
                md = ev.object.get("metadata") or {}
                list_rv = str(md.get("resourceVersion") or list_rv)
                continue
            h, new_rows = printer.header_and_rows(ev.object)
            rv = _event_rv(ev.object)
            if rv:
                list_rv = rv
            if not headers:
                headers = h
                widths = [len(x) for x in headers]
            for r in new_rows:
                widths = [max(w, len(c)) for w, c in zip(widths, r, strict=False)] + [len(c) for c in r[len(widths):]]
                if not header_printed and not args.no_headers:
                    cli.print(pad_row(headers, widths))
                    header_printed = True
                cli.print(pad_row(r, widths))


def sort_by(expr: str, items: list[Any], obj_of: Callable[[Any], Any]) -> list[Any]:
    """Order items by a JSONPath field of their object, like ``kubectl get --sort-by``: missing
    values first, numbers by value, everything else as text; ties keep the server's order."""
    path = _strip_quotes(expr)
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    try:
        steps = jsonpath.parse_path(path if path.startswith((".", "$", "[")) else "." + path)
    except jsonpath.JSONPathError as exc:
        raise CliError(f"couldn't parse --sort-by {expr!r}: {exc}") from exc

    def key(item: Any) -> tuple[int, float, str]:
        found = jsonpath.evaluate(steps, obj_of(item))
        if not found:
            return (0, 0.0, "")
        value = found[0]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (1, float(value), "")
        return (2, 0.0, jsonpath.text_of(value))

    return sorted(items, key=key)


def _strip_quotes(template: str) -> str:
    """Shells sometimes pass the quotes through (``-o jsonpath='{.x}'`` in scripts)."""
    if len(template) >= 2 and template[0] == template[-1] and template[0] in "'\"":
        return template[1:-1]
    return template


def custom_columns(spec: str, objects: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """``NAME:.metadata.name,IMAGE:.spec.containers[*].image`` -> headers and rows."""
    columns: list[tuple[str, list[jsonpath.Step]]] = []
    for part in spec.split(","):
        header, sep, path = part.partition(":")
        if not sep or not header:
            raise CliError(f'unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>')
        expr = path.strip()
        if expr.startswith("{") and expr.endswith("}"):
            expr = expr[1:-1]
        try:
            columns.append((header, jsonpath.parse_path(expr if expr.startswith((".", "$", "[")) else "." + expr)))
        except jsonpath.JSONPathError as exc:
            raise CliError(f"error parsing custom-columns {part}: {exc}") from exc
    rows = []
    for obj in objects:
        row = []
        for _, steps in columns:
            found = jsonpath.evaluate(steps, obj)
            row.append(",".join(jsonpath.text_of(v) for v in found) if found else "<none>")
        rows.append(row)
    return [h for h, _ in columns], rows


def _event_rv(obj: dict[str, Any]) -> str:
    if obj.get("kind") == "Table":
        for row in obj.get("rows") or []:
            md = (row.get("object") or {}).get("metadata") or {}
            if md.get("resourceVersion"):
                return str(md["resourceVersion"])
        return ""
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def pad_row(cells: list[str], widths: list[int]) -> str:
    return "".join(c.ljust(widths[i] + 3) for i, c in enumerate(cells[:-1])) + (cells[-1] if cells else "")
