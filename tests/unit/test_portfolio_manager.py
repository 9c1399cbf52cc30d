"""The supervisor's portfolio manager, with fake members: skew and trips handed out, resets
noticed, the group's figures stored and resumed, the loop woken by members (no sleeps)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from kasmm.clock import VirtualClock
from kasmm.config.loader import load_paths
from kasmm.config.portfolios import ResolvedPortfolio
from kasmm.core.portfolio import MemberSnapshot, MemberTransfer
from kasmm.core.risk import Trip
from kasmm.core.skew import GroupSkew
from kasmm.errors import LedgerLost
from kasmm.store import AsyncLedger, Ledger
from kasmm.supervisor.members import MemberReading
from kasmm.supervisor.portfolio_store import group_key
from kasmm.supervisor.portfolios import GroupRun, PortfolioManager
from kasmm.supervisor.status import group_row

D = Decimal
pytestmark = pytest.mark.anyio


@dataclass
class FakeMember:
    """A member whose balances and halt the test sets, and which records what it is told."""

    name: str
    base: Decimal
    quote: Decimal
    mid: Decimal | None = field(default_factory=lambda: D(1))
    ready: bool = True
    halt_rule: str | None = None
    run: object = field(default_factory=object)
    decisions: int = 0
    #: Raised by :meth:`reading` (a broken view, a lost ledger).
    fail: Exception | None = None
    skews: list[GroupSkew | None] = field(default_factory=list)
    trips: list[tuple[Trip | None, str]] = field(default_factory=list)
    #: The settlement sweeps its balances show.
    transfers: tuple[MemberTransfer, ...] = ()

    def reading(self) -> MemberReading:
        if self.fail is not None:
            raise self.fail
        snapshot = MemberSnapshot(
            self.name, self.base, self.quote, self.mid, D(0), transfers=self.transfers
        )
        lifecycle = "quoting" if self.ready else "starting"
        return MemberReading(
            snapshot, self.ready, self.halt_rule, self.run, self.decisions, lifecycle
        )

    def set_group(self, skew: GroupSkew | None) -> None:
        self.skews.append(skew)

    def external_trip(self, trip: Trip | None, source: str) -> None:
        self.trips.append((trip, source))
        if trip is not None and trip.action == "halt":
            self.halt_rule = trip.rule  # what the engine does on its next decision


def groups(tmp_path: Path, rules: str = "") -> tuple[ResolvedPortfolio, ...]:
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            textwrap.dedent(
                f"""\
                name: {name}
                venue: {{type: sim}}
                symbol: KAS/USDT
                modes: {{passive: {{spread_bps: 20, size: 1000}}}}
                """
            )
        )
    (tmp_path / "_portfolios.yaml").write_text(
        "portfolios:\n  kas:\n    members: [a, b]\n    target: {share: 0.5}\n" + rules
    )
    load = load_paths([tmp_path], env={})
    assert load.issues == [] and load.portfolios is not None
    return load.portfolios


class World:
    def __init__(self, tmp_path: Path, rules: str = "", ledger: AsyncLedger | None = None):
        self.clock = VirtualClock(1_000.0)
        self.members = {
            "a": FakeMember("a", D(1000), D(0)),  # long on its own
            "b": FakeMember("b", D(100), D(900)),  # short on its own
        }
        self.lost: list[LedgerLost] = []
        self.manager = PortfolioManager(
            self.clock,
            self.clock.wall,
            self.members.get,
            ledger,
            debounce_s=0.1,
            on_ledger_lost=self.lost.append,
        )
        self.manager.configure(groups(tmp_path, rules), ["a", "b"])

    @property
    def group(self) -> GroupRun:
        return self.manager.groups["kas"]

    async def recompute(self) -> None:
        await self.manager.recompute(self.group)

    def halt(self) -> Trip | None:
        """The group's halt now (a call: mypy keeps no narrowing across recomputes)."""
        return self.group.risk.halt

    def measured(self) -> bool:
        return self.group.agg is not None


def last_trip(member: FakeMember) -> Trip | None:
    return member.trips[-1][0]


DRAWDOWN = "    kill_switch:\n      max_drawdown: {quote: 100}\n"


async def test_every_member_gets_the_groups_skew(tmp_path: Path) -> None:
    world = World(tmp_path)
    await world.recompute()
    # 1100 base + 900 quote at 1: share 0.55, target 1000 base: the group is long by 100.
    agg = world.group.agg
    assert agg is not None and agg.value == D(2000) and agg.excess_base == D(100)
    for member in world.members.values():
        (skew,) = member.skews
        assert skew is not None and skew.excess_base == D(100) and skew.deviation > 0
    row = group_row(world.group, world.clock.now())
    assert row["state"] == "active" and row["equity"] == "2000.00" and row["excess_base"] == "100"
    assert row["value"] == "1100.00" and row["base"] == "1100" and row["quote"] == "900.00"
    assert row["exact"]["equity"] == "2000" and row["exact"]["target_base"] == "1000"
    assert row["members"] == {"a": "active", "b": "active"} and row["waiting_for"] == []


