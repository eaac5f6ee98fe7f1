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

# name -> module (relative to controlplane.controllers); a module that does not exist yet is skipped.
CONTROLLERS = {
    "replicaset": "replicaset",
    "deployment": "deployment",
    "endpoints": "endpoints",
    "endpointslice": "endpointslice",
    "nodelifecycle": "nodelifecycle",
    "nodeipam": "nodeipam",
    "garbagecollector": "garbagecollector",
    "namespace": "namespace",
}


def build_controllers(ctx: ControllerContext) -> list[Controller]:
    out: list[Controller] = []
    enabled = ctx.config.enabled
    for name, module in CONTROLLERS.items():
        if "*" not in enabled and name not in enabled:
            continue
        if f"-{name}" in enabled:
            continue
        try:
            mod = importlib.import_module(f"controlplane.controllers.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"controlplane.controllers.{module}":
                raise
            continue
        out.append(mod.new_controller(ctx))
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
