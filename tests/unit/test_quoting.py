"""Table-driven tests of the quoting pipeline's stages and of compute_quotes end to end."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from types import MappingProxyType

import pytest

from kasmm.core.params import QuotingParams, VolatilityParams
from kasmm.core.quoting import (
    MarketState,
    QuoteDecision,
    as_reservation,
    as_spread,
    compute_quotes,
    fixed_spread_bps,
    ladder,
    market_mid,
    size_ladder,
)
from kasmm.core.skew import Budget
from kasmm.core.types import (
    Balance,
    Balances,
    Book,
    BookLevel,
    MarketRules,
    Side,
)

D = Decimal
NAN = float("nan")
INF = float("inf")


def make_rules(tick: str = "0.01", lot: str = "0.01", **kw: str) -> MarketRules:
    extra = {k: D(v) for k, v in kw.items()}
    return MarketRules("ASSET/CASH", "ASSET", "CASH", tick=D(tick), lot=D(lot), **extra)


def make_book(bid: str | None = "99", ask: str | None = "101") -> Book:
    bids = (BookLevel(D(bid), D(10)),) if bid is not None else ()
    asks = (BookLevel(D(ask), D(10)),) if ask is not None else ()
    return Book(bids=bids, asks=asks, ts=0.0)


def make_balances(base: str = "5", quote: str = "500") -> Balances:
    return Balances(MappingProxyType({"ASSET": Balance(D(base)), "CASH": Balance(D(quote))}))


def make_state(
    *,
    bid: str | None = "99",
    ask: str | None = "101",
    base: str = "5",
    quote: str = "500",
    sigma: float | None = None,
    time_left_s: float = 1.0,
    rules: MarketRules | None = None,
) -> MarketState:
    return MarketState(
        now=0.0,
        book=make_book(bid, ask),
        rules=rules or make_rules(),
        balances=make_balances(base, quote),
        sigma=sigma,
        time_left_s=time_left_s,
    )


def fixed(**kw: object) -> QuotingParams:
    defaults: dict[str, object] = {"strategy": "fixed_spread", "spread_bps": 20.0, "size": D(1)}
    return QuotingParams(**{**defaults, **kw})  # type: ignore[arg-type]


def exact_as(**kw: object) -> QuotingParams:
    """The paper's setting: no caps, no balance checks, no guard, target 0, size 1."""
    defaults: dict[str, object] = {
        "strategy": "avellaneda_stoikov",
        "spread_bps": 10.0,
        "size": D(1),
        "gamma": 0.1,
        "kappa": 1.5,
        "sigma": 2.0,
        "target_share": None,
        "target_base": D(0),
        "min_share": None,
        "max_share": None,
        "balances_known": False,
        "post_only_guard": False,
        "enforce_min_notional": False,
        "allow_locked_book": True,
    }
    return QuotingParams(**{**defaults, **kw})  # type: ignore[arg-type]


def prices(decision: QuoteDecision, side: Side) -> list[Decimal]:
    return [q.price for q in decision.quotes.side(side)]


def sizes(decision: QuoteDecision, side: Side) -> list[Decimal]:
    return [q.size for q in decision.quotes.side(side)]


# --- mid ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bid", "ask", "mid", "reason"),
    [
        ("99", "101", D(100), "ok"),
        (None, "101", None, "no_mid"),
        ("99", None, None, "no_mid"),
        (None, None, None, "no_mid"),
        ("101", "99", None, "crossed_book"),
        ("100", "100", None, "crossed_book"),  # locked counts as crossed
        ("NaN", "101", None, "bad_book"),
        ("99", "Infinity", None, "bad_book"),
        ("0", "101", None, "bad_book"),
        ("-1", "101", None, "bad_book"),
    ],
)
def test_market_mid(bid: str | None, ask: str | None, mid: Decimal | None, reason: str) -> None:
    assert market_mid(make_book(bid, ask)) == (mid, reason)


def test_locked_book_is_a_mid_only_when_allowed() -> None:
    book = make_book("100", "100")
    assert market_mid(book) == (None, "crossed_book")
    assert market_mid(book, allow_locked=True) == (Decimal("100"), "ok")
    assert market_mid(make_book("101", "100"), allow_locked=True) == (None, "crossed_book")


