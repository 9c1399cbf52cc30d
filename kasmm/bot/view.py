"""The one read-only view of a bot: what metrics, status, the backtest and ``kasmm run`` read.

:meth:`kasmm.bot.Bot.view` builds a :class:`BotView` from the engine's state in one go; every
value in it is frozen (or a fresh copy), so a reader can keep it, hand it to another thread or
render it later without ever seeing the bot change underneath. Nothing outside ``kasmm.bot``
reads the bot's internals (the state an operator sees combines this view with the supervisor's
own: :func:`kasmm.supervisor.state.displayed_state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING

from kasmm.bot.rebalancer import RebalanceStatus
from kasmm.bot.shaping import ShapingStatus
from kasmm.bot.stats import BotState, BotStats
from kasmm.bot.transfers import TransferStatus
from kasmm.core.kpis import Kpis, summarize
from kasmm.core.markout import HorizonMarkout
from kasmm.core.pnl import PnlParts, PnlState
from kasmm.core.quoting import QuoteDecision
from kasmm.core.risk import TradingState
from kasmm.core.skew import GroupSkew
from kasmm.core.types import Fill, OpenOrder, Side

# (Mapping above is a run-time import: mypyc resolves dataclass annotations in this namespace.)
if TYPE_CHECKING:
    from kasmm.bot.engine import Engine


@dataclass(frozen=True, slots=True)
class Counters:
    """The bot's counters at the time of the view (a frozen copy of :class:`BotStats`)."""

    decisions: int
    quotes_sent: int
    orders_placed: int
    orders_cancelled: int
    orders_rejected: int
    cancel_not_found: int
    venue_errors: int
    kill_switch_trips: int
    balance_drifts: int
    trips_by_rule: Mapping[str, int]
    consecutive_errors: int
    book_updates: int
    bad_books: int
    untracked_cancelled: int
    last_error: str | None

    @classmethod
    def of(cls, stats: BotStats) -> Counters:
        """Copy ``stats`` (field by field: this runs on every backtest event)."""
        return cls(
            stats.decisions,
            stats.quotes_sent,
            stats.orders_placed,
            stats.orders_cancelled,
            stats.orders_rejected,
            stats.cancel_not_found,
            stats.venue_errors,
            stats.kill_switch_trips,
            stats.balance_drifts,
            MappingProxyType(dict(stats.trips_by_rule)),
            stats.consecutive_errors,
            stats.book_updates,
            stats.bad_books,
            stats.untracked_cancelled,
            stats.last_error,
        )


@dataclass(frozen=True, slots=True)
class Engaged:
    """A kill-switch rule in force, and why."""

    rule: str
    action: str
    why: str


@dataclass(frozen=True, slots=True)
class ObligationStatus:
    """How the profile meets its market-making obligations over the rolling window."""

    #: The share of the window's observed time the obligation held (``None``: no time yet).
    share: float | None
    required: float
    window_s: float
    observed_s: float
    #: Below the required share over a whole window.
    breached: bool


@dataclass(frozen=True, slots=True)
class ReferenceStatus:
    """What the profile's quotes price off (``reference:``), as of its last decision."""

    #: The reference price (``None``: stale or too far from the own mid: quoting pauses).
    price: Decimal | None
    #: Which source priced it (``mexc:KAS/USDT``, ``median(...)``, ``own_book (...)``).
    source: str
    #: ``reference_stale`` / ``reference_deviation`` while it pauses quoting, else ``None``.
    problem: str | None
    #: How far it is from the own mid, percent.
    deviation_pct: float | None
    #: Seconds since each referenced market's last usable book (``None``: none yet).
    ages_s: tuple[tuple[str, float | None], ...]


