"""Per-kind rules the generic store applies around every write (Kubernetes' registry strategies).

They work on JSON dicts before typed decoding: what a create may set, which parts of an update
are kept from the stored object (spec vs status), and what counts as a spec change.
"""

from __future__ import annotations

import base64
from typing import Any

from apimachinery.jsonutil import deep_copy
from apimachinery.scheme import ResourceType

# Top-level keys that are not part of the desired state.
_NOT_SPEC = ("apiVersion", "kind", "metadata", "status")

# Kinds whose status a create may set (the writer is the component that observes it).
_STATUS_ON_CREATE = {"Node", "Event", "Lease"}


def initial_status(rt: ResourceType) -> dict[str, Any] | None:
    if rt.kind == "Pod":
        return {"phase": "Pending"}
    if rt.kind == "Namespace":
        return {"phase": "Active"}
    return None


def normalize(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Write-only conveniences folded into the stored form (Secret stringData -> data)."""
    if rt.kind == "Secret" and isinstance(obj.get("stringData"), dict):
        data = dict(obj.get("data") or {})
        for key, value in obj.pop("stringData").items():
            # stringData wins over data for the same key, as in Kubernetes.
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


def prepare_for_create(rt: ResourceType, obj: dict[str, Any]) -> None:
    if rt.has_status and rt.kind not in _STATUS_ON_CREATE:
        status = initial_status(rt)
        if status is None:
            obj.pop("status", None)
        else:
            obj["status"] = status


def prepare_for_update(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A write to the main resource keeps the stored status (status has its own subresource)."""
    if rt.has_status:
        if "status" in old:
            new["status"] = deep_copy(old["status"])
        else:
            new.pop("status", None)
    if rt.kind == "Service":
        _keep_allocated_service_fields(new, old)
    if rt.kind == "Namespace":
        # spec.finalizers of a Namespace change only through the finalize subresource.
        new.setdefault("spec", {})
        new["spec"]["finalizers"] = deep_copy((old.get("spec") or {}).get("finalizers"))
        if new["spec"]["finalizers"] is None:
            del new["spec"]["finalizers"]


def prepare_for_status_update(rt: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """A status write keeps everything of the stored object but its status."""
    out = deep_copy(old)
    if "status" in new:
        out["status"] = deep_copy(new["status"])
    else:
        out.pop("status", None)
    return out


def prepare_for_finalize(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """Namespace finalize: only spec.finalizers changes."""
    out = deep_copy(old)
    out.setdefault("spec", {})["finalizers"] = deep_copy((new.get("spec") or {}).get("finalizers") or [])
    return out


def prepare_for_approval(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """CertificateSigningRequest approval: only status.conditions changes (the certificate is
    the signer's, written through status)."""
    out = deep_copy(old)
    out.setdefault("status", {})["conditions"] = deep_copy((new.get("status") or {}).get("conditions") or [])
    return out


def status_only_validation(rt: ResourceType, subresource: str | None) -> bool:
    """Status writes check only the status, except for kinds whose rules tie status to the
    rest (a CSR's certificate may only follow an approval that may never be withdrawn)."""
    return subresource == "status" and rt.kind != "CertificateSigningRequest"


def spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


def tracks_generation(rt: ResourceType) -> bool:
    """Kinds with a spec/status split carry metadata.generation."""
    return rt.has_status


def _keep_allocated_service_fields(new: dict[str, Any], old: dict[str, Any]) -> None:
    """Allocated values a client leaves out of an update are kept (kubectl replace/apply of a
    manifest without clusterIP must not try to unset it)."""
    old_spec = old.get("spec") or {}
    spec = new.setdefault("spec", {})
    if spec.get("type") != "ExternalName" and old_spec.get("type") != "ExternalName":
        # Changing to or from ExternalName gives up or takes a cluster IP: nothing to carry over.
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if not spec.get(key) and old_spec.get(key):
                spec[key] = deep_copy(old_spec[key])
    if spec.get("type", "ClusterIP") == "ClusterIP" or spec.get("type") == "ExternalName":
        # No node ports outside NodePort/LoadBalancer Services.
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.pop("nodePort", None)
        return
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or [] if isinstance(p, dict)}
    for port in spec.get("ports") or []:
        if isinstance(port, dict) and not port.get("nodePort"):
            prev = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
            if prev and prev.get("nodePort"):
                port["nodePort"] = prev["nodePort"]