def test_a_locked_book_is_quoted_from_only_with_the_capability() -> None:
    # The capability is its own: switching off the post-only guard does not allow it.
    locked = make_state(bid="100", ask="100")
    assert compute_quotes(fixed(post_only_guard=False), locked).reason == "crossed_book"
    decision = compute_quotes(fixed(post_only_guard=False, allow_locked_book=True), locked)
    assert (decision.reason, decision.mid) == ("ok", D(100))


@pytest.mark.parametrize(
    ("bid", "ask", "reason"),
    [(None, "101", "no_mid"), ("101", "99", "crossed_book"), ("NaN", "101", "bad_book")],
)
def test_compute_quotes_without_usable_mid_quotes_nothing(
    bid: str | None, ask: str | None, reason: str
) -> None:
    decision = compute_quotes(fixed(), make_state(bid=bid, ask=ask))
    assert decision.quotes.all == ()
    assert decision.reason == reason


# --- spread -------------------------------------------------------------------------------

VOL = VolatilityParams(halflife_s=60, horizon_s=9.0, multiplier=1.0, cap_bps=50.0)


@pytest.mark.parametrize(
    ("mode_bps", "sigma_bps", "vol", "expected"),
    [
        (10.0, 2.0, None, 10.0),  # not adaptive
        (10.0, None, VOL, 10.0),  # no estimate yet: the floor
        (10.0, 2.0, VOL, 16.0),  # 10 + 1 * 2 * sqrt(9)
        (10.0, 0.0, VOL, 10.0),
        (10.0, 2.0, dataclasses.replace(VOL, multiplier=2.5), 25.0),
        (10.0, 20.0, VOL, 50.0),  # capped
        (10.0, 2.0, dataclasses.replace(VOL, cap_bps=5.0), 10.0),  # floor wins over a low cap
        (10.0, 2.0, dataclasses.replace(VOL, multiplier=0.0), 10.0),
    ],
)
def test_fixed_spread_bps(
    mode_bps: float, sigma_bps: float | None, vol: VolatilityParams | None, expected: float
) -> None:
    assert fixed_spread_bps(mode_bps, sigma_bps, vol) == pytest.approx(expected)


def test_volatility_widens_spread_in_compute_quotes() -> None:
    # sigma 0.02 price/sqrt(s) at mid 100 is 2 bps; 20 + 2 * sqrt(9) = 26 bps -> half 0.13.
    decision = compute_quotes(fixed(volatility=VOL), make_state(sigma=0.02))
    assert decision.spread_bps == pytest.approx(26.0)
    assert prices(decision, Side.BUY) == [D("99.87")]
    assert prices(decision, Side.SELL) == [D("100.13")]


# --- Avellaneda–Stoikov -------------------------------------------------------------------

# s=100, sigma=2, gamma=0.1, kappa=1.5: delta = gamma*sigma^2*tau + (2/gamma)*ln(1+gamma/kappa)
# = 0.4*tau + 20*ln(16/15) = 0.4*tau + 1.2907704227514240...
AS_LN_TERM = 20 * math.log(16 / 15)


@pytest.mark.parametrize(
    ("q", "tau", "r"),
    [
        (0.0, 1.0, 100.0),
        (3.0, 1.0, 98.8),  # 100 - 3 * 0.1 * 4 * 1
        (-2.0, 1.0, 100.8),  # 100 + 2 * 0.4
        (3.0, 0.5, 99.4),
        (3.0, 0.0, 100.0),  # at T the reservation price is the mid
    ],
)
def test_as_reservation(q: float, tau: float, r: float) -> None:
    assert as_reservation(100.0, q, 0.1, 2.0, tau) == pytest.approx(r, abs=1e-12)


@pytest.mark.parametrize(
    ("tau", "delta"),
    [(1.0, 1.6907704227514240), (0.0, 1.2907704227514240), (2.5, 2.2907704227514240)],
)
def test_as_spread(tau: float, delta: float) -> None:
    assert as_spread(0.1, 2.0, tau, 1.5) == pytest.approx(delta, abs=1e-12)
    assert as_spread(0.1, 2.0, tau, 1.5) == pytest.approx(0.4 * tau + AS_LN_TERM, abs=1e-12)


