"""One profile's market-making bot: the async I/O shell around the pure decision code.

The data path, in order (each step is a call in :meth:`Bot.decide` / :meth:`Bot._requote`):

    venue event (book / fill)
      -> quoting core      :func:`kasmm.core.quoting.compute_quotes`
      -> risk gate         :func:`kasmm.core.risk.evaluate`, :func:`kasmm.core.risk.gate`
      -> reconciliation    :func:`kasmm.core.reconcile.reconcile` (desired vs open orders)
      -> token bucket      :class:`kasmm.limiter.TokenBucket` (in the venue's request path)
      -> venue             :class:`kasmm.venues.base.Venue`

Fills flow back through :meth:`Bot.on_fill` into the inventory and the PnL state. The bot reacts
to events (every book update and fill), not to a fixed sleep; ``refresh.fallback_interval_s``
only matters when the stream is quiet. On stop it cancels all of its orders in a shielded scope
with a deadline.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import random
from collections import deque
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import structlog
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream

from kasmm.clock import Clock
from kasmm.config.schema import AS2008Market, ModeName, Profile, SimVenueConfig
from kasmm.core.ids import ClientIdFactory
from kasmm.core.params import QuotingParams, RefreshParams
from kasmm.core.pnl import PnlState, apply_fill, fee_in_quote
from kasmm.core.quoting import MarketState, QuoteDecision, compute_quotes, exclude_own, time_left
from kasmm.core.reconcile import reconcile
from kasmm.core.risk import RiskInputs, RiskState, TradingState, Trip, evaluate, gate, reset
from kasmm.core.types import (
    ZERO,
    Balance,
    Balances,
    Book,
    BookUpdated,
    CancelOrder,
    ClientOrderId,
    Fill,
    MarketRules,
    OpenOrder,
    OrderAction,
    OrderClosed,
    OrderFilled,
    OrderRequest,
    PlaceOrder,
    Side,
    VenueEvent,
)
from kasmm.core.venue_time import VenueClock
from kasmm.core.volatility import VolState, sigma_price, update_vol
from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    InsufficientFunds,
    LedgerLost,
    OrderNotFound,
    OrderRejected,
    PostOnlyWouldCross,
    RateLimited,
    RequestTimedOut,
    VenueError,
)
from kasmm.journal import BotJournal
from kasmm.store import AsyncLedger
from kasmm.venues.base import Venue

#: Seconds the bot may spend cancelling its orders on stop before giving up.
SHUTDOWN_DEADLINE_S = 10.0
#: How often balances are re-read from the venue (the venue is the truth).
BALANCE_REFRESH_S = 30.0
#: How often an equity snapshot is stored (drawdown peak, daily PnL, reports).
EQUITY_SNAPSHOT_S = 10.0
#: While halted, how often the ledger is checked for an operator's `kasmm reset`.
HALT_CHECK_S = 2.0
#: How often the venue's open orders are compared with the bot's own view (orders of this
#: profile that rest unknown to the bot are cancelled).
ORDER_AUDIT_S = 10.0
#: How long the shutdown safety net (cancel-all by prefix, then verify) retries transient
#: errors, within ``SHUTDOWN_DEADLINE_S``; backoff 0.1 s doubling to 0.5 s.
SHUTDOWN_RETRY_S = 5.0


class BotState(enum.StrEnum):
    """Lifecycle of a bot as reported by ``status`` and metrics."""

    STARTING = "starting"
    QUOTING = "quoting"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass
class BotStats:
    """Counters for the summary, status and metrics. Mutated only by the bot's own task."""

    decisions: int = 0
    quotes_sent: int = 0
    orders_placed: int = 0
    orders_cancelled: int = 0
    orders_rejected: int = 0
    cancel_not_found: int = 0
    venue_errors: int = 0
    kill_switch_trips: int = 0
    balance_drifts: int = 0
    trips_by_rule: dict[str, int] = field(default_factory=dict)
    consecutive_errors: int = 0
    book_updates: int = 0
    bad_books: int = 0
    untracked_cancelled: int = 0
    last_error: str | None = None


@dataclass
class Inventory:
    """The bot's view of its balances, moved by fills and resynced from the venue."""

    base: Decimal = ZERO
    quote: Decimal = ZERO

    def balances(self, base_asset: str, quote_asset: str) -> Balances:
        """As a ``Balances`` of totals (what quoting may budget with)."""
        return Balances({base_asset: Balance(self.base), quote_asset: Balance(self.quote)})


