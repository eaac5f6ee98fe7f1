"""Validation of ObjectMeta and the metadata-like pieces every kind shares (labels, selectors).

Paths and messages follow Kubernetes (``k8s.io/apimachinery/pkg/api/validation`` and the core
API's ObjectMeta rules), e.g. ``metadata.name: Invalid value: "Web": a lowercase RFC 1123
subdomain must consist of ...``. Like Kubernetes, label and annotation problems are reported
on ``metadata.labels`` / ``metadata.annotations`` with the offending key or value as the value.
"""

from __future__ import annotations

import json
from typing import Any

from apimachinery.errors import FieldError
from apimachinery.meta import LabelSelector, ObjectMeta, OwnerReference
from apimachinery.validation.names import (
    IMMUTABLE_MSG,
    NEGATIVE_MSG,
    NameRule,
    is_qualified_name,
    is_valid_label_value,
    name_is_dns_label,
    name_is_path_segment,
    path_segment_name_errors,
)

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
# Finalizers Kubernetes itself defines; any other finalizer must be domain-qualified.
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})

def not_found(field: str, value: Any) -> FieldError:
    return FieldError.not_found(field, value)


def too_long_omitted(field: str, max_length: int) -> FieldError:
    """TooLong without echoing the (huge) value, as Kubernetes reports sizes of whole maps."""
    return FieldError("FieldValueTooLong", field, f"may not be more than {max_length} bytes")


def immutable(new: Any, old: Any, field: str) -> list[FieldError]:
    """``field is immutable`` when a value changed (Kubernetes' ValidateImmutableField)."""
    if new == old:
        return []
    return [FieldError.invalid(field, _plain(new), IMMUTABLE_MSG)]


def nonnegative(value: int | None, field: str) -> list[FieldError]:
    if value is not None and value < 0:
        return [FieldError.invalid(field, value, NEGATIVE_MSG)]
    return []


def _plain(value: Any) -> Any:
    """Models become their JSON form so error values render like Kubernetes' objects."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value


# ---------------------------------------------------------------------------------------------
# Labels, annotations, selectors


def validate_label_name(key: str, field: str) -> list[FieldError]:
    return [FieldError.invalid(field, key, msg) for msg in is_qualified_name(key)]


def validate_labels(labels: dict[str, str] | None, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for key, value in (labels or {}).items():
        errors.extend(validate_label_name(key, field))
        errors.extend(FieldError.invalid(field, value, msg) for msg in is_valid_label_value(value))
    return errors


def validate_annotations(annotations: dict[str, str] | None, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    total = 0
    for key, value in (annotations or {}).items():
        # Annotation keys are qualified names whose case does not matter.
        errors.extend(FieldError.invalid(field, key, msg) for msg in is_qualified_name(key.lower()))
        total += len(key.encode()) + len(value.encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errors.append(too_long_omitted(field, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errors


def validate_label_selector(selector: LabelSelector | None, field: str) -> list[FieldError]:
    if selector is None:
        return []
    errors = validate_labels(selector.match_labels, f"{field}.matchLabels")
    for i, req in enumerate(selector.match_expressions or []):
        path = f"{field}.matchExpressions[{i}]"
        if req.operator in ("In", "NotIn"):
            if not req.values:
                errors.append(
                    FieldError.required(
                        f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                    )
                )
        elif req.operator in ("Exists", "DoesNotExist"):
            if req.values:
                errors.append(
                    FieldError.forbidden(
                        f"{path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        else:
            errors.append(
                FieldError.invalid(f"{path}.operator", req.operator, "not a valid selector operator")
            )
        errors.extend(validate_label_name(req.key, f"{path}.key"))
        for j, v in enumerate(req.values or []):
            errors.extend(
                FieldError.invalid(f"{path}.values[{j}]", v, msg) for msg in is_valid_label_value(v)
            )
    return errors


def selector_is_empty(selector: LabelSelector | None) -> bool:
    return selector is None or not (selector.match_labels or selector.match_expressions)


# ---------------------------------------------------------------------------------------------
# Owner references and finalizers


def validate_owner_references(refs: list[OwnerReference] | None, field: str) -> list[FieldError]:
    """Kubernetes reports these on ``metadata.ownerReferences.<field>`` (no index), as here."""
    errors: list[FieldError] = []
    first_controller = ""
    for ref in refs or []:
        version = ref.api_version.rpartition("/")[2]
        if not version:
            errors.append(
                FieldError.invalid(f"{field}.apiVersion", ref.api_version, "version must not be empty")
            )
        if not ref.kind:
            errors.append(FieldError.invalid(f"{field}.kind", ref.kind, "kind must not be empty"))
        if not ref.name:
            errors.append(FieldError.invalid(f"{field}.name", ref.name, "name must not be empty"))
        if not ref.uid:
            errors.append(FieldError.invalid(f"{field}.uid", ref.uid, "uid must not be empty"))
        if ref.controller:
            current = f"{ref.kind}/{ref.name}"
            if first_controller:
                errors.append(
                    FieldError.invalid(
                        field,
                        [r.to_dict() for r in refs or []],
                        'Only one reference can have Controller set to true. Found "true" in references '
                        f"for {first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return errors


def validate_finalizer_name(name: str, field: str) -> list[FieldError]:
    errors = [FieldError.invalid(field, name, msg) for msg in is_qualified_name(name)]
    if not errors and "/" not in name and name not in STANDARD_FINALIZERS:
        errors.append(
            FieldError.invalid(
                field, name, "name is neither a standard finalizer name nor is it fully qualified"
            )
        )
    return errors


def validate_finalizers(finalizers: list[str] | None, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for name in finalizers or []:
        errors.extend(validate_finalizer_name(name, field))
    if finalizers and "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errors.append(
            FieldError.invalid(
                field, finalizers, "finalizer orphan and foregroundDeletion cannot be both set"
            )
        )
    return errors


# ---------------------------------------------------------------------------------------------
# ObjectMeta


def _name_errors(name: str, rule: NameRule, prefix: bool) -> list[str]:
    """Path-segment rules hold for every kind; the kind's own rule applies after them."""
    if not prefix:
        segment = path_segment_name_errors(name)
        if segment:
            return segment
    return rule(name, prefix)


