"""Object validation: every rule reports its field path and Kubernetes' wording, all problems at once.

Objects are built the way the API server builds them: decoded from realistic manifests, then
defaulted (apimachinery.defaults), then validated.
"""

from __future__ import annotations

from typing import Any

import pytest

from apimachinery import errors as api_errors
from apimachinery.api import (
    ConfigMap,
    Deployment,
    Endpoints,
    EndpointSlice,
    Event,
    Lease,
    Namespace,
    Node,
    Pod,
    ReplicaSet,
    Secret,
    Service,
    ServiceAccount,
)
from apimachinery.api.core_v1 import Volume
from apimachinery.decode import decode
from apimachinery.defaults import apply_defaults
from apimachinery.errors import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
    TOO_MANY,
    FieldError,
)
from apimachinery.meta import KubeObject, ObjectMeta
from apimachinery.validation import validate, validate_update
from apimachinery.validation.meta import validate_object_meta
from apimachinery.validation.names import is_dns1123_subdomain
from apimachinery.validation.pod import UPDATE_FORBIDDEN_MSG
from apimachinery.validation.volumes import validate_volumes

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
QUANTITY_MSG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
PORT_MSG = "must be between 1 and 65535, inclusive"
NEGATIVE_MSG = "must be greater than or equal to 0"

# ---------------------------------------------------------------------------------------------
# Manifests (each valid as written)


def pod_doc() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "volumes": [
                {"name": "data", "emptyDir": {}},
                {"name": "config", "configMap": {"name": "web-config"}},
            ],
            "initContainers": [{"name": "init", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}],
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.25",
                    "ports": [{"name": "http", "containerPort": 80}],
                    "env": [
                        {"name": "MODE", "value": "prod"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {
                            "name": "PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
                        },
                    ],
                    "envFrom": [{"configMapRef": {"name": "web-config"}}],
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/data"},
                        {"name": "config", "mountPath": "/etc/web"},
                    ],
                    "resources": {"limits": {"cpu": "1", "memory": "128Mi"}, "requests": {"cpu": "500m"}},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                    "readinessProbe": {"tcpSocket": {"port": 80}},
                    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
                }
            ],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}
            ],
        },
    }


def template_doc() -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "web", "tier": "front"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]},
    }


def deployment_doc() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template_doc(),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
        },
    }


def replicaset_doc() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-5d4f8c", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
            "template": template_doc(),
        },
    }


def service_doc() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "https", "port": 443}],
        },
    }


def node_doc() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1.lab", "labels": {"kubernetes.io/hostname": "node-1"}},
        "spec": {
            "podCIDR": "10.244.1.0/24",
            "podCIDRs": ["10.244.1.0/24"],
            "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
        },
    }


def configmap_doc() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config", "namespace": "default"},
        "data": {"app.properties": "mode=prod\n", "LOG_LEVEL": "info"},
        "binaryData": {"logo.png": "iVBORw0KGgo="},
    }


def secret_doc() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "web-tls", "namespace": "default"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"},
    }


def event_doc() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.17a8b2c3d4e5f6a7", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "apiVersion": "v1"},
        "reason": "Scheduled",
        "message": "Successfully assigned default/web to node-1",
        "type": "Normal",
        "source": {"component": "default-scheduler"},
        "count": 1,
    }


def endpoints_doc() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [
            {
                "addresses": [
                    {"ip": "10.244.1.5", "nodeName": "node-1", "targetRef": {"kind": "Pod", "name": "web"}}
                ],
                "notReadyAddresses": [{"ip": "10.244.2.7"}],
                "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
            }
        ],
    }


def endpointslice_doc() -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "web-x7k2p",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.244.1.5"], "conditions": {"ready": True}, "nodeName": "node-1"}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    }


VALID: list[tuple[type[KubeObject], Any, bool]] = [
    (Pod, pod_doc, True),
    (Deployment, deployment_doc, True),
    (ReplicaSet, replicaset_doc, True),
    (Service, service_doc, True),
    (
        Service,
        lambda: {
            "metadata": {"name": "np", "namespace": "default"},
            "spec": {
                "type": "NodePort",
                "selector": {"app": "web"},
                "ports": [{"port": 80, "nodePort": 30080}],
            },
        },
        True,
    ),
    (
        Service,
        lambda: {"metadata": {"name": "db", "namespace": "default"}, "spec": {"clusterIP": "None"}},
        True,
    ),
    (
        Service,
        lambda: {
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com"},
        },
        True,
    ),
    (Namespace, lambda: {"metadata": {"name": "team-a", "labels": {"team": "a"}}}, False),
    (Node, node_doc, False),
    (ConfigMap, configmap_doc, True),
    (Secret, secret_doc, True),
    (
        Secret,
        lambda: {"metadata": {"name": "db", "namespace": "default"}, "stringData": {"password": "x"}},
        True,
    ),
    (Event, event_doc, True),
    (
        Lease,
        lambda: {
            "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40},
        },
        True,
    ),
    (Endpoints, endpoints_doc, True),
    (EndpointSlice, endpointslice_doc, True),
    (ServiceAccount, lambda: {"metadata": {"name": "default", "namespace": "default"}}, True),
]


# ---------------------------------------------------------------------------------------------
# Helpers


def build(model: type[KubeObject], doc: dict[str, Any]) -> Any:
    obj = model.model_validate(doc)
    apply_defaults(obj)
    return obj


def check(model: type[KubeObject], doc: dict[str, Any], *, namespaced: bool = True) -> list[FieldError]:
    return validate(build(model, doc), namespaced=namespaced)


def at(errors: list[FieldError], field: str, type_: str, detail: str | None = None) -> FieldError:
    """The one error at ``field`` of ``type_`` (and with exactly ``detail`` when given)."""
    found = [
        e for e in errors if e.field == field and e.type == type_ and (detail is None or e.detail == detail)
    ]
    assert found, f"no {type_} at {field} ({detail!r}) in {[str(e) for e in errors]}"
    return found[0]


def fields(errors: list[FieldError]) -> set[str]:
    return {e.field for e in errors}


def container(doc: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = doc["spec"]["containers"][0]
    return c


# ---------------------------------------------------------------------------------------------
# Valid objects


@pytest.mark.parametrize(("model", "make", "namespaced"), VALID)
def test_valid_manifests_have_no_errors(model: type[KubeObject], make: Any, namespaced: bool) -> None:
    obj = build(model, make())
    assert validate(obj, namespaced=namespaced) == []
    # Re-validating the same object as an update of itself is fine too.
    assert validate_update(obj, obj.copy_deep(), namespaced=namespaced) == []


def test_all_problems_are_reported_at_once() -> None:
    doc = pod_doc()
    doc["metadata"]["name"] = "Web"
    container(doc)["image"] = ""
    container(doc)["ports"][0]["containerPort"] = 0
    doc["spec"]["restartPolicy"] = "Sometimes"
    errs = check(Pod, doc)
    assert {
        "metadata.name",
        "spec.containers[0].image",
        "spec.containers[0].ports[0].containerPort",
        "spec.restartPolicy",
    } <= fields(errs)


def test_invalid_status_matches_kubernetes_wire_shape() -> None:
    doc = deployment_doc()
    del doc["spec"]["template"]["spec"]["containers"][0]["image"]
    errs = check(Deployment, doc)
    assert [str(e) for e in errs] == ["spec.template.spec.containers[0].image: Required value"]
    status = api_errors.invalid("Deployment", "apps", "web", errs).status.to_dict()
    assert status["message"] == (
        'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value'
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value",
            "field": "spec.template.spec.containers[0].image",
        }
    ]


# ---------------------------------------------------------------------------------------------
# Metadata


