"""Hanging orders: which open order hangs when its pair fills, and when one is cancelled."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.core.hanging import moved_beyond, pair_of, to_cancel
from kasmm.core.types import ClientOrderId, OpenOrder, Side

D = Decimal
B, S = Side.BUY, Side.SELL


def order(cid: str, side: Side, level: int, created: float, price: str = "0.1") -> OpenOrder:
    return OpenOrder(ClientOrderId(cid), side, D(price), D(100), D(100), created, level=level)


BOOK = (
    order("b0", B, 0, 10.0),
    order("b1", B, 1, 10.0),
    order("a0", S, 0, 10.0),
    order("a1", S, 1, 10.0),
)


@pytest.mark.parametrize(
    ("filled", "orders", "held", "want"),
    [
        # the other side's order at the same level
        (BOOK[0], BOOK, set(), "a0"),
        (BOOK[1], BOOK, set(), "a1"),
        (BOOK[3], BOOK, set(), "b1"),
        # the filled order already gone from the open orders (a full fill): the same answer
        (BOOK[0], BOOK[1:], set(), "a0"),
        # no order at that level on the other side
        (BOOK[0], (BOOK[1], BOOK[3]), set(), None),
        # the pair is held already (hanging from an earlier fill): nothing new
        (BOOK[0], BOOK, {"a0"}, None),
        # a held order's own fill pairs nothing
        (BOOK[0], BOOK, {"b0"}, None),
        # place_first mid-replacement: the ask of level 0 created closest to the bid wins ...
        (
            order("b0", B, 0, 10.0),
            (order("a0-old", S, 0, 4.0), order("a0-new", S, 0, 11.0)),
            set(),
            "a0-new",
        ),
        (
            order("b0", B, 0, 5.0),
            (order("a0-old", S, 0, 4.0), order("a0-new", S, 0, 11.0)),
            set(),
            "a0-old",
        ),
        # ... and on a tie, the newer one
        (
            order("b0", B, 0, 5.0),
            (order("a0-old", S, 0, 3.0), order("a0-new", S, 0, 7.0)),
            set(),
            "a0-new",
        ),
    ],
)
def test_pair_of(
    filled: OpenOrder, orders: tuple[OpenOrder, ...], held: set[str], want: str | None
) -> None:
    got = pair_of(filled, orders, {ClientOrderId(h) for h in held})
    assert (None if got is None else got.client_id) == want


@pytest.mark.parametrize(
    ("price", "mid", "pct", "beyond"),
    [
        ("0.100", "0.100", 1.0, False),
        ("0.100", "0.101", 1.0, False),  # exactly 1 %: not more
        ("0.100", "0.10101", 1.0, True),
        ("0.100", "0.09899", 1.0, True),
        ("0.100", "0.0995", 0.25, True),
        ("2.00", "2.04", 2.5, False),
    ],
)
def test_moved_beyond(price: str, mid: str, pct: float, beyond: bool) -> None:
    assert moved_beyond(order("h", S, 0, 0.0, price), D(mid), pct) is beyond


def test_to_cancel_names_the_moved_orders_and_needs_a_mid() -> None:
    near, far = order("near", S, 0, 0.0, "0.1005"), order("far", B, 1, 0.0, "0.095")
    assert to_cancel((near, far), D("0.1"), 1.0) == (ClientOrderId("far"),)
    assert to_cancel((near, far), None, 1.0) == ()
    assert to_cancel((near, far), D("NaN"), 1.0) == ()
