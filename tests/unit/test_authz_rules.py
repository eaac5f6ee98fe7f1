"""Request attributes, RBAC rule matching and pod references, without a server."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from controlplane.apiserver.authn import UserInfo, certificate_user
from controlplane.apiserver.authz.attributes import Attributes, forbidden, request_attributes
from controlplane.apiserver.authz.podrefs import pod_refs
from controlplane.apiserver.authz.rules import rule_allows, subject_matches

ALICE = UserInfo("alice", groups=("devs", "system:authenticated"))


def attrs(method: str, path: str, **query: str) -> Attributes:
    return request_attributes(ALICE, method, path, MultiDict(query))


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "", "pods", "", "ns", "")),
    ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, ("watch", "", "pods", "", "ns", "")),
    ("GET", "/api/v1/watch/namespaces/ns/pods/p", {}, ("watch", "", "pods", "", "ns", "p")),
    ("GET", "/api/v1/pods", {"fieldSelector": "metadata.name=p"}, ("list", "", "pods", "", "", "p")),
    ("PATCH", "/api/v1/namespaces/ns/pods/p/status", {}, ("patch", "", "pods", "status", "ns", "p")),
    ("DELETE", "/apis/apps/v1/namespaces/ns/deployments", {}, ("deletecollection", "apps", "deployments", "", "ns", "")),
    ("POST", "/api/v1/namespaces/ns/serviceaccounts/default/token", {},
     ("create", "", "serviceaccounts", "token", "ns", "default")),
    ("GET", "/api/v1/namespaces/ns", {}, ("get", "", "namespaces", "", "ns", "ns")),
    ("PUT", "/api/v1/namespaces/ns/finalize", {}, ("update", "", "namespaces", "finalize", "ns", "ns")),
    ("GET", "/api/v1/nodes/n1", {}, ("get", "", "nodes", "", "", "n1")),
])
def test_request_attributes(method: str, path: str, query: dict[str, str],
                            expected: tuple[str, str, str, str, str, str]) -> None:
    a = attrs(method, path, **query)
    assert a.resource_request
    assert (a.verb, a.api_group, a.resource, a.subresource, a.namespace, a.name) == expected


def test_non_resource_requests() -> None:
    for path in ("/api", "/apis/apps/v1", "/openapi/v3", "/metrics"):
        a = attrs("GET", path)
        assert not a.resource_request and a.verb == "get" and a.path == path
    # An encoded slash stays inside its segment, as the resource handler reads it.
    assert attrs("GET", "/api/v1/namespaces/a%2Fb/pods").namespace == "a/b"


def test_rule_matching() -> None:
    read_pods = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}
    assert rule_allows(read_pods, attrs("GET", "/api/v1/namespaces/ns/pods"))
    assert not rule_allows(read_pods, attrs("GET", "/api/v1/namespaces/ns/pods/p/status"))
    assert not rule_allows(read_pods, attrs("GET", "/apis/apps/v1/namespaces/ns/deployments"))
    assert not rule_allows(read_pods, attrs("DELETE", "/api/v1/namespaces/ns/pods/p"))
    scale = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/scale"]}
    assert rule_allows(scale, attrs("PUT", "/apis/apps/v1/namespaces/ns/deployments/d/scale"))
    assert not rule_allows(scale, attrs("PUT", "/apis/apps/v1/namespaces/ns/deployments/d"))
    named = {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"]}
    assert rule_allows(named, attrs("GET", "/api/v1/namespaces/ns/configmaps/one"))
    assert not rule_allows(named, attrs("GET", "/api/v1/namespaces/ns/configmaps/two"))
    assert not rule_allows(named, attrs("GET", "/api/v1/namespaces/ns/configmaps"))
    urls = {"verbs": ["get"], "nonResourceURLs": ["/apis/*", "/healthz"]}
    assert rule_allows(urls, attrs("GET", "/apis/apps/v1"))
    assert rule_allows(urls, attrs("GET", "/healthz"))
    assert not rule_allows(urls, attrs("GET", "/healthz/etcd"))
    assert not rule_allows(urls, attrs("GET", "/api/v1/namespaces/ns/pods"))  # a URL rule never grants resources


def test_subjects() -> None:
    assert subject_matches({"kind": "User", "name": "alice"}, "alice", (), "")
    assert subject_matches({"kind": "Group", "name": "devs"}, "bob", ("devs",), "")
    assert subject_matches({"kind": "ServiceAccount", "name": "sa"}, "system:serviceaccount:ns:sa", (), "ns")
    assert not subject_matches({"kind": "ServiceAccount", "name": "sa"}, "system:serviceaccount:ns:sa", (), "other")
    assert not subject_matches({"kind": "Robot", "name": "alice"}, "alice", (), "")


def test_forbidden_wording() -> None:
    e = forbidden(attrs("GET", "/api/v1/namespaces/default/pods"))
    assert e.code == 403 and e.message == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"')
    e = forbidden(attrs("PATCH", "/apis/apps/v1/namespaces/x/deployments/web/scale"), "why")
    assert e.message == ('deployments.apps "web" is forbidden: User "alice" cannot patch resource '
                         '"deployments/scale" in API group "apps" in the namespace "x": why')


def test_certificate_user() -> None:
    cert = {"subject": ((("organizationName", "system:nodes"),), (("commonName", "system:node:n1"),))}
    assert certificate_user(cert) == UserInfo("system:node:n1", groups=("system:nodes", "system:authenticated"))
    assert certificate_user(None) is None
    assert certificate_user({"subject": ((("organizationName", "x"),),)}) is None


def test_pod_refs() -> None:
    pod = {"metadata": {"namespace": "ns"}, "spec": {
        "serviceAccountName": "sa",
        "imagePullSecrets": [{"name": "pull"}],
        "volumes": [{"name": "a", "secret": {"secretName": "s1"}}, {"name": "b", "configMap": {"name": "c1"}},
                    {"name": "c", "projected": {"sources": [{"secret": {"name": "s2"}}, {"configMap": {"name": "c2"}}]}},
                    {"name": "d", "persistentVolumeClaim": {"claimName": "claim"}}],
        "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s3"}}]}],
        "containers": [{"name": "m", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c3", "key": "k"}}}]}],
    }}
    assert pod_refs(pod) == {
        ("serviceaccounts", "ns", "sa"), ("secrets", "ns", "pull"), ("secrets", "ns", "s1"), ("secrets", "ns", "s2"),
        ("secrets", "ns", "s3"), ("configmaps", "ns", "c1"), ("configmaps", "ns", "c2"), ("configmaps", "ns", "c3"),
        ("persistentvolumeclaims", "ns", "claim"),
    }
