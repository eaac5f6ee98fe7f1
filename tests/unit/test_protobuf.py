"""The protobuf reader: what kubectl's typed clients send, decoded to the JSON the API handles.

Bodies here are written field by field (tests/fixtures/protobuf.py), in the shapes kubectl sends: Go writes every non-pointer field, zero or not, so zero values must
come out as "unset" and pointer fields as set even when 0/false. The real kubectl sending these
bodies is tested in tests/integration/test_kubectl_real.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from apimachinery import errors
from controlplane.apiserver.protobuf import decode_object
from tests.fixtures.protobuf import entry, envelope, msg, num


def decode(api_version: str, kind: str, raw: bytes) -> dict[str, Any]:
    return decode_object(envelope(api_version, kind, raw))


# Go's zero-valued ObjectMeta fields around the ones set (selfLink, uid, generation, an empty
# creationTimestamp), as kubectl's generators write them.
def meta(name: str, *extra: bytes) -> bytes:
    return msg(1, msg(1, name) + msg(2, "") + msg(3, "ns") + msg(4, "") + msg(5, "") + msg(6, "") + num(7, 0)
               + msg(8, b"") + b"".join(extra))


def test_review_and_token_request() -> None:
    attributes = msg(1, "default") + msg(2, "list") + msg(5, "pods")
    obj = decode("authorization.k8s.io/v1", "SelfSubjectAccessReview", msg(1, b"") + msg(2, msg(1, attributes)))
    assert obj == {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
                   "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}}
    ref = msg(1, "Pod") + msg(3, "web") + msg(4, "u-1")
    spec = msg(1, "api") + msg(1, "vault") + num(4, 900) + msg(3, ref)
    obj = decode("authentication.k8s.io/v1", "TokenRequest", msg(1, b"") + msg(2, spec))
    assert obj["spec"] == {"audiences": ["api", "vault"], "expirationSeconds": 900,
                           "boundObjectRef": {"kind": "Pod", "name": "web", "uid": "u-1"}}


def test_deployment_as_kubectl_create_deployment_sends_it() -> None:
    port = msg(6, msg(1, "") + num(2, 0) + num(3, 80) + msg(4, "") + msg(5, ""))
    container = msg(2, msg(1, "web") + msg(2, "nginx") + msg(3, "sleep") + msg(3, "60") + msg(5, "") + port
                    + msg(8, b"") + num(16, 0) + num(18, 0))
    template = msg(3, msg(1, entry(11, "app", "web")) + msg(2, container + msg(3, "") + num(11, 0)))
    rolling = msg(2, msg(1, num(1, 0) + num(2, 25)) + msg(2, num(1, 1) + msg(3, "25%")))
    spec = num(1, 0) + msg(2, entry(1, "app", "web")) + template + msg(4, msg(1, "") + rolling) + num(5, 0) + num(7, 0)
    status = msg(3, num(1, 0) + num(2, 0) + num(3, 0))
    obj = decode("apps/v1", "Deployment", meta("web", entry(11, "app", "web")) + msg(2, spec) + status)
    assert obj == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,  # a pointer: 0 is a value, not "unset"
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                "name": "web", "image": "nginx", "command": ["sleep", "60"], "ports": [{"containerPort": 80}],
                "resources": {},
            }]}},
            "strategy": {"rollingUpdate": {"maxUnavailable": 25, "maxSurge": "25%"}},
        },
    }


def test_service_secret_configmap_and_signed_numbers() -> None:
    ports = msg(1, msg(1, "http") + msg(2, "TCP") + num(3, 80) + msg(4, num(1, 1) + msg(3, "web")) + num(5, 30080))
    obj = decode("v1", "Service", meta("svc") + msg(2, ports + entry(2, "app", "web") + msg(4, "NodePort")
                                                    + num(20, 0)) + msg(3, msg(1, b"")))
    assert obj["spec"] == {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "web",
                                      "nodePort": 30080}],
                           "selector": {"app": "web"}, "type": "NodePort", "allocateLoadBalancerNodePorts": False}
    obj = decode("v1", "Secret", meta("s") + entry(2, "key", b"\x00\xff") + msg(3, "Opaque") + num(5, 1))
    assert obj["data"] == {"key": "AP8="} and obj["type"] == "Opaque" and obj["immutable"] is True
    obj = decode("v1", "ConfigMap", meta("c") + entry(2, "a", "1") + entry(3, "bin", b"\x01"))
    assert obj["data"] == {"a": "1"} and obj["binaryData"] == {"bin": "AQ=="}
    spec = msg(3, msg(2, msg(2, msg(1, "c") + msg(8, entry(2, "cpu", msg(1, "250m")))) + num(4, -5)))
    obj = decode("apps/v1", "Deployment", meta("d") + msg(2, spec))
    pod = obj["spec"]["template"]["spec"]
    assert pod == {"containers": [{"name": "c", "resources": {"requests": {"cpu": "250m"}}}],
                   "terminationGracePeriodSeconds": -5}  # refused later by validation, with its field path


def test_a_field_it_does_not_read_is_refused_never_dropped() -> None:
    # A pod's affinity (pod spec field 18) with content: storing the Deployment without it would
    # lose data.
    affinity = msg(18, msg(1, msg(1, msg(1, msg(1, "zone")))))
    with pytest.raises(errors.ApiError) as e:
        decode("apps/v1", "Deployment", meta("d") + msg(2, msg(3, msg(2, msg(2, msg(1, "c")) + affinity))))
    assert e.value.code == 415
    assert "spec.template.spec (protobuf field 18)" in e.value.message and "as JSON" in e.value.message
    # ...deep inside a list too, named by its path.
    env_from = msg(19, msg(2, msg(1, "cm")))
    spec = msg(3, msg(2, msg(2, msg(1, "a")) + msg(2, msg(1, "b") + env_from)))
    with pytest.raises(errors.ApiError) as e:
        decode("apps/v1", "Deployment", meta("d") + msg(2, spec))
    assert "spec.template.spec.containers[1] (protobuf field 19)" in e.value.message
    # Zero values of fields it does not read (Go writes them all) are not refused.
    assert decode("v1", "ConfigMap", meta("c", msg(15, ""), num(16, 0)))["metadata"] == {"name": "c", "namespace": "ns"}


def test_metadata_of_an_object_read_back() -> None:
    """certificate approve sends the object it read: owner references, times, managed fields."""
    owner = msg(13, msg(1, "ReplicaSet") + msg(3, "rs") + msg(4, "u-1") + msg(5, "apps/v1") + num(6, 1) + num(7, 0))
    managed = msg(17, msg(1, "kubectl") + msg(2, "Update") + msg(3, "v1") + msg(4, num(1, 1_700_000_000))
                  + msg(6, "FieldsV1") + msg(7, msg(1, '{"f:data":{}}')))
    md = decode("v1", "ConfigMap", meta("c", owner, msg(14, "keep"), managed))["metadata"]
    assert md == {
        "name": "c", "namespace": "ns", "finalizers": ["keep"],
        "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "uid": "u-1", "apiVersion": "apps/v1",
                             "controller": True, "blockOwnerDeletion": False}],
        "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                           "time": "2023-11-14T22:13:20Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}],
    }


@pytest.mark.parametrize(("body", "code"), [
    (b"{}", 415),  # not protobuf at all
    (b"\x00\x01", 415),
    (b"k8s\x00\x12\x40short", 400),  # a length past the end
    (b"k8s\x00" + msg(1, msg(1, "v1") + msg(2, "Pod")) + msg(2, b""), 415),  # a kind it does not read
    (envelope("v1", "ConfigMap", b"\x09\x01"), 400),  # a fixed64 cut short
    (envelope("v1", "ConfigMap", msg(1, msg(17, msg(7, msg(1, "{nope"))))), 400),  # fieldsV1 that is not JSON
])
def test_bad_bodies_are_refused(body: bytes, code: int) -> None:
    with pytest.raises(errors.ApiError) as e:
        decode_object(body)
    assert e.value.code == code