async def test_the_group_waits_for_every_member_to_be_measured(tmp_path: Path) -> None:
    world = World(tmp_path, DRAWDOWN)
    world.members["b"].ready = False  # still starting: no balances yet
    await world.recompute()
    assert not world.measured() and world.group.waiting == ("b",)
    assert world.group.members_state == {"a": "active", "b": "starting"}
    assert world.members["a"].skews == [] and world.members["a"].trips == []
    world.members["b"].ready = True
    await world.recompute()
    assert world.measured() and not world.group.waiting


async def test_a_stopped_member_keeps_its_last_balances(tmp_path: Path) -> None:
    world = World(tmp_path, DRAWDOWN)
    await world.recompute()
    b = world.members.pop("b")  # its runner stopped: no member any more
    await world.recompute()
    agg = world.group.agg
    assert agg is not None and agg.base == D(1100) and agg.priced == 1
    assert world.group.members_state["b"] == "stopped"
    assert world.group.risk.halt is None  # no phantom loss
    world.members["b"] = b


async def test_a_group_drawdown_halts_every_member_once_per_run(tmp_path: Path) -> None:
    world = World(tmp_path, DRAWDOWN)
    await world.recompute()  # peak 2000
    for member in world.members.values():
        member.mid = D("0.8")  # 1100 base lose 220
    await world.recompute()
    halt = world.group.risk.halt
    assert halt is not None and halt.rule == "portfolio_max_drawdown"
    for member in world.members.values():
        assert member.trips == [(halt, "portfolio:kas")]
    await world.recompute()  # held, not sent again
    assert all(len(m.trips) == 1 for m in world.members.values())
    # A restarted member (a new run) that did not restore the halt gets it again.
    b = world.members["b"]
    b.run, b.halt_rule = object(), None
    await world.recompute()
    assert len(b.trips) == 2 and len(world.members["a"].trips) == 1
    assert group_row(world.group, world.clock.now())["state"] == "halted"


async def test_a_member_reset_clears_the_group_halt_and_rebases_its_peak(tmp_path: Path) -> None:
    world = World(tmp_path, DRAWDOWN)
    await world.recompute()
    for member in world.members.values():
        member.mid = D("0.8")
    await world.recompute()
    await world.recompute()  # the members' halts are seen
    assert world.halt() is not None
    world.members["a"].halt_rule = None  # `kasmm reset a`
    await world.recompute()
    assert world.halt() is None
    assert world.group.tracker.peak_equity == D(1780)  # re-based on the equity now
    assert len(world.members["a"].trips) == 1  # not halted again by the same breach


async def test_a_reset_before_the_manager_saw_the_halt_still_counts(tmp_path: Path) -> None:
    """An operator quicker than the debounce: the member halted and was reset between two
    recomputes. Its decisions moved on since the halt was handed over: that is a reset."""
    world = World(tmp_path, DRAWDOWN)
    await world.recompute()
    for member in world.members.values():
        member.mid = D("0.8")
    await world.recompute()
    a = world.members["a"]
    a.halt_rule, a.decisions = None, a.decisions + 5  # halted, then `kasmm reset a`
    await world.recompute()
    assert world.halt() is None


async def test_a_member_halted_by_its_own_rule_is_no_reset(tmp_path: Path) -> None:
    world = World(tmp_path, DRAWDOWN)
    await world.recompute()
    for member in world.members.values():
        member.mid = D("0.8")
    await world.recompute()
    a = world.members["a"]
    a.halt_rule, a.decisions = "max_drawdown", a.decisions + 5  # its own halt held first
    await world.recompute()
    assert world.halt() is not None


async def test_a_pause_is_held_while_it_lasts_then_cleared(tmp_path: Path) -> None:
    world = World(
        tmp_path,
        "    kill_switch:\n      max_base_exposure: {base: 1000, action: pause, pause_s: 30}\n",
    )
    await world.recompute()
    a = world.members["a"]
    ((trip, source),) = a.trips
    assert trip is not None and trip.action == "pause" and trip.pause_s == 30
    assert source == "portfolio:kas"
    a.base = D(800)  # the exposure is gone, but the pause lasts its 30 s
    await world.recompute()
    assert len(a.trips) == 1
    world.clock.advance_to(world.clock.now() + 30)
    await world.recompute()
    assert a.trips[-1] == (None, "portfolio:kas")


