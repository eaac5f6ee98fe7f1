"""Validation of ConfigMaps and Secrets: keys usable as file names, a 1 MiB cap, immutability."""

from __future__ import annotations

import base64
import binascii

from apimachinery.api.core_v1 import ConfigMap, Secret
from apimachinery.errors import FieldError
from apimachinery.validation.meta import (
    immutable,
    too_long_omitted,
    validate_object_meta,
    validate_object_meta_update,
)
from apimachinery.validation.names import is_config_map_key, name_is_dns_subdomain

MAX_SIZE = 1024 * 1024  # Kubernetes' MaxSecretSize, which also bounds ConfigMaps
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"
SERVICE_ACCOUNT_NAME_KEY = "kubernetes.io/service-account.name"
# Keys a typed Secret must hold (Kubernetes' per-type rules).
_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _decoded_len(value: str) -> int | None:
    """Byte length of a base64 value, or None when it is not base64."""
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None


def _keys(data: dict[str, str] | None, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for key in data or {}:
        errors.extend(FieldError.invalid(f"{field}[{key}]", key, m) for m in is_config_map_key(key))
    return errors


def validate_config_map(cm: ConfigMap) -> list[FieldError]:
    errors = validate_object_meta(cm.metadata, namespaced=True, name_rule=name_is_dns_subdomain)
    data, binary = cm.data or {}, cm.binary_data or {}
    errors.extend(_keys(data, "data"))
    errors.extend(_keys(binary, "binaryData"))
    for key in data:
        if key in binary:
            errors.append(FieldError.invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    total = sum(len(v.encode()) for v in data.values())
    for key, value in binary.items():
        size = _decoded_len(value)
        if size is None:
            errors.append(FieldError.invalid(f"binaryData[{key}]", "<binary data>", "must be base64-encoded"))
        else:
            total += size
    if total > MAX_SIZE:
        errors.append(too_long_omitted("", MAX_SIZE))
    return errors


def _frozen(
    new_immutable: bool | None, old_immutable: bool | None, changed: dict[str, bool]
) -> list[FieldError]:
    """Once ``immutable: true`` is stored, neither the flag nor the data may change."""
    if not old_immutable:
        return []
    errors: list[FieldError] = []
    if not new_immutable:
        errors.append(FieldError.forbidden("immutable", IMMUTABLE_WHEN_SET))
    errors.extend(
        FieldError.forbidden(field, IMMUTABLE_WHEN_SET) for field, differs in changed.items() if differs
    )
    return errors


def validate_config_map_update(new: ConfigMap, old: ConfigMap) -> list[FieldError]:
    errors = validate_object_meta_update(new.metadata, old.metadata)
    errors.extend(
        _frozen(
            new.immutable,
            old.immutable,
            {
                "data": (new.data or {}) != (old.data or {}),
                "binaryData": (new.binary_data or {}) != (old.binary_data or {}),
            },
        )
    )
    return errors


def validate_secret(secret: Secret) -> list[FieldError]:
    errors = validate_object_meta(secret.metadata, namespaced=True, name_rule=name_is_dns_subdomain)
    data = secret.data or {}
    errors.extend(_keys(data, "data"))
    errors.extend(_keys(secret.string_data, "stringData"))
    total = sum(len(v.encode()) for v in (secret.string_data or {}).values())
    for key, value in data.items():
        size = _decoded_len(value)
        if size is None:
            errors.append(
                FieldError.invalid(f"data[{key}]", "<secret contents redacted>", "must be base64-encoded")
            )
        else:
            total += size
    if total > MAX_SIZE:
        errors.append(too_long_omitted("data", MAX_SIZE))
    keys = set(data) | set(secret.string_data or {})
    stype = secret.type or ""
    if stype == "kubernetes.io/service-account-token":
        if not (secret.metadata.annotations or {}).get(SERVICE_ACCOUNT_NAME_KEY):
            errors.append(FieldError.required(f"metadata.annotations[{SERVICE_ACCOUNT_NAME_KEY}]"))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in keys and "password" not in keys:
            errors.append(FieldError.required("data[username]"))
            errors.append(FieldError.required("data[password]"))
    else:
        errors.extend(
            FieldError.required(f"data[{key}]") for key in _REQUIRED_KEYS.get(stype, ()) if key not in keys
        )
    return errors


def validate_secret_update(new: Secret, old: Secret) -> list[FieldError]:
    errors = validate_object_meta_update(new.metadata, old.metadata)
    errors.extend(immutable(new.type, old.type, "type"))
    errors.extend(_frozen(new.immutable, old.immutable, {"data": (new.data or {}) != (old.data or {})}))
    return errors
