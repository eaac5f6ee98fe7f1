"""kubectl-lite as users run it (a subprocess with --kubeconfig) against a real control plane."""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def apiserver(bare_apiserver: Any) -> Any:
    """These tests are about the client and the API server: no controller touches their objects."""
    return bare_apiserver

KUBECTL_LITE = shutil.which("kubectl-lite") or ""


def _cmd() -> list[str]:
    # The installed entry point if there is one, else the module (same code either way).
    return [KUBECTL_LITE] if KUBECTL_LITE else [sys.executable, "-c", "from kubectl_lite.main import main; main()"]


class Kubectl:
    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace

    def argv(self, *args: str, namespaced: bool = True) -> list[str]:
        ns = ["-n", self.namespace] if namespaced else []
        return [*_cmd(), "--kubeconfig", str(self.kubeconfig), *ns, *args]

    def run(self, *args: str, stdin: str | None = None, namespaced: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv(*args, namespaced=namespaced), input=stdin, capture_output=True, text=True, timeout=120
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def ok(self, *args: str, stdin: str | None = None, namespaced: bool = True) -> str:
        result = self.run(*args, stdin=stdin, namespaced=namespaced)
        assert result.returncode == 0, f"{args}: rc={result.returncode}\n{result.stderr}"
        return result.stdout


@pytest.fixture
def kl(apiserver: Any, namespace: str) -> Kubectl:
    return Kubectl(apiserver.kubeconfig, namespace)


def _deployment(name: str, replicas: int = 2, image: str = "nginx:1.25", labels: dict[str, str] | None = None) -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    })


def _cm(name: str, labels: dict[str, str] | None = None, data: dict[str, str] | None = None) -> str:
    md: dict[str, Any] = {"name": name}
    if labels:
        md["labels"] = labels
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data or {"k": "v"}})