def test_name_required_unless_generate_name() -> None:
    doc = configmap_doc()
    del doc["metadata"]["name"]
    err = at(check(ConfigMap, doc), "metadata.name", REQUIRED)
    assert str(err) == "metadata.name: Required value: name or generateName is required"
    doc["metadata"]["generateName"] = "web-config-"
    assert check(ConfigMap, doc) == []


def test_generate_name_follows_the_name_rule_as_a_prefix() -> None:
    doc = configmap_doc()
    del doc["metadata"]["name"]
    doc["metadata"]["generateName"] = "Web_"
    err = at(check(ConfigMap, doc), "metadata.generateName", INVALID)
    assert err.detail == SUBDOMAIN_MSG


def test_most_kinds_need_a_dns_subdomain_name() -> None:
    doc = configmap_doc()
    doc["metadata"]["name"] = "Web_Config"
    err = at(check(ConfigMap, doc), "metadata.name", INVALID)
    assert str(err) == f'metadata.name: Invalid value: "Web_Config": {SUBDOMAIN_MSG}'
    doc["metadata"]["name"] = "a" * 254
    at(check(ConfigMap, doc), "metadata.name", INVALID, "must be no more than 253 characters")
    doc["metadata"]["name"] = "web.config-2"  # dots are fine in a subdomain
    assert check(ConfigMap, doc) == []


def test_namespace_names_are_dns_labels() -> None:
    errs = check(Namespace, {"metadata": {"name": "team.a"}}, namespaced=False)
    assert at(errs, "metadata.name", INVALID).detail == LABEL_MSG
    errs = check(Namespace, {"metadata": {"name": "a" * 64}}, namespaced=False)
    at(errs, "metadata.name", INVALID, "must be no more than 63 characters")


def test_service_names_are_dns1035_labels() -> None:
    doc = service_doc()
    doc["metadata"]["name"] = "1web"
    assert at(check(Service, doc), "metadata.name", INVALID).detail == DNS1035_MSG
    doc["metadata"]["name"] = "web.api"
    at(check(Service, doc), "metadata.name", INVALID, DNS1035_MSG)


def test_namespace_required_for_namespaced_kinds() -> None:
    doc = pod_doc()
    del doc["metadata"]["namespace"]
    assert str(at(check(Pod, doc), "metadata.namespace", REQUIRED)) == "metadata.namespace: Required value"
    doc["metadata"]["namespace"] = "Team_A"
    assert at(check(Pod, doc), "metadata.namespace", INVALID).detail == LABEL_MSG


def test_namespace_forbidden_for_cluster_scoped_kinds() -> None:
    doc = node_doc()
    doc["metadata"]["namespace"] = "default"
    err = at(check(Node, doc, namespaced=False), "metadata.namespace", FORBIDDEN)
    assert str(err) == "metadata.namespace: Forbidden: not allowed on this type"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (".", "may not be '.'"),
        ("..", "may not be '..'"),
        ("a/b", "may not contain '/'"),
        ("a%b", "may not contain '%'"),
    ],
)
def test_names_must_be_path_segments_for_every_kind(name: str, message: str) -> None:
    # The generic rule (kinds with no stricter one) ...
    errs = validate_object_meta(ObjectMeta(name=name, namespace="default"), namespaced=True)
    assert [str(e) for e in errs] == [f'metadata.name: Invalid value: "{name}": {message}']
    # ... and kinds with a DNS rule report the path-segment problem first.
    doc = pod_doc()
    doc["metadata"]["name"] = name
    at(check(Pod, doc), "metadata.name", INVALID, message)


