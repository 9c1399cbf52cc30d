"""Simulated market models: what a ``sim`` venue's book, mid and takers follow.

The random walk (alone, or one venue of a world sharing a latent price with others, with its
informed arbitrageurs), the exact Avellaneda-Stoikov (2008) model, and replayed recordings;
``SimMarket`` picks one by ``model``. They sit apart from the venue models
(:mod:`kasmm.config.venues`) because they describe a market, not how kasmm reaches it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, StringConstraints, Tag

from kasmm.config.fields import (
    NonNegativeFloat,
    PositiveDecimal,
    PositiveFloat,
    StrictModel,
)

#: A simulated world's name (what the sim venues sharing its latent price name).
WorldName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class SimWorldConfig(StrictModel):
    """A latent "true" price shared by every random_walk venue that names the same world.

    Its path is a pure function of these fields (and of the step index), so every venue of
    the world sees the same path whatever order they ask in; the supervisor (or a group
    backtest) holds one registry of worlds, and every venue naming a world must state it with
    the same fields (:mod:`kasmm.venues.sim.world`).
    """

    name: WorldName = Field(
        description="The world's name: venues naming the same world share one latent price "
        "(lower-case letters, digits, '-' and '_')."
    )
    seed: Annotated[int, Field(ge=0)] = Field(
        1,
        description="Random seed of the latent path (independent of each venue's own seed, "
        "which drives its noise and takers).",
    )
    s0: PositiveDecimal = Field(
        Decimal("0.08"), description="The latent price when the world starts."
    )
    sigma_bps: PositiveFloat = Field(
        2.0,
        description="Volatility of the latent price in bps per square-root second (2 bps ~ "
        "5.9% daily): it takes a log-normal step of sigma_bps * sqrt(step_s) bps every step_s.",
    )
    step_s: Annotated[float, Field(ge=0.001, le=60, allow_inf_nan=False)] = Field(
        0.1,
        description="Seconds between two steps of the latent price. The path starts when the "
        "first venue of the world is built (the supervisor's clock, or a backtest's virtual "
        "time 0) and is flat at s0 before that.",
    )
    jump_rate_per_s: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = Field(
        0.0,
        description="Mean jumps of the latent price per second (Poisson; 0 = none): price "
        "discovery in jumps (a large order, a news print), what a lagging venue's quotes are "
        "picked off on. A step jumps with probability 1 - exp(-jump_rate_per_s * step_s).",
    )
    jump_bps: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = Field(
        0.0,
        description="Mean size of a jump in bps (exponentially distributed, up or down with "
        "probability 1/2).",
    )


class ArbitrageConfig(StrictModel):
    """Informed takers of a world venue: arbitrageurs trading it toward the latent price."""

    rate_per_s: PositiveFloat = Field(
        2.0,
        description="Mean arrivals per second of an arbitrageur (Poisson). Each one looks at "
        "the latent price at that instant (not lagged, no noise) and trades only when the "
        "venue's combined book (other traders and the bot) is stale by threshold_bps.",
    )
    max_size: PositiveDecimal = Field(
        Decimal("5000"),
        description="Most base one arbitrageur trades (rounded down to the lot, at least one "
        "lot). It sweeps the combined book like any taker, but only the levels priced at "
        "least threshold_bps through the latent price.",
    )
    threshold_bps: NonNegativeFloat = Field(
        2.0,
        description="How stale a price must be to be traded, in bps: an arbitrageur buys every "
        "ask with ask * (1 + threshold_bps/1e4) <= latent price and sells to every bid with bid "
        ">= latent price * (1 + threshold_bps/1e4), best first, up to max_size.",
    )


class RandomWalkMarket(StrictModel):
    """A KAS/USDT-like market: random-walk mid, synthetic L2 book, Poisson takers; or, with a
    ``world``, a venue of a market shared with other venues (a lagged, noisy view of one
    latent price, with its own book and takers)."""

    model: Literal["random_walk"] = Field(
        "random_walk", description="Market model: random walk mid with a synthetic book."
    )
    s0: PositiveDecimal = Field(
        Decimal("0.08"),
        description="Initial mid price. Not with a world (world.s0 is the start of the latent "
        "price the venue's mid follows).",
    )
    sigma_bps: PositiveFloat = Field(
        2.0,
        description="Mid volatility in bps per square-root second (2 bps ~ 5.9% daily). Not with "
        "a world (world.sigma_bps moves the latent price).",
    )
    world: SimWorldConfig | None = Field(
        None,
        description="Share a latent price with every venue naming the same world: the venue's "
        "mid is then the latent price lag_ms ago times exp(noise), noise being the venue's own "
        "mean-reverting deviation (noise_bps, noise_halflife_s), sampled at each book update. "
        "null (the default): the mid is the venue's own random walk (s0, sigma_bps).",
    )
    lag_ms: Annotated[float, Field(ge=0, le=60_000, allow_inf_nan=False)] = Field(
        0.0,
        description="With a world: how far the venue's mid lags the latent price, in "
        "milliseconds (0 = the venue leads: price discovery happens there).",
    )
    noise_bps: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] = Field(
        0.0,
        description="With a world: standard deviation, in bps, of the venue's own deviation "
        "from the (lagged) latent price; a log-space Ornstein-Uhlenbeck process drawn from the "
        "venue's seed, so it reverts to zero and stays bounded.",
    )
    noise_halflife_s: PositiveFloat = Field(
        5.0,
        description="With a world: half-life of the venue's deviation (noise_bps), in seconds: "
        "how fast it reverts to the latent price.",
    )
    arbitrage: ArbitrageConfig | None = Field(
        None,
        description="With a world: informed takers (arbitrageurs) who trade the venue toward "
        "the latent price now, so stale quotes on a lagging venue are picked off; null (the "
        "default): none.",
    )
    book_interval_s: PositiveFloat = Field(
        0.1,
        description="Seconds between book updates (with a world: how often the mid samples the "
        "lagged latent price and its noise).",
    )
    book_levels: Annotated[int, Field(ge=1, le=200)] = Field(
        20, description="Synthetic levels per side of other traders' liquidity."
    )
    book_spread_bps: PositiveFloat = Field(
        10.0, description="Distance in bps between the synthetic best bid and best ask."
    )
    book_step_bps: PositiveFloat = Field(2.0, description="Spacing of synthetic levels in bps.")
    book_level_size: PositiveDecimal = Field(
        Decimal("4000"), description="Base size resting at each synthetic level."
    )
    taker_rate_per_s: PositiveFloat = Field(
        2.0, description="Mean arrivals per second of taker (market) orders, Poisson."
    )
    taker_size_mean: PositiveDecimal = Field(
        Decimal("2500"), description="Mean taker order size in base units (exponential)."
    )
    book_update: Literal["regenerate", "incremental"] = Field(
        "incremental",
        description="How the synthetic book follows the mid. 'incremental' (model version 2, the "
        "default): levels sit on a fixed price grid of book_step_bps (in ticks at s0) and keep "
        "their size while they stay in the book; an update only adds and drops the levels the "
        "mid moved past, and the best bid and ask sit at least book_spread_bps/2 from the mid "
        "(the spread is book_spread_bps plus up to two steps). 'regenerate' (model version 1, "
        "the default until issue 15, about 4-8x heavier; the seeded paths of earlier kasmm bit "
        "for bit): every update rebuilds each level at its bps offset from the mid with a fresh"
        " size.",
    )


class AS2008Market(StrictModel):
    """The Avellaneda–Stoikov (2008) model, implemented exactly (see the README)."""

    model: Literal["as2008"] = Field(
        description="Market model: Avellaneda-Stoikov (2008), Poisson fills at distance-decaying "
        "intensity A*exp(-k*delta)."
    )
    s0: PositiveFloat = Field(100.0, description="Initial mid price.")
    sigma: PositiveFloat = Field(2.0, description="Mid volatility, price units per sqrt second.")
    A: PositiveFloat = Field(140.0, description="Order arrival intensity scale.")
    k: PositiveFloat = Field(1.5, description="Intensity decay per price unit of distance.")
    dt: PositiveFloat = Field(0.005, description="Step length in seconds.")
    tick: PositiveDecimal = Field(Decimal("0.0001"), description="Price tick of the model.")


class ReplayMarket(StrictModel):
    """Recorded books and trades replayed against the bot's orders (``kasmm record`` writes
    them; the format and the fill rules are in :mod:`kasmm.backtest.replay`)."""

    model: Literal["replay"] = Field(
        description="Market model: recorded books and trades (`kasmm record`) replayed."
    )
    path: str = Field(
        min_length=1,
        description="Replay file (CSV, kasmm-replay format 1), relative to the working directory.",
    )
    queue_position: Literal["back", "front"] = Field(
        "back",
        description="Where a new order joins the queue at its price: 'back' fills only after the "
        "size the recording displayed at that price when it was placed has traded; 'front' fills "
        "on the first trade at its price.",
    )


def _market_model(value: Any) -> str | None:
    """Discriminator of ``SimMarket``: ``model`` defaults to ``random_walk`` when omitted."""
    if isinstance(value, dict):
        tag = value.get("model", "random_walk")
        return tag if isinstance(tag, str) else None
    tag = getattr(value, "model", None)
    return tag if isinstance(tag, str) else None


SimMarket = Annotated[
    Annotated[RandomWalkMarket, Tag("random_walk")]
    | Annotated[AS2008Market, Tag("as2008")]
    | Annotated[ReplayMarket, Tag("replay")],
    Discriminator(
        _market_model,
        custom_error_type="market_model",
        custom_error_message=(
            "market model must be 'random_walk' (the default), 'as2008' or 'replay'"
        ),
    ),
]
