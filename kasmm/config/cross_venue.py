"""Profiles that look past their own venue: ``reference:`` prices and ``hedge:`` orders.

A reference prices quotes off other markets (public data, by exchange and symbol); a hedge
offsets each fill on another profile's venue with an IOC order. Both name things outside the
profile, so :mod:`kasmm.config.checks` checks them again across a whole load.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from kasmm.config.fields import (
    Bps,
    ExchangeName,
    KillAction,
    NonNegativeDecimal,
    PositiveDecimal,
    PositiveFloat,
    ProfileName,
    StrictModel,
    Symbol,
)

# --- reference prices ---------------------------------------------------------------------


class MarketRef(StrictModel):
    """A market by exchange and symbol (public data: no keys)."""

    exchange: ExchangeName = Field(
        description="ccxt exchange id (mexc, gate, kucoin, bingx) or a sim venue's exchange name."
    )
    symbol: Symbol


class ReferenceSource(MarketRef):
    """One market to price off, optionally converted into the profile's quote asset."""

    via: MarketRef | None = Field(
        None,
        description="Conversion pair from the source's quote asset to the profile's, e.g. "
        "USDC/USDT to price KAS/USDT off KAS/USDC (its mid multiplies; a pair quoted the other "
        "way round, USDT/USDC, divides).",
    )


class ReferenceConfig(StrictModel):
    """Price quotes off other markets instead of the own book's mid (the own book still bounds
    every quote: post-only, never crossing it)."""

    sources: tuple[ReferenceSource, ...] = Field(
        min_length=1,
        max_length=8,
        description="Markets to price off (same base asset). Several are combined by `method`.",
    )
    method: Literal["median", "depth_weighted"] = Field(
        "median",
        description="How several fresh sources combine: their median mid, or their mids weighted "
        "by top-of-book depth (bid + ask size).",
    )
    max_age_s: PositiveFloat = Field(
        5.0,
        description="A source (or its conversion pair) whose last book arrived longer ago than "
        "this drops out.",
    )
    max_deviation_pct: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None = Field(
        2.0,
        description="Quoting pauses while the reference is further than this from the own mid, in "
        "percent (a broken reference must not drag quotes through the book); null: no guard.",
    )
    on_stale: Literal["own_mid", "pause"] = Field(
        "pause",
        description="With no fresh source left: price off the own mid, or pause quoting.",
    )
    pause_s: PositiveFloat = Field(
        5.0,
        description="How long one trip of the reference rule pauses quoting (checked again "
        "when it ends).",
    )


# --- hedging (cross-exchange market making) ----------------------------------------------


class UnhedgedRule(StrictModel):
    """Trip when the unhedged residual's absolute value exceeds ``base``.

    The residual is the base the profile's fills left that the hedge venue has not offset yet
    (carried below the minimum, waiting for the window, expired or failed IOCs). The trip is
    decided by the supervisor's hedging task and held while the residual stays beyond the
    limit; it clears once the residual is back within (a halt stays until ``kasmm reset``).
    """

    base: PositiveDecimal = Field(description="Largest allowed |unhedged residual|, in base.")
    action: KillAction = Field(
        "pause",
        description="What a trip does. pause (the default): no quotes while the residual is "
        "beyond the limit; halt: cancel everything until `kasmm reset PROFILE`; reduce_only: "
        "quote only the side that brings inventory back toward the target.",
    )


class HedgeConfig(StrictModel):
    """Offset every fill of this profile on another profile's venue with an IOC order."""

    profile: ProfileName = Field(
        description="The profile (same supervisor, same base asset, enabled, itself without a "
        "hedge) whose venue takes the offsetting immediate-or-cancel orders."
    )
    window_ms: Annotated[float, Field(ge=0, le=60_000, allow_inf_nan=False)] = Field(
        200.0,
        description="Fills within this many milliseconds of the first unhedged one are netted "
        "into one hedge order.",
    )
    min_base: NonNegativeDecimal = Field(
        Decimal(0),
        description="A net amount below this (base) is carried over to the next fill, not sent.",
    )
    max_slippage_bps: Bps = Field(
        20.0,
        description="The IOC's limit price is at most this far through the hedge venue's top "
        "of book (buy: best ask x (1 + x), sell: best bid x (1 - x)), rounded to its tick "
        "toward less slippage.",
    )
    retry_s: PositiveFloat = Field(
        2.0,
        description="A residual left by an IOC that expired, filled partially or failed is "
        "sent again after this many seconds, against the book of then.",
    )
    max_unhedged_base: UnhedgedRule = Field(
        description="Kill-switch rule on the unhedged residual (required: a hedge venue that "
        "is down must not leave the exposure unbounded)."
    )
