"""kubectl's JSONPath templates (``-o jsonpath=...``, ``-o custom-columns=...``).

Supported: literal text around ``{...}`` expressions; ``$``/``@`` roots; ``.field``, ``..field``
(recursive), ``['field.with.dots']``, ``[n]``, ``[-1]``, ``[start:end]``, ``[*]``, ``.*``,
unions ``['a','b']``, filters ``[?(@.type=="Ready")]`` (==, !=, <, <=, >, >=, or existence);
``{range EXPR}...{end}``; string literals ``{"\\n"}``. Several results of one expression are
joined with spaces; maps and lists print as compact JSON; missing keys print nothing (kubectl's
default ``--allow-missing-template-keys=true``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class JSONPathError(ValueError):
    pass


@dataclass(frozen=True)
class Step:
    kind: str  # field | recursive | index | slice | wildcard | union | filter
    arg: Any = None


@dataclass
class Node:
    kind: str  # text | expr | range | end | literal
    value: Any = None
    body: list[Node] | None = None


_FILTER = re.compile(r"^\s*(@[^\s=!<>]*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*$")


def _split_template(template: str) -> list[tuple[str, str]]:
    """``("text", ...)`` and ``("expr", ...)`` pieces; braces inside quotes do not count."""
    out: list[tuple[str, str]] = []
    i = 0
    buf = ""
    while i < len(template):
        ch = template[i]
        if ch == "{":
            if buf:
                out.append(("text", buf))
                buf = ""
            j = i + 1
            quote = ""
            depth = 1
            while j < len(template):
                c = template[j]
                if quote:
                    if c == "\\":
                        j += 1
                    elif c == quote:
                        quote = ""
                elif c in "\"'":
                    quote = c
                elif c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(template):
                raise JSONPathError(f"unclosed action in template {template!r}")
            out.append(("expr", template[i + 1 : j].strip()))
            i = j + 1
            continue
        buf += ch
        i += 1
    if buf:
        out.append(("text", buf))
    return out


def _unquote(text: str) -> str:
    try:
        return str(json.loads(text)) if text.startswith('"') else text[1:-1].encode().decode("unicode_escape")
    except ValueError as exc:
        raise JSONPathError(f"bad string literal {text}") from exc


def parse(template: str) -> list[Node]:
    """Parse a template into nodes, nesting ``range`` bodies."""
    root: list[Node] = []
    stack: list[list[Node]] = [root]
    for kind, text in _split_template(template):
        if kind == "text":
            stack[-1].append(Node("text", text))
        elif text == "end":
            if len(stack) == 1:
                raise JSONPathError("not in range, nothing to end")
            stack.pop()
        elif text.startswith("range "):
            node = Node("range", parse_path(text[6:].strip()), [])
            stack[-1].append(node)
            assert node.body is not None
            stack.append(node.body)
        elif text[:1] in "\"'" and text[-1:] == text[:1] and len(text) >= 2:
            stack[-1].append(Node("literal", _unquote(text)))
        else:
            stack[-1].append(Node("expr", parse_path(text)))
    if len(stack) != 1:
        raise JSONPathError("unclosed range")
    return root


def parse_path(expr: str) -> list[Step]:
    steps: list[Step] = []
    i = 0
    if expr[:1] in "$@":
        i = 1
    while i < len(expr):
        ch = expr[i]
        if expr.startswith("..", i):
            name, i = _read_name(expr, i + 2)
            steps.append(Step("recursive", name))
        elif ch == ".":
            name, i = _read_name(expr, i + 1)
            if name == "*":
                steps.append(Step("wildcard"))
            elif name:
                steps.append(Step("field", name))
        elif ch == "[":
            end = _match_bracket(expr, i)
            steps.append(_bracket(expr[i + 1 : end].strip()))
            i = end + 1
        else:
            # kubectl also accepts a first field without the dot: {metadata.name}
            name, i = _read_name(expr, i)
            if not name:
                raise JSONPathError(f"unrecognized character in action: {ch!r}")
            steps.append(Step("field", name))
    return steps


def _read_name(expr: str, i: int) -> tuple[str, int]:
    name = ""
    while i < len(expr) and expr[i] not in ".[":
        if expr[i] == "\\" and i + 1 < len(expr):
            name += expr[i + 1]
            i += 2
            continue
        name += expr[i]
        i += 1
    return name, i


def _match_bracket(expr: str, start: int) -> int:
    depth = 0
    quote = ""
    for j in range(start, len(expr)):
        c = expr[j]
        if quote:
            if c == quote:
                quote = ""
            continue
        if c in "\"'":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return j
    raise JSONPathError(f"unterminated array in {expr!r}")


def _bracket(inner: str) -> Step:
    if inner == "*":
        return Step("wildcard")
    if inner.startswith("?(") and inner.endswith(")"):
        m = _FILTER.match(inner[2:-1])
        if not m:
            raise JSONPathError(f"unrecognized filter {inner!r}")
        path, op, raw = m.groups()
        value: Any = None
        if op:
            raw = raw.strip()
            if raw[:1] in "\"'":
                value = _unquote(raw)
            elif raw in ("true", "false"):
                value = raw == "true"
            else:
                try:
                    value = float(raw)
                except ValueError:
                    value = raw
        return Step("filter", (parse_path(path), op, value))
    if inner[:1] in "\"'":
        names = [_unquote(p.strip()) for p in re.findall(r"'[^']*'|\"[^\"]*\"", inner)]
        return Step("union", names) if len(names) > 1 else Step("field", names[0])
    if ":" in inner:
        parts = [p.strip() for p in inner.split(":")]
        nums = [int(p) if p else None for p in parts] + [None] * (3 - len(parts))
        return Step("slice", tuple(nums[:3]))
    if "," in inner:
        return Step("union", [int(p) for p in inner.split(",")])
    try:
        return Step("index", int(inner))
    except ValueError:
        return Step("field", inner)


def evaluate(steps: list[Step], root: Any) -> list[Any]:
    current = [root]
    for step in steps:
        nxt: list[Any] = []
        for value in current:
            nxt.extend(_apply(step, value))
        current = nxt
    return current


def _apply(step: Step, value: Any) -> list[Any]:
    if step.kind == "field":
        return [value[step.arg]] if isinstance(value, dict) and step.arg in value else []
    if step.kind == "wildcard":
        if isinstance(value, list):
            return list(value)
        return list(value.values()) if isinstance(value, dict) else []
    if step.kind == "index":
        if isinstance(value, list) and -len(value) <= step.arg < len(value):
            return [value[step.arg]]
        return []
    if step.kind == "slice":
        start, end, stride = step.arg
        return list(value[slice(start, end, stride)]) if isinstance(value, list) else []
    if step.kind == "union":
        out = []
        for key in step.arg:
            out.extend(_apply(Step("index" if isinstance(key, int) else "field", key), value))
        return out
    if step.kind == "recursive":
        return _descend(value, step.arg)
    if step.kind == "filter":
        path, op, want = step.arg
        items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else []
        return [item for item in items if _matches(evaluate(path, item), op, want)]
    raise JSONPathError(f"unknown step {step.kind}")


def _descend(value: Any, name: str) -> list[Any]:
    out: list[Any] = []
    if isinstance(value, dict):
        if name in value:
            out.append(value[name])
        for v in value.values():
            out.extend(_descend(v, name))
    elif isinstance(value, list):
        for v in value:
            out.extend(_descend(v, name))
    return out


def _matches(found: list[Any], op: str | None, want: Any) -> bool:
    if op is None:
        return bool(found)
    for have in found:
        if isinstance(want, float) and isinstance(have, (int, float)) and not isinstance(have, bool):
            left: Any = float(have)
        else:
            left = have
        try:
            if (op == "==" and left == want) or (op == "!=" and left != want):
                return True
            if op in ("<", "<=", ">", ">=") and {"<": left < want, "<=": left <= want, ">": left > want, ">=": left >= want}[op]:
                return True
        except TypeError:
            continue
    return False


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def render(nodes: list[Node], data: Any) -> str:
    out: list[str] = []
    for node in nodes:
        if node.kind == "text" or node.kind == "literal":
            out.append(str(node.value))
        elif node.kind == "expr":
            out.append(" ".join(text_of(v) for v in evaluate(node.value, data)))
        elif node.kind == "range":
            for item in evaluate(node.value, data):
                out.append(render(node.body or [], item))
    return "".join(out)


def execute(template: str, data: Any) -> str:
    return render(parse(template), data)
