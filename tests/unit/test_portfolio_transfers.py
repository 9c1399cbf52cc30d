"""A settlement sweep of a member's account is a transfer for its portfolio, not a loss: the
group's peak and day start forget the value that left, live and after a restart, once per
member (members on one account each report its balances), while a trading loss of the same
size still trips (issue 20: "no kill switch trips because KAS left the account")."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.bot.engine import Engine
from kasmm.bot.stats import BotState
from kasmm.bot.view import BotView, build_view
from kasmm.core.portfolio import MemberTransfer
from kasmm.store import AsyncLedger, Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlements import SweepRecord
from kasmm.supervisor.members import RunnerMember
from kasmm.supervisor.portfolio_store import group_key
from kasmm.supervisor.portfolios import PortfolioManager
from tests.support import make_profile
from tests.unit.test_engine_transfers import OPENED
from tests.unit.test_engine_transfers import book as transfer_book
from tests.unit.test_engine_transfers import engine as _engine
from tests.unit.test_engine_transfers import sweep as transfer_sweep
from tests.unit.test_portfolio_manager import DRAWDOWN, World
from tests.unit.test_portfolio_manager import groups as world_groups

D = Decimal
pytestmark = pytest.mark.anyio

DAILY = "    kill_switch:\n      max_daily_loss: {quote: 100}\n"
#: 200 KAS at 1: a tenth of the group's 2000, twice either rule's limit.
SWEEP = MemberTransfer("sweep-1", "out", True, D(200))


def sweep_a(world: World) -> None:
    """What member a reports once its bot read the sweep: 200 KAS fewer, and the sweep."""
    a = world.members["a"]
    a.base -= 200
    a.transfers = (SWEEP,)


@pytest.mark.parametrize("rules", [DRAWDOWN, DAILY], ids=["drawdown", "daily_loss"])
async def test_a_sweep_trips_no_group_rule_a_loss_of_its_size_does(
    tmp_path: Path, rules: str
) -> None:
    world = World(tmp_path, rules)
    await world.recompute()  # equity 2000: peak and day start
    sweep_a(world)
    await world.recompute()
    assert world.halt() is None
    tracker = world.group.tracker
    assert (tracker.peak_equity, tracker.day_start_equity) == (D(1800), D(1800))
    await world.recompute()  # counted once
    assert world.group.tracker.peak_equity == D(1800)
    world.members["b"].quote -= 200  # a trading loss of the same size
    await world.recompute()
    halt = world.halt()
    assert halt is not None and halt.rule.startswith("portfolio_max_")
    assert halt.value == pytest.approx(200.0)


async def test_a_quote_sweep_and_its_return_are_transfers_both_ways(tmp_path: Path) -> None:
    world = World(tmp_path, DRAWDOWN)
    await world.recompute()
    b = world.members["b"]
    b.quote -= 300
    b.transfers = (MemberTransfer("sweep-q", "out", False, D(300)),)
    await world.recompute()
    assert world.halt() is None and world.group.tracker.peak_equity == D(1700)
    # The withdrawal failed and came back: booked ``back``.
    b.quote += 300
    b.transfers += (MemberTransfer("sweep-q", "back", False, D(-300)),)
    await world.recompute()
    assert world.halt() is None and world.group.tracker.peak_equity == D(2000)


async def test_members_on_one_account_take_the_sweep_off_once_each(tmp_path: Path) -> None:
    """Both members report the shared account's balances, so the group's equity counts it once
    per member and falls by the sweep once per member: so does its peak, each member's part
    when that member's read shows it."""
    world = World(tmp_path, DRAWDOWN)
    for m in world.members.values():
        m.base, m.quote = D(1000), D(1000)
    await world.recompute()
    assert world.group.tracker.peak_equity == D(4000)
    a, b = world.members["a"], world.members["b"]
    a.base, a.transfers = D(800), (SWEEP,)  # a read the account first
    await world.recompute()
    assert world.halt() is None and world.group.tracker.peak_equity == D(3800)
    b.base, b.transfers = D(800), (SWEEP,)
    await world.recompute()
    assert world.halt() is None and world.group.tracker.peak_equity == D(3600)
    assert world.group.agg is not None and world.group.agg.equity == D(3600)
    assert world.group.counted == {("a", "sweep-1", "out"), ("b", "sweep-1", "out")}


def _sweep(key: str, amount: Decimal, ts: float) -> SweepRecord:
    return SweepRecord(
        key, "main", "mexc", "KAS", amount, D(1), "kaspa:q", "mainnet", None, "requested",
        requested_ts=ts, updated_ts=ts,
    )  # fmt: skip


