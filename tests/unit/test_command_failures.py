"""Quiet, true failure output of ``kasmm run`` and ``kasmm record`` (issue 16, point 7): one
line naming the cause instead of an ExceptionGroup, and no partial recording left behind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kasmm.commands.failure import failure_reason
from kasmm.commands.record import record_command
from kasmm.commands.run import run_command
from kasmm.errors import TransientVenueError


def _closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _unreachable(tmp_path: Path, venue: str) -> Path:
    path = tmp_path / "down.yaml"
    path.write_text(
        f"venue:\n{venue}  rest_url: http://127.0.0.1:{_closed_port()}\n"
        "  use_websocket: false\n"
        "  timeout_s: 2\n"
        "symbol: KAS/USDT\n"
        "modes:\n"
        "  passive: {spread_bps: 60, size: 500}\n"
        "kill_switch: {max_drawdown: {pct: 5}, max_daily_loss: {quote: 50}}\n"
    )
    return path


def test_run_against_an_unreachable_venue_prints_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("K", "key")
    monkeypatch.setenv("S", "secret")
    ccxt = '  type: ccxt\n  exchange: gate\n  credentials: {api_key: "${K}", secret: "${S}"}\n'
    path = _unreachable(tmp_path, ccxt)
    code = run_command(path, duration=5, summary_json=None, state_dir=tmp_path / "state")
    assert code == 1
    err = capsys.readouterr().err
    [line] = err.splitlines()
    assert line.startswith(f"{path}: down: gate load_markets: ExchangeNotAvailable: ")
    assert "Traceback" not in err and "ExceptionGroup" not in err


def test_a_failed_recording_leaves_no_file_and_keeps_an_earlier_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _unreachable(tmp_path, "  type: paper\n  exchange: mexc\n")
    out = tmp_path / "market.csv"
    assert record_command(path, out=out, duration=1) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}: down: ") and "ExceptionGroup" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["down.yaml"]
    out.write_text("an earlier recording\n")
    assert record_command(path, out=out, duration=1) == 1
    assert out.read_text() == "an earlier recording\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["down.yaml", "market.csv"]


def test_failure_reason_flattens_groups_into_one_line() -> None:
    venue = TransientVenueError("gate load_markets: ExchangeNotAvailable: down")
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [venue]), OSError("disk\nfull")])
    assert failure_reason(group) == (
        "gate load_markets: ExchangeNotAvailable: down; OSError: disk full"
    )
    assert failure_reason(ExceptionGroup("x", [venue, venue])) == str(venue)
    assert failure_reason(RuntimeError()) == "RuntimeError"
