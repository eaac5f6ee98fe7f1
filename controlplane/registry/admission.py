"""Turn a JSON body into a stored object: typed decoding, unknown fields, defaulting, validation.

This is the one place a write is checked, so every path that stores an object (create, update,
patch, status, scale, binding, delete's own metadata changes) goes through :func:`admit` and a
rejected request never reaches etcd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apimachinery import defaults, errors, validation
from apimachinery.api.core_v1 import Pod
from apimachinery.decode import decode, drop_unknown_fields, unknown_fields
from apimachinery.meta import KubeObject
from apimachinery.scheme import ResourceType

STRICT = "Strict"
WARN = "Warn"
IGNORE = "Ignore"
FIELD_VALIDATION_MODES = (STRICT, WARN, IGNORE)


@dataclass(frozen=True)
class AdmissionConfig:
    """Cluster-wide admission settings (flags of the API server)."""

    # DefaultTolerationSeconds: how long new pods tolerate a not-ready/unreachable node.
    default_toleration_seconds: int = defaults.DEFAULT_TOLERATION_SECONDS


@dataclass
class Admitted:
    obj: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def typed(rt: ResourceType, data: dict[str, Any]) -> KubeObject:
    """Decode a stored (already valid) object; a failure here is a server bug, so it is a 500."""
    obj, errs = decode(rt.model, data)
    if obj is None:
        raise errors.internal(f"stored {rt.kind} does not decode: {errs[0] if errs else '?'}")
    return obj


def admit(
    rt: ResourceType,
    data: dict[str, Any],
    old: dict[str, Any] | None,
    *,
    field_validation: str = WARN,
    create_defaults: bool = False,
    config: AdmissionConfig | None = None,
    status_only: bool = False,
) -> Admitted:
    """Check ``data`` as the new state of an object (``old`` is the stored one on updates).

    ``status_only``: a write through the status subresource, where everything but status was
    taken from the stored (already valid) object, so only the status is checked, as Kubernetes'
    status strategies do. That keeps the most frequent write (agents and controllers reporting
    status) from re-validating a whole pod spec each time.
    """
    name = str((data.get("metadata") or {}).get("name") or "")
    obj, errs = decode(rt.model, data)
    if obj is None:
        summary = ", ".join(str(e) for e in errs)
        raise errors.bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {summary}',
            causes=[e.cause() for e in errs],
        )
    warnings: list[str] = []
    unknown = unknown_fields(obj)
    if unknown:
        if field_validation == STRICT:
            listed = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict decoding error: {listed}'
            )
        if field_validation == WARN:
            warnings = [f'unknown field "{u}"' for u in unknown]
        # Never store what the schema does not know.
        drop_unknown_fields(obj)

    defaults.apply_defaults(obj)
    if create_defaults and isinstance(obj, Pod):
        defaults.default_pod_tolerations(obj, (config or AdmissionConfig()).default_toleration_seconds)

    if old is None:
        problems = validation.validate(obj, namespaced=rt.namespaced)
    elif status_only:
        problems = validation.validate_status(obj)
    else:
        problems = validation.validate_update(obj, typed(rt, old), namespaced=rt.namespaced)
    if problems:
        raise errors.invalid(rt.kind, rt.group, name, problems)
    return Admitted(obj.to_dict(), warnings)


def check_field_validation(value: str | None) -> str:
    if value is None or value == "":
        return WARN
    if value not in FIELD_VALIDATION_MODES:
        raise errors.bad_request(
            f'fieldValidation parameter unsupported: "{value}"; supported values: Ignore, Warn, Strict'
        )
    return value
