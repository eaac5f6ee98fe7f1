"""apps/v1: Deployment and ReplicaSet."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from apimachinery.api.core_v1 import IntOrString, PodTemplateSpec
from apimachinery.meta import KubeList, KubeObject, LabelSelector, Time
from apimachinery.model import Int32, KubeModel, merge_list, retain_keys

# ---------------------------------------------------------------------------------------------
# ReplicaSet


class ReplicaSetSpec(KubeModel):
    """The desired state of a ReplicaSet."""

    replicas: Int32 | None = Field(None, description="Number of pods to keep running; defaults to 1.")
    min_ready_seconds: Int32 | None = Field(
        None, description="Seconds a new pod must be ready before it counts as available."
    )
    selector: LabelSelector | None = Field(
        None, description="Labels of the pods this ReplicaSet owns; must match the template's labels."
    )
    template: PodTemplateSpec | None = Field(None, description="The pods created to reach the replica count.")


class ReplicaSetCondition(KubeModel):
    """One condition of a ReplicaSet (ReplicaFailure)."""

    type: str = ""
    status: str = ""
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class ReplicaSetStatus(KubeModel):
    """The observed state of a ReplicaSet."""

    replicas: int = Field(0, description="Number of pods that exist.")
    fully_labeled_replicas: int | None = Field(None, description="Pods whose labels match the template.")
    ready_replicas: int | None = Field(None, description="Pods that are ready.")
    available_replicas: int | None = Field(None, description="Pods ready for at least minReadySeconds.")
    terminating_replicas: int | None = Field(None, description="Pods that are being deleted.")
    observed_generation: int | None = Field(None, description="The generation the controller last acted on.")
    conditions: list[ReplicaSetCondition] | None = merge_list("type", description="Current conditions.")


class ReplicaSet(KubeObject):
    """Keeps a number of identical pods running."""

    API_VERSION: ClassVar[str] = "apps/v1"
    KIND: ClassVar[str] = "ReplicaSet"

    spec: ReplicaSetSpec = Field(default_factory=ReplicaSetSpec, description="Desired state.")
    status: ReplicaSetStatus = Field(default_factory=ReplicaSetStatus, description="Observed state.")


# ---------------------------------------------------------------------------------------------
# Deployment


class RollingUpdateDeployment(KubeModel):
    """How fast a rolling update replaces old pods with new ones."""

    max_unavailable: IntOrString | None = Field(
        None, description="Pods (number or percentage) that may be unavailable during the update."
    )
    max_surge: IntOrString | None = Field(
        None, description="Pods (number or percentage) that may exist above the desired count."
    )


class DeploymentStrategy(KubeModel):
    """How a Deployment replaces old pods with new ones."""

    type: str | None = Field(None, description="Recreate or RollingUpdate (the default).")
    rolling_update: RollingUpdateDeployment | None = Field(
        None, description="Parameters of a RollingUpdate; only with that type."
    )


class DeploymentSpec(KubeModel):
    """The desired state of a Deployment."""

    replicas: Int32 | None = Field(None, description="Number of pods wanted; defaults to 1.")
    selector: LabelSelector | None = Field(
        None, description="Labels of the pods this Deployment manages; must match the template's labels."
    )
    template: PodTemplateSpec = Field(
        default_factory=PodTemplateSpec, description="The pods to run; a change starts a rollout."
    )
    strategy: DeploymentStrategy | None = retain_keys(description="How new pods replace old ones.")
    min_ready_seconds: Int32 | None = Field(
        None, description="Seconds a new pod must be ready before it counts as available."
    )
    revision_history_limit: Int32 | None = Field(
        None, description="Old ReplicaSets kept for rollback; defaults to 10."
    )
    paused: bool | None = Field(None, description="Stop rolling out template changes while true.")
    progress_deadline_seconds: Int32 | None = Field(
        None, description="Seconds without progress before the rollout counts as failed; defaults to 600."
    )


class DeploymentCondition(KubeModel):
    """One condition of a Deployment (Available, Progressing, ReplicaFailure)."""

    type: str = ""
    status: str = ""
    last_update_time: Time | None = None
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class DeploymentStatus(KubeModel):
    """The observed state of a Deployment."""

    observed_generation: int | None = Field(None, description="The generation the controller last acted on.")
    replicas: Int32 | None = Field(None, description="Pods of all its ReplicaSets that exist.")
    updated_replicas: int | None = Field(None, description="Pods that run the current template.")
    ready_replicas: int | None = Field(None, description="Pods that are ready.")
    available_replicas: int | None = Field(None, description="Pods ready for at least minReadySeconds.")
    unavailable_replicas: int | None = Field(None, description="Pods still needed for full availability.")
    terminating_replicas: int | None = Field(None, description="Pods that are being deleted.")
    conditions: list[DeploymentCondition] | None = merge_list("type", description="Current conditions.")
    collision_count: int | None = Field(None, description="Counts pod-template-hash collisions.")


class Deployment(KubeObject):
    """Declarative updates for pods through ReplicaSets."""

    API_VERSION: ClassVar[str] = "apps/v1"
    KIND: ClassVar[str] = "Deployment"

    spec: DeploymentSpec = Field(default_factory=DeploymentSpec, description="Desired state.")
    status: DeploymentStatus = Field(default_factory=DeploymentStatus, description="Observed state.")


class ReplicaSetList(KubeList[ReplicaSet]):
    """A list of ReplicaSets."""

    api_version: str | None = "apps/v1"
    kind: str | None = "ReplicaSetList"


class DeploymentList(KubeList[Deployment]):
    """A list of Deployments."""

    api_version: str | None = "apps/v1"
    kind: str | None = "DeploymentList"
