"""`kasmm supervise` as a real process: SIGTERM leaves no orders, SIGHUP reloads."""

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