async def test_a_counted_sweep_is_counted_once_after_a_restart(tmp_path: Path) -> None:
    async with AsyncLedger(Ledger(tmp_path / "ledger.sqlite")) as ledger:
        world = World(tmp_path, DRAWDOWN, ledger)
        await world.recompute()  # peak 2000 stored
        world.clock.advance_to(world.clock.now() + 10)
        sweep_a(world)
        await world.recompute()
        key = group_key("kas")
        assert await ledger.peak_equity(key) == D(1800)
        again = World(tmp_path, DRAWDOWN, ledger)
        again.clock.advance_to(world.clock.now() + 1)
        sweep_a(again)
        await again.recompute()
        assert again.halt() is None
        assert again.group.tracker.peak_equity == D(1800)
        assert again.group.tracker.day_start_equity == D(1800)
        assert await ledger.peak_equity(key) == D(1800)


async def test_a_restart_counts_what_a_member_booked_while_no_group_did(tmp_path: Path) -> None:
    """A crash after a member stored its booking and before the group counted it: the next
    start counts it from the member's booking (at its mark), lowering the stored peak once."""
    async with AsyncLedger(Ledger(tmp_path / "ledger.sqlite")) as ledger:
        world = World(tmp_path, DRAWDOWN, ledger)
        await world.recompute()  # peak and day start 2000, stored at wall 1000
        old = _sweep("sweep-0", D(50), 900.0)  # booked before the peak: in it already
        new = _sweep("sweep-1", D(200), 1005.0)
        book = SettlementBook(ledger.ledger)
        for record in (old, new):  # what member a's bot stored (its own peak aside)
            assert book.record_requested(record)
            assert book.book_transfer(
                "a", record.key, "out", "KAS", record.amount, D(1), record.requested_ts
            )
        again = World(tmp_path, DRAWDOWN, ledger)
        again.clock.advance_to(1010.0)
        sweep_a(again)
        again.members["a"].transfers = (
            MemberTransfer("sweep-0", "out", True, D(50)),
            SWEEP,
        )
        await again.recompute()
        assert again.halt() is None
        tracker = again.group.tracker
        assert (tracker.peak_equity, tracker.day_start_equity) == (D(1800), D(1800))
        assert await ledger.peak_equity(group_key("kas")) == D(1800)
        rows = await ledger.group_transfers(group_key("kas"))
        assert [(r.key, r.value, r.ts) for r in rows] == [
            ("sweep-0", D(50), 900.0),
            ("sweep-1", D(200), 1005.0),
        ]


# --- the real path: the members' engines, read through RunnerMember -------------------------


@dataclass
class _Bot:
    """What RunnerMember reads of a bot: its engine and its frozen view."""

    engine: Engine

    def view(self) -> BotView:
        return build_view(self.engine, BotState.QUOTING, 0.0, 0)


@dataclass
class _Runner:
    bot: _Bot


def transfer_engine(name: str) -> Engine:
    """test_engine_transfers' engine, under the member's name."""
    e = _engine()
    e.profile = make_profile(e.profile, name=name)
    return e


async def test_engines_sweep_through_runner_members_trips_no_group_rule(tmp_path: Path) -> None:
    """Two members' real engines (50,000 KAS and 4,000 USDT at 0.08 each: the group's equity
    16,000); a sweep of 20,001 KAS (1,600 quote: a tenth) from a's account is read, then
    booked: the group never trips, before the booking (the read moved the inventory) or after,
    and counts it once."""
    engines = {n: transfer_engine(name=n) for n in ("a", "b")}
    members = {n: RunnerMember(_Runner(_Bot(e))) for n, e in engines.items()}  # type: ignore[arg-type]
    world = World(tmp_path, DRAWDOWN)
    world.manager = PortfolioManager(world.clock, world.clock.wall, members.get)
    world.manager.configure(world_groups(tmp_path, DRAWDOWN), ["a", "b"])
    await world.recompute()
    assert world.group.agg is not None and world.group.agg.equity == D(16_000)
    a = engines["a"]
    a.on_book(transfer_book(2.0), 2.0)
    a.balances_read(D(29_999), D(4_000), OPENED + 2, 2.0, OPENED + 2, [transfer_sweep("s", 20_000)])
    await world.recompute()  # read, not booked yet: the inventory moved already
    assert world.halt() is None
    assert world.group.tracker.peak_equity == D(16_000) - D("1600.08")
    a.decide(2.0, OPENED + 2)  # booked
    await world.recompute()
    assert world.halt() is None and world.group.counted == {("a", "s", "out")}
    assert world.group.tracker.peak_equity == D(16_000) - D("1600.08")
