"""The risk gate: pure kill-switch evaluation and quote gating between quoting and the venue.

Every event the bot sees produces a :class:`RiskInputs`; :func:`evaluate` folds it into the
profile's :class:`RiskState` and returns the trips it caused; :func:`gate` then filters the
quoting core's desired quotes by the resulting :class:`TradingState`:

* ``ACTIVE``: quotes pass unchanged.
* ``REDUCE_ONLY``: only the side that moves inventory back toward target is quoted, and only
  as many of its levels as it takes to cover the excess.
* ``PAUSED``: no quotes (orders cancelled) until ``paused_until``; then rules are re-checked.
* ``HALTED``: no quotes, orders cancelled, until an operator resets it (persisted by the bot).

The rules come as a frozen :class:`RiskLimits` (one value per kill-switch rule, ``None`` = off),
built from the profile by :func:`kasmm.config.to_core.risk_limits`.

Thresholds are maxima: a rule trips when its value goes *beyond* the limit (``>``), never when
it merely reaches it. The same event can trip several rules; the strongest action wins
(halt > pause > reduce_only). ``reduce_only`` lasts while its condition holds; ``pause`` lasts
``pause_s`` and trips again if the condition still holds when it ends.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Final, Literal

from kasmm.core.skew import Excess
from kasmm.core.types import ZERO, OrderIntent, Quotes

KillAction = Literal["halt", "pause", "reduce_only"]


class TradingState(enum.StrEnum):
    """What the risk gate lets through."""

    ACTIVE = "active"
    REDUCE_ONLY = "reduce_only"
    PAUSED = "paused"
    HALTED = "halted"


_STRENGTH = {"reduce_only": 1, "pause": 2, "halt": 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit:
    """What every rule has: the action it takes, and for ``pause`` how long (seconds)."""

    action: KillAction
    pause_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DrawdownLimit(Limit):
    """Equity below its running peak by more than ``quote`` or ``pct`` percent of the peak."""

    quote: Decimal | None = None
    pct: float | None = None
    #: ``Decimal(pct)``: the same number exactly (a float is a binary fraction), derived once
    #: for the exact comparison against it (:func:`_within_float`).
    pct_exact: Decimal | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pct is not None:
            object.__setattr__(self, "pct_exact", Decimal(self.pct))


@dataclass(frozen=True, slots=True, kw_only=True)
class DailyLossLimit(Limit):
    """Today's PnL below ``-quote`` (the bot takes "today" in ``timezone``)."""

    quote: Decimal
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryDeviationLimit(Limit):
    """Inventory beyond target by more than ``share`` of portfolio value."""

    share: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StaleBookLimit(Limit):
    """No book for more than ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MidJumpLimit(Limit):
    """The mid moving more than ``pct`` percent in one update (or a crossed book)."""

    pct: float
    #: ``Decimal(pct)``, exactly (see :attr:`DrawdownLimit.pct_exact`).
    pct_exact: Decimal = field(default=ZERO, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pct_exact", Decimal(self.pct))


@dataclass(frozen=True, slots=True, kw_only=True)
class CountLimit(Limit):
    """A count beyond ``count``."""

    count: int


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The kill-switch rules of one profile, each ``None`` when off."""

    max_drawdown: DrawdownLimit | None = None
    max_daily_loss: DailyLossLimit | None = None
    max_inventory_deviation: InventoryDeviationLimit | None = None
    stale_book: StaleBookLimit | None = None
    mid_jump: MidJumpLimit | None = None
    max_consecutive_errors: CountLimit | None = None
    max_order_actions_per_minute: CountLimit | None = None
    #: False when the account has no capital to take a percentage of (the as2008 trader
    #: starts flat, so equity is its PnL, and cash may go negative): the percentage drawdown
    #: and the inventory deviation (a share of capital) do not apply there.
    has_capital: bool = True


@dataclass(frozen=True, slots=True)
class Trip:
    """One rule tripping: which, what it does, and the numbers that tripped it."""

    rule: str
    action: KillAction
    value: float
    limit: float
    ts: float
    detail: str = ""
    #: For a trip decided outside the profile's own rules (``RiskInputs.external``): how long
    #: its pause lasts. ``None``: the profile's rule of that name says (``pause_s``).
    pause_s: float | None = None


