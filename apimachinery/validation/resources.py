"""Validation of resource lists (requests, limits, overhead): names and quantities.

The API types keep quantities as strings (as they travel on the wire), so a bad quantity is
found here and reported on its map key, e.g. ``spec.containers[0].resources.limits[memory]``,
with Kubernetes' parse message. Good quantities are compared as exact decimals.
"""

from __future__ import annotations

from apimachinery.api.core_v1 import ResourceRequirements
from apimachinery.errors import FieldError
from apimachinery.quantity import Quantity, QuantityError, parse
from apimachinery.validation.names import NEGATIVE_MSG, is_qualified_name

# Resources a container may request without a domain prefix.
STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_HUGEPAGES_PREFIX = "hugepages-"
NOT_INTEGER_MSG = "must be an integer"


def _is_native(name: str) -> bool:
    """Unprefixed names and ``kubernetes.io`` ones belong to Kubernetes itself."""
    if "/" not in name:
        return True
    domain = name.split("/", 1)[0]
    return domain == "kubernetes.io" or domain.endswith(".kubernetes.io")


def _is_extended(name: str) -> bool:
    """Device-plugin style resources (``example.com/gpu``): whole units, never overcommitted."""
    return not _is_native(name) and not name.startswith("requests.")


def validate_container_resource_name(name: str, field: str) -> list[FieldError]:
    errors = [FieldError.invalid(field, name, msg) for msg in is_qualified_name(name)]
    if errors:
        return errors
    if (
        "/" not in name
        and name not in STANDARD_CONTAINER_RESOURCES
        and not name.startswith(_HUGEPAGES_PREFIX)
    ):
        errors.append(FieldError.invalid(field, name, "must be a standard resource for containers"))
    return errors


def parse_resource_quantity(raw: str, field: str, errors: list[FieldError]) -> Quantity | None:
    """Parse one quantity, recording Kubernetes' parse error on ``field`` when it is malformed."""
    try:
        return parse(raw)
    except QuantityError as e:
        errors.append(FieldError.invalid(field, raw, str(e)))
        return None


def validate_quantity_value(name: str, q: Quantity, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if q.value < 0:
        errors.append(FieldError.invalid(field, str(q), NEGATIVE_MSG))
    if _is_extended(name) and (q.value * 1000) % 1000 != 0:
        errors.append(FieldError.invalid(field, str(q), NOT_INTEGER_MSG))
    return errors


def validate_quantity(raw: str, field: str) -> list[FieldError]:
    """One free-standing quantity (emptyDir sizeLimit, a divisor): well-formed and not negative."""
    errors: list[FieldError] = []
    q = parse_resource_quantity(raw, field, errors)
    if q is not None and q.value < 0:
        errors.append(FieldError.invalid(field, str(q), NEGATIVE_MSG))
    return errors


def validate_resource_list(
    resources: dict[str, str] | None, field: str, *, container: bool = True
) -> tuple[dict[str, Quantity], list[FieldError]]:
    """Check every name and quantity of a map; returns the parsed quantities that were valid."""
    errors: list[FieldError] = []
    parsed: dict[str, Quantity] = {}
    for name, raw in (resources or {}).items():
        path = f"{field}[{name}]"
        if container:
            errors.extend(validate_container_resource_name(name, path))
        else:
            errors.extend(FieldError.invalid(path, name, msg) for msg in is_qualified_name(name))
        q = parse_resource_quantity(raw, path, errors)
        if q is None:
            continue
        errors.extend(validate_quantity_value(name, q, path))
        parsed[name] = q
    return parsed, errors


def validate_resource_requirements(res: ResourceRequirements | None, field: str) -> list[FieldError]:
    """Names, quantities, and requests no larger than limits (equal for extended resources)."""
    if res is None:
        return []
    limits, errors = validate_resource_list(res.limits, f"{field}.limits")
    requests, request_errors = validate_resource_list(res.requests, f"{field}.requests")
    errors.extend(request_errors)
    for name, request in requests.items():
        limit = limits.get(name)
        if limit is None:
            if _is_extended(name):
                errors.append(
                    FieldError.forbidden(
                        f"{field}.limits", "Limit must be set for non overcommitable resources"
                    )
                )
            continue
        if _is_extended(name) and request.value != limit.value:
            errors.append(
                FieldError.invalid(f"{field}.requests", str(request), f"must be equal to {name} limit")
            )
        elif request.value > limit.value:
            errors.append(
                FieldError.invalid(
                    f"{field}.requests",
                    str(request),
                    f"must be less than or equal to {name} limit of {limit}",
                )
            )
    return errors