def test_apply_created_unchanged_configured(kl: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "web.yaml"
    f.write_text(_deployment("web") + "---\n" + _cm("web-config"))
    assert kl.ok("apply", "-f", str(f)).splitlines() == ["deployment.apps/web created", "configmap/web-config created"]
    assert kl.ok("apply", "-f", str(f)).splitlines() == ["deployment.apps/web unchanged", "configmap/web-config unchanged"]
    f.write_text(_deployment("web", replicas=3, image="nginx:1.26") + "---\n" + _cm("web-config"))
    assert kl.ok("apply", "-f", str(f)).splitlines() == ["deployment.apps/web configured", "configmap/web-config unchanged"]
    live = json.loads(kl.ok("get", "deployment", "web", "-o", "json"))
    assert live["spec"]["replicas"] == 3
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    applied = json.loads(live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert applied["spec"]["replicas"] == 3
    assert applied["metadata"]["namespace"] == kl.namespace


def test_apply_removes_fields_dropped_from_the_manifest(kl: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "cm.yaml"
    f.write_text(_cm("c", labels={"keep": "1", "drop": "1"}, data={"a": "1", "b": "2"}))
    kl.ok("apply", "-f", str(f))
    f.write_text(_cm("c", labels={"keep": "1"}, data={"a": "1"}))
    assert kl.ok("apply", "-f", str(f)).strip() == "configmap/c configured"
    live = json.loads(kl.ok("get", "cm", "c", "-o", "json"))
    assert live["data"] == {"a": "1"}
    assert live["metadata"]["labels"] == {"keep": "1"}


def test_apply_directory_recursively_and_stdin(kl: Kubectl, tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "a.yaml").write_text(_cm("dir-a"))
    (tmp_path / "sub" / "deeper" / "b.json").write_text(json.dumps(yaml.safe_load(_cm("dir-b"))))
    (tmp_path / "README.md").write_text("# not a manifest\n")
    assert kl.ok("apply", "-f", str(tmp_path)).splitlines() == ["configmap/dir-a created"]
    assert kl.ok("apply", "-R", "-f", str(tmp_path)).splitlines() == [
        "configmap/dir-a unchanged",
        "configmap/dir-b created",
    ]
    assert kl.ok("apply", "-f", "-", stdin=_cm("from-stdin")).strip() == "configmap/from-stdin created"
    assert kl.ok("get", "cm", "-o", "name").split() == [
        "configmap/dir-a", "configmap/dir-b", "configmap/from-stdin",
    ]


def test_apply_server_dry_run_stores_nothing(kl: Kubectl) -> None:
    out = kl.ok("apply", "--dry-run=server", "-f", "-", stdin=_cm("dry"))
    assert out.strip() == "configmap/dry created (server dry run)"
    r = kl.run("get", "cm", "dry")
    assert r.returncode == 1
    assert r.stderr.strip() == 'Error from server (NotFound): configmaps "dry" not found'


def _columns(line: str, gap: int = 3) -> list[str]:
    """Cells of a table line (kubectl pads tables with 3 spaces, describe pages with 2)."""
    return re.split(rf" {{{gap},}}", line.strip())


def test_get_tables(kl: Kubectl) -> None:
    kl.ok("apply", "-f", "-", stdin=_deployment("web") + "---\n" + _cm("one", labels={"tier": "a"}) + "---\n"
          + _cm("two", labels={"tier": "b"}))
    lines = kl.ok("get", "deploy").splitlines()
    assert _columns(lines[0]) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].startswith("web    ")
    # Columns are separated by at least three spaces and aligned under their headers.
    assert lines[0].index("READY") == lines[1].index(_columns(lines[1])[1])
    assert re.fullmatch(r"\d+s", _columns(lines[1])[-1])

    wide = kl.ok("get", "deploy", "-o", "wide").splitlines()
    assert _columns(wide[0]) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert _columns(wide[1])[-3:] == ["main", "nginx:1.25", "app=web"]

    cms = kl.ok("get", "configmaps", "-l", "tier=b", "--show-labels").splitlines()
    assert _columns(cms[0]) == ["NAME", "DATA", "AGE", "LABELS"]
    assert [_columns(line)[0] for line in cms[1:]] == ["two"]
    assert _columns(cms[1])[-1] == "tier=b"

    every = kl.ok("get", "cm", "-A", namespaced=False).splitlines()
    assert _columns(every[0])[:2] == ["NAMESPACE", "NAME"]
    assert [kl.namespace, "one"] in [_columns(line)[:2] for line in every[1:]]

    both = kl.ok("get", "deploy/web", "cm/one").split("\n\n")
    assert _columns(both[0].splitlines()[1])[0] == "deployment.apps/web"
    assert _columns(both[1].splitlines()[1])[0] == "configmap/one"


def test_get_yaml_json_name(kl: Kubectl) -> None:
    kl.ok("apply", "-f", "-", stdin=_cm("one") + "---\n" + _cm("two"))
    one = yaml.safe_load(kl.ok("get", "cm", "one", "-o", "yaml"))
    assert (one["kind"], one["apiVersion"], one["metadata"]["name"]) == ("ConfigMap", "v1", "one")
    both = json.loads(kl.ok("get", "cm", "-o", "json"))
    assert both["kind"] == "List"
    assert [(i["kind"], i["metadata"]["name"]) for i in both["items"]] == [("ConfigMap", "one"), ("ConfigMap", "two")]
    assert kl.ok("get", "cm", "one", "two", "-o", "name").split() == ["configmap/one", "configmap/two"]
    assert kl.ok("get", "cm", "-o", "jsonpath={.items[*].metadata.name}") == "one two"
    assert kl.ok("get", "cm", "one", "-o", "jsonpath={.data.k}") == "v"
    kl.ok("apply", "-f", "-", stdin=_cm("zero", data={"k": "0"}))
    table = kl.ok("get", "cm", "--sort-by=.data.k").splitlines()
    assert [_columns(line)[0] for line in table[1:]] == ["zero", "one", "two"]
    assert kl.ok("get", "cm", "--sort-by={.metadata.name}", "-o", "name").split() == [
        "configmap/one", "configmap/two", "configmap/zero",
    ]
    kl.ok("delete", "cm", "zero")
    cols = kl.ok("get", "cm", "-o", "custom-columns=N:.metadata.name,K:.data.k").splitlines()
    assert [_columns(line) for line in cols] == [["N", "K"], ["one", "v"], ["two", "v"]]


def test_get_nothing_and_errors(kl: Kubectl, apiserver: Any) -> None:
    r = kl.run("get", "pods")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", f"No resources found in {kl.namespace} namespace.\n")

    r = kl.run("get", "cm", "missing")
    assert r.returncode == 1
    assert r.stderr == 'Error from server (NotFound): configmaps "missing" not found\n'

    r = kl.run("get", "flux")
    assert r.returncode == 1
    assert r.stderr == 'error: the server doesn\'t have a resource type "flux"\n'

    r = kl.run("apply", "-f", "-", stdin=_cm("x"), namespaced=False)  # into the kubeconfig's namespace
    assert r.returncode == 0
    r = kl.run("apply", "-n", "no-such-ns-" + uuid.uuid4().hex[:6], "-f", "-", stdin=_cm("x"), namespaced=False)
    assert r.returncode == 1
    assert re.fullmatch(r'Error from server \(NotFound\): error when creating "STDIN": namespaces "no-such-ns-\w+" not found\n', r.stderr)

    r = kl.run("apply", "-f", "/does/not/exist.yaml")
    assert (r.returncode, r.stderr) == (1, 'error: the path "/does/not/exist.yaml" does not exist\n')

    r = kl.run("apply", "-f", "-", stdin="apiVersion: v1\nkind: Gizmo\nmetadata: {name: g}\n")
    assert r.returncode == 1
    assert 'no matches for kind "Gizmo" in version "v1"' in r.stderr

    from tests.fixtures.apiserver import free_port

    cfg = yaml.safe_load(Path(apiserver.kubeconfig).read_text())
    port = free_port()
    cfg["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    dead = Path(apiserver.data_dir) / f"dead-{uuid.uuid4().hex[:6]}.kubeconfig"
    dead.write_text(yaml.safe_dump(cfg))
    try:
        r = subprocess.run([*_cmd(), "--kubeconfig", str(dead), "get", "pods"], capture_output=True, text=True, timeout=60)
    finally:
        dead.unlink()
    assert r.returncode == 1
    assert r.stderr == (
        f"The connection to the server 127.0.0.1:{port} was refused - did you specify the right host or port?\n"
    )


def test_delete_by_name_selector_and_file(kl: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "cms.yaml"
    f.write_text(_cm("f1") + "---\n" + _cm("f2"))
    kl.ok("apply", "-f", "-", stdin=_cm("a") + "---\n" + _cm("b") + "---\n" + _cm("l1", labels={"x": "y"})
          + "---\n" + _cm("l2", labels={"x": "y"}))
    kl.ok("apply", "-f", str(f))
    ns = kl.namespace
    assert kl.ok("delete", "cm", "a", "b").splitlines() == [
        f'configmap "a" deleted from {ns} namespace',
        f'configmap "b" deleted from {ns} namespace',
    ]
    assert kl.ok("delete", "cm", "-l", "x=y").splitlines() == [
        f'configmap "l1" deleted from {ns} namespace',
        f'configmap "l2" deleted from {ns} namespace',
    ]
    assert kl.ok("delete", "-f", str(f), "--wait=false").splitlines() == [
        f'configmap "f1" deleted from {ns} namespace',
        f'configmap "f2" deleted from {ns} namespace',
    ]
    r = kl.run("get", "cm")
    assert "No resources found" in r.stderr
    r = kl.run("delete", "cm", "a")
    assert (r.returncode, r.stderr) == (1, 'Error from server (NotFound): configmaps "a" not found\n')
    assert kl.run("delete", "cm", "a", "--ignore-not-found").returncode == 0


def test_delete_waits_until_the_object_is_gone(kl: Kubectl) -> None:
    kl.ok("apply", "-f", "-", stdin=_deployment("gone", replicas=0))
    kl.ok("delete", "deployment", "gone")
    r = kl.run("get", "deploy", "gone")
    assert r.returncode == 1, "delete returned before the object was removed"


def test_describe_shows_fields_and_events(kl: Kubectl) -> None:
    kl.ok("apply", "-f", "-", stdin=_cm("conf", labels={"app": "x"}, data={"greeting": "hello"}))
    out = kl.ok("describe", "configmap", "conf")
    lines = out.splitlines()
    assert lines[0] == "Name:         conf"
    assert lines[1] == f"Namespace:    {kl.namespace}"
    assert "Labels:       app=x" in lines
    assert "Annotations:  <none>" in lines, "the last-applied annotation is hidden like kubectl does"
    assert lines[lines.index("greeting:") + 1 : lines.index("greeting:") + 3] == ["----", "hello"]
    assert lines[-1] == "Events:  <none>"

    kl.ok("apply", "-f", "-", stdin=_deployment("web"))
    uid = json.loads(kl.ok("get", "deploy", "web", "-o", "json"))["metadata"]["uid"]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web.1"},
        "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": kl.namespace, "uid": uid},
        "reason": "TestedByKubectlLite",
        "message": "Scaled up replica set web-abc to 2",
        "type": "Normal",
        "source": {"component": "test-component"},
        "count": 1,
    }
    other = dict(event, metadata={"name": "other.1"}, involvedObject=dict(event["involvedObject"], name="other"), reason="Other")
    kl.ok("apply", "-f", "-", stdin=json.dumps(event) + "\n---\n" + json.dumps(other))
    out = kl.ok("describe", "deploy", "web")
    assert "Replicas:               2 desired | " in out
    events = out[out.index("Events:"):].splitlines()
    assert _columns(events[1], 2) == ["Type", "Reason", "Age", "From", "Message"]
    # A running deployment controller may add its own events; ours is there, the other object's is not.
    ours = [_columns(line, 2) for line in events[3:] if _columns(line, 2)[1] == "TestedByKubectlLite"]
    assert [row[3:] for row in ours] == [["test-component", "Scaled up replica set web-abc to 2"]]
    assert all(_columns(line, 2)[1] != "Other" for line in events[3:])

    r = kl.run("describe", "pod", "nope")
    assert (r.returncode, r.stderr) == (1, 'Error from server (NotFound): pods "nope" not found\n')


def test_get_watch_prints_changes(kl: Kubectl) -> None:
    kl.ok("apply", "-f", "-", stdin=_cm("before"))
    proc = subprocess.Popen(kl.argv("get", "cm", "-w"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert _columns(lines.get(timeout=60)) == ["NAME", "DATA", "AGE"]
        assert _columns(lines.get(timeout=60))[0] == "before"
        kl.ok("apply", "-f", "-", stdin=_cm("during"))
        assert _columns(lines.get(timeout=60))[0] == "during"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=10)


def test_kubeconfig_env_context_flag_and_cluster_scoped_objects(apiserver: Any, tmp_path: Path) -> None:
    import os

    env = {**os.environ, "KUBECONFIG": f"{tmp_path / 'absent'}:{apiserver.kubeconfig}"}
    r = subprocess.run([*_cmd(), "get", "namespace", "default", "-o", "name"], capture_output=True, text=True, env=env, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "namespace/default\n", "")

    r = subprocess.run([*_cmd(), "--context", "nope", "get", "pods"], capture_output=True, text=True, env=env, timeout=60)
    assert (r.returncode, r.stderr) == (1, 'error: context "nope" does not exist\n')

    name = f"kl-{uuid.uuid4().hex[:8]}"
    ns_yaml = yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    r = subprocess.run([*_cmd(), "apply", "-f", "-"], input=ns_yaml, capture_output=True, text=True, env=env, timeout=60)
    assert (r.returncode, r.stdout) == (0, f"namespace/{name} created\n")
    r = subprocess.run([*_cmd(), "delete", "namespace", name, "--wait=false"], capture_output=True, text=True, env=env, timeout=60)
    assert (r.returncode, r.stdout) == (0, f'namespace "{name}" deleted\n')


def test_create_replace_patch_scale_label(kl: Kubectl, tmp_path: Path) -> None:
    f = tmp_path / "d.yaml"
    f.write_text(_deployment("web", replicas=1))
    assert kl.ok("create", "-f", str(f)).strip() == "deployment.apps/web created"
    r = kl.run("create", "-f", str(f))
    assert r.returncode == 1
    assert r.stderr == f'Error from server (AlreadyExists): error when creating "{f}": deployments.apps "web" already exists\n'
    f.write_text(_deployment("web", replicas=2))
    assert kl.ok("replace", "-f", str(f)).strip() == "deployment.apps/web replaced"
    assert kl.ok("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}") == "2"

    assert kl.ok("scale", "deploy", "web", "--replicas=4").strip() == "deployment.apps/web scaled"
    assert kl.ok("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}") == "4"

    patch = '{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"nginx:2"}]}}}}'
    assert kl.ok("patch", "deploy", "web", "-p", patch).strip() == "deployment.apps/web patched"
    assert kl.ok("patch", "deploy/web", "-p", patch).strip() == "deployment.apps/web patched (no change)"
    live = json.loads(kl.ok("get", "deploy", "web", "-o", "json"))
    assert [(c["name"], c["image"]) for c in live["spec"]["template"]["spec"]["containers"]] == [("main", "nginx:2")]
    assert kl.ok("patch", "deploy", "web", "--type", "json", "-p", '[{"op":"replace","path":"/spec/replicas","value":1}]').strip() == (
        "deployment.apps/web patched"
    )

    assert kl.ok("label", "deploy", "web", "tier=front").strip() == "deployment.apps/web labeled"
    r = kl.run("label", "deploy", "web", "tier=back")
    assert (r.returncode, r.stderr) == (1, "error: 'tier' already has a value (front), and --overwrite is false\n")
    assert kl.ok("label", "deploy", "web", "tier=back", "--overwrite").strip() == "deployment.apps/web labeled"
    assert kl.ok("get", "deploy", "-l", "tier=back", "-o", "name").strip() == "deployment.apps/web"
    assert kl.ok("label", "deploy", "web", "tier-").strip() == "deployment.apps/web unlabeled"
    assert kl.ok("annotate", "deploy", "web", "note=hi").strip() == "deployment.apps/web annotated"
    assert kl.ok("get", "deploy", "web", "-o", "jsonpath={.metadata.annotations.note}") == "hi"
    r = kl.run("scale", "cm", "x", "--replicas=1")
    assert r.returncode == 1 and "scale subresource" in r.stderr


def test_wait_for_condition_jsonpath_and_delete(kl: Kubectl) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "w"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    kl.ok("apply", "-f", "-", stdin=json.dumps(pod))
    waiter = subprocess.Popen(kl.argv("wait", "--for=condition=Ready", "pod/w", "--timeout=120s"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        kl.ok("patch", "pod", "w", "--subresource", "status", "--type", "merge",
              "-p", '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}')
        out, err = waiter.communicate(timeout=120)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert (waiter.returncode, out, err) == (0, "pod/w condition met\n", "")

    r = kl.run("wait", "--for=jsonpath={.spec.nodeName}=nowhere", "pod/w", "--timeout=1s")
    assert (r.returncode, r.stderr) == (1, "error: timed out waiting for the condition on pods/w\n")

    kl.ok("delete", "pod", "w", "--wait=false")
    assert kl.ok("wait", "--for=delete", "pod/w", "--timeout=120s") == "pod/w deleted\n"


def kl_server(kl: Kubectl) -> str:
    return str(yaml.safe_load(kl.kubeconfig.read_text())["clusters"][0]["cluster"]["server"])


def test_api_resources_and_version(kl: Kubectl) -> None:
    lines = kl.ok("api-resources").splitlines()
    assert _columns(lines[0]) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert ["deployments", "deploy", "apps/v1", "true", "Deployment"] in [_columns(line) for line in lines]
    assert kl.ok("cluster-info").splitlines()[0] == f"Kubernetes control plane is running at {kl_server(kl)}"
    out = kl.ok("version").splitlines()
    assert out[0].startswith("Client Version: v")
    assert out[1].startswith("Server Version: v1.")


def test_rollout_restart_and_status(kl: Kubectl) -> None:
    kl.ok("apply", "-f", "-", stdin=_deployment("ro", replicas=0))
    assert kl.ok("rollout", "restart", "deployment", "ro").strip() == "deployment.apps/ro restarted"
    live = json.loads(kl.ok("get", "deploy", "ro", "-o", "json"))
    assert "kubectl.kubernetes.io/restartedAt" in live["spec"]["template"]["metadata"]["annotations"]
    # Report the rollout as done through the status subresource (what the controller would do;
    # with zero replicas a real deployment controller writes the same numbers).
    status = {"status": {"observedGeneration": live["metadata"]["generation"], "replicas": 0,
                         "updatedReplicas": 0, "availableReplicas": 0}}
    kl.ok("patch", "deploy", "ro", "--subresource", "status", "--type", "merge", "-p", json.dumps(status))
    out = kl.ok("rollout", "status", "deploy/ro", "--timeout=120s")
    assert out.splitlines()[-1] == 'deployment "ro" successfully rolled out'


def test_create_save_config_then_apply_and_replace_missing(kl: Kubectl) -> None:
    assert kl.ok("create", "--save-config", "-f", "-", stdin=_cm("saved")).strip() == "configmap/saved created"
    assert kl.ok("apply", "-f", "-", stdin=_cm("saved")).strip() == "configmap/saved unchanged"
    r = kl.run("create", "-f", "-", stdin=_cm("plain"))
    assert r.returncode == 0
    r = kl.run("apply", "-f", "-", stdin=_cm("plain", data={"k": "changed"}))
    assert r.returncode == 0
    assert "is missing the kubectl.kubernetes.io/last-applied-configuration annotation" in r.stderr
    assert r.stdout.strip() == "configmap/plain configured"
    r = kl.run("replace", "-f", "-", stdin=_cm("absent"))
    assert (r.returncode, r.stderr) == (1, 'Error from server (NotFound): error when replacing "STDIN": configmaps "absent" not found\n')


def test_logs_and_exec_report_server_refusals(kl: Kubectl) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lx"},
           "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]}}
    kl.ok("apply", "-f", "-", stdin=json.dumps(pod))
    # No node runs the pod: its log is empty (as in Kubernetes), and exec is refused with a
    # Status shown in one line.
    r = kl.run("logs", "lx", "-c", "a")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    r = kl.run("exec", "lx", "-c", "a", "--", "true")
    assert (r.returncode, r.stderr) == (1, "Error from server (BadRequest): pod lx does not have a host assigned\n")
    r = kl.run("logs", "lx")
    assert r.stderr.splitlines()[0] == 'Defaulted container "a" out of: a, b'
    r = kl.run("logs", "missing")
    assert (r.returncode, r.stderr) == (1, 'Error from server (NotFound): pods "missing" not found\n')


def test_apply_validates_unknown_fields_like_kubectl(kl: Kubectl) -> None:
    doc = {**yaml.safe_load(_cm("uf")), "bogus": 1}
    r = kl.run("apply", "-f", "-", stdin=json.dumps(doc))
    assert r.returncode == 1
    assert r.stderr == (
        'Error from server (BadRequest): error when creating "STDIN": ConfigMap in version "v1" cannot be handled as a '
        'ConfigMap: strict decoding error: unknown field "bogus"\n')
    r = kl.run("apply", "--validate=warn", "-f", "-", stdin=json.dumps(doc))
    assert (r.returncode, r.stdout, r.stderr) == (0, "configmap/uf created\n", 'Warning: unknown field "bogus"\n')


def test_describe_service_and_replicaset(kl: Kubectl) -> None:
    docs = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
         "spec": {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "svc-1", "labels": {"kubernetes.io/service-name": "svc"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": True}},
                       {"addresses": ["10.1.0.2"], "conditions": {"ready": False}}]},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "rs"}},
                  "template": {"metadata": {"labels": {"app": "rs"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
    ]
    kl.ok("apply", "-f", "-", stdin="\n---\n".join(json.dumps(d) for d in docs))
    svc = kl.ok("describe", "service", "svc").splitlines()
    assert "Selector:                 app=x" in svc
    assert "Port:                     http  80/TCP" in svc
    assert "TargetPort:               8080/TCP" in svc
    assert "Endpoints:                10.1.0.1:8080" in svc
    rs = kl.ok("describe", "rs", "rs").splitlines()
    assert "Selector:     app=rs" in rs
    assert any(line.startswith("Replicas:") and line.endswith("/ 2 desired") for line in rs)
    assert any(line.startswith("Pods Status:") for line in rs)
