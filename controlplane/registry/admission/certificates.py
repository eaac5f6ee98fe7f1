"""CertificateSigningRequests record who asked: the API server, never the body, sets
``spec.username``, ``uid`` and ``groups`` (Kubernetes does this in the CSR strategy). The approver
trusts these fields (a bootstrap token's group lets a node client request through), so a client
must not be able to claim someone else's identity in them."""

from __future__ import annotations

from apimachinery.api.certificates_v1 import CertificateSigningRequest
from apimachinery.meta import KubeObject
from controlplane.registry.admission.attributes import CREATE, Attributes


class CertificateSigningRequester:
    name = "CertificateSigningRequester"

    async def admit(self, attrs: Attributes, obj: KubeObject, old: KubeObject | None) -> None:
        if attrs.operation != CREATE or not isinstance(obj, CertificateSigningRequest):
            return
        obj.spec.username = attrs.user.name
        obj.spec.uid = attrs.user.uid or None
        obj.spec.groups = list(attrs.user.groups) or None
        obj.spec.extra = None
