"""Warnings: findings about a profile that is valid but probably not what was meant.

They run after the checks of :mod:`kasmm.config.checks` and never refuse a profile: the loader
prints each with its location and loads the profile anyway. Only what the profile itself states
is used (no market data is fetched).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from kasmm.config.locate import FieldPath
from kasmm.config.schema import (
    AS2008Market,
    AvellanedaStoikovStrategy,
    PaperVenueConfig,
    Profile,
    RandomWalkMarket,
    SimVenueConfig,
)

__all__ = [
    "WARNINGS",
    "run_warnings",
    "warn_add_fees",
    "warn_join_min_spread",
    "warn_price_band",
    "warn_rebalance",
    "warn_spread",
]

#: A band edge this many times away from a sim's starting price is taken for a slipped digit.
FAR_FACTOR = 10


def _start_price(p: Profile) -> Decimal | None:
    """The starting price of a simulated market (``None``: a replay's prices are in its file,
    and a live market's are not known offline)."""
    venue = p.venue
    if not isinstance(venue, SimVenueConfig):
        return None
    market = venue.market
    if isinstance(market, RandomWalkMarket):
        return market.s0 if market.world is None else market.world.s0
    if isinstance(market, AS2008Market):
        return Decimal(repr(market.s0))
    return None


def _tick_bps(p: Profile) -> float | None:
    """One price tick in bps of the starting price, where the profile knows both (sim)."""
    venue = p.venue
    s0 = _start_price(p)
    if s0 is None or not isinstance(venue, SimVenueConfig):
        return None
    market = venue.market
    tick = market.tick if isinstance(market, AS2008Market) else venue.tick
    return float(tick / s0) * 10_000


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
    skipped; with ``pricing.add_fees`` the fees are added on top of the spread, so the fee
    warning does not apply.
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
        elif maker is not None and maker > 0 and spread < 2 * maker and not p.pricing.add_fees:
            out.append(
                (
                    where,
                    f"spread_bps {spread:g} is below twice the maker fee (2 x {maker:g} bps): "
                    "a buy and a sell filled at level 0 pay more in fees than the spread earns",
                )
            )
    return out


def warn_join_min_spread(p: Profile) -> list[tuple[FieldPath, str]]:
    """``pricing.join_min_spread_bps`` above a mode's spread: while joining, that mode's
    spread never shows (the join floor is wider), so the mode is configured in vain."""
    floor = p.pricing.join_min_spread_bps
    if floor is None or p.pricing.join_depth is None:
        return []
    if isinstance(p.strategy, AvellanedaStoikovStrategy):
        return []  # the model's spread moves; the floor is a real bound on it
    modes = [
        f"{name} ({mode.spread_bps:g} bps)"
        for name in ("aggressive", "passive")
        if (mode := getattr(p.modes, name)) is not None and floor > mode.spread_bps
    ]
    if not modes:
        return []
    return [
        (
            ("pricing", "join_min_spread_bps"),
            f"join_min_spread_bps {floor:g} is wider than the spread of mode "
            + " and ".join(modes)
            + ": joined quotes never come inside it, so that spread has no effect; to quote "
            "wider, widen the mode instead",
        )
    ]


def warn_price_band(p: Profile) -> list[tuple[FieldPath, str]]:
    """An absolute price band that excludes a simulated market's starting price (the bot
    starts one-sided) or whose edge is ``FAR_FACTOR`` times away from it (a slipped digit:
    0.5 for 0.05). A live market's price is not known offline, so only sims are checked."""
    band, s0 = p.pricing.price_band, _start_price(p)
    if band is None or s0 is None:
        return []
    where: FieldPath = ("pricing", "price_band")
    out: list[tuple[FieldPath, str]] = []
    if band.floor is not None and s0 < band.floor:
        out.append(
            (
                (*where, "floor"),
                f"the market starts at {s0}, below the floor {band.floor}: only bids are "
                "quoted until it rises above it",
            )
        )
    elif band.floor is not None and band.floor * FAR_FACTOR <= s0:
        out.append(
            (
                (*where, "floor"),
                f"the floor {band.floor} is {FAR_FACTOR}x or more below the starting price "
                f"{s0}: a slipped digit?",
            )
        )
    if band.ceiling is not None and s0 > band.ceiling:
        out.append(
            (
                (*where, "ceiling"),
                f"the market starts at {s0}, above the ceiling {band.ceiling}: only asks are "
                "quoted until it falls below it",
            )
        )
    elif band.ceiling is not None and band.ceiling >= s0 * FAR_FACTOR:
        out.append(
            (
                (*where, "ceiling"),
                f"the ceiling {band.ceiling} is {FAR_FACTOR}x or more above the starting price "
                f"{s0}: a slipped digit?",
            )
        )
    return out


def warn_add_fees(p: Profile) -> list[tuple[FieldPath, str]]:
    """``pricing.add_fees`` where the profile states a maker fee of zero: nothing to add."""
    if p.pricing.add_fees and _maker_bps(p) == 0:
        return [
            (
                ("pricing", "add_fees"),
                "the venue's maker fee (fees.maker_bps) is 0: add_fees changes no price",
            )
        ]
    return []


def warn_rebalance(p: Profile) -> list[tuple[FieldPath, str]]:
    """An ``inventory.rebalance`` that can never send an order: a band that cannot be left
    (``min_share`` 0 and ``max_share`` 1), or, on a random-walk sim whose rules the profile
    states, a ``max_size`` below the lot or worth less than the minimum notional at the
    starting price. A live market's rules are known only when it is loaded (the venue then
    refuses the order, and the bot logs it)."""
    rebalance = p.inventory.rebalance
    if rebalance is None:
        return []
    where: FieldPath = ("inventory", "rebalance")
    out: list[tuple[FieldPath, str]] = []
    inv = p.inventory
    if inv.min_share <= 0 and inv.max_share >= 1:
        out.append(
            (
                where,
                "min_share 0 and max_share 1: the share never leaves the band, so no rebalance "
                "order is ever sent",
            )
        )
    venue, s0 = p.venue, _start_price(p)
    if not (isinstance(venue, SimVenueConfig) and isinstance(venue.market, RandomWalkMarket)):
        return out
    size = rebalance.max_size
    if size < venue.lot:
        out.append(
            (
                (*where, "max_size"),
                f"max_size {size} is below the lot {venue.lot}: floored to lots it is 0, so no "
                "rebalance order is ever sent",
            )
        )
    elif s0 is not None and size * s0 < venue.min_notional:
        out.append(
            (
                (*where, "max_size"),
                f"max_size {size} is worth {size * s0} at the starting price {s0}, below the "
                f"minimum notional {venue.min_notional}: the venue refuses such an order",
            )
        )
    return out


#: Checks whose findings are warnings: printed with the location, the profile still loads.
WARNINGS: dict[str, Callable[[Profile], list[tuple[FieldPath, str]]]] = {
    "spread": warn_spread,
    "join_min_spread": warn_join_min_spread,
    "price_band": warn_price_band,
    "add_fees": warn_add_fees,
    "rebalance": warn_rebalance,
}


def run_warnings(profile: Profile) -> list[tuple[FieldPath, str]]:
    """Run every check in :data:`WARNINGS`; a crash is dropped (a warning never refuses)."""
    out: list[tuple[FieldPath, str]] = []
    for check in WARNINGS.values():
        try:
            out.extend(check(profile))
        except Exception:  # a warning must never stop a valid profile
            continue
    return out
