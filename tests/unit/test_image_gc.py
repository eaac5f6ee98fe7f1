"""Image GC by disk usage (``nodeagent.runtime.images.gc``) on a real image store.

The disk figures and the clock are given to the collector (the store's real filesystem is
whatever the machine has); images are made and installed as in ``test_image_store``.
"""

from __future__ import annotations

import pytest

from nodeagent.runtime.images import ImageService
from nodeagent.runtime.images.gc import FsStats, ImageGC, ImageGCPolicy
from tests.unit.test_image_store import Made, blob_names, layer_names, svc  # noqa: F401  (svc: fixture)

GB = 1 << 30


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Disk:
    def __init__(self, used_percent: int) -> None:
        self.available = (100 - used_percent) * GB

    def __call__(self) -> FsStats:
        return FsStats(capacity=100 * GB, available=self.available)


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="must not exceed"):
        ImageGCPolicy(high_threshold_percent=70, low_threshold_percent=80)
    with pytest.raises(ValueError, match=r"within \[0, 100\]"):
        ImageGCPolicy(high_threshold_percent=101)
    assert FsStats(capacity=100, available=15).usage_percent == 85
    assert FsStats(capacity=100, available=16).usage_percent == 84


async def test_below_the_high_threshold_nothing_goes(svc: ImageService) -> None:  # noqa: F811
    a = await Made([{"a": b"1"}], cmd="a").install(svc, "docker.io/library/a:1")
    clock, disk = Clock(), Disk(84)
    gc = ImageGC(svc, ImageGCPolicy(85, 80, min_age=0), stats=disk, clock=clock)
    report = gc.collect([])
    assert report.removed == [] and report.usage_percent == 84
    assert svc.status(a.id) is not None


async def test_unused_images_go_oldest_used_first_shared_layers_stay(svc: ImageService) -> None:  # noqa: F811
    base = {"base": b"shared base layer"}
    used = await Made([base, {"u": b"used"}], cmd="used").install(svc, "docker.io/library/used:1")
    old = await Made([base, {"o": b"old"}], cmd="old").install(svc, "docker.io/library/old:1")
    recent = await Made([{"r": b"recent" * 1000}], cmd="recent").install(svc, "docker.io/library/recent:1")
    clock, disk = Clock(), Disk(50)
    gc = ImageGC(svc, ImageGCPolicy(85, 80, min_age=60), stats=disk, clock=clock)
    # First sight: everything is "new"; below the threshold nothing is removed anyway.
    gc.collect(["used:1", old.id, recent.id])
    clock.now += 100
    gc.collect(["used:1", recent.id])  # old was last used 100 s ago, recent now
    clock.now += 100

    # Over the high threshold with 1 byte to free: only the least recently used one goes.
    disk.available = 15 * GB - 1  # 85 % used, one byte over the low threshold
    gc.policy = ImageGCPolicy(85, 85, min_age=60)
    report = gc.collect(["used:1"])
    assert report.removed == [old.id]
    assert svc.status(old.id) is None and svc.status(recent.id) is not None and svc.status(used.id) is not None
    assert report.freed_bytes > 0
    assert report.swept is not None and report.swept.layers_removed == 1
    assert old.layer_dirs[0] == used.layer_dirs[0] and used.layer_dirs[0].is_dir(), "the shared layer stays"
    assert not old.layer_dirs[1].exists() and old.id not in blob_names(svc)

    # Needing more than any one image: every unused image goes; the used one and its layers stay.
    gc.policy = ImageGCPolicy(85, 10, min_age=60)
    report = gc.collect(["docker.io/library/used:1"])
    assert report.removed == [recent.id]
    assert [i.id for i in svc.list()] == [used.id]
    assert layer_names(svc) == {d.name for d in used.layer_dirs}


async def test_min_age_and_recent_ensure_protect_an_image(svc: ImageService) -> None:  # noqa: F811
    img = await Made([{"x": b"x"}], cmd="x").install(svc, "docker.io/library/x:1")
    clock, disk = Clock(), Disk(100)
    gc = ImageGC(svc, ImageGCPolicy(0, 0, min_age=50), stats=disk, clock=clock)
    assert gc.collect([]).removed == []  # first seen just now
    clock.now += 60
    svc.last_ensured[img.id] = clock.now - 1  # a pod is about to start with it
    assert gc.collect([]).removed == []
    clock.now += 60
    svc.last_ensured[img.id] = clock.now - 40  # ... and did (still within min_age)
    assert gc.collect([]).removed == []
    clock.now += 60
    assert gc.collect([]).removed == [img.id]
    assert svc.list() == [] and layer_names(svc) == set()


async def test_thresholds_of_100_disable_collection(svc: ImageService) -> None:  # noqa: F811
    await Made([{"y": b"y"}], cmd="y").install(svc, "docker.io/library/y:1")
    gc = ImageGC(svc, ImageGCPolicy(100, 100, min_age=0), stats=Disk(100), clock=Clock())
    assert gc.collect([]).removed == []
    assert len(svc.list()) == 1
