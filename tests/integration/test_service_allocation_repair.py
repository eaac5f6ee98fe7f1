"""The allocation bitmaps on a real etcd: two API servers sharing them never hand out the same
address, and the repair pass fixes what a crash between allocating and writing the Service left
behind (a leak is freed only after several rounds; a stored Service missing from the bitmap is
marked taken)."""

from __future__ import annotations

import asyncio
import json

import pytest

from controlplane.registry.servicealloc import LEAK_ROUNDS, ServiceAllocator
from controlplane.storage.etcd import EtcdStore

pytestmark = pytest.mark.integration


def allocator(etcd: EtcdStore, prefix: str) -> ServiceAllocator:
    return ServiceAllocator(etcd, "10.0.0.0/27", "30000-30004", prefix + "services/", ranges_prefix=prefix + "ranges/")


def service(name: str, ip: str | None = None, node_port: int | None = None) -> dict:
    port: dict = {"port": 80}
    if node_port is not None:
        port["nodePort"] = node_port
    spec: dict = {"type": "NodePort" if node_port else "ClusterIP", "ports": [port]}
    if ip:
        spec["clusterIP"] = ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def test_two_servers_never_share_an_address(etcd: EtcdStore, etcd_prefix: str) -> None:
    a, b = allocator(etcd, etcd_prefix), allocator(etcd, etcd_prefix)
    svcs = [service(f"s{i}") for i in range(29)]  # .1 to .30 usable, .1 kept for kubernetes
    await asyncio.gather(*(
        (a if i % 2 else b).for_create(s, dry_run=False) for i, s in enumerate(svcs)
    ))
    ips = [s["spec"]["clusterIP"] for s in svcs]
    assert len(set(ips)) == 29 and "10.0.0.1" not in ips
    with pytest.raises(Exception, match="range is full"):
        await a.for_create(service("one-more"), dry_run=False)


async def test_repair_frees_leaks_after_rounds_and_marks_stored_services(etcd: EtcdStore, etcd_prefix: str) -> None:
    alloc = allocator(etcd, etcd_prefix)
    # A create that allocated and then crashed before writing its Service.
    leaked = service("leaked", "10.0.0.9", 30001)
    await alloc.for_create(leaked, dry_run=False)
    # A Service stored while the bitmap lost track of it (e.g. restored from a backup).
    await etcd.create(etcd_prefix + "services/default/kept", json.dumps(service("kept", "10.0.0.7", 30002)).encode())

    for _ in range(LEAK_ROUNDS - 1):
        await alloc.repair()
        # Not yet: the allocation may belong to a create still in flight.
        with pytest.raises(Exception, match="already allocated"):
            await alloc.for_create(service("x", "10.0.0.9"), dry_run=True)
    await alloc.repair()
    # Now the leak is gone, and the stored Service's address and port are taken.
    again = service("again", "10.0.0.9", 30001)
    await alloc.for_create(again, dry_run=False)
    with pytest.raises(Exception, match="provided IP is already allocated"):
        await alloc.for_create(service("x", "10.0.0.7"), dry_run=True)
    with pytest.raises(Exception, match="provided port is already allocated"):
        await alloc.for_create(service("x", None, 30002), dry_run=True)
