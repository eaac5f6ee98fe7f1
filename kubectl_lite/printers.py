"""Output formats: kubectl's tables (from meta.k8s.io/v1 Table), yaml, json, name, and ages."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from apimachinery.duration import human_duration
from apimachinery.meta import parse_time
from apimachinery.scheme import ResourceType


def age_of(timestamp: str | None, now: datetime | None = None) -> str:
    """The age of an RFC 3339 timestamp, or ``<unknown>`` like kubectl when there is none."""
    if not timestamp:
        return "<unknown>"
    try:
        when = parse_time(timestamp)
    except ValueError:
        return "<invalid>"
    return human_duration(((now or datetime.now(UTC)) - when).total_seconds())


def tabwrite(lines: Sequence[str], padding: int = 3) -> str:
    """Align tab-separated cells like Go's text/tabwriter (as kubectl uses it).

    A cell ended by a tab is padded to the widest cell of its column among the adjacent lines
    that also have that column; the last cell of a line is never padded.
    """
    rows = [line.split("\t") for line in lines]
    widths: list[list[int]] = [[0] * max(len(r) - 1, 0) for r in rows]
    col = 0
    while True:
        any_col = False
        i = 0
        while i < len(rows):
            if len(rows[i]) - 1 > col:
                any_col = True
                j = i
                while j < len(rows) and len(rows[j]) - 1 > col:
                    j += 1
                width = max(len(rows[k][col]) for k in range(i, j)) + padding
                for k in range(i, j):
                    widths[k][col] = width
                i = j
            else:
                i += 1
        if not any_col:
            break
        col += 1
    out = []
    for r, w in zip(rows, widths, strict=True):
        out.append("".join(cell.ljust(w[c]) for c, cell in enumerate(r[:-1])) + r[-1])
    return "\n".join(out)


def cell_text(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def labels_text(labels: dict[str, str] | None) -> str:
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def resource_name(rt: ResourceType) -> str:
    """``pod``, ``deployment.apps``: the prefix kubectl prints before ``/NAME``."""
    kind = rt.kind.lower()
    return f"{kind}.{rt.group}" if rt.group else kind


class _KubectlDumper(yaml.SafeDumper):
    """YAML as kubectl writes it: multi-line strings as ``|`` blocks, quoting with double quotes."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value and not any(line != line.rstrip() for line in value.split("\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    try:
        plain_ok = value != "" and yaml.safe_load(value) == value
    except yaml.YAMLError:
        plain_ok = False
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=None if plain_ok else '"')


_KubectlDumper.add_representer(str, _represent_str)


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_KubectlDumper, default_flow_style=False, sort_keys=True, allow_unicode=True, width=1 << 30)


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=4, ensure_ascii=False, sort_keys=True)


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """What kubectl prints for several objects with -o yaml/json."""
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


class TablePrinter:
    """Turns Tables (or plain objects/lists from servers without Tables) into kubectl's rows."""

    def __init__(
        self,
        *,
        wide: bool = False,
        with_namespace: bool = False,
        show_labels: bool = False,
        name_prefix: str = "",
    ) -> None:
        self.wide = wide
        self.with_namespace = with_namespace
        self.show_labels = show_labels
        self.name_prefix = name_prefix
        self._columns: list[dict[str, Any]] = []

    def header_and_rows(self, answer: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
        if answer.get("kind") == "Table":
            return self._from_table(answer)
        return self._from_objects(answer)

    def _decorate(self, headers: list[str], rows: list[tuple[list[str], dict[str, Any]]]) -> tuple[list[str], list[list[str]]]:
        out_headers = list(headers)
        if self.with_namespace:
            out_headers.insert(0, "NAMESPACE")
        if self.show_labels:
            out_headers.append("LABELS")
        out_rows = []
        for cells, meta in rows:
            row = list(cells)
            if self.name_prefix and row:
                row[0] = f"{self.name_prefix}/{row[0]}"
            if self.with_namespace:
                row.insert(0, str(meta.get("namespace") or ""))
            if self.show_labels:
                row.append(labels_text(meta.get("labels")))
            out_rows.append(row)
        return out_headers, out_rows

    def _from_table(self, table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
        # In a watch only the first Table carries columnDefinitions (as in Kubernetes): keep them.
        cols = table.get("columnDefinitions") or self._columns
        self._columns = cols
        keep = [i for i, c in enumerate(cols) if self.wide or int(c.get("priority") or 0) == 0]
        headers = [str(cols[i].get("name", "")).upper() for i in keep]
        rows: list[tuple[list[str], dict[str, Any]]] = []
        for row in table.get("rows") or []:
            cells = row.get("cells") or []
            meta = (row.get("object") or {}).get("metadata") or {}
            rows.append(([cell_text(cells[i]) if i < len(cells) else "" for i in keep], meta))
        return self._decorate(headers, rows)

    def _from_objects(self, answer: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
        items = answer.get("items") if "items" in answer else [answer]
        rows = []
        for obj in items or []:
            meta = obj.get("metadata") or {}
            rows.append(([str(meta.get("name", "")), age_of(meta.get("creationTimestamp"))], meta))
        return self._decorate(["NAME", "AGE"], rows)


def render_table(headers: list[str], rows: list[list[str]], *, header: bool = True) -> str:
    lines = (["\t".join(headers)] if header else []) + ["\t".join(r) for r in rows]
    return tabwrite(lines, padding=3)
