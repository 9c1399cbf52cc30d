"""Market-making obligations: an instant meets them or not; the rolling window's share."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.core.kpis import NOTHING, Snapshot
from kasmm.core.obligations import BUCKET_S, Compliance, Obligation, breached, meets, record

TIGHT_DEEP = Snapshot(True, True, 40.0, (500.0, 800.0, 1000.0))
WIDE = Snapshot(True, True, 120.0, (500.0, 800.0, 1000.0))
THIN = Snapshot(True, True, 40.0, (100.0, 150.0, 200.0))
ONE_SIDED = Snapshot(True, False, None, (300.0, 300.0, 300.0))

DEAL = Obligation(
    max_spread_bps=100, depth_band=Decimal("0.02"), min_depth=500, min_share=0.9, window_s=600
)


@pytest.mark.parametrize(
    ("picture", "ok"),
    [(TIGHT_DEEP, True), (WIDE, False), (THIN, False), (ONE_SIDED, False), (NOTHING, False)],
)
def test_an_instant_meets_the_obligation_only_with_both_sides_tight_and_deep(
    picture: Snapshot, ok: bool
) -> None:
    assert meets(DEAL, picture) is ok


def test_the_window_share_counts_the_time_each_picture_held() -> None:
    state = record(Compliance(), DEAL, 0.0, TIGHT_DEEP)  # met from 0 ...
    state = record(state, DEAL, 540.0, WIDE)  # ... to 540, then too wide ...
    state = record(state, DEAL, 600.0, TIGHT_DEEP)  # ... to 600
    assert state.observed_s == pytest.approx(600.0)
    assert state.share == pytest.approx(0.9)
    assert not breached(DEAL, state)  # exactly the required 90 %
    state = record(state, DEAL, 601.0, TIGHT_DEEP)
    state = record(state, DEAL, 700.0, WIDE)  # met 601..700
    state = record(state, DEAL, 1260.0, TIGHT_DEEP)  # too wide for 560 s: far below 90 %
    assert breached(DEAL, state)
    # Only the window's buckets are kept (ten minutes plus the current one).
    assert len(state.buckets) <= DEAL.window_s / BUCKET_S + 1


def test_no_breach_before_a_whole_window_was_observed() -> None:
    state = record(Compliance(), DEAL, 0.0, NOTHING)
    state = record(state, DEAL, 300.0, NOTHING)
    assert state.share == 0.0 and not breached(DEAL, state)
