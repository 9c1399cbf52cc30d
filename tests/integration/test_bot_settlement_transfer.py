"""A bot trading on the MEXC emulator books a settlement sweep of its account as a transfer.

The sweep is written to the shared ledger the way the settlement executor writes it (requested
before the withdrawal goes out, then accepted with the exchange's id), and the withdrawal goes
through unmodified ccxt to the emulator, which debits the account. The running bot's next
balance read shows the debit: it books it (ledger, PnL, drawdown peak), counts no drift, trips
no kill switch, and its share target follows the new balances.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import anyio
import pytest
from pydantic import SecretStr

from kasmm.bot import Bot
from kasmm.clock import RealClock
from kasmm.config.schema import Profile
from kasmm.config.secrets import ResolvedCredentials
from kasmm.core.skew import effective_target_base
from kasmm.limiter import TokenBucket
from kasmm.store import AsyncLedger, Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlements import SweepRecord
from kasmm.venues.ccxt import CcxtVenue
from tests.emulators.mexc import MexcEmulator
from tests.emulators.wallet import KAS_ADDRESS, Stage
from tests.support import demo_profile, eventually

pytestmark = pytest.mark.anyio

D = Decimal
KEY, SECRET = "st-key", "st-secret"
ACCOUNT = "mexc-main"


def profile(url: str) -> Profile:
    data = demo_profile().model_dump(mode="json")
    data["name"] = "mexc-settled"
    data["venue"] = {
        "type": "ccxt",
        "exchange": "mexc",
        "rest_url": url,
        "account": ACCOUNT,
        "credentials": {"api_key": "${K}", "secret": "${S}"},
        "use_websocket": False,
        "book_poll_s": 0.1,
    }
    return Profile.model_validate(data)


def venue_of(p: Profile, clock: RealClock) -> CcxtVenue:
    return CcxtVenue(
        p.venue,  # type: ignore[arg-type]
        p.symbol,
        clock,
        TokenBucket(100, 100, clock),
        credentials=ResolvedCredentials(SecretStr(KEY), SecretStr(SECRET)),
        use_websocket=False,
    )


async def test_a_sweep_by_withdrawal_is_booked_by_the_running_bot(tmp_path: Path) -> None:
    balances = {"KAS": "50000", "USDT": "4000"}
    async with MexcEmulator(KEY, SECRET, balances=balances) as emu:
        emu.set_mid("0.08", spread_bps=20, size=50000)
        emu.wallet.allow(KEY, KAS_ADDRESS)
        p = profile(emu.base_url)
        clock = RealClock()
        venue = venue_of(p, clock)
        with Ledger(tmp_path / "kasmm.sqlite") as ledger:
            book = SettlementBook(ledger)
            bot = Bot(p, venue, clock=clock, ledger=AsyncLedger(ledger))
            assert bot.account == ACCOUNT
            async with anyio.create_task_group() as tg:
                with anyio.fail_after(20):
                    await tg.start(bot.run)
                engine = bot.engine
                await eventually(lambda: engine.transfers.since < float("inf"))
                peak = engine.tracker.peak_equity
                assert peak is not None
                # the settlement executor: recorded first, then the withdrawal through ccxt
                record = SweepRecord(
                    key="sw-1",
                    account=ACCOUNT,
                    exchange="mexc",
                    asset="KAS",
                    amount=D(20_000),
                    fee=D(1),
                    address=KAS_ADDRESS,
                    network="mainnet",
                    client_id=None,
                    state="requested",
                    requested_ts=clock.wall(),
                    updated_ts=clock.wall(),
                )
                assert book.record_requested(record)
                ex = emu.ccxt()
                try:
                    sent = await ex.withdraw("KAS", 20_000, KAS_ADDRESS, {"network": "KAS"})
                finally:
                    await ex.close()
                book.advance("sw-1", "accepted", clock.wall(), withdrawal_id=str(sent["id"]))
                for stage in (Stage.PROCESSING, Stage.SENT):
                    emu.wallet.advance(str(sent["id"]), stage, txid="ab" * 32)
                book.advance("sw-1", "sent", clock.wall(), txid="ab" * 32)
                # the next balance read (forced here instead of waiting 30 s)
                engine.balance_timer.force()
                with anyio.fail_after(10):
                    while not book.booked_transfers(p.name):
                        await anyio.sleep(0.05)
                view = bot.view()
                tg.cancel_scope.cancel()
            booked = book.booked_transfers(p.name)
            assert [(t.key, t.direction, t.asset, t.amount) for t in booked] == [
                ("sw-1", "out", "KAS", D(20_000))  # MEXC takes the fee out of the amount
            ]
            mark = booked[0].mark
            assert view.counters.balance_drifts == 0
            assert sum(view.counters.trips_by_rule.values()) == 0
            assert view.transfers is not None
            assert view.transfers.transferred_out == (("KAS", D(20_000)),)
            assert view.transfers.bookings == (("KAS", "out", 1),)
            assert view.inventory_base == D(30_000)
            assert peak is not None and view.peak_equity is not None
            assert view.peak_equity <= peak - D(20_000) * mark
            assert view.pnl.position == D(30_000)
            # the share target is half of the new value at the mark
            value = view.inventory_quote + view.inventory_base * mark
            target = effective_target_base(engine._params, value, mark)
            assert target is not None and abs(target - value / 2 / mark) <= 1
            # a restart on the same ledger resumes the booking and books nothing twice
            book.advance("sw-1", "confirmed", clock.wall(), confirmations=10)
            again = Bot(p, venue_of(p, clock), clock=clock, ledger=AsyncLedger(ledger))
            async with anyio.create_task_group() as tg:
                with anyio.fail_after(20):
                    await tg.start(again.run)
                again.engine.balance_timer.force()
                await eventually(lambda: again.stats.decisions > 3)
                restarted = again.view()
                tg.cancel_scope.cancel()
            assert len(book.booked_transfers(p.name)) == 1
            assert restarted.pnl.position == D(30_000)
            assert restarted.counters.balance_drifts == 0
            assert sum(restarted.counters.trips_by_rule.values()) == 0
