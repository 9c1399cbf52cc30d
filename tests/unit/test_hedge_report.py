"""``kasmm report``'s hedging section, from the ledger's hedge links."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.report.gather import gather
from kasmm.report.page import hedging
from kasmm.store import Ledger

D = Decimal


def _fill(trade: str, client: str, side: Side, price: str, size: str, ts: float) -> Fill:
    return Fill(TradeId(trade), ClientOrderId(client), side, D(price), D(size), D(0), "USDT", ts,
                is_maker=client.startswith("th"))  # fmt: skip


def test_the_report_shows_the_hedges_and_their_slippage(tmp_path: Path) -> None:
    with Ledger(tmp_path / "kasmm.sqlite") as ledger:
        ledger.recover_hedges("thin", "deep", 0.0)
        for trade, size in (("a1", "600"), ("a2", "400")):
            ledger.record_fill("thin", _fill(trade, "th_1", Side.BUY, "0.1000", size, 10.0))
            ledger.register_exposure("thin", "deep", TradeId(trade), Side.BUY, D(size), 10.0)
        ledger.record_hedge_order("deep", ClientOrderId("dp_1"), Side.SELL, D("0.0990"),
                                  D("1000"), 11.0, "thin",
                                  [(TradeId("a1"), D("600")), (TradeId("a2"), D("400"))],
                                  D("0.1000"))  # fmt: skip
        ledger.record_fill("deep", _fill("x1", "dp_1", Side.SELL, "0.0999", "800", 11.0))
        ledger.settle_hedge_order(
            "deep", ClientOrderId("dp_1"), "thin",
            [(TradeId("a1"), D("600")), (TradeId("a2"), D("200"))],
            [(TradeId("a1"), D("0")), (TradeId("a2"), D("200"))], 11.5,
        )  # fmt: skip
        data = gather(ledger, "thin", None, 100.0, None)
        assert gather(ledger, "deep", None, 100.0, None).hedges is None
    h = data.hedges
    assert h is not None
    assert (h.hedge_profiles, h.fills, h.offset, h.linked, h.orders) == (("deep",), 2, 1, 2, 1)
    assert (h.residual, h.hedged) == (D("200"), D("800"))
    # Sold at 0.0999 against a mid of 0.1000: 10 bps through it.
    assert h.avg_slippage_bps == pytest.approx(10.0) and h.max_slippage_bps == pytest.approx(10.0)
    html = hedging(data)
    assert "deep" in html and "mean 10.0 bps" in html and "200" in html
