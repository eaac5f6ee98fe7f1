"""Server-side Tables: the columns and cells `kubectl get` prints, computed like a real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apimachinery.scheme import ResourceType, default_scheme
from controlplane.apiserver.tables import build_table, format_label_selector, human_duration, wants_table

NOW = datetime(2025, 3, 10, 12, 0, 0, tzinfo=UTC)


def ago(**kw: float) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rt(kind: str) -> ResourceType:
    found = default_scheme().resolve(kind)
    assert found is not None
    return found


def row(kind: str, obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """The one row of a Table of ``obj``, as {column name: cell}."""
    table = build_table(rt(kind), [obj], now=NOW, **kw)
    names = [c["name"] for c in table["columnDefinitions"]]
    (only,) = table["rows"]
    assert len(only["cells"]) == len(names)
    return dict(zip(names, only["cells"], strict=True))


def columns(kind: str) -> list[tuple[str, int]]:
    table = build_table(rt(kind), [], now=NOW)
    return [(c["name"], c["priority"]) for c in table["columnDefinitions"]]


def meta(name: str, age_seconds: float = 300, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}",
        "resourceVersion": "42",
        "creationTimestamp": ago(seconds=age_seconds),
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1.9, "1s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (182, "3m2s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (7 * 3600 + 59 * 60, "7h59m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 3599, "47h"),
        (48 * 3600, "2d"),
        (51 * 3600, "2d3h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (731 * 86400, "2y1d"),
        (8 * 365 * 86400, "8y"),
        (-1, "0s"),
        (-2, "<invalid>"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_missing_timestamp_is_unknown() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}}
    assert row("pods", pod)["Age"] == "<unknown>"


# ---------------------------------------------------------------------------------------------
# Accept header


def test_wants_table() -> None:
    kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    assert wants_table(kubectl)
    assert not wants_table("application/json")
    assert not wants_table("")
    assert not wants_table("application/json, application/json;as=Table;v=v1;g=meta.k8s.io;q=0.5")
    assert not wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io")


# ---------------------------------------------------------------------------------------------
# Pods


def running(ready: bool = True, restarts: int = 0, name: str = "app", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "image": "nginx",
        "imageID": "",
        "state": {"running": {"startedAt": ago(minutes=4)}},
        **extra,
    }


def pod(
    statuses: list[dict[str, Any]],
    *,
    containers: int = 1,
    phase: str = "Running",
    init: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    **status: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)]}
    st: dict[str, Any] = {"phase": phase, "containerStatuses": statuses, **status}
    if init is not None:
        spec["initContainers"] = init
    if init_statuses is not None:
        st["initContainerStatuses"] = init_statuses
    if conditions is not None:
        st["conditions"] = conditions
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta("web-1"), "spec": spec, "status": st}


def test_pod_columns_match_kubectl() -> None:
    assert columns("pods") == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]


def test_running_pod() -> None:
    p = pod(
        [running(name="a"), running(name="b")],
        containers=2,
        podIP="10.244.1.5",
        podIPs=[{"ip": "10.244.1.5"}],
    )
    p["spec"]["nodeName"] = "node-1"
    r = row("pods", p)
    assert (r["Name"], r["Ready"], r["Status"], r["Restarts"], r["Age"]) == (
        "web-1",
        "2/2",
        "Running",
        "0",
        "5m",
    )
    assert (r["IP"], r["Node"], r["Nominated Node"], r["Readiness Gates"]) == (
        "10.244.1.5",
        "node-1",
        "<none>",
        "<none>",
    )


def test_crash_loop_shows_restarts_with_last_restart_age() -> None:
    cs = {
        "name": "app",
        "ready": False,
        "restartCount": 5,
        "image": "busybox",
        "imageID": "",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(seconds=90)}},
    }
    r = row("pods", pod([cs]))
    assert (r["Ready"], r["Status"], r["Restarts"]) == ("0/1", "CrashLoopBackOff", "5 (90s ago)")


def test_container_creating_and_pending() -> None:
    creating = {
        "name": "app",
        "ready": False,
        "restartCount": 0,
        "image": "x",
        "imageID": "",
        "state": {"waiting": {"reason": "ContainerCreating"}},
    }
    r = row("pods", pod([creating], phase="Pending"))
    assert (r["Ready"], r["Status"]) == ("0/1", "ContainerCreating")
    unscheduled = row("pods", pod([], phase="Pending"))
    assert (unscheduled["Ready"], unscheduled["Status"], unscheduled["IP"], unscheduled["Node"]) == (
        "0/1",
        "Pending",
        "<none>",
        "<none>",
    )


def test_scheduling_gated() -> None:
    p = pod(
        [],
        phase="Pending",
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    )
    assert row("pods", p)["Status"] == "SchedulingGated"


def _init_status(name: str, state: dict[str, Any], restarts: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "ready": False,
        "restartCount": restarts,
        "image": "x",
        "imageID": "",
        "state": state,
    }


INITS = [{"name": "migrate", "image": "x"}, {"name": "seed", "image": "x"}]


@pytest.mark.parametrize(
    ("init_statuses", "status"),
    [
        (
            [
                _init_status("migrate", {"running": {}}),
                _init_status("seed", {"waiting": {"reason": "PodInitializing"}}),
            ],
            "Init:0/2",
        ),
        (
            [
                _init_status("migrate", {"terminated": {"exitCode": 0, "reason": "Completed"}}),
                _init_status("seed", {"running": {}}),
            ],
            "Init:1/2",
        ),
        ([_init_status("migrate", {"terminated": {"exitCode": 1, "reason": "Error"}})], "Init:Error"),
        ([_init_status("migrate", {"terminated": {"exitCode": 2}})], "Init:ExitCode:2"),
        ([_init_status("migrate", {"terminated": {"exitCode": 137, "signal": 9}})], "Init:Signal:9"),
        (
            [_init_status("migrate", {"waiting": {"reason": "CrashLoopBackOff"}}, restarts=3)],
            "Init:CrashLoopBackOff",
        ),
    ],
)
def test_init_container_status(init_statuses: list[dict[str, Any]], status: str) -> None:
    waiting = {
        "name": "app",
        "ready": False,
        "restartCount": 0,
        "image": "x",
        "imageID": "",
        "state": {"waiting": {"reason": "PodInitializing"}},
    }
    r = row("pods", pod([waiting], phase="Pending", init=INITS, init_statuses=init_statuses))
    assert r["Status"] == status
    assert r["Ready"] == "0/1"


def test_init_restarts_count_while_initializing() -> None:
    failing = _init_status("migrate", {"waiting": {"reason": "CrashLoopBackOff"}}, restarts=3)
    failing["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=2)}}
    r = row("pods", pod([], phase="Pending", init=INITS, init_statuses=[failing]))
    assert r["Restarts"] == "3 (2m ago)"


def test_sidecar_init_container_counts_as_a_container() -> None:
    init = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
    sidecar = {**running(name="proxy"), "started": True}
    p = pod(
        [running()],
        init=init,
        init_statuses=[sidecar],
        conditions=[{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
    )
    r = row("pods", p)
    assert (r["Ready"], r["Status"]) == ("2/2", "Running")


def test_completed_pod_and_row_condition() -> None:
    done = {
        "name": "app",
        "ready": False,
        "restartCount": 0,
        "image": "x",
        "imageID": "",
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
    }
    p = pod([done], phase="Succeeded")
    r = row("pods", p)
    assert (r["Ready"], r["Status"]) == ("0/1", "Completed")
    table = build_table(rt("pods"), [p], now=NOW)
    assert table["rows"][0]["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]


def test_completed_container_next_to_running_one() -> None:
    done = {
        "name": "job",
        "ready": False,
        "restartCount": 0,
        "image": "x",
        "imageID": "",
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
    }
    ready = pod([running(name="app"), done], containers=2, conditions=[{"type": "Ready", "status": "True"}])
    assert row("pods", ready)["Status"] == "Running"
    not_ready = pod(
        [running(name="app"), done], containers=2, conditions=[{"type": "Ready", "status": "False"}]
    )
    assert row("pods", not_ready)["Status"] == "NotReady"


def test_exit_code_and_signal_without_reason() -> None:
    died = {
        "name": "app",
        "ready": False,
        "restartCount": 0,
        "image": "x",
        "imageID": "",
        "state": {"terminated": {"exitCode": 3}},
    }
    assert row("pods", pod([died], phase="Failed"))["Status"] == "ExitCode:3"
    killed = {**died, "state": {"terminated": {"exitCode": 137, "signal": 9}}}
    assert row("pods", pod([killed], phase="Failed"))["Status"] == "Signal:9"


def test_evicted_pod_shows_reason() -> None:
    assert (
        row("pods", pod([], phase="Failed", reason="Evicted", message="low on memory"))["Status"] == "Evicted"
    )


def test_terminating_pod() -> None:
    p = pod([running()])
    p["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert row("pods", p)["Status"] == "Terminating"
    finished = pod([], phase="Succeeded")
    finished["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert row("pods", finished)["Status"] == "Succeeded"
    lost = pod([running()], reason="NodeLost")
    lost["metadata"]["deletionTimestamp"] = ago(seconds=3)
    assert row("pods", lost)["Status"] == "Unknown"


def test_readiness_gates_and_nominated_node() -> None:
    p = pod(
        [running()],
        nominatedNodeName="node-2",
        conditions=[
            {"type": "example.com/lb", "status": "True"},
            {"type": "example.com/dns", "status": "False"},
        ],
    )
    p["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]
    r = row("pods", p)
    assert (r["Nominated Node"], r["Readiness Gates"]) == ("node-2", "1/2")


# ---------------------------------------------------------------------------------------------
# Row objects and table metadata


def test_row_object_modes_and_list_meta() -> None:
    p = pod([running()])
    table = build_table(rt("pods"), [p], now=NOW, list_meta={"resourceVersion": "77", "continue": "abc"})
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "77", "continue": "abc"}
    assert table["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": p["metadata"],
    }
    full = build_table(rt("pods"), [p], include_object="Object", now=NOW)
    assert full["rows"][0]["object"] == p
    bare = build_table(rt("pods"), [p], include_object="None", now=NOW)
    assert "object" not in bare["rows"][0]
    for col in table["columnDefinitions"]:
        assert set(col) == {"name", "type", "format", "description", "priority"}
        assert col["description"]
    with pytest.raises(ValueError):
        build_table(rt("pods"), [p], include_object="Everything")


def test_watch_rows_can_leave_columns_out() -> None:
    table = build_table(rt("pods"), [pod([running()])], now=NOW, include_columns=False)
    assert table["columnDefinitions"] is None
    assert len(table["rows"][0]["cells"]) == 9


# ---------------------------------------------------------------------------------------------
# Workloads


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta("web", 3 * 86400 + 4 * 3600),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web", "tier": "front"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "front"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx:1.27"},
                        {"name": "log", "image": "busybox"},
                    ]
                },
            },
        },
        "status": status,
    }


def test_deployment_table() -> None:
    assert columns("deployments") == [
        ("Name", 0),
        ("Ready", 0),
        ("Up-to-date", 0),
        ("Available", 0),
        ("Age", 0),
        ("Containers", 1),
        ("Images", 1),
        ("Selector", 1),
    ]
    r = row("deploy", deployment(replicas=3, updatedReplicas=3, readyReplicas=2, availableReplicas=2))
    assert r == {
        "Name": "web",
        "Ready": "2/3",
        "Up-to-date": 3,
        "Available": 2,
        "Age": "3d4h",
        "Containers": "web,log",
        "Images": "nginx:1.27,busybox",
        "Selector": "app=web,tier=front",
    }
    fresh = row("deploy", deployment())
    assert (fresh["Ready"], fresh["Up-to-date"], fresh["Available"]) == ("0/3", 0, 0)


def test_replicaset_table() -> None:
    rs = deployment(replicas=3, readyReplicas=1)
    rs["kind"] = "ReplicaSet"
    rs["metadata"]["name"] = "web-5d4f8c7b9"
    rs["spec"]["selector"] = {
        "matchLabels": {"app": "web", "pod-template-hash": "5d4f8c7b9"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "canary"]}],
    }
    assert [c for c, _ in columns("rs")] == [
        "Name",
        "Desired",
        "Current",
        "Ready",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    r = row("rs", rs)
    assert (r["Desired"], r["Current"], r["Ready"]) == (3, 3, 1)
    assert r["Selector"] == "app=web,env in (canary,prod),pod-template-hash=5d4f8c7b9"


def test_label_selector_strings() -> None:
    assert format_label_selector(None) == "<none>"
    assert format_label_selector({}) == "<none>"
    assert (
        format_label_selector(
            {
                "matchExpressions": [
                    {"key": "b", "operator": "DoesNotExist"},
                    {"key": "a", "operator": "Exists"},
                    {"key": "c", "operator": "NotIn", "values": ["y", "x"]},
                ]
            }
        )
        == "a,!b,c notin (x,y)"
    )


# ---------------------------------------------------------------------------------------------
# Services and endpoints


def service(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("web", 45),
        "spec": spec,
        "status": status or {"loadBalancer": {}},
    }


def test_service_table() -> None:
    assert columns("svc") == [
        ("Name", 0),
        ("Type", 0),
        ("Cluster-IP", 0),
        ("External-IP", 0),
        ("Port(s)", 0),
        ("Age", 0),
        ("Selector", 1),
    ]
    r = row(
        "svc",
        service(
            {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "ports": [
                    {"port": 53, "protocol": "UDP"},
                    {"port": 80, "protocol": "TCP", "targetPort": 8080},
                ],
                "selector": {"tier": "front", "app": "web"},
            }
        ),
    )
    assert r == {
        "Name": "web",
        "Type": "ClusterIP",
        "Cluster-IP": "10.96.0.10",
        "External-IP": "<none>",
        "Port(s)": "53/UDP,80/TCP",
        "Age": "45s",
        "Selector": "app=web,tier=front",
    }


def test_service_types() -> None:
    node_port = row(
        "svc",
        service(
            {
                "type": "NodePort",
                "clusterIPs": ["10.96.3.4"],
                "externalIPs": ["192.0.2.7"],
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
            }
        ),
    )
    assert (node_port["External-IP"], node_port["Port(s)"], node_port["Selector"]) == (
        "192.0.2.7",
        "80:30080/TCP",
        "<none>",
    )
    pending = row("svc", service({"type": "LoadBalancer", "clusterIPs": ["10.96.3.5"], "ports": []}))
    assert (pending["External-IP"], pending["Port(s)"]) == ("<pending>", "<none>")
    lb = row(
        "svc",
        service(
            {"type": "LoadBalancer", "clusterIPs": ["10.96.3.5"]},
            {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}},
        ),
    )
    assert lb["External-IP"] == "203.0.113.9,lb.example.com"
    ext = row("svc", service({"type": "ExternalName", "externalName": "db.example.com"}))
    assert (ext["Cluster-IP"], ext["External-IP"]) == ("<none>", "db.example.com")
    headless = row("svc", service({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}))
    assert headless["Cluster-IP"] == "None"


def test_endpoints_table() -> None:
    ep = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": meta("web"),
        "subsets": [
            {
                "addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.6"}],
                "ports": [{"port": 8080}, {"port": 9090}],
            },
        ],
    }
    assert columns("ep") == [("Name", 0), ("Endpoints", 0), ("Age", 0)]
    assert row("ep", ep)["Endpoints"] == "10.244.1.5:8080,10.244.2.6:8080,10.244.1.5:9090 + 1 more..."
    one = {**ep, "subsets": [{"addresses": [{"ip": "fd00::5"}], "ports": [{"port": 80}]}]}
    assert row("ep", one)["Endpoints"] == "[fd00::5]:80"
    headless = {**ep, "subsets": [{"addresses": [{"ip": "10.244.1.5"}]}]}
    assert row("ep", headless)["Endpoints"] == "10.244.1.5"
    assert row("ep", {**ep, "subsets": None})["Endpoints"] == "<none>"


def test_endpointslice_table() -> None:
    eps = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta("web-abc12"),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "named"}],
        "endpoints": [{"addresses": [f"10.244.0.{i}"], "conditions": {"ready": True}} for i in range(1, 6)],
    }
    assert [c for c, _ in columns("endpointslices")] == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    r = row("endpointslices", eps)
    assert (r["AddressType"], r["Ports"], r["Endpoints"]) == (
        "IPv4",
        "8080,named",
        "10.244.0.1,10.244.0.2,10.244.0.3 + 2 more...",
    )
    empty = row("endpointslices", {**eps, "ports": None, "endpoints": []})
    assert (empty["Ports"], empty["Endpoints"]) == ("<unset>", "<unset>")


# ---------------------------------------------------------------------------------------------
# Nodes, namespaces, events


def node(ready: str = "True", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "node-1",
            "uid": "u",
            "creationTimestamp": ago(days=12),
            "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/worker": "",
                "kubernetes.io/hostname": "node-1",
            },
        },
        "spec": spec,
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": ready}],
            "addresses": [
                {"type": "InternalIP", "address": "192.168.1.10"},
                {"type": "Hostname", "address": "node-1"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.36.0+kube-lite-0.1.0",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-18-amd64",
                "containerRuntimeVersion": "kube-lite://0.1.0",
            },
        },
    }


def test_node_table() -> None:
    assert columns("no") == [
        ("Name", 0),
        ("Status", 0),
        ("Roles", 0),
        ("Age", 0),
        ("Version", 0),
        ("Internal-IP", 1),
        ("External-IP", 1),
        ("OS-Image", 1),
        ("Kernel-Version", 1),
        ("Container-Runtime", 1),
    ]
    assert row("no", node()) == {
        "Name": "node-1",
        "Status": "Ready",
        "Roles": "control-plane,worker",
        "Age": "12d",
        "Version": "v1.36.0+kube-lite-0.1.0",
        "Internal-IP": "192.168.1.10",
        "External-IP": "<none>",
        "OS-Image": "Debian GNU/Linux 12 (bookworm)",
        "Kernel-Version": "6.1.0-18-amd64",
        "Container-Runtime": "kube-lite://0.1.0",
    }
    assert row("no", node("Unknown", unschedulable=True))["Status"] == "NotReady,SchedulingDisabled"
    bare = node()
    bare["status"] = {}
    bare["metadata"]["labels"] = {"kubernetes.io/role": "edge"}
    r = row("no", bare)
    assert (r["Status"], r["Roles"], r["OS-Image"], r["Internal-IP"]) == (
        "Unknown",
        "edge",
        "<unknown>",
        "<none>",
    )


def test_namespace_table() -> None:
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-a", "creationTimestamp": ago(hours=5)},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    assert row("ns", ns) == {"Name": "team-a", "Status": "Active", "Age": "5h"}


def test_event_table() -> None:
    assert columns("ev") == [
        ("Last Seen", 0),
        ("Type", 0),
        ("Reason", 0),
        ("Object", 0),
        ("Subobject", 1),
        ("Source", 1),
        ("Message", 0),
        ("First Seen", 1),
        ("Count", 1),
        ("Name", 1),
    ]
    ev = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta("web-1.17f3a"),
        "involvedObject": {
            "kind": "Pod",
            "namespace": "default",
            "name": "web-1",
            "fieldPath": "spec.containers{app}",
        },
        "reason": "BackOff",
        "message": "Back-off restarting failed container\n",
        "type": "Warning",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(minutes=20),
        "lastTimestamp": ago(seconds=30),
        "count": 7,
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
    }
    assert row("ev", ev) == {
        "Last Seen": "30s",
        "Type": "Warning",
        "Reason": "BackOff",
        "Object": "pod/web-1",
        "Subobject": "spec.containers{app}",
        "Source": "kubelet, node-1",
        "Message": "Back-off restarting failed container",
        "First Seen": "20m",
        "Count": 7,
        "Name": "web-1.17f3a",
    }
    # An events.k8s.io-style event: eventTime and series, no first/last timestamps nor count.
    new_style = {
        **ev,
        "firstTimestamp": None,
        "lastTimestamp": None,
        "count": None,
        "source": {},
        "eventTime": (NOW - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingComponent": "scheduler",
        "reportingInstance": "",
    }
    r = row("ev", new_style)
    assert (r["Last Seen"], r["First Seen"], r["Count"], r["Source"]) == ("3m", "3m", 1, "scheduler")
    series = {**new_style, "series": {"count": 4, "lastObservedTime": ago(seconds=10)}}
    r = row("ev", series)
    assert (r["Last Seen"], r["Count"]) == ("10s", 4)
    cluster = {**ev, "involvedObject": {"kind": "Node"}}
    assert row("ev", cluster)["Object"] == "node"


# ---------------------------------------------------------------------------------------------
# Configuration, identity, leases, unknown kinds


def test_config_and_identity_tables() -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("settings"),
        "data": {"a": "1", "b": "2"},
        "binaryData": {"c": "AA=="},
    }
    assert row("cm", cm) == {"Name": "settings", "Data": 3, "Age": "5m"}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta("tls"),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "QQ==", "tls.key": "Qg=="},
    }
    assert row("secrets", secret) == {"Name": "tls", "Type": "kubernetes.io/tls", "Data": 2, "Age": "5m"}
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("default")}
    assert row("sa", sa) == {"Name": "default", "Secrets": 0, "Age": "5m"}
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta("node-1"),
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40},
    }
    assert row("leases", lease) == {"Name": "node-1", "Holder": "node-1", "Age": "5m"}


def test_unknown_kind_gets_name_and_created_at() -> None:
    from apimachinery.api import Binding
    from apimachinery.meta import KubeList

    odd = ResourceType("example.com", "v1", "Widget", "widgets", "widget", True, Binding, KubeList)
    table = build_table(
        odd, [{"metadata": {"name": "w", "creationTimestamp": "2025-03-10T11:00:00+00:00"}}], now=NOW
    )
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Created At", "date"),
    ]
    assert table["rows"][0]["cells"] == ["w", "2025-03-10T11:00:00Z"]
