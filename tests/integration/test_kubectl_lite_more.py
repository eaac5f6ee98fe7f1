"""kubectl-lite's everyday commands beyond get/apply: edit, events, explain, rollout history/undo/
pause/resume and live status, config, completion and top, run as users run them (a subprocess
with --kubeconfig) against the API-only control plane, checking exit codes, output and objects.

Where the real kubectl is installed, explain's and events' output is compared with kubectl's own
against the same server."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from apimachinery import pki
from kubectl_lite.edit import HEADER
from tests.integration.test_kubectl_lite import Kubectl, _cm, _cmd, _columns, _deployment

pytestmark = pytest.mark.integration

KUBECTL = shutil.which("kubectl")


@pytest.fixture(scope="session")
def apiserver(bare_apiserver: Any) -> Any:
    """No controller touches these tests' objects: the tests play the deployment controller."""
    return bare_apiserver


@pytest.fixture
def kl(apiserver: Any, namespace: str) -> Kubectl:
    return Kubectl(apiserver.kubeconfig, namespace)


class Background:
    """A kubectl-lite command left running (watches), read line by line."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def line(self) -> str:
        return self.lines.get(timeout=60)

    def finish(self) -> tuple[int, str]:
        rc = self.proc.wait(timeout=60)
        assert self.proc.stderr is not None
        return rc, self.proc.stderr.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        self.reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _editor(tmp_path: Path, sed: str) -> str:
    """An editor script: keeps a copy of what it was given, then edits the file with sed."""
    script = tmp_path / "editor.sh"
    script.write_text(f'#!/bin/sh\ncp "$1" "{tmp_path}/given"\nsed -i \'{sed}\' "$1"\n')
    script.chmod(0o755)
    return str(script)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBE_EDITOR", "EDITOR")}
    env.update(extra)
    return env


def _run(kl: Kubectl, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(kl.argv(*args), capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    return r


# ---------------------------------------------------------------------------------------------
# edit


def _stored_copy(stderr: str) -> Path:
    m = re.search(r'A copy of your changes has been stored to "([^"]+)"', stderr)
    assert m, stderr
    return Path(m.group(1))


def test_edit_patches_what_the_editor_changed(kl: Kubectl, tmp_path: Path) -> None:
    kl.ok("apply", "-f", "-", stdin=_cm("ed", data={"a": "1", "b": "2"}))
    before = json.loads(kl.ok("get", "cm", "ed", "-o", "json"))
    r = _run(kl, "edit", "cm", "ed", env=_env(EDITOR=_editor(tmp_path, 's/^  a: "1"/  a: "9"/')))
    assert (r.returncode, r.stdout, r.stderr) == (0, "configmap/ed edited\n", "")
    given = (tmp_path / "given").read_text()
    # kubectl's header, then the live object as YAML.
    assert given.startswith(HEADER)
    shown = yaml.safe_load(given[len(HEADER):])
    assert shown["kind"] == "ConfigMap" and shown["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    live = json.loads(kl.ok("get", "cm", "ed", "-o", "json"))
    assert live["data"] == {"a": "9", "b": "2"}
    # Only the edited field changed; the last-applied annotation apply wrote is still there.
    assert live["metadata"]["annotations"] == before["metadata"]["annotations"]

    # KUBE_EDITOR wins over EDITOR, and a command with spaces runs through the shell.
    r = _run(kl, "edit", "cm/ed", env=_env(KUBE_EDITOR="sed -i /^\\ \\ b:/d", EDITOR="false"))
    assert (r.returncode, r.stdout) == (0, "configmap/ed edited\n"), r.stderr
    assert json.loads(kl.ok("get", "cm", "ed", "-o", "json"))["data"] == {"a": "9"}


def test_edit_strategic_patch_keeps_list_elements_by_merge_key(kl: Kubectl, tmp_path: Path) -> None:
    d = yaml.safe_load(_deployment("eddep", replicas=1))
    d["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox:1.36"})
    kl.ok("apply", "-f", "-", stdin=yaml.safe_dump(d))
    r = _run(kl, "edit", "deployment", "eddep", env=_env(EDITOR=_editor(tmp_path, "s/busybox:1.36/busybox:1.37/")))
    assert (r.returncode, r.stdout) == (0, "deployment.apps/eddep edited\n"), r.stderr
    containers = json.loads(kl.ok("get", "deploy", "eddep", "-o", "json"))["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("main", "nginx:1.25"), ("side", "busybox:1.37")]


def test_edit_cancelled_and_failed_edits(kl: Kubectl, tmp_path: Path) -> None:
    kl.ok("apply", "-f", "-", stdin=_cm("edx"))
    rv = json.loads(kl.ok("get", "cm", "edx", "-o", "json"))["metadata"]["resourceVersion"]

    r = _run(kl, "edit", "cm", "edx", env=_env(EDITOR="true"))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "Edit cancelled, no changes made.\n")
    r = _run(kl, "edit", "cm", "edx", env=_env(KUBE_EDITOR="sed -i /^[^#]/d"))
    assert (r.returncode, r.stderr) == (0, "Edit cancelled, saved file was empty.\n")

    # Renaming is refused before anything is sent; the user's text is kept.
    r = _run(kl, "edit", "cm", "edx", env=_env(EDITOR=_editor(tmp_path, "s/^  name: edx/  name: other/")))
    assert r.returncode == 1 and r.stdout == ""
    assert "error: At least one of apiVersion, kind and name was changed" in r.stderr
    kept = _stored_copy(r.stderr)
    try:
        assert "name: other" in kept.read_text()
    finally:
        kept.unlink()

    # The server refuses an unknown field (kubectl edit validates strictly): exit 1, file kept.
    r = _run(kl, "edit", "cm", "edx", env=_env(EDITOR=_editor(tmp_path, "s/^data:/bogus:/")))
    assert r.returncode == 1
    m = re.search(r'error: configmaps "edx" could not be patched: .*unknown field "bogus"', r.stderr)
    assert m, r.stderr
    m2 = re.search(r"You can run `kubectl-lite replace -f (\S+)` to try this update again.", r.stderr)
    assert m2, r.stderr
    Path(m2.group(1)).unlink()

    # Not YAML at all.
    r = _run(kl, "edit", "cm", "edx", env=_env(KUBE_EDITOR="sed -i s/^data:/data:\\ [/"))
    assert r.returncode == 1 and "error: error parsing edited object" in r.stderr
    _stored_copy(r.stderr).unlink()

    r = _run(kl, "edit", "cm", "missing", env=_env(EDITOR="true"))
    assert (r.returncode, r.stderr) == (1, 'Error from server (NotFound): configmaps "missing" not found\n')
    # None of that changed the object.
    assert json.loads(kl.ok("get", "cm", "edx", "-o", "json"))["metadata"]["resourceVersion"] == rv


# ---------------------------------------------------------------------------------------------
# events


def _stamp(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(name: str, kind: str, obj: str, reason: str, type_: str, message: str,
           first: float, last: float, count: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
        "involvedObject": {"apiVersion": "apps/v1" if kind == "Deployment" else "v1", "kind": kind, "name": obj},
        "reason": reason, "type": type_, "message": message, "count": count,
        "firstTimestamp": _stamp(first), "lastTimestamp": _stamp(last), "source": {"component": "kl-test"},
    }


def _create_events(kl: Kubectl, *events: dict[str, Any]) -> None:
    for ev in events:
        ev["involvedObject"]["namespace"] = kl.namespace
    kl.ok("create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(events)}))


def test_events_table_filters_and_ordering(kl: Kubectl) -> None:
    r = kl.run("events")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", f"No events found in {kl.namespace} namespace.\n")
    # Created out of order: the table is ordered by when each event last happened.
    _create_events(
        kl,
        _event("e-backoff", "Pod", "p1", "BackOff", "Warning", "Back-off restarting", 10, 2, count=7),
        _event("e-sched", "Pod", "p1", "Scheduled", "Normal", "Assigned p1", 30, 30),
        _event("e-scale", "Deployment", "web", "ScalingReplicaSet", "Normal", "Scaled up", 20, 5, count=3),
    )
    lines = kl.ok("events").splitlines()
    assert _columns(lines[0]) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    rows = [_columns(line) for line in lines[1:]]
    assert [r[1:] for r in rows] == [
        ["Normal", "Scheduled", "Pod/p1", "Assigned p1"],
        ["Normal", "ScalingReplicaSet", "Deployment/web", "Scaled up"],
        ["Warning", "BackOff", "Pod/p1", "Back-off restarting"],
    ]
    assert rows[0][0] == "30m"
    assert re.fullmatch(r"5m\d*s? \(x3 over 20m\d*s?\)", rows[1][0]), rows[1][0]
    assert re.fullmatch(r"2m\d*s? \(x7 over 10m\d*s?\)", rows[2][0]), rows[2][0]

    for_pod = [_columns(line)[1:3] for line in kl.ok("events", "--for", "pod/p1").splitlines()[1:]]
    assert for_pod == [["Normal", "Scheduled"], ["Warning", "BackOff"]]
    warnings = [_columns(line)[2] for line in kl.ok("events", "--types=warning").splitlines()[1:]]
    assert warnings == ["BackOff"]
    both = kl.ok("events", "--types", "Normal,Warning", "--for", "deployment/web").splitlines()
    assert [_columns(line)[2] for line in both[1:]] == ["ScalingReplicaSet"]

    everywhere = kl.ok("events", "-A", namespaced=False).splitlines()
    assert _columns(everywhere[0]) == ["NAMESPACE", "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    mine = [_columns(line) for line in everywhere[1:] if line.startswith(kl.namespace + " ")]
    assert [r[3] for r in mine] == ["Scheduled", "ScalingReplicaSet", "BackOff"]

    listed = json.loads(kl.ok("events", "-o", "json"))
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == ["e-sched", "e-scale", "e-backoff"]

    r = kl.run("events", "--types", "Bogus")
    assert (r.returncode, r.stderr) == (1, "error: valid --types are Normal or Warning\n")
    r = kl.run("events", "--for", "p1")
    assert (r.returncode, r.stderr) == (1, "error: --for must be in resource/name form\n")


@pytest.mark.skipif(KUBECTL is None, reason="the real kubectl is not installed")
def test_events_match_kubectl(kl: Kubectl) -> None:
    _create_events(
        kl,
        _event("m1", "Pod", "p1", "Scheduled", "Normal", "Assigned p1", 50, 50),
        _event("m2", "Deployment", "web", "ScalingReplicaSet", "Normal", "Scaled up", 40, 40, count=4),
        _event("m3", "Pod", "p1", "BackOff", "Warning", "Back-off restarting", 45, 30, count=2),
    )
    # Whole minutes ago: both tools print the same ages even a few seconds apart.
    for args in ([], ["--for", "pod/p1"], ["--types", "Warning"]):
        ours = kl.ok("events", *args)
        theirs = subprocess.run([str(KUBECTL), "--kubeconfig", str(kl.kubeconfig), "-n", kl.namespace, "events", *args],
                                capture_output=True, text=True, timeout=60)
        assert theirs.returncode == 0, theirs.stderr
        assert ours == theirs.stdout


def test_events_watch_prints_new_events(kl: Kubectl) -> None:
    _create_events(kl, _event("w1", "Pod", "p1", "Scheduled", "Normal", "Assigned p1", 3, 3))
    bg = Background(kl.argv("events", "-w"))
    try:
        assert _columns(bg.line()) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        assert _columns(bg.line())[1:] == ["Normal", "Scheduled", "Pod/p1", "Assigned p1"]
        _create_events(kl, _event("w2", "Pod", "p1", "Killing", "Normal", "Stopping container main", 0, 0))
        assert _columns(bg.line())[1:] == ["Normal", "Killing", "Pod/p1", "Stopping container main"]
    finally:
        bg.stop()


# ---------------------------------------------------------------------------------------------
# explain


def test_explain_pages(kl: Kubectl) -> None:
    out = kl.ok("explain", "deployment.spec.strategy")
    lines = out.splitlines()
    assert lines[:5] == ["GROUP:      apps", "KIND:       Deployment", "VERSION:    v1", "", "FIELD: strategy <DeploymentStrategy>"]
    assert "DESCRIPTION:" in lines and "FIELDS:" in lines
    assert "  rollingUpdate\t<RollingUpdateDeployment>" in lines and "  type\t<string>" in lines

    pod = kl.ok("explain", "pods").splitlines()
    assert pod[:3] == ["KIND:       Pod", "VERSION:    v1", ""]  # the core group is not named
    assert "  spec\t<PodSpec>" in pod
    containers = kl.ok("explain", "po.spec.containers").splitlines()
    assert "FIELD: containers <[]Container>" in containers
    assert "  env\t<[]EnvVar>" in containers and "  ports\t<[]ContainerPort>" in containers
    labels = kl.ok("explain", "pod.metadata.labels").splitlines()
    assert "FIELD: labels <map[string]string>" in labels and "FIELDS:" not in labels
    assert "  limits\t<map[string]Quantity>" in kl.ok("explain", "pod.spec.containers.resources").splitlines()
    meta = kl.ok("explain", "pod.metadata").splitlines()
    assert "  generation\t<integer>" in meta and "  creationTimestamp\t<string>" in meta

    tree = kl.ok("explain", "deployments.apps.spec", "--recursive").splitlines()
    assert "  strategy\t<DeploymentStrategy>" in tree and "    rollingUpdate\t<RollingUpdateDeployment>" in tree
    assert "      maxSurge\t<IntOrString>" in tree
    assert "      containers\t<[]Container>" in tree  # template.spec.containers
    assert not any(line.startswith("    ") and "\t" not in line and line.strip() and "DESCRIPTION" not in line
                   for line in tree[tree.index("FIELDS:"):])  # --recursive: names and types only

    r = kl.run("explain", "pod.spec.nosuch")
    assert (r.returncode, r.stdout, r.stderr) == (1, "KIND:       Pod\nVERSION:    v1\n\n", 'error: field "nosuch" does not exist\n')
    r = kl.run("explain", "nosuch")
    assert (r.returncode, r.stderr) == (1, 'the server doesn\'t have a resource type "nosuch"\n')


@pytest.mark.skipif(KUBECTL is None, reason="the real kubectl is not installed")
def test_explain_matches_kubectl(kl: Kubectl) -> None:
    paths = ["deployment", "deployment.spec", "deploy.spec.strategy.rollingUpdate.maxSurge", "pod.spec.containers",
             "pod.spec.containers.env", "pod.metadata.labels", "pod.status.qosClass", "events", "svc.spec",
             "nodes.status", "pod.spec.containers.resources.limits", "replicasets.apps.spec.template",
             "pod.spec.volumes.nfs", "pod.spec.nosuch", "pod.metadata.labels.x"]
    for path in paths:
        for extra in ([], ["--recursive"]):
            ours = kl.run("explain", path, *extra, namespaced=False)
            theirs = subprocess.run([str(KUBECTL), "--kubeconfig", str(kl.kubeconfig), "explain", path, *extra],
                                    capture_output=True, text=True, timeout=60)
            assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), (
                path, extra)


# ---------------------------------------------------------------------------------------------
# rollout


def _replicaset(kl: Kubectl, deployment: str, hash_: str, revision: int, cause: str | None = None) -> None:
    """The ReplicaSet the deployment controller makes for the Deployment's current template."""
    dep = json.loads(kl.ok("get", "deployment", deployment, "-o", "json"))
    template = dep["spec"]["template"]
    template["metadata"]["labels"]["pod-template-hash"] = hash_
    selector = dep["spec"]["selector"]
    selector["matchLabels"]["pod-template-hash"] = hash_
    annotations = {"deployment.kubernetes.io/revision": str(revision)}
    if cause:
        annotations["kubernetes.io/change-cause"] = cause
    rs = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": f"{deployment}-{hash_}", "labels": template["metadata"]["labels"], "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                                 "uid": dep["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {"replicas": 0, "selector": selector, "template": template},
    }
    kl.ok("create", "-f", "-", stdin=json.dumps(rs))
    kl.ok("annotate", "deployment", deployment, f"deployment.kubernetes.io/revision={revision}", "--overwrite")


