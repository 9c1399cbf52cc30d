"""A portfolio: several profiles holding one base asset, measured and risked as one book.

Pure: frozen values in, frozen values out, no clock (``now`` and the local ``day`` are
arguments). From each member's :class:`MemberSnapshot` (its balances, its own mid, its PnL)
:func:`aggregate` computes the group's inventory, value and equity, its deviation from the
group's target on the scale of :func:`kasmm.core.skew.deviation` and its excess base, which
:func:`member_skew` hands every member (a group long overall makes every member lean to sell,
even one that is short on its own). :func:`evaluate_group` folds the group's kill-switch rules
into a :class:`~kasmm.core.risk.RiskState` of the group, whose trip each member receives
(:func:`member_trip`).

Valuation: each member's base at its own mid (the venues' mids differ a little; each member's
equity is what it could realise where it trades), every member's quote added as is, which is
why a group has one quote asset. A member without a mid yet is valued at the group's mark (the
other members' mean mid): its base exists whether or not its book has arrived, and leaving it
out would look like a sudden loss of equity to the drawdown rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from kasmm.core.risk import (
    DailyLossLimit,
    DrawdownLimit,
    KillAction,
    Limit,
    RiskInputs,
    RiskLimits,
    RiskState,
    Trip,
    breaches,
)
from kasmm.core.skew import GroupSkew, deviation
from kasmm.core.types import ZERO

__all__ = [
    "RULE_PREFIX",
    "BaseExposureLimit",
    "GroupAggregate",
    "GroupLimits",
    "GroupSpec",
    "GroupTracker",
    "MemberSnapshot",
    "MemberTransfer",
    "aggregate",
    "evaluate_group",
    "group_breaches",
    "group_trading_state",
    "member_skew",
    "member_trip",
    "restored_tracker",
    "snapshots_of",
    "tracked",
]

#: Every group rule's name starts with it (``portfolio_max_drawdown``): a member's halt of such
#: a rule came from its portfolio.
RULE_PREFIX = "portfolio_"


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseExposureLimit:
    """The group's total base beyond ``base``, or beyond its target by more than
    ``beyond_target`` (either way).

    The fields of :class:`kasmm.core.risk.Limit` written out rather than inherited: ``risk`` is
    compiled in the native build, and an interpreted class cannot subclass a compiled one (the
    first group rule built would raise ``TypeError``).
    """

    action: KillAction
    pause_s: float | None = None
    base: Decimal | None = None
    beyond_target: Decimal | None = None


@dataclass(frozen=True, slots=True)
class GroupLimits:
    """The group's kill-switch rules, each ``None`` when off."""

    max_drawdown: DrawdownLimit | None = None
    max_daily_loss: DailyLossLimit | None = None
    max_base_exposure: BaseExposureLimit | None = None


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """One portfolio as the core reads it: its target, share bounds and rules."""

    name: str
    #: One of the two is set: a share of the group's value, or a total base amount.
    target_share: float | None
    target_base: Decimal | None
    min_share: float = 0.1
    max_share: float = 0.9
    limits: GroupLimits = GroupLimits()


@dataclass(frozen=True, slots=True)
class MemberTransfer:
    """A settlement sweep the member's balances show: ``out`` of its base (``base``) or quote
    left its exchange account (negative: came back). Keyed by sweep and direction, so the group
    counts it once (:mod:`kasmm.core.group_transfers`)."""

    key: str
    direction: str
    base: bool
    out: Decimal


