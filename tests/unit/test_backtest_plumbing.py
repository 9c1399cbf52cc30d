"""The backtest's clock and bucket: their one-call shortcuts do what the calls they replace do."""

from __future__ import annotations

import pytest

from kasmm.backtest.plumbing import BacktestBucket, BacktestClock


@pytest.mark.parametrize(
    ("start", "end", "t"),
    [
        (0.0, None, 5.0),
        (0.0, 10.0, 5.0),
        (0.0, 10.0, 10.0),
        (0.0, 10.0, 10.5),
        (7.0, 10.0, 3.0),  # a step in the past: the clock never goes back
        (11.0, 10.0, 12.0),  # the clock itself past the end (a round finished there)
        (11.0, 10.0, 9.0),
    ],
)
def test_step_to_is_past_end_then_advance_to(start: float, end: float | None, t: float) -> None:
    clock, reference = BacktestClock(start, end), BacktestClock(start, end)
    expected = not reference.past_end(t)
    if expected:
        reference.advance_to(t)
    assert clock.step_to(t) is expected
    assert clock.now() == reference.now() == clock.wall()


@pytest.mark.parametrize("unlimited", [False, True])
@pytest.mark.parametrize("latency_s", [0.0, 0.05])
def test_request_is_take_then_latency(unlimited: bool, latency_s: float) -> None:
    """Requests of every weight, some beyond the capacity, some waiting for tokens."""
    clock, ref_clock = BacktestClock(0.0), BacktestClock(0.0)
    bucket = BacktestBucket(3, 2.0, clock, unlimited=unlimited)
    reference = BacktestBucket(3, 2.0, ref_clock, unlimited=unlimited)
    for weight in (1, 1, 2, 5, 0, 1, 3, 1, 7, 2):
        at = bucket.request(weight, latency_s)
        reference.take(weight)
        expected_at = ref_clock.now()
        if latency_s > 0:
            ref_clock.advance_to(expected_at + latency_s)
        assert at == expected_at
        assert clock.now() == ref_clock.now() == clock.wall()
        assert (bucket.spent, bucket.waited_s) == (reference.spent, reference.waited_s)
        assert bucket.tokens == reference.tokens


def test_paths_run_with_batched_young_collections_and_leave_the_callers_gc_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """run_chunk collects the young generation every 20,000 allocations while its paths run,
    with what was built before frozen out, and hands the caller its own settings back."""
    import gc

    from kasmm.backtest import engine

    seen: list[tuple[tuple[int, int, int], int]] = []

    def path(spec: object, report: object) -> str:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return f"ran {spec}"

    monkeypatch.setattr(engine, "run_path", path)
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    gc.unfreeze()  # a process that froze nothing (another test may have)
    gc.set_threshold(700, 10, 10)
    try:
        ran = engine.run_chunk(["p1", "p2"])  # type: ignore[list-item]
        assert ran == ["ran p1", "ran p2"]  # type: ignore[comparison-overlap]
        assert [t for t, _ in seen] == [engine.PATHS_GC_THRESHOLDS] * 2
        assert all(count > 0 for _, count in seen)  # what was built before: frozen out
        assert (gc.get_threshold(), gc.get_freeze_count()) == ((700, 10, 10), 0)

        gc.freeze()  # a caller that froze its own: they stay frozen, and nothing more is
        mine = gc.get_freeze_count()
        seen.clear()
        engine.run_chunk(["p3"])  # type: ignore[list-item]
        # (the count only falls: a frozen object freed by reference counting leaves it)
        assert [t for t, _ in seen] == [engine.PATHS_GC_THRESHOLDS]
        assert 0 < seen[0][1] <= mine and 0 < gc.get_freeze_count() <= mine
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)
        if not frozen:
            gc.unfreeze()
