"""The supervisor's hedge link around the pure hedger: B down trips A, a restart hedges once.

The link runs on a virtual clock against fake bots (what a link uses of a bot: its state, risk,
book and rules, ``ioc_request``/``send_ioc``, and the engine's ``external_trip``); the ledger
is the real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from kasmm.bot.stats import BotState
from kasmm.clock import Clock, VirtualClock
from kasmm.core.risk import RiskState, Trip
from kasmm.core.types import (
    Book,
    BookLevel,
    ClientOrderId,
    Fill,
    MarketRules,
    OpenOrder,
    OrderRequest,
    Side,
    TradeId,
)
from kasmm.errors import LedgerLost, TransientVenueError
from kasmm.store import AsyncLedger, Ledger
from kasmm.supervisor.hedging import Hedging
from kasmm.venues.base import IocOutcome
from tests.support import eventually, make_profile

D = Decimal
RULES = MarketRules("KAS/USDT", "KAS", "USDT", D("0.0001"), D("1"), min_notional=D("1"))
BOOK = Book((BookLevel(D("0.1000"), D("1e6")),), (BookLevel(D("0.1002"), D("1e6")),), 0.0)
A = make_profile(
    name="thin",
    hedge={
        "profile": "deep",
        "window_ms": 100,
        "retry_s": 2,
        "max_unhedged_base": {"base": "1000", "action": "pause"},
    },
)


@dataclass
class FakeEngine:
    trips: list[tuple[Trip | None, str]] = field(default_factory=list)

    def external_trip(self, trip: Trip | None, source: str) -> None:
        self.trips.append((trip, source))


@dataclass
class FakeBot:
    """A running bot as the link sees it; ``send_ioc`` fills ``fill_share`` of each IOC and
    reports the fills as the bot's fill path would (stored first)."""

    name: str
    hedging: Hedging | None = None
    ledger: Ledger | None = None
    fill_share: Decimal = Decimal(1)
    down: bool = False
    state: BotState = BotState.QUOTING
    risk: RiskState = field(default_factory=RiskState)
    book: Book | None = BOOK
    rules: MarketRules | None = RULES
    engine: FakeEngine = field(default_factory=FakeEngine)
    sent: list[OrderRequest] = field(default_factory=list)
    open_orders: dict[ClientOrderId, OpenOrder] = field(default_factory=dict)

    def ioc_request(self, side: Side, price: Decimal, size: Decimal) -> OrderRequest:
        return OrderRequest.ioc(ClientOrderId(f"dp_h{len(self.sent) + 1}"), side, price, size)

    async def send_ioc(self, request: OrderRequest) -> IocOutcome:
        self.sent.append(request)
        if self.down:
            raise TransientVenueError("exchange unreachable")
        filled = (request.size * self.fill_share).quantize(D(1), rounding=ROUND_HALF_EVEN)
        if filled:
            fill = Fill(TradeId(f"x{len(self.sent)}"), request.client_id, request.side,
                        request.price, filled, D(0), "USDT", 0.0, is_maker=False)  # fmt: skip
            if self.ledger is not None:
                self.ledger.record_fill(self.name, fill)
            assert self.hedging is not None
            self.hedging.on_fill(self.name, fill)
        return IocOutcome.of(request.client_id, request.size, filled, filled * request.price)


@dataclass
class Host:
    clock: Clock
    ledger: AsyncLedger | None
    bots: dict[str, Any] = field(default_factory=dict)
    lost: list[LedgerLost] = field(default_factory=list)

    def running_bot(self, name: str) -> Any:
        return self.bots.get(name)

    def on_ledger_lost(self, exc: LedgerLost) -> None:
        self.lost.append(exc)


def _fill(trade: str, side: Side, size: str) -> Fill:
    return Fill(TradeId(trade), ClientOrderId("th_x1"), side, D("0.1001"), D(size), D(0), "USDT",
                0.0)  # fmt: skip


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "kasmm.sqlite") as opened:
        yield opened


