"""Market-making obligations, pure: what an exchange or a token issuer asks of a market maker.

A typical agreement reads "both sides quoted, the spread at most X bps and at least Y USDT within
+-Z % of the mid, for at least N % of the time over each hour". :class:`Obligation` says that in
frozen values; the quoting picture (:class:`~kasmm.core.kpis.Snapshot`) at each instant either
meets it or not (:func:`meets`), and :class:`Compliance` integrates that over a rolling window
in one-minute buckets (exact per bucket; the window slides a minute at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kasmm.core.kpis import DEPTH_BANDS, Snapshot

#: Width of the rolling window's buckets (seconds).
BUCKET_S = 60.0


@dataclass(frozen=True, slots=True)
class Obligation:
    """What must hold, and for what share of each window."""

    #: The own spread (bps of the mid) must be at most this (``None``: no spread obligation).
    max_spread_bps: float | None = None
    #: At least ``min_depth`` (quote currency, both sides) within ``depth_band`` of the mid.
    depth_band: Decimal | None = None
    min_depth: float | None = None
    #: The share of each window during which it all held (0..1).
    min_share: float = 0.95
    window_s: float = 3600.0


def meets(obligation: Obligation, picture: Snapshot) -> bool:
    """Whether ``picture`` meets ``obligation`` at this instant (both sides are required)."""
    if not (picture.bid and picture.ask):
        return False
    limit = obligation.max_spread_bps
    if limit is not None and (picture.spread_bps is None or picture.spread_bps > limit):
        return False
    if obligation.depth_band is not None and obligation.min_depth is not None:
        band = DEPTH_BANDS.index(obligation.depth_band)  # Decimal("0.02") == Decimal("0.020")
        if picture.depth[band] < obligation.min_depth:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Compliance:
    """Seconds met and seconds observed per one-minute bucket of the rolling window."""

    #: ``(bucket index, met_s, observed_s)``, oldest first; bucket ``k`` covers
    #: ``[k * BUCKET_S, (k + 1) * BUCKET_S)`` on the interval clock.
    buckets: tuple[tuple[int, float, float], ...] = ()
    last_at: float | None = None
    last_met: bool = False

    @property
    def met_s(self) -> float:
        return sum(b[1] for b in self.buckets)

    @property
    def observed_s(self) -> float:
        return sum(b[2] for b in self.buckets)

    @property
    def share(self) -> float | None:
        """The share of the window's observed time the obligation was met."""
        observed = self.observed_s
        return self.met_s / observed if observed > 0 else None


def record(state: Compliance, obligation: Obligation, now: float, picture: Snapshot) -> Compliance:
    """Book the time since the last observation (met or not, as it was then) and keep only
    the buckets of the window ending at ``now``."""
    met = meets(obligation, picture)
    if state.last_at is None or now <= state.last_at:
        return Compliance(state.buckets, now if state.last_at is None else state.last_at, met)
    buckets = list(state.buckets)
    t = state.last_at
    while t < now:
        k = int(t // BUCKET_S)
        end = min(now, (k + 1) * BUCKET_S)
        dt = end - t
        if buckets and buckets[-1][0] == k:
            _, met_s, seen_s = buckets[-1]
            buckets[-1] = (k, met_s + (dt if state.last_met else 0.0), seen_s + dt)
        else:
            buckets.append((k, dt if state.last_met else 0.0, dt))
        t = end
    oldest = int((now - obligation.window_s) // BUCKET_S)
    while buckets and buckets[0][0] < oldest:
        buckets.pop(0)
    return Compliance(tuple(buckets), now, met)


def breached(obligation: Obligation, state: Compliance) -> bool:
    """Below the required share over the window, once a whole window has been observed."""
    share = state.share
    return (
        share is not None
        and state.observed_s >= obligation.window_s * 0.999
        and share < obligation.min_share
    )