@dataclass(frozen=True, slots=True)
class BotView:
    """A bot at one instant, as plain frozen values."""

    profile: str
    venue: str
    symbol: str
    base: str
    quote: str
    state: BotState
    mode: str
    trading_state: TradingState
    #: The rules in force (a halt, a pause, reduce-only rules), each with its numbers.
    engaged: tuple[Engaged, ...]
    #: Why nothing is quoted although trading is allowed (``no_size``, ``no_mid``, ...).
    idle_reason: str | None
    best_bid: Decimal | None
    best_ask: Decimal | None
    mid: Decimal | None
    #: Seconds since the last well-formed book (interval clock), ``None`` before any.
    book_age_s: float | None
    #: The quoting core's last answer (spread, skew, inventory share, reason).
    decision: QuoteDecision | None
    bids: tuple[OpenOrder, ...]
    asks: tuple[OpenOrder, ...]
    inventory_base: Decimal
    inventory_quote: Decimal
    #: Quote + base at the mid (``None`` without a usable mid).
    equity: Decimal | None
    peak_equity: Decimal | None
    #: The mark accounting opened at (PnL's reference when there is no mid).
    start_mid: Decimal | None
    pnl: PnlState
    counters: Counters
    orders_left: int
    #: Whether the account has balances (False on the as2008 exact model).
    balances_known: bool
    #: Kill-switch rules configured for the profile (so a reader can show zero counts).
    configured_rules: tuple[str, ...]
    #: The base share quoting aims at (``None``: a base target, or the as2008 model).
    target_share: float | None
    #: The market's price tick and size lot (``None`` before the venue connected): what
    #: readers round prices and sizes to.
    tick: Decimal | None = None
    lot: Decimal | None = None
    #: Market-making KPIs since the bot started (uptime, own spread, depth, fill ratio).
    kpis: Kpis | None = None
    #: The profile's obligations and their compliance (``None``: the profile has none).
    obligation: ObligationStatus | None = None
    #: This run's latest fills, newest last.
    recent_fills: tuple[Fill, ...] = ()
    #: Markout of this run's fills per horizon, shortest first (:mod:`kasmm.core.markout`).
    markout: tuple[HorizonMarkout, ...] = ()
    #: The reference price (``None``: the profile prices off its own book).
    reference: ReferenceStatus | None = None
    #: The portfolio position the quotes skew toward (``None``: the profile's own).
    group_skew: GroupSkew | None = None
    #: Hanging orders, each side's fill cooldown, the ping-pong balance and the price band
    #: (``None``: none of those settings is on).
    shaping: ShapingStatus | None = None
    #: Rebalance orders sent and the latest (``None``: the profile has no ``rebalance``).
    rebalance: RebalanceStatus | None = None
    #: Settlement sweeps of the account booked as transfers and those expected (``None``:
    #: none ever, as on a sim or paper venue).
    transfers: TransferStatus | None = None

    @property
    def mark(self) -> Decimal:
        """What open positions are valued at: the mid, else the opening mark, else zero."""
        if self.mid is not None and self.mid.is_finite():
            return self.mid
        return self.start_mid if self.start_mid is not None else Decimal(0)

    @property
    def realized_pnl(self) -> Decimal:
        """Realized PnL (average cost, before fees)."""
        return self.pnl.realized

    @property
    def unrealized_pnl(self) -> Decimal:
        """PnL of the open position at :attr:`mark`."""
        return self.pnl.unrealized(self.mark)

    @property
    def net_pnl(self) -> Decimal:
        """Realized + unrealized - fees."""
        return self.pnl.net(self.mark)

    @property
    def pnl_parts(self) -> PnlParts:
        """The PnL at :attr:`mark` split into spread capture, revaluation, fees, and the hold
        benchmark (see :class:`~kasmm.core.pnl.PnlParts`)."""
        return self.pnl.parts(self.mark)

    @property
    def drawdown(self) -> Decimal | None:
        """Peak equity minus equity."""
        if self.equity is None or self.peak_equity is None:
            return None
        return self.peak_equity - self.equity

    @property
    def open_orders(self) -> int:
        """Orders resting at the venue."""
        return len(self.bids) + len(self.asks)

    @property
    def spread_bps(self) -> float | None:
        """The level-0 spread the quoting core asked for, in bps of the mid."""
        return self.decision.spread_bps if self.decision is not None else None

    @property
    def halt_reason(self) -> str | None:
        """The halting rule and its numbers (``max_drawdown: 6 > 5``)."""
        halt = next((e for e in self.engaged if e.action == "halt"), None)
        return None if halt is None else f"{halt.rule}: {halt.why}"


@dataclass(frozen=True, slots=True, init=False)
class Marks:
    """The few numbers a backtest samples after every event (a whole :class:`BotView` per
    event would cost more than the decision it follows)."""

    mid: Decimal | None
    #: The bot's best resting bid and ask.
    own_bid: Decimal | None
    own_ask: Decimal | None
    pnl: PnlState
    #: ``float(mid)`` (``None`` without a mid, or when the caller did not have it): the book's,
    #: converted once for the event (``Book.mid_float``).
    mid_float: float | None = None

    def __init__(
        self,
        mid: Decimal | None,
        own_bid: Decimal | None,
        own_ask: Decimal | None,
        pnl: PnlState,
        mid_float: float | None = None,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "mid", mid)
        object.__setattr__(self, "own_bid", own_bid)
        object.__setattr__(self, "own_ask", own_ask)
        object.__setattr__(self, "pnl", pnl)
        object.__setattr__(self, "mid_float", mid_float)


