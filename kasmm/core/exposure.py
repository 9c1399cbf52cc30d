"""A hedged profile's fills as exposures: netting, and the parts a hedge order covers.

Pure helpers of :mod:`kasmm.core.hedge`. A fill is an :class:`Exposure` (kept by trade id, so
the ledger can link each hedge order to the fills it covers); exposures of opposite sides net
against each other oldest first, so the open ones are always of one side.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from kasmm.core.types import ZERO, Side, TradeId

__all__ = ["Exposure", "absorb", "residual_changes", "take"]


@dataclass(frozen=True, slots=True)
class Exposure:
    """The part ``open`` (> 0) of A's fill ``trade_id`` (A bought or sold: ``side``) that
    nothing has offset yet; in a hedge order's covers, the part that order offsets."""

    trade_id: TradeId
    side: Side
    open: Decimal
    #: Fills of the other side netted into this one (their base offset part of it): a hedge
    #: order covering this exposure is linked to them too, with nothing of theirs to offset.
    netted: tuple[TradeId, ...] = ()

    @property
    def signed(self) -> Decimal:
        """``open`` signed by A's side: + for a buy (A holds more base)."""
        return self.open if self.side is Side.BUY else -self.open


def absorb(
    open_: tuple[Exposure, ...], exposure: Exposure, *, front: bool = False
) -> tuple[tuple[Exposure, ...], tuple[TradeId, ...]]:
    """``open_`` (all of one side) after taking in ``exposure``: netted against the oldest
    open exposures of the other side first, the rest kept (at the front when it is older than
    them: a hedge order's unfilled covers).

    :return: the open exposures, and the fills netted to nothing on both sides (no exposure
        is left to carry them to a hedge order).
    """
    left = exposure.open
    carried = exposure.netted  # fills that ride with whatever covers the rest of ``exposure``
    kept: list[Exposure] = []
    placed = False
    for e in open_:
        if left > ZERO and e.side is not exposure.side:
            used = min(left, e.open)
            left -= used
            if e.open > used:  # ``exposure`` is used up in ``e``: ``e`` carries it
                netted = (*e.netted, exposure.trade_id, *carried)
                kept.append(replace(e, open=e.open - used, netted=netted))
                placed = True
            else:  # ``e`` is used up: whatever covers the rest covers it too
                carried = (*carried, e.trade_id, *e.netted)
        else:
            kept.append(e)
    if left > ZERO:
        rest = replace(exposure, open=left, netted=carried)
        return ((rest, *kept) if front else (*kept, rest)), ()
    if placed:
        return tuple(kept), ()
    return tuple(kept), (exposure.trade_id, *carried)


def take(open_: tuple[Exposure, ...], size: Decimal) -> tuple[tuple[Exposure, ...], ...]:
    """Split ``open_`` into the oldest parts adding up to ``size`` (a hedge order's covers)
    and what stays open: ``(covers, rest)``."""
    covers: list[Exposure] = []
    rest: list[Exposure] = []
    left = size
    for e in open_:
        if left <= ZERO:
            rest.append(e)
            continue
        used = min(left, e.open)
        left -= used
        covers.append(replace(e, open=used))
        if e.open > used:
            rest.append(replace(e, open=e.open - used, netted=()))
    return tuple(covers), tuple(rest)


def residual_changes(
    before: dict[TradeId, Decimal], after: dict[TradeId, Decimal]
) -> tuple[tuple[TradeId, Decimal], ...]:
    """The A fills whose unhedged part changed between two :meth:`HedgeState.per_fill`
    readings, with the new part (0: fully offset, by a hedge or by an opposite fill)."""
    changed = [(t, r) for t, r in after.items() if before.get(t) != r]
    changed.extend((t, ZERO) for t in before if t not in after)
    return tuple(changed)
