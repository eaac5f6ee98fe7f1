"""Just enough of Kubernetes' protobuf encoding to read what kubectl's typed clients send.

Some kubectl commands send their object as ``application/vnd.kubernetes.protobuf`` (accepting
JSON back) and never fall back to JSON: ``auth can-i``, ``auth whoami``, ``create token``,
``certificate approve|deny``, and the generators ``create namespace|deployment|configmap|secret|
service|serviceaccount|role|rolebinding|clusterrole|clusterrolebinding``. Instead of a protobuf
dependency this reads the wire format directly: the ``k8s\\0`` magic, the runtime.Unknown
envelope, then the object's message, returned as the JSON-shaped dict the rest of the server
handles. Field numbers are those of k8s.io/api.

Only the fields listed here are read. A listed-as-ignored field (server-owned metadata, status)
is skipped; any other field that carries a value is refused with a 415 that names it, so an
object is never stored with part of it silently dropped.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from apimachinery import errors
from apimachinery.safeload import DecodeError, loads_json

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# A message schema: field number -> (JSON name, how to read it). How: "str" a string (empty
# means unset: Go writes every non-pointer string), "strs" a repeated string, "int" a varint kept
# even when 0 (Go writes pointer ints only when set), "int0" a varint dropped when 0 (omitempty),
# "bool"/"bool0" the same for booleans, "bytes" base64 as in JSON, "time" a meta/v1 Time, "map" a
# map<string,string>, "bmap" a map<string,bytes>, "qmap" a map<string,Quantity>, "intstr" an
# IntOrString, "skip" a field read and ignored (server-owned); a dict a nested message, a 1-tuple
# a repeated one.
Schema = dict[int, tuple[str, Any]]
_SKIP = ("", "skip")
_OWNER_REFERENCE: Schema = {1: ("kind", "str"), 3: ("name", "str"), 4: ("uid", "str"), 5: ("apiVersion", "str"),
                            6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")}
_MANAGED_FIELDS_ENTRY: Schema = {1: ("manager", "str"), 2: ("operation", "str"), 3: ("apiVersion", "str"),
                                 4: ("time", "time"), 6: ("fieldsType", "str"), 7: ("fieldsV1", "fieldsv1"),
                                 8: ("subresource", "str")}
# Whole, as the commands that send an object they read back (certificate approve) carry all of
# it; selfLink is long gone from the API.
_OBJECT_META: Schema = {
    1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"), 4: _SKIP, 5: ("uid", "str"),
    6: ("resourceVersion", "str"), 7: ("generation", "int0"), 8: ("creationTimestamp", "time"),
    9: ("deletionTimestamp", "time"), 10: ("deletionGracePeriodSeconds", "int"), 11: ("labels", "map"),
    12: ("annotations", "map"), 13: ("ownerReferences", (_OWNER_REFERENCE,)), 14: ("finalizers", "strs"),
    17: ("managedFields", (_MANAGED_FIELDS_ENTRY,)),
}
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
_LABEL_SELECTOR: Schema = {1: ("matchLabels", "map"), 2: ("matchExpressions", ({
    1: ("key", "str"), 2: ("operator", "str"), 3: ("values", "strs")},))}
_CONTAINER: Schema = {
    1: ("name", "str"), 2: ("image", "str"), 3: ("command", "strs"), 4: ("args", "strs"),
    5: ("workingDir", "str"),
    6: ("ports", ({1: ("name", "str"), 2: ("hostPort", "int0"), 3: ("containerPort", "int0"),
                   4: ("protocol", "str"), 5: ("hostIP", "str")},)),
    7: ("env", ({1: ("name", "str"), 2: ("value", "str")},)),
    8: ("resources", {1: ("limits", "qmap"), 2: ("requests", "qmap")}),
    13: ("terminationMessagePath", "str"), 14: ("imagePullPolicy", "str"), 16: ("stdin", "bool0"),
    17: ("stdinOnce", "bool0"), 18: ("tty", "bool0"), 20: ("terminationMessagePolicy", "str"),
}
_POD_SPEC: Schema = {
    2: ("containers", (_CONTAINER,)), 3: ("restartPolicy", "str"), 4: ("terminationGracePeriodSeconds", "int"),
    5: ("activeDeadlineSeconds", "int"), 6: ("dnsPolicy", "str"), 7: ("nodeSelector", "map"),
    8: ("serviceAccountName", "str"), 9: ("serviceAccount", "str"), 10: ("nodeName", "str"),
    11: ("hostNetwork", "bool0"), 12: ("hostPID", "bool0"), 13: ("hostIPC", "bool0"), 16: ("hostname", "str"),
    17: ("subdomain", "str"), 19: ("schedulerName", "str"), 20: ("initContainers", (_CONTAINER,)),
    24: ("priorityClassName", "str"),
}
_DEPLOYMENT_SPEC: Schema = {
    1: ("replicas", "int"), 2: ("selector", _LABEL_SELECTOR),
    3: ("template", {1: ("metadata", _OBJECT_META), 2: ("spec", _POD_SPEC)}),
    4: ("strategy", {1: ("type", "str"), 2: ("rollingUpdate", {1: ("maxUnavailable", "intstr"),
                                                               2: ("maxSurge", "intstr")})}),
    5: ("minReadySeconds", "int0"), 6: ("revisionHistoryLimit", "int"), 7: ("paused", "bool0"),
    9: ("progressDeadlineSeconds", "int"),
}
_SERVICE_SPEC: Schema = {
    1: ("ports", ({1: ("name", "str"), 2: ("protocol", "str"), 3: ("port", "int0"), 4: ("targetPort", "intstr"),
                   5: ("nodePort", "int0"), 6: ("appProtocol", "str")},)),
    2: ("selector", "map"), 3: ("clusterIP", "str"), 4: ("type", "str"), 5: ("externalIPs", "strs"),
    7: ("sessionAffinity", "str"), 8: ("loadBalancerIP", "str"), 9: ("loadBalancerSourceRanges", "strs"),
    10: ("externalName", "str"), 11: ("externalTrafficPolicy", "str"), 12: ("healthCheckNodePort", "int0"),
    13: ("publishNotReadyAddresses", "bool0"), 17: ("ipFamilyPolicy", "str"), 18: ("clusterIPs", "strs"),
    19: ("ipFamilies", "strs"), 20: ("allocateLoadBalancerNodePorts", "bool"), 21: ("loadBalancerClass", "str"),
    22: ("internalTrafficPolicy", "str"),
}
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
    # kubectl create namespace|deployment|configmap|secret|service|serviceaccount. Status is
    # server-owned: what a create sends there is ignored, as the API server would reset it.
    "Namespace": {1: ("metadata", _OBJECT_META), 2: ("spec", {1: ("finalizers", "strs")}), 3: _SKIP},
    "ConfigMap": {1: ("metadata", _OBJECT_META), 2: ("data", "map"), 3: ("binaryData", "bmap"),
                  4: ("immutable", "bool")},
    "Secret": {1: ("metadata", _OBJECT_META), 2: ("data", "bmap"), 3: ("type", "str"), 4: ("stringData", "map"),
               5: ("immutable", "bool")},
    "ServiceAccount": {1: ("metadata", _OBJECT_META), 3: ("imagePullSecrets", ({1: ("name", "str")},)),
                       4: ("automountServiceAccountToken", "bool")},
    "Service": {1: ("metadata", _OBJECT_META), 2: ("spec", _SERVICE_SPEC), 3: _SKIP},
    "Deployment": {1: ("metadata", _OBJECT_META), 2: ("spec", _DEPLOYMENT_SPEC), 3: _SKIP},
    "Role": _ROLE,
    "ClusterRole": _ROLE,
    "RoleBinding": _BINDING,
    "ClusterRoleBinding": _BINDING,
}


class _Bad(ValueError):
    pass


class _Unsupported(ValueError):
    """A field this reader does not know carries a value (the path says which)."""


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


def _signed(value: int) -> int:
    # Go writes a negative int32/int64 as the 64-bit two's complement varint.
    return value - (1 << 64) if value >= 1 << 63 else value


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
            if pos > len(data):
                raise _Bad("truncated field")
        else:
            raise _Bad(f"unsupported wire type {wire}")
    return out


def _has_value(value: bytes | int, depth: int = 0) -> bool:
    """Whether an unread field says anything: Go writes zero values of non-pointer fields (0,
    "", empty messages, messages of zeros such as an empty status), which carry nothing."""
    if isinstance(value, int):
        return value != 0
    if not value:
        return False
    try:
        fields = _fields(value)
    except _Bad:
        return True  # not a message: a string or bytes with content
    return depth > 8 or any(_has_value(v, depth + 1) for _, v in fields)


def _entry(data: bytes, value_how: str, depth: int) -> tuple[str, Any]:
    """One map entry (key 1, value 2) with its value read as ``value_how``."""
    key, value = "", None
    for number, v in _fields(data):
        if number == 1 and isinstance(v, bytes):
            key = v.decode()
        elif number == 2 and isinstance(v, bytes):
            value = v
    raw = value or b""
    if value_how == "bytes":
        return key, base64.b64encode(raw).decode()
    if value_how == "quantity":
        return key, _message(raw, {1: ("string", "str")}, "", depth + 1).get("string", "")
    return key, raw.decode()


def _read(value: bytes | int, how: Any, path: str, depth: int) -> Any:
    """The JSON value of one field, or None when it holds nothing (left out, as omitempty)."""
    if how in ("int", "int0", "bool", "bool0"):
        if not isinstance(value, int) or (how.endswith("0") and not value):
            return None
        return bool(value) if how.startswith("bool") else _signed(value)
    if not isinstance(value, bytes):
        return None
    if how == "str":
        return value.decode() or None
    if how == "bytes":
        return base64.b64encode(value).decode()
    if how == "time":
        seconds = _message(value, {1: ("seconds", "int"), 2: _SKIP}, path, depth + 1).get("seconds", 0)
        # Go's zero Time (an empty message) is JSON's null: unset.
        return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if seconds else None
    if how == "fieldsv1":
        # FieldsV1 carries its JSON as raw bytes.
        raw = [v for number, v in _fields(value) if number == 1 and isinstance(v, bytes)]
        return loads_json(raw[-1]) if raw else {}
    if how == "intstr":
        v = _message(value, {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "str")}, path, depth + 1)
        return v.get("strVal", "") if v.get("type") == 1 else v.get("intVal", 0)
    return _message(value, how, path, depth + 1)


_MAPS = {"map": "str", "bmap": "bytes", "qmap": "quantity"}


def _message(data: bytes, schema: Schema, path: str = "", depth: int = 0) -> dict[str, Any]:
    if depth > 12:
        raise _Bad("nested too deeply")
    out: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for number, value in _fields(data):
        if number not in schema:
            if _has_value(value):
                raise _Unsupported(f"{path or 'the object'} (protobuf field {number})")
            continue
        name, how = schema[number]
        if how == "skip":
            continue
        here = f"{path}.{name}" if path else name
        if how == "strs":
            if isinstance(value, bytes):
                out.setdefault(name, []).append(value.decode())
        elif isinstance(how, str) and how in _MAPS:
            if isinstance(value, bytes):
                key, v = _entry(value, _MAPS[how], depth)
                out.setdefault(name, {})[key] = v
        elif isinstance(how, tuple):
            i = counts[name] = counts.get(name, -1) + 1
            if isinstance(value, bytes):
                out.setdefault(name, []).append(_message(value, how[0], f"{here}[{i}]", depth + 1))
        else:
            read = _read(value, how, here, depth)
            if read is not None:
                out[name] = read
    return out


def decode_object(data: bytes) -> dict[str, Any]:
    """An object of one of :data:`KINDS` from its protobuf form: 415 for other kinds or fields
    this reader does not know, 400 for a body that is not the protobuf it claims to be."""
    if not data.startswith(_MAGIC):
        raise errors.unsupported_media_type(MEDIA_TYPE)
    tm: dict[str, Any] = {}
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
    except _Unsupported as e:
        raise errors.ApiError.make(
            415, "UnsupportedMediaType",
            f"kube-lite reads only part of {tm.get('kind') or 'this object'}'s protobuf form and {e} is not part of it: "
            "send this object as JSON (for example with kubectl create -f)") from None
    except (_Bad, UnicodeDecodeError, DecodeError) as e:
        raise errors.bad_request(f"the body of the request could not be decoded as protobuf: {e}") from None
