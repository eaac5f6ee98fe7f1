"""Reading request bodies: size limit, media types, JSON/YAML decoding, dryRun and DeleteOptions.

Bodies are read with a hard cap (3 MiB, as Kubernetes) before any parsing, so an oversized or
hostile body costs nothing but the bytes it sent. YAML is parsed with ``safe_load`` only.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web

from apimachinery import errors

MAX_BODY_BYTES = 3 * 1024 * 1024

JSON = "application/json"
YAML = "application/yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, APPLY_PATCH)
BODY_TYPES = (JSON, YAML, "application/x-yaml", "text/yaml")


def media_type(request: web.Request) -> str:
    return (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


async def read_raw(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise errors.too_large("the request body is too large: limit is 3145728 bytes")
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data.extend(chunk)
        if len(data) > MAX_BODY_BYTES:
            raise errors.too_large("the request body is too large: limit is 3145728 bytes")
    return bytes(data)


def _decode(data: bytes, kind: str) -> Any:
    if not data.strip():
        raise errors.bad_request("the request body is empty")
    try:
        if kind == "yaml":
            return yaml.safe_load(data)
        return json.loads(data)
    except (ValueError, yaml.YAMLError) as e:
        raise errors.bad_request(f"the body of the request could not be decoded as {kind.upper()}: {_short(e)}") from None


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:200]


async def read_object(request: web.Request) -> dict[str, Any]:
    """The body of a POST/PUT as a JSON object (JSON or YAML media types)."""
    mt = media_type(request)
    if mt not in BODY_TYPES and mt != "":
        raise errors.unsupported_media_type(mt)
    raw = await read_raw(request)
    obj = _decode(raw, "yaml" if "yaml" in mt else "json")
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request must be a JSON object")
    return obj


async def read_patch(request: web.Request) -> tuple[str, Any]:
    """The patch type and the decoded patch document."""
    mt = media_type(request)
    if mt not in PATCH_TYPES:
        raise errors.unsupported_media_type(mt)
    raw = await read_raw(request)
    doc = _decode(raw, "yaml" if mt == APPLY_PATCH else "json")
    if mt == JSON_PATCH:
        if not isinstance(doc, list):
            raise errors.bad_request("json patch must be a JSON array of operations")
    elif not isinstance(doc, dict):
        raise errors.bad_request("the patch must be a JSON object")
    return mt, doc


async def read_optional_object(request: web.Request) -> dict[str, Any] | None:
    """DELETE's optional DeleteOptions body."""
    raw = await read_raw(request)
    if not raw.strip():
        return None
    mt = media_type(request)
    obj = _decode(raw, "yaml" if "yaml" in mt else "json")
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request must be a JSON object")
    return obj


def dry_run(values: list[str]) -> bool:
    """``dryRun=All`` is the only dry-run mode Kubernetes defines."""
    for v in values:
        if v != "All":
            raise errors.bad_request(f'Invalid dry run value: "{v}"; the only valid value is "All"')
    return bool(values)
