"""Average-cost PnL accounting, pure: fold fills into a frozen state, mark it to a price.

The starting inventory is carried at the mark price when accounting starts, so a bot that starts
holding base does not book that base's history as its own profit. Positions may go short (the
as2008 model lets inventory go negative); crossing zero realizes the closed part and opens the
rest at the fill price.

A settlement sweep (or its failed withdrawal coming back) is a transfer, not a trade
(:func:`transfer`): base leaves at its average cost, so nothing is realized, and the
revaluation of what left, marked at the transfer's mark, is kept as revaluation
(``transferred``); the hold benchmark makes the same transfer (``hold_transferred``). So at the
transfer's mark ``net`` and ``hold`` are unchanged, and afterwards they move only with what is
still held.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from kasmm.core.types import ZERO, Fill, Side


@dataclass(frozen=True, slots=True, init=False)
class PnlState:
    """Position (base), its average cost, realized PnL and fees (quote currency)."""

    position: Decimal = ZERO
    avg_cost: Decimal = ZERO
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    buy_count: int = 0
    sell_count: int = 0
    buy_volume: Decimal = ZERO
    sell_volume: Decimal = ZERO
    buy_notional: Decimal = ZERO
    sell_notional: Decimal = ZERO
    #: The base held when accounting started, and the mark it was valued at (what the
    #: hold benchmark keeps).
    opening_position: Decimal = ZERO
    opening_mark: Decimal = ZERO
    #: The revaluation of base transferred out (or, negative, back in), frozen at each
    #: transfer's mark against the average cost it left at (:func:`transfer`).
    transferred: Decimal = ZERO
    #: What the hold benchmark's part of those transfers had gained at their marks.
    hold_transferred: Decimal = ZERO

    def __init__(
        self,
        position: Decimal = ZERO,
        avg_cost: Decimal = ZERO,
        realized: Decimal = ZERO,
        fees: Decimal = ZERO,
        buy_count: int = 0,
        sell_count: int = 0,
        buy_volume: Decimal = ZERO,
        sell_volume: Decimal = ZERO,
        buy_notional: Decimal = ZERO,
        sell_notional: Decimal = ZERO,
        opening_position: Decimal = ZERO,
        opening_mark: Decimal = ZERO,
        transferred: Decimal = ZERO,
        hold_transferred: Decimal = ZERO,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "avg_cost", avg_cost)
        object.__setattr__(self, "realized", realized)
        object.__setattr__(self, "fees", fees)
        object.__setattr__(self, "buy_count", buy_count)
        object.__setattr__(self, "sell_count", sell_count)
        object.__setattr__(self, "buy_volume", buy_volume)
        object.__setattr__(self, "sell_volume", sell_volume)
        object.__setattr__(self, "buy_notional", buy_notional)
        object.__setattr__(self, "sell_notional", sell_notional)
        object.__setattr__(self, "opening_position", opening_position)
        object.__setattr__(self, "opening_mark", opening_mark)
        object.__setattr__(self, "transferred", transferred)
        object.__setattr__(self, "hold_transferred", hold_transferred)

    @classmethod
    def opening(cls, position: Decimal, mark: Decimal) -> PnlState:
        """Start accounting holding ``position`` base valued at ``mark``."""
        return cls(
            position=position,
            avg_cost=mark if position else ZERO,
            opening_position=position,
            opening_mark=mark,
        )

    def unrealized(self, mark: Decimal) -> Decimal:
        """PnL of the open position marked at ``mark``."""
        return self.position * (mark - self.avg_cost)

    def net(self, mark: Decimal) -> Decimal:
        """Realized + unrealized (with what transfers took out) - fees: the mark-to-market
        PnL since accounting started."""
        return self.realized + self.unrealized(mark) + self.transferred - self.fees

    def hold(self, mark: Decimal) -> Decimal:
        """What the starting portfolio gained by only holding it: the opening base at ``mark``
        against its opening value (the quote part of the portfolio gains nothing), making the
        same transfers the account made."""
        return self.opening_position * (mark - self.opening_mark) + self.hold_transferred

    def parts(self, mark: Decimal) -> PnlParts:
        """The PnL at ``mark`` split into what trading did and what the market did."""
        revaluation = self.unrealized(mark) + self.transferred
        net = self.realized + revaluation - self.fees
        hold = self.hold(mark)
        return PnlParts(self.realized, revaluation, self.fees, net, hold, net - hold)


@dataclass(frozen=True, slots=True)
class PnlParts:
    """PnL attribution at one mark (quote currency).

    ``net = spread_capture + revaluation - fees``. ``spread_capture`` is the realized PnL of
    round trips (average cost, before fees); ``revaluation`` the open position (the starting
    inventory included) marked to market against its average cost; ``fees`` what was paid
    (negative: rebates earned). ``hold`` is the benchmark: what the starting portfolio would
    have gained by not trading at all; ``vs_hold = net - hold`` answers whether market making
    earned anything beyond the market's move.
    """

    spread_capture: Decimal
    revaluation: Decimal
    fees: Decimal
    net: Decimal
    hold: Decimal
    vs_hold: Decimal


#: Compiled constants (a module's plain global is a dict lookup in the compiled build).
_ONE: Final = Decimal(1)
_MINUS_ONE: Final = Decimal(-1)


def fee_in_quote(fill: Fill, quote_asset: str) -> Decimal:
    """The fill's fee in quote currency (a base-currency fee is valued at the fill price)."""
    if fill.fee_asset == quote_asset or not fill.fee:
        return fill.fee
    return fill.fee * fill.price


