"""The supervisor's status document."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kasmm.supervisor import Supervisor
from kasmm.supervisor.status import supervisor_status


def test_uptime_is_measured_on_the_monotonic_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wall clock stepped back 600 s (NTP, an operator) made the uptime negative."""
    sup = Supervisor(tmp_path)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 600.0)
    uptime = supervisor_status(sup)["supervisor"]["uptime_s"]
    assert 0 <= uptime < 60
