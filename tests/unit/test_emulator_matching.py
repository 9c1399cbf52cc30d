"""The exchange-neutral matching engine of the emulators (``tests/emulators/matching.py``)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.emulators.matching import MatchingEngine
from tests.emulators.matching_types import (
    BookChange,
    Fill,
    Market,
    MatchingError,
    Order,
    OrderEvent,
    Reason,
)

D = Decimal
SYM = "KAS-USDT"
KEY = "k1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def engine(
    post_only_cross: str = "reject", fee_in: str = "received", book_seq_per: str = "level"
) -> MatchingEngine:
    """One market (tick 0.0001, lot 1, min size 1, min notional 1, fees 0.1 % / 0.2 %), an
    outside book 0.0999 / 0.1001 x 1000 (5 levels), account ``k1`` with 10 000 of each."""
    market = Market(
        SYM,
        "KAS",
        "USDT",
        D("0.0001"),
        D("1"),
        D("1"),
        D("1"),
        D("0.001"),
        D("0.002"),
        fee_in=fee_in,
    )
    eng = MatchingEngine(
        [market], Clock(), post_only_cross=post_only_cross, book_seq_per=book_seq_per
    )
    eng.add_account(KEY, {"KAS": "10000", "USDT": "10000"})
    eng.set_mid("0.1", spread_bps=20, levels=5, size=1000)
    return eng


def totals(eng: MatchingEngine, key: str = KEY) -> dict[str, tuple[Decimal, Decimal]]:
    return {a: (b.available, b.locked) for a, b in eng.accounts[key].items()}


# ---------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"symbol": "BTC-USDT"}, Reason.UNKNOWN_MARKET),
        ({"key": "nobody"}, Reason.UNKNOWN_ACCOUNT),
        ({"side": "hold"}, Reason.INVALID_PARAMETER),
        ({"tif": "day"}, Reason.INVALID_PARAMETER),
        ({"price": None}, Reason.INVALID_PARAMETER),
        ({"size": "-1"}, Reason.INVALID_PARAMETER),
        ({"price": "0.09995"}, Reason.BAD_PRICE_STEP),
        ({"size": "10.5"}, Reason.BAD_SIZE_STEP),
        ({"size": "0", "price": "0.05"}, Reason.INVALID_PARAMETER),
        ({"size": "5"}, Reason.BELOW_MIN_NOTIONAL),
        ({"size": "300000"}, Reason.INSUFFICIENT_BALANCE),
        ({"side": "sell", "size": "20000", "price": "0.2"}, Reason.INSUFFICIENT_BALANCE),
        ({"tif": "post_only", "price": "0.1001"}, Reason.WOULD_CROSS),
    ],
)
def test_refused_orders_change_nothing(kwargs: dict[str, Any], reason: Reason) -> None:
    eng = engine()
    before = totals(eng)
    args: dict[str, Any] = {"key": KEY, "symbol": SYM, "side": "buy", "price": "0.05"}
    args.update(size="100")
    args.update(kwargs)
    key, symbol, side = args.pop("key"), args.pop("symbol"), args.pop("side")
    with pytest.raises(MatchingError) as err:
        eng.place(key, symbol, side, **args)
    assert err.value.reason is reason
    assert totals(eng) == before and eng.orders == {}


def test_below_min_size() -> None:
    market = Market(SYM, "KAS", "USDT", D("0.0001"), D("1"), D("10"), D("0"))
    eng = MatchingEngine([market], Clock())
    eng.add_account(KEY, {"USDT": "100"})
    with pytest.raises(MatchingError) as err:
        eng.place(KEY, SYM, "buy", price="0.05", size="9")
    assert err.value.reason is Reason.BELOW_MIN_SIZE


def test_duplicate_client_id_among_open_orders_only() -> None:
    eng = engine()
    first = eng.place(KEY, SYM, "buy", price="0.05", size="100", client_id="a")
    with pytest.raises(MatchingError) as err:
        eng.place(KEY, SYM, "buy", price="0.05", size="100", client_id="a")
    assert err.value.reason is Reason.DUPLICATE_CLIENT_ID
    eng.add_account("k2", {"USDT": "100"})
    eng.place("k2", SYM, "buy", price="0.05", size="100", client_id="a")  # other account
    eng.cancel(KEY, client_id="a")
    again = eng.place(KEY, SYM, "buy", price="0.05", size="100", client_id="a")
    assert eng.find(KEY, client_id="a") is again and again.id != first.id


# ---------------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("side", "price", "size", "tif", "status", "filled", "reason"),
    [
        ("buy", "0.0999", "100", "gtc", "open", "0", None),
        ("buy", "0.1001", "100", "gtc", "filled", "100", None),
        ("buy", "0.1002", "1500", "gtc", "filled", "1500", None),  # two levels
        ("buy", "0.1001", "1500", "gtc", "open", "1000", None),  # rest after partial
        ("buy", "0.1001", "1500", "ioc", "canceled", "1000", "ioc"),
        ("buy", "0.1001", "1500", "fok", "canceled", "0", "fok"),
        ("buy", "0.1002", "1500", "fok", "filled", "1500", None),
        ("sell", "0.0998", "1200", "gtc", "filled", "1200", None),
        ("sell", "0.1001", "10", "post_only", "open", "0", None),
    ],
)
def test_limit_orders_take_outside_liquidity_by_price(
    side: str, price: str, size: str, tif: str, status: str, filled: str, reason: str | None
) -> None:
    eng = engine()
    order = eng.place(KEY, SYM, side, price=price, size=size, tif=tif)
    assert (order.status, order.filled, order.cancel_reason) == (status, D(filled), reason)
    assert order.locked == (0 if status != "open" else order.locked)
    open_locked = sum((o.locked for o in eng.orders_of(KEY, is_open=True)), D(0))
    assert sum((b.locked for b in eng.accounts[KEY].values()), D(0)) == open_locked


def test_fill_moves_balances_with_fee_in_received_asset() -> None:
    eng = engine()
    order = eng.place(KEY, SYM, "buy", price="0.1002", size="1500")
    # 1000 @ 0.1001 + 500 @ 0.1002, taker fee 0.2 % in KAS
    cost = D("1000") * D("0.1001") + D("500") * D("0.1002")
    assert order.filled_funds == cost and order.fee == D("3.000")
    assert totals(eng)["USDT"] == (D("10000") - cost, D(0))
    assert totals(eng)["KAS"] == (D("10000") + D("1500") - D("3"), D(0))
    fills = eng.fills(KEY)
    assert [(f.price, f.size, f.role) for f in fills] == [
        (D("0.1001"), D("1000"), "taker"),
        (D("0.1002"), D("500"), "taker"),
    ]


def test_fee_in_quote_buy_locks_the_fee_and_pays_it_in_quote() -> None:
    eng = engine(fee_in="quote")
    resting = eng.place(KEY, SYM, "buy", price="0.0995", size="100")
    assert resting.locked == D("100") * D("0.0995") * D("1.002")  # notional + the higher rate
    taker = eng.place(KEY, SYM, "buy", price="0.1001", size="100")
    fill = eng.fills(KEY, order_id=taker.id)[0]
    assert (fill.fee, fill.fee_asset) == (D("100") * D("0.1001") * D("0.002"), "USDT")
    assert totals(eng)["KAS"] == (D("10100"), D(0))
    assert totals(eng)["USDT"] == (
        D("10000") - D("10.01") - fill.fee - resting.locked,
        resting.locked,
    )
    by_funds = eng.place(KEY, SYM, "buy", type="market", funds="10.04")
    spent = by_funds.filled_funds + by_funds.fee
    assert by_funds.filled == D("100") and spent <= D("10.04") and by_funds.locked == 0


def test_outside_first_at_a_price_then_time_priority_and_self_trade() -> None:
    eng = engine()
    eng.add_account("k2", {"KAS": "10000"})
    first = eng.place("k2", SYM, "sell", price="0.1001", size="100")
    second = eng.place(KEY, SYM, "sell", price="0.1001", size="100")
    taker = eng.place(KEY, SYM, "buy", price="0.1001", size="1150")
    assert taker.status == "filled"
    assert (first.filled, second.filled) == (D("100"), D("50"))  # outside 1000 went first
    mine = [(f.order_id, f.role) for f in eng.fills(KEY)]
    assert (second.id, "maker") in mine and (taker.id, "taker") in mine  # self-trade: both
    maker_fill = next(f for f in eng.fills("k2"))
    assert maker_fill.fee == D("100") * D("0.1001") * D("0.001")  # maker rate, quote


@pytest.mark.parametrize(
    ("side", "kwargs", "status", "filled"),
    [
        ("buy", {"size": "1500"}, "filled", "1500"),
        ("buy", {"funds": "50.05"}, "filled", "500"),
        ("buy", {"funds": "50.06"}, "filled", "500"),  # 0.01 left cannot buy another lot
        ("sell", {"size": "6000"}, "canceled", "5000"),  # the book has 5 x 1000
        ("sell", {"funds": "9.99"}, "filled", "100"),
    ],
)
def test_market_orders(side: str, kwargs: dict[str, str], status: str, filled: str) -> None:
    eng = engine()
    order = eng.place(KEY, SYM, side, type="market", **kwargs)
    assert (order.status, order.filled) == (status, D(filled))
    assert order.locked == 0 and all(b.locked == 0 for b in eng.accounts[KEY].values())


@pytest.mark.parametrize(
    ("kwargs", "status", "filled"),
    [
        ({"funds": "50.06"}, "filled", "500"),  # 0.01 left cannot buy another lot
        ({"funds": "501.5"}, "filled", "5000"),  # exactly the whole side
        ({"funds": "600"}, "canceled", "0"),  # would sweep the side with funds left
        ({"size": "5000"}, "filled", "5000"),
        ({"size": "5001"}, "canceled", "0"),
    ],
)
def test_fill_or_kill_market_buys_by_funds_and_by_size(
    kwargs: dict[str, str], status: str, filled: str
) -> None:
    eng = engine()
    order = eng.place(KEY, SYM, "buy", type="market", tif="fok", **kwargs)
    assert (order.status, order.filled) == (status, D(filled))
    assert order.cancel_reason == (None if status == "filled" else "fok")
    assert all(b.locked == 0 for b in eng.accounts[KEY].values())


def test_market_order_on_an_empty_side_is_canceled_without_fills() -> None:
    eng = engine()
    eng.set_book([("0.09", "10")], [])
    order = eng.place(KEY, SYM, "buy", type="market", size="10")
    assert (order.status, order.cancel_reason, order.filled) == ("canceled", "no_liquidity", D(0))


def test_post_only_cancel_mode_accepts_then_cancels() -> None:
    eng = engine(post_only_cross="cancel")
    order = eng.place(KEY, SYM, "buy", price="0.2", size="10", tif="post_only")
    assert (order.status, order.cancel_reason, order.filled) == ("canceled", "post_only", D(0))
    assert totals(eng)["USDT"] == (D("10000"), D(0))


def test_outside_trade_fills_resting_orders_as_maker_in_price_time_priority() -> None:
    eng = engine()
    a = eng.place(KEY, SYM, "buy", price="0.0995", size="100")
    b = eng.place(KEY, SYM, "buy", price="0.0996", size="100")
    c = eng.place(KEY, SYM, "buy", price="0.0995", size="100")
    fills = eng.trade(SYM, "sell", "0.0995", "250")
    assert [f.order_id for f in fills] == [b.id, a.id, c.id]
    assert (a.status, c.filled, c.status) == ("filled", D("50"), "open")
    assert all(f.role == "maker" for f in fills)


def test_moving_the_outside_book_through_an_order_fills_it_as_maker() -> None:
    eng = engine()
    order = eng.place(KEY, SYM, "buy", price="0.0995", size="100")
    fills = eng.set_mid("0.09")
    assert [(f.order_id, f.price, f.role) for f in fills] == [(order.id, D("0.0995"), "maker")]
    bid, ask = eng.best(SYM)
    assert bid is not None and ask is not None and bid < ask
    eng.set_mid("0.1")
    again = eng.place(KEY, SYM, "buy", price="0.0995", size="100")
    assert eng.set_mid("0.09", fill_crossed=False) == [] and again.is_open


@pytest.mark.parametrize(
    ("asks", "filled"),
    [
        ([("0.0990", "50")], [("a", "50")]),  # the first order empties the level
        ([("0.0990", "60")], [("a", "50"), ("b", "10")]),
        ([("0.0990", "50"), ("0.0991", "30")], [("a", "50"), ("b", "20")]),
    ],
)
def test_a_new_outside_book_fills_crossed_orders_without_empty_fills(
    asks: list[tuple[str, str]], filled: list[tuple[str, str]]
) -> None:
    eng = engine()
    a = eng.place(KEY, SYM, "buy", price="0.0995", size="50")
    b = eng.place(KEY, SYM, "buy", price="0.0995", size="20")
    fills = eng.set_book([("0.0980", "10")], asks)
    names = {a.id: "a", b.id: "b"}
    assert [(names[f.order_id], str(f.size)) for f in fills] == filled


def amended_pair(
    post_only_cross: str = "reject", tif: str = "gtc"
) -> tuple[MatchingEngine, Order, Order]:
    """Two buys of 100 at 0.0995, ``a`` first and 40 of it filled by an outside seller."""
    eng = engine(post_only_cross)
    a = eng.place(KEY, SYM, "buy", price="0.0995", size="100", tif=tif)
    b = eng.place(KEY, SYM, "buy", price="0.0995", size="100", tif=tif)
    eng.trade(SYM, "sell", "0.0995", "40")
    return eng, a, b


@pytest.mark.parametrize(
    ("kwargs", "status", "reason", "price", "next_maker"),
    [
        ({"size": "60"}, "open", None, "0.0995", "a"),  # smaller: keeps its place
        ({"size": "100", "price": "0.0995"}, "open", None, "0.0995", "a"),  # the same terms
        ({"size": "150"}, "open", None, "0.0995", "b"),  # larger: the back of the queue
        ({"price": "0.0998"}, "open", None, "0.0998", "a"),
        ({"size": "40"}, "filled", None, "0.0995", "b"),  # down to its filled size
        ({"size": "30"}, "canceled", "user", "0.0995", "b"),  # below it
        ({"price": "0.1001"}, "filled", None, "0.1001", "b"),  # across: takes 60 as taker
    ],
)
def test_amend_keeps_the_id_and_moves_the_queue_place_only_when_it_grows_or_moves(
    kwargs: dict[str, str], status: str, reason: str | None, price: str, next_maker: str
) -> None:
    eng, a, b = amended_pair()
    events: list[OrderEvent] = []
    eng.observers.on_order.append(events.append)
    assert eng.amend(KEY, a.id, **kwargs) is a
    assert (a.status, a.cancel_reason, a.price) == (status, reason, D(price))
    assert events[0].kind == ("amended" if kwargs.get("size") not in ("40", "30") else status)
    open_locked = sum((o.locked for o in eng.orders.values() if o.is_open), D(0))
    assert totals(eng)["USDT"][1] == open_locked
    (fill,) = eng.trade(SYM, "sell", "0.0990", "1")
    assert fill.order_id == {"a": a.id, "b": b.id}[next_maker]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"size": "200000"}, Reason.INSUFFICIENT_BALANCE),
        ({"price": "0.09955"}, Reason.BAD_PRICE_STEP),
        ({"size": "5"}, Reason.BELOW_MIN_NOTIONAL),
        ({"size": "50", "order": "canceled"}, Reason.ORDER_NOT_OPEN),
    ],
)
def test_refused_amend_changes_nothing(kwargs: dict[str, str], reason: Reason) -> None:
    eng, a, _ = amended_pair()
    kwargs = dict(kwargs)
    if kwargs.pop("order", None) == "canceled":
        eng.cancel(KEY, order_id=a.id)
    before = (a.status, a.price, a.size, a.arrival, a.locked, totals(eng))
    with pytest.raises(MatchingError) as info:
        eng.amend(KEY, a.id, **kwargs)
    assert info.value.reason == reason
    assert (a.status, a.price, a.size, a.arrival, a.locked, totals(eng)) == before


@pytest.mark.parametrize(("mode", "status"), [("reject", "open"), ("cancel", "canceled")])
def test_post_only_amended_across_the_book_is_refused_or_canceled(mode: str, status: str) -> None:
    eng, a, _ = amended_pair(mode, tif="post_only")
    if mode == "reject":
        with pytest.raises(MatchingError) as info:
            eng.amend(KEY, a.id, price="0.1001")
        assert info.value.reason == Reason.WOULD_CROSS
    else:
        eng.amend(KEY, a.id, price="0.1001")
    assert (a.status, a.price, a.filled) == (status, D("0.0995"), D("40"))
    assert a.cancel_reason == (None if mode == "reject" else "post_only")


def test_cancel_unknown_done_and_cancel_all() -> None:
    eng = engine()
    with pytest.raises(MatchingError) as err:
        eng.cancel(KEY, order_id="nope")
    assert err.value.reason is Reason.UNKNOWN_ORDER
    order = eng.place(KEY, SYM, "buy", price="0.05", size="100")
    eng.cancel(KEY, order_id=order.id)
    with pytest.raises(MatchingError) as err:
        eng.cancel(KEY, order_id=order.id)
    assert err.value.reason is Reason.ORDER_NOT_OPEN
    for i in range(3):
        eng.place(
            KEY, SYM, "buy" if i % 2 else "sell", price="0.05" if i % 2 else "0.2", size="100"
        )
    assert [o.side for o in eng.cancel_all(KEY, side="sell")] == ["sell", "sell"]
    assert len(eng.cancel_all(KEY, SYM)) == 1
    assert totals(eng) == {"KAS": (D("10000"), D(0)), "USDT": (D("10000"), D(0))}


def test_dead_man_switch_fires_on_its_deadline_and_disarms() -> None:
    eng = engine()
    clock = eng.clock
    assert isinstance(clock, Clock)
    eng.place(KEY, SYM, "buy", price="0.05", size="100")
    eng.arm_cancel_all(KEY, SYM, 10)
    clock.now += 9
    assert eng.check_timers() == 0
    clock.now += 1
    assert eng.check_timers() == 1 and eng.orders_of(KEY, is_open=True) == []
    eng.place(KEY, SYM, "buy", price="0.05", size="100")
    eng.arm_cancel_all(KEY, None, 5)
    eng.arm_cancel_all(KEY, None, None)
    clock.now += 60
    assert eng.check_timers() == 0


# ---------------------------------------------------------------------- observers, sequence


def test_observers_see_events_and_sequenced_book_changes() -> None:
    eng = engine()
    books: list[BookChange] = []
    orders: list[OrderEvent] = []
    fills: list[Fill] = []
    eng.observers.on_book.append(books.append)
    eng.observers.on_order.append(orders.append)
    eng.observers.on_fill.append(fills.append)
    seq0 = eng.book(SYM).seq
    resting = eng.place(KEY, SYM, "buy", price="0.0995", size="100", client_id="r")
    taker = eng.place(KEY, SYM, "buy", price="0.1001", size="10")
    eng.cancel(KEY, order_id=resting.id)
    kinds = [(e.kind, e.order.id) for e in orders]
    assert kinds == [
        ("received", resting.id),
        ("open", resting.id),
        ("received", taker.id),
        ("match", taker.id),
        ("filled", taker.id),
        ("canceled", resting.id),
    ]
    assert orders[3].fill is fills[0] and orders[3].order.filled == D("10")
    assert [(c.side, c.price, c.size) for b in books for c in b.changes] == [
        ("buy", D("0.0995"), D("1100")),
        ("sell", D("0.1001"), D("990")),
        ("buy", D("0.0995"), D("1000")),
    ]
    seqs = [c.seq for b in books for c in b.changes]
    assert seqs == list(range(seq0 + 1, seq0 + 4))
    assert all(b.seq_start == b.changes[0].seq and b.seq_end == b.changes[-1].seq for b in books)
    assert eng.book(SYM).seq == seq0 + 3


@pytest.mark.parametrize(("per", "numbers"), [("level", 8), ("change", 1)])
def test_book_sequence_per_level_or_per_change(per: str, numbers: int) -> None:
    eng = engine(book_seq_per=per)
    books: list[BookChange] = []
    eng.observers.on_book.append(books.append)
    seq0 = eng.book(SYM).seq
    eng.set_book([("0.0999", "5"), ("0.0998", "1000")], [("0.1001", "7"), ("0.1002", "1000")])
    (change,) = books
    assert len(change.changes) == 8  # per side: the best level resized, three removed
    assert (change.seq_start, change.seq_end) == (seq0 + 1, seq0 + numbers)
    assert [c.seq for c in change.changes][-1] == eng.book(SYM).seq == seq0 + numbers


def test_book_snapshot_merges_outside_and_resting_orders() -> None:
    eng = engine()
    eng.place(KEY, SYM, "sell", price="0.1001", size="50")
    eng.place(KEY, SYM, "sell", price="0.1000", size="70", tif="post_only")
    snap = eng.book(SYM, 2)
    assert snap.asks == ((D("0.1000"), D("70")), (D("0.1001"), D("1050")))
    assert snap.bids == ((D("0.0999"), D("1000")), (D("0.0998"), D("1000")))


# ---------------------------------------------------------------------- persistence


def test_state_round_trips_through_json_and_sequences_continue() -> None:
    eng = engine()
    eng.place(KEY, SYM, "buy", price="0.0995", size="100", client_id="keep")
    eng.place(KEY, SYM, "buy", price="0.1001", size="10")
    eng.arm_cancel_all(KEY, SYM, 30)
    state = json.loads(json.dumps(eng.to_state()))
    restored = engine()
    restored.load_state(state)
    assert totals(restored) == totals(eng)
    assert restored.book(SYM).seq == eng.book(SYM).seq
    assert restored.book(SYM).bids == eng.book(SYM).bids
    assert restored.find(KEY, client_id="keep").is_open
    assert restored.fills(KEY) == eng.fills(KEY)
    assert restored.timers == eng.timers
    fresh = restored.place(KEY, SYM, "sell", price="0.2", size="10")
    assert fresh.id not in {o.id for o in eng.orders.values()}
    assert restored.book(SYM).seq == eng.book(SYM).seq + 1


# ---------------------------------------------------------------------- invariants

_ACTION = st.one_of(
    st.tuples(
        st.just("place"),
        st.sampled_from(["buy", "sell"]),
        st.integers(990, 1010),  # price in ticks of 0.0001
        st.integers(1, 3000),
        st.sampled_from(["gtc", "ioc", "fok", "post_only"]),
    ),
    st.tuples(st.just("market"), st.sampled_from(["buy", "sell"]), st.integers(1, 3000)),
    st.tuples(st.just("trade"), st.sampled_from(["buy", "sell"]), st.integers(990, 1010)),
    st.tuples(st.just("cancel"), st.integers(0, 20)),
    st.tuples(st.just("mid"), st.integers(980, 1020)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_ACTION, max_size=25), st.sampled_from(["received", "quote"]))
def test_balances_are_conserved_and_locks_belong_to_open_orders(
    actions: list[Any], fee_in: str
) -> None:
    eng = engine(fee_in=fee_in)
    start = {a: b.total for a, b in eng.accounts[KEY].items()}
    for action in actions:
        try:
            if action[0] == "place":
                _, side, ticks, size, tif = action
                eng.place(KEY, SYM, side, price=D(ticks) / 10000, size=size, tif=tif)
            elif action[0] == "market":
                eng.place(KEY, SYM, action[1], type="market", size=action[2])
            elif action[0] == "trade":
                eng.trade(SYM, action[1], D(action[2]) / 10000, 500)
            elif action[0] == "cancel":
                mine = eng.orders_of(KEY)
                if mine:
                    eng.cancel(KEY, order_id=mine[action[1] % len(mine)].id)
            else:
                eng.set_mid(D(action[1]) / 1000)
        except MatchingError:
            pass
        # every asset: start + what the fills moved == available + locked
        expected = dict(start)
        for fill in eng.fills(KEY):
            cost = fill.price * fill.size
            sign = 1 if fill.side == "buy" else -1
            expected["KAS"] += sign * fill.size
            expected["USDT"] -= sign * cost
            expected[fill.fee_asset] -= fill.fee
        balances = eng.accounts[KEY]
        assert {a: balances[a].total for a in expected} == expected
        assert all(b.available >= 0 and b.locked >= 0 for b in balances.values())
        for asset, side in (("USDT", "buy"), ("KAS", "sell")):
            held = sum((o.locked for o in eng.orders_of(KEY, is_open=True) if o.side == side), D(0))
            assert balances[asset].locked == held
        assert all(o.locked == 0 for o in eng.orders_of(KEY, is_open=False))
        bid, ask = eng.best(SYM)
        assert bid is None or ask is None or bid < ask
