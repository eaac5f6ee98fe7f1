"""kubectl-lite without a server: manifest reading, argument parsing, printing and error wording."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from apimachinery.errors import ApiError, FieldError, invalid, not_found
from apimachinery.scheme import default_scheme
from kubectl_lite.apply import LAST_APPLIED, last_applied_value, with_last_applied
from kubectl_lite.delete import parse_duration
from kubectl_lite.describe import Page, qos_class, smart_label
from kubectl_lite.errors import format_api_error, format_exception, with_context
from kubectl_lite.main import build_parser
from kubectl_lite.printers import TablePrinter, human_duration, render_table, tabwrite, to_yaml
from kubectl_lite.resources import CliError, parse_targets, read_manifests

SCHEME = default_scheme()

CM_YAML = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
# only a comment: an empty document is skipped
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b}
"""


def _names(manifests: list) -> list[str]:  # type: ignore[type-arg]
    return [m.obj["metadata"]["name"] for m in manifests]


def test_multi_document_yaml_json_and_lists(tmp_path: Path) -> None:
    (tmp_path / "cms.yaml").write_text(CM_YAML)
    (tmp_path / "one.json").write_text(json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}))
    (tmp_path / "list.yml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: l1}}\n"
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: l2}}\n"
    )
    (tmp_path / "notes.txt").write_text("not a manifest")
    ms = read_manifests([str(tmp_path)])
    assert _names(ms) == ["a", "b", "l1", "l2", "s"]
    assert ms[0].source == str(tmp_path / "cms.yaml")


def test_directories_recurse_only_with_R(tmp_path: Path) -> None:
    (tmp_path / "top.yaml").write_text(CM_YAML)
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    (tmp_path / "nested" / "deeper" / "x.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\n")
    assert _names(read_manifests([str(tmp_path)])) == ["a", "b"]
    assert _names(read_manifests([str(tmp_path)], recursive=True)) == ["deep", "a", "b"]


