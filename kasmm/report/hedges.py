"""The report's hedging figures: a hedged profile's fills, the hedge orders linked to them.

Read from the ledger's links (:func:`kasmm.store.Ledger.hedged_fills`): for the period, how many
of the profile's fills were taken in for hedging, how many are fully offset, the residual still
open, the hedge orders and what they offset, and their slippage against the hedge venue's mid
when each was priced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from kasmm.core.types import ZERO, Side
from kasmm.store.hedges import HedgedFill, HedgeOrderView

__all__ = ["HedgeSummary", "hedge_summary"]


@dataclass(frozen=True, slots=True)
class HedgeSummary:
    """A hedged profile's hedging over a period."""

    #: The profiles its hedges went to.
    hedge_profiles: tuple[str, ...]
    fills: int
    #: Fills fully offset (by a hedge, or netted against another fill).
    offset: int
    #: Fills with at least one hedge order linked.
    linked: int
    #: The unhedged residual of the period's fills, signed (+: long), in base.
    residual: Decimal
    orders: int
    #: Base the hedge orders offset, and the base they filled (the same unless a retry is
    #: still to settle).
    hedged: Decimal
    #: Mean slippage of the filled orders (bps through the mid at send), and the worst.
    avg_slippage_bps: float | None
    max_slippage_bps: float | None


def hedge_summary(rows: Sequence[HedgedFill], since: float | None, until: float) -> HedgeSummary:
    """The figures of the fills of ``rows`` within ``[since, until]`` and of their hedges."""
    period = [r for r in rows if (since is None or r.fill.ts >= since) and r.fill.ts <= until]
    orders: dict[str, HedgeOrderView] = {}
    for row in period:
        for hedge in row.hedges:
            orders.setdefault(hedge.client_id, hedge)
    residual = sum((r.residual if r.fill.side is Side.BUY else -r.residual for r in period), ZERO)
    hedged = sum((h.hedged or ZERO for r in period for h in r.hedges), ZERO)
    slippages = [s for o in orders.values() if (s := o.slippage_bps) is not None]
    return HedgeSummary(
        hedge_profiles=tuple(sorted({o.profile for o in orders.values()})),
        fills=len(period),
        offset=sum(1 for r in period if r.residual == ZERO),
        linked=sum(1 for r in period if r.hedges),
        residual=residual,
        orders=len(orders),
        hedged=hedged,
        avg_slippage_bps=sum(slippages) / len(slippages) if slippages else None,
        max_slippage_bps=max(slippages) if slippages else None,
    )
