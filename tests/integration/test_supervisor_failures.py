"""What a profile's failure does to the supervisor: failed profiles retried and visible, a lost
ledger stopping everything, and no profile able to take the supervisor down."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from kasmm.clock import Clock, VirtualClock
from kasmm.config.schema import Profile
from kasmm.daemon import exit_codes
from kasmm.errors import AuthenticationFailed, LedgerLost, TransientVenueError
from kasmm.limiter import TokenBucket
from kasmm.schedule import ModeScheduler, ScheduleItem
from kasmm.store import AsyncLedger, Ledger
from kasmm.supervisor import ProfileState, RestartPolicy, Supervisor
from kasmm.venues.base import Venue
from tests.integration.test_supervisor import (
    SCHEDULE,
    BrokenVenue,
    VenueLog,
    profile_yaml,
    write,
)
from tests.support import eventually


class RefusedVenue(BrokenVenue):
    """A venue whose every call is refused for bad credentials."""

    def _fail(self) -> TransientVenueError:
        self.calls += 1
        raise AuthenticationFailed("sim: invalid API key")


class Switchable:
    """A venue factory: ``broken`` profiles get a failing venue until they are ``fixed``."""

    def __init__(self, broken: dict[str, Callable[[], Venue]]) -> None:
        self.log = VenueLog()
        self.broken = broken
        self.fixed: set[str] = set()
        self.built: dict[str, int] = {}

    def __call__(self, profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        name = profile.name
        self.built[name] = self.built.get(name, 0) + 1
        if name in self.broken and name not in self.fixed:
            return self.broken[name]()
        return self.log.factory(profile, clock, limiter)


def quoting(sup: Supervisor, name: str) -> bool:
    bot = sup.slots[name].bot if name in sup.slots else None
    return bot is not None and bot.state.value == "quoting"


FAST = RestartPolicy(initial_s=0.01, factor=1.0, max_s=0.01, max_restarts=1, failed_retry_s=0.05)


@pytest.mark.anyio
async def test_restart_backoff_and_cool_down_run_on_the_supervisor_clock(tmp_path: Path) -> None:
    """The default policy (1, 2, 4, 8, 16 s, then a 300 s cool-down) in virtual time: exact
    and instant, where real time would take over ten minutes."""
    write(tmp_path, "bad", profile_yaml("bad"))
    clock = VirtualClock(1_000.0)
    attempts: list[float] = []

    class Down(BrokenVenue):
        async def connect(self) -> object:
            attempts.append(clock.now())
            if len(attempts) == 8:
                await anyio.sleep_forever()  # stop the loop here (and virtual time with it)
            raise self._fail()

    # BrokenVenue's methods only raise, typed ``object``: not a Venue to mypy.
    sup = Supervisor(tmp_path, clock=clock, venue_factory=lambda *_: Down())  # type: ignore[arg-type]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            await eventually(lambda: len(attempts) == 8)
            runner = sup.slots["bad"]
            assert runner.state is ProfileState.STARTING and runner.restarts == 7
            tg.cancel_scope.cancel()
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps == [1.0, 2.0, 4.0, 8.0, 16.0, 300.0, 300.0]
    assert sup.exit_code == exit_codes.OK  # stopped while retrying, not while failed


@pytest.mark.anyio
async def test_a_failed_profile_makes_health_fail_and_comes_back_after_the_cool_down(
    tmp_path: Path,
) -> None:
    for name in ("good", "bad"):
        write(tmp_path, name, profile_yaml(name))
    venues = Switchable({"bad": BrokenVenue})  # type: ignore[dict-item]
    policy = RestartPolicy(initial_s=0.01, max_restarts=1, failed_retry_s=0.3)
    sup = Supervisor(tmp_path, venue_factory=venues, restart=policy)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await eventually(lambda: sup.slots["bad"].state == "failed")
        assert sup.health() == (False, "failed profiles: bad")
        status = sup.status()["supervisor"]
        assert status["healthy"] is False and status["health"] == "failed profiles: bad"
        assert quoting(sup, "good")
        # The cause goes away (disk space freed, exchange back): the cool-down retry picks it up.
        venues.fixed.add("bad")
        await eventually(lambda: quoting(sup, "bad"), 5)
        assert sup.health() == (True, "ok")
        tg.cancel_scope.cancel()
    assert sup.exit_code == exit_codes.OK


@pytest.mark.anyio
async def test_refused_credentials_wait_for_a_reload_while_other_failures_retry_on_cool_down(
    tmp_path: Path,
) -> None:
    for name in ("auth", "down"):
        write(tmp_path, name, profile_yaml(name))
    venues = Switchable({"auth": RefusedVenue, "down": BrokenVenue})  # type: ignore[dict-item]
    sup = Supervisor(tmp_path, venue_factory=venues, restart=FAST)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        # "down" retries every cool-down: three of them go by (2 attempts, then 3 retries) ...
        await eventually(lambda: venues.built.get("down", 0) >= 5)
        # ... while the refused key was tried once: the cool-down does not hammer it.
        assert venues.built["auth"] == 1 and sup.slots["auth"].state == "failed"
        healthy, reason = sup.health()
        assert not healthy and reason == "failed profiles: auth, down"
        # The operator fixes the key and reloads (SIGHUP): retried at once, with fresh backoff.
        venues.fixed.update(("auth", "down"))
        result = await sup.reload()
        assert sorted(result.retried) == ["auth", "down"]
        await eventually(lambda: quoting(sup, "auth") and quoting(sup, "down"), 5)
        assert venues.built["auth"] == 2
        assert sup.health() == (True, "ok")
        tg.cancel_scope.cancel()
    assert sup.exit_code == exit_codes.OK


@pytest.mark.anyio
async def test_stopping_with_a_failed_profile_exits_non_zero(tmp_path: Path) -> None:
    write(tmp_path, "good", profile_yaml("good"))
    write(tmp_path, "auth", profile_yaml("auth"))
    venues = Switchable({"auth": RefusedVenue})  # type: ignore[dict-item]
    sup = Supervisor(tmp_path, venue_factory=venues, restart=FAST)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await eventually(lambda: sup.slots["auth"].state == "failed")
        tg.cancel_scope.cancel()
    assert sup.exit_code == exit_codes.PROFILES_FAILED
    assert all(v.open_order_count == 0 for v in venues.log.venues["good"])


# --- a lost ledger ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_profile_meeting_a_lost_ledger_stops_every_profile_without_restart(
    tmp_path: Path,
) -> None:
    for name in ("p1", "p2", "p3"):
        write(tmp_path, name, profile_yaml(name))
    log = VenueLog()
    lose = anyio.Event()
    lost: list[BrokenVenue] = []

    class LosesLedger(BrokenVenue):
        async def connect(self) -> object:
            raise LedgerLost("ledger state/kasmm.sqlite was deleted")

    def factory(profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        if profile.name == "p2" and lose.is_set():
            lost.append(LosesLedger())
            return lost[-1]  # type: ignore[return-value]
        return log.factory(profile, clock, limiter)

    sup = Supervisor(tmp_path, venue_factory=factory, restart=RestartPolicy(initial_s=0.01))
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)
            lose.set()
            write(tmp_path, "p2", profile_yaml("p2", spread=30))  # p2 restarts into the loss
            tg.start_soon(sup.reload)
    # run() returned by itself (nobody cancelled it): every profile stopped, orders cancelled.
    assert sup.exit_code == exit_codes.LEDGER_LOST
    assert sup.ledger_lost == "ledger state/kasmm.sqlite was deleted"
    assert len(lost) == 1 and sup.slots["p2"].restarts == 0  # no restart into a lost ledger
    assert all(v.open_order_count == 0 for vs in log.venues.values() for v in vs)
    assert all(slot.done.is_set() for slot in sup.slots.values())
    assert sup.health() == (False, "ledger lost: ledger state/kasmm.sqlite was deleted")


class CheckedLedger(AsyncLedger):
    """A real ledger whose periodic identity check can be made to report the file lost."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.lost = False
        self.checks = 0

    async def check(self) -> None:
        self.checks += 1
        if self.lost:
            raise LedgerLost(f"{self.ledger.path} was deleted")


