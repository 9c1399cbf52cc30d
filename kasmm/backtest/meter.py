"""What a backtest measures of a path while it runs (the rest is read from the final view)."""

from __future__ import annotations

from kasmm.bot.view import Marks
from kasmm.core.types import BookUpdated, VenueEvent


class PathMeter:
    """Measures one path from the engine's :class:`~kasmm.bot.view.Marks` after each event."""

    __slots__ = (
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

    def after(self, event: VenueEvent | None, sample: Marks) -> None:
        """Sample the bot after it handled ``event`` (``None``: the end of the path)."""
        mid = sample.mid
        if mid is None or not mid.is_finite() or mid <= 0:
            return
        if isinstance(event, BookUpdated):
            self.book_samples += 1
            bid, ask = sample.own_bid, sample.own_ask
            if bid is not None and ask is not None:
                spread = float(ask - bid)
                self.spread_n += 1
                self.spread_sum += spread
                self.spread_bps_sum += spread / float(mid) * 1e4
        equity = float(sample.pnl.net(mid))
        if equity > self.peak:
            self.peak = equity
        elif self.peak - equity > self.max_drawdown:
            self.max_drawdown = self.peak - equity
