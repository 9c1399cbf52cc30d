"""`kasmm top` in a real terminal: tmux runs it against a live supervisor, the screen is read
back with capture-pane, and a key press pauses a profile through the control socket.

.ci/run installs tmux when it is missing, so CI never skips this test.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(what: Callable[[], Any], deadline_s: float, message: str) -> Any:
    """Poll ``what`` until it returns something truthy (each try is a real observation)."""
    end = time.monotonic() + deadline_s
    while True:
        result = what()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(message)
        time.sleep(0.2)


class Tmux:
    """A private tmux server (its own socket name: never the user's sessions)."""

    def __init__(self, name: str) -> None:
        self.args = ["tmux", "-L", name]

    def run(self, *args: str) -> str:
        done = subprocess.run([*self.args, *args], capture_output=True, text=True, check=True)
        return done.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "top")

    def kill(self) -> None:
        subprocess.run([*self.args, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(ROOT / "profiles" / "kas-usdt-sim.yaml", profiles / "kas-usdt-sim.yaml")
    state = tmp_path / "state"
    addr = f"127.0.0.1:{free_port()}"
    log = (tmp_path / "supervisor.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "kasmm", "--log-format", "json", "supervise", str(profiles),
            "--state-dir", str(state), "--metrics-addr", addr, "--no-watch",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield addr, state
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def status(addr: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://{addr}/status", timeout=2) as answer:
            doc: dict[str, Any] = json.load(answer)
            return doc
    except OSError:
        return None


def row(addr: str, name: str) -> dict[str, Any] | None:
    doc = status(addr)
    if doc is None:
        return None
    return next((r for r in doc["profiles"] if r["name"] == name), None)


@pytest.mark.timeout(180)
def test_kasmm_top_in_tmux_shows_the_profiles_and_pauses_one(
    supervisor: tuple[str, Path],
) -> None:
    addr, state = supervisor
    wait_for(
        lambda: (
            (row(addr, "kas-usdt-sim") or {}).get("state") == "quoting"
            and (row(addr, "kas-usdt-sim") or {}).get("open_orders")
        ),
        60,
        "the supervisor never quoted",
    )
    tmux = Tmux(f"kasmm-test-{os.getpid()}")
    # pytest exports COLUMNS and LINES (its own terminal's size), and a terminal program
    # believes them over the pane's real size: the console would draw in a corner of it.
    command = (
        f"env -u COLUMNS -u LINES TERM=xterm-256color {sys.executable} -m kasmm top "
        f"--addr {addr} --state-dir {state}"
    )
    try:
        tmux.run("new-session", "-d", "-s", "top", "-x", "200", "-y", "50", command)

        def drawn() -> str | None:
            screen = tmux.screen()
            return screen if "kas-usdt-sim" in screen and "quoting" in screen else None

        screen = wait_for(drawn, 30, "kasmm top never drew the profile")
        # The table row: the profile, its state, a mid and its own prices.
        line = next(x for x in screen.splitlines() if x.lstrip().startswith("kas-usdt-sim "))
        assert "quoting" in line and "0.0" in line
        # The detail pane of the selected (only) profile: its own orders.
        wait_for(lambda: "own orders" in tmux.screen(), 15, "no detail pane")

        tmux.run("send-keys", "-t", "top", "p")
        wait_for(lambda: "pause" in tmux.screen().lower(), 10, "no confirmation asked")
        assert (row(addr, "kas-usdt-sim") or {}).get("state") == "quoting"  # not before "y"
        tmux.run("send-keys", "-t", "top", "y")
        paused = wait_for(
            lambda: r if (r := row(addr, "kas-usdt-sim")) and r.get("state") == "paused" else None,
            20,
            "the profile was not paused",
        )
        assert paused.get("paused_by") and paused.get("open_orders", 0) == 0
        wait_for(lambda: "paused" in tmux.screen(), 10, "the console never showed the pause")
    finally:
        tmux.kill()
