"""Pod volumes on the node: each one a directory under ``<data>/pods/<uid>/volumes/<name>``
(hostPath: the host's own path), bind-mounted into the containers that ask for it.

* emptyDir: a directory; ``medium: Memory`` makes it a tmpfs (``sizeLimit`` is its size).
* configMap, secret, downwardAPI, projected: files written by the agent, mounted read-only
  (as Kubernetes does), each with ``defaultMode`` / the item's ``mode`` (0644 by default);
  ``items`` picks keys and paths. Secrets live on a tmpfs so they never touch the disk.
* hostPath: the host path, after the check its ``type`` asks for.
* projected serviceAccountToken: a token bound to the pod, requested through TokenRequest and
  requested again (the file replaced in place) once 80% of its lifetime has passed, as the kubelet
  does; the volume then lives on a tmpfs, like secrets.

Setup is idempotent (a restarted agent finds the directories and mounts already there);
:func:`teardown` unmounts whatever is under the pod's directory and deletes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from apimachinery.api.authentication_v1 import BoundObjectReference, TokenRequest, TokenRequestSpec
from apimachinery.api.core_v1 import (
    Container,
    DownwardAPIVolumeFile,
    KeyToPath,
    Pod,
    ServiceAccount,
    ServiceAccountTokenProjection,
    Volume,
)
from apimachinery.errors import ApiError
from apimachinery.meta import ObjectMeta, parse_time
from apimachinery.quantity import value as quantity_value
from nodeagent import pathsafe
from nodeagent.agent.env import field_value
from nodeagent.agent.sources import ConfigError, ObjectSource
from nodeagent.runtime import linux, rootfs
from nodeagent.runtime.container import Mount

DEFAULT_MODE = 0o644
# A token is requested again once this share of its lifetime has passed (the kubelet's rule).
TOKEN_REFRESH_AT = 0.8

log = logging.getLogger(__name__)


class VolumeError(Exception):
    """A volume cannot be set up (the container keeps waiting in ContainerCreating)."""


@dataclass(frozen=True)
class PodVolume:
    path: Path
    readonly: bool  # mounted read-only whatever the volumeMount says


def pod_dir(data_dir: Path, uid: str) -> Path:
    return data_dir / "pods" / pathsafe.entry(uid, "pod uid")


def _safe_rel(path: str) -> str:
    parts = Path(path).parts
    if not path or Path(path).is_absolute() or ".." in parts:
        raise VolumeError(f"invalid path {path!r} in volume items")
    return path


def _write_files(directory: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Make ``directory`` hold exactly ``files`` (relative path -> (content, mode))."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for rel, (content, mode) in files.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(content)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        wanted.add(target)
    for p in sorted(directory.rglob("*"), reverse=True):
        if p.is_file() and p not in wanted:
            p.unlink()


def _project(data: dict[str, bytes], items: list[KeyToPath] | None, mode: int, what: str, optional: bool) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {key: (value, mode) for key, value in data.items()}
    out = {}
    for item in items:
        if item.key not in data:
            if optional:
                continue
            raise ConfigError(f"couldn't find key {item.key} in {what}")
        out[_safe_rel(item.path)] = (data[item.key], item.mode if item.mode is not None else mode)
    return out


def _mount_tmpfs(path: Path, size: str | None = None, mode: str = "0777") -> None:
    path.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(path):
        opts = f"mode={mode}" + (f",size={size}" if size else "")
        linux.mount("tmpfs", str(path), "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, opts)


def _plain_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)  # any container user may write a scratch directory


class VolumeManager:
    def __init__(self, data_dir: Path, *, host_ip: str) -> None:
        self.data_dir = data_dir
        self.host_ip = host_ip
        # (pod uid, volume) -> (token, when to request a new one); and the task that will.
        self._tokens: dict[tuple[str, str], tuple[bytes, float]] = {}
        self._refreshers: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def setup(self, pod: Pod, source: ObjectSource) -> dict[str, PodVolume]:
        """Every volume of the pod, ready to mount (refreshed on each call)."""
        base = pod_dir(self.data_dir, pod.metadata.uid or "") / "volumes"
        out = {}
        for vol in pod.spec.volumes or []:
            out[vol.name] = await self._one(pod, vol, base / pathsafe.entry(vol.name, "volume name"), source)
        return out

    async def _one(self, pod: Pod, vol: Volume, path: Path, source: ObjectSource) -> PodVolume:
        if vol.empty_dir is not None:
            if vol.empty_dir.medium == "Memory":
                size = vol.empty_dir.size_limit
                _mount_tmpfs(path, str(quantity_value(size)) if size is not None else None)
            else:
                _plain_dir(path)
            return PodVolume(path, False)
        if vol.host_path is not None:
            return PodVolume(host_path(vol.host_path.path, vol.host_path.type or ""), False)
        if vol.config_map is not None:
            cm = vol.config_map
            data = await source.config_map(cm.name or "")
            if data is None and not cm.optional:
                raise ConfigError(f'configmap "{cm.name}" not found')
            mode = cm.default_mode if cm.default_mode is not None else DEFAULT_MODE
            files = _project(data or {}, cm.items, mode, f"ConfigMap {pod.metadata.namespace}/{cm.name}", bool(cm.optional))
            _write_files(path, files)
            return PodVolume(path, True)
        if vol.secret is not None:
            sec = vol.secret
            sdata = await source.secret(sec.secret_name or "")
            if sdata is None and not sec.optional:
                raise ConfigError(f'secret "{sec.secret_name}" not found')
            mode = sec.default_mode if sec.default_mode is not None else DEFAULT_MODE
            sfiles = _project(sdata or {}, sec.items, mode, f"Secret {pod.metadata.namespace}/{sec.secret_name}", bool(sec.optional))
            _mount_tmpfs(path, mode="0755")
            _write_files(path, sfiles)
            return PodVolume(path, True)
        if vol.downward_api is not None:
            mode = vol.downward_api.default_mode if vol.downward_api.default_mode is not None else DEFAULT_MODE
            _write_files(path, self._downward(pod, vol.downward_api.items or [], mode))
            return PodVolume(path, True)
        if vol.projected is not None:
            mode = vol.projected.default_mode if vol.projected.default_mode is not None else DEFAULT_MODE
            pfiles: dict[str, tuple[bytes, int]] = {}
            secret_inside = False
            for src in vol.projected.sources or []:
                if src.config_map is not None:
                    pcm = src.config_map
                    data = await source.config_map(pcm.name or "")
                    if data is None and not pcm.optional:
                        raise ConfigError(f'configmap "{pcm.name}" not found')
                    pfiles.update(_project(data or {}, pcm.items, mode, f"ConfigMap {pcm.name}", bool(pcm.optional)))
                elif src.secret is not None:
                    psec = src.secret
                    sdata = await source.secret(psec.name or "")
                    if sdata is None and not psec.optional:
                        raise ConfigError(f'secret "{psec.name}" not found')
                    pfiles.update(_project(sdata or {}, psec.items, mode, f"Secret {psec.name}", bool(psec.optional)))
                    secret_inside = True
                elif src.downward_api is not None:
                    pfiles.update(self._downward(pod, src.downward_api.items or [], mode))
                elif src.service_account_token is not None:
                    token = await self._token(pod, vol, path, src.service_account_token, source)
                    pfiles[_safe_rel(src.service_account_token.path)] = (token, mode)
                    secret_inside = True
                else:
                    raise VolumeError(f"volume {vol.name}: this projection source is not supported by this node")
            if secret_inside:
                _mount_tmpfs(path, mode="0755")
            _write_files(path, pfiles)
            return PodVolume(path, True)
        raise VolumeError(f"volume {vol.name}: this volume type is not supported by this node")

    def _downward(self, pod: Pod, items: list[DownwardAPIVolumeFile], mode: int) -> dict[str, tuple[bytes, int]]:
        out = {}
        for item in items:
            if item.field_ref is None:
                raise VolumeError("downwardAPI: only fieldRef items are supported")
            value = field_value(pod, item.field_ref.field_path, host_ip=self.host_ip, pod_ip=None)
            out[_safe_rel(item.path)] = (value.encode(), item.mode if item.mode is not None else mode)
        return out

    async def _token(self, pod: Pod, vol: Volume, path: Path, proj: ServiceAccountTokenProjection,
                     source: ObjectSource) -> bytes:
        """The pod's bound token for this volume: the one held while still fresh, else a new one."""
        key = (pod.metadata.uid or "", vol.name)
        held = self._tokens.get(key)
        if held is not None and time.time() < held[1]:
            return held[0]
        account = pod.spec.service_account_name or "default"
        request = TokenRequest(
            metadata=ObjectMeta(name=account, namespace=pod.metadata.namespace),
            spec=TokenRequestSpec(
                audiences=[proj.audience] if proj.audience else [],
                expiration_seconds=proj.expiration_seconds,
                bound_object_ref=BoundObjectReference(kind="Pod", api_version="v1", name=pod.metadata.name,
                                                      uid=pod.metadata.uid),
            ),
        )
        client = source.client
        try:
            answer = await client.create(client.resource(ServiceAccount), request.to_dict(), source.namespace,
                                         subresource="token")
        except ApiError as e:
            raise VolumeError(f"failed to fetch token: {e}") from None
        status = answer.get("status") or {}
        token = str(status.get("token") or "").encode()
        issued = time.time()
        expiry = status.get("expirationTimestamp")
        expires = parse_time(str(expiry)).timestamp() if expiry else issued
        refresh_in = max(1.0, (expires - issued) * TOKEN_REFRESH_AT)
        self._tokens[key] = (token, issued + refresh_in)
        old = self._refreshers.pop(key, None)
        if old is not None and old is not asyncio.current_task():
            old.cancel()
        self._refreshers[key] = asyncio.create_task(
            self._refresh_later(pod, vol, path, source, refresh_in), name=f"token-refresh-{key[0]}-{vol.name}")
        return token

    async def _refresh_later(self, pod: Pod, vol: Volume, path: Path, source: ObjectSource, delay: float) -> None:
        """Rewrite the volume with a new token once the current one is 80% through its life."""
        await asyncio.sleep(delay)
        key = (pod.metadata.uid or "", vol.name)
        # Gone with its pod (teardown forgets the tokens): nothing to refresh, and never recreate
        # the directory of a removed pod.
        if key not in self._tokens or not await asyncio.to_thread(path.is_dir):
            self._refreshers.pop(key, None)
            return
        try:
            await self._one(pod, vol, path, ObjectSource(source.client, source.namespace))
        except (ConfigError, VolumeError, OSError) as e:
            # The old token stays in place; the next pod sync tries again.
            self._tokens.pop(key, None)
            log.warning("refreshing the token of pod %s/%s failed: %s", pod.metadata.namespace, pod.metadata.name, e)

    async def stop_refreshing(self) -> None:
        """End every token refresher (agent shutdown)."""
        tasks = list(self._refreshers.values())
        self._refreshers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def teardown(self, uid: str) -> None:
        """Unmount and delete everything the pod had under the data dir."""
        # May run in a worker thread: only forget the tokens here; their refreshers see that and end.
        for key in [k for k in list(self._tokens) if k[0] == uid]:
            self._tokens.pop(key, None)
        rootfs.teardown(pod_dir(self.data_dir, uid))


