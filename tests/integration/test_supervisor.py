"""The supervisor on simulated venues, in short real time: isolation, reload, restart, stop."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from kasmm.clock import Clock
from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.daemon import exit_codes
from kasmm.errors import TransientVenueError
from kasmm.limiter import TokenBucket
from kasmm.supervisor import ReloadResult, RestartPolicy, Supervisor, supervise
from kasmm.venues.base import Venue
from kasmm.venues.batch import ConcurrentBatch
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim import SimVenue
from tests.support import eventually


def profile_yaml(name: str, spread: float = 20.0, *, calm: bool = True, seed: int = 1) -> str:
    """A sim profile. ``calm``: a market that never moves and never trades, so a bot that is
    left alone issues no order actions after its first placement round. Its book never
    changes, so the stale-book rule (book unchanged for 10 s) is off: a calm test that runs
    past 10 s on a loaded machine would otherwise see the bot pause and cancel."""
    market = (
        "{sigma_bps: 0.000001, taker_rate_per_s: 0.000000001, book_interval_s: 0.05}"
        if calm
        else "{book_interval_s: 0.05}"
    )
    kill_switch = "kill_switch: {stale_book: null}\n" if calm else ""
    text = textwrap.dedent(
        f"""\
        name: {name}
        venue:
          type: sim
          market: {market}
          seed: {seed}
        symbol: KAS/USDT
        modes:
          aggressive: {{spread_bps: {spread}, size: 1000, levels: 2}}
          passive: {{spread_bps: {spread}, size: 1000, levels: 2}}
        refresh: {{fallback_interval_s: 0.2}}
        """
    )
    return text + kill_switch


@dataclass
class VenueLog:
    """Every venue the supervisor built, per profile name, in order."""

    venues: dict[str, list[SimVenue]] = field(default_factory=lambda: defaultdict(list))

    def factory(self, profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        assert isinstance(profile.venue, SimVenueConfig)
        venue = SimVenue(profile.venue, profile.symbol, clock)
        self.venues[profile.name].append(venue)
        return RateLimitedVenue(venue, limiter)

    def last(self, name: str) -> SimVenue:
        return self.venues[name][-1]


class BrokenVenue(ConcurrentBatch):
    """A venue whose every call fails."""

    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self) -> TransientVenueError:
        self.calls += 1
        return TransientVenueError("exchange unreachable")

    async def connect(self) -> object:
        raise self._fail()

    async def close(self) -> None:
        return None

    async def events(self) -> AsyncIterator[object]:
        never: object
        for never in ():  # a generator that fails before its first event
            yield never
        raise self._fail()

    async def fetch_balances(self) -> object:
        raise self._fail()

    async def fetch_open_orders(self) -> list[object]:
        raise self._fail()

    async def place_order(self, request: object) -> object:
        raise self._fail()

    async def cancel_order(self, client_id: object) -> None:
        raise self._fail()

    async def cancel_all(self, prefix: str) -> int:
        raise self._fail()


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    tmp = directory / f".{name}.tmp"
    tmp.write_text(text)
    tmp.replace(path)  # editors save by atomic rename
    return path


@pytest.fixture
def three(tmp_path: Path) -> Path:
    for name in ("p1", "p2", "p3"):
        write(tmp_path, name, profile_yaml(name))
    return tmp_path


@pytest.mark.anyio
async def test_editing_one_profile_restarts_only_that_one(three: Path) -> None:
    log = VenueLog()
    sup = Supervisor(three, venue_factory=log.factory)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        assert sorted(sup.slots) == ["p1", "p2", "p3"]
        assert all(s.state == "quoting" or s.bot is not None for s in sup.slots.values())
        before = {n: (log.last(n).stats.places, log.last(n).stats.cancels) for n in ("p1", "p3")}
        old_p2 = log.last("p2")
        write(three, "p2", profile_yaml("p2", spread=30))
        result = await sup.reload()
        assert result.restarted == ["p2"]
        assert sorted(result.unchanged) == ["p1", "p3"]
        await anyio.sleep(0.3)
        # The old p2 venue saw all its orders cancelled; the new one quotes.
        assert old_p2.open_order_count == 0
        assert len(log.venues["p2"]) == 2 and log.last("p2").open_order_count == 4
        # p1 and p3: same venue, zero new actions (no cancel, no replace, no restart).
        for name in ("p1", "p3"):
            assert len(log.venues[name]) == 1
            assert (log.last(name).stats.places, log.last(name).stats.cancels) == before[name]
            assert log.last(name).stats.cancels == 0
        tg.cancel_scope.cancel()
    assert all(v.open_order_count == 0 for vs in log.venues.values() for v in vs)
    assert sup.exit_code == 0


@pytest.mark.anyio
async def test_invalid_edit_keeps_last_good_version_and_reports_location(three: Path) -> None:
    log = VenueLog()
    sup = Supervisor(three, venue_factory=log.factory)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        bot = sup.slots["p1"].bot
        write(
            three,
            "p1",
            profile_yaml("p1").replace("spread_bps: 20.0, size", "spread_bps: -5, size", 1),
        )
        result = await sup.reload()
        assert result.stopped == [] and result.restarted == []
        assert len(result.issues) == 1
        message = str(result.issues[0])
        assert message.startswith(f"{three / 'p1.yaml'}:8:28: p1: ")
        assert "modes.aggressive.spread_bps" in message
        assert sup.slots["p1"].bot is bot  # the old version keeps running
        assert log.last("p1").open_order_count == 4
        status = sup.status()
        assert any("p1.yaml:8:28:" in e for e in status["supervisor"]["config_errors"])
        # Fixing the file again is a no-op for the running bot (same config as before).
        write(three, "p1", profile_yaml("p1"))
        result = await sup.reload()
        assert "p1" in result.unchanged and sup.slots["p1"].bot is bot
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_removing_or_disabling_a_file_stops_that_profile_and_cancels(three: Path) -> None:
    log = VenueLog()
    sup = Supervisor(three, venue_factory=log.factory)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        assert log.last("p3").open_order_count == 4
        (three / "p3.yaml").unlink()
        write(three, "p2", "enabled: false\n" + profile_yaml("p2"))
        result = await sup.reload()
        assert sorted(result.stopped) == ["p2", "p3"]
        assert log.last("p3").open_order_count == 0
        assert log.last("p2").open_order_count == 0
        assert sorted(sup.slots) == ["p1"]
        write(three, "p4", profile_yaml("p4"))
        result = await sup.reload()
        assert result.started == ["p4"]
        assert log.last("p4").open_order_count == 4  # started means quoting
        tg.cancel_scope.cancel()


class StopGate:
    """Holds every profile's stop at its first cancel until released, and says who got there."""

    def __init__(self) -> None:
        self.armed = False
        self.entered: set[str] = set()
        self.release = anyio.Event()

    async def pass_(self, name: str) -> None:
        if self.armed:
            self.entered.add(name)
            await self.release.wait()


