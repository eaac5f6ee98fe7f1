"""An allocation bitmap kept in etcd, changed only by compare-and-swap (Kubernetes' RangeAllocation).

Every API server shares one object per range (``/registry/ranges/<name>``): bit ``i`` set means
offset ``i`` of the range is taken. Each change reads the object, flips bits and writes it back
only if nobody wrote in between, so two servers (or two concurrent requests) can never hand out
the same offset, and the state survives restarts with the rest of the cluster's data. The bitmap
is zlib-compressed: a /12 service range is 2^20 bits, nearly all zero.
"""

from __future__ import annotations

import base64
import json
import random
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from controlplane.storage.errors import ConflictError, KeyExistsError
from controlplane.storage.etcd import EtcdStore

# A CAS loop on one hot key: every concurrent writer but one loses each round.
_MAX_ATTEMPTS = 200


class RangeFull(Exception):
    """No free offset left."""


class AlreadyAllocated(Exception):
    """The offset asked for is taken."""


@dataclass
class Snapshot:
    bits: int
    mod_revision: int  # 0 when the object does not exist yet


class EtcdBitmap:
    def __init__(self, etcd: EtcdStore, key: str, range_text: str, size: int) -> None:
        self.etcd = etcd
        self.key = key
        self.range_text = range_text
        self.size = size

    # -- encoding -------------------------------------------------------------------------------

    def _encode(self, bits: int) -> bytes:
        raw = bits.to_bytes((self.size + 7) // 8, "little")
        obj = {
            "apiVersion": "v1", "kind": "RangeAllocation",
            "metadata": {"name": self.key.rsplit("/", 1)[-1]},
            "range": self.range_text,
            "data": base64.b64encode(zlib.compress(raw)).decode(),
        }
        return json.dumps(obj, separators=(",", ":")).encode()

    def _decode(self, value: bytes) -> int:
        obj = json.loads(value)
        if obj.get("range") != self.range_text:
            # The range was reconfigured: the old bits mean nothing here. The repair loop
            # rebuilds the new bitmap from the stored Services.
            return 0
        bits = int.from_bytes(zlib.decompress(base64.b64decode(obj.get("data") or "")), "little")
        return bits & ((1 << self.size) - 1)

    # -- reads and the CAS loop -----------------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        kv = await self.etcd.get(self.key)
        return Snapshot(0, 0) if kv is None else Snapshot(self._decode(kv.value), kv.mod_revision)

    async def write(self, snap: Snapshot, bits: int) -> bool:
        """Store ``bits`` if the object is still as in ``snap``; False when someone wrote first."""
        try:
            if snap.mod_revision == 0:
                await self.etcd.create(self.key, self._encode(bits))
            else:
                await self.etcd.update(self.key, self._encode(bits), snap.mod_revision)
        except (ConflictError, KeyExistsError):
            return False
        return True

    async def modify(self, change: Callable[[int], int]) -> int:
        """Apply ``change(bits) -> new bits`` atomically; ``change`` may raise to refuse."""
        for _ in range(_MAX_ATTEMPTS):
            snap = await self.snapshot()
            new = change(snap.bits)
            if new == snap.bits or await self.write(snap, new):
                return new
        raise RuntimeError(f"too many concurrent writers on {self.key}")

    # -- allocation -----------------------------------------------------------------------------

    def _check(self, offset: int) -> None:
        if not 0 <= offset < self.size:
            raise ValueError(f"offset {offset} outside 0..{self.size - 1}")

    async def allocate(self, offset: int, *, commit: bool = True) -> None:
        """Take ``offset`` (AlreadyAllocated if it is taken); ``commit=False`` only checks."""
        self._check(offset)

        def take(bits: int) -> int:
            if bits >> offset & 1:
                raise AlreadyAllocated(offset)
            return bits | (1 << offset)

        if commit:
            await self.modify(take)
        else:
            take((await self.snapshot()).bits)

    async def allocate_next(self, *, exclude: Iterable[int] = (), commit: bool = True) -> int:
        """Take a random free offset (RangeFull when none is left); ``exclude`` is never picked."""
        banned = 0
        for off in exclude:
            banned |= 1 << off
        chosen = -1

        def take_any(bits: int) -> int:
            nonlocal chosen
            chosen = pick_free(bits | banned, self.size)
            return bits | (1 << chosen)

        if commit:
            await self.modify(take_any)
        else:
            take_any((await self.snapshot()).bits)
        return chosen

    async def release(self, offsets: Iterable[int]) -> None:
        mask = 0
        for off in offsets:
            if 0 <= off < self.size:
                mask |= 1 << off
        if mask:
            await self.modify(lambda bits: bits & ~mask)


def pick_free(bits: int, size: int) -> int:
    """A random clear bit below ``size``: start anywhere, take the first free one from there."""
    full = (1 << size) - 1
    if bits & full == full:
        raise RangeFull()
    start = random.randrange(size)
    # Free bits at or above start, else the lowest free bit overall.
    free = ~bits & full
    above = free >> start << start
    target = above if above else free
    return (target & -target).bit_length() - 1
