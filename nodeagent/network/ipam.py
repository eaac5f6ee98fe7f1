"""Pod IP addresses from the node's podCIDR, one small file per allocated address.

``<state_dir>/<ip>`` holds the uid of the pod that owns ``<ip>``. A claim is made by writing a
temporary file and hard-linking it to the address's name: ``link(2)`` fails if the name exists,
so a claim is atomic and exclusive even between two processes, and a file is never seen half
written. The directory *is* the state: a new instance (after an agent restart) reads it back.
``last_reserved`` remembers where the round-robin search stopped, so a just-freed address is
the last to be handed out again (stale ARP/conntrack entries for it have time to expire), as
the CNI host-local plugin does.

The first address after the network address (``.1`` in a /24) is the bridge's gateway; the
network and broadcast addresses are never handed out.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

_LAST = "last_reserved"
_LOCK = ".lock"
_TMP_PREFIX = ".tmp-"


class IPAMExhausted(RuntimeError):
    """Every address of the podCIDR is in use."""


class IPAM:
    """Allocator for one node's podCIDR (IPv4), persisted under ``state_dir``."""

    def __init__(self, pod_cidr: str, state_dir: str | os.PathLike[str]) -> None:
        self.network = ipaddress.IPv4Network(pod_cidr, strict=False)
        if self.network.num_addresses < 4:
            raise ValueError(f"podCIDR {pod_cidr} is too small for a gateway and a pod")
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._mutex = threading.Lock()
        # Usable pod addresses: after the gateway, before the broadcast address.
        self._first = int(self.network.network_address) + 2
        self._last = int(self.network.broadcast_address) - 1
        self._by_uid: dict[str, ipaddress.IPv4Address] = {}
        self._orphans: list[ipaddress.IPv4Address] = []
        self._load()

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.network.network_address + 1

    @property
    def prefix_len(self) -> int:
        return self.network.prefixlen

    def allocations(self) -> dict[str, str]:
        """pod uid -> address, as read from the state directory."""
        with self._locked():
            self._load()
            return {uid: str(ip) for uid, ip in self._by_uid.items()}

    def allocate(self, pod_uid: str) -> str:
        """The pod's address: the one it already holds, or the next free one."""
        if not pod_uid or "\n" in pod_uid:
            raise ValueError(f"invalid pod uid {pod_uid!r}")
        with self._locked():
            self._load()
            held = self._by_uid.get(pod_uid)
            if held is not None:
                return str(held)
            used = {int(ip) for ip in self._by_uid.values()}
            size = self._last - self._first + 1
            start = self._read_last()
            for step in range(1, size + 1):
                candidate = self._first + (start - self._first + step) % size
                if candidate in used:
                    continue
                ip = ipaddress.IPv4Address(candidate)
                if self._claim(ip, pod_uid):
                    self._by_uid[pod_uid] = ip
                    self._write_last(candidate)
                    return str(ip)
            raise IPAMExhausted(f"no free address left in {self.network}")

    def release(self, pod_uid: str) -> str | None:
        """Free the pod's address (if it has one); returns it. Idempotent."""
        with self._locked():
            self._load()
            ip = self._by_uid.pop(pod_uid, None)
            if ip is None:
                return None
            self._unlink(ip)
            return str(ip)

    def reconcile(self, live_pod_uids: Iterable[str]) -> dict[str, str]:
        """Free every address not held by one of ``live_pod_uids`` (pods deleted while the agent
        was down, crashes between allocate and sandbox creation); returns {ip: former owner}
        for what it freed ("" for a file that named no owner).
        Also removes temporary files left by a crash mid-claim."""
        live = set(live_pod_uids)
        freed: dict[str, str] = {}
        with self._locked():
            for entry in self.dir.iterdir():
                if entry.name.startswith(_TMP_PREFIX):
                    entry.unlink(missing_ok=True)
            self._load()
            for uid, ip in list(self._by_uid.items()):
                if uid not in live:
                    self._unlink(ip)
                    del self._by_uid[uid]
                    freed[str(ip)] = uid
            # Files whose content is unreadable/empty (a crash, a hand edit) own nothing.
            for ip in self._orphans:
                self._unlink(ip)
                freed[str(ip)] = ""
            self._orphans = []
        return freed

    # -- internals ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The in-process mutex plus an flock on the directory's lock file, so two agents (or an
        old and a new one during a restart) never scan and claim at the same time."""
        with self._mutex:
            fd = os.open(self.dir / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _load(self) -> None:
        by_uid: dict[str, ipaddress.IPv4Address] = {}
        orphans: list[ipaddress.IPv4Address] = []
        for entry in self.dir.iterdir():
            ip = self._parse_name(entry.name)
            if ip is None:
                continue
            try:
                uid = entry.read_text().strip()
            except FileNotFoundError:
                continue
            if not uid or uid in by_uid:
                orphans.append(ip)
            else:
                by_uid[uid] = ip
        self._by_uid = by_uid
        self._orphans = orphans

    def _parse_name(self, name: str) -> ipaddress.IPv4Address | None:
        try:
            ip = ipaddress.IPv4Address(name)
        except ValueError:
            return None
        return ip if self._first <= int(ip) <= self._last else None

    def _claim(self, ip: ipaddress.IPv4Address, pod_uid: str) -> bool:
        tmp = self.dir / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        tmp.write_text(pod_uid + "\n")
        try:
            os.link(tmp, self.dir / str(ip))
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def _unlink(self, ip: ipaddress.IPv4Address) -> None:
        (self.dir / str(ip)).unlink(missing_ok=True)

    def _read_last(self) -> int:
        try:
            value = int(ipaddress.IPv4Address((self.dir / _LAST).read_text().strip()))
        except (FileNotFoundError, ValueError):
            return self._last  # so the search starts at the first address
        return value if self._first <= value <= self._last else self._last

    def _write_last(self, value: int) -> None:
        tmp = self.dir / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        tmp.write_text(f"{ipaddress.IPv4Address(value)}\n")
        os.replace(tmp, self.dir / _LAST)
