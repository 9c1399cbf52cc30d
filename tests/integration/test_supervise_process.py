"""`kasmm supervise` as a real process: SIGTERM leaves no orders, SIGHUP reloads, and signals
during start-up and during the shutdown are handled (never a kill, never a traceback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kasmm.daemon import exit_codes
from tests.integration.test_supervisor import profile_yaml, write


class Supervised:
    """A `kasmm supervise` child process whose JSON log is read from a file."""

    def __init__(
        self, directory: Path, log_path: Path, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kasmm",
                "--log-format",
                "json",
                "supervise",
                str(directory),
                "--metrics-addr",
                "",
                "--no-watch",
                "--state-dir",
                str(directory / "state"),
                *extra,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"},
        )

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if pred(event):
                    return event
            assert self.proc.poll() is None, self.log_path.read_text()
            time.sleep(0.05)
        raise AssertionError(f"timed out; log:\n{self.log_path.read_text()[-3000:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Callable[..., Supervised]]:
    made: list[Supervised] = []

    def start(directory: Path, *extra: str) -> Supervised:
        s = Supervised(directory, tmp_path / f"log{len(made)}.jsonl", *extra)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()


def test_sigterm_cancels_every_order_and_exits_zero(
    tmp_path: Path, supervised: Callable[..., Supervised]
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for i, name in enumerate(("a", "b", "c")):
        write(profiles, name, profile_yaml(name, calm=False, seed=i + 1))
    sup = supervised(profiles)
    sup.wait_for(lambda e: e["event"] == "supervisor_ready")
    time.sleep(0.5)
    sup.proc.send_signal(signal.SIGTERM)
    assert sup.proc.wait(timeout=20) == 0
    events = sup.events()
    stopped = [e for e in events if e["event"] == "bot_stopped"]
    assert sorted(e["profile"] for e in stopped) == ["a", "b", "c"]
    assert all(e["orders_left"] == 0 for e in stopped)
    final = [e for e in events if e["event"] == "supervisor_stopped"]
    assert final and final[-1]["orders_left"] == 0
    # Every log line of a profile carries its context.
    placed = [e for e in events if e["event"] == "bot_started"]
    assert all({"profile", "venue", "symbol"} <= e.keys() for e in placed)


def test_sighup_reloads_the_changed_profile_only(
    tmp_path: Path, supervised: Callable[..., Supervised]
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for name in ("a", "b"):
        write(profiles, name, profile_yaml(name))
    sup = supervised(profiles)
    sup.wait_for(lambda e: e["event"] == "supervisor_ready")
    write(profiles, "b", profile_yaml("b", spread=35))
    time.sleep(0.3)  # --no-watch: nothing may happen before the signal
    assert not any(e["event"] == "profiles_reloaded" for e in sup.events())
    sup.proc.send_signal(signal.SIGHUP)
    reloaded = sup.wait_for(lambda e: e["event"] == "profiles_reloaded")
    assert reloaded["restarted"] == ["b"] and reloaded["unchanged"] == 1
    sup.proc.send_signal(signal.SIGINT)
    assert sup.proc.wait(timeout=20) == 0


#: Every request to the simulated venue takes this long, so a stop of one profile (four
#: cancels, then cancel-all and a listing to verify) lasts about two seconds: time to signal
#: the process again while it is shutting down.
LATENCY_MS = 300


def slow_profiles(tmp_path: Path) -> Path:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = profile_yaml("a", calm=False).replace("seed: 1", f"seed: 1\n  latency_ms: {LATENCY_MS}")
    write(profiles, "a", text)
    return profiles


def stopping(sup: Supervised, first: signal.Signals) -> None:
    """Wait until every profile quotes, send ``first``, wait until the shutdown has begun."""
    sup.wait_for(lambda e: e["event"] == "supervisor_ready", timeout=30)
    sup.proc.send_signal(first)
    sup.wait_for(lambda e: e["event"] == "shutdown_requested")


def events(sup: Supervised) -> list[str]:
    return [e["event"] for e in sup.events()]


def test_sighup_during_shutdown_is_ignored_and_the_shutdown_completes(
    tmp_path: Path, supervised: Callable[..., Supervised]
) -> None:
    sup = supervised(slow_profiles(tmp_path))
    stopping(sup, signal.SIGTERM)
    sup.proc.send_signal(signal.SIGHUP)
    assert sup.proc.wait(timeout=30) == exit_codes.OK
    names = events(sup)
    # Ignored while stopping (not after: it came before the final line), and logged.
    assert names.index("reload_ignored") < names.index("supervisor_stopped")
    assert "profiles_reloaded" not in names and "reload_requested" not in names
    stopped = [e for e in sup.events() if e["event"] == "bot_stopped"]
    assert [(e["profile"], e["orders_left"]) for e in stopped] == [("a", 0)]
    assert "Traceback" not in sup.log_path.read_text()


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_second_stop_signal_forces_a_logged_exit_without_traceback(
    tmp_path: Path, supervised: Callable[..., Supervised], sig: signal.Signals, code: int
) -> None:
    sup = supervised(slow_profiles(tmp_path))
    stopping(sup, sig)
    sup.proc.send_signal(sig)
    assert sup.proc.wait(timeout=30) == code == exit_codes.forced_exit_code(sig)
    forced = [e for e in sup.events() if e["event"] == "forced_exit"]
    assert len(forced) == 1 and forced[0]["signal"] == sig.name
    assert forced[0]["exit_code"] == code and forced[0]["level"] == "error"
    assert "supervisor_stopped" not in events(sup)  # it did not wait for the cancels
    text = sup.log_path.read_text()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text


def _catches(pid: int, sig: signal.Signals) -> bool:
    """Whether the process has a handler for ``sig`` (Linux: SigCgt in /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) & (1 << (sig - 1)))
    return False


