"""RFC 7386 JSON merge patch, plus the error type and JSON helpers every patch engine shares.

A merge patch is the simplest of the three patch formats the API server accepts
(``application/merge-patch+json``): objects merge recursively, ``null`` deletes a key and every
other value, lists included, replaces what was there. ``kubectl scale`` and ``kubectl patch
--type merge`` send it.
"""

from __future__ import annotations

from typing import Any

from apimachinery.jsonutil import deep_copy


class PatchError(ValueError):
    """A patch that cannot be applied; the message is what the API server answers with.

    ``code`` is the HTTP status Kubernetes uses for the failure: 400 for a malformed patch, 422 for
    a well-formed JSON patch operation that does not apply to the object (a failed ``test``, a
    missing path), 413 for too many JSON patch operations.
    """

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.code = code


def json_type(value: Any) -> str:
    """The JSON type of a decoded value; ints and floats are one type, as in Go's decoder."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def json_equal(a: Any, b: Any) -> bool:
    """Deep equality with JSON semantics: ``1 == 1.0`` but ``True != 1`` (Python conflates those)."""
    ta, tb = json_type(a), json_type(b)
    if ta != tb:
        return False
    if ta == "object":
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if ta == "array":
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return deep_copy(patch)
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def apply_merge_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch to a JSON object; neither argument is modified.

    The API server only takes objects as merge patches (a bare list or scalar would replace the
    whole object); anything else is refused with the message Kubernetes gives.
    """
    if not isinstance(patch, dict):
        raise PatchError("Invalid JSON Patch", 400)
    result = _merge(deep_copy(original), patch)
    assert isinstance(result, dict)
    return result
