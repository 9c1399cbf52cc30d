"""Repairs of ccxt.pro's own trades (``kasmm.venues.ccxt.ws_trades``): what is left alone.

The repairs themselves are checked on trades ccxt.pro parsed from the emulators' streams
(``test_emulator_bingx.py``, ``test_emulator_mexc_ws.py``).
"""

from __future__ import annotations

from typing import Any

import pytest

from kasmm.venues.ccxt.ws_trades import repaired

REST_BINGX = {"id": "1", "amount": 40.0, "price": 0.1, "info": {"qty": "40", "price": "0.1"}}
REST_MEXC = {"id": "2", "takerOrMaker": "maker", "info": {"isMaker": True, "qty": "5"}}
WS_MEXC_TAKER: dict[str, Any] = {
    "id": "3",
    "takerOrMaker": "taker",
    "info": {"tradeType": 1, "price": "0.1"},
}


@pytest.mark.parametrize(
    ("exchange", "trade"),
    [
        ("bingx", REST_BINGX),  # a REST trade: no executionReport fields
        ("bingx", {**REST_BINGX, "info": {"x": "NEW", "l": "0", "L": "0"}}),  # not a fill
        ("bingx", {**REST_BINGX, "info": {"x": "TRADE", "l": "nan", "L": "0.1"}}),  # garbage
        ("bingx", {**REST_BINGX, "info": {"x": "TRADE", "l": "0", "L": "0.1"}}),
        ("mexc", REST_MEXC),  # the JSON shape: ccxt reads it right
        ("gate", {**REST_BINGX, "info": {"x": "TRADE", "l": "1", "L": "2"}}),  # not BingX
    ],
)
def test_trades_outside_the_known_misreadings_pass_unchanged(
    exchange: str, trade: dict[str, Any]
) -> None:
    assert repaired(exchange, trade) is trade


def test_a_protobuf_deal_without_is_maker_is_a_taker_fill() -> None:
    # proto3 omits a false boolean: no isMaker means taker.
    assert repaired("mexc", WS_MEXC_TAKER)["takerOrMaker"] == "taker"
    maker = {**WS_MEXC_TAKER, "info": {**WS_MEXC_TAKER["info"], "isMaker": True}}
    out = repaired("mexc", maker)
    assert out["takerOrMaker"] == "maker" and maker["takerOrMaker"] == "taker"  # a new dict