def test_stdin() -> None:
    ms = read_manifests(["-"], stdin=io.StringIO(CM_YAML))
    assert _names(ms) == ["a", "b"]
    assert {m.source for m in ms} == {"STDIN"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: v1\nmetadata: {name: a}\n", "kind not set"),
        ("kind: ConfigMap\nmetadata: {name: a}\n", "apiVersion not set"),
        ("a: [unclosed\n", "error parsing"),
        ("- just\n- a list\n", "expected an object"),
    ],
)
def test_bad_manifests(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(CliError, match=message):
        read_manifests([str(tmp_path / "bad.yaml")])


def test_missing_path() -> None:
    with pytest.raises(CliError, match=re.escape('the path "/no/such/file.yaml" does not exist')):
        read_manifests(["/no/such/file.yaml"])


def test_parse_targets_forms() -> None:
    groups = parse_targets(SCHEME, ["po,deploy", "x"])
    assert [(rt.plural, names) for rt, names in groups] == [("pods", ["x"]), ("deployments", ["x"])]
    groups = parse_targets(SCHEME, ["deploy/web", "pod/a", "deployments.apps/api"])
    assert [(rt.plural, names) for rt, names in groups] == [("deployments", ["web", "api"]), ("pods", ["a"])]
    assert [rt.plural for rt, _ in parse_targets(SCHEME, ["all"])] == ["pods", "services", "deployments", "replicasets"]
    assert [rt.plural for rt, _ in parse_targets(SCHEME, ["deploy,all"])] == ["deployments", "pods", "services", "replicasets"]
    with pytest.raises(CliError, match="there is no need to specify a resource type"):
        parse_targets(SCHEME, ["pods", "pod/a"])
    with pytest.raises(CliError, match='the server doesn\'t have a resource type "flux"'):
        parse_targets(SCHEME, ["flux"])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (182, "3m2s"),
        (600, "10m"), (95 * 60, "95m"), (3 * 3600, "3h"), (5 * 3600 + 3 * 60, "5h3m"), (30 * 3600, "30h"),
        (2 * 86400, "2d"), (3 * 86400 + 4 * 3600, "3d4h"), (100 * 86400, "100d"), (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration_matches_kubectl(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_tabwriter_alignment() -> None:
    out = tabwrite(["NAME\tREADY\tAGE", "a-long-name\t1/1\t5s", "b\t0/1\t3m2s"], padding=3)
    assert out.splitlines() == [
        "NAME          READY   AGE",
        "a-long-name   1/1     5s",
        "b             0/1     3m2s",
    ]
    # A line without tabs ends a block: the next block aligns on its own.
    out = tabwrite(["Name:\tx", "Labels:\ta=b", "Containers:", "  c:\t1"], padding=2)
    assert out.splitlines() == ["Name:    x", "Labels:  a=b", "Containers:", "  c:  1"]


TABLE = {
    "kind": "Table",
    "apiVersion": "meta.k8s.io/v1",
    "columnDefinitions": [
        {"name": "Name", "type": "string", "priority": 0},
        {"name": "Ready", "type": "string", "priority": 0},
        {"name": "Restarts", "type": "integer", "priority": 0},
        {"name": "IP", "type": "string", "priority": 1},
    ],
    "rows": [
        {"cells": ["web-1", "1/1", 0, None], "object": {"metadata": {"name": "web-1", "namespace": "prod", "labels": {"b": "2", "a": "1"}}}},
    ],
}


def test_table_printer_columns() -> None:
    headers, rows = TablePrinter().header_and_rows(TABLE)
    assert render_table(headers, rows).splitlines() == ["NAME    READY   RESTARTS", "web-1   1/1     0"]
    headers, rows = TablePrinter(wide=True, with_namespace=True, show_labels=True).header_and_rows(TABLE)
    assert headers == ["NAMESPACE", "NAME", "READY", "RESTARTS", "IP", "LABELS"]
    assert rows == [["prod", "web-1", "1/1", "0", "<none>", "a=1,b=2"]]
    headers, rows = TablePrinter(name_prefix="pod").header_and_rows(TABLE)
    assert rows[0][0] == "pod/web-1"


def test_plain_list_falls_back_to_name_and_age() -> None:
    answer = {"kind": "ConfigMapList", "items": [{"metadata": {"name": "x", "creationTimestamp": "2000-01-01T00:00:00Z"}}]}
    headers, rows = TablePrinter().header_and_rows(answer)
    assert headers == ["NAME", "AGE"]
    assert rows[0][0] == "x"
    assert rows[0][1].endswith("y")


def test_error_wording() -> None:
    assert format_api_error(not_found("pods", "", "x")) == 'Error from server (NotFound): pods "x" not found'
    one = invalid("Deployment", "apps", "web", [FieldError.required("spec.template.spec.containers[0].image")])
    assert format_api_error(one) == 'The Deployment "web" is invalid: spec.template.spec.containers[0].image: Required value'
    two = invalid("Pod", "", "p", [FieldError.required("spec.containers"), FieldError.invalid("metadata.name", "A", "bad")])
    assert format_api_error(two).splitlines() == [
        'The Pod "p" is invalid: ',
        "* spec.containers: Required value",
        '* metadata.name: Invalid value: "A": bad',
    ]
    wrapped = with_context(not_found("namespaces", "", "nope"), 'error when creating "f.yaml"')
    assert format_api_error(wrapped) == 'Error from server (NotFound): error when creating "f.yaml": namespaces "nope" not found'
    assert format_exception(ApiError.make(500, "", "boom")) == "Error from server: boom"
    assert format_exception(CliError("x")) == "error: x"


def test_last_applied_annotation_is_kubectls() -> None:
    obj = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a"}, "data": {"z": "1", "b": "2"}}
    value = last_applied_value(obj)
    assert value == '{"apiVersion":"v1","data":{"b":"2","z":"1"},"kind":"ConfigMap","metadata":{"annotations":{},"name":"a"}}\n'
    applied = with_last_applied(obj)
    assert applied["metadata"]["annotations"] == {LAST_APPLIED: value}
    assert "annotations" not in obj["metadata"], "the input must not be changed"
    # Applying an object that already carries the annotation does not nest it.
    assert last_applied_value(applied) == value


def test_yaml_output_style() -> None:
    text = to_yaml({"b": "9", "a": "line1\nline2\n", "c": "plain", "d": "true", "e": ""})
    assert text == 'a: |\n  line1\n  line2\nb: "9"\nc: plain\nd: "true"\ne: ""\n'


def test_global_flags_before_or_after_the_command() -> None:
    parser = build_parser()
    a = parser.parse_args(["-n", "x", "--kubeconfig", "/k", "get", "pods"])
    assert (a.namespace, a.kubeconfig, a.targets) == ("x", "/k", ["pods"])
    b = parser.parse_args(["get", "pods", "-n", "y", "--context", "c", "-o", "wide", "-A"])
    assert (b.namespace, b.context, b.output, b.all_namespaces) == ("y", "c", "wide", True)
    c = parser.parse_args(["apply", "-f", "a.yaml", "-f", "-", "-R", "--dry-run=server"])
    assert (c.filename, c.recursive, c.dry_run, c.namespace) == (["a.yaml", "-"], True, "server", None)


def test_parse_duration() -> None:
    assert parse_duration("30s") == 30
    assert parse_duration("1m30s") == 90
    assert parse_duration("2h") == 7200
    assert parse_duration("5") == 5
    with pytest.raises(CliError):
        parse_duration("soon")


def test_describe_helpers() -> None:
    assert smart_label("creationTimestamp") == "Creation Timestamp"
    assert smart_label("podIP") == "Pod IP"
    page = Page()
    page.kv(0, "Name", "x")
    page.map(0, "Labels", {"b": "2", "a": "1", LAST_APPLIED: "hidden"})
    page.map(0, "Annotations", {LAST_APPLIED: "{}"})
    assert page.render().splitlines() == ["Name:         x", "Labels:       a=1", "              b=2", "Annotations:  <none>"]
    assert qos_class({"containers": [{"name": "c"}]}) == "BestEffort"
    guaranteed = {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert qos_class({"containers": [{"name": "c", "resources": guaranteed}]}) == "Guaranteed"
    assert qos_class({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}) == "Burstable"


POD = {
    "metadata": {"name": "web-1", "labels": {"app": "web", "k8s.io/tier": "front"}},
    "spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis", "ports": [{"containerPort": 6379}]}]},
    "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Scheduled", "status": "False"}], "restarts": 3},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{.metadata.name}", "web-1"),
        ("{metadata.name}", "web-1"),
        ("name={$.metadata.name}!", "name=web-1!"),
        ("{.spec.containers[*].image}", "nginx redis"),
        ("{.spec.containers[-1].name}", "b"),
        ("{.spec.containers[0:1].name}", "a"),
        ("{.metadata.labels['k8s.io/tier']}", "front"),
        ("{.metadata.labels.k8s\\.io/tier}", "front"),
        ("{.metadata.labels}", '{"app":"web","k8s.io/tier":"front"}'),
        ('{.status.conditions[?(@.type=="Ready")].status}', "True"),
        ("{.status.conditions[?(@.status!='True')].type}", "Scheduled"),
        ("{.spec.containers[?(@.ports)].name}", "b"),
        ("{..containerPort}", "6379"),
        ("{.status.restarts}", "3"),
        ("{.missing.field}", ""),
        ('{range .spec.containers[*]}{.name}={.image}{"\\n"}{end}', "a=nginx\nb=redis\n"),
        ("{.spec.containers[*]['name','image']}", "a nginx b redis"),
    ],
)
def test_jsonpath(template: str, expected: str) -> None:
    from kubectl_lite.jsonpath import execute

    assert execute(template, POD) == expected


