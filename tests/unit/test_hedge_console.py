"""``kasmm top`` and ``kasmm status`` show a hedged profile's residual and hedges."""

from __future__ import annotations

from typing import Any

from kasmm.console import rows
from kasmm.console.details import profile_detail

ROW: dict[str, Any] = {
    "name": "thin",
    "tick": "0.000001",
    "lot": "0.01",
    "mid": "0.08",
    "hedge": {
        "hedge_profile": "deep",
        "residual": "-1200.5",
        "unhedged_fills": 2,
        "hedges_sent": 14,
        "hedged_base": "20431.27",
        "avg_slippage_bps": 6.04,
        "in_flight": None,
        "max_unhedged_base": "1000",
        "tripped": True,
        "last_error": "TransientVenueError: exchange\\nunreachable",
    },
}


def test_hedge_lines_and_why() -> None:
    assert rows.hedge_lines(ROW) == [
        "hedge onto deep: residual -1200.50 (limit 1000, TRIPPED), 2 fills open",
        "hedges sent 14, hedged 20431.27, slippage 6.0 bps",
        "hedge error: TransientVenueError: exchange\\nunreachable",
    ]
    assert rows.why(ROW) == "hedge residual -1200.5 beyond 1000"
    assert rows.hedge_lines({"name": "x"}) == [] and rows.hedge_lines({"hedge": 3}) == []


def test_profile_detail_shows_the_hedge() -> None:
    lines = profile_detail({"profiles": [ROW]}, ROW)
    assert any(line.startswith("hedge onto deep: residual") for line in lines)
