"""Through the engine: the price band, the fill cooldown, ping-pong and hanging orders act on
the decisions and the order actions, and the view shows their state."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kasmm.bot.commands import Log
from kasmm.bot.engine import Engine
from kasmm.bot.shaping import HANGING_MOVED, ShapingStatus
from kasmm.bot.stats import BotState
from kasmm.bot.view import build_view
from kasmm.core.held import HANGING
from kasmm.core.quoting import QuoteDecision
from kasmm.core.risk import Trip
from kasmm.core.types import (
    Book,
    BookLevel,
    CancelOrder,
    ClientOrderId,
    Fill,
    MarketRules,
    OpenOrder,
    OrderAction,
    PlaceOrder,
    Side,
    TradeId,
)
from tests.support import demo_profile

D = Decimal
B, S = Side.BUY, Side.SELL
RULES = MarketRules(symbol="KAS/USDT", base="KAS", quote="USDT", tick=D("0.00001"), lot=D(1))


def book(mid: str, ts: float = 0.0) -> Book:
    m = D(mid)
    return Book(
        (BookLevel(m - D("0.0001"), D(50_000)),), (BookLevel(m + D("0.0001"), D(50_000)),), ts
    )


def engine(**overrides: Any) -> Engine:
    e = Engine(demo_profile(**overrides), venue_name="sim", run_tag="t0000000")
    e.connected(RULES)
    e.account.inventory.base, e.account.inventory.quote = D(50_000), D(4_000)
    assert e.on_book(book("0.08"), 0.0)
    return e


def carry_out(e: Engine, actions: tuple[OrderAction, ...], now: float) -> None:
    """What a venue that accepts everything at once makes of ``actions``."""
    for a in actions:
        if isinstance(a, CancelOrder):
            e.orders.cancelled(a.client_id, None, now)
        else:
            request = e.orders.request_for(a.intent)
            order = OpenOrder(
                request.client_id, request.side, request.price, request.size, request.size, now
            )
            e.orders.placed(request, a.intent.level, order, now, now)


def step(
    e: Engine, now: float, mid: str | None = None
) -> tuple[QuoteDecision, tuple[OrderAction, ...]]:
    if mid is not None:
        assert e.on_book(book(mid, now), now)
    decision, actions = e.decide(now, now)
    carry_out(e, actions, now)
    return decision, actions


def resting(e: Engine, side: Side) -> list[OpenOrder]:
    return sorted((o for o in e.open_orders.values() if o.side is side), key=lambda o: o.level)


_trades = iter(range(1_000_000))


def fill(e: Engine, order: OpenOrder, now: float, size: Decimal | None = None) -> None:
    size = order.remaining if size is None else size
    e.on_fill(
        Fill(
            TradeId(f"t{next(_trades)}"),
            order.client_id,
            order.side,
            order.price,
            size,
            D(0),
            "USDT",
            now,
            remaining=order.remaining - size,
        ),
        now,
    )


def events(e: Engine, name: str) -> list[Mapping[str, Any]]:
    return [c.fields for c in e.take() if isinstance(c, Log) and c.event == name]


# --- cooldown ------------------------------------------------------------------------------


def test_a_filled_side_is_quoted_empty_for_the_delay_then_again() -> None:
    e = engine(after_fill={"filled_order_delay_s": 5})
    step(e, 1.0)
    assert len(resting(e, B)) == 3
    fill(e, resting(e, B)[0], 2.0)
    d, actions = step(e, 2.5)
    assert not d.quotes.bids and len(d.quotes.asks) == 3 and d.reason == "cooldown"
    assert not resting(e, B)  # the rest of the side is cancelled too
    assert {a.client_id for a in actions if isinstance(a, CancelOrder)}
    view = build_view(e, BotState.QUOTING, 4.0, 0)
    assert view.shaping is not None
    assert (view.shaping.bid_cooldown_s, view.shaping.ask_cooldown_s) == (3.0, 0.0)
    d, _ = step(e, 6.9)
    assert not d.quotes.bids
    d, _ = step(e, 7.0)
    assert len(d.quotes.bids) == 3 and d.reason == "ok"


def test_a_fill_of_an_earlier_runs_order_starts_no_cooldown() -> None:
    e = engine(after_fill={"filled_order_delay_s": 5})
    step(e, 1.0)
    old = OpenOrder(ClientOrderId("mm-oldrun-1"), B, D("0.0799"), D(10), D(10), 0.0)
    e.open_orders[old.client_id] = old
    fill(e, old, 2.0)
    d, _ = step(e, 2.5)
    assert len(d.quotes.bids) == 3


# --- ping-pong -------------------------------------------------------------------------------


def test_ping_pong_drops_one_best_level_per_unmatched_fill() -> None:
    e = engine(after_fill={"ping_pong": True})
    step(e, 1.0)
    best = resting(e, B)[0]
    fill(e, best, 2.0, size=D(100))  # partial: counts
    fill(e, e.open_orders[best.client_id], 2.05, size=D(100))  # the same order again: no more
    d, _ = step(e, 2.1)
    assert [i.level for i in d.quotes.bids] == [1, 2] and len(d.quotes.asks) == 3
    assert best.client_id not in e.open_orders  # level 0 is not quoted: its order goes
    assert build_view(e, BotState.QUOTING, 2.1, 0).shaping == ShapingStatus(
        0, 0.0, 0.0, 1, None, None
    )
    fill(e, resting(e, S)[0], 4.0)  # a sell answers it: level again
    d, _ = step(e, 4.1)
    assert len(d.quotes.bids) == 3 and len(d.quotes.asks) == 3


# --- price band ----------------------------------------------------------------------------


def test_above_the_ceiling_only_asks_and_below_the_floor_only_bids() -> None:
    e = engine(pricing={"price_band": {"floor": "0.07", "ceiling": "0.09"}})
    d, _ = step(e, 1.0)
    assert len(d.quotes.bids) == 3 and len(d.quotes.asks) == 3
    d, _ = step(e, 2.0, mid="0.095")
    assert not d.quotes.bids and d.quotes.asks and d.reason == "above_ceiling"
    assert not resting(e, B)
    d, _ = step(e, 3.0, mid="0.065")
    assert d.quotes.bids and not d.quotes.asks and d.reason == "below_floor"
    assert build_view(e, BotState.QUOTING, 3.0, 0).shaping == ShapingStatus(
        0, 0.0, 0.0, 0, D("0.07"), D("0.09")
    )


def test_a_moving_band_follows_the_slow_average_of_the_mid() -> None:
    e = engine(pricing={"price_band": {"band_pct": 5, "halflife_s": 60}})
    band = e.shaping.band()
    assert band is not None and band.ceiling == D("0.0840") and band.floor == D("0.0760")
    # a jump of 10 %: above the band until the average catches up
    d, _ = step(e, 1.0, mid="0.088")
    assert not d.quotes.bids and d.reason == "above_ceiling"
    for t in range(2, 200):
        d, _ = step(e, float(t), mid="0.088")
    assert d.quotes.bids  # after some three half-lives the band holds 0.088 again


# --- hanging orders ----------------------------------------------------------------------------


def test_the_other_side_of_a_filled_level_hangs_until_the_mid_moves_away() -> None:
    e = engine(after_fill={"hanging_orders": {"enabled": True, "cancel_pct": 1.0}})
    step(e, 1.0)
    e.take()
    ask0 = resting(e, S)[0]
    assert ask0.level == 0
    fill(e, resting(e, B)[0], 2.0)
    assert e.held == {ask0.client_id: HANGING}
    assert events(e, "order_hanging")[0]["client_id"] == ask0.client_id
    # the mid moves 0.4 %: the quotes follow, the hanging ask stays where it was
    _, actions = step(e, 3.0, mid="0.0797")
    assert any(isinstance(a, PlaceOrder) for a in actions)
    assert ask0.client_id in e.open_orders and ask0.client_id in e.held
    assert ask0.client_id not in {a.client_id for a in actions if isinstance(a, CancelOrder)}
    assert build_view(e, BotState.QUOTING, 3.0, 0).shaping == ShapingStatus(
        1, 0.0, 0.0, 0, None, None
    )
    # 1.3 % below its price (0.08006): cancelled; once gone, no longer held
    _, actions = step(e, 4.0, mid="0.0790")
    assert CancelOrder(ask0.client_id, HANGING_MOVED) in actions
    assert events(e, "hanging_cancelled")[0]["client_id"] == ask0.client_id
    assert ask0.client_id not in e.open_orders
    step(e, 5.0)
    assert not e.held


def test_a_hanging_order_that_fills_pairs_nothing_and_is_forgotten() -> None:
    e = engine(after_fill={"hanging_orders": {"enabled": True}})
    step(e, 1.0)
    ask0 = resting(e, S)[0]
    fill(e, resting(e, B)[0], 2.0)
    step(e, 2.5)
    fill(e, e.open_orders[ask0.client_id], 3.0)
    assert list(e.held) == [ask0.client_id]  # forgotten on the next decision
    step(e, 3.5)
    assert not e.held


def test_hanging_orders_are_handed_back_when_trading_pauses() -> None:
    e = engine(after_fill={"hanging_orders": {"enabled": True}})
    step(e, 1.0)
    ask0 = resting(e, S)[0]
    fill(e, resting(e, B)[0], 2.0)
    e.external_trip(Trip("portfolio_max_drawdown", "pause", 2.0, 1.0, 0.0, "", 60.0), "group")
    _, actions = step(e, 2.5)
    # reconciliation cancels it with the paused (empty) quotes' other orders
    assert any(isinstance(a, CancelOrder) and a.client_id == ask0.client_id for a in actions)
    assert not e.held


def test_with_every_setting_off_the_engine_has_no_shaping_status() -> None:
    e = engine()
    step(e, 1.0)
    assert not e.shaping.active and not e.shaping.enabled
    assert build_view(e, BotState.QUOTING, 1.0, 0).shaping is None
    fill(e, resting(e, B)[0], 2.0)
    assert not e.held
    assert all(isinstance(a, PlaceOrder | CancelOrder) for a in step(e, 2.1)[1])
