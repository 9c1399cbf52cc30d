"""Hedges in the ledger: exposures, hedge orders linked to the fills they cover, recovery."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.store import DuplicateOrderError, Ledger
from kasmm.store.hedges import OpenExposure

D = Decimal
A, B = "thin", "deep"


def _fill(trade: str, client: str, side: Side, size: str, *, maker: bool = True) -> Fill:
    return Fill(
        trade_id=TradeId(trade),
        client_id=ClientOrderId(client),
        side=side,
        price=D("0.1"),
        size=D(size),
        fee=D("0"),
        fee_asset="USDT",
        ts=1000.0,
        remaining=D(0),
        is_maker=maker,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "kasmm.sqlite") as opened:
        yield opened


def test_a_hedge_order_is_linked_to_the_fills_it_covers(ledger: Ledger) -> None:
    assert ledger.recover_hedges(A, B, 1.0) == []
    for trade in ("a1", "a2"):
        assert ledger.record_fill(A, _fill(trade, "th_x1", Side.BUY, "60"))
        assert ledger.register_exposure(A, B, TradeId(trade), Side.BUY, D("60"), 2.0)
    assert not ledger.register_exposure(A, B, TradeId("a1"), Side.BUY, D("60"), 2.0)
    covers = [(TradeId("a1"), D("60")), (TradeId("a2"), D("40"))]
    ledger.record_hedge_order(B, ClientOrderId("dp_h1"), Side.SELL, D("0.099"), D("100"), 3.0,
                              A, covers)  # fmt: skip
    with pytest.raises(DuplicateOrderError):
        ledger.record_hedge_order(B, ClientOrderId("dp_h1"), Side.SELL, D("1"), D("1"), 3.0, A, [])
    # B's own fill path stores the IOC's fills and its status, as for any order of B.
    ledger.record_fill(B, _fill("b1", "dp_h1", Side.SELL, "70", maker=False))
    ledger.record_order_status(B, ClientOrderId("dp_h1"), "partially_filled", 3.1)
    ledger.record_order_status(B, ClientOrderId("dp_h1"), "cancelled", 3.1, reason="ioc_partial")
    ledger.settle_hedge_order(
        B,
        ClientOrderId("dp_h1"),
        A,
        [(TradeId("a1"), D("60")), (TradeId("a2"), D("10"))],
        [(TradeId("a1"), D("0")), (TradeId("a2"), D("50"))],
        3.2,
    )
    rows = ledger.hedged_fills(A)
    assert [(r.fill.trade_id, r.residual) for r in rows] == [("a1", D("0")), ("a2", D("50"))]
    [h1] = rows[0].hedges
    assert (h1.profile, h1.client_id, h1.side, h1.size, h1.status) == (
        B, "dp_h1", Side.SELL, D("100"), "cancelled")  # fmt: skip
    assert (h1.planned, h1.hedged) == (D("60"), D("60"))
    assert [f.trade_id for f in h1.fills] == ["b1"] and not h1.fills[0].is_maker
    assert rows[1].hedges[0].hedged == D("10")
    assert [e.status for e in ledger.order_history(B, ClientOrderId("dp_h1"))] == [
        "new", "partially_filled", "cancelled"]  # fmt: skip
    assert ledger.recover_hedges(A, B, 4.0) == [OpenExposure(TradeId("a2"), Side.BUY, D("50"))]


def test_fills_before_hedging_started_are_never_hedged(ledger: Ledger) -> None:
    ledger.record_fill(A, _fill("old", "th_x1", Side.BUY, "5"))
    assert ledger.recover_hedges(A, B, 1.0) == []
    # Stored by A while the hedging task was down: taken in at the next start.
    ledger.record_fill(A, _fill("new", "th_x2", Side.SELL, "7"))
    assert ledger.recover_hedges(A, B, 2.0) == [OpenExposure(TradeId("new"), Side.SELL, D("7"))]
    assert ledger.recover_hedges(A, B, 3.0) == [OpenExposure(TradeId("new"), Side.SELL, D("7"))]
    assert [r.fill.trade_id for r in ledger.hedged_fills(A)] == ["new"]


def test_an_order_sent_but_never_settled_is_settled_from_the_hedge_fills(ledger: Ledger) -> None:
    ledger.recover_hedges(A, B, 0.0)
    for trade in ("a1", "a2"):
        ledger.record_fill(A, _fill(trade, "th_x1", Side.SELL, "50"))
        ledger.register_exposure(A, B, TradeId(trade), Side.SELL, D("50"), 1.0)
    ledger.record_hedge_order(B, ClientOrderId("dp_h1"), Side.BUY, D("0.1"), D("100"), 2.0, A,
                              [(TradeId("a1"), D("50")), (TradeId("a2"), D("50"))])  # fmt: skip
    # A crash here: B stored 80 of it, nobody settled it.
    ledger.record_fill(B, _fill("b1", "dp_h1", Side.BUY, "80", maker=False))
    assert ledger.recover_hedges(A, B, 5.0) == [OpenExposure(TradeId("a2"), Side.SELL, D("20"))]
    links = {r.fill.trade_id: r.hedges[0].hedged for r in ledger.hedged_fills(A)}
    assert links == {"a1": D("50"), "a2": D("30")}
    # A second restart settles nothing twice.
    assert ledger.recover_hedges(A, B, 6.0) == [OpenExposure(TradeId("a2"), Side.SELL, D("20"))]