def marks(engine: Engine) -> Marks:
    """The :class:`Marks` of ``engine`` now."""
    book = engine.book
    bid: OpenOrder | None = None
    ask: OpenOrder | None = None
    for order in engine.open_orders.values():
        if order.side is Side.BUY:
            if bid is None or _above(order, bid):
                bid = order
        elif ask is None or _above(ask, order):
            ask = order
    return Marks(
        book.mid if book is not None else None,
        bid.price if bid is not None else None,
        ask.price if ask is not None else None,
        engine.account.pnl,
        book.mid_float if book is not None else None,
    )


def _above(a: OpenOrder, b: OpenOrder) -> bool:
    """``a.price > b.price``, in ticks when both are on the same grid (``price`` is ``ticks``
    times its positive tick there: the same order, without a ``Decimal`` comparison per order
    and event)."""
    if a.grid is not None and a.grid is b.grid and a.ticks >= 0 and b.ticks >= 0:
        return a.ticks > b.ticks
    return a.price > b.price


def build_view(engine: Engine, state: BotState, now: float, orders_left: int) -> BotView:
    """The view of ``engine`` at interval-clock time ``now``."""
    book = engine.book
    risk = engine.risk
    mid = book.mid if book is not None else None
    inv = engine.account.inventory
    equity = inv.equity(mid) if mid is not None and mid.is_finite() and mid > 0 else None
    engaged: list[Engaged] = []
    if risk.halt is not None:
        h = risk.halt
        engaged.append(Engaged(h.rule, "halt", f"{h.value:g} > {h.limit:g}"))
    elif now < risk.paused_until and risk.pause_trip is not None:
        p = risk.pause_trip
        left = risk.paused_until - now
        engaged.append(Engaged(p.rule, "pause", f"{p.value:g} > {p.limit:g}, {left:.0f} s left"))
    engaged.extend(Engaged(r, "reduce_only", "condition holds") for r in sorted(risk.reduce_only))
    orders = tuple(engine.open_orders.values())
    last_book_at = engine.tracker.last_book_at
    rules = engine.rules
    base, _, quote = engine.profile.symbol.partition("/")
    return BotView(
        profile=engine.profile.name,
        venue=engine.venue_name,
        symbol=engine.profile.symbol,
        base=rules.base if rules is not None else base,
        quote=rules.quote if rules is not None else quote,
        state=state,
        mode=engine.mode,
        trading_state=risk.trading_state(now),
        engaged=tuple(engaged),
        idle_reason=engine.idle_reason,
        best_bid=book.best_bid if book is not None else None,
        best_ask=book.best_ask if book is not None else None,
        mid=mid,
        book_age_s=None if last_book_at is None else now - last_book_at,
        decision=engine.last_decision,
        bids=tuple(sorted((o for o in orders if o.side is Side.BUY), key=lambda o: -o.price)),
        asks=tuple(sorted((o for o in orders if o.side is Side.SELL), key=lambda o: o.price)),
        inventory_base=inv.base,
        inventory_quote=inv.quote,
        equity=equity,
        peak_equity=engine.tracker.peak_equity,
        start_mid=engine.start_mid,
        pnl=engine.account.pnl,
        counters=Counters.of(engine.stats),
        orders_left=orders_left,
        balances_known=engine.balances_known,
        configured_rules=engine.configured_rules,
        target_share=engine.target_share,
        tick=rules.tick if rules is not None else None,
        lot=rules.lot if rules is not None else None,
        recent_fills=tuple(engine.recent_fills),
        markout=engine.markout.horizons,
        reference=_reference_status(engine, now),
        group_skew=engine.group,
        shaping=engine.shaping.status(now),
        rebalance=None if engine.rebalancer is None else engine.rebalancer.status(),
        transfers=engine.transfers.status(),
        obligation=(
            None
            if engine.obligation is None
            else ObligationStatus(
                engine.compliance.share,
                engine.obligation.min_share,
                engine.obligation.window_s,
                engine.compliance.observed_s,
                engine.obligation_breached,
            )
        ),
        kpis=summarize(
            engine.kpis,
            placed_size=engine.stats.placed_size,
            filled_size=engine.stats.filled_size,
            order_actions=engine.stats.orders_placed + engine.stats.orders_cancelled,
            fills=engine.stats.fills,
        ),
    )


def _reference_status(engine: Engine, now: float) -> ReferenceStatus | None:
    keys = engine.reference_keys
    if not keys:
        return None
    ref = engine.reference
    ages = tuple(engine.reference_ages(now).items())
    if ref is None:  # no decision yet
        return ReferenceStatus(None, "none", None, None, ages)
    return ReferenceStatus(ref.price, ref.source, ref.problem, ref.deviation_pct, ages)
