"""How kubectl-lite reports failures: one message on stderr in kubectl's words, exit code 1."""

from __future__ import annotations

from apimachinery.client.kubeconfig import KubeconfigError
from apimachinery.client.rest import ApiConnectionError
from apimachinery.errors import ApiError
from apimachinery.meta import Status
from kubectl_lite.resources import CliError


def format_api_error(err: ApiError) -> str:
    """``Error from server (NotFound): pods "x" not found``, or kubectl's form for 422 Invalid."""
    st = err.status
    details = st.details
    if st.reason == "Invalid" and details is not None and details.causes:
        head = "The request is invalid"
        if details.kind or details.name:
            head = f'The {details.kind or ""} "{details.name or ""}" is invalid'
        causes = [f"{c.field}: {c.message}" if c.field else str(c.message) for c in details.causes]
        if len(causes) == 1:
            return f"{head}: {causes[0]}"
        return f"{head}: \n" + "\n".join(f"* {c}" for c in causes)
    reason = f" ({st.reason})" if st.reason and st.reason != "Unknown" else ""
    return f"Error from server{reason}: {st.message or err}"


def with_context(err: ApiError, context: str) -> ApiError:
    """The same error with ``context`` in front of its message (``error when creating "f.yaml"``)."""
    if err.reason == "Invalid":
        return err
    st = Status.model_validate(err.status.to_dict())
    st.message = f"{context}: {st.message or ''}"
    return ApiError(st, err.headers)


def format_exception(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return format_api_error(exc)
    if isinstance(exc, ApiConnectionError):
        if exc.refused:
            return f"The connection to the server {exc.host_port} was refused - did you specify the right host or port?"
        return f"Unable to connect to the server: {exc.detail}"
    if isinstance(exc, (CliError, KubeconfigError)):
        return f"error: {exc}"
    if isinstance(exc, TimeoutError):
        return "error: timed out waiting for the condition"
    return f"error: {exc.__class__.__name__}: {exc}" if not str(exc) else f"error: {exc}"
