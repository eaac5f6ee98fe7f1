"""certificates.k8s.io/v1: CertificateSigningRequest (node TLS bootstrap and user certificates).

A client posts a PEM certificate request and names a signer; an approver adds an Approved (or
Denied) condition through the ``approval`` subresource; the signer then writes the issued
certificate into ``status.certificate`` through ``status``. Who asked is recorded by the API
server in ``spec.username``/``uid``/``groups``, never taken from the body.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from apimachinery.meta import KubeList, KubeObject, Time
from apimachinery.model import KubeModel

# The signers Kubernetes defines for client certificates; both are served by the control plane.
SIGNER_KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
SIGNER_CLIENT = "kubernetes.io/kube-apiserver-client"
KNOWN_SIGNERS = (SIGNER_KUBELET_CLIENT, SIGNER_CLIENT)

KEY_USAGES = (
    "signing", "digital signature", "content commitment", "key encipherment", "key agreement",
    "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
    "server auth", "client auth", "code signing", "email protection", "s/mime",
    "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
    "microsoft sgc", "netscape sgc",
)


class CertificateSigningRequestSpec(KubeModel):
    """The request and the signer it is for; the user fields are set by the API server."""

    request: str = Field("", description="Base64-encoded PEM CERTIFICATE REQUEST.")
    signer_name: str = Field("", description="The signer asked to issue the certificate.")
    expiration_seconds: int | None = Field(None, description="Requested validity, at least 600 seconds.")
    usages: list[str] | None = Field(None, description="Key usages asked for.")
    username: str | None = Field(None, description="The user who created the request.")
    uid: str | None = Field(None, description="The uid of that user.")
    groups: list[str] | None = Field(None, description="The groups of that user.")
    extra: dict[str, list[str]] | None = Field(None, description="Extra attributes of that user.")


class CertificateSigningRequestCondition(KubeModel):
    """Approved, Denied or Failed."""

    type: str = ""
    status: str = ""
    reason: str | None = None
    message: str | None = None
    last_update_time: Time | None = None
    last_transition_time: Time | None = None


class CertificateSigningRequestStatus(KubeModel):
    """The approval state and, once signed, the certificate."""

    conditions: list[CertificateSigningRequestCondition] | None = None
    certificate: str | None = Field(None, description="Base64-encoded PEM certificate chain, once issued.")


class CertificateSigningRequest(KubeObject):
    """A request for a certificate from a named signer."""

    API_VERSION: ClassVar[str] = "certificates.k8s.io/v1"
    KIND: ClassVar[str] = "CertificateSigningRequest"

    spec: CertificateSigningRequestSpec = Field(default_factory=CertificateSigningRequestSpec)
    status: CertificateSigningRequestStatus | None = None


class CertificateSigningRequestList(KubeList[CertificateSigningRequest]):
    api_version: str | None = "certificates.k8s.io/v1"
    kind: str | None = "CertificateSigningRequestList"
