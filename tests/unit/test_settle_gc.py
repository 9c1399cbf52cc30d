"""``kasmm supervise`` settles the garbage collector once every profile runs."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from kasmm.supervisor.daemon import GC_THRESHOLDS, settle_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_settle_gc_freezes_the_startup_heap_and_collects_the_young_less_often() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    settle_gc()
    assert gc.get_freeze_count() > 0  # what existed at startup left the generations
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # less often than CPython's default
