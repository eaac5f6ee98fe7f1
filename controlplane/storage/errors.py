"""Storage errors: what can go wrong talking to etcd, in terms the registry can act on.

The registry turns these into Kubernetes Status responses (409 AlreadyExists/Conflict, 404,
410 Gone "too old resource version", 503), so each carries the facts that response needs and
no gRPC detail leaks past this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controlplane.storage.etcd import KV


class StorageError(Exception):
    """Any failure of the storage layer."""


class KeyExistsError(StorageError):
    """A create found the key already present."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key already exists: {key}")
        self.key = key


class ConflictError(StorageError):
    """A compare-and-swap lost: the key is no longer at the expected mod_revision.

    ``current`` is what etcd holds now (None when the key was deleted), read in the same
    transaction, so the caller can report or retry without another round trip.
    """

    def __init__(self, key: str, current: KV | None) -> None:
        now = f"mod_revision {current.mod_revision}" if current is not None else "deleted"
        super().__init__(f"precondition failed for {key}: it is now {now}")
        self.key = key
        self.current = current


class KeyNotFoundError(StorageError):
    """The key does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class CompactedError(StorageError):
    """A read or watch asked for a revision etcd has already compacted away.

    ``compact_revision`` is the oldest revision still available (0 when etcd did not say) and
    ``current_revision`` etcd's revision at the time, so a 410 Gone can tell the client both.
    """

    def __init__(self, compact_revision: int, current_revision: int) -> None:
        super().__init__(
            f"required revision has been compacted (compacted to {compact_revision}, "
            f"current revision {current_revision})"
        )
        self.compact_revision = compact_revision
        self.current_revision = current_revision


class UnavailableError(StorageError):
    """etcd could not be reached or did not answer in time."""
