"""The rule that keeps real-time tests out of ``make test``'s parallel part (tests/realtime.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.realtime import (
    TESTS,
    is_realtime_path,
    keeps_a_hypothesis_deadline,
    module_signs,
    signs_in,
)


@pytest.mark.parametrize(
    ("source", "signs"),
    [
        ("time.sleep(0.5)", ["sleeps"]),
        ("await anyio.sleep(1.6)", ["sleeps"]),
        ("await asyncio.sleep(self.delay)", ["sleeps"]),
        ("await anyio.sleep(0)  # a checkpoint", []),
        ("start = time.monotonic()", ["reads a real clock"]),
        ("time.perf_counter_ns()", ["reads a real clock"]),
        ("gaps.append(time.thread_time() - last)", ["reads a real clock"]),
        ("clock = RealClock()", ["reads a real clock"]),
        ("clock = VirtualClock(start=0.0)\nclock.monotonic()", []),
        ("with anyio.fail_after(2.5):", ["holds a deadline"]),
        ("await asyncio.wait_for(orders, 5)", ["holds a deadline"]),
        ("async with asyncio.timeout(5):", ["holds a deadline"]),
        ("await eventually(lambda: done)", ["holds a deadline"]),
        ("wait_until(lambda: path.exists())", ["holds a deadline"]),
        ("subprocess.run([sys.executable, script])", ["runs a process or a thread"]),
        ("threading.Thread(target=serve)", ["runs a process or a thread"]),
        ("await anyio.to_thread.run_sync(work)", ["runs a process or a thread"]),
        ('shutil.which("chromium")', ["runs a process or a thread"]),
        ("async with aiohttp.ClientSession() as http:", ["talks over loopback"]),
        ("from tests.emulators.mexc import MexcEmulator", ["talks over loopback"]),
        ("await serve_control(sup, addr)", ["talks over loopback"]),
        ("quotes = compute_quotes(params, book, state)", []),
        ('assert start_hint("127.0.0.1:9301") == hint', []),
    ],
)
def test_signs_of_real_time(source: str, signs: list[str]) -> None:
    assert signs_in(source) == signs


def test_a_test_module_imported_brings_its_signs(tmp_path: Path) -> None:
    """``test_report_mm`` imports helpers of ``test_report``, which renders in Chromium: both
    are real-time, and the sign names the module it is in."""
    found = module_signs(TESTS / "unit" / "test_portfolio_report.py")
    assert "runs a process or a thread (tests/unit/test_report.py)" in found


@pytest.mark.parametrize(
    ("path", "realtime"),
    [
        ("integration/test_bot_sim.py", True),  # the whole directory
        ("contract/test_venue_contract.py", True),  # the whole directory
        ("unit/test_schedule.py", True),  # APScheduler on the real clock
        ("unit/test_emulator_mexc.py", True),  # an emulator on loopback
        ("unit/test_notify.py", True),  # sleeps, threads
        ("unit/test_quoting.py", False),  # computes
        ("unit/test_sim_world.py", False),  # a virtual clock
        ("unit/test_config_loader.py", False),  # parses
    ],
)
def test_modules_of_this_suite(path: str, realtime: bool) -> None:
    assert is_realtime_path(TESTS / path) is realtime, module_signs(TESTS / path)


def _timed() -> object:
    @given(st.integers())
    def timed(n: int) -> None:
        pass

    return timed


def _untimed() -> object:
    @settings(deadline=None)
    @given(st.integers())
    def untimed(n: int) -> None:
        pass

    return untimed


def _timed_explicitly() -> object:
    @settings(deadline=1000)
    @given(st.integers())
    def timed_explicitly(n: int) -> None:
        pass

    return timed_explicitly


def _plain() -> object:
    def plain() -> None:
        pass

    return plain


@pytest.fixture(params=["default", "ci"])
def hypothesis_profile(request: pytest.FixtureRequest) -> Iterator[str]:
    """Hypothesis's own profile (200 ms deadline) and the one it loads by itself when the CI
    environment variable is set (no deadline): a test without ``@settings`` takes whichever is
    loaded when it is decorated, and the rule must follow it."""
    before = settings.get_current_profile_name()
    settings.load_profile(request.param)
    try:
        yield request.param
    finally:
        settings.load_profile(before)


@pytest.mark.parametrize(
    ("make", "keeps"),
    [
        (_timed, {"default": True, "ci": False}),
        (_untimed, {"default": False, "ci": False}),
        (_timed_explicitly, {"default": True, "ci": True}),
        (_plain, {"default": False, "ci": False}),
        (lambda: None, {"default": False, "ci": False}),
    ],
)
def test_a_hypothesis_deadline_is_a_real_time_measure(
    make: Callable[[], object], keeps: dict[str, bool], hypothesis_profile: str
) -> None:
    assert keeps_a_hypothesis_deadline(make()) is keeps[hypothesis_profile]


def test_collection_marks_every_real_time_test(request: pytest.FixtureRequest) -> None:
    """The hook marks exactly what the rule says. This module only computes, but its table
    above shows every sign: the rule reads text, and errs toward running a test alone."""
    assert request.node.get_closest_marker("realtime") is not None
    items = request.session.items
    marked = {item.nodeid for item in items if item.get_closest_marker("realtime")}
    for item in items:
        expected = is_realtime_path(item.path) or keeps_a_hypothesis_deadline(
            getattr(item, "obj", None)
        )
        assert (item.nodeid in marked) is expected, item.nodeid
