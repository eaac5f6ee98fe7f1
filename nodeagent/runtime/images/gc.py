"""Image garbage collection by disk usage, the kubelet's way.

Every period the agent calls :meth:`ImageGC.collect` with what its containers use (image ids,
repo digests or references, from the containers' labels; running and exited containers alike).
When the image filesystem (the one holding the store) is at least ``high_threshold_percent``
full, unused images are removed, least recently used first, until usage would be down to
``low_threshold_percent``; then the store's mark-and-sweep deletes the blobs and layer
directories no remaining image refers to, so a layer shared with a kept image stays.

"Used" is remembered in this process (as the kubelet does): an image is last used when a
collection saw a container using it, or when the agent last asked for it (``ImageService.ensure``
stamps it). An image this process first saw, or saw used, less than ``min_age`` seconds ago is
never removed, nor one asked for in the last :data:`ENSURED_GRACE` seconds (so an image a pod is
about to start with is never taken away between the pull and the container's creation). After a restart every present image counts as first seen then.

Thresholds of 100 disable collection; ``high=0, low=0`` (labs and tests) removes every unused
image older than ``min_age`` at each collection.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .reference import InvalidReference, parse
from .service import ImageInfo, ImageService
from .store import GcResult, ImageRecord

log = logging.getLogger(__name__)

#: An image the agent asked for this recently is about to be used by a container being created
#: (pull, then create): never collected, whatever ``min_age`` says.
ENSURED_GRACE = 10.0


@dataclass(frozen=True)
class ImageGCPolicy:
    high_threshold_percent: int = 85  # the kubelet's imageGCHighThresholdPercent
    low_threshold_percent: int = 80  # imageGCLowThresholdPercent
    min_age: float = 120.0  # imageMinimumGCAge, seconds

    def __post_init__(self) -> None:
        for name in ("high_threshold_percent", "low_threshold_percent"):
            v = getattr(self, name)
            if not 0 <= v <= 100:
                raise ValueError(f"image GC {name.replace('_', ' ')} must be within [0, 100], got {v}")
        if self.low_threshold_percent > self.high_threshold_percent:
            raise ValueError(f"image GC low threshold ({self.low_threshold_percent}) must not exceed "
                             f"the high threshold ({self.high_threshold_percent})")
        if self.min_age < 0:
            raise ValueError(f"image GC minimum age must not be negative, got {self.min_age}")


@dataclass(frozen=True)
class FsStats:
    capacity: int  # bytes
    available: int  # bytes an unprivileged writer may still use

    @property
    def used(self) -> int:
        return self.capacity - self.available

    @property
    def usage_percent(self) -> int:
        """The kubelet's arithmetic: 100 - available*100/capacity, truncated."""
        return 100 - self.available * 100 // self.capacity if self.capacity else 0


def fs_stats(path: Path) -> FsStats:
    st = os.statvfs(path)
    return FsStats(capacity=st.f_blocks * st.f_frsize, available=st.f_bavail * st.f_frsize)


@dataclass
class GCReport:
    usage_percent: int
    wanted_bytes: int = 0  # what had to be freed to reach the low threshold
    freed_bytes: int = 0  # blob bytes of the removed images not shared with a kept image
    removed: list[str] = field(default_factory=list)  # image ids, in removal order
    swept: GcResult | None = None


def uses(info: ImageInfo, in_use: set[str]) -> bool:
    """Whether ``in_use`` names this image: its id, a repo digest or a tag (as a pod writes it,
    ``busybox``, or fully qualified)."""
    return bool({info.id, *info.repo_digests, *info.repo_tags} & in_use)


def normalize(names: Iterable[str]) -> set[str]:
    """The names as given plus, for references, their qualified forms (``busybox`` ->
    ``docker.io/library/busybox:latest``), so they compare with an image's tags and digests."""
    out: set[str] = set()
    for name in names:
        out.add(name)
        if name.startswith("sha256:"):
            continue
        try:
            ref = parse(name)
        except InvalidReference:
            continue
        if ref.digest:
            out.add(ref.with_digest(ref.digest))
        tagged = ref.tagged()
        if tagged:
            out.add(tagged)
    return out


class ImageGC:
    def __init__(
        self,
        images: ImageService,
        policy: ImageGCPolicy | None = None,
        *,
        stats: Callable[[], FsStats] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.images = images
        self.policy = policy or ImageGCPolicy()
        self.stats = stats or (lambda: fs_stats(images.store.root))
        self.clock = clock
        self.first_seen: dict[str, float] = {}
        self.last_used: dict[str, float] = {}

    def _observe(self, present: list[ImageInfo], in_use: set[str], now: float) -> None:
        ids = {info.id for info in present}
        for info in present:
            self.first_seen.setdefault(info.id, now)
            if uses(info, in_use):
                self.last_used[info.id] = now
            ensured = self.images.last_ensured.get(info.id)
            if ensured is not None and ensured > self.last_used.get(info.id, 0.0):
                self.last_used[info.id] = ensured
        for gone in set(self.first_seen) - ids:  # removed by someone else
            self.first_seen.pop(gone, None)
            self.last_used.pop(gone, None)

    def collect(self, in_use: Iterable[str]) -> GCReport:
        """One collection (blocking: run it in a thread from asyncio)."""
        used = normalize(in_use)
        now = self.clock()
        present = self.images.list()
        self._observe(present, used, now)
        stats = self.stats()
        report = GCReport(usage_percent=stats.usage_percent)
        if self.policy.high_threshold_percent >= 100 or stats.usage_percent < self.policy.high_threshold_percent:
            return report
        report.wanted_bytes = stats.used - stats.capacity * self.policy.low_threshold_percent // 100
        if report.wanted_bytes <= 0:
            return report
        self._free(present, used, now, report)
        # Ids too: the sweep drops untagged images unless named by id.
        report.swept = self.images.gc(used | {info.id for info in present if uses(info, used)})
        if report.removed:
            log.info("image GC: disk %d%% >= %d%%, removed %d images (%d bytes) of %d wanted",
                     stats.usage_percent, self.policy.high_threshold_percent, len(report.removed),
                     report.freed_bytes, report.wanted_bytes)
        return report

    def _free(self, present: list[ImageInfo], used: set[str], now: float, report: GCReport) -> None:
        cutoff = now - self.policy.min_age
        candidates = [
            info for info in present
            if not uses(info, used) and self.first_seen[info.id] <= cutoff and self.last_used.get(info.id, 0.0) <= cutoff
            and self.images.last_ensured.get(info.id, 0.0) <= now - ENSURED_GRACE
        ]
        # Least recently used first; never-used images by when they were first seen.
        candidates.sort(key=lambda i: (self.last_used.get(i.id, self.first_seen[i.id]), self.first_seen[i.id]))
        kept = self.images.store.load()
        for info in candidates:
            if report.freed_bytes >= report.wanted_bytes > 0:
                break
            record = kept.pop(info.id, None)
            report.freed_bytes += _unique_bytes(record, kept.values())
            self.images.store.untag(info.id, delete=True)
            report.removed.append(info.id)
            self.first_seen.pop(info.id, None)
            self.last_used.pop(info.id, None)


def _unique_bytes(record: ImageRecord | None, others: Iterable[ImageRecord]) -> int:
    """Bytes of the image's blobs (config and layers) that no image in ``others`` shares."""
    if record is None:
        return 0
    shared = {layer.diff_id for other in others for layer in other.layers}
    return record.config_size + sum(layer.size for layer in record.layers if layer.diff_id not in shared)
