"""``kasmm run``'s summary: the PnL attribution, exact in JSON, rounded in the table."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from kasmm.clock import VirtualClock
from kasmm.commands.run import run_profile
from tests.support import demo_profile

MONEY = re.compile(r"^-?\d+\.\d{2}$")  # KAS/USDT: 2 places
PRICE = re.compile(r"^\d+\.\d{6}$")  # the demo's tick 0.000001


@pytest.mark.anyio
async def test_summary_carries_the_parts_exact_and_prints_them_rounded() -> None:
    summary = await run_profile(demo_profile(), duration=900, clock=VirtualClock(1_000_000.0))
    assert summary.fills_buy > 0 and summary.fills_sell > 0
    doc = summary.to_json()
    assert "fmt" not in doc
    pnl = {k: Decimal(v) for k, v in doc["pnl"].items()}
    assert list(pnl) == ["spread_capture", "revaluation", "fees", "net", "hold", "vs_hold"]
    # Exact strings: the parts add up to the cent and beyond.
    assert pnl["spread_capture"] + pnl["revaluation"] - pnl["fees"] == pnl["net"]
    assert pnl["net"] - pnl["hold"] == pnl["vs_hold"]
    assert pnl["net"] == Decimal(doc["mtm_pnl"])
    assert pnl["spread_capture"] == Decimal(doc["realized_pnl"])
    assert pnl["revaluation"] == Decimal(doc["unrealized_pnl"])
    # The demo starts holding KAS: holding it alone would have moved with the market.
    assert pnl["hold"] != 0
    for key, value in doc.items():
        if isinstance(value, str):
            assert "E" not in value, (key, value)  # never exponent notation

    table = dict(summary.table_rows())
    for part in pnl:
        assert MONEY.match(table[f"pnl.{part}"]), (part, table[f"pnl.{part}"])
        assert Decimal(table[f"pnl.{part}"]) == pnl[part].quantize(Decimal("0.01"))
    for key in ("realized_pnl", "unrealized_pnl", "fees", "mtm_pnl", "volume_quote"):
        assert MONEY.match(table[key]), (key, table[key])
    assert PRICE.match(table["final_mid"]), table["final_mid"]
