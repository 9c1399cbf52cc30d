"""The settlement plan: per asset, sweep off the exchange, ask for a top-up, or hold, and why.

Pure: balances, the profiles' needs, the band, the limits, what was swept today, the
exchange's withdrawal terms and the state gates go in; one :class:`AssetPlan` per banded asset
comes out. Nothing here reads a clock, a venue or a ledger, so ``kasmm settle --plan``,
``--execute`` and a scheduled settlement decide exactly alike, and tests state every rule.

The rules, per asset with a band:

1. **What counts** is the total balance (free + locked): an order resting on the book is still
   on the exchange, and it is exactly what the profiles' need (:mod:`.settlement_need`)
   covers. What a withdrawal can take is the free balance only.
2. **The floor** is ``max(keep_at_least, need)``; **the ceiling** is ``max(keep_at_most,
   floor)`` (a need above the band raises the ceiling with it: nothing is swept that the
   profiles need). No ``keep_at_most``: no ceiling, never swept.
3. **Below the floor**: a :class:`TopUp` of ``floor - counted`` (rounded *up* to the step, so
   an operator never sends too little). Gates do not stop a top-up: kasmm only prints it.
4. **Between floor and ceiling**: hold (``within_band``): the band is a hysteresis, so small
   moves of the balance never move money.
5. **Above the ceiling**: a :class:`Sweep` down to the ceiling, unless a gate holds it, in this
   order: the asset cannot go to the destination (``not_sweepable``: USDT has no Kaspa
   address), a profile of the account is halted, a feed is stale, a sweep of this asset is
   still pending (its effect on the balance is not known yet), the exchange's withdrawal terms
   are unknown, or its withdrawals are suspended.
6. **The amount** is the smallest of: the excess over the ceiling less the fee, the free
   balance less the fee, ``max_sweep``, and what ``max_per_day`` leaves after
   ``swept_today``; then floored to the exchange's withdrawal ``step``. The fee is assumed
   to come out of the balance on top of the amount (the conservative reading; an exchange
   that deducts it from the amount leaves more behind). Below ``max(min_sweep, the exchange's
   minimum)`` nothing moves, and the reason says which limit made it small.

So a sweep never leaves less than the floor, never exceeds a limit, and an asset gets a sweep
or a top-up, never both (``counted > ceiling >= floor`` for one, ``counted < floor`` for the
other). "Today" is the caller's: it sums the non-failed sweeps since midnight in the
schedule's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from kasmm.core.settlement_need import AssetNeeds
from kasmm.core.types import Balances

__all__ = [
    "AssetBand",
    "AssetPlan",
    "Cap",
    "Gates",
    "Hold",
    "HoldReason",
    "PlanInputs",
    "SettlementPlan",
    "Sweep",
    "TopUp",
    "TopUpReason",
    "WithdrawTerms",
    "describe",
    "plan_settlement",
]

_ZERO = Decimal(0)

#: Which bound made a sweep the size it is (several may bind at once).
Cap = Literal["excess", "free_balance", "per_sweep", "per_day"]
TopUpReason = Literal["below_band", "below_need"]
HoldReason = Literal[
    "within_band",
    "no_ceiling",
    "not_sweepable",
    "profile_halted",
    "feed_stale",
    "sweep_pending",
    "no_withdraw_terms",
    "withdrawals_suspended",
    "below_minimum",
    "daily_limit_reached",
    "free_balance_low",
]


@dataclass(frozen=True, slots=True)
class AssetBand:
    """The operator's band and limits for one asset on one account (the settlement config)."""

    keep_at_least: Decimal = _ZERO
    #: ``None``: no ceiling; the asset is never swept (only topped up)
    keep_at_most: Decimal | None = None
    #: the smallest sweep worth a withdrawal fee
    min_sweep: Decimal = _ZERO
    max_sweep: Decimal | None = None
    max_per_day: Decimal | None = None
    #: whether the destination can receive it (on a Kaspa wallet: KAS only)
    sweepable: bool = True