@pytest.mark.parametrize(
    ("base", "r", "bid", "ask"),
    [
        ("3", 98.8, 97.954614788624288, 99.645385211375712),
        ("0", 100.0, 99.154614788624288, 100.845385211375712),
        ("-2", 100.8, 99.954614788624288, 101.645385211375712),
    ],
)
def test_as_quotes_match_hand_computed(base: str, r: float, bid: float, ask: float) -> None:
    # Tick 1e-12 so that rounding does not hide a formula error at the 1e-9 level; the book is
    # far away on purpose: the exact model has no post-only guard.
    state = make_state(
        bid="99.99",
        ask="100.01",
        base=base,
        quote="-50",
        time_left_s=1.0,
        rules=make_rules(tick="1e-12", lot="1", min_notional="1000"),
    )
    decision = compute_quotes(exact_as(), state)
    assert decision.reason == "ok"
    assert decision.reference == pytest.approx(r, abs=1e-9)
    assert float(prices(decision, Side.BUY)[0]) == pytest.approx(bid, abs=1e-9)
    assert float(prices(decision, Side.SELL)[0]) == pytest.approx(ask, abs=1e-9)
    assert sizes(decision, Side.BUY) == sizes(decision, Side.SELL) == [D(1)]
    assert decision.spread_bps == pytest.approx(1.6907704227514240 / 100 * 1e4)
    assert decision.skew_bps == pytest.approx((r - 100) / 100 * 1e4)


def test_as_uses_estimated_sigma_when_not_fixed_and_waits_without_one() -> None:
    params = exact_as(sigma=None)
    waiting = compute_quotes(params, make_state(base="3", sigma=None))
    assert (waiting.quotes.all, waiting.reason) == ((), "no_sigma")
    estimated = compute_quotes(params, make_state(base="3", sigma=2.0))
    assert estimated.reference == pytest.approx(98.8)


def test_as_fixed_sigma_wins_over_estimate() -> None:
    decision = compute_quotes(exact_as(sigma=2.0), make_state(base="3", sigma=50.0))
    assert decision.reference == pytest.approx(98.8)


@pytest.mark.parametrize(
    ("min_spread_bps", "vol", "expected_bps"),
    [
        (0.0, None, 169.07704227514240),  # the model's spread as is
        (500.0, None, 500.0),  # floored
        (100.0, None, 169.07704227514240),  # floor below the model: no effect
        (0.0, VolatilityParams(60, 100.0, 50.0, 300.0), 300.0),  # vol floor 0+50*2*10 capped
    ],
)
def test_as_spread_floors(
    min_spread_bps: float, vol: VolatilityParams | None, expected_bps: float
) -> None:
    params = exact_as(min_spread_bps=min_spread_bps, volatility=vol)
    decision = compute_quotes(params, make_state(base="0", sigma=0.02, time_left_s=1.0))
    assert decision.spread_bps == pytest.approx(expected_bps)


def test_as_q_uses_target_share_and_quote_sizes() -> None:
    # target_share 0.5 of (10*100 + 0) = 5 base; size 200 quote at mid 100 = 2 base; q = 2.5.
    params = exact_as(target_base=None, target_share=0.5, size=D(200), size_unit="quote")
    decision = compute_quotes(params, make_state(base="10", quote="0", time_left_s=1.0))
    assert decision.reference == pytest.approx(100 - 2.5 * 0.1 * 4)


def test_as_non_positive_reservation_quotes_nothing() -> None:
    decision = compute_quotes(exact_as(), make_state(base="1000", time_left_s=1.0))
    assert (decision.quotes.all, decision.reason) == ((), "bad_reference")


# --- levels, rounding, post-only guard ----------------------------------------------------


@pytest.mark.parametrize(
    ("side", "centre", "half", "step", "levels", "expected"),
    [
        (Side.BUY, "100", "0.1", "0.05", 3, ["99.9", "99.85", "99.8"]),
        (Side.SELL, "100", "0.1", "0.05", 3, ["100.1", "100.15", "100.2"]),
        (Side.SELL, "100", "0.1", "0", 2, ["100.1", "100.1"]),
        (Side.BUY, "50", "1", "1", 1, ["49"]),
    ],
)
def test_ladder(
    side: Side, centre: str, half: str, step: str, levels: int, expected: list[str]
) -> None:
    assert ladder(side, D(centre), D(half), D(step), levels) == tuple(D(x) for x in expected)


