"""Just enough of Kubernetes' protobuf encoding to read what kubectl's typed clients send.

Some kubectl commands (``auth can-i``, ``auth whoami``, ``create role|rolebinding|clusterrole|
clusterrolebinding``) send their object as ``application/vnd.kubernetes.protobuf`` while
accepting JSON back. Those objects are small and flat, so instead of a protobuf dependency this
reads the wire format directly: the ``k8s\\0`` magic, the runtime.Unknown envelope, then the
object's message, returned as the JSON-shaped dict the rest of the server handles. Field numbers
are those of k8s.io/api; fields not listed here are skipped.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from apimachinery import errors

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# A message schema: field number -> (JSON name, how to read it). "str" a string, "strs" a
# repeated string, "int" a varint, "map" a map<string,string>, a dict a nested message, a
# 1-tuple a repeated one.
Schema = dict[int, tuple[str, Any]]
_OBJECT_META: Schema = {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"),
                        5: ("uid", "str"), 6: ("resourceVersion", "str"),
                        11: ("labels", "map"), 12: ("annotations", "map")}
_RESOURCE_ATTRIBUTES: Schema = {1: ("namespace", "str"), 2: ("verb", "str"), 3: ("group", "str"),
                                4: ("version", "str"), 5: ("resource", "str"), 6: ("subresource", "str"),
                                7: ("name", "str")}
_NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", "str"), 2: ("verb", "str")}
_SELF_ACCESS_SPEC: Schema = {1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
                             2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES)}
_ACCESS_SPEC: Schema = {**_SELF_ACCESS_SPEC, 3: ("user", "str"), 4: ("groups", "strs"), 6: ("uid", "str")}
_POLICY_RULE: Schema = {1: ("verbs", "strs"), 2: ("apiGroups", "strs"), 3: ("resources", "strs"),
                        4: ("resourceNames", "strs"), 5: ("nonResourceURLs", "strs")}
_SUBJECT: Schema = {1: ("kind", "str"), 2: ("apiGroup", "str"), 3: ("name", "str"), 4: ("namespace", "str")}
_ROLE_REF: Schema = {1: ("apiGroup", "str"), 2: ("kind", "str"), 3: ("name", "str")}
_ROLE: Schema = {1: ("metadata", _OBJECT_META), 2: ("rules", (_POLICY_RULE,))}
_BINDING: Schema = {1: ("metadata", _OBJECT_META), 2: ("subjects", (_SUBJECT,)), 3: ("roleRef", _ROLE_REF)}
KINDS: dict[str, Schema] = {
    "SelfSubjectAccessReview": {1: ("metadata", _OBJECT_META), 2: ("spec", _SELF_ACCESS_SPEC)},
    "SubjectAccessReview": {1: ("metadata", _OBJECT_META), 2: ("spec", _ACCESS_SPEC)},
    "SelfSubjectRulesReview": {1: ("metadata", _OBJECT_META), 2: ("spec", {1: ("namespace", "str")})},
    "SelfSubjectReview": {1: ("metadata", _OBJECT_META)},
    # kubectl create token (authentication.k8s.io/v1 TokenRequest): only its spec matters.
    "TokenRequest": {1: ("metadata", _OBJECT_META), 2: ("spec", {
        1: ("audiences", "strs"), 4: ("expirationSeconds", "int"),
        3: ("boundObjectRef", {1: ("kind", "str"), 2: ("apiVersion", "str"), 3: ("name", "str"), 4: ("uid", "str")}),
    })},
    # kubectl certificate approve|deny: the whole request, of which the approval keeps only
    # status.conditions (and metadata.resourceVersion for the compare-and-swap).
    "CertificateSigningRequest": {1: ("metadata", _OBJECT_META), 2: ("spec", {
        1: ("request", "bytes"), 2: ("username", "str"), 3: ("uid", "str"), 4: ("groups", "strs"),
        5: ("usages", "strs"), 7: ("signerName", "str"), 8: ("expirationSeconds", "int"),
    }), 3: ("status", {1: ("conditions", ({
        1: ("type", "str"), 2: ("reason", "str"), 3: ("message", "str"), 4: ("lastUpdateTime", "time"),
        5: ("lastTransitionTime", "time"), 6: ("status", "str"),
    },)), 2: ("certificate", "bytes")})},
    "Role": _ROLE,
    "ClusterRole": _ROLE,
    "RoleBinding": _BINDING,
    "ClusterRoleBinding": _BINDING,
}


class _Bad(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Bad("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """(field number, bytes for length-delimited fields / int for varints), in order."""
    out: list[tuple[int, bytes | int]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise _Bad("truncated field")
            out.append((number, data[pos:pos + length]))
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise _Bad(f"unsupported wire type {wire}")
    return out


def _message(data: bytes, schema: Schema, depth: int = 0) -> dict[str, Any]:
    if depth > 8:
        raise _Bad("nested too deeply")
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema:
            continue
        name, how = schema[number]
        if how == "int":
            if isinstance(value, int):
                out[name] = value
            continue
        if not isinstance(value, bytes):
            continue
        if how == "str":
            # Go writes every string field, set or not; empty means unset (JSON's omitempty).
            if value:
                out[name] = value.decode()
        elif how == "strs":
            out.setdefault(name, []).append(value.decode())
        elif how == "bytes":
            # JSON carries bytes fields base64-encoded.
            out[name] = base64.b64encode(value).decode()
        elif how == "time":
            seconds = _message(value, {1: ("seconds", "int")}, depth + 1).get("seconds", 0)
            out[name] = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif how == "map":
            entry = _message(value, {1: ("key", "str"), 2: ("value", "str")}, depth + 1)
            out.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        elif isinstance(how, tuple):
            out.setdefault(name, []).append(_message(value, how[0], depth + 1))
        else:
            out[name] = _message(value, how, depth + 1)
    return out


def decode_object(data: bytes) -> dict[str, Any]:
    """An object of one of :data:`KINDS` from its protobuf form: 415 for other kinds (clients
    then retry as JSON), 400 for a body that is not the protobuf it claims to be."""
    if not data.startswith(_MAGIC):
        raise errors.unsupported_media_type(MEDIA_TYPE)
    try:
        envelope = dict(_fields(data[len(_MAGIC):]))
        type_meta, raw = envelope.get(1), envelope.get(2)
        if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
            raise _Bad("not a runtime.Unknown envelope")
        tm = _message(type_meta, {1: ("apiVersion", "str"), 2: ("kind", "str")})
        schema = KINDS.get(tm.get("kind", ""))
        if schema is None:
            raise errors.unsupported_media_type(MEDIA_TYPE)
        return {**tm, **_message(raw, schema)}
    except (_Bad, UnicodeDecodeError) as e:
        raise errors.bad_request(f"the body of the request could not be decoded as protobuf: {e}") from None
