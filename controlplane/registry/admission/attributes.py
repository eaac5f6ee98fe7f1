"""What an admission plugin knows about a write: who, what, where, and how.

The request's user travels in a context variable set once per request by the API server's
authentication middleware: the store sits several calls below the HTTP handler, and threading
the user through every store signature would touch every caller for one piece of information
that only admission reads (Kubernetes carries it in the request context for the same reason).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from apimachinery.scheme import ResourceType

CREATE = "CREATE"
UPDATE = "UPDATE"


@dataclass(frozen=True)
class RequestUser:
    """The authenticated user of the request (the server itself when there is no request)."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


# Writes the control plane makes on its own behalf (system namespaces, the kubernetes Service).
SERVER_USER = RequestUser("system:apiserver", ("system:masters", "system:authenticated"))

_REQUEST_USER: ContextVar[RequestUser | None] = ContextVar("kube_lite_request_user", default=None)


def set_request_user(name: str, groups: tuple[str, ...] = (), uid: str = "") -> None:
    """Record the authenticated user of the request being served (called by authentication)."""
    _REQUEST_USER.set(RequestUser(name, tuple(groups), uid))


def request_user() -> RequestUser:
    return _REQUEST_USER.get() or SERVER_USER


# (resource type, namespace, name) -> the stored object or None; served from the watch cache.
Lookup = Callable[[ResourceType, str | None, str], Awaitable[dict[str, Any] | None]]
# (resource type, namespace) -> the namespace's objects of that kind, from the watch cache.
ListLookup = Callable[[ResourceType, str], list[dict[str, Any]]]


@dataclass
class Attributes:
    """One write as admission sees it (Kubernetes' admission.Attributes)."""

    rt: ResourceType
    operation: str  # CREATE or UPDATE
    namespace: str
    name: str
    user: RequestUser
    subresource: str = ""
    dry_run: bool = False
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)

    @property
    def resource(self) -> str:
        return self.rt.plural

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
