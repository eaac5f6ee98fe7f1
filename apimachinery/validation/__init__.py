"""Validation entry points: one call for any object, dispatching on its type.

Kind modules register their validators with :func:`register`. A kind's create validator checks
its metadata too (name rules differ per kind); a kind without one still gets its metadata checked. Validators return every problem they find (one
FieldError per bad field), never stop at the first.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from apimachinery.errors import FieldError
from apimachinery.meta import KubeObject

CreateValidator = Callable[[Any], list[FieldError]]
UpdateValidator = Callable[[Any, Any], list[FieldError]]

_create: dict[type[KubeObject], CreateValidator] = {}
_update: dict[type[KubeObject], UpdateValidator] = {}

# Modules that register validators for the built-in kinds; imported on first use so the types
# load once and there is no import cycle with the scheme.
_KIND_MODULES = ("apimachinery.validation.kinds", "apimachinery.validation.rbac")
_loaded = False


def register(
    model: type[KubeObject], create: CreateValidator, update: UpdateValidator | None = None
) -> None:
    _create[model] = create
    if update is not None:
        _update[model] = update


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in _KIND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise


def validate(obj: KubeObject, *, namespaced: bool) -> list[FieldError]:
    """Everything wrong with an object about to be created."""
    _load()
    from apimachinery.validation.meta import validate_object_meta

    fn = _create.get(type(obj))
    return fn(obj) if fn is not None else validate_object_meta(obj.metadata, namespaced=namespaced)


def validate_update(new: KubeObject, old: KubeObject, *, namespaced: bool) -> list[FieldError]:
    """Everything wrong with an update: the object itself, then what may not change."""
    _load()
    from apimachinery.validation.meta import validate_object_meta_update

    errors = validate(new, namespaced=namespaced)
    fn = _update.get(type(new))
    errors.extend(fn(new, old) if fn is not None else validate_object_meta_update(new.metadata, old.metadata))
    return errors


_CONDITION_STATUSES = ["True", "False", "Unknown"]


def validate_status(obj: KubeObject) -> list[FieldError]:
    """What a status write must get right: every condition has a type and a known status."""
    status = getattr(obj, "status", None)
    conditions = getattr(status, "conditions", None) or []
    errors: list[FieldError] = []
    for i, cond in enumerate(conditions):
        path = f"status.conditions[{i}]"
        ctype = getattr(cond, "type", None)
        cstatus = getattr(cond, "status", None)
        if not ctype:
            errors.append(FieldError.required(f"{path}.type"))
        if not cstatus:
            errors.append(FieldError.required(f"{path}.status"))
        elif cstatus not in _CONDITION_STATUSES:
            errors.append(FieldError.not_supported(f"{path}.status", cstatus, _CONDITION_STATUSES))
    return errors
