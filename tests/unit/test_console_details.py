"""The console's detail pane lists the selected profile's recent fills, rounded to its market."""

from __future__ import annotations

import time
from typing import Any

from kasmm.console.details import RECENT_SHOWN, profile_detail


def test_recent_fills_are_listed_newest_first_at_the_markets_precision() -> None:
    ts = time.mktime((2026, 12, 5, 18, 30, 5, 0, 0, -1))
    row = {
        "name": "kas-usdt-sim",
        "symbol": "KAS/USDT",
        "venue": "sim",
        "state": "quoting",
        "tick": "0.000001",
        "lot": "0.01",
        "recent_fills": [
            {"ts": ts, "side": "sell", "price": "0.080056", "size": "1500", "fee": "0.0240168",
             "fee_asset": "USDT", "maker": True},
            {"ts": ts - 60, "side": "buy", "price": "0.079944", "size": "1039.85",
             "fee": "0E-7", "fee_asset": "USDT", "maker": True},
        ] + [{"ts": ts - 120, "side": "buy", "price": "0.0799", "size": "1", "fee": "0",
              "fee_asset": "USDT"}] * 20,
    }  # fmt: skip
    lines = profile_detail({"profiles": [row]}, row)
    head = next(i for i, line in enumerate(lines) if line.startswith("recent fills (22"))
    listed = lines[head + 1 : head + 1 + RECENT_SHOWN]
    assert listed[0].split() == ["18:30:05", "sell", "0.080056", "1500.00", "0.02", "USDT"]
    assert listed[1].split() == ["18:29:05", "buy", "0.079944", "1039.85", "0.00", "USDT"]
    assert not lines[head + 1 + RECENT_SHOWN].startswith("  1")  # at most RECENT_SHOWN shown
    assert all("E-" not in line for line in lines)


def test_the_shared_markets_show_their_books_source_and_age() -> None:
    from kasmm.console.details import supervisor_detail

    markets = {
        "mexc:KAS/USDT": {"source": "websocket", "age_s": 0.25, "subscribers": 3,
                          "feed": "running", "books": 10, "failures": 0, "last_error": None},
        "gate:KAS/USDT": {"source": None, "age_s": None, "subscribers": 1, "feed": "running",
                          "books": 0, "failures": 2, "last_error": "NetworkError: reset"},
    }  # fmt: skip
    row = {"name": "a", "symbol": "KAS/USDT", "venue": "mexc", "state": "quoting",
           "market": "mexc:KAS/USDT"}  # fmt: skip
    doc = {"supervisor": {"pid": 1}, "markets": markets, "profiles": [row]}
    assert "market mexc:KAS/USDT  book websocket age 0.2s  readers 3  feed running" in (
        profile_detail(doc, row)
    )
    lines = supervisor_detail(doc)
    start = lines.index("shared markets (2):")
    assert lines[start + 1] == "  mexc:KAS/USDT  book websocket age 0.2s  readers 3  feed running"
    assert lines[start + 2] == (
        "  gate:KAS/USDT  book - age no book yet  readers 1  feed running"
        "  failures 2: NetworkError: reset"
    )


def test_a_referencing_profile_shows_what_priced_it_and_each_sources_age() -> None:
    deep = "sim-deep:KAS/USDT"
    ref: dict[str, Any] = {
        "price": "0.080123",
        "source": deep,
        "problem": None,
        "deviation_pct": 0.0312,
        "age_s": {deep: 0.14},
    }
    row: dict[str, Any] = {"name": "thin", "symbol": "KAS/USDT", "venue": "sim-thin",
                           "state": "quoting", "tick": "0.000001", "lot": "0.01",
                           "reference": ref}  # fmt: skip
    doc = {"supervisor": {"pid": 1}, "profiles": [row]}
    lines = profile_detail(doc, row)
    assert f"priced off {deep} 0.080123 (+0.03 % from own mid)" in lines
    assert f"reference ages  {deep} 0.1s" in lines
    row["reference"] = {**ref, "price": None, "problem": "reference_stale", "age_s": {deep: None}}
    lines = profile_detail(doc, row)
    assert f"priced off {deep} - (+0.03 % from own mid), PAUSED: reference_stale" in lines
    assert f"reference ages  {deep} no book yet" in lines
