"""``kubectl-lite events``: core/v1 Events as ``kubectl events`` lists them, oldest first.

Columns: LAST SEEN (``5m (x3 over 20m)`` for repeated events), TYPE, REASON, OBJECT
(``Kind/name``), MESSAGE, with NAMESPACE first under ``-A``. ``--for TYPE/NAME`` narrows to one
object (a field selector on ``involvedObject``), ``--types`` to Normal and/or Warning, and ``-w``
keeps printing new and updated events as they arrive.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from apimachinery.client.watch import watch
from apimachinery.errors import ApiError
from apimachinery.meta import parse_time
from apimachinery.scheme import ResourceType
from kubectl_lite.context import Cli
from kubectl_lite.get import pad_row
from kubectl_lite.printers import age_of, as_list, render_table, to_json, to_yaml
from kubectl_lite.resources import CliError, resolve_type

EVENT_TYPES = ("Normal", "Warning")
HEADERS = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("events", parents=parents, help="List events")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--for", dest="for_object", default=None, metavar="TYPE/NAME", help="only events about this object")
    p.add_argument("--types", action="append", default=[], help="Normal and/or Warning (comma-separated)")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, watch for new events")
    p.add_argument("-o", "--output", choices=["json", "yaml"], default=None)
    p.add_argument("--no-headers", action="store_true")
    p.set_defaults(func=run)


def parse_types(values: list[str]) -> set[str]:
    """``--types`` values (repeatable, comma-separated, any case) as Event types."""
    out: set[str] = set()
    for value in values:
        for t in value.split(","):
            t = t.strip()
            if not t:
                continue
            match = next((e for e in EVENT_TYPES if e.lower() == t.lower()), None)
            if match is None:
                raise CliError("valid --types are Normal or Warning")
            out.add(match)
    return out


def event_time(ev: dict[str, Any]) -> datetime:
    """When the event last happened: the series' last observation, lastTimestamp, eventTime,
    firstTimestamp, or the object's creation, whichever is there first."""
    series = ev.get("series") or {}
    md = ev.get("metadata") or {}
    for value in (series.get("lastObservedTime"), ev.get("lastTimestamp"), ev.get("eventTime"),
                  ev.get("firstTimestamp"), md.get("creationTimestamp")):
        if value:
            try:
                return parse_time(str(value))
            except ValueError:
                continue
    return datetime.min.replace(tzinfo=UTC)


def last_seen(ev: dict[str, Any], now: datetime | None = None) -> str:
    """``30m``, or ``5m (x3 over 20m)`` when the event happened more than once."""
    series = ev.get("series") or {}
    count = int(series.get("count") or ev.get("count") or 1)
    last = age_of(event_time(ev).strftime("%Y-%m-%dT%H:%M:%SZ"), now)
    if count <= 1:
        return last
    first = ev.get("firstTimestamp") or ev.get("eventTime") or (ev.get("metadata") or {}).get("creationTimestamp")
    return f"{last} (x{count} over {age_of(first, now)})"


def event_row(ev: dict[str, Any], with_namespace: bool, now: datetime | None = None) -> list[str]:
    obj = ev.get("involvedObject") or ev.get("regarding") or {}
    row = [
        last_seen(ev, now),
        str(ev.get("type") or ""),
        str(ev.get("reason") or ""),
        f"{obj.get('kind', '')}/{obj.get('name', '')}",
        str(ev.get("message") or ev.get("note") or "").strip(),
    ]
    if with_namespace:
        row.insert(0, str((ev.get("metadata") or {}).get("namespace") or ""))
    return row


def _for_selector(cli: Cli, value: str) -> str:
    kind, sep, name = value.partition("/")
    if not sep or not kind or not name:
        raise CliError("--for must be in resource/name form")
    rt = resolve_type(cli.scheme, kind)
    return f"involvedObject.kind={rt.kind},involvedObject.name={name}"


async def run(cli: Cli, args: argparse.Namespace) -> None:
    types = parse_types(args.types)
    rt = resolve_type(cli.scheme, "events")
    ns = None if args.all_namespaces else cli.namespace
    selector = _for_selector(cli, args.for_object) if args.for_object else None
    items, rv = await cli.client.list_all(rt, ns, field_selector=selector)
    items = sorted((e for e in items if not types or e.get("type") in types), key=event_time)
    if args.output:
        doc = as_list(items)
        text = to_json(doc) + "\n" if args.output == "json" else to_yaml(doc)
        cli.out.write(text)
        cli.out.flush()
        return
    headers = (["NAMESPACE"] if args.all_namespaces else []) + HEADERS
    rows = [event_row(e, args.all_namespaces) for e in items]
    if rows:
        cli.print(render_table(headers, rows, header=not args.no_headers))
    elif not args.watch:
        cli.warn("No events found." if args.all_namespaces else f"No events found in {cli.namespace} namespace.")
        return
    if args.watch:
        await _watch(cli, rt, ns, selector, types, rv, headers, rows, args)


async def _watch(
    cli: Cli, rt: ResourceType, ns: str | None, selector: str | None, types: set[str], rv: str,
    headers: list[str], rows: list[list[str]], args: argparse.Namespace,
) -> None:
    """Print each added or updated event as a row aligned with the table printed so far."""
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, r, strict=False)]
    header_printed = bool(rows) and not args.no_headers
    while True:
        async for ev in watch(cli.client, rt, ns, resource_version=rv or None, field_selector=selector):
            if ev.type == "ERROR":
                raise ApiError.from_status(ev.object)
            rv = str((ev.object.get("metadata") or {}).get("resourceVersion") or rv)
            if ev.type not in ("ADDED", "MODIFIED") or (types and ev.object.get("type") not in types):
                continue
            row = event_row(ev.object, args.all_namespaces)
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
            if not header_printed and not args.no_headers:
                cli.print(pad_row(headers, widths))
                header_printed = True
            cli.print(pad_row(row, widths))
