"""The admission chain: every write passes it before it reaches etcd.

A write is decoded (typed, unknown fields handled as ``fieldValidation`` says), then the
mutating plugins run in order, then the validating plugins, as in Kubernetes. Defaulting is the
first mutating member and validation the first validating one, so every other plugin sees a
defaulted object and the validating ones see an object that already passed validation. Any
plugin refuses by raising an :class:`~apimachinery.errors.ApiError`; a refused write stores
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from apimachinery import errors
from apimachinery.decode import decode, drop_unknown_fields, unknown_fields
from apimachinery.meta import KubeObject
from apimachinery.scheme import ResourceType
from controlplane.registry.admission.attributes import CREATE, UPDATE, Attributes, Lookup, request_user

STRICT = "Strict"
WARN = "Warn"
IGNORE = "Ignore"
FIELD_VALIDATION_MODES = (STRICT, WARN, IGNORE)


class Plugin(Protocol):
    name: str

    async def admit(self, attrs: Attributes, obj: KubeObject, old: KubeObject | None) -> None:
        """Mutate ``obj`` (mutating plugins) or raise to refuse the write; ``old`` on updates."""


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


def _decode_request(rt: ResourceType, data: dict[str, Any], field_validation: str, warnings: list[str]) -> KubeObject:
    obj, errs = decode(rt.model, data)
    if obj is None:
        summary = ", ".join(str(e) for e in errs)
        raise errors.bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {summary}',
            causes=[e.cause() for e in errs],
        )
    unknown = unknown_fields(obj)
    if unknown:
        if field_validation == STRICT:
            listed = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict decoding error: {listed}'
            )
        if field_validation == WARN:
            warnings.extend(f'unknown field "{u}"' for u in unknown)
        # Never store what the schema does not know.
        drop_unknown_fields(obj)
    return obj


class AdmissionChain:
    def __init__(self, mutating: Sequence[Plugin], validating: Sequence[Plugin], lookup: Lookup) -> None:
        self.mutating = list(mutating)
        self.validating = list(validating)
        # Plugins read other objects (namespaces, service accounts) through this.
        self.lookup = lookup

    @property
    def names(self) -> list[str]:
        return [p.name for p in (*self.mutating, *self.validating)]

    async def admit(
        self,
        rt: ResourceType,
        data: dict[str, Any],
        old: dict[str, Any] | None,
        *,
        subresource: str | None = None,
        field_validation: str = WARN,
        dry_run: bool = False,
    ) -> Admitted:
        """Check ``data`` as the new state of an object (``old``: the stored one on updates)."""
        md = data.get("metadata") or {}
        attrs = Attributes(
            rt, CREATE if old is None else UPDATE, str(md.get("namespace") or ""), str(md.get("name") or ""),
            request_user(), subresource or "", dry_run, field_validation,
        )
        obj = _decode_request(rt, data, field_validation, attrs.warnings)
        old_obj = typed(rt, old) if old is not None else None
        for plugin in self.mutating:
            await plugin.admit(attrs, obj, old_obj)
        for plugin in self.validating:
            await plugin.admit(attrs, obj, old_obj)
        return Admitted(obj.to_dict(), attrs.warnings)


def check_field_validation(value: str | None) -> str:
    if value is None or value == "":
        return WARN
    if value not in FIELD_VALIDATION_MODES:
        raise errors.bad_request(
            f'fieldValidation parameter unsupported: "{value}"; supported values: Ignore, Warn, Strict'
        )
    return value