@dataclass(frozen=True, slots=True)
class WithdrawTerms:
    """The exchange's withdrawal terms for one asset on the destination's network (ccxt's
    ``currencies[code]['networks'][net]``: ``withdraw``, ``precision``, ``limits``, ``fee``)."""

    enabled: bool
    #: the amount's precision as a step (``0.00000001``, ``1``); positive
    step: Decimal
    min_amount: Decimal = _ZERO
    fee: Decimal = _ZERO


@dataclass(frozen=True, slots=True)
class Gates:
    """The account's state that stops sweeps: any entry holds every sweep of the account."""

    halted_profiles: tuple[str, ...] = ()
    stale_feeds: tuple[str, ...] = ()
    #: assets with a sweep requested and not yet confirmed or failed
    pending: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """Everything :func:`plan_settlement` decides from."""

    balances: Balances
    needs: AssetNeeds
    bands: Mapping[str, AssetBand]
    terms: Mapping[str, WithdrawTerms] = field(default_factory=dict)
    #: asset -> amount already swept today (requested and not failed)
    swept_today: Mapping[str, Decimal] = field(default_factory=dict)
    gates: Gates = Gates()


@dataclass(frozen=True, slots=True)
class Sweep:
    """Withdraw ``amount`` to the destination; ``fee`` is expected to leave the balance too."""

    amount: Decimal
    fee: Decimal
    capped_by: tuple[Cap, ...]


@dataclass(frozen=True, slots=True)
class TopUp:
    """An operator should deposit ``amount`` (kasmm never signs)."""

    amount: Decimal
    reason: TopUpReason


@dataclass(frozen=True, slots=True)
class Hold:
    """Nothing moves, and why; ``excess`` is what a sweep would have taken (zero in band)."""

    reason: HoldReason
    excess: Decimal = _ZERO


@dataclass(frozen=True, slots=True)
class AssetPlan:
    """One asset's numbers and the one action they lead to."""

    asset: str
    counted: Decimal
    free: Decimal
    need: Decimal
    floor: Decimal
    ceiling: Decimal | None
    action: Sweep | TopUp | Hold


@dataclass(frozen=True, slots=True)
class SettlementPlan:
    """The plan for one account, one entry per banded asset (sorted by asset)."""

    assets: tuple[AssetPlan, ...]

    @property
    def sweeps(self) -> dict[str, Sweep]:
        """Asset -> sweep, for the assets that move off the exchange."""
        return {p.asset: p.action for p in self.assets if isinstance(p.action, Sweep)}

    @property
    def top_ups(self) -> dict[str, TopUp]:
        """Asset -> top-up, for the assets below their floor."""
        return {p.asset: p.action for p in self.assets if isinstance(p.action, TopUp)}


def _floor_to(amount: Decimal, step: Decimal) -> Decimal:
    return (amount / step).to_integral_value(ROUND_FLOOR) * step


def _ceil_to(amount: Decimal, step: Decimal | None) -> Decimal:
    if step is None:
        return amount
    return (amount / step).to_integral_value(ROUND_CEILING) * step


def _gate(asset: str, band: AssetBand, inputs: PlanInputs) -> HoldReason | None:
    """The first gate (rule 5's order) that holds a sweep of ``asset``, or ``None``."""
    gates = inputs.gates
    terms = inputs.terms.get(asset)
    checks: tuple[tuple[bool, HoldReason], ...] = (
        (not band.sweepable, "not_sweepable"),
        (bool(gates.halted_profiles), "profile_halted"),
        (bool(gates.stale_feeds), "feed_stale"),
        (asset in gates.pending, "sweep_pending"),
        (terms is None, "no_withdraw_terms"),
        (terms is not None and not terms.enabled, "withdrawals_suspended"),
    )
    return next((reason for hit, reason in checks if hit), None)


