"""The bot's driver: the async loop around the sans-I/O engine.

The data path, in order:

    venue event (book / fill)                      -> Bot.on_event
      -> engine: quoting core -> risk gate -> reconciliation    kasmm.bot.engine.Engine.decide
      -> executor: order actions through the token bucket and the venue   kasmm.bot.executor
      -> outcomes back into the engine; its outbox (ledger rows, logs) carried out here

The driver owns the I/O and the lifetime (connect, start-up reconciliation, the event pump, the
stop that cancels everything); the engine owns every decision and every piece of trading state.
Fills are committed to the ledger before the engine acts on them. On stop the driver cancels
all of its orders in a shielded scope with a deadline.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

import anyio
import structlog
from anyio.abc import TaskStatus

from kasmm.bot.account import Inventory
from kasmm.bot.commands import (
    Command,
    Job,
    Log,
    PlaceIoc,
    RecordOrder,
    StoreDrift,
    StoreEquity,
    StoreKpis,
    StoreOpening,
    StoreTransfer,
    StoreTrips,
)
from kasmm.bot.engine import (
    Engine,
    FillVerdict,
)
from kasmm.bot.executor import Executor
from kasmm.bot.intake import EventIntake
from kasmm.bot.stats import BotState, BotStats
from kasmm.bot.stop import SHUTDOWN_DEADLINE_S, Stop
from kasmm.bot.view import BotView, build_view
from kasmm.clock import Clock
from kasmm.config.schema import ModeName, Profile
from kasmm.config.venues import CcxtVenueConfig
from kasmm.core.ids import ClientIdFactory
from kasmm.core.pnl import PnlState
from kasmm.core.quoting import QuoteDecision
from kasmm.core.risk import RiskState
from kasmm.core.types import (
    Book,
    BookUpdated,
    ClientOrderId,
    Fill,
    MarketRules,
    OpenOrder,
    OrderAction,
    OrderClosed,
    OrderFilled,
    OrderRequest,
    ReferenceUpdated,
    Side,
    VenueEvent,
)
from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    LedgerLost,
    OrderNotFound,
    VenueError,
)
from kasmm.journal import BotJournal
from kasmm.store import AsyncLedger
from kasmm.venues.base import IocOutcome, Venue


def _level_of(log: object) -> int:
    """The lowest level ``log`` emits (structlog's numbers: 10 debug, 20 info); 0 (every
    level) for a logger that does not filter by level."""
    level = getattr(log, "get_effective_level", None)
    return level() if callable(level) else 0


class BotNotRunning(RuntimeError):
    """An order for a bot that is not running (stopped, failed, not connected yet): not sent."""


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
        on_handled: Callable[[VenueEvent], None] | None = None,
        on_fill: Callable[[Fill], None] | None = None,
    ) -> None:
        """:param on_fill: told of every fill once it is stored and applied (the supervisor's
        hedging task offsets the fills of a hedged profile, and settles its hedges with
        the fills of the hedge profile)."""
        self.profile = profile
        self.on_fill_stored = on_fill
        #: Called after each venue event has been handled (the equivalence test records there).
        self.on_handled = on_handled
        self.stop_at = stop_at
        self.venue = venue
        self.clock = clock
        self.session_end = session_end
        # Bound now, with the logging configuration of now (structlog's bind builds the logger).
        self.log = structlog.get_logger("kasmm.bot").bind(
            profile=profile.name, venue=venue.name, symbol=profile.symbol
        )
        # A random run tag (no clock: a stepped clock repeated the old time-based tags); in
        # virtual time a seeded one, so a backtest's ids are a function of its inputs. The
        # engine builds no log events below the level this logger drops (at ``info``, two
        # debug events per order action, every round, each a dict and two formatted Decimals).
        self.engine = Engine(
            profile,
            venue_name=venue.name,
            session_end=session_end,
            run_tag=run_tag,
            rng=random.Random(f"{profile.name}@{clock.now()}") if clock.is_virtual else None,
            log_floor=_level_of(self.log),
        )
        self.state = BotState.STARTING
        self.orders_left = 0
        #: The ledger was lost while the bot was stopping (raised once the stop is done).
        self.ledger_lost: LedgerLost | None = None
        self.journal = BotJournal(profile.name, profile.quote, ledger)
        #: The exchange account whose settlement sweeps this bot books as transfers (``None``:
        #: a sim or paper venue, or an account without a name: nothing is swept from it).
        self.account = profile.venue.account if isinstance(profile.venue, CcxtVenueConfig) else None
        self.executor = Executor(
            self.engine, venue, clock, read_balances=lambda: self._sync_balances(force=True)
        )

    # --- the engine's state, for the driver's callers ----------------------------------------

    @property
    def run_tag(self) -> str:
        """The tag in this run's client order ids (unique per run)."""
        return self.engine.ids.run_tag

    @property
    def _ids(self) -> ClientIdFactory:
        return self.engine.ids

    @property
    def stats(self) -> BotStats:
        """The engine's counters."""
        return self.engine.stats

    @property
    def mode(self) -> ModeName:
        """The active mode."""
        return self.engine.mode

    @property
    def rules(self) -> MarketRules | None:
        """The venue's trading rules once connected."""
        return self.engine.rules

    @rules.setter
    def rules(self, rules: MarketRules | None) -> None:
        self.engine.rules = rules

    @property
    def book(self) -> Book | None:
        """The last well-formed book."""
        return self.engine.book

    @property
    def inventory(self) -> Inventory:
        """The fill-driven view of the balances."""
        return self.engine.account.inventory

    @property
    def pnl(self) -> PnlState:
        """Average-cost PnL since accounting started."""
        return self.engine.account.pnl

    @property
    def open_orders(self) -> dict[ClientOrderId, OpenOrder]:
        """This run's orders resting at the venue, by client id."""
        return self.engine.open_orders

    @property
    def risk(self) -> RiskState:
        """The risk gate's state."""
        return self.engine.risk

    @risk.setter
    def risk(self, risk: RiskState) -> None:
        self.engine.risk = risk

    @property
    def start_mid(self) -> Decimal | None:
        """The mark accounting opened at."""
        return self.engine.start_mid

    @property
    def last_decision(self) -> QuoteDecision | None:
        """The quoting core's last answer."""
        return self.engine.last_decision

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect, clean up leftovers, quote until cancelled (or ``stop_at``), then cancel.

        ``task_status.started()`` is called once the first quotes are live (or the first
        decision was to quote nothing), so a supervisor's ``await tg.start(bot.run)`` returns
        only when the profile is really trading.
        """
        started = False
        try:
            self.engine.connected(await self.venue.connect())
            assert self.rules is not None
            # A rebuilt simulated venue resumes the balances its ledger implies, before the
            # first balance read (bot, venue and ledger agree); no-op for a real exchange.
            await self.journal.restore_simulated_balances(
                self.venue, self.rules.base, self.rules.quote, self.clock.wall()
            )
            await self._startup_reconcile()
            if self.account is not None:  # before the first read: what it may already show
                self.engine.transfers.restored(*await self.journal.booked_transfers())
            await self._sync_balances(force=True)
            await self._restore()

            def on_started() -> None:
                nonlocal started
                if not started and self.stats.decisions > 0:
                    started = True
                    self.state = BotState.QUOTING
                    self.log.info("bot_started", mode=self.mode, prefix=self._ids.prefix)
                    task_status.started()

            intake = EventIntake(
                self.venue,
                self.clock,
                handle=lambda event: self.on_event(event),  # late-bound: tools wrap on_event
                tick=self._requote,
                store_queued=self._store_queued_fills,
                fallback_s=self.profile.refresh.fallback_interval_s,
                stop_at=self.stop_at,
            )
            # The executor's lane (its docstring) lives as long as the intake that uses it.
            failure: Exception | None = None
            async with anyio.create_task_group() as lane_group:
                await lane_group.start(self.executor.serve)
                try:
                    await intake.run(on_started)
                except Exception as exc:
                    # Raised below, outside the task group: the supervisor sees the error
                    # itself (AuthenticationFailed stays AuthenticationFailed), not a group.
                    failure = exc
                lane_group.cancel_scope.cancel()
            if failure is not None:
                raise failure
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
        stop = Stop(self.engine, self.venue, self.clock, self.journal, self.log)
        left = await stop.run(carry_out=self._carry_out)
        if stop.ledger_lost is not None:
            self.ledger_lost = stop.ledger_lost
        return left

    async def _restore(self) -> None:
        """Resume PnL, peak equity and a halt from the ledger (they survive restarts)."""
        wall = self.clock.wall()
        self.engine.restored(await self.journal.restore(self.engine.daily_tz, wall), wall)
        await self._carry_out(self.engine.take())
        await self.journal.mode(self.clock.wall(), self.mode, "start")

    async def _startup_reconcile(self) -> None:
        """Cancel orders a previous run of this profile left behind; never touch others."""
        orders = await self.venue.fetch_open_orders()
        # Ids of the format before the delimiter (an older kasmm's, left by a crash) too: only
        # here, never as fills; see ClientIdFactory.is_legacy.
        own = [o for o in orders if self.engine.is_leftover(o.client_id)]
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

    async def _store_queued_fills(self, fills: list[Fill]) -> None:
        """Store the fills the venue delivered that the bot had not handled when it stopped.

        The venue will not deliver them again (it saw them go out), so dropping them would
        lose them from the ledger. They pass the same gate as every other fill.
        """
        if self.rules is None:
            return
        try:
            with anyio.move_on_after(SHUTDOWN_DEADLINE_S / 2):
                for fill in fills:
                    if await self._accept_fill(fill):
                        self.engine.on_fill(fill, self.clock.now())
                        self._report_fill(fill)
                await self._carry_out(self.engine.take())
                await self.journal.flush()
        except LedgerLost as exc:  # raised by run() once the stop is done
            self.ledger_lost = exc
        except Exception as exc:  # never mask why the bot stopped
            self.log.error("queued_fills_not_stored", error=f"{type(exc).__name__}: {exc}")

    # --- event handlers -----------------------------------------------------------------

    async def on_event(self, event: VenueEvent) -> None:
        """Dispatch one venue event, then requote (not after a fill that is not taken)."""
        if isinstance(event, BookUpdated):
            self.engine.on_book(event.book, self.clock.now())
            await self._requote()
        elif isinstance(event, ReferenceUpdated):
            # Another market moved: requote now, before the own book follows (what a
            # reference is for). A book of no use to the reference changes nothing.
            if self.engine.on_reference(event.key, event.book, event.received_at):
                await self._requote()
        elif isinstance(event, OrderFilled):
            if await self._accept_fill(event.fill):
                self.engine.on_fill(event.fill, self.clock.now())
                self._report_fill(event.fill)
                await self._requote()
            else:
                await self._carry_out(self.engine.take())
        else:
            if isinstance(event, OrderClosed):
                self.engine.on_order_closed(event.client_id, event.reason, event.ts)
            await self._requote()
        if self.on_handled is not None:
            self.on_handled(event)

    def _report_fill(self, fill: Fill) -> None:
        """Tell ``on_fill`` of a stored fill; what it raises is logged, never the bot's."""
        report = self.on_fill_stored
        if report is None:
            return
        try:
            report(fill)
        except Exception as exc:
            self.log.error("fill_report_failed", error=f"{type(exc).__name__}: {exc}")

    # --- immediate-or-cancel orders (hedges sent through this bot) -----------------------

    def ioc_request(self, side: Side, price: Decimal, size: Decimal) -> OrderRequest:
        """An immediate-or-cancel request with a new client id of this run: its fills are this
        profile's own (the id's prefix), although it never rests."""
        return OrderRequest.ioc(self.engine.ids.next(), side, price, size)

    async def send_ioc(self, request: OrderRequest) -> IocOutcome:
        """Send ``request`` through this bot's venue stack (see :meth:`Executor.place_ioc`) and
        store what the engine recorded of it.

        :raises VenueError: as :meth:`Venue.place_ioc`.
        :raises BotNotRunning: the bot is not connected (stopped, or not started yet).
        """
        if self.rules is None or self.state not in (BotState.STARTING, BotState.QUOTING):
            raise BotNotRunning(f"{self.profile.name} is not running ({self.state.value})")
        try:
            return await self.executor.place_ioc(request)
        finally:
            await self._carry_out(self.engine.take())
            await self.journal.flush()

    def on_book(self, book: Book) -> None:
        """Hand a book to the engine (tests and tools drive the bot this way)."""
        self.engine.on_book(book, self.clock.now())

    def on_fill(self, fill: Fill) -> None:
        """Apply an already stored fill (tests and tools drive the bot this way)."""
        self.engine.on_fill(fill, self.clock.now())

    async def _accept_fill(self, fill: Fill) -> bool:
        """Whether ``fill`` is this profile's and new; if so it is committed to the ledger.

        The engine decides whose it is (one gate for every path a fill takes: the live stream,
        the queue drained at a stop or a stream failure); the ledger decides whether it is new.
        """
        verdict = self.engine.fill_verdict(fill, self.clock.now())
        if verdict is FillVerdict.FOREIGN:
            return False
        # Committed to the ledger before it moves inventory; a duplicate is ignored. Shielded:
        # a fill taken from the stream must be stored even if the bot is being stopped right
        # now (waiting for the ledger shared with other profiles, say).
        with anyio.CancelScope(shield=True):
            if verdict is FillVerdict.IF_KNOWN and not await self.journal.knows_order(
                fill.client_id
            ):
                # First run on this ledger: an order from before accounting started (another
                # ledger's: a deleted state dir, say) is not this ledger's history.
                return False
            stored = await self.journal.fill(fill)
        if not stored:
            self.log.info("fill_duplicate_ignored", trade_id=fill.trade_id)
        return stored

    def set_mode(self, mode: str) -> None:
        """Switch between ``aggressive`` and ``passive`` (takes effect on the next decision)."""
        self.engine.set_mode(mode)
        self._log_outbox()

    def decide(self, now: float) -> tuple[QuoteDecision, tuple[OrderAction, ...]]:
        """One pass of the data path (see :meth:`Engine.decide`)."""
        return self.engine.decide(now, self.clock.wall())

    def reset_risk(self) -> None:
        """Operator reset: clear a halt; drawdown is measured from the current equity on."""
        self.engine.reset(self.clock.now())

    # --- a round ----------------------------------------------------------------------------

    async def _requote(self) -> None:
        engine = self.engine
        if engine.book is None or engine.rules is None:
            return  # nothing to price from yet (the stale-book rule covers a silent venue)
        now = self.clock.now()
        for job in engine.due(now):
            if job is Job.CHECK_HALT:
                if await self.journal.halt_cleared():  # `kasmm reset` wrote to the ledger
                    engine.reset(now)
                continue
            # Periodic: a transient failure is an error to count, not a reason to fail the
            # profile (fills keep the view current until the next refresh).
            try:
                if job is Job.READ_BALANCES:
                    await self._read_balances()
                else:
                    await self._audit_open_orders()
            except (AuthenticationFailed, FatalVenueError):
                raise
            except VenueError as exc:
                engine.error(exc)
        _, actions = engine.decide(now, self.clock.wall())
        # Trips are in the outbox ahead of anything else of the round: stored before the
        # cancels go out, so a halt survives a crash right here. Mostly empty (a fill's round
        # logs it): an empty outbox costs no coroutine ahead of the round's first action.
        commands = engine.take()
        if commands:
            await self._carry_out(commands)
        if actions:
            await self.executor.execute(actions)
            commands = engine.take()  # what the outcomes recorded and logged
            if commands:
                await self._carry_out(commands)
        await self.journal.flush()
        engine.persist(now, self.clock.wall())
        commands = engine.take()
        if commands:  # mostly none: a round without one skips the coroutine
            await self._carry_out(commands)

    async def _carry_out(self, commands: list[Command]) -> None:
        """Do what the engine asked: buffer order events, store, log."""
        journal = self.journal
        for command in commands:
            if isinstance(command, RecordOrder):
                journal.record(command.entry)
            elif isinstance(command, Log):
                getattr(self.log, command.level)(command.event, **command.fields)
            elif isinstance(command, StoreTrips):
                await journal.trips(command.trips, command.state, command.wall)
            elif isinstance(command, StoreOpening):
                await journal.set_opening(command.position, command.mark, command.wall)
            elif isinstance(command, StoreEquity):
                await journal.equity(
                    command.wall, command.equity, command.mid, command.base, command.quote
                )
            elif isinstance(command, StoreKpis):
                await journal.kpis(command.record)
            elif isinstance(command, StoreDrift):
                await journal.balance_drift(
                    command.wall, command.asset, command.local, command.venue
                )
            elif isinstance(command, StoreTransfer):
                await journal.transfer(
                    command.key,
                    "out" if command.direction == "out" else "back",
                    command.asset,
                    command.amount,
                    command.mark,
                    command.value,
                    command.wall,
                )
            elif isinstance(command, PlaceIoc):
                await self._place_ioc(command.request)

    async def _place_ioc(self, request: OrderRequest) -> None:
        """Send one of the engine's IOC orders (a rebalance) once its ledger row is stored, and
        hand the answer back to the engine. A failure is the order's outcome (recorded and
        counted by the executor), unless it ends the run (authentication, fatal)."""
        rebalancer = self.engine.rebalancer
        assert rebalancer is not None  # the only source of the command
        await self.journal.flush()  # the row recorded with the command: a crash keeps it
        try:
            outcome = await self.executor.place_ioc(request)
        except (AuthenticationFailed, FatalVenueError):
            raise
        except VenueError as exc:
            rebalancer.answered(request, None, exc)
        else:
            rebalancer.answered(request, outcome, None)
        await self._carry_out(self.engine.take())

    def _log_outbox(self) -> None:
        """Carry out log commands synchronously (for synchronous callers)."""
        for command in self.engine.take():
            if isinstance(command, Log):
                getattr(self.log, command.level)(command.event, **command.fields)
            else:  # pragma: no cover - synchronous calls only log
                raise AssertionError(f"unexpected command {command!r}")

    async def _audit_open_orders(self) -> None:
        """Cancel orders of this profile that rest at the venue without the bot knowing them."""
        for cid in self.engine.orders.untracked(await self.venue.fetch_open_orders()):
            found = True
            try:
                await self.venue.cancel_order(cid)
            except OrderNotFound:
                found = False
            self.engine.orders.untracked_cancelled(cid, found, self.clock.wall())

    async def _read_balances(self) -> None:
        """Re-read balances from the venue; the engine adopts them and reports any drift."""
        engine = self.engine
        assert engine.rules is not None
        asked_at = engine.venue_time(self.clock.now())
        if asked_at is None:  # no venue timestamp seen yet (start-up): the local calendar
            asked_at = self.clock.wall()
        # The account's sweeps first: a sweep is stored before its withdrawal is requested, so
        # any deduction these balances show has its sweep in hand (kasmm.bot.transfers).
        account = self.account
        sweeps = (
            None if account is None else await self.journal.sweeps(account, engine.transfers.since)
        )
        balances = await self.venue.fetch_balances()
        engine.balances_read(
            balances.total(engine.rules.base),
            balances.total(engine.rules.quote),
            asked_at,
            self.clock.now(),
            self.clock.wall(),
            sweeps,
        )
        await self._carry_out(engine.take())

    async def _sync_balances(self, *, force: bool = False) -> None:
        """Read balances now (``force``) or when the refresh interval has passed."""
        now = self.clock.now()
        timer = self.engine.balance_timer
        if not force and not timer.due(now):
            return
        timer.mark(now)
        if not self.engine.balances_known:
            return  # the as2008 model has no balances: inventory is the sum of fills
        await self._read_balances()

    # --- reporting ------------------------------------------------------------------------

    def view(self) -> BotView:
        """The frozen view every reader uses (metrics, status, backtest, ``kasmm run``)."""
        return build_view(self.engine, self.state, self.clock.now(), self.orders_left)
