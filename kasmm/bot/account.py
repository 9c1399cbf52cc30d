"""The bot's account: inventory moved by fills, resynced from the venue, PnL by average cost.

The venue is the truth for balances; between reads, fills keep the view current. A fill that
executed before the last balance read (in the venue's time) is already in those balances: it
moves the PnL and the ledger, not the inventory again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from kasmm.core.pnl import PnlState, apply_fill, fee_in_quote
from kasmm.core.types import ZERO, Balance, Balances, Fill, MarketRules, Side


@dataclass
class Inventory:
    """The bot's view of its balances, moved by fills and resynced from the venue."""

    base: Decimal = ZERO
    quote: Decimal = ZERO

    def balances(self, base_asset: str, quote_asset: str) -> Balances:
        """As a ``Balances`` of totals (what quoting may budget with)."""
        return Balances({base_asset: Balance(self.base), quote_asset: Balance(self.quote)})

    def equity(self, mid: Decimal) -> Decimal:
        """Quote plus base valued at ``mid``."""
        return self.quote + self.base * mid


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
        if moved:
            inv = self.inventory
            fee = fee_in_quote(fill, quote_asset)
            if fill.side is Side.BUY:
                inv.base += fill.size
                inv.quote -= fill.notional + fee
            else:
                inv.base -= fill.size
                inv.quote += fill.notional - fee
        self.pnl = apply_fill(self.pnl, fill, quote_asset)
        return moved

    def resync(
        self, base: Decimal, quote: Decimal, as_of: float, rules: MarketRules, opened: bool
    ) -> tuple[Drift, ...]:
        """Adopt the venue's balances read at venue time ``as_of``; return the drifts beyond
        dust (only once accounting has opened: before that there is nothing to compare)."""
        inv = self.inventory
        drifts: list[Drift] = []
        if opened:
            # Dust: a lot of base, a tenth of the minimum notional (or one tick x lot) of quote.
            dust_quote = rules.min_notional / 10 or rules.tick * rules.lot
            for asset, local, venue, dust in (
                (rules.base, inv.base, base, rules.lot),
                (rules.quote, inv.quote, quote, dust_quote),
            ):
                if abs(local - venue) > dust:
                    drifts.append(Drift(asset, local, venue))
        inv.base, inv.quote = base, quote
        self.as_of = as_of
        return tuple(drifts)