def host_path(path: str, kind: str) -> Path:
    """The hostPath volume's host path, checked (or created) as its ``type`` says."""
    p = Path(path)
    if kind == "DirectoryOrCreate":
        p.mkdir(mode=0o755, parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch(mode=0o644)
    checks = {
        "Directory": (stat.S_ISDIR, "directory"),
        "DirectoryOrCreate": (stat.S_ISDIR, "directory"),
        "File": (stat.S_ISREG, "file"),
        "FileOrCreate": (stat.S_ISREG, "file"),
        "Socket": (stat.S_ISSOCK, "socket"),
        "CharDevice": (stat.S_ISCHR, "character device"),
        "BlockDevice": (stat.S_ISBLK, "block device"),
    }
    if kind in checks:
        test, what = checks[kind]
        try:
            mode = p.stat().st_mode
        except FileNotFoundError:
            raise VolumeError(f"hostPath type check failed: {path} is not a {what}") from None
        if not test(mode):
            raise VolumeError(f"hostPath type check failed: {path} is not a {what}")
    elif kind:
        raise VolumeError(f"hostPath type {kind!r} is not supported")
    return p


def container_mounts(container: Container, volumes: dict[str, PodVolume]) -> list[Mount]:
    """The container's volumeMounts as runtime mounts (subPath resolved inside the volume)."""
    mounts = []
    for vm in container.volume_mounts or []:
        vol = volumes.get(vm.name)
        if vol is None:
            raise ConfigError(f"cannot find volume {vm.name!r} to mount into container {container.name!r}")
        source = vol.path
        if vm.sub_path:
            source = Path(rootfs.secure_join(str(vol.path), vm.sub_path))
            if not source.exists():
                source.mkdir(parents=True)
        mounts.append(Mount(str(source), vm.mount_path, readonly=vol.readonly or bool(vm.read_only)))
    return mounts
