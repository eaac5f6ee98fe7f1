"""Leader election on a coordination.k8s.io/v1 Lease, with Kubernetes' timing rules.

Candidates try to take the Lease every ``retry_period``; the holder renews it. A Lease is
taken over only when its record has not changed for ``lease_duration`` as observed on *this*
clock (never by comparing the remote renewTime with local time, so clock skew between
machines cannot make two leaders). A leader that cannot renew within ``renew_deadline`` stops
leading: its work is cancelled before another candidate can possibly take over, because
renew_deadline < lease_duration. Every write is a compare-and-swap on resourceVersion.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from apimachinery.api.coordination_v1 import Lease
from apimachinery.client.rest import ApiClient
from apimachinery.errors import ApiError
from apimachinery.meta import now_micro

log = logging.getLogger(__name__)


@dataclass
class LeaderElectionConfig:
    lease_name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")


class LeaderElector:
    def __init__(self, client: ApiClient, config: LeaderElectionConfig) -> None:
        self.client = client
        self.config = config
        self.rt = client.resource(Lease)
        self._observed_record: tuple[str | None, str | None] | None = None
        self._observed_at = 0.0
        self.is_leader = False

    async def _try_acquire_or_renew(self) -> bool:
        cfg = self.config
        stamp = now_micro()
        try:
            current = await self.client.get(self.rt, cfg.lease_name, cfg.namespace)
        except ApiError as e:
            if e.code != 404:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": cfg.lease_name, "namespace": cfg.namespace},
                    "spec": {"holderIdentity": cfg.identity, "leaseDurationSeconds": int(cfg.lease_duration),
                             "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}}
            try:
                await self.client.create(self.rt, body, namespace=cfg.namespace)
            except ApiError as e2:
                if e2.code == 409:
                    return False
                raise
            self._observe((cfg.identity, stamp))
            return True
        spec = current.get("spec") or {}
        holder = spec.get("holderIdentity")
        record = (holder, spec.get("renewTime"))
        if record != self._observed_record:
            self._observe(record)
        expired = time.monotonic() - self._observed_at > float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder and holder != cfg.identity and not expired:
            return False
        new_spec = dict(spec)
        new_spec["holderIdentity"] = cfg.identity
        new_spec["leaseDurationSeconds"] = int(cfg.lease_duration)
        new_spec["renewTime"] = stamp
        if holder != cfg.identity:
            new_spec["acquireTime"] = stamp
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
        current["spec"] = new_spec
        try:
            await self.client.replace(self.rt, current, namespace=cfg.namespace)
        except ApiError as e:
            if e.code == 409:  # someone else wrote first: not ours this round
                return False
            raise
        self._observe((cfg.identity, stamp))
        return True

    def _observe(self, record: tuple[str | None, str | None]) -> None:
        self._observed_record = record
        self._observed_at = time.monotonic()

    async def _attempt(self) -> bool:
        try:
            return await self._try_acquire_or_renew()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("leader election %s: %s", self.config.lease_name, e)
            return False

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Block until leading, run ``lead()`` while leading; return when leadership is lost
        (callers exit, as Kubernetes components do) or when ``lead()`` returns."""
        cfg = self.config
        while True:
            if await self._attempt():
                break
            await asyncio.sleep(cfg.retry_period)
        self.is_leader = True
        log.info("%s became leader of %s/%s", cfg.identity, cfg.namespace, cfg.lease_name)
        work: asyncio.Task[None] = asyncio.create_task(lead(), name=f"leading-{cfg.lease_name}")
        last_renew = time.monotonic()
        try:
            while not work.done():
                done, _ = await asyncio.wait({work}, timeout=cfg.retry_period)
                if done:
                    break
                if await self._attempt():
                    last_renew = time.monotonic()
                elif time.monotonic() - last_renew > cfg.renew_deadline:
                    log.error("%s lost leadership of %s/%s", cfg.identity, cfg.namespace, cfg.lease_name)
                    break
        finally:
            self.is_leader = False
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
        if work.done() and not work.cancelled():
            err = work.exception()
            if err is not None:
                raise err

    async def release(self) -> None:
        """Give the lease up on clean shutdown so a standby takes over at once."""
        cfg = self.config
        with contextlib.suppress(Exception):
            current = await self.client.get(self.rt, cfg.lease_name, cfg.namespace)
            if (current.get("spec") or {}).get("holderIdentity") == cfg.identity:
                current["spec"]["holderIdentity"] = None
                current["spec"]["leaseDurationSeconds"] = 1
                await self.client.replace(self.rt, current, namespace=cfg.namespace)
