"""Validation of CertificateSigningRequests: a parseable request, a named signer, known usages."""

from __future__ import annotations

import base64
import binascii

from cryptography import x509

from apimachinery.api.certificates_v1 import KEY_USAGES, CertificateSigningRequest
from apimachinery.errors import FieldError
from apimachinery.validation.meta import immutable, validate_object_meta, validate_object_meta_update
from apimachinery.validation.names import is_dns1123_subdomain, name_is_dns_subdomain

MIN_EXPIRATION_SECONDS = 600
_CONDITION_TYPES = ("Approved", "Denied", "Failed")
_CONDITION_STATUSES = ("True", "False", "Unknown")


def parse_csr(request_b64: str) -> x509.CertificateSigningRequest:
    """The certificate request inside ``spec.request``; ValueError with a readable reason."""
    try:
        pem = base64.b64decode(request_b64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError("must be base64-encoded PEM") from e
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in pem:
        raise ValueError("PEM block type must be CERTIFICATE REQUEST")
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as e:
        raise ValueError(f"not a valid certificate request: {e}") from e
    if not csr.is_signature_valid:
        raise ValueError("the certificate request's signature does not match its public key")
    return csr


def _signer_errors(name: str) -> list[FieldError]:
    path = "spec.signerName"
    if not name:
        return [FieldError.required(path)]
    domain, slash, rest = name.partition("/")
    if not slash or not domain or not rest:
        return [FieldError.invalid(path, name, "must be a fully qualified domain and path of the form 'example.com/signer-name'")]
    if "." not in domain or is_dns1123_subdomain(domain):
        return [FieldError.invalid(path, name, "should be a domain with at least two segments separated by dots")]
    return []


def validate_certificate_signing_request(csr: CertificateSigningRequest) -> list[FieldError]:
    errors = validate_object_meta(csr.metadata, namespaced=False, name_rule=name_is_dns_subdomain)
    spec = csr.spec
    if not spec.request:
        errors.append(FieldError.required("spec.request"))
    else:
        try:
            parse_csr(spec.request)
        except ValueError as e:
            errors.append(FieldError.invalid("spec.request", "<request>", str(e)))
    errors.extend(_signer_errors(spec.signer_name))
    if spec.expiration_seconds is not None and spec.expiration_seconds < MIN_EXPIRATION_SECONDS:
        errors.append(FieldError.invalid(
            "spec.expirationSeconds", spec.expiration_seconds, f"may not specify a duration less than {MIN_EXPIRATION_SECONDS} seconds",
        ))
    seen: set[str] = set()
    for i, usage in enumerate(spec.usages or []):
        if usage not in KEY_USAGES:
            errors.append(FieldError.not_supported(f"spec.usages[{i}]", usage, list(KEY_USAGES)))
        elif usage in seen:
            errors.append(FieldError("FieldValueDuplicate", f"spec.usages[{i}]", "", usage))
        seen.add(usage)
    errors.extend(_status_errors(csr))
    return errors


def _status_errors(csr: CertificateSigningRequest) -> list[FieldError]:
    errors: list[FieldError] = []
    if csr.status is None:
        return errors
    types: set[str] = set()
    for i, cond in enumerate(csr.status.conditions or []):
        path = f"status.conditions[{i}]"
        if not cond.type:
            errors.append(FieldError.required(f"{path}.type"))
        elif cond.type not in _CONDITION_TYPES:
            errors.append(FieldError.not_supported(f"{path}.type", cond.type, list(_CONDITION_TYPES)))
        elif cond.type in types:
            errors.append(FieldError("FieldValueDuplicate", f"{path}.type", "", cond.type))
        types.add(cond.type)
        if cond.status not in _CONDITION_STATUSES:
            errors.append(FieldError.not_supported(f"{path}.status", cond.status, list(_CONDITION_STATUSES)))
    if {"Approved", "Denied"} <= types:
        errors.append(FieldError.invalid("status.conditions", "Approved", "Approved and Denied conditions are mutually exclusive"))
    if csr.status.certificate:
        approved = any(c.type == "Approved" and c.status == "True" for c in csr.status.conditions or [])
        if not approved:
            errors.append(FieldError.invalid("status.certificate", "<certificate data>", "certificate may only be set once the request is approved"))
        else:
            try:
                x509.load_pem_x509_certificates(base64.b64decode(csr.status.certificate, validate=True))
            except (binascii.Error, ValueError):
                errors.append(FieldError.invalid("status.certificate", "<certificate data>", "must contain at least one CERTIFICATE PEM block"))
    return errors


def validate_certificate_signing_request_update(
    new: CertificateSigningRequest, old: CertificateSigningRequest,
) -> list[FieldError]:
    errors = validate_object_meta_update(new.metadata, old.metadata)
    errors.extend(immutable(new.spec.to_dict(), old.spec.to_dict(), "spec"))
    if old.status and old.status.certificate and (new.status is None or new.status.certificate != old.status.certificate):
        errors.append(FieldError.invalid("status.certificate", "<certificate data>", "updates may not modify existing certificate content"))
    for old_cond in (old.status.conditions if old.status else None) or []:
        if old_cond.type in ("Approved", "Denied") and not any(
            c.type == old_cond.type for c in (new.status.conditions if new.status else None) or []
        ):
            errors.append(FieldError.forbidden("status.conditions", f"updates may not remove a condition of type {old_cond.type!r}"))
    return errors
