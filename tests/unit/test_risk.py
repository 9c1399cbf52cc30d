"""The risk gate: every rule trips exactly beyond its threshold, states and gating."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from kasmm.core.risk import (
    CountLimit,
    DailyLossLimit,
    DrawdownLimit,
    InventoryDeviationLimit,
    KillAction,
    Limit,
    MidJumpLimit,
    RiskInputs,
    RiskLimits,
    RiskState,
    StaleBookLimit,
    TradingState,
    Trip,
    _check,
    _far_below_pct,
    breaches,
    evaluate,
    gate,
    reset,
)
from kasmm.core.skew import Excess
from kasmm.core.types import OrderIntent, Quotes, Side

D = Decimal
#: The profile's default action of each rule (halt where not listed).
DEFAULT_ACTION: dict[str, KillAction] = {
    "max_inventory_deviation": "reduce_only",
    "stale_book": "pause",
    "mid_jump": "pause",
}
L = TypeVar("L", bound=Limit)


def rules(*, has_capital: bool = True, **kw: dict[str, Any]) -> RiskLimits:
    """Only the rules given, each from its fields (``action`` defaults as in a profile)."""

    def rule(name: str, kind: type[L]) -> L | None:
        spec = kw.pop(name, None)
        return (
            None if spec is None else kind(**{"action": DEFAULT_ACTION.get(name, "halt"), **spec})
        )

    limits = RiskLimits(
        max_drawdown=rule("max_drawdown", DrawdownLimit),
        max_daily_loss=rule("max_daily_loss", DailyLossLimit),
        max_inventory_deviation=rule("max_inventory_deviation", InventoryDeviationLimit),
        stale_book=rule("stale_book", StaleBookLimit),
        mid_jump=rule("mid_jump", MidJumpLimit),
        max_consecutive_errors=rule("max_consecutive_errors", CountLimit),
        max_order_actions_per_minute=rule("max_order_actions_per_minute", CountLimit),
        has_capital=has_capital,
    )
    assert not kw, f"unknown rules {sorted(kw)}"
    return limits


def excess(share: float, base: str | None = None) -> Excess:
    """An excess of ``share`` of portfolio value (base units of the same sign unless given)."""
    return Excess(D(repr(share * 1000)) if base is None else D(base), share)


def inputs(**kw: Any) -> RiskInputs:
    base: dict[str, Any] = {"now": 1000.0, "last_book_ts": 1000.0}
    base.update(kw)
    return RiskInputs(**base)


# (rule config, inputs below/at the limit, inputs just beyond it, rule name)
CASES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]] = [
    (
        {"max_drawdown": {"quote": 100}},
        {"equity": D(900), "peak_equity": D(1000)},
        {"equity": D("899.99"), "peak_equity": D(1000)},
        "max_drawdown",
    ),
    (
        {"max_drawdown": {"pct": 5}},
        {"equity": D(950), "peak_equity": D(1000)},
        {"equity": D("949.9"), "peak_equity": D(1000)},
        "max_drawdown",
    ),
    (
        {"max_daily_loss": {"quote": 50}},
        {"daily_pnl": D(-50)},
        {"daily_pnl": D("-50.01")},
        "max_daily_loss",
    ),
    (
        {"max_inventory_deviation": {"share": 0.25, "action": "halt"}},
        {"inventory_excess": excess(0.25)},
        {"inventory_excess": excess(0.2501)},
        "max_inventory_deviation",
    ),
    (
        {"stale_book": {"seconds": 10, "action": "halt"}},
        {"last_book_ts": 990.0},
        {"last_book_ts": 989.99},
        "stale_book",
    ),
    (
        {"mid_jump": {"pct": 2, "action": "halt"}},
        {"mid": D(102), "previous_mid": D(100)},
        {"mid": D("102.01"), "previous_mid": D(100)},
        "mid_jump",
    ),
    (
        {"max_consecutive_errors": {"count": 3}},
        {"consecutive_errors": 3},
        {"consecutive_errors": 4},
        "max_consecutive_errors",
    ),
    (
        {"max_order_actions_per_minute": {"count": 120}},
        {"actions_last_minute": 120},
        {"actions_last_minute": 121},
        "max_order_actions_per_minute",
    ),
]


@pytest.mark.parametrize(("cfg", "at", "beyond", "name"), CASES)
def test_each_rule_trips_beyond_its_limit_and_not_before(
    cfg: dict[str, Any], at: dict[str, Any], beyond: dict[str, Any], name: str
) -> None:
    assert breaches(rules(**cfg), inputs(**at)) == []
    tripped = breaches(rules(**cfg), inputs(**beyond))
    assert [t.rule for t in tripped] == [name]


@pytest.mark.parametrize(("cfg", "at", "beyond", "name"), CASES)
def test_a_halt_holds_until_reset(
    cfg: dict[str, Any], at: dict[str, Any], beyond: dict[str, Any], name: str
) -> None:
    key = next(iter(cfg))
    cfg = {key: {**cfg[key], "action": "halt"}}
    state, trips = evaluate(rules(**cfg), RiskState(), inputs(**beyond))
    assert [t.rule for t in trips] == [name]
    assert state.trading_state(1000.0) is TradingState.HALTED
    # Conditions clearing does not clear a halt; no repeated trips either.
    state2, trips2 = evaluate(rules(**cfg), state, inputs(**at))
    assert trips2 == () and state2.trading_state(2000.0) is TradingState.HALTED
    assert reset(state2).trading_state(2000.0) is TradingState.ACTIVE


def test_pause_lasts_pause_s_then_trips_again_if_still_breached() -> None:
    cfg = rules(stale_book={"seconds": 5, "action": "pause", "pause_s": 30})
    stale = inputs(now=100.0, last_book_ts=90.0)
    state, trips = evaluate(cfg, RiskState(), stale)
    assert len(trips) == 1 and state.trading_state(100.0) is TradingState.PAUSED
    # Still paused within pause_s; no new trip is reported.
    state, trips = evaluate(cfg, state, inputs(now=120.0, last_book_ts=90.0))
    assert trips == () and state.trading_state(120.0) is TradingState.PAUSED
    # At the end of the pause, a fresh book lets it resume...
    fresh, trips = evaluate(cfg, state, inputs(now=130.0, last_book_ts=129.0))
    assert trips == () and fresh.trading_state(130.0) is TradingState.ACTIVE
    # ...while a still-stale book pauses again.
    again, trips = evaluate(cfg, state, inputs(now=130.0, last_book_ts=90.0))
    assert len(trips) == 1 and again.trading_state(130.0) is TradingState.PAUSED


def test_reduce_only_lasts_while_its_condition_holds() -> None:
    cfg = rules(max_inventory_deviation={"share": 0.2})
    state, trips = evaluate(cfg, RiskState(), inputs(inventory_excess=excess(0.3)))
    assert len(trips) == 1 and state.trading_state(1000.0) is TradingState.REDUCE_ONLY
    state, trips = evaluate(cfg, state, inputs(inventory_excess=excess(0.25)))
    assert trips == () and state.trading_state(1000.0) is TradingState.REDUCE_ONLY
    state, trips = evaluate(cfg, state, inputs(inventory_excess=excess(0.1)))
    assert trips == () and state.trading_state(1000.0) is TradingState.ACTIVE


def test_strongest_action_wins() -> None:
    cfg = rules(
        max_inventory_deviation={"share": 0.1},
        max_drawdown={"quote": 1, "action": "halt"},
    )
    state, trips = evaluate(
        cfg,
        RiskState(),
        inputs(inventory_excess=excess(0.4), equity=D(10), peak_equity=D(20)),
    )
    assert [t.rule for t in trips] == ["max_drawdown"]
    assert state.trading_state(1000.0) is TradingState.HALTED


def test_crossed_book_trips_mid_jump_and_unknown_book_is_stale() -> None:
    cfg = rules(mid_jump={"pct": 50}, stale_book={"seconds": 1, "action": "halt"})
    tripped = breaches(cfg, inputs(book_crossed=True))
    assert [t.rule for t in tripped] == ["mid_jump"]
    tripped = breaches(cfg, inputs(last_book_ts=None))
    assert [t.rule for t in tripped] == ["stale_book"] and math.isinf(tripped[0].value)


def test_nan_values_never_trip_and_never_crash() -> None:
    cfg = rules(max_inventory_deviation={"share": 0.1})
    assert breaches(cfg, inputs(inventory_excess=excess(math.nan, "1"))) == []


QUOTES = Quotes(
    bids=(OrderIntent(Side.BUY, D("0.99"), D(1)),),
    asks=(OrderIntent(Side.SELL, D("1.01"), D(1)),),
)


@pytest.mark.parametrize(
    ("state", "inv_excess", "bids", "asks"),
    [
        (TradingState.ACTIVE, excess(0.3), 1, 1),
        (TradingState.REDUCE_ONLY, excess(0.3), 0, 1),  # long: only sell
        (TradingState.REDUCE_ONLY, excess(-0.3), 1, 0),  # short: only buy
        (TradingState.REDUCE_ONLY, excess(0.0), 0, 0),  # on target: nothing to reduce
        # The side comes from the exact base excess, also where no share can be taken (as2008).
        (TradingState.REDUCE_ONLY, Excess(D(5), None), 0, 1),
        (TradingState.REDUCE_ONLY, None, 0, 0),
        (TradingState.PAUSED, excess(0.3), 0, 0),
        (TradingState.HALTED, excess(0.3), 0, 0),
    ],
)
def test_gate(state: TradingState, inv_excess: Excess | None, bids: int, asks: int) -> None:
    out = gate(QUOTES, state, inv_excess)
    assert (len(out.bids), len(out.asks)) == (bids, asks)


LADDER = Quotes(
    bids=tuple(OrderIntent(Side.BUY, D("0.99") - D("0.01") * i, D(2), level=i) for i in range(3)),
    asks=tuple(OrderIntent(Side.SELL, D("1.01") + D("0.01") * i, D(2), level=i) for i in range(3)),
)


@pytest.mark.parametrize(
    ("base_excess", "levels"),
    [("0.5", 1), ("2", 1), ("2.01", 2), ("3.9", 2), ("4", 2), ("100", 3)],
)
def test_reduce_only_quotes_only_the_levels_that_cover_the_excess(
    base_excess: str, levels: int
) -> None:
    long = gate(LADDER, TradingState.REDUCE_ONLY, Excess(D(base_excess), 0.3))
    assert long.bids == () and long.asks == LADDER.asks[:levels]
    short = gate(LADDER, TradingState.REDUCE_ONLY, Excess(-D(base_excess), -0.3))
    assert short.asks == () and short.bids == LADDER.bids[:levels]


def test_inventory_deviation_needs_a_share_and_capital() -> None:
    cfg = rules(max_inventory_deviation={"share": 0.1})
    assert breaches(cfg, inputs(inventory_excess=Excess(D(5), None))) == []  # worthless portfolio
    no_capital = rules(max_inventory_deviation={"share": 0.1}, has_capital=False)
    assert breaches(no_capital, inputs(inventory_excess=excess(0.5))) == []
    assert [t.value for t in breaches(cfg, inputs(inventory_excess=excess(-0.5)))] == [0.5]


def test_pct_drawdown_needs_capital_but_quote_drawdown_does_not() -> None:
    cfg = rules(max_drawdown={"pct": 10, "quote": 5}, has_capital=False)
    flat_start = inputs(equity=D("0.5"), peak_equity=D("3"))
    assert breaches(cfg, flat_start) == []  # 83 % of a 3-unit peak is not a 10 % loss of capital
    assert [t.detail for t in breaches(cfg, inputs(equity=D(0), peak_equity=D(6)))] == ["quote"]
    with_capital = rules(max_drawdown={"pct": 10, "quote": 5})
    assert [t.detail for t in breaches(with_capital, flat_start)] == ["pct"]


def _breaches_converting_everything(rules: RiskLimits, inputs: RiskInputs) -> list[Trip]:
    """The readable definition :func:`breaches` keeps: every ``Decimal`` figure of the money
    rules converted to a float and compared by :func:`_check`."""
    now, out = inputs.now, []
    dd = rules.max_drawdown
    if dd is not None and inputs.equity is not None and inputs.peak_equity is not None:
        drop = inputs.peak_equity - inputs.equity
        if dd.quote is not None:
            out.append(_check(dd, "max_drawdown", float(drop), float(dd.quote), now, "quote"))
        if dd.pct is not None and rules.has_capital and inputs.peak_equity > 0:
            pct = float(drop / inputs.peak_equity * 100)
            out.append(_check(dd, "max_drawdown", pct, dd.pct, now, "pct"))
    loss = rules.max_daily_loss
    if loss is not None and inputs.daily_pnl is not None:
        out.append(_check(loss, "max_daily_loss", float(-inputs.daily_pnl), float(loss.quote), now))
    jump = rules.mid_jump
    if jump is not None and inputs.mid is not None and inputs.previous_mid:
        moved = float(abs(inputs.mid / inputs.previous_mid - 1) * 100)
        out.append(_check(jump, "mid_jump", moved, jump.pct, now))
    return [t for t in out if t is not None]


def _near(limit: Decimal, rng: random.Random) -> Decimal:
    """A figure on, just around, or far from ``limit`` (28 digits: the context's precision)."""
    kind = rng.randrange(8)
    if kind == 0:
        return limit
    if kind == 1:
        return limit.next_plus() if rng.random() < 0.5 else limit.next_minus()
    if kind == 2:  # a float's exact value, or a neighbour: what rounds onto the limit
        f = float(limit) + rng.choice((-1, 0, 1)) * math.ulp(float(limit))
        return D(f)
    if kind == 3:
        return limit * (1 + D(rng.uniform(-1e-15, 1e-15)))
    if kind == 4:
        return D(rng.choice(("NaN", "Infinity", "-Infinity", "0", "-0")))
    if kind == 5:
        return limit * D(rng.uniform(-2, 2))
    # Far below the limit (a tick's move, a small drawdown: what skips the division), and
    # around a half and a twentieth of it, where that shortcut stops.
    if kind == 6:
        return limit * D(rng.uniform(-1, 1)) / D(10) ** rng.randrange(1, 8)
    near = limit / rng.choice((2, 20))
    return near * (1 + D(rng.uniform(-1e-3, 1e-3)) * rng.choice((1, D("1e-12"))))


def test_money_rules_trip_as_when_every_figure_is_converted() -> None:
    """breaches() skips the float conversion of a figure within its limit: the trips (values
    included) are the same as converting every one, on figures on and around each limit."""
    rng = random.Random(11)
    for _ in range(3000):
        quote, pct, jump = (
            D(rng.choice(("100", "0.1", "200.05", "7"))),
            rng.choice((10.0, 0.1, 3.0, 2.5, 1e-9)),
            rng.choice((3.0, 2.0, 0.1, 33.3)),
        )
        cfg = rules(
            max_drawdown={"quote": quote, "pct": pct},
            max_daily_loss={"quote": quote},
            mid_jump={"pct": jump},
        )
        peak = D(rng.choice(("1000", "4000.123456", "0.5")))
        drop = _near(quote, rng) if rng.random() < 0.5 else _near(D(pct) * peak / 100, rng)
        mid = D("0.08")
        moved = _near(D(jump), rng)
        figures = inputs(
            equity=peak - drop if drop.is_finite() else peak,
            peak_equity=peak,
            daily_pnl=-_near(quote, rng),
            mid=mid * (1 + moved / 100) if moved.is_finite() else mid,
            previous_mid=mid,
        )
        expected = _breaches_converting_everything(cfg, figures)
        got = [t for t in breaches(cfg, figures) if t.rule != "stale_book"]
        assert got == expected


def test_far_below_pct_only_says_so_of_a_percentage_within_half_the_limit() -> None:
    """The exponent shortcut breaches() takes before dividing: whenever it answers, both
    percentages the rules compute (a drawdown's ``part / whole * 100``, a mid jump's
    ``abs(mid / previous - 1) * 100``) are exactly within the limit, and it answers for
    small moves."""
    rng = random.Random(5)
    answered = 0
    for _ in range(5000):
        whole = D(rng.choice(("0.08", "0.080088", "8032.16501349", "1", "99.99", "-0.5")))
        part = whole * D(rng.uniform(-1, 1)) / D(10) ** rng.randrange(0, 9)
        pct = rng.choice((10.0, 3.0, 0.1, 33.3, 1e-9, 100.0))
        if _far_below_pct(part, whole, pct):
            answered += 1
            assert abs(part / whole * 100) < D(pct) / 2
            assert abs((whole + part) / whole - 1) * 100 <= D(pct)
    assert answered > 1000
    for part, whole in ((D(0), D(1)), (D("NaN"), D(1)), (D(1), D("Infinity")), (D(1), D(0))):
        assert not _far_below_pct(part, whole, 3.0)
    assert not _far_below_pct(D("1e-9"), D(1), math.nan)
    assert not _far_below_pct(D("1e-9"), D(1), -3.0)
