"""Portfolios through a real supervisor on simulated venues, in short real time.

Two sim profiles form one portfolio. Each member receives the group's skew; a group drawdown
halts every member (each stores the halt in its own ledger and cancels its orders); a member's
``kasmm reset`` clears the group's halt. Every wait is for an observable state, never a sleep.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from kasmm.core.risk import TradingState
from kasmm.store import AsyncLedger, Ledger
from kasmm.supervisor import Supervisor
from tests.integration.test_supervisor import VenueLog, write
from tests.support import eventually

pytestmark = pytest.mark.anyio


def member_yaml(name: str, seed: int) -> str:
    """A moving sim market (20 bps per sqrt(s)): the group's equity moves by about a quote a
    second, so a drawdown limit of 0.5 quote trips within seconds."""
    return textwrap.dedent(
        f"""\
        name: {name}
        venue:
          type: sim
          market: {{sigma_bps: 20, book_interval_s: 0.05}}
          seed: {seed}
        symbol: KAS/USDT
        modes:
          passive: {{spread_bps: 20, size: 1000, levels: 2}}
        refresh: {{fallback_interval_s: 0.2}}
        kill_switch: {{stale_book: null, mid_jump: null}}
        """
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[AsyncLedger]:
    with Ledger(tmp_path / "kasmm.sqlite") as opened:
        yield AsyncLedger(opened)


def setup(directory: Path, rules: str) -> None:
    write(directory, "deep", member_yaml("deep", 1))
    write(directory, "thin", member_yaml("thin", 2))
    (directory / "_portfolios.yaml").write_text(
        "portfolios:\n  kas:\n    members: [deep, thin]\n" + rules
    )


async def test_members_skew_toward_the_group_and_status_shows_it(
    tmp_path: Path, ledger: AsyncLedger
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    setup(profiles, "    target: {share: 0.5}\n")
    sup = Supervisor(profiles, venue_factory=VenueLog().factory, ledger=ledger)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)

        def skewed() -> bool:
            bots = [sup.slots[n].bot for n in ("deep", "thin")]
            return all(b is not None and b.engine.group is not None for b in bots)

        await eventually(skewed, within_s=20)
        (row,) = sup.status()["portfolios"]
        assert row["name"] == "kas" and row["state"] == "active"
        assert set(row["members"]) == {"deep", "thin"} and row["waiting_for"] == []
        assert row["value"] is not None and row["share"] is not None
        # Hot reload: an invalid file keeps the last good groups; removing the group releases
        # its members (they skew on their own again).
        (profiles / "_portfolios.yaml").write_text("portfolios: {kas: {members: [nobody]}}\n")
        result = await sup.reload()
        assert [i.field for i in result.issues] == ["portfolios.kas.members[0]"]
        assert list(sup.portfolios.groups) == ["kas"]
        (profiles / "_portfolios.yaml").write_text("portfolios: {}\n")
        result = await sup.reload()
        assert result.issues == [] and sup.portfolios.groups == {}
        assert sup.status()["portfolios"] == []
        for name in ("deep", "thin"):
            bot = sup.slots[name].bot
            assert bot is not None and bot.engine.group is None
        tg.cancel_scope.cancel()


async def test_a_group_drawdown_halts_every_member_until_reset(
    tmp_path: Path, ledger: AsyncLedger
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    setup(profiles, "    kill_switch:\n      max_drawdown: {quote: 0.5}\n")
    log = VenueLog()
    sup = Supervisor(profiles, venue_factory=log.factory, ledger=ledger)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)

        def halted(name: str) -> bool:
            bot = sup.slots[name].bot
            if bot is None:
                return False
            view = bot.view()
            return (
                view.trading_state is TradingState.HALTED
                and view.halt_reason is not None
                and view.halt_reason.startswith("portfolio_max_drawdown")
            )

        await eventually(lambda: halted("deep") and halted("thin"), within_s=30)
        # Each member's halt is in its own ledger (a restart keeps it), and the group's too.
        for name in ("deep", "thin"):
            halt = await ledger.active_halt(name)
            assert halt is not None and halt.rule == "portfolio_max_drawdown"
        assert await ledger.active_halt("portfolio:kas") is not None
        # Halted members cancel their orders.
        await eventually(
            lambda: all(log.last(n).open_order_count == 0 for n in ("deep", "thin")), within_s=10
        )
        await eventually(lambda: sup.status()["portfolios"][0]["state"] == "halted", within_s=5)
        # `kasmm reset thin`: the bot sees it on its next halt check, the group then clears
        # its own halt (and re-bases its peak), recorded in the ledger.
        assert await ledger.reset("thin", time.time(), "test")

        async def group_reset() -> bool:
            return any(e.kind == "reset" for e in await ledger.risk_events("portfolio:kas"))

        with anyio.fail_after(20):
            while not await group_reset():
                await sup.portfolios.recomputed.wait()
        tg.cancel_scope.cancel()
    assert all(v.open_order_count == 0 for vs in log.venues.values() for v in vs)


async def test_a_group_halt_survives_a_restart_of_the_supervisor(
    tmp_path: Path, ledger: AsyncLedger
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    setup(profiles, "    kill_switch:\n      max_drawdown: {quote: 0.5}\n")

    def halted(sup: Supervisor, name: str) -> bool:
        bot = sup.slots[name].bot
        return bot is not None and bot.view().trading_state is TradingState.HALTED

    first = Supervisor(profiles, venue_factory=VenueLog().factory, ledger=ledger)
    async with anyio.create_task_group() as tg:
        await tg.start(first.run)
        await eventually(lambda: halted(first, "deep") and halted(first, "thin"), within_s=30)
        tg.cancel_scope.cancel()
    trips = {n: len(await ledger.risk_events(n)) for n in ("deep", "thin")}
    second = Supervisor(profiles, venue_factory=VenueLog().factory, ledger=ledger)
    async with anyio.create_task_group() as tg:
        await tg.start(second.run)
        # Each member restores its own halt; the group restores its own.
        await eventually(lambda: halted(second, "deep") and halted(second, "thin"), within_s=10)
        await eventually(lambda: second.status()["portfolios"][0]["state"] == "halted", 10)
        tg.cancel_scope.cancel()
    # Nothing tripped again: the halts are the stored ones.
    assert {n: len(await ledger.risk_events(n)) for n in ("deep", "thin")} == trips
    assert [e.kind for e in await ledger.risk_events("portfolio:kas")] == ["trip"]
