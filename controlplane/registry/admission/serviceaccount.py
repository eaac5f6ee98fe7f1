"""ServiceAccount admission: every new pod runs as a service account and, unless it opts out,
gets that account's credentials mounted, as Kubernetes' ServiceAccount plugin does.

The credentials are one projected volume, ``kube-api-access-<5 chars>``: a bound token the node
agent requests through TokenRequest (``token``, 3607 s), the cluster's CA bundle from the
``kube-root-ca.crt`` ConfigMap (``ca.crt``) and the pod's namespace (``namespace``), mounted
read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in every init and app container.

Unlike Kubernetes, a pod whose service account does not exist yet is not refused: the
``default`` account appears a moment after its namespace (the serviceaccount controller makes
it), and refusing pods in that window would only make every client retry.
"""

from __future__ import annotations

import secrets

from apimachinery.api.core_v1 import (
    ConfigMapProjection,
    DownwardAPIProjection,
    DownwardAPIVolumeFile,
    KeyToPath,
    ObjectFieldSelector,
    Pod,
    ProjectedVolumeSource,
    ServiceAccountTokenProjection,
    Volume,
    VolumeMount,
    VolumeProjection,
)
from apimachinery.meta import KubeObject
from apimachinery.scheme import Scheme
from controlplane.registry.admission.attributes import CREATE, Attributes, Lookup

DEFAULT_SERVICE_ACCOUNT = "default"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
VOLUME_PREFIX = "kube-api-access-"
# Kubernetes' value: an hour, plus 7 s so a token is visibly "bound" rather than a legacy one.
TOKEN_EXPIRATION_SECONDS = 3607
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def api_access_volume(name: str) -> Volume:
    return Volume(
        name=name,
        projected=ProjectedVolumeSource(
            default_mode=0o644,
            sources=[
                VolumeProjection(service_account_token=ServiceAccountTokenProjection(
                    expiration_seconds=TOKEN_EXPIRATION_SECONDS, path="token")),
                VolumeProjection(config_map=ConfigMapProjection(
                    name=ROOT_CA_CONFIGMAP, items=[KeyToPath(key="ca.crt", path="ca.crt")])),
                VolumeProjection(downward_api=DownwardAPIProjection(items=[DownwardAPIVolumeFile(
                    path="namespace", field_ref=ObjectFieldSelector(api_version="v1", field_path="metadata.namespace"))])),
            ],
        ),
    )


class ServiceAccount:
    name = "ServiceAccount"

    def __init__(self, scheme: Scheme, lookup: Lookup) -> None:
        sa_rt = scheme.by_resource("", "v1", "serviceaccounts")
        assert sa_rt is not None
        self.sa_rt = sa_rt
        self.lookup = lookup

    async def admit(self, attrs: Attributes, obj: KubeObject, old: KubeObject | None) -> None:
        if attrs.operation != CREATE or attrs.subresource or not isinstance(obj, Pod):
            return
        spec = obj.spec
        account = spec.service_account_name or spec.service_account or DEFAULT_SERVICE_ACCOUNT
        spec.service_account_name = account
        if not spec.service_account:
            spec.service_account = account
        if not await self._automount(spec.automount_service_account_token, attrs.namespace, account):
            return
        containers = [*(spec.init_containers or []), *spec.containers]
        needing = [c for c in containers if not any(m.mount_path == TOKEN_MOUNT_PATH for m in c.volume_mounts or [])]
        if not needing:
            return
        taken = {v.name for v in spec.volumes or []}
        name = VOLUME_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(5))
        while name in taken:
            name = VOLUME_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(5))
        spec.volumes = [*(spec.volumes or []), api_access_volume(name)]
        for c in needing:
            c.volume_mounts = [*(c.volume_mounts or []),
                               VolumeMount(name=name, read_only=True, mount_path=TOKEN_MOUNT_PATH)]

    async def _automount(self, pod_says: bool | None, namespace: str, account: str) -> bool:
        """The pod's own setting wins; else the service account's; else yes."""
        if pod_says is not None:
            return pod_says
        sa = await self.lookup(self.sa_rt, namespace, account)
        if sa is not None and sa.get("automountServiceAccountToken") is False:
            return False
        return True