async def test_the_loop_recomputes_when_a_member_is_touched(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with anyio.create_task_group() as tg:
        await tg.start(world.manager.run)
        done = world.manager.recomputed
        await done.wait()  # configure touched every group
        before = len(world.members["a"].skews)
        done = world.manager.recomputed
        world.manager.touched("a")
        await done.wait()
        assert len(world.members["a"].skews) == before + 1
        world.manager.touched("nobody")  # not a member: nothing to do
        tg.cancel_scope.cancel()


async def test_a_pause_ends_without_any_member_touching_the_group(tmp_path: Path) -> None:
    world = World(
        tmp_path,
        "    kill_switch:\n      max_base_exposure: {base: 1000, action: pause, pause_s: 30}\n",
    )
    async with anyio.create_task_group() as tg:
        await tg.start(world.manager.run)
        await world.manager.recomputed.wait()
        a = world.members["a"]
        assert a.trips and last_trip(a) is not None
        a.base = D(800)
        # Nothing touches the group; the loop wakes at the pause's end on its own (virtual
        # clock: the 30 s pass at once).
        while last_trip(a) is not None:
            await world.manager.recomputed.wait()
        assert world.clock.now() >= 1_030.0
        tg.cancel_scope.cancel()


async def test_peak_day_start_and_halt_survive_a_restart(tmp_path: Path) -> None:
    async with AsyncLedger(Ledger(tmp_path / "ledger.sqlite")) as ledger:
        world = World(tmp_path, DRAWDOWN, ledger)
        await world.recompute()  # peak 2000, stored with the first snapshot
        for member in world.members.values():
            member.mid = D("0.8")
        world.clock.advance_to(world.clock.now() + 10)
        await world.recompute()
        assert world.group.risk.halt is not None
        assert await ledger.peak_equity(group_key("kas")) == D(2000)
        # A new supervisor on the same ledger.
        again = World(tmp_path, DRAWDOWN, ledger)
        for member in again.members.values():
            member.mid = D("0.8")
        await again.recompute()
        assert again.group.tracker.peak_equity == D(2000)
        assert again.group.tracker.day_start_equity == D(2000)
        restored = again.group.risk.halt
        assert restored is not None and restored.rule == "portfolio_max_drawdown"
        # Members restored their own halts from their ledgers: nothing to send.
        # (These fakes did not: they get the group's halt.)
        assert all(m.trips for m in again.members.values())
        # The group is no profile of the ledger's listing.
        assert "portfolio:kas" not in await ledger.profiles()


async def test_a_removed_group_releases_its_members(tmp_path: Path) -> None:
    world = World(tmp_path)
    await world.recompute()
    world.manager.configure((), ["a", "b"])
    assert world.members["a"].skews[-1] is None
    assert world.members["a"].trips[-1] == (None, "portfolio:kas")
    assert world.manager.portfolio_of("a") is None


async def test_a_group_split_over_shards_is_not_measured(tmp_path: Path) -> None:
    """With --shard/--processes a group's members may land in two processes: neither sees the
    whole group, so neither measures it (and its members skew on their own)."""
    world = World(tmp_path)
    await world.recompute()
    skews = world.members["a"].skews
    assert skews[-1] is not None
    world.manager.configure(groups(tmp_path), ["a"], elsewhere=["b"])
    assert skews[-1:] == [None]  # released: its own inventory again
    await world.recompute()
    assert not world.measured() and skews[-1:] == [None]
    row = group_row(world.group, world.clock.now())
    assert row["state"] == "split" and row["other_shards"] == ["b"]
    # A group wholly in other shards is not this shard's at all.
    world.manager.configure(groups(tmp_path), [], elsewhere=["a", "b"])
    assert world.manager.groups == {}


async def test_a_failing_recompute_is_the_groups_not_the_supervisors(tmp_path: Path) -> None:
    world = World(tmp_path)
    a = world.members["a"]
    a.fail = RuntimeError("view broke")
    async with anyio.create_task_group() as tg:
        await tg.start(world.manager.run)
        await world.manager.recomputed.wait()  # failed, contained, the loop lives
        assert a.skews == []
        a.fail = None
        done = world.manager.recomputed
        world.manager.touched("b")
        await done.wait()
        assert len(a.skews) == 1  # retried on the group's next change
        a.fail = LedgerLost("ledger file deleted")
        done = world.manager.recomputed
        world.manager.touched("a")
        await done.wait()
        assert [str(e) for e in world.lost] == ["ledger file deleted"]
        tg.cancel_scope.cancel()


async def test_a_member_reset_while_no_supervisor_ran_clears_the_stored_group_halt(
    tmp_path: Path,
) -> None:
    async with AsyncLedger(Ledger(tmp_path / "ledger.sqlite")) as ledger:
        world = World(tmp_path, DRAWDOWN, ledger)
        await world.recompute()
        for member in world.members.values():
            member.mid = D("0.8")
        world.clock.advance_to(world.clock.now() + 10)
        await world.recompute()
        assert await ledger.active_halt(group_key("kas")) is not None
        # What the member's engine stored, then `kasmm reset b` with the supervisor down.
        await ledger.record_risk_event(
            "b", world.clock.wall(), "trip", "portfolio_max_drawdown", "halt", "halted", {}
        )
        world.clock.advance_to(world.clock.now() + 5)
        assert await ledger.reset("b", world.clock.wall(), "alice")
        again = World(tmp_path, DRAWDOWN, ledger)
        again.clock.advance_to(world.clock.now() + 1)
        for member in again.members.values():
            member.mid = D("0.8")
        await again.recompute()
        assert again.halt() is None
        assert await ledger.active_halt(group_key("kas")) is None
        assert all(m.trips == [] for m in again.members.values())
        # Its peak was re-based with it: the same drawdown does not trip again.
        assert again.group.tracker.peak_equity == D(1780)
