"""``kubectl-lite describe``: kubectl-style key/value pages, with the object's Events at the end.

Pods and Deployments get kubectl's dedicated layouts (the fields people look at first); every
other kind gets kubectl's generic layout (each field, camelCase split into words). Lines are
tab-separated and aligned like kubectl's tabwriter (padding 2).
"""

from __future__ import annotations

import argparse
import base64
import re
from typing import Any

from apimachinery.errors import ApiError
from apimachinery.meta import parse_time
from apimachinery.scheme import ResourceType
from apimachinery.selectors.labels import selector_from_model
from kubectl_lite.apply import LAST_APPLIED
from kubectl_lite.context import Cli
from kubectl_lite.errors import format_api_error
from kubectl_lite.printers import age_of, tabwrite
from kubectl_lite.resources import parse_targets

_SKIP_GENERIC = {"apiVersion", "kind", "metadata", "status"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("describe", parents=parents, help="Show details of a specific resource or group of resources")
    p.add_argument("targets", nargs="+", metavar="TYPE[/NAME] [NAME...]")
    p.add_argument("-l", "--selector", default=None)
    p.add_argument("--show-events", default="true", choices=["true", "false"])
    p.set_defaults(func=run)


class Page:
    """Collects describe lines; ``key`` lines get a tab so values align within a block."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def kv(self, level: int, key: str, value: Any) -> None:
        self.lines.append(f"{'  ' * level}{key}:\t{_text(value)}")

    def head(self, level: int, key: str) -> None:
        self.lines.append(f"{'  ' * level}{key}:")

    def raw(self, line: str) -> None:
        self.lines.append(line)

    def map(self, level: int, key: str, values: dict[str, str] | None, sep: str = "=") -> None:
        """``Labels:  a=b`` with further entries on their own lines, as kubectl prints maps
        (kubectl hides the last-applied-configuration annotation)."""
        values = {k: v for k, v in (values or {}).items() if k != LAST_APPLIED}
        if not values:
            self.kv(level, key, "<none>")
            return
        items = sorted(values.items())
        self.kv(level, key, f"{items[0][0]}{sep}{items[0][1]}")
        for k, v in items[1:]:
            self.raw(f"{'  ' * level}\t{k}{sep}{v}")

    def annotations(self, level: int, values: dict[str, str] | None) -> None:
        """Annotations print as ``key: value`` (labels as ``key=value``)."""
        self.map(level, "Annotations", values, sep=": ")

    def render(self) -> str:
        return tabwrite(self.lines, padding=2)


def _text(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def rfc1123(timestamp: str | None) -> str:
    """``Thu, 26 Nov 2026 11:37:32 +0000``: how kubectl describe shows times."""
    if not timestamp:
        return "<none>"
    try:
        return parse_time(timestamp).strftime("%a, %d %b %Y %H:%M:%S %z")
    except ValueError:
        return timestamp


def smart_label(key: str) -> str:
    """``creationTimestamp`` -> ``Creation Timestamp`` (kubectl's generic describer labels)."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return " ".join(w[:1].upper() + w[1:] for w in words.split(" "))


async def run(cli: Cli, args: argparse.Namespace) -> None:
    found: list[tuple[ResourceType, dict[str, Any]]] = []
    for rt, names in parse_targets(cli.scheme, args.targets):
        ns = cli.ns_for(rt)
        if names:
            for name in names:
                try:
                    found.append((rt, await cli.client.get(rt, name, ns)))
                except ApiError as exc:
                    cli.fail(format_api_error(exc))
        else:
            items, _ = await cli.client.list_all(rt, ns, label_selector=args.selector)
            found.extend((rt, obj) for obj in items)
    # kubectl shows events only when it describes exactly one object.
    with_events = args.show_events == "true" and len(found) == 1
    for i, (rt, obj) in enumerate(found):
        page = Page()
        await describe_object(cli, page, rt, obj)
        if with_events:
            await _events(cli, page, rt, obj)
        if i:
            cli.print()
            cli.print()
        cli.print(page.render())


async def describe_object(cli: Cli, page: Page, rt: ResourceType, obj: dict[str, Any]) -> None:
    if rt.kind == "Pod":
        _pod(page, obj)
    elif rt.kind == "Deployment":
        _deployment(page, obj)
    elif rt.kind == "ReplicaSet":
        await _replicaset(cli, page, obj)
    elif rt.kind == "Service":
        await _service(cli, page, obj)
    elif rt.kind in ("ConfigMap", "Secret"):
        _data(page, obj, secret=rt.kind == "Secret")
    else:
        _generic(page, obj)


def _selector_text(selector: dict[str, Any] | None) -> str:
    text = str(selector_from_model(selector or {}))
    return text or "<none>"


async def _replicaset(cli: Cli, page: Page, rs: dict[str, Any]) -> None:
    md = rs.get("metadata") or {}
    spec = rs.get("spec") or {}
    status = rs.get("status") or {}
    page.kv(0, "Name", md.get("name"))
    page.kv(0, "Namespace", md.get("namespace"))
    page.kv(0, "Selector", _selector_text(spec.get("selector")))
    page.map(0, "Labels", md.get("labels"))
    page.annotations(0, md.get("annotations"))
    if _controlled_by(rs):
        page.kv(0, "Controlled By", _controlled_by(rs))
    page.kv(0, "Replicas", f"{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired")
    phases = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    pods_rt = cli.scheme.resolve("pods")
    selector = str(selector_from_model(spec.get("selector") or {}))
    if pods_rt is not None and selector:
        pods, _ = await cli.client.list_all(pods_rt, md.get("namespace"), label_selector=selector)
        for pod in pods:
            uid = md.get("uid")
            owned = any(ref.get("uid") == uid for ref in (pod.get("metadata") or {}).get("ownerReferences") or [])
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            if (owned or not uid) and phase in phases:
                phases[phase] += 1
    page.kv(0, "Pods Status", f"{phases['Running']} Running / {phases['Pending']} Waiting / "
                              f"{phases['Succeeded']} Succeeded / {phases['Failed']} Failed")
    pod_template(page, spec.get("template") or {})
    _conditions(page, status.get("conditions") or [])


async def _service(cli: Cli, page: Page, svc: dict[str, Any]) -> None:
    md = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    _meta_block(page, svc, with_timestamp=False)
    page.kv(0, "Selector", ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>")
    page.kv(0, "Type", spec.get("type", "ClusterIP"))
    if spec.get("ipFamilyPolicy"):
        page.kv(0, "IP Family Policy", spec["ipFamilyPolicy"])
    page.kv(0, "IP Families", ",".join(spec.get("ipFamilies") or []) or "<none>")
    page.raw(f"IP:\t{spec.get('clusterIP') or ''}")
    page.kv(0, "IPs", ",".join(spec.get("clusterIPs") or []) or "<none>")
    if spec.get("externalIPs"):
        page.kv(0, "External IPs", ",".join(spec["externalIPs"]))
    ingress = [i.get("ip") or i.get("hostname") for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
    if ingress:
        page.kv(0, "LoadBalancer Ingress", ", ".join(str(i) for i in ingress))
    # Like kubectl 1.33+, endpoints come from the Service's EndpointSlices.
    slices: list[dict[str, Any]] = []
    slice_rt = cli.scheme.resolve("endpointslices")
    if slice_rt is not None:
        try:
            slices, _ = await cli.client.list_all(
                slice_rt, md.get("namespace"), label_selector=f"kubernetes.io/service-name={md.get('name')}"
            )
        except ApiError:
            slices = []
    for port in spec.get("ports") or []:
        proto = port.get("protocol", "TCP")
        page.raw(f"Port:\t{port.get('name') or '<unset>'}  {port.get('port')}/{proto}")
        target = port.get("targetPort", port.get("port"))
        page.raw(f"TargetPort:\t{target}/{proto}")
        if port.get("nodePort"):
            page.raw(f"NodePort:\t{port.get('name') or '<unset>'}  {port['nodePort']}/{proto}")
        page.kv(0, "Endpoints", endpoints_for(slices, port.get("name") or ""))
    page.kv(0, "Session Affinity", spec.get("sessionAffinity", "None"))
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        page.kv(0, "External Traffic Policy", spec.get("externalTrafficPolicy", "Cluster"))
    if spec.get("internalTrafficPolicy"):
        page.kv(0, "Internal Traffic Policy", spec["internalTrafficPolicy"])


def endpoints_for(slices: list[dict[str, Any]], port_name: str) -> str:
    """``10.0.0.5:8080,10.0.0.6:8080`` (three at most, then ``+ N more...``) for one service
    port, from EndpointSlices; endpoints whose ready condition is false are left out."""
    addresses: list[str] = []
    for sl in slices:
        ready = [e for e in sl.get("endpoints") or [] if (e.get("conditions") or {}).get("ready") is not False]
        for port in sl.get("ports") or []:
            if (port.get("name") or "") != port_name:
                continue
            for e in ready:
                if e.get("addresses"):
                    host = e["addresses"][0]
                    host = f"[{host}]" if ":" in host else host  # IPv6, as Go's JoinHostPort
                    addresses.append(f"{host}:{port.get('port')}")
    if not addresses:
        return "<none>"
    shown = ",".join(addresses[:3])
    return shown + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")


def _conditions(page: Page, conditions: list[dict[str, Any]]) -> None:
    if conditions:
        page.raw("Conditions:")
        page.raw("  Type\tStatus\tReason")
        page.raw("  ----\t------\t------")
        for cond in conditions:
            page.raw(f"  {cond.get('type')}\t{cond.get('status')}\t{cond.get('reason', '')}")


def _meta_block(page: Page, obj: dict[str, Any], *, with_timestamp: bool = True) -> None:
    md = obj.get("metadata") or {}
    page.kv(0, "Name", md.get("name"))
    if md.get("namespace"):
        page.kv(0, "Namespace", md.get("namespace"))
    if with_timestamp:
        page.kv(0, "CreationTimestamp", rfc1123(md.get("creationTimestamp")))
    page.map(0, "Labels", md.get("labels"))
    page.annotations(0, md.get("annotations"))


def _controlled_by(obj: dict[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return None


def _pod(page: Page, pod: dict[str, Any]) -> None:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    page.kv(0, "Name", md.get("name"))
    page.kv(0, "Namespace", md.get("namespace"))
    page.kv(0, "Priority", spec.get("priority", 0))
    if spec.get("serviceAccountName"):
        page.kv(0, "Service Account", spec.get("serviceAccountName"))
    node = spec.get("nodeName")
    page.kv(0, "Node", f"{node}/{status.get('hostIP')}" if node and status.get("hostIP") else node)
    if status.get("startTime"):
        page.kv(0, "Start Time", rfc1123(status.get("startTime")))
    page.map(0, "Labels", md.get("labels"))
    page.annotations(0, md.get("annotations"))
    phase = status.get("phase")
    if md.get("deletionTimestamp"):
        page.kv(0, "Status", f"Terminating (lasts {age_of(md['deletionTimestamp'])})")
        page.kv(0, "Termination Grace Period", f"{md.get('deletionGracePeriodSeconds', 0)}s")
    else:
        page.kv(0, "Status", phase)
    if status.get("reason"):
        page.kv(0, "Reason", status.get("reason"))
    if status.get("message"):
        page.kv(0, "Message", status.get("message"))
    page.raw(f"IP:\t{status.get('podIP') or ''}")
    ips = [i.get("ip") for i in status.get("podIPs") or []]
    if ips:
        page.head(0, "IPs")
        for ip in ips:
            page.kv(1, "IP", ip)
    else:
        page.kv(0, "IPs", "<none>")
    if _controlled_by(pod):
        page.kv(0, "Controlled By", _controlled_by(pod))
    statuses = {s.get("name"): s for s in status.get("containerStatuses") or []}
    if spec.get("initContainers"):
        init_statuses = {s.get("name"): s for s in status.get("initContainerStatuses") or []}
        page.head(0, "Init Containers")
        for c in spec["initContainers"]:
            _container(page, c, init_statuses.get(c.get("name")))
    page.head(0, "Containers")
    for c in spec.get("containers") or []:
        _container(page, c, statuses.get(c.get("name")))
    conditions = status.get("conditions") or []
    if conditions:
        page.raw("Conditions:")
        page.raw("  Type\tStatus")
        for cond in conditions:
            page.raw(f"  {cond.get('type')} \t{cond.get('status')} ")
    volumes = spec.get("volumes") or []
    if volumes:
        page.head(0, "Volumes")
        for v in volumes:
            page.head(1, str(v.get("name")))
            for kind, src in v.items():
                if kind == "name":
                    continue
                page.kv(2, "Type", kind)
                if isinstance(src, dict):
                    for k, val in src.items():
                        page.kv(2, smart_label(k), val)
    else:
        page.kv(0, "Volumes", "<none>")
    page.kv(0, "QoS Class", status.get("qosClass") or qos_class(spec))
    sel = spec.get("nodeSelector")
    page.kv(0, "Node-Selectors", ",".join(f"{k}={v}" for k, v in sorted(sel.items())) if sel else "<none>")
    tol = spec.get("tolerations") or []
    page.kv(0, "Tolerations", _toleration(tol[0]) if tol else "<none>")
    for t in tol[1:]:
        page.raw(f"\t{_toleration(t)}")


def _toleration(t: dict[str, Any]) -> str:
    s = str(t.get("key") or "")
    if t.get("value"):
        s += f"={t['value']}"
    if t.get("effect"):
        s += f":{t['effect']}"
    if t.get("operator") == "Exists" and not t.get("value"):
        s += " op=Exists" if s else "op=Exists"
    if t.get("tolerationSeconds") is not None:
        s += f" for {t['tolerationSeconds']}s"
    return s


def qos_class(spec: dict[str, Any]) -> str:
    """Kubernetes' QoS class (computed like kubectl does when status.qosClass is missing)."""
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    requests: dict[str, list[Any]] = {}
    limits: dict[str, list[Any]] = {}
    for c in containers:
        res = c.get("resources") or {}
        for k, v in (res.get("requests") or {}).items():
            requests.setdefault(k, []).append(v)
        for k, v in (res.get("limits") or {}).items():
            limits.setdefault(k, []).append(v)
    if not requests and not limits:
        return "BestEffort"
    for c in containers:
        res = c.get("resources") or {}
        lim = res.get("limits") or {}
        req = res.get("requests") or lim
        if any(k not in lim for k in ("cpu", "memory")) or any(req.get(k) != lim.get(k) for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


def _container(page: Page, c: dict[str, Any], st: dict[str, Any] | None, *, template: bool = False) -> None:
    # kubectl indents container names one space deeper inside a pod template.
    page.head(1, (" " if template else "") + str(c.get("name")))
    if st is not None:
        page.kv(2, "Container ID", st.get("containerID"))
    page.raw(f"    Image:\t{c.get('image') or ''}")
    if st is not None:
        page.kv(2, "Image ID", st.get("imageID"))
    ports = [f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}" for p in c.get("ports") or []]
    page.kv(2, "Port", ", ".join(ports) if ports else "<none>")
    host_ports = [f"{p.get('hostPort', 0)}/{p.get('protocol', 'TCP')}" for p in c.get("ports") or []]
    page.kv(2, "Host Port", ", ".join(host_ports) if host_ports else "<none>")
    if c.get("command"):
        page.head(2, "Command")
        for part in c["command"]:
            page.raw(f"      {part}")
    if c.get("args"):
        page.head(2, "Args")
        for part in c["args"]:
            page.raw(f"      {part}")
    if st is not None:
        _state(page, "State", st.get("state") or {})
        if st.get("lastState"):
            _state(page, "Last State", st.get("lastState") or {})
        page.kv(2, "Ready", st.get("ready", False))
        page.kv(2, "Restart Count", st.get("restartCount", 0))
    res = c.get("resources") or {}
    for key, label in (("limits", "Limits"), ("requests", "Requests")):
        if res.get(key):
            page.head(2, label)
            for k, v in sorted(res[key].items()):
                page.kv(3, k, v)
    env = c.get("env") or []
    if env:
        page.head(2, "Environment")
        for e in env:
            value = e.get("value")
            if value is None and e.get("valueFrom"):
                value = "<set from valueFrom>"
            page.kv(3, str(e.get("name")), value if value is not None else "")
    else:
        page.kv(2, "Environment", "<none>")
    mounts = c.get("volumeMounts") or []
    if mounts:
        page.head(2, "Mounts")
        for m in mounts:
            mode = "ro" if m.get("readOnly") else "rw"
            page.raw(f"      {m.get('mountPath')} from {m.get('name')} ({mode})")
    else:
        page.kv(2, "Mounts", "<none>")


def _state(page: Page, label: str, state: dict[str, Any]) -> None:
    if not state:
        page.kv(2, label, "Waiting")
        return
    name, detail = next(iter(state.items()))
    page.kv(2, label, name.capitalize())
    detail = detail or {}
    if name == "running":
        page.kv(3, "Started", rfc1123(detail.get("startedAt")))
    elif name == "waiting":
        if detail.get("reason"):
            page.kv(3, "Reason", detail.get("reason"))
    elif name == "terminated":
        page.kv(3, "Reason", detail.get("reason"))
        page.kv(3, "Exit Code", detail.get("exitCode", 0))
        page.kv(3, "Started", rfc1123(detail.get("startedAt")))
        page.kv(3, "Finished", rfc1123(detail.get("finishedAt")))


def _deployment(page: Page, d: dict[str, Any]) -> None:
    spec = d.get("spec") or {}
    status = d.get("status") or {}
    _meta_block(page, d)
    page.kv(0, "Selector", _selector_text(spec.get("selector")))
    replicas = spec.get("replicas", 1)
    unavailable = status.get("unavailableReplicas", 0)
    page.kv(
        0,
        "Replicas",
        f"{replicas} desired | {status.get('updatedReplicas', 0)} updated | {status.get('replicas', 0)} total | "
        f"{status.get('availableReplicas', 0)} available | {unavailable} unavailable",
    )
    strategy = spec.get("strategy") or {}
    page.kv(0, "StrategyType", strategy.get("type", "RollingUpdate"))
    page.kv(0, "MinReadySeconds", spec.get("minReadySeconds", 0))
    ru = strategy.get("rollingUpdate")
    if ru:
        page.kv(
            0,
            "RollingUpdateStrategy",
            f"{ru.get('maxUnavailable', '25%')} max unavailable, {ru.get('maxSurge', '25%')} max surge",
        )
    pod_template(page, spec.get("template") or {})
    _conditions(page, status.get("conditions") or [])


def pod_template(page: Page, template: dict[str, Any]) -> None:
    page.head(0, "Pod Template")
    page.map(1, "Labels", (template.get("metadata") or {}).get("labels"))
    if (template.get("metadata") or {}).get("annotations"):
        page.annotations(1, template["metadata"]["annotations"])
    page.head(1, "Containers")
    tspec = template.get("spec") or {}
    for c in tspec.get("containers") or []:
        _container(page, c, None, template=True)
    _template_tail(page, tspec)


def _data(page: Page, obj: dict[str, Any], *, secret: bool) -> None:
    """ConfigMaps show their values; Secrets only sizes (kubectl never prints secret values)."""
    _meta_block(page, obj, with_timestamp=False)
    if secret:
        page.raw("")
        page.kv(0, "Type", obj.get("type", "Opaque"))
        page.raw("")
        page.raw("Data")
        page.raw("====")
        for k, v in sorted((obj.get("data") or {}).items()):
            size = len(base64.b64decode(v)) if isinstance(v, str) else 0
            page.kv(0, k, f"{size} bytes")
        return
    page.raw("")
    page.raw("Data")
    page.raw("====")
    for k, v in sorted((obj.get("data") or {}).items()):
        page.raw(f"{k}:")
        page.raw("----")
        page.raw(str(v))
        page.raw("")
    page.raw("")
    page.raw("BinaryData")
    page.raw("====")
    for k, v in sorted((obj.get("binaryData") or {}).items()):
        page.raw(f"{k}: {len(base64.b64decode(v))} bytes")
    page.raw("")


def _template_tail(page: Page, spec: dict[str, Any]) -> None:
    volumes = spec.get("volumes") or []
    if volumes:
        page.head(1, "Volumes")
        for v in volumes:
            page.head(2, str(v.get("name")))
    else:
        page.kv(1, "Volumes", "<none>")
    sel = spec.get("nodeSelector")
    page.kv(1, "Node-Selectors", ",".join(f"{k}={v}" for k, v in sorted(sel.items())) if sel else "<none>")
    tol = spec.get("tolerations") or []
    page.kv(1, "Tolerations", _toleration(tol[0]) if tol else "<none>")
    for t in tol[1:]:
        page.raw(f"  \t{_toleration(t)}")


def _generic(page: Page, obj: dict[str, Any]) -> None:
    _meta_block(page, obj)
    for key, value in obj.items():
        if key in _SKIP_GENERIC:
            continue
        _generic_value(page, 0, smart_label(key), value)
    if "status" in obj:
        _generic_value(page, 0, "Status", obj["status"])


def _generic_value(page: Page, level: int, label: str, value: Any) -> None:
    if isinstance(value, dict) and value:
        page.head(level, label)
        for k, v in value.items():
            _generic_value(page, level + 1, smart_label(k) if _looks_like_field(k) else k, v)
    elif isinstance(value, list) and value:
        page.head(level, label)
        for item in value:
            if isinstance(item, dict):
                first = True
                for k, v in item.items():
                    sub = smart_label(k) if _looks_like_field(k) else k
                    if first and not isinstance(v, (dict, list)):
                        page.kv(level + 1, sub, v)
                    else:
                        _generic_value(page, level + 2 if not first else level + 1, sub, v)
                    first = False
            else:
                page.raw(f"{'  ' * (level + 1)}{_text(item)}")
    else:
        page.kv(level, label, value)


def _looks_like_field(key: str) -> bool:
    return bool(re.fullmatch(r"[a-z][A-Za-z0-9]*", key))


async def _events(cli: Cli, page: Page, rt: ResourceType, obj: dict[str, Any]) -> None:
    md = obj.get("metadata") or {}
    ev_rt = cli.scheme.resolve("events")
    if ev_rt is None:
        return
    selector = [f"involvedObject.name={md.get('name')}", f"involvedObject.kind={rt.kind}"]
    if md.get("namespace"):
        selector.append(f"involvedObject.namespace={md['namespace']}")
    if md.get("uid"):
        selector.append(f"involvedObject.uid={md['uid']}")
    try:
        items, _ = await cli.client.list_all(ev_rt, md.get("namespace") or None, field_selector=",".join(selector))
    except ApiError:
        items = []  # describe still shows the object when events cannot be listed
    if not items:
        page.kv(0, "Events", "<none>")
        return
    items.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or ""))
    page.raw("Events:")
    page.raw("  Type\tReason\tAge\tFrom\tMessage")
    page.raw("  ----\t------\t----\t----\t-------")
    for e in items:
        last = e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp")
        age = age_of(last)
        count = int(e.get("count") or 1)
        if count > 1 and e.get("firstTimestamp"):
            age = f"{age} (x{count} over {age_of(e['firstTimestamp'])})"
        source = e.get("source") or {}
        origin = source.get("component") or e.get("reportingComponent") or ""
        if source.get("host"):
            origin = f"{origin}, {source['host']}" if origin else source["host"]
        message = str(e.get("message") or "").strip()
        page.raw(f"  {e.get('type', '')}\t{e.get('reason', '')}\t{age}\t{origin}\t{message}")
