"""How quotes meet the book and what fills change: ``pricing:`` and ``after_fill:``.

These are the quoting settings a Hummingbot user knows from pure market making (fee-aware
prices, order optimization, the price band, the filled-order delay, hanging orders, ping-pong),
each a small pure stage of kasmm's pipeline (:mod:`kasmm.core`). The mode's spread and size
growth are in :mod:`kasmm.config.quoting`; the inventory rebalance order is in its
``inventory:`` block there.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kasmm.config.fields import (
    NonNegativeDecimal,
    NonNegativeFloat,
    PositiveDecimal,
    PositiveFloat,
    StrictModel,
)

Percent = Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
#: A lower bound on a total spread, in bps: 0 (no bound) to 10 000 (100 %).
SpreadFloorBps = Annotated[float, Field(ge=0, le=10_000, allow_inf_nan=False)]


class PriceBandConfig(StrictModel):
    """Outside the band only the side that sells high or buys low is quoted.

    Absolute (``floor`` and/or ``ceiling``, Hummingbot's ``price_floor``/``price_ceiling``) or
    moving (``band_pct`` around a slow average of the mid), not both (checked with the other
    cross-field rules in :func:`kasmm.config.checks.check_quoting_settings`).
    """

    floor: PositiveDecimal | None = Field(
        None, description="Below this mid only bids are quoted, and no ask is priced below it."
    )
    ceiling: PositiveDecimal | None = Field(
        None, description="Above this mid only asks are quoted, and no bid is priced above it."
    )
    band_pct: Percent | None = Field(
        None,
        description="A moving band: floor and ceiling this many percent below and above a slow "
        "average of the mid (instead of floor/ceiling).",
    )
    halflife_s: PositiveFloat = Field(
        3600.0, description="Half-life of the slow average mid of a moving band, in seconds."
    )


class PricingConfig(StrictModel):
    """Where quotes sit against the book: fees, joining the book, the price band."""

    add_fees: bool = Field(
        False,
        description="Move each side's prices away by the market's maker fee (bid * (1 - fee), "
        "ask * (1 + fee)) so a round trip covers both fees; a rebate (negative fee) tightens "
        "them, never through the book (Hummingbot's add_transaction_costs). The fee is the "
        "venue's: sim and paper venues' fees.maker_bps, a live exchange's market fee as ccxt "
        "reports it (its base tier, not your account's).",
    )
    join_depth: NonNegativeDecimal | None = Field(
        None,
        description="Join the book: put the best bid/ask one tick inside the best competing "
        "price with more than this much size (base) ahead of it, ignoring dust (Hummingbot's "
        "order optimization depth; 0 joins the very top); off when absent.",
    )
    join_min_spread_bps: SpreadFloorBps | None = Field(
        None,
        description="The join never quotes tighter than this total spread, in bps: each side "
        "stays at least half of it from the centre (absent: the mode's own spread, so joining "
        "only backs away from the centre, as Hummingbot does; needs join_depth).",
    )
    price_band: PriceBandConfig | None = Field(
        None, description="Price band (absolute or moving); off when absent."
    )


class HangingOrdersConfig(StrictModel):
    """Keep the other side of a filled pair on the book (Hummingbot's hanging orders)."""

    enabled: bool = Field(
        False,
        description="When an order fills, the open order of the other side at the same level "
        "stays on the book, outside the quotes, until it fills, the mid moves cancel_pct away, "
        "trading stops (pause, halt) or the bot stops; it takes one of its side's levels and "
        "its balance (Hummingbot's hanging_orders_enabled).",
    )
    cancel_pct: Percent = Field(
        1.0,
        description="Cancel a hanging order when the mid is this many percent away from its "
        "price (Hummingbot's hanging_orders_cancel_pct).",
    )


class AfterFillConfig(StrictModel):
    """What a fill changes in the quoting."""

    filled_order_delay_s: NonNegativeFloat = Field(
        0.0,
        description="After a fill on a side, that side is not quoted for this many seconds "
        "(Hummingbot's filled_order_delay, per side); 0: off.",
    )
    ping_pong: bool = Field(
        False,
        description="After a buy fill quote only the sell side until a sell fills, and the "
        "reverse (with levels: one level per unmatched fill, Hummingbot's ping_pong_enabled).",
    )
    hanging_orders: HangingOrdersConfig = Field(
        HangingOrdersConfig(), description="Hanging orders: the other side of a filled pair."
    )