def test_label_keys_are_qualified_names() -> None:
    doc = pod_doc()
    doc["metadata"]["labels"] = {"bad key": "x"}
    err = at(check(Pod, doc), "metadata.labels", INVALID)
    assert err.value == "bad key"
    assert err.detail == QUALIFIED_NAME_PART_MSG
    doc["metadata"]["labels"] = {"Example.com/app": "x"}
    err = at(check(Pod, doc), "metadata.labels", INVALID)
    assert err.detail.startswith("prefix part a lowercase RFC 1123 subdomain")
    doc["metadata"]["labels"] = {("a" * 250 + ".com") + "/app": "x"}
    at(check(Pod, doc), "metadata.labels", INVALID, "prefix part must be no more than 253 characters")
    doc["metadata"]["labels"] = {"a/b/c": "x"}
    err = at(check(Pod, doc), "metadata.labels", INVALID)
    assert err.detail.startswith("a qualified name must consist of") and err.detail.endswith(
        "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    )
    doc["metadata"]["labels"] = {"example.com/app.kubernetes_io": "x", "A_b.c": "x"}
    assert check(Pod, doc) == []


def test_label_values_are_short_names() -> None:
    doc = pod_doc()
    doc["metadata"]["labels"] = {"app": "-web"}
    err = at(check(Pod, doc), "metadata.labels", INVALID)
    assert (err.value, err.detail) == ("-web", LABEL_VALUE_MSG)
    doc["metadata"]["labels"] = {"app": "a" * 64}
    at(check(Pod, doc), "metadata.labels", INVALID, "must be no more than 63 characters")
    doc["metadata"]["labels"] = {"app": ""}
    assert check(Pod, doc) == []


def test_annotations_total_size_is_limited() -> None:
    doc = configmap_doc()
    doc["metadata"]["annotations"] = {"a": "x" * (256 * 1024)}
    err = at(check(ConfigMap, doc), "metadata.annotations", TOO_LONG)
    assert str(err) == "metadata.annotations: Too long: may not be more than 262144 bytes"
    doc["metadata"]["annotations"] = {"a": "x" * (256 * 1024 - 1)}
    assert check(ConfigMap, doc) == []


def test_annotation_keys_are_case_insensitive_qualified_names() -> None:
    doc = configmap_doc()
    doc["metadata"]["annotations"] = {"Example.com/Note": "ok", "bad key!": "x"}
    errs = check(ConfigMap, doc)
    assert [e.value for e in errs] == ["bad key!"]
    assert errs[0].field == "metadata.annotations"


def test_owner_references_need_api_version_kind_name_uid() -> None:
    doc = pod_doc()
    doc["metadata"]["ownerReferences"] = [{"controller": True}]
    errs = check(Pod, doc)
    assert [str(e) for e in errs] == [
        'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
        'metadata.ownerReferences.kind: Invalid value: "": kind must not be empty',
        'metadata.ownerReferences.name: Invalid value: "": name must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty',
    ]


def test_at_most_one_controller_owner_reference() -> None:
    doc = pod_doc()
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": True}
    doc["metadata"]["ownerReferences"] = [
        {**ref, "name": "web-1", "uid": "u1"},
        {**ref, "name": "web-2", "uid": "u2"},
    ]
    err = at(check(Pod, doc), "metadata.ownerReferences", INVALID)
    assert err.detail == (
        'Only one reference can have Controller set to true. Found "true" in references for '
        "ReplicaSet/web-1 and ReplicaSet/web-2"
    )


def test_finalizer_names() -> None:
    doc = configmap_doc()
    doc["metadata"]["finalizers"] = [
        "example.com/cleanup",
        "kubernetes",
        "orphan",
        "bad name!",
        "my-finalizer",
    ]
    errs = check(ConfigMap, doc)
    assert [(e.field, e.value) for e in errs] == [
        ("metadata.finalizers", "bad name!"),
        ("metadata.finalizers", "my-finalizer"),
    ]
    assert errs[0].detail == QUALIFIED_NAME_PART_MSG
    assert errs[1].detail == "name is neither a standard finalizer name nor is it fully qualified"


def test_metadata_identity_is_immutable_on_update() -> None:
    old = build(ConfigMap, configmap_doc())
    old.metadata.uid = "uid-1"
    old.metadata.creation_timestamp = "2024-05-01T10:00:00Z"
    new = old.copy_deep()
    new.metadata.name = "other"
    new.metadata.namespace = "kube-system"
    new.metadata.uid = "uid-2"
    new.metadata.creation_timestamp = "2025-01-01T00:00:00Z"
    errs = validate_update(new, old, namespaced=True)
    for field in ("metadata.name", "metadata.namespace", "metadata.uid", "metadata.creationTimestamp"):
        at(errs, field, INVALID, "field is immutable")
    assert (
        str(at(errs, "metadata.uid", INVALID)) == 'metadata.uid: Invalid value: "uid-2": field is immutable'
    )


def test_metadata_update_ignores_generate_name_and_omitted_server_fields() -> None:
    old = build(ConfigMap, configmap_doc())
    old.metadata.uid = "uid-1"
    old.metadata.creation_timestamp = "2024-05-01T10:00:00Z"
    new = build(ConfigMap, configmap_doc())  # as a client sends it: no uid, no timestamp
    new.metadata.generate_name = "whatever-"
    new.metadata.labels = {"changed": "yes"}
    assert validate_update(new, old, namespaced=True) == []


def test_no_new_finalizers_while_deleting() -> None:
    old = build(ConfigMap, configmap_doc())
    old.metadata.deletion_timestamp = "2024-05-01T10:00:00Z"
    new = old.copy_deep()
    new.metadata.finalizers = ["example.com/late"]
    err = at(validate_update(new, old, namespaced=True), "metadata.finalizers", FORBIDDEN)
    assert err.detail.startswith("no new finalizers can be added if the object is being deleted")


# ---------------------------------------------------------------------------------------------
# Pod spec: containers


def test_pod_needs_a_container() -> None:
    doc = pod_doc()
    doc["spec"]["containers"] = []
    assert str(at(check(Pod, doc), "spec.containers", REQUIRED)) == "spec.containers: Required value"


def test_container_names_are_unique_dns_labels() -> None:
    doc = pod_doc()
    container(doc)["name"] = "Web"
    assert at(check(Pod, doc), "spec.containers[0].name", INVALID).detail == LABEL_MSG
    container(doc)["name"] = "init"  # clashes with the init container
    err = at(check(Pod, doc), "spec.containers[0].name", DUPLICATE)
    assert str(err) == 'spec.containers[0].name: Duplicate value: "init"'
    container(doc)["name"] = ""
    at(check(Pod, doc), "spec.containers[0].name", REQUIRED)


def test_image_required_in_pods_and_templates() -> None:
    doc = pod_doc()
    del container(doc)["image"]
    at(check(Pod, doc), "spec.containers[0].image", REQUIRED)
    doc = pod_doc()
    doc["spec"]["initContainers"][0]["image"] = ""
    at(check(Pod, doc), "spec.initContainers[0].image", REQUIRED)
    doc = replicaset_doc()
    doc["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    at(check(ReplicaSet, doc), "spec.template.spec.containers[0].image", REQUIRED)


def test_pod_image_may_not_have_surrounding_whitespace() -> None:
    doc = pod_doc()
    container(doc)["image"] = " nginx"
    at(check(Pod, doc), "spec.containers[0].image", INVALID, "must not have leading or trailing whitespace")


def test_container_port_range() -> None:
    doc = pod_doc()
    container(doc)["ports"] = [
        {"containerPort": 70000},
        {"containerPort": 0},
        {"containerPort": 8080, "hostPort": 70000},
    ]
    errs = check(Pod, doc)
    err = at(errs, "spec.containers[0].ports[0].containerPort", INVALID)
    assert str(err) == f"spec.containers[0].ports[0].containerPort: Invalid value: 70000: {PORT_MSG}"
    at(errs, "spec.containers[0].ports[1].containerPort", REQUIRED)
    at(errs, "spec.containers[0].ports[2].hostPort", INVALID, PORT_MSG)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("HTTP", "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"),
        ("web-server-http-1", "must be no more than 15 characters"),
        ("8080", "must contain at least one letter (a-z)"),
        ("web--http", "must not contain consecutive hyphens"),
        ("-http", "must not begin or end with a hyphen"),
    ],
)
def test_container_port_names_are_iana_service_names(name: str, message: str) -> None:
    doc = pod_doc()
    container(doc)["ports"][0]["name"] = name
    at(check(Pod, doc), "spec.containers[0].ports[0].name", INVALID, message)


def test_container_port_names_unique_within_a_container() -> None:
    doc = pod_doc()
    container(doc)["ports"] = [{"name": "http", "containerPort": 80}, {"name": "http", "containerPort": 81}]
    at(check(Pod, doc), "spec.containers[0].ports[1].name", DUPLICATE)


def test_container_port_protocol() -> None:
    doc = pod_doc()
    container(doc)["ports"][0]["protocol"] = "HTTP"
    err = at(check(Pod, doc), "spec.containers[0].ports[0].protocol", NOT_SUPPORTED)
    assert str(err) == (
        'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'
    )


def test_host_network_ports_must_match() -> None:
    doc = pod_doc()
    doc["spec"]["hostNetwork"] = True
    container(doc)["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    at(
        check(Pod, doc),
        "spec.containers[0].ports[0].containerPort",
        INVALID,
        "must match `hostPort` when `hostNetwork` is true",
    )


def test_image_pull_policy() -> None:
    doc = pod_doc()
    container(doc)["imagePullPolicy"] = "Sometimes"
    err = at(check(Pod, doc), "spec.containers[0].imagePullPolicy", NOT_SUPPORTED)
    assert err.detail == 'supported values: "Always", "IfNotPresent", "Never"'


def test_init_containers_without_restart_always_have_no_probes() -> None:
    doc = pod_doc()
    doc["spec"]["initContainers"][0]["readinessProbe"] = {"exec": {"command": ["true"]}}
    at(
        check(Pod, doc),
        "spec.initContainers[0].readinessProbe",
        FORBIDDEN,
        "may not be set for init containers without restartPolicy=Always",
    )
    doc["spec"]["initContainers"][0]["restartPolicy"] = "Always"  # a sidecar may have probes
    assert check(Pod, doc) == []
    doc["spec"]["initContainers"][0]["restartPolicy"] = "Never"
    at(check(Pod, doc), "spec.initContainers[0].restartPolicy", NOT_SUPPORTED)


# ---------------------------------------------------------------------------------------------
# Pod spec: volumes and mounts


def test_volume_names_unique_dns_labels() -> None:
    doc = pod_doc()
    doc["spec"]["volumes"][1]["name"] = "data"
    at(check(Pod, doc), "spec.volumes[1].name", DUPLICATE)
    doc["spec"]["volumes"][1]["name"] = "Config"
    assert at(check(Pod, doc), "spec.volumes[1].name", INVALID).detail == LABEL_MSG


def test_volume_needs_exactly_one_source() -> None:
    doc = pod_doc()
    doc["spec"]["volumes"][0]["hostPath"] = {"path": "/srv"}
    err = at(check(Pod, doc), "spec.volumes[0].emptyDir", FORBIDDEN)
    assert err.detail == "may not specify more than 1 volume type"
    # (the defaulter turns a sourceless volume into an emptyDir, so check undefaulted)
    _, errs = validate_volumes([Volume(name="bare")], "spec.volumes")
    assert (
        str(at(errs, "spec.volumes[0]", REQUIRED))
        == "spec.volumes[0]: Required value: must specify a volume type"
    )