class GatedVenue(ConcurrentBatch):
    """A venue whose cancels wait at a :class:`StopGate` (everything else is the inner venue)."""

    def __init__(self, inner: Venue, name: str, gate: StopGate) -> None:
        self.inner = inner
        self.name = inner.name
        self._profile = name
        self._gate = gate

    def __getattr__(self, item: str) -> object:
        return getattr(self.inner, item)

    async def cancel_order(self, client_id: object) -> None:
        await self._gate.pass_(self._profile)
        await self.inner.cancel_order(client_id)  # type: ignore[arg-type]

    async def cancel_all(self, prefix: str) -> int:
        await self._gate.pass_(self._profile)
        return await self.inner.cancel_all(prefix)


@pytest.mark.anyio
async def test_a_reload_stops_the_removed_and_the_changed_profiles_together(three: Path) -> None:
    log = VenueLog()
    gate = StopGate()

    def factory(profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        inner = log.factory(profile, clock, limiter)
        return GatedVenue(inner, profile.name, gate)  # type: ignore[return-value]

    sup = Supervisor(three, venue_factory=factory)
    results: list[ReloadResult] = []

    async def reload() -> None:
        results.append(await sup.reload())

    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        old_p2 = log.last("p2")
        (three / "p1.yaml").unlink()
        write(three, "p2", profile_yaml("p2", spread=30))
        gate.armed = True
        try:
            tg.start_soon(reload)
            # Each stop is held inside its first cancel: both get there only if the second
            # does not wait for the first to finish.
            await eventually(lambda: gate.entered == {"p1", "p2"})
            assert not results and log.last("p2") is old_p2  # nothing starts before the stops end
        finally:
            gate.release.set()
        await eventually(lambda: bool(results))
        assert results[0].stopped == ["p1"] and results[0].restarted == ["p2"]
        assert log.last("p1").open_order_count == 0 and old_p2.open_order_count == 0
        assert len(log.venues["p2"]) == 2 and log.last("p2").open_order_count == 4
        assert len(log.venues["p3"]) == 1 and log.last("p3").stats.cancels == 0
        tg.cancel_scope.cancel()
    assert sup.exit_code == exit_codes.OK


@pytest.mark.anyio
async def test_failing_profile_restarts_with_backoff_while_others_keep_quoting(
    three: Path,
) -> None:
    log = VenueLog()
    broken = BrokenVenue()

    def factory(profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        if profile.name == "p2":
            return broken  # type: ignore[return-value]
        return log.factory(profile, clock, limiter)

    policy = RestartPolicy(initial_s=0.05, factor=2.0, max_s=0.2, max_restarts=3)
    sup = Supervisor(three, venue_factory=factory, restart=policy)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await eventually(lambda: sup.slots["p2"].state == "failed")
        slot = sup.slots["p2"]
        assert slot.restarts == 3
        assert slot.last_error is not None and "exchange unreachable" in slot.last_error
        bots = {n: sup.slots[n].bot for n in ("p1", "p3")}
        books_before = {n: b.stats.book_updates for n, b in bots.items() if b is not None}
        # The others go on reacting to their books, on the same bots, with their quotes up.
        await eventually(
            lambda: all(b.stats.book_updates > books_before[n] for n, b in bots.items() if b)
        )
        for name in ("p1", "p3"):
            bot = sup.slots[name].bot
            assert bot is bots[name] and bot is not None and bot.state.value == "quoting"
            assert log.last(name).open_order_count == 4
        assert sup.status()["profiles"][1]["state"] == "failed"
        tg.cancel_scope.cancel()
    # Stopping with a failed profile is a non-zero exit status (systemd restarts it). p2 never
    # connected, so it placed nothing and has no order left: 3, not 1.
    assert sup.exit_code == exit_codes.PROFILES_FAILED


@pytest.mark.anyio
async def test_file_watcher_reloads_only_the_edited_profile(three: Path) -> None:
    log = VenueLog()
    sup = Supervisor(three, venue_factory=log.factory)
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda *, task_status: supervise(
                three, supervisor=sup, control_addr=None, task_status=task_status
            )
        )
        await anyio.sleep(0.2)  # the watcher is up
        write(three, "p3", profile_yaml("p3", spread=25))
        await eventually(
            lambda: len(log.venues["p3"]) == 2 and log.last("p3").open_order_count == 4
        )
        assert len(log.venues["p1"]) == 1 and len(log.venues["p2"]) == 1
        assert log.last("p1").stats.cancels == 0 and log.last("p2").stats.cancels == 0
        tg.cancel_scope.cancel()
    assert all(v.open_order_count == 0 for vs in log.venues.values() for v in vs)


SCHEDULE = """\
mode: passive
schedule:
  - {cron: "0 8 * * *", timezone: UTC, mode: aggressive}
  - {cron: "0 20 * * *", timezone: UTC, mode: passive}
"""


@pytest.mark.parametrize(("hour", "mode"), [(9, "aggressive"), (21, "passive"), (7, "passive")])
@pytest.mark.anyio
async def test_profile_starts_in_the_mode_its_schedule_says_applies_now(
    tmp_path: Path, hour: int, mode: str
) -> None:
    text = profile_yaml("s").replace(
        "spread_bps: 20.0, size: 1000, levels: 2}\n  passive",
        "spread_bps: 10.0, size: 1000, levels: 2}\n  passive",
    )
    write(tmp_path, "s", text + SCHEDULE)
    now = 1_795_000_000.0 - 1_795_000_000.0 % 86400 + hour * 3600  # hh:00 UTC of some day
    log = VenueLog()
    sup = Supervisor(tmp_path, venue_factory=log.factory, wall_clock=lambda: now)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        bot = sup.slots["s"].bot
        assert bot is not None and bot.mode == mode
        assert sup.scheduler is not None and sup.scheduler.profiles() == ["s"]
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_mode_switch_posted_to_a_profile_changes_its_quotes(tmp_path: Path) -> None:
    text = profile_yaml("s").replace(
        "spread_bps: 20.0, size: 1000, levels: 2}\n  passive",
        "spread_bps: 10.0, size: 1000, levels: 2}\n  passive",
    )
    write(tmp_path, "s", text)
    log = VenueLog()
    sup = Supervisor(tmp_path, venue_factory=log.factory)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        venue = log.last("s")
        spread_passive = await own_spread(venue)
        assert sup.post_mode("s", "aggressive")
        await eventually(
            lambda: sup.slots["s"].bot is not None and sup.slots["s"].bot.mode == "aggressive"
        )
        await anyio.sleep(0.4)  # next requote (fallback interval 0.2 s)
        assert await own_spread(venue) < spread_passive
        assert len(log.venues["s"]) == 1  # a mode switch is not a restart
        tg.cancel_scope.cancel()


async def own_spread(venue: SimVenue) -> float:
    orders = await venue.fetch_open_orders()
    bid = max(o.price for o in orders if o.side.value == "buy")
    ask = min(o.price for o in orders if o.side.value == "sell")
    return float(ask - bid)


class SilentVenue(ConcurrentBatch):
    """Connects fine, then never sends a single book (a dead market-data feed)."""

    def __init__(self, inner: SimVenue) -> None:
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, item: str) -> object:
        return getattr(self.inner, item)

    async def events(self) -> AsyncIterator[object]:
        await anyio.sleep_forever()
        yield None  # pragma: no cover


@pytest.mark.anyio
async def test_a_profile_whose_feed_never_starts_does_not_stall_the_others(three: Path) -> None:
    log = VenueLog()

    def factory(profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        venue = log.factory(profile, clock, limiter)
        if profile.name == "p2":
            return SilentVenue(log.last("p2"))  # type: ignore[return-value]
        return venue

    sup = Supervisor(three, venue_factory=factory)
    sup.start_timeout_s = 0.5
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(5):
            await tg.start(sup.run)
        assert log.last("p1").open_order_count == 4 and log.last("p3").open_order_count == 4
        assert sup.status()["profiles"][1]["state"] == "starting"
        tg.cancel_scope.cancel()
    assert sup.exit_code == 0
