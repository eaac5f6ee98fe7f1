"""The controller runtime: shared informers, a workqueue per controller, level-triggered reconcile.

A controller is a :class:`Reconciler` (``reconcile(key) -> Result``) plus the informers whose
events enqueue keys. See :mod:`apimachinery.controller.runtime`.
"""

from apimachinery.controller.expectations import Expectations
from apimachinery.controller.informers import InformerFactory
from apimachinery.controller.owners import controller_ref, owner_key_mapper
from apimachinery.controller.runtime import DONE, Controller, Reconciler, Result, requeue_after

__all__ = [
    "DONE",
    "Controller",
    "Expectations",
    "InformerFactory",
    "Reconciler",
    "Result",
    "controller_ref",
    "owner_key_mapper",
    "requeue_after",
]
