"""Label and field selectors: Kubernetes' grammar and error messages, matching, canonical strings,
the meta/v1 LabelSelector type, and the fields each kind can be selected by."""

from __future__ import annotations

from typing import Any

import pytest

from apimachinery.api import Event, Namespace, Node, Pod, ReplicaSet, Secret
from apimachinery.meta import LabelSelector as LabelSelectorModel
from apimachinery.meta import LabelSelectorRequirement
from apimachinery.selectors import (
    FieldSelector,
    LabelSelector,
    Requirement,
    SelectorError,
    check_supported,
    object_fields,
    parse_field_selector,
    parse_label_selector,
    selector_from_model,
    selector_from_set,
    selector_to_string,
)

# ---------------------------------------------------------------------------------------------
# Label selector grammar


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("app=web", "app=web"),
        ("app==web", "app==web"),
        ("app!=web", "app!=web"),
        ("tier in (b,a)", "tier in (a,b)"),
        ("tier notin (x)", "tier notin (x)"),
        ("canary", "canary"),
        ("!canary", "!canary"),
        ("n>1", "n>1"),
        ("n<10", "n<10"),
        ("  app = web ,  tier  in ( a , b ) , ! canary  ", "app=web,!canary,tier in (a,b)"),
        ("z=1,a=2,m", "a=2,m,z=1"),
        ("app=", "app="),
        ("a in (,b)", "a in (,b)"),
        ("a in (b,)", "a in (,b)"),
        ("a in ()", "a in ()"),
        ("a in (b,b,a)", "a in (a,b)"),
        ("a=in,b in (notin,in)", "a=in,b in (in,notin)"),
        ("example.com/app=web", "example.com/app=web"),
        ("n>05", "n>05"),
    ],
)
def test_parse_and_canonical_string(text: str, canonical: str) -> None:
    selector = parse_label_selector(text)
    assert str(selector) == canonical
    # the canonical form parses back to the same selector
    assert parse_label_selector(canonical) == selector


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(", "found '(', expected: !, identifier, or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("a=b,,c", "found ',', expected: identifier after ','"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a in (b,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("!=", "found '!=', expected: !, identifier, or 'end of string'"),
        ("!(", "unable to parse requirement: found '(', expected: identifier"),
        (
            "a>b",
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "-a=b",
            'unable to parse requirement: key: Invalid value: "-a": name part must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
            "or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (
            "a=b_",
            'unable to parse requirement: values[0]: Invalid value: "b_": a valid label must be an empty string or consist '
            "of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as e:
        parse_label_selector(text)
    assert str(e.value) == message


def test_key_and_value_validation() -> None:
    """Keys and values follow the label syntax (the rules live in apimachinery.validation.names)."""
    assert str(parse_label_selector("app.kubernetes.io/name=web")) == "app.kubernetes.io/name=web"
    with pytest.raises(SelectorError, match="prefix part a lowercase RFC 1123 subdomain"):
        parse_label_selector("Example.com/x=y")
    with pytest.raises(SelectorError, match="prefix part must be non-empty"):
        parse_label_selector("/x")
    with pytest.raises(SelectorError, match="a qualified name must consist of"):
        parse_label_selector("a/b/c")
    with pytest.raises(SelectorError, match="name part must be non-empty"):
        Requirement("a/", "exists")
    with pytest.raises(SelectorError, match="Invalid value"):
        Requirement("a", "=", ("v\n",))
    with pytest.raises(SelectorError, match="name part must be no more than 63 characters"):
        parse_label_selector("a" * 64)
    with pytest.raises(SelectorError, match="must be no more than 63 characters"):
        parse_label_selector("a=" + "b" * 64)
    # gt/lt values are label values too, so negative numbers cannot be written
    with pytest.raises(SelectorError, match='values\\[0\\]: Invalid value: "-5": a valid label must be'):
        parse_label_selector("n>-5")


# ---------------------------------------------------------------------------------------------
# Matching


LABELS = {"app": "web", "tier": "fe", "n": "7", "text": "seven"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("missing=", False),  # equality needs the label, even for the empty value
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),  # != also matches objects without the label
        ("tier in (fe,be)", True),
        ("tier in (be)", False),
        ("missing in (x)", False),
        ("tier notin (be)", True),
        ("tier notin (fe,be)", False),
        ("missing notin (x)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("n>6", True),
        ("n>7", False),
        ("n<8", True),
        ("n<7", False),
        ("text>1", False),  # a non-integer label never matches gt/lt
        ("missing<100", False),
        ("app=web,tier=fe,!canary,n>1", True),
        ("app=web,tier=be", False),
    ],
)
def test_matching(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


def test_empty_and_nothing() -> None:
    everything = parse_label_selector("")
    assert everything.empty and everything.matches(None) and everything.matches({"a": "b"})
    assert LabelSelector.everything() == everything
    nothing = LabelSelector.match_nothing()
    assert not nothing.empty
    assert not nothing.matches({}) and not nothing.matches(LABELS)
    assert not parse_label_selector("app").empty
    assert parse_label_selector("!app").matches(None)


def test_requirement_validation() -> None:
    r = Requirement("tier", "in", ("b", "a", "b"))
    assert r.values == ("a", "b")
    assert str(r) == "tier in (a,b)"
    with pytest.raises(SelectorError, match="values set can't be empty"):
        Requirement("a", "in", ())
    with pytest.raises(SelectorError, match="exact-match compatibility requires one single value"):
        Requirement("a", "=", ("x", "y"))
    with pytest.raises(SelectorError, match="values set must be empty for exists and does not exist"):
        Requirement("a", "exists", ("x",))
    with pytest.raises(SelectorError, match="exactly one value is required"):
        Requirement("a", "gt", ())
    with pytest.raises(SelectorError, match='operator: Unsupported value: "~"'):
        Requirement("a", "~", ())
    with pytest.raises(SelectorError) as e:
        Requirement("-bad", "=", ("-worse",))
    assert str(e.value).startswith('[key: Invalid value: "-bad"')  # every problem, aggregated
    assert LabelSelector((Requirement("b", "exists"), Requirement("a", "!"))).requirements[0].key == "a"


# ---------------------------------------------------------------------------------------------
# meta/v1 LabelSelector


def test_selector_from_model() -> None:
    model = LabelSelectorModel(
        match_labels={"app": "web", "tier": "fe"},
        match_expressions=[
            LabelSelectorRequirement(key="env", operator="In", values=["prod", "staging"]),
            LabelSelectorRequirement(key="canary", operator="DoesNotExist"),
            LabelSelectorRequirement(key="zone", operator="NotIn", values=["b"]),
            LabelSelectorRequirement(key="gpu", operator="Exists"),
        ],
    )
    selector = selector_from_model(model)
    assert str(selector) == "app=web,!canary,env in (prod,staging),gpu,tier=fe,zone notin (b)"
    assert selector.matches({"app": "web", "tier": "fe", "env": "prod", "gpu": "1"})
    assert not selector.matches({"app": "web", "tier": "fe", "env": "prod", "gpu": "1", "canary": "y"})
    assert not selector.matches({"app": "web", "tier": "fe", "env": "dev", "gpu": "1"})
    # the JSON form gives the same selector
    assert selector_from_model(model.to_dict()) == selector


def test_nil_selects_nothing_and_empty_selects_everything() -> None:
    assert not selector_from_model(None).matches({"app": "web"})
    assert selector_from_model({}).matches({"app": "web"})
    assert selector_from_model(LabelSelectorModel()).empty
    assert selector_from_model({"matchLabels": {}, "matchExpressions": []}).empty


def test_selector_from_model_errors() -> None:
    with pytest.raises(SelectorError) as e:
        selector_from_model({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})
    assert str(e.value) == '"Gt" is not a valid label selector operator'
    with pytest.raises(SelectorError, match="values set can't be empty"):
        selector_from_model({"matchExpressions": [{"key": "a", "operator": "In"}]})
    with pytest.raises(SelectorError, match="name part"):
        selector_from_model({"matchLabels": {"bad key": "x"}})


def test_selector_to_string_for_scale() -> None:
    assert selector_to_string({"matchLabels": {"tier": "fe", "app": "web"}}) == "app=web,tier=fe"
    assert selector_to_string(None) == ""
    assert selector_to_string(parse_label_selector("b,a=1")) == "a=1,b"
    assert str(selector_from_set({"b": "2", "a": "1"})) == "a=1,b=2"
    assert selector_from_set(None).empty


# ---------------------------------------------------------------------------------------------
# Field selectors


def test_field_selector_parse_and_match() -> None:
    sel = parse_field_selector("spec.nodeName=node-1,status.phase!=Failed")
    assert sel.keys() == {"spec.nodeName", "status.phase"}
    assert sel.matches({"spec.nodeName": "node-1", "status.phase": "Running"})
    assert not sel.matches({"spec.nodeName": "node-1", "status.phase": "Failed"})
    assert not sel.matches({"spec.nodeName": "node-2", "status.phase": "Running"})
    assert sel.requires_exact_match("spec.nodeName") == "node-1"
    assert sel.requires_exact_match("status.phase") is None
    assert str(sel) == "spec.nodeName=node-1,status.phase!=Failed"
    double = parse_field_selector("metadata.name==web")
    assert double.matches({"metadata.name": "web"}) and not double.matches({"metadata.name": "db"})
    # a missing field is the empty string
    assert parse_field_selector("spec.nodeName=").matches({})
    assert parse_field_selector("spec.nodeName!=").matches({"spec.nodeName": "n"})


def test_field_selector_empty_and_escapes() -> None:
    assert parse_field_selector("").empty and parse_field_selector("").matches({"a": "b"})
    assert parse_field_selector(",,").empty
    sel = parse_field_selector(r"metadata.name=a\,b\=c\\d\!e,x=y")
    assert sel.matches({"metadata.name": "a,b=c\\d!e", "x": "y"})
    assert str(sel) == r"metadata.name=a\,b\=c\\d!e,x=y"
    assert parse_field_selector(str(sel)) == sel


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b=c", "invalid field selector: unescaped character in value: ="),
        (r"a=b\x", r"invalid field selector: invalid escape sequence: \x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as e:
        parse_field_selector(text)
    assert str(e.value) == message


def test_pod_fields_from_real_object() -> None:
    pod = Pod.model_validate(
        {
            "metadata": {"name": "web-1", "namespace": "prod"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}], "hostNetwork": True},
            "status": {"phase": "Running", "podIP": "10.0.0.5"},
        }
    ).to_dict()
    assert object_fields("Pod", pod) == {
        "metadata.name": "web-1",
        "metadata.namespace": "prod",
        "spec.nodeName": "n1",
        "spec.restartPolicy": "",
        "spec.schedulerName": "",
        "spec.serviceAccountName": "",
        "spec.hostNetwork": "true",
        "status.phase": "Running",
        "status.podIP": "10.0.0.5",
        "status.nominatedNodeName": "",
    }
    bare = object_fields("Pod", {"metadata": {"name": "x"}})
    assert bare["spec.hostNetwork"] == "false" and bare["metadata.namespace"] == ""
    assert parse_field_selector("spec.nodeName=n1,status.phase=Running").matches(object_fields("Pod", pod))
    assert parse_field_selector("spec.nodeName=").matches(bare)  # unscheduled pods


def test_event_fields() -> None:
    event = Event.model_validate(
        {
            "metadata": {"name": "web.1", "namespace": "default"},
            "involvedObject": {
                "kind": "Pod",
                "namespace": "default",
                "name": "web",
                "uid": "u1",
                "apiVersion": "v1",
            },
            "reason": "Scheduled",
            "source": {"component": "default-scheduler"},
            "type": "Normal",
            "reportingComponent": "default-scheduler",
        }
    ).to_dict()
    fields = object_fields("Event", event)
    assert fields["involvedObject.kind"] == "Pod"
    assert fields["involvedObject.name"] == "web"
    assert fields["involvedObject.uid"] == "u1"
    assert fields["involvedObject.apiVersion"] == "v1"
    assert fields["involvedObject.resourceVersion"] == ""
    assert fields["involvedObject.fieldPath"] == ""
    assert fields["reason"] == "Scheduled"
    assert fields["source"] == "default-scheduler"
    assert fields["reportingComponent"] == "default-scheduler"
    assert fields["type"] == "Normal"
    # what kubectl describe pod asks for
    describe = parse_field_selector(
        "involvedObject.name=web,involvedObject.namespace=default,involvedObject.uid=u1"
    )
    check_supported("Event", describe)
    assert describe.matches(fields)


def test_other_kinds() -> None:
    secret = Secret.model_validate({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"}).to_dict()
    assert object_fields("Secret", secret)["type"] == "kubernetes.io/tls"
    node = Node.model_validate({"metadata": {"name": "n"}, "spec": {"unschedulable": True}}).to_dict()
    assert object_fields("Node", node)["spec.unschedulable"] == "true"
    assert object_fields("Node", {"metadata": {"name": "n"}})["spec.unschedulable"] == "false"
    ns = Namespace.model_validate({"metadata": {"name": "x"}, "status": {"phase": "Terminating"}}).to_dict()
    assert object_fields("Namespace", ns) == {
        "metadata.name": "x",
        "metadata.namespace": "",
        "status.phase": "Terminating",
    }
    rs = ReplicaSet.model_validate({"metadata": {"name": "r"}, "status": {"replicas": 3}}).to_dict()
    assert object_fields("ReplicaSet", rs)["status.replicas"] == "3"
    assert object_fields("ReplicaSet", {"metadata": {"name": "r"}})["status.replicas"] == "0"
    assert object_fields("ConfigMap", {"metadata": {"name": "c", "namespace": "d"}}) == {
        "metadata.name": "c",
        "metadata.namespace": "d",
    }


@pytest.mark.parametrize(
    ("kind", "text", "bad"),
    [
        ("Pod", "spec.nodeName=x,foo=bar", "foo"),
        ("ConfigMap", "status.phase=Running", "status.phase"),
        ("Secret", "spec.nodeName=x", "spec.nodeName"),
        ("Event", "involvedObject.foo=x", "involvedObject.foo"),
    ],
)
def test_check_supported(kind: str, text: str, bad: str) -> None:
    with pytest.raises(SelectorError) as e:
        check_supported(kind, parse_field_selector(text))
    assert str(e.value) == f"field label not supported: {bad}"


def test_check_supported_accepts_every_listed_field() -> None:
    cases: dict[str, Any] = {
        "Pod": [
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Secret": ["type"],
        "Node": ["spec.unschedulable"],
        "Namespace": ["status.phase"],
        "ReplicaSet": ["status.replicas"],
        "ConfigMap": [],
    }
    for kind, fields in cases.items():
        for field in ["metadata.name", "metadata.namespace", *fields]:
            check_supported(kind, FieldSelector(parse_field_selector(f"{field}=x").requirements))
