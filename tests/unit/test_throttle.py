"""ThrottledWarnings: one full line per reason per window, the rest as one summary."""

from __future__ import annotations

import anyio
import pytest
import structlog

from kasmm.obs.throttle import ThrottledWarnings
from tests.support import eventually


def test_first_of_each_reason_in_full_then_one_summary_per_window() -> None:
    log = structlog.get_logger("test")
    throttle = ThrottledWarnings(log, "thing_failed", interval_s=60)
    with structlog.testing.capture_logs() as logs:
        for i in range(500):
            throttle.warn("timeout", peer=i)
        throttle.warn("io", peer="x", error="reset")
        throttle.warn("io", peer="y")
        throttle.flush()
        throttle.flush()  # nothing suppressed since: no line
        throttle.warn("timeout", peer="again")  # a new window logs in full again
    assert logs == [
        {"event": "thing_failed", "log_level": "warning", "reason": "timeout", "peer": 0},
        {
            "event": "thing_failed",
            "log_level": "warning",
            "reason": "io",
            "peer": "x",
            "error": "reset",
        },
        {
            "event": "thing_failed_suppressed",
            "log_level": "warning",
            "count": 500,
            "by_reason": {"io": 1, "timeout": 499},
            "interval_s": 60,
        },
        {"event": "thing_failed", "log_level": "warning", "reason": "timeout", "peer": "again"},
    ]


@pytest.mark.anyio
async def test_run_flushes_every_interval_and_on_exit() -> None:
    throttle = ThrottledWarnings(structlog.get_logger("test"), "x", interval_s=0.01)
    with structlog.testing.capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(throttle.run)
            throttle.warn("a")
            throttle.warn("a")
            await eventually(lambda: any(e["event"] == "x_suppressed" for e in logs), within_s=5)
            throttle.warn("b")
            throttle.warn("b")
            tg.cancel_scope.cancel()
    summaries = [e["by_reason"] for e in logs if e["event"] == "x_suppressed"]
    assert summaries[0] == {"a": 1}
    assert summaries[-1] == {"b": 1}  # the exit flush keeps the last window's count


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ThrottledWarnings(structlog.get_logger("test"), "x", interval_s=0)