def test_levels_step_out_by_level_step_bps() -> None:
    decision = compute_quotes(fixed(levels=3, level_step_bps=5.0), make_state())
    assert prices(decision, Side.BUY) == [D("99.90"), D("99.85"), D("99.80")]
    assert prices(decision, Side.SELL) == [D("100.10"), D("100.15"), D("100.20")]
    assert [q.level for q in decision.quotes.bids] == [0, 1, 2]


def test_levels_that_round_together_are_pushed_one_tick_apart() -> None:
    decision = compute_quotes(fixed(levels=3, level_step_bps=0.0), make_state())
    assert prices(decision, Side.BUY) == [D("99.90"), D("99.89"), D("99.88")]
    assert prices(decision, Side.SELL) == [D("100.10"), D("100.11"), D("100.12")]


def test_rounding_direction_bids_down_asks_up() -> None:
    # mid 100.005, 10 bps: raw bid 99.9549975 -> 99.95, raw ask 100.0550025 -> 100.06.
    decision = compute_quotes(fixed(spread_bps=10.0), make_state(bid="100.00", ask="100.01"))
    assert prices(decision, Side.BUY) == [D("99.95")]
    assert prices(decision, Side.SELL) == [D("100.06")]


def test_prices_on_exact_ticks_are_not_moved() -> None:
    decision = compute_quotes(fixed(spread_bps=20.0), make_state())
    assert prices(decision, Side.BUY) == [D("99.90")]
    assert prices(decision, Side.SELL) == [D("100.10")]


def test_rounding_to_a_non_decimal_tick() -> None:
    state = make_state(bid="99", ask="101", rules=make_rules(tick="0.25"))
    decision = compute_quotes(fixed(spread_bps=30.0), state)  # raw 99.85 / 100.15
    assert prices(decision, Side.BUY) == [D("99.75")]
    assert prices(decision, Side.SELL) == [D("100.25")]


def short_state(**kw: object) -> MarketState:
    # share exactly 0.1 = min_share: still two-sided, deviation -1 (full short).
    return make_state(bid="99.99", ask="100.01", base="1", quote="900", **kw)  # type: ignore[arg-type]


def test_post_only_guard_clamps_bids_one_tick_inside_best_ask() -> None:
    # 2 bps spread, skew +10 half-spreads = +10 bps: raw bids 100.09, 100.08 cross 100.01.
    params = fixed(spread_bps=2.0, skew_strength=10.0, levels=2, level_step_bps=1.0, size=D("0.5"))
    decision = compute_quotes(params, short_state())
    assert decision.skew_bps == pytest.approx(10.0)
    assert prices(decision, Side.BUY) == [D("100.00"), D("99.99")]
    assert prices(decision, Side.SELL) == [D("100.11"), D("100.12")]


def test_post_only_guard_clamps_asks_one_tick_above_best_bid() -> None:
    params = fixed(spread_bps=2.0, skew_strength=10.0, levels=2, level_step_bps=1.0, size=D("0.5"))
    state = make_state(bid="99.99", ask="100.01", base="9", quote="100")  # share 0.9: long
    decision = compute_quotes(params, state)
    assert prices(decision, Side.SELL) == [D("100.00"), D("100.01")]
    assert prices(decision, Side.BUY) == [D("99.89"), D("99.88")]


def test_post_only_guard_can_be_switched_off() -> None:
    params = fixed(spread_bps=2.0, skew_strength=10.0, size=D("0.5"), post_only_guard=False)
    decision = compute_quotes(params, short_state())
    assert prices(decision, Side.BUY) == [D("100.09")]


def test_exact_model_keeps_orders_below_min_notional() -> None:
    state = make_state(base="0", rules=make_rules(tick="0.01", lot="1", min_notional="1000"))
    assert len(compute_quotes(exact_as(), state).quotes.all) == 2
    as_normal = exact_as(enforce_min_notional=True)
    assert compute_quotes(as_normal, state).reason == "no_size"


