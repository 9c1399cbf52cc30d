"""The bot's account: inventory moved by fills, resynced from the venue, PnL by average cost.

The venue is the truth for balances; between reads, fills keep the view current. A fill that
executed before the last balance read (in the venue's time) is already in those balances: it
moves the PnL and the ledger, not the inventory again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from kasmm.core.pnl import PnlState, fee_in_quote, fold_fill
from kasmm.core.types import ZERO, Balance, Balances, Fill, MarketRules, Side


@dataclass(init=False)
class Inventory:
    """The bot's view of its balances, moved by fills and resynced from the venue."""

    base: Decimal = ZERO
    quote: Decimal = ZERO
    #: The last :meth:`balances` and what it was built from, handed out again while the
    #: numbers are the very same objects (every decision asks; fills and reads are rarer).
    #: Not part of the inventory: never compared or shown.
    _balances: Balances | None = field(default=None, init=False, repr=False, compare=False)
    _of: tuple[Decimal, Decimal, str, str] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __init__(self, base: Decimal = ZERO, quote: Decimal = ZERO) -> None:
        # Written out: a compiled dataclass leaves an ``init=False`` field unset.
        self.base = base
        self.quote = quote
        self._balances = None
        self._of = None

    def balances(self, base_asset: str, quote_asset: str) -> Balances:
        """As a ``Balances`` of totals (what quoting may budget with)."""
        last, of = self._balances, self._of
        if (
            last is not None
            and of is not None
            and of[0] is self.base
            and of[1] is self.quote
            and of[2] == base_asset
            and of[3] == quote_asset
        ):
            return last
        made = Balances({base_asset: Balance(self.base), quote_asset: Balance(self.quote)})
        self._balances, self._of = made, (self.base, self.quote, base_asset, quote_asset)
        return made

    def equity(self, mid: Decimal) -> Decimal:
        """Quote plus base valued at ``mid``."""
        return self.quote + self.base * mid


def dust_of(rules: MarketRules) -> tuple[Decimal, Decimal]:
    """The base and quote differences a balance read may show without a drift: a lot of
    base, a tenth of the minimum notional (or one tick x lot) of quote."""
    return rules.lot, rules.min_notional / 10 or rules.tick * rules.lot


@dataclass(frozen=True, slots=True)
class Drift:
    """A balance the venue reports differently from the fill-driven view (beyond dust)."""

    asset: str
    local: Decimal
    venue: Decimal


class Account:
    """Inventory, PnL and the venue time of the last balance read. Owned by the engine."""

    def __init__(self) -> None:
        self.inventory = Inventory()
        self.pnl = PnlState()
        #: Venue time the inventory was last read at.
        self.as_of = -math.inf

    def open_at(self, mark: Decimal) -> None:
        """Accounting starts now, holding the current base valued at ``mark``."""
        self.pnl = PnlState.opening(self.inventory.base, mark)

    def apply(self, fill: Fill, quote_asset: str) -> bool:
        """Fold a stored fill in; False when the inventory already held it (PnL only)."""
        moved = fill.ts >= self.as_of
        fee, notional = fee_in_quote(fill, quote_asset), fill.notional
        if moved:
            inv = self.inventory
            if fill.side is Side.BUY:
                inv.base += fill.size
                inv.quote -= notional + fee
            else:
                inv.base -= fill.size
                inv.quote += notional - fee
        self.pnl = fold_fill(self.pnl, fill, fee, notional)
        return moved

    def resync(
        self, base: Decimal, quote: Decimal, as_of: float, rules: MarketRules, opened: bool
    ) -> tuple[Drift, ...]:
        """Adopt the venue's balances read at venue time ``as_of``; return the drifts beyond
        dust (only once accounting has opened: before that there is nothing to compare)."""
        inv = self.inventory
        drifts: list[Drift] = []
        if opened:
            dust_base, dust_quote = dust_of(rules)
            for asset, local, venue, dust in (
                (rules.base, inv.base, base, dust_base),
                (rules.quote, inv.quote, quote, dust_quote),
            ):
                if abs(local - venue) > dust:
                    drifts.append(Drift(asset, local, venue))
        inv.base, inv.quote = base, quote
        self.as_of = as_of
        return tuple(drifts)
