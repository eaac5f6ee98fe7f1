"""Service cluster IPs: one IPv4 range, its addresses taken and given back through an etcd bitmap.

Offsets count from the first usable address: the network and broadcast addresses are never
handed out, and the first usable one (``.1`` of 10.96.0.0/12, i.e. 10.96.0.1) is kept for the
``kubernetes`` Service, so a random pick never takes it.
"""

from __future__ import annotations

import ipaddress

from controlplane.registry.rangealloc import EtcdBitmap
from controlplane.storage.etcd import EtcdStore

RANGE_KEY = "/registry/ranges/serviceips"


class NotInRange(Exception):
    pass


class IPAllocator:
    def __init__(self, etcd: EtcdStore, cidr: str, key: str = RANGE_KEY) -> None:
        self.network = ipaddress.IPv4Network(cidr, strict=False)
        if self.network.num_addresses < 4:
            raise ValueError(f"service CIDR {cidr} is too small")
        self.cidr = str(self.network)
        self.bitmap = EtcdBitmap(etcd, key, self.cidr, self.network.num_addresses - 2)

    @property
    def first(self) -> str:
        """The address kept for the ``kubernetes`` Service."""
        return str(self.network.network_address + 1)

    def offset(self, ip: str) -> int:
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError:
            raise NotInRange(ip) from None
        off = int(addr) - int(self.network.network_address) - 1
        if not 0 <= off < self.bitmap.size:
            raise NotInRange(ip)
        return off

    def ip(self, offset: int) -> str:
        return str(self.network.network_address + 1 + offset)

    def contains(self, ip: str) -> bool:
        try:
            self.offset(ip)
        except NotInRange:
            return False
        return True

    async def allocate(self, ip: str, *, commit: bool = True) -> None:
        """NotInRange or rangealloc.AlreadyAllocated when ``ip`` cannot be had."""
        await self.bitmap.allocate(self.offset(ip), commit=commit)

    async def allocate_next(self, *, commit: bool = True) -> str:
        return self.ip(await self.bitmap.allocate_next(exclude=[0], commit=commit))

    async def release(self, ips: list[str]) -> None:
        await self.bitmap.release(self.offset(ip) for ip in ips if self.contains(ip))