def _image(kl: Kubectl, name: str) -> str:
    dep = json.loads(kl.ok("get", "deployment", name, "-o", "json"))
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def test_rollout_history_undo_pause_resume(kl: Kubectl) -> None:
    kl.ok("create", "-f", "-", stdin=_deployment("hist", replicas=1, image="nginx:1.25"))
    r = kl.run("rollout", "history", "deployment/hist")
    assert (r.returncode, r.stdout) == (0, "No rollout history found.\n")
    _replicaset(kl, "hist", "aaa111", 1)
    r = kl.run("rollout", "undo", "deployment/hist")
    assert (r.returncode, r.stderr) == (1, "error: no rollout history found for deployment\n")
    kl.ok("patch", "deployment", "hist", "-p",
          json.dumps({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}}))
    _replicaset(kl, "hist", "bbb222", 2, cause="kubectl set image deployment/hist main=nginx:1.26")
    # Not the deployment's: same labels, but no controller reference to it.
    kl.ok("create", "-f", "-", stdin=json.dumps({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "stray", "labels": {"app": "hist"}, "annotations": {"deployment.kubernetes.io/revision": "7"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "hist"}},
                 "template": {"metadata": {"labels": {"app": "hist"}},
                              "spec": {"containers": [{"name": "main", "image": "x"}]}}},
    }))

    assert kl.ok("rollout", "history", "deploy", "hist") == (
        "deployment.apps/hist \n"
        "REVISION  CHANGE-CAUSE\n"
        "1         <none>\n"
        "2         kubectl set image deployment/hist main=nginx:1.26\n"
        "\n"
    )
    rev1 = kl.ok("rollout", "history", "deployment/hist", "--revision=1").splitlines()
    assert rev1[:3] == ["deployment.apps/hist with revision #1", "Pod Template:", "  Labels:\tapp=hist"]
    assert "    Image:\tnginx:1.25" in rev1
    r = kl.run("rollout", "history", "deployment/hist", "--revision=5")
    assert (r.returncode, r.stderr) == (1, "error: unable to find the specified revision\n")

    # undo (to the previous revision) sends kubectl's JSON patch: revision 1's template without
    # the pod-template-hash label; revision 2's change-cause is not carried back.
    assert kl.ok("rollout", "undo", "deployment/hist") == "deployment.apps/hist rolled back\n"
    dep = json.loads(kl.ok("get", "deployment", "hist", "-o", "json"))
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert dep["spec"]["template"]["metadata"]["labels"] == {"app": "hist"}
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert kl.ok("rollout", "undo", "deployment/hist", "--to-revision=1") == (
        "deployment.apps/hist skipped rollback (current template already matches revision 1)\n"
    )
    # To a revision with a change-cause: the cause comes along, as kubectl copies it.
    assert kl.ok("rollout", "undo", "deployment/hist", "--to-revision=2") == "deployment.apps/hist rolled back\n"
    dep = json.loads(kl.ok("get", "deployment", "hist", "-o", "json"))
    assert _image(kl, "hist") == "nginx:1.26"
    assert dep["metadata"]["annotations"]["kubernetes.io/change-cause"].startswith("kubectl set image")
    r = kl.run("rollout", "undo", "deployment/hist", "--to-revision=9")
    assert (r.returncode, r.stderr) == (1, "error: unable to find specified revision 9 in history\n")
    assert kl.ok("rollout", "undo", "deployment/hist", "--to-revision=1", "--dry-run=server") == (
        "deployment.apps/hist rolled back (server dry run)\n"
    )
    assert _image(kl, "hist") == "nginx:1.26"

    assert kl.ok("rollout", "pause", "deployment/hist") == "deployment.apps/hist paused\n"
    assert json.loads(kl.ok("get", "deployment", "hist", "-o", "json"))["spec"]["paused"] is True
    r = kl.run("rollout", "pause", "deployment/hist")
    assert (r.returncode, r.stderr) == (1, 'error: deployments.apps "hist" is already paused\n')
    r = kl.run("rollout", "undo", "deployment/hist")
    assert r.returncode == 1 and "error: you cannot rollback a paused deployment; resume it first" in r.stderr
    assert kl.ok("rollout", "resume", "deployment/hist") == "deployment.apps/hist resumed\n"
    assert not json.loads(kl.ok("get", "deployment", "hist", "-o", "json"))["spec"].get("paused")
    r = kl.run("rollout", "resume", "deployment/hist")
    assert (r.returncode, r.stderr) == (1, 'error: deployments.apps "hist" is not paused\n')
    r = kl.run("rollout", "history", "deployment/nope")
    assert (r.returncode, r.stderr) == (1, 'Error from server (NotFound): deployments.apps "nope" not found\n')


