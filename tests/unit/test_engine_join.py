"""Through the engine: a join sees past the touch, without our own orders in the depth."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from kasmm.bot.commands import Log
from kasmm.bot.engine import Engine
from kasmm.core.join import JOIN_BOOK_DEPTH
from kasmm.core.types import Book, BookLevel, ClientOrderId, MarketRules, OpenOrder, Side
from tests.support import demo_profile

D = Decimal
RULES = MarketRules(symbol="KAS/USDT", base="KAS", quote="USDT", tick=D("0.00001"), lot=D(1))


def engine(join_depth: Decimal | None) -> Engine:
    e = Engine(demo_profile(), venue_name="sim", run_tag="t0000000")
    e.connected(RULES)
    e.account.inventory.base, e.account.inventory.quote = D(50_000), D(4_000)
    # The profile's settings are the config's to parse; the join is set on the parameters.
    e._params = dataclasses.replace(e._params, join_depth=join_depth)
    # Dust at the touch, ours (1,000) and others' (500) at 0.07990, real size deeper.
    bids = (
        BookLevel(D("0.07990"), D(1_500)),
        *(BookLevel(D("0.07980") - i * D("0.00010"), D(100_000)) for i in range(60)),
    )
    asks = (BookLevel(D("0.08010"), D(300)), BookLevel(D("0.08060"), D(100_000)))
    assert e.on_book(Book(bids, asks, 0.0), 0.0)
    mine = OpenOrder(ClientOrderId("b"), Side.BUY, D("0.07990"), D(1_000), D(1_000), 0.0)
    e.open_orders[mine.client_id] = mine
    return e


def test_a_join_reads_the_book_past_the_touch_without_our_own_size() -> None:
    """Depth 600: the 500 others rest at 0.07990 is dust, so the bid joins 0.07980 + 1 tick
    (had our own 1,000 counted, it would have joined 0.07990); the ask joins 0.08060 - 1."""
    decision, _ = engine(D(600)).decide(1.0, 1.0)
    assert decision.join_unmet == ()
    assert decision.quotes.bids[0].price == D("0.07981")
    assert decision.quotes.asks[0].price == D("0.08059")


def test_a_join_deeper_than_the_depth_passed_is_unmet() -> None:
    """Beyond JOIN_BOOK_DEPTH levels the engine does not look: the side stays unjoined."""
    decision, _ = engine(D(100_000) * JOIN_BOOK_DEPTH).decide(1.0, 1.0)
    assert decision.join_unmet == (Side.BUY, Side.SELL)


def test_without_a_join_only_the_touch_is_read() -> None:
    decision, _ = engine(None).decide(1.0, 1.0)
    assert decision.join_unmet == ()
    assert decision.quotes.bids and decision.quotes.asks


def test_an_unmet_join_is_logged_when_the_sides_change() -> None:
    e = engine(D(100_000) * JOIN_BOOK_DEPTH)
    e.decide(1.0, 1.0)
    e.decide(2.0, 2.0)  # unchanged: not logged again
    logged = [c.fields for c in e.take() if isinstance(c, Log) and c.event == "join_depth_unmet"]
    assert logged == [{"sides": ["buy", "sell"], "depth": "5000000", "levels": JOIN_BOOK_DEPTH}]
    e._params = dataclasses.replace(e._params, join_depth=D(600))  # the book now suffices
    e.decide(3.0, 3.0)
    logged = [c.fields for c in e.take() if isinstance(c, Log) and c.event == "join_depth_unmet"]
    assert logged == [{"sides": [], "depth": "600", "levels": JOIN_BOOK_DEPTH}]
