"""ConfigMaps and Secrets a pod refers to, read from the API server once per sync.

A sync that builds several containers' environments and volumes asks for the same objects many
times; one :class:`ObjectSource` per sync reads each at most once. Missing objects are ``None``
(the caller decides whether ``optional`` makes that fine).
"""

from __future__ import annotations

import base64
from typing import Any

from apimachinery.api.core_v1 import ConfigMap, Secret
from apimachinery.client import ApiClient
from apimachinery.errors import ApiError


class ConfigError(Exception):
    """The container cannot be configured yet (kubelet reason CreateContainerConfigError)."""

    reason = "CreateContainerConfigError"


class ObjectSource:
    def __init__(self, client: ApiClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self._config_maps: dict[str, dict[str, bytes] | None] = {}
        self._secrets: dict[str, dict[str, bytes] | None] = {}

    async def config_map(self, name: str) -> dict[str, bytes] | None:
        """The ConfigMap's data and binaryData as bytes, or None when it does not exist."""
        if name not in self._config_maps:
            obj = await self._get(ConfigMap, name)
            if obj is None:
                self._config_maps[name] = None
            else:
                data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
                data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
                self._config_maps[name] = data
        return self._config_maps[name]

    async def secret(self, name: str) -> dict[str, bytes] | None:
        """The Secret's data (decoded), or None when it does not exist."""
        if name not in self._secrets:
            obj = await self._get(Secret, name)
            self._secrets[name] = None if obj is None else {
                k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        return self._secrets[name]

    async def _get(self, model: type[ConfigMap] | type[Secret], name: str) -> dict[str, Any] | None:
        try:
            return await self.client.get(self.client.scheme.for_model(model), name, self.namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def config_map_key(self, name: str, key: str, optional: bool) -> bytes | None:
        data = await self.config_map(name)
        if data is None:
            if optional:
                return None
            raise ConfigError(f'configmap "{name}" not found')
        if key not in data:
            if optional:
                return None
            raise ConfigError(f'couldn\'t find key {key} in ConfigMap {self.namespace}/{name}')
        return data[key]

    async def secret_key(self, name: str, key: str, optional: bool) -> bytes | None:
        data = await self.secret(name)
        if data is None:
            if optional:
                return None
            raise ConfigError(f'secret "{name}" not found')
        if key not in data:
            if optional:
                return None
            raise ConfigError(f'couldn\'t find key {key} in Secret {self.namespace}/{name}')
        return data[key]
