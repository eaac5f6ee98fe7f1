"""Field-level helpers shared by the kind validators: DNS names, enumerations, port references."""

from __future__ import annotations

from apimachinery.api.core_v1 import IntOrString
from apimachinery.errors import FieldError
from apimachinery.validation.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_valid_port_name,
    is_valid_port_num,
)

PROTOCOLS = ["SCTP", "TCP", "UDP"]


def dns_label(value: str, field: str) -> list[FieldError]:
    return [FieldError.invalid(field, value, msg) for msg in is_dns1123_label(value)]


def dns_subdomain(value: str, field: str) -> list[FieldError]:
    return [FieldError.invalid(field, value, msg) for msg in is_dns1123_subdomain(value)]


def enum_value(
    value: str | None, field: str, supported: list[str], *, required: bool = True
) -> list[FieldError]:
    if not value:
        return [FieldError.required(field)] if required else []
    if value not in supported:
        return [FieldError.not_supported(field, value, supported)]
    return []


def validate_port_num_or_name(port: IntOrString | None, field: str) -> list[FieldError]:
    if isinstance(port, int):
        return [FieldError.invalid(field, port, msg) for msg in is_valid_port_num(port)]
    if isinstance(port, str):
        return [FieldError.invalid(field, port, msg) for msg in is_valid_port_name(port)]
    return [FieldError.required(field)]
