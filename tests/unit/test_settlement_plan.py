"""The settlement plan (kasmm.core.settlement): a table row per rule and reason, then the
invariants as properties over random balances, needs, bands, limits and gates."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kasmm.core.settlement import (
    AssetBand,
    AssetPlan,
    Gates,
    Hold,
    PlanInputs,
    Sweep,
    TopUp,
    WithdrawTerms,
    describe,
    plan_settlement,
)
from kasmm.core.settlement_need import AssetNeeds
from kasmm.core.types import Balance, Balances

BAND = AssetBand(
    keep_at_least=D(1000),
    keep_at_most=D(5000),
    min_sweep=D(100),
    max_sweep=D(3000),
    max_per_day=D(4000),
)
NO_GATES = Gates()
TERMS = WithdrawTerms(enabled=True, step=D(1), min_amount=D(10), fee=D(5))


def _plan_kas(
    free: D,
    locked: D = D(0),
    need: D = D(0),
    band: AssetBand = BAND,
    terms: WithdrawTerms | None = TERMS,
    swept_today: D = D(0),
    gates: Gates = NO_GATES,
) -> AssetPlan:
    inputs = PlanInputs(
        balances=Balances({"KAS": Balance(free, locked)}),
        needs=AssetNeeds({"KAS": need}),
        bands={"KAS": band},
        terms={} if terms is None else {"KAS": terms},
        swept_today={"KAS": swept_today},
        gates=gates,
    )
    (plan,) = plan_settlement(inputs).assets
    return plan


# case -> (plan arguments, expected action)
CASES: dict[str, tuple[dict[str, object], Sweep | TopUp | Hold]] = {
    # --- within the band and below it
    "in band: nothing moves": ({"free": D(3000)}, Hold("within_band")),
    "at the ceiling exactly: nothing moves": ({"free": D(5000)}, Hold("within_band")),
    "at the floor exactly: nothing moves": ({"free": D(1000)}, Hold("within_band")),
    "below keep_at_least: top up to it": ({"free": D(400)}, TopUp(D(600), "below_band")),
    "below the profiles' need: top up to the need": (
        {"free": D(1500), "need": D(2000)},
        TopUp(D(500), "below_need"),
    ),
    "top-up rounds up to the step": (
        {"free": D("399.5")},
        TopUp(D(601), "below_band"),
    ),
    "top-up without terms is exact": (
        {"free": D("399.5"), "terms": None},
        TopUp(D("600.5"), "below_band"),
    ),
    "top-up is printed while gated": (
        {"free": D(400), "gates": Gates(halted_profiles=("p",))},
        TopUp(D(600), "below_band"),
    ),
    "no ceiling: never swept": (
        {"free": D(10**9), "band": replace(BAND, keep_at_most=None)},
        Hold("no_ceiling"),
    ),
    # --- what counts
    "locked counts toward the band": ({"free": D(1000), "locked": D(3000)}, Hold("within_band")),
    "locked counts toward the floor: no top-up": (
        {"free": D(0), "locked": D(1000)},
        Hold("within_band"),
    ),
    # --- sweeps and their caps
    "above the ceiling: sweep down to it, less the fee": (
        {"free": D(6000)},
        Sweep(D(995), D(5), ("excess",)),
    ),
    "per-sweep limit": ({"free": D(9000)}, Sweep(D(3000), D(5), ("per_sweep",))),
    "per-day limit less what was swept today": (
        {"free": D(9000), "swept_today": D(2000)},
        Sweep(D(2000), D(5), ("per_day",)),
    ),
    "free balance limits (the rest rests in orders)": (
        {"free": D(505), "locked": D(5500)},
        Sweep(D(500), D(5), ("free_balance",)),
    ),
    "amount floored to the withdrawal step": (
        {"free": D("6000.9")},
        Sweep(D(995), D(5), ("excess",)),
    ),
    "two caps binding at once are both named": (
        {"free": D(8005), "band": replace(BAND, max_per_day=D(3000))},
        Sweep(D(3000), D(5), ("excess", "per_sweep", "per_day")),
    ),
    "a need above keep_at_most raises the ceiling": (
        {"free": D(7000), "need": D(6000)},
        Sweep(D(995), D(5), ("excess",)),
    ),
    # --- too little to sweep
    "excess below min_sweep": ({"free": D(5050)}, Hold("below_minimum", D(50))),
    "excess below the exchange's minimum": (
        {
            "free": D(5050),
            "band": replace(BAND, min_sweep=D(0)),
            "terms": replace(TERMS, min_amount=D(60)),
        },
        Hold("below_minimum", D(50)),
    ),
    "excess smaller than the fee": (
        {"free": D(5004), "band": replace(BAND, min_sweep=D(0))},
        Hold("below_minimum", D(4)),
    ),
    "today's limit leaves less than the minimum": (
        {"free": D(9000), "swept_today": D(3950)},
        Hold("daily_limit_reached", D(4000)),
    ),
    "today's limit already passed": (
        {"free": D(9000), "swept_today": D(5000)},
        Hold("daily_limit_reached", D(4000)),
    ),
    "too little free": ({"free": D(50), "locked": D(6000)}, Hold("free_balance_low", D(1050))),
    # --- gates, in their order
    "not sweepable (USDT to a Kaspa wallet)": (
        {"free": D(9000), "band": replace(BAND, sweepable=False), "gates": Gates(("p",))},
        Hold("not_sweepable", D(4000)),
    ),
    "a halted profile holds every sweep": (
        {"free": D(9000), "gates": Gates(halted_profiles=("p",), stale_feeds=("f",))},
        Hold("profile_halted", D(4000)),
    ),
    "a stale feed holds every sweep": (
        {"free": D(9000), "gates": Gates(stale_feeds=("mexc KAS/USDT",))},
        Hold("feed_stale", D(4000)),
    ),
    "a pending sweep of the asset holds the next": (
        {"free": D(9000), "gates": Gates(pending=frozenset({"KAS"}))},
        Hold("sweep_pending", D(4000)),
    ),
    "a pending sweep of another asset does not": (
        {"free": D(6000), "gates": Gates(pending=frozenset({"USDT"}))},
        Sweep(D(995), D(5), ("excess",)),
    ),
    "unknown withdrawal terms": (
        {"free": D(9000), "terms": None},
        Hold("no_withdraw_terms", D(4000)),
    ),
    "withdrawals suspended": (
        {"free": D(9000), "terms": replace(TERMS, enabled=False)},
        Hold("withdrawals_suspended", D(4000)),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rule(case: str) -> None:
    kwargs, expected = CASES[case]
    plan = _plan_kas(**kwargs)  # type: ignore[arg-type]
    assert plan.action == expected
    assert describe(plan).startswith("KAS: holds ")


def test_floor_ceiling_and_counts_are_reported() -> None:
    plan = _plan_kas(free=D(6000), locked=D(10), need=D(1200))
    assert (plan.counted, plan.free, plan.need) == (D(6010), D(6000), D(1200))
    assert (plan.floor, plan.ceiling) == (D(1200), D(5000))


def test_assets_without_a_band_are_not_planned_and_order_is_stable() -> None:
    inputs = PlanInputs(
        balances=Balances({"KAS": Balance(D(9000)), "USDT": Balance(D(10)), "BTC": Balance(D(1))}),
        needs=AssetNeeds({"USDT": D(500)}),
        bands={"USDT": AssetBand(keep_at_least=D(100), sweepable=False), "KAS": BAND},
        terms={"KAS": TERMS},
    )
    plan = plan_settlement(inputs)
    assert [p.asset for p in plan.assets] == ["KAS", "USDT"]
    assert plan.sweeps == {"KAS": Sweep(D(3000), D(5), ("per_sweep",))}
    assert plan.top_ups == {"USDT": TopUp(D(490), "below_need")}


@pytest.mark.parametrize("step", [D(0), D(-1), D("NaN")])
def test_broken_step_is_refused(step: D) -> None:
    with pytest.raises(ValueError, match="step of KAS"):
        _plan_kas(free=D(6000), terms=replace(TERMS, step=step))


@pytest.mark.parametrize(
    ("action", "text"),
    [
        (Sweep(D(995), D(5), ("excess",)), "sweep 995 (fee 5; limited by excess)"),
        (TopUp(D(600), "below_band"), "top up 600 (below the band)"),
        (TopUp(D(600), "below_need"), "top up 600 (the profiles need more)"),
        (Hold("feed_stale", D(1)), "nothing moves (above the band, held: a market feed is stale)"),
    ],
)
def test_describe(action: Sweep | TopUp | Hold, text: str) -> None:
    plan = AssetPlan("KAS", D(6000), D(6000), D(0), D(1000), D(5000), action)
    assert describe(plan) == f"KAS: holds 6000 (floor 1000, ceiling 5000): {text}"


# --- invariants ---------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False)
optional = st.none() | amounts


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[PlanInputs, AssetBand, WithdrawTerms | None]:
    low = draw(amounts)
    band = AssetBand(
        keep_at_least=low,
        keep_at_most=draw(st.none() | st.decimals(min_value=low, max_value=2 * 10**7, places=2)),
        min_sweep=draw(amounts),
        max_sweep=draw(optional),
        max_per_day=draw(optional),
        sweepable=draw(st.booleans()),
    )
    terms = draw(
        st.none()
        | st.builds(
            WithdrawTerms,
            enabled=st.booleans(),
            step=st.sampled_from([D("0.00000001"), D("0.01"), D(1), D(10)]),
            min_amount=amounts,
            fee=st.decimals(min_value=0, max_value=100, places=2),
        )
    )
    names = st.tuples() | st.tuples(st.just("p"))
    gates = Gates(
        halted_profiles=draw(names),
        stale_feeds=draw(names),
        pending=draw(st.sampled_from([frozenset(), frozenset({"KAS"})])),
    )
    inputs = PlanInputs(
        balances=Balances({"KAS": Balance(draw(amounts), draw(amounts))}),
        needs=AssetNeeds({"KAS": draw(amounts)}),
        bands={"KAS": band},
        terms={} if terms is None else {"KAS": terms},
        swept_today={"KAS": draw(amounts)},
        gates=gates,
    )
    return inputs, band, terms


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_invariants(scenario: tuple[PlanInputs, AssetBand, WithdrawTerms | None]) -> None:
    inputs, band, terms = scenario
    (plan,) = plan_settlement(inputs).assets
    need = inputs.needs.of("KAS")
    counted = inputs.balances.total("KAS")
    floor = max(band.keep_at_least, need)
    action = plan.action
    assert plan.floor == floor
    if isinstance(action, Sweep):
        assert terms is not None and terms.enabled and band.sweepable
        gates = inputs.gates
        assert not gates.halted_profiles and not gates.stale_feeds and not gates.pending
        # never below max(band minimum, what the profiles need), fee included
        assert counted - action.amount - action.fee >= floor
        # never more than is free
        assert action.amount + action.fee <= inputs.balances.free("KAS")
        # never above a limit; nothing below the minimum
        assert band.max_sweep is None or action.amount <= band.max_sweep
        if band.max_per_day is not None:
            assert inputs.swept_today["KAS"] + action.amount <= band.max_per_day
        assert action.amount > 0
        assert action.amount >= band.min_sweep and action.amount >= terms.min_amount
        assert action.amount % terms.step == 0
        # a sweep only above the ceiling: never together with a top-up's condition
        assert plan.ceiling is not None and counted > plan.ceiling >= floor
    elif isinstance(action, TopUp):
        assert counted < floor and action.amount >= floor - counted
    else:
        assert counted >= floor
