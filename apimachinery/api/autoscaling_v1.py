"""autoscaling/v1: Scale, the body of the scale subresource of Deployments and ReplicaSets."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from apimachinery.meta import KubeObject
from apimachinery.model import Int32, KubeModel


class ScaleSpec(KubeModel):
    """The desired replica count."""

    replicas: Int32 | None = Field(None, description="Desired number of instances.")


class ScaleStatus(KubeModel):
    """The observed replica count."""

    replicas: int = Field(0, description="Actual number of instances.")
    # A label selector in its string form ("app=web,tier in (a,b)"), as autoscaling/v1 carries it.
    selector: str | None = Field(None, description="Label query over the pods counted in replicas.")


class Scale(KubeObject):
    """The replica count of a scalable resource."""

    API_VERSION: ClassVar[str] = "autoscaling/v1"
    KIND: ClassVar[str] = "Scale"

    spec: ScaleSpec = Field(default_factory=ScaleSpec, description="Desired state.")
    status: ScaleStatus = Field(default_factory=ScaleStatus, description="Observed state.")
