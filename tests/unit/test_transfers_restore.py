"""Booked transfers survive a restart: PnL replays them with the fills in time order, the stored
peak and the day's start forget their value, and a booked sweep is never booked again."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from kasmm.bot.commands import StoreTransfer
from kasmm.commands.pnl import pnl_command
from kasmm.core.pnl import PnlState, apply_fill, transfer
from kasmm.core.types import ClientOrderId, Fill, OpenOrder, Side, TradeId
from kasmm.journal import BotJournal, Restored
from kasmm.report.analysis import max_drawdown
from kasmm.report.daily import daily_pnl, total
from kasmm.report.gather import gather
from kasmm.store import AsyncLedger
from kasmm.store.ledger import Ledger
from kasmm.store.reader import LedgerReader
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlements import SweepRecord
from tests.unit.test_engine_transfers import MID, OPENED, engine, read, sweep

D = Decimal
PROFILE = "kas-usdt-sim"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "kasmm.sqlite") as opened:
        yield opened


def fill(trade: str, side: Side, price: str, size: int, ts: float) -> Fill:
    return Fill(TradeId(trade), ClientOrderId("kx_1"), side, D(price), D(size), D(0), "USDT", ts)


def requested(key: str, amount: int) -> SweepRecord:
    return sweep(key, amount, state="requested")


def test_pnl_replays_transfers_with_the_fills_in_time_order(ledger: Ledger) -> None:
    book = SettlementBook(ledger)
    ledger.set_opening(PROFILE, D(50_000), MID, OPENED)
    early = fill("t1", Side.BUY, "0.09", 1_000, OPENED + 1)
    late = fill("t2", Side.SELL, "0.1", 3_000, OPENED + 5)
    ledger.record_fill(PROFILE, early)
    ledger.record_fill(PROFILE, late)
    book.record_requested(requested("s1", 20_000))
    book.record_requested(requested("u1", 500))
    assert book.book_transfer(PROFILE, "s1", "out", "KAS", D(20_001), D("0.095"), OPENED + 3)
    assert book.book_transfer(PROFILE, "u1", "out", "USDT", D(500), D(1), OPENED + 4)
    want = PnlState.opening(D(50_000), MID)
    want = apply_fill(want, early, "USDT")
    want = transfer(want, D(20_001), D("0.095"))  # the USDT sweep moves no position
    want = apply_fill(want, late, "USDT")
    # the transfer sits between the fills by time: exactly the state the bot had
    assert ledger.pnl_state(PROFILE, "USDT", (D(50_000), MID)) == want


def test_the_stored_peak_is_lowered_once_and_a_key_is_booked_once(ledger: Ledger) -> None:
    book = SettlementBook(ledger)
    ledger.record_equity(PROFILE, OPENED, D(8_000), MID, D(50_000), D(4_000))
    book.record_requested(requested("s1", 20_000))
    value = D(20_001) * MID
    assert book.book_transfer(PROFILE, "s1", "out", "KAS", D(20_001), MID, OPENED + 2, value)
    assert not book.book_transfer(PROFILE, "s1", "out", "KAS", D(20_001), MID, OPENED + 3, value)
    assert ledger.peak_equity(PROFILE) == D(8_000) - value
    assert [t.key for t in book.booked_transfers(PROFILE)] == ["s1"]


def test_a_restarted_bot_resumes_its_bookings_and_books_nothing_twice(ledger: Ledger) -> None:
    # first run: open, snapshot the equity, book a sweep through the engine
    first = engine()
    ledger.set_opening(PROFILE, D(50_000), MID, OPENED)
    ledger.record_equity(PROFILE, OPENED + 0.5, D(8_000), MID, D(50_000), D(4_000))
    SettlementBook(ledger).record_requested(requested("s1", 20_000))
    read(first, 2.0, D(29_999), D(4_000), sweep("s1", 20_000, state="sent"))
    (stored,) = [c for c in first.take() if isinstance(c, StoreTransfer)]

    async def store_and_restore() -> tuple[object, ...]:
        journal = BotJournal(PROFILE, "USDT", AsyncLedger(ledger))
        await journal.transfer(
            stored.key, "out", stored.asset, stored.amount, stored.mark, stored.value, stored.wall
        )
        await journal.transfer(  # a repeat (a crash before the bot knew it was stored)
            stored.key, "out", stored.asset, stored.amount, stored.mark, stored.value, stored.wall
        )
        restored = await journal.restore("UTC", OPENED + 10)
        return (restored,)

    (restored,) = anyio.run(store_and_restore)
    assert isinstance(restored, Restored)
    equity = D(8_000) - D(20_001) * MID
    assert restored.peak_equity == equity
    assert restored.day_start_equity == equity
    assert restored.opened_at == OPENED
    assert [t.key for t in restored.transfers] == ["s1"]
    assert restored.pnl is not None and restored.pnl.position == D(29_999)
    # second run: the same sweep, now confirmed, is never booked again
    second = engine()
    second.account.inventory.base = D(29_999)  # what its start-up read found
    second.restored(restored, OPENED + 10)
    assert second.account.pnl == restored.pnl
    read(second, 3.0, D(29_999), D(4_000), sweep("s1", 20_000, state="confirmed"))
    read(second, 4.0, D(29_999), D(4_000), sweep("s1", 20_000, state="confirmed"))
    commands = second.take()
    assert not [c for c in commands if isinstance(c, StoreTransfer)]
    assert second.stats.balance_drifts == 0 and second.stats.kill_switch_trips == 0


def test_kasmm_pnl_days_fold_the_transfers_and_add_up_to_the_bots_state(ledger: Ledger) -> None:
    book = SettlementBook(ledger)
    ledger.set_opening(PROFILE, D(50_000), MID, OPENED)
    ledger.record_equity(PROFILE, OPENED + 1, D(8_000), MID, D(50_000), D(4_000))
    ledger.record_fill(PROFILE, fill("t1", Side.BUY, "0.09", 1_000, OPENED + 2))
    book.record_requested(requested("s1", 20_000))
    book.book_transfer(PROFILE, "s1", "out", "KAS", D(20_001), D("0.1"), OPENED + 3)
    ledger.record_equity(PROFILE, OPENED + 86_400 * 2, D(4_000), D("0.12"), D(30_999), D(3_910))
    with LedgerReader(ledger.path) as reader:
        records = reader.accounting(PROFILE)
    assert [t.key for t in records.transfers] == ["s1"]
    daily = daily_pnl(
        records.fills, records.opening, records.equity, "USDT", transfers=records.transfers
    )
    assert daily.state == ledger.pnl_state(PROFILE, "USDT", records.opening)
    mark = D("0.12")
    parts = daily.state.parts(mark)
    days = total(daily.days)
    assert days.revaluation == parts.revaluation and days.hold == parts.hold
    assert days.spread_capture - days.fees + days.revaluation == parts.net
    # what left is valued at the booking's mark: the later rise counts only what is held
    assert parts.net == daily.state.position * (mark - daily.state.avg_cost) + (
        daily.state.transferred
    )


def test_the_reports_track_folds_the_transfers_with_the_fills_as_the_bot_does(
    ledger: Ledger,
) -> None:
    book = SettlementBook(ledger)
    ledger.set_opening(PROFILE, D(50_000), MID, OPENED)
    early = fill("t1", Side.BUY, "0.09", 1_000, OPENED + 1)
    late = fill("t2", Side.SELL, "0.1", 3_000, OPENED + 5)
    ledger.record_fill(PROFILE, early)
    ledger.record_fill(PROFILE, late)
    book.record_requested(requested("s1", 20_000))
    book.record_requested(requested("u1", 500))
    assert book.book_transfer(PROFILE, "s1", "out", "KAS", D(20_001), D("0.095"), OPENED + 3)
    assert book.book_transfer(PROFILE, "u1", "out", "USDT", D(500), D(1), OPENED + 4)
    ledger.record_equity(PROFILE, OPENED + 6, D(4_000), D("0.1"), D(27_999), D(4_000))
    bot = ledger.pnl_state(PROFILE, "USDT", (D(50_000), MID))
    # without the profile file the quote asset is taken from the fills' fees, as kasmm pnl does
    track = gather(ledger, PROFILE, None, OPENED + 10, None).pnl
    assert track.total == bot
    assert track.state_at(OPENED + 2).position == D(51_000)
    assert track.state_at(OPENED + 3).position == D(51_000 - 20_001)  # the sweep left
    assert track.state_at(OPENED + 4).position == D(51_000 - 20_001)  # USDT moves no base
    assert track.state_at(OPENED + 5) == bot
    # the unrealized PnL the report charts is the position still held
    assert track.unrealized(OPENED + 6, D("0.1")) == bot.unrealized(D("0.1"))
    # a transfer realizes nothing: the period's realized PnL is the sell's alone
    assert track.realized == bot.realized


MIDNIGHT = 86_400.0 * 2  # a UTC midnight
SWEPT = D(20_001) * MID  # the value the sweep took out, at its booking's mark


@pytest.mark.parametrize(
    ("snapshot", "booked", "start"),
    [
        # no snapshot before midnight: the day starts from its first one
        pytest.param(MIDNIGHT + 10, MIDNIGHT + 5, D(8_000), id="swept-before-the-first-snapshot"),
        pytest.param(MIDNIGHT + 10, MIDNIGHT + 10, D(8_000), id="swept-at-the-first-snapshot"),
        pytest.param(MIDNIGHT + 10, MIDNIGHT + 20, D(8_000) - SWEPT, id="swept-after-it"),
        # the last snapshot of the day before
        pytest.param(MIDNIGHT - 100, MIDNIGHT + 5, D(8_000) - SWEPT, id="swept-today"),
        pytest.param(MIDNIGHT - 100, MIDNIGHT - 50, D(8_000) - SWEPT, id="swept-before-midnight"),
        pytest.param(MIDNIGHT - 100, MIDNIGHT - 200, D(8_000), id="swept-before-that-snapshot"),
    ],
)
def test_the_restored_day_start_forgets_only_the_transfers_after_its_snapshot(
    ledger: Ledger, snapshot: float, booked: float, start: Decimal
) -> None:
    """The snapshot the day starts from already holds what left before it: the restored day
    start is lowered only by the transfers booked after it (never twice)."""
    ledger.record_equity(PROFILE, snapshot, D(8_000), MID, D(50_000), D(4_000))
    SettlementBook(ledger).record_requested(requested("s1", 20_000))
    book = SettlementBook(ledger)
    assert book.book_transfer(PROFILE, "s1", "out", "KAS", D(20_001), MID, booked, SWEPT)

    async def restore() -> Restored:
        return await BotJournal(PROFILE, "USDT", AsyncLedger(ledger)).restore("UTC", MIDNIGHT + 30)

    assert anyio.run(restore).day_start_equity == start


def test_kasmm_pnl_and_the_reports_figures_after_a_sweep_are_the_bots_pnl(
    ledger: Ledger,
) -> None:
    """A bot buys, its account is swept, it sells: what it stored, replayed by ``kasmm pnl``,
    the report's days and its PnL track, is the PnL the bot itself holds."""
    bot = engine()
    ledger.set_opening(PROFILE, D(50_000), MID, OPENED)
    ledger.record_equity(PROFILE, OPENED, D(8_000), MID, D(50_000), D(4_000))

    def trade(side: Side, price: str, size: int, t: float, trade_id: str) -> None:
        cid = bot.ids.next()
        bot.open_orders[cid] = OpenOrder(cid, side, D(price), D(size), D(size), created_at=t)
        done = Fill(TradeId(trade_id), cid, side, D(price), D(size), D("0.05"), "USDT", OPENED + t)
        bot.on_fill(done, t)
        ledger.record_fill(PROFILE, done)

    trade(Side.BUY, "0.079", 1_000, 1.0, "t1")  # 51,000 KAS at an average cost below the mark
    base, quote = bot.account.inventory.base, bot.account.inventory.quote
    SettlementBook(ledger).record_requested(requested("s1", 20_000))
    read(bot, 2.0, base - D(20_001), quote, sweep("s1", 20_000, state="sent"))
    (stored,) = [c for c in bot.take() if isinstance(c, StoreTransfer)]
    assert SettlementBook(ledger).book_transfer(
        PROFILE, stored.key, "out", stored.asset, stored.amount, stored.mark, stored.wall
    )
    trade(Side.SELL, "0.081", 3_000, 3.0, "t2")
    mark = D("0.082")
    inv = bot.account.inventory
    ledger.record_equity(PROFILE, OPENED + 4, inv.equity(mark), mark, inv.base, inv.quote)
    held = bot.account.pnl
    assert held.position == D(51_000 - 20_001 - 3_000) and held.transferred != 0
    want = held.parts(mark)

    assert ledger.pnl_state(PROFILE, "USDT", ledger.opening(PROFILE)) == held  # a restart
    report = gather(ledger, PROFILE, None, OPENED + 10, None)  # kasmm report's figures
    assert report.pnl.total == held
    assert report.pnl.state_at(OPENED + 1).position == D(51_000)
    assert report.pnl.state_at(stored.wall).position == D(51_000 - 20_001)
    assert report.pnl.unrealized(OPENED + 4, mark) == held.unrealized(mark)
    assert report.daily is not None and report.daily.state == held
    days = total(report.daily.days)
    assert (days.spread_capture, days.fees, days.revaluation, days.net, days.hold) == (
        want.spread_capture,
        want.fees,
        want.revaluation,
        want.net,
        want.hold,
    )
    out = io.StringIO()  # kasmm pnl --json
    repo_profiles = Path(__file__).resolve().parents[2] / "profiles"  # the profile's quote
    code = pnl_command(
        ledger.path.parent, profiles_dir=repo_profiles, as_json=True, now=OPENED + 10, out=out
    )
    assert code == 0
    (printed,) = json.loads(out.getvalue())["profiles"]
    assert printed["quote"] == "USDT"
    since_start = printed["since_start"]
    assert [D(since_start[k]) for k in ("spread_capture", "fees", "revaluation", "net")] == [
        want.spread_capture,
        want.fees,
        want.revaluation,
        want.net,
    ]
    assert D(since_start["hold"]) == want.hold


