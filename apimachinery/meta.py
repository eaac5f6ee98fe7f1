"""meta/v1: ObjectMeta, lists, Status, label selectors, watch events and timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import Field

from apimachinery.model import KubeModel, merge_list, set_list

# Kubernetes' Time is RFC 3339 at second precision; MicroTime (Lease, Event eventTime) carries
# microseconds. Both are strings on the wire, kept as strings here so they round-trip exactly.
Time = str
MicroTime = str


def now() -> Time:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> MicroTime:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    """Parse a Time or MicroTime (also accepts offsets such as ``+00:00``)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class OwnerReference(KubeModel):
    api_version: str = Field("", description="API version of the owner.")
    kind: str = Field("", description="Kind of the owner.")
    name: str = Field("", description="Name of the owner.")
    uid: str = Field("", description="UID of the owner.")
    controller: bool | None = Field(None, description="True if the owner is the managing controller.")
    block_owner_deletion: bool | None = Field(
        None, description="If true, foreground deletion of the owner waits for this object to go."
    )


class ManagedFieldsEntry(KubeModel):
    manager: str | None = None
    operation: str | None = None
    api_version: str | None = None
    time: Time | None = None
    fields_type: str | None = None
    fields_v1: dict[str, Any] | None = Field(None, alias="fieldsV1")
    subresource: str | None = None


class ObjectMeta(KubeModel):
    name: str | None = Field(None, description="Unique name within a namespace (or the cluster).")
    generate_name: str | None = Field(
        None, description="Prefix for a server-generated name, used when name is empty."
    )
    namespace: str | None = Field(None, description="Namespace of a namespaced object.")
    uid: str | None = Field(None, description="Unique identity assigned by the server on creation.")
    resource_version: str | None = Field(
        None, description="Opaque version of this object, for optimistic concurrency and watches."
    )
    generation: int | None = Field(None, description="Sequence number of the desired state (spec).")
    creation_timestamp: Time | None = Field(None, description="When the server created the object.")
    deletion_timestamp: Time | None = Field(
        None, description="When graceful deletion was requested; the object goes once finalizers clear."
    )
    deletion_grace_period_seconds: int | None = Field(None, description="Seconds allowed for graceful deletion.")
    labels: dict[str, str] | None = Field(None, description="Key/value pairs used to select objects.")
    annotations: dict[str, str] | None = Field(None, description="Non-identifying key/value metadata.")
    owner_references: list[OwnerReference] | None = merge_list(
        "uid", description="Objects this one depends on; the garbage collector follows them."
    )
    finalizers: list[str] | None = set_list(description="Conditions that must clear before the object is removed.")
    managed_fields: list[ManagedFieldsEntry] | None = Field(
        None, description="Which field manager owns which fields (server-side apply)."
    )


class ListMeta(KubeModel):
    resource_version: str | None = None
    continue_: str | None = Field(None, alias="continue")
    remaining_item_count: int | None = None


class LabelSelectorRequirement(KubeModel):
    key: str = Field("", description="The label key the requirement applies to.")
    operator: str = Field("", description="In, NotIn, Exists or DoesNotExist.")
    values: list[str] | None = Field(None, description="Values for In and NotIn.")


class LabelSelector(KubeModel):
    match_labels: dict[str, str] | None = Field(None, description="Labels that must all be equal.")
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        None, description="Requirements that must all hold."
    )


class Condition(KubeModel):
    """meta/v1 Condition, as used by newer types."""

    type: str = ""
    status: str = ""
    observed_generation: int | None = None
    last_transition_time: Time | None = None
    reason: str = ""
    message: str = ""


class StatusCause(KubeModel):
    reason: str | None = None
    message: str | None = None
    field: str | None = None


class StatusDetails(KubeModel):
    name: str | None = None
    group: str | None = None
    kind: str | None = None
    uid: str | None = None
    causes: list[StatusCause] | None = None
    retry_after_seconds: int | None = None


class TypeMeta(KubeModel):
    api_version: str | None = None
    kind: str | None = None


class Status(KubeModel):
    api_version: str = "v1"
    kind: str = "Status"
    metadata: ListMeta = Field(default_factory=ListMeta)
    status: str | None = None
    message: str | None = None
    reason: str | None = None
    details: StatusDetails | None = None
    code: int | None = None


class KubeObject(KubeModel):
    """A top-level object: apiVersion, kind, metadata.

    Subclasses set ``API_VERSION`` and ``KIND``; the constructor fills ``apiVersion`` and ``kind``
    so objects built in code serialize exactly like objects read from the wire.
    """

    API_VERSION: ClassVar[str] = ""
    KIND: ClassVar[str] = ""

    api_version: str | None = Field(None, description="Versioned schema of this representation.")
    kind: str | None = Field(None, description="The REST resource this object represents.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard object metadata.")

    def model_post_init(self, __context: Any) -> None:
        if self.api_version is None and self.API_VERSION:
            self.api_version = self.API_VERSION
        if self.kind is None and self.KIND:
            self.kind = self.KIND

    @property
    def key(self) -> str:
        """``namespace/name`` (or ``name`` for cluster-scoped objects), the workqueue key."""
        md = self.metadata
        return f"{md.namespace}/{md.name}" if md.namespace else str(md.name)


ObjT = TypeVar("ObjT", bound=KubeObject)


class KubeList(KubeModel, Generic[ObjT]):
    """A List of one kind; the scheme builds a concrete subclass per kind (``PodList`` ...)."""

    api_version: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[ObjT] = Field(default_factory=list)


class WatchEvent(KubeModel):
    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]
    object: dict[str, Any]