def test_volume_source_fields() -> None:
    doc = pod_doc()
    doc["spec"]["volumes"] = [
        {"name": "c", "configMap": {"items": [{"key": "a", "path": "../etc"}]}},
        {"name": "s", "secret": {"defaultMode": 0o1777}},
        {"name": "h", "hostPath": {"path": ""}},
        {"name": "d", "emptyDir": {"sizeLimit": "lots"}},
    ]
    container(doc)["volumeMounts"] = []
    errs = check(Pod, doc)
    at(errs, "spec.volumes[0].configMap.name", REQUIRED)
    at(errs, "spec.volumes[0].configMap.items[0].path", INVALID, "must not contain '..'")
    at(errs, "spec.volumes[1].secret.secretName", REQUIRED)
    at(
        errs,
        "spec.volumes[1].secret.defaultMode",
        INVALID,
        "must be a number between 0 and 0777 (octal), both inclusive",
    )
    at(errs, "spec.volumes[2].hostPath.path", REQUIRED)
    at(errs, "spec.volumes[3].emptyDir.sizeLimit", INVALID, QUANTITY_MSG)


def test_volume_mounts_name_existing_volumes() -> None:
    doc = pod_doc()
    container(doc)["volumeMounts"][0]["name"] = "cache"
    err = at(check(Pod, doc), "spec.containers[0].volumeMounts[0].name", NOT_FOUND)
    assert str(err) == 'spec.containers[0].volumeMounts[0].name: Not found: "cache"'
    assert err.cause().reason == "FieldValueNotFound"


def test_volume_mount_paths_required_and_unique() -> None:
    doc = pod_doc()
    container(doc)["volumeMounts"][1]["mountPath"] = "/data"
    at(check(Pod, doc), "spec.containers[0].volumeMounts[1].mountPath", INVALID, "must be unique")
    container(doc)["volumeMounts"][1]["mountPath"] = ""
    at(check(Pod, doc), "spec.containers[0].volumeMounts[1].mountPath", REQUIRED)


# ---------------------------------------------------------------------------------------------
# Pod spec: environment


def test_env_var_names_are_printable_ascii_without_equals() -> None:
    doc = pod_doc()
    container(doc)["env"] = [
        {"name": "A=B"},
        {"name": "my.var-1 x"},
        {"name": "1ST"},
        {"name": "é"},
        {"name": ""},
    ]
    errs = check(Pod, doc)
    msg = "a valid environment variable name must consist only of printable ASCII characters other than '='"
    at(errs, "spec.containers[0].env[0].name", INVALID, msg)
    at(errs, "spec.containers[0].env[3].name", INVALID, msg)
    at(errs, "spec.containers[0].env[4].name", REQUIRED)
    assert not {"spec.containers[0].env[1].name", "spec.containers[0].env[2].name"} & fields(errs)


def test_env_value_from_needs_exactly_one_source() -> None:
    doc = pod_doc()
    container(doc)["env"] = [
        {"name": "A", "valueFrom": {}},
        {"name": "B", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "spec.containers"}}},
        {"name": "D", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a b"}}},
    ]
    errs = check(Pod, doc)
    at(
        errs,
        "spec.containers[0].env[0].valueFrom",
        INVALID,
        "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
    )
    at(errs, "spec.containers[0].env[1].valueFrom", INVALID, "may not be specified when `value` is not empty")
    at(errs, "spec.containers[0].env[2].valueFrom.fieldRef.fieldPath", NOT_SUPPORTED)
    at(errs, "spec.containers[0].env[3].valueFrom.configMapKeyRef.key", INVALID, CONFIG_KEY_MSG)


def test_env_from_needs_a_source() -> None:
    doc = pod_doc()
    container(doc)["envFrom"] = [{"prefix": "A="}]
    errs = check(Pod, doc)
    at(errs, "spec.containers[0].envFrom", INVALID, "must specify one of: `configMapRef` or `secretRef`")
    at(errs, "spec.containers[0].envFrom[0].prefix", INVALID)


# ---------------------------------------------------------------------------------------------
# Pod spec: resources


def test_bad_quantity_reported_on_its_resource_key() -> None:
    doc = pod_doc()
    container(doc)["resources"] = {"limits": {"memory": "10Mib"}}
    # Decoding keeps quantities as text, so the object decodes ...
    pod, decode_errors = decode(Pod, doc)
    assert pod is not None and decode_errors == []
    apply_defaults(pod)
    # ... and validation reports the quantity with Kubernetes' message on its key.
    err = at(validate(pod, namespaced=True), "spec.containers[0].resources.limits[memory]", INVALID)
    assert str(err) == f'spec.containers[0].resources.limits[memory]: Invalid value: "10Mib": {QUANTITY_MSG}'


def test_quantities_as_yaml_numbers_are_fine() -> None:
    doc = pod_doc()
    container(doc)["resources"] = {"limits": {"cpu": 2, "memory": 1.5e9}, "requests": {"cpu": 0.5}}
    assert check(Pod, doc) == []


def test_quantities_may_not_be_negative() -> None:
    doc = pod_doc()
    container(doc)["resources"] = {"requests": {"cpu": "-100m"}}
    err = at(check(Pod, doc), "spec.containers[0].resources.requests[cpu]", INVALID)
    assert (err.value, err.detail) == ("-100m", NEGATIVE_MSG)


def test_requests_may_not_exceed_limits() -> None:
    doc = pod_doc()
    container(doc)["resources"] = {
        "limits": {"cpu": "1000m", "memory": "1Gi"},
        "requests": {"cpu": "2", "memory": "512Mi"},
    }
    errs = check(Pod, doc)
    err = at(errs, "spec.containers[0].resources.requests", INVALID)
    assert str(err) == (
        'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1'
    )
    assert len(errs) == 1


def test_resource_names() -> None:
    doc = pod_doc()
    container(doc)["resources"] = {
        "limits": {"gpu": "1", "example.com/gpu": "500m"},
        "requests": {"example.com/gpu": "500m"},
    }
    errs = check(Pod, doc)
    at(
        errs,
        "spec.containers[0].resources.limits[gpu]",
        INVALID,
        "must be a standard resource for containers",
    )
    at(errs, "spec.containers[0].resources.limits[example.com/gpu]", INVALID, "must be an integer")


# ---------------------------------------------------------------------------------------------
# Pod spec: probes


def test_probe_timings() -> None:
    doc = pod_doc()
    container(doc)["livenessProbe"].update(
        {"periodSeconds": -1, "initialDelaySeconds": -5, "successThreshold": 2}
    )
    container(doc)["readinessProbe"]["timeoutSeconds"] = -3
    errs = check(Pod, doc)
    at(errs, "spec.containers[0].livenessProbe.periodSeconds", INVALID, NEGATIVE_MSG)
    at(errs, "spec.containers[0].livenessProbe.initialDelaySeconds", INVALID, NEGATIVE_MSG)
    at(errs, "spec.containers[0].livenessProbe.successThreshold", INVALID, "must be 1")
    at(errs, "spec.containers[0].readinessProbe.timeoutSeconds", INVALID)


def test_probe_zero_timings_are_defaulted_like_unset() -> None:
    doc = pod_doc()
    container(doc)["readinessProbe"].update({"timeoutSeconds": 0, "periodSeconds": 0, "failureThreshold": 0})
    assert check(Pod, doc) == []


def test_probe_needs_exactly_one_handler() -> None:
    doc = pod_doc()
    container(doc)["livenessProbe"] = {"periodSeconds": 5}
    container(doc)["readinessProbe"] = {"tcpSocket": {"port": 80}, "exec": {"command": ["true"]}}
    container(doc)["startupProbe"] = {"exec": {}}
    errs = check(Pod, doc)
    err = at(errs, "spec.containers[0].livenessProbe", REQUIRED)
    assert str(err) == "spec.containers[0].livenessProbe: Required value: must specify a handler type"
    at(
        errs,
        "spec.containers[0].readinessProbe.tcpSocket",
        FORBIDDEN,
        "may not specify more than 1 handler type",
    )
    at(errs, "spec.containers[0].startupProbe.exec.command", REQUIRED)