def validate_object_meta(
    meta: ObjectMeta, *, namespaced: bool, name_rule: NameRule = name_is_path_segment, path: str = "metadata"
) -> list[FieldError]:
    """Everything wrong with an object's metadata on create (and, re-run, on update).

    ``name_rule`` is the kind's name rule (DNS subdomain for most kinds; DNS label for
    Namespaces; DNS-1035 label for Services); kinds without one only get the path-segment rule.
    """
    errors: list[FieldError] = []
    if meta.generate_name:
        errors.extend(
            FieldError.invalid(f"{path}.generateName", meta.generate_name, msg)
            for msg in _name_errors(meta.generate_name, name_rule, True)
        )
    if not meta.name:
        # The server fills the name from generateName; until then generateName stands in for it.
        if not meta.generate_name:
            errors.append(FieldError.required(f"{path}.name", "name or generateName is required"))
    else:
        errors.extend(
            FieldError.invalid(f"{path}.name", meta.name, msg)
            for msg in _name_errors(meta.name, name_rule, False)
        )
    if namespaced:
        if not meta.namespace:
            errors.append(FieldError.required(f"{path}.namespace"))
        else:
            errors.extend(
                FieldError.invalid(f"{path}.namespace", meta.namespace, msg)
                for msg in name_is_dns_label(meta.namespace, False)
            )
    elif meta.namespace:
        errors.append(FieldError.forbidden(f"{path}.namespace", "not allowed on this type"))
    errors.extend(nonnegative(meta.generation, f"{path}.generation"))
    errors.extend(validate_labels(meta.labels, f"{path}.labels"))
    errors.extend(validate_annotations(meta.annotations, f"{path}.annotations"))
    errors.extend(validate_owner_references(meta.owner_references, f"{path}.ownerReferences"))
    errors.extend(validate_finalizers(meta.finalizers, f"{path}.finalizers"))
    return errors


def validate_object_meta_update(new: ObjectMeta, old: ObjectMeta, path: str = "metadata") -> list[FieldError]:
    """What an update may not change in metadata: name, namespace, uid, creationTimestamp.

    An update that leaves uid or creationTimestamp out keeps the stored values (Kubernetes
    copies them over before validating), so only a different, non-empty value is an error.
    generateName only matters on create and is ignored here.
    """
    errors: list[FieldError] = []
    errors.extend(immutable(new.name, old.name, f"{path}.name"))
    errors.extend(immutable(new.namespace or None, old.namespace or None, f"{path}.namespace"))
    if new.uid:
        errors.extend(immutable(new.uid, old.uid, f"{path}.uid"))
    if new.creation_timestamp:
        errors.extend(immutable(new.creation_timestamp, old.creation_timestamp, f"{path}.creationTimestamp"))
    if old.deletion_timestamp:
        added = sorted(set(new.finalizers or []) - set(old.finalizers or []))
        if added:
            errors.append(
                FieldError.forbidden(
                    f"{path}.finalizers",
                    "no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {json.dumps(added)}",
                )
            )
    return errors
