"""Run every enabled controller in one process over one set of shared informers.

Each controller module exposes ``new_controller(ctx) -> Controller``; adding a controller means
adding its module name to :data:`CONTROLLERS`. The manager starts the informers every controller
asked for, then runs all controllers until cancelled.
"""

from __future__ import annotations

import asyncio
import importlib
import logging

from apimachinery.client.rest import ApiClient
from apimachinery.controller.informers import InformerFactory
from apimachinery.controller.runtime import Controller
from apimachinery.events import EventRecorder
from controlplane.controllers.context import ControllerConfig, ControllerContext

log = logging.getLogger(__name__)

# name -> module (relative to controlplane.controllers), optionally ":factory" when a module holds
# more than one controller; a module that does not exist yet is skipped. A factory may return
# None when its controller cannot run in this process (the CSR signer without the CA key).
CONTROLLERS = {
    "replicaset": "replicaset",
    "deployment": "deployment",
    "endpoints": "endpoints",
    "endpointslice": "endpointslice",
    "nodelifecycle": "nodelifecycle",
    "nodeipam": "nodeipam",
    "garbagecollector": "garbagecollector",
    "namespace": "namespace",
    "serviceaccount": "serviceaccount",
    "root-ca-cert-publisher": "rootcacert",
    "csrapproving": "certificates",
    "csrsigning": "certificates:new_signer",
    "bootstrapsigner": "bootstrapsigner",
}


def build_controllers(ctx: ControllerContext) -> list[Controller]:
    out: list[Controller] = []
    enabled = ctx.config.enabled
    for name, module in CONTROLLERS.items():
        if "*" not in enabled and name not in enabled:
            continue
        if f"-{name}" in enabled:
            continue
        module, _, factory = module.partition(":")
        try:
            mod = importlib.import_module(f"controlplane.controllers.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"controlplane.controllers.{module}":
                raise
            continue
        controller = getattr(mod, factory or "new_controller")(ctx)
        if controller is not None:
            out.append(controller)
    return out


async def run_controllers(client: ApiClient, config: ControllerConfig | None = None) -> None:
    """Run until cancelled."""
    cfg = config or ControllerConfig()
    informers = InformerFactory(client)
    ctx = ControllerContext(client, informers, EventRecorder(client, "controller-manager"), cfg)
    controllers = build_controllers(ctx)
    log.info("starting controllers: %s", ", ".join(c.name for c in controllers))
    informers.start()
    try:
        await asyncio.gather(*(c.run() for c in controllers))
    finally:
        await informers.stop()
