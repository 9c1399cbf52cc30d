"""The pure portfolio core: aggregation, the group's skew, its tracker and its kill switches."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kasmm.core.portfolio import (
    BaseExposureLimit,
    GroupLimits,
    GroupSpec,
    GroupTracker,
    MemberSnapshot,
    aggregate,
    evaluate_group,
    member_skew,
    member_trip,
    restored_tracker,
    tracked,
)
from kasmm.core.risk import DailyLossLimit, DrawdownLimit, RiskState
from kasmm.core.skew import deviation, skew_bps

D = Decimal
HALF = GroupSpec("kas", target_share=0.5, target_base=None, min_share=0.1, max_share=0.9)


def member(
    name: str, base: str, quote: str, mid: str | None = "0.08", pnl: str = "0"
) -> MemberSnapshot:
    return MemberSnapshot(name, D(base), D(quote), None if mid is None else D(mid), D(pnl))


def test_aggregate_values_each_member_at_its_own_mid() -> None:
    agg = aggregate(
        HALF,
        [member("a", "1000", "50", "0.1", pnl="3"), member("b", "500", "20", "0.12", pnl="-1")],
    )
    assert agg.base == D(1500) and agg.quote == D(70)
    assert agg.value == D("100") + D("60") + D(70)
    assert agg.equity == agg.value and agg.pnl == D(2)
    assert agg.mark == D(160) / D(1500)
    assert agg.share == pytest.approx(160 / 230)
    # Target 0.5 of 230 at the group's mark: 115 quote worth of base.
    assert agg.target_base == D("0.5") * D(230) / agg.mark
    assert agg.excess_base == D(1500) - agg.target_base
    assert agg.deviation == pytest.approx(deviation(160 / 230, 0.5, 0.1, 0.9))
    assert (agg.members, agg.priced) == (2, 2)


def test_a_member_without_a_mid_is_valued_at_the_others_mean_mid() -> None:
    agg = aggregate(
        HALF,
        [
            member("a", "100", "0", "0.1"),
            member("b", "100", "0", "0.2"),
            member("c", "50", "0", None),
        ],
    )
    assert agg.value == D(10) + D(20) + D(50) * D("0.15")
    assert agg.priced == 2


def test_no_mid_at_all_measures_nothing() -> None:
    agg = aggregate(HALF, [member("a", "100", "5", None)])
    assert agg.value is None and agg.share is None and agg.excess_base is None
    assert agg.deviation == 0.0 and member_skew(agg) is None


def test_a_base_target_converts_to_a_share_at_the_mark() -> None:
    spec = GroupSpec("kas", target_share=None, target_base=D(1000))
    agg = aggregate(spec, [member("a", "1500", "100", "0.1")])
    assert agg.target_base == D(1000) and agg.excess_base == D(500)
    assert agg.target_share == pytest.approx(100 / 250)


def test_a_group_long_overall_makes_every_member_lean_to_sell() -> None:
    """Member b is short on its own (10 % base), but the group is long: b's skew follows the
    group, so both b's quotes move down (its ask gets hit more), as a's do."""
    a = member("a", "100000", "100", "0.1")  # ~99.9 % base
    b = member("b", "1000", "900", "0.1")  # 10 % base: short on its own
    own_b = deviation(100 / 1000, 0.5, 0.1, 0.9)
    assert own_b < 0  # alone, b would lean to buy
    skew = member_skew(aggregate(HALF, [a, b]))
    assert skew is not None
    assert skew.deviation > 0 and skew.excess_base > 0
    assert skew_bps(skew.deviation, 1.0, 20.0) < 0  # both quotes shift down: lean to sell


mids = st.decimals(min_value=D("0.001"), max_value=D("10"), places=6)
amounts = st.decimals(min_value=D(0), max_value=D("1000000"), places=2)


@given(st.lists(st.tuples(amounts, amounts, mids), min_size=1, max_size=6))
def test_aggregate_sums_and_share_are_consistent(
    rows: list[tuple[Decimal, Decimal, Decimal]],
) -> None:
    members = [member(f"m{i}", str(b), str(q), str(m)) for i, (b, q, m) in enumerate(rows)]
    agg = aggregate(HALF, members)
    assert agg.base == sum((b for b, _, _ in rows), D(0))
    assert agg.quote == sum((q for _, q, _ in rows), D(0))
    assert agg.value == sum((b * m + q for b, q, m in rows), D(0))
    assert -1.0 <= agg.deviation <= 1.0
    if agg.value is not None and agg.value > 0:
        assert agg.share is not None and 0.0 <= agg.share <= 1.0
        assert agg.target_base is not None and agg.mark is not None
        # The target base is worth the target share of the group's value at its mark.
        assert float(agg.target_base * agg.mark / agg.value) == pytest.approx(0.5)
        # Long (excess > 0) exactly when the share is above target.
        assert agg.excess_base is not None
        if agg.share > 0.5 + 1e-9:
            assert agg.excess_base > 0 and agg.deviation > 0
        elif agg.share < 0.5 - 1e-9:
            assert agg.excess_base < 0 and agg.deviation < 0
    # Order of members does not matter.
    again = aggregate(HALF, list(reversed(members)))
    assert again.value == agg.value and again.base == agg.base


def test_tracker_peak_rises_only_and_a_new_day_restarts_the_day() -> None:
    t = tracked(GroupTracker(), D(100), "2026-01-01")
    assert (t.peak_equity, t.day_start_equity) == (D(100), D(100))
    t = tracked(t, D(120), "2026-01-01")
    t = tracked(t, D(90), "2026-01-01")
    assert (t.peak_equity, t.day_start_equity) == (D(120), D(100))
    t = tracked(t, D(95), "2026-01-02")
    assert (t.peak_equity, t.day_key, t.day_start_equity) == (D(120), "2026-01-02", D(95))
    assert tracked(t, None, "2026-01-03") is t


def test_a_restored_tracker_keeps_its_day_start_for_today() -> None:
    t = tracked(restored_tracker(D(200), D(150)), D(140), "2026-01-01")
    assert (t.peak_equity, t.day_key, t.day_start_equity) == (D(200), "2026-01-01", D(150))


def spec_with(**limits: object) -> GroupSpec:
    return GroupSpec("kas", 0.5, None, limits=GroupLimits(**limits))  # type: ignore[arg-type]


def test_group_drawdown_halts_and_holds() -> None:
    spec = spec_with(max_drawdown=DrawdownLimit(action="halt", quote=D(50), pct=10.0))
    agg = aggregate(spec, [member("a", "1000", "400", "0.5")])  # value 900
    tracker = GroupTracker(peak_equity=D(1000))  # down 100 = 10 %: quote limit exceeded
    state, trips = evaluate_group(spec, RiskState(), agg, tracker, now=5.0)
    assert [(t.rule, t.action, t.detail) for t in trips] == [
        ("portfolio_max_drawdown", "halt", "quote")
    ]
    assert state.halt is not None and member_trip(state, 6.0) == state.halt
    # Held: no new trips however the group recovers.
    assert evaluate_group(spec, state, agg, GroupTracker(peak_equity=D(900)), 7.0) == (state, ())


def test_at_the_limit_nothing_trips() -> None:
    spec = spec_with(max_drawdown=DrawdownLimit(action="halt", quote=D(100)))
    agg = aggregate(spec, [member("a", "1000", "400", "0.5")])
    assert evaluate_group(spec, RiskState(), agg, GroupTracker(D(1000)), 1.0) == (RiskState(), ())


def test_daily_loss_pause_lasts_pause_s_then_ends() -> None:
    spec = spec_with(max_daily_loss=DailyLossLimit(action="pause", pause_s=30, quote=D(10)))
    agg = aggregate(spec, [member("a", "100", "0", "1")])  # value 100
    tracker = GroupTracker(D(120), "2026-01-01", D(120))  # lost 20 today
    state, trips = evaluate_group(spec, RiskState(), agg, tracker, 100.0)
    assert [t.rule for t in trips] == ["portfolio_max_daily_loss"]
    assert state.paused_until == 130.0 and trips[0].pause_s == 30
    assert member_trip(state, 129.0) is not None and member_trip(state, 130.0) is None
    # Still losing when the pause ends: it trips again.
    state2, trips2 = evaluate_group(spec, state, agg, tracker, 130.0)
    assert trips2 and state2.paused_until == 160.0
    # Within the pause nothing new is reported.
    assert evaluate_group(spec, state, agg, tracker, 110.0) == (state, ())


@pytest.mark.parametrize(
    ("limit", "detail", "value"),
    [
        (BaseExposureLimit(action="halt", base=D(1500)), "base", 2000.0),
        (BaseExposureLimit(action="halt", beyond_target=D(400)), "beyond_target", 500.0),
    ],
)
def test_base_exposure(limit: BaseExposureLimit, detail: str, value: float) -> None:
    spec = spec_with(max_base_exposure=limit)
    agg = aggregate(spec, [member("a", "2000", "1000", "1")])  # share 2/3, target 1500 base
    _, trips = evaluate_group(spec, RiskState(), agg, GroupTracker(), 1.0)
    assert [(t.rule, t.detail, t.value) for t in trips] == [
        ("portfolio_max_base_exposure", detail, value)
    ]


def test_nan_free_and_unmeasured_group_trips_nothing() -> None:
    spec = spec_with(max_drawdown=DrawdownLimit(action="halt", pct=1.0))
    agg = aggregate(spec, [member("a", "100", "0", None)])
    assert evaluate_group(spec, RiskState(), agg, GroupTracker(D(1)), 1.0)[1] == ()
    assert not math.isnan(agg.deviation)
