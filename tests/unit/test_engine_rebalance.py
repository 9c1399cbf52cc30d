"""The engine's rebalance orders (:mod:`kasmm.bot.rebalancer`), driven through Engine.decide."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kasmm.bot.commands import Log, PlaceIoc, RecordOrder
from kasmm.bot.engine import Engine
from kasmm.bot.rebalancer import REBALANCE_LEVEL, STALE
from kasmm.bot.stats import BotState
from kasmm.bot.view import build_view
from kasmm.console.details import profile_detail
from kasmm.core.held import REBALANCE
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
from kasmm.errors import RequestTimedOut
from kasmm.store import OrderOpened
from kasmm.supervisor.status import view_fields
from kasmm.venues.base import IocOutcome
from tests.support import demo_profile, kill_switch_only

D = Decimal
RULES = MarketRules(
    symbol="KAS/USDT",
    base="KAS",
    quote="USDT",
    tick=D("0.00001"),
    lot=D(1),
    min_notional=D(1),
    taker_fee=D("0.0005"),
)
BOOK = Book((BookLevel(D("0.07990"), D(50_000)),), (BookLevel(D("0.08010"), D(50_000)),), 0.0)


def engine(order: str = "post_only", *, base: int = 100_000, quote: int = 0, **ks: Any) -> Engine:
    profile = demo_profile(
        inventory={
            "rebalance": {
                "order": order,
                "max_size": 20_000,
                "max_slippage_bps": 30,
                "min_interval_s": 60,
            }
        },
        kill_switch=kill_switch_only(**ks),
    )
    e = Engine(profile, venue_name="sim", run_tag="t0000000")
    e.connected(RULES)
    e.account.inventory.base, e.account.inventory.quote = D(base), D(quote)
    assert e.on_book(BOOK, 0.0)
    return e


def rebalance_places(actions: tuple[OrderAction, ...]) -> list[PlaceOrder]:
    return [a for a in actions if isinstance(a, PlaceOrder) and a.intent.level == REBALANCE_LEVEL]


def logged(e: Engine, event: str) -> list[dict[str, Any]]:
    return [dict(c.fields) for c in e.take() if isinstance(c, Log) and c.event == event]


def place(e: Engine, action: PlaceOrder, at: float) -> ClientOrderId:
    """What a driver does with a placement the venue accepts."""
    request = e.orders.request_for(action.intent)
    i = action.intent
    order = OpenOrder(request.client_id, i.side, i.price, i.size, i.size, created_at=at)
    e.orders.placed(request, i.level, order, at, at)
    return request.client_id


def test_a_profile_without_rebalance_has_no_rebalancer() -> None:
    assert Engine(demo_profile(), venue_name="sim", run_tag="t0000000").rebalancer is None


def test_post_only_order_rests_held_until_stale_then_is_repriced() -> None:
    e = engine()
    _, actions = e.decide(1.0, 1.0)
    [rebalance] = rebalance_places(actions)
    intent = rebalance.intent
    # one tick inside the others' ask, at most max_size
    assert (intent.side, intent.price, intent.size) == (Side.SELL, D("0.08009"), D(20_000))
    [event] = logged(e, "rebalance_order")
    assert event["order"] == "post_only" and event["reason"] == "above_max_share"
    assert event["share"] == 1.0
    cid = place(e, rebalance, 1.0)
    assert e.held == {cid: REBALANCE}
    # Within min_interval_s: neither reconciled away nor sent again.
    _, actions = e.decide(30.0, 30.0)
    assert cid not in {a.client_id for a in actions if isinstance(a, CancelOrder)}
    assert not rebalance_places(actions)
    assert e.rebalancer is not None and e.rebalancer.last is not None
    assert e.rebalancer.last.status == "resting" and e.rebalancer.last.client_id == cid
    # Stale: cancelled and a new one priced in the same round.
    _, actions = e.decide(61.0, 61.0)
    assert CancelOrder(cid, STALE) in actions
    [again] = rebalance_places(actions)
    assert e.rebalancer.sent["post_only"] == 2
    # The replaced order's end is reported once its cancel is confirmed, the new one rests.
    e.orders.cancelled(cid, None, 61.0)
    new = place(e, again, 61.0)
    e.take()
    e.decide(62.0, 62.0)
    [done] = logged(e, "rebalance_done")
    assert (done["client_id"], done["status"], done["filled"]) == (cid, "cancelled", "0")
    assert e.held == {new: REBALANCE}
    assert e.rebalancer.last is not None and e.rebalancer.last.client_id == new


def test_a_replaced_order_whose_cancel_failed_is_cancelled_again() -> None:
    e = engine()
    _, actions = e.decide(1.0, 1.0)
    old = place(e, rebalance_places(actions)[0], 1.0)
    _, actions = e.decide(61.0, 61.0)  # the cancel fails: the old order still rests
    new = place(e, rebalance_places(actions)[0], 61.0)
    _, actions = e.decide(62.0, 62.0)
    cancels = {a.client_id for a in actions if isinstance(a, CancelOrder)}
    assert old in cancels and new not in cancels
    assert not rebalance_places(actions)


def test_post_only_order_is_cancelled_once_the_share_is_back_in_its_band() -> None:
    e = engine()
    _, actions = e.decide(1.0, 1.0)
    cid = place(e, rebalance_places(actions)[0], 1.0)
    e.account.inventory.base, e.account.inventory.quote = D(50_000), D(4_000)
    _, actions = e.decide(2.0, 2.0)
    assert CancelOrder(cid, STALE) in actions
    assert not rebalance_places(actions)


def test_a_filled_post_only_order_reports_its_outcome() -> None:
    e = engine()
    _, actions = e.decide(1.0, 1.0)
    cid = place(e, rebalance_places(actions)[0], 1.0)
    e.take()
    fill = Fill(
        trade_id=TradeId("t1"),
        client_id=cid,
        side=Side.SELL,
        price=D("0.08009"),
        size=D(20_000),
        fee=D(0),
        fee_asset="USDT",
        ts=5.0,
        remaining=D(0),
        is_maker=True,
    )
    e.on_fill(fill, 5.0)
    e.decide(6.0, 6.0)
    [done] = logged(e, "rebalance_done")
    assert (done["status"], done["filled"], done["order"]) == ("filled", "20000", "post_only")
    assert e.rebalancer is not None and e.rebalancer.last is not None
    assert e.rebalancer.last.status == "filled"


def test_a_rejected_post_only_order_waits_for_the_interval() -> None:
    e = engine()
    e.decide(1.0, 1.0)  # the placement never comes back accepted
    _, actions = e.decide(2.0, 2.0)
    assert not rebalance_places(actions)
    assert e.rebalancer is not None and e.rebalancer.last is not None
    assert e.rebalancer.last.status == "rejected"
    _, actions = e.decide(61.0, 61.0)
    assert len(rebalance_places(actions)) == 1


def test_ioc_goes_out_as_a_command_after_its_ledger_row() -> None:
    e = engine("ioc")
    _, actions = e.decide(1.0, 1.0)
    assert not rebalance_places(actions)
    commands = e.take()
    rows = [c.entry for c in commands if isinstance(c, RecordOrder)]
    iocs = [c for c in commands if isinstance(c, PlaceIoc)]
    assert len(iocs) == 1
    request = iocs[0].request
    assert request.is_ioc and request.side is Side.SELL
    # 30 bps through the others' bid (0.0799 * 0.997 = 0.0796603), rounded up to the tick
    assert request.price == D("0.07967") and request.size == D(20_000)
    assert rows == [
        OrderOpened(
            request.client_id, Side.SELL, request.price, request.size, 1.0, "new", REBALANCE_LEVEL
        )
    ]
    row_at = next(i for i, c in enumerate(commands) if isinstance(c, RecordOrder))
    assert row_at < commands.index(iocs[0])
    assert e.rebalancer is not None
    e.rebalancer.answered(
        request, IocOutcome(request.client_id, D(20_000), D("0.0798"), "filled"), None
    )
    [done] = logged(e, "rebalance_done")
    assert (done["status"], done["filled"], done["order"]) == ("filled", "20000", "ioc")
    # at most one per min_interval_s
    e.decide(30.0, 30.0)
    assert not [c for c in e.take() if isinstance(c, PlaceIoc)]
    e.decide(61.0, 61.0)
    assert len([c for c in e.take() if isinstance(c, PlaceIoc)]) == 1


def test_ioc_stops_short_of_the_profiles_own_bid() -> None:
    e = engine("ioc")
    own = OpenOrder(ClientOrderId("own"), Side.BUY, D("0.07980"), D(100), D(100), created_at=0.0)
    e.open_orders[own.client_id] = own
    e.decide(1.0, 1.0)
    [ioc] = [c for c in e.take() if isinstance(c, PlaceIoc)]
    assert ioc.request.price == D("0.07981")


@pytest.mark.parametrize(
    ("order", "trip", "sent"),
    [
        ("ioc", Trip("portfolio", "reduce_only", 1.0, 0.5, 0.0, ""), True),
        ("post_only", Trip("portfolio", "reduce_only", 1.0, 0.5, 0.0, ""), False),
        ("ioc", Trip("portfolio", "pause", 1.0, 0.5, 0.0, "", 60.0), False),
        ("ioc", Trip("portfolio", "halt", 1.0, 0.5, 0.0, ""), False),
    ],
)
def test_only_while_trading_is_allowed(order: str, trip: Trip, sent: bool) -> None:
    e = engine(order)
    e.external_trip(trip, "portfolio:test")
    _, actions = e.decide(1.0, 1.0)
    commands = e.take()
    went = bool(rebalance_places(actions)) or any(isinstance(c, PlaceIoc) for c in commands)
    assert went is sent


def test_inside_the_band_nothing_is_sent() -> None:
    e = engine("ioc", base=50_000, quote=4_000)
    _, actions = e.decide(1.0, 1.0)
    assert not rebalance_places(actions)
    assert not [c for c in e.take() if isinstance(c, PlaceIoc)]


def test_status_and_the_top_detail_pane_show_the_latest_rebalance() -> None:
    e = engine("ioc")
    e.decide(1.0, 1.0)
    [request] = [c.request for c in e.take() if isinstance(c, PlaceIoc)]
    assert e.rebalancer is not None
    e.rebalancer.answered(
        request, IocOutcome(request.client_id, D(12_000), D("0.0798"), "partial"), None
    )
    view = build_view(e, BotState.QUOTING, 2.0, 0)
    fields = view_fields(view, 2.0)
    assert fields["rebalance"]["orders"] == {"post_only": 0, "ioc": 1}
    assert fields["rebalance"]["last"]["status"] == "partial"
    row = {"name": "p1", "symbol": "KAS/USDT", "venue": "sim", "state": "quoting",
           "tick": "0.00001", "lot": "1", **fields}  # fmt: skip
    lines = profile_detail({"supervisor": {"pid": 1}, "profiles": [row]}, row)
    assert (
        "rebalance post_only 0 ioc 1  last sell 20000 @ 0.07967 ioc: partial, filled 12000"
        " (share 1.000, above_max_share)"
    ) in lines


def test_the_top_detail_pane_has_no_rebalance_line_without_the_setting() -> None:
    e = Engine(demo_profile(), venue_name="sim", run_tag="t0000000")
    e.connected(RULES)
    assert e.on_book(BOOK, 0.0)
    e.decide(1.0, 1.0)
    row = {"name": "p1", **view_fields(build_view(e, BotState.QUOTING, 1.0, 0), 1.0)}
    assert not any(line.startswith("rebalance ") for line in profile_detail({}, row))


def test_an_ioc_whose_answer_was_lost_is_settled_by_its_late_fills() -> None:
    e = engine("ioc")
    e.decide(1.0, 1.0)
    [request] = [c.request for c in e.take() if isinstance(c, PlaceIoc)]
    assert e.rebalancer is not None
    e.rebalancer.answered(request, None, RequestTimedOut("no answer within 10 s"))
    assert e.rebalancer.last is not None and e.rebalancer.last.status == "failed"
    # It executed after all: its fills come, and no answer will.
    for n, size in enumerate((D(12_000), D(8_000))):
        fill = Fill(
            trade_id=TradeId(f"t{n}"),
            client_id=request.client_id,
            side=Side.SELL,
            price=D("0.0798"),
            size=size,
            fee=D(0),
            fee_asset="USDT",
            ts=2.0 + n,
            remaining=request.size - D(12_000) - n * D(8_000),
            is_maker=False,
        )
        e.on_fill(fill, 2.0 + n)
        last = e.rebalancer.last
        assert last is not None
        assert (last.status, last.filled) == (("partial", D(12_000)), ("filled", D(20_000)))[n]