def test_probe_ports() -> None:
    doc = pod_doc()
    container(doc)["livenessProbe"] = {"httpGet": {"path": "/", "port": 0}}
    container(doc)["readinessProbe"] = {"tcpSocket": {"port": "metrics-port-long"}}
    errs = check(Pod, doc)
    at(errs, "spec.containers[0].livenessProbe.httpGet.port", INVALID, PORT_MSG)
    at(
        errs,
        "spec.containers[0].readinessProbe.tcpSocket.port",
        INVALID,
        "must be no more than 15 characters",
    )


# ---------------------------------------------------------------------------------------------
# Pod spec: pod-level fields


def test_restart_policy() -> None:
    doc = pod_doc()
    doc["spec"]["restartPolicy"] = "Sometimes"
    err = at(check(Pod, doc), "spec.restartPolicy", NOT_SUPPORTED)
    assert err.detail == 'supported values: "Always", "OnFailure", "Never"'


def test_dns_policy() -> None:
    doc = pod_doc()
    doc["spec"]["dnsPolicy"] = "Google"
    err = at(check(Pod, doc), "spec.dnsPolicy", NOT_SUPPORTED)
    assert err.detail == 'supported values: "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"'
    doc["spec"]["dnsPolicy"] = "None"
    at(check(Pod, doc), "spec.dnsConfig", REQUIRED, "must provide `dnsConfig` when `dnsPolicy` is None")
    doc["spec"]["dnsConfig"] = {"nameservers": ["1.1.1.1"]}
    assert check(Pod, doc) == []


def test_grace_period_and_active_deadline() -> None:
    doc = pod_doc()
    doc["spec"]["terminationGracePeriodSeconds"] = -1
    doc["spec"]["activeDeadlineSeconds"] = 0
    errs = check(Pod, doc)
    at(errs, "spec.terminationGracePeriodSeconds", INVALID, NEGATIVE_MSG)
    err = at(errs, "spec.activeDeadlineSeconds", INVALID)
    assert (
        str(err)
        == "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"
    )


def test_node_selector_labels() -> None:
    doc = pod_doc()
    doc["spec"]["nodeSelector"] = {"disk type": "ssd", "zone": "eu west"}
    errs = [e for e in check(Pod, doc) if e.field == "spec.nodeSelector"]
    assert sorted(str(e.value) for e in errs) == ["disk type", "eu west"]


def test_tolerations() -> None:
    doc = pod_doc()
    doc["spec"]["tolerations"] = [
        {"key": "a", "operator": "Maybe"},
        {"key": "b", "operator": "Exists", "effect": "Sometimes"},
        {"key": "c", "operator": "Exists", "value": "x"},
        {"operator": "Equal", "value": "x"},
        {"key": "d", "operator": "Equal", "value": "x", "effect": "NoSchedule", "tolerationSeconds": 10},
    ]
    errs = check(Pod, doc)
    err = at(errs, "spec.tolerations[0].operator", NOT_SUPPORTED)
    assert err.detail == 'supported values: "Equal", "Exists"'
    err = at(errs, "spec.tolerations[1].effect", NOT_SUPPORTED)
    assert err.detail == 'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'
    at(errs, "spec.tolerations[2].operator", INVALID, "value must be empty when `operator` is 'Exists'")
    at(
        errs,
        "spec.tolerations[3].operator",
        INVALID,
        'operator must be Exists when `key` is empty, which means "match all values and all keys"',
    )
    at(
        errs,
        "spec.tolerations[4].effect",
        INVALID,
        "effect must be 'NoExecute' when `tolerationSeconds` is set",
    )


def test_valid_affinity_and_spread() -> None:
    doc = pod_doc()
    doc["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                        ],
                        "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-9"]}],
                    }
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}
            ],
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app": "web"}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        },
    }
    doc["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
            "minDomains": 2,
        }
    ]
    assert check(Pod, doc) == []


def test_node_affinity_rules() -> None:
    doc = pod_doc()
    base = "spec.affinity.nodeAffinity"
    doc["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "zone", "operator": "Near", "values": ["a"]},
                            {"key": "cpus", "operator": "Gt", "values": ["2", "4"]},
                            {"key": "gpu", "operator": "Exists", "values": ["yes"]},
                        ],
                        "matchFields": [{"key": "metadata.labels", "operator": "In", "values": ["a", "b"]}],
                    }
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {}}],
        }
    }
    errs = check(Pod, doc)
    term = f"{base}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
    at(errs, f"{term}.matchExpressions[0].operator", INVALID, "not a valid selector operator")
    at(
        errs,
        f"{term}.matchExpressions[1].values",
        REQUIRED,
        "must be specified single value when `operator` is 'Lt' or 'Gt'",
    )
    at(
        errs,
        f"{term}.matchExpressions[2].values",
        FORBIDDEN,
        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
    )
    at(errs, f"{term}.matchFields[0].key", NOT_SUPPORTED, 'supported values: "metadata.name"')
    at(errs, f"{term}.matchFields[0].values", REQUIRED)
    at(
        errs,
        f"{base}.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
        INVALID,
        "must be in the range 1-100",
    )
    doc["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
    at(
        check(Pod, doc),
        f"{base}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
        REQUIRED,
        "must have at least one node selector term",
    )


def test_pod_affinity_terms() -> None:
    doc = deployment_doc()
    doc["spec"]["template"]["spec"]["affinity"] = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "namespaces": ["Data"]}
            ]
        }
    }
    errs = check(Deployment, doc)
    path = "spec.template.spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
    at(errs, f"{path}.topologyKey", REQUIRED, "can not be empty")
    at(errs, f"{path}.namespaces[0]", INVALID, LABEL_MSG)


def test_topology_spread_constraints() -> None:
    doc = pod_doc()
    doc["spec"]["topologySpreadConstraints"] = [
        {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "Sometimes"},
        {"maxSkew": 1, "topologyKey": "", "whenUnsatisfiable": "ScheduleAnyway", "minDomains": 2},
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Sometimes"},
    ]
    errs = check(Pod, doc)
    path = "spec.topologySpreadConstraints"
    at(errs, f"{path}[0].maxSkew", INVALID, "must be greater than zero")
    err = at(errs, f"{path}[0].whenUnsatisfiable", NOT_SUPPORTED)
    assert err.detail == 'supported values: "DoNotSchedule", "ScheduleAnyway"'
    at(errs, f"{path}[1].topologyKey", REQUIRED, "can not be empty")
    at(
        errs,
        f"{path}[1].minDomains",
        INVALID,
        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway",
    )
    assert str(at(errs, f"{path}[2]", DUPLICATE)) == f'{path}[2]: Duplicate value: "{{zone, Sometimes}}"'


# ---------------------------------------------------------------------------------------------
# Pod updates


def _stored_pod() -> Pod:
    pod: Pod = build(Pod, pod_doc())
    pod.metadata.uid = "uid-1"
    pod.spec.node_name = "node-1"
    return pod


def test_pod_update_may_change_images_and_add_tolerations() -> None:
    old = _stored_pod()
    new = old.copy_deep()
    new.spec.containers[0].image = "nginx:1.26"
    assert new.spec.init_containers is not None and new.spec.tolerations is not None
    new.spec.init_containers[0].image = "busybox:1.37"
    new.spec.tolerations.append(type(new.spec.tolerations[0])(key="extra", operator="Exists"))
    new.spec.active_deadline_seconds = 600
    new.metadata.labels = {"app": "web", "canary": "yes"}
    assert validate_update(new, old, namespaced=True) == []


