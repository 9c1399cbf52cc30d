"""The backtest's path meter: its float conversions are kept only while their inputs stay."""

from __future__ import annotations

import random
from decimal import Decimal

from kasmm.backtest.meter import PathMeter
from kasmm.bot.view import Marks
from kasmm.core.pnl import PnlState
from kasmm.core.types import Book, BookUpdated, VenueEvent

D = Decimal
BOOK = BookUpdated(Book((), (), 0.0))


class Reference:
    """What :meth:`PathMeter.after` computes, converting every number each time."""

    def __init__(self) -> None:
        self.book_samples = self.spread_n = 0
        self.spread_sum = self.spread_bps_sum = self.peak = self.max_drawdown = 0.0

    def after(self, event: VenueEvent | None, sample: Marks) -> None:
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


def test_the_meter_measures_as_converting_every_sample() -> None:
    """Samples that share or repeat objects (a resting spread, one book's fills, an equal
    PnL) measure exactly as converting each one afresh."""
    rng = random.Random(3)
    meter, reference = PathMeter(), Reference()
    mid, bid, ask = D("0.08"), D("0.0799"), D("0.0801")
    pnl = PnlState(position=D(10), avg_cost=D("0.08"))
    for _ in range(5000):
        roll = rng.random()
        if roll < 0.3:
            mid = D("0.08") + D(rng.randint(-40, 40)) / 10**6
        elif roll < 0.4:
            mid = D(str(mid))  # an equal mid, another object
        elif roll < 0.45 and mid.is_finite():
            bid = mid - D(rng.randint(1, 9)) / 10**5
        elif roll < 0.5 and mid.is_finite():
            ask = mid + D(rng.randint(1, 9)) / 10**5
        elif roll < 0.6:
            pnl = PnlState(position=D(rng.randint(-50, 50)), avg_cost=mid, realized=D("0.01"))
        elif roll < 0.65:
            mid = D(rng.choice(("NaN", "0", "-1")))
        sample = Marks(
            mid,
            None if rng.random() < 0.1 else bid,
            None if rng.random() < 0.1 else ask,
            pnl,
            # the book's float of the mid (Book.mid_float), or none handed over
            float(mid) if mid.is_finite() and rng.random() < 0.5 else None,
        )
        event = BOOK if rng.random() < 0.7 else None
        meter.after(event, sample)
        reference.after(event, sample)
    for name in ("book_samples", "spread_n", "spread_sum", "spread_bps_sum", "peak"):
        assert repr(getattr(meter, name)) == repr(getattr(reference, name)), name
    assert meter.max_drawdown == reference.max_drawdown > 0