# --- defensive input handling -------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "state", "reason"),
    [
        (fixed(), make_state(sigma=NAN), "bad_input"),
        (fixed(), make_state(sigma=INF), "bad_input"),
        (fixed(), make_state(sigma=-1.0), "bad_input"),
        (fixed(), make_state(time_left_s=NAN), "bad_input"),
        (fixed(), make_state(time_left_s=-1.0), "bad_input"),
        (fixed(), make_state(base="NaN"), "bad_balances"),
        (fixed(), make_state(quote="-Infinity"), "bad_balances"),
        (fixed(), make_state(rules=make_rules(tick="0")), "bad_rules"),
        (fixed(), make_state(rules=make_rules(lot="-0.01")), "bad_rules"),
        (fixed(), make_state(rules=make_rules(min_notional="NaN")), "bad_rules"),
        (fixed(spread_bps=NAN), make_state(), "bad_params"),
        (fixed(spread_bps=0.0), make_state(), "bad_params"),
        (fixed(size=D(0)), make_state(), "bad_params"),
        (fixed(levels=0), make_state(), "bad_params"),
        (fixed(level_step_bps=-1.0), make_state(), "bad_params"),
        (fixed(volatility=VolatilityParams(cap_bps=NAN)), make_state(), "bad_params"),
        (exact_as(gamma=0.0), make_state(), "bad_params"),
        (exact_as(kappa=None), make_state(), "bad_params"),
        (exact_as(sigma=-2.0), make_state(), "bad_params"),
        (exact_as(), make_state(time_left_s=INF), "bad_input"),
    ],
)
def test_bad_inputs_quote_nothing(params: QuotingParams, state: MarketState, reason: str) -> None:
    decision = compute_quotes(params, state)
    assert decision.quotes.all == ()
    assert decision.reason == reason


def test_absurd_prices_are_dropped_not_sent() -> None:
    # delta = 0.1 * 1e12 * 1e6 = 1e17: the ask is 5e18 ticks away, the bid is negative.
    decision = compute_quotes(exact_as(sigma=1e6), make_state(base="0", time_left_s=1e6))
    assert (decision.quotes.all, decision.reason) == ((), "no_size")


def test_absurd_book_is_refused() -> None:
    decision = compute_quotes(fixed(), make_state(bid="1e30", ask="2e30"))
    assert (decision.quotes.all, decision.reason) == ((), "bad_book")


def test_as_overflow_quotes_nothing() -> None:
    decision = compute_quotes(exact_as(gamma=1e300, sigma=1e200), make_state())
    assert decision.quotes.all == ()
    assert decision.reason == "bad_reference"


# --- sizing stage -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prices_", "size", "budget", "rules", "expected"),
    [
        (["10", "9"], "2", Budget(), make_rules(), ["2", "2"]),
        (["10", "9"], "2", Budget(quote=D(25)), make_rules(), ["2", "0.55"]),  # 5/9 floored
        (["10", "9"], "2", Budget(base=D("2.5")), make_rules(), ["2", "0.5"]),
        (["10", "9"], "2", Budget(base=D(2)), make_rules(), ["2", None]),
        (["10", "9"], "2", Budget(base=D(0)), make_rules(), [None, None]),
        (["10", None], "2", Budget(), make_rules(), ["2", None]),
        (["10"], "2.019", Budget(), make_rules(), ["2.01"]),  # lot floors
        (["10"], "0.009", Budget(), make_rules(), [None]),  # below the lot
        (["10"], "2", Budget(), make_rules(min_size="3"), [None]),
        (["10"], "2", Budget(), make_rules(min_notional="20"), ["2"]),
        (["10"], "2", Budget(), make_rules(min_notional="20.01"), [None]),
        (["10", "9"], "2", Budget(quote=D(20)), make_rules(min_notional="5"), ["2", None]),
    ],
)
def test_size_ladder(
    prices_: list[str | None],
    size: str,
    budget: Budget,
    rules: MarketRules,
    expected: list[str | None],
) -> None:
    raw = [None if p is None else D(p) for p in prices_]
    out = size_ladder(raw, D(size), budget, rules)
    assert out == tuple(None if s is None else D(s) for s in expected)


def test_size_ladder_notional_check_can_be_switched_off() -> None:
    rules = make_rules(min_notional="100")
    assert size_ladder([D(10)], D(2), Budget(), rules, check_notional=False) == (D(2),)
