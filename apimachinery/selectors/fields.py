"""Field selectors (``?fieldSelector=spec.nodeName=node-1,status.phase!=Failed``).

A field selector is a conjunction of ``field=value``, ``field==value`` and ``field!=value`` terms.
Values escape ``\\``, ``,`` and ``=`` with a backslash (``\\!`` is accepted too). Only a few fields
of each kind can be selected; :func:`object_fields` lists them for an object, with Kubernetes'
convention that a missing value selects as the empty string (and a missing bool as "false").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apimachinery.selectors.labels import SelectorError

EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
# Tried in this order at each position, so "!=" and "==" win over "=".
_TERM_OPERATORS = (NOT_EQUALS, DOUBLE_EQUALS, EQUALS)
_ESCAPABLE = "\\,=!"


@dataclass(frozen=True)
class FieldRequirement:
    """One term: ``field operator value``."""

    field: str
    operator: str
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        have = fields.get(self.field, "")
        return have != self.value if self.operator == NOT_EQUALS else have == self.value

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of field terms; with none it matches everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def keys(self) -> set[str]:
        return {r.field for r in self.requirements}

    def requires_exact_match(self, field: str) -> str | None:
        """The value ``field`` must equal, if a term pins it (lets callers use an index)."""
        for r in self.requirements:
            if r.field == field and r.operator in (EQUALS, DOUBLE_EQUALS):
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_value(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in _ESCAPABLE:
                raise SelectorError(f"invalid field selector: invalid escape sequence: {value[i : i + 2]}")
            out.append(value[i + 1])
            i += 2
            continue
        if ch in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {ch}")
        out.append(ch)
        i += 1
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not escaped."""
    terms: list[str] = []
    start = i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == ",":
            terms.append(text[start:i])
            start = i + 1
        i += 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in _TERM_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
        i += 1
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """Parse a field selector; the empty string selects everything."""
    requirements: list[FieldRequirement] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, raw = split
        requirements.append(FieldRequirement(field, op, _unescape_value(raw)))
    return FieldSelector(tuple(requirements))


# ---------------------------------------------------------------------------------------------
# Selectable fields per kind


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    node: Any = obj
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _text(value: Any) -> str:
    """A field value as selectors see it: missing is "", bools are "true"/"false"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bool_text(value: Any) -> str:
    return "true" if value is True else "false"


def _pod(obj: Mapping[str, Any]) -> dict[str, str]:
    return {
        "spec.nodeName": _text(_get(obj, "spec", "nodeName")),
        "spec.restartPolicy": _text(_get(obj, "spec", "restartPolicy")),
        "spec.schedulerName": _text(_get(obj, "spec", "schedulerName")),
        "spec.serviceAccountName": _text(_get(obj, "spec", "serviceAccountName")),
        "spec.hostNetwork": _bool_text(_get(obj, "spec", "hostNetwork")),
        "status.phase": _text(_get(obj, "status", "phase")),
        "status.podIP": _text(_get(obj, "status", "podIP")),
        "status.nominatedNodeName": _text(_get(obj, "status", "nominatedNodeName")),
    }


def _event(obj: Mapping[str, Any]) -> dict[str, str]:
    fields = {
        f"involvedObject.{name}": _text(_get(obj, "involvedObject", name))
        for name in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    }
    fields.update(
        {
            "reason": _text(obj.get("reason")),
            "reportingComponent": _text(obj.get("reportingComponent")),
            "source": _text(_get(obj, "source", "component")),
            "type": _text(obj.get("type")),
        }
    )
    return fields


def _replicas(obj: Mapping[str, Any]) -> dict[str, str]:
    replicas = _get(obj, "status", "replicas")
    return {"status.replicas": str(replicas if isinstance(replicas, int) else 0)}


_KIND_FIELDS: dict[str, Any] = {
    "Pod": _pod,
    "Event": _event,
    "Secret": lambda obj: {"type": _text(obj.get("type"))},
    "Node": lambda obj: {"spec.unschedulable": _bool_text(_get(obj, "spec", "unschedulable"))},
    "Namespace": lambda obj: {"status.phase": _text(_get(obj, "status", "phase"))},
    "ReplicaSet": _replicas,
}


def object_fields(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """Every field selectable for ``kind``, read from the object's JSON."""
    fields = {
        "metadata.name": _text(_get(obj, "metadata", "name")),
        "metadata.namespace": _text(_get(obj, "metadata", "namespace")),
    }
    extra = _KIND_FIELDS.get(kind)
    if extra is not None:
        fields.update(extra(obj))
    return fields


def supported_fields(kind: str) -> set[str]:
    """The field names ``kind`` can be selected by."""
    return set(object_fields(kind, {}))


def check_supported(kind: str, sel: FieldSelector) -> None:
    """Refuse a selector naming a field ``kind`` cannot be selected by (as the API server does)."""
    allowed = supported_fields(kind)
    for field in sorted(sel.keys()):
        if field not in allowed:
            raise SelectorError(f"field label not supported: {field}")
