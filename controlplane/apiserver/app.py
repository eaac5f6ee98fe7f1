"""The API server's aiohttp application: middlewares, discovery, health, OpenAPI and resources.

Two middlewares frame every request: error rendering (every failure leaves as a Kubernetes
Status, never as an HTML page or a traceback) and access: authentication (client certificate or
bearer token; without either 401, except the health and version endpoints, which are public as
Kubernetes' system:public-info-viewer makes them), impersonation, then authorization (403 unless
the authorizer chain allows the request).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import prometheus_client
from aiohttp import web
from aiohttp.typedefs import Middleware

from apimachinery import errors
from apimachinery.api.security_registry import REVIEW_GROUPS
from apimachinery.scheme import Scheme
from controlplane import version
from controlplane.apiserver import discovery, openapi
from controlplane.apiserver import metrics as metrics_group
from controlplane.apiserver.authn import ANONYMOUS, TokenAuthenticator, UserInfo, certificate_user
from controlplane.apiserver.authz.attributes import forbidden, request_attributes
from controlplane.apiserver.authz.chain import Authorizer
from controlplane.apiserver.authz.impersonation import impersonate
from controlplane.apiserver.authz.reviews import handle_review
from controlplane.apiserver.body import MAX_BODY_BYTES
from controlplane.apiserver.nodeproxy import NODE_PROXY_KEY
from controlplane.apiserver.resources import ResourceHandler, json_response
from controlplane.apiserver.tokenrequest import TOKEN_REQUESTS_KEY
from controlplane.registry.admission import set_request_user
from controlplane.registry.store import Store

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
ANONYMOUS_PATH = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
USER_KEY = web.RequestKey("user", UserInfo)


@dataclass
class ApiServerState:
    store: Store
    scheme: Scheme
    authenticator: TokenAuthenticator
    advertise_url: str
    # None: every authenticated request is allowed (only for servers built without a watch cache).
    authorizer: Authorizer | None = None
    # More bearer-token authenticators tried after the static token file (bootstrap tokens, ...).
    token_authenticators: list[Callable[[str], UserInfo | None]] = field(default_factory=list)
    # Named readiness checks: each returns None when fine, or what is wrong.
    ready_checks: dict[str, Callable[[], Awaitable[str | None]]] = field(default_factory=dict)


def _status_response(err: errors.ApiError) -> web.Response:
    resp = json_response(err.status.to_dict(), err.code)
    for k, v in err.headers.items():
        resp.headers[k] = v
    if err.code == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="kube-lite"'
    return resp


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.ApiError as e:
        return _status_response(e)
    except web.HTTPRequestEntityTooLarge:
        return _status_response(errors.too_large())
    except web.HTTPException as e:
        if e.status == 404:
            return _status_response(errors.ApiError.make(404, "NotFound", "the server could not find the requested resource"))
        if e.status == 405:
            return _status_response(errors.method_not_allowed(f"the server does not allow this method ({request.method})"))
        return _status_response(errors.ApiError.make(e.status, e.reason, e.text or e.reason))
    except (ConnectionResetError, TimeoutError):
        raise
    except Exception as e:
        log.exception("internal error serving %s %s", request.method, request.path)
        return _status_response(errors.internal(f"{type(e).__name__}: {e}"))


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def authenticate(state: ApiServerState, request: web.Request) -> UserInfo | None:
    """The client certificate's user, else the bearer token's, else None."""
    transport = request.transport
    user = certificate_user(transport.get_extra_info("peercert") if transport is not None else None)
    if user is not None:
        return user
    header = request.headers.get("Authorization")
    user = state.authenticator.authenticate(header)
    if user is None:
        token = _bearer(header)
        for extra in state.token_authenticators if token else ():
            user = extra(token or "")
            if user is not None:
                break
    return user


def auth_middleware(state: ApiServerState) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS or request.path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return await handler(request)
        user = authenticate(state, request)
        if user is None and request.method == "GET" and request.path == ANONYMOUS_PATH:
            # The one anonymous endpoint, as Kubernetes' anonymous-authenticator conditions
            # allow: joining nodes read cluster-info before they have credentials. RBAC still
            # decides (a Role in kube-public grants system:anonymous just this object).
            user = ANONYMOUS
        if user is None:
            raise errors.unauthorized()
        authorizer = state.authorizer
        if authorizer is not None:
            user = impersonate(user, request.headers, authorizer.authorize)
            attrs = request_attributes(user, request.method, request.raw_path, request.query)
            decision = authorizer.authorize(attrs)
            if not decision.allowed:
                raise forbidden(attrs, decision.reason)
        request[USER_KEY] = user
        # Admission (deeper in the call chain) reads who is writing from the request context.
        set_request_user(user.name, user.groups, user.uid)
        return await handler(request)

    return middleware


def build_app(state: ApiServerState) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware(state)],
        client_max_size=MAX_BODY_BYTES + 1,
    )
    resources = ResourceHandler(state.store, state.scheme)
    metrics_api = metrics_group.MetricsApi(state.store, state.scheme)
    scheme = state.scheme

    async def get_version(request: web.Request) -> web.Response:
        return json_response(version.version_info())

    async def livez(request: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    async def readyz(request: web.Request) -> web.Response:
        failed: list[str] = []
        lines: list[str] = []
        for name, check in state.ready_checks.items():
            problem = await check()
            lines.append(f"[{'-' if problem else '+'}]{name} {'failed: ' + problem if problem else 'ok'}")
            if problem:
                failed.append(name)
        verbose = "verbose" in request.query
        if failed:
            text = "\n".join(lines) + "\nreadyz check failed"
            return web.Response(status=500, text=text, content_type="text/plain")
        return web.Response(text=("\n".join(lines) + "\nreadyz check passed") if verbose else "ok",
                            content_type="text/plain")

    def discovery_response(request: web.Request, legacy: dict[str, object] | None, core: bool) -> web.Response:
        ctype = discovery.wants_aggregated(request.headers.get("Accept", ""))
        if ctype is not None:
            doc = discovery.aggregated_discovery(scheme, core, discovery.aggregated_version(ctype))
            if not core:
                doc["items"].append(metrics_group.aggregated_group())
            return web.Response(body=json.dumps(doc).encode(), headers={"Content-Type": ctype})
        if legacy is None:
            raise errors.ApiError.make(404, "NotFound", "the server could not find the requested resource")
        return json_response(legacy)

    async def api_root(request: web.Request) -> web.Response:
        return discovery_response(request, discovery.api_versions(state.advertise_url), core=True)

    async def apis_root(request: web.Request) -> web.Response:
        groups = discovery.api_group_list(scheme)
        groups["groups"].append(metrics_group.api_group())
        return discovery_response(request, groups, core=False)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts[0] == "apis" and len(parts) == 4 and parts[1] in REVIEW_GROUPS and state.authorizer is not None:
            return await handle_review(request, state.authorizer, request[USER_KEY], parts[3])
        if parts[0] == "api" and len(parts) == 2 and request.method == "GET":
            return _or_404(discovery.api_resource_list(scheme, "", parts[1]))
        if parts[0] == "apis" and parts[1] == metrics_group.GROUP:
            return await metrics_api.handle(request, request.config_dict.get(NODE_PROXY_KEY))
        if parts[0] == "apis" and len(parts) == 2 and request.method == "GET":
            return _or_404(discovery.api_group(scheme, parts[1]))
        if parts[0] == "apis" and len(parts) == 3 and request.method == "GET":
            return _or_404(discovery.api_resource_list(scheme, parts[1], parts[2]))
        token_requests = request.app.get(TOKEN_REQUESTS_KEY)
        if token_requests is not None and (answered := await token_requests.maybe_handle(request)) is not None:
            return answered
        return await resources.handle(request)

    async def openapi_index(request: web.Request) -> web.Response:
        return json_response(openapi.openapi_v3_index(scheme))

    async def openapi_doc(request: web.Request) -> web.Response:
        parts = request.match_info["tail"].strip("/").split("/")
        doc: bytes | None = None
        if parts[0] == "api" and len(parts) == 2:
            doc = openapi.openapi_v3_document_bytes(scheme, "", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = openapi.openapi_v3_document_bytes(scheme, parts[1], parts[2])
        if doc is None:
            raise errors.ApiError.make(404, "NotFound", "the server could not find the requested resource")
        return web.Response(body=doc, content_type="application/json")

    app.router.add_get("/version", get_version)
    app.router.add_get("/version/", get_version)
    for path in ("/healthz", "/livez"):
        app.router.add_get(path, livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api", api_root)
    app.router.add_get("/api/", api_root)
    app.router.add_get("/apis", apis_root)
    app.router.add_get("/apis/", apis_root)
    async def metrics(request: web.Request) -> web.Response:
        # Every component in this process (API server, controllers, scheduler) reports here.
        return web.Response(body=prometheus_client.generate_latest(), headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi/v3", openapi_index)
    app.router.add_get("/openapi/v3/{tail:.*}", openapi_doc)
    app.router.add_route("*", "/api/{tail:.+}", dispatch)
    app.router.add_route("*", "/apis/{tail:.+}", dispatch)
    return app


def _or_404(doc: object) -> web.Response:
    if doc is None:
        raise errors.ApiError.make(404, "NotFound", "the server could not find the requested resource")
    return json_response(doc)
