"""coordination.k8s.io/v1: Lease (node heartbeats and leader election)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from apimachinery.meta import KubeList, KubeObject, MicroTime
from apimachinery.model import KubeModel


class LeaseSpec(KubeModel):
    """Who holds the lease and until when."""

    holder_identity: str | None = Field(None, description="Identity of the current holder.")
    lease_duration_seconds: int | None = Field(
        None, description="Seconds candidates wait before taking over."
    )
    acquire_time: MicroTime | None = Field(None, description="When the current holder acquired the lease.")
    renew_time: MicroTime | None = Field(None, description="When the holder last renewed the lease.")
    lease_transitions: int | None = Field(None, description="Number of changes of holder.")
    strategy: str | None = Field(None, description="Strategy for picking the leader (coordinated election).")
    preferred_holder: str | None = Field(None, description="Signals a holder to release the lease.")


class Lease(KubeObject):
    """A lease on a shared resource."""

    API_VERSION: ClassVar[str] = "coordination.k8s.io/v1"
    KIND: ClassVar[str] = "Lease"

    spec: LeaseSpec = Field(default_factory=LeaseSpec, description="Lease contents.")


class LeaseList(KubeList[Lease]):
    """A list of leases."""

    api_version: str | None = "coordination.k8s.io/v1"
    kind: str | None = "LeaseList"
