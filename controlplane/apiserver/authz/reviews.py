"""The review resources, answered and never stored.

``selfsubjectaccessreviews`` (``kubectl auth can-i``), ``subjectaccessreviews`` (asked on behalf
of someone else), ``selfsubjectrulesreviews`` (``kubectl auth can-i --list``) and
``selfsubjectreviews`` (``kubectl auth whoami``). Creating one runs the authorizer on the
attributes it names and returns the object with its status filled in (201, like Kubernetes).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from apimachinery import errors
from controlplane.apiserver import body as bodies
from controlplane.apiserver.authn import UserInfo
from controlplane.apiserver.authz.attributes import Attributes
from controlplane.apiserver.authz.chain import Authorizer
from controlplane.apiserver.authz.decision import Decision
from controlplane.apiserver.resources import json_response

Obj = dict[str, Any]

_KINDS = {
    "selfsubjectaccessreviews": ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    "subjectaccessreviews": ("authorization.k8s.io/v1", "SubjectAccessReview"),
    "selfsubjectrulesreviews": ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
    "selfsubjectreviews": ("authentication.k8s.io/v1", "SelfSubjectReview"),
}


def _spec_attributes(user: UserInfo, spec: Obj) -> Attributes:
    res = spec.get("resourceAttributes")
    non = spec.get("nonResourceAttributes")
    if isinstance(res, dict):
        return Attributes(user, str(res.get("verb") or ""), True, api_group=str(res.get("group") or ""),
                          api_version=str(res.get("version") or ""), resource=str(res.get("resource") or ""),
                          subresource=str(res.get("subresource") or ""),
                          namespace=str(res.get("namespace") or ""), name=str(res.get("name") or ""))
    if isinstance(non, dict):
        return Attributes(user, str(non.get("verb") or ""), False, path=str(non.get("path") or ""))
    raise errors.invalid("SubjectAccessReview", "authorization.k8s.io", "", [errors.FieldError.required(
        "spec.resourceAttributes", "exactly one of nonResourceAttributes or resourceAttributes must be specified")])


def _access_status(decision: Decision) -> Obj:
    status: Obj = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


def _rules_status(authorizer: Authorizer, user: UserInfo, namespace: str) -> Obj:
    resource_rules: list[Obj] = []
    non_resource_rules: list[Obj] = []
    for rule in authorizer.rules_for(user, namespace):
        if rule.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": rule.get("verbs") or [], "nonResourceURLs": rule["nonResourceURLs"]})
        else:
            resource_rules.append({k: rule[k] for k in ("verbs", "apiGroups", "resources", "resourceNames")
                                   if rule.get(k) is not None})
    # The Node authorizer's object-by-object grants cannot be listed as rules.
    return {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": False}


async def handle_review(request: web.Request, authorizer: Authorizer, user: UserInfo, plural: str) -> web.Response:
    if plural not in _KINDS:
        raise errors.ApiError.make(404, "NotFound", "the server could not find the requested resource")
    if request.method != "POST":
        raise errors.method_not_allowed(f"the server does not allow this method on the requested resource ({request.method})")
    api_version, kind = _KINDS[plural]
    obj = await bodies.read_object(request)
    if obj.get("apiVersion") not in (None, api_version) or obj.get("kind") not in (None, kind):
        raise errors.bad_request(f"expected {api_version} {kind}, got {obj.get('apiVersion')} {obj.get('kind')}")
    raw_spec = obj.get("spec")
    spec: Obj = raw_spec if isinstance(raw_spec, dict) else {}
    out: Obj = {"kind": kind, "apiVersion": api_version, "metadata": {"creationTimestamp": None}}
    if plural == "selfsubjectreviews":
        info: Obj = {"username": user.name, "groups": list(user.groups)}
        if user.uid:
            info["uid"] = user.uid
        out["status"] = {"userInfo": info}
        return json_response(out, 201)
    out["spec"] = spec
    if plural == "selfsubjectrulesreviews":
        out["status"] = _rules_status(authorizer, user, str(spec.get("namespace") or ""))
    elif plural == "selfsubjectaccessreviews":
        out["status"] = _access_status(authorizer.authorize(_spec_attributes(user, spec)))
    else:
        subject = UserInfo(str(spec.get("user") or ""), str(spec.get("uid") or ""),
                           tuple(str(g) for g in spec.get("groups") or []))
        if not subject.name and not subject.groups:
            raise errors.invalid(kind, "authorization.k8s.io", "", [errors.FieldError.required(
                "spec.user", "at least one of user or group must be specified")])
        out["status"] = _access_status(authorizer.authorize(_spec_attributes(subject, spec)))
    return json_response(out, 201)