def test_sigterm_is_handled_before_start_up_and_then_stops_cleanly(
    tmp_path: Path, supervised: Callable[..., Supervised]
) -> None:
    """The handler exists before the process logs anything (about 0.1 s after spawn, half a
    second before the event loop runs), and a SIGTERM then is a clean stop: no kill, no
    traceback, no profile started."""
    sup = supervised(slow_profiles(tmp_path))
    deadline = time.monotonic() + 20
    while not _catches(sup.proc.pid, signal.SIGTERM):
        assert time.monotonic() < deadline and sup.proc.poll() is None
        time.sleep(0.002)
    # Before the first log line: logging is configured only after the handler is installed.
    assert sup.events() == []
    sup.proc.send_signal(signal.SIGTERM)
    assert sup.proc.wait(timeout=30) == exit_codes.OK
    names = events(sup)
    assert "shutdown_requested" in names and "supervisor_stopped" in names
    assert "bot_started" not in names  # it stopped instead of starting the profiles
    assert "Traceback" not in sup.log_path.read_text()


def test_sigterm_while_the_profiles_start_stops_cleanly(
    tmp_path: Path, supervised: Callable[..., Supervised]
) -> None:
    sup = supervised(slow_profiles(tmp_path))
    sup.wait_for(lambda e: e["event"] == "supervisor_starting")
    sup.proc.send_signal(signal.SIGTERM)
    assert sup.proc.wait(timeout=30) == exit_codes.OK
    names = events(sup)
    assert "shutdown_requested" in names and "supervisor_stopped" in names
    assert "Traceback" not in sup.log_path.read_text()


def test_deleting_the_ledger_stops_every_profile_and_exits_4(
    tmp_path: Path, supervised: Callable[..., Supervised]
) -> None:
    """Found by the supervisor's periodic check even when no profile writes (calm markets)."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for name in ("a", "b"):
        write(profiles, name, profile_yaml(name))
    sup = supervised(profiles)
    sup.wait_for(lambda e: e["event"] == "supervisor_ready")
    (profiles / "state" / "kasmm.sqlite").unlink()
    assert sup.proc.wait(timeout=30) == exit_codes.LEDGER_LOST
    events = sup.events()
    stopped = [e for e in events if e["event"] == "bot_stopped"]
    assert sorted((e["profile"], e["orders_left"]) for e in stopped) == [("a", 0), ("b", 0)]
    final = [e for e in events if e["event"] == "supervisor_stopped"]
    assert final[-1]["ledger_lost"] is True and final[-1]["exit_code"] == 4
    assert not any(e["event"] == "profile_failed" for e in events)  # nothing restarted
