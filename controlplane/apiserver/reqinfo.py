"""What a request is about: parse a Kubernetes REST path into resource, namespace, name, subresource.

The grammar is Kubernetes' (its RequestInfoFactory):

    /api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]
    /apis/{group}/{version}[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]

with two twists kept for compatibility: ``/api/v1/namespaces/{name}/status|finalize`` are
subresources of the Namespace itself, and the deprecated ``/api/v1/watch/...`` prefix means
``?watch=true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from apimachinery import errors
from apimachinery.scheme import ResourceType, Scheme
from apimachinery.validation.names import path_segment_name_errors

# Subresources of a Namespace object, which otherwise would parse as a resource inside it.
_NAMESPACE_SUBRESOURCES = ("status", "finalize")

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class RequestInfo:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    legacy_watch: bool = False

    @property
    def is_collection(self) -> bool:
        return self.name is None


def parse_bool(value: str | None, param: str) -> bool:
    """Query booleans parse like Go's strconv.ParseBool (the Python client sends ``watch=True``)."""
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(f'invalid value for {param}: strconv.ParseBool: parsing "{value}": invalid syntax')


def parse_path(scheme: Scheme, path: str) -> RequestInfo:
    """Resolve an ``/api`` or ``/apis`` resource path; 404 NotFound for anything unknown.

    ``path`` may be the raw (still percent-encoded) path: segments are split first and decoded
    after, so an encoded ``%2F`` stays inside its segment and is refused as part of a name.
    """
    parts = [_unquote(p) for p in path.split("?", 1)[0].split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        raise _path_not_found(path)
    if parts[0] == "api":
        if len(parts) < 3:
            raise _path_not_found(path)
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            raise _path_not_found(path)
        group, version, rest = parts[1], parts[2], parts[3:]

    legacy_watch = False
    if rest and rest[0] == "watch":
        legacy_watch = True
        rest = rest[1:]

    namespace: str | None = None
    if len(rest) >= 2 and rest[0] == "namespaces" and not (
        len(rest) == 2 or (len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES)
    ):
        namespace, rest = rest[1], rest[2:]

    if not rest or len(rest) > 3:
        raise _path_not_found(path)
    rt = scheme.by_resource(group, version, rest[0])
    if rt is None:
        raise _path_not_found(path)
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if namespace is not None and not rt.namespaced:
        raise _path_not_found(path)
    if sub is not None and sub not in rt.subresources:
        raise _path_not_found(path)
    for what, value in (("name", name), ("namespace", namespace)):
        problems = path_segment_name_errors(value) if value is not None else []
        if problems:
            raise errors.bad_request(f"{what} {problems[0]}")
    return RequestInfo(rt, namespace, name, sub, legacy_watch)


def _unquote(segment: str) -> str:
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise errors.bad_request("the request path is not valid UTF-8 once percent-decoded") from None


def _path_not_found(path: str) -> errors.ApiError:
    # Kubernetes answers unknown paths with a bare 404 NotFound Status.
    return errors.ApiError.make(404, "NotFound", "the server could not find the requested resource")
