"""Controllers and scheduler as API clients, each behind leader election.

Whether they run inside the control plane process (``controlplane``, the default) or alone
(``controlplane controllers|scheduler --kubeconfig ...``), they only talk to the API server, and
of several copies only the Lease holder acts.
"""

from __future__ import annotations

import importlib
import logging
import socket
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from apimachinery.client.kubeconfig import load_kubeconfig
from apimachinery.client.rest import ApiClient
from apimachinery.leaderelection import LeaderElectionConfig, LeaderElector
from controlplane.controllers.context import ControllerConfig
from controlplane.controllers.manager import run_controllers

log = logging.getLogger(__name__)

CONTROLLER_LEASE = "kube-controller-manager"
SCHEDULER_LEASE = "kube-scheduler"
LEASE_NAMESPACE = "kube-system"


@dataclass
class ComponentOptions:
    kubeconfig: str | None = None
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}_{uuid.uuid4()}")
    controllers: ControllerConfig = field(default_factory=ControllerConfig)


async def _elected(client: ApiClient, opts: ComponentOptions, lease: str,
                   work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if not opts.leader_elect:
        await work()
        return
    elector = LeaderElector(client, LeaderElectionConfig(
        lease, LEASE_NAMESPACE, opts.identity, opts.lease_duration, opts.renew_deadline, opts.retry_period))
    try:
        await elector.run(work)
    finally:
        await elector.release()
    raise RuntimeError(f"lost leadership of {LEASE_NAMESPACE}/{lease}")


async def run_controller_manager(client: ApiClient, opts: ComponentOptions) -> None:
    await _elected(client, opts, CONTROLLER_LEASE, lambda: run_controllers(client, opts.controllers))


async def run_scheduler_component(client: ApiClient, opts: ComponentOptions) -> None:
    try:
        scheduler = importlib.import_module("controlplane.scheduler")
    except ModuleNotFoundError:
        log.warning("no scheduler in this build")
        return
    await _elected(client, opts, SCHEDULER_LEASE, lambda: scheduler.run_scheduler(client))


async def run_standalone(component: str, opts: ComponentOptions) -> None:
    """``controlplane controllers|scheduler``: connect with a kubeconfig and run until stopped."""
    config = load_kubeconfig(opts.kubeconfig)
    async with ApiClient(config) as client:
        if component == "controllers":
            await run_controller_manager(client, opts)
        else:
            await run_scheduler_component(client, opts)


def in_process_components(
    client: ApiClient, opts: ComponentOptions
) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
    """What the all-in-one control plane runs beside the API server, by name."""
    return {
        "controller-manager": lambda: run_controller_manager(client, opts),
        "scheduler": lambda: run_scheduler_component(client, opts),
    }
