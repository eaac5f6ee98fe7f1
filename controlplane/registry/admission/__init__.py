"""Admission: the chain every write passes before it is stored (see :mod:`.chain`).

The plugins, in Kubernetes' order: mutating Defaulting, ServiceAccount, DefaultTolerationSeconds;
validating Validation, NamespaceLifecycle, PodSecurity.
"""

from __future__ import annotations

from dataclasses import dataclass

from apimachinery import defaults
from apimachinery.scheme import Scheme
from controlplane.registry.admission.attributes import (
    CREATE,
    UPDATE,
    Attributes,
    ListLookup,
    Lookup,
    RequestUser,
    request_user,
    set_request_user,
)
from controlplane.registry.admission.builtin import (
    Defaulting,
    DefaultTolerationSeconds,
    NamespaceLifecycle,
    Validation,
)
from controlplane.registry.admission.certificates import CertificateSigningRequester
from controlplane.registry.admission.chain import (
    FIELD_VALIDATION_MODES,
    IGNORE,
    STRICT,
    WARN,
    AdmissionChain,
    Admitted,
    Plugin,
    check_field_validation,
    typed,
)
from controlplane.registry.admission.noderestriction import NodeRestriction
from controlplane.registry.admission.podsecurity import PodSecurity
from controlplane.registry.admission.podsecurity_checks import PRIVILEGED
from controlplane.registry.admission.serviceaccount import ServiceAccount

__all__ = [
    "CREATE", "FIELD_VALIDATION_MODES", "IGNORE", "STRICT", "UPDATE", "WARN", "AdmissionChain", "AdmissionConfig",
    "Admitted", "Attributes", "ListLookup", "Lookup", "Plugin", "RequestUser", "build_chain", "check_field_validation",
    "request_user", "set_request_user", "typed",
]


@dataclass(frozen=True)
class AdmissionConfig:
    """Cluster-wide admission settings (flags of the API server)."""

    # DefaultTolerationSeconds: how long new pods tolerate a not-ready/unreachable node.
    default_toleration_seconds: int = defaults.DEFAULT_TOLERATION_SECONDS
    # PodSecurity: the level of namespaces without pod-security.kubernetes.io labels.
    pod_security_default: str = PRIVILEGED
    # ServiceAccount: give pods a service account and mount its token.
    service_accounts: bool = True
    # Validating plugins the API server adds from above this layer (RBAC escalation prevention).
    extra_validating: tuple[Plugin, ...] = ()


def build_chain(config: AdmissionConfig, scheme: Scheme, lookup: Lookup,
                list_lookup: ListLookup | None = None) -> AdmissionChain:
    mutating: list[Plugin] = [Defaulting()]
    if config.service_accounts:
        mutating.append(ServiceAccount(scheme, lookup))
    mutating.append(DefaultTolerationSeconds(config.default_toleration_seconds))
    mutating.append(CertificateSigningRequester())
    validating: list[Plugin] = [
        Validation(),
        NamespaceLifecycle(scheme, lookup),
        PodSecurity(scheme, lookup, config.pod_security_default, list_lookup),
        NodeRestriction(),
        *config.extra_validating,
    ]
    return AdmissionChain(mutating, validating, lookup)
