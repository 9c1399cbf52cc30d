"""The pure hedger (kasmm.core.hedge): windows, carry-over, pricing, settlement, the residual."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kasmm.core.hedge import (
    Exposure,
    HedgeParams,
    HedgeState,
    hedge_price,
    links_of,
    residual_changes,
    unhedged_trip,
)
from kasmm.core.types import Book, BookLevel, ClientOrderId, MarketRules, Side, TradeId

D = Decimal
RULES = MarketRules(
    "KAS/USDT", "KAS", "USDT", tick=D("0.0001"), lot=D("1"), min_notional=D("1"), min_size=D("5")
)
PARAMS = HedgeParams(
    window_s=0.2,
    min_base=D("10"),
    max_slippage_bps=D("25"),
    retry_s=2.0,
    max_unhedged_base=D("1000"),
)


def _book(bid: str = "0.1000", ask: str = "0.1002") -> Book:
    return Book((BookLevel(D(bid), D("1e6")),), (BookLevel(D(ask), D("1e6")),), 0.0)


def _fill(state: HedgeState, tid: str, side: Side, size: str, now: float) -> HedgeState:
    return state.on_fill(TradeId(tid), side, D(size), now, PARAMS)


def test_fills_within_the_window_are_one_hedge() -> None:
    s = _fill(HedgeState(), "t1", Side.BUY, "100", 10.0)
    s = _fill(s, "t2", Side.BUY, "50", 10.1)
    s = _fill(s, "t3", Side.SELL, "30", 10.15)  # nets against t1 first
    assert s.due_at == pytest.approx(10.2)
    s, order, _ = s.decide(10.19, _book(), RULES, PARAMS)
    assert order is None
    s, order, _ = s.decide(10.2, _book(), RULES, PARAMS)
    assert order is not None
    assert (order.side, order.size) == (Side.SELL, D("120"))
    assert order.covers == (
        Exposure(TradeId("t1"), Side.BUY, D("70"), netted=(TradeId("t3"),)),
        Exposure(TradeId("t2"), Side.BUY, D("50")),
    )
    # The order is linked to every fill of the window, t3 with nothing of its own to offset.
    assert links_of(order) == (("t1", D("70")), ("t2", D("50")), ("t3", D("0")))
    assert order.mid == D("0.1001")
    s = s.sent(order, ClientOrderId("b_x1"), 10.2)
    assert s.open == () and s.due_at is None and s.orders_sent == 1
    assert s.residual == D("120")


def test_fills_netted_to_nothing_are_linked_to_the_next_order() -> None:
    s = _fill(HedgeState(), "t1", Side.BUY, "100", 0.0)
    s = _fill(s, "t2", Side.SELL, "100", 0.1)
    s, order, _ = s.decide(0.2, _book(), RULES, PARAMS)
    assert order is None and s.open == () and s.netted == ("t2", "t1")
    s = _fill(s, "t3", Side.BUY, "50", 1.0)
    s, order, _ = s.decide(1.2, _book(), RULES, PARAMS)
    assert order is not None and order.size == D("50")
    assert links_of(order) == (("t3", D("50")), ("t2", D("0")), ("t1", D("0")))
    s = s.sent(order, ClientOrderId("b_1"), 1.2)
    assert s.netted == ()


def test_a_net_below_min_base_is_carried_to_the_next_fill() -> None:
    s = _fill(HedgeState(), "t1", Side.BUY, "6", 0.0)
    s, order, _ = s.decide(0.2, _book(), RULES, PARAMS)
    assert order is None and s.due_at is None and s.residual == D("6")
    s = _fill(s, "t2", Side.BUY, "6", 5.0)
    s, order, _ = s.decide(5.2, _book(), RULES, PARAMS)
    assert order is not None and order.size == D("12")
    assert [c.trade_id for c in order.covers] == ["t1", "t2"]


def test_size_is_rounded_down_to_the_lot_and_the_rest_stays_open() -> None:
    s = _fill(HedgeState(), "t1", Side.SELL, "20.7", 0.0)
    s, order, _ = s.decide(0.2, _book(), RULES, PARAMS)
    assert order is not None and (order.side, order.size) == (Side.BUY, D("20"))
    s = s.sent(order, ClientOrderId("b_1"), 0.2)
    assert s.open == (Exposure(TradeId("t1"), Side.SELL, D("0.7")),)
    assert s.per_fill() == {"t1": D("20.7")}


def test_venue_minimums_carry_too() -> None:
    rules = MarketRules("KAS/USDT", "KAS", "USDT", D("0.0001"), D("1"), min_notional=D("5"))
    s = _fill(HedgeState(), "t1", Side.BUY, "40", 0.0)  # 40 x 0.1 = 4 < 5 quote
    s, order, _ = s.decide(0.2, _book(), rules, PARAMS)
    assert order is None and s.due_at is None


@pytest.mark.parametrize(
    ("side", "bps", "expected"),
    [
        # buy at most best_ask x (1 + x), rounded down: 0.1002 x 1.0025 = 0.1004505 -> 0.1004
        (Side.BUY, "25", "0.1004"),
        # sell at least best_bid x (1 - x), rounded up: 0.1 x 0.9975 = 0.09975 -> 0.0998
        (Side.SELL, "25", "0.0998"),
        # less than a tick of room: the touch itself
        (Side.BUY, "1", "0.1002"),
        (Side.SELL, "1", "0.1000"),
    ],
)
def test_slippage_cap_and_rounding_toward_less_slippage(
    side: Side, bps: str, expected: str
) -> None:
    assert hedge_price(side, _book(), RULES, D(bps)) == D(expected)


@pytest.mark.parametrize(
    ("side", "own", "expected"),
    [
        # The hedge profile's own ask at 0.1003: a buy stops a tick short of it.
        (Side.BUY, "0.1003", "0.1002"),
        (Side.BUY, "0.1010", "0.1004"),  # beyond the cap: the cap
        (Side.BUY, "0.1002", None),  # its own order is the touch: nothing to take
        (Side.SELL, "0.0999", "0.1000"),
        (Side.SELL, "0.0990", "0.0998"),
    ],
)
def test_the_ioc_never_reaches_the_hedge_profiles_own_orders(
    side: Side, own: str, expected: str | None
) -> None:
    price = hedge_price(side, _book(), RULES, D("25"), D(own))
    assert price == (None if expected is None else D(expected))


def test_no_book_side_retries_later() -> None:
    empty = Book((BookLevel(D("0.1"), D("5")),), (), 0.0)
    s = _fill(HedgeState(), "t1", Side.BUY, "100", 0.0)
    s, order, _ = s.decide(0.2, empty, RULES, PARAMS)  # a sell needs bids: there are
    assert order is not None
    s = _fill(HedgeState(), "t1", Side.SELL, "100", 0.0)
    s, order, _ = s.decide(0.2, empty, RULES, PARAMS)  # a buy needs asks: none
    assert order is None and s.due_at == pytest.approx(2.2)
    s, order, _ = s.decide(1.0, None, None, PARAMS)
    assert order is None


def _sent(size: str = "100") -> HedgeState:
    s = _fill(HedgeState(), "t1", Side.BUY, size, 0.0)
    s, order, _ = s.decide(0.2, _book(), RULES, PARAMS)
    assert order is not None
    return s.sent(order, ClientOrderId("b_1"), 0.2)


def test_full_fill_settles_once_the_fills_add_up() -> None:
    s = _sent()
    s = s.on_answer(ClientOrderId("b_1"), D("100"), 0.25, PARAMS)
    s, order, settled = s.decide(0.25, _book(), RULES, PARAMS)
    assert settled is None and order is None  # answered, fills not in yet
    s = s.on_hedge_fill(ClientOrderId("b_1"), TradeId("x1"), D("60"), D("0.1000"))
    s = s.on_hedge_fill(ClientOrderId("b_1"), TradeId("x1"), D("60"), D("0.1000"))  # repeat
    s = s.on_hedge_fill(ClientOrderId("b_1"), TradeId("x2"), D("40"), D("0.0999"))
    assert s.ready()
    s, order, settled = s.decide(0.3, _book(), RULES, PARAMS)
    assert order is None and settled is not None
    assert settled.hedged == D("100") and settled.parts == (("t1", D("100"), D("100")),)
    assert settled.average_price == D("0.09996")
    # mid at send 0.1001; sold at 0.09996 on average: 14 bps through the mid
    assert settled.slippage_bps == pytest.approx(13.986, abs=1e-3)
    assert s.residual == 0 and s.per_fill() == {} and s.due_at is None
    assert s.hedged_base == D("100") and s.average_slippage_bps == settled.slippage_bps


def test_partial_fill_then_retry_then_done() -> None:
    s = _sent()
    s = s.on_hedge_fill(ClientOrderId("b_1"), TradeId("x1"), D("70"), D("0.1"))
    s = s.on_answer(ClientOrderId("b_1"), D("70"), 0.3, PARAMS)
    s, order, settled = s.decide(0.3, _book(), RULES, PARAMS)
    assert settled is not None and settled.parts == (("t1", D("100"), D("70")),)
    assert order is None and s.due_at == pytest.approx(2.3)  # retried after retry_s
    assert s.per_fill() == {"t1": D("30")} and s.residual == D("30")
    s, order, _ = s.decide(2.29, _book("0.0990", "0.0992"), RULES, PARAMS)
    assert order is None
    s, order, _ = s.decide(2.3, _book("0.0990", "0.0992"), RULES, PARAMS)
    assert order is not None and order.size == D("30")
    assert order.price == D("0.0988")  # against the book of then
    s = s.sent(order, ClientOrderId("b_2"), 2.3)
    s = s.on_hedge_fill(ClientOrderId("b_2"), TradeId("x2"), D("30"), D("0.099"))
    s = s.on_answer(ClientOrderId("b_2"), D("30"), 2.31, PARAMS)
    s, _, settled = s.decide(2.31, _book(), RULES, PARAMS)
    assert settled is not None and s.residual == 0 and s.per_fill() == {}
    assert s.orders_sent == 2


def test_expired_and_refused_orders_are_retried() -> None:
    s = _sent().on_answer(ClientOrderId("b_1"), D("0"), 0.3, PARAMS)
    s, _, settled = s.decide(0.3, _book(), RULES, PARAMS)
    assert settled is not None and settled.hedged == 0 and settled.slippage_bps is None
    assert s.due_at == pytest.approx(2.3) and s.residual == D("100")
    s = _sent().on_refused(ClientOrderId("b_1"), 0.4)
    s, _, settled = s.decide(0.4, _book(), RULES, PARAMS)
    assert settled is not None and s.due_at == pytest.approx(2.4)


def test_a_lost_answer_settles_on_the_fills_seen_after_retry_s() -> None:
    s = _sent().on_answer(ClientOrderId("b_1"), None, 0.3, PARAMS)
    s = s.on_hedge_fill(ClientOrderId("b_1"), TradeId("x1"), D("40"), D("0.1"))
    s, _, settled = s.decide(2.0, _book(), RULES, PARAMS)
    assert settled is None
    s, _, settled = s.decide(2.3, _book(), RULES, PARAMS)
    assert settled is not None and settled.hedged == D("40") and s.residual == D("60")


def test_an_answer_beyond_the_fills_seen_counts_when_time_is_up() -> None:
    s = _sent().on_answer(ClientOrderId("b_1"), D("100"), 0.3, PARAMS)
    s, _, settled = s.decide(2.3, _book(), RULES, PARAMS)
    assert settled is not None and settled.hedged == D("100") and s.residual == 0
    assert settled.average_price == D("0.0998")  # no fill seen: at worst its limit


def test_fills_during_flight_wait_for_their_window_and_net_with_leftovers() -> None:
    s = _sent()
    s = _fill(s, "t2", Side.SELL, "30", 0.25)  # opposite side while b_1 is out
    assert s.open == (Exposure(TradeId("t2"), Side.SELL, D("30")),)
    s = s.on_answer(ClientOrderId("b_1"), D("0"), 0.3, PARAMS)  # expired
    s, order, settled = s.decide(0.45, _book(), RULES, PARAMS)
    assert settled is not None
    # t1's 100 came back and netted t2's 30: 70 left of t1, sent at t2's window end.
    assert s.per_fill() == {"t1": D("70")}
    assert order is not None and (order.side, order.size) == (Side.SELL, D("70"))


def test_recovery_is_due_at_once() -> None:
    s = HedgeState().recovered(
        (Exposure(TradeId("a"), Side.BUY, D("50")), Exposure(TradeId("b"), Side.SELL, D("20"))),
        7.0,
    )
    assert s.per_fill() == {"a": D("30")} and s.residual == D("30") and s.due_at == 7.0
    assert HedgeState().recovered((), 7.0).due_at is None


def test_residual_changes() -> None:
    before = {TradeId("a"): D("5"), TradeId("b"): D("1")}
    after = {TradeId("a"): D("2"), TradeId("c"): D("4")}
    assert set(residual_changes(before, after)) == {("a", D("2")), ("c", D("4")), ("b", D("0"))}


def test_unhedged_trip() -> None:
    s = _fill(HedgeState(), "t1", Side.SELL, "1000", 0.0)
    assert unhedged_trip(s, PARAMS, 1.0) is None  # at the limit: not beyond it
    s = _fill(s, "t2", Side.SELL, "1", 0.0)
    trip = unhedged_trip(s, PARAMS, 1.0)
    assert trip is not None
    assert (trip.rule, trip.action, trip.value, trip.limit) == (
        "max_unhedged_base", "pause", 1001.0, 1000.0)  # fmt: skip


# --- the invariant: residual == A's net filled minus B's net hedged ------------------------

_steps = st.lists(
    st.one_of(
        st.tuples(st.just("fill"), st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 400)),
        st.tuples(st.just("tick"), st.floats(0.0, 3.0), st.just(0)),
        st.tuples(st.just("hedge_fill"), st.floats(0.0, 1.0), st.just(0)),
        st.tuples(
            st.just("answer"), st.sampled_from(["all", "seen", "lost", "refused"]), st.just(0)
        ),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_residual_is_always_a_net_minus_b_net(steps: list[tuple[str, object, object]]) -> None:
    s, now, n = HedgeState(), 0.0, 0
    a_net = b_net = D(0)
    fills: set[str] = set()
    linked: set[str] = set()
    for kind, x, y in steps:
        if kind == "fill":
            assert isinstance(x, Side) and isinstance(y, int)
            n += 1
            s = s.on_fill(TradeId(f"t{n}"), x, D(y), now, PARAMS)
            a_net += D(y) * x.sign
            fills.add(f"t{n}")
        elif kind == "tick":
            assert isinstance(x, float)
            now += x
            s, order, _ = s.decide(now, _book(), RULES, PARAMS)
            if order is not None:
                n += 1
                s = s.sent(order, ClientOrderId(f"b{n}"), now)
                linked.update(t for t, _ in links_of(order))
        elif s.in_flight is not None:
            flight = s.in_flight
            left = flight.order.size - flight.filled
            if kind == "hedge_fill" and flight.settle_at is None and left > 0:
                assert isinstance(x, float)
                size = max(D(1), (left * D(repr(x))).quantize(D(1)))
                n += 1
                s = s.on_hedge_fill(flight.client_id, TradeId(f"x{n}"), size, D("0.1"))
                b_net += size * flight.order.side.sign
            elif kind == "answer" and flight.settle_at is None:
                if x == "all":  # the venue filled the rest: its fills arrive now
                    if left > 0:
                        n += 1
                        s = s.on_hedge_fill(flight.client_id, TradeId(f"x{n}"), left, D("0.1"))
                        b_net += left * flight.order.side.sign
                    s = s.on_answer(flight.client_id, flight.order.size, now, PARAMS)
                elif x == "seen":
                    s = s.on_answer(flight.client_id, flight.filled, now, PARAMS)
                elif x == "lost":
                    s = s.on_answer(flight.client_id, None, now, PARAMS)
                elif flight.filled == 0:
                    s = s.on_refused(flight.client_id, now)
        assert s.residual == a_net + b_net
        # The same residual from the exposures: open ones, the covers in flight, less what
        # the order in flight filled so far.
        out = s.in_flight
        held = sum((e.signed for e in s.open), D(0))
        if out is not None:
            held += sum((e.signed for e in out.order.covers), D(0))
            held += out.filled * out.order.side.sign
        assert held == s.residual
        sides = {e.side for e in s.open}
        assert len(sides) <= 1  # the open exposures never hold both sides
        # Every fill is still open, linked to an order sent, or waiting to be linked.
        waiting = {t for e in s.open for t in (e.trade_id, *e.netted)} | set(s.netted)
        assert fills <= linked | waiting | set(s.per_fill())
