"""One hedged profile's link: the I/O loop around the pure hedger (:mod:`kasmm.core.hedge`).

See :mod:`kasmm.supervisor.hedging` for what the links do together. A link takes in the fills
its profile A stored, writes each hedge order with its links to A's fills to the ledger before
it sends it through the hedge profile B's running bot, settles it once B answered and B's fills
are in, keeps each fill's residual current, and trips A while the residual is beyond
``max_unhedged_base``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import structlog

from kasmm.bot.driver import BotNotRunning
from kasmm.bot.stats import BotState
from kasmm.config.schema import Profile
from kasmm.config.to_core import hedge_params
from kasmm.core.hedge import (
    Exposure,
    HedgeState,
    SendIoc,
    Settled,
    links_of,
    residual_changes,
    unhedged_trip,
)
from kasmm.core.quoting import exclude_own
from kasmm.core.risk import TradingState, Trip
from kasmm.core.types import ZERO, Book, Fill, MarketRules, Side, TradeId
from kasmm.errors import InsufficientFunds, LedgerLost, OrderRejected, RequestTimedOut, VenueError

if TYPE_CHECKING:
    from kasmm.bot import Bot
    from kasmm.clock import Clock
    from kasmm.store import AsyncLedger

log = structlog.get_logger("kasmm.hedge")

__all__ = ["SEND_DEADLINE_S", "TRIP_SOURCE", "HedgeHost", "HedgeLink"]

#: The source name of the residual rule's trips (``Engine.external_trip``).
TRIP_SOURCE = "hedge"
#: Longest wait for B's answer to one IOC (its venue stack bounds each request too).
SEND_DEADLINE_S = 30.0


class HedgeHost(Protocol):
    """What the links need of the supervisor."""

    clock: Clock
    ledger: AsyncLedger | None

    def running_bot(self, name: str) -> Bot | None:
        """The bot profile ``name`` runs now, or ``None``."""
        ...

    def on_ledger_lost(self, exc: LedgerLost) -> None:
        """The shared ledger is gone: stop every profile."""
        ...


class HedgeLink:
    """Profile ``profile`` hedged onto ``profile.hedge.profile``: the loop around the hedger."""

    def __init__(self, profile: Profile, host: HedgeHost) -> None:
        assert profile.hedge is not None
        self.name = profile.name
        self.target = profile.hedge.profile
        self.config = profile.hedge
        params = hedge_params(profile)
        assert params is not None
        self.params = params
        self.host = host
        self.state = HedgeState()
        #: The trip in force (what A's engine was told last) and the bot it was told to.
        self.trip: Trip | None = None
        self._told: Bot | None = None
        #: Fills to take in, in the order they were reported: ("a", fill) or ("b", fill).
        self._inbox: deque[tuple[str, Fill]] = deque()
        self._wake = anyio.Event()
        #: Each fill's unhedged part as last written to the ledger.
        self._stored: dict[TradeId, Decimal] = {}
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.recovered = anyio.Event()
        self.failures = 0
        self.last_error: str | None = None
        #: Why the hedge profile takes no hedge now (``None``: it does), and the reason last
        #: logged for holding a hedge back.
        self.unavailable: str | None = None
        self._held_back: str | None = None
        self.log = log.bind(profile=self.name, hedge_profile=self.target)

    # --- what the supervisor calls ----------------------------------------------------------

    def a_filled(self, fill: Fill) -> None:
        """A stored a fill: take it in."""
        self._inbox.append(("a", fill))
        self._wake.set()

    def b_filled(self, fill: Fill) -> None:
        """B stored a fill: one of the order in flight is taken in (others are not hedges of
        this link, or settled already: the ledger has them as B's fills)."""
        flight = self.state.in_flight
        if flight is not None and flight.client_id == fill.client_id:
            self._inbox.append(("b", fill))
            self._wake.set()

    def bot_started(self) -> None:
        """A new bot of A or B: wake (A's new engine must be told the trip in force; B may take
        what waits)."""
        self._wake.set()

    def stop(self) -> None:
        """End the loop (an IOC in flight is waited for: it is shielded)."""
        self.scope.cancel()

    def status(self) -> dict[str, Any]:
        """The link's row of ``/status`` (money as exact strings)."""
        s = self.state
        slippage = s.average_slippage_bps
        return {
            "hedge_profile": self.target,
            "residual": str(s.residual),
            "unhedged_fills": len(s.per_fill()),
            "hedges_sent": s.orders_sent,
            "hedged_base": str(s.hedged_base),
            "avg_slippage_bps": None if slippage is None else round(slippage, 2),
            "in_flight": None if s.in_flight is None else s.in_flight.client_id,
            "max_unhedged_base": str(self.params.max_unhedged_base),
            "tripped": self.trip is not None,
            "hedge_profile_unavailable": self.unavailable,
            "last_error": self.last_error,
        }

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Recover from the ledger, then take fills in and send hedges until stopped.

        Never raises an ``Exception``: a failing step (the ledger busy, say) is logged and
        tried again ``retry_s`` later, with nothing taken in lost; a lost ledger is the
        supervisor's (every profile stops).
        """
        clock = self.host.clock
        try:
            with self.scope:
                while True:
                    try:
                        if not self.recovered.is_set():
                            try:
                                await self._recover()
                            finally:
                                self.recovered.set()  # reported fills wait in the inbox
                        await self._step()
                    except LedgerLost as exc:
                        self.log.critical("hedge_ledger_lost", error=str(exc))
                        self.host.on_ledger_lost(exc)
                        return
                    except Exception as exc:
                        self._failed(exc)
                        self.log.debug("hedge_step_failed_traceback", exc_info=True)
                        await clock.sleep_until(clock.now() + self.params.retry_s)
                        continue
                    await self._wait()
        finally:
            self.recovered.set()
            self.done.set()

    async def _recover(self) -> None:
        clock, ledger = self.host.clock, self.host.ledger
        if ledger is None:
            return
        rows = await ledger.recover_hedges(self.name, self.target, clock.wall())
        exposures = tuple(Exposure(r.trade_id, r.side, r.residual) for r in rows)
        self.state = self.state.recovered(exposures, clock.now())
        self._stored = {r.trade_id: r.residual for r in rows}
        if rows:
            self.log.warning("hedge_recovered", fills=len(rows), residual=str(self.state.residual))

    async def _step(self) -> None:
        """Take in what was reported, settle and send what the hedger asks, store, trip."""
        clock, ledger = self.host.clock, self.host.ledger
        while self._inbox:
            kind, fill = self._inbox[0]  # taken off once handled: a failure keeps it
            if kind == "b":
                self.state = self.state.on_hedge_fill(
                    fill.client_id, fill.trade_id, fill.size, fill.price
                )
            elif ledger is None or await ledger.register_exposure(
                self.name, self.target, fill.trade_id, fill.side, fill.size, clock.wall()
            ):  # else taken in before (recovered, or reported twice)
                self.state = self.state.on_fill(
                    fill.trade_id, fill.side, fill.size, clock.now(), self.params
                )
                self._stored.setdefault(fill.trade_id, fill.size)
            self._inbox.popleft()
        bot = self.host.running_bot(self.target)
        market = _market(bot, clock.now())
        self.unavailable = market.unavailable
        # Logged when it holds a hedge back (not while it merely starts with nothing waiting).
        held_back = market.unavailable if self.state.open else None
        if held_back is not None and held_back != self._held_back:
            self.log.warning("hedge_profile_unavailable", reason=held_back)
        elif held_back is None and self._held_back is not None and market.unavailable is None:
            self.log.info("hedge_profile_available")
        if held_back is not None or market.unavailable is None:
            self._held_back = held_back
        self.state, order, settled = self.state.decide(
            clock.now(), market.book, market.rules, self.params, market.own
        )
        if settled is not None:
            await self._settled(settled)
        if order is not None and bot is not None:
            await self._send(bot, order)
            self._wake.set()  # its answer may already settle it
        await self._store_residuals()
        self._apply_trip()

    async def _send(self, bot: Bot, order: SendIoc) -> None:
        clock, ledger = self.host.clock, self.host.ledger
        request = bot.ioc_request(order.side, order.price, order.size)
        cid = request.client_id
        if ledger is not None:  # written before it goes out: a crash cannot lose its links
            await ledger.record_hedge_order(
                self.target,
                cid,
                order.side,
                order.price,
                order.size,
                clock.wall(),
                self.name,
                links_of(order),
                order.mid,
            )
        self.state = self.state.sent(order, cid, clock.now())
        self.log.info(
            "hedge_sent",
            client_id=cid,
            side=order.side.value,
            price=str(order.price),
            size=str(order.size),
            covers=[c.trade_id for c in order.covers],
        )
        with anyio.CancelScope(shield=True), anyio.move_on_after(SEND_DEADLINE_S) as waited:
            try:
                outcome = await bot.send_ioc(request)
            except BotNotRunning as exc:  # never sent
                self._failed(exc)
                self.state = self.state.on_refused(cid, clock.now())
                if ledger is not None:
                    await ledger.record_order_status(
                        self.target, cid, "rejected", clock.wall(), reason="not_running"
                    )
                return
            except (OrderRejected, InsufficientFunds) as exc:  # refused: nothing executed
                self._failed(exc)
                self.state = self.state.on_refused(cid, clock.now())
                return
            except VenueError as exc:
                # Lost answer, or a failure that does not say whether it executed: its fills
                # decide (a retry could hedge twice).
                self._failed(exc)
                self.state = self.state.on_answer(cid, None, clock.now(), self.params)
                return
        if waited.cancelled_caught:
            self._failed(RequestTimedOut(f"no answer within {SEND_DEADLINE_S:g} s"))
            self.state = self.state.on_answer(cid, None, clock.now(), self.params)
            return
        self.failures = 0
        self.last_error = None
        self.state = self.state.on_answer(cid, outcome.filled, clock.now(), self.params)
        self.log.info(
            "hedge_answered",
            client_id=cid,
            status=outcome.status,
            filled=str(outcome.filled),
            average_price=None if outcome.average_price is None else str(outcome.average_price),
        )

    def _failed(self, exc: Exception) -> None:
        """Count a failure; logged at the 1st, 2nd, 4th, 8th, ... in a row (a hedge venue down
        for hours retries every ``retry_s``: one line each would bury the log)."""
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.failures & (self.failures - 1) == 0:
            self.log.warning("hedge_failed", error=self.last_error, failures=self.failures)

    async def _settled(self, settled: Settled) -> None:
        ledger = self.host.ledger
        after = self.state.per_fill()
        changes = residual_changes(self._stored, after)
        covered = {t for t, _planned, _done in settled.parts}
        if ledger is not None:
            await ledger.settle_hedge_order(
                self.target,
                settled.client_id,
                self.name,
                [
                    *((t, done) for t, _planned, done in settled.parts),
                    *((t, ZERO) for t in settled.netted if t not in covered),
                ],
                changes,
                self.host.clock.wall(),
            )
        self._stored = after
        slippage = settled.slippage_bps
        self.log.info(
            "hedge_settled",
            client_id=settled.client_id,
            hedged=str(settled.hedged),
            size=str(settled.size),
            slippage_bps=None if slippage is None else round(slippage, 2),
            residual=str(self.state.residual),
        )

    async def _store_residuals(self) -> None:
        """Write the fills whose unhedged part changed since the last write (netting)."""
        after = self.state.per_fill()
        changes = residual_changes(self._stored, after)
        if changes and self.host.ledger is not None:
            await self.host.ledger.update_hedge_residuals(
                self.name, changes, self.host.clock.wall()
            )
        self._stored = after

    def _apply_trip(self) -> None:
        """Tell A's engine the residual rule's verdict when it changes, and a new bot of A the
        pause or reduce-only in force (a halt is told once per breach: it is stored, restored
        with the ledger, and an operator's reset must not be undone by the same breach)."""
        trip = unhedged_trip(self.state, self.params, self.host.clock.now())
        changed = (trip is None) != (self.trip is None)
        if changed:
            if trip is not None:
                self.log.warning(
                    "hedge_residual_tripped",
                    residual=str(self.state.residual),
                    limit=str(self.params.max_unhedged_base),
                    action=trip.action,
                )
            else:
                self.log.info("hedge_residual_within", residual=str(self.state.residual))
        self.trip = trip
        bot = self.host.running_bot(self.name)
        if bot is None:
            return
        fresh = bot is not self._told
        self._told = bot
        if changed or (fresh and trip is not None and trip.action != "halt"):
            bot.engine.external_trip(trip, TRIP_SOURCE)

    async def _wait(self) -> None:
        """Until a fill is reported or a bot of A or B starts, or the hedger's next deadline
        (a window, a retry, an answer's settle time)."""
        if self._wake.is_set():
            self._wake = anyio.Event()
            return
        clock = self.host.clock
        deadlines: list[float] = []
        if self.state.due_at is not None:
            deadlines.append(self.state.due_at)
        flight = self.state.in_flight
        if flight is not None and flight.settle_at is not None:
            deadlines.append(flight.settle_at)
        wake = self._wake
        async with anyio.create_task_group() as tg:

            async def timer() -> None:
                await clock.sleep_until(min(deadlines))
                tg.cancel_scope.cancel()

            if deadlines:
                tg.start_soon(timer)
            await wake.wait()
            tg.cancel_scope.cancel()
        if wake.is_set():
            self._wake = anyio.Event()


@dataclass(frozen=True, slots=True)
class _Market:
    """What the hedge profile offers now: its book without its own orders, its rules, its own
    best bid and ask (an IOC must not trade with them); or why it takes no hedge."""

    book: Book | None = None
    rules: MarketRules | None = None
    own: tuple[Decimal | None, Decimal | None] = (None, None)
    unavailable: str | None = None


def _market(bot: Bot | None, now: float) -> _Market:
    """B's market when it can take a hedge now: running, neither halted nor paused."""
    if bot is None or bot.state not in (BotState.STARTING, BotState.QUOTING):
        return _Market(unavailable="not running")
    trading = bot.risk.trading_state(now)
    if trading in (TradingState.HALTED, TradingState.PAUSED):
        return _Market(unavailable=trading.value)
    book = bot.book
    if book is None or bot.rules is None:
        return _Market(unavailable="no book yet")
    orders = tuple(bot.open_orders.values())
    bids = [o.price for o in orders if o.side is Side.BUY]
    asks = [o.price for o in orders if o.side is Side.SELL]
    own = (max(bids) if bids else None, min(asks) if asks else None)
    return _Market(exclude_own(book, orders), bot.rules, own)
