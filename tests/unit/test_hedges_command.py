"""``kasmm hedges PROFILE``: each hedged fill with its linked hedge orders, read-only."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.commands.hedges import hedges_command
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.store import Ledger
from kasmm.store.state_dir import ledger_path

D = Decimal


def _fill(trade: str, client: str, side: Side, size: str) -> Fill:
    return Fill(TradeId(trade), ClientOrderId(client), side, D("0.1"), D(size), D(0), "USDT", 9.0)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    with Ledger(ledger_path(tmp_path)) as ledger:
        ledger.recover_hedges("thin", "deep", 0.0)
        for trade in ("a1", "a2"):
            ledger.record_fill("thin", _fill(trade, "th_1", Side.SELL, "50"))
            ledger.register_exposure("thin", "deep", TradeId(trade), Side.SELL, D("50"), 9.0)
        ledger.record_hedge_order("deep", ClientOrderId("dp_1"), Side.BUY, D("0.11"), D("50"),
                                  9.5, "thin", [(TradeId("a1"), D("50"))], D("0.1"))  # fmt: skip
        ledger.record_fill("deep", _fill("x1", "dp_1", Side.BUY, "50"))
        ledger.record_order_status("deep", ClientOrderId("dp_1"), "filled", 9.6)
        ledger.settle_hedge_order("deep", ClientOrderId("dp_1"), "thin", [(TradeId("a1"),
                                  D("50"))], [(TradeId("a1"), D("0"))], 9.6)  # fmt: skip
    return tmp_path


def test_json_lists_every_fill_with_its_hedges(state: Path) -> None:
    out = io.StringIO()
    assert hedges_command("thin", state, as_json=True, out=out) == 0
    doc = json.loads(out.getvalue())
    assert [f["trade_id"] for f in doc["fills"]] == ["a1", "a2"]
    [hedge] = doc["fills"][0]["hedges"]
    assert (hedge["profile"], hedge["client_id"], hedge["status"]) == ("deep", "dp_1", "filled")
    assert (hedge["planned"], hedge["hedged"], hedge["mid"]) == ("50", "50", "0.1")
    assert [x["trade_id"] for x in hedge["fills"]] == ["x1"]
    assert doc["fills"][1]["hedges"] == [] and doc["unhedged"] == ["a2"]


def test_text_and_check(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert hedges_command("thin", state, check=True, out=out) == 1  # a2 is not offset yet
    text = out.getvalue()
    assert "a1  sell  50 @ 0.1  residual 0" in text
    assert "-> deep dp_1 buy 50 @ 0.11 filled: planned 50, offset 50, filled 50 in 1 fills" in text
    assert text.endswith("2 fills taken in for hedging, 1 linked to a hedge order, 1 with a "
                         "residual\n")  # fmt: skip
    assert hedges_command("deep", state) == 2
    assert "no hedged fill of 'deep'" in capsys.readouterr().err
    assert hedges_command("thin", state / "nowhere") == 2