def test_the_reports_drawdown_forgets_a_sweep_as_the_bots_does(ledger: Ledger) -> None:
    """What settlement took out is no drawdown in the report either: its running peak is
    lowered by the value booked, as the bot's (and the stored) peak is."""
    ledger.set_opening(PROFILE, D(50_000), MID, OPENED)
    ledger.record_equity(PROFILE, OPENED, D(8_000), MID, D(50_000), D(4_000))
    book = SettlementBook(ledger)
    book.record_requested(requested("s1", 20_000))
    book.record_requested(requested("u1", 500))
    assert book.book_transfer(PROFILE, "s1", "out", "KAS", D(20_001), MID, OPENED + 2, SWEPT)
    assert book.book_transfer(PROFILE, "u1", "out", "USDT", D(500), D(1), OPENED + 2, D(500))
    after = D(8_000) - SWEPT - D(500)
    ledger.record_equity(PROFILE, OPENED + 3, after - D(5), MID, D(29_999), D(3_495) - D(5) / MID)
    report = gather(ledger, PROFILE, None, OPENED + 10, None)
    deepest = max_drawdown(report.drawdown)
    assert deepest is not None
    assert (deepest.peak, deepest.drawdown) == (after, D(5))  # a trading loss of 5, no more
    stored_peak = ledger.peak_equity(PROFILE)  # what a restarted bot measures from
    assert stored_peak is not None and stored_peak - (after - D(5)) == D(5)
