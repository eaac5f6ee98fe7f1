"""The async REST client: one pooled aiohttp session per :class:`ApiClient`, Kubernetes paths from
the scheme, and every failure turned back into the server's :class:`~apimachinery.errors.ApiError`.

Two layers:

* dict level (``get``, ``list``, ``create`` ... taking a :class:`ResourceType`): JSON in, JSON out,
  for CLIs and generic code that must keep fields the models do not know;
* typed level (``client.typed(Pod)``): model objects in and out, for controllers.

Namespace rules (the same for both layers): single-object calls on a namespaced type use the
explicit ``namespace`` argument, else the object's ``metadata.namespace``, else the kubeconfig's
namespace. ``list``/``watch`` with ``namespace=None`` cover all namespaces.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import aiohttp

from apimachinery import jsonutil
from apimachinery.client.kubeconfig import ClientConfig, KubeconfigError, load_kubeconfig
from apimachinery.errors import ApiError
from apimachinery.meta import KubeObject, Status
from apimachinery.scheme import ResourceType, Scheme, default_scheme

T = TypeVar("T", bound=KubeObject)

log = logging.getLogger(__name__)

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}

# What client-go reports when a failed response carries no Status (see its
# newUnstructuredResponseError): a reason per well-known code.
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiConnectionError(Exception):
    """The server could not be reached at all (refused, DNS, TLS): there is no Status to show."""

    def __init__(self, server: str, detail: str, *, refused: bool = False) -> None:
        super().__init__(detail)
        self.server = server
        self.detail = detail
        self.refused = refused

    @property
    def host_port(self) -> str:
        """``127.0.0.1:6443``: how kubectl names the server in connection errors."""
        u = urlsplit(self.server)
        port = u.port or (443 if u.scheme == "https" else 80)
        return f"{u.hostname}:{port}"


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


Params = Mapping[str, Any] | Sequence[tuple[str, Any]]


def _clean_params(params: Params | None) -> list[tuple[str, str]]:
    """Query pairs without the unset ones; pairs may repeat a key (exec's ``command=``)."""
    pairs = params.items() if isinstance(params, Mapping) else (params or ())
    return [(k, _query_value(v)) for k, v in pairs if v is not None]


_WARNING = re.compile(r'^\s*\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')


def parse_warning(header: str) -> str | None:
    """The text of an RFC 7234 ``Warning: 299 - "text"`` header (what kubectl prints)."""
    m = _WARNING.match(header)
    if m is None:
        return None
    return re.sub(r"\\(.)", r"\1", m.group(1))


def _log_warning(text: str) -> None:
    log.warning("server warning: %s", text)


def synthesize_status(code: int, body: str) -> Status:
    """A Status for an error response whose body is not one (a proxy, a crash page...)."""
    reason = _REASONS.get(code, "Unknown")
    if code == 404:
        message = "the server could not find the requested resource"
    elif body.strip():
        message = f'an error on the server ("{body.strip()[:512]}") has prevented the request from succeeding'
    else:
        message = f"the server responded with the status code {code} but did not return more information"
    return Status(status="Failure", code=code, reason=reason, message=message)


def error_from_response(code: int, body: str, headers: Mapping[str, str] | None = None) -> ApiError:
    """The ApiError for a non-2xx response: the server's Status if it sent one."""
    data: Any = None
    try:
        data = jsonutil.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        try:
            err = ApiError.from_status(data, code=code)
        except ValueError:
            err = ApiError(synthesize_status(code, body))
    else:
        err = ApiError(synthesize_status(code, body))
    if err.status.code is None:
        err.status.code = code
    err.headers = dict(headers or {})
    return err


def _ssl_context(config: ClientConfig) -> ssl.SSLContext | bool:
    if not config.server.startswith("https"):
        return False
    if config.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif config.ca_data:
        try:
            ctx = ssl.create_default_context(cadata=config.ca_data.decode(errors="replace"))
        except ssl.SSLError as exc:
            raise KubeconfigError(f"unable to load root certificates: {exc.reason or exc}") from exc
    else:
        ctx = ssl.create_default_context()
    if config.client_cert_data and config.client_key_data:
        # ssl only loads client certificates from files: write them to a private temp file that
        # lives only as long as this call.
        fd, name = tempfile.mkstemp(prefix="kube-lite-client-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(config.client_cert_data.rstrip(b"\n") + b"\n" + config.client_key_data)
            ctx.load_cert_chain(name)
        finally:
            os.unlink(name)
    return ctx


def _namespace_of(rt: ResourceType, explicit: str | None, obj: Mapping[str, Any] | None, default: str) -> str | None:
    if not rt.namespaced:
        return None
    if explicit:
        return explicit
    if obj is not None:
        ns = (obj.get("metadata") or {}).get("namespace")
        if ns:
            return str(ns)
    return default


class ApiClient:
    """An API server connection: ``async with ApiClient(config) as c: ...``."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        scheme: Scheme | None = None,
        timeout: float = 60.0,
        user_agent: str = "kube-lite/0.1",
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        # Called with each `Warning: 299 - "..."` the server sends (kubectl prints them).
        self.on_warning = on_warning or _log_warning
        self.scheme = scheme or default_scheme()
        self.timeout = timeout
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | Path | None = None, context: str | None = None) -> ApiClient:
        """``async with ApiClient.from_kubeconfig("admin.kubeconfig") as c:``"""
        return cls(load_kubeconfig(path, context))

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> ApiClient:
        self._ensure_session()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"User-Agent": self.user_agent}
            if self.config.token:
                headers["Authorization"] = f"Bearer {self.config.token}"
            connector = aiohttp.TCPConnector(ssl=_ssl_context(self.config), limit=100)
            self._session = aiohttp.ClientSession(
                base_url=None, headers=headers, connector=connector, timeout=aiohttp.ClientTimeout(total=None)
            )
        return self._session

    @property
    def namespace(self) -> str:
        """The default namespace (from the kubeconfig context)."""
        return self.config.namespace

    # -- raw requests --------------------------------------------------------------------------

    @asynccontextmanager
    async def open(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send a request and hand over the open response (2xx only) for streaming."""
        session = self._ensure_session()
        headers = {"Accept": accept or "application/json"}
        data: bytes | None = None
        if body is not None:
            if isinstance(body, bytes):
                data = body
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = jsonutil.dumps(body)
            headers["Content-Type"] = content_type
        url = self.config.server + path
        ct = aiohttp.ClientTimeout(total=timeout) if timeout else aiohttp.ClientTimeout(total=None, sock_connect=30)
        try:
            async with session.request(
                method, url, params=_clean_params(params), data=data, headers=headers, timeout=ct
            ) as resp:
                for header in resp.headers.getall("Warning", []):
                    text = parse_warning(header)
                    if text:
                        self.on_warning(text)
                if resp.status >= 300:
                    text = await resp.text(errors="replace")
                    raise error_from_response(resp.status, text, resp.headers)
                yield resp
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            raise ApiConnectionError(self.config.server, str(exc), refused=refused) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Dropped connections, truncated bodies, timeouts: one error type for callers.
            detail = str(exc) or exc.__class__.__name__
            raise ApiConnectionError(self.config.server, detail) from exc

    @asynccontextmanager
    async def websocket(
        self, path: str, *, params: Params = (), protocols: Sequence[str] = ()
    ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """A WebSocket to the API server (``pods/exec``, ``pods/attach``), offering ``protocols``.

        ``params`` is a list of pairs because exec repeats ``command=``. A refused upgrade raises
        ApiError from the server's Status."""
        session = self._ensure_session()
        url = self.config.server.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + path
        try:
            async with session.ws_connect(
                url, params=_clean_params(params), protocols=tuple(protocols), autoping=True
            ) as ws:
                yield ws
        except aiohttp.WSServerHandshakeError as exc:
            # aiohttp drops the refusal's body; a plain GET of the same URL usually gets the
            # same Status back, with the server's message. Use it when the codes agree.
            err = error_from_response(exc.status, "")
            try:
                await self.request("GET", path, params=params)
            except ApiError as plain:
                if plain.code == exc.status:
                    err = plain
            except ApiConnectionError:
                pass
            raise err from exc
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            raise ApiConnectionError(self.config.server, str(exc), refused=refused) from exc

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str | None = None,
    ) -> Any:
        """One request; the decoded JSON body (or text for non-JSON answers).

        Raises ApiError for refusals and ApiConnectionError when the server cannot be reached.
        A GET whose pooled connection turns out dead (the server restarted) is sent once more."""
        for attempt in (1, 2):
            try:
                async with self.open(
                    method, path, params=params, body=body, content_type=content_type, accept=accept,
                    timeout=self.timeout,
                ) as resp:
                    raw = await resp.read()
                    if not raw:
                        return None
                    if "json" in (resp.content_type or ""):
                        return jsonutil.loads(raw)
                    return raw.decode(errors="replace")
            except ApiConnectionError as exc:
                cause = exc.__cause__
                stale = isinstance(cause, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)) and not isinstance(
                    cause, aiohttp.ClientConnectorError
                )
                if method != "GET" or attempt == 2 or not stale:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- dict level ----------------------------------------------------------------------------

    async def get(
        self, rt: ResourceType, name: str, namespace: str | None = None, *, subresource: str | None = None
    ) -> dict[str, Any]:
        """One object (or its ``status``/``scale`` subresource)."""
        ns = _namespace_of(rt, namespace, None, self.namespace)
        result: dict[str, Any] = await self.request("GET", rt.path(ns, name, subresource))
        return result

    async def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """One page of a List (``namespace=None``: all namespaces); see :meth:`list_all`."""
        params = {
            "labelSelector": label_selector or None,
            "fieldSelector": field_selector or None,
            "limit": limit,
            "continue": continue_ or None,
            "resourceVersion": resource_version,
        }
        result: dict[str, Any] = await self.request("GET", rt.path(namespace if rt.namespaced else None), params=params)
        return result

    async def list_all(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """Every item (following ``continue``) and the list's resourceVersion, to watch from."""
        items: builtins.list[dict[str, Any]] = []
        token: str | None = None
        rv = ""
        while True:
            page = await self.list(
                rt, namespace, label_selector=label_selector, field_selector=field_selector,
                limit=page_size, continue_=token,
            )
            for item in page.get("items") or []:
                # List items arrive without apiVersion/kind; fill them so each stands alone.
                item.setdefault("apiVersion", rt.api_version)
                item.setdefault("kind", rt.kind)
                items.append(item)
            meta = page.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or rv)
            token = meta.get("continue") or None
            if not token:
                return items, rv

    async def create(
        self,
        rt: ResourceType,
        obj: Mapping[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
        subresource: str | None = None,
        field_validation: str | None = None,
    ) -> dict[str, Any]:
        """POST ``obj``; with ``subresource`` (``binding``, ``eviction``) POST it to
        ``.../<obj's metadata.name>/<subresource>`` instead. ``field_validation``: Strict, Warn
        or Ignore (what to do about fields the server does not know)."""
        ns = _namespace_of(rt, namespace, obj, self.namespace)
        params = {
            "dryRun": "All" if dry_run else None,
            "fieldManager": field_manager,
            "fieldValidation": field_validation,
        }
        path = rt.path(ns)
        if subresource:
            name = str((obj.get("metadata") or {}).get("name") or "")
            if not name:
                raise ValueError(f"posting to {subresource} needs metadata.name")
            path = rt.path(ns, name, subresource)
        result: dict[str, Any] = await self.request("POST", path, params=params, body=dict(obj))
        return result

    async def replace(
        self,
        rt: ResourceType,
        obj: Mapping[str, Any],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_manager: str | None = None,
        field_validation: str | None = None,
    ) -> dict[str, Any]:
        """PUT: fails with 409 Conflict when ``metadata.resourceVersion`` is stale."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        if not name:
            raise ValueError("replace needs metadata.name")
        ns = _namespace_of(rt, namespace, obj, self.namespace)
        params = {
            "dryRun": "All" if dry_run else None,
            "fieldManager": field_manager,
            "fieldValidation": field_validation,
        }
        result: dict[str, Any] = await self.request(
            "PUT", rt.path(ns, name, subresource), params=params, body=dict(obj)
        )
        return result

    async def replace_status(
        self, rt: ResourceType, obj: Mapping[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        return await self.replace(rt, obj, namespace, subresource="status")

    async def patch(
        self,
        rt: ResourceType,
        name: str,
        patch: Any,
        *,
        patch_type: str = "merge",
        namespace: str | None = None,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
        dry_run: bool = False,
        field_validation: str | None = None,
    ) -> dict[str, Any]:
        """PATCH with ``patch_type`` merge | strategic | json | apply (server-side apply)."""
        try:
            content_type = PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}; use one of {sorted(PATCH_CONTENT_TYPES)}") from None
        ns = _namespace_of(rt, namespace, None, self.namespace)
        params = {
            "dryRun": "All" if dry_run else None,
            "fieldManager": field_manager,
            "force": force,
            "fieldValidation": field_validation,
        }
        result: dict[str, Any] = await self.request(
            "PATCH", rt.path(ns, name, subresource), params=params, body=patch, content_type=content_type
        )
        return result

    async def delete(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """DELETE with DeleteOptions; the answer is the object (still terminating) or a Status."""
        ns = _namespace_of(rt, namespace, None, self.namespace)
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = dict(preconditions)
        if dry_run:
            options["dryRun"] = ["All"]
        result: dict[str, Any] = await self.request("DELETE", rt.path(ns, name), body=options)
        return result

    async def table(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        name: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        include_object: str | None = None,
    ) -> dict[str, Any]:
        """A ``meta.k8s.io/v1 Table`` (or, from a server without tables, the plain object/list).

        Columns with ``priority > 0`` are the ``-o wide`` ones; the caller filters them. Rows carry
        the object's metadata, or the whole object with ``include_object="Object"``."""
        ns = namespace if rt.namespaced else None
        params = {
            "labelSelector": label_selector or None,
            "fieldSelector": field_selector or None,
            "includeObject": include_object,
        }
        result: dict[str, Any] = await self.request("GET", rt.path(ns, name), params=params, accept=TABLE_ACCEPT)
        return result

    # -- typed level ---------------------------------------------------------------------------

    def resource(self, model: type[KubeObject]) -> ResourceType:
        return self.scheme.for_model(model)

    def typed(self, model: type[T]) -> TypedResource[T]:
        """``await client.typed(Pod).get("web", "default")`` -> a Pod."""
        return TypedResource(self, model)

    async def create_object(self, obj: T, *, dry_run: bool = False, field_manager: str | None = None) -> T:
        return await self.typed(type(obj)).create(obj, dry_run=dry_run, field_manager=field_manager)

    async def update_object(self, obj: T) -> T:
        return await self.typed(type(obj)).update(obj)

    async def update_object_status(self, obj: T) -> T:
        return await self.typed(type(obj)).update_status(obj)


@dataclass
class TypedList(Generic[T]):
    items: list[T]
    resource_version: str
    continue_: str | None = None


class TypedResource(Generic[T]):
    """The REST verbs of one model class, objects in and out (built by :meth:`ApiClient.typed`)."""

    def __init__(self, client: ApiClient, model: type[T]) -> None:
        self.client = client
        self.model = model
        self.rt = client.scheme.for_model(model)

    def _decode(self, data: dict[str, Any]) -> T:
        data.setdefault("apiVersion", self.rt.api_version)
        data.setdefault("kind", self.rt.kind)
        return self.model.model_validate(data)

    async def get(self, name: str, namespace: str | None = None) -> T:
        return self._decode(await self.client.get(self.rt, name, namespace))

    async def list(
        self,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> TypedList[T]:
        page = await self.client.list(
            self.rt, namespace, label_selector=label_selector, field_selector=field_selector,
            limit=limit, continue_=continue_,
        )
        meta = page.get("metadata") or {}
        return TypedList(
            [self._decode(i) for i in page.get("items") or []],
            str(meta.get("resourceVersion") or ""),
            meta.get("continue") or None,
        )

    async def list_all(
        self, namespace: str | None = None, *, label_selector: str | None = None, field_selector: str | None = None
    ) -> TypedList[T]:
        """Every page, followed through ``continue``."""
        items, rv = await self.client.list_all(
            self.rt, namespace, label_selector=label_selector, field_selector=field_selector
        )
        return TypedList([self._decode(i) for i in items], rv)

    async def create(self, obj: T, *, dry_run: bool = False, field_manager: str | None = None) -> T:
        data = await self.client.create(self.rt, obj.to_dict(), dry_run=dry_run, field_manager=field_manager)
        return self._decode(data)

    async def update(self, obj: T) -> T:
        """PUT the object; 409 Conflict if someone wrote it since ``obj`` was read."""
        return self._decode(await self.client.replace(self.rt, obj.to_dict()))

    async def update_status(self, obj: T) -> T:
        return self._decode(await self.client.replace_status(self.rt, obj.to_dict()))

    async def patch(
        self,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: str = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> T:
        data = await self.client.patch(
            self.rt, name, patch, patch_type=patch_type, namespace=namespace,
            subresource=subresource, field_manager=field_manager,
        )
        return self._decode(data)

    async def delete(
        self,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
    ) -> None:
        await self.client.delete(
            self.rt, name, namespace, propagation_policy=propagation_policy,
            grace_period_seconds=grace_period_seconds, preconditions=preconditions,
        )
