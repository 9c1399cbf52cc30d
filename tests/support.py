"""Helpers shared by the tests: polling with a deadline, and one profile builder.

Polling is for state owned by another task or process that offers no event to wait on; each
helper fails with the deadline it was given, never hangs, and never proves absence by sleeping.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import anyio

from kasmm.backtest.engine import PathSpec, backtest_profile
from kasmm.config.loader import load_file
from kasmm.config.schema import KillSwitchConfig, Profile, SimVenueConfig

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"

#: The smallest valid sim profile: every other field takes the schema's default.
BASE_PROFILE: Mapping[str, Any] = {
    "name": "test",
    "venue": {"type": "sim"},
    "symbol": "KAS/USDT",
    "modes": {
        "aggressive": {"spread_bps": 20, "size": 1000},
        "passive": {"spread_bps": 40, "size": 1000},
    },
}


# --- polling ----------------------------------------------------------------------------------


async def eventually(
    predicate: Callable[[], object], within_s: float = 10.0, poll_s: float = 0.01
) -> None:
    """Return once ``predicate()`` is true; fail (``TimeoutError``) after ``within_s`` seconds.

    On a virtual clock that nothing advances, pass ``poll_s=0`` (a bare checkpoint per try).
    """
    with anyio.fail_after(within_s):
        while not predicate():
            await anyio.sleep(poll_s)


def wait_until(
    predicate: Callable[[], T], within_s: float = 20.0, poll_s: float = 0.05, what: str = ""
) -> T:
    """Blocking :func:`eventually`, for tests that drive a subprocess from synchronous code.

    :return: the predicate's first true value (a list of orders that appeared, say).
    """
    deadline = time.monotonic() + within_s
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {within_s} s: {what or predicate!r}")
        time.sleep(poll_s)
    return value


# --- profiles ---------------------------------------------------------------------------------


def make_profile(base: Profile | Mapping[str, Any] | None = None, **overrides: Any) -> Profile:
    """A validated profile: ``base`` (default :data:`BASE_PROFILE`) with ``overrides`` merged in.

    Overrides merge key by key into nested mappings, so ``venue={"seed": 3}`` keeps the venue's
    other fields; any other value replaces (``None`` clears an optional section, e.g.
    ``kill_switch={"stale_book": None}`` turns that default rule off; a list replaces the list).
    """
    if base is None:
        data: Mapping[str, Any] = BASE_PROFILE
    elif isinstance(base, Profile):
        data = base.model_dump(mode="json")
    else:
        data = base
    return Profile.model_validate(_merge(data, overrides))


def demo_profile(name: str = "kas-usdt-sim.yaml", **overrides: Any) -> Profile:
    """A profile of ``profiles/`` as the loader reads it (cross-field checks included), with
    ``overrides`` merged in as :func:`make_profile` does."""
    loaded = _load(name)
    return make_profile(loaded, **overrides) if overrides else loaded


def kill_switch_only(**rules: Any) -> dict[str, Any]:
    """A ``kill_switch`` override with only ``rules`` on: every other rule off, the defaults
    (stale book, consecutive errors) and the demo profile's rules included."""
    return {**dict.fromkeys(KillSwitchConfig.model_fields, None), **rules}


@cache
def _load(name: str) -> Profile:
    loaded, issues = load_file(PROFILES / name)
    assert not issues, issues
    return loaded[0].profile


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = _merge(current, value)
        else:
            out[key] = value
    return out


def path_spec(profile: Profile, horizon: float, *, market: str = "random_walk") -> PathSpec:
    """One backtest path of ``profile`` (moved to the sim ``market``) over ``horizon`` seconds
    from 0, seeded with the profile's venue seed, logging errors only."""
    profile = backtest_profile(profile, market)  # type: ignore[arg-type]
    assert isinstance(profile.venue, SimVenueConfig)
    return PathSpec(
        run=0,
        index=0,
        seed=profile.venue.seed,
        profile=profile,
        market=market,  # type: ignore[arg-type]
        data=None,
        queue_position="back",
        start=0.0,
        end=horizon,
        session_end=horizon,
        unlimited=False,
        log_level=40,
    )


def halting_profile(name: str) -> str:
    """A sim profile (YAML) on a moving market whose drawdown limit (0.001 USDT) trips at once."""
    return textwrap.dedent(
        f"""\
        name: {name}
        venue:
          type: sim
          market: {{book_interval_s: 0.02}}
          seed: 3
        symbol: KAS/USDT
        modes:
          aggressive: {{spread_bps: 20, size: 1000, levels: 1}}
          passive: {{spread_bps: 20, size: 1000, levels: 1}}
        refresh: {{fallback_interval_s: 0.1}}
        kill_switch:
          max_drawdown: {{quote: 0.001, action: halt}}
        """
    )
