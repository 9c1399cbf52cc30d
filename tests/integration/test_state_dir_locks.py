"""No profile runs in two processes: supervisor and profile locks, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from kasmm.store.state_dir import EXIT_IN_USE, ProfileLocks, prepare_state_dir
from kasmm.supervisor import RestartPolicy, Supervisor
from tests.integration.test_supervise_process import Supervised, supervised  # noqa: F401
from tests.integration.test_supervisor import VenueLog, profile_yaml, write
from tests.support import eventually

ME = os.getpid()


def quoting(sup: Supervisor, name: str) -> bool:
    bot = sup.slots[name].bot
    return bot is not None and bot.state.value == "quoting"


@pytest.mark.anyio
async def test_a_profile_running_elsewhere_fails_here_until_it_is_released(
    tmp_path: Path,
) -> None:
    """The supervisor takes each profile's lock around its bot: while another process holds
    it, that profile does not start (failed/restarting, the error naming the holder's PID)
    and touches no order; the other profiles run; once released, the profile starts."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for name in ("p1", "p2"):
        write(profiles, name, profile_yaml(name))
    state = prepare_state_dir(tmp_path / "state")
    elsewhere = ProfileLocks(state, "kasmm run").hold("p2")
    log = VenueLog()
    sup = Supervisor(
        profiles,
        venue_factory=log.factory,
        restart=RestartPolicy(initial_s=0.05, factor=1.0, max_s=0.05, max_restarts=1000),
        profile_locks=ProfileLocks(state, "kasmm supervise"),
    )
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await eventually(lambda: sup.slots["p2"].restarts >= 2)
        assert sup.slots["p2"].last_error == (
            f"LockBusy: profile p2 is already running in PID {ME} (kasmm run)"
        )
        assert all(v.stats.places == 0 for v in log.venues["p2"])  # its bot never ran
        await eventually(lambda: quoting(sup, "p1"))
        elsewhere.release()
        await eventually(lambda: quoting(sup, "p2"))
        assert log.last("p2").open_order_count == 4
        tg.cancel_scope.cancel()
    assert sup.exit_code == 0


def _lines(sup: Supervised) -> list[str]:
    """The lines of a supervisor's output that are not JSON log events."""
    return [ln for ln in sup.log_path.read_text().splitlines() if not ln.startswith("{")]


def test_second_supervisor_and_kasmm_run_are_refused_and_a_crash_blocks_nothing(
    tmp_path: Path,
    supervised: Callable[..., Supervised],  # noqa: F811
) -> None:
    """Regression (issue 13.2): a second `kasmm supervise` on the same state dir ran every
    profile a second time. Now it exits 75 at once with one line naming the first's PID, and
    the first keeps running; `kasmm run` of one of its profiles is refused alike. After a
    `kill -9` the kernel has dropped the locks: a new supervisor starts normally."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    write(profiles, "a", profile_yaml("a"))
    state = profiles / "state"  # where Supervised puts it
    first = supervised(profiles)
    first.wait_for(lambda e: e["event"] == "bot_started", timeout=40)

    second = supervised(profiles)
    assert second.proc.wait(timeout=40) == EXIT_IN_USE
    assert _lines(second) == [
        f"kasmm supervise: state dir {state}/ is in use by PID {first.proc.pid} "
        f"(kasmm supervise {profiles})"
    ]
    assert not [e for e in second.events() if e["event"] == "bot_started"]

    run = subprocess.run(
        [sys.executable, "-m", "kasmm", "run", str(profiles / "a.yaml"), "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=40,
    )
    assert run.returncode == EXIT_IN_USE
    assert run.stderr.splitlines() == [
        f"kasmm run: profile a is already running in PID {first.proc.pid} "
        f"(kasmm supervise {profiles}); "
        f"state dir {state}/"
    ]
    assert first.proc.poll() is None
    assert len([e for e in first.events() if e["event"] == "bot_started"]) == 1

    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=20)
    third = supervised(profiles)
    third.wait_for(lambda e: e["event"] == "bot_started", timeout=40)
    third.proc.send_signal(signal.SIGTERM)
    assert third.proc.wait(timeout=30) == 0
