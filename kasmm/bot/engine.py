"""The bot's engine: a synchronous, sans-I/O state machine. Events in, commands out.

Everything that decides lives here: open orders, the account (inventory, PnL), the risk state
and what it tracks, the quoting -> risk gate -> reconciliation pass. The engine never awaits,
never reads a clock (``now`` is the interval clock, ``wall`` the calendar, both passed in) and
never touches a venue or the ledger: it answers with order actions (:meth:`Engine.decide`) and
leaves everything else it wants done (store, log) in its outbox (:meth:`Engine.take`). The
async driver (:mod:`kasmm.bot.driver`) performs both and feeds the outcomes back; a backtest
drives the same engine synchronously (:mod:`kasmm.backtest.driver`).

Rules of the road:

* a fill is acted on only after the driver stored it (:meth:`fill_verdict` first, then
  :meth:`on_fill`);
* order events and trips go to the outbox in the order they happened;
* every method leaves the engine consistent: a crash between two calls loses nothing that was
  stored.
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from kasmm.bot.account import Account, dust_of
from kasmm.bot.commands import (
    Command,
    Job,
    Log,
    StoreDrift,
    StoreEquity,
    StoreKpis,
    StoreOpening,
    StoreTrips,
)
from kasmm.bot.orders import Budget, OwnOrders, Wave
from kasmm.bot.rebalancer import Rebalancer
from kasmm.bot.risk_tracker import LocalDay, RiskTracker, measure
from kasmm.bot.shaping import Shaping
from kasmm.bot.stats import BotStats
from kasmm.bot.timers import Every
from kasmm.bot.transfers import Transfers, book_transfers
from kasmm.config.schema import ModeName, Profile
from kasmm.config.to_core import (
    after_fill_params,
    obligation,
    price_band_params,
    quoting_params,
    rebalance_params,
    reference_params,
    refresh_params,
    risk_limits,
)
from kasmm.core.grid import usable_grid
from kasmm.core.held import held_of
from kasmm.core.ids import ClientIdFactory
from kasmm.core.join import JOIN_BOOK_DEPTH
from kasmm.core.kpis import KpiState, Picture, Snapshot, observe
from kasmm.core.markout import MarkoutParams, MarkoutState
from kasmm.core.obligations import Compliance, breached, record
from kasmm.core.quoting import (
    QUOTING_DEPTH,
    MarketState,
    QuoteDecision,
    compute_quotes,
    exclude_own,
    time_left,
)
from kasmm.core.reconcile import reconcile
from kasmm.core.reference import OWN_BOOK, Observed, Reference, observe_book, resolve
from kasmm.core.risk import RiskInputs, RiskState, TradingState, Trip, evaluate, gate, reset
from kasmm.core.skew import GroupSkew
from kasmm.core.types import (
    ZERO,
    Book,
    ClientOrderId,
    Fill,
    MarketRules,
    OpenOrder,
    OrderAction,
    Side,
)
from kasmm.core.venue_time import VenueClock
from kasmm.core.volatility import VolState, sigma_price, update_vol
from kasmm.errors import (
    VenueError,
)
from kasmm.journal import Restored
from kasmm.obs.money import NumberFormat, plain
from kasmm.store import KpiRecord
from kasmm.store.settlements import SweepRecord

#: How often balances are re-read from the venue (the venue is the truth).
BALANCE_REFRESH_S = 30.0
#: How often an equity snapshot is stored (drawdown peak, daily PnL, reports).
EQUITY_SNAPSHOT_S = 10.0
#: While halted, how often the ledger is checked for an operator's `kasmm reset`.
HALT_CHECK_S = 2.0
#: How many of this run's latest fills the view carries.
RECENT_FILLS = 20
#: How often the venue's open orders are compared with the bot's own view (orders of this
#: profile that rest unknown to the bot are cancelled).
ORDER_AUDIT_S = 10.0


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
        journaled: bool = True,
        log_floor: int = 0,
        markout: MarkoutParams | None = None,
    ) -> None:
        """:param journaled: order events go to the outbox for a ledger (a backtest: no).
        :param log_floor: the lowest log level anyone listens to (structlog's numbers: 10
            debug, 20 info); events below it are not even built (a backtest at ``error``
            would otherwise format every fill and order for nothing).
        :param markout: the markout horizons measured (default 1 s and 10 s)."""
        self.profile = profile
        self.venue_name = venue_name
        self.session_end = session_end
        self.mode: ModeName = profile.mode
        self.stats = BotStats()
        self.account = Account()
        #: Settlement sweeps of the exchange account, booked as transfers (:mod:`.transfers`).
        self.transfers = Transfers()
        self.rules: MarketRules | None = None
        self.book: Book | None = None
        #: ``book.is_crossed`` of that book (the risk inputs of each decision read it).
        self._crossed = False
        self.last_decision: QuoteDecision | None = None
        self.start_mid: Decimal | None = None
        self.start_equity: Decimal | None = None
        self.risk = RiskState()
        self.tracker = RiskTracker()
        #: This run's last fills, newest last (what an operator's console lists).
        self.recent_fills: deque[Fill] = deque(maxlen=RECENT_FILLS)
        #: Quote uptime, own spread and depth over time (:mod:`kasmm.core.kpis`).
        self.kpis = KpiState()
        self._picture = Picture()  # the KPIs' quoting picture, kept until its inputs change
        #: How the own book's mid moved against this run's fills (:mod:`kasmm.core.markout`).
        self.markout = MarkoutState.start(markout)
        #: The profile's market-making obligations and their rolling compliance.
        self.obligation = obligation(profile)
        self.compliance = Compliance()
        self.obligation_breached = False
        #: Seconds the obligations were met / observed since this bot started (cumulative, for
        #: the ledger's per-day figures; the rolling compliance forgets).
        self.obligation_met_s = self.obligation_seen_s = 0.0
        #: Why the last decision quoted nothing while trading was allowed (``None``: it quoted).
        self.idle_reason: str | None = None
        #: The sides whose join found no level beyond ``join_depth`` in the visible book, as
        #: the last decision said (logged when it changes).
        self._join_unmet: tuple[Side, ...] = ()
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
        #: Whether a rule reads the order actions of the last minute (the window is only kept
        #: then: an as2008 path acts on every step, and its window holds every round).
        self._counts_actions = self._limits.max_order_actions_per_minute is not None
        self._vol_halflife = self._params.estimator_halflife_s
        #: What the quotes price off (``reference:``), the latest usable book of each market it
        #: reads, and the last resolution (the view shows which source priced the decision).
        self._reference = reference_params(profile)
        self._observed: dict[str, Observed] = {}
        self.reference: Reference | None = None
        #: A portfolio's position to skew toward (``None``: the profile's own).
        self.group: GroupSkew | None = None
        #: Trips decided outside the profile's rules, by source (``set_external_trip``).
        self._external: dict[str, Trip] = {}
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
        #: This run's orders at the venue and the outcomes of the bot's requests.
        self._info_logs = log_floor <= 20
        self._fmt: tuple[MarketRules, NumberFormat] | None = None
        self.orders = OwnOrders(
            self.ids,
            self.stats,
            self._outbox,
            profile.refresh.replace_mode,
            self.error,
            journaled=journaled,
            debug_logs=log_floor <= 10,
        )
        #: The resting orders (the same dict as ``orders.open_orders``).
        self.open_orders = self.orders.open_orders
        #: Open orders held outside the quotes, by client id, with their role (``hanging``,
        #: ``rebalance``: :mod:`kasmm.core.held`): reconciliation neither keeps nor cancels them,
        #: and they take their side's levels and budget. Only while trading is active.
        self.held: dict[ClientOrderId, str] = {}
        #: The price band, fill cooldown, ping-pong and hanging orders (:mod:`.shaping`).
        self.shaping = Shaping(
            price_band_params(profile),
            after_fill_params(profile),
            self.held,
            self.open_orders,
            self._log,
        )
        #: The inventory rebalance by order (``None``: the profile has no ``rebalance``).
        rebalance = rebalance_params(profile)
        self.rebalancer = (
            None
            if rebalance is None
            else Rebalancer(
                rebalance,
                ids=self.ids,
                orders=self.orders,
                held=self.held,
                outbox=self._outbox,
                journaled=journaled,
            )
        )

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
        out = list(self._outbox)
        self._outbox.clear()  # the same list: OwnOrders appends to it too
        return out

    def _log(self, level: str, event: str, **fields: Any) -> None:
        self._outbox.append(Log(level, event, fields))

    # --- start ------------------------------------------------------------------------------

    def connected(self, rules: MarketRules) -> None:
        """The venue connected; these are its trading rules."""
        self.rules = rules
        self.orders.grid = usable_grid(rules)

    def restored(self, restored: Restored, wall: float) -> None:
        """Resume PnL, the equity peak, the day's start and a halt from the ledger."""
        if restored.day_start_equity is not None:
            self.tracker = RiskTracker(
                day_key=self._day.of(wall), day_start_equity=restored.day_start_equity
            )
        if restored.opening is not None and restored.pnl is not None:
            self.start_mid = restored.opening[1]
            self.account.pnl = restored.pnl
            self.transfers.restored(restored.transfers, restored.opened_at)
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
        if not _well_formed(book, self.book):
            self.stats.bad_books += 1
            if self.stats.bad_books & (self.stats.bad_books - 1) == 0:  # 1st, 2nd, 4th, ...
                self._log("warning", "bad_book_ignored", count=self.stats.bad_books)
            return False
        last = self.book
        previous = last.mid if last is not None else None
        mid = book.mid
        # A different mid is a change (the mid is the top levels'): the levels are compared
        # one by one only when it is the same.
        changed = last is None or mid != previous or not book.same_levels_as(last)
        self.tracker = self.tracker.booked(previous, now, changed)
        self.book = book
        self._crossed = crossed = book.is_crossed
        self.venue_clock = self.venue_clock.observe(book.ts, now)
        self.stats.book_updates += 1
        if mid is None:
            return True
        if now >= self.markout.next_due:  # one float comparison unless a fill's mark is due
            self.markout = self.markout.observe_mid(now, mid)
        # Converted here, once for the event, crossed or not (the as2008 book is locked): the
        # quoting model reads it from the book without our orders (Book.with_levels hands it
        # over), the KPIs and a backtest's meter from this book.
        fmid = book.mid_float
        assert fmid is not None
        if not crossed:
            if self.start_mid is None:
                inv = self.account.inventory
                self.start_mid = mid
                self.account.open_at(mid)
                self._opening = (inv.base, mid)
                self.start_equity = inv.equity(mid)
            if self._vol_halflife is not None:
                self._vol = update_vol(self._vol, fmid, book.ts, self._vol_halflife)
        if self.shaping.averaging and (not crossed or self._params.allow_locked_book):
            # The mid the quotes price off (a locked as2008 book's too): a moving band's average
            self.shaping.on_mid(fmid, now)
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

    def on_fill(self, fill: Fill, now: float | None = None) -> None:
        """Apply a stored fill to the open orders, the inventory and the PnL.

        :param now: the interval clock now, where the fill's markout horizons start (``None``:
            when the book last changed). Only this run's fills are marked out: one from a run
            before (stored late, at a start or a stop) happened too long ago for its horizons.
        """
        order = self.open_orders.get(fill.client_id)  # before a full fill removes it
        self.orders.filled(fill)
        if self.rebalancer is not None:
            self.rebalancer.on_fill(fill)
        self.recent_fills.append(fill)
        self.stats.fills += 1
        self.stats.filled_size += fill.size
        at = now if now is not None else self.tracker.last_book_at
        if at is not None and self.ids.is_this_run(fill.client_id):
            if self.shaping.enabled:
                self.shaping.on_fill(fill, order, at)
            dropped = self.markout.dropped
            self.markout = self.markout.fill(at, fill.side, fill.price, fill.size)
            if self.markout.dropped > dropped and dropped == 0:
                self._log(
                    "warning", "markout_pending_dropped", limit=self.markout.params.max_pending
                )
        assert self.rules is not None
        if not self.account.apply(fill, self.rules.quote):
            # Executed before the balances were last read (reported late, or while the bot was
            # down): the inventory already holds it; only the PnL and the ledger take it.
            self._log("debug", "fill_already_in_balances", trade_id=fill.trade_id)
        if self._info_logs:
            # At the market's precision (never 0E-7 or 28 digits); the ledger keeps them exact.
            fmt = self._number_format()
            self._log(
                "info",
                "fill",
                side=fill.side.value,
                price=fmt.price(fill.price),
                size=fmt.size(fill.size),
                fee=fmt.money(fill.fee) if fill.fee_asset == self.rules.quote else plain(fill.fee),
                fee_asset=fill.fee_asset,
                client_id=fill.client_id,
                trade_id=fill.trade_id,
                inventory=fmt.size(self.account.inventory.base),
            )

    def _number_format(self) -> NumberFormat:
        """How this market's numbers are shown in logs (derived once per set of rules)."""
        rules = self.rules
        assert rules is not None
        cached = self._fmt
        if cached is None or cached[0] is not rules:
            cached = self._fmt = (rules, NumberFormat.for_market(rules.tick, rules.lot))
        return cached[1]

    def on_order_closed(self, client_id: ClientOrderId, reason: str, ts: float) -> None:
        """The venue took an order off the book for another reason than a fill."""
        self.orders.closed(client_id, reason, ts)

    def on_reference(self, key: str, book: Book, received_at: float) -> bool:
        """Record the latest book of a market the profile prices off; False if ignored (not a
        market of its reference, or a book without a usable mid: the source then ages out)."""
        if key not in self._reference.keys:
            return False
        seen = observe_book(book, received_at)
        if seen is None:
            return False
        self._observed[key] = seen
        return True

    @property
    def reference_keys(self) -> tuple[str, ...]:
        """The markets this profile's reference reads (sources and conversions)."""
        return self._reference.keys

    def reference_ages(self, now: float) -> dict[str, float | None]:
        """Seconds since each referenced market's last usable book (``None``: none yet)."""
        observed = self._observed
        return {
            key: (now - observed[key].received_at) if key in observed else None
            for key in self._reference.keys
        }

    def set_group(self, skew: GroupSkew | None) -> None:
        """A portfolio's aggregate position to skew toward (``None``: the profile's own);
        takes effect on the next decision."""
        self.group = skew

    def external_trip(self, trip: Trip | None, source: str) -> None:
        """A trip decided outside the profile's rules (``source``: ``portfolio:<name>``,
        ``hedge``), folded into the risk state on the next decision; ``None`` clears it.

        A pause holds while its source keeps it set (each pause lasts ``trip.pause_s`` and trips
        again if still set when it ends). A halt is taken once: it halts the profile, is stored
        like any halt and holds until an operator's reset; the source sets it again only on a
        new breach, so a reset is not undone by the same one.
        """
        if trip is None:
            self._external.pop(source, None)
        else:
            self._external[source] = trip

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
        self,
        base: Decimal,
        quote: Decimal,
        as_of: float,
        now: float,
        wall: float,
        sweeps: Sequence[SweepRecord] | None = None,
    ) -> None:
        """Balances read from the venue at venue time ``as_of``: adopt them, report drift.

        :param sweeps: the account's settlement sweeps, read from the ledger before the
            balances (``None``: the venue is no exchange account): what they explain is a
            transfer, booked on the next decision, not a drift (:mod:`kasmm.bot.transfers`).
        """
        rules = self.rules
        assert rules is not None
        opened = self.start_mid is not None
        if sweeps is not None:
            inv = self.account.inventory
            inv.base, inv.quote = self.transfers.on_read(
                sweeps,
                (rules.base, rules.quote),
                (inv.base, inv.quote),
                (base, quote),
                dust_of(rules),
                opened,
            )
        for drift in self.account.resync(base, quote, as_of, rules, opened):
            self.stats.balance_drifts += 1
            self._log(
                "warning",
                "balance_drift",
                asset=drift.asset,
                local=str(drift.local),
                at_venue=str(drift.venue),
            )
            self._outbox.append(StoreDrift(wall, drift.asset, drift.local, drift.venue))

    # --- the data path -----------------------------------------------------------------------

    def decide(self, now: float, wall: float) -> tuple[QuoteDecision, tuple[OrderAction, ...]]:
        """One pass of the data path: quotes, risk gate, then the minimal actions.

        Commits the risk state and the trips (to the outbox, before anything else of the round),
        so the same events always give the same decisions.
        """
        assert self.book is not None and self.rules is not None
        if self.transfers.due:
            self._book_transfers(wall)
        # A join (join_depth) walks the book past dust: a bounded depth, not only the touch,
        # and no further than the level the join stops at.
        join_depth = self._params.join_depth
        if join_depth is None:
            others = exclude_own(self.book, self.open_orders.values(), depth=QUOTING_DEPTH)
        else:
            others = exclude_own(
                self.book, self.open_orders.values(), depth=JOIN_BOOK_DEPTH, until=join_depth
            )
        price: Decimal | None = None
        source = OWN_BOOK
        external = self._external_trips(now)
        if self._reference.sources:
            ref = self.reference = resolve(self._reference, self._observed, self.book.mid, now)
            price, source = ref.price, ref.source
            if ref.problem is not None:
                external = (*external, self._reference_trip(ref, now))
        held = self._held_orders() if self.held else ()
        state = MarketState(
            now,
            others,
            self.rules,
            self.account.inventory.balances(self.rules.base, self.rules.quote),
            sigma_price(self._vol),
            self._time_left(wall),
            price,
            source,
            self.group,
            held_of(held, self.held) if held else None,
        )
        decision = compute_quotes(self._params, state)
        if self.shaping.active:
            decision = self.shaping.shape(decision, now)
        risk, trips = evaluate(
            self._limits, self.risk, self._risk_inputs(now, wall, decision, external)
        )
        before = self.risk.trading_state(now)
        trading = before if risk is self.risk else risk.trading_state(now)
        if trips:
            self._on_trips(trips, trading)
        if trading is not before:
            self._log("info", "trading_state_changed", previous=before.value, state=trading.value)
        self.risk = risk
        desired = gate(decision.quotes, trading, decision.excess)
        resting: tuple[OpenOrder, ...] = tuple(self.open_orders.values())
        if held:
            if trading is TradingState.ACTIVE:
                resting = tuple(o for o in resting if o.client_id not in self.held)
            else:
                # Held orders rest only while trading is fully allowed: from here on they are
                # the quotes' orders again, which the gate's empty (or one-sided) quotes cancel.
                self._release_held("trading_" + trading.value)
        actions = reconcile(
            desired,
            resting,
            now,
            self._last_action_at,
            self._refresh,
            self.orders.grid,
        )
        if self.held:  # still held: trading is active
            actions += self.shaping.cancel_moved(decision)
        self.stats.decisions += 1
        self.last_decision = decision
        self._note_idle(decision, trading)
        if decision.join_unmet != self._join_unmet:
            self._note_join(decision.join_unmet)
        if trips:
            # A halt is stored before the cancels go out: it must survive a crash right here.
            self._outbox.append(StoreTrips(trips, trading.value, wall))
        if self.rebalancer is not None:
            actions = self.rebalancer.act(
                now, wall, trading, decision, self._params, state, actions
            )
        if actions:
            self._last_action_at = now
            self.stats.quotes_sent += 1
            if self._counts_actions:
                self.tracker = self.tracker.acted(now, len(actions))
        return decision, actions

    def _book_transfers(self, wall: float) -> None:
        """Book the sweeps the last reads showed, at the book's mid (:func:`.transfers.book`):
        no kill switch trips because KAS left the account."""
        rules, book = self.rules, self.book
        assert rules is not None and book is not None
        mid = book.mid
        if mid is None or not mid.is_finite() or mid <= ZERO:
            return  # no mark yet: they wait for one
        self.tracker, value = book_transfers(
            self.transfers, self.account, self.tracker, rules.base, mid, wall, self._outbox
        )
        if self.start_equity is not None:
            self.start_equity -= value

    def _held_orders(self) -> tuple[OpenOrder, ...]:
        """The held orders still open; ids of closed ones are forgotten."""
        open_orders = self.open_orders
        gone = [cid for cid in self.held if cid not in open_orders]
        for cid in gone:
            del self.held[cid]
        return tuple(open_orders[cid] for cid in self.held)

    def _release_held(self, reason: str) -> None:
        """Hand every held order back to reconciliation (it may cancel or keep them)."""
        self._log("info", "held_orders_released", count=len(self.held), reason=reason)
        self.held.clear()

    def _reference_trip(self, ref: Reference, now: float) -> Trip:
        """The ``reference`` rule's pause for a reference that must not price (stale: none of
        its sources is fresh; deviation: too far from the own mid)."""
        params = self._reference
        if ref.deviation_pct is not None and params.max_deviation_pct is not None:
            value, limit = ref.deviation_pct, params.max_deviation_pct
        else:
            ages = [age for age in self.reference_ages(now).values() if age is not None]
            value, limit = (min(ages) if ages else math.inf), params.max_age_s
        detail = ref.problem or ""
        return Trip("reference", "pause", value, limit, now, detail, params.pause_s)

    def _external_trips(self, now: float) -> tuple[Trip, ...]:
        """The external trips in force; a halt among them is taken once (see
        :meth:`external_trip`)."""
        external = self._external
        if not external:
            return ()
        trips = tuple(external.values())
        for source, trip in list(external.items()):
            if trip.action == "halt":
                del external[source]
        return trips

    def _risk_inputs(
        self, now: float, wall: float, decision: QuoteDecision, external: tuple[Trip, ...] = ()
    ) -> RiskInputs:
        mid = decision.mid if decision.mid is not None else (self.book.mid if self.book else None)
        equity = None
        if mid is not None and mid.is_finite() and mid > ZERO:  # no int to convert
            equity = self.account.inventory.equity(mid)
        measured = measure(
            self.tracker, now, self._day.of(wall), equity, self._limits.max_daily_loss is not None
        )
        self.tracker = t = measured.tracker
        return RiskInputs(
            now=now,
            last_book_ts=t.last_book_at,
            mid=mid,
            previous_mid=t.previous_mid,
            book_crossed=self._crossed and not self._params.allow_locked_book,
            equity=equity,
            peak_equity=t.peak_equity,
            daily_pnl=measured.daily_pnl,
            inventory_excess=decision.excess,
            consecutive_errors=self.stats.consecutive_errors,
            actions_last_minute=measured.actions_last_minute,
            external=external,
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
        quotes = decision.quotes
        if allowed and not (quotes.bids or quotes.asks) and decision.reason != "ok":
            idle = decision.reason
        if idle == self.idle_reason:
            return
        if idle is None:
            self._log("info", "quoting_resumed", after=self.idle_reason)
        elif idle not in self._idle_logged:
            self._idle_logged.add(idle)
            self._log("warning", "quoting_nothing", reason=idle, mode=self.mode)
        self.idle_reason = idle

    def _note_join(self, unmet: tuple[Side, ...]) -> None:
        """Say when a side's join stops finding (or finds again) a level beyond ``join_depth``:
        the side then quotes its model price, unjoined, which an operator tuning the depth
        should know."""
        self._log(
            "info",
            "join_depth_unmet",
            sides=[side.value for side in unmet],
            depth=str(self._params.join_depth),
            levels=JOIN_BOOK_DEPTH,
        )
        self._join_unmet = unmet

    def _time_left(self, wall: float) -> float:
        # A session end is a calendar time: measured on the wall clock, never the interval one.
        horizon = self._params.horizon
        return 0.0 if horizon is None else time_left(horizon, wall, self.session_end)

    def error(self, exc: VenueError) -> None:
        """A venue request failed (counted by the consecutive-errors rule)."""
        self.stats.venue_errors += 1
        self.stats.consecutive_errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self._log("warning", "venue_error", error=type(exc).__name__, message=str(exc))

    # --- a round's order actions --------------------------------------------------------------

    def plan_round(self, actions: tuple[OrderAction, ...]) -> tuple[Wave, ...]:
        """The round's actions in waves that go out together (:meth:`OwnOrders.plan_round`)."""
        rules, inv = self.rules, self.account.inventory
        budget = (
            Budget(inv.base, inv.quote, rules.maker_fee)
            if rules is not None and self.balances_known
            else None
        )
        return self.orders.plan_round(actions, budget)

    # --- persistence -------------------------------------------------------------------------

    def _track_obligation(self, now: float, picture: Snapshot) -> None:
        """Fold the picture into the rolling compliance; log a breach and its end once."""
        spec = self.obligation
        assert spec is not None
        last = self.compliance
        if last.last_at is not None and now > last.last_at:  # as record() books it
            self.obligation_seen_s += now - last.last_at
            if last.last_met:
                self.obligation_met_s += now - last.last_at
        self.compliance = record(last, spec, now, picture)
        was, now_breached = self.obligation_breached, breached(spec, self.compliance)
        if now_breached == was:
            return
        self.obligation_breached = now_breached
        share = self.compliance.share
        self._log(
            "warning" if now_breached else "info",
            "obligation_breached" if now_breached else "obligation_met",
            share_pct=None if share is None else round(share * 100, 2),
            required_pct=round(spec.min_share * 100, 2),
            window_s=spec.window_s,
        )

    def persist(self, now: float, wall: float) -> None:
        """After a round: the KPIs' quoting picture, the opening (once) and an equity snapshot
        when one is due."""
        book = self.book
        picture = self._picture.of(
            self.open_orders.values(),
            book.mid if book else None,
            book.mid_float if book else None,
        )
        self.kpis = observe(self.kpis, now, picture)
        if self.obligation is not None:
            self._track_obligation(now, picture)
        opening = self._opening
        if opening is not None:
            self._opening = None
            self.transfers.since = wall  # older sweeps are the opening inventory's history
            self._outbox.append(StoreOpening(opening[0], opening[1], wall))
        # The timer before the mid's sign (a Decimal comparison): it is due once in 10 s.
        if (
            book is not None
            and self.equity_timer.due(now)
            and (mid := book.mid) is not None
            and mid > ZERO
            and self.equity_timer.take(now)
        ):
            inv = self.account.inventory
            self._outbox.append(StoreEquity(wall, inv.equity(mid), mid, inv.base, inv.quote))
            self._outbox.append(StoreKpis(self._kpi_record(wall)))

    def _kpi_record(self, wall: float) -> KpiRecord:
        """This run's cumulative KPI counters (:mod:`kasmm.store.kpis`)."""
        k, stats, spec = self.kpis, self.stats, self.obligation
        d05, d1, d2 = k.depth_s
        return KpiRecord(
            ts=wall,
            run_id=self.ids.run_tag,
            total_s=k.total_s,
            both_s=k.both_s,
            bid_s=k.bid_s,
            ask_s=k.ask_s,
            spread_bps_s=k.spread_bps_s,
            depth_s=(d05, d1, d2),
            placed_size=float(stats.placed_size),
            filled_size=float(stats.filled_size),
            order_actions=stats.orders_placed + stats.orders_cancelled,
            fills=stats.fills,
            met_s=None if spec is None else self.obligation_met_s,
            observed_s=None if spec is None else self.obligation_seen_s,
            required=None if spec is None else spec.min_share,
            breached=None if spec is None else self.obligation_breached,
            markouts=self.markout.horizons,
        )


def _well_formed(book: Book, accepted: Book | None = None) -> bool:
    """Every level has a positive finite price and size (an empty side is fine).

    A bad level anywhere rejects the book. Each level checked itself when it was made
    (:attr:`BookLevel.well_formed`), so this reads one flag a level, and skips a side that is
    the very tuple of ``accepted`` (the last book that passed).
    """
    for levels in (book.bids, book.asks):
        if accepted is not None and (levels is accepted.bids or levels is accepted.asks):
            continue
        for lv in levels:
            if not lv.well_formed:
                return False
    return True