def test_undo_warns_about_apply_managed_deployments(kl: Kubectl) -> None:
    kl.ok("apply", "-f", "-", stdin=_deployment("applied", replicas=1, image="nginx:1.25"))
    _replicaset(kl, "applied", "ccc333", 1)
    kl.ok("apply", "-f", "-", stdin=_deployment("applied", replicas=1, image="nginx:1.26"))
    _replicaset(kl, "applied", "ddd444", 2)
    r = kl.run("rollout", "undo", "deployment/applied")
    assert (r.returncode, r.stdout) == (0, "deployment.apps/applied rolled back\n")
    assert r.stderr.startswith("Warning: resource deployments/applied was previously managed with 'kubectl apply'.")
    assert _image(kl, "applied") == "nginx:1.25"


def _report(kl: Kubectl, name: str, **status: int) -> None:
    """Write the Deployment's status as its controller would."""
    generation = json.loads(kl.ok("get", "deployment", name, "-o", "json"))["metadata"]["generation"]
    body = {"status": {"observedGeneration": generation, **status}}
    kl.ok("patch", "deployment", name, "--subresource=status", "--type=merge", "-p", json.dumps(body))


def test_rollout_status_prints_live_progress(kl: Kubectl) -> None:
    kl.ok("create", "-f", "-", stdin=_deployment("live", replicas=3))
    bg = Background(kl.argv("rollout", "status", "deployment/live", "--timeout=120s"))
    try:
        # Nothing observed yet: the generation is ahead of observedGeneration.
        assert bg.line() == "Waiting for deployment spec update to be observed..."
        _report(kl, "live", replicas=1, updatedReplicas=1)
        assert bg.line() == 'Waiting for deployment "live" rollout to finish: 1 out of 3 new replicas have been updated...'
        _report(kl, "live", replicas=4, updatedReplicas=3, availableReplicas=1)
        assert bg.line() == 'Waiting for deployment "live" rollout to finish: 1 old replicas are pending termination...'
        _report(kl, "live", replicas=3, updatedReplicas=3, availableReplicas=1)
        assert bg.line() == 'Waiting for deployment "live" rollout to finish: 1 of 3 updated replicas are available...'
        _report(kl, "live", replicas=3, updatedReplicas=3, availableReplicas=3)
        assert bg.line() == 'deployment "live" successfully rolled out'
        assert bg.finish() == (0, "")
    finally:
        bg.stop()