def test_pod_update_may_not_change_other_fields() -> None:
    old = _stored_pod()
    new = old.copy_deep()
    new.spec.containers[0].command = ["nginx", "-g", "daemon off;"]
    err = at(validate_update(new, old, namespaced=True), "spec", FORBIDDEN)
    assert err.detail.startswith(UPDATE_FORBIDDEN_MSG + "\n")
    assert '"command"' in err.detail  # the diff shows what changed
    assert str(err).startswith(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
        "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
        "previously negative)"
    )
    new = old.copy_deep()
    new.spec.termination_grace_period_seconds = 60
    at(validate_update(new, old, namespaced=True), "spec", FORBIDDEN)


def test_pod_update_may_not_add_containers() -> None:
    old = _stored_pod()
    new = old.copy_deep()
    new.spec.containers.append(new.spec.containers[0].model_copy(update={"name": "sidecar"}))
    at(
        validate_update(new, old, namespaced=True),
        "spec.containers",
        FORBIDDEN,
        "pod updates may not add or remove containers",
    )


def test_pod_update_tolerations_only_added() -> None:
    old = _stored_pod()
    new = old.copy_deep()
    new.spec.tolerations = []
    at(
        validate_update(new, old, namespaced=True),
        "spec.tolerations",
        FORBIDDEN,
        "existing toleration can not be modified except its tolerationSeconds",
    )


def test_pod_update_active_deadline_only_lowered() -> None:
    old = _stored_pod()
    old.spec.active_deadline_seconds = 100
    new = old.copy_deep()
    new.spec.active_deadline_seconds = 200
    at(
        validate_update(new, old, namespaced=True),
        "spec.activeDeadlineSeconds",
        INVALID,
        "must be less than or equal to previous value",
    )
    new.spec.active_deadline_seconds = None
    at(
        validate_update(new, old, namespaced=True),
        "spec.activeDeadlineSeconds",
        INVALID,
        "must not update from a positive integer to nil value",
    )
    new.spec.active_deadline_seconds = 50
    assert validate_update(new, old, namespaced=True) == []


def test_pod_node_name_set_once() -> None:
    old = _stored_pod()
    old.spec.node_name = None
    new = old.copy_deep()
    new.spec.node_name = "node-1"  # binding
    assert validate_update(new, old, namespaced=True) == []
    newer = new.copy_deep()
    newer.spec.node_name = "node-2"
    errs = validate_update(newer, new, namespaced=True)
    assert [str(e) for e in errs] == ['spec.nodeName: Invalid value: "node-2": field is immutable']


# ---------------------------------------------------------------------------------------------
# ReplicaSets and Deployments


@pytest.mark.parametrize(("model", "make"), [(Deployment, deployment_doc), (ReplicaSet, replicaset_doc)])
def test_selector_required_and_non_empty(model: type[KubeObject], make: Any) -> None:
    doc = make()
    del doc["spec"]["selector"]
    assert str(at(check(model, doc), "spec.selector", REQUIRED)) == "spec.selector: Required value"
    doc["spec"]["selector"] = {}
    at(check(model, doc), "spec.selector", INVALID, "empty selector is invalid for deployment")


@pytest.mark.parametrize(("model", "make"), [(Deployment, deployment_doc), (ReplicaSet, replicaset_doc)])
def test_selector_must_match_template_labels(model: type[KubeObject], make: Any) -> None:
    doc = make()
    doc["spec"]["template"]["metadata"]["labels"] = {"app": "api"}
    err = at(check(model, doc), "spec.template.metadata.labels", INVALID)
    assert str(err) == (
        'spec.template.metadata.labels: Invalid value: {"app":"api"}: `selector` does not match template `labels`'
    )


def test_selector_expressions_are_validated() -> None:
    doc = deployment_doc()
    doc["spec"]["selector"] = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "Near", "values": ["front"]},
            {"key": "x", "operator": "In"},
        ],
    }
    errs = check(Deployment, doc)
    at(errs, "spec.selector.matchExpressions[0].operator", INVALID, "not a valid selector operator")
    at(
        errs,
        "spec.selector.matchExpressions[1].values",
        REQUIRED,
        "must be specified when `operator` is 'In' or 'NotIn'",
    )


@pytest.mark.parametrize(("model", "make"), [(Deployment, deployment_doc), (ReplicaSet, replicaset_doc)])
def test_replica_counts_not_negative(model: type[KubeObject], make: Any) -> None:
    doc = make()
    doc["spec"]["replicas"] = -1
    doc["spec"]["minReadySeconds"] = -1
    errs = check(model, doc)
    assert str(at(errs, "spec.replicas", INVALID)) == f"spec.replicas: Invalid value: -1: {NEGATIVE_MSG}"
    at(errs, "spec.minReadySeconds", INVALID, NEGATIVE_MSG)


