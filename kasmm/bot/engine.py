"""The bot's engine: a synchronous, sans-I/O state machine. Events in, commands out.

Everything that decides lives here: open orders, the account (inventory, PnL), the risk state
and what it tracks, the quoting -> risk gate -> reconciliation pass. The engine never awaits,
never reads a clock (``now`` is the interval clock, ``wall`` the calendar, both passed in) and
never touches a venue or the ledger: it answers with order actions (:meth:`Engine.decide`) and
leaves everything else it wants done (store, log) in its outbox (:meth:`Engine.take`). The
async driver (:mod:`kasmm.bot.driver`) performs both and feeds the outcomes back; a backtest
drives the same engine through the same driver in virtual time.

Rules of the road:

* a fill is acted on only after the driver stored it (:meth:`fill_verdict` first, then
  :meth:`on_fill`);
* order events and trips go to the outbox in the order they happened;
* every method leaves the engine consistent: a crash between two calls loses nothing that was
  stored.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kasmm.bot.account import Account
from kasmm.bot.commands import (
    Command,
    Job,
    Log,
    RecordOrder,
    StoreDrift,
    StoreEquity,
    StoreOpening,
    StoreTrips,
)
from kasmm.bot.risk_tracker import LocalDay, RiskTracker, measure
from kasmm.bot.stats import BotStats
from kasmm.bot.timers import Every
from kasmm.config.schema import ModeName, Profile
from kasmm.config.to_core import quoting_params, refresh_params, risk_limits
from kasmm.core.ids import ClientIdFactory
from kasmm.core.quoting import MarketState, QuoteDecision, compute_quotes, exclude_own, time_left
from kasmm.core.reconcile import reconcile
from kasmm.core.risk import RiskInputs, RiskState, TradingState, Trip, evaluate, gate, reset
from kasmm.core.types import (
    ZERO,
    Book,
    CancelOrder,
    ClientOrderId,
    Fill,
    MarketRules,
    OpenOrder,
    OrderAction,
    OrderIntent,
    OrderRequest,
    PlaceOrder,
    Side,
)
from kasmm.core.venue_time import VenueClock
from kasmm.core.volatility import VolState, sigma_price, update_vol
from kasmm.errors import (
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    PostOnlyWouldCross,
    VenueError,
)
from kasmm.journal import Restored
from kasmm.store import OrderOpened, OrderStatusChanged

#: How often balances are re-read from the venue (the venue is the truth).
BALANCE_REFRESH_S = 30.0
#: How often an equity snapshot is stored (drawdown peak, daily PnL, reports).
EQUITY_SNAPSHOT_S = 10.0
#: While halted, how often the ledger is checked for an operator's `kasmm reset`.
HALT_CHECK_S = 2.0
#: How often the venue's open orders are compared with the bot's own view (orders of this
#: profile that rest unknown to the bot are cancelled).
ORDER_AUDIT_S = 10.0


@dataclass(frozen=True, slots=True)
class Wave:
    """Order actions that go out together (see :meth:`Engine.plan_round`)."""

    cancels: tuple[ClientOrderId, ...] = ()
    places: tuple[PlaceOrder, ...] = ()


class FillVerdict(enum.Enum):
    """Whether a fill the venue reported is for this profile to store and act on."""

    #: Not this profile's order (another bot's or a human's on a shared account).
    FOREIGN = "foreign"
    #: This profile's, from a run before this ledger existed, unless the ledger knows the
    #: order (a first run only): the driver asks the ledger.
    IF_KNOWN = "if_known"
    #: This profile's: store it (once per trade id), then act on it.
    OWN = "own"


class Engine:
    """One profile's trading state and decisions."""

    def __init__(
        self,
        profile: Profile,
        *,
        venue_name: str,
        session_end: float | None = None,
        run_tag: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.profile = profile
        self.venue_name = venue_name
        self.session_end = session_end
        self.mode: ModeName = profile.mode
        self.stats = BotStats()
        self.account = Account()
        self.open_orders: dict[ClientOrderId, OpenOrder] = {}
        self.rules: MarketRules | None = None
        self.book: Book | None = None
        self.last_decision: QuoteDecision | None = None
        self.start_mid: Decimal | None = None
        self.start_equity: Decimal | None = None
        self.risk = RiskState()
        self.tracker = RiskTracker()
        #: Why the last decision quoted nothing while trading was allowed (``None``: it quoted).
        self.idle_reason: str | None = None
        self._idle_logged: set[str] = set()
        self._vol: VolState | None = None
        self._last_action_at: float | None = None
        #: First run on this ledger (no opening stored): see :meth:`fill_verdict`.
        self.first_run = False
        #: The venue's clock, estimated from its timestamps: exchange times are compared with
        #: exchange times (the local wall clock may be skewed against the venue's).
        self.venue_clock = VenueClock()
        self.ids = ClientIdFactory(profile.client_id_prefix, run_tag, rng=rng)
        self._params = quoting_params(profile)
        self._refresh = refresh_params(profile)
        self._limits = risk_limits(profile)
        self._vol_halflife = self._params.estimator_halflife_s
        rule = profile.kill_switch.max_daily_loss
        self.daily_tz = rule.timezone if rule is not None else "UTC"
        self._day = LocalDay(self.daily_tz)
        #: Where accounting starts, to be stored (set by the first book of a first run).
        self._opening: tuple[Decimal, Decimal] | None = None
        self.balance_timer = Every(BALANCE_REFRESH_S)
        self.audit_timer = Every(ORDER_AUDIT_S)
        self.halt_timer = Every(HALT_CHECK_S)
        self.equity_timer = Every(EQUITY_SNAPSHOT_S)
        self._outbox: list[Command] = []
        self.replace_mode = profile.refresh.replace_mode

    @property
    def balances_known(self) -> bool:
        """The account holds balances to read back (the as2008 model has none)."""
        return self._params.balances_known

    @property
    def target_share(self) -> float | None:
        """The base share quoting aims at in the current mode (``None``: a base target)."""
        return self._params.target_share

    @property
    def configured_rules(self) -> tuple[str, ...]:
        """Names of the kill-switch rules the profile has on (the trips' rule names)."""
        rules = self.profile.kill_switch
        return tuple(n for n in type(rules).model_fields if getattr(rules, n) is not None)

    # --- outbox ----------------------------------------------------------------------------

    def take(self) -> list[Command]:
        """The commands left since the last call, oldest first."""
        out, self._outbox = self._outbox, []
        return out

    def _log(self, level: str, event: str, **fields: Any) -> None:
        self._outbox.append(Log(level, event, fields))

    def _record(self, entry: OrderOpened | OrderStatusChanged) -> None:
        self._outbox.append(RecordOrder(entry))

    # --- start ------------------------------------------------------------------------------

    def connected(self, rules: MarketRules) -> None:
        """The venue connected; these are its trading rules."""
        self.rules = rules

    def restored(self, restored: Restored, wall: float) -> None:
        """Resume PnL, the equity peak, the day's start and a halt from the ledger."""
        if restored.day_start_equity is not None:
            self.tracker = RiskTracker(
                day_key=self._day.of(wall), day_start_equity=restored.day_start_equity
            )
        if restored.opening is not None and restored.pnl is not None:
            self.start_mid = restored.opening[1]
            self.account.pnl = restored.pnl
        else:
            # First run on this ledger: only this run's orders' fills are its history.
            self.first_run = True
        if restored.peak_equity is not None:
            self.tracker = RiskTracker(
                peak_equity=restored.peak_equity,
                day_key=self.tracker.day_key,
                day_start_equity=self.tracker.day_start_equity,
            )
        if restored.halt is not None:
            self.risk = RiskState(halt=restored.halt)
            h = restored.halt
            self._log("warning", "halt_restored", rule=h.rule, value=h.value, limit=h.limit)

    def is_own(self, client_id: str) -> bool:
        """An id of this profile (any run)."""
        return self.ids.is_own(client_id)

    def is_leftover(self, client_id: str) -> bool:
        """An order start-up must cancel: this profile's, or an older kasmm's id shape."""
        return self.ids.is_own(client_id) or self.ids.is_legacy(client_id)

    # --- events ---------------------------------------------------------------------------------

    def on_book(self, book: Book, now: float) -> bool:
        """Record a new book (and feed the volatility estimator); False if it was ignored.

        A malformed book (a price or size that is not a positive finite number) is ignored:
        the previous book stays, and if only malformed ones arrive the stale-book rule trips.
        """
        if not _well_formed(book):
            self.stats.bad_books += 1
            if self.stats.bad_books & (self.stats.bad_books - 1) == 0:  # 1st, 2nd, 4th, ...
                self._log("warning", "bad_book_ignored", count=self.stats.bad_books)
            return False
        previous = self.book.mid if self.book is not None else None
        self.tracker = self.tracker.booked(previous, now)
        self.book = book
        self.venue_clock = self.venue_clock.observe(book.ts, now)
        self.stats.book_updates += 1
        mid = book.mid
        if mid is not None and not book.is_crossed:
            if self.start_mid is None:
                inv = self.account.inventory
                self.start_mid = mid
                self.account.open_at(mid)
                self._opening = (inv.base, mid)
                self.start_equity = inv.equity(mid)
            if self._vol_halflife is not None:
                self._vol = update_vol(self._vol, float(mid), book.ts, self._vol_halflife)
        return True

    def fill_verdict(self, fill: Fill, now: float) -> FillVerdict:
        """Whether the driver should store ``fill`` (see :class:`FillVerdict`): the one gate
        every fill passes, whichever path brought it."""
        self.venue_clock = self.venue_clock.observe(fill.ts, now)
        if not self.ids.is_own(fill.client_id):
            return FillVerdict.FOREIGN
        if self.first_run and not self.ids.is_this_run(fill.client_id):
            return FillVerdict.IF_KNOWN
        return FillVerdict.OWN

    def on_fill(self, fill: Fill) -> None:
        """Apply a stored fill to the open orders, the inventory and the PnL."""
        order = self.open_orders.get(fill.client_id)
        status = "filled" if fill.remaining <= 0 else "partially_filled"
        self._record(OrderStatusChanged(fill.client_id, status, fill.ts))
        if order is not None:
            if fill.remaining <= 0:
                del self.open_orders[fill.client_id]
            else:
                self.open_orders[fill.client_id] = _with_remaining(order, fill.remaining)
        assert self.rules is not None
        if not self.account.apply(fill, self.rules.quote):
            # Executed before the balances were last read (reported late, or while the bot was
            # down): the inventory already holds it; only the PnL and the ledger take it.
            self._log("debug", "fill_already_in_balances", trade_id=fill.trade_id)
        self._log(
            "info",
            "fill",
            side=fill.side.value,
            price=str(fill.price),
            size=str(fill.size),
            fee=str(fill.fee),
            client_id=fill.client_id,
            trade_id=fill.trade_id,
            inventory=str(self.account.inventory.base),
        )

    def on_order_closed(self, client_id: ClientOrderId, reason: str, ts: float) -> None:
        """The venue took an order off the book for another reason than a fill."""
        if self.open_orders.pop(client_id, None) is not None:
            self._record(OrderStatusChanged(client_id, "cancelled", ts, reason=reason))

    def set_mode(self, mode: str) -> None:
        """Switch between ``aggressive`` and ``passive`` (takes effect on the next decision)."""
        if mode not in ("aggressive", "passive"):
            raise ValueError(f"unknown mode {mode!r}")
        new_mode: ModeName = "aggressive" if mode == "aggressive" else "passive"
        if new_mode == self.mode:
            return
        self.mode = new_mode
        self._params = quoting_params(self.profile, mode=new_mode)
        self._refresh = refresh_params(self.profile, mode=new_mode)
        self._log("info", "mode_changed", mode=mode)

    def reset(self, now: float) -> None:
        """Operator reset: clear a halt; drawdown is measured from the current equity on.

        Re-based at once, and stored with this round's equity snapshot, so that a restart
        right after the reset cannot bring the old peak back. Today's loss is not forgiven.
        """
        self.risk = reset(self.risk)
        mid = self.book.mid if self.book is not None else None
        equity = (
            self.account.inventory.equity(mid)
            if mid is not None and mid.is_finite() and mid > 0
            else None
        )
        self.tracker = self.tracker.rebased(equity)
        self.equity_timer.force()
        self._log(
            "warning", "kill_switch_reset", peak_equity=None if equity is None else str(equity)
        )
        self._log("info", "trading_state_changed", previous="halted", state="active")

    # --- periodic duties ---------------------------------------------------------------------

    def due(self, now: float) -> tuple[Job, ...]:
        """The reads due before this round's decision, in the order to do them."""
        jobs: list[Job] = []
        if self._params.balances_known and self.balance_timer.take(now):
            jobs.append(Job.READ_BALANCES)
        if self.audit_timer.take(now):
            jobs.append(Job.AUDIT_ORDERS)
        if self.risk.halt is not None and self.halt_timer.take(now):
            jobs.append(Job.CHECK_HALT)
        return tuple(jobs)

    def venue_time(self, now: float) -> float | None:
        """The venue's time at ``now`` (estimated from its stamps), ``None`` before any."""
        return self.venue_clock.at(now)

    def balances_read(
        self, base: Decimal, quote: Decimal, as_of: float, now: float, wall: float
    ) -> None:
        """Balances read from the venue at venue time ``as_of``: adopt them, report drift."""
        assert self.rules is not None
        for drift in self.account.resync(
            base, quote, as_of, self.rules, self.start_mid is not None
        ):
            self.stats.balance_drifts += 1
            self._log(
                "warning",
                "balance_drift",
                asset=drift.asset,
                local=str(drift.local),
                at_venue=str(drift.venue),
            )
            self._outbox.append(StoreDrift(wall, drift.asset, drift.local, drift.venue))

    def untracked(self, listed: Sequence[OpenOrder]) -> tuple[ClientOrderId, ...]:
        """Orders of this profile the venue lists but the engine does not know (placements
        whose outcome stayed unknown, cancels answered "unknown order" while the order still
        rests): the driver cancels them."""
        return tuple(
            o.client_id
            for o in listed
            if self.ids.is_own(o.client_id) and o.client_id not in self.open_orders
        )

    def untracked_cancelled(self, client_id: ClientOrderId, found: bool, wall: float) -> None:
        """The driver cancelled an untracked order (``found``: the venue still had it)."""
        if found:
            self.stats.orders_cancelled += 1
            self._record(OrderStatusChanged(client_id, "cancelled", wall, reason="untracked"))
        self.stats.untracked_cancelled += 1
        self._log("warning", "untracked_order_cancelled", client_id=client_id)

    # --- the data path -----------------------------------------------------------------------

    def decide(self, now: float, wall: float) -> tuple[QuoteDecision, tuple[OrderAction, ...]]:
        """One pass of the data path: quotes, risk gate, then the minimal actions.

        Commits the risk state and the trips (to the outbox, before anything else of the round),
        so the same events always give the same decisions.
        """
        assert self.book is not None and self.rules is not None
        others = exclude_own(self.book, tuple(self.open_orders.values()))
        state = MarketState(
            now=now,
            book=others,
            rules=self.rules,
            balances=self.account.inventory.balances(self.rules.base, self.rules.quote),
            sigma=sigma_price(self._vol),
            time_left_s=self._time_left(wall),
        )
        decision = compute_quotes(self._params, state)
        risk, trips = evaluate(self._limits, self.risk, self._risk_inputs(now, wall, decision))
        before = self.risk.trading_state(now)
        trading = risk.trading_state(now)
        if trips:
            self._on_trips(trips, trading)
        if trading is not before:
            self._log("info", "trading_state_changed", previous=before.value, state=trading.value)
        self.risk = risk
        desired = gate(decision.quotes, trading, decision.excess)
        actions = reconcile(
            desired, tuple(self.open_orders.values()), now, self._last_action_at, self._refresh
        )
        self.stats.decisions += 1
        self.last_decision = decision
        self._note_idle(decision, trading)
        if trips:
            # A halt is stored before the cancels go out: it must survive a crash right here.
            self._outbox.append(StoreTrips(trips, trading.value, wall))
        if actions:
            self._last_action_at = now
            self.stats.quotes_sent += 1
            self.tracker = self.tracker.acted(now, len(actions))
        return decision, actions

    def _risk_inputs(self, now: float, wall: float, decision: QuoteDecision) -> RiskInputs:
        mid = decision.mid if decision.mid is not None else (self.book.mid if self.book else None)
        equity = None
        if mid is not None and mid.is_finite() and mid > 0:
            equity = self.account.inventory.equity(mid)
        measured = measure(self.tracker, now, self._day.of(wall), equity)
        self.tracker = t = measured.tracker
        return RiskInputs(
            now=now,
            last_book_ts=t.last_book_at,
            mid=mid,
            previous_mid=t.previous_mid,
            book_crossed=(
                self.book is not None
                and self.book.is_crossed
                and not self._params.allow_locked_book
            ),
            equity=equity,
            peak_equity=t.peak_equity,
            daily_pnl=measured.daily_pnl,
            inventory_excess=decision.excess,
            consecutive_errors=self.stats.consecutive_errors,
            actions_last_minute=measured.actions_last_minute,
        )

    def _on_trips(self, trips: tuple[Trip, ...], state: TradingState) -> None:
        for trip in trips:
            self.stats.kill_switch_trips += 1
            self.stats.trips_by_rule[trip.rule] = self.stats.trips_by_rule.get(trip.rule, 0) + 1
            self._log(
                "warning",
                "kill_switch_tripped",
                rule=trip.rule,
                action=trip.action,
                value=trip.value,
                limit=trip.limit,
                detail=trip.detail,
                state=state.value,
            )

    def _note_idle(self, decision: QuoteDecision, trading: TradingState) -> None:
        """Say why a trading profile quotes nothing: once per reason at warning level, and in
        the view for as long as it lasts (a lot or a budget that leaves no size, say, would
        otherwise look like a quoting profile that is merely unlucky)."""
        idle = None
        allowed = trading is not TradingState.HALTED and trading is not TradingState.PAUSED
        if allowed and not decision.quotes.all and decision.reason != "ok":
            idle = decision.reason
        if idle == self.idle_reason:
            return
        if idle is None:
            self._log("info", "quoting_resumed", after=self.idle_reason)
        elif idle not in self._idle_logged:
            self._idle_logged.add(idle)
            self._log("warning", "quoting_nothing", reason=idle, mode=self.mode)
        self.idle_reason = idle

    def _time_left(self, wall: float) -> float:
        # A session end is a calendar time: measured on the wall clock, never the interval one.
        horizon = self._params.horizon
        return 0.0 if horizon is None else time_left(horizon, wall, self.session_end)

    # --- outcomes of the round's actions -----------------------------------------------------

    def plan_round(self, actions: tuple[OrderAction, ...]) -> tuple[Wave, ...]:
        """Order the round's actions into waves; every action of a wave goes out at once.

        ``cancel_first``: the cancels, together with every placement the free balance already
        covers; then the placements that need what the cancels free (or that would cross one
        of the bot's own orders being cancelled). ``place_first``: the placements that fit,
        then the cancels, then the rest, so the book is never empty while the balance allows.
        """
        cancels = tuple(a.client_id for a in actions if isinstance(a, CancelOrder))
        places = tuple(a for a in actions if isinstance(a, PlaceOrder))
        now, later = self._split_by_budget(places, set(cancels))
        waves: tuple[Wave, ...]
        if self.replace_mode == "place_first":
            waves = (Wave(places=now), Wave(cancels=cancels), Wave(places=later))
        else:
            waves = (Wave(cancels=cancels, places=now), Wave(places=later))
        return tuple(w for w in waves if w.cancels or w.places)

    def _split_by_budget(
        self, places: tuple[PlaceOrder, ...], cancelling: set[ClientOrderId]
    ) -> tuple[tuple[PlaceOrder, ...], tuple[PlaceOrder, ...]]:
        """The placements the free balance covers now (in order), and those that must wait."""
        rules = self.rules
        if not places or rules is None or not self.balances_known:
            return places, ()
        inv = self.account.inventory
        free_quote, free_base = inv.quote, inv.base
        lowest_ask = highest_bid = None
        for order in self.open_orders.values():
            if order.side is Side.BUY:
                free_quote -= order.price * order.remaining
                if order.client_id in cancelling and (
                    highest_bid is None or order.price > highest_bid
                ):
                    highest_bid = order.price
            else:
                free_base -= order.remaining
                if order.client_id in cancelling and (
                    lowest_ask is None or order.price < lowest_ask
                ):
                    lowest_ask = order.price
        fee = 1 + max(rules.maker_fee, ZERO)
        now: list[PlaceOrder] = []
        later: list[PlaceOrder] = []
        for place in places:
            intent = place.intent
            if intent.side is Side.BUY:
                need = intent.price * intent.size * fee
                fits = need <= free_quote and (lowest_ask is None or intent.price < lowest_ask)
                if fits:
                    free_quote -= need
            else:
                fits = intent.size <= free_base and (
                    highest_bid is None or intent.price > highest_bid
                )
                if fits:
                    free_base -= intent.size
            (now if fits else later).append(place)
        return tuple(now), tuple(later)

    def request_for(self, intent: OrderIntent) -> OrderRequest:
        """The venue request for ``intent``, with a new client id of this run."""
        return OrderRequest(
            client_id=self.ids.next(),
            side=intent.side,
            price=intent.price,
            size=intent.size,
            post_only=True,
        )

    def placed(
        self, request: OrderRequest, level: int, order: OpenOrder, sent_at: float, wall: float
    ) -> None:
        """The venue accepted ``request`` (sent at interval time ``sent_at``).

        The order's age (renewal) is measured from when it was sent, whatever the venue
        stamped it with.
        """
        self._record(
            OrderOpened(
                request.client_id, request.side, request.price, request.size, wall, "open",
                level, order.venue_id, None,
            )
        )  # fmt: skip
        self.open_orders[order.client_id] = OpenOrder(
            client_id=order.client_id,
            side=order.side,
            price=order.price,
            size=order.size,
            remaining=order.remaining,
            created_at=sent_at,
            venue_id=order.venue_id,
            level=level,
        )
        self.stats.orders_placed += 1
        self.stats.consecutive_errors = 0
        self._log(
            "debug",
            "order_placed",
            side=request.side.value,
            price=str(request.price),
            size=str(request.size),
            client_id=request.client_id,
        )

    def rejected(
        self,
        request: OrderRequest,
        level: int,
        error: OrderRejected | InsufficientFunds,
        wall: float,
    ) -> None:
        """The venue refused ``request`` (post-only cross, funds, a rule): a normal outcome."""
        reason = (
            "post_only"
            if isinstance(error, PostOnlyWouldCross)
            else "funds"
            if isinstance(error, InsufficientFunds)
            else str(error)
        )
        self.stats.orders_rejected += 1
        self.stats.consecutive_errors = 0
        self._record(
            OrderOpened(
                request.client_id, request.side, request.price, request.size, wall,
                "rejected", level, None, reason,
            )
        )  # fmt: skip
        if isinstance(error, PostOnlyWouldCross):
            self._log("debug", "order_rejected", reason="post_only", side=request.side.value)
        elif not isinstance(error, InsufficientFunds):
            self._log("warning", "order_rejected", reason=reason, side=request.side.value)

    def outcome_unknown(self, request: OrderRequest, level: int, wall: float) -> None:
        """A lost answer the lookup could not resolve: the order may rest (the audit cancels
        it if so). The error itself is counted by :meth:`error`."""
        self._record(
            OrderOpened(
                request.client_id, request.side, request.price, request.size, wall,
                "unknown", level, None, "timeout",
            )
        )  # fmt: skip

    def cancelled(self, client_id: ClientOrderId, error: VenueError | None, wall: float) -> None:
        """The outcome of a cancel: done (``None``), gone already (``OrderNotFound``), or
        failed (the order stays tracked and is cancelled again next round)."""
        if error is None:
            self.stats.orders_cancelled += 1
            self._record(OrderStatusChanged(client_id, "cancelled", wall))
            self._log("debug", "order_cancelled", client_id=client_id)
        elif isinstance(error, OrderNotFound):
            # Already gone (filled or expired): a fill event may still be on its way, and
            # moves the order to ``filled`` if so.
            self.stats.cancel_not_found += 1
            self._record(OrderStatusChanged(client_id, "cancelled", wall, reason="gone"))
        else:
            self.error(error)
            return
        self.stats.consecutive_errors = 0
        self.open_orders.pop(client_id, None)

    def stopped_order(self, client_id: ClientOrderId, found: bool, wall: float) -> None:
        """An order cancelled by a stop (``found``: the venue still had it)."""
        if found:
            self.stats.orders_cancelled += 1
            self._record(OrderStatusChanged(client_id, "cancelled", wall, reason="stop"))
        self.open_orders.pop(client_id, None)

    def error(self, exc: VenueError) -> None:
        """A venue request failed (counted by the consecutive-errors rule)."""
        self.stats.venue_errors += 1
        self.stats.consecutive_errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self._log("warning", "venue_error", error=type(exc).__name__, message=str(exc))

    # --- persistence -------------------------------------------------------------------------

    def persist(self, now: float, wall: float) -> None:
        """After a round: the opening (once) and an equity snapshot when one is due."""
        opening = self._opening
        if opening is not None:
            self._opening = None
            self._outbox.append(StoreOpening(opening[0], opening[1], wall))
        mid = self.book.mid if self.book is not None else None
        if mid is not None and mid > 0 and self.equity_timer.take(now):
            inv = self.account.inventory
            self._outbox.append(StoreEquity(wall, inv.equity(mid), mid, inv.base, inv.quote))


def _with_remaining(order: OpenOrder, remaining: Decimal) -> OpenOrder:
    return OpenOrder(
        client_id=order.client_id,
        side=order.side,
        price=order.price,
        size=order.size,
        remaining=remaining,
        created_at=order.created_at,
        venue_id=order.venue_id,
        level=order.level,
    )


def _well_formed(book: Book) -> bool:
    """Every level has a positive finite price and size (an empty side is fine)."""
    return all(
        lv.price.is_finite() and lv.size.is_finite() and lv.price > 0 and lv.size > 0
        for lv in (*book.bids, *book.asks)
    )