# ---------------------------------------------------------------------------------------------
# config, completion, top


def test_config_commands_on_a_kubeconfig_file(kl: Kubectl, tmp_path: Path) -> None:
    doc = yaml.safe_load(kl.kubeconfig.read_text())
    doc["contexts"].append({"name": "other", "context": {**doc["contexts"][0]["context"], "namespace": "elsewhere"}})
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*_cmd(), "--kubeconfig", str(path), *args], capture_output=True, text=True, timeout=60)
        assert "Traceback" not in r.stderr, r.stderr
        return r

    current = doc["current-context"]
    assert run("config", "current-context").stdout == f"{current}\n"
    table = run("config", "get-contexts").stdout.splitlines()
    assert _columns(table[0]) == ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]
    assert _columns(table[1])[:2] == ["*", current]
    view = yaml.safe_load(run("config", "view").stdout)
    user = view["users"][0]["user"]
    assert all(v in ("REDACTED", "DATA+OMITTED") for k, v in user.items() if k in ("token", "client-key-data"))
    raw = yaml.safe_load(run("config", "view", "--raw").stdout)
    assert raw["users"] == doc["users"]

    r = run("config", "use-context", "other")
    assert (r.returncode, r.stdout) == (0, 'Switched to context "other".\n')
    r = run("config", "set-context", "--current", f"--namespace={kl.namespace}")
    assert (r.returncode, r.stdout) == (0, 'Context "other" modified.\n')
    saved = yaml.safe_load(path.read_text())
    assert saved["current-context"] == "other"
    assert next(c for c in saved["contexts"] if c["name"] == "other")["context"]["namespace"] == kl.namespace
    # The context's namespace is what commands use now.
    kl.ok("apply", "-f", "-", stdin=_cm("via-context"))
    assert run("get", "cm", "via-context", "-o", "name").stdout == "configmap/via-context\n"
    r = run("config", "use-context", "nope")
    assert (r.returncode, r.stderr) == (1, 'error: no context exists with the name: "nope"\n')


