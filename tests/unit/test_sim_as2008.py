"""The simulated venue's ``as2008`` market is the Avellaneda–Stoikov (2008) model, exactly."""

from __future__ import annotations

import itertools
import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pytest

from kasmm.clock import VirtualClock
from kasmm.config.schema import AS2008Market, SimVenueConfig
from kasmm.core.grid import price_float, tick_fraction
from kasmm.core.types import (
    BookUpdated,
    ClientOrderId,
    OrderFilled,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import OrderRejected
from kasmm.venues.sim import SimVenue
from kasmm.venues.sim.as2008 import as2008_rules, fill_probability

pytestmark = pytest.mark.anyio
D = Decimal


def make_venue(
    seed: int = 1, *, trade_id_tag: str | None = None, **market: Any
) -> tuple[SimVenue, VirtualClock, AS2008Market]:
    """An AS venue on a virtual clock. Config balances are set to show they are ignored."""
    clock = VirtualClock()
    model = AS2008Market(model="as2008", **market)
    config = SimVenueConfig(type="sim", market=model, seed=seed, balances={"USD": D(1000)})
    return SimVenue(config, "XYZ/USD", clock, trade_id_tag=trade_id_tag), clock, model


ONE = D(1)


def req(cid: str, side: Side, price: Decimal, size: Decimal = ONE) -> OrderRequest:
    """A post-only limit order request."""
    return OrderRequest(ClientOrderId(cid), side, price, size)


def mid_of(event: VenueEvent) -> float:
    """The mid a zero-width AS book shows (bid == ask == s)."""
    assert isinstance(event, BookUpdated)
    (bid,), (ask,) = event.book.bids, event.book.asks
    assert bid == ask
    return float(bid.price)


async def test_rules_flat_start_and_zero_width_book() -> None:
    venue, clock, model = make_venue(tick=D("0.01"))
    rules = await venue.connect()
    assert (rules.tick, rules.lot, rules.min_notional) == (D("0.01"), D("0.00000001"), D(0))
    assert rules.maker_fee == 0 and rules.taker_fee == 0
    balances = await venue.fetch_balances()
    assert dict(balances.assets).keys() == {"XYZ", "USD"}
    assert balances.total("XYZ") == 0 and balances.total("USD") == 0  # config ignored
    first = await anext(venue.events())
    assert isinstance(first, BookUpdated)
    assert mid_of(first) == model.s0 and first.book.ts == clock.now() == 0.0


async def test_prices_must_be_on_the_model_tick_and_sizes_on_the_lot() -> None:
    venue, _, _ = make_venue(tick=D("0.01"))
    await venue.connect()
    with pytest.raises(OrderRejected):
        await venue.place_order(req("a", Side.SELL, D("100.005")))
    with pytest.raises(OrderRejected):
        await venue.place_order(req("b", Side.SELL, D("100.01"), D("0.000000001")))
    await venue.place_order(req("c", Side.SELL, D("100.01"), D("0.00000001")))


def test_paths_of_one_market_share_its_frozen_rules() -> None:
    """Backtest paths differ in their seed only: one rules object (and grid) for all of them;
    another tick, even an equal one with another exponent, or another symbol gets its own."""
    market = AS2008Market(model="as2008", tick=D("0.01"))
    first = as2008_rules("XYZ/USD", "XYZ", "USD", market)
    assert as2008_rules("XYZ/USD", "XYZ", "USD", market.model_copy()) is first
    other = as2008_rules("XYZ/USD", "XYZ", "USD", AS2008Market(model="as2008", tick=D("0.010")))
    assert other is not first and str(other.tick) == "0.010"
    assert as2008_rules("ABC/USD", "ABC", "USD", market).symbol == "ABC/USD"
    again = as2008_rules("XYZ/USD", "XYZ", "USD", market)
    assert again == first and str(again.tick) == "0.01"


async def test_mid_moves_exactly_plus_or_minus_sigma_sqrt_dt() -> None:
    venue, clock, model = make_venue(seed=4)
    await venue.connect()
    delta = model.sigma * math.sqrt(model.dt)
    stream = venue.events()
    mids = [mid_of(await anext(stream)) for _ in range(5001)]
    await stream.aclose()
    assert clock.now() == pytest.approx(5000 * model.dt)
    ups = 0
    for a, b in itertools.pairwise(mids):
        # Float representation only: s is s0 + m * delta with an integer m.
        assert abs(abs(b - a) - delta) < 1e-9
        ups += b > a
    for s in mids:
        m = (s - model.s0) / delta
        assert abs(m - round(m)) < 1e-9
    assert abs(ups - 2500) < 4 * math.sqrt(5000 * 0.25)


async def test_published_price_is_the_repr_of_the_mid_on_a_long_walk() -> None:
    # Levels are built once per mid and the cache is bounded: on a walk long and wide enough
    # to clear it, every book still shows exactly Decimal(repr(s)) of the model's s.
    venue, _, _ = make_venue(seed=2)
    await venue.connect()
    stream = venue.events()
    seen = set()
    for _ in range(40_000):
        event = await anext(stream)
        assert isinstance(event, BookUpdated)
        (bid,), (ask,) = event.book.bids, event.book.asks
        assert bid is ask and bid.size == 1
        assert bid.price == D(repr(venue.mid)) and str(bid.price) == repr(venue.mid)
        seen.add(bid.price)
    await stream.aclose()
    assert len(seen) > 256  # more mids than the cache holds


async def test_no_funds_checks_no_fees_no_post_only() -> None:
    venue, _, model = make_venue()
    await venue.connect()
    stream = venue.events()
    s = mid_of(await anext(stream))
    # A bid 1.0 above the mid: negative distance, allowed, and it fills for sure (p = 1).
    price = D(repr(s + 1.0)).quantize(D("0.0001"), rounding=ROUND_FLOOR)
    assert fill_probability(model.A, model.k, model.dt, s - float(price)) == 1.0
    await venue.place_order(req("b", Side.BUY, price, D(1000)))
    event = await anext(stream)
    assert isinstance(event, OrderFilled)
    assert (event.fill.size, event.fill.remaining, event.fill.fee) == (D(1000), D(0), D(0))
    # The fill is handed out before the mid moves; the move comes with the next book.
    assert venue.mid == s
    assert abs(abs(mid_of(await anext(stream)) - s) - model.sigma * math.sqrt(model.dt)) < 1e-9
    await stream.aclose()
    balances = await venue.fetch_balances()
    assert balances.total("XYZ") == 1000 and balances.total("USD") == -price * 1000


def quote_price(s: float, d: float, side: Side, tick: Decimal) -> Decimal:
    """The tick price nearest ``s -/+ d`` on the far side (asks up, bids down)."""
    if side is Side.SELL:
        return D(repr(s + d)).quantize(tick, rounding=ROUND_CEILING)
    return D(repr(s - d)).quantize(tick, rounding=ROUND_FLOOR)


@pytest.mark.parametrize(
    ("d", "steps"),
    [
        (0.5, 20000),  # p ~ 0.33
        (1.5, 15000),  # p ~ 0.07
        (-0.2, 8000),  # inside the mid: p ~ 0.95
        (-1.0, 500),  # p = min(1, 3.1) = 1: every quote fills
    ],
)
async def test_fill_rate_per_step_is_a_exp_minus_k_d_dt(d: float, steps: int) -> None:
    venue, _, model = make_venue(seed=9)
    await venue.connect()
    tick = model.tick
    nominal = min(1.0, model.A * math.exp(-model.k * d) * model.dt)
    expected = variance = 0.0  # sum of p and of p(1-p) over every quote actually shown
    probabilities: list[float] = []
    fills = 0
    stream = venue.events()
    async for event in stream:
        if isinstance(event, OrderFilled):
            fills += 1
            continue
        if len(probabilities) >= 2 * steps:
            break
        # Each quote lives exactly one step: placed on a book, judged at the next step.
        await venue.cancel_all("")
        s = mid_of(event)
        for side in (Side.SELL, Side.BUY):
            price = quote_price(s, d, side, tick)
            distance = float(price) - s if side is Side.SELL else s - float(price)
            p = fill_probability(model.A, model.k, model.dt, distance)
            probabilities.append(p)
            expected += p
            variance += p * (1 - p)
            await venue.place_order(req(f"{side}{len(probabilities)}", side, price))
    await stream.aclose()
    # Tick rounding moves each distance by < 1 tick: the rate is the nominal one to ~k * tick.
    assert expected / len(probabilities) == pytest.approx(nominal, rel=2 * model.k * float(tick))
    assert abs(fills - expected) <= 4 * math.sqrt(variance) + 1e-9, (fills, expected, variance)


async def test_same_seed_same_events() -> None:
    async def trace(seed: int) -> list[VenueEvent]:
        """Events of 3000 pulls with a bot quoting 0.3 around every mid (trade ids pinned)."""
        venue, _, _ = make_venue(seed=seed, trade_id_tag="det")
        await venue.connect()
        out: list[VenueEvent] = []
        stream = venue.events()
        async for event in stream:
            out.append(event)
            if isinstance(event, BookUpdated):
                s = mid_of(event)
                await venue.cancel_all("")
                for side in (Side.SELL, Side.BUY):
                    await venue.place_order(
                        req(f"{side}{len(out)}", side, quote_price(s, 0.3, side, D("0.0001")))
                    )
            if len(out) >= 3000:
                break
        await stream.aclose()
        return out

    first = await trace(5)
    assert any(isinstance(e, OrderFilled) for e in first)
    assert await trace(5) == first
    assert await trace(6) != first


@pytest.mark.parametrize(
    "tick", ["0.01", "0.0001", "0.5", "0.000001", "1", "5", "0.25", "0.00000001", "0.010"]
)
def test_a_price_float_from_ticks_is_float_of_the_decimal(tick: str) -> None:
    # The AS step reads each order's price as a float; from its ticks when it has them.
    num, den = tick_fraction(Decimal(tick))
    assert num > 0 and Decimal(num) / Decimal(den) == Decimal(tick)
    for ticks in [1, 2, 3, 7, 99, 12345, 999_999, 10**9 + 7, 2**40 + 1, (2**53 - 1) // num]:
        price = ticks * Decimal(tick)
        assert price_float(ticks, num, den, price) == float(price)
        assert price_float(-1, num, den, price) == float(price)  # ticks unknown
    big = (2**53 // num + 1) * Decimal(tick)  # past the exact range: the Decimal's own float
    assert price_float(2**53 // num + 1, num, den, big) == float(big)


@pytest.mark.parametrize("tick", ["1E+2", "-0.01", "1E-23", "Infinity"])
def test_ticks_not_a_decimal_fraction_read_the_decimal(tick: str) -> None:
    assert tick_fraction(Decimal(tick)) == (0, 1)
    assert price_float(5, 0, 1, Decimal("1.5")) == 1.5
