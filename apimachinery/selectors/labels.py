"""Label selectors: Kubernetes' string grammar, the meta/v1 LabelSelector type, and matching.

The string form is what ``?labelSelector=`` and ``kubectl get -l`` carry::

    app=web,tier in (a,b),!canary,env!=prod,partition>3

Parsing follows Kubernetes' lexer and parser, including its error messages, because kubectl shows
them verbatim (``Error from server (BadRequest): unable to parse requirement: ...``). A parsed
selector prints back in Kubernetes' canonical form: requirements sorted by key, values sorted.

Two selectors need telling apart: a nil selector in an object (``spec.selector`` missing) selects
*nothing*, while an empty one (``{}``) or an empty string selects *everything*.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apimachinery.errors import FieldError
from apimachinery.meta import LabelSelector as LabelSelectorModel
from apimachinery.validation.names import is_qualified_name, is_valid_label_value


class SelectorError(ValueError):
    """A selector that does not parse or validate; the API server answers 400 BadRequest with it."""


# Operators, spelled as Kubernetes' selection.Operator values.
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"
OPERATORS = (DOES_NOT_EXIST, EQUALS, DOUBLE_EQUALS, IN, NOT_EQUALS, NOT_IN, EXISTS, GREATER_THAN, LESS_THAN)
_BINARY = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)


def _aggregate(errors: list[FieldError]) -> str:
    rendered = [str(e) for e in errors]
    return rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"


def _parse_int(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64): optional sign, ASCII digits, 64-bit range."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


# ---------------------------------------------------------------------------------------------
# Requirements and selectors


@dataclass(frozen=True)
class Requirement:
    """One clause of a selector: ``key operator values``. Values are kept sorted and unique."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(sorted(set(self.values))))
        problems: list[FieldError] = []
        key_errors = is_qualified_name(self.key)
        if key_errors:
            problems.append(FieldError.invalid("key", self.key, "; ".join(key_errors)))
        op, values = self.operator, list(self.values)
        if op in (IN, NOT_IN):
            if not values:
                problems.append(
                    FieldError.invalid(
                        "values", values, "for 'in', 'notin' operators, values set can't be empty"
                    )
                )
        elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
            if len(values) != 1:
                problems.append(
                    FieldError.invalid(
                        "values", values, "exact-match compatibility requires one single value"
                    )
                )
        elif op in (EXISTS, DOES_NOT_EXIST):
            if values:
                problems.append(
                    FieldError.invalid(
                        "values", values, "values set must be empty for exists and does not exist"
                    )
                )
        elif op in (GREATER_THAN, LESS_THAN):
            if len(values) != 1:
                problems.append(
                    FieldError.invalid(
                        "values", values, "for 'Gt', 'Lt' operators, exactly one value is required"
                    )
                )
            for i, v in enumerate(values):
                if _parse_int(v) is None:
                    problems.append(
                        FieldError.invalid(
                            f"values[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer"
                        )
                    )
        else:
            problems.append(FieldError.not_supported("operator", op, list(OPERATORS)))
        for i, v in enumerate(values):
            value_errors = is_valid_label_value(v)
            if value_errors:
                problems.append(FieldError.invalid(f"values[{i}]", v, "; ".join(value_errors)))
        if problems:
            raise SelectorError(_aggregate(problems))

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        present = self.key in labels
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if op == EXISTS:
            return present
        if op == DOES_NOT_EXIST:
            return not present
        # gt / lt: the label must hold an integer; anything else does not match.
        if not present:
            return False
        have = _parse_int(labels[self.key])
        want = _parse_int(self.values[0])
        if have is None or want is None:
            return False
        return have > want if op == GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({','.join(self.values)})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements (sorted by key, as Kubernetes keeps them).

    ``nothing`` marks the selector of a nil ``LabelSelector``: it matches no object at all.
    """

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = field(default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "requirements", tuple(sorted(self.requirements, key=lambda r: r.key)))

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def match_nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    @property
    def empty(self) -> bool:
        """True when the selector matches every object."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def add(self, *requirements: Requirement) -> LabelSelector:
        return LabelSelector((*self.requirements, *requirements), nothing=self.nothing)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# ---------------------------------------------------------------------------------------------
# The string grammar

_SPECIAL = "=!(),><"
_SYMBOLS = ("!=", "==", "!", "(", ")", ",", "=", ">", "<")