def apply_fill(state: PnlState, fill: Fill, quote_asset: str) -> PnlState:
    """Fold one fill into ``state`` (average-cost method)."""
    return fold_fill(state, fill, fee_in_quote(fill, quote_asset), fill.notional)


def fold_fill(state: PnlState, fill: Fill, fee: Decimal, notional: Decimal) -> PnlState:
    """:func:`apply_fill` given the fill's fee in quote (:func:`fee_in_quote`) and its
    ``notional``, for a caller that computed both already (the account moves its inventory by
    them: each is a ``Decimal`` product once, not twice)."""
    signed = fill.size if fill.side is Side.BUY else -fill.size
    pos, avg, realized = state.position, state.avg_cost, state.realized
    # ZERO, not 0: a comparison with an int converts it to a Decimal first (one per fill).
    if pos == ZERO or (pos > ZERO) == (signed > ZERO):
        new_pos = pos + signed
        if new_pos:  # a zero-size fill while flat leaves nothing to average (and 0/0 raises)
            avg = (avg * abs(pos) + fill.price * abs(signed)) / abs(new_pos)
    else:
        closed = min(abs(pos), abs(signed))
        direction = _ONE if pos > ZERO else _MINUS_ONE
        realized += (fill.price - avg) * closed * direction
        new_pos = pos + signed
        if new_pos == ZERO:
            avg = ZERO
        elif (new_pos > ZERO) != (pos > ZERO):
            avg = fill.price  # crossed through zero: the remainder opens at this price
    # The constructor, not dataclasses.replace (interpreted, ~4x slower): one per fill.
    buy = fill.side is Side.BUY
    return PnlState(
        position=new_pos,
        avg_cost=avg,
        realized=realized,
        fees=state.fees + fee,
        buy_count=state.buy_count + 1 if buy else state.buy_count,
        sell_count=state.sell_count if buy else state.sell_count + 1,
        buy_volume=state.buy_volume + fill.size if buy else state.buy_volume,
        sell_volume=state.sell_volume if buy else state.sell_volume + fill.size,
        buy_notional=state.buy_notional + notional if buy else state.buy_notional,
        sell_notional=state.sell_notional if buy else state.sell_notional + notional,
        opening_position=state.opening_position,
        opening_mark=state.opening_mark,
        transferred=state.transferred,
        hold_transferred=state.hold_transferred,
    )


def transfer(state: PnlState, base_out: Decimal, mark: Decimal) -> PnlState:
    """Move ``base_out`` base out of the account (negative: back in) at ``mark``, booking no
    PnL: a transfer, not a trade.

    The part that reduces the position leaves (or, short, returns) at the average cost and its
    revaluation at ``mark`` is kept in ``transferred``; a part beyond the position opens at
    ``mark`` (what an arriving deposit is worth, as the opening inventory is). The hold
    benchmark makes the same transfer at ``mark``. ``net(mark)`` and ``hold(mark)`` are
    unchanged; counts, volumes and fees are not a transfer's.
    """
    signed = -base_out  # the position's change
    pos, avg, kept = state.position, state.avg_cost, state.transferred
    if pos == ZERO or (pos > ZERO) == (signed > ZERO):
        new_pos = pos + signed
        if new_pos:
            avg = (avg * abs(pos) + mark * abs(signed)) / abs(new_pos)
    else:
        closed = min(abs(pos), abs(signed))
        direction = _ONE if pos > ZERO else _MINUS_ONE
        kept += (mark - avg) * closed * direction
        new_pos = pos + signed
        if new_pos == ZERO:
            avg = ZERO
        elif (new_pos > ZERO) != (pos > ZERO):
            avg = mark
    return PnlState(
        position=new_pos,
        avg_cost=avg,
        realized=state.realized,
        fees=state.fees,
        buy_count=state.buy_count,
        sell_count=state.sell_count,
        buy_volume=state.buy_volume,
        sell_volume=state.sell_volume,
        buy_notional=state.buy_notional,
        sell_notional=state.sell_notional,
        opening_position=state.opening_position - base_out,
        opening_mark=state.opening_mark,
        transferred=kept,
        hold_transferred=state.hold_transferred + base_out * (mark - state.opening_mark),
    )
