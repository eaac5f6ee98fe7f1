"""Helpers for JSON-shaped data (dicts, lists, str, int, float, bool, None).

``dumps``/``loads`` are the one JSON codec of the hot paths (etcd values, watch lines, API
responses, the client's reads). They use orjson: the API server encodes or decodes every object
several times per write and every component decodes every watch event, and the standard library's
codec was about an eighth of the API server's and a fifth of the scheduler's CPU. Output is
compact UTF-8 (the API's own wire form; non-ASCII is not \\u-escaped). Untrusted request bodies
still go through ``apimachinery.safeload``, which also reports duplicate keys.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    """Compact JSON bytes of JSON data (dict keys must be strings)."""
    return orjson.dumps(value)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode one JSON document; raises ``ValueError`` on bad input."""
    return orjson.loads(data)


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