def _complete(script: str, *words: str, env: dict[str, str] | None = None) -> list[str]:
    """What the script offers for the last of ``words`` (run in bash as the shell would)."""
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"{script}\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMPREPLY=()\n"
        "_kubectl_lite\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    r = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_completion_bash(kl: Kubectl) -> None:
    r = subprocess.run([*_cmd(), "completion", "bash"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "complete -o default -F _kubectl_lite kubectl-lite" in r.stdout
    script = r.stdout
    assert _complete(script, "kubectl-lite", "ed") == ["edit"]
    assert _complete(script, "kubectl-lite", "-n", "x", "rollo") == ["rollout"]
    assert _complete(script, "kubectl-lite", "get", "deplo") == ["deploy", "deployment", "deployments", "deployments.apps"]
    assert "po" in _complete(script, "kubectl-lite", "describe", "p")
    assert _complete(script, "kubectl-lite", "get", "--show-l") == ["--show-labels"]
    assert _complete(script, "kubectl-lite", "events", "--fo") == ["--for"]
    assert _complete(script, "kubectl-lite", "rollout", "") == ["status", "restart", "history", "undo", "pause", "resume"]
    assert _complete(script, "kubectl-lite", "completion", "") == ["bash", "zsh"]
    # Names come from the server, with the connection flags typed so far.
    kl.ok("apply", "-f", "-", stdin=_cm("complete-me"))
    conn = ["--kubeconfig", str(kl.kubeconfig), "-n", kl.namespace]
    assert _complete(script, "kubectl-lite", *conn, "get", "cm", "complete-") == ["complete-me"]
    assert _complete(script, "kubectl-lite", *conn, "delete", "configmap/comp") == ["configmap/complete-me"]
    r = subprocess.run([*_cmd(), "completion", "zsh"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("#compdef kubectl-lite") and "bashcompinit" in r.stdout


def test_top_without_usage_to_show(kl: Kubectl) -> None:
    # The Metrics API is served; with no agent answering there is nothing to show (the usage
    # itself is checked in tests/e2e/test_top.py).
    r = kl.run("top", "pods")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", f"No resources found in {kl.namespace} namespace.\n")
    r = kl.run("top", "nodes")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "error: metrics not available yet\n")


# -- create KIND NAME (kubectl's generators) ---------------------------------------------------


def _generator_cases(tmp_path: Path) -> list[list[str]]:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.txt").write_text("hi\n")
    (tmp_path / "dir" / "b.bin").write_bytes(b"\x00\xff")
    (tmp_path / "app.env").write_text("# settings\nMODE=fast\n\n  LEVEL=3\n")
    key = pki.new_key()
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "web.example.internal")])
    now = datetime.now(UTC)
    cert = pki.certificate_builder(name, name, key.public_key(), now + timedelta(days=1), now).sign(key, hashes.SHA256())
    (tmp_path / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tls.key").write_bytes(pki.private_key_pem(key))
    (tmp_path / "other.key").write_bytes(pki.private_key_pem(pki.new_key()))
    return [
        ["namespace", "demo"],
        ["deployment", "web", "--image=nginx:1.27", "--replicas=3", "--port=80"],
        ["deployment", "pair", "--image=nginx", "--image=registry.local/cache/redis@sha256:" + "a" * 64],
        ["deployment", "idle", "--image=busybox", "--replicas=0", "--", "sleep", "3600"],
        ["configmap", "cfg", "--from-literal=a=1", f"--from-file={tmp_path / 'dir'}"],
        ["configmap", "env", f"--from-env-file={tmp_path / 'app.env'}"],
        ["configmap", "one", f"--from-file=custom={tmp_path / 'dir' / 'a.txt'}"],
        ["secret", "generic", "creds", "--from-literal=password=s3cret", "--type=Opaque"],
        ["secret", "tls", "cert", f"--cert={tmp_path / 'tls.crt'}", f"--key={tmp_path / 'tls.key'}"],
        ["secret", "docker-registry", "pull", "--docker-server=registry.local", "--docker-username=u",
         "--docker-password=p", "--docker-email=u@example.com"],
        ["service", "clusterip", "web", "--tcp=80:8080", "--tcp=443:https"],
        ["service", "clusterip", "headless", "--clusterip=None"],
        ["service", "nodeport", "np", "--tcp=80", "--node-port=30080"],
        ["service", "loadbalancer", "lb", "--tcp=80:8080"],
        ["service", "externalname", "db", "--external-name=db.example.internal"],
        ["serviceaccount", "robot"],
        ["role", "reader", "--verb=get,list", "--verb=watch", "--resource=pods,deployments.apps",
         "--resource=pods/log", "--resource-name=a"],
        ["role", "leases", "--verb=*", "--resource=leases", "--resource=services/status", "--resource=services/status"],
        ["clusterrole", "health", "--verb=get,post", "--non-resource-url=/healthz", "--non-resource-url=/x/*"],
        ["clusterrole", "nodes", "--verb=get", "--resource=nodes"],
        ["clusterrole", "combined", "--aggregation-rule=team=web,tier=1"],
        ["rolebinding", "rb", "--role=reader", "--user=bob", "--group=devs", "--serviceaccount=ns1:sa1", "--user=alice"],
        ["rolebinding", "view", "--clusterrole=view", "--serviceaccount=ns1:sa1"],
        ["clusterrolebinding", "crb", "--clusterrole=view", "--group=auditors"],
    ]


def _with_flags(case: list[str], *flags: str) -> list[str]:
    """Flags go before a ``--`` command, as kubectl requires."""
    cut = case.index("--") if "--" in case else len(case)
    return [*case[:cut], *flags, *case[cut:]]


@pytest.mark.skipif(KUBECTL is None, reason="the real kubectl is not installed")
def test_create_generators_build_what_kubectl_builds(kl: Kubectl, tmp_path: Path) -> None:
    for case in _generator_cases(tmp_path):
        args = _with_flags(case, "--dry-run=client", "-o", "json")
        ours = json.loads(kl.ok("create", *args))
        theirs = subprocess.run([str(KUBECTL), "--kubeconfig", str(kl.kubeconfig), "-n", kl.namespace, "create", *args],
                                capture_output=True, text=True, timeout=60)
        assert theirs.returncode == 0, theirs.stderr
        assert ours == json.loads(theirs.stdout), case
    # An image name that is not a valid container name: '_' and '.' become '-', plus a random suffix.
    dep = json.loads(kl.ok("create", "deployment", "d", "--image=my.registry/app_v2.x:1", "--dry-run=client", "-o", "json"))
    assert re.fullmatch(r"app-v2-x-[a-z0-9]{5}", dep["spec"]["template"]["spec"]["containers"][0]["name"])


@pytest.mark.skipif(KUBECTL is None, reason="the real kubectl is not installed")
def test_create_generator_errors_read_as_kubectls(kl: Kubectl, tmp_path: Path) -> None:
    (tmp_path / "bad.env").write_text("GOOD=1\nBAD KEY=2\n")
    for args in (["deployment", "x"], ["configmap", "c", "--from-literal=novalue"],
                 ["secret", "generic", "s", "--from-literal=a=b", "--from-literal=a=c"],
                 ["secret", "tls", "t", "--cert=/dev/null"], ["service", "clusterip", "s"],
                 ["service", "externalname", "e"], ["namespace"], ["configmap", "c", f"--from-env-file={tmp_path / 'bad.env'}"],
                 ["configmap", "c", "--from-literal=a=b", f"--from-env-file={tmp_path / 'bad.env'}"],
                 ["role", "r", "--verb=get"], ["rolebinding", "rb", "--user=u"],
                 ["clusterrole", "c", "--verb=get,list", "--non-resource-url=/healthz"]):
        ours = kl.run("create", *args, "--dry-run=client")
        theirs = subprocess.run([str(KUBECTL), "--kubeconfig", str(kl.kubeconfig), "create", *args, "--dry-run=client"],
                                capture_output=True, text=True, timeout=60)
        assert ours.returncode == theirs.returncode == 1, (args, ours.stderr, theirs.stderr)
        assert ours.stderr and theirs.stderr, args
        # The first line, up to kubectl's own advice about the name of its validation regex.
        assert ours.stderr.splitlines()[0] == theirs.stderr.splitlines()[0].split(" (e.g.")[0], args


def test_create_generators_store_objects_and_report_like_kubectl(kl: Kubectl, tmp_path: Path) -> None:
    assert kl.ok("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "--port=80") == \
        "deployment.apps/web created\n"
    dep = json.loads(kl.ok("get", "deployment", "web", "-o", "json"))
    assert dep["spec"]["replicas"] == 2 and dep["spec"]["strategy"]["type"] == "RollingUpdate"
    assert dep["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert kl.ok("create", "service", "clusterip", "web", "--tcp=80:80", "-o", "name") == "service/web\n"
    assert json.loads(kl.ok("get", "service", "web", "-o", "json"))["spec"]["clusterIP"]
    out = yaml.safe_load(kl.ok("create", "secret", "generic", "s", "--from-literal=k=v", "-o", "yaml"))
    assert out["data"] == {"k": "dg=="} and out["metadata"]["resourceVersion"]  # the server's answer
    assert kl.ok("create", "configmap", "c", "--from-literal=a=b", "--dry-run=server") == \
        "configmap/c created (server dry run)\n"
    assert kl.run("get", "configmap", "c").returncode == 1  # nothing stored
    res = kl.run("create", "deployment", "web", "--image=nginx")
    assert (res.returncode, res.stderr) == (1, 'error: failed to create deployment: deployments.apps "web" already exists\n')
    res = kl.run("create", "deployment", "neg", "--image=nginx", "--replicas=-1")
    assert res.returncode == 1 and "spec.replicas: Invalid value: -1" in res.stderr
    _generator_cases(tmp_path)  # writes the certificate and keys
    res = kl.run("create", "secret", "tls", "t", f"--cert={tmp_path / 'tls.crt'}", f"--key={tmp_path / 'other.key'}")
    assert (res.returncode, res.stderr) == (1, "error: the private key does not match the certificate's public key\n")
    assert kl.ok("create", "role", "r", "--verb=get", "--resource=pods") == "role.rbac.authorization.k8s.io/r created\n"
    kl.ok("create", "rolebinding", "rb", "--role=r", "--user=bob")
    rb = json.loads(kl.ok("get", "rolebinding", "rb", "-o", "json"))
    assert rb["roleRef"]["name"] == "r" and rb["subjects"] == [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                                                                "name": "bob"}]
    if KUBECTL is not None:  # the server's authorizer honours what was created
        can = subprocess.run([KUBECTL, "--kubeconfig", str(kl.kubeconfig), "-n", kl.namespace, "auth", "can-i", "get",
                              "pods", "--as=bob"], capture_output=True, text=True, timeout=60)
        assert can.stdout == "yes\n", can.stderr
    res = kl.run("create", "role", "odd", "--verb=fly", "--resource=pods")
    assert res.returncode == 0 and "Warning: 'fly' is not a standard resource verb" in res.stderr
    res = kl.run("create", "widget", "w")
    assert res.returncode == 1 and res.stderr.startswith('error: unknown kind "widget"')
    res = kl.run("create", "deployment", "both", "--image=nginx", "-f", str(tmp_path / "x.yaml"))
    assert (res.returncode, res.stderr) == (1, "error: create takes either -f or KIND NAME, not both\n")
