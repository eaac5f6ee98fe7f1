"""What the controllers that keep one named object in every live namespace share (the
``default`` ServiceAccount, the ``kube-root-ca.crt`` ConfigMap): their key is the namespace's name.
"""

from __future__ import annotations

from typing import Any

from apimachinery.api.core_v1 import Namespace
from apimachinery.client.informer import Informer
from apimachinery.controller.runtime import Controller
from apimachinery.meta import KubeObject


def live(ns: Namespace | None) -> bool:
    """The namespace exists and is not going away (nothing new may be created in a terminating one)."""
    return ns is not None and not ns.metadata.deletion_timestamp and ns.status.phase != "Terminating"


def watch_per_namespace(c: Controller, namespaces: Informer[Namespace], objects: Informer[Any], name: str) -> None:
    """Reconcile a namespace when it changes and when its object called ``name`` does (so a
    changed or deleted one is put back)."""
    c.watch(namespaces)

    def namespace_of(obj: KubeObject) -> list[str]:
        return [obj.metadata.namespace or ""] if obj.metadata.name == name else []

    c.watch(objects, map_keys=namespace_of)