@dataclass(frozen=True, slots=True, init=False)
class RiskInputs:
    """What the rules look at, gathered by the bot on each event (``None`` = unknown)."""

    now: float
    last_book_ts: float | None = None
    mid: Decimal | None = None
    previous_mid: Decimal | None = None
    book_crossed: bool = False
    equity: Decimal | None = None
    peak_equity: Decimal | None = None
    daily_pnl: Decimal | None = None
    #: inventory beyond target (:func:`kasmm.core.skew.inventory_at`), the same value the
    #: reduce-only gate reads; its ``share`` is what ``max_inventory_deviation`` limits
    inventory_excess: Excess | None = None
    consecutive_errors: int = 0
    actions_last_minute: int = 0
    #: trips decided outside the profile's rules, in force now (a stale or wild reference
    #: price, a portfolio's group rule, the hedge residual): they act like the profile's own
    external: tuple[Trip, ...] = ()

    def __init__(
        self,
        now: float,
        last_book_ts: float | None = None,
        mid: Decimal | None = None,
        previous_mid: Decimal | None = None,
        book_crossed: bool = False,
        equity: Decimal | None = None,
        peak_equity: Decimal | None = None,
        daily_pnl: Decimal | None = None,
        inventory_excess: Excess | None = None,
        consecutive_errors: int = 0,
        actions_last_minute: int = 0,
        external: tuple[Trip, ...] = (),
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "now", now)
        object.__setattr__(self, "last_book_ts", last_book_ts)
        object.__setattr__(self, "mid", mid)
        object.__setattr__(self, "previous_mid", previous_mid)
        object.__setattr__(self, "book_crossed", book_crossed)
        object.__setattr__(self, "equity", equity)
        object.__setattr__(self, "peak_equity", peak_equity)
        object.__setattr__(self, "daily_pnl", daily_pnl)
        object.__setattr__(self, "inventory_excess", inventory_excess)
        object.__setattr__(self, "consecutive_errors", consecutive_errors)
        object.__setattr__(self, "actions_last_minute", actions_last_minute)
        object.__setattr__(self, "external", external)


@dataclass(frozen=True, slots=True)
class RiskState:
    """The gate's state. ``halt`` is set by a halt trip and cleared only by :func:`reset`."""

    halt: Trip | None = None
    paused_until: float = -math.inf
    pause_trip: Trip | None = None
    reduce_only: frozenset[str] = field(default_factory=frozenset)

    def trading_state(self, now: float) -> TradingState:
        """The state in force at ``now``."""
        if self.halt is not None:
            return TradingState.HALTED
        if now < self.paused_until:
            return TradingState.PAUSED
        if self.reduce_only:
            return TradingState.REDUCE_ONLY
        return TradingState.ACTIVE


def _check(
    rule: Limit | None,
    name: str,
    value: float | None,
    limit: float,
    now: float,
    detail: str = "",
) -> Trip | None:
    # NaN never trips (unknown is not a breach); +inf does (e.g. no book ever arrived).
    if rule is None or value is None or math.isnan(value) or not value > limit:
        return None
    return Trip(rule=name, action=rule.action, value=value, limit=limit, ts=now, detail=detail)


def _within(value: Decimal, limit: Decimal) -> bool:
    """``value <= limit``: then ``float(value) > float(limit)`` cannot hold either (``float()``
    rounds monotonically), so a rule that compares the two as floats (:func:`_check`) does not
    trip, and the two float conversions (each through the number's string) can be skipped.
    False for a NaN ``value`` (unordered): :func:`_check` decides it. ``limit`` is a number (a
    profile's limits are validated finite)."""
    return not value.is_nan() and value <= limit


def _within_float(value: Decimal, limit: float, exact: Decimal) -> bool:
    """:func:`_within` against a float ``limit``, compared exactly (``exact``:
    ``Decimal(limit)``)."""
    if math.isnan(limit):  # nothing exceeds it: _check says so
        return False
    return _within(value, exact)


