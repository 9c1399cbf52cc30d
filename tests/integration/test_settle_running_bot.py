"""``kasmm settle --execute`` while the account's bot trades: the bot books the sweep as a transfer.

The whole path of issue 20 at once, nothing written by hand: the bot runs on the MEXC emulator
through ccxt with the shared ledger; ``kasmm settle --execute --wait`` (a separate process, as an
operator runs it) plans the sweep from the bot's needs, records it, withdraws through ccxt and
follows it to its confirmations at the loopback node; the running bot's next balance read shows
the debit and books it: no drift, no kill switch, PnL's position and the drawdown peak follow,
and its share target is half of the *new* value.
"""

from __future__ import annotations

from decimal import Decimal as D

import anyio
import pytest
from pydantic import SecretStr
from ruamel.yaml import YAML

from kasmm.bot import Bot
from kasmm.clock import RealClock
from kasmm.config.schema import Profile
from kasmm.config.secrets import ResolvedCredentials
from kasmm.core.skew import effective_target_base
from kasmm.limiter import TokenBucket
from kasmm.store import AsyncLedger, Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.venues.ccxt import CcxtVenue
from tests.emulators.wallet import KAS_ADDRESS
from tests.integration.test_settle_cli import KEY, SECRET, Setup, setup
from tests.support import eventually

__all__ = ["setup"]  # the fixture, shared with the CLI's own tests

pytestmark = pytest.mark.anyio


def _bot(setup: Setup, ledger: Ledger, clock: RealClock) -> Bot:
    data = YAML(typ="safe").load((setup.profiles / "mexc-kas.yaml").read_text())
    profile = Profile.model_validate(data)
    venue = CcxtVenue(
        profile.venue,  # type: ignore[arg-type]
        profile.symbol,
        clock,
        TokenBucket(100, 100, clock),
        credentials=ResolvedCredentials(SecretStr(KEY), SecretStr(SECRET)),
        use_websocket=False,
    )
    return Bot(profile, venue, clock=clock, ledger=AsyncLedger(ledger))


async def test_the_running_bot_books_the_sweep_kasmm_settle_executed(setup: Setup) -> None:
    setup.state.mkdir()
    clock = RealClock()
    with Ledger(setup.state / "kasmm.sqlite") as ledger:
        book = SettlementBook(ledger)
        bot = _bot(setup, ledger, clock)
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(20):
                await tg.start(bot.run)
            engine = bot.engine
            await eventually(lambda: engine.transfers.since < float("inf"))
            before = bot.view()
            assert before.inventory_base == D(300000) and before.peak_equity is not None
            setup.chain.running = True
            code, out, err = await setup.settle("--execute", "--wait", "60")
            assert code == 0, out + err
            (sweep,) = book.sweeps("mexc-main")
            assert (sweep.state, sweep.amount, sweep.address) == (
                "confirmed",
                D(100000),
                KAS_ADDRESS,
            )
            engine.balance_timer.force()  # the next balance read, instead of waiting 30 s
            with anyio.fail_after(10):
                while not book.booked_transfers("mexc-kas"):
                    await anyio.sleep(0.05)
            await eventually(lambda: bot.view().transfers is not None)
            after = bot.view()
            params = engine._params
            tg.cancel_scope.cancel()
        (booked,) = book.booked_transfers("mexc-kas")
    assert (booked.key, booked.direction, booked.asset) == (sweep.key, "out", "KAS")
    assert booked.amount == D(100000)  # MEXC takes the fee out of the amount
    assert after.counters.balance_drifts == 0
    assert sum(after.counters.trips_by_rule.values()) == 0
    assert after.inventory_base == D(200000)
    assert after.pnl.position == D(200000)
    assert after.transfers is not None
    assert after.transfers.transferred_out == (("KAS", D(100000)),)
    mark = booked.mark
    assert after.peak_equity is not None and before.peak_equity is not None
    assert after.peak_equity <= before.peak_equity - D(100000) * mark
    value = after.inventory_quote + after.inventory_base * mark
    target = effective_target_base(params, value, mark)
    assert target is not None and abs(target - value / 2 / mark) <= 1
