"""Hedging in a supervisor: a thin sim profile hedged onto a deep one, in short real time.

Every fill of the thin profile must end up linked in the ledger to an IOC order of the deep
profile, sent through the deep profile's own bot, whose fills are the deep profile's fills.

The deep venue's IOC here is :class:`TakerSim`, a test venue over the simulator that takes the
best levels of the book it last published (the simulator's own IOC is another engineer's work
in progress; the contract suite holds every venue's to the same protocol).
"""

from __future__ import annotations

import textwrap
import uuid
from collections import deque
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import pytest

from kasmm.clock import Clock
from kasmm.config.schema import Profile, SimVenueConfig
from kasmm.core.risk import TradingState
from kasmm.core.types import (
    ZERO,
    Book,
    BookUpdated,
    Fill,
    OrderFilled,
    OrderRequest,
    Side,
    TradeId,
    VenueEvent,
)
from kasmm.errors import TransientVenueError
from kasmm.limiter import TokenBucket
from kasmm.obs.metrics import render
from kasmm.store import AsyncLedger, Ledger
from kasmm.store.hedges import HedgedFill
from kasmm.supervisor import Supervisor
from kasmm.venues.base import IocOutcome, Venue, require_ioc
from kasmm.venues.decorator import VenueDecorator
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim import SimVenue
from tests.support import eventually


class TakerSim(VenueDecorator):
    """A simulated venue whose IOC orders take the levels of the last book it published, its
    fills delivered through ``events()`` with the next book (taker fee, ``is_maker=False``)."""

    def __init__(self, inner: SimVenue) -> None:
        super().__init__(inner)
        self.sim = inner
        self.book: Book | None = None
        self.pending: deque[Fill] = deque()
        self.iocs: list[OrderRequest] = []
        self._trades = 0
        self._tag = uuid.uuid4().hex[:8]  # trade ids unique across venues, as a venue's are
        #: While set, every IOC fails as an unreachable exchange would.
        self.down = False

    async def events(self) -> AsyncGenerator[VenueEvent, None]:
        async for event in self.inner.events():
            if isinstance(event, BookUpdated):
                self.book = event.book
            while self.pending:
                yield OrderFilled(self.pending.popleft())
            yield event

    async def place_ioc(self, request: OrderRequest) -> IocOutcome:
        require_ioc(request)
        self.iocs.append(request)
        if self.down:
            raise TransientVenueError("exchange unreachable")
        assert self.book is not None
        levels = self.book.asks if request.side is Side.BUY else self.book.bids
        left, notional = request.size, ZERO
        rules = self.sim.rules
        for level in levels:
            through = level.price > request.price if request.side is Side.BUY else (
                level.price < request.price)  # fmt: skip
            if left <= ZERO or through:
                break
            size = min(left, level.size)
            left -= size
            notional += size * level.price
            self._trades += 1
            self.pending.append(
                Fill(
                    TradeId(f"ioc-{self._tag}-{self._trades}"),
                    request.client_id,
                    request.side,
                    level.price,
                    size,
                    size * level.price * rules.taker_fee,
                    rules.quote,
                    self.book.ts,
                    remaining=left,
                    is_maker=False,
                )
            )
        return IocOutcome.of(request.client_id, request.size, request.size - left, notional)


def _profile(name: str, spread: float, *, hedge: str = "", thin: bool = False) -> str:
    market = (
        "{book_interval_s: 0.05, taker_rate_per_s: 6, taker_size_mean: 1500}"
        if thin
        else "{book_interval_s: 0.05, sigma_bps: 0.5, taker_rate_per_s: 0.000000001,"
        " book_level_size: 200000}"
    )
    return (
        textwrap.dedent(
            f"""\
        name: {name}
        venue:
          type: sim
          market: {market}
          balances: {{KAS: 500000, USDT: 40000}}
          seed: {7 if thin else 3}
        symbol: KAS/USDT
        modes:
          passive: {{spread_bps: {spread}, size: 1000}}
        refresh: {{fallback_interval_s: 0.2}}
        kill_switch: {{stale_book: null}}
        """
        )
        + hedge
    )


