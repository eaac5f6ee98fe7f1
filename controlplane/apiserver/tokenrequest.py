"""``POST .../serviceaccounts/NAME/token``: TokenRequest, a short-lived token for a service account.

The answer is the request with ``status.token`` (a JWT from :mod:`controlplane.apiserver.satoken`)
and ``status.expirationTimestamp``. A token may be bound to a pod running as that account
(``spec.boundObjectRef``), which is how node agents get the tokens they mount into pods; it then
stops working when the pod goes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from apimachinery import errors
from apimachinery.api.authentication_v1 import GROUP, TokenRequest
from apimachinery.decode import decode
from apimachinery.errors import FieldError
from apimachinery.meta import StatusDetails, now
from apimachinery.scheme import Scheme
from controlplane.apiserver import body as bodies
from controlplane.apiserver.reqinfo import parse_path
from controlplane.apiserver.resources import json_response
from controlplane.apiserver.satoken import API_AUDIENCES, BoundPod, TokenSigner
from controlplane.registry.admission import request_user
from controlplane.registry.store import Store

DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
NODE_PREFIX = "system:node:"


def _requesting_node() -> str | None:
    """The node name when a node agent asks (NodeRestriction limits what it may get)."""
    user = request_user()
    if "system:nodes" in user.groups and user.name.startswith(NODE_PREFIX):
        return user.name[len(NODE_PREFIX):]
    return None


def _forbidden(name: str, why: str) -> errors.ApiError:
    return errors.ApiError.make(403, "Forbidden", f'serviceaccounts "{name}" is forbidden: {why}',
                                details=StatusDetails(name=name, kind="serviceaccounts"))


class TokenRequestHandler:
    def __init__(self, store: Store, scheme: Scheme, signer: TokenSigner) -> None:
        self.store = store
        self.signer = signer
        sa_rt, pod_rt = scheme.by_resource("", "v1", "serviceaccounts"), scheme.by_resource("", "v1", "pods")
        assert sa_rt is not None and pod_rt is not None
        self.sa_rt, self.pod_rt = sa_rt, pod_rt
        self.scheme = scheme

    async def maybe_handle(self, request: web.Request) -> web.Response | None:
        """The response when ``request`` is a TokenRequest, else None (someone else serves it)."""
        if request.method != "POST" or not request.path.endswith("/token"):
            return None
        info = parse_path(self.scheme, request.raw_path)
        if info.rt is not self.sa_rt or info.subresource != "token" or not info.name or not info.namespace:
            return None
        # kubectl sends it as protobuf: read_object decodes that too.
        data = await bodies.read_object(request)
        dry = bodies.dry_run(request.query.getall("dryRun", []))
        return json_response(await self.create(info.namespace, info.name, data, dry_run=dry), 201)

    async def create(self, namespace: str, name: str, data: dict[str, object], *, dry_run: bool = False) -> dict[str, object]:
        req, errs = decode(TokenRequest, data)
        if req is None:
            raise errors.bad_request(f"TokenRequest cannot be handled: {errs[0] if errs else '?'}")
        spec = req.spec
        if spec.expiration_seconds is None:
            spec.expiration_seconds = DEFAULT_EXPIRATION_SECONDS
        if not spec.audiences:
            spec.audiences = list(API_AUDIENCES)
        problems: list[FieldError] = []
        if spec.expiration_seconds < MIN_EXPIRATION_SECONDS:
            problems.append(FieldError.invalid("spec.expirationSeconds", spec.expiration_seconds,
                                               "may not specify a duration less than 10 minutes"))
        elif spec.expiration_seconds > MAX_EXPIRATION_SECONDS:
            problems.append(FieldError.invalid("spec.expirationSeconds", spec.expiration_seconds,
                                               "may not specify a duration larger than 2^32 seconds"))
        ref = spec.bound_object_ref
        if ref is not None and ref.kind != "Pod":
            problems.append(FieldError.not_supported("spec.boundObjectRef.kind", ref.kind, ["Pod"]))
        if problems:
            raise errors.invalid("TokenRequest", GROUP, name, problems)

        sa = await self.store.get(self.sa_rt, namespace, name)
        node = _requesting_node()
        if node is not None and ref is None:
            raise _forbidden(name, "node requested token not bound to a pod")
        pod: BoundPod | None = None
        if ref is not None:
            stored = await self.store.get(self.pod_rt, namespace, ref.name or "")
            if node is not None and (stored.get("spec") or {}).get("nodeName") != node:
                raise _forbidden(name, "node requested token bound to a pod scheduled on a different node")
            uid = stored["metadata"].get("uid")
            if ref.uid and ref.uid != uid:
                raise errors.conflict("pods", "", ref.name or "", (
                    f"the UID in the bound object reference ({ref.uid}) does not match the UID in record. "
                    "The object might have been deleted and then recreated"))
            if (stored.get("spec") or {}).get("serviceAccountName") != name:
                raise errors.bad_request(
                    f'cannot bind token for serviceaccount "{name}" to pod running with different serviceaccount name.')
            ref.uid = uid
            ref.api_version = ref.api_version or "v1"
            pod = BoundPod(ref.name or "", str(uid))
        issued = self.signer.issue(namespace, name, str(sa["metadata"].get("uid") or ""), spec.audiences,
                                   spec.expiration_seconds, pod)
        out = req.to_dict()
        out["metadata"] = {"name": name, "namespace": namespace, "creationTimestamp": now()}
        out["status"] = {
            "token": "" if dry_run else issued.token,
            "expirationTimestamp": datetime.fromtimestamp(issued.expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return out


# Where the API server application keeps its TokenRequest handler.
TOKEN_REQUESTS_KEY = web.AppKey("token-requests", TokenRequestHandler)
