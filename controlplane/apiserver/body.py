"""Reading request bodies: size limit, media types, JSON/YAML decoding, dryRun and DeleteOptions.

Bodies are read with a hard cap (3 MiB, as Kubernetes) before any parsing, so an oversized or
hostile body costs nothing but the bytes it sent, with or without a Content-Length. Compressed
bodies are refused (a small gzip body could inflate past any cap). Decoding goes through
``apimachinery.safeload``: strict UTF-8 JSON, a nesting limit, YAML alias bombs refused.
Duplicate keys in a JSON or YAML body are refused with ``fieldValidation=Strict`` and become warnings
with ``Warn`` (the default), as in Kubernetes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from apimachinery import errors, safeload
from controlplane.apiserver import protobuf

MAX_BODY_BYTES = 3 * 1024 * 1024

# aiohttp's server limits, set explicitly: the request line (path + query: label selectors can be
# long) and each header (bearer tokens are JWTs of a few KiB) may be 16 KiB, with at most 128
# headers, so a request's head is bounded at about 2 MiB. Beyond that aiohttp answers 400 before
# any handler runs. Bodies are never inflated: a Content-Encoding is refused instead.
HTTP_LIMITS: dict[str, Any] = {
    "max_line_size": 16 * 1024,
    "max_field_size": 16 * 1024,
    "max_headers": 128,
    "auto_decompress": False,
}

JSON = "application/json"
YAML = "application/yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, APPLY_PATCH)
BODY_TYPES = (JSON, YAML, "application/x-yaml", "text/yaml")

# Warnings found while decoding a body (duplicate fields), for the response's Warning headers.
WARNINGS_KEY = web.RequestKey("body-warnings", list[str])


def media_type(request: web.Request) -> str:
    return (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


async def read_raw(request: web.Request) -> bytes:
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise errors.ApiError.make(
            415, "UnsupportedMediaType", f'the request body may not be encoded (Content-Encoding "{encoding}")')
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise errors.too_large("the request body is too large: limit is 3145728 bytes")
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data.extend(chunk)
        if len(data) > MAX_BODY_BYTES:
            raise errors.too_large("the request body is too large: limit is 3145728 bytes")
    return bytes(data)


def _decode(request: web.Request, data: bytes, kind: str) -> Any:
    if not data.strip():
        raise errors.bad_request("the request body is empty")
    duplicates: list[str] = []
    try:
        doc = safeload.loads_yaml(data, duplicates) if kind == "yaml" else safeload.loads_json(data, duplicates)
    except safeload.DecodeError as e:
        raise errors.bad_request(f"the body of the request could not be decoded as {kind.upper()}: {e}") from None
    if duplicates:
        _duplicate_fields(request, duplicates)
    return doc


def _duplicate_fields(request: web.Request, names: list[str]) -> None:
    mode = request.query.get("fieldValidation") or "Warn"
    found = [f'duplicate field "{n}"' for n in dict.fromkeys(names)]
    if mode == "Strict":
        raise errors.bad_request("strict decoding error: " + ", ".join(found))
    if mode == "Warn":
        request.setdefault(WARNINGS_KEY, []).extend(found)


def warnings(request: web.Request) -> list[str]:
    """What decoding this request's body found worth a Warning header."""
    return list(request.get(WARNINGS_KEY, []))


async def read_object(request: web.Request) -> dict[str, Any]:
    """The body of a POST/PUT as a JSON object (JSON or YAML media types)."""
    mt = media_type(request)
    if mt == protobuf.MEDIA_TYPE:
        # kubectl's typed clients (auth can-i, create rolebinding, ...) send these.
        return protobuf.decode_object(await read_raw(request))
    if mt not in BODY_TYPES and mt != "":
        raise errors.unsupported_media_type(mt)
    raw = await read_raw(request)
    obj = _decode(request, raw, "yaml" if "yaml" in mt else "json")
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request must be a JSON object")
    return obj


async def read_patch(request: web.Request) -> tuple[str, Any]:
    """The patch type and the decoded patch document."""
    mt = media_type(request)
    if mt not in PATCH_TYPES:
        raise errors.unsupported_media_type(mt)
    raw = await read_raw(request)
    doc = _decode(request, raw, "yaml" if mt == APPLY_PATCH else "json")
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
    obj = _decode(request, raw, "yaml" if "yaml" in mt else "json")
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