def test_jsonpath_errors_and_output_formats() -> None:
    from kubectl_lite.get import custom_columns, output_format
    from kubectl_lite.jsonpath import JSONPathError, execute

    with pytest.raises(JSONPathError):
        execute("{.a", POD)
    with pytest.raises(JSONPathError):
        execute("{end}", POD)
    assert output_format("jsonpath={.x}") == ("jsonpath", "{.x}")
    assert output_format("wide") == ("wide", "")
    for bad in ("jsonpath", "foo", "yaml=1"):
        with pytest.raises(CliError, match="unable to match a printer"):
            output_format(bad)
    headers, rows = custom_columns("NAME:.metadata.name,IMAGES:.spec.containers[*].image,NONE:.x", [POD])
    assert headers == ["NAME", "IMAGES", "NONE"]
    assert rows == [["web-1", "nginx,redis", "<none>"]]
    with pytest.raises(CliError, match="expected <header>:<json-path-expr>"):
        custom_columns("NAME", [POD])


def test_label_arguments_and_wait_conditions() -> None:
    from kubectl_lite.mutate import split_label_args
    from kubectl_lite.wait import parse_condition

    assert split_label_args(["pod", "a", "x=1", "y-"]) == (["pod", "a"], {"x": "1"}, ["y"])
    assert split_label_args(["pod/a", "empty="]) == (["pod/a"], {"empty": ""}, [])
    with pytest.raises(CliError, match="at least one label update"):
        split_label_args(["pod", "a"])

    ready, word = parse_condition("condition=Ready")
    assert word == "condition met"
    assert ready({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert not ready({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    assert not ready(None)
    gone, word = parse_condition("delete")
    assert (gone(None), gone({}), word) == (True, False, "deleted")
    phase, _ = parse_condition("jsonpath={.status.phase}=Running")
    assert phase({"status": {"phase": "Running"}}) and not phase({"status": {"phase": "Pending"}})
    replicas, _ = parse_condition("jsonpath='{.status.readyReplicas}'=3")
    assert replicas({"status": {"readyReplicas": 3}})
    with pytest.raises(CliError):
        parse_condition("sometime")


def test_rollout_status_messages() -> None:
    from kubectl_lite.rollout import RolloutFailed, deployment_status

    def dep(gen: int, observed: int, desired: int, **status: int) -> dict:  # type: ignore[type-arg]
        return {"metadata": {"name": "web", "generation": gen}, "spec": {"replicas": desired},
                "status": {"observedGeneration": observed, **status}}

    assert deployment_status(dep(2, 1, 3)) == ("Waiting for deployment spec update to be observed...", False)
    prefix = 'Waiting for deployment "web" rollout to finish: '
    assert deployment_status(dep(2, 2, 3, updatedReplicas=1, replicas=3)) == (
        prefix + "1 out of 3 new replicas have been updated...", False)
    assert deployment_status(dep(2, 2, 3, updatedReplicas=3, replicas=4)) == (
        prefix + "1 old replicas are pending termination...", False)
    assert deployment_status(dep(2, 2, 3, updatedReplicas=3, replicas=3, availableReplicas=2)) == (
        prefix + "2 of 3 updated replicas are available...", False)
    assert deployment_status(dep(2, 2, 3, updatedReplicas=3, replicas=3, availableReplicas=3)) == (
        'deployment "web" successfully rolled out', True)
    failed = dep(2, 2, 3)
    failed["status"]["conditions"] = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    with pytest.raises(RolloutFailed, match='deployment "web" exceeded its progress deadline'):
        deployment_status(failed)


def test_exec_and_logs_wire_parameters() -> None:
    from kubectl_lite.logs import log_params
    from kubectl_lite.main import parse_args
    from kubectl_lite.podexec import exec_params, exit_code_of

    args = parse_args(["exec", "-i", "web-1", "-c", "side", "-n", "prod", "--", "sh", "-c", "echo -n hi"])
    assert (args.pod, args.container, args.stdin, args.namespace) == ("web-1", "side", True, "prod")
    assert args.after_dashes == ["sh", "-c", "echo -n hi"]
    assert exec_params(args.after_dashes, "side", stdin=True, tty=False) == [
        ("command", "sh"), ("command", "-c"), ("command", "echo -n hi"), ("container", "side"),
        ("stdin", "true"), ("stdout", "true"), ("stderr", "true"), ("tty", "false"),
    ]
    assert ("stderr", "false") in exec_params(["sh"], None, stdin=True, tty=True)

    assert exit_code_of({"metadata": {}, "status": "Success"}) == (0, "")
    failed = {"status": "Failure", "reason": "NonZeroExitCode",
              "details": {"causes": [{"reason": "ExitCode", "message": "2"}]}, "message": "command terminated with non-zero exit code"}
    assert exit_code_of(failed) == (2, "command terminated with exit code 2")
    assert exit_code_of({"status": "Failure", "message": 'container "x" not found'}) == (1, 'error: container "x" not found')

    largs = parse_args(["logs", "pod/web-1", "-f", "--tail", "10", "--since", "2m", "--timestamps"])
    assert log_params(largs, "main") == {
        "container": "main", "follow": True, "previous": None, "tailLines": 10, "sinceSeconds": 120,
        "sinceTime": None, "timestamps": True, "limitBytes": None,
    }


def test_sort_by() -> None:
    from kubectl_lite.get import sort_by

    objs = [{"n": "b", "v": 10}, {"n": "a", "v": 9}, {"n": "c"}, {"n": "d", "v": 100}]
    assert [o["n"] for o in sort_by(".v", objs, lambda o: o)] == ["c", "a", "b", "d"]  # numeric, missing first
    assert [o["n"] for o in sort_by("{.n}", objs, lambda o: o)] == ["a", "b", "c", "d"]
    with pytest.raises(CliError, match="couldn't parse --sort-by"):
        sort_by("{.a[}", objs, lambda o: o)


def test_config_commands_edit_kubeconfig_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import stat

    import yaml as yamllib

    from apimachinery.client.kubeconfig import load_kubeconfig, write_kubeconfig
    from kubectl_lite.main import parse_args

    kc = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443", b"PEM", "secret-token")

    def run(*argv: str) -> str:
        args = parse_args([*argv, "--kubeconfig", str(kc)])
        assert args.offline(args) == 0
        return capsys.readouterr().out

    shown = yamllib.safe_load(run("config", "view"))
    assert shown["users"][0]["user"]["token"] == "REDACTED"
    assert shown["clusters"][0]["cluster"]["certificate-authority-data"] == "DATA+OMITTED"
    assert yamllib.safe_load(run("config", "view", "--raw"))["users"][0]["user"]["token"] == "secret-token"
    assert run("config", "current-context") == "kube-lite\n"

    assert run("config", "set-context", "--current", "--namespace=prod") == 'Context "kube-lite" modified.\n'
    assert load_kubeconfig(kc).namespace == "prod"
    assert run("config", "set-context", "other", "--cluster=kube-lite", "--user=admin") == 'Context "other" created.\n'
    assert run("config", "use-context", "other") == 'Switched to context "other".\n'
    assert load_kubeconfig(kc).namespace == "default"
    assert stat.S_IMODE(kc.stat().st_mode) == 0o600
    table = run("config", "get-contexts").splitlines()
    assert table[0].split() == ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]
    assert table[1].split() == ["kube-lite", "kube-lite", "admin", "prod"]
    assert table[2].split() == ["*", "other", "kube-lite", "admin"]
    minified = yamllib.safe_load(run("config", "view", "--minify"))
    assert [c["name"] for c in minified["contexts"]] == ["other"]

    from apimachinery.client.kubeconfig import KubeconfigError

    args = parse_args(["config", "use-context", "nope", "--kubeconfig", str(kc)])
    with pytest.raises(KubeconfigError, match='no context exists with the name: "nope"'):
        args.offline(args)


def test_service_endpoints_from_slices() -> None:
    from kubectl_lite.describe import endpoints_for

    sl = {
        "ports": [{"name": "http", "port": 8080}, {"port": 443}],
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
            {"addresses": ["fd00::3"]},
        ],
    }
    assert endpoints_for([sl], "http") == "10.0.0.1:8080,[fd00::3]:8080"
    assert endpoints_for([sl], "") == "10.0.0.1:443,[fd00::3]:443"
    assert endpoints_for([sl, sl], "") == "10.0.0.1:443,[fd00::3]:443,10.0.0.1:443 + 1 more..."
    assert endpoints_for([], "http") == "<none>"


def test_edit_helpers() -> None:
    from kubectl_lite.edit import HEADER, editor_command, strip_comments

    assert HEADER.splitlines()[0] == "# Please edit the object below. Lines beginning with a '#' will be ignored,"
    assert strip_comments(HEADER + "a: 1\n# gone\nb: 2 # kept\n") == "a: 1\nb: 2 # kept\n"
    assert editor_command("/tmp/f.yaml", {"KUBE_EDITOR": "nano", "EDITOR": "vim"}) == ["nano", "/tmp/f.yaml"]
    assert editor_command("/tmp/f.yaml", {"EDITOR": "vim"}) == ["vim", "/tmp/f.yaml"]
    assert editor_command("/tmp/f.yaml", {}) == ["vi", "/tmp/f.yaml"]
    # An editor setting with arguments runs through the shell, the path quoted.
    assert editor_command("/tmp/a b.yaml", {"EDITOR": "code --wait", "SHELL": "/bin/bash"}) == [
        "/bin/bash", "-c", "code --wait '/tmp/a b.yaml'"]


def test_event_columns_and_types() -> None:
    from datetime import UTC, datetime

    from kubectl_lite.events import event_row, event_time, last_seen, parse_types

    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    ev = {"metadata": {"namespace": "ns1", "creationTimestamp": "2026-01-01T11:00:00Z"},
          "involvedObject": {"kind": "Pod", "name": "p"}, "type": "Warning", "reason": "BackOff",
          "message": "Back-off\n", "count": 3, "firstTimestamp": "2026-01-01T11:40:00Z",
          "lastTimestamp": "2026-01-01T11:55:00Z"}
    assert last_seen(ev, now) == "5m (x3 over 20m)"
    assert event_row(ev, True, now) == ["ns1", "5m (x3 over 20m)", "Warning", "BackOff", "Pod/p", "Back-off"]
    # events.k8s.io-style fields: eventTime and a series.
    series = {"metadata": {}, "eventTime": "2026-01-01T11:00:00.000000Z",
              "series": {"count": 2, "lastObservedTime": "2026-01-01T11:59:00.000000Z"}}
    assert event_time(series) == datetime(2026, 1, 1, 11, 59, tzinfo=UTC)
    assert last_seen(series, now) == "60s (x2 over 60m)"
    assert last_seen({"metadata": {"creationTimestamp": "2026-01-01T11:59:30Z"}}, now) == "30s"
    assert parse_types(["warning", "Normal,WARNING"]) == {"Normal", "Warning"}
    assert parse_types([]) == set()
    with pytest.raises(CliError, match="valid --types are Normal or Warning"):
        parse_types(["Error"])


def test_rollout_history_and_undo_patch() -> None:
    from kubectl_lite.history import history_rows, template_without_hash, undo_patch

    def rs(rev: str | None, cause: str | None = None, **extra: str) -> dict:  # type: ignore[type-arg]
        ann = {**({"deployment.kubernetes.io/revision": rev} if rev else {}), **extra}
        if cause:
            ann["kubernetes.io/change-cause"] = cause
        template = {"metadata": {"labels": {"app": "w", "pod-template-hash": "abc"}}, "spec": {"containers": []}}
        return {"metadata": {"annotations": ann}, "spec": {"template": template}}

    assert history_rows([rs("10"), rs("2", "scaled"), rs(None), rs("x")]) == [(2, "scaled"), (10, "<none>")]
    target = rs("3", "why", **{"deployment.kubernetes.io/desired-replicas": "2", "team": "a"})
    assert template_without_hash(target["spec"]["template"])["metadata"]["labels"] == {"app": "w"}
    assert target["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == "abc"  # input untouched
    dep = {"metadata": {"annotations": {"deployment.kubernetes.io/revision": "4", "team": "b"}}}
    assert undo_patch(dep, target) == [
        {"op": "replace", "path": "/spec/template",
         "value": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": []}}},
        {"op": "replace", "path": "/metadata/annotations",
         "value": {"deployment.kubernetes.io/revision": "4", "team": "a", "kubernetes.io/change-cause": "why"}},
    ]


def test_explain_type_names() -> None:
    from kubectl_lite.explain import Document

    ref = "#/components/schemas/"
    doc = Document({
        "io.k8s.api.apps.v1.DeploymentStrategy": {"type": "object", "properties": {"type": {"type": "string"}},
                                                  "description": "How."},
        "io.k8s.apimachinery.pkg.apis.meta.v1.Time": {"type": "string", "format": "date-time"},
        "io.k8s.apimachinery.pkg.api.resource.Quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
    })
    strategy = {"allOf": [{"$ref": ref + "io.k8s.api.apps.v1.DeploymentStrategy"}], "description": "Field."}
    assert doc.type_name(strategy) == "DeploymentStrategy"
    assert doc.descriptions(strategy) == ["Field.", "How."]
    assert doc.type_name({"$ref": ref + "io.k8s.apimachinery.pkg.apis.meta.v1.Time"}) == "string"
    assert doc.type_name({"type": "array", "items": strategy}) == "[]DeploymentStrategy"
    assert doc.type_name({"type": "array", "items": {"type": "string"}}) == "[]string"
    assert doc.type_name({"type": "object", "additionalProperties": {"type": "string"}}) == "map[string]string"
    quantities = {"type": "object", "additionalProperties": {"$ref": ref + "io.k8s.apimachinery.pkg.api.resource.Quantity"}}
    assert doc.type_name(quantities) == "map[string]Quantity"
    assert doc.type_name({"type": "object"}) == "Object"
    assert doc.type_name({"type": "integer", "format": "int32"}) == "integer"
    assert list(doc.fields_of({"type": "array", "items": strategy})[0]) == ["type"]


def test_completion_words_come_from_the_parser_and_scheme() -> None:
    from kubectl_lite.completion import bash_script, collect, resource_words

    words = collect(build_parser())
    for cmd in ("apply", "get", "edit", "events", "explain", "rollout", "config", "completion", "top"):
        assert cmd in words.commands
    assert words.subcommands["rollout"] == ["status", "restart", "history", "undo", "pause", "resume"]
    assert "use-context" in words.subcommands["config"]
    assert "--to-revision" in words.flags["rollout"] and "--for" in words.flags["events"]
    assert "-n" in words.global_flags and "-n" in words.valued_flags and "--recursive" not in words.valued_flags
    resources = resource_words(SCHEME)
    assert {"po", "pods", "pod", "deploy", "deployments.apps", "svc"} <= set(resources)
    script = bash_script(words, resources)
    assert "complete -o default -F _kubectl_lite kubectl-lite" in script
