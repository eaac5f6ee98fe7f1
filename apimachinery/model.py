"""The base of every API type: Kubernetes' JSON shapes on pydantic v2.

Conventions every type module follows (they are what keeps the wire format exact):

* Python attributes are snake_case; the JSON name comes from ``to_camel``. Where Kubernetes'
  spelling is not plain camelCase (``podIP``, ``clusterIPs``, ``hostIP``) the field names its alias.
* Optional fields default to ``None`` and are left out when serialized (Go's ``omitempty``).
  Fields Kubernetes declares without ``omitempty`` get a real default so they are always emitted.
* Unknown JSON fields are kept in ``__pydantic_extra__`` rather than refused: the API server
  decides per request (``fieldValidation``) whether they are an error, a warning or dropped, and
  clients keep fields a newer server sends.
* Lists whose strategic-merge-patch strategy is "merge" declare it with :func:`merge_list`, so
  the patch engine and the OpenAPI documents read one source of truth.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

T = TypeVar("T", bound="KubeModel")

# Kubernetes' int32 fields: a larger number is refused when the body is decoded (as Go's decoder
# refuses it), not stored to make a controller chase a count it can never reach.
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]

PATCH_MERGE_KEY = "x-kubernetes-patch-merge-key"
PATCH_STRATEGY = "x-kubernetes-patch-strategy"
LIST_TYPE = "x-kubernetes-list-type"
LIST_MAP_KEYS = "x-kubernetes-list-map-keys"


class KubeModel(BaseModel):
    """Base for every object and sub-object of the API."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        validate_assignment=False,
        ser_json_timedelta="float",
    )

    def to_dict(self) -> dict[str, Any]:
        """The object as Kubernetes JSON (aliases, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        return cls.model_validate(data)

    def copy_deep(self: T) -> T:
        """A deep copy: never mutate an object taken from a cache."""
        return self.model_copy(deep=True)


def merge_list(
    key: str,
    *,
    default: Any = None,
    alias: str | None = None,
    description: str = "",
    strategy: str = "merge",
) -> Any:
    """A list field merged element-wise by ``key`` in strategic merge patches.

    ``strategy`` is the Go tag's patchStrategy: ``"merge"``, or ``"merge,retainKeys"`` for lists
    whose elements are unions (pod volumes), where a patch also clears the element's other keys.
    """
    return Field(
        default,
        alias=alias,
        description=description or None,
        json_schema_extra={
            PATCH_MERGE_KEY: key,
            PATCH_STRATEGY: strategy,
            LIST_TYPE: "map",
            LIST_MAP_KEYS: [key],
        },
    )


def set_list(*, default: Any = None, alias: str | None = None, description: str = "") -> Any:
    """A list of scalars merged as a set (``patchStrategy: merge`` without a key, e.g. finalizers)."""
    return Field(
        default,
        alias=alias,
        description=description or None,
        json_schema_extra={PATCH_STRATEGY: "merge", LIST_TYPE: "set"},
    )


def retain_keys(*, default: Any = None, alias: str | None = None, description: str = "") -> Any:
    """A union-like struct whose strategic merge honours ``$retainKeys`` (Deployment strategy, volumes)."""
    return Field(
        default,
        alias=alias,
        description=description or None,
        json_schema_extra={PATCH_STRATEGY: "retainKeys"},
    )
