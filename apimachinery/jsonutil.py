"""Helpers for JSON-shaped data (dicts, lists, str, int, float, bool, None)."""

from __future__ import annotations

from typing import Any


def deep_copy(value: Any) -> Any:
    """A deep copy of JSON data, several times faster than ``copy.deepcopy``: JSON has no
    cycles, no shared references worth keeping and no custom types, so a plain recursive copy of
    dicts and lists is enough (scalars are immutable and shared)."""
    t = type(value)
    if t is dict:
        return {k: deep_copy(v) for k, v in value.items()}
    if t is list:
        return [deep_copy(v) for v in value]
    return value
