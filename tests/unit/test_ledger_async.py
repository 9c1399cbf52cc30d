"""AsyncLedger: the same API off the event loop, one call at a time, safe under concurrency."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.store import AsyncLedger, Ledger

D = Decimal
P = "kas_usdt"


def fill(n: int, side: Side = Side.BUY, price: str = "1", size: str = "1") -> Fill:
    return Fill(
        TradeId(f"t{n}"), ClientOrderId(f"c{n}"), side, D(price), D(size), D(0), "USDT", float(n)
    )


class ThreadRecordingLedger(Ledger):
    """A ledger that notes which threads ran its calls, and how many ran at once."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.threads: set[int] = set()
        self.running = 0
        self.most_at_once = 0
        self._count_lock = threading.Lock()

    def record_fill(self, profile: str, fill: Fill) -> bool:
        with self._count_lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.threads.add(threading.get_ident())
        try:
            return super().record_fill(profile, fill)
        finally:
            with self._count_lock:
                self.running -= 1


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[AsyncLedger]:
    async with AsyncLedger(ThreadRecordingLedger(tmp_path / "kasmm.sqlite")) as opened:
        yield opened


@pytest.mark.anyio
async def test_round_trip_through_worker_threads(ledger: AsyncLedger) -> None:
    assert await ledger.set_opening(P, D(100), D("1.00"), 0.0)
    assert await ledger.record_fill(P, fill(1, Side.BUY, "1.10", "100"))
    assert not await ledger.record_fill(P, fill(1, Side.BUY, "1.10", "100"))
    state = await ledger.pnl_state(P, "USDT", await ledger.opening(P))
    assert (state.position, state.avg_cost) == (D(200), D("1.05"))
    assert await ledger.fills(P) == [fill(1, Side.BUY, "1.10", "100")]

    cid = ClientOrderId("o1")
    await ledger.record_order(P, cid, Side.SELL, D("1.2"), D(5), 1.0, level=1)
    await ledger.record_order_status(P, cid, "open", 2.0)
    assert await ledger.open_orders(P) == [cid]
    assert len(await ledger.order_history(P, cid)) == 2

    await ledger.record_equity(P, 3.0, D(330), D("1.1"), D(200), D(110))
    assert await ledger.peak_equity(P) == D(330)
    assert len(await ledger.equity_series(P)) == 1
    assert await ledger.daily_pnl(P, "UTC", 4.0, D("1.2")) == D(20)

    await ledger.record_mode(P, 1.0, "normal", "start")
    assert len(await ledger.mode_changes(P)) == 1
    await ledger.record_risk_event(P, 5.0, "trip", "max_drawdown", "halt", "halted", {})
    assert await ledger.active_halt(P) is not None
    assert await ledger.reset(P, 6.0, "alice")
    assert not await ledger.reset(P, 7.0, "alice")
    assert [e.kind for e in await ledger.risk_events(P)] == ["trip", "reset"]
    assert await ledger.profiles() == [P]

    recorder = ledger.ledger
    assert isinstance(recorder, ThreadRecordingLedger)
    assert threading.get_ident() not in recorder.threads


@pytest.mark.anyio
async def test_twenty_concurrent_fills_all_land_one_at_a_time(ledger: AsyncLedger) -> None:
    results: dict[int, bool] = {}

    async def record(n: int) -> None:
        results[n] = await ledger.record_fill(P, fill(n))

    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(record, n)
    assert results == dict.fromkeys(range(20), True)
    assert sorted(f.trade_id for f in await ledger.fills(P)) == sorted(f"t{n}" for n in range(20))
    recorder = ledger.ledger
    assert isinstance(recorder, ThreadRecordingLedger)
    assert recorder.most_at_once == 1


@pytest.mark.anyio
async def test_twenty_concurrent_copies_of_one_fill_are_stored_once(ledger: AsyncLedger) -> None:
    results: list[bool] = []

    async def record() -> None:
        results.append(await ledger.record_fill(P, fill(7, Side.SELL, "2", "3")))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(record)
    assert sorted(results) == [False] * 19 + [True]
    state = await ledger.pnl_state(P, "USDT", None)
    assert (state.sell_count, state.position) == (1, D(-3))


@pytest.mark.anyio
async def test_concurrent_resets_clear_a_halt_once(ledger: AsyncLedger) -> None:
    await ledger.record_risk_event(P, 1.0, "trip", "mid_jump", "halt", "halted", {"value": 9.5})
    results: list[bool] = []

    async def reset(operator: str) -> None:
        results.append(await ledger.reset(P, 2.0, operator))

    async with anyio.create_task_group() as tg:
        for n in range(5):
            tg.start_soon(reset, f"op{n}")
    assert sorted(results) == [False] * 4 + [True]