# Token kinds
_IDENT, _IN, _NOTIN, _END = "identifier", "in", "notin", "end"


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); symbols are their own kind."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch in _SPECIAL:
            symbol = next(s for s in _SYMBOLS if text.startswith(s, i))
            tokens.append((symbol, symbol))
            i += len(symbol)
        else:
            j = i
            while j < n and text[j] not in _SPECIAL and text[j] not in " \t\r\n":
                j += 1
            word = text[i:j]
            kind = _IN if word == "in" else _NOTIN if word == "notin" else _IDENT
            tokens.append((kind, word))
            i = j
    tokens.append((_END, ""))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def _token(self, values: bool) -> tuple[str, str]:
        kind, literal = self.tokens[min(self.pos, len(self.tokens) - 1)]
        # Where a value is expected, the keywords are plain words ("a=in" is fine).
        if values and kind in (_IN, _NOTIN):
            kind = _IDENT
        return kind, literal

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        return self._token(values)

    def consume(self, values: bool = True) -> tuple[str, str]:
        token = self._token(values)
        self.pos += 1
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.lookahead()
            if kind == _END:
                return requirements
            if kind not in (_IDENT, "!"):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorError as e:
                raise SelectorError(f"unable to parse requirement: {e}") from None
            kind, literal = self.consume()
            if kind == _END:
                return requirements
            if kind != ",":
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.lookahead()
            if kind not in (_IDENT, "!"):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        operator = ""
        kind, literal = self.consume()
        if kind == "!":
            operator = DOES_NOT_EXIST
            kind, literal = self.consume()
        if kind != _IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        key = literal
        key_errors = is_qualified_name(key)
        if key_errors:
            raise SelectorError(str(FieldError.invalid("key", key, "; ".join(key_errors))))
        if self.lookahead()[0] in (_END, ","):
            operator = operator or EXISTS
        if operator:
            return Requirement(key, operator)
        operator = self.operator()
        values = self.value_set() if operator in (IN, NOT_IN) else self.exact_value()
        return Requirement(key, operator, tuple(values))

    def operator(self) -> str:
        kind, literal = self.consume(values=False)
        operators = {_IN: IN, _NOTIN: NOT_IN, "=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS}
        operators.update({">": GREATER_THAN, "<": LESS_THAN})
        if kind not in operators:
            raise SelectorError(f"found '{literal}', expected: {', '.join(_BINARY)}")
        return operators[kind]

    def exact_value(self) -> list[str]:
        kind, _ = self.lookahead()
        if kind in (_END, ","):
            return [""]
        kind, literal = self.consume()
        if kind != _IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        return [literal]

    def value_set(self) -> list[str]:
        kind, literal = self.consume()
        if kind != "(":
            raise SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self.lookahead()
        if kind == ")":
            self.consume()
            return [""]
        if kind not in (_IDENT, ","):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        kind, literal = self.consume()
        if kind != ")":
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> list[str]:
        """The inside of ``( ... )``; empty slots (``(a,)``, ``(,b)``) are the empty value."""
        values: list[str] = []
        while True:
            kind, literal = self.consume()
            if kind == _IDENT:
                values.append(literal)
                nxt, nxt_literal = self.lookahead()
                if nxt == ",":
                    continue
                if nxt == ")":
                    return values
                raise SelectorError(f"found '{nxt_literal}', expected: ',' or ')'")
            if kind == ",":
                if not values:
                    values.append("")
                nxt, _ = self.lookahead()
                if nxt == ")":
                    values.append("")
                    return values
                if nxt == ",":
                    self.consume()
                    values.append("")
                continue
            raise SelectorError(f"found '{literal}', expected: ',', or identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse Kubernetes' label selector syntax; an empty string selects everything."""
    return LabelSelector(tuple(_Parser(text).parse()))


_MODEL_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_model(sel: LabelSelectorModel | Mapping[str, Any] | None) -> LabelSelector:
    """The selector a meta/v1 LabelSelector (model or JSON) stands for.

    As in Kubernetes' LabelSelectorAsSelector: ``None`` selects nothing, an empty selector
    (no matchLabels, no matchExpressions) selects everything.
    """
    if sel is None:
        return LabelSelector.match_nothing()
    if isinstance(sel, LabelSelectorModel):
        match_labels: Mapping[str, Any] = sel.match_labels or {}
        expressions: list[Any] = [e.model_dump(by_alias=True) for e in sel.match_expressions or []]
    elif isinstance(sel, Mapping):
        match_labels = sel.get("matchLabels") or {}
        expressions = list(sel.get("matchExpressions") or [])
    else:
        raise SelectorError(f"invalid label selector: {sel!r}")
    requirements = [Requirement(str(k), EQUALS, (str(v),)) for k, v in match_labels.items()]
    for expr in expressions:
        if not isinstance(expr, Mapping):
            raise SelectorError(f"invalid label selector requirement: {expr!r}")
        op = expr.get("operator")
        if op not in _MODEL_OPERATORS:
            raise SelectorError(f'"{op}" is not a valid label selector operator')
        values = tuple(str(v) for v in expr.get("values") or [])
        requirements.append(Requirement(str(expr.get("key") or ""), _MODEL_OPERATORS[op], values))
    return LabelSelector(tuple(requirements))


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """A selector matching objects that carry all these labels (``app=web,tier=db``)."""
    return LabelSelector(tuple(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items()))


def selector_to_string(sel: LabelSelector | LabelSelectorModel | Mapping[str, Any] | None) -> str:
    """The canonical string of a selector (Scale's ``status.selector``); a nil selector gives ""."""
    selector = sel if isinstance(sel, LabelSelector) else selector_from_model(sel)
    return str(selector)
