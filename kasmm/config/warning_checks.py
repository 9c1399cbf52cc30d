"""Warnings: findings about a profile that is valid but probably not what was meant.

They run after the checks of :mod:`kasmm.config.checks` and never refuse a profile: the loader
prints each with its location and loads the profile anyway. Only what the profile itself states
is used (no market data is fetched).
"""

from __future__ import annotations

from collections.abc import Callable

from kasmm.config.locate import FieldPath
from kasmm.config.schema import (
    AS2008Market,
    AvellanedaStoikovStrategy,
    PaperVenueConfig,
    Profile,
    RandomWalkMarket,
    SimVenueConfig,
)

__all__ = ["WARNINGS", "run_warnings", "warn_spread"]


def _tick_bps(p: Profile) -> float | None:
    """One price tick in bps of the starting price, where the profile knows both (sim)."""
    venue = p.venue
    if not isinstance(venue, SimVenueConfig):
        return None
    market = venue.market
    if isinstance(market, RandomWalkMarket):
        s0 = market.s0 if market.world is None else market.world.s0
        return float(venue.tick / s0) * 10_000
    if isinstance(market, AS2008Market):
        return float(market.tick) / market.s0 * 10_000
    return None  # a replay's prices are in its file


def _maker_bps(p: Profile) -> float | None:
    """The maker fee the profile states (sim, paper with fees); ``None`` when it does not."""
    venue = p.venue
    if isinstance(venue, SimVenueConfig):
        return venue.fees.maker_bps
    if isinstance(venue, PaperVenueConfig) and venue.fees is not None:
        return venue.fees.maker_bps
    return None


def warn_spread(p: Profile) -> list[tuple[FieldPath, str]]:
    """A mode's ``spread_bps`` below one price tick, or below twice the maker fee.

    Only what the profile itself tells is used (the sim's tick and fees, a paper venue's stated
    fees): no market data is fetched. Avellaneda-Stoikov prices with its own spread and is
    skipped.
    """
    if isinstance(p.strategy, AvellanedaStoikovStrategy):
        return []
    tick, maker = _tick_bps(p), _maker_bps(p)
    out: list[tuple[FieldPath, str]] = []
    for name in ("aggressive", "passive"):
        mode = getattr(p.modes, name)
        if mode is None:
            continue
        where: FieldPath = ("modes", name, "spread_bps")
        spread = mode.spread_bps
        if tick is not None and spread < tick:
            out.append(
                (
                    where,
                    f"spread_bps {spread:g} is below one price tick ({tick:.3g} bps at the "
                    "starting price): rounded to ticks, the quotes end up wider than configured",
                )
            )
        elif maker is not None and maker > 0 and spread < 2 * maker:
            out.append(
                (
                    where,
                    f"spread_bps {spread:g} is below twice the maker fee (2 x {maker:g} bps): "
                    "a buy and a sell filled at level 0 pay more in fees than the spread earns",
                )
            )
    return out


#: Checks whose findings are warnings: printed with the location, the profile still loads.
WARNINGS: dict[str, Callable[[Profile], list[tuple[FieldPath, str]]]] = {"spread": warn_spread}


def run_warnings(profile: Profile) -> list[tuple[FieldPath, str]]:
    """Run every check in :data:`WARNINGS`; a crash is dropped (a warning never refuses)."""
    out: list[tuple[FieldPath, str]] = []
    for check in WARNINGS.values():
        try:
            out.extend(check(profile))
        except Exception:  # a warning must never stop a valid profile
            continue
    return out
