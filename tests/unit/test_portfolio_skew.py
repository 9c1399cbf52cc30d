"""Through the engine: a member short on its own, in a group long overall, leans to sell."""

from __future__ import annotations

from decimal import Decimal

from kasmm.bot.engine import Engine
from kasmm.core.portfolio import GroupSpec, MemberSnapshot, aggregate, member_skew
from kasmm.core.types import Book, BookLevel, MarketRules
from tests.support import demo_profile

D = Decimal
RULES = MarketRules(symbol="KAS/USDT", base="KAS", quote="USDT", tick=D("0.00001"), lot=D(1))


def engine(base: int, quote: int) -> Engine:
    e = Engine(demo_profile(), venue_name="sim", run_tag="t0000000")
    e.connected(RULES)
    e.account.inventory.base, e.account.inventory.quote = D(base), D(quote)
    book = Book((BookLevel(D("0.0799"), D(50_000)),), (BookLevel(D("0.0801"), D(50_000)),), 0.0)
    assert e.on_book(book, 0.0)
    return e


def test_a_member_short_on_its_own_leans_to_sell_in_a_long_group() -> None:
    member = engine(base=30_000, quote=5_600)  # 2,400 of 8,000 USDT in KAS: 30 %, short
    alone, _ = member.decide(1.0, 1.0)
    assert alone.skew_bps > 0  # on its own it shifts both quotes up: lean to buy
    other = MemberSnapshot("deep", D(900_000), D(800), D("0.08"), D(0))
    me = MemberSnapshot("thin", D(30_000), D(5_600), D("0.08"), D(0))
    skew = member_skew(aggregate(GroupSpec("kas", 0.5, None), [other, me]))
    assert skew is not None and skew.deviation > 0  # the group is long
    member.set_group(skew)
    grouped, _ = member.decide(2.0, 2.0)
    assert grouped.skew_bps < 0  # both quotes shift down: lean to sell
    bid, ask = grouped.quotes.bids[0].price, grouped.quotes.asks[0].price
    alone_bid, alone_ask = alone.quotes.bids[0].price, alone.quotes.asks[0].price
    assert bid < alone_bid and ask < alone_ask
    member.set_group(None)
    back, _ = member.decide(3.0, 3.0)
    assert back.skew_bps == alone.skew_bps
