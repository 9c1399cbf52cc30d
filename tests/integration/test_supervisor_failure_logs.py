"""An unreachable venue logs one line per attempt with the reason; the traceback only at debug
level (issue 16, point 7)."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from kasmm.clock import VirtualClock
from kasmm.errors import TransientVenueError
from kasmm.supervisor import Supervisor
from tests.integration.test_supervisor import BrokenVenue, profile_yaml, write
from tests.support import eventually

REASON = "gate load_markets: ExchangeNotAvailable: gate GET http://127.0.0.1:9/api/v4/spot"
_LEVELS = ("debug", "info", "warning", "error", "critical")


def _at_least(
    level: str, entries: list[MutableMapping[str, Any]]
) -> list[MutableMapping[str, Any]]:
    floor = _LEVELS.index(level)
    return [e for e in entries if _LEVELS.index(e["log_level"]) >= floor]


@pytest.mark.anyio
async def test_each_failed_attempt_is_one_warning_with_the_reason_and_a_debug_traceback(
    tmp_path: Path,
) -> None:
    write(tmp_path, "down", profile_yaml("down"))
    clock = VirtualClock(1_000.0)
    attempts: list[float] = []

    class Unreachable(BrokenVenue):
        async def connect(self) -> object:
            attempts.append(clock.now())
            if len(attempts) == 4:
                await anyio.sleep_forever()  # stop here (and virtual time with it)
            try:
                raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9)")
            except ConnectionRefusedError as exc:
                raise TransientVenueError(REASON) from exc

    sup = Supervisor(tmp_path, clock=clock, venue_factory=lambda *_: Unreachable())  # type: ignore[arg-type]
    with capture_logs() as logs, anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            await eventually(lambda: len(attempts) == 4)
            tg.cancel_scope.cancel()
    mine = [e for e in logs if e.get("profile") == "down"]
    loud = [e for e in _at_least("warning", mine) if e["event"] != "profile_stream_ended"]
    assert [(e["event"], e["log_level"], e["attempt"], e["restart_in_s"]) for e in loud] == [
        ("profile_failed", "warning", 1, 1.0),
        ("profile_failed", "warning", 2, 2.0),
        ("profile_failed", "warning", 3, 4.0),
    ]
    assert all(e["error"] == f"TransientVenueError: {REASON}" for e in loud)
    assert not any("exc_info" in e for e in _at_least("info", mine))
    traces = [e for e in mine if e["event"] == "profile_failed_traceback"]
    assert len(traces) == 3
    assert all(e["log_level"] == "debug" and e["exc_info"] is True for e in traces)