@pytest.mark.anyio
async def test_b_down_trips_a_until_the_residual_is_hedged() -> None:
    clock = VirtualClock(100.0)
    host = Host(clock, None)
    hedging = Hedging(host)
    a_bot, b_bot = FakeBot("thin"), FakeBot("deep", down=True)
    host.bots = {"thin": a_bot, "deep": b_bot}
    async with anyio.create_task_group() as tg:
        await hedging.sync(tg, {"thin": A})
        b_bot.hedging = hedging
        link = hedging.links["thin"]
        hedging.on_fill("thin", _fill("t1", Side.BUY, "600"))
        hedging.on_fill("thin", _fill("t2", Side.BUY, "600"))
        # The window ended, B refused (and refuses every retry): 1,200 unhedged, beyond 1,000.
        await eventually(lambda: len(b_bot.sent) >= 2 and a_bot.engine.trips)
        assert {r.size for r in b_bot.sent} == {D("1200")}
        assert link.state.residual == D("1200") and link.last_error is not None
        # A's bot is told the trip once: it holds while the residual stays beyond the limit.
        assert len(a_bot.engine.trips) == 1
        trip, source = a_bot.engine.trips[0]
        assert source == "hedge" and trip is not None
        assert (trip.rule, trip.action, trip.value) == ("max_unhedged_base", "pause", 1200.0)
        assert trip.pause_s == 5.0  # tripped again each 5 s while it lasts
        assert link.status()["tripped"] is True
        b_bot.down = False
        await eventually(lambda: link.state.residual == 0 and len(a_bot.engine.trips) == 2)
        assert a_bot.engine.trips[-1] == (None, "hedge")
        assert all(r.side is Side.SELL for r in b_bot.sent)
        assert b_bot.sent[-1].size == D("1200") and b_bot.sent[-1].price == D("0.0998")
        status = link.status()
        assert (status["residual"], status["tripped"], status["in_flight"]) == ("0", False, None)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_restart_never_hedges_twice(ledger: Ledger) -> None:
    clock = VirtualClock(100.0)
    host = Host(clock, AsyncLedger(ledger))
    ledger.recover_hedges("thin", "deep", 1.0)  # hedging started before the crash
    # Before the crash: t1 and t2 stored and taken in; an IOC for t1 sent, B filled and stored
    # it, the link never settled it. t3 stored by A while the link was down.
    for trade, size in (("t1", "300"), ("t2", "200")):
        ledger.record_fill("thin", _fill(trade, Side.BUY, size))
        ledger.register_exposure("thin", "deep", TradeId(trade), Side.BUY, D(size), 2.0)
    ledger.record_hedge_order("deep", ClientOrderId("dp_old1"), Side.SELL, D("0.0998"), D("300"),
                              3.0, "thin", [(TradeId("t1"), D("300"))])  # fmt: skip
    old = Fill(TradeId("x0"), ClientOrderId("dp_old1"), Side.SELL, D("0.1"), D("300"), D(0),
               "USDT", 3.0, is_maker=False)  # fmt: skip
    ledger.record_fill("deep", old)
    ledger.record_fill("thin", _fill("t3", Side.BUY, "50"))

    hedging = Hedging(host)
    b_bot = FakeBot("deep", ledger=ledger)
    b_bot.hedging = hedging
    host.bots = {"thin": FakeBot("thin"), "deep": b_bot}
    async with anyio.create_task_group() as tg:
        await hedging.sync(tg, {"thin": A})
        hedging.on_fill("thin", _fill("t3", Side.BUY, "50"))  # reported again: not new
        link = hedging.links["thin"]
        await eventually(lambda: link.state.residual == 0 and link.state.in_flight is None)
        # One IOC, for what no order covered: t2 and t3 (250), never t1 again.
        assert [(r.side, r.size) for r in b_bot.sent] == [(Side.SELL, D("250"))]
        tg.cancel_scope.cancel()
    rows = {str(r.fill.trade_id): r for r in ledger.hedged_fills("thin")}
    assert {t: r.residual for t, r in rows.items()} == {"t1": 0, "t2": 0, "t3": 0}
    assert [h.client_id for h in rows["t1"].hedges] == ["dp_old1"]
    assert [h.client_id for h in rows["t3"].hedges] == ["dp_h1"]
    assert [(h.planned, h.hedged) for h in rows["t2"].hedges] == [(D("200"), D("200"))]


@pytest.mark.anyio
async def test_partial_fills_are_retried_and_linked(ledger: Ledger) -> None:
    clock = VirtualClock(100.0)
    host = Host(clock, AsyncLedger(ledger))
    hedging = Hedging(host)
    b_bot = FakeBot("deep", ledger=ledger, fill_share=D("0.5"))
    b_bot.hedging = hedging
    host.bots = {"thin": FakeBot("thin"), "deep": b_bot}
    async with anyio.create_task_group() as tg:
        await hedging.sync(tg, {"thin": A})
        for trade in ("t1", "t2"):
            ledger.record_fill("thin", _fill(trade, Side.SELL, "100"))
            hedging.on_fill("thin", _fill(trade, Side.SELL, "100"))
        # 200, then half of what is left: 100, 50, 25, 13, each retried after retry_s; the
        # last 7 are worth less than the venue's minimum notional (1 USDT): carried.
        link = hedging.links["thin"]

        def ledger_agrees() -> bool:
            rows = ledger.hedged_fills("thin")
            offset = sum((h.hedged or D(0) for r in rows for h in r.hedges), D(0))
            done = link.state.hedged_base == D(193) and link.state.due_at is None
            return done and offset == D(193)

        await eventually(ledger_agrees)
        sizes = [r.size for r in b_bot.sent]
        assert sizes == [D(n) for n in (200, 100, 50, 25, 13)]
        assert link.state.residual == D(-7) and link.state.due_at is None
        assert all(r.side is Side.BUY for r in b_bot.sent)
        tg.cancel_scope.cancel()
    rows = ledger.hedged_fills("thin")
    assert sum((r.residual for r in rows), D(0)) == abs(link.state.residual)


@pytest.mark.anyio
async def test_a_hedge_profile_that_is_not_running_takes_nothing() -> None:
    clock = VirtualClock(100.0)
    host = Host(clock, None)
    hedging = Hedging(host)
    a_bot = FakeBot("thin")
    host.bots = {"thin": a_bot}  # deep is not running
    async with anyio.create_task_group() as tg:
        await hedging.sync(tg, {"thin": A})
        link = hedging.links["thin"]
        hedging.on_fill("thin", _fill("t1", Side.SELL, "1500"))
        await eventually(lambda: link.status()["hedge_profile_unavailable"] == "not running")
        await eventually(lambda: a_bot.engine.trips != [])
        assert link.state.residual == D("-1500") and link.state.orders_sent == 0
        b_bot = FakeBot("deep", hedging=hedging)
        host.bots["deep"] = b_bot
        hedging.bot_started("deep")
        await eventually(lambda: link.state.residual == 0)
        assert link.status()["hedge_profile_unavailable"] is None
        assert [(r.side, r.size) for r in b_bot.sent] == [(Side.BUY, D("1500"))]
        tg.cancel_scope.cancel()
