"""Request attributes: what an authorizer decides on (Kubernetes' authorizer.Attributes).

The path grammar is the one of :mod:`controlplane.apiserver.reqinfo`, but parsed leniently: an
unknown resource is still a resource request (a user without rights gets 403, not a hint of what
exists), and anything outside ``/api`` and ``/apis`` resources is a non-resource request whose
verb is the lowercased HTTP method.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from multidict import MultiMapping

from apimachinery import errors
from apimachinery.meta import StatusDetails
from controlplane.apiserver.authn import UserInfo
from controlplane.apiserver.reqinfo import parse_bool

# Subresources of a Namespace object, which otherwise would parse as a resource inside it.
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class Attributes:
    user: UserInfo
    verb: str
    resource_request: bool
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def full_resource(self) -> str:
        """``pods`` or ``pods/status``: how RBAC rules name resources."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_attributes(user: UserInfo, method: str, raw_path: str, query: MultiMapping[str]) -> Attributes:
    """Attributes of a request; ``raw_path`` is still percent-encoded, so that segments are split
    before they are decoded, exactly as the resource handler reads them."""
    path = unquote(raw_path.split("?", 1)[0])
    parts = [unquote(p) for p in raw_path.split("?", 1)[0].split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        verb = "get" if method == "HEAD" else method.lower()
        return Attributes(user, verb, False, path=path)
    verb = ""
    if rest[0] == "watch":
        verb, rest = "watch", rest[1:]
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    sub = "/".join(rest[2:])
    if not verb:
        if method in ("GET", "HEAD"):
            verb = "get" if name else ("watch" if _watching(query) else "list")
        elif method == "DELETE" and not name:
            verb = "deletecollection"
        else:
            verb = _METHOD_VERBS.get(method, method.lower())
    if verb in ("list", "watch") and not name:
        # `kubectl get NAME -w` lists one object by field selector: that is a request on it.
        selector = query.get("fieldSelector", "")
        if selector.startswith("metadata.name=") and "," not in selector:
            name = selector.partition("=")[2]
    return Attributes(user, verb, True, path=path, api_group=group, api_version=version, resource=resource,
                      subresource=sub, namespace=namespace, name=name)


def _watching(query: MultiMapping[str]) -> bool:
    try:
        return parse_bool(query.get("watch"), "watch")
    except errors.ApiError:
        return False


def forbidden(attrs: Attributes, reason: str = "") -> errors.ApiError:
    """403 worded exactly as Kubernetes words it."""
    who = f'User "{attrs.user.name}"'
    if not attrs.resource_request:
        message = f'forbidden: {who} cannot {attrs.verb} path "{attrs.path}"'
        details = None
    else:
        qualified = errors.qualified_resource(attrs.resource, attrs.api_group)
        subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
        scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        message = (f'{subject} is forbidden: {who} cannot {attrs.verb} resource "{attrs.full_resource}" '
                   f'in API group "{attrs.api_group}" {scope}')
        details = StatusDetails(name=attrs.name or None, group=attrs.api_group or None, kind=attrs.resource)
    if reason:
        message = f"{message}: {reason}"
    return errors.ApiError.make(403, "Forbidden", message, details=details)
