"""Decoding JSON into typed objects: type errors become field errors, unknown fields are found.

The models keep unknown fields (``extra="allow"``) so that this module, not pydantic, decides
what to do with them: the API server reports them per ``fieldValidation`` and then drops them,
so they are never stored.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from apimachinery.errors import FieldError

M = TypeVar("M", bound=BaseModel)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _strip_union_noise(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Drop pydantic's internal loc entries (union member tags, 'function-after[...]')."""
    return tuple(
        p for p in loc
        if not (isinstance(p, str) and (p in ("int", "str", "float", "bool") or "[" in p or p.startswith("function-")))
    )


def validation_errors(err: ValidationError, base: str = "") -> list[FieldError]:
    """One field error per distinct bad field, with Kubernetes-style paths."""
    out: list[FieldError] = []
    seen: set[str] = set()
    for e in err.errors(include_url=False):
        loc = _strip_union_noise(tuple(e["loc"]))
        path = _path(loc)
        if base:
            path = f"{base}.{path}" if path else base
        if path in seen:
            continue
        seen.add(path)
        if e["type"] == "missing":
            out.append(FieldError.required(path))
        else:
            out.append(FieldError.type_invalid(path, e.get("input"), e["msg"]))
    return out


def decode(model: type[M], data: dict[str, Any]) -> tuple[M | None, list[FieldError]]:
    try:
        return model.model_validate(data), []
    except ValidationError as err:
        return None, validation_errors(err)


def unknown_fields(obj: BaseModel, base: str = "") -> list[str]:
    """Paths of every JSON field the models do not declare, depth first."""
    out: list[str] = []
    extra = obj.__pydantic_extra__ or {}
    for key in extra:
        out.append(f"{base}.{key}" if base else key)
    fields = type(obj).model_fields
    # Only fields present in the input can hold unknown fields: walking model_fields_set instead
    # of every declared field skips the many unset optionals of a big object such as a Pod.
    for name in obj.model_fields_set:
        info = fields.get(name)
        if info is None:
            continue
        value = getattr(obj, name, None)
        if value is None:
            continue
        alias = info.alias or name
        here = f"{base}.{alias}" if base else alias
        out.extend(_unknown_in(value, here))
    return out


def _unknown_in(value: Any, here: str) -> list[str]:
    if isinstance(value, BaseModel):
        return unknown_fields(value, here)
    if isinstance(value, list):
        found: list[str] = []
        for i, item in enumerate(value):
            found.extend(_unknown_in(item, f"{here}[{i}]"))
        return found
    if isinstance(value, dict):
        found = []
        for k, item in value.items():
            found.extend(_unknown_in(item, f"{here}[{k}]"))
        return found
    return []


def drop_unknown_fields(obj: BaseModel) -> None:
    """Remove every undeclared field, in place, so it is never stored."""
    if obj.__pydantic_extra__:
        obj.__pydantic_extra__.clear()
    fields = type(obj).model_fields
    for name in obj.model_fields_set:
        if name in fields:
            _drop_in(getattr(obj, name, None))


def _drop_in(value: Any) -> None:
    if isinstance(value, BaseModel):
        drop_unknown_fields(value)
    elif isinstance(value, list):
        for item in value:
            _drop_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            _drop_in(item)
