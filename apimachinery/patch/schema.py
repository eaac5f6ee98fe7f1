"""Strategic-merge metadata read from the pydantic models (Kubernetes reads it from Go struct tags).

:mod:`apimachinery.model` puts ``x-kubernetes-patch-strategy`` and ``x-kubernetes-patch-merge-key``
into each field's ``json_schema_extra``; this module walks a model's field annotations (through
``Optional``, ``list[...]``, ``dict[str, ...]`` and ``Annotated``) so the patch engine can ask, at any
position in a JSON document, "how is the field ``key`` merged, and what is inside it?".

Lookups are cached per (model, field): a Deployment patch asks the same few hundred questions on
every request.
"""

from __future__ import annotations

import types
import typing
from collections import abc
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from apimachinery.model import PATCH_MERGE_KEY, PATCH_STRATEGY


@dataclass(frozen=True)
class Schema:
    """A position in the type tree.

    ``model`` is the struct found there; ``values`` is set for ``dict[str, Model]`` maps, whose
    every value has that schema. Neither set means "unknown": plain JSON merge semantics apply
    (maps merge, lists are replaced), which is also what ``dict[str, str]`` maps such as labels get.
    """

    model: type[BaseModel] | None = None
    values: Schema | None = None

    def field(self, key: str) -> FieldMeta:
        """How the field ``key`` of an object at this position is patched."""
        if self.model is not None:
            return _model_field(self.model, key)
        if self.values is not None:
            return FieldMeta(child=self.values)
        return _UNKNOWN_FIELD


@dataclass(frozen=True)
class FieldMeta:
    """Patch metadata of one field.

    ``child`` is the schema of the field's value when it is an object, or of its elements when it
    is a list.
    """

    strategies: frozenset[str] = frozenset()
    merge_key: str | None = None
    child: Schema | None = None

    @property
    def schema(self) -> Schema:
        return self.child if self.child is not None else UNKNOWN

    @property
    def merge(self) -> bool:
        """Lists merge element-wise (by ``merge_key``, or as a set of scalars without one)."""
        return "merge" in self.strategies

    @property
    def retain_keys(self) -> bool:
        """The object (or, for a merge list, each element) honours ``$retainKeys``."""
        return "retainKeys" in self.strategies

    @property
    def replace(self) -> bool:
        """The value is replaced as a whole rather than merged."""
        return "replace" in self.strategies


UNKNOWN = Schema()
_UNKNOWN_FIELD = FieldMeta()


def schema_for(model: type[BaseModel]) -> Schema:
    """The schema at the root of a document of type ``model``."""
    return Schema(model=model)


@cache
def _json_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The model's fields by their JSON name (the alias, camelCase for every KubeModel)."""
    return {(info.alias or name): info for name, info in model.model_fields.items()}


# Bounded: unknown field names come from clients, and every one of them is a cache entry.
@lru_cache(maxsize=8192)
def _model_field(model: type[BaseModel], key: str) -> FieldMeta:
    info = _json_fields(model).get(key)
    if info is None:
        return _UNKNOWN_FIELD
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    strategy = extra.get(PATCH_STRATEGY)
    strategies = (
        frozenset(s.strip() for s in strategy.split(",") if s.strip())
        if isinstance(strategy, str)
        else frozenset()
    )
    merge_key = extra.get(PATCH_MERGE_KEY)
    child = schema_of(info.annotation)
    return FieldMeta(
        strategies=strategies,
        merge_key=merge_key if isinstance(merge_key, str) else None,
        child=None if child == UNKNOWN else child,
    )


def schema_of(annotation: Any) -> Schema:
    """The schema of values of a type annotation: the model inside ``Optional``/``list``/``dict``.

    Not cached itself (annotations need not be hashable); :func:`_model_field` caches its result.
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return schema_of(args[0])
    if origin is typing.Union or origin is types.UnionType:
        # Optional[X] is X; a union of several types (IntOrString) has no structure to merge by,
        # unless exactly one member does.
        found = [s for s in (schema_of(a) for a in args if a is not type(None)) if s != UNKNOWN]
        return found[0] if len(found) == 1 else UNKNOWN
    if origin in (list, tuple, set, frozenset) or _is_sequence(origin):
        return schema_of(args[0]) if args else UNKNOWN
    if origin is dict or _is_mapping(origin):
        if len(args) == 2:
            values = schema_of(args[1])
            return UNKNOWN if values == UNKNOWN else Schema(values=values)
        return UNKNOWN
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Schema(model=annotation)
    return UNKNOWN


def _is_sequence(origin: Any) -> bool:
    return origin in (abc.Sequence, abc.MutableSequence)


def _is_mapping(origin: Any) -> bool:
    return origin in (abc.Mapping, abc.MutableMapping)
