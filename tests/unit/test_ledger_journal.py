"""BotJournal over the ledger: a fill is seen only once stored; a lost ledger propagates."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.errors import LedgerLost
from kasmm.journal import BotJournal
from kasmm.store import AsyncLedger, Ledger

D = Decimal
P = "kas_usdt"
FILL = Fill(TradeId("t1"), ClientOrderId("c1"), Side.BUY, D("0.12"), D(10), D(0), "USDT", 1.0)


class FailingOnceLedger(Ledger):
    """A ledger whose first fill write fails the way a full disk or an I/O error does."""

    failures = 1

    def record_fill(self, profile: str, fill: Fill) -> bool:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return super().record_fill(profile, fill)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[AsyncLedger]:
    async with AsyncLedger(FailingOnceLedger(tmp_path / "kasmm.sqlite")) as opened:
        yield opened


@pytest.mark.anyio
async def test_a_failed_fill_write_leaves_the_trade_unseen_so_the_redelivery_is_stored(
    ledger: AsyncLedger,
) -> None:
    journal = BotJournal(P, "USDT", ledger)
    with pytest.raises(sqlite3.OperationalError):
        await journal.fill(FILL)
    assert await journal.fill(FILL) is True  # the venue delivers it again: stored now
    assert await ledger.fills(P) == [FILL]
    assert await journal.fill(FILL) is False  # and a third delivery is a duplicate


@pytest.mark.anyio
async def test_a_fill_already_in_the_ledger_is_seen_after_a_restart(
    ledger: AsyncLedger,
) -> None:
    ledger.ledger.failures = 0  # type: ignore[attr-defined]
    assert await BotJournal(P, "USDT", ledger).fill(FILL) is True
    restarted = BotJournal(P, "USDT", ledger)
    assert await restarted.fill(FILL) is False
    assert await restarted.fill(FILL) is False  # remembered in memory from now on


@pytest.mark.anyio
async def test_ledger_lost_propagates_out_of_the_journal_unchanged(
    ledger: AsyncLedger, tmp_path: Path
) -> None:
    ledger.ledger.failures = 0  # type: ignore[attr-defined]
    journal = BotJournal(P, "USDT", ledger)
    (tmp_path / "kasmm.sqlite").unlink()
    with pytest.raises(LedgerLost, match="deleted while in use"):
        await journal.fill(FILL)
    journal.order_status(ClientOrderId("c1"), "filled", 1.0)
    calls: list[Callable[[], Awaitable[object]]] = [
        journal.flush,
        lambda: journal.mode(1.0, "normal", "start"),
        journal.halt_cleared,
        lambda: journal.restore("UTC", 1.0),
    ]
    for call in calls:
        with pytest.raises(LedgerLost, match="deleted while in use"):
            await call()


@pytest.mark.anyio
async def test_without_a_ledger_fills_are_still_deduplicated() -> None:
    journal = BotJournal(P, "USDT", None)
    assert await journal.fill(FILL) is True
    assert await journal.fill(FILL) is False
