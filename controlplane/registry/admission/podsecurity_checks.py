"""The Pod Security Standards' checks (baseline and restricted) on one pod spec.

Each check returns None when the pod passes, or (reason, detail) worded exactly as Kubernetes'
pod-security-admission words it, so a denial reads the same as on a real cluster. The order of
the checks is Kubernetes' evaluation order (the order its aggregated message lists them in):
the baseline checks, then, for baseline, the baseline checks that restricted replaces with a
stricter one, or, for restricted, the restricted checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from apimachinery.api.core_v1 import Container, EphemeralContainer, PodSpec, SecurityContext, SELinuxOptions

Result = tuple[str, str] | None
Check = Callable[[PodSpec], Result]

PRIVILEGED = "privileged"
BASELINE = "baseline"
RESTRICTED = "restricted"
LEVELS = (PRIVILEGED, BASELINE, RESTRICTED)

BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
})
ALLOWED_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
# Volume sources restricted pods may use; every other source (hostPath above all) is refused.
RESTRICTED_OK_VOLUMES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
    "secret", "image",
})
_VALID_SECCOMP = ("RuntimeDefault", "Localhost")


# ---------------------------------------------------------------------------------------------
# wording helpers (Kubernetes' pluralize and joinQuote)


def _plural(one: str, many: str, n: int) -> str:
    return one if n == 1 else many


def _quoted(items: list[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def _containers(names: list[str]) -> str:
    return f"{_plural('container', 'containers', len(names))} {_quoted(names)}"


def _visit(spec: PodSpec) -> Iterator[Container | EphemeralContainer]:
    yield from spec.init_containers or []
    yield from spec.containers
    yield from spec.ephemeral_containers or []


def _sc(c: Container | EphemeralContainer) -> SecurityContext | None:
    return c.security_context


# ---------------------------------------------------------------------------------------------
# baseline


def host_namespaces(spec: PodSpec) -> Result:
    used = sorted(n for n, on in (("hostNetwork", spec.host_network), ("hostPID", spec.host_pid),
                                  ("hostIPC", spec.host_ipc)) if on)
    return ("host namespaces", ", ".join(used)) if used else None


def host_ports(spec: PodSpec) -> Result:
    bad: list[str] = []
    ports: set[int] = set()
    for c in _visit(spec):
        found = [p.host_port for p in c.ports or [] if p.host_port]
        if found:
            bad.append(c.name)
            ports.update(p for p in found if p)
    if not bad:
        return None
    listed = ", ".join(sorted(str(p) for p in ports))  # Kubernetes sorts them as strings
    return ("hostPort", f"{_containers(bad)} {_plural('uses', 'use', len(bad))} "
                        f"{_plural('hostPort', 'hostPorts', len(ports))} {listed}")


def privileged(spec: PodSpec) -> Result:
    bad = [c.name for c in _visit(spec) if (sc := _sc(c)) is not None and sc.privileged]
    return ("privileged", f"{_containers(bad)} must not set securityContext.privileged=true") if bad else None


def proc_mount(spec: PodSpec) -> Result:
    bad: list[str] = []
    kinds: set[str] = set()
    for c in _visit(spec):
        sc = _sc(c)
        if sc is not None and sc.proc_mount is not None and sc.proc_mount != "Default":
            bad.append(c.name)
            kinds.add(sc.proc_mount)
    if not bad:
        return None
    return ("procMount", f"{_containers(bad)} must not set securityContext.procMount to {_quoted(sorted(kinds))}")


def selinux_options(spec: PodSpec) -> Result:
    bad_types: set[str] = set()
    flags = {"user": False, "role": False}

    def ok(opts: SELinuxOptions) -> bool:
        good = True
        if (opts.type or "") not in ALLOWED_SELINUX_TYPES:
            bad_types.add(opts.type or "")
            good = False
        for attr in ("user", "role"):
            if getattr(opts, attr):
                flags[attr] = True
                good = False
        return good

    setters: list[str] = []
    psc = spec.security_context
    if psc is not None and psc.se_linux_options is not None and not ok(psc.se_linux_options):
        setters.append("pod")
    bad = [c.name for c in _visit(spec)
           if (sc := _sc(c)) is not None and sc.se_linux_options is not None and not ok(sc.se_linux_options)]
    if bad:
        setters.append(_containers(bad))
    if not setters:
        return None
    data: list[str] = []
    # As in Kubernetes, user and role are only named alongside a forbidden type.
    if bad_types:
        data.append(f"{_plural('type', 'types', len(bad_types))} {_quoted(sorted(bad_types))}")
        data.extend(f"{attr} may not be set" for attr in ("user", "role") if flags[attr])
    return ("seLinuxOptions", f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}")


def sysctls(spec: PodSpec) -> Result:
    psc = spec.security_context
    bad = [s.name for s in (psc.sysctls or [] if psc is not None else []) if s.name not in SAFE_SYSCTLS]
    return ("forbidden sysctls", ", ".join(bad)) if bad else None


def capabilities_baseline(spec: PodSpec) -> Result:
    bad: list[str] = []
    caps: set[str] = set()
    for c in _visit(spec):
        sc = _sc(c)
        if sc is None or sc.capabilities is None:
            continue
        extra = [a for a in sc.capabilities.add or [] if a not in BASELINE_CAPABILITIES]
        if extra:
            bad.append(c.name)
            caps.update(extra)
    if not bad:
        return None
    return ("non-default capabilities",
            f"{_containers(bad)} must not include {_quoted(sorted(caps))} in securityContext.capabilities.add")


def host_path_volumes(spec: PodSpec) -> Result:
    names = [v.name for v in spec.volumes or [] if v.host_path is not None]
    return ("hostPath volumes", f"{_plural('volume', 'volumes', len(names))} {_quoted(names)}") if names else None


def _bad_seccomp_setters(spec: PodSpec, values: set[str]) -> tuple[list[str], bool]:
    """Who sets a seccomp type other than RuntimeDefault/Localhost; and whether the pod sets a good one."""
    setters: list[str] = []
    pod_ok = False
    psc = spec.security_context
    if psc is not None and psc.seccomp_profile is not None:
        if psc.seccomp_profile.type in _VALID_SECCOMP:
            pod_ok = True
        else:
            setters.append("pod")
            values.add(psc.seccomp_profile.type)
    bad: list[str] = []
    for c in _visit(spec):
        sc = _sc(c)
        if sc is not None and sc.seccomp_profile is not None and sc.seccomp_profile.type not in _VALID_SECCOMP:
            bad.append(c.name)
            values.add(sc.seccomp_profile.type)
    if bad:
        setters.append(_containers(bad))
    return setters, pod_ok


def seccomp_baseline(spec: PodSpec) -> Result:
    values: set[str] = set()
    setters, _ = _bad_seccomp_setters(spec, values)
    if not setters:
        return None
    return ("seccompProfile",
            f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {_quoted(sorted(values))}")


# ---------------------------------------------------------------------------------------------
# restricted


def allow_privilege_escalation(spec: PodSpec) -> Result:
    bad = [c.name for c in _visit(spec) if (sc := _sc(c)) is None or sc.allow_privilege_escalation is not False]
    if not bad:
        return None
    return ("allowPrivilegeEscalation != false",
            f"{_containers(bad)} must set securityContext.allowPrivilegeEscalation=false")


def capabilities_restricted(spec: PodSpec) -> Result:
    missing_drop: list[str] = []
    adding: list[str] = []
    caps: set[str] = set()
    for c in _visit(spec):
        sc = _sc(c)
        if sc is None or sc.capabilities is None:
            missing_drop.append(c.name)
            continue
        if "ALL" not in (sc.capabilities.drop or []):
            missing_drop.append(c.name)
        extra = [a for a in sc.capabilities.add or [] if a != "NET_BIND_SERVICE"]
        if extra:
            adding.append(c.name)
            caps.update(extra)
    details: list[str] = []
    if missing_drop:
        details.append(f'{_containers(missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_containers(adding)} must not include {_quoted(sorted(caps))} in securityContext.capabilities.add")
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def _volume_type(v: Any) -> str:
    extra = getattr(v, "__pydantic_extra__", None) or {}
    for attr, wire in (("host_path", "hostPath"), ("empty_dir", "emptyDir"), ("secret", "secret"), ("nfs", "nfs"),
                       ("persistent_volume_claim", "persistentVolumeClaim"), ("downward_api", "downwardAPI"),
                       ("config_map", "configMap"), ("projected", "projected")):
        if getattr(v, attr, None) is not None:
            return wire
    # A source the model does not know (kept as an extra field), named by its wire key.
    for key in extra:
        return str(key)
    return "unknown"


def restricted_volumes(spec: PodSpec) -> Result:
    names: list[str] = []
    kinds: set[str] = set()
    for v in spec.volumes or []:
        kind = _volume_type(v)
        if kind not in RESTRICTED_OK_VOLUMES:
            names.append(v.name)
            kinds.add(kind)
    if not names:
        return None
    return ("restricted volume types",
            f"{_plural('volume', 'volumes', len(names))} {_quoted(names)} {_plural('uses', 'use', len(names))} "
            f"{_plural('restricted volume type', 'restricted volume types', len(kinds))} {_quoted(sorted(kinds))}")


def run_as_non_root(spec: PodSpec) -> Result:
    setters: list[str] = []
    pod_ok = False
    psc = spec.security_context
    if psc is not None and psc.run_as_non_root is not None:
        if psc.run_as_non_root:
            pod_ok = True
        else:
            setters.append("pod")
    explicit: list[str] = []
    implicit: list[str] = []
    for c in _visit(spec):
        sc = _sc(c)
        if sc is not None and sc.run_as_non_root is not None:
            if not sc.run_as_non_root:
                explicit.append(c.name)
        elif not pod_ok:
            implicit.append(c.name)
    if explicit:
        setters.append(_containers(explicit))
    if setters:
        return ("runAsNonRoot != true", f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
    if implicit:
        return ("runAsNonRoot != true", f"pod or {_containers(implicit)} must set securityContext.runAsNonRoot=true")
    return None


def run_as_user(spec: PodSpec) -> Result:
    setters: list[str] = []
    psc = spec.security_context
    if psc is not None and psc.run_as_user == 0:
        setters.append("pod")
    bad = [c.name for c in _visit(spec) if (sc := _sc(c)) is not None and sc.run_as_user == 0]
    if bad:
        setters.append(_containers(bad))
    return ("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0") if setters else None


def seccomp_restricted(spec: PodSpec) -> Result:
    values: set[str] = set()
    setters, pod_ok = _bad_seccomp_setters(spec, values)
    if setters:
        return ("seccompProfile",
                f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {_quoted(sorted(values))}")
    implicit = [c.name for c in _visit(spec) if not pod_ok and ((sc := _sc(c)) is None or sc.seccomp_profile is None)]
    if implicit:
        return ("seccompProfile",
                f'pod or {_containers(implicit)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    return None


_BASELINE: tuple[Check, ...] = (host_namespaces, host_ports, privileged, proc_mount, selinux_options, sysctls)
# Baseline checks that restricted replaces with its stricter version.
_BASELINE_ONLY: tuple[Check, ...] = (capabilities_baseline, host_path_volumes, seccomp_baseline)
_RESTRICTED: tuple[Check, ...] = (
    allow_privilege_escalation, capabilities_restricted, restricted_volumes, run_as_non_root, run_as_user,
    seccomp_restricted,
)


def checks_for(level: str) -> tuple[Check, ...]:
    if level == BASELINE:
        return _BASELINE + _BASELINE_ONLY
    if level == RESTRICTED:
        return _BASELINE + _RESTRICTED
    return ()


def violations(level: str, spec: PodSpec) -> list[tuple[str, str]]:
    """Every (reason, detail) the spec violates at ``level``, in Kubernetes' order."""
    return [r for check in checks_for(level) if (r := check(spec)) is not None]


def describe(found: list[tuple[str, str]]) -> str:
    """``reason (detail), reason (detail)``: Kubernetes' aggregated forbidden detail."""
    return ", ".join(f"{reason} ({detail})" if detail else reason for reason, detail in found)
