"""Validation of ReplicaSets and Deployments (apps/v1), following Kubernetes' apps validation."""

from __future__ import annotations

from apimachinery.api.apps_v1 import Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment
from apimachinery.api.core_v1 import IntOrString, PodTemplateSpec
from apimachinery.errors import FieldError
from apimachinery.meta import LabelSelector
from apimachinery.selectors import SelectorError, selector_from_model
from apimachinery.validation.meta import (
    immutable,
    nonnegative,
    selector_is_empty,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from apimachinery.validation.names import is_valid_percent, name_is_dns_subdomain
from apimachinery.validation.pod import validate_pod_template

STRATEGY_TYPES = ["Recreate", "RollingUpdate"]


def _selector(selector: LabelSelector | None, field: str) -> list[FieldError]:
    if selector is None:
        return [FieldError.required(field)]
    errors = validate_label_selector(selector, field)
    if selector_is_empty(selector):
        # Kubernetes says "deployment" here for ReplicaSets too.
        errors.append(
            FieldError.invalid(field, selector.to_dict(), "empty selector is invalid for deployment")
        )
    return errors


def _selects(selector: LabelSelector, labels: dict[str, str] | None) -> bool:
    """Whether the selector matches; an invalid selector (already reported) is not compared."""
    try:
        return selector_from_model(selector).matches(labels or {})
    except SelectorError:
        return True


def _template(
    template: PodTemplateSpec | None, selector: LabelSelector | None, field: str
) -> list[FieldError]:
    """A controller's template: it must carry the selector's labels and always restart its pods."""
    if template is None:
        return [FieldError.required(field)]
    errors: list[FieldError] = []
    if (
        selector is not None
        and not selector_is_empty(selector)
        and not _selects(selector, template.metadata.labels)
    ):
        errors.append(
            FieldError.invalid(
                f"{field}.metadata.labels",
                template.metadata.labels or {},
                "`selector` does not match template `labels`",
            )
        )
    errors.extend(validate_pod_template(template, field))
    policy = template.spec.restart_policy
    if policy in ("OnFailure", "Never"):
        # (an empty or unknown policy was already reported by the pod spec rules)
        errors.append(FieldError.not_supported(f"{field}.spec.restartPolicy", policy, ["Always"]))
    if template.spec.active_deadline_seconds is not None:
        errors.append(
            FieldError.invalid(
                f"{field}.spec.activeDeadlineSeconds",
                template.spec.active_deadline_seconds,
                "activeDeadlineSeconds in ReplicaSet is not Supported",
            )
        )
    return errors


def validate_replicaset(rs: ReplicaSet) -> list[FieldError]:
    spec = rs.spec
    errors = validate_object_meta(rs.metadata, namespaced=True, name_rule=name_is_dns_subdomain)
    errors.extend(nonnegative(spec.replicas, "spec.replicas"))
    errors.extend(nonnegative(spec.min_ready_seconds, "spec.minReadySeconds"))
    errors.extend(_selector(spec.selector, "spec.selector"))
    errors.extend(_template(spec.template, spec.selector, "spec.template"))
    return errors


def validate_replicaset_update(new: ReplicaSet, old: ReplicaSet) -> list[FieldError]:
    errors = validate_object_meta_update(new.metadata, old.metadata)
    errors.extend(
        immutable(_selector_dict(new.spec.selector), _selector_dict(old.spec.selector), "spec.selector")
    )
    return errors


# ---------------------------------------------------------------------------------------------
# Deployment


def _int_or_percent(value: IntOrString | None, field: str) -> list[FieldError]:
    if isinstance(value, str):
        return [FieldError.invalid(field, value, msg) for msg in is_valid_percent(value)]
    if isinstance(value, int):
        return nonnegative(value, field)
    return []


def _amount(value: IntOrString | None) -> int:
    """The number in an int or a well-formed percentage (0 for anything else)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and not is_valid_percent(value):
        return int(value[:-1])
    return 0


def _rolling_update(ru: RollingUpdateDeployment, field: str) -> list[FieldError]:
    errors = _int_or_percent(ru.max_unavailable, f"{field}.maxUnavailable")
    errors.extend(_int_or_percent(ru.max_surge, f"{field}.maxSurge"))
    if _amount(ru.max_unavailable) == 0 and _amount(ru.max_surge) == 0:
        errors.append(
            FieldError.invalid(
                f"{field}.maxUnavailable", ru.max_unavailable, "may not be 0 when `maxSurge` is 0"
            )
        )
    if isinstance(ru.max_unavailable, str) and _amount(ru.max_unavailable) > 100:
        errors.append(
            FieldError.invalid(f"{field}.maxUnavailable", ru.max_unavailable, "must not be greater than 100%")
        )
    return errors


def _strategy(strategy: DeploymentStrategy | None, field: str) -> list[FieldError]:
    if strategy is None:
        return [FieldError.required(f"{field}.type")]
    if strategy.type == "Recreate":
        if strategy.rolling_update is not None:
            return [
                FieldError.forbidden(
                    f"{field}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
                )
            ]
        return []
    if strategy.type == "RollingUpdate":
        if strategy.rolling_update is None:
            return [
                FieldError.required(f"{field}.rollingUpdate", "this should be defaulted and never be nil")
            ]
        return _rolling_update(strategy.rolling_update, f"{field}.rollingUpdate")
    if not strategy.type:
        return [FieldError.required(f"{field}.type")]
    return [FieldError.not_supported(f"{field}.type", strategy.type, STRATEGY_TYPES)]


def validate_deployment(d: Deployment) -> list[FieldError]:
    spec = d.spec
    errors = validate_object_meta(d.metadata, namespaced=True, name_rule=name_is_dns_subdomain)
    errors.extend(nonnegative(spec.replicas, "spec.replicas"))
    errors.extend(_selector(spec.selector, "spec.selector"))
    errors.extend(_template(spec.template, spec.selector, "spec.template"))
    errors.extend(_strategy(spec.strategy, "spec.strategy"))
    errors.extend(nonnegative(spec.min_ready_seconds, "spec.minReadySeconds"))
    errors.extend(nonnegative(spec.revision_history_limit, "spec.revisionHistoryLimit"))
    pds = spec.progress_deadline_seconds
    if pds is not None:
        errors.extend(nonnegative(pds, "spec.progressDeadlineSeconds"))
        if pds <= (spec.min_ready_seconds or 0):
            errors.append(
                FieldError.invalid(
                    "spec.progressDeadlineSeconds", pds, "must be greater than minReadySeconds"
                )
            )
    return errors


def _selector_dict(selector: LabelSelector | None) -> dict[str, object] | None:
    return selector.to_dict() if selector is not None else None


def validate_deployment_update(new: Deployment, old: Deployment) -> list[FieldError]:
    errors = validate_object_meta_update(new.metadata, old.metadata)
    errors.extend(
        immutable(_selector_dict(new.spec.selector), _selector_dict(old.spec.selector), "spec.selector")
    )
    return errors
