"""discovery.k8s.io/v1: EndpointSlice."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from apimachinery.api.core_v1 import ObjectReference
from apimachinery.meta import KubeList, KubeObject
from apimachinery.model import KubeModel


class EndpointConditions(KubeModel):
    """The state of one endpoint."""

    ready: bool | None = Field(None, description="Ready to receive traffic.")
    serving: bool | None = Field(None, description="Ready, ignoring whether it is terminating.")
    terminating: bool | None = Field(None, description="Being shut down.")


class ForZone(KubeModel):
    """A zone that should consume an endpoint."""

    name: str = ""


class ForNode(KubeModel):
    """A node that should consume an endpoint."""

    name: str = ""


class EndpointHints(KubeModel):
    """Topology hints for consumers of an endpoint."""

    for_zones: list[ForZone] | None = None
    for_nodes: list[ForNode] | None = None


class Endpoint(KubeModel):
    """One backend of a service."""

    addresses: list[str] = Field(default_factory=list, description="Addresses of the endpoint.")
    conditions: EndpointConditions = Field(default_factory=EndpointConditions, description="Its state.")
    hostname: str | None = Field(None, description="Hostname of the endpoint.")
    target_ref: ObjectReference | None = Field(None, description="The object (usually a pod) behind it.")
    deprecated_topology: dict[str, str] | None = Field(None, description="Deprecated topology labels.")
    node_name: str | None = Field(None, description="Node hosting the endpoint.")
    zone: str | None = Field(None, description="Zone the endpoint is in.")
    hints: EndpointHints | None = Field(None, description="Topology hints.")


class EndpointPort(KubeModel):
    """One port of the endpoints of a slice."""

    name: str | None = Field(None, description="Name of the port (matches the service port's).")
    protocol: str | None = Field(None, description="TCP, UDP or SCTP.")
    port: int | None = Field(None, description="Port number.")
    app_protocol: str | None = Field(None, description="Application protocol hint.")


class EndpointSlice(KubeObject):
    """A subset of the endpoints of a service."""

    API_VERSION: ClassVar[str] = "discovery.k8s.io/v1"
    KIND: ClassVar[str] = "EndpointSlice"

    address_type: str = Field("", description="IPv4, IPv6 or FQDN.")
    endpoints: list[Endpoint] = Field(default_factory=list, description="The endpoints of the slice.")
    ports: list[EndpointPort] | None = Field(None, description="Ports exposed by every endpoint.")


class EndpointSliceList(KubeList[EndpointSlice]):
    """A list of endpoint slices."""

    api_version: str | None = "discovery.k8s.io/v1"
    kind: str | None = "EndpointSliceList"