HEDGE = """\
hedge:
  profile: deep
  window_ms: 50
  max_slippage_bps: 30
  retry_s: 0.5
  max_unhedged_base: {base: 100000, action: pause}
"""


@pytest.mark.anyio
async def test_every_fill_of_the_hedged_profile_has_a_linked_ioc(tmp_path: Path) -> None:
    directory = tmp_path / "profiles"
    directory.mkdir()
    (directory / "thin.yaml").write_text(_profile("thin", 4.0, hedge=HEDGE, thin=True))
    (directory / "deep.yaml").write_text(_profile("deep", 40.0))
    venues: dict[str, TakerSim] = {}

    def factory(profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        assert isinstance(profile.venue, SimVenueConfig)
        venue = TakerSim(SimVenue(profile.venue, profile.symbol, clock))
        venues[profile.name] = venue
        return RateLimitedVenue(venue, limiter)

    ledger = Ledger(tmp_path / "kasmm.sqlite")
    sup = Supervisor(directory, venue_factory=factory, ledger=AsyncLedger(ledger))

    def all_hedged() -> bool:
        """Every fill offset, every order that offset some of it with its fills stored."""
        rows = ledger.hedged_fills("thin")
        return len(rows) >= 4 and all(
            r.residual == 0 and all(h.fills for h in r.hedges if h.hedged) for r in rows
        )

    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        assert sorted(sup.hedging.links) == ["thin"]
        await eventually(all_hedged, within_s=40.0, poll_s=0.1)
        status = {row["name"]: row for row in sup.status()["profiles"]}
        assert status["thin"]["hedge"]["hedge_profile"] == "deep"
        assert status["thin"]["hedge"]["hedges_sent"] >= 1
        assert "hedge" not in status["deep"]
        metrics = render(sup.metrics_registry)[0].decode()
        labels = 'hedge_profile="deep",profile="thin",symbol="KAS/USDT",venue="sim"'
        assert f"kasmm_hedge_orders_total{{{labels}}}" in metrics
        assert f"kasmm_hedge_tripped{{{labels}}} 0.0" in metrics
        deep_prefix = sup.slots["deep"].loaded.profile.client_id_prefix + "_"
        sup.request_stop()
    before = len(ledger.hedged_fills("thin"))
    # A restart on the same ledger: what the stop left is hedged first, nothing twice.
    sup = Supervisor(directory, venue_factory=factory, ledger=AsyncLedger(ledger))
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await eventually(
            lambda: all_hedged() and len(ledger.hedged_fills("thin")) >= before + 2,
            within_s=40.0,
            poll_s=0.1,
        )
        sup.request_stop()
    ledger_fills = ledger.fills("thin")
    rows = ledger.hedged_fills("thin")
    # Every fill of thin since hedging started is taken in and linked to deep's IOC orders.
    assert [r.fill.trade_id for r in rows] == [f.trade_id for f in ledger_fills][-len(rows) :]
    deep_fills = {f.trade_id: f for f in ledger.fills("deep")}
    # Fills offset entirely by opposite fills of thin need no order: they net to zero.
    unlinked = [r.fill for r in rows if not r.residual and not r.hedges]
    assert sum((f.size * f.side.sign for f in unlinked), ZERO) == ZERO
    for row in rows:
        # Never hedged twice: what its orders offset of it is at most its size.
        assert sum((h.hedged or ZERO for h in row.hedges), ZERO) <= row.fill.size
        if row.residual:
            continue  # taken in during the stop: left for the next start
        for hedge in row.hedges:
            assert hedge.profile == "deep"
            # It offsets the fill (the other side), or the fill was netted into what it
            # offsets (nothing of its own planned).
            assert hedge.side is row.fill.side.opposite or hedge.planned == 0
            assert hedge.client_id.startswith(deep_prefix)
            for fill in hedge.fills:  # deep's own fills, stored by deep's fill path
                assert deep_fills[fill.trade_id] == fill and not fill.is_maker
    # What was sent went out through deep's venue (its stack), never another connection.
    assert venues["deep"].iocs and not venues["thin"].iocs
    ledger.close()


@pytest.mark.anyio
async def test_a_failing_hedge_venue_pauses_the_hedged_profile_until_hedged(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "profiles"
    directory.mkdir()
    tight = HEDGE.replace("base: 100000", "base: 200")
    (directory / "thin.yaml").write_text(_profile("thin", 4.0, hedge=tight, thin=True))
    (directory / "deep.yaml").write_text(_profile("deep", 40.0))
    venues: dict[str, TakerSim] = {}

    def factory(profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
        assert isinstance(profile.venue, SimVenueConfig)
        venue = TakerSim(SimVenue(profile.venue, profile.symbol, clock))
        venue.down = profile.name == "deep"
        venues[profile.name] = venue
        return RateLimitedVenue(venue, limiter)

    sup = Supervisor(directory, venue_factory=factory)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        link = sup.hedging.links["thin"]

        def thin_state() -> TradingState | None:
            bot = sup.slots["thin"].bot
            return None if bot is None else bot.risk.trading_state(sup.clock.now())

        await eventually(lambda: thin_state() is TradingState.PAUSED, within_s=30.0)
        bot = sup.slots["thin"].bot
        assert bot is not None and bot.risk.pause_trip is not None
        assert bot.risk.pause_trip.rule == "max_unhedged_base"
        await eventually(lambda: link.failures >= 1, within_s=30.0)
        assert abs(link.state.residual) > 200
        row = {r["name"]: r for r in sup.status()["profiles"]}["thin"]
        assert row["hedge"]["tripped"] is True and row["hedge"]["last_error"]
        assert not bot.open_orders  # paused: its quotes are cancelled
        # The hedge venue comes back: the residual is hedged and thin quotes again.
        venues["deep"].down = False
        await eventually(lambda: link.trip is None and link.state.residual == 0, within_s=30.0)
        await eventually(lambda: thin_state() is TradingState.ACTIVE, within_s=30.0)
        sup.request_stop()


EXAMPLES = Path(__file__).resolve().parents[2] / "profiles"


@pytest.mark.anyio
async def test_the_example_world_hedged_thin_onto_deep(tmp_path: Path) -> None:
    """The shipped deep and thin sim venues on one latent price, the thin one hedged onto the
    deep one, on the simulator's own IOC: every fill of thin ends linked to deep's IOC
    orders and their fills in the ledger (what ``kasmm hedges --check`` reads)."""
    directory = tmp_path / "profiles"
    directory.mkdir()
    deep = (EXAMPLES / "sim-deep-kas-usdt.yaml").read_text()
    thin = (EXAMPLES / "sim-thin-kas-usdt.yaml").read_text()
    (directory / "sim-deep-kas-usdt.yaml").write_text(deep)
    assert "\nhedge:\n  profile: sim-deep-kas-usdt" in thin  # shipped hedged
    (directory / "sim-thin-kas-usdt.yaml").write_text(thin)
    ledger = Ledger(tmp_path / "kasmm.sqlite")
    sup = Supervisor(directory, ledger=AsyncLedger(ledger))

    rows: list[HedgedFill] = []

    def hedged() -> bool:
        """At least three fills, each offset and linked to an order whose fills are stored."""
        rows[:] = ledger.hedged_fills("sim-thin-kas-usdt")
        return len(rows) >= 3 and all(
            r.residual == 0 and r.hedges and all(h.fills for h in r.hedges if h.hedged)
            for r in rows
        )

    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await eventually(hedged, within_s=60.0, poll_s=0.2)
        sup.request_stop()
    deep_fills = {f.trade_id: f for f in ledger.fills("sim-deep-kas-usdt")}
    for row in rows:
        for hedge in row.hedges:
            assert hedge.profile == "sim-deep-kas-usdt"
            for fill in hedge.fills:
                assert deep_fills[fill.trade_id] == fill and not fill.is_maker
    ledger.close()
