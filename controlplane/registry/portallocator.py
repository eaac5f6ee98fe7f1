"""Service node ports: one port range (30000-32767 by default) shared by all Services."""

from __future__ import annotations

from controlplane.registry.rangealloc import EtcdBitmap
from controlplane.storage.etcd import EtcdStore

RANGE_KEY = "/registry/ranges/servicenodeports"


class NotInRange(Exception):
    pass


def parse_port_range(text: str) -> tuple[int, int]:
    """``"30000-32767"`` (or one port) -> (first, last); ValueError when it is not a range."""
    first_s, sep, last_s = text.partition("-")
    first = int(first_s)
    last = int(last_s) if sep else first
    if not 0 < first <= last <= 65535:
        raise ValueError(f"invalid port range {text!r}")
    return first, last


class PortAllocator:
    def __init__(self, etcd: EtcdStore, port_range: str, key: str = RANGE_KEY) -> None:
        self.first, self.last = parse_port_range(port_range)
        self.range_text = f"{self.first}-{self.last}"
        self.bitmap = EtcdBitmap(etcd, key, self.range_text, self.last - self.first + 1)

    def contains(self, port: int) -> bool:
        return self.first <= port <= self.last

    async def allocate(self, port: int, *, commit: bool = True) -> None:
        """NotInRange or rangealloc.AlreadyAllocated when ``port`` cannot be had."""
        if not self.contains(port):
            raise NotInRange(port)
        await self.bitmap.allocate(port - self.first, commit=commit)

    async def allocate_next(self, *, commit: bool = True) -> int:
        return self.first + await self.bitmap.allocate_next(commit=commit)

    async def release(self, ports: list[int]) -> None:
        await self.bitmap.release(p - self.first for p in ports if self.contains(p))
