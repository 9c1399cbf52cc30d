"""``kasmm backtest`` / ``kasmm record`` on the command line, and the ``replay`` market model."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from kasmm.backtest import run_backtest
from kasmm.backtest.replay import ReplayVenue
from kasmm.cli import main
from kasmm.clock import VirtualClock
from kasmm.commands.run import run_profile
from kasmm.config.loader import load_file
from kasmm.config.schema import ReplayMarket, SimVenueConfig
from kasmm.limiter import TokenBucket
from kasmm.venues.factory import build_venue

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "replay_sample.csv"
PROFILE = ROOT / "profiles" / "kas-usdt-sim.yaml"


def replay_profile(tmp_path: Path) -> Path:
    out = tmp_path / "replay.yaml"
    out.write_text(
        "name: replay\n"
        "venue:\n"
        "  type: sim\n"
        f"  market: {{model: replay, path: {SAMPLE}, queue_position: back}}\n"
        "symbol: KAS/USDT\n"
        "modes:\n"
        "  aggressive: {spread_bps: 10, size: 1000}\n"
        "  passive: {spread_bps: 14, size: 1000, levels: 2}\n"
    )
    return out


def test_cli_backtest_sweep_writes_the_json_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    code = main(
        [
            "backtest",
            str(PROFILE),
            "--market",
            "as2008",
            "--paths",
            "2",
            "--workers",
            "1",
            "--set",
            "modes.aggressive.spread_bps=100",
            "--sweep",
            "modes.passive.spread_bps=100,200",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 2 and len(doc["runs"]) == 2
    assert "modes.passive.spread_bps=200" in capsys.readouterr().out


def test_replay_profile_validates_and_backtests_without_data(tmp_path: Path) -> None:
    path = replay_profile(tmp_path)
    loaded, issues = load_file(path)
    assert not issues
    profile = loaded[0].profile
    assert isinstance(profile.venue, SimVenueConfig)
    assert isinstance(profile.venue.market, ReplayMarket)
    result = run_backtest(profile, workers=1)  # market and data from the profile
    assert result.market == "replay" and result.data == str(SAMPLE)
    assert main(["backtest", str(path), "--workers", "1"]) == 0


def test_build_venue_serves_a_replay_profile_and_kasmm_run_replays_it(tmp_path: Path) -> None:
    profile = load_file(replay_profile(tmp_path))[0][0].profile
    clock = VirtualClock(0.0)
    venue = build_venue(profile, clock, TokenBucket(20, 10, clock))
    inner = venue
    while not isinstance(inner, ReplayVenue):
        inner = inner.inner  # type: ignore[attr-defined]
    summary = anyio.run(lambda: run_profile(profile, duration=None, clock=VirtualClock(0.0)))
    assert summary.open_orders_left == 0 and summary.decisions > 300
