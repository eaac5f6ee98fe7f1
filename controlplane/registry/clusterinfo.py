"""The public ``kube-public/cluster-info`` ConfigMap: where a joining node learns the cluster CA.

It holds a kubeconfig with only the server address and CA (no credentials). Joining nodes read
it before they trust the server and accept the CA only if its public key matches the hash they
were given with their join token (see nodeagent.bootstrap), so serving it to anyone is safe.
"""

from __future__ import annotations

import base64

import yaml

from controlplane.registry.kubernetes_service import create_or_update, resource_type
from controlplane.registry.store import Obj, Store

NAMESPACE = "kube-public"
NAME = "cluster-info"


def cluster_info_kubeconfig(server: str, ca_pem: bytes) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "contexts": [], "users": [], "preferences": {}, "current-context": "",
    }, sort_keys=False)


async def ensure_cluster_info(store: Store, server: str, ca_pem: bytes) -> None:
    data = {"kubeconfig": cluster_info_kubeconfig(server, ca_pem)}

    def fix(cm: Obj) -> Obj:
        cm["data"] = dict(data)
        return cm

    await create_or_update(store, resource_type(store, "", "v1", "configmaps"), {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": NAME, "namespace": NAMESPACE}, "data": dict(data),
    }, fix)
