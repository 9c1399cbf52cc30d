"""The fill memory, the cooldown gate and ping-pong (Hummingbot's balance rule)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kasmm.core.after_fill import (
    COOLDOWN,
    NO_FILLS,
    PING_PONG,
    FillMemory,
    apply_cooldown,
    apply_ping_pong,
    cooldown_left,
    remember,
)
from kasmm.core.quoting import QuoteDecision
from kasmm.core.types import ClientOrderId, OrderIntent, Quotes, Side

D = Decimal
B, S = Side.BUY, Side.SELL


def cid(n: str) -> ClientOrderId:
    return ClientOrderId(n)


def three_levels() -> QuoteDecision:
    quotes = Quotes(
        tuple(OrderIntent(B, D("0.099") - D("0.001") * i, D(100), i) for i in range(3)),
        tuple(OrderIntent(S, D("0.101") + D("0.001") * i, D(100), i) for i in range(3)),
    )
    return QuoteDecision(quotes, D("0.1"), 0.1, 20.0, 0.0, 0.5, None, "ok")


# --- the memory ----------------------------------------------------------------------------


def test_remember_records_the_side_and_time_of_each_fill() -> None:
    m = remember(NO_FILLS, B, cid("a"), 5.0, done=True)
    assert (m.last_buy_at, m.last_sell_at) == (5.0, None)
    m = remember(m, S, cid("b"), 7.0, done=True)
    assert (m.last_buy_at, m.last_sell_at, m.balance) == (5.0, 7.0, 0)


@pytest.mark.parametrize(
    ("fills", "balance"),
    [
        # (side, order, done): each order's first fill counts once for its side
        ([(B, "a", True)], 1),
        ([(B, "a", False), (B, "a", False), (B, "a", True)], 1),  # one order in three pieces
        ([(B, "a", True), (B, "b", True)], 2),
        ([(B, "a", True), (S, "x", True)], 0),  # level: back to zero
        ([(B, "a", True), (B, "b", True), (S, "x", False), (S, "x", True)], 1),
        ([(S, "x", True), (S, "y", True), (S, "z", True)], -3),
        ([(S, "x", True), (B, "a", True), (B, "b", True)], 1),
    ],
)
def test_ping_pong_balance(fills: list[tuple[Side, str, bool]], balance: int) -> None:
    m = NO_FILLS
    open_ids = {cid(o) for _, o, _ in fills}
    for i, (side, order, done) in enumerate(fills):
        m = remember(m, side, cid(order), float(i), done=done, still_open=open_ids)
    assert m.balance == balance
    assert not m.counted  # every order finished


def test_a_partly_filled_order_is_remembered_until_it_closes() -> None:
    m = remember(NO_FILLS, B, cid("a"), 1.0, done=False, still_open={cid("a")})
    assert m.counted == {cid("a")}
    # "a" was cancelled meanwhile: the next fill (another order) forgets it
    m = remember(m, S, cid("x"), 2.0, done=True, still_open={cid("x")})
    assert m.counted == frozenset() and m.balance == 0


@pytest.mark.parametrize(
    ("memory", "side", "delay", "now", "left"),
    [
        (NO_FILLS, B, 10.0, 5.0, 0.0),
        (FillMemory(last_buy_at=1.0), B, 10.0, 5.0, 6.0),
        (FillMemory(last_buy_at=1.0), S, 10.0, 5.0, 0.0),
        (FillMemory(last_buy_at=1.0), B, 10.0, 11.0, 0.0),  # exactly over
        (FillMemory(last_buy_at=1.0), B, 0.0, 1.0, 0.0),  # off
        (FillMemory(last_sell_at=4.0), S, 2.5, 5.0, 1.5),
    ],
)
def test_cooldown_left(
    memory: FillMemory, side: Side, delay: float, now: float, left: float
) -> None:
    assert cooldown_left(memory, side, delay, now) == pytest.approx(left)


# --- the gates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory", "now", "bids", "asks", "reason"),
    [
        (NO_FILLS, 100.0, 3, 3, "ok"),
        (FillMemory(last_buy_at=95.0), 100.0, 0, 3, COOLDOWN),
        (FillMemory(last_sell_at=95.0), 100.0, 3, 0, COOLDOWN),
        (FillMemory(last_buy_at=95.0, last_sell_at=99.0), 100.0, 0, 0, COOLDOWN),
        (FillMemory(last_buy_at=90.0), 100.0, 3, 3, "ok"),  # 10 s is over
        (FillMemory(last_buy_at=89.0, last_sell_at=95.0), 100.0, 3, 0, COOLDOWN),
    ],
)
def test_apply_cooldown(memory: FillMemory, now: float, bids: int, asks: int, reason: str) -> None:
    d = three_levels()
    out = apply_cooldown(d, memory, 10.0, now)
    assert (len(out.quotes.bids), len(out.quotes.asks), out.reason) == (bids, asks, reason)
    if (bids, asks) == (3, 3):
        assert out is d


@pytest.mark.parametrize(
    ("balance", "bid_levels", "ask_levels", "reason"),
    [
        (0, (0, 1, 2), (0, 1, 2), "ok"),
        (1, (1, 2), (0, 1, 2), "ok"),  # one buy unmatched: the best bid goes
        (2, (2,), (0, 1, 2), "ok"),
        (3, (), (0, 1, 2), PING_PONG),  # n >= levels: no bids
        (7, (), (0, 1, 2), PING_PONG),
        (-1, (0, 1, 2), (1, 2), "ok"),
        (-3, (0, 1, 2), (), PING_PONG),
    ],
)
def test_apply_ping_pong(
    balance: int, bid_levels: tuple[int, ...], ask_levels: tuple[int, ...], reason: str
) -> None:
    d = three_levels()
    out = apply_ping_pong(d, balance)
    assert tuple(i.level for i in out.quotes.bids) == bid_levels
    assert tuple(i.level for i in out.quotes.asks) == ask_levels
    assert out.reason == reason
    if balance == 0:
        assert out is d


def test_ping_pong_on_one_level_alternates_the_sides() -> None:
    """After a buy only the ask is quoted, after the sell that answers it both again."""
    one = QuoteDecision(
        Quotes((OrderIntent(B, D("0.099"), D(1)),), (OrderIntent(S, D("0.101"), D(1)),)),
        D("0.1"), 0.1, 20.0, 0.0, 0.5, None, "ok",
    )  # fmt: skip
    m = remember(NO_FILLS, B, cid("a"), 1.0, done=True)
    out = apply_ping_pong(one, m.balance)
    assert not out.quotes.bids and out.quotes.asks and out.one_sided is S
    m = remember(m, S, cid("x"), 2.0, done=True)
    assert apply_ping_pong(one, m.balance) is one


@given(st.lists(st.tuples(st.sampled_from([B, S]), st.integers(0, 5), st.booleans()), max_size=30))
def test_the_balance_is_the_difference_of_first_fills_and_gates_never_add(
    fills: list[tuple[Side, int, bool]],
) -> None:
    m = NO_FILLS
    first: dict[str, Side] = {}
    done: set[str] = set()
    t = 0.0
    for side_of_fill, n, finished in fills:
        order = f"{side_of_fill.value}{n}"
        if order in done:
            continue  # a finished order fills no more
        first.setdefault(order, side_of_fill)
        open_ids = {cid(o) for o in first if o not in done}
        t += 1.0
        m = remember(m, side_of_fill, cid(order), t, done=finished, still_open=open_ids)
        if finished:
            done.add(order)
    buys = sum(1 for s in first.values() if s is B)
    assert m.balance == buys - (len(first) - buys)
    d = three_levels()
    pp = apply_ping_pong(d, m.balance)
    assert len(pp.quotes.bids) == max(0, 3 - max(m.balance, 0))
    assert len(pp.quotes.asks) == max(0, 3 - max(-m.balance, 0))
    out = apply_cooldown(pp, m, 1.5, t)
    assert set(out.quotes.all) <= set(pp.quotes.all)
    if m.last_buy_at == t:
        assert not out.quotes.bids
