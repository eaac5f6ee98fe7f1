"""How objects are stored: compact JSON, without resourceVersion (etcd's mod_revision is it)."""

from __future__ import annotations

from typing import Any

from apimachinery import jsonutil


def encode(obj: dict[str, Any]) -> bytes:
    md = obj.get("metadata") or {}
    if "resourceVersion" in md:
        # Store a copy without resourceVersion: it is etcd's mod_revision, set on every read, and
        # storing it would make the value lie after the next write.
        obj = {**obj, "metadata": {k: v for k, v in md.items() if k != "resourceVersion"}}
    return jsonutil.dumps(obj)


def deleted(prev: dict[str, Any] | None, revision: int) -> dict[str, Any]:
    """A deleted object as watchers see it: its last state, at the deletion's revision."""
    obj = dict(prev) if prev else {"metadata": {}}
    obj["metadata"] = {**obj.get("metadata", {}), "resourceVersion": str(revision)}
    return obj


def decode(value: bytes, mod_revision: int) -> dict[str, Any]:
    obj: dict[str, Any] = jsonutil.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(mod_revision)
    return obj
