"""kasmm.obs.money: one precision per market, never exponent notation, never -0."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.core.pnl import PnlParts
from kasmm.obs.money import NumberFormat, fixed, money_places, plain, pnl_dict, step_places

D = Decimal
KAS_USDT = NumberFormat.for_market(D("0.000001"), D("0.01"))


@pytest.mark.parametrize(
    ("step", "places"),
    [("0.000001", 6), ("0.0000010", 6), ("0.5", 1), ("1", 0), ("1E+1", 0), ("1E-10", 10)],
)
def test_step_places(step: str, places: int) -> None:
    assert step_places(D(step)) == places


@pytest.mark.parametrize(
    ("tick", "places"),
    [("0.000001", 2), ("1E-10", 6), ("0.00000001", 4), ("0.01", 2), ("1", 2)],
)
def test_money_places_follow_the_tick(tick: str, places: int) -> None:
    assert money_places(D(tick)) == places


@pytest.mark.parametrize(
    ("value", "text"),
    [
        # the examples: 28 digits and an exponent
        (D("5.920788990000000000000000772"), "5.92"),
        (D("0E-7"), "0.00"),
        (D("-0.004"), "0.00"),  # never -0.00
        (D("-1.005"), "-1.00"),  # half-even
        (D("1.015"), "1.02"),
        (D("18.9"), "18.90"),
        (D("1E+3"), "1000.00"),
        (2.675, "2.68"),  # a float through its repr, not its binary expansion (2.67499...)
        (None, "-"),
        (float("nan"), "-"),
    ],
)
def test_money_on_kas_usdt(value: Decimal | float | None, text: str) -> None:
    assert KAS_USDT.money(value) == text


def test_prices_and_sizes_on_kas_usdt() -> None:
    assert KAS_USDT.price(D("0.0800123")) == "0.080012"
    assert KAS_USDT.price(D("0.08")) == "0.080000"
    assert KAS_USDT.size(D("1234.5")) == "1234.50"
    assert KAS_USDT.money(D("5.92"), sign=True) == "+5.92"
    assert KAS_USDT.money(D("-0.001"), sign=True) == "0.00"


def test_without_a_tick_the_price_level_stands_in() -> None:
    assert NumberFormat.for_price(D("0.0801")) == NumberFormat(6, 2)
    assert NumberFormat.for_price(1.2e-6) == NumberFormat(10, 6)
    assert NumberFormat.for_market(None, None, D("0.08")) == NumberFormat(6, 2)
    assert NumberFormat.for_market(D("0.0001"), D("1"), D("0.08")) == NumberFormat(4, 2, 0)


def test_nothing_known_trims_at_eight_places() -> None:
    unknown = NumberFormat()
    assert unknown.money(D("0E-7")) == "0"
    assert unknown.money(D("5.920788990000000000000000772")) == "5.92078899"
    assert unknown.price(D("0.0800")) == "0.08"
    assert unknown.money(D("-1E-12"), sign=True) == "0"
    assert unknown.money(D("3.5"), sign=True) == "+3.5"


def test_plain_is_exact_without_exponent() -> None:
    assert plain(D("0E-7")) == "0"
    assert plain(D("1E+3")) == "1000"
    assert plain(D("-0.0")) == "0"
    assert plain(D("5.920788990000000000000000772")) == "5.920788990000000000000000772"
    assert plain(D("1.50")) == "1.5"


def test_fixed_handles_huge_values() -> None:
    assert fixed(D("1E+30"), 2) == "1" + "0" * 30 + ".00"


def test_pnl_dict_rounded_and_exact() -> None:
    parts = PnlParts(D("1.234"), D("18.9"), D("0E-7"), D("20.134"), D("18.9"), D("1.234"))
    assert pnl_dict(parts, KAS_USDT) == {
        "spread_capture": "1.23",
        "revaluation": "18.90",
        "fees": "0.00",
        "net": "20.13",
        "hold": "18.90",
        "vs_hold": "1.23",
    }
    assert KAS_USDT.pnl(parts) == pnl_dict(parts, KAS_USDT)
    assert pnl_dict(parts)["fees"] == "0"
    assert pnl_dict(parts)["net"] == "20.134"
