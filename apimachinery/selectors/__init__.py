"""Label and field selectors: parsing Kubernetes' syntax, matching objects, printing canonically."""

from apimachinery.selectors.fields import (
    FieldRequirement,
    FieldSelector,
    check_supported,
    object_fields,
    parse_field_selector,
    supported_fields,
)
from apimachinery.selectors.labels import (
    LabelSelector,
    Requirement,
    SelectorError,
    parse_label_selector,
    selector_from_model,
    selector_from_set,
    selector_to_string,
)

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "check_supported",
    "object_fields",
    "parse_field_selector",
    "parse_label_selector",
    "selector_from_model",
    "selector_from_set",
    "selector_to_string",
    "supported_fields",
]
