"""API errors as Kubernetes Status objects, and field errors that become Status causes.

Every refusal the API server makes is an :class:`ApiError`; clients turn a failed response back
into one with :meth:`ApiError.from_status`, so both sides speak the same type. Messages follow
Kubernetes' wording, because kubectl prints them verbatim and users search for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from apimachinery.meta import Status, StatusCause, StatusDetails

# Field error types (Kubernetes' field.ErrorType) and the cause reasons they map to.
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
TYPE_INVALID = "FieldValueTypeInvalid"
NOT_FOUND = "FieldValueNotFound"

_OMIT = object()


def _render(value: Any) -> str:
    """A value as Kubernetes quotes it in field errors (Go's %#v for strings, JSON otherwise)."""
    if isinstance(value, str):
        return json.dumps(value)
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    except TypeError:
        return repr(value)


@dataclass(frozen=True)
class FieldError:
    """One problem with one field, e.g. ``spec.containers[0].image: Required value``."""

    type: str
    field: str
    detail: str = ""
    value: Any = _OMIT

    @classmethod
    def required(cls, field: str, detail: str = "") -> FieldError:
        return cls(REQUIRED, field, detail)

    @classmethod
    def invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls(INVALID, field, detail, value)

    @classmethod
    def not_supported(cls, field: str, value: Any, supported: list[str]) -> FieldError:
        detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
        return cls(NOT_SUPPORTED, field, detail, value)

    @classmethod
    def duplicate(cls, field: str, value: Any) -> FieldError:
        return cls(DUPLICATE, field, "", value)

    @classmethod
    def forbidden(cls, field: str, detail: str) -> FieldError:
        return cls(FORBIDDEN, field, detail)

    @classmethod
    def too_long(cls, field: str, value: Any, max_length: int) -> FieldError:
        return cls(TOO_LONG, field, f"may not be more than {max_length} bytes", value)

    @classmethod
    def not_found(cls, field: str, value: Any) -> FieldError:
        return cls(NOT_FOUND, field, "", value)

    @classmethod
    def type_invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls(TYPE_INVALID, field, detail, value)

    def body(self) -> str:
        """The message without the field path (what Kubernetes puts in a cause's message)."""
        label = {
            REQUIRED: "Required value",
            INVALID: "Invalid value",
            NOT_SUPPORTED: "Unsupported value",
            DUPLICATE: "Duplicate value",
            FORBIDDEN: "Forbidden",
            TOO_LONG: "Too long",
            TOO_MANY: "Too many",
            TYPE_INVALID: "Invalid value",
            NOT_FOUND: "Not found",
        }[self.type]
        parts = [label]
        if self.value is not _OMIT and self.type not in (REQUIRED, FORBIDDEN):
            parts.append(_render(self.value))
        if self.detail:
            parts.append(self.detail)
        return ": ".join(parts)

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> StatusCause:
        return StatusCause(reason=self.type, message=self.body(), field=self.field or None)


class ApiError(Exception):
    """A failed API call, carrying the Kubernetes Status that describes it."""

    def __init__(self, status: Status, headers: dict[str, str] | None = None) -> None:
        super().__init__(status.message or status.reason or "unknown error")
        self.status = status
        self.headers = headers or {}

    @property
    def code(self) -> int:
        return self.status.code or 500

    @property
    def reason(self) -> str:
        return self.status.reason or ""

    @property
    def message(self) -> str:
        return self.status.message or ""

    @classmethod
    def from_status(cls, status: Status | dict[str, Any], code: int | None = None) -> ApiError:
        st = status if isinstance(status, Status) else Status.model_validate(status)
        if st.code is None and code is not None:
            st.code = code
        return cls(st)

    @classmethod
    def make(
        cls,
        code: int,
        reason: str,
        message: str,
        *,
        details: StatusDetails | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiError:
        st = Status(status="Failure", code=code, reason=reason, message=message, details=details)
        return cls(st, headers)


def qualified_resource(resource: str, group: str) -> str:
    """``pods`` or ``deployments.apps``: how Kubernetes names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def qualified_kind(kind: str, group: str) -> str:
    return f"{kind}.{group}" if group else kind


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError.make(
        404,
        "NotFound",
        f'{qualified_resource(resource, group)} "{name}" not found',
        details=StatusDetails(name=name, group=group or None, kind=resource),
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError.make(
        409,
        "AlreadyExists",
        f'{qualified_resource(resource, group)} "{name}" already exists',
        details=StatusDetails(name=name, group=group or None, kind=resource),
    )


def conflict(resource: str, group: str, name: str, why: str = "") -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError.make(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified_resource(resource, group)} "{name}": {why}',
        details=StatusDetails(name=name, group=group or None, kind=resource),
    )


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    """422 Invalid with one cause per field error, worded as Kubernetes words it."""
    rendered = [str(e) for e in errors]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    return ApiError.make(
        422,
        "Invalid",
        f'{qualified_kind(kind, group)} "{name}" is invalid: {summary}',
        details=StatusDetails(
            name=name or None, group=group or None, kind=kind, causes=[e.cause() for e in errors]
        ),
    )


def bad_request(message: str, causes: list[StatusCause] | None = None) -> ApiError:
    details = StatusDetails(causes=causes) if causes else None
    return ApiError.make(400, "BadRequest", message, details=details)


def unauthorized(message: str = "Unauthorized") -> ApiError:
    return ApiError.make(401, "Unauthorized", message)


def forbidden(message: str) -> ApiError:
    return ApiError.make(403, "Forbidden", message)


def method_not_allowed(message: str) -> ApiError:
    return ApiError.make(405, "MethodNotAllowed", message)


def not_acceptable(message: str) -> ApiError:
    return ApiError.make(406, "NotAcceptable", message)


def gone(message: str) -> ApiError:
    """410 Expired: a resourceVersion or continue token older than what storage still has."""
    return ApiError.make(410, "Expired", message)


def too_large(message: str = "the request body is too large") -> ApiError:
    return ApiError.make(413, "RequestEntityTooLarge", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError.make(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got "{content_type}")')


def too_many_requests(message: str, retry_after: int = 1) -> ApiError:
    return ApiError.make(
        429,
        "TooManyRequests",
        message,
        details=StatusDetails(retry_after_seconds=retry_after),
        headers={"Retry-After": str(retry_after)},
    )


def internal(message: str) -> ApiError:
    return ApiError.make(500, "InternalError", f"Internal error occurred: {message}")


def service_unavailable(message: str) -> ApiError:
    return ApiError.make(503, "ServiceUnavailable", message)


def timeout(message: str) -> ApiError:
    return ApiError.make(504, "Timeout", message)
