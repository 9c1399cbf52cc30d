"""How the engine orders a round's actions into waves that go out together."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.bot.commands import Log
from kasmm.bot.engine import Engine
from kasmm.bot.orders import Wave
from kasmm.bot.outcomes import RoundOutcomes, RoundState
from kasmm.config.schema import Profile
from kasmm.core.types import (
    CancelOrder,
    ClientOrderId,
    Fill,
    MarketRules,
    OpenOrder,
    OrderAction,
    OrderIntent,
    PlaceOrder,
    Side,
    TradeId,
)
from tests.support import demo_profile

RULES = MarketRules(
    symbol="KAS/USDT", base="KAS", quote="USDT", tick=Decimal("0.00001"), lot=Decimal(1)
)


def engine(replace_mode: str = "cancel_first", base: int = 10_000, quote: int = 1_000) -> Engine:
    profile = demo_profile()
    refresh = profile.refresh.model_copy(update={"replace_mode": replace_mode})
    e = Engine(
        Profile.model_validate({**profile.model_dump(), "refresh": refresh.model_dump()}),
        venue_name="sim",
        run_tag="t0000000",
    )
    e.connected(RULES)
    e.account.inventory.base, e.account.inventory.quote = Decimal(base), Decimal(quote)
    return e


def rest(e: Engine, cid: str, side: Side, price: str, size: int) -> ClientOrderId:
    order = OpenOrder(
        ClientOrderId(cid), side, Decimal(price), Decimal(size), Decimal(size), created_at=0.0
    )
    e.open_orders[order.client_id] = order
    return order.client_id


def place(side: Side, price: str, size: int, level: int = 0) -> PlaceOrder:
    return PlaceOrder(OrderIntent(side, Decimal(price), Decimal(size), level))


def test_a_covered_requote_is_one_wave_with_every_cancel_and_place() -> None:
    e = engine()
    old_bid = rest(e, "b", Side.BUY, "0.0790", 1000)
    old_ask = rest(e, "a", Side.SELL, "0.0810", 1000)
    new = (place(Side.BUY, "0.0795", 1000), place(Side.SELL, "0.0805", 1000))
    actions: tuple[OrderAction, ...] = (CancelOrder(old_bid), CancelOrder(old_ask), *new)
    assert e.plan_round(actions) == (Wave(cancels=(old_bid, old_ask), places=new),)


def test_a_place_that_needs_what_a_cancel_frees_waits_for_the_cancels() -> None:
    # 1,000 USDT: the resting bid locks 800 of it, the new bid needs 790.
    e = engine(quote=1_000)
    old_bid = rest(e, "b", Side.BUY, "0.08", 10_000)
    new_bid = place(Side.BUY, "0.079", 10_000)
    new_ask = place(Side.SELL, "0.081", 1_000)
    waves = e.plan_round((CancelOrder(old_bid), new_bid, new_ask))
    assert waves == (Wave(cancels=(old_bid,), places=(new_ask,)), Wave(places=(new_bid,)))


def test_a_place_that_would_cross_an_own_order_being_cancelled_waits() -> None:
    e = engine()
    old_ask = rest(e, "a", Side.SELL, "0.0800", 100)
    jumped_bid = place(Side.BUY, "0.0801", 100)  # the market moved up past the old ask
    waves = e.plan_round((CancelOrder(old_ask), jumped_bid))
    assert waves == (Wave(cancels=(old_ask,)), Wave(places=(jumped_bid,)))


def test_place_first_keeps_the_book_quoted_then_cancels() -> None:
    e = engine("place_first", base=1_500)
    old_ask = rest(e, "a", Side.SELL, "0.0810", 1000)
    covered = place(Side.SELL, "0.0805", 500)
    needs_cancel = place(Side.SELL, "0.0806", 1000)
    waves = e.plan_round((CancelOrder(old_ask), covered, needs_cancel))
    assert waves == (
        Wave(places=(covered,)),
        Wave(cancels=(old_ask,)),
        Wave(places=(needs_cancel,)),
    )


@pytest.mark.parametrize("mode", ["cancel_first", "place_first"])
@pytest.mark.parametrize(
    ("cancel", "fits", "waits"), [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1), (1, 0, 1)]
)
def test_a_round_has_only_the_waves_with_something_in_them(
    mode: str, cancel: int, fits: int, waits: int
) -> None:
    e = engine(mode, base=1_500)
    cancels = tuple(rest(e, f"a{i}", Side.BUY, "0.0700", 10) for i in range(cancel))
    now = tuple(place(Side.SELL, "0.0805", 500, i) for i in range(fits))
    later = tuple(place(Side.SELL, "0.0806", 5_000, i) for i in range(waits))  # > the base
    waves = e.plan_round((*(CancelOrder(c) for c in cancels), *now, *later))
    full = (
        (Wave(places=now), Wave(cancels=cancels), Wave(places=later))
        if mode == "place_first"
        else (Wave(cancels=cancels, places=now), Wave(places=later))
    )
    assert waves == tuple(w for w in full if w.cancels or w.places)


def test_a_cancel_answer_of_the_wrong_length_raises_after_the_pairs_it_has() -> None:
    e = engine()
    a, b = rest(e, "a", Side.BUY, "0.0790", 10), rest(e, "b", Side.BUY, "0.0789", 10)
    with pytest.raises(ValueError, match="shorter"):
        RoundOutcomes(e).cancelled([a, b], [None], RoundState(), 0.0)
    assert list(e.open_orders) == [b]  # the pair both had went through
    with pytest.raises(ValueError, match="longer"):
        RoundOutcomes(e).cancelled([b], [None, None], RoundState(), 0.0)
    assert not e.open_orders


def test_the_fill_log_shows_numbers_at_the_markets_precision() -> None:
    # It printed fee=0E-7 and 28-digit inventories; the ledger keeps the exact values.
    e = engine()
    e.take()
    fill = Fill(
        trade_id=TradeId("t1"),
        client_id=ClientOrderId("k_1"),
        side=Side.BUY,
        price=Decimal("0.07944"),
        size=Decimal("1500"),
        fee=Decimal("0E-7"),
        fee_asset="USDT",
        ts=1.0,
    )
    e.on_fill(fill)
    (log,) = [c for c in e.take() if isinstance(c, Log) and c.event == "fill"]
    assert log.fields["price"] == "0.07944" and log.fields["size"] == "1500"
    assert log.fields["fee"] == "0.00" and log.fields["inventory"] == "11500"
