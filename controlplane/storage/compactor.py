"""Periodic compaction of etcd's history, the way the Kubernetes API server does it.

etcd keeps every revision until compacted, so without this the database grows forever. Each
interval we compact to the revision we observed one interval earlier: a watcher then always
has at least a full interval to catch up before its resourceVersion becomes "too old".

Several control planes may share one etcd. They coordinate through one bookkeeping key: each
round is a compare-and-swap on it, and only the writer that wins compacts, so the cluster
compacts once per interval however many control planes run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from controlplane.storage.errors import CompactedError, ConflictError, KeyExistsError, StorageError
from controlplane.storage.etcd import EtcdStore

log = logging.getLogger(__name__)

# Outside every resource prefix (the watch cache ignores it), like Kubernetes' "compact_rev_key".
COMPACT_KEY = "compact_rev_key"


@dataclass
class CompactorState:
    # mod_revision of COMPACT_KEY as we last saw it (0: not seen yet).
    key_revision: int = 0
    # The revision observed at the last round: the next round compacts to it.
    observed: int = 0


async def compact_once(store: EtcdStore, state: CompactorState) -> int | None:
    """One round: claim it, compact to the previously observed revision, observe anew.

    Returns the revision compacted to, or None when there was nothing to do or another
    control plane ran this round.
    """
    target = state.observed
    value = str(target).encode()
    try:
        if state.key_revision == 0:
            revision = await store.create(COMPACT_KEY, value)
        else:
            revision = await store.update(COMPACT_KEY, value, state.key_revision)
    except (ConflictError, KeyExistsError) as e:
        # Another control plane claimed this round. Observe now, as it did: whoever wins the
        # next round compacts to a revision seen a full interval earlier.
        current = e.current if isinstance(e, ConflictError) else await store.get(COMPACT_KEY)
        state.key_revision = current.mod_revision if current else 0
        state.observed = await store.current_revision()
        log.debug("another control plane compacted this round")
        return None
    state.key_revision = revision
    state.observed = revision
    if target <= 0:
        return None
    try:
        await store.compact(target)
    except CompactedError:
        log.info("etcd history was already compacted past revision %d", target)
        return None
    log.info("compacted etcd history up to revision %d (current revision %d)", target, revision)
    return target


async def run_compactor(store: EtcdStore, interval: float = 300.0) -> None:
    """Compact every ``interval`` seconds until cancelled; etcd errors are logged and retried."""
    state = CompactorState()
    log.info("compacting etcd history every %.0f s", interval)
    while True:
        try:
            await compact_once(store, state)
        except StorageError as e:
            log.warning("etcd compaction failed: %s", e)
        await asyncio.sleep(interval)
