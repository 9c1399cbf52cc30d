"""Online realized-volatility estimator for irregularly sampled mids.

Each new mid contributes one observation of the variance rate, ``(Δmid)² / Δt``, whose
expectation is ``σ²`` for a Brownian mid however long the gap. Observations are averaged with
an exponential weight that decays with *elapsed time* (half-life ``halflife_s``), not with the
number of samples, so a burst of book updates does not wash out what the last minute said.

The state is a frozen value: ``update_vol`` returns a new one and never reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, init=False)
class VolState:
    """EWMA state: the last accepted sample and the variance rates per second.

    ``var_price`` is in price² per second (the Avellaneda–Stoikov paper's σ²), ``var_rel`` in
    squared log-return per second. ``samples`` counts accepted mids (the first only seeds).
    """

    last_mid: float
    last_ts: float
    var_price: float = 0.0
    var_rel: float = 0.0
    samples: int = 1

    def __init__(
        self,
        last_mid: float,
        last_ts: float,
        var_price: float = 0.0,
        var_rel: float = 0.0,
        samples: int = 1,
    ) -> None:
        # Written out, not generated: see "Hot values" in kasmm/core/types.py.
        object.__setattr__(self, "last_mid", last_mid)
        object.__setattr__(self, "last_ts", last_ts)
        object.__setattr__(self, "var_price", var_price)
        object.__setattr__(self, "var_rel", var_rel)
        object.__setattr__(self, "samples", samples)


def update_vol(state: VolState | None, mid: float, ts: float, halflife_s: float) -> VolState:
    """Fold the mid observed at ``ts`` into ``state`` and return the new state.

    Samples that cannot be used are skipped rather than raised on, because they come from the
    market: a non-finite or non-positive mid, a non-finite time, or a time not after the last
    accepted sample (a duplicate timestamp would imply an infinite variance rate, and keeping
    the earlier mid lets the next sample carry the whole move over the real elapsed time).
    When ``state`` is ``None`` the first usable sample seeds it.

    :raises ValueError: ``halflife_s`` is not a positive finite number (a configuration bug).
    """
    if not (math.isfinite(halflife_s) and halflife_s > 0):
        raise ValueError(f"halflife_s must be positive and finite, got {halflife_s!r}")
    usable = math.isfinite(mid) and mid > 0 and math.isfinite(ts)
    if state is None:
        # Nothing to return but a seed; an unusable first sample seeds a state that the next
        # usable one replaces (samples=0 marks it as empty).
        return VolState(last_mid=mid, last_ts=ts, samples=1 if usable else 0)
    if not usable:
        return state
    if state.samples == 0:
        return VolState(last_mid=mid, last_ts=ts)
    dt = ts - state.last_ts
    if dt <= 0:
        return state
    obs_price = (mid - state.last_mid) ** 2 / dt
    obs_rel = math.log(mid / state.last_mid) ** 2 / dt
    if state.samples == 1:
        # The first observation is the whole estimate (a zero prior would bias it low for
        # several half-lives).
        return VolState(mid, ts, obs_price, obs_rel, 2)
    # Weight of the new observation grows with the time it covers: after one half-life of
    # silence the old estimate counts half.
    alpha = -math.expm1(-math.log(2.0) * dt / halflife_s)
    return VolState(
        last_mid=mid,
        last_ts=ts,
        var_price=state.var_price + alpha * (obs_price - state.var_price),
        var_rel=state.var_rel + alpha * (obs_rel - state.var_rel),
        samples=state.samples + 1,
    )


def sigma_price(state: VolState | None) -> float | None:
    """Volatility in price units per square-root second; ``None`` before two usable samples."""
    if state is None or state.samples < 2:
        return None
    return math.sqrt(state.var_price)


def sigma_bps(state: VolState | None) -> float | None:
    """Relative volatility in bps per square-root second; ``None`` before two usable samples."""
    if state is None or state.samples < 2:
        return None
    return math.sqrt(state.var_rel) * 1e4