@pytest.mark.parametrize(("model", "make"), [(Deployment, deployment_doc), (ReplicaSet, replicaset_doc)])
def test_template_restart_policy_always(model: type[KubeObject], make: Any) -> None:
    doc = make()
    doc["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    err = at(check(model, doc), "spec.template.spec.restartPolicy", NOT_SUPPORTED)
    assert err.detail == 'supported values: "Always"'


def test_template_labels_and_containers_validated() -> None:
    doc = deployment_doc()
    doc["spec"]["template"]["metadata"]["labels"]["bad key"] = "x"
    doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 99999
    errs = check(Deployment, doc)
    at(errs, "spec.template.metadata.labels", INVALID)
    at(errs, "spec.template.spec.containers[0].ports[0].containerPort", INVALID, PORT_MSG)


def test_deployment_history_and_deadlines() -> None:
    doc = deployment_doc()
    doc["spec"]["revisionHistoryLimit"] = -1
    doc["spec"]["minReadySeconds"] = 30
    doc["spec"]["progressDeadlineSeconds"] = 30
    errs = check(Deployment, doc)
    at(errs, "spec.revisionHistoryLimit", INVALID, NEGATIVE_MSG)
    at(errs, "spec.progressDeadlineSeconds", INVALID, "must be greater than minReadySeconds")


def test_deployment_strategy_type() -> None:
    doc = deployment_doc()
    doc["spec"]["strategy"] = {"type": "BlueGreen"}
    err = at(check(Deployment, doc), "spec.strategy.type", NOT_SUPPORTED)
    assert err.detail == 'supported values: "Recreate", "RollingUpdate"'
    doc["spec"]["strategy"] = {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}
    err = at(check(Deployment, doc), "spec.strategy.rollingUpdate", FORBIDDEN)
    assert err.detail == "may not be specified when strategy `type` is 'Recreate'"
    doc["spec"]["strategy"] = {"type": "Recreate"}
    assert check(Deployment, doc) == []


def test_rolling_update_parameters() -> None:
    doc = deployment_doc()
    doc["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": "ten%", "maxUnavailable": -1}
    errs = check(Deployment, doc)
    err = at(errs, "spec.strategy.rollingUpdate.maxSurge", INVALID)
    assert err.detail == (
        "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
        "regex used for validation is '[0-9]+%')"
    )
    at(errs, "spec.strategy.rollingUpdate.maxUnavailable", INVALID, NEGATIVE_MSG)
    doc["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 0, "maxUnavailable": "150%"}
    at(
        check(Deployment, doc),
        "spec.strategy.rollingUpdate.maxUnavailable",
        INVALID,
        "must not be greater than 100%",
    )
    doc["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": "0%", "maxUnavailable": 0}
    err = at(check(Deployment, doc), "spec.strategy.rollingUpdate.maxUnavailable", INVALID)
    assert (
        str(err)
        == "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
    )


@pytest.mark.parametrize(("model", "make"), [(Deployment, deployment_doc), (ReplicaSet, replicaset_doc)])
def test_selector_immutable_on_update(model: type[KubeObject], make: Any) -> None:
    old = build(model, make())
    doc = make()
    doc["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "front"}}
    new = build(model, doc)
    errs = validate_update(new, old, namespaced=True)
    assert [(e.field, e.detail) for e in errs] == [("spec.selector", "field is immutable")]


# ---------------------------------------------------------------------------------------------
# Services


def test_service_type() -> None:
    doc = service_doc()
    doc["spec"]["type"] = "Internal"
    err = at(check(Service, doc), "spec.type", NOT_SUPPORTED)
    assert err.detail == 'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'


def test_service_ports_required_unless_headless_or_external_name() -> None:
    doc = service_doc()
    del doc["spec"]["ports"]
    assert str(at(check(Service, doc), "spec.ports", REQUIRED)) == "spec.ports: Required value"
    doc["spec"]["clusterIP"] = "None"
    assert check(Service, doc) == []


def test_service_port_numbers_and_target_ports() -> None:
    doc = service_doc()
    doc["spec"]["ports"] = [
        {"name": "a", "port": 0, "targetPort": 8080},
        {"name": "b", "port": 81, "targetPort": 70000},
        {"name": "c", "port": 82, "targetPort": "Web_Port"},
        {"name": "d", "port": 83, "protocol": "ICMP"},
    ]
    errs = check(Service, doc)
    assert str(at(errs, "spec.ports[0].port", INVALID)) == f"spec.ports[0].port: Invalid value: 0: {PORT_MSG}"
    at(errs, "spec.ports[1].targetPort", INVALID, PORT_MSG)
    at(
        errs,
        "spec.ports[2].targetPort",
        INVALID,
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
    )
    at(errs, "spec.ports[3].protocol", NOT_SUPPORTED)


def test_service_port_names() -> None:
    doc = service_doc()
    doc["spec"]["ports"] = [{"port": 80}, {"port": 81}]
    errs = check(Service, doc)
    at(errs, "spec.ports[0].name", REQUIRED)
    at(errs, "spec.ports[1].name", REQUIRED)
    doc["spec"]["ports"] = [
        {"name": "web", "port": 80},
        {"name": "web", "port": 81},
        {"name": "Admin", "port": 82},
    ]
    errs = check(Service, doc)
    at(errs, "spec.ports[1].name", DUPLICATE)
    at(errs, "spec.ports[2].name", INVALID, LABEL_MSG)
    doc["spec"]["ports"] = [{"port": 80}]  # a single port may go unnamed
    assert check(Service, doc) == []


def test_service_node_ports() -> None:
    doc = service_doc()
    doc["spec"]["ports"] = [{"port": 80, "nodePort": 30080}]
    err = at(check(Service, doc), "spec.ports[0].nodePort", FORBIDDEN)
    assert err.detail == "may not be used when `type` is 'ClusterIP'"
    doc["spec"]["type"] = "NodePort"
    doc["spec"]["ports"] = [
        {"name": "a", "port": 80, "nodePort": 70000},
        {"name": "b", "port": 81, "nodePort": 30081},
        {"name": "c", "port": 82, "nodePort": 30081},
    ]
    errs = check(Service, doc)
    at(errs, "spec.ports[0].nodePort", INVALID, PORT_MSG)
    at(errs, "spec.ports[2].nodePort", DUPLICATE)


def test_service_cluster_ip() -> None:
    doc = service_doc()
    doc["spec"]["clusterIP"] = "10.96.0.300"
    err = at(check(Service, doc), "spec.clusterIPs[0]", INVALID)
    assert err.detail == "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    doc["spec"]["clusterIP"] = "10.96.0.10"
    doc["spec"]["clusterIPs"] = ["10.96.0.10", "fd00::10"]
    assert check(Service, doc) == []
    doc["spec"]["clusterIPs"] = ["10.96.0.11"]
    at(check(Service, doc), "spec.clusterIPs", INVALID, "first value must match `clusterIP`")
    doc["spec"]["clusterIP"] = ""
    doc["spec"]["clusterIPs"] = ["10.96.0.10", "None"]
    at(check(Service, doc), "spec.clusterIPs[1]", INVALID, "'None' must be the first and only value")


def test_service_session_affinity() -> None:
    doc = service_doc()
    doc["spec"]["sessionAffinity"] = "Cookie"
    err = at(check(Service, doc), "spec.sessionAffinity", NOT_SUPPORTED)
    assert err.detail == 'supported values: "ClientIP", "None"'
    doc["spec"]["sessionAffinity"] = "ClientIP"
    doc["spec"]["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 0}}
    at(check(Service, doc), "spec.sessionAffinityConfig.clientIP.timeoutSeconds", INVALID)


def test_external_name_services() -> None:
    doc = {"metadata": {"name": "ext", "namespace": "default"}, "spec": {"type": "ExternalName"}}
    at(check(Service, doc), "spec.externalName", REQUIRED)
    doc["spec"]["externalName"] = "Not A Host"
    at(check(Service, doc), "spec.externalName", INVALID, SUBDOMAIN_MSG)
    doc["spec"] |= {"externalName": "db.example.com.", "clusterIP": "10.96.0.5"}
    at(check(Service, doc), "spec.clusterIPs", FORBIDDEN, "may not be set for ExternalName services")


def test_service_selector_labels() -> None:
    doc = service_doc()
    doc["spec"]["selector"] = {"app": "web app"}
    at(check(Service, doc), "spec.selector", INVALID, LABEL_VALUE_MSG)


def _stored_service(ip: str = "10.96.0.10") -> Service:
    doc = service_doc()
    doc["spec"] |= {"clusterIP": ip, "clusterIPs": [ip]}
    svc: Service = build(Service, doc)
    return svc


def test_service_cluster_ip_immutable_on_update() -> None:
    old = _stored_service()
    new = old.copy_deep()
    new.spec.cluster_ip = "10.96.0.11"
    new.spec.cluster_ips = ["10.96.0.11"]
    errs = validate_update(new, old, namespaced=True)
    assert [str(e) for e in errs] == [
        'spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set'
    ]
    new.spec.cluster_ip = None
    new.spec.cluster_ips = None
    at(
        validate_update(new, old, namespaced=True),
        "spec.clusterIPs[0]",
        INVALID,
        "primary clusterIP can not be unset",
    )
    new.spec.cluster_ip = "10.96.0.10"
    new.spec.cluster_ips = ["10.96.0.10", "fd00::10"]  # adding a secondary family is an upgrade
    assert validate_update(new, old, namespaced=True) == []


def test_service_to_external_name_may_drop_cluster_ip() -> None:
    old = _stored_service()
    new = old.copy_deep()
    new.spec.type = "ExternalName"
    new.spec.external_name = "db.example.com"
    new.spec.cluster_ip = None
    new.spec.cluster_ips = None
    new.spec.ports = None
    assert validate_update(new, old, namespaced=True) == []


# ---------------------------------------------------------------------------------------------
# Namespaces, Nodes, Leases, ServiceAccounts


def test_namespace_spec_finalizers() -> None:
    errs = check(
        Namespace,
        {"metadata": {"name": "team-a"}, "spec": {"finalizers": ["kubernetes", "cleanup"]}},
        namespaced=False,
    )
    assert [(e.field, e.value) for e in errs] == [("spec.finalizers", "cleanup")]


def test_node_taints() -> None:
    doc = node_doc()
    doc["spec"]["taints"] = [
        {"key": "a", "effect": "Sometimes"},
        {"key": "", "effect": "NoSchedule"},
        {"key": "b", "effect": "NoExecute"},
        {"key": "b", "value": "other", "effect": "NoExecute"},
    ]
    errs = check(Node, doc, namespaced=False)
    err = at(errs, "spec.taints[0].effect", NOT_SUPPORTED)
    assert err.detail == 'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'
    at(errs, "spec.taints[1].key", INVALID, "name part must be non-empty")
    at(errs, "spec.taints[3]", DUPLICATE, "taints must be unique by key and effect pair")


def test_node_pod_cidr() -> None:
    doc = node_doc()
    doc["spec"] |= {"podCIDR": "10.244.1.0/33", "podCIDRs": ["10.244.1.0/33"]}
    at(check(Node, doc, namespaced=False), "spec.podCIDR", INVALID)
    old = build(Node, node_doc())
    new = old.copy_deep()
    new.spec.pod_cidr = "10.244.2.0/24"
    new.spec.pod_cidrs = ["10.244.2.0/24"]
    at(validate_update(new, old, namespaced=False), "spec.podCIDRs", FORBIDDEN)


def test_lease_spec() -> None:
    doc = {
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1},
    }
    errs = check(Lease, doc)
    assert str(at(errs, "spec.leaseDurationSeconds", INVALID)) == (
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    )
    at(errs, "spec.leaseTransitions", INVALID, NEGATIVE_MSG)


def test_service_account_name() -> None:
    errs = check(ServiceAccount, {"metadata": {"name": "Build_Bot", "namespace": "ci"}})
    assert at(errs, "metadata.name", INVALID).detail == SUBDOMAIN_MSG


# ---------------------------------------------------------------------------------------------
# ConfigMaps and Secrets


def test_config_map_keys() -> None:
    doc = configmap_doc()
    doc["data"] = {"bad key": "x", "..": "y", "..hidden": "z", "LOG_LEVEL": "a"}
    doc["binaryData"] = {"LOG_LEVEL": "YQ=="}
    errs = check(ConfigMap, doc)
    err = at(errs, "data[bad key]", INVALID)
    assert str(err) == f'data[bad key]: Invalid value: "bad key": {CONFIG_KEY_MSG}'
    at(errs, "data[..]", INVALID, "must not be '..'")
    at(errs, "data[..hidden]", INVALID, "must not start with '..'")
    at(errs, "data[LOG_LEVEL]", INVALID, "duplicate of key present in binaryData")


def test_config_map_size_limit() -> None:
    doc = configmap_doc()
    doc["data"] = {"big": "x" * (1024 * 1024)}
    err = at(check(ConfigMap, doc), "", TOO_LONG)
    assert err.detail == "may not be more than 1048576 bytes"


def test_immutable_config_map_data_cannot_change() -> None:
    old = build(ConfigMap, configmap_doc() | {"immutable": True})
    new = old.copy_deep()
    new.data = {"other": "x"}
    new.immutable = False
    errs = validate_update(new, old, namespaced=True)
    at(errs, "data", FORBIDDEN, "field is immutable when `immutable` is set")
    at(errs, "immutable", FORBIDDEN, "field is immutable when `immutable` is set")


def test_secret_keys_and_encoding() -> None:
    doc = secret_doc()
    doc["data"]["bad key"] = "eA=="
    doc["data"]["tls.key"] = "not base64!"
    errs = check(Secret, doc)
    at(errs, "data[bad key]", INVALID, CONFIG_KEY_MSG)
    at(errs, "data[tls.key]", INVALID, "must be base64-encoded")


def test_typed_secret_required_keys() -> None:
    doc = secret_doc()
    del doc["data"]["tls.key"]
    assert str(at(check(Secret, doc), "data[tls.key]", REQUIRED)) == "data[tls.key]: Required value"


def test_secret_type_immutable() -> None:
    old = build(Secret, secret_doc())
    new = old.copy_deep()
    new.type = "Opaque"
    errs = validate_update(new, old, namespaced=True)
    assert [str(e) for e in errs] == ['type: Invalid value: "Opaque": field is immutable']


# ---------------------------------------------------------------------------------------------
# Events


def test_event_involved_object_required() -> None:
    doc = event_doc()
    doc["involvedObject"] = {}
    at(check(Event, doc), "involvedObject", REQUIRED)


def test_event_namespace_must_match_involved_object() -> None:
    doc = event_doc()
    doc["involvedObject"]["namespace"] = "kube-system"
    err = at(check(Event, doc), "involvedObject.namespace", INVALID)
    assert (
        str(err) == 'involvedObject.namespace: Invalid value: "kube-system": does not match event.namespace'
    )
    # Events about cluster-scoped objects live in "default".
    doc = event_doc()
    doc["involvedObject"] = {"kind": "Node", "name": "node-1"}
    assert check(Event, doc) == []
    doc["metadata"]["namespace"] = "team-a"
    at(check(Event, doc), "involvedObject.namespace", INVALID)


# ---------------------------------------------------------------------------------------------
# Endpoints and EndpointSlices


def test_endpoints_addresses() -> None:
    doc = endpoints_doc()
    doc["subsets"][0]["addresses"] = [
        {"ip": "10.244.1.300"},
        {"ip": "127.0.0.1"},
        {"ip": "10.1.1.1", "hostname": "Web"},
    ]
    errs = check(Endpoints, doc)
    at(
        errs,
        "subsets[0].addresses[0].ip",
        INVALID,
        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
    )
    at(errs, "subsets[0].addresses[1].ip", INVALID, "may not be in the loopback range (127.0.0.0/8, ::1/128)")
    at(errs, "subsets[0].addresses[2].hostname", INVALID, LABEL_MSG)


def test_endpoints_subsets_and_ports() -> None:
    doc = endpoints_doc()
    doc["subsets"] = [{"ports": [{"port": 80}, {"port": 0, "name": "b", "protocol": "IP"}]}]
    errs = check(Endpoints, doc)
    at(errs, "subsets[0]", REQUIRED, "must specify `addresses` or `notReadyAddresses`")
    at(errs, "subsets[0].ports[0].name", REQUIRED)
    at(errs, "subsets[0].ports[1].port", INVALID, PORT_MSG)
    at(errs, "subsets[0].ports[1].protocol", NOT_SUPPORTED)


def test_endpoint_slice_address_type() -> None:
    doc = endpointslice_doc()
    doc["addressType"] = "IPv5"
    err = at(check(EndpointSlice, doc), "addressType", NOT_SUPPORTED)
    assert err.detail == 'supported values: "FQDN", "IPv4", "IPv6"'


def test_endpoint_slice_endpoints() -> None:
    doc = endpointslice_doc()
    doc["endpoints"] = [
        {"addresses": []},
        {"addresses": ["fd00::1"]},
        {"addresses": ["10.0.0.1"], "hostname": "A"},
    ]
    doc["ports"] = [{"name": "http", "port": 80}, {"name": "http", "port": 81, "protocol": "TCP"}]
    errs = check(EndpointSlice, doc)
    at(errs, "endpoints[0].addresses", REQUIRED, "must contain at least 1 address")
    at(errs, "endpoints[1].addresses[0]", INVALID, "must be a valid IPv4 address")
    at(errs, "endpoints[2].hostname", INVALID, LABEL_MSG)
    at(errs, "ports[1].name", DUPLICATE)
    doc = endpointslice_doc()
    doc["endpoints"] = [{"addresses": [f"10.0.{i // 250}.{i % 250 + 1}"]} for i in range(1001)]
    at(check(EndpointSlice, doc), "endpoints", TOO_MANY)


def test_endpoint_slice_address_type_immutable() -> None:
    old = build(EndpointSlice, endpointslice_doc())
    new = old.copy_deep()
    new.address_type = "IPv6"
    new.endpoints[0].addresses = ["fd00::5"]
    errs = validate_update(new, old, namespaced=True)
    assert [str(e) for e in errs] == ['addressType: Invalid value: "IPv6": field is immutable']


def test_name_helpers_are_reusable() -> None:
    assert is_dns1123_subdomain("example.com") == []
    assert is_dns1123_subdomain("Example.com") == [SUBDOMAIN_MSG]
