"""Informed takers of a world venue: they pick off stale prices (and only those).

A quote is stale when the latent price has moved through it by the threshold; on a venue that
lags its world the quotes a bot prices off the venue's own mid go stale after every move, and
arbitrageurs take them, as on a real thin venue. On a venue that does not lag, the same quotes
are never taken.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from kasmm.clock import VirtualClock
from kasmm.config.schema import ArbitrageConfig, RandomWalkMarket, SimVenueConfig, SimWorldConfig
from kasmm.core.types import (
    BookUpdated,
    ClientOrderId,
    OrderFilled,
    OrderRequest,
    Side,
    VenueOrderId,
)
from kasmm.venues.sim import SimVenue
from kasmm.venues.sim.arbitrage import Arbitrageurs, arbitrage_rng
from kasmm.venues.sim.matching import OwnOrders, RestingOrder
from kasmm.venues.sim.tick_book import TickBook
from kasmm.venues.sim.world import SimWorlds
from tests.unit.test_sim_world import drive

D = Decimal
THRESHOLD_BPS = 10.0


def arbs(max_size: str = "5000", lot: str = "1") -> Arbitrageurs:
    config = ArbitrageConfig(max_size=D(max_size), threshold_bps=THRESHOLD_BPS)
    return Arbitrageurs(config, D(lot), random.Random(1))


def hand_book() -> tuple[TickBook, OwnOrders]:
    """Asks 0.0800 x100, 0.0801 x200, 0.0803 x300 and the bot's ask 0.0802 x40; bids 0.0799
    x50, 0.0798 x60 (tick 0.0001, lot 1)."""
    book = TickBook(D("0.0001"), D("1"))
    book.asks.set_levels([800, 801, 803], [100, 200, 300])
    book.bids.set_levels([799, 798], [50, 60])
    orders = OwnOrders()
    orders.add(
        RestingOrder(ClientOrderId("mine"), VenueOrderId("1"), Side.SELL, D("0.0802"), D(40),
                     D(40), 0.0, 1)
    )  # fmt: skip
    return book, orders


@pytest.mark.parametrize(
    ("fair", "max_size", "expected"),
    [
        # Fair 0.08025 * (1 + 10 bps): every ask up to 0.08025 is stale, the bot's included.
        (0.08025 * 1.001, "5000", (Side.BUY, D(340))),
        (0.08025 * 1.001, "250", (Side.BUY, D(250))),  # capped at max_size
        # The bids at or above 0.0797 * 1.001 = 0.07978 are stale.
        (0.0797, "5000", (Side.SELL, D(110))),
        (0.0797, "55.9", (Side.SELL, D(55))),  # max_size rounded down to the lot
        # A fair price inside the book, or moved by less than the threshold: nothing.
        (0.08, "5000", None),
        (0.0800 * 1.0009, "5000", None),
        (0.0799 / 1.0009, "5000", None),
    ],
)
def test_an_arbitrageur_takes_the_stale_levels_up_to_its_size(
    fair: float, max_size: str, expected: tuple[Side, Decimal] | None
) -> None:
    book, orders = hand_book()
    assert arbs(max_size).order(fair, book, orders) == expected


def test_max_size_is_at_least_one_lot() -> None:
    assert arbs("0.5", lot="1").max_size == D(1)
    assert arbs("1234.567", lot="0.01").max_size == D("1234.56")


# --- on a venue -------------------------------------------------------------------------------

WORLD = SimWorldConfig(name="kas", seed=3, sigma_bps=4.0, step_s=0.1)
QUOTE_BPS = 3.0


def arb_venue(clock: VirtualClock, lag_ms: float, *, arbitrage: bool = True) -> SimVenue:
    """A world venue whose only takers are arbitrageurs (threshold 1 bps, 20 a second)."""
    market = RandomWalkMarket(
        world=WORLD,
        lag_ms=lag_ms,
        taker_rate_per_s=1e-6,
        arbitrage=ArbitrageConfig(rate_per_s=20.0, max_size=D(5000), threshold_bps=1.0)
        if arbitrage
        else None,
    )
    config = SimVenueConfig(type="sim", seed=4, market=market)
    venue = SimVenue(config, "KAS/USDT", clock, trade_id_tag="a", worlds=SimWorlds())
    venue.exchange.connect_now()
    return venue


def run_own_mid_quoter(venue: SimVenue, clock: VirtualClock, seconds: float) -> list[Any]:
    """Quote one bid and one ask QUOTE_BPS around the venue's own mid after every book update
    (inside the synthetic spread of 10 bps); return ``(fill, latent price then)`` of every
    fill."""
    world = venue.world
    assert world is not None
    tick = venue.rules.tick
    fills: list[Any] = []
    n = 0

    def on_event(_i: int, event: Any) -> None:
        nonlocal n
        if isinstance(event, OrderFilled):
            fills.append((event.fill, world.fair(clock.now())))
        if not isinstance(event, BookUpdated) or event.book.best_bid is None:
            return
        venue.exchange.cancel_all_now("q")
        mid = D(venue.mid)
        for side, price in (
            (Side.BUY, (mid * (1 - D(QUOTE_BPS) / 10_000) / tick).__floor__() * tick),
            (Side.SELL, (mid * (1 + D(QUOTE_BPS) / 10_000) / tick).__ceil__() * tick),
        ):
            n += 1
            venue.exchange.place_now(OrderRequest(ClientOrderId(f"q{n}"), side, price, D(100)))

    drive([venue], clock, seconds, on_event)
    return fills


def test_quotes_off_a_lagging_mid_are_picked_off_and_only_when_stale() -> None:
    clock = VirtualClock()
    fills = run_own_mid_quoter(arb_venue(clock, lag_ms=500), clock, 300.0)
    assert len(fills) > 50
    for fill, fair in fills:
        # Every fill was an arbitrageur trading a price stale by its threshold (1 bps).
        if fill.side is Side.SELL:  # the bot's ask was lifted: it was below the latent price
            assert float(fill.price) * 1.0001 <= fair
        else:
            assert float(fill.price) >= fair * 1.0001


def test_the_same_quotes_on_a_venue_that_does_not_lag_are_never_taken() -> None:
    clock = VirtualClock()
    assert run_own_mid_quoter(arb_venue(clock, lag_ms=0), clock, 300.0) == []


def test_arbitrageurs_change_neither_the_mid_nor_the_other_draws() -> None:
    def mids(arbitrage: bool) -> list[float]:
        clock = VirtualClock()
        venue = arb_venue(clock, lag_ms=500, arbitrage=arbitrage)
        out: list[float] = []
        drive(
            [venue],
            clock,
            120.0,
            lambda _i, e: out.append(venue.mid) if isinstance(e, BookUpdated) else None,
        )
        return out

    def path(values: list[float]) -> list[float]:
        return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]

    with_arbs, without = mids(True), mids(False)
    # More book events with arbitrageurs (each sweep publishes the book), the same mid path.
    assert len(with_arbs) > len(without)
    assert path(with_arbs) == path(without) and len(path(without)) > 500


def test_the_arbitrage_generator_is_the_venues_own() -> None:
    assert arbitrage_rng(4).random() == arbitrage_rng(4).random() != arbitrage_rng(5).random()