@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    """One member at one instant: totals (free plus locked), its own mid and net PnL."""

    name: str
    base: Decimal
    quote: Decimal
    #: ``None``: no usable book yet.
    mid: Decimal | None
    pnl: Decimal
    #: The member's trading state (``active``, ``halted``, ...).
    trading: str = "active"
    #: The settlement sweeps its balances show (booked, or read and about to be booked).
    transfers: tuple[MemberTransfer, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupAggregate:
    """The group at one instant (money exact; shares and the deviation are floats)."""

    base: Decimal
    quote: Decimal
    #: What one base is worth across the group: the members' base value over their base
    #: (their mean mid while the group holds no base); ``None`` with no mid at all.
    mark: Decimal | None
    #: Base at each member's mid plus every quote balance: the group's equity.
    value: Decimal | None
    share: float | None
    pnl: Decimal
    target_base: Decimal | None
    target_share: float | None
    #: ``base - target_base``: positive when the group is long.
    excess_base: Decimal | None
    #: The group's distance from target on :func:`kasmm.core.skew.deviation`'s scale.
    deviation: float
    members: int
    #: Members whose own mid valued their base.
    priced: int

    @property
    def equity(self) -> Decimal | None:
        """The group's equity: its value at the members' mids."""
        return self.value


def aggregate(spec: GroupSpec, members: Sequence[MemberSnapshot]) -> GroupAggregate:
    """The group's inventory, value, PnL and deviation from its target."""
    base = sum((m.base for m in members), ZERO)
    quote = sum((m.quote for m in members), ZERO)
    pnl = sum((m.pnl for m in members), ZERO)
    mids: list[Decimal] = [m.mid for m in members if m.mid is not None and _usable(m.mid)]
    if not mids:
        return GroupAggregate(
            base, quote, None, None, None, pnl, None, None, None, 0.0, len(members), 0
        )
    mean_mid = sum(mids, ZERO) / len(mids)
    base_value = sum((m.base * _mid_or(m.mid, mean_mid) for m in members), ZERO)
    mark = base_value / base if base > ZERO else mean_mid
    value = base_value + quote
    share = float(base_value / value) if value > ZERO else None
    target_base: Decimal | None
    if spec.target_base is not None:
        target_base = spec.target_base
    elif spec.target_share is not None and value > ZERO and mark > ZERO:
        target_base = Decimal(repr(spec.target_share)) * value / mark
    else:
        target_base = None
    target_share: float | None = None
    if spec.target_share is not None:
        target_share = spec.target_share
    elif target_base is not None and value > ZERO:
        target_share = float(target_base * mark / value)
    excess = None if target_base is None else base - target_base
    dev = deviation(share, target_share, spec.min_share, spec.max_share)
    return GroupAggregate(
        base,
        quote,
        mark,
        value,
        share,
        pnl,
        target_base,
        target_share,
        excess,
        dev,
        len(members),
        len(mids),
    )


def _usable(mid: Decimal | None) -> bool:
    return mid is not None and mid.is_finite() and mid > ZERO


def _mid_or(mid: Decimal | None, fallback: Decimal) -> Decimal:
    return mid if mid is not None and _usable(mid) else fallback


def member_skew(agg: GroupAggregate) -> GroupSkew | None:
    """What every member skews toward: the group's deviation and excess (``None``: the group
    cannot be measured yet, so members skew on their own inventory)."""
    if agg.excess_base is None or agg.value is None:
        return None
    return GroupSkew(agg.deviation, agg.excess_base)


@dataclass(frozen=True, slots=True)
class GroupTracker:
    """The running figures behind the group's loss rules (``None``: not known yet)."""

    peak_equity: Decimal | None = None
    day_key: str | None = None
    day_start_equity: Decimal | None = None

    @property
    def empty(self) -> bool:
        """Nothing measured yet."""
        return self.peak_equity is None and self.day_start_equity is None


def tracked(tracker: GroupTracker, equity: Decimal | None, day: str) -> GroupTracker:
    """Fold the group's ``equity`` on the local ``day`` in: the peak only rises, a new day
    starts its PnL from the current equity."""
    if equity is None:
        return tracker
    peak = tracker.peak_equity
    if peak is None or equity > peak:
        peak = equity
    if day != tracker.day_key:
        # A tracker restored from the ledger carries its day start with no key: it is today's.
        start = (
            tracker.day_start_equity
            if tracker.day_key is None and tracker.day_start_equity is not None
            else equity
        )
        return GroupTracker(peak, day, start)
    if peak is tracker.peak_equity:
        return tracker
    return GroupTracker(peak, tracker.day_key, tracker.day_start_equity)


def group_breaches(
    spec: GroupSpec, agg: GroupAggregate, tracker: GroupTracker, now: float
) -> list[Trip]:
    """Every group rule whose condition holds now (pure; no state).

    Drawdown and daily loss are the profile rules' own exact comparisons
    (:func:`kasmm.core.risk.breaches`) on the group's figures, renamed ``portfolio_*``.
    """
    limits = spec.limits
    equity = agg.equity
    out: list[Trip] = []
    if limits.max_drawdown is not None or limits.max_daily_loss is not None:
        day_start = tracker.day_start_equity
        daily = equity - day_start if equity is not None and day_start is not None else None
        inputs = RiskInputs(
            now=now, equity=equity, peak_equity=tracker.peak_equity, daily_pnl=daily
        )
        rules = RiskLimits(max_drawdown=limits.max_drawdown, max_daily_loss=limits.max_daily_loss)
        out.extend(replace(t, rule=RULE_PREFIX + t.rule) for t in breaches(rules, inputs))
    exposure = limits.max_base_exposure
    if exposure is not None:
        name = RULE_PREFIX + "max_base_exposure"
        if exposure.base is not None and agg.base > exposure.base:
            out.append(
                Trip(name, exposure.action, float(agg.base), float(exposure.base), now, "base")
            )
        excess = agg.excess_base
        if exposure.beyond_target is not None and excess is not None:
            beyond = abs(excess)
            if beyond > exposure.beyond_target:
                limit = float(exposure.beyond_target)
                out.append(Trip(name, exposure.action, float(beyond), limit, now, "beyond_target"))
    # A pause carries its length: a member holds it as an external trip, with no rule of its
    # own of that name to say how long.
    return [replace(t, pause_s=_pause_s(limits, t.rule)) if t.action == "pause" else t for t in out]


def _pause_s(limits: GroupLimits, rule: str) -> float:
    limit: Limit | BaseExposureLimit | None = getattr(limits, rule.removeprefix(RULE_PREFIX), None)
    return float(limit.pause_s) if limit is not None and limit.pause_s is not None else 0.0


def evaluate_group(
    spec: GroupSpec,
    state: RiskState,
    agg: GroupAggregate,
    tracker: GroupTracker,
    now: float,
) -> tuple[RiskState, tuple[Trip, ...]]:
    """Apply the group's rules; return its new state and the trips that changed it.

    As for a profile (:func:`kasmm.core.risk.evaluate`): a halt holds until reset, a pause lasts
    ``pause_s`` and trips again if its condition still holds when it ends; only transitions are
    reported. Group rules have no ``reduce_only``.
    """
    if state.halt is not None:
        return state, ()
    found = group_breaches(spec, agg, tracker, now)
    if not found:
        return state, ()
    halt = next((t for t in found if t.action == "halt"), None)
    if halt is not None:
        return RiskState(halt=halt), (halt,)
    if now < state.paused_until:
        return state, ()
    longest = max(found, key=lambda t: _pause_s(spec.limits, t.rule))
    until = now + _pause_s(spec.limits, longest.rule)
    return RiskState(paused_until=until, pause_trip=longest), (longest,)


def member_trip(state: RiskState, now: float) -> Trip | None:
    """The trip every member holds now: the group's halt, its pause while it lasts, or none."""
    if state.halt is not None:
        return state.halt
    if now < state.paused_until:
        return state.pause_trip
    return None


def group_trading_state(state: RiskState, now: float) -> str:
    """``halted``, ``paused`` or ``active`` (the group's own state, not its members')."""
    return state.trading_state(now).value


def restored_tracker(peak: Decimal | None, day_start: Decimal | None) -> GroupTracker:
    """A tracker resumed from stored figures (the day start is today's: its key is set by the
    first :func:`tracked`)."""
    return GroupTracker(peak, None, day_start)


def snapshots_of(members: Iterable[MemberSnapshot]) -> tuple[MemberSnapshot, ...]:
    """Members in name order (the aggregate's sums do not depend on it; logs and tests do)."""
    return tuple(sorted(members, key=lambda m: m.name))
