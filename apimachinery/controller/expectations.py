"""Expectations: what a controller is waiting to see in its cache after its own writes.

After a ReplicaSet controller creates 3 pods, its informer may not show them for a few
milliseconds. A reconcile in that window would count too few pods and create 3 more. So the
controller records "expect 3 creations" before writing, each observed creation (an ADDED event)
lowers the count, and reconcile skips the create/delete step until expectations are met (or
expire, in case an event was lost). This is Kubernetes' ControllerExpectations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# After this long, unmet expectations are presumed lost (e.g. a create that failed silently).
EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expectation:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    since: float = field(default_factory=time.monotonic)


class Expectations:
    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self.timeout = timeout
        self._by_key: dict[str, _Expectation] = {}

    def expect_creations(self, key: str, count: int) -> None:
        exp = self._by_key.setdefault(key, _Expectation())
        exp.adds += count
        exp.since = time.monotonic()

    def expect_deletions(self, key: str, uids: list[str]) -> None:
        exp = self._by_key.setdefault(key, _Expectation())
        exp.deletes.update(uids)
        exp.since = time.monotonic()

    def creation_observed(self, key: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None and exp.adds > 0:
            exp.adds -= 1

    def creation_failed(self, key: str) -> None:
        """A create that the API refused will never be observed."""
        self.creation_observed(key)

    def deletion_observed(self, key: str, uid: str) -> None:
        exp = self._by_key.get(key)
        if exp is not None:
            exp.deletes.discard(uid)

    def satisfied(self, key: str) -> bool:
        exp = self._by_key.get(key)
        if exp is None:
            return True
        if exp.adds <= 0 and not exp.deletes:
            return True
        return time.monotonic() - exp.since > self.timeout

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        exp = self._by_key.get(key)
        return (exp.adds, len(exp.deletes)) if exp else (0, 0)