def _far_below_pct(part: Decimal, whole: Decimal, pct: float) -> bool:
    """``100 * |part / whole|`` is below half of ``pct`` by the numbers' exponents alone.

    ``adjusted()`` is the exponent of a number's leading digit, so ``|part| < 10 **
    (adjusted(part) + 1)`` and ``|whole| >= 10 ** adjusted(whole)``: the percentage is below
    ``10 ** m`` with ``m = adjusted(part) - adjusted(whole) + 3``, which this requires to be at
    most ``pct / 2``. Rounding a 28-digit quotient (or ``q - 1`` of a ratio ``q`` near 1: an
    error of about ``1e-25`` percent in the default context) moves a figure by far less than
    that margin, so the ``Decimal`` percentage a rule computes is within ``pct`` too and its
    division can be skipped: a mid that moved a tick or a step, a drawdown of a fraction of the
    limit. False when it cannot tell (zero, not finite, a limit that is not a finite number
    well above that rounding): the caller computes exactly. ``tests/unit/test_risk.py`` holds
    the trips to converting every figure.
    """
    if not (part and part.is_finite() and whole and whole.is_finite() and 1e-15 < pct < math.inf):
        return False
    m = part.adjusted() - whole.adjusted() + 3
    # _POWERS_OF_TEN[i] is 10.0 ** (i - 40), within an ulp: the factor 2 covers that too.
    return -40 <= m <= 40 and 2 * _POWERS_OF_TEN[m + 40] <= pct


_POWERS_OF_TEN: Final[tuple[float, ...]] = tuple(10.0**k for k in range(-40, 41))


def breaches(rules: RiskLimits, inputs: RiskInputs) -> list[Trip]:
    """Every rule whose condition holds for ``inputs`` (pure; no state).

    A ``Decimal`` figure is converted to a float for :func:`_check` only when it exceeds its
    limit exactly (:func:`_within`): below that its float cannot exceed the limit either, so
    the trips are the same as converting every figure, at a fraction of the cost
    (``tests/unit/test_risk.py`` checks both on figures around each limit).
    """
    now = inputs.now
    out: list[Trip] = []
    dd = rules.max_drawdown
    if dd is not None and inputs.equity is not None and inputs.peak_equity is not None:
        drop = inputs.peak_equity - inputs.equity
        if dd.quote is not None and not _within(drop, dd.quote):
            _add(out, _check(dd, "max_drawdown", float(drop), float(dd.quote), now, "quote"))
        if (
            dd.pct is not None
            and rules.has_capital
            and inputs.peak_equity > ZERO
            and not _far_below_pct(drop, inputs.peak_equity, dd.pct)
        ):
            ratio = drop / inputs.peak_equity * 100
            assert dd.pct_exact is not None  # set with pct
            if not _within_float(ratio, dd.pct, dd.pct_exact):
                _add(out, _check(dd, "max_drawdown", float(ratio), dd.pct, now, "pct"))
    loss = rules.max_daily_loss
    if loss is not None and inputs.daily_pnl is not None:
        lost = -inputs.daily_pnl
        if not _within(lost, loss.quote):
            _add(out, _check(loss, "max_daily_loss", float(lost), float(loss.quote), now))
    inv, excess = rules.max_inventory_deviation, inputs.inventory_excess
    # A share of capital means nothing without capital (as2008: cash may go negative).
    # Each ``value > limit`` below is _check's own condition, asked first: most decisions trip
    # nothing, and the call would box its float arguments.
    if inv is not None and excess is not None and excess.share is not None and rules.has_capital:
        deviation = abs(excess.share)
        if deviation > inv.share:
            _add(out, _check(inv, "max_inventory_deviation", deviation, inv.share, now))
    stale = rules.stale_book
    if stale is not None:
        age = math.inf if inputs.last_book_ts is None else now - inputs.last_book_ts
        if age > stale.seconds:
            _add(out, _check(stale, "stale_book", age, stale.seconds, now))
    jump = rules.mid_jump
    if jump is not None:
        if inputs.book_crossed:
            out.append(Trip("mid_jump", jump.action, math.inf, jump.pct, now, "crossed book"))
        elif (
            inputs.mid is not None
            and inputs.previous_mid is not None
            and inputs.previous_mid
            # An unchanged mid (most books) moved exactly 0, within any limit but a NaN or a
            # negative one: no need to divide it out.
            and (inputs.mid != inputs.previous_mid or not jump.pct >= 0.0)
            # A move of a tick or so is far within the limit: no division either.
            and not _far_below_pct(inputs.mid - inputs.previous_mid, inputs.previous_mid, jump.pct)
        ):
            # In Decimal: a float ratio would put 100 -> 102 a hair beyond a 2 % limit.
            moved = abs(inputs.mid / inputs.previous_mid - 1) * 100
            if not _within_float(moved, jump.pct, jump.pct_exact):
                _add(out, _check(jump, "mid_jump", float(moved), jump.pct, now))
    errors = rules.max_consecutive_errors
    if errors is not None and inputs.consecutive_errors > errors.count:
        _add(
            out,
            _check(errors, "max_consecutive_errors", inputs.consecutive_errors, errors.count, now),
        )
    rate = rules.max_order_actions_per_minute
    if rate is not None and inputs.actions_last_minute > rate.count:
        _add(
            out,
            _check(
                rate, "max_order_actions_per_minute", inputs.actions_last_minute, rate.count, now
            ),
        )
    if inputs.external:
        out.extend(inputs.external)
    return out


