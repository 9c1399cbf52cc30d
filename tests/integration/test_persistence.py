"""State that survives restarts: halts, PnL, fills; and `kasmm reset`."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

from kasmm.store import Ledger
from tests.integration.test_supervise_process import Supervised
from tests.integration.test_supervisor import write


def tight_drawdown_profile(name: str) -> str:
    return textwrap.dedent(
        f"""\
        name: {name}
        venue:
          type: sim
          market: {{book_interval_s: 0.02, sigma_bps: 20, taker_rate_per_s: 20}}
          seed: 3
        symbol: KAS/USDT
        modes:
          aggressive: {{spread_bps: 8, size: 2000, levels: 1}}
          passive: {{spread_bps: 8, size: 2000, levels: 1}}
        kill_switch:
          max_drawdown: {{quote: 5, action: halt}}
          stale_book: null
        """
    )


def test_halt_and_pnl_survive_kill_9_until_reset(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    state = tmp_path / "state"
    write(profiles, "dd", tight_drawdown_profile("dd"))
    first = Supervised(profiles, tmp_path / "run1.jsonl", "--state-dir", str(state))
    try:
        trip = first.wait_for(lambda e: e["event"] == "kill_switch_tripped", timeout=40)
        assert trip["rule"] == "max_drawdown" and trip["action"] == "halt"
        time.sleep(0.3)  # the trip and the cancels are committed before anything else
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
    finally:
        first.close()

    with Ledger(state / "kasmm.sqlite") as ledger:
        halt = ledger.active_halt("dd")
        assert halt is not None and halt.rule == "max_drawdown"
        opening = ledger.opening("dd")
        assert opening is not None
        pnl_before = ledger.pnl_state("dd", "USDT", opening)
        fills_before = len(ledger.fills("dd"))

    second = Supervised(profiles, tmp_path / "run2.jsonl", "--state-dir", str(state))
    try:
        restored = second.wait_for(lambda e: e["event"] == "halt_restored")
        assert restored["rule"] == "max_drawdown"
        second.wait_for(lambda e: e["event"] == "supervisor_ready")
        time.sleep(0.5)
        # Halted: it quotes nothing after the restart.
        assert not any(e["event"] == "order_placed" for e in second.events())
        with Ledger(state / "kasmm.sqlite") as ledger:
            assert ledger.pnl_state("dd", "USDT", opening) == pnl_before
            assert len(ledger.fills("dd")) == fills_before
        reset = subprocess.run(
            [
                sys.executable,
                "-m",
                "kasmm",
                "reset",
                "dd",
                "--state-dir",
                str(state),
                "--operator",
                "tester",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert reset.returncode == 0, reset.stderr
        second.wait_for(lambda e: e["event"] == "kill_switch_reset", timeout=10)
        # Resumed: the profile quotes again (this volatile market may well halt it again
        # later, which is the rule working, not the reset failing).
        second.wait_for(
            lambda e: e["event"] == "trading_state_changed" and e["previous"] == "halted",
            timeout=10,
        )
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(timeout=20) == 0
    finally:
        second.close()
    assert fills_before > 0  # the PnL carried over is not trivially empty


def test_reset_rebases_the_drawdown_peak_in_a_running_supervisor(tmp_path: Path) -> None:
    """`kasmm reset` measures drawdown from the equity at the reset, in the bot and in the
    ledger at once (a restart right after the reset must not bring the old peak back)."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    state = tmp_path / "state"
    write(profiles, "dd", tight_drawdown_profile("dd"))
    sup = Supervised(profiles, tmp_path / "run.jsonl", "--state-dir", str(state))
    try:
        sup.wait_for(lambda e: e["event"] == "kill_switch_tripped", timeout=40)
        with Ledger(state / "kasmm.sqlite") as ledger:
            old_peak = ledger.peak_equity("dd")
        assert old_peak is not None
        reset = subprocess.run(
            [sys.executable, "-m", "kasmm", "reset", "dd", "--state-dir", str(state)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert reset.returncode == 0, reset.stderr
        event = sup.wait_for(lambda e: e["event"] == "kill_switch_reset", timeout=10)
        rebased = Decimal(event["peak_equity"])
        # The equity at the reset is stored in the same round: the ledger's peak is re-based.
        deadline = time.monotonic() + 10
        while True:
            with Ledger(state / "kasmm.sqlite") as ledger:
                stored = [s.equity for s in ledger.equity_series("dd") if s.equity == rebased]
                peak = ledger.peak_equity("dd")
            if stored or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert stored, "the equity at the reset was not stored"
        assert peak is not None and peak >= rebased
        # It tripped: the equity at the reset was at least the limit below the old peak,
        # unless the market recovered meanwhile; either way the old peak is not kept.
        assert rebased != old_peak
        sup.proc.send_signal(signal.SIGTERM)
        assert sup.proc.wait(timeout=20) == 0
    finally:
        sup.close()
