"""A container's environment: ``env`` (value / valueFrom) and ``envFrom``, as the kubelet builds it.

Order and precedence are Kubernetes': ``envFrom`` sources first (later sources win), then
``env`` entries (which win over ``envFrom``); ``$(NAME)`` in a value expands to a variable
defined earlier in that list (``$$`` is a literal ``$``; an unknown reference stays as written).
"""

from __future__ import annotations

import re

from apimachinery.api.core_v1 import Container, Pod
from nodeagent.agent.sources import ConfigError, ObjectSource

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def expand(value: str, defined: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion against the variables defined so far."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return defined[name] if name in defined else m.group(0)

    return _REF.sub(sub, value)


def field_value(pod: Pod, path: str, *, host_ip: str, pod_ip: str | None) -> str:
    """A downward API ``fieldRef`` value (env and downwardAPI volumes)."""
    md = pod.metadata
    simple = {
        "metadata.name": md.name or "",
        "metadata.namespace": md.namespace or "",
        "metadata.uid": md.uid or "",
        "spec.nodeName": pod.spec.node_name or "",
        "spec.serviceAccountName": pod.spec.service_account_name or "",
        "status.hostIP": host_ip,
        "status.podIP": pod_ip or "",
    }
    if path in simple:
        return simple[path]
    if path == "metadata.labels":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((md.labels or {}).items()))
    if path == "metadata.annotations":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((md.annotations or {}).items()))
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        source = (md.labels if m.group(1) == "labels" else md.annotations) or {}
        return source.get(m.group(2), "")
    raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")


async def container_env(
    pod: Pod, container: Container, source: ObjectSource, *, host_ip: str, pod_ip: str | None = None
) -> list[str]:
    """``NAME=value`` entries for the container (the image's own env is merged by the runtime)."""
    env: dict[str, str] = {}
    for src in container.env_from or []:
        prefix = src.prefix or ""
        data: dict[str, bytes] | None = None
        if src.config_map_ref is not None:
            name = src.config_map_ref.name or ""
            data = await source.config_map(name)
            if data is None and not src.config_map_ref.optional:
                raise ConfigError(f'configmap "{name}" not found')
        elif src.secret_ref is not None:
            name = src.secret_ref.name or ""
            data = await source.secret(name)
            if data is None and not src.secret_ref.optional:
                raise ConfigError(f'secret "{name}" not found')
        for key, value in (data or {}).items():
            if _ENV_NAME.match(prefix + key):  # the kubelet skips (and warns about) invalid names
                env[prefix + key] = value.decode(errors="replace")
    for var in container.env or []:
        if var.value_from is None:
            env[var.name] = expand(var.value or "", env)
            continue
        vf = var.value_from
        raw: bytes | None = None
        if vf.field_ref is not None:
            env[var.name] = field_value(pod, vf.field_ref.field_path, host_ip=host_ip, pod_ip=pod_ip)
            continue
        if vf.config_map_key_ref is not None:
            ref = vf.config_map_key_ref
            raw = await source.config_map_key(ref.name or "", ref.key, bool(ref.optional))
        elif vf.secret_key_ref is not None:
            sref = vf.secret_key_ref
            raw = await source.secret_key(sref.name or "", sref.key, bool(sref.optional))
        elif vf.resource_field_ref is not None:
            raise ConfigError("resourceFieldRef is not supported yet")
        if raw is not None:
            env[var.name] = raw.decode(errors="replace")
    return [f"{k}={v}" for k, v in env.items()]
