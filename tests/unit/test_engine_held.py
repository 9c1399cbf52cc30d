"""Orders held outside the quotes (hanging, rebalance): the engine neither keeps nor cancels
them by reconciliation, counts what they take, and hands them back when trading stops."""

from __future__ import annotations

from decimal import Decimal

from kasmm.bot.engine import Engine
from kasmm.core.held import HANGING, REBALANCE, Held, held_of
from kasmm.core.risk import Trip
from kasmm.core.types import (
    Book,
    BookLevel,
    CancelOrder,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    Side,
)
from tests.support import demo_profile

D = Decimal
RULES = MarketRules(symbol="KAS/USDT", base="KAS", quote="USDT", tick=D("0.00001"), lot=D(1))


def engine() -> Engine:
    e = Engine(demo_profile(), venue_name="sim", run_tag="t0000000")
    e.connected(RULES)
    e.account.inventory.base, e.account.inventory.quote = D(50_000), D(4_000)
    book = Book((BookLevel(D("0.0799"), D(50_000)),), (BookLevel(D("0.0801"), D(50_000)),), 0.0)
    assert e.on_book(book, 0.0)
    return e


def rest(e: Engine, cid: str, side: Side, price: str, size: int) -> ClientOrderId:
    order = OpenOrder(ClientOrderId(cid), side, D(price), D(size), D(size), created_at=0.0, level=0)
    e.open_orders[order.client_id] = order
    return order.client_id


def cancelled(actions: tuple[object, ...]) -> set[str]:
    return {a.client_id for a in actions if isinstance(a, CancelOrder)}


def test_reconciliation_cancels_a_far_order_unless_it_is_held() -> None:
    plain = engine()
    far = rest(plain, "far", Side.SELL, "0.0900", 1000)  # 12 % above the mid
    _, actions = plain.decide(1.0, 1.0)
    assert far in cancelled(actions)

    kept = engine()
    far = rest(kept, "far", Side.SELL, "0.0900", 1000)
    kept.held[far] = HANGING
    _, actions = kept.decide(1.0, 1.0)
    assert far not in cancelled(actions)
    assert far in kept.held


def test_held_orders_are_handed_back_and_cancelled_when_trading_pauses() -> None:
    e = engine()
    far = rest(e, "far", Side.SELL, "0.0900", 1000)
    e.held[far] = HANGING
    e.external_trip(Trip("portfolio_max_drawdown", "pause", 2.0, 1.0, 0.0, "", 60.0), "group")
    _, actions = e.decide(1.0, 1.0)
    assert far in cancelled(actions)
    assert not e.held


def test_a_held_order_that_closed_is_forgotten() -> None:
    e = engine()
    gone = ClientOrderId("gone")
    e.held[gone] = REBALANCE
    e.decide(1.0, 1.0)
    assert gone not in e.held


def test_held_of_counts_levels_for_hanging_orders_and_balance_for_all() -> None:
    orders = [
        OpenOrder(ClientOrderId("h-bid"), Side.BUY, D("0.08"), D(1000), D(400), created_at=0.0),
        OpenOrder(ClientOrderId("h-ask"), Side.SELL, D("0.09"), D(1000), D(1000), created_at=0.0),
        OpenOrder(ClientOrderId("r-ask"), Side.SELL, D("0.085"), D(500), D(250), created_at=0.0),
    ]
    roles = {
        ClientOrderId("h-bid"): HANGING,
        ClientOrderId("h-ask"): HANGING,
        ClientOrderId("r-ask"): REBALANCE,
    }
    assert held_of(orders, roles) == Held(
        bid_levels=1, ask_levels=1, bid_quote=D("32.00"), ask_base=D(1250)
    )
    assert held_of([], roles) == Held()


def test_a_hanging_order_takes_one_of_its_sides_levels_and_its_balance() -> None:
    e = engine()  # the demo's passive mode: 3 levels of 1,500 KAS a side
    free, _ = e.decide(1.0, 1.0)
    assert (len(free.quotes.bids), len(free.quotes.asks)) == (3, 3)
    far = rest(e, "far", Side.SELL, "0.0900", 1000)
    e.held[far] = HANGING
    held, _ = e.decide(2.0, 2.0)
    assert (len(held.quotes.bids), len(held.quotes.asks)) == (3, 2)
    # the two asks left are the best two of the ladder, at the same prices
    assert [a.price for a in held.quotes.asks] == [a.price for a in free.quotes.asks[:2]]


def test_a_held_order_locks_its_balance_away_from_the_quotes() -> None:
    e = engine()
    # every ask level would need 1,500 KAS; half the value in KAS, inside the share band
    e.account.inventory.base, e.account.inventory.quote = D(3_500), D(280)
    e.held[rest(e, "r", Side.SELL, "0.0900", 2_000)] = REBALANCE  # a rebalance: no level
    decision, _ = e.decide(1.0, 1.0)
    # 3,500 KAS less the 2,000 the held ask locks: one full level of 1,500
    assert [a.size for a in decision.quotes.asks] == [D(1500)]