def _add(out: list[Trip], trip: Trip | None) -> None:
    if trip is not None:
        out.append(trip)


def _pause_s(rules: RiskLimits, trip: Trip) -> float:
    if trip.pause_s is not None:
        return trip.pause_s
    rule: Limit | None = getattr(rules, trip.rule, None)
    return float(rule.pause_s) if rule is not None and rule.pause_s is not None else 0.0


def evaluate(
    rules: RiskLimits, state: RiskState, inputs: RiskInputs
) -> tuple[RiskState, tuple[Trip, ...]]:
    """Apply every rule to ``inputs``; return the new state and the trips that changed it.

    A rule already in force (an active pause, a held reduce-only, a halt) does not trip again
    on every event: only transitions are reported, so each trip is logged and stored once.
    """
    now = inputs.now
    if state.halt is not None:
        return state, ()
    found = breaches(rules, inputs)
    if not found and not state.reduce_only:
        return state, ()  # what the general path below builds: the same state, no trips
    new_trips: list[Trip] = []
    halt = next((t for t in found if t.action == "halt"), None)
    if halt is not None:
        return replace(state, halt=halt, reduce_only=frozenset()), (halt,)
    paused_until, pause_trip = state.paused_until, state.pause_trip
    if now >= paused_until:
        pauses = [t for t in found if t.action == "pause"]
        if pauses:
            longest = max(pauses, key=lambda t: _pause_s(rules, t))
            paused_until = now + _pause_s(rules, longest)
            pause_trip = longest
            new_trips.append(longest)
    reducing = frozenset(t.rule for t in found if t.action == "reduce_only")
    new_trips.extend(
        t for t in found if t.action == "reduce_only" and t.rule not in state.reduce_only
    )
    return (
        RiskState(
            halt=None, paused_until=paused_until, pause_trip=pause_trip, reduce_only=reducing
        ),
        tuple(new_trips),
    )


def reset(state: RiskState) -> RiskState:
    """Operator reset: clear a halt (and any pause); rules are re-checked on the next event."""
    return RiskState()


def gate(quotes: Quotes, trading: TradingState, inventory_excess: Excess | None) -> Quotes:
    """Filter desired quotes by the trading state.

    :param inventory_excess: inventory beyond target, as the quoting core measured it
        (:attr:`kasmm.core.quoting.QuoteDecision.excess`): long means only asks reduce it,
        short only bids; on target or unknown, reduce-only quotes nothing.
    """
    if trading is TradingState.ACTIVE:
        return quotes
    if trading is TradingState.REDUCE_ONLY and inventory_excess is not None:
        if inventory_excess.sign > 0:
            return Quotes(bids=(), asks=_covering(quotes.asks, inventory_excess.base))
        if inventory_excess.sign < 0:
            return Quotes(bids=_covering(quotes.bids, -inventory_excess.base), asks=())
    return Quotes()


def _covering(orders: tuple[OrderIntent, ...], excess: Decimal) -> tuple[OrderIntent, ...]:
    """The best levels up to the first whose cumulative size covers ``excess``.

    Reduce-only must not become a position the other way: deeper levels that only fill once
    the excess is gone are dropped. The last level kept may overshoot by less than its size
    (sizes are the quoting core's, on the lot grid; trimming one would need the market rules).
    """
    kept: list[OrderIntent] = []
    committed = Decimal(0)
    for order in orders:
        if committed >= excess:
            break
        kept.append(order)
        committed += order.size
    return tuple(kept)


def strongest(trips: tuple[Trip, ...]) -> Trip | None:
    """The trip with the strongest action (for a one-line summary)."""
    return max(trips, key=lambda t: _STRENGTH[t.action], default=None)
