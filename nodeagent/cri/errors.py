"""How the runtime service's refusals cross the wire and come back as the same exceptions.

A servicer raises the runtime's own exceptions (:class:`ContainerNotFound`,
:class:`ContainerStateError`, :class:`SpawnerError`, :class:`TimeoutError`, :class:`ImageError`
and its kinds, :class:`ValueError`). :func:`guarded` wraps a servicer for a gRPC server so that
each becomes a status with a code, the message as details, and its kind in the trailing
metadata key ``kubelite-error``; :func:`from_rpc_error` on the client side raises the same
exception class again. The agent's logic therefore catches the same exceptions whether the
runtime is served over a socket or called in-process.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from nodeagent.runtime.container import ContainerNotFound, ContainerStateError
from nodeagent.runtime.images import ImageError, ImageNeverPull, ImageNotFound, InvalidImageName, PullError
from nodeagent.runtime.spawner import SpawnerError

log = logging.getLogger(__name__)

KIND_KEY = "kubelite-error"

_IMAGE_ERRORS: dict[str, type[ImageError]] = {
    cls.reason: cls for cls in (InvalidImageName, ImageNeverPull, PullError, ImageNotFound)
}


class RuntimeUnavailable(OSError):
    """The runtime service could not be reached, or failed without saying why."""


def _message(exc: BaseException) -> str:
    # KeyError's str() quotes its argument; the message is the argument itself.
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def classify(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """(status code, kind) for a runtime exception; None for an unexpected one (a bug)."""
    if isinstance(exc, ImageError):
        code = grpc.StatusCode.NOT_FOUND if isinstance(exc, ImageNotFound) else grpc.StatusCode.FAILED_PRECONDITION
        return code, f"image:{exc.reason}"
    if isinstance(exc, KeyError):  # ContainerNotFound, and sandboxes that are not there
        return grpc.StatusCode.NOT_FOUND, "not-found"
    if isinstance(exc, ContainerStateError):
        return grpc.StatusCode.FAILED_PRECONDITION, "state"
    if isinstance(exc, SpawnerError):
        return grpc.StatusCode.UNKNOWN, "spawner"
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "timeout"
    if isinstance(exc, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT, "invalid"
    if isinstance(exc, OSError):
        return grpc.StatusCode.INTERNAL, "os"
    return None


def from_rpc_error(err: grpc.aio.AioRpcError) -> Exception:
    """The exception a servicer raised, rebuilt from the status it became."""
    kind = ""
    for key, value in err.trailing_metadata() or ():
        if key == KIND_KEY:
            kind = value if isinstance(value, str) else value.decode()
    msg = err.details() or ""
    if kind.startswith("image:"):
        reason = kind.partition(":")[2]
        cls = _IMAGE_ERRORS.get(reason)
        if cls is not None:
            return cls(msg)
        exc = ImageError(msg)
        exc.reason = reason
        return exc
    simple: dict[str, Callable[[str], Exception]] = {
        "not-found": ContainerNotFound, "state": ContainerStateError, "spawner": SpawnerError,
        "timeout": TimeoutError, "invalid": ValueError, "os": OSError,
    }
    make = simple.get(kind)
    if make is not None:
        return make(msg)
    return RuntimeUnavailable(f"runtime service: {err.code().name}: {msg}")


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> None:
    known = classify(exc)
    if known is None:
        log.exception("runtime service: unexpected error", exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        return
    code, kind = known
    await context.abort(code, _message(exc), trailing_metadata=((KIND_KEY, kind),))


class _Guarded:
    """The servicer's methods, each turning the runtime's exceptions into statuses."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._inner, name)
        if inspect.isasyncgenfunction(fn):
            async def stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    async for reply in fn(requests, context):
                        yield reply
                except Exception as exc:
                    await _abort(context, exc)
            return stream

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                return await fn(request, context)
            except Exception as exc:
                await _abort(context, exc)
        return unary


def guarded(servicer: object) -> Any:
    return _Guarded(servicer)
