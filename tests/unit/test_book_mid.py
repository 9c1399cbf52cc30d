"""A book's mid and its float, computed once and handed over to the book without our orders."""

from __future__ import annotations

import random
from decimal import Decimal

from kasmm.core.quoting import exclude_own, market_mid
from kasmm.core.types import Book, BookLevel, ClientOrderId, OpenOrder, Side

D = Decimal


def level(price: str, size: str = "100") -> BookLevel:
    return BookLevel(D(price), D(size))


def test_mid_float_is_the_float_of_the_mid_bit_for_bit() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        bid = D(rng.randint(1, 10**9)) / 10 ** rng.randint(0, 12)
        ask = bid + D(rng.randint(0, 10**6)) / 10 ** rng.randint(0, 12)
        book = Book((BookLevel(bid, D(1)),), (BookLevel(ask, D(1)),), 0.0)
        fmid = book.mid_float
        mid = book.mid
        assert mid is not None
        assert repr(fmid) == repr(float(mid)) and book.mid_float is fmid  # kept, not redone
    assert Book((), (level("1"),), 0.0).mid_float is None
    assert Book((level("1"),), (), 0.0).mid_float is None


def test_with_levels_hands_over_the_mid_only_for_the_same_top_levels() -> None:
    bids, asks = (level("0.0999"), level("0.0998")), (level("0.1001"), level("0.1002"))
    book = Book(bids, asks, 5.0)
    assert book.mid_float == float(D("0.1"))
    same_top = book.with_levels(bids[:1], asks)
    assert same_top == Book(bids[:1], asks, 5.0)
    assert same_top.mid is book.mid and same_top.mid_float is book.mid_float
    other_top = book.with_levels(bids[1:], asks)
    assert other_top.mid == D("0.09995") and other_top.mid_float == float(D("0.09995"))
    # an equal level, another object: computed afresh (and equal)
    equal_top = book.with_levels((level("0.0999"),), asks)
    assert equal_top.mid == book.mid and equal_top.mid_float == book.mid_float
    assert book.with_levels((), asks).mid_float is None


def test_the_book_without_our_orders_has_the_mid_market_mid_computes() -> None:
    rng = random.Random(2)
    for step in range(500):
        bids = tuple(level(f"0.{999 - i:04d}", str(rng.randint(1, 300))) for i in range(3))
        asks = tuple(level(f"0.{1001 + i:04d}", str(rng.randint(1, 300))) for i in range(3))
        book = Book(bids, asks, float(step))
        if step % 2:
            assert book.mid_float is not None  # computed before the copy, as the engine does
        orders = [
            OpenOrder(
                ClientOrderId(f"k_{step}_{i}"),
                side,
                (bids if side is Side.BUY else asks)[rng.randrange(3)].price,
                D(100),
                D(rng.randint(1, 200)),
                0.0,
            )
            for i, side in enumerate(rng.choices((Side.BUY, Side.SELL), k=rng.randint(0, 3)))
        ]
        others = exclude_own(book, orders)
        mid, why = market_mid(others)
        assert (others.mid, others.mid_float) == (
            (mid, float(mid)) if mid is not None else (None, None)
        ), why
