"""CertificateSigningRequests: approve node bootstrap requests, sign approved requests.

Two reconcilers over one informer, as Kubernetes' csrapproving and csrsigning controllers:

* the **approver** approves a request for the kubelet-client signer when it is a node client
  certificate (subject ``CN=system:node:NAME, O=system:nodes``, no alternative names, client-auth
  usages only) and it was made either by a bootstrap token (group ``system:bootstrappers``: a node
  joining) or by that very node (renewal). Anything else waits for a person
  (``kubectl certificate approve``).
* the **signer** issues approved requests of the two client signers with the cluster CA, for
  ``spec.expirationSeconds`` (capped by ``--cluster-signing-duration``), and marks a request it
  cannot honour Failed with the reason. It runs only where the CA key is (the control plane's
  data dir, or ``--cluster-signing-cert-file/--cluster-signing-key-file``).
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apimachinery.api.certificates_v1 import (
    SIGNER_CLIENT,
    SIGNER_KUBELET_CLIENT,
    CertificateSigningRequest,
    CertificateSigningRequestCondition,
    CertificateSigningRequestStatus,
)
from apimachinery.controller.runtime import DONE, Controller, Result
from apimachinery.meta import now
from apimachinery.validation.certificates import parse_csr
from controlplane.apiserver.certs import sign_public_key
from controlplane.controllers.context import ControllerContext

NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
BOOTSTRAPPERS_GROUP = "system:bootstrappers"
_KUBELET_CLIENT_USAGES = {"key encipherment", "digital signature", "client auth"}


class RequestRefused(ValueError):
    """Why a request cannot be signed as asked (becomes a Failed condition)."""


def _condition(csr: CertificateSigningRequest, ctype: str) -> CertificateSigningRequestCondition | None:
    for c in (csr.status.conditions if csr.status else None) or []:
        if c.type == ctype and c.status == "True":
            return c
    return None


def node_client_problem(csr: CertificateSigningRequest, request: x509.CertificateSigningRequest) -> str | None:
    """Why this is not a valid node client certificate request (None when it is)."""
    cns = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = [str(a.value) for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if len(cns) != 1 or not str(cns[0].value).startswith(NODE_USER_PREFIX) or len(str(cns[0].value)) == len(NODE_USER_PREFIX):
        return f'subject common name must be "{NODE_USER_PREFIX}<nodeName>"'
    if orgs != [NODES_GROUP]:
        return f'subject organization must be exactly ["{NODES_GROUP}"]'
    try:
        request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return "node client certificates may not carry subject alternative names"
    except x509.ExtensionNotFound:
        pass
    usages = set(csr.spec.usages or [])
    if "client auth" not in usages or not usages <= _KUBELET_CLIENT_USAGES:
        return 'usages must include "client auth" and only "digital signature", "key encipherment", "client auth"'
    return None


def _common_name(request: x509.CertificateSigningRequest) -> str:
    cns = request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else ""


class ApproverReconciler:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.csrs = ctx.informers.for_model(CertificateSigningRequest)

    async def reconcile(self, key: str) -> Result:
        csr = self.csrs.get(key)
        if csr is None or csr.spec.signer_name != SIGNER_KUBELET_CLIENT:
            return DONE
        if _condition(csr, "Approved") or _condition(csr, "Denied") or _condition(csr, "Failed"):
            return DONE
        try:
            request = parse_csr(csr.spec.request)
        except ValueError:
            return DONE  # validation refuses these at create; nothing to approve
        if node_client_problem(csr, request) is not None:
            return DONE  # not ours to judge: a person may still approve or deny it
        requester_groups = set(csr.spec.groups or [])
        renewal = csr.spec.username == _common_name(request)
        if not renewal and BOOTSTRAPPERS_GROUP not in requester_groups:
            return DONE
        new = csr.copy_deep()
        status = new.status or CertificateSigningRequestStatus()
        stamp = now()
        message = f"Auto approving {'self ' if renewal else ''}kubelet client certificate."
        status.conditions = [*(status.conditions or []), CertificateSigningRequestCondition(
            type="Approved", status="True", reason="AutoApproved", message=message,
            last_update_time=stamp, last_transition_time=stamp,
        )]
        new.status = status
        rt = self.ctx.client.resource(CertificateSigningRequest)
        await self.ctx.client.replace(rt, new.to_dict(), subresource="approval")
        return DONE


class SignerReconciler:
    def __init__(self, ctx: ControllerContext, ca_cert: Path, ca_key: Path, max_duration: dt.timedelta) -> None:
        self.ctx = ctx
        self.ca_cert, self.ca_key = ca_cert, ca_key
        self.max_duration = max_duration
        self.csrs = ctx.informers.for_model(CertificateSigningRequest)

    def sign(self, csr: CertificateSigningRequest) -> bytes:
        """The certificate for an approved request, or RequestRefused."""
        request = parse_csr(csr.spec.request)
        usages = set(csr.spec.usages or [])
        if csr.spec.signer_name == SIGNER_KUBELET_CLIENT:
            problem = node_client_problem(csr, request)
            if problem:
                raise RequestRefused(problem)
        elif "client auth" not in usages or "server auth" in usages:
            raise RequestRefused('usages must include "client auth" and must not include "server auth"')
        lifetime = self.max_duration
        if csr.spec.expiration_seconds:
            lifetime = min(lifetime, dt.timedelta(seconds=csr.spec.expiration_seconds))
        return sign_public_key(
            self.ca_cert, self.ca_key, request.subject, request.public_key(), [ExtendedKeyUsageOID.CLIENT_AUTH],
            lifetime=lifetime, key_usage_encipherment="key encipherment" in usages,
        )

    async def reconcile(self, key: str) -> Result:
        csr = self.csrs.get(key)
        if csr is None or csr.spec.signer_name not in (SIGNER_KUBELET_CLIENT, SIGNER_CLIENT):
            return DONE
        if not _condition(csr, "Approved") or _condition(csr, "Failed") or (csr.status and csr.status.certificate):
            return DONE
        new = csr.copy_deep()
        status = new.status or CertificateSigningRequestStatus()
        try:
            status.certificate = base64.b64encode(self.sign(csr)).decode()
        except (RequestRefused, ValueError) as e:
            stamp = now()
            status.conditions = [*(status.conditions or []), CertificateSigningRequestCondition(
                type="Failed", status="True", reason="SignerValidationFailure", message=str(e),
                last_update_time=stamp, last_transition_time=stamp,
            )]
        new.status = status
        await self.ctx.client.typed(CertificateSigningRequest).update_status(new)
        return DONE


def new_controller(ctx: ControllerContext) -> Controller:
    approver = ApproverReconciler(ctx)
    c = Controller("csrapproving", approver, workers=1)
    c.watch(approver.csrs)
    return c


def new_signer(ctx: ControllerContext) -> Controller | None:
    """The signer, when this process was given the CA (cert and key files)."""
    cert, key = ctx.config.cluster_signing_cert_file, ctx.config.cluster_signing_key_file
    if not cert or not key or not Path(key).exists():
        return None
    signer = SignerReconciler(ctx, Path(cert), Path(key), dt.timedelta(seconds=ctx.config.cluster_signing_duration))
    c = Controller("csrsigning", signer, workers=1)
    c.watch(signer.csrs)
    return c
