"""ClusterIP and NodePort allocation for Services, done by the API server as Kubernetes does.

The store calls in here around a Service write: ``for_create`` / ``for_update`` take what the new
object needs (and fill it in), the write happens, and on failure the store gives the new
allocations back with ``release``; after a successful update or delete it releases what the old
object held and the new one does not. A crash between taking and writing leaks an allocation;
``repair`` (run at start and then periodically) rebuilds each bitmap from the stored Services,
freeing an entry only after it was seen leaked on several rounds in a row, so allocations of
creates still in flight are not taken away.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from apimachinery import errors
from controlplane.registry import codec
from controlplane.registry.ipallocator import IPAllocator
from controlplane.registry.ipallocator import NotInRange as IPNotInRange
from controlplane.registry.portallocator import NotInRange as PortNotInRange
from controlplane.registry.portallocator import PortAllocator
from controlplane.registry.rangealloc import AlreadyAllocated, EtcdBitmap, RangeFull
from controlplane.storage.etcd import EtcdStore

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Rounds an allocation must look leaked before repair frees it (Kubernetes uses 3 as well).
LEAK_ROUNDS = 3


@dataclass
class Allocated:
    ips: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.ips or self.ports)


def _spec(svc: Obj) -> Obj:
    spec = svc.get("spec")
    return spec if isinstance(spec, dict) else {}


def _type(svc: Obj) -> str:
    return str(_spec(svc).get("type") or "ClusterIP")


def needs_cluster_ip(svc: Obj) -> bool:
    return _type(svc) != "ExternalName"


def needs_node_ports(svc: Obj) -> bool:
    spec = _spec(svc)
    if _type(svc) == "NodePort":
        return True
    return _type(svc) == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


def requested_ip(svc: Obj) -> str:
    spec = _spec(svc)
    ip = spec.get("clusterIP")
    if not ip:
        ips = spec.get("clusterIPs") or []
        ip = ips[0] if ips else ""
    return str(ip or "")


def held_ip(svc: Obj) -> str | None:
    """The cluster IP a stored Service holds in the allocator (None: headless or none)."""
    if not needs_cluster_ip(svc):
        return None
    ip = requested_ip(svc)
    return ip if ip and ip != "None" else None


def held_ports(svc: Obj) -> list[int]:
    if not needs_node_ports(svc):
        return []
    return [int(p["nodePort"]) for p in _spec(svc).get("ports") or [] if isinstance(p, dict) and p.get("nodePort")]


def _ports(svc: Obj) -> list[Obj]:
    return [p for p in _spec(svc).get("ports") or [] if isinstance(p, dict)]


def _invalid(svc: Obj, field_errors: list[errors.FieldError]) -> errors.ApiError:
    return errors.invalid("Service", "", str((svc.get("metadata") or {}).get("name") or ""), field_errors)


class ServiceAllocator:
    def __init__(
        self, etcd: EtcdStore, service_cidr: str, node_port_range: str, service_prefix: str,
        ranges_prefix: str = "/registry/ranges/",
    ) -> None:
        self.etcd = etcd
        self.ips = IPAllocator(etcd, service_cidr, ranges_prefix + "serviceips")
        self.ports = PortAllocator(etcd, node_port_range, ranges_prefix + "servicenodeports")
        self.service_prefix = service_prefix
        self._leaks: dict[str, dict[int, int]] = {"ips": {}, "ports": {}}

    # -- writes ---------------------------------------------------------------------------------

    async def for_create(self, svc: Obj, *, dry_run: bool) -> Allocated:
        """Fill in and take the IP and node ports ``svc`` needs; raises a 422/500 ApiError."""
        return await self._allocate(svc, None, dry_run=dry_run)

    async def for_update(self, new: Obj, old: Obj, *, dry_run: bool) -> tuple[Allocated, Allocated]:
        """(taken now, to give back once the update is stored)."""
        taken = await self._allocate(new, old, dry_run=dry_run)
        new_ip, new_ports = held_ip(new), set(held_ports(new))
        old_ip = held_ip(old)
        freed = Allocated(
            ips=[old_ip] if old_ip and old_ip != new_ip else [],
            ports=[p for p in held_ports(old) if p not in new_ports],
        )
        return taken, freed

    async def release(self, alloc: Allocated) -> None:
        if alloc.ips:
            await self.ips.release(alloc.ips)
        if alloc.ports:
            await self.ports.release(alloc.ports)

    async def release_held(self, svc: Obj) -> None:
        """Give back everything a deleted Service held."""
        ip = held_ip(svc)
        await self.release(Allocated([ip] if ip else [], held_ports(svc)))

    async def _allocate(self, svc: Obj, old: Obj | None, *, dry_run: bool) -> Allocated:
        commit = not dry_run
        taken = Allocated()
        try:
            await self._allocate_ip(svc, old, taken, commit)
            await self._allocate_ports(svc, old, taken, commit)
        except BaseException:
            if commit:
                await self.release(taken)
            raise
        return taken

    async def _allocate_ip(self, svc: Obj, old: Obj | None, taken: Allocated, commit: bool) -> None:
        spec = _spec(svc)
        if not needs_cluster_ip(svc):
            return
        ip = requested_ip(svc)
        if old is not None and held_ip(old) is not None and held_ip(old) == ip:
            return  # kept from before
        if old is not None and needs_cluster_ip(old) and requested_ip(old) == "None" and ip == "None":
            return
        if ip != "None":
            if ip:
                try:
                    await self.ips.allocate(ip, commit=commit)
                except IPNotInRange:
                    raise _invalid(svc, [errors.FieldError.invalid(
                        "spec.clusterIPs", [ip],
                        f"failed to allocate IP {ip}: provided IP is not in the valid range. "
                        f"The range of valid IPs is {self.ips.cidr}",
                    )]) from None
                except AlreadyAllocated:
                    raise _invalid(svc, [errors.FieldError.invalid(
                        "spec.clusterIPs", [ip], f"failed to allocate IP {ip}: provided IP is already allocated",
                    )]) from None
            else:
                try:
                    ip = await self.ips.allocate_next(commit=commit)
                except RangeFull:
                    raise errors.internal("failed to allocate a serviceIP: range is full") from None
            if commit:
                taken.ips.append(ip)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")

    async def _allocate_ports(self, svc: Obj, old: Obj | None, taken: Allocated, commit: bool) -> None:
        if not needs_node_ports(svc):
            return
        kept = set(held_ports(old)) if old is not None else set()
        ports = _ports(svc)
        # Ports asked for by number first, so a random pick cannot take one of them.
        for i, port in enumerate(ports):
            value = port.get("nodePort")
            if not value or value in kept or value in taken.ports:
                continue
            try:
                await self.ports.allocate(int(value), commit=commit)
            except PortNotInRange:
                raise _invalid(svc, [errors.FieldError.invalid(
                    f"spec.ports[{i}].nodePort", value,
                    f"provided port is not in the valid range. The range of valid ports is {self.ports.range_text}",
                )]) from None
            except AlreadyAllocated:
                raise _invalid(svc, [errors.FieldError.invalid(
                    f"spec.ports[{i}].nodePort", value, "provided port is already allocated",
                )]) from None
            if commit:
                taken.ports.append(int(value))
        for port in ports:
            if port.get("nodePort"):
                continue
            try:
                port["nodePort"] = await self.ports.allocate_next(commit=commit)
            except RangeFull:
                raise errors.internal("failed to allocate a nodePort: range is full") from None
            if commit:
                taken.ports.append(int(port["nodePort"]))

    # -- repair ---------------------------------------------------------------------------------

    async def repair(self) -> None:
        """Make both bitmaps agree with the stored Services (see the module docstring)."""
        # Bitmaps first, Services second: an allocation or release made in between changes a
        # bitmap, so the compare-and-swap below fails and this round changes nothing.
        ip_snap = await self.ips.bitmap.snapshot()
        port_snap = await self.ports.bitmap.snapshot()
        used_ips: set[int] = set()
        used_ports: set[int] = set()
        start: str | None = None
        while True:
            res = await self.etcd.list(self.service_prefix, limit=500, start_key=start)
            for kv in res.entries:
                svc = codec.decode(kv.value, kv.mod_revision)
                ip = held_ip(svc)
                if ip is not None:
                    if self.ips.contains(ip):
                        used_ips.add(self.ips.offset(ip))
                    else:
                        log.warning("service %s has cluster IP %s outside %s", kv.key, ip, self.ips.cidr)
                for port in held_ports(svc):
                    if self.ports.contains(port):
                        used_ports.add(port - self.ports.first)
            if not res.more or not res.entries:
                break
            start = res.entries[-1].key + "\x00"
        await self._repair_one("ips", self.ips.bitmap, ip_snap, used_ips)
        await self._repair_one("ports", self.ports.bitmap, port_snap, used_ports)

    async def _repair_one(self, name: str, bitmap: EtcdBitmap, snap: Any, used: set[int]) -> None:
        leaks = self._leaks[name]
        want = 0
        for off in used:
            want |= 1 << off
        still_leaked: dict[int, int] = {}
        extra = snap.bits & ~want
        while extra:
            low = extra & -extra
            off = low.bit_length() - 1
            extra ^= low
            rounds = leaks.get(off, 0) + 1
            if rounds < LEAK_ROUNDS:
                still_leaked[off] = rounds
                want |= low  # not yet: it may belong to a create in flight
            else:
                log.info("repair: releasing leaked %s offset %d", name, off)
        self._leaks[name] = still_leaked
        if want != snap.bits and not await bitmap.write(snap, want):
            log.debug("repair of %s raced with a writer; next round", name)

    async def run_repair_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.repair()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service allocation repair failed; retrying next round")
