"""The time-aware EWMA volatility estimator."""

from __future__ import annotations

import math
import random

import pytest

from kasmm.core.volatility import VolState, sigma_bps, sigma_price, update_vol

NAN = float("nan")


def feed(samples: list[tuple[float, float]], halflife_s: float = 60.0) -> VolState | None:
    state: VolState | None = None
    for mid, ts in samples:
        state = update_vol(state, mid, ts, halflife_s)
    return state


def test_no_estimate_before_two_samples() -> None:
    assert sigma_price(None) is None and sigma_bps(None) is None
    one = feed([(100.0, 0.0)])
    assert sigma_price(one) is None and sigma_bps(one) is None


def test_first_change_is_the_whole_estimate() -> None:
    # (102 - 100)^2 / 4 s = 1 price^2/s -> sigma 1 per sqrt(s).
    state = feed([(100.0, 0.0), (102.0, 4.0)])
    assert sigma_price(state) == pytest.approx(1.0)
    assert sigma_bps(state) == pytest.approx(math.log(1.02) / 2 * 1e4)


def test_elapsed_time_sets_the_weight() -> None:
    # Estimate 4 price^2/s, then a flat mid over exactly one half-life: the old estimate
    # counts half -> 2. The same flat sample over two half-lives leaves a quarter -> 1.
    seeded = feed([(100.0, 0.0), (102.0, 1.0)], halflife_s=10.0)
    assert seeded is not None and seeded.var_price == pytest.approx(4.0)
    assert update_vol(seeded, 102.0, 11.0, 10.0).var_price == pytest.approx(2.0)
    assert update_vol(seeded, 102.0, 21.0, 10.0).var_price == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("mid", "ts"),
    [
        (NAN, 5.0),
        (float("inf"), 5.0),
        (0.0, 5.0),
        (-3.0, 5.0),
        (101.0, NAN),
        (101.0, 1.0),  # same timestamp as the last sample
        (101.0, 0.5),  # out of order
    ],
)
def test_unusable_samples_are_skipped(mid: float, ts: float) -> None:
    state = feed([(100.0, 0.0), (102.0, 1.0)])
    assert state is not None
    assert update_vol(state, mid, ts, 60.0) == state


def test_unusable_first_sample_does_not_seed() -> None:
    state = update_vol(None, NAN, 0.0, 60.0)
    assert sigma_price(state) is None
    state = update_vol(state, 100.0, 1.0, 60.0)
    assert sigma_price(state) is None
    state = update_vol(state, 101.0, 2.0, 60.0)
    assert sigma_price(state) == pytest.approx(1.0)


@pytest.mark.parametrize("halflife", [0.0, -1.0, NAN, float("inf")])
def test_bad_halflife_is_a_programming_error(halflife: float) -> None:
    with pytest.raises(ValueError, match="halflife_s"):
        update_vol(None, 100.0, 0.0, halflife)


def test_state_is_immutable_and_updates_return_new_values() -> None:
    first = update_vol(None, 100.0, 0.0, 60.0)
    second = update_vol(first, 101.0, 1.0, 60.0)
    assert first.samples == 1 and second.samples == 2
    with pytest.raises(AttributeError):
        first.samples = 5  # type: ignore[misc]


def test_converges_to_known_sigma_on_irregular_random_walk() -> None:
    # Arithmetic Brownian mid, sigma 2 price units per sqrt(s), sampled at exponential gaps
    # (mean 0.2 s). Half-life 600 s keeps ~4300 effective samples: ~1 % standard error.
    rng = random.Random(20240611)
    sigma, mid, ts = 2.0, 10_000.0, 0.0
    state: VolState | None = None
    for _ in range(25_000):
        dt = rng.expovariate(5.0)
        ts += dt
        mid += rng.gauss(0.0, sigma * math.sqrt(dt))
        state = update_vol(state, mid, ts, 600.0)
    estimate = sigma_price(state)
    assert estimate is not None
    assert estimate == pytest.approx(sigma, rel=0.05)
    assert sigma_bps(state) == pytest.approx(sigma / mid * 1e4, rel=0.1)


def test_relative_sigma_converges_on_geometric_walk() -> None:
    rng = random.Random(7)
    sigma_rel, mid, ts = 3e-4, 0.08, 0.0  # 3 bps per sqrt(s) on a KAS-like price
    state: VolState | None = None
    for _ in range(25_000):
        dt = rng.choice((0.05, 0.1, 0.5, 2.0))
        ts += dt
        mid *= math.exp(rng.gauss(-0.5 * sigma_rel**2 * dt, sigma_rel * math.sqrt(dt)))
        state = update_vol(state, mid, ts, 900.0)
    assert sigma_bps(state) == pytest.approx(3.0, rel=0.05)


def test_adapts_to_a_volatility_regime_change() -> None:
    rng = random.Random(3)
    mid, ts = 1000.0, 0.0
    state: VolState | None = None
    for sigma in (1.0, 4.0):
        for _ in range(6_000):
            ts += 0.1
            mid += rng.gauss(0.0, sigma * math.sqrt(0.1))
            state = update_vol(state, mid, ts, 30.0)
        assert sigma_price(state) == pytest.approx(sigma, rel=0.25)
