"""What every controller is built from: the API client, shared informers, an event recorder and
the tunables (Kubernetes' defaults; labs shorten them to seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

from apimachinery.client.rest import ApiClient
from apimachinery.controller.informers import InformerFactory
from apimachinery.events import EventRecorder


@dataclass
class ControllerConfig:
    # Node lifecycle: a node whose heartbeat is older than this is Ready=Unknown.
    node_monitor_grace_period: float = 40.0
    node_monitor_period: float = 5.0
    # Seconds pods tolerate a not-ready/unreachable node when their toleration has no seconds.
    default_toleration_seconds: int = 300
    # Node IPAM: each node gets a /node_cidr_mask_size from cluster_cidr.
    cluster_cidr: str = "10.244.0.0/16"
    node_cidr_mask_size: int = 24
    # CSR signer: the CA it signs with (no signer without them) and the longest validity.
    cluster_signing_cert_file: str | None = None
    cluster_signing_key_file: str | None = None
    cluster_signing_duration: float = 365 * 24 * 3600.0
    # Workers per controller.
    workers: int = 4
    # Controllers to run ("*" = all).
    enabled: list[str] = field(default_factory=lambda: ["*"])


@dataclass
class ControllerContext:
    client: ApiClient
    informers: InformerFactory
    recorder: EventRecorder
    config: ControllerConfig
