"""What a backtest measures of a path while it runs (the rest is read from the final view)."""

from __future__ import annotations

from decimal import Decimal

from kasmm.bot.view import Marks
from kasmm.core.pnl import PnlState
from kasmm.core.types import ZERO, BookUpdated, VenueEvent


class PathMeter:
    """Measures one path from the engine's :class:`~kasmm.bot.view.Marks` after each event."""

    __slots__ = (
        "_ask",
        "_bid",
        "_mid",
        "_mid_f",
        "_pnl",
        "_pnl_mid",
        "_spread",
        "book_samples",
        "events",
        "last_event_at",
        "max_drawdown",
        "peak",
        "spread_bps_sum",
        "spread_n",
        "spread_sum",
    )

    def __init__(self) -> None:
        self.events = 0
        self.last_event_at = 0.0
        self.book_samples = 0
        self.spread_n = 0
        self.spread_sum = 0.0
        self.spread_bps_sum = 0.0
        self.peak = 0.0  # PnL is 0 when accounting starts
        self.max_drawdown = 0.0
        # The float conversions of the last sample (each goes through the number's string),
        # kept while their inputs stay the very same objects: the own spread (its orders
        # rest for many events), the usable mid (the same book for a fill's events), and whether
        # the equity was sampled at this PnL and mid already (sampling it again changes
        # neither the peak nor the drawdown).
        self._bid: Decimal | None = None
        self._ask: Decimal | None = None
        self._spread = 0.0
        self._mid: Decimal | None = None
        self._mid_f = 0.0
        self._pnl: PnlState | None = None
        self._pnl_mid: Decimal | None = None

    def after(self, event: VenueEvent | None, sample: Marks) -> None:
        """Sample the bot after it handled ``event`` (``None``: the end of the path)."""
        mid = sample.mid
        if mid is None:
            return
        if mid is not self._mid:  # a mid seen last time is known to be usable
            if not mid.is_finite() or mid <= ZERO:
                return
            mid_f = sample.mid_float
            self._mid, self._mid_f = mid, float(mid) if mid_f is None else mid_f
        if isinstance(event, BookUpdated):
            self.book_samples += 1
            bid, ask = sample.own_bid, sample.own_ask
            if bid is not None and ask is not None:
                if bid is not self._bid or ask is not self._ask:
                    self._bid, self._ask, self._spread = bid, ask, float(ask - bid)
                spread = self._spread
                self.spread_n += 1
                self.spread_sum += spread
                self.spread_bps_sum += spread / self._mid_f * 1e4
        pnl = sample.pnl
        if pnl is self._pnl and (mid is self._pnl_mid or mid == self._pnl_mid):
            return
        self._pnl, self._pnl_mid = pnl, mid
        equity = float(pnl.net(mid))
        if equity > self.peak:
            self.peak = equity
        elif self.peak - equity > self.max_drawdown:
            self.max_drawdown = self.peak - equity