@pytest.mark.anyio
async def test_the_periodic_ledger_check_stops_a_quiet_supervisor(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    write(profiles, "p1", profile_yaml("p1"))
    log = VenueLog()
    with Ledger(tmp_path / "kasmm.sqlite") as raw:
        ledger = CheckedLedger(raw)
        sup = Supervisor(profiles, venue_factory=log.factory, ledger=ledger)
        sup.ledger_check_s = 0.02
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                await tg.start(sup.run)
                await eventually(lambda: ledger.checks >= 2)
                ledger.lost = True
    assert sup.exit_code == exit_codes.LEDGER_LOST
    assert sup.ledger_lost is not None and "kasmm.sqlite was deleted" in sup.ledger_lost
    assert log.last("p1").open_order_count == 0


# --- nothing a profile does reaches the supervisor ----------------------------------------


class RefusingScheduler(ModeScheduler):
    """A scheduler that raises when asked to schedule profile ``s``."""

    def add_profile(
        self, name: str, schedule: Sequence[ScheduleItem], post: Callable[[str], object]
    ) -> None:
        if name == "s":
            raise RuntimeError("jobstore unavailable")
        super().add_profile(name, schedule, post)


@pytest.mark.anyio
async def test_a_scheduler_refusing_a_profile_fails_that_profile_only(tmp_path: Path) -> None:
    write(tmp_path, "p1", profile_yaml("p1"))
    write(tmp_path, "s", profile_yaml("s") + SCHEDULE)
    log = VenueLog()
    sup = Supervisor(
        tmp_path, venue_factory=log.factory, restart=FAST, scheduler=RefusingScheduler()
    )
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await eventually(lambda: sup.slots["s"].state == "failed")
        slot = sup.slots["s"]
        assert slot.last_error == "RuntimeError: jobstore unavailable"
        assert quoting(sup, "p1") and log.last("p1").open_order_count == 4
        assert len(log.venues["p1"]) == 1
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_an_unknown_mode_posted_to_a_profile_is_logged_and_changes_nothing(
    tmp_path: Path,
) -> None:
    write(tmp_path, "p1", profile_yaml("p1"))
    write(tmp_path, "s", profile_yaml("s"))
    log = VenueLog()
    sup = Supervisor(tmp_path, venue_factory=log.factory)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        with capture_logs() as logs:
            assert sup.post_mode("s", "turbo")
            # The same channel still works afterwards: the profile's control loop survived.
            assert sup.post_mode("s", "aggressive")
            await eventually(
                lambda: sup.slots["s"].bot is not None and sup.slots["s"].bot.mode == "aggressive"
            )
        failed = [e for e in logs if e["event"] == "mode_switch_failed"]
        assert len(failed) == 1 and failed[0]["mode"] == "turbo"
        assert len(log.venues["s"]) == 1 and quoting(sup, "p1") and quoting(sup, "s")
        tg.cancel_scope.cancel()
    assert sup.exit_code == exit_codes.OK