def _sweep(
    band: AssetBand,
    terms: WithdrawTerms,
    counted: Decimal,
    free: Decimal,
    ceiling: Decimal,
    swept_today: Decimal,
) -> Sweep | Hold:
    """Rule 6: the amount, or the hold that says which limit left too little."""
    bounds: dict[Cap, Decimal] = {
        "excess": counted - ceiling - terms.fee,
        "free_balance": free - terms.fee,
    }
    if band.max_sweep is not None:
        bounds["per_sweep"] = band.max_sweep
    if band.max_per_day is not None:
        bounds["per_day"] = band.max_per_day - swept_today
    smallest = min(bounds.values())
    capped_by = tuple(cap for cap, bound in bounds.items() if bound == smallest)
    amount = _floor_to(max(smallest, _ZERO), terms.step)
    if amount <= 0 or amount < max(band.min_sweep, terms.min_amount):
        if "per_day" in capped_by:
            reason: HoldReason = "daily_limit_reached"
        elif "free_balance" in capped_by:
            reason = "free_balance_low"
        else:
            reason = "below_minimum"
        return Hold(reason, counted - ceiling)
    return Sweep(amount, terms.fee, capped_by)


def _plan_asset(asset: str, band: AssetBand, inputs: PlanInputs) -> AssetPlan:
    balance = inputs.balances.get(asset)
    counted, free = balance.total, balance.free
    need = inputs.needs.of(asset)
    floor = max(band.keep_at_least, need)
    ceiling = None if band.keep_at_most is None else max(band.keep_at_most, floor)
    terms = inputs.terms.get(asset)
    action: Sweep | TopUp | Hold
    if counted < floor:
        reason: TopUpReason = "below_need" if need > band.keep_at_least else "below_band"
        action = TopUp(_ceil_to(floor - counted, None if terms is None else terms.step), reason)
    elif ceiling is None:
        action = Hold("no_ceiling")
    elif counted <= ceiling:
        action = Hold("within_band")
    else:
        gate = _gate(asset, band, inputs)
        if gate is not None or terms is None:
            action = Hold(gate or "no_withdraw_terms", counted - ceiling)
        else:
            today = inputs.swept_today.get(asset, _ZERO)
            action = _sweep(band, terms, counted, free, ceiling, today)
    return AssetPlan(asset, counted, free, need, floor, ceiling, action)


def plan_settlement(inputs: PlanInputs) -> SettlementPlan:
    """The plan for one account: one :class:`AssetPlan` per asset in ``inputs.bands``.

    Assets without a band are not planned (the operator has not said what to keep). The rules
    are the module docstring's.

    :raises ValueError: if a withdrawal step is not positive (the terms are broken, and a
        sweep's rounding would be meaningless).
    """
    for asset, terms in inputs.terms.items():
        if not terms.step.is_finite() or terms.step <= 0:
            raise ValueError(f"withdrawal step of {asset} must be positive")
    return SettlementPlan(
        tuple(_plan_asset(asset, inputs.bands[asset], inputs) for asset in sorted(inputs.bands))
    )


_HOLD_TEXT: dict[HoldReason, str] = {
    "within_band": "within the band",
    "no_ceiling": "no keep_at_most set: never swept",
    "not_sweepable": "above the band, but the destination cannot receive this asset",
    "profile_halted": "above the band, held: a profile of the account is halted",
    "feed_stale": "above the band, held: a market feed is stale",
    "sweep_pending": "above the band, held: a sweep of this asset is still pending",
    "no_withdraw_terms": "above the band, held: the exchange's withdrawal terms are unknown",
    "withdrawals_suspended": "above the band, held: the exchange suspended withdrawals",
    "below_minimum": "above the band by less than the smallest sweep",
    "daily_limit_reached": "above the band, held: today's sweep limit is reached",
    "free_balance_low": "above the band, but too little is free (the rest rests in orders)",
}


def describe(plan: AssetPlan) -> str:
    """One line for ``kasmm settle --plan``: the action, the amount and why."""
    head = f"{plan.asset}: holds {plan.counted} (floor {plan.floor}, ceiling {plan.ceiling})"
    action = plan.action
    if isinstance(action, Sweep):
        caps = ", ".join(action.capped_by)
        return f"{head}: sweep {action.amount} (fee {action.fee}; limited by {caps})"
    if isinstance(action, TopUp):
        why = "the profiles need more" if action.reason == "below_need" else "below the band"
        return f"{head}: top up {action.amount} ({why})"
    return f"{head}: nothing moves ({_HOLD_TEXT[action.reason]})"