@dataclass
class BotSnapshot:
    """A point-in-time view for ``status``: plain values only."""

    state: str
    mode: str
    mid: Decimal | None
    spread_bps: float | None
    inventory_base: Decimal
    inventory_quote: Decimal
    open_orders: int
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal
    last_error: str | None
    trading_state: str = "active"
    halt_reason: str | None = None
    #: Why nothing is quoted although trading is allowed (``no_size``, ``no_mid``, ...).
    idle_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Bot:
    """Runs one profile against one venue until cancelled."""

    def __init__(
        self,
        profile: Profile,
        venue: Venue,
        *,
        clock: Clock,
        session_end: float | None = None,
        stop_at: float | None = None,
        ledger: AsyncLedger | None = None,
        run_tag: str | None = None,
    ) -> None:
        self.profile = profile
        self.stop_at = stop_at
        self.venue = venue
        self.clock = clock
        self.session_end = session_end
        self.mode: ModeName = profile.mode
        self.exact_model = isinstance(profile.venue, SimVenueConfig) and isinstance(
            profile.venue.market, AS2008Market
        )
        self.state = BotState.STARTING
        self.orders_left = 0
        #: The ledger was lost while the bot was stopping (raised once the stop is done).
        self.ledger_lost: LedgerLost | None = None
        self.stats = BotStats()
        self.inventory = Inventory()
        self.pnl = PnlState()
        self.open_orders: dict[ClientOrderId, OpenOrder] = {}
        self.rules: MarketRules | None = None
        self.book: Book | None = None
        self.last_decision: QuoteDecision | None = None
        self.start_mid: Decimal | None = None
        self.start_equity: Decimal | None = None
        self._vol: VolState | None = None
        self._last_action_at: float | None = None
        self.risk = RiskState()
        self.peak_equity: Decimal | None = None
        self._previous_mid: Decimal | None = None
        self._last_book_at: float | None = None
        self._day_key: str | None = None
        self._day_cache: tuple[float, float, str] | None = None
        self._day_start_equity: Decimal | None = None
        self._action_times: deque[float] = deque()
        self._last_balance_sync = -math.inf
        #: Venue time the inventory was last read at: fills executed before it are already in
        #: it (a fill reported late must not move it again).
        self._inventory_as_of = -math.inf
        self._last_order_audit = -math.inf
        #: On a profile's first run (no opening in the ledger) fills of orders placed before
        #: this run (another ledger's, e.g. a deleted state dir) are not its history. Decided
        #: by the order's run tag, not by comparing the local clock with exchange times.
        self._first_run = False
        #: The venue's clock, estimated from its timestamps: exchange times are compared with
        #: exchange times (the local wall clock may be skewed against the venue's).
        self._venue_clock = VenueClock()
        #: Real time: events taken from the stream's channel, not handled yet.
        self._backlog: deque[VenueEvent | _StreamFailed] = deque()
        # A random run tag (no clock: a stepped clock repeated the old time-based tags); in
        # virtual time a seeded one, so a backtest's ids are a function of its inputs.
        self._ids = ClientIdFactory(
            profile.client_id_prefix,
            run_tag,
            rng=random.Random(f"{profile.name}@{clock.now()}") if clock.is_virtual else None,
        )
        self._params = QuotingParams.from_profile(profile, exact_model=self.exact_model)
        self._refresh = RefreshParams.from_profile(profile, exact_model=self.exact_model)
        self._vol_halflife = self._params.estimator_halflife_s
        self.journal = BotJournal(profile.name, profile.quote, ledger)
        self._pending_trips: tuple[Trip, ...] = ()
        #: Why the last decision quoted nothing while trading was allowed (``None``: it quoted).
        self.idle_reason: str | None = None
        self._idle_reasons_logged: set[str] = set()
        self._opening_pending: tuple[Decimal, Decimal] | None = None
        self._last_equity_at = -math.inf
        self._last_halt_check = -math.inf
        self.log = structlog.get_logger("kasmm.bot").bind(
            profile=profile.name, venue=venue.name, symbol=profile.symbol
        )

    @property
    def run_tag(self) -> str:
        """The tag in this run's client order ids (unique per run)."""
        return self._ids.run_tag

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, clean up leftovers, quote until cancelled (or ``stop_at``), then cancel.

        ``task_status.started()`` is called once the first quotes are live (or the first
        decision was to quote nothing), so a supervisor's ``await tg.start(bot.run)`` returns
        only when the profile is really trading.
        """
        started = False
        try:
            self.rules = await self.venue.connect()
            # A rebuilt simulated venue resumes the balances its ledger implies, before the
            # first balance read (bot, venue and ledger agree); no-op for a real exchange.
            await self.journal.restore_simulated_balances(
                self.venue, self.rules.base, self.rules.quote, self.clock.wall()
            )
            await self._startup_reconcile()
            await self._sync_balances(force=True)
            await self._restore()

            def on_started() -> None:
                nonlocal started
                if not started and self.stats.decisions > 0:
                    started = True
                    self.state = BotState.QUOTING
                    self.log.info("bot_started", mode=self.mode, prefix=self._ids.prefix)
                    task_status.started()

            await self._consume_events(on_started)
        except BaseException as exc:
            if not isinstance(exc, anyio.get_cancelled_exc_class()):
                self.state = BotState.FAILED
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with anyio.CancelScope(shield=True):
                self.orders_left = await self.shutdown()
                with anyio.move_on_after(5.0):
                    try:
                        # Releases sessions and disarms an exchange-side dead man's switch.
                        await self.venue.close()
                    except Exception as exc:
                        self.log.warning("venue_close_failed", error=f"{type(exc).__name__}")
                if self.state is not BotState.FAILED:
                    self.state = BotState.STOPPED
                if self.orders_left:
                    self.log.error("shutdown_orders_left", count=self.orders_left)
            if self.ledger_lost is not None:
                # Found while stopping (orders are cancelled, the venue closed): the supervisor
                # must see it, whatever else ended the run, so the profile does not restart.
                raise self.ledger_lost

    async def shutdown(self) -> int:
        """Cancel every order of this profile within the deadline; return how many remain.

        Runs shielded from the caller's cancellation (the supervisor may be tearing down).
        Every order the ledger still holds as live ends with a final status.
        """
        self.state = BotState.STOPPING if self.state is not BotState.FAILED else self.state
        if self.rules is None:
            # Never connected: this run placed nothing. Orders an earlier run may have left
            # are cancelled by the next start's reconciliation; a dead venue is not retried.
            self.log.info("bot_stopped", orders_left=0, connected=False)
            return 0
        remaining: list[OpenOrder] | None = None
        with anyio.move_on_after(SHUTDOWN_DEADLINE_S, shield=True) as scope:
            for cid in list(self.open_orders):
                try:
                    await self.venue.cancel_order(cid)
                    self.stats.orders_cancelled += 1
                    self.journal.order_status(cid, "cancelled", self.clock.wall(), reason="stop")
                except OrderNotFound:
                    pass
                except Exception as exc:  # any failure: fall through to the safety net
                    self.log.warning("shutdown_cancel_failed", client_id=cid, error=str(exc))
                self.open_orders.pop(cid, None)
            remaining = await self._cancel_all_verified()
        if scope.cancelled_caught:
            self.log.error("shutdown_deadline_exceeded", deadline_s=SHUTDOWN_DEADLINE_S)
        await self._journal_stop(remaining)
        if remaining is None:
            return max(1, len(self.open_orders))
        self.log.info("bot_stopped", orders_left=len(remaining))
        return len(remaining)

    async def _cancel_all_verified(self) -> list[OpenOrder] | None:
        """Safety net of a stop: cancel everything with our prefix (the local view may miss an
        order whose placement outcome was unknown), then list what is left.

        A transient error is retried (an order left behind is the worst outcome of a stop), and
        so is a listing that still shows our orders: with a growing pause between tries, so a
        venue that keeps listing an order cannot turn the stop into a busy loop that drains
        the account's rate budget other profiles need for their own cancels. Returns what is
        still listed, or ``None`` when it could not be verified.
        """
        retry_until = self.clock.now() + SHUTDOWN_RETRY_S
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.venue.cancel_all(self._ids.prefix)
                remaining = [
                    o for o in await self.venue.fetch_open_orders() if self._ids.is_own(o.client_id)
                ]
            except (AuthenticationFailed, FatalVenueError) as exc:
                self.log.error("shutdown_verify_failed", error=f"{type(exc).__name__}: {exc}")
                return None
            except Exception as exc:
                if self.clock.now() >= retry_until:
                    self.log.error("shutdown_verify_failed", error=f"{type(exc).__name__}: {exc}")
                    return None
                self.log.warning("shutdown_verify_retry", attempt=attempt, error=type(exc).__name__)
            else:
                if not remaining or self.clock.now() >= retry_until:
                    return remaining
                self.log.warning(
                    "shutdown_orders_still_listed", attempt=attempt, count=len(remaining)
                )
            await self.clock.sleep_until(self.clock.now() + min(0.5, 0.05 * 2**attempt))

    async def _journal_stop(self, remaining: list[OpenOrder] | None) -> None:
        """Give every order the ledger holds as live a final status, then write the journal.

        Orders not listed by the venue after the safety net are gone (cancelled by the stop;
        a fill the venue reports later still moves the order to ``filled``). When the stop
        could not be verified nothing is claimed: those orders stay live in the ledger.
        """
        with anyio.move_on_after(SHUTDOWN_DEADLINE_S / 2, shield=True):
            try:
                if remaining is not None:
                    await self.journal.close_live_orders(
                        {o.client_id for o in remaining}, self.clock.wall(), "stop"
                    )
                await self.journal.flush()
            except LedgerLost as exc:
                self.ledger_lost = exc
            except Exception as exc:  # never mask why the bot stopped
                self.log.error("stop_not_journaled", error=f"{type(exc).__name__}: {exc}")

    async def _restore(self) -> None:
        """Resume PnL, peak equity and a halt from the ledger (they survive restarts)."""
        wall = self.clock.wall()
        restored = await self.journal.restore(self._daily_tz(), wall)
        if restored.day_start_equity is not None:
            self._day_key, self._day_start_equity = self._day_of(wall), restored.day_start_equity
        if restored.opening is not None and restored.pnl is not None:
            self.start_mid = restored.opening[1]
            self.pnl = restored.pnl
        else:
            # First run on this ledger: only this run's orders' fills are its history.
            self._first_run = True
        if restored.peak_equity is not None:
            self.peak_equity = restored.peak_equity
        if restored.halt is not None:
            self.risk = RiskState(halt=restored.halt)
            self.log.warning(
                "halt_restored",
                rule=restored.halt.rule,
                value=restored.halt.value,
                limit=restored.halt.limit,
            )
        await self.journal.mode(self.clock.wall(), self.mode, "start")

    async def _startup_reconcile(self) -> None:
        """Cancel orders a previous run of this profile left behind; never touch others."""
        orders = await self.venue.fetch_open_orders()
        # Ids of the format before the delimiter (an older kasmm's, left by a crash) too: only
        # here, never as fills; see ClientIdFactory.is_legacy.
        own = [
            o for o in orders if self._ids.is_own(o.client_id) or self._ids.is_legacy(o.client_id)
        ]
        foreign = len(orders) - len(own)
        if foreign:
            self.log.info("foreign_orders_present", count=foreign)
        for order in own:
            try:
                await self.venue.cancel_order(order.client_id)
                self.stats.orders_cancelled += 1
            except OrderNotFound:
                pass
        if own:
            self.log.warning("leftover_orders_cancelled", count=len(own))
        # Whatever a previous run left live in the ledger (a crash skips the stop's journal)
        # is gone from the venue now: give it a final status.
        closed = await self.journal.close_live_orders(set(), self.clock.wall(), "leftover")
        await self.journal.flush()
        if closed:
            self.log.info("leftover_orders_closed_in_ledger", count=closed)

    async def _consume_events(self, on_started: Callable[[], None]) -> None:
        """Feed venue events (and timer ticks when the stream is quiet) to the handlers.

        In virtual time the venue's generator is iterated directly: it only advances when the
        bot has finished acting on the previous event, which makes runs deterministic. In real
        time a pump task feeds a channel, so a quiet stream can time out (a fallback requote)
        without cancelling the venue's generator mid-await, and book updates that queued up
        while the bot was busy are coalesced to the newest (fills are never dropped).
        """
        if self.clock.is_virtual:
            async with aclosing(self.venue.events()) as events:
                async for direct in events:
                    await self.on_event(direct)
                    on_started()
                    if self.stop_at is not None and self.clock.now() >= self.stop_at:
                        return
            return

        send, receive = anyio.create_memory_object_stream[VenueEvent | _StreamFailed](256)

        async def pump() -> None:
            async with send:
                try:
                    async with aclosing(self.venue.events()) as events:
                        async for ev in events:
                            # No checkpoint between taking an event and queueing it: a pump
                            # cancelled there (a restart, a stop) would drop it, fills too.
                            try:
                                send.send_nowait(ev)
                            except anyio.WouldBlock:
                                await send.send(ev)  # far behind: wait for room
                except Exception as exc:
                    # Queued behind the events received before it: none of them is dropped.
                    await send.send(_StreamFailed(exc))

        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(pump)
                try:
                    await self._realtime_events(receive, on_started)
                except Exception as exc:
                    # Raised below, outside the task group: the supervisor sees the error
                    # itself (AuthenticationFailed stays AuthenticationFailed), not a group.
                    failure = exc
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._journal_queued_fills(receive)
            receive.close()
        if failure is not None:
            raise failure

    async def _realtime_events(
        self,
        receive: MemoryObjectReceiveStream[VenueEvent | _StreamFailed],
        on_started: Callable[[], None],
    ) -> None:
        """The real-time loop: events from the pump, a requote when the stream is quiet.

        Returns when ``stop_at`` is reached or the venue ended its stream; raises the stream's
        error after handling every event the venue delivered before it.
        """
        fallback = self.profile.refresh.fallback_interval_s
        # Events taken from the channel and not handled yet live here, never in a local
        # variable across an await: if the bot stops meanwhile, their fills are still stored.
        backlog = self._backlog
        while True:
            if not backlog:
                received: VenueEvent | _StreamFailed | None = None
                with anyio.move_on_after(fallback):
                    try:
                        received = await receive.receive()
                    except anyio.EndOfStream:
                        return  # the venue ended its stream
                if received is None:
                    await self._requote()
                    on_started()
                    continue
                backlog.append(received)
            event = backlog.popleft()
            # Book updates queued up while the bot was busy: only the newest one counts.
            while isinstance(event, BookUpdated):
                if not backlog:
                    try:
                        backlog.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                if not isinstance(backlog[0], BookUpdated):
                    break
                event = backlog.popleft()
            if isinstance(event, _StreamFailed):
                raise event.error
            await self.on_event(event)
            on_started()
            if self.stop_at is not None and self.clock.now() >= self.stop_at:
                return

    async def _journal_queued_fills(
        self, receive: MemoryObjectReceiveStream[VenueEvent | _StreamFailed]
    ) -> None:
        """Store the fills the venue delivered that the bot had not handled when it stopped.

        The venue will not deliver them again (it saw them go out), so dropping them would
        lose them from the ledger. Books and closes in the queue are stale: dropped.
        """
        if self.rules is None:
            return
        try:
            with anyio.move_on_after(SHUTDOWN_DEADLINE_S / 2):
                while True:
                    if self._backlog:
                        item = self._backlog.popleft()
                    else:
                        try:
                            item = receive.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                            break
                    if isinstance(item, OrderFilled) and await self._accept_fill(item.fill):
                        self.on_fill(item.fill)
                await self.journal.flush()
        except LedgerLost as exc:  # raised by run() once the stop is done
            self.ledger_lost = exc
        except Exception as exc:  # never mask why the bot stopped
            self.log.error("queued_fills_not_stored", error=f"{type(exc).__name__}: {exc}")

    # --- event handlers -----------------------------------------------------------------

    async def on_event(self, event: VenueEvent) -> None:
        """Dispatch one venue event, then requote."""
        if isinstance(event, BookUpdated):
            self.on_book(event.book)
        elif isinstance(event, OrderFilled):
            self._venue_clock = self._venue_clock.observe(event.fill.ts, self.clock.now())
            if not await self._accept_fill(event.fill):
                return
            self.on_fill(event.fill)
        elif (
            isinstance(event, OrderClosed)
            and self.open_orders.pop(event.client_id, None) is not None
        ):
            self.journal.order_status(event.client_id, "cancelled", event.ts, reason=event.reason)
        await self._requote()

    async def _accept_fill(self, fill: Fill) -> bool:
        """Whether ``fill`` is this profile's and new; if so it is committed to the ledger.

        The one gate every fill passes, whichever path brought it (the live stream, the queue
        drained at a stop or a stream failure), so the paths cannot disagree.
        """
        if not self._ids.is_own(fill.client_id):
            # The venue reports every execution on the account's symbol; another bot's or a
            # human's fills are not this profile's inventory.
            return False
        # Committed to the ledger before it moves inventory; a duplicate is ignored. Shielded:
        # a fill taken from the stream must be stored even if the bot is being stopped right
        # now (waiting for the ledger shared with other profiles, say).
        with anyio.CancelScope(shield=True):
            if (
                self._first_run
                and not self._ids.is_this_run(fill.client_id)
                and not await self.journal.knows_order(fill.client_id)
            ):
                # First run on this ledger: an order from before accounting started (another
                # ledger's: a deleted state dir, say) is not this ledger's history.
                return False
            stored = await self.journal.fill(fill)
        if not stored:
            self.log.info("fill_duplicate_ignored", trade_id=fill.trade_id)
        return stored

    def on_book(self, book: Book) -> None:
        """Record a new book and feed the volatility estimator.

        A malformed book (a price or size that is not a positive finite number) is ignored:
        the previous book stays, and if only malformed ones arrive the stale-book rule trips.
        """
        if not _well_formed(book):
            self.stats.bad_books += 1
            if self.stats.bad_books & (self.stats.bad_books - 1) == 0:  # 1st, 2nd, 4th, ...
                self.log.warning("bad_book_ignored", count=self.stats.bad_books)
            return
        if self.book is not None and self.book.mid is not None:
            self._previous_mid = self.book.mid
        self.book = book
        self._last_book_at = self.clock.now()
        self._venue_clock = self._venue_clock.observe(book.ts, self._last_book_at)
        self.stats.book_updates += 1
        mid = book.mid
        if mid is not None and not book.is_crossed:
            if self.start_mid is None:
                self.start_mid = mid
                self.pnl = PnlState.opening(self.inventory.base, mid)
                self._opening_pending = (self.inventory.base, mid)
                self.start_equity = self.inventory.quote + self.inventory.base * mid
            if self._vol_halflife is not None:
                self._vol = update_vol(self._vol, float(mid), book.ts, self._vol_halflife)

    def on_fill(self, fill: Fill) -> None:
        """Apply a fill to open orders, inventory and PnL."""
        order = self.open_orders.get(fill.client_id)
        self.journal.order_status(
            fill.client_id, "filled" if fill.remaining <= 0 else "partially_filled", fill.ts
        )
        if order is not None:
            if fill.remaining <= 0:
                del self.open_orders[fill.client_id]
            else:
                self.open_orders[fill.client_id] = OpenOrder(
                    client_id=order.client_id,
                    side=order.side,
                    price=order.price,
                    size=order.size,
                    remaining=fill.remaining,
                    created_at=order.created_at,
                    venue_id=order.venue_id,
                    level=order.level,
                )
        rules = self.rules
        assert rules is not None
        fee = fee_in_quote(fill, rules.quote)
        if fill.ts < self._inventory_as_of:
            # Executed before the balances were last read (reported late, or while the bot was
            # down): the inventory already holds it; only the PnL and the ledger take it.
            self.log.debug("fill_already_in_balances", trade_id=fill.trade_id)
        elif fill.side is Side.BUY:
            self.inventory.base += fill.size
            self.inventory.quote -= fill.notional + fee
        else:
            self.inventory.base -= fill.size
            self.inventory.quote += fill.notional - fee
        self.pnl = apply_fill(self.pnl, fill, rules.quote)
        self.log.info(
            "fill",
            side=fill.side.value,
            price=str(fill.price),
            size=str(fill.size),
            fee=str(fill.fee),
            client_id=fill.client_id,
            trade_id=fill.trade_id,
            inventory=str(self.inventory.base),
        )

    def set_mode(self, mode: str) -> None:
        """Switch between ``aggressive`` and ``passive`` (takes effect on the next decision)."""
        new_mode: ModeName
        if mode == "aggressive":
            new_mode = "aggressive"
        elif mode == "passive":
            new_mode = "passive"
        else:
            raise ValueError(f"unknown mode {mode!r}")
        if new_mode == self.mode:
            return
        self.mode = new_mode
        self._params = QuotingParams.from_profile(
            self.profile, exact_model=self.exact_model, mode=new_mode
        )
        self._refresh = RefreshParams.from_profile(
            self.profile, mode=new_mode, exact_model=self.exact_model
        )
        self.log.info("mode_changed", mode=mode)

    # --- the data path --------------------------------------------------------------------

    @property
    def last_book_at(self) -> float | None:
        """Clock time the last book arrived (what the stale_book rule measures from)."""
        return self._last_book_at

    def risk_inputs(self, now: float, decision: QuoteDecision) -> RiskInputs:
        """Gather what the kill-switch rules look at (equity, drawdown, book age, ...)."""
        mid = (
            decision.mid
            if decision.mid is not None
            else (self.book.mid if self.book is not None else None)
        )
        equity = None
        if mid is not None and mid.is_finite() and mid > 0:
            equity = self.inventory.quote + self.inventory.base * mid
            if self.peak_equity is None or equity > self.peak_equity:
                self.peak_equity = equity
            day = self._day_of(self.clock.wall())  # a calendar day: the wall clock's business
            if day != self._day_key:
                self._day_key, self._day_start_equity = day, equity
        daily = None
        if equity is not None and self._day_start_equity is not None:
            daily = equity - self._day_start_equity
        while self._action_times and self._action_times[0] <= now - 60.0:
            self._action_times.popleft()
        return RiskInputs(
            now=now,
            last_book_ts=self._last_book_at,
            mid=mid,
            previous_mid=self._previous_mid,
            book_crossed=self.book is not None and self.book.is_crossed and not self.exact_model,
            equity=equity,
            peak_equity=self.peak_equity,
            daily_pnl=daily,
            inventory_excess=decision.excess,
            consecutive_errors=self.stats.consecutive_errors,
            actions_last_minute=len(self._action_times),
            has_capital=not self.exact_model,
        )

    def _daily_tz(self) -> str:
        rule = self.profile.kill_switch.max_daily_loss
        return rule.timezone if rule is not None else "UTC"

    def _day_of(self, now: float) -> str:
        """The local date of ``now`` in the daily-loss time zone (cached until midnight)."""
        if self._day_cache is not None and self._day_cache[0] <= now < self._day_cache[1]:
            return self._day_cache[2]
        tz = ZoneInfo(self._daily_tz())
        local = dt.datetime.fromtimestamp(now, tz)
        start = dt.datetime(local.year, local.month, local.day, tzinfo=tz)
        end = start + dt.timedelta(days=1)
        day = local.date().isoformat()
        # Computed once per day: this runs on every event, on the book -> order path.
        self._day_cache = (start.timestamp(), end.timestamp(), day)
        return day

    def decide(self, now: float) -> tuple[QuoteDecision, tuple[OrderAction, ...]]:
        """One pass of the data path: quotes, risk gate, then the minimal actions.

        Pure in effect except for the risk state it commits (``self.risk``) and the trips it
        logs, so the same events always give the same decisions.
        """
        assert self.book is not None and self.rules is not None
        others = exclude_own(self.book, tuple(self.open_orders.values()))
        state = MarketState(
            now=now,
            book=others,
            rules=self.rules,
            balances=self.inventory.balances(self.rules.base, self.rules.quote),
            sigma=sigma_price(self._vol),
            time_left_s=self._time_left(now),
        )
        decision = compute_quotes(self._params, state)
        risk, trips = evaluate(self.profile.kill_switch, self.risk, self.risk_inputs(now, decision))
        if trips:
            self._on_trips(trips, risk, now)
            self._pending_trips += trips
        trading = risk.trading_state(now)
        if trading is not self.risk.trading_state(now):
            self.log.info(
                "trading_state_changed",
                previous=self.risk.trading_state(now).value,
                state=trading.value,
            )
        self.risk = risk
        excess = decision.excess  # the one measure the deviation rule also read
        desired = gate(decision.quotes, trading, excess)
        actions = reconcile(
            desired,
            tuple(self.open_orders.values()),
            now,
            self._last_action_at,
            self._refresh,
        )
        return decision, actions

    def _on_trips(self, trips: tuple[Trip, ...], new: RiskState, now: float) -> None:
        for trip in trips:
            self.stats.kill_switch_trips += 1
            self.stats.trips_by_rule[trip.rule] = self.stats.trips_by_rule.get(trip.rule, 0) + 1
            self.log.warning(
                "kill_switch_tripped",
                rule=trip.rule,
                action=trip.action,
                value=trip.value,
                limit=trip.limit,
                detail=trip.detail,
                state=new.trading_state(now).value,
            )

    def reset_risk(self) -> None:
        """Operator reset: clear a halt; the rules are re-checked on the next event."""
        self.risk = reset(self.risk)
        # Drawdown restarts from the current equity (the ledger forgot its peak at the reset):
        # re-based here at once, and stored with this round's equity snapshot, so that a
        # restart right after the reset cannot bring the old peak back. Today's loss is not
        # forgiven by a reset.
        mid = self.book.mid if self.book is not None else None
        self.peak_equity = (
            self.inventory.quote + self.inventory.base * mid
            if mid is not None and mid.is_finite() and mid > 0
            else None
        )
        self._last_equity_at = -math.inf
        self.log.warning(
            "kill_switch_reset",
            peak_equity=None if self.peak_equity is None else str(self.peak_equity),
        )
        self.log.info("trading_state_changed", previous="halted", state="active")

    def _note_idle(self, decision: QuoteDecision, now: float) -> None:
        """Say why a trading profile quotes nothing: once per reason at warning level, and in
        status for as long as it lasts (a lot or a budget that leaves no size, say, would
        otherwise look like a quoting profile that is merely unlucky)."""
        trading = self.risk.trading_state(now)
        idle = None
        allowed = trading is not TradingState.HALTED and trading is not TradingState.PAUSED
        if allowed and not decision.quotes.all and decision.reason != "ok":
            idle = decision.reason
        if idle == self.idle_reason:
            return
        if idle is None:
            self.log.info("quoting_resumed", after=self.idle_reason)
        elif idle not in self._idle_reasons_logged:
            self._idle_reasons_logged.add(idle)
            self.log.warning("quoting_nothing", reason=idle, mode=self.mode)
        self.idle_reason = idle

    def _time_left(self, now: float) -> float:
        strategy = self.profile.strategy
        if strategy.type != "avellaneda_stoikov":
            return 0.0
        return time_left(strategy.horizon, now, self.session_end)

    async def _requote(self) -> None:
        if self.book is None or self.rules is None:
            return  # nothing to price from yet (the stale-book rule covers a silent venue)
        now = self.clock.now()
        if now - self._last_balance_sync >= BALANCE_REFRESH_S and not self.exact_model:
            # Periodic: a transient failure is an error to count, not a reason to fail the
            # profile (fills keep the view current until the next refresh).
            try:
                await self._sync_balances()
            except (AuthenticationFailed, FatalVenueError):
                raise
            except VenueError as exc:
                self._record_error(exc)
        if now - self._last_order_audit >= ORDER_AUDIT_S and self.rules is not None:
            self._last_order_audit = now
            try:
                await self._audit_open_orders()
            except (AuthenticationFailed, FatalVenueError):
                raise
            except VenueError as exc:
                self._record_error(exc)
        if self.risk.halt is not None and now - self._last_halt_check >= HALT_CHECK_S:
            self._last_halt_check = now
            if await self.journal.halt_cleared():  # `kasmm reset` wrote to the ledger
                self.reset_risk()
        decision, actions = self.decide(now)
        self.stats.decisions += 1
        self.last_decision = decision
        self._note_idle(decision, now)
        if self._pending_trips:
            # A halt is stored before the cancels go out: it must survive a crash right here.
            trips, self._pending_trips = self._pending_trips, ()
            await self.journal.trips(trips, self.risk.trading_state(now).value, self.clock.wall())
        if actions:
            self._last_action_at = now
            self.stats.quotes_sent += 1
            self._action_times.extend(now for _ in actions)
            await self._execute(actions)
        await self._persist(now)

    async def _persist(self, now: float) -> None:
        """Write what this round produced: order events, the opening, an equity snapshot."""
        await self.journal.flush()
        if self._opening_pending is not None:
            position, mark = self._opening_pending
            self._opening_pending = None
            await self.journal.set_opening(position, mark, self.clock.wall())
        mid = self.book.mid if self.book is not None else None
        if mid is not None and now - self._last_equity_at >= EQUITY_SNAPSHOT_S and mid > 0:
            self._last_equity_at = now
            equity = self.inventory.quote + self.inventory.base * mid
            await self.journal.equity(
                self.clock.wall(), equity, mid, self.inventory.base, self.inventory.quote
            )

    async def _execute(self, actions: tuple[OrderAction, ...]) -> None:
        """Hand actions to the venue (whose requests draw from the profile's token bucket).

        Cancels come first: the reconciler orders them so, which frees balance for the places.
        """
        for action in actions:
            try:
                if isinstance(action, CancelOrder):
                    await self._cancel(action.client_id)
                else:
                    await self._place(action)
                self.stats.consecutive_errors = 0
            except (AuthenticationFailed, FatalVenueError):
                raise
            except RateLimited as exc:
                self._record_error(exc)
                await self.clock.sleep_until(self.clock.now() + 1.0)
                return  # the rest of this round is stale by now; the next event requotes
            except VenueError as exc:
                self._record_error(exc)

    async def _cancel(self, client_id: ClientOrderId) -> None:
        try:
            await self.venue.cancel_order(client_id)
            self.stats.orders_cancelled += 1
            self.journal.order_status(client_id, "cancelled", self.clock.wall())
            self.log.debug("order_cancelled", client_id=client_id)
        except OrderNotFound:
            # Already gone (filled or expired): a fill event may still be on its way, and
            # moves the order to ``filled`` if so.
            self.stats.cancel_not_found += 1
            self.journal.order_status(client_id, "cancelled", self.clock.wall(), reason="gone")
        self.open_orders.pop(client_id, None)

    async def _place(self, action: PlaceOrder) -> None:
        intent = action.intent
        request = OrderRequest(
            client_id=self._ids.next(),
            side=intent.side,
            price=intent.price,
            size=intent.size,
            post_only=True,
        )
        # Ledger rows carry the calendar time; the order's age (renewal) is measured on the
        # interval clock from when it was sent, whatever the venue stamped it with.
        now, sent_at = self.clock.wall(), self.clock.now()
        try:
            order = await self.venue.place_order(request)
        except PostOnlyWouldCross:
            self.stats.orders_rejected += 1
            self.journal.order_opened(request, None, now, intent.level, "rejected", "post_only")
            self.log.debug("order_rejected", reason="post_only", side=intent.side.value)
            return
        except InsufficientFunds:
            self.stats.orders_rejected += 1
            self.journal.order_opened(request, None, now, intent.level, "rejected", "funds")
            await self._sync_balances(force=True)
            return
        except OrderRejected as exc:
            self.stats.orders_rejected += 1
            self.journal.order_opened(request, None, now, intent.level, "rejected", str(exc))
            self.log.warning("order_rejected", reason=str(exc), side=intent.side.value)
            return
        except RequestTimedOut:
            # Unknown outcome: the order may rest on the book. Look it up before going on.
            order_or_none = await self._lookup(request.client_id)
            if order_or_none is None:
                self.journal.order_opened(request, None, now, intent.level, "unknown", "timeout")
                raise
            order = order_or_none
        self.journal.order_opened(request, order, now, intent.level)
        self.open_orders[order.client_id] = OpenOrder(
            client_id=order.client_id,
            side=order.side,
            price=order.price,
            size=order.size,
            remaining=order.remaining,
            created_at=sent_at,
            venue_id=order.venue_id,
            level=intent.level,
        )
        self.stats.orders_placed += 1
        self.log.debug(
            "order_placed",
            side=intent.side.value,
            price=str(intent.price),
            size=str(intent.size),
            client_id=request.client_id,
        )

    async def _lookup(self, client_id: ClientOrderId) -> OpenOrder | None:
        for order in await self.venue.fetch_open_orders():
            if order.client_id == client_id:
                return order
        return None

    async def _audit_open_orders(self) -> None:
        """Cancel orders of this profile that rest at the venue without the bot knowing them.

        They come from placements whose outcome stayed unknown (the lookup after a timeout
        failed too) and from cancels answered "unknown order" while the order still rests. The
        bot's requests are sequential, so none is in flight while this runs.
        """
        for order in await self.venue.fetch_open_orders():
            cid = order.client_id
            if not self._ids.is_own(cid) or cid in self.open_orders:
                continue
            try:
                await self.venue.cancel_order(cid)
                self.stats.orders_cancelled += 1
                self.journal.order_status(cid, "cancelled", self.clock.wall(), reason="untracked")
            except OrderNotFound:
                pass
            self.stats.untracked_cancelled += 1
            self.log.warning("untracked_order_cancelled", client_id=cid)

    async def _sync_balances(self, *, force: bool = False) -> None:
        """Re-read balances from the venue; log any drift from the fill-driven view."""
        now = self.clock.now()
        if not force and now - self._last_balance_sync < BALANCE_REFRESH_S:
            return
        self._last_balance_sync = now
        if self.exact_model:
            return  # the as2008 model has no balances: inventory is the sum of fills
        assert self.rules is not None
        asked_at = self._venue_clock.at(self.clock.now())
        if asked_at is None:  # no venue timestamp seen yet (start-up): the local calendar
            asked_at = self.clock.wall()
        balances = await self.venue.fetch_balances()
        self._inventory_as_of = asked_at
        base, quote = balances.total(self.rules.base), balances.total(self.rules.quote)
        if self.start_mid is not None:
            # Dust: a lot of base, a tenth of the minimum notional (or one tick x lot) of quote.
            dust_quote = self.rules.min_notional / 10 or self.rules.tick * self.rules.lot
            for asset, local, venue, dust in (
                (self.rules.base, self.inventory.base, base, self.rules.lot),
                (self.rules.quote, self.inventory.quote, quote, dust_quote),
            ):
                if abs(local - venue) > dust:
                    self.stats.balance_drifts += 1
                    self.log.warning(
                        "balance_drift", asset=asset, local=str(local), at_venue=str(venue)
                    )
                    await self.journal.balance_drift(now, asset, local, venue)
        self.inventory.base, self.inventory.quote = base, quote

    def _record_error(self, exc: VenueError) -> None:
        self.stats.venue_errors += 1
        self.stats.consecutive_errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self.log.warning("venue_error", error=type(exc).__name__, message=str(exc))

    # --- reporting ------------------------------------------------------------------------

    def snapshot(self) -> BotSnapshot:
        """Current state for ``status`` and the run summary."""
        mid = self.book.mid if self.book is not None else None
        mark = mid if mid is not None else (self.start_mid or ZERO)
        decision = self.last_decision
        return BotSnapshot(
            state=self.state.value,
            mode=self.mode,
            mid=mid,
            spread_bps=decision.spread_bps if decision else None,
            inventory_base=self.inventory.base,
            inventory_quote=self.inventory.quote,
            open_orders=len(self.open_orders),
            realized_pnl=self.pnl.realized,
            unrealized_pnl=self.pnl.unrealized(mark),
            fees=self.pnl.fees,
            net_pnl=self.pnl.net(mark),
            last_error=self.stats.last_error,
            trading_state=self.risk.trading_state(self.clock.now()).value,
            halt_reason=(
                f"{self.risk.halt.rule}: {self.risk.halt.value:g} > {self.risk.halt.limit:g}"
                if self.risk.halt is not None
                else None
            ),
            idle_reason=self.idle_reason,
        )


@dataclass(frozen=True, slots=True)
class _StreamFailed:
    """The venue's event stream raised ``error`` (queued after the events before it)."""

    error: Exception


def _well_formed(book: Book) -> bool:
    """Every level has a positive finite price and size (an empty side is fine)."""
    return all(
        lv.price.is_finite() and lv.size.is_finite() and lv.price > 0 and lv.size > 0
        for lv in (*book.bids, *book.asks)
    )
