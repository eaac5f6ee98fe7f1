"""Impersonation: ``Impersonate-User`` / ``Impersonate-Group`` headers (``kubectl --as``).

The real user needs the ``impersonate`` verb on ``users`` (or ``serviceaccounts``) and on
``groups`` for every name asked for, as in Kubernetes; the request then runs as the
impersonated user, who is authenticated by definition.
"""

from __future__ import annotations

from collections.abc import Callable

from multidict import CIMultiDictProxy

from apimachinery import errors
from controlplane.apiserver.authn import AUTHENTICATED, UserInfo
from controlplane.apiserver.authz.attributes import Attributes, forbidden
from controlplane.apiserver.authz.decision import Decision

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
_SA_PREFIX = "system:serviceaccount:"


def impersonate(user: UserInfo, headers: CIMultiDictProxy[str],
                authorize: Callable[[Attributes], Decision]) -> UserInfo:
    """The user a request runs as: ``user`` itself, or whom it may and does impersonate."""
    target = headers.get(USER_HEADER)
    groups = headers.getall(GROUP_HEADER, [])
    if target is None:
        if groups or headers.get(UID_HEADER):
            raise errors.bad_request("requested impersonation of groups or a uid without impersonating a user")
        return user
    implied: list[str] = []
    if target.startswith(_SA_PREFIX) and target.count(":") == 3:
        namespace, _, name = target[len(_SA_PREFIX):].partition(":")
        checks = [("serviceaccounts", name, namespace)]
        implied = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    else:
        checks = [("users", target, "")]
    checks += [("groups", g, "") for g in groups]
    uid = headers.get(UID_HEADER, "")
    if uid:
        checks.append(("uids", uid, ""))
    for resource, name, namespace in checks:
        attrs = Attributes(user, "impersonate", True, api_group="", resource=resource, name=name,
                           namespace=namespace)
        decision = authorize(attrs)
        if not decision.allowed:
            raise forbidden(attrs, decision.reason)
    all_groups = list(dict.fromkeys([*groups, *implied, AUTHENTICATED]))
    return UserInfo(target, uid, tuple(all_groups))
