"""The Pod Security Standards checks: what each level refuses, in Kubernetes' words and order."""

from __future__ import annotations

from typing import Any

import pytest

from apimachinery.api.core_v1 import PodSpec
from apimachinery.decode import decode
from controlplane.registry.admission.podsecurity_checks import describe, violations

GOOD_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
           "seccompProfile": {"type": "RuntimeDefault"}}


def spec(containers: list[dict[str, Any]] | None = None, **extra: Any) -> PodSpec:
    data = {"containers": containers if containers is not None else [{"name": "c", "image": "i"}], **extra}
    obj, errs = decode(PodSpec, data)
    assert obj is not None, errs
    return obj


def test_privileged_checks_nothing() -> None:
    assert violations("privileged", spec(hostPID=True, containers=[{"name": "c", "securityContext": {"privileged": True}}])) == []


def test_a_plain_pod_meets_baseline_but_not_restricted() -> None:
    assert violations("baseline", spec()) == []
    assert [r for r, _ in violations("restricted", spec())] == [
        "allowPrivilegeEscalation != false", "unrestricted capabilities", "runAsNonRoot != true", "seccompProfile"]


def test_restricted_accepts_pod_level_settings_for_every_container() -> None:
    s = spec(containers=[{"name": "a", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}},
                         {"name": "b", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
             securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}})
    assert violations("restricted", s) == []


def test_plural_wording_and_container_order() -> None:
    s = spec(containers=[{"name": "b", "securityContext": {"privileged": True}},
                         {"name": "a", "securityContext": {"privileged": True}}],
             initContainers=[{"name": "init", "securityContext": {"privileged": True}}])
    assert violations("baseline", s) == [
        ("privileged", 'containers "init", "b", "a" must not set securityContext.privileged=true')]


@pytest.mark.parametrize(("extra", "expected"), [
    ({"hostIPC": True, "hostNetwork": True}, ("host namespaces", "hostIPC, hostNetwork")),
    ({"securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}, {"name": "vm.swappiness", "value": "1"}]}},
     ("forbidden sysctls", "vm.swappiness")),
    ({"securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "u"}}},
     ("seLinuxOptions", 'pod set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set')),
    ({"volumes": [{"name": "a", "hostPath": {"path": "/"}}, {"name": "b", "hostPath": {"path": "/x"}}]},
     ("hostPath volumes", 'volumes "a", "b"')),
    ({"securityContext": {"seccompProfile": {"type": "Unconfined"}}},
     ("seccompProfile", 'pod must not set securityContext.seccompProfile.type to "Unconfined"')),
])
def test_baseline_checks(extra: dict[str, Any], expected: tuple[str, str]) -> None:
    assert violations("baseline", spec(**extra)) == [expected]


def test_host_ports_are_listed_and_sorted() -> None:
    s = spec(containers=[{"name": "a", "ports": [{"containerPort": 90, "hostPort": 90}, {"containerPort": 80, "hostPort": 8080}]},
                         {"name": "b", "ports": [{"containerPort": 1}]}])
    assert violations("baseline", s) == [("hostPort", 'container "a" uses hostPorts 8080, 90')]


def test_restricted_volume_types_and_explicit_bad_values() -> None:
    s = spec(containers=[{"name": "c", "securityContext": {**GOOD_SC, "runAsNonRoot": False, "runAsUser": 0,
                                                           "seccompProfile": {"type": "Unconfined"}}}],
             volumes=[{"name": "n", "nfs": {"server": "s", "path": "/"}}, {"name": "e", "emptyDir": {}},
                      {"name": "h", "hostPath": {"path": "/"}}])
    found = violations("restricted", s)
    assert found == [
        ("restricted volume types", 'volumes "n", "h" use restricted volume types "hostPath", "nfs"'),
        ("runAsNonRoot != true", 'container "c" must not set securityContext.runAsNonRoot=false'),
        ("runAsUser=0", 'container "c" must not set runAsUser=0'),
        ("seccompProfile", 'container "c" must not set securityContext.seccompProfile.type to "Unconfined"'),
    ]
    assert describe(found).startswith('restricted volume types (volumes "n", "h" use')


def test_baseline_capabilities_allow_the_default_set() -> None:
    ok = spec(containers=[{"name": "c", "securityContext": {"capabilities": {"add": ["CHOWN", "NET_BIND_SERVICE", "KILL"]}}}])
    assert violations("baseline", ok) == []
    bad = spec(containers=[{"name": "c", "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "NET_RAW", "CHOWN"]}}}])
    assert violations("baseline", bad) == [
        ("non-default capabilities", 'container "c" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add')]
