"""Cross-field rules of issue 19's quoting settings (per-side spreads, ``pricing:``,
``after_fill:``, ``inventory.rebalance``).

:func:`check_quoting_settings` is one of the per-profile checks of :mod:`kasmm.config.checks`
(re-exported there). Its rules refuse what cannot work or can only have been meant otherwise:
a setting the chosen strategy or market cannot honour, two ways of saying one thing, or a
setting written for a companion that is switched off (a written value that does nothing hides
a mistake). What is valid but probably unintended is a warning instead
(:mod:`kasmm.config.warning_checks`). Nothing here knows the live market: a rebalance order
smaller than the exchange's lot or minimum notional is found only when the market's rules are
loaded (the venue refuses it, and the bot logs it); on a random-walk sim, whose rules the
profile states, :func:`~kasmm.config.warning_checks.warn_rebalance` warns of it.

An ``order: ioc`` rebalance needs a venue that takes liquidity: every ccxt exchange kasmm
supports maps ``timeInForce: IOC`` to its own IOC (``ioc_as`` of
:data:`kasmm.venues.ccxt.exchanges.FLAVOURS`), and the paper venue and the random-walk and replay
simulators take their book's liquidity. Only the as2008 market cannot (it has no book), and it
refuses a rebalance of either kind.
"""

from __future__ import annotations

from kasmm.config.locate import FieldPath
from kasmm.config.schema import (
    AS2008Market,
    AvellanedaStoikovStrategy,
    PriceBandConfig,
    Profile,
    SimVenueConfig,
)

__all__ = ["check_quoting_settings"]

Finding = tuple[FieldPath, str]


def _band(band: PriceBandConfig) -> list[Finding]:
    """One kind of band, a floor below the ceiling, a half-life only for a moving band."""
    where: FieldPath = ("pricing", "price_band")
    absolute = band.floor is not None or band.ceiling is not None
    out: list[Finding] = []
    if absolute and band.band_pct is not None:
        out.append(
            (
                (*where, "band_pct"),
                "give floor/ceiling (an absolute band) or band_pct (a moving band), not both",
            )
        )
    elif not absolute and band.band_pct is None:
        out.append((where, "give floor and/or ceiling, or band_pct"))
    elif absolute and "halflife_s" in band.model_fields_set:
        out.append(
            (
                (*where, "halflife_s"),
                "halflife_s is the moving band's averaging (band_pct); an absolute band "
                "(floor/ceiling) does not move: remove it",
            )
        )
    if band.floor is not None and band.ceiling is not None and band.floor >= band.ceiling:
        out.append(
            (
                (*where, "floor"),
                f"floor ({band.floor}) must be below ceiling ({band.ceiling})",
            )
        )
    return out


def check_quoting_settings(p: Profile) -> list[Finding]:
    """Settings that do not fit the strategy or the market they are used with, or each other.

    Per-side spreads are the fixed-spread model's (Avellaneda–Stoikov sets its own spread); the
    exact as2008 model has no balances to rebalance and a zero-width book to join; a join floor
    needs a join, a slippage cap an IOC.
    """
    out: list[Finding] = []
    if isinstance(p.strategy, AvellanedaStoikovStrategy):
        for name in ("aggressive", "passive"):
            mode = getattr(p.modes, name)
            if mode is not None and mode.bid_spread_bps is not None:
                out.append(
                    (
                        ("modes", name, "bid_spread_bps"),
                        "bid_spread_bps/ask_spread_bps apply to the fixed_spread strategy; "
                        "avellaneda_stoikov sets its own spread (use spread_bps or leave them out)",
                    )
                )
    pricing = p.pricing
    if pricing.join_min_spread_bps is not None and pricing.join_depth is None:
        out.append(
            (
                ("pricing", "join_min_spread_bps"),
                "join_min_spread_bps bounds the join of the book, which is off: set join_depth "
                "or remove it",
            )
        )
    if pricing.price_band is not None:
        out.extend(_band(pricing.price_band))
    venue = p.venue
    exact = isinstance(venue, SimVenueConfig) and isinstance(venue.market, AS2008Market)
    if exact and pricing.join_depth is not None:
        out.append(
            (
                ("pricing", "join_depth"),
                "the as2008 market publishes only its mid (a zero-width book): there is no "
                "book to join",
            )
        )
    rebalance = p.inventory.rebalance
    if rebalance is None:
        return out
    if exact:
        out.append(
            (
                ("inventory", "rebalance"),
                "the as2008 market has no balances (cash and inventory are unbounded): "
                "there is no band to rebalance into",
            )
        )
    if rebalance.order == "post_only" and "max_slippage_bps" in rebalance.model_fields_set:
        out.append(
            (
                ("inventory", "rebalance", "max_slippage_bps"),
                "max_slippage_bps caps an ioc rebalance; a post_only order rests at the touch "
                "and never slips: remove it, or set order: ioc",
            )
        )
    if p.hedge is not None:
        # Hedging offsets every fill on the other venue, a rebalance order's too: the
        # rebalance would be undone there at once, paying both venues' fees for nothing.
        out.append(
            (
                ("inventory", "rebalance"),
                f"hedge: offsets every fill on {p.hedge.profile}, a rebalance order's too, so "
                "the two would undo each other: use one or the other",
            )
        )
    return out
