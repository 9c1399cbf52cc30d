"""`kasmm supervise` as systemd runs it: notifications on NOTIFY_SOCKET, and --shard I/N.

The process talks to a fake NOTIFY_SOCKET (a bound AF_UNIX datagram socket): READY=1 once every
profile quotes, RELOADING=1 + MONOTONIC_USEC then READY=1 around a SIGHUP reload, WATCHDOG=1
while running, STOPPING=1 on SIGTERM, and STATUS= lines with the profile counts.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kasmm.obs.notify import monotonic_usec
from kasmm.shard import shard_of
from tests.integration.test_supervise_process import Supervised
from tests.integration.test_supervisor import profile_yaml, write
from tests.unit.test_notify import FakeSystemd, short_socket_path


class Run:
    """One supervised process and the fake systemd it notifies."""

    def __init__(self, tmp_path: Path, directory: Path, tag: str, *extra: str) -> None:
        path = short_socket_path(tmp_path).with_name(f"notify-{tag}.sock")
        self.systemd = FakeSystemd(str(path), str(path))
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(path),
            "WATCHDOG_USEC": "400000",  # WATCHDOG=1 every 0.2 s
        }
        env.pop("WATCHDOG_PID", None)
        self.sup = Supervised(directory, tmp_path / f"log-{tag}.jsonl", *extra, env=env)

    def wait_message(self, key: str, after: int = 0, timeout: float = 30.0) -> int:
        """Index of the first datagram from index ``after`` on that has ``key``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, message in enumerate(self.systemd.messages()[after:], start=after):
                if key in message:
                    return i
            assert self.sup.proc.poll() is None, self.sup.log_path.read_text()[-3000:]
            time.sleep(0.02)
        raise AssertionError(f"no {key}= after #{after}: {self.systemd.messages()}")

    def close(self) -> None:
        self.sup.close()
        self.systemd.close()


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[Run]]:
    made: list[Run] = []
    yield made
    for run in made:
        run.close()


def test_ready_reloading_watchdog_stopping(tmp_path: Path, runs: list[Run]) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for name in ("a", "b"):
        write(profiles, name, profile_yaml(name))
    run = Run(tmp_path, profiles, "main")
    runs.append(run)

    ready = run.wait_message("READY")
    messages = run.systemd.messages()
    # Nothing but watchdog pings and status lines before start-up completes.
    assert all(set(m) <= {"WATCHDOG", "STATUS"} for m in messages[:ready])
    # READY=1 comes once every profile quotes, and says so.
    assert messages[ready] == {
        "READY": "1",
        "STATUS": "2 profiles: 2 quoting, 0 halted, 0 failed",
    }
    assert any(e["event"] == "supervisor_ready" for e in run.sup.events())
    started = {e["profile"] for e in run.sup.events() if e["event"] == "bot_started"}
    assert started == {"a", "b"}

    # The event loop pings the watchdog (half WATCHDOG_USEC apart).
    first = run.wait_message("WATCHDOG", after=ready + 1)
    run.wait_message("WATCHDOG", after=first + 1)

    # SIGHUP: RELOADING=1 with CLOCK_MONOTONIC in µs, the reload, then READY=1.
    write(profiles, "b", profile_yaml("b", spread=35))
    before = monotonic_usec()
    run.sup.proc.send_signal(signal.SIGHUP)
    reloading = run.wait_message("RELOADING", after=ready + 1)
    after = monotonic_usec()
    message = run.systemd.messages()[reloading]
    assert message["RELOADING"] == "1"
    assert before <= int(message["MONOTONIC_USEC"]) <= after
    ready_again = run.wait_message("READY", after=reloading + 1)
    assert run.systemd.messages()[ready_again]["STATUS"] == (
        "2 profiles: 2 quoting, 0 halted, 0 failed"
    )
    reloaded = [e for e in run.sup.events() if e["event"] == "profiles_reloaded"]
    assert reloaded and reloaded[-1]["restarted"] == ["b"]

    # SIGTERM: STOPPING=1 at once, every order cancelled, exit 0.
    run.sup.proc.send_signal(signal.SIGTERM)
    stopping = run.wait_message("STOPPING", after=ready_again + 1)
    assert run.systemd.messages()[stopping] == {
        "STOPPING": "1",
        "STATUS": "stopping: 2 profiles: 2 quoting, 0 halted, 0 failed",
    }
    assert run.sup.proc.wait(timeout=20) == 0
    final = [e for e in run.sup.events() if e["event"] == "supervisor_stopped"]
    assert final and final[-1]["orders_left"] == 0
    assert not any("READY" in m for m in run.systemd.messages()[stopping:])


def test_shards_split_the_profiles_and_both_report_invalid_files(
    tmp_path: Path, runs: list[Run]
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    names = [f"p{i}" for i in range(6)]
    for name in names:
        write(profiles, name, profile_yaml(name))
    (profiles / "broken.yaml").write_text("name: [unclosed\n")
    owned = {i: sorted(n for n in names if shard_of(n, 2) == i) for i in (0, 1)}
    assert owned[0] and owned[1]  # p0..p5 land in both shards

    for i in (0, 1):
        runs.append(Run(tmp_path, profiles, f"shard{i}", "--shard", f"{i}/2"))
    for i, run in enumerate(runs):
        ready = run.wait_message("READY")
        k = len(owned[i])
        assert run.systemd.messages()[ready]["STATUS"] == (
            f"shard {i}/2: {k} profile{'s' * (k != 1)}: {k} quoting, 0 halted, 0 failed; "
            "1 config error"
        )
    for i, run in enumerate(runs):
        events = run.sup.events()
        started = sorted(e["profile"] for e in events if e["event"] == "bot_started")
        assert started == owned[i]
        # Every shard reports the invalid file; the other shard's profiles are no error.
        invalid = [e for e in events if e["event"] == "config_invalid"]
        assert [Path(e["file"]).name for e in invalid] == ["broken.yaml"]
        starting = next(e for e in events if e["event"] == "supervisor_starting")
        assert starting["shard"] == f"{i}/2"
    for run in runs:
        run.sup.proc.send_signal(signal.SIGTERM)
    assert [run.sup.proc.wait(timeout=20) for run in runs] == [0, 0]
